"""Grain pipelines: per-process shards are disjoint and complete; a restored iterator continues
with identical batches."""
import numpy as np

from asl_motiongpt.data.prepare import load_prepared
from asl_motiongpt.data.windows import window_dataset
from iterator_helpers import assert_restores_identically


def test_processes_read_their_rows_of_the_one_process_batches(prepared):
  # the windows of 2 processes x 2 rows, side by side, are the batches of 1 process x 4 rows
  whole = iter(window_dataset(prepared, "phoenix14t", "train", frames=16, dims=3, batch_size=4, seed=0))
  parts = [iter(window_dataset(prepared, "phoenix14t", "train", frames=16, dims=3, batch_size=2, seed=0,
                               process_index=k, process_count=2)) for k in range(2)]
  for _ in range(5):
    expected, got = next(whole), [next(p) for p in parts]
    for key in expected:
      np.testing.assert_array_equal(np.concatenate([g[key] for g in got]), expected[key])


def test_restored_iterator_gives_identical_next_batches(prepared):
  ds = window_dataset(prepared, "phoenix14t", "train", frames=16, dims=3, batch_size=4, seed=1,
                      process_index=0, process_count=1)
  assert_restores_identically(lambda: ds, skip=5, count=4)


def test_llm_task_batches_restore_identically(prepared):
  """Formatting draws the task and paraphrase from Grain's per-element generator: reproducible."""
  import grain
  from asl_motiongpt.data.tasks import TaskExample, TaskFormatter, TASKS
  from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
  from asl_motiongpt.model import MotionVocab, add_to_tokenizer
  texts = ["morgen regen im norden", "heute sonne", "übermorgen schnee an der küste"]
  tok = train_word_tokenizer(texts + ["Sign this sentence :", "What does this signing say ?"])
  vocab = MotionVocab(len(tok), 8)
  add_to_tokenizer(tok, vocab)
  fmt = TaskFormatter(tok, vocab, 32)
  examples = [TaskExample(str(i), t, np.arange(5) % 8) for i, t in enumerate(texts)]

  def one(e, rng):
    tasks = [t for t in TASKS if e.supports(t)]
    return fmt.format(e, tasks[int(rng.integers(len(tasks)))], rng)["input_ids"]

  ds = grain.MapDataset.source(examples).seed(0).shuffle().repeat().random_map(one).to_iter_dataset().batch(2)
  it = iter(ds)
  next(it)
  state = it.get_state()
  want = [next(it) for _ in range(3)]
  again = iter(ds)
  again.set_state(state)
  for w in want:
    np.testing.assert_array_equal(next(again), w)


def _descendants(pid: int) -> set[int]:
  """Every process below `pid`, from /proc (Linux)."""
  import os
  children = {}
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        with open(f"/proc/{entry}/stat") as stat:
          parent = int(stat.read().rsplit(")", 1)[1].split()[1])
      except (OSError, IndexError, ValueError):
        continue
      children.setdefault(parent, set()).add(int(entry))
  found, todo = set(), [pid]
  while todo:
    for child in children.get(todo.pop(), ()):
      found.add(child)
      todo.append(child)
  return found


def test_grain_workers_die_with_a_killed_training_process(tmp_path):
  """kill -9 of the process that feeds on Grain workers leaves no worker behind (they were orphaned)."""
  import os
  import signal
  import subprocess
  import sys
  import time
  import pytest
  if not os.path.isdir("/proc"):
    pytest.skip("counts processes through /proc (Linux)")
  feeder = ("import grain, sys\n"
            "from asl_motiongpt.data.workers import with_workers\n"
            "stream = iter(with_workers(grain.MapDataset.range(10 ** 9).to_iter_dataset(), 2))\n"
            "next(stream)\nprint('fed', flush=True)\n"
            "for _ in stream: pass\n")
  proc = subprocess.Popen([sys.executable, "-c", feeder], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
  try:
    assert proc.stdout.readline().strip() == "fed"
    workers = _descendants(proc.pid)
    assert len(workers) >= 2, workers  # the two workers (and whatever helper multiprocessing starts)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers):
      time.sleep(0.2)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}") and _alive(pid)], "orphaned workers"
  finally:
    if proc.poll() is None:
      proc.kill()


def _alive(pid: int) -> bool:
  try:
    with open(f"/proc/{pid}/stat") as stat:
      return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False
