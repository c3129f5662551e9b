"""Launch scripts check their inputs and say what they will run (--dry-run / DRY_RUN=1)."""
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sh(*args, env=None):
  return subprocess.run(["bash", *args], cwd=REPO, capture_output=True, text=True,
                        env=dict(os.environ, **(env or {})), timeout=60)


def test_tpu_pod_dry_run_and_input_checks():
  r = _sh("launch/tpu_pod.sh", "asl-v5e", "us-west4-a", "v5litepod-16", "configs/tokenizer.py", "gs://b/run",
          "--config.data.prepared=gs://b/prep", "--dry-run", env={"REPO_URL": "https://example.org/repo.git"})
  assert r.returncode == 0, r.stderr
  assert "queued-resources create asl-v5e" in r.stdout and "--worker=all" in r.stdout
  assert "--config.data.prepared=gs://b/prep" in r.stdout
  bad = _sh("launch/tpu_pod.sh", "n", "z", "v5litepod-16", "configs/missing.py", "w", "--dry-run",
            env={"REPO_URL": "x"})
  assert bad.returncode == 2 and "configs/missing.py not found" in bad.stderr
  bad = _sh("launch/tpu_pod.sh", "n", "z", "h100", "configs/tokenizer.py", "w", "--dry-run", env={"REPO_URL": "x"})
  assert bad.returncode == 2 and "does not look like" in bad.stderr


def test_xpk_slurm_local_dry_runs():
  r = _sh("launch/xpk.sh", "c", "w", "v5litepod-256", "2", "configs/tokenizer.py", "gs://b/r", "--dry-run")
  assert r.returncode == 0 and "--num-slices 2" in r.stdout, r.stderr
  assert _sh("launch/xpk.sh", "c", "w", "v5litepod-256", "two", "configs/tokenizer.py", "r", "--dry-run").returncode == 2
  r = _sh("launch/slurm_gpu.sbatch", "--config.train.steps=10",
          env={"DRY_RUN": "1", "CONFIG": "configs/tokenizer.py", "WORKDIR": "/tmp/w"})
  assert r.returncode == 0 and "srun" in r.stdout and "--config.train.steps=10" in r.stdout, r.stderr
  assert _sh("launch/slurm_gpu.sbatch", env={"DRY_RUN": "1", "CONFIG": "configs/tokenizer.py"}).returncode != 0
  r = _sh("launch/local_multiprocess.sh", "2", "4", "configs/demo_tokenizer.py", "/tmp/w", "--dry-run")
  assert r.returncode == 0 and "2 processes x 4 CPU devices" in r.stdout, r.stderr
