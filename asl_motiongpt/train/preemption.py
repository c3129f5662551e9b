"""SIGTERM / SIGINT: finish the current step, save, exit cleanly (a preempted TPU VM or a SLURM
job near its time limit gets SIGTERM first).

On several processes a signal may reach one host only; if that host alone stopped, the others would
wait for it in the next step's collectives. `agreed()` makes the decision a collective one: after
every step each process says whether it was signalled, and all stop after the same step when any
was (then they all save that step's checkpoint together).
"""
from __future__ import annotations

import signal

import jax
import numpy as np


class StopRequested:
  def __init__(self):
    self.signal: int | None = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass
    return self

  def _handle(self, signum, frame):
    self.signal = signum

  def __bool__(self) -> bool:
    return self.signal is not None

  def agreed(self) -> bool:
    """True on every process when any process was signalled (one tiny all-gather per call)."""
    if jax.process_count() == 1:
      return bool(self)
    from jax.experimental import multihost_utils
    flags = multihost_utils.process_allgather(np.asarray(self.signal or 0, np.int32))
    signalled = [int(f) for f in np.asarray(flags).reshape(-1) if int(f)]
    if signalled and self.signal is None:
      self.signal = signalled[0]  # what another process received
    return bool(signalled)

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    return False
