"""How our pipelines use the host: Grain's reading threads, and optional worker processes."""
from __future__ import annotations

import functools
import os
import threading
import time

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
  return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count),
                        worker_init_fn=functools.partial(exit_with_parent, os.getpid()))


def exit_with_parent(parent_pid: int, worker_index: int = 0, worker_count: int = 0, poll_seconds: float = 1.0):
  """Runs first in each Grain worker: a watcher thread ends the worker once the training process is
  gone. A `kill -9` of `train` gives its workers no chance to be told; without this they lived on,
  orphaned (two of ~235 MB each still there 30 minutes later). The worker's own parent is watched too,
  for start methods where it is not the training process."""
  first_parent = os.getppid()

  def watch():
    while True:
      try:
        os.kill(parent_pid, 0)  # raises once the training process no longer exists
      except ProcessLookupError:
        os._exit(0)
      except PermissionError:
        pass  # the pid exists (someone else's): keep watching the parent below
      if os.getppid() != first_parent:
        os._exit(0)
      time.sleep(poll_seconds)

  threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
