"""The LLM training step: next-token loss on target tokens, the optimizer, gradient accumulation.
(Compiled, sharded and donated by train/step.py, like every stage's step.)

Gradient accumulation splits the global batch into microbatches scanned in sequence; the loss is
sum(nll) / sum(target tokens) over the whole batch, so accumulating changes memory, not the math.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from asl_motiongpt.model.combinations import chunked_next_token_nll, next_token_nll

Batch = dict  # input_ids [B, T] int32, target_mask [B, T] bool (+ segment_ids / positions when packed)


def _nll_sum(apply_fn, params, batch, head_fn=None, loss_chunk: int = 0, dropout_rng=None):
  """With loss_chunk, apply_fn returns final hidden states and head_fn(params, hidden) projects them
  to logits, `loss_chunk` positions at a time (model/combinations.chunked_next_token_nll).
  dropout_rng: passed to apply_fn (as `dropout_rng=`) in training steps with dropout."""
  out = apply_fn(params, batch) if dropout_rng is None else apply_fn(params, batch, dropout_rng=dropout_rng)
  if not loss_chunk:
    return next_token_nll(out, batch["input_ids"], batch["target_mask"])
  return chunked_next_token_nll(lambda h: head_fn(params, h), out, batch["input_ids"], batch["target_mask"],
                                loss_chunk)


def boxed_state(init_boxed_params: Callable[[], Any], tx: optax.GradientTransformation) -> Callable[[], dict]:
  """init_boxed_state() for train/step.py: {step, params, opt_state} with logical boxes."""
  def init():
    params = init_boxed_params()
    return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}
  return init


def make_step(apply_fn: Callable[[Any, Batch], jax.Array], tx,
              accumulation: int = 1, trainable=None, *, head_fn=None, loss_chunk: int = 0,
              dropout_seed: int | None = None):
  """step(state, batch[, hyper]) -> (state, metrics); state = {step, params, opt_state}.
  tx: an optax transformation, or a train/optimizer.Optimizer whose numbers come as `hyper` (the
  step's third argument, see train/step.compile_step) rather than compiled in.
  loss_chunk > 0: apply_fn returns hidden states, head_fn projects them (see _nll_sum).
  dropout_seed: the model has dropout; each step's random stream is derived from (seed, step number,
  microbatch), so no random state is carried and a resumed run draws the same masks.

  `trainable`: the mask of parameters that train (train/optimizer.with_frozen). Frozen parameters
  then get no gradient at all (a scalar zero stands in, so XLA drops their weight-gradient matmuls
  and no gradient buffer of their size exists, in accumulation either) and pass through the step
  unchanged; `grad_norm` is the norm of what trains."""
  keep = (lambda tree: tree) if trainable is None else \
      (lambda tree: jax.tree.map(lambda g, t: g if t else jnp.zeros((), g.dtype), tree, trainable))

  def grads_of(params, batch, rng):
    (nll, count), grads = jax.value_and_grad(lambda p: _nll_sum(apply_fn, p, batch, head_fn, loss_chunk, rng),
                                             has_aux=True)(params)
    return nll, count, keep(grads)

  def step(state, batch, hyper=None):
    params = state["params"]
    step_rng = None if dropout_seed is None else jax.random.fold_in(jax.random.PRNGKey(dropout_seed), state["step"])
    if accumulation == 1:
      nll, count, grads = grads_of(params, batch, step_rng)
    else:
      rows = jax.tree.leaves(batch)[0].shape[0]
      if rows % accumulation:
        raise ValueError(f"a batch of {rows} rows does not split into {accumulation} microbatches")
      micro = split_microbatches(batch, accumulation)

      def body(carry, xs):
        mb, index = xs
        rng = None if step_rng is None else jax.random.fold_in(step_rng, index)
        nll, count, grads = grads_of(params, mb, rng)
        return jax.tree.map(jnp.add, carry, (nll, count, grads)), None

      zeros = (jnp.zeros(()), jnp.zeros(()), keep(jax.tree.map(jnp.zeros_like, params)))
      (nll, count, grads), _ = jax.lax.scan(body, zeros, (micro, jnp.arange(accumulation)))
    count = jnp.maximum(count, 1.0)
    grads = jax.tree.map(lambda g: g / count, grads)
    updates, opt_state = (tx if hyper is None else tx.build(hyper)).update(grads, state["opt_state"], params)
    if trainable is None:
      params = optax.apply_updates(params, updates)
    else:  # frozen leaves are returned as they came (their "updates" are zeros of a stand-in shape)
      params = jax.tree.map(lambda p, u, t: optax.apply_updates(p, u) if t else p, params, updates, trainable)
    metrics = {"loss": nll / count, "tokens": count, "grad_norm": optax.tree.norm(grads)}
    return {"step": state["step"] + 1, "params": params, "opt_state": opt_state}, metrics

  return step


def split_microbatches(batch: Batch, accumulation: int) -> Batch:
  """Rows [R, ...] -> [accumulation, R / accumulation, ...] where microbatch i holds rows i, i + A,
  i + 2A, ...: each device's block of rows holds its share of every microbatch, so the split moves no
  data. (Contiguous microbatches each lived on a few devices: on data=2 x fsdp=4 XLA resharded every
  one of them, "[SPMD] Involuntary full rematerialization".)"""
  def split(rows):
    strided = rows.reshape((rows.shape[0] // accumulation, accumulation) + rows.shape[1:]).swapaxes(0, 1)
    return nn.with_logical_constraint(strided, (None, "batch") + (None,) * (rows.ndim - 1))
  return jax.tree.map(split, batch)


def make_eval_step(apply_fn: Callable[[Any, Batch], jax.Array], *, head_fn=None, loss_chunk: int = 0):
  """eval(params, batch) -> {nll, tokens}: summed, so batches add up to an exact held-out loss."""

  def evaluate(params, batch):
    nll, count = _nll_sum(apply_fn, params, batch, head_fn, loss_chunk)
    return {"nll": nll, "tokens": count}

  return evaluate
