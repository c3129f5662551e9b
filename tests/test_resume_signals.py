"""Crash and preemption of a real training process: kill -9 and SIGTERM mid-stage, then the same
command again; the result equals an uninterrupted run, step for step. And a corrupted newest
checkpoint falls back to the previous one."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from asl_motiongpt.data.prepare import PrepareOptions, prepare

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 40


@pytest.fixture(scope="module")
def prepared(sample_corpus, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("prepared_resume"))
  prepare(PrepareOptions(corpus="phoenix14t", src=sample_corpus["phoenix14t"], out=out))
  return out


def _command(workdir, prepared):
  return [sys.executable, "-m", "asl_motiongpt", "train", "--config", os.path.join(REPO, "configs", "tokenizer.py"),
          "--workdir", str(workdir), f"--config.data.prepared={prepared}", f"--config.train.steps={STEPS}",
          "--config.train.checkpoint_every=5", "--config.train.log_every=1", "--config.model.width=32",
          "--config.model.depth=2", "--config.model.code_dim=16", "--config.model.codebook_size=64",
          "--config.data.batch_size=8", "--config.data.window=32", "--config.optim.warmup_steps=5",
          "--config.data.eval_split=", "--config.train.write_code_cache=false", "--config.train.keep_checkpoints=10"]


def _losses(workdir):
  out = {}
  for line in open(os.path.join(workdir, "tokenizer", "logs", "metrics.jsonl")):
    entry = json.loads(line)
    out[entry["step"]] = entry["loss"]  # a resumed run logs the redone steps again: the last wins
  return out


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
def straight(prepared, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("straight")
  subprocess.run(_command(workdir, prepared), check=True, capture_output=True, timeout=600)
  return _losses(workdir)


def test_kill_9_then_rerun_equals_uninterrupted(prepared, straight, tmp_path):
  proc = _run_until_checkpoint(tmp_path, prepared, 15)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  result = subprocess.run(_command(tmp_path, prepared), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "resumed from step" in result.stdout
  resumed = _losses(tmp_path)
  assert set(resumed) == set(straight)
  assert all(resumed[s] == straight[s] for s in straight)  # bitwise: same data order, same state


def test_sigterm_saves_exits_cleanly_and_resumes(prepared, straight, tmp_path):
  proc = _run_until_checkpoint(tmp_path, prepared, 10)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-2000:]
  assert "stopped (signal 15)" in out
  result = subprocess.run(_command(tmp_path, prepared), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  resumed = _losses(tmp_path)
  assert all(resumed[s] == straight[s] for s in straight)


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
