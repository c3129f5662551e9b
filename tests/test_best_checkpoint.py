"""The training loop keeps the parameters at the lowest held-out loss, stops early when patience runs
out, and a run interrupted in between resumes with the same best record (the loop of every stage,
with a one-parameter model whose held-out losses are scripted)."""
from types import SimpleNamespace

import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asl_motiongpt import checkpoints as ckpt
from asl_motiongpt.train import loop
from asl_motiongpt.train.hooks import HeldOutEvaluation
from asl_motiongpt.train.logging_utils import MetricsWriter

# held-out loss by step (eval every 2 steps): best at step 4; 6, 8, 10 bring nothing better
HELD_OUT = {0: 5.0, 2: 4.0, 4: 3.0, 6: 3.5, 8: 3.2, 10: 3.9, 12: 1.0, 14: 2.0}


def _step(ts, batch):
  params = {"w": ts["params"]["w"] - 0.1}
  return {"step": ts["step"] + 1, "params": params}, {"loss": params["w"].sum() + batch * 0.0}


# a translation score by step (higher is better): 6 is the best until 12 (8 only ties it: not better),
# the loss's best (4) is not; 12 comes exactly when patience 3 would run out, and is better
BLEU = {0: 0.0, 2: 1.5, 4: 3.0, 6: 7.5, 8: 7.5, 10: 2.0, 12: 9.0, 14: 4.0}


def _run(workdir, stop_after_steps=0, best_metric="loss"):
  checkpoints = ckpt.StageCheckpoints(str(workdir), "stage", keep=10)
  data_iter = iter(grain.MapDataset.range(1000).map(lambda i: np.float32(i)).to_iter_dataset())
  start = lambda: {"step": jnp.zeros((), jnp.int32), "params": {"w": jnp.ones((3,), jnp.float32)}}
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), start())
  ts, meta = loop.restore_or_init(checkpoints, abstract, start, data_iter, "stage")
  writer = MetricsWriter(str(workdir / "stage" / "logs"))
  held_out = HeldOutEvaluation("stage", lambda state: {"loss": HELD_OUT[int(state["step"])],
                                                       "bleu4": BLEU[int(state["step"])]}, 2, writer,
                               keep_best=ckpt.BestCheckpoint(str(workdir), "stage"), best=(meta or {}).get("best"),
                               patience=3, metric=best_metric, maximize=best_metric != "loss")
  program = loop.Program("stage", jax.jit(_step), data_iter, checkpoints, writer, meta={}, units_per_step=1,
                         unit="examples", hooks=[held_out])
  out = loop.run(program, ts, loop.TrainSettings(steps=14, log_every=1, checkpoint_every=3,
                                                 stop_after_steps=stop_after_steps))
  writer.close()
  return SimpleNamespace(state=out.state, stopped=out.stopped, early_stopped=out.early_stopped, best=held_out.best)


def test_best_parameters_kept_early_stop_and_exact_resume(tmp_path):
  straight = _run(tmp_path / "straight")
  assert straight.best == {"step": 4, "loss": 3.0}
  assert straight.early_stopped == 10 and int(straight.state["step"]) == 10  # 3 evaluations after the best
  best = ckpt.restore_params(str(tmp_path / "straight"), "stage", checkpoint="best")
  np.testing.assert_allclose(best["w"], 1.0 - 0.1 * 4, rtol=1e-6)
  last = ckpt.restore_params(str(tmp_path / "straight"), "stage", checkpoint="last")
  np.testing.assert_allclose(last["w"], 1.0 - 0.1 * 10, atol=1e-6)
  assert ckpt.final_checkpoint(str(tmp_path / "straight"), "stage", "best").endswith("best/4")
  with pytest.raises(FileNotFoundError, match="no checkpoint '7'.*kept"):
    ckpt.final_checkpoint(str(tmp_path / "straight"), "stage", 7)
  # interrupted after step 5 (the checkpoint there carries the best record of step 4), then resumed:
  # without the record, step 6's 3.5 would become the best and the stage would run on
  paused = _run(tmp_path / "resumed", stop_after_steps=5)
  assert paused.stopped == "stop_after_steps" and paused.best == {"step": 4, "loss": 3.0}
  resumed = _run(tmp_path / "resumed")
  assert resumed.best == straight.best and resumed.early_stopped == 10
  np.testing.assert_array_equal(ckpt.restore_params(str(tmp_path / "resumed"), "stage", checkpoint="best")["w"],
                                best["w"])


def test_best_by_a_score_where_higher_is_better(tmp_path):
  """train.best_metric=bleu4: the highest score is the best (a tie is not better), whatever the loss does."""
  paused = _run(tmp_path, stop_after_steps=9, best_metric="bleu4")
  assert paused.best == {"step": 6, "bleu4": 7.5}
  np.testing.assert_allclose(ckpt.restore_params(str(tmp_path), "stage", checkpoint="best")["w"], 1.0 - 0.1 * 6,
                             rtol=1e-6)
  out = _run(tmp_path, best_metric="bleu4")  # resumed with the record of step 6
  assert out.best == {"step": 12, "bleu4": 9.0} and out.early_stopped is None and int(out.state["step"]) == 14
  np.testing.assert_allclose(ckpt.restore_params(str(tmp_path), "stage", checkpoint="best")["w"], 1.0 - 0.1 * 12,
                             rtol=1e-6)


def test_best_is_refused_clearly_when_a_stage_kept_none(tmp_path):
  checkpoints = ckpt.StageCheckpoints(str(tmp_path), "stage")
  checkpoints.save(1, {"params": {"w": np.ones(2, np.float32)}}, None, {})
  checkpoints.close()
  with pytest.raises(FileNotFoundError, match="kept no best checkpoint"):
    ckpt.restore_params(str(tmp_path), "stage", checkpoint="best")


def test_a_stage_and_its_best_checkpoint_save_through_barriers_of_their_own(tmp_path):
  """Orbax names a save's barriers after its step: the two managers of one stage, saving the same step
  at once on a multi-process job, must not meet in one barrier (they did: a hung pod job)."""
  from asl_motiongpt.checkpoints import BestCheckpoint, StageCheckpoints
  prefixes = [manager.manager._multiprocessing_options.barrier_sync_key_prefix  # Orbax keeps it here
              for manager in (StageCheckpoints(str(tmp_path), "fuse"), BestCheckpoint(str(tmp_path), "fuse"),
                              StageCheckpoints(str(tmp_path), "align"))]
  assert len(set(prefixes)) == 3 and None not in prefixes
