"""Launch scripts check their inputs and say what they will run (--dry-run / DRY_RUN=1), and what they
run is right: each TPU generation gets its own software version, every worker gets a Python >= 3.11
(a worker whose python3 is 3.10 installs one with uv), the project's pinned [tpu] extra, and the commit
the launcher was started from. `gcloud`, `git`, `uv`, `python3`, `xpk` and `srun` are stand-ins on
PATH that record their arguments; the stand-in gcloud runs the workers' command in a folder of its own."""
import os
import shutil
import stat
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_URL = "https://example.org/asl-motiongpt.git"


def _sh(*args, env=None, cwd=REPO):
  return subprocess.run(["bash", *args], cwd=cwd, capture_output=True, text=True,
                        env=dict(os.environ, **(env or {})), timeout=60)


def _executable(path, text):
  with open(path, "w", encoding="utf-8") as script:
    script.write("#!/usr/bin/env bash\n" + text)
  os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def checkout(tmp_path):
  """A clean git checkout holding what the launchers read (a user's clone of the project)."""
  root = tmp_path / "checkout"
  for part in ("launch", "configs", os.path.join("asl_motiongpt", "parallel")):
    shutil.copytree(os.path.join(REPO, part), root / part, ignore=shutil.ignore_patterns("__pycache__"))
  git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org"]
  subprocess.run(["git", "init", "-q", str(root)], check=True)
  subprocess.run(git + ["add", "-A"], check=True)
  subprocess.run(git + ["commit", "-q", "-m", "launch"], check=True)
  subprocess.run(git + ["remote", "add", "origin", REPO_URL], check=True)
  commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
  return root, commit


@pytest.fixture
def stand_ins(tmp_path):
  """PATH folders: `local` for the launching machine (gcloud, xpk, srun), `worker` for a TPU VM whose
  python3 is 3.10 (git, uv, python3, and the Python 3.11 that uv installs)."""
  local, worker, home = tmp_path / "bin-local", tmp_path / "bin-worker", tmp_path / "worker-home"
  for folder in (local, worker, home):
    folder.mkdir()
  record = tmp_path / "calls.log"
  log = f'args="$*"; echo "$(basename "$0") ${{args//$\'\\n\'/ ; }}" >> {record}\n'  # one line per call
  created = tmp_path / "queued-resource-created"
  _executable(local / "gcloud", log + f"""
case "$*" in
  *"queued-resources create"*) touch {created} ;;
  *"queued-resources describe"*) [ -e {created} ] || exit 1; echo ACTIVE ;;
  *"tpu-vm ssh"*) while [ "$1" != --command ]; do shift; done
                  cd {home} && PATH={worker}:/usr/bin:/bin HOME={home} bash -c "$2" ;;
esac
""")
  for tool in ("xpk", "srun"):
    _executable(local / tool, log)
  _executable(worker / "git", log + """
case "$1" in
  clone) mkdir -p "${@: -1}" ;;
  checkout) echo "${@: -1}" > .checked-out ;;
  rev-parse) cat .checked-out ;;
esac
""")
  _executable(worker / "python3", log + """
case "$1" in
  --version) echo "Python 3.10.12" ;;
  -c) exit 1 ;;  # sys.version_info < (3, 11)
  *) echo "python3 3.10 was asked to $*" >&2; exit 3 ;;
esac
""")
  _executable(worker / "python3.11", log + f"""
case "$1" in
  --version) echo "Python 3.11.9" ;;
  -c) exit 0 ;;
  -m) mkdir -p .venv/bin && cp {worker}/python3.11 .venv/bin/python
      printf '#!/usr/bin/env bash\\necho "$(basename "$0") $*" >> {record}\\n' > .venv/bin/pip
      cp .venv/bin/pip .venv/bin/asl-motiongpt && chmod +x .venv/bin/pip .venv/bin/asl-motiongpt ;;
esac
""")
  _executable(worker / "uv", log + f'[ "$1 $2" = "python find" ] && echo {worker}/python3.11\nexit 0\n')
  return local, record


def _calls(record):
  return record.read_text().splitlines() if record.exists() else []


def test_tpu_pod_dry_run_and_input_checks(checkout):
  root, commit = checkout
  r = _sh("launch/tpu_pod.sh", "asl-v5e", "us-west4-a", "v5litepod-16", "configs/tokenizer.py", "gs://b/run",
          "--config.data.prepared=gs://b/prep", "--dry-run", cwd=root)
  assert r.returncode == 0, r.stderr
  assert "queued-resources create asl-v5e" in r.stdout and "--worker=all" in r.stdout
  assert "--config.data.prepared=gs://b/prep" in r.stdout and f"checkout -q --detach {commit}" in r.stdout
  bad = _sh("launch/tpu_pod.sh", "n", "z", "v5litepod-16", "configs/missing.py", "w", "--dry-run", cwd=root)
  assert bad.returncode == 2 and "configs/missing.py not found" in bad.stderr
  bad = _sh("launch/tpu_pod.sh", "n", "z", "h100", "configs/tokenizer.py", "w", "--dry-run", cwd=root)
  assert bad.returncode == 2 and "TPU type 'h100' is not known" in bad.stderr and "v5p-64" not in bad.stdout
  assert "v6e-8" in bad.stderr  # the refusal lists the names that exist
  bad = _sh("launch/tpu_pod.sh", "n", "z", "v5e-16x2", "configs/tokenizer.py", "w", "--dry-run", cwd=root)
  assert bad.returncode == 2 and "launch/xpk.sh" in bad.stderr


@pytest.mark.parametrize("tpu_type, accelerator, software", [
    ("v4-8", "v4-8", "tpu-ubuntu2204-base"), ("v5e-16", "v5litepod-16", "v2-alpha-tpuv5-lite"),
    ("v5p-64", "v5p-64", "v2-alpha-tpuv5"), ("v6e-8", "v6e-8", "v2-alpha-tpuv6e")])
def test_each_tpu_generation_gets_its_software_version(checkout, tpu_type, accelerator, software):
  root, _ = checkout
  r = _sh("launch/tpu_pod.sh", "pod", "zone", tpu_type, "configs/tokenizer.py", "gs://b/r", "--dry-run", cwd=root)
  assert r.returncode == 0, r.stderr
  assert f"--accelerator-type {accelerator} --runtime-version {software}" in r.stdout
  mine = _sh("launch/tpu_pod.sh", "pod", "zone", tpu_type, "configs/tokenizer.py", "gs://b/r", "--dry-run", cwd=root,
             env={"RUNTIME_VERSION": "my-image"})
  assert "--runtime-version my-image" in mine.stdout


def test_a_worker_with_python_3_10_gets_3_11_the_pinned_extra_and_the_launched_commit(checkout, stand_ins):
  root, commit = checkout
  local, record = stand_ins
  r = _sh("launch/tpu_pod.sh", "asl-v5p", "us-east5-a", "v5p-64", "configs/strategies/staged.py", "gs://b/runs/x",
          "--config.data.prepared=gs://b/prepared", cwd=root, env={"PATH": f"{local}:{os.environ['PATH']}"})
  assert r.returncode == 0, r.stdout + r.stderr
  calls = _calls(record)
  create = next(call for call in calls if "queued-resources create" in call)
  assert "--accelerator-type v5p-64 --runtime-version v2-alpha-tpuv5" in create
  order = ["git clone -q " + REPO_URL, f"git -c advice.detachedHead=false checkout -q --detach {commit}",
           "python3 -c", "uv python install 3.11", "uv python find 3.11", "python3.11 -m venv .venv",
           "pip install -q -e .[tpu]",
           "asl-motiongpt train --config configs/strategies/staged.py --workdir gs://b/runs/x "
           "--config.data.prepared=gs://b/prepared"]
  positions = [next(i for i, call in enumerate(calls) if call.startswith(step)) for step in order]
  assert positions == sorted(positions), calls
  assert not any("jax[tpu]" in call for call in calls)  # the project's pins, not whatever jax is newest
  assert f"commit {commit}" in r.stdout and "Python 3.10.12 is older than 3.11" in r.stdout
  assert "Python 3.11.9" in r.stdout  # each worker says which Python it uses


def test_eval_runs_on_every_worker_of_the_existing_pod(checkout, stand_ins, tmp_path):
  """`tpu_pod.sh NAME ZONE TYPE eval ...`: the pod that trained is used as it is (no second queued
  resource), every worker checks out the launched commit and runs the same eval command."""
  root, commit = checkout
  local, record = stand_ins
  (tmp_path / "queued-resource-created").touch()  # the training run created it
  r = _sh("launch/tpu_pod.sh", "asl-v5p", "us-east5-a", "v5p-64", "eval", "--workdir", "gs://b/runs/x", "--split", "dev",
          "--report", cwd=root, env={"PATH": f"{local}:{os.environ['PATH']}"})
  assert r.returncode == 0, r.stdout + r.stderr
  calls = _calls(record)
  assert not any("queued-resources create" in call for call in calls) and "using the existing queued resource" in r.stdout
  order = [f"git -c advice.detachedHead=false checkout -q --detach {commit}", "pip install -q -e .[tpu]",
           "asl-motiongpt eval --workdir gs://b/runs/x --split dev --report"]
  positions = [next(i for i, call in enumerate(calls) if call.startswith(step)) for step in order]
  assert positions == sorted(positions), calls
  dry = _sh("launch/tpu_pod.sh", "n", "z", "v5e-16", "generate", "--workdir", "gs://b/r", "--text", "heute regen",
            "--out", "gs://b/sign.pose", "--dry-run", cwd=root)
  assert dry.returncode == 0 and "asl-motiongpt generate --workdir gs://b/r --text heute\\ regen" in dry.stdout


def test_a_dirty_checkout_is_refused_unless_allowed(checkout):
  root, commit = checkout
  (root / "configs" / "tokenizer.py").write_text("# changed\n", encoding="utf-8")
  r = _sh("launch/tpu_pod.sh", "n", "z", "v5e-8", "configs/tokenizer.py", "w", "--dry-run", cwd=root)
  assert r.returncode == 2 and "uncommitted changes" in r.stderr and commit in r.stderr
  r = _sh("launch/tpu_pod.sh", "n", "z", "v5e-8", "configs/tokenizer.py", "w", "--dry-run", cwd=root,
          env={"ALLOW_DIRTY": "1"})
  assert r.returncode == 0 and "do not reach the workers" in r.stderr


def test_xpk_takes_the_table_names_and_installs_the_pinned_extra(checkout, stand_ins):
  root, _ = checkout
  local, record = stand_ins
  r = _sh("launch/xpk.sh", "c", "w", "v5e-256", "2", "configs/tokenizer.py", "gs://b/r", cwd=root,
          env={"PATH": f"{local}:{os.environ['PATH']}"})
  assert r.returncode == 0, r.stderr
  [call] = _calls(record)
  assert "--tpu-type v5litepod-256 --num-slices 2" in call and "python:3.11-slim" in call
  assert "pip install -q -e '.[tpu]'" in call and "jax[tpu]" not in call
  assert _sh("launch/xpk.sh", "c", "w", "v5litepod-256", "two", "configs/tokenizer.py", "r", "--dry-run",
             cwd=root).returncode == 2
  unknown = _sh("launch/xpk.sh", "c", "w", "tpu9-8", "1", "configs/tokenizer.py", "r", "--dry-run", cwd=root)
  assert unknown.returncode == 2 and "is not known" in unknown.stderr
  evaluating = _sh("launch/xpk.sh", "c", "w-eval", "v5e-16", "1", "eval", "--workdir", "gs://b/r", "--split", "dev",
                   "--report", cwd=root, env={"PATH": f"{local}:{os.environ['PATH']}"})
  assert evaluating.returncode == 0, evaluating.stderr
  call = _calls(record)[-1]
  assert "pip install -q -e '.[tpu]' && asl-motiongpt eval --workdir gs://b/r --split dev --report" in call, call


def _venv(tmp_path, python_version="3.11.9", cuda=True):
  venv = tmp_path / f"venv-{python_version}-{cuda}"
  (venv / "bin").mkdir(parents=True, exist_ok=True)
  _executable(venv / "bin" / "asl-motiongpt", "")
  old = "1" if python_version < "3.11" else "0"
  _executable(venv / "bin" / "python", f"""
case "$1" in
  --version) echo "Python {python_version}" ;;
  -c) case "$2" in *jax-cuda*) exit {0 if cuda else 1} ;; *) exit {old} ;; esac ;;
esac
""")
  return venv


def test_slurm_checks_the_venv_and_runs_on_gpus_only(checkout, stand_ins, tmp_path):
  root, _ = checkout
  local, record = stand_ins
  base = {"CONFIG": "configs/tokenizer.py", "WORKDIR": "/shared/w", "PATH": f"{local}:{os.environ['PATH']}"}
  r = _sh("launch/slurm_gpu.sbatch", "--config.train.steps=10", cwd=root, env=dict(base, VENV=str(_venv(tmp_path))))
  assert r.returncode == 0, r.stderr
  [call] = _calls(record)
  assert call.startswith("srun --kill-on-bad-exit=1") and call.endswith("--config.train.steps=10")
  missing = _sh("launch/slurm_gpu.sbatch", cwd=root, env=dict(base, VENV=str(tmp_path / "nowhere")))
  assert missing.returncode == 2 and "pip install -e '.[cuda]'" in missing.stderr
  old = _sh("launch/slurm_gpu.sbatch", cwd=root, env=dict(base, VENV=str(_venv(tmp_path, "3.10.12"))))
  assert old.returncode == 2 and "Python 3.10.12" in old.stderr
  cpu_only = _sh("launch/slurm_gpu.sbatch", cwd=root, env=dict(base, VENV=str(_venv(tmp_path, cuda=False))))
  assert cpu_only.returncode == 2 and "no CUDA jax plugin" in cpu_only.stderr
  dry = _sh("launch/slurm_gpu.sbatch", cwd=root, env=dict(base, DRY_RUN="1", VENV=str(_venv(tmp_path))))
  assert dry.returncode == 0 and "srun" in dry.stdout and len(_calls(record)) == 1
  assert _sh("launch/slurm_gpu.sbatch", cwd=root, env={"DRY_RUN": "1", "CONFIG": "configs/tokenizer.py"}).returncode != 0


def test_slurm_runs_eval_as_one_job_on_every_gpu(checkout, stand_ins, tmp_path):
  """`sbatch launch/slurm_gpu.sbatch eval ARGS`: no CONFIG needed, the command goes to srun as given,
  with the same venv checks; a stray argument in the training form names the commands it could be."""
  root, _ = checkout
  local, record = stand_ins
  env = {"PATH": f"{local}:{os.environ['PATH']}", "VENV": str(_venv(tmp_path))}
  r = _sh("launch/slurm_gpu.sbatch", "eval", "--workdir", "/shared/runs/x", "--split", "dev", "--report", cwd=root,
          env=env)
  assert r.returncode == 0, r.stderr
  [call] = _calls(record)
  assert call.startswith("srun --kill-on-bad-exit=1") and call.endswith("asl-motiongpt eval --workdir /shared/runs/x "
                                                                        "--split dev --report"), call
  cpu_only = _sh("launch/slurm_gpu.sbatch", "generate", "--workdir", "w", cwd=root,
                 env=dict(env, VENV=str(_venv(tmp_path, cuda=False))))
  assert cpu_only.returncode == 2 and "no CUDA jax plugin" in cpu_only.stderr
  stray = _sh("launch/slurm_gpu.sbatch", "evaluate", cwd=root, env=dict(env, CONFIG="configs/tokenizer.py", WORKDIR="w"))
  assert stray.returncode == 2 and "eval|generate|translate|ablate" in stray.stderr


def test_local_multiprocess_dry_run():
  r = _sh("launch/local_multiprocess.sh", "2", "4", "configs/demo_tokenizer.py", "/tmp/w", "--dry-run")
  assert r.returncode == 0 and "2 processes x 4 CPU devices" in r.stdout, r.stderr
