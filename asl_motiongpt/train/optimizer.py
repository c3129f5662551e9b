"""The one optimizer builder: every setting from a resolved stage config, freezing as data.

  tx = make_optimizer(stage)                        # AdamW + schedule + clipping, from stage.optim / stage.lr
  tx, mask = with_frozen(tx, params, patterns)      # only params whose path matches a regex train

Schedules (after a linear warm-up from 0 over optim.warmup_steps): cosine or linear decay to
lr * final_lr_fraction at the last step, or constant. Frozen parameters go through
optax.set_to_zero inside optax.partition, so they carry no Adam state at all (big_vision style:
which parameters train is a list of regexes over 'group/path/leaf' names, not code).
"""
from __future__ import annotations

import re

import jax
import optax
from flax import traverse_util

SCHEDULES = ("cosine", "linear", "constant")


def learning_rate(stage) -> optax.Schedule:
  o, peak, steps = stage.optim, float(stage.lr), max(int(stage.steps), 1)
  warmup = int(o.warmup_steps)
  final = peak * float(o.final_lr_fraction)
  if o.schedule not in SCHEDULES:
    raise ValueError(f"stage {stage.name!r}: optim.schedule {o.schedule!r}; choose one of {SCHEDULES}")
  if o.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(steps, warmup + 1), end_value=final)
  decay = (optax.linear_schedule(peak, final, max(steps - warmup, 1)) if o.schedule == "linear"
           else optax.constant_schedule(peak))
  if not warmup:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup])


def make_optimizer(stage) -> optax.GradientTransformation:
  o = stage.optim
  parts = [optax.clip_by_global_norm(float(o.grad_clip))] if o.grad_clip else []
  parts.append(optax.adamw(learning_rate(stage), b1=float(o.b1), b2=float(o.b2), weight_decay=float(o.weight_decay)))
  return optax.chain(*parts)


def trainable_mask(params, patterns) -> dict:
  """A pytree of bools: True where a parameter's path ('group/path/leaf') matches one of the regexes."""
  compiled = [re.compile(p) for p in patterns]
  flat = traverse_util.flatten_dict(params, sep="/")
  return traverse_util.unflatten_dict({k: any(p.search(k) for p in compiled) for k in flat}, sep="/")


def with_frozen(tx: optax.GradientTransformation, params, patterns) -> tuple[optax.GradientTransformation, dict]:
  """(tx applied to the parameters matching `patterns`, zero updates and no state for the rest; the mask)."""
  mask = trainable_mask(params, patterns)
  if not any(jax.tree.leaves(mask)):
    raise ValueError(f"no parameter matches the trainable patterns {list(patterns)}")
  labels = jax.tree.map(lambda t: "train" if t else "freeze", mask)
  return optax.partition({"train": tx, "freeze": optax.set_to_zero()}, labels), mask
