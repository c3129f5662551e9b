"""Shuffled epochs, repeated forever: what `MapDataset.shuffle().repeat()` gives, at a fraction of the
cost per element.

Grain's shuffle computes every element's position with a keyed permutation (index_shuffle), ~0.1 ms
per element on these CPUs: a tenth of the samples py-spy took of tests/test_chain.py, in the prefetch
threads (off the critical path, but CPU a 2-core machine shares; user time 67 s -> 63 s). Here each
epoch's permutation is one numpy array, made once (seeded by the seed and the epoch, so any process
and any resumed iterator computes the same order) and kept for the epoch being read and the one
before (Grain's prefetch threads may straddle the boundary).
"""
from __future__ import annotations

import sys
import threading

import grain
import numpy as np


class EpochShuffle(grain.MapDataset):
  """parent shuffled anew each epoch, endlessly: element i is parent[permutation(i // n)[i % n]]."""

  def __init__(self, parent: grain.MapDataset, seed: int):
    super().__init__(parent)
    self._seed, self._n = int(seed), len(parent)
    self._epochs: dict[int, np.ndarray] = {}
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return sys.maxsize if self._n else 0

  def __str__(self) -> str:
    return f"EpochShuffle(seed={self._seed})"

  def _permutation(self, epoch: int) -> np.ndarray:
    with self._lock:
      order = self._epochs.get(epoch)
      if order is None:
        order = np.random.default_rng([self._seed, epoch]).permutation(self._n)
        self._epochs = {e: o for e, o in self._epochs.items() if e == epoch - 1}
        self._epochs[epoch] = order
      return order

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    epoch, position = divmod(index, self._n)
    return self._parent[int(self._permutation(epoch)[position])]

  # Grain sends datasets to its worker processes by pickling: the lock and the cache stay behind.
  def __getstate__(self):
    state = self.__dict__.copy()
    state["_lock"], state["_epochs"] = None, {}
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()
