"""`asl-motiongpt train` of a whole chain (tokenizer + two LLM stages) as 2 processes x 4 CPU devices,
joined by jax.distributed on localhost, with FSDP over all 8 devices (every parameter split across
the two processes): what a pod runs.

- the same chain as 1 process x 8 devices logs the same losses and ends with the same parameters;
- the last stage decodes held-out examples inside training (train.eval_decode) on the mesh spanning
  both processes, with the BLEU-4 that `eval` gives;
- `asl-motiongpt eval` as a 2-process job equals it as one process;
- SIGTERM to one process only: both processes stop after the same step, save one checkpoint and exit
  0; the same command again (through `launch/local_multiprocess.sh`, the documented path) resumes
  there and ends with the losses and parameters of the uninterrupted 1-process run (to float rounding;
  bitwise equality of a resumed run with an uninterrupted one on the same topology is
  tests/test_resume_signals.py's).
The tokenizer stage runs 2 steps: a longer VQ-VAE stage drifts apart between the two topologies
(cross-process sums add in another order, the last bit decides a nearest code, and dead-code resets
amplify it); the LLM stages do not.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import cpu_devices_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.path.dirname(sys.executable), "asl-motiongpt")
CONFIG = os.path.join(REPO, "configs", "strategies", "direct_alignment_fusion.py") + ":tiny"
STAGES = ("tokenizer", "align", "fuse")


def _overrides(prepared):
  # small where size does not matter here (compiles and steps on 2 cores): a one-block tokenizer, 96 tokens
  return [f"--config.data.prepared={prepared}", "--config.mesh.fsdp=8", "--config.mesh.data=1",
          "--config.stages.tokenizer.steps=2", "--config.stages.align.steps=16", "--config.stages.fuse.steps=4",
          "--config.stages.tokenizer.model.depth=1", "--config.stages.tokenizer.model.width=32",
          "--config.stages.tokenizer.model.code_dim=32", "--config.stages.tokenizer.model.codebook_size=64",
          "--config.data.max_len=96", "--config.train.log_every=1", "--config.train.eval_every=0",
          "--config.train.checkpoint_every=4"]


# The 2-process run's last stage also evaluates at its start and end, decoding 2 held-out examples on
# the mesh spanning both processes (the 1-process reference does not: compiling the decoding costs;
# the BLEU-4 is checked against `eval` of the same parameters instead).
HELD_OUT_DECODING = ["--config.stages.fuse.train.eval_every=4", "--config.stages.fuse.train.eval_decode=2",
                     "--config.stages.fuse.train.eval_batches=1"]


def _env(devices, process_id=None, port=None):
  env = dict(os.environ, XLA_FLAGS=cpu_devices_flags(devices), JAX_PLATFORMS="cpu")
  if process_id is not None:
    env.update(ASL_COORDINATOR=f"localhost:{port}", ASL_NUM_PROCESSES="2", ASL_PROCESS_ID=str(process_id))
  return env


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _two_processes(workdir, prepared):
  port = _free_port()
  return [subprocess.Popen([BIN, "train", "--config", CONFIG, "--workdir", str(workdir), *_overrides(prepared),
                            *HELD_OUT_DECODING],
                           env=_env(4, i, port), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for i in range(2)]


def _finish(procs):
  outs = []
  for p in procs:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    outs.append(out)
  return outs


def _held_out(workdir):
  from asl_motiongpt.train.logging_utils import read_metrics
  return read_metrics(os.path.join(workdir, "fuse", "logs"), "eval")


def _losses(workdir):
  from asl_motiongpt.train.logging_utils import read_metrics  # a resumed run logs redone steps again: the last wins
  return {stage: {step: m["loss"] for step, m in read_metrics(os.path.join(workdir, stage, "logs")).items()}
          for stage in STAGES}


def _final_params(workdir):
  from asl_motiongpt.checkpoints import restore_params
  return restore_params(str(workdir), "fuse")


@pytest.fixture(scope="module")
def runs(prepared, tmp_path_factory):
  """The chain as 1 process x 8 devices, and at the same time as 2 processes x 4 devices that one
  SIGTERM (to process 1 only, in the align stage) stops, finished by the same command again through
  the launcher (the documented path): what a preempted pod job does."""
  root = tmp_path_factory.mktemp("multiprocess")
  one = subprocess.Popen([BIN, "train", "--config", CONFIG, "--workdir", str(root / "one"), *_overrides(prepared)],
                         env=_env(8), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  workdir = root / "two"
  procs = _two_processes(workdir, prepared)
  marker = workdir / "align" / "4" / "commit_success.txt"
  deadline = time.time() + 400
  while not marker.exists():
    assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
    assert time.time() < deadline, "no checkpoint appeared"
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)  # process 1 only, as when one host of a pod is preempted
  stopped = _finish(procs)
  stopped_fuse = (workdir / "fuse").exists()
  committed = sorted(int(d.name) for d in (workdir / "align").iterdir()
                     if d.name.isdigit() and (d / "commit_success.txt").exists())
  two = subprocess.run(["bash", os.path.join(REPO, "launch", "local_multiprocess.sh"), "2", "4", CONFIG,
                        str(workdir), *_overrides(prepared), *HELD_OUT_DECODING], env=dict(os.environ, ASL_MOTIONGPT=BIN, PORT=str(_free_port())),
                       capture_output=True, text=True, timeout=600)
  assert two.returncode == 0, two.stdout + "".join(open(root / f"two.process{i}.log").read()[-2000:] for i in range(2))
  _finish([one])
  return {"root": root, "stopped": stopped, "stopped_fuse": stopped_fuse, "committed": committed,
          "resumed": [open(root / f"two.process{i}.log").read() for i in range(2)]}


def test_two_processes_log_the_losses_and_reach_the_parameters_of_one(runs):
  """The stopped and resumed 2-process chain against the uninterrupted 1-process one: the same logged
  losses (a redone step's last entry) and final parameters, to float rounding between topologies."""
  one, two = _losses(runs["root"] / "one"), _losses(runs["root"] / "two")
  for stage in STAGES:
    assert sorted(one[stage]) == sorted(two[stage]) and one[stage], stage
    diffs = [abs(one[stage][s] - two[stage][s]) for s in one[stage]]
    assert max(diffs) <= 1e-6, (stage, max(diffs), one[stage], two[stage])
  a, b = _final_params(runs["root"] / "one"), _final_params(runs["root"] / "two")
  import jax
  diff = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert diff <= 1e-5, diff
  summary = json.loads((runs["root"] / "two" / "fuse" / "summary.json").read_text())
  assert summary["done"] and summary["step"] == 4


def test_held_out_decoding_inside_training_spans_the_processes(runs, tmp_path, capsys):
  """train.eval_decode on the 2-process mesh (each process decodes its rows of the batch, the rows come
  back to every process), logged at the stage's start and end: at the end, the sign -> text BLEU-4 that
  `eval` of the final parameters on one device gives for the same 2 held-out examples."""
  from asl_motiongpt import cli
  held_out = _held_out(runs["root"] / "two")
  assert sorted(held_out) == [0, 4], held_out  # the starting point, and the stage's end
  assert {"bleu4", "back_translation_bleu4", "loss"} <= set(held_out[4])
  workdir = tmp_path / "eval"
  shutil.copytree(runs["root"] / "two", workdir)
  assert cli.main(["eval", "--workdir", str(workdir), "--split", "dev", "--limit", "2"]) == 0
  capsys.readouterr()
  metrics = json.loads((workdir / "eval" / "dev" / "metrics.json").read_text())
  assert held_out[4]["bleu4"] == metrics["sign_to_text"]["bleu4"]


def test_sigterm_to_one_process_stops_both_at_one_step_and_resumes(runs):
  """Both processes stop after the same step (agreed), save one checkpoint there and exit 0; the rerun
  resumes from it (the losses it then logs: the test above)."""
  stops = [line for out in runs["stopped"] for line in out.splitlines() if "stopped (" in line]
  assert len(stops) == 2 and stops[0] == stops[1], runs["stopped"]  # "[align] stopped (signal 15) after step N ..."
  stopped_at = int(stops[0].split("after step ")[1].split(";")[0])
  assert 4 <= stopped_at < 16 and runs["committed"][-1] == stopped_at  # the newest checkpoint when they stopped
  assert not runs["stopped_fuse"]
  assert f"resumed from step {stopped_at}" in runs["resumed"][0]
  assert "[tokenizer] finished earlier; skipped" in runs["resumed"][0]


def test_eval_as_a_two_process_job_equals_one_process(runs, tmp_path, capsys):
  """`asl-motiongpt eval` of the chain as one job of 2 processes x 4 devices (through the launcher:
  parameters restored into their FSDP shards on both hosts, decoding batches split over all 8
  devices) and here as one process on one device: the same examples and metrics, written once
  (process 0), printed once."""
  from asl_motiongpt import cli
  outputs = {}
  for processes in (2, 1):
    workdir = tmp_path / f"eval{processes}"
    shutil.copytree(runs["root"] / "two", workdir)
    # the 2 examples the training's held-out decoding read: its programs are in the compilation cache
    args = ["eval", "--workdir", str(workdir), "--split", "dev", "--limit", "2"]
    if processes == 2:
      r = subprocess.run(["bash", os.path.join(REPO, "launch", "local_multiprocess.sh"), "2", "4", *args],
                         env=dict(os.environ, ASL_MOTIONGPT=BIN, PORT=str(_free_port())),
                         capture_output=True, text=True, timeout=600)
      logs = [(tmp_path / f"eval2.eval.process{i}.log").read_text() for i in range(2)]
      assert r.returncode == 0, r.stdout + "".join(log[-2000:] for log in logs)
      assert "on mesh data=1 x fsdp=8 x tensor=1 (8 devices)" in logs[0] and "results:" in logs[0]
      assert "results:" not in logs[1]  # one report per job
    else:
      assert cli.main(args) == 0 and "(1 devices)" in capsys.readouterr().out
    folder = workdir / "eval" / "dev"
    outputs[processes] = ([json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()],
                          json.loads((folder / "metrics.json").read_text()))
  assert len(outputs[2][0]) == 2 and outputs[2] == outputs[1]
