"""The four ways the seed joins motion to an LLM, as one Flax module chosen by config.

  mlp          an MLP adapter maps motion features into the LLM's embedding space at placeholder
               positions; the LLM is frozen.
  llm_align    motion as tokens of an extended vocabulary (`vocab.py`); the LLM trains.
  mlp_llm      the adapter, with the LLM training too.
  mlp_llm_llm  adapter -> LLM A -> MLP bridge -> LLM B (stacked, e.g. Qwen then LLaMA): A's final
               hidden states, bridged, are B's input embeddings; B's vocabulary gives the logits.

Frozen parts are frozen twice over: here their parameters pass through `stop_gradient`, so their
gradient is exactly zero; and the optimizer (`TRAINABLE` groups as path regexes, train/optimizer.py)
gives them no state at all.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from asl_motiongpt.llm.config import LlmConfig
from asl_motiongpt.llm.transformer import Transformer, init_cache

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
  def __call__(self, inputs):
    init = nn.initializers.lecun_normal()
    hidden = nn.Dense(self.hidden, dtype=jnp.dtype(self.dtype),
                 kernel_init=nn.with_logical_partitioning(init, (self.in_axis, "mlp")),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)), name="fc1")(inputs)
    hidden = nn.gelu(hidden)
    return nn.Dense(self.out,
                    dtype=jnp.dtype(self.dtype),
                    kernel_init=nn.with_logical_partitioning(init, ("mlp", "embed")),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)),
                    name="fc2")(hidden)


def _frozen(module_cls, frozen: bool):
  if not frozen:
    return module_cls
  return nn.map_variables(module_cls,
                          "params",
                          trans_in_fn=lambda v: jax.tree.map(jax.lax.stop_gradient, v),
                          init=True,
                          methods=("__call__", "embed", "logits") if module_cls is Transformer else None)


class MotionLanguageModel(nn.Module):
  """One model for the training forward and for cached decoding.

  Motion tokens are ids in [first_code_id, motion_end) (codes, then begin/end/mask). With an
  adapter, their input embedding is adapter(codebook feature): the code's VQ embedding for a code,
  zeros for begin/end/mask; text tokens keep their embedding. `codebook` [K, C] is an input, not a
  parameter: it belongs to the gesture tokenizer, which an LLM stage never changes.
  """
  combination: str
  llm: LlmConfig
  llm_b: LlmConfig | None = None    # mlp_llm_llm only
  motion_dim: int = 512             # width of the motion features the adapter reads
  adapter_hidden: int = 1024
  first_code_id: int = 0
  motion_end: int = 0               # one past the last motion token id

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

  def init_cache(self, batch: int, length: int) -> dict:
    """KV caches for decoding: one per LLM ({"llm": ..., "llm_b": ...})."""
    caches = {"llm": init_cache(self.llm, batch, length)}
    if self.combination == "mlp_llm_llm":
      caches["llm_b"] = init_cache(self.llm_b, batch, length)
    return caches

  def __call__(self, input_ids_BT, codebook_KC=None, positions=None, kv_mask=None, segment_ids=None, cache=None,
               cache_index=0, return_hidden: bool = False):
    """Logits [B, T, V]; with `cache` (from init_cache), (logits, updated cache).
    positions / segment_ids: of packed rows (several examples per row, see data/task_data.py).
    return_hidden: the top LLM's final hidden states [B, T, D] instead of logits (`logits` projects
    them: a chunked loss never holds the whole [B, T, V])."""
    run = {"positions": positions, "kv_mask": kv_mask, "segment_ids": segment_ids, "cache_index": cache_index}
    top = {"return_hidden": return_hidden}

    def llm(module, name, **inputs):
      if cache is None:
        return module(**inputs, **run), None
      return module(**inputs, **run, cache=cache[name])

    if self.combination == "llm_align":
      logits, cache_a = llm(self.llm_module, "llm", input_ids=input_ids_BT, **top)
      return logits if cache is None else (logits, {"llm": cache_a})
    embeds_BTD = self.llm_module.embed(input_ids_BT)
    if codebook_KC is None:
      raise ValueError(f"{self.combination}: the adapter reads motion features; pass the gesture codebook")
    features_BTC = code_features(input_ids_BT, codebook_KC, self.first_code_id)
    is_motion_BT = (input_ids_BT >= self.first_code_id) & (input_ids_BT < self.motion_end)
    adapted = self.adapter(features_BTC).astype(embeds_BTD.dtype)
    embeds_BTD = jnp.where(is_motion_BT[..., None], adapted, embeds_BTD)
    if self.combination in ("mlp", "mlp_llm"):
      logits, cache_a = llm(self.llm_module, "llm", inputs_embeds=embeds_BTD, **top)
      return logits if cache is None else (logits, {"llm": cache_a})
    hidden, cache_a = llm(self.llm_module, "llm", inputs_embeds=embeds_BTD, return_hidden=True)
    logits, cache_b = llm(self.llm_b_module, "llm_b", inputs_embeds=self.bridge(hidden), **top)
    return logits if cache is None else (logits, {"llm": cache_a, "llm_b": cache_b})

  def logits(self, hidden_BTD):
    """What __call__ returns for the hidden states it returns with return_hidden."""
    return (self.llm_b_module if self.combination == "mlp_llm_llm" else self.llm_module).logits(hidden_BTD)


def code_features(ids, codebook, first_code_id: int):
  """What the adapter reads: the VQ codebook embedding at each motion-code id, zeros elsewhere."""
  is_code = (ids >= first_code_id) & (ids < first_code_id + codebook.shape[0])
  return jnp.where(is_code[..., None], codebook[jnp.clip(ids - first_code_id, 0, codebook.shape[0] - 1)], 0.0)


def next_token_nll(logits_BTV, input_ids_BT, target_mask_BT):
  """(summed cross-entropy of predicting each target token from the tokens before it, number of
  target tokens). Summed, so microbatches and eval batches add up exactly."""
  weights = target_mask_BT[:, 1:].astype(jnp.float32)
  return (_token_nll(logits_BTV[:, :-1], input_ids_BT[:, 1:]) * weights).sum(), weights.sum()


def _token_nll(logits_BTV, targets_BT):
  """-log softmax(logits)[target] per position, in float32. The target's logit is picked by comparing
  with the vocabulary's ids rather than by a gather: its gradient is then elementwise, where a
  gather's is a scatter (measured ~15% of the loss head's backward on CPU)."""
  logits = logits_BTV.astype(jnp.float32)
  is_target = jnp.arange(logits.shape[-1]) == targets_BT[..., None]
  return jax.nn.logsumexp(logits, axis=-1) - jnp.sum(jnp.where(is_target, logits, 0.0), axis=-1)


def chunked_next_token_nll(logits_fn, hidden_BTD, input_ids_BT, target_mask_BT, chunk: int):
  """next_token_nll(logits_fn(hidden_BTD), ...) without the whole [B, T, V] logits: positions are
  projected `chunk` at a time in a scan, and each chunk's logits are recomputed in the backward pass
  (jax.checkpoint) rather than kept. At a real vocabulary (128k-152k) the float32 logits of one
  batch are gigabytes; here one chunk's exist at a time. Same sums (to float rounding)."""
  hidden = hidden_BTD[:, :-1]
  targets = input_ids_BT[:, 1:]
  weights = target_mask_BT[:, 1:].astype(jnp.float32)
  B, T = targets.shape
  pad = -T % chunk
  if pad:  # padded positions weigh 0
    hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
    targets, weights = jnp.pad(targets, ((0, 0), (0, pad))), jnp.pad(weights, ((0, 0), (0, pad)))
  pieces = lambda x: jnp.moveaxis(x.reshape((B, (T + pad) // chunk, chunk) + x.shape[2:]), 1, 0)

  @jax.checkpoint
  def chunk_nll(h_BCD, t_BC, w_BC):
    return (_token_nll(logits_fn(h_BCD), t_BC) * w_BC).sum()

  def body(total, xs):
    return total + chunk_nll(*xs), None

  total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), (pieces(hidden), pieces(targets), pieces(weights)))
  return total, weights.sum()


def next_token_loss(logits_BTV, input_ids_BT, target_mask_BT):
  """Mean cross-entropy of predicting each target token from the tokens before it.

  Only tokens marked in target_mask (the answer) count: prompt and padding never do (the
  MotionGPT decoder-only path trained on both). Returns (loss, number of target tokens).
  """
  total, count = next_token_nll(logits_BTV, input_ids_BT, target_mask_BT)
  return total / jnp.maximum(count, 1.0), count
