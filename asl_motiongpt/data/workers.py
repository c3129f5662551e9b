"""Optional Grain worker processes for any of our pipelines."""
from __future__ import annotations

import grain


def with_workers(ds: grain.IterDataset, worker_count: int) -> grain.IterDataset:
  """`worker_count` > 0: elements are produced in that many processes (`mp_prefetch`). The result is
  deterministic and checkpointable, but in a different order from worker_count = 0 (each worker
  takes its own slice): resume a run with the worker count it started with."""
  if worker_count <= 0:
    return ds
  from absl import flags
  if not flags.FLAGS.is_parsed():
    # Grain's workers read absl flags; our entry point parses its own arguments (argparse), so the
    # flags keep their defaults unless an absl app already parsed them
    flags.FLAGS.mark_as_parsed()
  return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
