"""SIGTERM / SIGINT: finish the current step, save, exit cleanly (a preempted TPU VM or a SLURM
job near its time limit gets SIGTERM first)."""
from __future__ import annotations

import signal


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

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    return False
