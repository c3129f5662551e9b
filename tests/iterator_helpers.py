"""Shared check for Grain iterators: a restored iterator continues with identical batches."""
import numpy as np


def assert_batches_equal(got: dict, want: dict) -> None:
  assert set(got) == set(want)
  for key in want:
    np.testing.assert_array_equal(got[key], want[key])


def assert_restores_identically(make_dataset, it=None, skip: int = 3, count: int = 3) -> None:
  """Takes `skip` batches (from `it` if given, else a fresh iterator), saves the state, takes
  `count` more; a fresh iterator set to that state yields the same `count` batches."""
  if it is None:
    it = iter(make_dataset())
    for _ in range(skip):
      next(it)
  state = it.get_state()
  want = [next(it) for _ in range(count)]
  again = iter(make_dataset())
  again.set_state(state)
  for w in want:
    assert_batches_equal(next(again), w)
