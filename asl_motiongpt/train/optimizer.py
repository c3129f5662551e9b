"""The one optimizer builder: every setting from a resolved stage config, freezing as data.

  tx = make_optimizer(stage)                        # AdamW + schedule + clipping, from stage.optim / stage.lr
  tx, mask = with_frozen(tx, params, patterns)      # only params whose path matches a regex train

Schedules (after a linear warm-up from 0 over optim.warmup_steps): cosine or linear decay to
lr * final_lr_fraction at the last step, or constant. Frozen parameters go through
optax.set_to_zero inside optax.partition, so they carry no Adam state at all (big_vision style:
which parameters train is a list of regexes over 'group/path/leaf' names, not code).

The numbers are kept apart from the structure (`Optimizer`): a compiled step receives the learning
rate, the schedule's length and warm-up, the clipping norm and the weight decay as arguments instead of
having them baked in as constants, so stages, runs and sweeps that differ only in those numbers share
one compiled step (XLA's persistent cache finds it), and a resumed stage follows its config's numbers.
The arithmetic is that of optax's `warmup_cosine_decay_schedule`, `linear_schedule` and
`join_schedules` as XLA compiles them (divisions by the constant step counts become multiplications
by reciprocals, which are given here): the optimizer update alone equals optax's bit for bit on
XLA:CPU (tests/test_optimizer.py) and the state has the same structure (checkpoints still resume).
Inside a whole train step XLA fuses constants and arguments differently, so a run differs from one
made with the numbers compiled in by float rounding (seen: 7e-9 in a weight after two tokenizer
steps). Adam's betas stay compiled in: `1 - b1` folded in double precision is not the float32
subtraction of a traced b1.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

SCHEDULES = ("cosine", "linear", "constant")

Hyper = Mapping[str, "float | jax.Array"]


class Optimizer(NamedTuple):
  """An optax transformation built from its numbers: `build(hyper)` makes it, `hyper` are the stage's.

  A step given `hyper` as an argument (train/step.compile_step) builds the transformation from those
  traced scalars; `init` and `update` use the stage's numbers, as any optax transformation would."""
  build: Callable[[Hyper], optax.GradientTransformation]
  hyper: Mapping[str, float]

  def init(self, params):
    return self.build(self.hyper).init(params)

  def update(self, updates, state, params=None):
    return self.build(self.hyper).update(updates, state, params)

  def wrap(self, outer: Callable[[optax.GradientTransformation], optax.GradientTransformation]) -> "Optimizer":
    """The same numbers, the transformation wrapped (chained, partitioned) by `outer`."""
    return Optimizer(lambda hyper: outer(self.build(hyper)), self.hyper)

  def arguments(self) -> dict[str, np.ndarray]:
    """The numbers as float32 scalars, the form a compiled step receives them in."""
    return {name: np.float32(value) for name, value in self.hyper.items()}


def schedule_numbers(stage) -> dict[str, float]:
  """The learning-rate schedule's numbers, each computed in double precision as optax computes it."""
  optim, peak, steps = stage.optim, float(stage.lr), max(int(stage.steps), 1)
  warmup = int(optim.warmup_steps)
  final = peak * float(optim.final_lr_fraction)
  if optim.schedule not in SCHEDULES:
    raise ValueError(f"stage {stage.name!r}: optim.schedule {optim.schedule!r}; choose one of {SCHEDULES}")
  numbers = {"peak": peak, "warmup": float(warmup), "inv_warmup": _reciprocal(warmup)}
  if optim.schedule == "cosine":  # optax.warmup_cosine_decay_schedule(0, peak, warmup, max(steps, warmup + 1), final)
    alpha = 0.0 if peak == 0.0 else final / peak
    decay = max(steps, warmup + 1) - warmup
    numbers.update(decay_steps=float(decay), alpha=alpha, one_minus_alpha=1 - alpha,
                   pi_over_decay_steps=float(np.float32(np.pi) * np.float32(_reciprocal(decay))))
  elif optim.schedule == "linear":  # optax.linear_schedule(peak, final, max(steps - warmup, 1)) after the warm-up
    decay = max(steps - warmup, 1)
    numbers.update(decay_steps=float(decay), inv_decay_steps=_reciprocal(decay), final=final,
                   peak_minus_final=peak - final)
  return numbers


def _reciprocal(steps: int) -> float:
  """1 / steps rounded to float32. XLA compiles optax's division by a constant step count as a
  multiplication by its reciprocal (and folds pi into it for the cosine): given these products, the
  schedule with traced numbers computes what optax's compiled schedule does, bit for bit."""
  return float(np.float32(1) / np.float32(steps)) if steps else 0.0


def schedule(kind: str, hyper: Hyper) -> optax.Schedule:
  """count -> learning rate from `schedule_numbers` (plain floats or traced scalars): a linear warm-up
  from 0 over h["warmup"] steps (none when 0), then the decay of `kind`."""
  def warm_up(count):  # optax.linear_schedule(0, peak, warmup)
    frac = 1 - jnp.clip(count, 0, hyper["warmup"]) * hyper["inv_warmup"]
    return (-hyper["peak"]) * frac ** 1 + hyper["peak"]

  def decay(count):
    if kind == "cosine":  # optax.cosine_decay_schedule(peak, decay_steps, alpha)
      count = jnp.minimum(count, hyper["decay_steps"])
      cosine = 0.5 * (1 + jnp.cos(count * hyper["pi_over_decay_steps"]))
      return hyper["peak"] * (hyper["one_minus_alpha"] * cosine ** 1.0 + hyper["alpha"])
    if kind == "linear":  # optax.linear_schedule(peak, final, decay_steps)
      frac = 1 - jnp.clip(count, 0, hyper["decay_steps"]) * hyper["inv_decay_steps"]
      return hyper["peak_minus_final"] * frac ** 1 + hyper["final"]
    return hyper["peak"]

  def lr(count):  # optax.join_schedules([warm_up, decay], [warmup])
    return jnp.where(count < hyper["warmup"], warm_up(count), decay(count - hyper["warmup"]))

  return lr


def make_optimizer(stage) -> Optimizer:
  """AdamW with the stage's schedule, after clipping by the global norm when optim.grad_clip is set."""
  optim = stage.optim
  hyper = schedule_numbers(stage)
  clip, weight_decay = float(optim.grad_clip or 0.0), float(optim.weight_decay)
  if clip:
    hyper["grad_clip"] = clip
  if weight_decay:  # a zero decay stays compiled in: optax then skips the term altogether
    hyper["weight_decay"] = weight_decay
  kind, b1, b2 = optim.schedule, float(optim.b1), float(optim.b2)

  def build(hyper: Hyper) -> optax.GradientTransformation:
    adamw = optax.adamw(schedule(kind, hyper),
                        b1=b1,
                        b2=b2,
                        weight_decay=hyper["weight_decay"] if weight_decay else 0.0)
    return optax.chain(optax.clip_by_global_norm(hyper["grad_clip"]), adamw) if clip else optax.chain(adamw)

  return Optimizer(build, hyper)


def wrap_transformation(tx, outer):
  """`outer(tx)`, keeping an Optimizer's numbers apart."""
  return tx.wrap(outer) if isinstance(tx, Optimizer) else outer(tx)


def trainable_mask(params, patterns) -> dict:
  """A pytree of bools: True where a parameter's path ('group/path/leaf') matches one of the regexes."""
  compiled = [re.compile(p) for p in patterns]
  flat = traverse_util.flatten_dict(params, sep="/")
  return traverse_util.unflatten_dict({k: any(p.search(k) for p in compiled) for k in flat}, sep="/")


def with_frozen(tx, params, patterns) -> tuple:
  """(tx applied to the parameters matching `patterns`, zero updates and no state for the rest; the mask).
  An `Optimizer` stays one (its numbers still arguments of the step)."""
  mask = trainable_mask(params, patterns)
  if not any(jax.tree.leaves(mask)):
    raise ValueError(f"no parameter matches the trainable patterns {list(patterns)}")
  labels = jax.tree.map(lambda t: "train" if t else "freeze", mask)
  return wrap_transformation(
      tx, lambda inner: optax.partition({
          "train": inner,
          "freeze": optax.set_to_zero()
      }, labels)), mask
