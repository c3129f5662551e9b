"""Multi-host start-up: one call at the top of every entry point.

  init_runtime()   # TPU pods and SLURM: automatic; elsewhere set ASL_COORDINATOR=host:port,
                   # ASL_NUM_PROCESSES, ASL_PROCESS_ID (or pass them), e.g. for plain GPU clusters.

With a single process and nothing set it does nothing. A peer that never arrives fails after
`timeout_s` with a message saying which coordinator and how many processes were expected.
Also turns on the persistent compilation cache (`enable_compile_cache`: ASL_COMPILE_CACHE, default
~/.cache/asl_motiongpt/xla), which the CLI turns on for every command that compiles.
"""
from __future__ import annotations

import logging
import os

import jax

log = logging.getLogger(__name__)


def _in_slurm_job() -> bool:
  return "SLURM_JOB_ID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1


def _on_tpu_pod() -> bool:
  return "TPU_WORKER_HOSTNAMES" in os.environ or "MEGASCALE_COORDINATOR_ADDRESS" in os.environ


def init_runtime(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
                 local_device_ids=None, timeout_s: int = 300, compile_cache: str | None = None) -> None:
  coordinator = coordinator or os.environ.get("ASL_COORDINATOR")
  num_processes = num_processes or (int(os.environ["ASL_NUM_PROCESSES"]) if "ASL_NUM_PROCESSES" in os.environ else None)
  if process_id is None and "ASL_PROCESS_ID" in os.environ:
    process_id = int(os.environ["ASL_PROCESS_ID"])
  if jax.config.jax_platforms in (None, "", "cpu") and (coordinator or _in_slurm_job()):
    # CPU processes need a collectives implementation to talk to each other.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if coordinator or _in_slurm_job() or _on_tpu_pod():
    kwargs = dict(initialization_timeout=timeout_s)
    if coordinator:
      kwargs.update(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    if local_device_ids is not None:
      kwargs["local_device_ids"] = local_device_ids
    try:
      jax.distributed.initialize(**kwargs)
    except Exception as e:
      raise RuntimeError(
          f"jax.distributed.initialize failed (coordinator={coordinator or 'auto-detected'}, "
          f"processes={num_processes or 'auto'}, this process={process_id if process_id is not None else 'auto'}, "
          f"timeout {timeout_s}s): {e}. Is every process started, and can each reach the coordinator?") from e
    log.info("process %d of %d, %d local / %d global devices", jax.process_index(), jax.process_count(),
             jax.local_device_count(), jax.device_count())
  enable_compile_cache(compile_cache)


def enable_compile_cache(cache: str | None = None) -> None:
  """XLA's persistent compilation cache in `cache` (else ASL_COMPILE_CACHE, else
  ~/.cache/asl_motiongpt/xla; ASL_COMPILE_CACHE="" turns it off): a program compiled by one command
  (train, eval, generate, demo, ablate) is loaded, not compiled, by the next one that needs it."""
  cache = cache or os.environ.get("ASL_COMPILE_CACHE", os.path.expanduser("~/.cache/asl_motiongpt/xla"))
  if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    # programs that compile faster than this are not worth a disk entry (tests lower it: many small ones)
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ.get("ASL_COMPILE_CACHE_MIN_SECS", "1.0")))


def is_main_process() -> bool:
  """Logging and file writes happen on process 0 only."""
  return jax.process_index() == 0


def print_once(*values, **kwargs) -> None:
  """print on process 0 only: a job of several processes reports its results once."""
  if is_main_process():
    print(*values, **kwargs)
