"""Which elements of a global stream one process reads, so that the global batch does not depend on
how many processes read it.

The global stream (shuffled, repeated, randomly mapped: Grain derives each element's generator from
its position) is cut into global batches of `rows * process_count` consecutive elements; process p
takes rows [p * rows, (p + 1) * rows) of each. Every process computes only its own elements (a
MapDataset is lazy), and 2 processes x 4 devices see exactly the batches 1 process x 8 devices sees:
a multi-host run can be checked against a single-host one, and a job resumed on a different number
of hosts continues the same data order. (Filtered elements, e.g. text-only records in a pose
pipeline, make the split exact only where a corpus has none; packing packs each process' rows.)
"""
from __future__ import annotations

import grain


class ProcessRows(grain.MapDataset):
  def __init__(self, parent: grain.MapDataset, rows: int, process_index: int, process_count: int):
    super().__init__(parent)
    if not 0 <= process_index < process_count:
      raise ValueError(f"process {process_index} of {process_count}")
    self.rows, self.process_index, self.process_count = rows, process_index, process_count
    self.global_rows = rows * process_count

  def __len__(self) -> int:
    return len(self._parent) // self.global_rows * self.rows

  def _parent_index(self, index: int) -> int:
    batch, row = divmod(index, self.rows)
    return batch * self.global_rows + self.process_index * self.rows + row

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    return self._parent[self._parent_index(index)]

  def __str__(self) -> str:
    return f"ProcessRows(rows={self.rows}, process={self.process_index}/{self.process_count})"


def process_rows(ds: grain.MapDataset, rows: int, process_index: int, process_count: int) -> grain.MapDataset:
  """`ds` itself on one process (nothing changes there), else this process' rows of each global batch."""
  return ds if process_count == 1 else ProcessRows(ds, rows, process_index, process_count)
