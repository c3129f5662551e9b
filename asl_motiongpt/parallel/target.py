"""The platform programs are compiled for, which is not always the one this process runs on.

Kernel choices depend on it (CPU-only bfloat16 dots in `llm/dense.py`, cuDNN attention in
`llm/transformer.py`, the fast-compile options of `parallel/run_once.py`). A dry run for a TPU slice
runs on this machine's CPU backend but compiles for TPU devices: `compiling_for("tpu")` makes every
such choice follow the planned devices, so the plan holds the program the pod would run.
"""
from __future__ import annotations

import contextlib

import jax

_planned: list[str] = []


def platform() -> str:
  """The planned platform inside `compiling_for`, else JAX's default backend."""
  return _planned[-1] if _planned else jax.default_backend()


@contextlib.contextmanager
def compiling_for(planned_platform: str):
  _planned.append(planned_platform)
  try:
    yield
  finally:
    _planned.pop()
