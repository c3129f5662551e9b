"""Shared test fixtures.

Real corpus samples live in `tests/fixtures` (provenance and licences in its README); the
environment variable ASL_MOTIONGPT_FIXTURES points the tests at another copy.
"""
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = pathlib.Path(os.environ.get("ASL_MOTIONGPT_FIXTURES", REPO / "tests" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures() -> pathlib.Path:
  if not FIXTURES.is_dir():
    raise FileNotFoundError(f"real corpus fixtures not found at {FIXTURES} (ASL_MOTIONGPT_FIXTURES)")
  return FIXTURES


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory) -> dict[str, str]:
  """The embedded sample corpus at its small size, written once per test session."""
  from asl_motiongpt.corpora.sample import SMALL, write_sample_corpus
  return write_sample_corpus(str(tmp_path_factory.mktemp("sample_corpus")), SMALL, seed=0)


@pytest.fixture(scope="session")
def prepared(sample_corpus, tmp_path_factory) -> str:
  """The small PHOENIX-style corpus prepared once per session; read-only for the tests (stages keep
  their code caches in their own workdirs). A module that needs other corpora defines its own."""
  from asl_motiongpt.data.prepare import PrepareOptions, prepare
  out = str(tmp_path_factory.mktemp("prepared_phoenix"))
  prepare(PrepareOptions(corpus="phoenix14t", src=sample_corpus["phoenix14t"], out=out))
  return out


@pytest.fixture
def tiny_corpus(tmp_path):
  """A fresh few-sentence corpus per test, for tests that corrupt files."""
  from asl_motiongpt.corpora.sample import SampleSizes, write_sample_corpus
  sizes = SampleSizes(how2sign=10, phoenix=10, hamnosys_signers=1, hamnosys_text_only=1, signers=2)
  return write_sample_corpus(str(tmp_path / "corpus"), sizes, seed=1)


# The suite compiles hundreds of small programs for the CPU and runs each for a few steps: compiling
# costs more than the machine code's speed saves. Two sets of flags, measured on 2 cores with a cold
# compile cache:
# - LLVM's optimisation off (what JAX's jax_disable_most_optimizations sets): tests/test_motion_model.py
#   78 s -> 53 s of CPU time (2026-12-07);
# - XLA's older CPU emitters for fusions (no MLIR fusion pipeline) and the whole program as one LLVM
#   module: test_motion_model.py + test_tokenizer.py 72 s -> 40 s of CPU time, the whole suite 834 s ->
#   716 s (2026-12-07). A newer XLA may no longer know them (an unknown flag aborts the process), so
#   they are tried once in a child process first.
# Programs are the same HLO (XLA's own passes are untouched); only the machine code differs.
# Subprocesses inherit them through the environment (`cpu_devices_flags` adds a device count).
FAST_COMPILE_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
LEGACY_EMITTER_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1"


def _xla_accepts(flags: str) -> bool:
  probe = subprocess.run([sys.executable, "-c", "import jax; jax.numpy.zeros(1).block_until_ready()"],
                         env=dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu"), capture_output=True,
                         timeout=300)
  return probe.returncode == 0


def cpu_devices_flags(devices: int) -> str:
  """XLA_FLAGS for a subprocess with `devices` CPU devices, keeping the session's other flags."""
  return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()


def pytest_configure(config):
  """One persistent XLA compilation cache for the test workers and every `asl-motiongpt` process they
  start (ASL_COMPILE_CACHE, which the CLI reads): a program compiled once is reused by all of them,
  and repeated runs skip recompiling. Small programs are cached too (most of the suite's are)."""
  if FAST_COMPILE_XLA_FLAGS not in os.environ.get("XLA_FLAGS", ""):  # before JAX starts its CPU backend
    # (xdist's workers start after this and inherit the result: the probe runs once per session)
    flags = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_XLA_FLAGS}".strip()
    with_legacy = f"{flags} {LEGACY_EMITTER_XLA_FLAGS}"
    os.environ["XLA_FLAGS"] = with_legacy if _xla_accepts(with_legacy) else flags
  import jax
  cache = os.environ.setdefault("ASL_COMPILE_CACHE", str(REPO / ".jax_cache"))
  os.environ.setdefault("ASL_COMPILE_CACHE_MIN_SECS", "0.2")
  jax.config.update("jax_compilation_cache_dir", cache)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", float(os.environ["ASL_COMPILE_CACHE_MIN_SECS"]))


# The slowest files first (longest first: seconds summed over a file's tests, measured on 2 cores with
# a cold compile cache and 3 workers, 2026-12-06: hf_families ~270 (three real-size chains), sharding
# ~250, chain ~250, inference ~200, multiprocess ~190, cli ~185, bucket ~145, resume ~130, ablate ~115,
# corpus_splits ~90, real_artefacts ~60, ...): with `--dist loadfile` each worker takes the next file when
# it is free, so a long file picked up last leaves the other workers idle at the end. test_bucket.py
# goes first: most of its ~200 s are clients backing off from the flaky proxy's faults, when the
# other workers have the cores.
SLOWEST_FIRST = ("test_bucket.py", "test_hf_families.py", "test_sharding.py", "test_chain.py", "test_inference.py",
                 "test_multiprocess_chain.py", "test_cli.py", "test_dry_run.py", "test_resume_signals.py",
                 "test_ablate.py", "test_corpus_splits.py", "test_real_artefacts.py", "test_motion_model.py",
                 "test_tokenizer.py")


def pytest_collection_modifyitems(config, items):
  rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise


def pytest_xdist_auto_num_workers(config):
  """`-n auto`: one worker more than the cores (at most 4). Many tests wait on subprocesses (several
  processes of one training job, a killed and rerun chain, a storage emulator) or on I/O; measured on
  2 cores, cold compile cache, the whole suite: 2 workers ~740 s (two partial runs added), 3 workers
  675 s, 4 workers 756 s."""
  return min(4, (os.cpu_count() or 1) + 1)
