"""The four ways the seed joins motion to an LLM, as one Flax module chosen by config.

  mlp          an MLP adapter maps motion features into the LLM's embedding space at placeholder
               positions; the LLM is frozen.
  llm_align    motion as tokens of an extended vocabulary (`vocab.py`); the LLM trains.
  mlp_llm      the adapter, with the LLM training too.
  mlp_llm_llm  adapter -> LLM A -> MLP bridge -> LLM B (stacked, e.g. Qwen then LLaMA): A's final
               hidden states, bridged, are B's input embeddings; B's vocabulary gives the logits.

Frozen parts are frozen twice over: here their parameters pass through `stop_gradient`, so their
gradient is exactly zero; and the optimizer (`TRAINABLE` patterns) gives them no state at all.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import traverse_util

from asl_motiongpt.llm.config import LlmConfig
from asl_motiongpt.llm.model import Transformer

COMBINATIONS = ("mlp", "llm_align", "mlp_llm", "mlp_llm_llm")
# Parameter groups (top-level names) that train in each combination; the rest is frozen.
TRAINABLE = {
    "mlp": ("adapter",),
    "llm_align": ("llm",),
    "mlp_llm": ("adapter", "llm"),
    "mlp_llm_llm": ("adapter", "llm", "bridge", "llm_b"),
}


class Mlp2(nn.Module):
  """Two-layer GELU MLP from motion features (or hidden states) into an LLM's embedding space."""
  hidden: int
  out: int
  in_axis: str
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x):
    init = nn.initializers.lecun_normal()
    h = nn.Dense(self.hidden, dtype=jnp.dtype(self.dtype),
                 kernel_init=nn.with_logical_partitioning(init, (self.in_axis, "mlp")),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)), name="fc1")(x)
    h = nn.gelu(h)
    return nn.Dense(self.out, dtype=jnp.dtype(self.dtype),
                    kernel_init=nn.with_logical_partitioning(init, ("mlp", "embed")),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)), name="fc2")(h)


def _frozen(module_cls, frozen: bool):
  if not frozen:
    return module_cls
  return nn.map_variables(module_cls, "params", trans_in_fn=lambda v: jax.tree.map(jax.lax.stop_gradient, v),
                          init=True, methods=("__call__", "embed") if module_cls is Transformer else None)


class MotionLanguageModel(nn.Module):
  combination: str
  llm: LlmConfig
  llm_b: LlmConfig | None = None    # mlp_llm_llm only
  motion_dim: int = 512             # width of the motion features the adapter reads
  adapter_hidden: int = 1024

  def setup(self):
    if self.combination not in COMBINATIONS:
      raise ValueError(f"combination {self.combination!r}; choose one of {COMBINATIONS}")
    trainable = TRAINABLE[self.combination]
    self.llm_module = _frozen(Transformer, "llm" not in trainable)(self.llm, name="llm")
    if self.combination != "llm_align":
      self.adapter = _frozen(Mlp2, "adapter" not in trainable)(
          self.adapter_hidden, self.llm.hidden_size, "motion_feature", self.llm.dtype, name="adapter")
    if self.combination == "mlp_llm_llm":
      if self.llm_b is None:
        raise ValueError("mlp_llm_llm needs llm_b, the second (upper) LLM's config")
      self.bridge = _frozen(Mlp2, "bridge" not in trainable)(
          self.adapter_hidden, self.llm_b.hidden_size, "embed", self.llm.dtype, name="bridge")
      self.llm_b_module = _frozen(Transformer, "llm_b" not in trainable)(self.llm_b, name="llm_b")

  def __call__(self, input_ids_BT, motion_BTM=None, motion_mask_BT=None, positions=None, kv_mask=None,
               segment_ids=None):
    """Logits [B, T, V]. motion_BTM: features aligned with the tokens, used where motion_mask_BT.
    positions / segment_ids: of packed rows (several examples per row, see data/task_data.py)."""
    seg = {"segment_ids": segment_ids}
    if self.combination == "llm_align":
      return self.llm_module(input_ids_BT, positions, kv_mask=kv_mask, **seg)
    embeds_BTD = self.llm_module.embed(input_ids_BT)
    if motion_BTM is not None:
      adapted = self.adapter(motion_BTM).astype(embeds_BTD.dtype)
      embeds_BTD = jnp.where(motion_mask_BT[..., None], adapted, embeds_BTD)
    if self.combination in ("mlp", "mlp_llm"):
      return self.llm_module(positions=positions, inputs_embeds=embeds_BTD, kv_mask=kv_mask, **seg)
    hidden = self.llm_module(positions=positions, inputs_embeds=embeds_BTD, kv_mask=kv_mask, return_hidden=True,
                             **seg)
    return self.llm_b_module(positions=positions, inputs_embeds=self.bridge(hidden), kv_mask=kv_mask, **seg)


def trainable_mask(params: dict, combination: str, patterns: tuple[str, ...] | None = None) -> dict:
  """A pytree of bools: True where a parameter trains. `patterns` (regexes over 'group/path/leaf')
  override the combination's default groups (a stage may train only new embeddings, say)."""
  if patterns is None:
    patterns = tuple(rf"^{g}/" for g in TRAINABLE[combination])
  compiled = [re.compile(p) for p in patterns]
  flat = traverse_util.flatten_dict(params, sep="/")
  return traverse_util.unflatten_dict({k: any(p.search(k) for p in compiled) for k in flat}, sep="/")


def code_features(ids, codebook, first_code_id: int):
  """What the adapter reads: the VQ codebook embedding at each motion-code id, zeros elsewhere."""
  is_code = (ids >= first_code_id) & (ids < first_code_id + codebook.shape[0])
  return jnp.where(is_code[..., None], codebook[jnp.clip(ids - first_code_id, 0, codebook.shape[0] - 1)], 0.0)


def next_token_nll(logits_BTV, input_ids_BT, target_mask_BT):
  """(summed cross-entropy of predicting each target token from the tokens before it, number of
  target tokens). Summed, so microbatches and eval batches add up exactly."""
  logits = logits_BTV[:, :-1].astype(jnp.float32)
  targets = input_ids_BT[:, 1:]
  weights = target_mask_BT[:, 1:].astype(jnp.float32)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  return (nll * weights).sum(), weights.sum()


def next_token_loss(logits_BTV, input_ids_BT, target_mask_BT):
  """Mean cross-entropy of predicting each target token from the tokens before it.

  Only tokens marked in target_mask (the answer) count: prompt and padding never do (the
  MotionGPT decoder-only path trained on both). Returns (loss, number of target tokens).
  """
  total, count = next_token_nll(logits_BTV, input_ids_BT, target_mask_BT)
  return total / jnp.maximum(count, 1.0), count
