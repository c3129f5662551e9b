"""LoRA: low-rank adapters on the LLM's projections, the base weights frozen.

    y = x W (+ b) + (alpha / rank) * (x A) B        A: [in, rank], B: [rank, out]

`LlmConfig.lora_rank > 0` puts `lora_a` / `lora_b` beside the `kernel` of every projection whose name
matches one of `lora_targets` (regexes over q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,
down_proj, lm_head); the kernel keeps its name and path, so Hugging Face weights load into it as
without LoRA. B starts at zero, so a fresh adapter leaves the model's output exactly as it was. A
and B take their kernel's logical axes on the side they share with it (the rank axis is
replicated), so FSDP/tensor sharding splits them as it splits the kernel. The optimizer trains only
`lora_a` / `lora_b` of an adapted LLM (train/optimizer.py, llm_stage.trainable_patterns): the base
has no optimizer state. `merge` folds the adapters into the kernels (for decoding and export).

New vocabulary rows (a chain's motion tokens, `lora_rows_from` = the first motion id) must learn in
full: they start as placeholders. Their embedding rows and output columns get a delta of their own
(`lora_embed_rows` [rows, D], `lora_head_rows` [D, rows]; zero at the start) that trains with the
adapters, so the optimizer holds the motion rows only, not the whole tables (at 8B the tables are a
billion parameters). `merge` adds them into the tables' rows.

Dropout (`lora_dropout`, as PEFT's) drops the adapters' input, not the base path's, and only where a
"dropout" random stream is given: the training step passes one (derived from the step number, so a
resumed run draws the same masks); held-out loss, decoding and export pass none and are exact.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
from flax import linen as nn

from asl_motiongpt.llm.dense import FlatDense

EMBED_ROWS, HEAD_ROWS = "lora_embed_rows", "lora_head_rows"
LORA_LEAVES = ("lora_a", "lora_b", EMBED_ROWS, HEAD_ROWS)


def targets(config, name: str) -> bool:
  return bool(config.lora_rank) and any(re.search(p, name) for p in config.lora_targets)


class LoraDense(FlatDense):
  """FlatDense (nn.Dense's `kernel`/`bias`) plus a low-rank update."""
  rank: int = 8
  alpha: float = 16.0
  dropout: float = 0.0
  lora_axes: tuple = (None, None)  # the kernel's logical axes (in, out)

  @nn.compact
  def __call__(self, inputs):
    outputs = super().__call__(inputs)
    lead = inputs.shape[:-1]
    inputs = inputs.reshape(-1, inputs.shape[-1])  # flattened, as FlatDense does
    lora_a = self.param("lora_a", nn.with_logical_partitioning(nn.initializers.normal(1.0 / self.rank),
                                                          (self.lora_axes[0], None)),
                   (jnp.shape(inputs)[-1], self.rank), self.param_dtype)
    lora_b = self.param("lora_b",
                        nn.with_logical_partitioning(nn.initializers.zeros, (None, self.lora_axes[1])),
                        (self.rank, self.features), self.param_dtype)
    dtype = self.dtype or inputs.dtype
    dropped = inputs
    if self.dropout and self.has_rng("dropout"):
      dropped = nn.Dropout(self.dropout, deterministic=False)(dropped)
    update = (dropped.astype(dtype) @ lora_a.astype(dtype)) @ lora_b.astype(dtype)
    return outputs + (self.alpha / self.rank) * update.reshape(*lead, self.features)


def split(params: dict) -> tuple[dict, dict]:
  """(params without the adapters, the adapters alone): both nested dicts in the same layout."""
  base, adapters = {}, {}
  for key, value in params.items():
    if isinstance(value, dict):
      lora_b, lora_a = split(value)
      base[key] = lora_b
      if lora_a:
        adapters[key] = lora_a
    elif key in LORA_LEAVES:
      adapters[key] = value
    else:
      base[key] = value
  return base, adapters


def join(base: dict, adapters: dict) -> dict:
  out = dict(base)
  for key, value in adapters.items():
    out[key] = join(out.get(key, {}), value) if isinstance(value, dict) else value
  return out


def merge(params: dict, config) -> dict:
  """The adapters folded into their kernels: W + (alpha / rank) A B (stacked layers too), and the
  rows' deltas added to their tables; the tree then has the layout of the model without LoRA
  (config.replace(lora_rank=0, lora_rows_from=0))."""
  scale = config.lora_alpha / config.lora_rank if config.lora_rank else 0.0
  first = config.lora_rows_from

  def add_rows(table, delta, axis):
    start = (first, 0) if axis == 0 else (0, first)
    rows = jax.lax.dynamic_slice(table, start, delta.shape).astype(jnp.float32) + delta.astype(jnp.float32)
    return jax.lax.dynamic_update_slice(table, rows.astype(table.dtype), start)

  def fold_rows(tree):
    tree = dict(tree)
    if EMBED_ROWS in tree:
      tree["embed_tokens"] = {"embedding": add_rows(tree["embed_tokens"]["embedding"], tree.pop(EMBED_ROWS), 0)}
    if HEAD_ROWS in tree:
      tree["lm_head"] = {**tree["lm_head"], "kernel": add_rows(tree["lm_head"]["kernel"], tree.pop(HEAD_ROWS), 1)}
    return tree

  def fold(tree):
    if not isinstance(tree, dict):
      return tree
    if "lora_a" in tree:
      delta = jnp.einsum("...ir,...ro->...io", tree["lora_a"].astype(jnp.float32),
                         tree["lora_b"].astype(jnp.float32))
      kernel = (tree["kernel"].astype(jnp.float32) + scale * delta).astype(tree["kernel"].dtype)
      return {**{k: v for k, v in tree.items() if k not in LORA_LEAVES}, "kernel": kernel}
    return {k: fold(v) for k, v in tree.items()}

  return jax.jit(lambda tree: fold(fold_rows(tree)))(params)
