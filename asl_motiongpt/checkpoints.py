"""Orbax checkpoints of one stage: Composite(state, data_iter, meta) under <workdir>/<stage>/.

Saves are asynchronous; `close()` waits for them. Orbax writes each step to a temporary folder and
renames it when complete, so a crash mid-save never corrupts an existing checkpoint; on restore,
a step that fails to load (truncated or corrupted files) is reported and the previous one is tried.
Orbax silently skips a step that already exists, so we never rely on it overwriting.
Workdirs may be local (made absolute) or `gs://` (Orbax commits a step there with a marker file).
"""
from __future__ import annotations

import logging
import time

import grain
import jax
import orbax.checkpoint as ocp

from asl_motiongpt import storage

log = logging.getLogger(__name__)


def _barriers_of(name: str) -> ocp.options.MultiprocessingOptions:
  """Orbax names the barriers of a save after its step (`async_write_complete.<step>`): a stage's
  checkpoint and its best checkpoint saved at the same step from two managers at once met in one
  barrier on a multi-process job ("Barrier ... is already ongoing", then a timeout: seen in
  tests/test_multiprocess_chain.py). Each manager's barriers carry its own name."""
  return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)


class StageCheckpoints:
  def __init__(self, workdir: str, stage: str, keep: int = 3):
    self.directory = storage.join(workdir, stage)
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                             multiprocessing_options=_barriers_of(stage)))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_iter, meta: dict) -> bool:
    if step in self.manager.all_steps():
      return False
    args = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
    if data_iter is not None:
      args["data_iter"] = grain.checkpoint.CheckpointSave(data_iter)
    return self.manager.save(step, args=ocp.args.Composite(**args), force=True)

  def restore(self, abstract_state, data_iter):
    """(step, state, meta) of the newest step that loads, or None when there is none."""
    for step in sorted(self.manager.all_steps(), reverse=True):
      args = {"state": ocp.args.StandardRestore(abstract_state), "meta": ocp.args.JsonRestore()}
      if data_iter is not None:
        args["data_iter"] = grain.checkpoint.CheckpointRestore(data_iter)
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(**args))
      except Exception as e:  # corrupted or truncated: fall back to the previous step
        log.warning("checkpoint %s/%d could not be restored (%s: %s); trying the previous one",
                    self.directory, step, type(e).__name__, str(e)[:200])
        # Moved aside, not deleted (nothing is lost), and out of Orbax's sight so that training
        # can save this step again when it gets there.
        aside = storage.join(self.directory, f"unreadable_step_{step}_{int(time.time())}")
        storage.path(storage.join(self.directory, str(step))).rename(aside)
        self.manager.reload()
        print(f"warning: checkpoint step {step} in {self.directory} is unreadable ({type(e).__name__}); "
              f"moved to {aside}; falling back to an earlier one")
        continue
      return step, restored["state"], restored["meta"]
    return None

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


class BestCheckpoint:
  """<workdir>/<stage>/best/<step>/: the parameters where the held-out loss was lowest so far (one
  kept; Orbax commits the new one before removing the old, so a crash leaves one that loads). Same
  layout as a stage checkpoint (state/params), so `restore_params(..., checkpoint="best")` reads it."""
  DIRECTORY = "best"

  def __init__(self, workdir: str, stage: str):
    self.directory = storage.join(workdir, stage, self.DIRECTORY)
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                                             multiprocessing_options=_barriers_of(f"{stage}_best")))

  def save(self, step: int, params, record: dict) -> bool:
    if step in self.manager.all_steps():
      return False
    return self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave({"params": params}),
                                                           meta=ocp.args.JsonSave(record)), force=True)

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def final_checkpoint(workdir: str, stage: str, checkpoint: str | int = "last") -> str:
  """The folder of a stage's checkpoint that a following stage, eval or export starts from:
  "last" (the newest), "best" (the best held-out evaluation, see BestCheckpoint) or a step number."""
  which = str(checkpoint)
  if which == "best":
    step = _newest_step(storage.join(workdir, stage, BestCheckpoint.DIRECTORY))
    if step is None:
      raise FileNotFoundError(f"stage {stage!r} in {storage.absolute(workdir)} kept no best checkpoint (it keeps "
                              "one with train.keep_best=1 and a held-out loss: train.eval_every > 0, data.eval_split)")
    return storage.join(workdir, stage, BestCheckpoint.DIRECTORY, str(step))
  checkpoints = StageCheckpoints(workdir, stage)
  steps = checkpoints.manager.all_steps()
  checkpoints.close()
  if not steps:
    raise FileNotFoundError(f"stage {stage!r} has no checkpoint in {storage.absolute(workdir)}; train it first "
                            "(`asl-motiongpt train` with the same config and workdir)")
  if which == "last":
    return storage.join(workdir, stage, str(max(steps)))
  if not which.isdigit() or int(which) not in steps:
    raise FileNotFoundError(f"stage {stage!r} in {storage.absolute(workdir)}: no checkpoint {which!r}; use last, "
                            f"best or one of the steps kept: {sorted(steps)}")
  return storage.join(workdir, stage, which)


def _newest_step(directory: str) -> int | None:
  if not storage.exists(directory):
    return None
  manager = ocp.CheckpointManager(directory)  # it exists: nothing is created
  step = manager.latest_step()
  manager.close()
  return step


def _numpy_leaf(leaf_metadata) -> "ocp.RestoreArgs":
  import numpy as np
  return ocp.RestoreArgs(restore_type=np.ndarray, dtype=leaf_metadata.dtype)


def _restore_on_host(path: str, subtree: str | None = None):
  """A saved tree (or one top-level subtree of it) as numpy arrays, whatever topology saved it (Orbax
  refuses to restore without a target when the process/device layout changed)."""
  metadata = ocp.PyTreeCheckpointer().metadata(path).item_metadata.tree
  if subtree is not None:
    metadata = {subtree: metadata[subtree]}
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), metadata)
  restored = ocp.PyTreeCheckpointer().restore(
      path, args=ocp.args.PyTreeRestore(item=target, restore_args=jax.tree.map(_numpy_leaf, metadata),
                                        partial_restore=subtree is not None))
  return restored if subtree is None else restored[subtree]


def restore_params(workdir: str, stage: str, like=None, checkpoint: str | int = "last") -> dict:
  """The parameters of a stage's checkpoint (params only: `init_from`, eval, export); `checkpoint`:
  last, best or a step (final_checkpoint).
  `like`: a pytree of arrays or ShapeDtypeStructs fixing the dtypes; where its leaves carry a
  sharding, each is restored straight into it (each process reads only its shards, nothing is whole
  on one host), else as a numpy array. Without `like`: numpy arrays, as saved."""
  import numpy as np
  path = storage.join(final_checkpoint(workdir, stage, checkpoint), "state")
  if like is None:
    return _restore_on_host(path, "params")

  def restore_arg(leaf):
    sharding = getattr(leaf, "sharding", None)
    if sharding is None:
      return ocp.RestoreArgs(restore_type=np.ndarray, dtype=leaf.dtype)
    return ocp.ArrayRestoreArgs(sharding=sharding, global_shape=leaf.shape, dtype=leaf.dtype)

  target = {"params": jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), like)}
  restore_args = {"params": jax.tree.map(restore_arg, like)}
  restored = ocp.PyTreeCheckpointer().restore(  # the params subtree only: the optimizer state stays on disk
      path, args=ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=True))
  return restored["params"]


def restore_state(workdir: str, stage: str) -> dict:
  """The whole train state of a stage's newest checkpoint, as numpy arrays (any saving topology)."""
  return _restore_on_host(storage.join(final_checkpoint(workdir, stage), "state"))
