"""Our Flax (linen, pure functional) LLaMA / Qwen decoder.

    logits = Transformer(config).apply({"params": params}, input_ids)

Shapes in names: B batch, T query length, S key length (= T, or the cache size), D hidden,
N query heads, K key/value heads, G = N // K query heads per key/value head, H head_dim,
V vocabulary, F MLP width, L layers. Every parameter carries logical axis names (the sharding
rules map them to mesh axes), and so do the main activations.

Decoding with a cache: pass `cache` (from `init_cache`) and `cache_index` (the slot of the first
token in this call); keys/values are written at [cache_index, cache_index + T) and a query at slot
s attends to slots <= s that `kv_mask` marks valid (left padding in a batch is simply invalid).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from asl_motiongpt.llm import lora, rope
from asl_motiongpt.llm.dense import FlatDense, projection_dot
from asl_motiongpt.llm.config import LlmConfig
from asl_motiongpt.parallel import target
from asl_motiongpt.parallel.run_once import run_once

# {"k": ..., "v": ...}: layers unrolled, a tuple of one [B, K, S, H] array per layer; with
# scan_layers, one stacked [L, B, K, S, H] array (scan hands each layer its slice). cache_batch_axis
# says where a leaf keeps its rows (beam search reorders them).
Cache = dict

_REMAT_POLICIES = {
    "full": None,
    "dots_saveable": jax.checkpoint_policies.dots_saveable,
    "nothing_saveable": jax.checkpoint_policies.nothing_saveable,
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
REMAT_POLICIES = ("none",) + tuple(_REMAT_POLICIES)  # what LlmConfig.remat_policy may be


def _dense(features: int, axes: tuple[str, str], bias: bool, config: LlmConfig, name: str) -> nn.Dense:
  options = dict(use_bias=bias, dtype=jnp.dtype(config.dtype), param_dtype=jnp.dtype(config.param_dtype),
                 dot_general=projection_dot(config.dtype),
                 kernel_init=nn.with_logical_partitioning(nn.initializers.normal(0.02), axes),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)), name=name)
  if lora.targets(config, name):  # the same kernel, plus a low-rank update
    return lora.LoraDense(features, rank=config.lora_rank, alpha=config.lora_alpha, dropout=config.lora_dropout,
                          lora_axes=axes, **options)
  return FlatDense(features, **options)


class RMSNorm(nn.Module):
  eps: float
  param_dtype: str = "float32"
  axis_name: str = "norm"

  @nn.compact
  def __call__(self, inputs):
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, (self.axis_name,)),
                       (inputs.shape[-1],), jnp.dtype(self.param_dtype))
    x32 = inputs.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return scale.astype(inputs.dtype) * normed.astype(inputs.dtype)  # HF order: normalise in fp32, cast, scale


class Attention(nn.Module):
  config: LlmConfig

  @nn.compact
  def __call__(self, x_BTD, cos, sin, mask_BTS, cache_kv, cache_index, layer=None):
    """cache_kv: this layer's cache {"k", "v": [B, K, S, H]} (under scan_layers), or with `layer` (an
    index) every layer's (a tuple of [B, K, S, H]), of which only this layer's array gets this
    call's new rows: decoding never copies a whole cache at a step.

    Keys, values and grouped queries are laid out with the batch-like axes (B, K) first, so both
    attention matmuls are plain batched matmuls: XLA's CPU backend ran the backward of the
    [B, T, K, G, H] x [B, S, K, H] form 1.7x slower (measured: tools/bench_llm.py's shape, one layer)."""
    config = self.config
    B, T, _ = x_BTD.shape
    queries = _dense(config.num_heads * config.head_dim, ("embed", "q_heads"), config.attention_bias, config,
                     "q_proj")(x_BTD)
    keys = _dense(config.num_kv_heads * config.head_dim, ("embed", "kv_heads"), config.attention_bias, config,
                  "k_proj")(x_BTD)
    values = _dense(config.num_kv_heads * config.head_dim, ("embed", "kv_heads"), config.attention_bias,
                    config, "v_proj")(x_BTD)
    q_BTNH = queries.reshape(B, T, config.num_heads, config.head_dim)
    k_BTKH = keys.reshape(B, T, config.num_kv_heads, config.head_dim)
    v_BTKH = values.reshape(B, T, config.num_kv_heads, config.head_dim)
    if config.qk_norm:  # Qwen3: per-head RMSNorm before the rotation
      q_BTNH = RMSNorm(config.rms_norm_eps, config.param_dtype, "head_dim", name="q_norm")(q_BTNH)
      k_BTKH = RMSNorm(config.rms_norm_eps, config.param_dtype, "head_dim", name="k_norm")(k_BTKH)
    q_BTNH = rope.apply_rope(q_BTNH, cos, sin)
    k_BTKH = rope.apply_rope(k_BTKH, cos, sin)
    q_BTNH = nn.with_logical_constraint(q_BTNH, ("batch", "length", "heads", "head_dim"))
    k_BKTH, v_BKTH = k_BTKH.transpose(0, 2, 1, 3), v_BTKH.transpose(0, 2, 1, 3)
    if cache_kv is not None and layer is not None:
      # Every layer's cache is its own array: the new rows are written in place and the attention
      # reads the array itself. (One stacked [L, ...] array made XLA copy this layer's slice out,
      # 2 x 1.2 MB per layer per token: 10% of batch-8 decoding in tools/bench_llm.py.)
      def write(per_layer, new_BKTH):
        per_layer = list(per_layer)
        per_layer[layer] = jax.lax.dynamic_update_slice(
            per_layer[layer], new_BKTH.astype(per_layer[layer].dtype), (0, 0, cache_index, 0))
        return tuple(per_layer)
      new_kv = {"k": write(cache_kv["k"], k_BKTH), "v": write(cache_kv["v"], v_BKTH)}
      k_BKSH, v_BKSH = new_kv["k"][layer], new_kv["v"][layer]
    elif cache_kv is not None:
      write = lambda all_BKSH, new_BKTH: jax.lax.dynamic_update_slice(
          all_BKSH, new_BKTH.astype(all_BKSH.dtype), (0, 0, cache_index, 0))
      k_BKSH, v_BKSH = write(cache_kv["k"], k_BKTH), write(cache_kv["v"], v_BKTH)
      new_kv = {"k": k_BKSH, "v": v_BKSH}
    else:
      k_BKSH, v_BKSH, new_kv = k_BKTH, v_BKTH, None
    K, G, H = config.num_kv_heads, config.num_groups, config.head_dim
    q_BKGTH = q_BTNH.reshape(B, T, K, G, H).transpose(0, 2, 3, 1, 4)
    S = k_BKSH.shape[2]
    if cache_kv is None and attention_kernel(config.attention, q_BTNH.dtype, config.head_dim) == "cudnn":
      # cuDNN's fused (flash) attention: the [T, S] scores never exist in memory. The mask (causal,
      # padding, packed segments) is passed whole; [B, T, N, H] layouts, grouped heads handled inside.
      out = jax.nn.dot_product_attention(q_BTNH, k_BTKH, v_BTKH, mask=mask_BTS[:, None], implementation="cudnn")
      out = out.reshape(B, T, config.num_heads * H)
      out = _dense(config.hidden_size, ("q_heads", "embed"), config.o_bias, config,
                   "o_proj")(out.astype(jnp.dtype(config.dtype)))
      return out, new_kv
    if config.causal_block and cache_kv is None and T > config.causal_block:
      # Without a cache the mask is causal (query t sees keys <= t): the queries of a block ending at
      # position e need the first e keys only, so the blocks skip the masked upper triangle, whose
      # weights are exp(min - max) = 0 exactly (same outputs). XLA has no fused causal kernel that
      # would skip it (measured, one layer at tools/bench_llm.py's shape, forward + backward on 2 CPU
      # cores: 49 ms whole, 38 ms in blocks of 64; PyTorch's causal SDPA 27 ms).
      ends = list(range(config.causal_block, T, config.causal_block)) + [T]  # the last block may be shorter
      blocks = [_attend(q_BKGTH[:, :, :, start:end], k_BKSH, v_BKSH, mask_BTS[:, start:end], end)
                for start, end in zip([0] + ends[:-1], ends)]
      out_BKGTH = jnp.concatenate(blocks, axis=3)
    else:
      out_BKGTH = _attend(q_BKGTH, k_BKSH, v_BKSH, mask_BTS, S)
    out = out_BKGTH.transpose(0, 3, 1, 2, 4).reshape(B, T, config.num_heads * H)
    out = _dense(config.hidden_size, ("q_heads", "embed"), config.o_bias, config,
                 "o_proj")(out.astype(jnp.dtype(config.dtype)))
    return out, new_kv


ATTENTION_KERNELS = ("xla", "cudnn", "auto")


def attention_kernel(choice: str, dtype, head_dim: int, platform: str | None = None) -> str:
  """The kernel cacheless attention runs: "xla" (ours, any backend) or "cudnn" (cuDNN flash attention:
  NVIDIA GPUs, bfloat16/float16, head_dim a multiple of 8 up to 128). "auto" picks cudnn where those
  hold, else xla (CPU, TPU, float32); "cudnn" where they do not hold is refused, naming why."""
  if choice not in ATTENTION_KERNELS:
    raise ValueError(f"llm.attention={choice!r}; choose one of {ATTENTION_KERNELS}")
  if choice == "xla":
    return "xla"
  platform = platform or target.platform()
  why_not = None
  if platform not in ("gpu", "cuda"):
    why_not = f"it runs on NVIDIA GPUs only (this is {platform})"
  elif jnp.dtype(dtype) not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
    why_not = f"it needs bfloat16 or float16 (llm.dtype is {jnp.dtype(dtype).name})"
  elif head_dim % 8 or head_dim > 128:
    why_not = f"it needs head_dim a multiple of 8 up to 128 (it is {head_dim})"
  if why_not is None:
    return "cudnn"
  if choice == "cudnn":
    raise ValueError(f"llm.attention=cudnn: {why_not}; use auto (cudnn where it can run) or xla")
  return "xla"


def _attend(q_BKGTH, k_BKSH, v_BKSH, mask_BTS, keys: int):
  """Softmax attention of the queries over the first `keys` key slots. The G query heads of a
  key/value head are extra query rows (Q = G * T rows per (b, k)), so both matmuls are plain batched
  matmuls."""
  B, K, G, T, H = q_BKGTH.shape
  k_BKSH, v_BKSH, mask_BTS = k_BKSH[:, :, :keys], v_BKSH[:, :, :keys], mask_BTS[:, :, :keys]
  q_BKQH = q_BKGTH.reshape(B, K, G * T, H)
  scores = jnp.einsum("bkqh,bksh->bkqs", q_BKQH, k_BKSH.astype(q_BKQH.dtype),
                      preferred_element_type=jnp.float32) / jnp.sqrt(jnp.float32(H))
  scores_BKGTS = jnp.where(mask_BTS[:, None, None], scores.reshape(B, K, G, T, keys),
                           jnp.finfo(jnp.float32).min)
  probs = jax.nn.softmax(scores_BKGTS, axis=-1).astype(v_BKSH.dtype).reshape(B, K, G * T, keys)
  return jnp.einsum("bkqs,bksh->bkqh", probs, v_BKSH).reshape(B, K, G, T, H)


class Mlp(nn.Module):
  config: LlmConfig

  @nn.compact
  def __call__(self, x_BTD):
    config = self.config
    gate = _dense(config.intermediate_size, ("embed", "mlp"), config.mlp_bias, config, "gate_proj")(x_BTD)
    up = _dense(config.intermediate_size, ("embed", "mlp"), config.mlp_bias, config, "up_proj")(x_BTD)
    h_BTF = nn.with_logical_constraint(nn.silu(gate) * up, ("batch", "length", "mlp"))
    return _dense(config.hidden_size, ("mlp", "embed"), config.mlp_bias, config, "down_proj")(h_BTF)


class DecoderBlock(nn.Module):
  config: LlmConfig

  @nn.compact
  def __call__(self, x_BTD, cache_kv, cos, sin, mask_BTS, cache_index, layer=None):
    config = self.config
    normed = RMSNorm(config.rms_norm_eps, config.param_dtype, name="input_norm")(x_BTD)
    attn, new_kv = Attention(config, name="attn")(normed, cos, sin, mask_BTS, cache_kv, cache_index, layer)
    x_BTD = x_BTD + attn
    normed = RMSNorm(config.rms_norm_eps, config.param_dtype, name="post_attention_norm")(x_BTD)
    x_BTD = x_BTD + Mlp(config, name="mlp")(normed)
    return nn.with_logical_constraint(x_BTD, ("batch", "length", "embed")), new_kv


class Transformer(nn.Module):
  config: LlmConfig

  def setup(self):
    config = self.config
    self.embed_tokens = nn.Embed(config.vocab_size,
                                 config.hidden_size,
                                 dtype=jnp.dtype(config.dtype),
                                 param_dtype=jnp.dtype(config.param_dtype),
                                 embedding_init=nn.with_logical_partitioning(nn.initializers.normal(0.02),
                                                                             ("vocab", "embed")))
    block = DecoderBlock
    if config.remat_policy != "none":
      block = nn.remat(block, policy=_REMAT_POLICIES[config.remat_policy], prevent_cse=not config.scan_layers)
    if config.scan_layers:
      self.layers = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True},
                            in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast),
                            length=config.num_layers, metadata_params={nn.PARTITION_NAME: "layers"})(config)
    else:
      self.layers = [block(config, name=f"layers_{i}") for i in range(config.num_layers)]
    self.final_norm = RMSNorm(config.rms_norm_eps, config.param_dtype)
    if not config.tie_word_embeddings:
      self.lm_head = _dense(config.vocab_size, ("embed", "vocab"), False, config, "lm_head")
    if config.lora_rows_from:  # LoRA's trainable rows (llm/lora.py): zero at the start, the model unchanged
      rows = config.vocab_size - config.lora_rows_from
      self.embed_rows_delta = self.param(lora.EMBED_ROWS, nn.with_logical_partitioning(nn.initializers.zeros, (None, "embed")),
                                         (rows, config.hidden_size), jnp.dtype(config.param_dtype))
      if not config.tie_word_embeddings:
        self.head_rows_delta = self.param(lora.HEAD_ROWS, nn.with_logical_partitioning(nn.initializers.zeros, ("embed", None)),
                                          (config.hidden_size, rows), jnp.dtype(config.param_dtype))

  def embed(self, input_ids_BT):
    # The rows are looked up in the table with its model dimension whole, as FSDP gathers any weight
    # before use (in the compute dtype: half the bytes in bfloat16). Looked up in the FSDP-sharded
    # table, the gradient (a scatter-add of batch-sharded rows into embed-sharded ones) made XLA
    # replicate the activations on a data x fsdp mesh, CPU and TPU alike ("[SPMD] Involuntary full
    # rematerialization", tests/test_sharding.py). The price is the gathered table (docs/scale-out.md:
    # 2.6 GiB of temporaries per device for 8B LLaMA-3 on v5p-64).
    dtype = jnp.dtype(self.config.dtype)
    table = nn.with_logical_constraint(jnp.asarray(self.embed_tokens.embedding, dtype), ("vocab", None))
    x_BTD = jnp.take(table, input_ids_BT, axis=0)
    first = self.config.lora_rows_from
    if first:  # the delta of the rows that have one, looked up in the small table (clipped ids: zeros)
      delta_BTD = jnp.take(jnp.asarray(self.embed_rows_delta, dtype), jnp.maximum(input_ids_BT - first, 0), axis=0)
      x_BTD = x_BTD + jnp.where((input_ids_BT >= first)[..., None], delta_BTD, 0).astype(dtype)
    return x_BTD

  def __call__(self, input_ids=None, positions=None, *, inputs_embeds=None, kv_mask=None,
               cache: Cache | None = None, cache_index=0, return_hidden: bool = False, segment_ids=None):
    """Logits [B, T, V] (and the updated cache when one is given).

    positions default to 0..T-1 after the cache index; kv_mask [B, S] marks valid key slots
    (default: all). segment_ids [B, T] (packed rows, no cache): a token attends only to earlier
    tokens of its own segment; 0 marks padding. With return_hidden, the final normalised hidden
    states [B, T, D] are returned instead of logits (the bridge of stacked models reads them).
    """
    config = self.config
    x_BTD = self.embed(input_ids) if inputs_embeds is None else inputs_embeds.astype(jnp.dtype(config.dtype))
    B, T, _ = x_BTD.shape
    x_BTD = nn.with_logical_constraint(x_BTD, ("batch", "length", "embed"))
    S = T if cache is None else jax.tree.leaves(cache["k"])[0].shape[-2]
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(T) + cache_index, (B, T))
    if kv_mask is None:
      kv_mask = jnp.ones((B, S), bool)
    query_slot = cache_index + jnp.arange(T)
    causal_TS = jnp.arange(S)[None, :] <= query_slot[:, None]
    mask_BTS = causal_TS[None] & kv_mask[:, None, :].astype(bool)
    if segment_ids is not None:
      if cache is not None:
        raise ValueError("segment_ids (packed sequences) are for training forwards, not cached decoding")
      same_segment = segment_ids[:, :, None] == segment_ids[:, None, :]
      mask_BTS = mask_BTS & same_segment & (segment_ids[:, None, :] > 0)
    cos, sin = rope.cos_sin(positions, config)
    if config.scan_layers:
      x_BTD, new_cache = self.layers(x_BTD, cache, cos, sin, mask_BTS, cache_index)
    else:
      new_cache = cache  # threaded through the layers, each writing its own new rows
      for index, layer in enumerate(self.layers):
        x_BTD, new_cache = layer(x_BTD, new_cache, cos, sin, mask_BTS, cache_index,
                                 None if cache is None else index)
    h_BTD = self.final_norm(x_BTD)
    out = h_BTD if return_hidden else self.logits(h_BTD)
    return out if cache is None else (out, new_cache)

  def logits(self, h_BTD):
    """The output projection of final (normalised) hidden states: logits [..., V]. Separate from
    __call__ so a loss can project a few positions at a time (chunked_next_token_nll)."""
    if self.config.tie_word_embeddings:  # flattened for the reason llm/dense.py gives
      out = self.embed_tokens.attend(h_BTD.reshape(-1, h_BTD.shape[-1])).reshape(*h_BTD.shape[:-1], -1)
    else:
      out = self.lm_head(h_BTD)
    first = self.config.lora_rows_from
    if first:  # the trained columns: their delta's logits added in place (a tied head shares the embedding's)
      delta = self.embed_rows_delta.T if self.config.tie_word_embeddings else self.head_rows_delta
      out = out.at[..., first:].add((h_BTD.astype(out.dtype) @ jnp.asarray(delta, out.dtype)))
    return nn.with_logical_constraint(out, ("batch", "length", "vocab"))


def cache_batch_axis(leaf) -> int:
  """The batch axis of a cache leaf: 0 in a layer's [B, K, S, H], 1 in a stacked [L, B, K, S, H]."""
  return leaf.ndim - 4


def init_cache(config: LlmConfig, batch: int, length: int, dtype=None) -> Cache:
  """An empty KV cache of `length` slots (see Cache: per layer, or stacked under scan_layers)."""
  dtype = jnp.dtype(dtype or config.dtype)
  if config.scan_layers:
    shape = (config.num_layers, batch, config.num_kv_heads, length, config.head_dim)
    return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}
  shape = (batch, config.num_kv_heads, length, config.head_dim)
  return {name: tuple(jnp.zeros(shape, dtype) for _ in range(config.num_layers)) for name in ("k", "v")}


def init_params(config: LlmConfig, rng: jax.Array, length: int = 8):
  """Random parameters (plain arrays; logical axis metadata removed), initialised under jit."""
  init = lambda key: nn.meta.unbox(Transformer(config).init(key, jnp.zeros((1, length), jnp.int32))["params"])
  return run_once(init, rng)


def logical_axes(config: LlmConfig, length: int = 8):
  """The logical axis names of every parameter, as a pytree of PartitionSpecs (for sharding)."""
  abstract = jax.eval_shape(
      lambda: Transformer(config).init(jax.random.PRNGKey(0), jnp.zeros((1, length), jnp.int32)))
  return nn.get_partition_spec(abstract)["params"]
