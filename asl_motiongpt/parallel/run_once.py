"""Programs that run once (parameter and optimizer-state initialisation): compiled quickly, not well.

    params = run_once(lambda: model.init(key, x)["params"], out_shardings=shardings)

A random initialisation of a model is one big program of threefry bits and `erfinv`s that runs a
single time, yet XLA:CPU spends as long optimising it as the train step (measured on 2 cores: a
2-layer LLM with its AdamW state, 2.0 s to compile at the default level, 1.1 s at level 0; it then
runs in 33 ms instead of 13). On CPU these programs are compiled at backend optimisation level 0.

Every initialisation goes through here so that all of them round alike: a differently optimised
program may differ in the last bit of a float (as eager and compiled initialisers do), and a
stage's start, an `untrained()` baseline and a sharded start must be the same numbers.
On GPU and TPU the default options are kept (their compilers' options differ; init compiles are a
small part of a job there).
"""
from __future__ import annotations

from typing import Any, Callable

import jax

from asl_motiongpt.parallel import target

_FAST_COMPILE_ON_CPU = {"xla_backend_optimization_level": 0}


def run_once(fn: Callable[..., Any], *args, out_shardings=None):
  """fn(*args) compiled with jax.jit (the results placed in `out_shardings` when given) and run."""
  jitted = jax.jit(fn) if out_shardings is None else jax.jit(fn, out_shardings=out_shardings)
  if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
    return jitted(*args)  # inside another trace (eval_shape, an outer jit): part of that program
  lowered = jitted.lower(*args)
  options = _FAST_COMPILE_ON_CPU if target.platform() == "cpu" else None
  return lowered.compile(options)(*args)
