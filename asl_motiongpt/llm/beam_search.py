"""Beam search with a KV cache: batched, one jitted loop, the semantics of `transformers`' beam search.

What sign-language translation papers report (beam 4-5, a length penalty). Per prompt, `beams`
running hypotheses; each step scores every continuation of every running beam (accumulated
log-probabilities), keeps the best `(1 + number of end tokens) * beams` candidates (at least
`2 * beams`), moves those that end (an end token, or the length limit) among the top `beams` into
the finished set with a GNMT-style length penalty (score / generated_length ** alpha), and
continues with the best `beams` that did not end. The KV caches follow their beams (rows gathered
by source beam). A prompt stops taking new finished hypotheses once its best running beam, scored
at the current length, cannot beat its worst finished one (transformers' default heuristic,
`early_stopping=False`); the loop ends when no prompt can improve or every candidate has ended.

Constraints (`TextOnly`, `MotionSpan`) act inside the beam: each beam carries its own constraint
state, reordered with it, and disallowed tokens score -inf after the log-softmax (where
transformers applies its logits processors).

KV cache leaves keep their rows where llm/transformer.cache_batch_axis says (axis 0 per layer, 1 stacked).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from asl_motiongpt.llm.transformer import cache_batch_axis
from asl_motiongpt.parallel.sharding import to_host

NEG = -1.0e9  # transformers' "impossible" score: added, never -inf (so sums stay ordered)


def _gather(leaf, index_BK):
  """x [B, M, ...] -> x[b, index[b, k], ...] for each b, k."""
  return jnp.take_along_axis(leaf, index_BK.reshape(index_BK.shape + (1,) * (leaf.ndim - 2)), axis=1)


@functools.partial(jax.jit,
                   static_argnames=("decoder", "beams", "max_new_tokens", "length_penalty", "constraint",
                                    "eos_ids", "pad_id"))
def _beam_search(params, aux, ids_BP, mask_BP, *, decoder, beams: int, max_new_tokens: int,
                 length_penalty: float, constraint, eos_ids: tuple[int, ...], pad_id: int):
  B, P = ids_BP.shape
  K, N = beams, max_new_tokens
  keep = max(2, 1 + len(eos_ids)) * K  # candidates per prompt and step
  eos = jnp.asarray(eos_ids if eos_ids else (-1,), jnp.int32)
  # Every prompt row repeated per beam (prefilled K times, as transformers does).
  ids, mask = jnp.repeat(ids_BP, K, axis=0), jnp.repeat(mask_BP, K, axis=0)
  kv_mask = jnp.concatenate([mask, jnp.ones((B * K, N), bool)], axis=1)
  positions = jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0)
  prompt_len = mask.sum(axis=1)
  cache = decoder.init_cache(B * K, P + N)
  logits, cache = decoder(params, aux, ids, positions, kv_mask, cache, 0)
  vocab = logits.shape[-1]

  running_seq = jnp.full((B, K, N), pad_id, jnp.int32)
  running_scores = jnp.zeros((B, K), jnp.float32).at[:, 1:].set(NEG)  # the first step expands beam 0 only
  finished_seq = jnp.full((B, K, N), pad_id, jnp.int32)
  finished_scores = jnp.full((B, K), NEG, jnp.float32)
  finished = jnp.zeros((B, K), bool)
  improvable = jnp.ones((B,), bool)
  top_k_mask = jnp.arange(keep) < K  # only the best K candidates may finish
  state = constraint.init(B * K)

  def expand(step, logits_RV, cache, state, running_seq, running_scores, finished_seq, finished_scores,
             finished, improvable):
    """Step t (t tokens generated before): candidates, the new running beams, the finished set."""
    logp = jax.nn.log_softmax(logits_RV.astype(jnp.float32), axis=-1)
    logp = jnp.where(constraint.allowed(state, vocab), logp, -jnp.inf)
    scores = (logp.reshape(B, K, vocab) + running_scores[:, :, None]).reshape(B, K * vocab)
    cand_scores, flat = jax.lax.top_k(scores, keep)
    source, token = flat // vocab, (flat % vocab).astype(jnp.int32)
    cand_seq = _gather(running_seq, source).at[:, :, step].set(token)
    ends = jnp.isin(token, eos) | (step + 1 >= N)
    # the best K candidates that did not end run on
    order = jax.lax.top_k(cand_scores + ends * NEG, K)[1]
    running_seq, running_scores = _gather(cand_seq, order), _gather(cand_scores + ends * NEG, order)
    beam_source, new_token = _gather(source, order), _gather(token, order)
    # ended candidates among the top K join the finished set, scored with the length penalty
    just_finished = ends & top_k_mask[None, :]
    length = jnp.asarray(step + 1, jnp.float32)  # tokens generated, the new one included
    penalised = cand_scores / length ** length_penalty
    penalised = penalised + (~improvable[:, None]) * NEG + (~just_finished) * NEG
    merged_scores = jnp.concatenate([finished_scores, penalised], axis=1)
    best = jax.lax.top_k(merged_scores, K)[1]
    finished_seq = _gather(jnp.concatenate([finished_seq, cand_seq], axis=1), best)
    finished_scores = _gather(merged_scores, best)
    finished = _gather(jnp.concatenate([finished, just_finished], axis=1), best)
    # caches and constraint states follow their beams; the constraint sees the new token
    rows = (jnp.arange(B)[:, None] * K + beam_source).reshape(-1)
    cache = jax.tree.map(lambda final: jnp.take(final, rows, axis=cache_batch_axis(final)), cache)
    state = constraint.update(jnp.take(state, rows, axis=0), new_token.reshape(-1))
    # can the best running beam (at the current length) still beat the worst finished one?
    best_running = running_scores[:, 0] / length ** length_penalty
    worst = jnp.where(finished, finished_scores.min(axis=1, keepdims=True), NEG)
    improvable = improvable & jnp.any(best_running[:, None] > worst, axis=1)
    go_on = jnp.any(improvable) & ~jnp.all(ends) & (step + 1 < N)
    return (cache, state, running_seq, running_scores, finished_seq, finished_scores, finished, improvable,
            new_token.reshape(-1), go_on)

  carry = expand(0, logits[:, -1], cache, state, running_seq, running_scores, finished_seq, finished_scores,
                 finished, improvable)

  def cond(carry_state):
    return (carry_state[0] < N) & carry_state[-1]

  def body(carry_state):
    step, cache, state, running_seq, running_scores, finished_seq, finished_scores, finished, improvable, token, _ = carry_state
    position = (prompt_len + step - 1)[:, None]
    logits, cache = decoder(params, aux, token[:, None], position, kv_mask, cache, P + step - 1)
    return (step + 1,) + expand(step, logits[:, -1], cache, state, running_seq, running_scores, finished_seq,
                             finished_scores, finished, improvable)

  final = jax.lax.while_loop(cond, body, (jnp.int32(1),) + carry)
  return final[5], final[6]  # finished sequences [B, K, N] (best first) and their scores [B, K]


def beam_search(params,
                aux,
                ids_BP: np.ndarray,
                mask_BP: np.ndarray,
                *,
                decoder,
                beams: int,
                max_new_tokens: int,
                length_penalty: float = 1.0,
                constraint,
                eos_ids=(),
                pad_id: int = 0):
  """(best sequence per prompt [B, N] padded with pad_id, its length-penalised score [B]), as numpy."""
  seqs, scores = _beam_search(params, aux, ids_BP, mask_BP, decoder=decoder, beams=beams,
                              max_new_tokens=max_new_tokens, length_penalty=float(length_penalty),
                              constraint=constraint, eos_ids=tuple(eos_ids), pad_id=pad_id)
  seqs, scores = to_host((seqs[:, 0], scores[:, 0]))  # all rows on every process (a mesh spanning processes)
  return np.asarray(seqs), np.asarray(scores)
