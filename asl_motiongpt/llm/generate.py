"""Batched generation: one jitted prefill, then a jitted KV-cache decode loop (lax.while_loop).

Prompts of different lengths are left-padded; padded slots are invalid keys and positions count
real tokens only, so each row computes what it would alone. Sampling: greedy (temperature 0),
temperature, top-k, top-p, or beam search (`Sampling(beams=5, length_penalty=1.0)`, in
llm/beam_search.py). A `constraint` restricts what may be emitted at each step (text only, or a
motion span <begin> motion ids... <end>).

What runs at each step is a `decoder` (a hashable callable with a KV cache): one Transformer by
default (token ids, or embeddings from an `embed_fn`), or any stack of models that keeps its own
caches (the stacked mlp_llm_llm combination, in eval/inference.py).
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from asl_motiongpt.llm.beam_search import beam_search
from asl_motiongpt.llm.config import LlmConfig
from asl_motiongpt.llm.transformer import Transformer, init_cache
from asl_motiongpt.parallel.sharding import to_host


@dataclasses.dataclass(frozen=True)
class Sampling:
  max_new_tokens: int = 64
  temperature: float = 0.0  # 0: greedy
  top_k: int = 0            # 0: off
  top_p: float = 1.0        # 1: off
  beams: int = 1            # > 1: beam search (llm/beam_search.py); 1 is greedy, as in transformers
  length_penalty: float = 1.0  # beam search: finished scores divided by generated_length ** length_penalty


@dataclasses.dataclass(frozen=True)
class NoConstraint:
  def init(self, batch: int):
    return jnp.zeros((batch,), jnp.int32)

  def allowed(self, state, vocab: int):
    return jnp.ones((state.shape[0], vocab), bool)

  def update(self, state, token):
    return state


@dataclasses.dataclass(frozen=True)
class TextOnly(NoConstraint):
  """sign -> text: never emit motion tokens (ids in [first_motion_id, end_motion_id))."""
  first_motion_id: int
  end_motion_id: int

  def allowed(self, state, vocab: int):
    ids = jnp.arange(vocab)
    text = (ids < self.first_motion_id) | (ids >= self.end_motion_id)
    return jnp.broadcast_to(text, (state.shape[0], vocab))


@dataclasses.dataclass(frozen=True)
class MotionSpan(NoConstraint):
  """text -> sign: first <begin> (unless `started`), then motion codes until <end>; with max_codes,
  <end> is forced after that many codes (so a sign always closes within the budget).

  State per row: 0 before <begin>, 1 + (codes so far) inside the span, -1 after <end>."""
  begin_id: int
  end_id: int
  first_code_id: int
  num_codes: int
  started: bool = False
  max_codes: int = 0  # 0: no limit

  def init(self, batch: int):
    return jnp.full((batch,), 1 if self.started else 0, jnp.int32)

  def allowed(self, state, vocab: int):
    ids = jnp.arange(vocab)[None, :]
    state = state[:, None]
    is_code = (ids >= self.first_code_id) & (ids < self.first_code_id + self.num_codes)
    room = (state - 1 < self.max_codes) if self.max_codes else jnp.ones_like(state, bool)
    inside = (is_code & room) | (ids == self.end_id)
    return jnp.where(state == 0, ids == self.begin_id, jnp.where(state > 0, inside, ids == self.end_id))

  def update(self, state, token):
    return jnp.where(state == 0, 1, jnp.where(token == self.end_id, -1, jnp.where(state > 0, state + 1, state)))


def _filter_logits(logits_BV, sampling: Sampling):
  if sampling.top_k:
    kth = jax.lax.top_k(logits_BV, sampling.top_k)[0][:, -1:]
    logits_BV = jnp.where(logits_BV < kth, -jnp.inf, logits_BV)
  if sampling.top_p < 1.0:
    sorted_logits = jnp.sort(logits_BV, axis=-1)[:, ::-1]
    cumulative = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
    # keep the smallest prefix whose mass reaches top_p (always at least the best token)
    cutoff_index = jnp.sum(cumulative < sampling.top_p, axis=-1, keepdims=True)
    cutoff = jnp.take_along_axis(sorted_logits, cutoff_index, axis=-1)
    logits_BV = jnp.where(logits_BV < cutoff, -jnp.inf, logits_BV)
  return logits_BV


def _choose(logits_BV, allowed_BV, sampling: Sampling, rng):
  logits_BV = jnp.where(allowed_BV, logits_BV.astype(jnp.float32), -jnp.inf)
  if sampling.temperature == 0.0:
    return jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
  logits_BV = _filter_logits(logits_BV / sampling.temperature, sampling)
  return jax.random.categorical(rng, logits_BV, axis=-1).astype(jnp.int32)


def bucket(length: int, smallest: int = 8) -> int:
  """n rounded up to a power of two (at least `smallest`), then to a multiple of 256 above 256: the
  shapes a compiled decoding program is made for. Without it every new prompt length or batch size
  (each eval batch's longest prompt, a last short batch) compiles the whole decoding loop again."""
  if length > 256:
    return -(-length // 256) * 256
  return max(smallest, 1 << max(0, length - 1).bit_length())


def left_pad(prompts: Sequence[Sequence[int]],
             pad_id: int,
             length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """[rows, length] ids and validity mask, prompts right-aligned (length: at least the longest)."""
  length = max(max(len(prompt) for prompt in prompts), length or 0)
  ids = np.full((len(prompts), length), pad_id, np.int32)
  mask = np.zeros((len(prompts), length), bool)
  for row, prompt in enumerate(prompts):
    if len(prompt) == 0:
      raise ValueError(f"prompt {row} is empty")
    ids[row, length - len(prompt):] = prompt
    mask[row, length - len(prompt):] = True
  return ids, mask


@dataclasses.dataclass(frozen=True)
class TransformerDecoder:
  """One Transformer over token ids, or over embeddings that embed_fn(params, aux, ids) computes."""
  config: LlmConfig
  embed_fn: object = None

  def init_cache(self, batch: int, length: int):
    return init_cache(self.config, batch, length)

  def __call__(self, params, aux, ids_BT, positions_BT, kv_mask_BS, cache, cache_index):
    """(logits of the last position [B, 1, V], cache): decoding reads no other, and a prompt's full
    [B, T, V] float32 logits are gigabytes at a real vocabulary."""
    inputs = {
        "input_ids": ids_BT
    } if self.embed_fn is None else {
        "inputs_embeds": self.embed_fn(params, aux, ids_BT)
    }
    model = Transformer(self.config)
    hidden, cache = model.apply({"params": params}, positions=positions_BT, kv_mask=kv_mask_BS, cache=cache,
                                cache_index=cache_index, return_hidden=True, **inputs)
    return model.apply({"params": params}, hidden[:, -1:], method=Transformer.logits), cache


@functools.partial(jax.jit, static_argnames=("decoder", "sampling", "constraint", "eos_ids", "pad_id"))
def _generate(params, aux, ids_BP, mask_BP, rng, *, decoder, sampling: Sampling, constraint,
              eos_ids: tuple[int, ...], pad_id: int):
  B, P = ids_BP.shape
  N = sampling.max_new_tokens
  S = P + N
  kv_mask = jnp.concatenate([mask_BP, jnp.ones((B, N), bool)], axis=1)
  positions = jnp.maximum(jnp.cumsum(mask_BP, axis=1) - 1, 0)
  cache = decoder.init_cache(B, S)
  logits, cache = decoder(params, aux, ids_BP, positions, kv_mask, cache, 0)
  prompt_len = mask_BP.sum(axis=1)
  eos = jnp.asarray(eos_ids if eos_ids else (-1,), jnp.int32)
  vocab = logits.shape[-1]

  rng, step_rng = jax.random.split(rng)
  state = constraint.init(B)
  token = _choose(logits[:, -1], constraint.allowed(state, vocab), sampling, step_rng)
  state = constraint.update(state, token)
  done = jnp.isin(token, eos)
  out = jnp.full((B, N), pad_id, jnp.int32).at[:, 0].set(token)

  def cond(carry):
    step, _, _, _, done, _, _ = carry
    return (step < N) & ~done.all()

  def body(carry):
    step, token, cache, state, done, out, rng = carry
    rng, step_rng = jax.random.split(rng)
    position = (prompt_len + step - 1)[:, None]
    logits, cache = decoder(params, aux, token[:, None], position, kv_mask, cache, P + step - 1)
    new = _choose(logits[:, -1], constraint.allowed(state, vocab), sampling, step_rng)
    new = jnp.where(done, pad_id, new)
    state = jnp.where(done, state, constraint.update(state, new))
    out = out.at[:, step].set(new)
    done = done | jnp.isin(new, eos)
    return step + 1, new, cache, state, done, out, rng

  carry = (jnp.int32(1), token, cache, state, done, out, rng)
  *_, out, _ = jax.lax.while_loop(cond, body, carry)
  return out


def generate(config: LlmConfig, params, prompts: Sequence[Sequence[int]], sampling: Sampling = Sampling(), *,
             eos_ids: Sequence[int] = (), pad_id: int = 0, rng: jax.Array | None = None,
             constraint=NoConstraint(), embed_fn=None, aux=None, decoder=None,
             batch_sharding: jax.sharding.NamedSharding | None = None) -> list[list[int]]:
  """New tokens per prompt, cut after the first end token (which is kept).

  embed_fn(params, aux, ids) -> embeddings replaces the token embedding lookup (a hashable callable,
  e.g. a frozen dataclass: it is a static argument of the compiled loop); aux holds its arrays.
  decoder replaces the whole per-step model (see TransformerDecoder); config/embed_fn are then unused.
  batch_sharding: the prompts' rows split over devices (decoding data-parallel, under the caller's
  mesh); the batch is padded with copies of its last prompt up to a multiple of the row shards.
  """
  # Shapes bucketed (more left padding, copies of the last prompt as extra rows, dropped below):
  # a few compiled programs serve every batch. Padding is invalid keys, so results do not change.
  ids, mask = left_pad(prompts, pad_id, bucket(max(len(p) for p in prompts)))
  extra_rows = bucket(len(prompts), smallest=1) - len(prompts)
  ids, mask = (np.concatenate([x, np.repeat(x[-1:], extra_rows, axis=0)]) for x in (ids, mask))
  rng = jax.random.PRNGKey(0) if rng is None else rng
  decoder = decoder or TransformerDecoder(config, embed_fn)
  if batch_sharding is None:
    ids, mask = jnp.asarray(ids), jnp.asarray(mask)
  else:
    spec = batch_sharding.spec[0] if len(batch_sharding.spec) else None
    axes = () if spec is None else (spec,) if isinstance(spec, str) else tuple(spec)
    extra = -ids.shape[0] % int(np.prod([batch_sharding.mesh.shape[a] for a in axes]))
    ids, mask = (jax.device_put(np.concatenate([x, np.repeat(x[-1:], extra, axis=0)]), batch_sharding)
                 for x in (ids, mask))
  if sampling.beams > 1:
    if sampling.temperature:
      raise ValueError("beam search is deterministic: use temperature 0 with beams > 1")
    out, _ = beam_search(params, aux, ids, mask, decoder=decoder, beams=sampling.beams,
                         max_new_tokens=sampling.max_new_tokens, length_penalty=sampling.length_penalty,
                         constraint=constraint, eos_ids=eos_ids, pad_id=pad_id)
  else:
    # to_host: on a mesh spanning processes every process gets all rows (each holds only its own)
    out = np.asarray(to_host(_generate(params, aux, ids, mask, rng, decoder=decoder, sampling=sampling,
                                       constraint=constraint, eos_ids=tuple(eos_ids), pad_id=pad_id)))
  out = out[:len(prompts)]
  results = []
  for row in out:
    tokens = []
    for token in row.tolist():
      tokens.append(token)
      if token in eos_ids:
        break
    results.append(tokens)
  return results
