"""LLM task data: every task formats what it should (incl. HamNoSys -> sign and sign -> gloss), an
example joins only the tasks it has fields for, corpora mix by weight, a restored mixture iterator
continues identically, and Grain worker processes give the same batches as the main process."""
import collections

import numpy as np
import pytest

from asl_motiongpt.data.prepare import PrepareOptions, prepare
from asl_motiongpt.data.task_data import read_task_examples, task_mixture
from asl_motiongpt.data.tasks import TASKS, TaskFormatter
from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
from asl_motiongpt.model import MotionVocab, add_to_tokenizer
from iterator_helpers import assert_batches_equal, assert_restores_identically

CODES = 16


@pytest.fixture(scope="module")
def prepared(sample_corpus, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("prepared_tasks"))
  for corpus in ("phoenix14t", "hamnosys"):
    prepare(PrepareOptions(corpus=corpus, src=sample_corpus[corpus], out=out))
  return out


def _fake_codes(prepared, corpus):
  """Deterministic stand-in codes for the records with poses (the tokenizer is not tested here)."""
  from asl_motiongpt.data.prepare import load_prepared
  source = load_prepared(prepared, corpus, "train")
  records = [source[i] for i in range(len(source))]
  return {r["id"].decode(): (np.arange(5 + i % 7) * (i + 1)) % CODES for i, r in enumerate(records) if r["has_pose"]}


@pytest.fixture(scope="module")
def corpora(prepared):
  out = {}
  for corpus in ("phoenix14t", "hamnosys"):
    out[corpus] = read_task_examples(prepared, corpus, "train", _fake_codes(prepared, corpus))
  texts = [t for examples in out.values() for e in examples for t in (e.text, e.gloss, e.hamnosys) if t]
  from asl_motiongpt.data.tasks import PROMPTS
  tok = train_word_tokenizer(texts + [p for v in PROMPTS.values() for p in v])
  vocab = MotionVocab(len(tok), CODES)
  add_to_tokenizer(tok, vocab)
  return out, TaskFormatter(tok, vocab, 96)


def test_examples_carry_the_fields_their_corpus_has(corpora):
  examples, _ = corpora
  ph, ham = examples["phoenix14t"], examples["hamnosys"]
  assert all(e.supports("s2g") and e.supports("t2s") and not e.supports("h2s") for e in ph)
  with_pose = [e for e in ham if len(e.codes)]
  assert with_pose and all(e.supports("h2s") and not e.supports("t2s") and not e.supports("s2t") for e in with_pose)
  assert all(e.hamnosys.startswith("ham") and "," not in e.hamnosys for e in with_pose)


def test_every_task_scores_exactly_its_target(corpora):
  examples, fmt = corpora
  tok, vocab = fmt.tokenizer, fmt.vocab
  ph, ham = examples["phoenix14t"][0], next(e for e in examples["hamnosys"] if len(e.codes))
  rng = np.random.default_rng(0)
  for task, example, want_target in [("t2s", ph, "motion"), ("h2s", ham, "motion"), ("m2m", ph, "motion"),
                                     ("s2t", ph, ph.text), ("s2g", ph, ph.gloss), ("t2t", ph, ph.text)]:
    out = fmt.format(example, task, rng)
    ids, target = out["input_ids"], out["target_mask"]
    scored = ids[target][:-1]  # the last scored token is eos
    assert ids[target][-1] == fmt.eos
    if want_target == "motion":
      np.testing.assert_array_equal(vocab.ids_to_codes(scored), example.codes)
      assert scored[0] == vocab.begin_id and scored[-1] == vocab.end_id
      if task == "h2s":  # the HamNoSys symbols are in the prompt
        prompt = tok.decode(ids[:np.argmax(target)].tolist())
        assert example.hamnosys.split()[0] in prompt
    else:
      assert tok.decode(scored.tolist()).replace(" ", "") == want_target.replace(" ", "")
      if task in ("s2t", "s2g"):  # the motion is in the prompt, never scored
        assert out["motion_mask"][~target].sum() == len(example.codes) + 2
  with pytest.raises(ValueError, match="needs"):
    fmt.format(ph, "h2s", rng)


def test_mixture_follows_weights_and_tasks_follow_fields(corpora):
  examples, fmt = corpora
  # PHOENIX has sentences, not HamNoSys; Ham2Pose the reverse: each corpus feeds one of the two tasks
  ds, report = task_mixture(examples, {"phoenix14t": 3.0, "hamnosys": 1.0}, {"t2s": 1.0, "h2s": 1.0},
                            fmt, seed=0, batch_size=8)
  assert report.per_task == {"phoenix14t": {"t2s": 24, "h2s": 0}, "hamnosys": {"t2s": 0, "h2s": report.used["hamnosys"]}}
  assert report.used["hamnosys"] < report.read["hamnosys"]  # text-only entries have no codes: counted, left out
  assert "support none of the tasks" in report.summary()
  # said before compiling when a corpus cannot fill one batch with distinct examples
  assert "FEWER THAN ONE BATCH" not in report.summary(batch_size=8)
  assert report.summary(batch_size=25).count("FEWER THAN ONE BATCH (25)") == 1  # phoenix14t: 24; hamnosys: 30
  assert report.summary(batch_size=31).count("FEWER THAN ONE BATCH (31)") == 2
  it = iter(ds)
  kinds = collections.Counter()
  for _ in range(40):
    batch = next(it)
    for ids in batch["input_ids"]:
      words = fmt.tokenizer.decode(ids.tolist(), skip_special_tokens=True).split()
      kinds["hamnosys" if words[0] in ("Perform", "Sign", "HamNoSys") and any(w.startswith("ham") for w in words)
            else "phoenix14t"] += 1
  share = kinds["phoenix14t"] / sum(kinds.values())
  assert 0.68 < share < 0.82, kinds  # 3:1


def test_restored_mixture_iterator_continues_identically(corpora):
  examples, fmt = corpora
  make = lambda: task_mixture(examples, {"phoenix14t": 1.0, "hamnosys": 1.0}, {t: 1.0 for t in TASKS}, fmt,
                              seed=3, batch_size=4)[0]
  assert_restores_identically(make)


def test_processes_read_their_rows_of_the_one_process_batches(corpora):
  """2 processes x 4 rows give, side by side, exactly the batches of 1 process x 8 rows (so a
  multi-host run can equal a single-host one): data/process_rows.py."""
  examples, fmt = corpora
  make = lambda k, n, rows: iter(task_mixture(examples, {"phoenix14t": 1.0}, {"s2g": 1.0}, fmt, seed=0,
                                              batch_size=rows, process_index=k, process_count=n)[0])
  whole, parts = make(0, 1, 8), [make(k, 2, 4) for k in range(2)]
  for _ in range(6):
    expected = next(whole)
    got = [next(p) for p in parts]
    for key in expected:
      np.testing.assert_array_equal(np.concatenate([g[key] for g in got]), expected[key])


def test_worker_processes_are_deterministic_and_resumable(corpora):
  """With Grain worker processes each worker formats its own slice of the mixture: a different order
  from worker_count=0 (resume with the same worker_count), but fixed by the seed and restorable."""
  examples, fmt = corpora
  make = lambda: task_mixture(examples, {"phoenix14t": 1.0, "hamnosys": 0.5}, {"t2s": 1.0, "h2s": 1.0}, fmt,
                              seed=1, batch_size=4, worker_count=2)[0]
  first, second = iter(make()), iter(make())
  for _ in range(2):
    assert_batches_equal(next(first), next(second))
  assert_restores_identically(make, second)


def test_packed_rows_hold_whole_examples_and_restore(corpora):
  examples, fmt = corpora
  make = lambda: task_mixture(examples, {"phoenix14t": 1.0, "hamnosys": 1.0}, {"t2s": 1.0, "h2s": 1.0, "s2g": 1.0},
                              fmt, seed=2, batch_size=4, packing=True)[0]
  it = iter(make())
  batch = next(it)
  assert set(batch) == {"input_ids", "target_mask", "segment_ids", "positions"}
  packed_examples = 0
  for ids, target, seg, pos in zip(batch["input_ids"], batch["target_mask"], batch["segment_ids"], batch["positions"]):
    real = seg > 0
    assert real[:real.sum()].all() and (np.diff(seg[real]) >= 0).all()  # segments in order, padding at the end
    for k in range(1, seg.max() + 1):
      where = np.flatnonzero(seg == k)
      assert (np.diff(where) == 1).all()                               # contiguous
      np.testing.assert_array_equal(pos[where], np.arange(len(where)))  # positions restart
      assert ids[where[0]] == fmt.bos and ids[where[-1]] == fmt.eos and not target[where[0]]
      packed_examples += 1
    assert not target[seg == 0].any()
  assert packed_examples > 4  # more examples than rows: that is the point
  assert_restores_identically(make, it, count=2)
