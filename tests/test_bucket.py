"""A Cloud TPU user's path, on a real (local) Google Cloud Storage server that misbehaves: prepare
into a bucket, train a chain whose workdir is in the bucket, SIGTERM it while a checkpoint uploads,
rerun; the losses equal an uninterrupted run on local disk bit for bit, and eval / generate read everything
from the bucket. Every request goes through a proxy (tests/flaky_proxy.py) that answers some with
503, drops some connections unanswered and delays others, as object stores do now and then: the
clients retry (gcsfs for our files and the compilation cache, TensorStore for Orbax's arrays), so
nothing is lost or half-written. The server and the client variables: tests/gcs_emulator.py."""
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from asl_motiongpt import checkpoints, cli, storage
from asl_motiongpt.train.logging_utils import read_metrics
from flaky_proxy import Faults, FlakyProxy
from gcs_emulator import Emulator, client_environment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLM_STEPS = 30


# every 211th request answered 503, every 41st connection dropped, every 29th answer 0.2 s late. A
# failed request costs a client a back-off of a second or two before it tries again: few of them.
FAULTS = Faults(unavailable=211, dropped=41, slow=29, slow_seconds=0.2)


@pytest.fixture(scope="module")
def flaky(tmp_path_factory):
  server = Emulator(str(tmp_path_factory.mktemp("gcs") / "server.log"))
  proxy = FlakyProxy(server.url, FAULTS)
  variables = client_environment(proxy.url)
  before = {k: os.environ.get(k) for k in variables}
  os.environ.update(variables)  # before gcsfs is first used in this process
  try:
    yield server.create_bucket("asl-test-bucket"), proxy
  finally:
    proxy.stop()
    for k, v in before.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    server.stop()


@pytest.fixture(scope="module")
def bucket(flaky):
  return flaky[0]


def _train(workdir, prepared):
  return [sys.executable, "-m", "asl_motiongpt", "train", "--config",
          os.path.join(REPO, "configs", "strategies", "joint.py:tiny"), "--workdir", workdir,
          f"--config.data.prepared={prepared}", "--config.stages.tokenizer.steps=10",
          f"--config.stages.joint.steps={LLM_STEPS}", "--config.stages.joint.batch_size=8",
          "--config.train.log_every=1", "--config.train.checkpoint_every=10", "--config.train.keep_checkpoints=10",
          "--config.train.eval_every=0"]


def _signal_while_uploading(proc, stage_dir: str, step: int, signum) -> bool:
  """Sends `signum` once checkpoint `step` has begun to appear in the bucket; True when it was still
  uncommitted then (the signal hit the upload), False when it was already whole."""
  folder, deadline = storage.path(f"{stage_dir}/{step}"), time.time() + 600
  while not folder.exists():
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.time() < deadline, f"checkpoint {step} did not appear in the bucket"
    time.sleep(0.05)
  committed = (folder / "commit_success.txt").exists()
  proc.send_signal(signum)
  return not committed


def _losses(workdir, stage):
  return {step: m["loss"] for step, m in read_metrics(storage.join(workdir, stage, "logs")).items()}


def test_prepare_train_kill_resume_eval_generate_in_a_bucket(flaky, sample_corpus, prepared, tmp_path, capsys,
                                                             monkeypatch):
  bucket, proxy = flaky
  monkeypatch.chdir(tmp_path)  # nothing may land in ./gs:/ (what os.path made of bucket paths)
  remote_prepared, run = f"{bucket}/prepared", f"{bucket}/runs/joint"
  assert cli.main(["prepare", "--corpus", "phoenix14t", "--src", sample_corpus["phoenix14t"],
                   "--out", remote_prepared]) == 0
  # the same chain on local disk, uninterrupted: the reference
  local = str(tmp_path / "local")
  subprocess.run(_train(local, prepared), check=True, capture_output=True, timeout=600)
  # in the bucket: SIGTERM while the LLM stage's checkpoint 10 is uploading (the run finishes that
  # upload, saves where it stopped and exits 0), then the same command again. (kill -9, and a newest
  # checkpoint corrupted mid-write: tests/test_resume_signals.py, on local disk.)
  proc = subprocess.Popen(_train(run, remote_prepared), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  interrupted = _signal_while_uploading(proc, f"{run}/joint", 10, signal.SIGTERM)
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0 and "stopped (signal 15)" in out, err[-3000:]
  stopped_at = int(out.split("stopped (signal 15) after step ")[1].split(";")[0])
  assert storage.exists(f"{run}/joint/10/commit_success.txt")  # the upload in flight was finished, not lost
  result = subprocess.run(_train(run, remote_prepared), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"resumed from step {stopped_at}" in result.stdout
  assert "[tokenizer] finished earlier; skipped" in result.stdout
  signals = (f"SIGTERM {'during' if interrupted else 'after'} the upload of checkpoint 10: stopped after step "
             f"{stopped_at}; resumed there")
  for stage in ("tokenizer", "joint"):
    a, b = _losses(local, stage), _losses(run, stage)
    assert sorted(a) == sorted(b) and len(a) > 0
    assert all(a[s] == b[s] for s in a), [(s, a[s], b[s]) for s in a if a[s] != b[s]][:5]  # bitwise
  jax.tree.map(np.testing.assert_array_equal, checkpoints.restore_params(local, "joint"),
               checkpoints.restore_params(run, "joint"))
  for name in ("chain_config.json", "loss_curves.png", "joint/summary.json", "tokenizer/codes/phoenix14t/COMPLETE",
               "text_tokenizer/tokenizer.json"):
    assert storage.exists(f"{run}/{name}"), name
  assert any(p.name.startswith("events.out.tfevents") for p in storage.path(f"{run}/joint/logs").iterdir())
  # eval and generate read the chain from the bucket, and write there
  capsys.readouterr()
  assert cli.main(["eval", "--workdir", run, "--split", "dev", "--limit", "2"]) == 0
  assert storage.read_json(f"{run}/eval/dev/metrics.json")["examples"] == 2
  assert cli.main(["generate", "--workdir", run, "--text", "morgen regen im norden",
                   "--out", f"{bucket}/out/sign.pose", "--out", "sign.png"]) in (0, 1)
  written = capsys.readouterr()
  if "no motion codes" not in written.err:
    assert storage.path(f"{bucket}/out/sign.pose").stat().length > 0 and os.path.exists("sign.png")
  assert not os.path.exists(tmp_path / "gs:")
  print(f"{signals}; flaky proxy: {proxy.counts}")  # (pytest -s shows it)
  assert all(proxy.counts[kind] > 0 for kind in ("unavailable", "dropped", "slow")), proxy.counts  # all were met


def test_a_bucket_that_does_not_exist_is_named_before_any_work(bucket, prepared, capsys):
  code = cli.main(["train", "--config", os.path.join(REPO, "configs", "strategies", "joint.py:tiny"),
                   "--workdir", "gs://no-such-bucket-here/run", f"--config.data.prepared={prepared}"])
  assert code == 2
  err = capsys.readouterr().err
  assert "gs://no-such-bucket-here" in err and "does not exist" in err


def test_a_hugging_face_folder_in_the_bucket_is_staged_once_per_content(bucket, prepared, tmp_path, monkeypatch):
  """safetensors and tokenizers read local files: a bucket folder is copied to this host's staging
  cache once, reused while unchanged, copied again when a file changes."""
  from asl_motiongpt.llm.hf_folder import check_hf_folder, hf_folder
  from hf_folders import build_folder
  monkeypatch.setenv("ASL_STAGING_DIR", str(tmp_path / "staging"))
  local = build_folder("qwen3-base", ["heute regen im norden", "morgen sonne im süden"] * 10, str(tmp_path))
  remote = f"{bucket}/models/qwen3-base"
  storage.upload(local, remote)
  check_hf_folder(remote)  # config, tokenizer, safetensors, a tokenizer that fits the embedding
  first = hf_folder(remote)
  assert first.startswith(str(tmp_path / "staging")) and hf_folder(remote) == first
  assert sorted(os.listdir(first)) == sorted(os.listdir(local))
  storage.write_text(f"{remote}/generation_config.json", '{"changed": true, "padding": "' + "x" * 50 + '"}')
  again = hf_folder(remote)
  assert again != first and "changed" in open(os.path.join(again, "generation_config.json")).read()
