"""Crash and preemption of a real training process: kill -9 and SIGTERM mid-stage, then the same
command again; the result equals an uninterrupted run, step for step and in its final state
(parameters, optimizer, codebooks: the tokenizer stage here; an
LLM stage of a chain in a bucket: tests/test_bucket.py). And a corrupted newest checkpoint falls
back to the previous one."""
import os
import signal
import subprocess
import sys
import time

import pytest


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 40


def _command(workdir, prepared):
  return [sys.executable, "-m", "asl_motiongpt", "train", "--config", os.path.join(REPO, "configs", "tokenizer.py"),
          "--workdir", str(workdir), f"--config.data.prepared={prepared}", f"--config.stages.tokenizer.steps={STEPS}",
          "--config.train.checkpoint_every=5", "--config.train.log_every=1", "--config.stages.tokenizer.model.width=32",
          "--config.stages.tokenizer.model.depth=2", "--config.stages.tokenizer.model.code_dim=16", "--config.stages.tokenizer.model.codebook_size=64",
          "--config.stages.tokenizer.batch_size=8", "--config.stages.tokenizer.window=32", "--config.stages.tokenizer.optim.warmup_steps=5",
          "--config.data.eval_split=", "--config.stages.tokenizer.write_code_cache=false", "--config.train.keep_checkpoints=10"]


def _losses(workdir):
  from asl_motiongpt.train.logging_utils import read_metrics  # a resumed run logs redone steps again: the last wins
  return {step: m["loss"] for step, m in read_metrics(os.path.join(workdir, "tokenizer", "logs")).items()}


def _run_until_checkpoint(workdir, prepared, step):
  """Starts training and returns the process once checkpoint `step` is committed."""
  proc = subprocess.Popen(_command(workdir, prepared), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  marker = os.path.join(workdir, "tokenizer", str(step), "commit_success.txt")
  deadline = time.time() + 300
  while not os.path.exists(marker):
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    assert time.time() < deadline, "no checkpoint appeared"
    time.sleep(0.05)
  return proc


@pytest.fixture(scope="module")
def straight_run(prepared, tmp_path_factory):
  """The uninterrupted run: (its workdir, its loss at every step)."""
  workdir = tmp_path_factory.mktemp("straight")
  subprocess.run(_command(workdir, prepared), check=True, capture_output=True, timeout=600)
  return workdir, _losses(workdir)


@pytest.fixture
def straight(straight_run):
  return straight_run[1]


def test_kill_9_then_sigterm_then_rerun_equals_uninterrupted(prepared, straight_run, tmp_path):
  """A crash (kill -9 after checkpoint 10), then a preemption (SIGTERM after checkpoint 25: the step
  finishes, a checkpoint is saved, exit 0), then the same command to the end: every step's loss is
  bitwise the uninterrupted run's (same data order, same state)."""
  proc = _run_until_checkpoint(tmp_path, prepared, 10)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  proc = _run_until_checkpoint(tmp_path, prepared, 25)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-2000:]
  assert "resumed from step" in out and "stopped (signal 15)" in out
  result = subprocess.run(_command(tmp_path, prepared), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "resumed from step" in result.stdout
  straight_dir, straight = straight_run
  resumed = _losses(tmp_path)
  assert set(resumed) == set(straight) == set(range(1, STEPS + 1))
  assert all(resumed[s] == straight[s] for s in straight)
  # and the final state itself: parameters, optimizer moments, codebooks and their EMA statistics
  from asl_motiongpt.checkpoints import restore_state
  import numpy as np
  import jax
  jax.tree.map(np.testing.assert_array_equal, restore_state(str(tmp_path), "tokenizer"),
               restore_state(str(straight_dir), "tokenizer"))


def test_corrupted_newest_checkpoint_falls_back_to_the_previous(prepared, straight, tmp_path):
  proc = _run_until_checkpoint(tmp_path, prepared, 20)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  steps = sorted(int(d) for d in os.listdir(tmp_path / "tokenizer") if d.isdigit())
  newest = tmp_path / "tokenizer" / str(steps[-1]) / "state"
  for root, _, files in os.walk(newest):  # truncate every array file of the newest state
    for name in files:
      path = os.path.join(root, name)
      if os.path.getsize(path) > 64:
        with open(path, "r+b") as f:
          f.truncate(16)
  result = subprocess.run(_command(tmp_path, prepared), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"checkpoint step {steps[-1]}" in result.stdout and "falling back" in result.stdout
  assert f"resumed from step {steps[-2]}" in result.stdout
  resumed = _losses(tmp_path)
  assert all(resumed[s] == straight[s] for s in straight)
  assert any(d.startswith(f"unreadable_step_{steps[-1]}_") for d in os.listdir(tmp_path / "tokenizer"))
  # the step that was unreadable is saved anew when training passes it again
  assert os.path.exists(tmp_path / "tokenizer" / str(steps[-1]) / "commit_success.txt")
