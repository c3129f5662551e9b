"""The pod path, on one machine: `asl-motiongpt train` of a whole chain (tokenizer + two LLM stages) as
2 processes x 4 CPU devices joined by jax.distributed (launch/local_multiprocess.sh), FSDP over all 8
devices so that parameters are split across the two processes, equals 1 process x 8 devices; and
SIGTERM sent to one process only stops both after the same step, with one consistent checkpoint."""
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from asl_motiongpt import checkpoints
from asl_motiongpt.train.logging_utils import read_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "strategies", "direct_alignment_fusion.py:tiny")
STAGES = ("tokenizer", "align", "fuse")


def _overrides(prepared, llm_steps=4):
  return [f"--config.data.prepared={prepared}", "--config.mesh.fsdp=8", "--config.mesh.data=1",
          "--config.stages.tokenizer.steps=6", f"--config.stages.align.steps={llm_steps}",
          f"--config.stages.fuse.steps={llm_steps}", "--config.train.log_every=1", "--config.train.eval_every=0",
          "--config.train.checkpoint_every=2", "--config.train.keep_checkpoints=10"]


def _env(devices):
  return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
              ASL_MOTIONGPT=os.path.join(os.path.dirname(sys.executable), "asl-motiongpt"))


def _two_processes(workdir, overrides):
  return subprocess.Popen([os.path.join(REPO, "launch", "local_multiprocess.sh"), "2", "4", CONFIG, str(workdir),
                           *overrides], env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _losses(workdir, stage):
  return {step: m["loss"] for step, m in read_metrics(os.path.join(workdir, stage, "logs")).items()}


@pytest.fixture(scope="module")
def one_process(prepared, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("pod") / "one"
  subprocess.run([sys.executable, "-m", "asl_motiongpt", "train", "--config", CONFIG, "--workdir", str(workdir),
                  *_overrides(prepared)], env=_env(8), check=True, capture_output=True, timeout=900)
  return workdir


def test_two_processes_with_fsdp_over_both_equal_one_process(prepared, one_process, tmp_path):
  two = tmp_path / "two"
  proc = _two_processes(two, _overrides(prepared))
  out, err = proc.communicate(timeout=900)
  logs = "".join(open(f"{two}.process{i}.log").read()[-2000:] for i in range(2))
  assert proc.returncode == 0, logs
  for stage in STAGES:
    a, b = _losses(one_process, stage), _losses(two, stage)
    assert sorted(a) == sorted(b) and a, (stage, a, b)
    np.testing.assert_allclose([b[s] for s in sorted(b)], [a[s] for s in sorted(a)], rtol=0, atol=1e-6)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(y, x, rtol=0, atol=1e-6),
               checkpoints.restore_params(str(one_process), "fuse"), checkpoints.restore_params(str(two), "fuse"))
