"""The stage optimizer (train/optimizer.py): its numbers are arguments of the compiled step, its
updates are those of optax's compiled schedules bit for bit (jitted alone; the same state structure,
so checkpoints resume), and runs that differ only in those numbers share one program."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from asl_motiongpt.parallel.mesh import make_mesh
from asl_motiongpt.train import step as step_compiler
from asl_motiongpt.train.optimizer import make_optimizer, schedule, schedule_numbers, with_frozen


def schedule_arguments(s):
  return {k: np.float32(v) for k, v in schedule_numbers(s).items()}


def stage(schedule="cosine", lr=3e-3, steps=40, warmup=5, final=0.1, clip=1.0, weight_decay=0.01):
  return ml_collections.ConfigDict({
      "name": "s", "lr": lr, "steps": steps,
      "optim": {"schedule": schedule, "warmup_steps": warmup, "final_lr_fraction": final, "grad_clip": clip,
                "weight_decay": weight_decay, "b1": 0.9, "b2": 0.95}})


def optax_schedule(s) -> optax.Schedule:
  """The schedule as written with optax's own functions (the numbers compiled in)."""
  o, peak, steps, warmup = s.optim, s.lr, max(s.steps, 1), s.optim.warmup_steps
  final = peak * o.final_lr_fraction
  if o.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(steps, warmup + 1), end_value=final)
  decay = (optax.linear_schedule(peak, final, max(steps - warmup, 1)) if o.schedule == "linear"
           else optax.constant_schedule(peak))
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup]) if warmup else decay


def optax_reference(s) -> optax.GradientTransformation:
  parts = [optax.clip_by_global_norm(s.optim.grad_clip)] if s.optim.grad_clip else []
  return optax.chain(*parts, optax.adamw(optax_schedule(s), b1=s.optim.b1, b2=s.optim.b2,
                                         weight_decay=s.optim.weight_decay))


SETTINGS = [dict(), dict(warmup=0), dict(schedule="linear"), dict(schedule="linear", warmup=0),
            dict(schedule="constant", clip=0.0), dict(schedule="constant", warmup=0, weight_decay=0.0),
            dict(steps=3, warmup=8, final=0.0)]


@pytest.mark.parametrize("settings", SETTINGS, ids=[",".join(f"{k}={v}" for k, v in s.items()) or "cosine"
                                                    for s in SETTINGS])
def test_updates_with_the_numbers_as_arguments_equal_optax_bit_for_bit(settings):
  s = stage(**settings)
  tx, reference = make_optimizer(s), optax_reference(s)
  params = {"w": jax.random.normal(jax.random.PRNGKey(0), (4, 3)), "b": jnp.arange(3.0)}
  state, ref_state = tx.init(params), reference.init(params)
  assert jax.tree.structure(state) == jax.tree.structure(ref_state)  # checkpoints stay readable

  @jax.jit
  def ours(params, state, grads, hyper):
    updates, state = tx.build(hyper).update(grads, state, params)
    return optax.apply_updates(params, updates), state

  @jax.jit
  def theirs(params, state, grads):
    updates, state = reference.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  ref_params = params
  for i in range(s.steps + 5):  # past the end of the schedule
    grads = jax.tree.map(lambda p: jnp.sin(p * (i + 1)) * 3.0, params)
    params, state = ours(params, state, grads, tx.arguments())
    ref_params, ref_state = theirs(ref_params, ref_state, jax.tree.map(lambda p: jnp.sin(p * (i + 1)) * 3.0, ref_params))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"step {i}")
  counts = jnp.arange(s.steps + 5)
  traced = jax.jit(lambda c, h: jax.vmap(schedule(s.optim.schedule, h))(c))(counts, schedule_arguments(s))
  # The learning rates alone: here optax's constants may be folded at compile time while ours are computed
  # in the program, and XLA's CPU emitters need not round a cosine as its constant folder does (the
  # suite's fast-compile flags, tests/conftest.py, showed one ulp); the updates above are bit for bit.
  np.testing.assert_allclose(np.asarray(traced), np.asarray(jax.jit(jax.vmap(optax_schedule(s)))(counts)),
                             rtol=4e-7, atol=0)


def test_runs_that_differ_only_in_their_numbers_compile_one_program():
  """An LR sweep, a longer schedule, another warm-up, clipping norm or weight decay: the same
  compiled step (the persistent compilation cache serves every run after the first)."""
  from asl_motiongpt.train import llm_step
  vocab = 8
  params = {"table": jnp.zeros((vocab, vocab))}
  batch = {"input_ids": np.zeros((2, 5), np.int32), "target_mask": np.ones((2, 5), bool)}
  mesh = make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, devices=jax.devices()[:1])

  def lowered(s):
    tx, mask = with_frozen(make_optimizer(s), params, (r"table",))
    abstract, shardings = step_compiler.abstract_state(lambda: {"step": jnp.zeros((), jnp.int32), "params": params,
                                                                "opt_state": tx.init(params)}, mesh)
    step = llm_step.make_step(lambda p, b: p["table"][b["input_ids"]], tx, trainable=mask)
    return step_compiler.compile_step(step, mesh, shardings, batch, hyper=tx.arguments()).lower(abstract, batch)

  first = lowered(stage()).as_text()
  assert lowered(stage(lr=1e-4, steps=900, warmup=50, final=0.0, clip=0.5, weight_decay=0.1)).as_text() == first
  assert lowered(stage(schedule="linear")).as_text() != first  # another schedule is another program
