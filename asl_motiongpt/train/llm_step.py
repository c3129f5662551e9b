"""The LLM training step: next-token loss on target tokens, AdamW, gradient accumulation, compiled
with `jax.jit` and explicit in/out shardings over the mesh, the state donated.

Gradient accumulation splits the global batch into microbatches scanned in sequence; the loss is
sum(nll) / sum(target tokens) over the whole batch, so accumulating changes memory, not the math.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from jax.sharding import Mesh

from asl_motiongpt.model.combinations import next_token_nll
from asl_motiongpt.parallel import sharding as shd
from asl_motiongpt.parallel.rules import DEFAULT_RULES

Batch = dict  # input_ids [B, T] int32, target_mask [B, T] bool (+ motion features for adapters)


def _nll_sum(apply_fn, params, batch):
  return next_token_nll(apply_fn(params, batch), batch["input_ids"], batch["target_mask"])


def make_step(apply_fn: Callable[[Any, Batch], jax.Array], tx: optax.GradientTransformation,
              accumulation: int = 1):
  """step(state, batch) -> (state, metrics); state = {step, params, opt_state}."""

  def grads_of(params, batch):
    (nll, count), grads = jax.value_and_grad(lambda p: _nll_sum(apply_fn, p, batch), has_aux=True)(params)
    return nll, count, grads

  def step(state, batch):
    params = state["params"]
    if accumulation == 1:
      nll, count, grads = grads_of(params, batch)
    else:
      micro = jax.tree.map(lambda x: x.reshape((accumulation, x.shape[0] // accumulation) + x.shape[1:]), batch)

      def body(carry, mb):
        nll, count, grads = grads_of(params, mb)
        return jax.tree.map(jnp.add, carry, (nll, count, grads)), None

      zeros = (jnp.zeros(()), jnp.zeros(()), jax.tree.map(jnp.zeros_like, params))
      (nll, count, grads), _ = jax.lax.scan(body, zeros, micro)
    count = jnp.maximum(count, 1.0)
    grads = jax.tree.map(lambda g: g / count, grads)
    updates, opt_state = tx.update(grads, state["opt_state"], params)
    params = optax.apply_updates(params, updates)
    metrics = {"loss": nll / count, "tokens": count, "grad_norm": optax.tree.norm(grads)}
    return {"step": state["step"] + 1, "params": params, "opt_state": opt_state}, metrics

  return step


def _global(batch: Batch, mesh: Mesh) -> Batch:
  """A process-local numpy batch (this process' rows, from the data pipeline) -> global arrays;
  batches that are jax.Arrays already pass through."""
  if all(isinstance(x, jax.Array) for x in jax.tree.leaves(batch)):
    return batch
  return shd.global_batch(batch, mesh)


def make_eval_step(apply_fn: Callable[[Any, Batch], jax.Array]):
  """eval(params, batch) -> {nll, tokens}: summed, so batches add up to an exact held-out loss."""

  def evaluate(params, batch):
    nll, count = _nll_sum(apply_fn, params, batch)
    return {"nll": nll, "tokens": count}

  return evaluate


def _batch_shardings(mesh: Mesh, batch_example: Batch) -> dict:
  return {k: shd.batch_sharding(mesh, jnp.ndim(v)) for k, v in batch_example.items()}


def _on_mesh(jitted, mesh: Mesh, rules):
  """Calls `jitted(first, batch)` under the mesh and the logical-axis rules, the batch made global."""
  def run(first, batch):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted(first, _global(batch, mesh))
  return run


def compile_eval(evaluate, mesh: Mesh, param_shardings, batch_example: Batch, rules=DEFAULT_RULES):
  jitted = jax.jit(evaluate, in_shardings=(param_shardings, _batch_shardings(mesh, batch_example)),
                   out_shardings=shd.replicated(mesh))
  return _on_mesh(jitted, mesh, rules)


def abstract_state(model: nn.Module, tx, mesh: Mesh, init_args: tuple, rules=DEFAULT_RULES):
  """The state as ShapeDtypeStructs carrying their shardings (nothing allocated): for ahead-of-time
  compilation and memory planning of configurations too big for the machine at hand."""
  def init_boxed():
    return model.init(jax.random.PRNGKey(0), *init_args)["params"]

  abstract_params, param_specs = shd.abstract_with_specs(init_boxed)
  abstract_opt, opt_specs = shd.abstract_with_specs(lambda: tx.init(init_boxed()))
  shardings = {"step": shd.replicated(mesh), "params": shd.logical_to_shardings(param_specs, mesh, rules),
               "opt_state": shd.logical_to_shardings(opt_specs, mesh, rules)}
  abstract = {"step": jax.ShapeDtypeStruct((), jnp.int32), "params": abstract_params, "opt_state": abstract_opt}
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
  return abstract, shardings


def sharded_state(model: nn.Module, tx, mesh: Mesh, init_args: tuple, rng, rules=DEFAULT_RULES,
                  params=None):
  """(state placed on the mesh, its shardings). Params are initialised (or given) and moved to
  their shardings; optimizer moments take the shardings of their parameters."""
  _, shardings = abstract_state(model, tx, mesh, init_args, rules)
  if params is None:
    params = jax.jit(lambda: nn.meta.unbox(model.init(rng, *init_args)["params"]),
                     out_shardings=shardings["params"])()
  else:
    params = jax.device_put(params, shardings["params"])
  opt_state = jax.jit(tx.init, out_shardings=shardings["opt_state"])(params)
  state = {"step": jax.device_put(jnp.zeros((), jnp.int32), shardings["step"]), "params": params,
           "opt_state": opt_state}
  return state, shardings


def compile_step(step, mesh: Mesh, state_shardings, batch_example: Batch, rules=DEFAULT_RULES):
  """jit with explicit shardings: state as given, batch over ('data', 'fsdp'), metrics replicated."""
  jitted = jax.jit(step, in_shardings=(state_shardings, _batch_shardings(mesh, batch_example)),
                   out_shardings=(state_shardings, shd.replicated(mesh)), donate_argnums=0)
  run = _on_mesh(jitted, mesh, rules)

  def lower(state, batch):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted.lower(state, batch)

  run.lower = lower
  return run
