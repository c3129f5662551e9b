"""How our pipelines use the host: Grain's reading threads, and optional worker processes."""
from __future__ import annotations

import os

import grain


def read_options() -> grain.ReadOptions:
  """Grain's prefetch threads, no more than the host has cores. Its default (16 threads) fights the
  training loop for the GIL on a small host: the tiny chain's LLM stage ran at 3.97 steps/s with 16
  threads on 2 cores and 5.83 with one (same losses: elements are computed by index, not by thread).
  ASL_READ_THREADS overrides."""
  threads = int(os.environ.get("ASL_READ_THREADS", min(16, os.cpu_count() or 1)))
  return grain.ReadOptions(num_threads=threads)


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
