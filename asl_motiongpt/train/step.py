"""The one step compiler every stage uses: state shardings from logical axes, `jax.jit` with explicit
in/out shardings over the mesh, the state donated, process-local batches made global.

  abstract, shardings = abstract_state(init_boxed_state, mesh, rules)   # nothing allocated
  state = init_state(init_boxed_state, shardings)                       # created in place, sharded
  step = compile_step(step_fn, mesh, shardings, batch_example, rules, tx.arguments())
                                                                        # step(state, local_batch)

`init_boxed_state()` returns the stage's train state with Flax's logical-axis boxes still on the
parameters (so optimizer moments made by `tx.init` inherit their parameter's axes); unboxed leaves
(step counters, codebooks, rng keys) are replicated.
"""
from __future__ import annotations

import jax
from flax import linen as nn
from jax.sharding import Mesh

from asl_motiongpt.parallel import sharding as shd
from asl_motiongpt.parallel.rules import DEFAULT_RULES
from asl_motiongpt.parallel.run_once import run_once


def batch_shardings(mesh: Mesh, batch_example: dict) -> dict:
  return {k: shd.batch_sharding(mesh, jax.numpy.ndim(v)) for k, v in batch_example.items()}


def _global(batch: dict, mesh: Mesh) -> dict:
  """A process-local numpy batch (this process' rows) -> global arrays; jax.Arrays (and abstract
  ShapeDtypeStructs, for ahead-of-time lowering) pass through."""
  if all(isinstance(x, (jax.Array, jax.ShapeDtypeStruct)) for x in jax.tree.leaves(batch)):
    return batch
  return shd.global_batch(batch, mesh)


def on_mesh(jitted, mesh: Mesh, rules):
  """Calls `jitted(first, batch)` under the mesh and the logical-axis rules, the batch made global."""
  def run(first, batch):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted(first, _global(batch, mesh))

  def lower(first, batch):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted.lower(first, _global(batch, mesh))

  run.lower = lower
  return run


def abstract_state(init_boxed_state, mesh: Mesh, rules=DEFAULT_RULES):
  """(the state as ShapeDtypeStructs carrying their shardings, the shardings): for restoring into
  place, ahead-of-time compilation and memory planning of configurations too big for this machine."""
  abstract, specs = shd.abstract_with_specs(init_boxed_state)
  shardings = shd.logical_to_shardings(specs, mesh, rules)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
  return abstract, shardings


def init_state(init_boxed_state, shardings):
  """The state created under jit straight into its shardings (never whole on one device)."""
  return run_once(lambda: nn.meta.unbox(init_boxed_state()), out_shardings=shardings)


def compile_step(step, mesh: Mesh, state_shardings, batch_example: dict, rules=DEFAULT_RULES, hyper: dict | None = None):
  """step(state, batch) -> (state, metrics), jitted: state as sharded, batch over ('data', 'fsdp'),
  metrics replicated, the old state donated.

  hyper: the optimizer's numbers (train/optimizer.Optimizer.arguments()), given to
  step(state, batch, hyper) as replicated scalars on every call instead of compiled into the program:
  steps that differ only in them are one program."""
  replicated = shd.replicated(mesh)
  in_shardings = (state_shardings, batch_shardings(mesh, batch_example))
  if hyper is None:
    jitted = jax.jit(step, in_shardings=in_shardings, out_shardings=(state_shardings, replicated), donate_argnums=0)
    return on_mesh(jitted, mesh, rules)
  jitted = jax.jit(step, in_shardings=in_shardings + (replicated,), out_shardings=(state_shardings, replicated),
                   donate_argnums=0)
  return on_mesh(_BoundHyper(jitted, hyper, replicated), mesh, rules)


class _BoundHyper:
  """A jitted step(state, batch, hyper) called and lowered as step(state, batch). The numbers are put
  on the devices at the first call (lowering ahead of time, for devices that are only planned, needs
  only their shapes)."""

  def __init__(self, jitted, hyper: dict, sharding):
    self.jitted, self.hyper, self.sharding, self.on_devices = jitted, hyper, sharding, None

  def __call__(self, state, batch):
    if self.on_devices is None:
      self.on_devices = {name: jax.device_put(value, self.sharding) for name, value in self.hyper.items()}
    return self.jitted(state, batch, self.on_devices)

  def lower(self, state, batch):
    abstract = {name: jax.ShapeDtypeStruct(value.shape, value.dtype, sharding=self.sharding)
                for name, value in self.hyper.items()}
    return self.jitted.lower(state, batch, abstract)


def compile_eval(evaluate, mesh: Mesh, param_shardings, batch_example: dict, rules=DEFAULT_RULES):
  """evaluate(params, batch) -> metrics, jitted like compile_step (nothing donated)."""
  jitted = jax.jit(evaluate, in_shardings=(param_shardings, batch_shardings(mesh, batch_example)),
                   out_shardings=shd.replicated(mesh))
  return on_mesh(jitted, mesh, rules)
