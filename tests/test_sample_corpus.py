"""The embedded sample corpus: deterministic, read back by the real readers, learnable by design."""
import hashlib
import os

import numpy as np

from asl_motiongpt import corpora
from asl_motiongpt.corpora.sample import SMALL, lexicon, write_sample_corpus
from asl_motiongpt.pose import normalize, skeletons, to_unified

SPLITS = {"how2sign": ("train", "val", "test"), "phoenix14t": ("train", "dev", "test"),
          "hamnosys": ("train", "dev", "test")}


def _read_all(folders):
  out = {}
  for corpus, src in folders.items():
    report = corpora.ReadReport(strict=True)
    out[corpus] = [e for s in SPLITS[corpus] for e in corpora.read(corpus, src, s, strict=True, report=report)]
  return out


def test_every_corpus_reads_back_completely(sample_corpus):
  read = _read_all(sample_corpus)
  assert len(read["how2sign"]) == SMALL.how2sign
  assert len(read["phoenix14t"]) == SMALL.phoenix
  assert len(read["hamnosys"]) == len(lexicon.CONCEPTS) * SMALL.hamnosys_signers + SMALL.hamnosys_text_only
  for corpus, examples in read.items():
    assert len({e.id for e in examples}) == len(examples), corpus
  assert sum(e.pose is None for e in read["hamnosys"]) == SMALL.hamnosys_text_only
  assert all(e.pose is not None for c in ("how2sign", "phoenix14t") for e in read[c])


def test_german_text_keeps_umlauts(sample_corpus):
  texts = " ".join(e.text for e in corpora.read("phoenix14t", sample_corpus["phoenix14t"], "train"))
  assert any(ch in texts for ch in "äöüß"), texts[:200]


def test_how2sign_frames_are_the_json_files(sample_corpus):
  ex = next(iter(corpora.read("how2sign", sample_corpus["how2sign"], "train")))
  folder = os.path.join(sample_corpus["how2sign"], "train_2D_keypoints", "openpose_output", "json", ex.id)
  assert ex.pose.num_frames == len(os.listdir(folder))
  assert ex.pose.skeleton == "openpose_137" and ex.pose.dims == 2


def test_same_seed_same_bytes(tmp_path):
  sizes = SMALL.__class__(how2sign=3, phoenix=3, hamnosys_signers=1, hamnosys_text_only=1, signers=2)

  def digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
      for name in sorted(files):
        h.update(name.encode())
        with open(os.path.join(dirpath, name), "rb") as f:
          h.update(f.read())
    return h.hexdigest()

  write_sample_corpus(str(tmp_path / "a"), sizes, seed=3)
  write_sample_corpus(str(tmp_path / "b"), sizes, seed=3)
  write_sample_corpus(str(tmp_path / "c"), sizes, seed=4)
  assert digest(tmp_path / "a") == digest(tmp_path / "b")
  assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_signs_are_distinct_in_the_lexicon_and_in_motion():
  signs = lexicon.signs()
  params = [s.params() for s in signs.values()]
  for i in range(len(params)):
    for j in range(i + 1, len(params)):
      assert sum(a != b for a, b in zip(params[i], params[j])) >= 2
  # The HamNoSys strings differ too (they are what HamNoSys -> sign learns from).
  assert len({s.hamnosys_symbols() for s in signs.values()}) == len(signs)


def test_same_sign_by_two_signers_is_closer_than_two_different_signs(sample_corpus):
  """What makes the corpus learnable: a sign's motion depends on the sign more than on the signer."""
  by_gloss = {}
  for e in corpora.read("hamnosys", sample_corpus["hamnosys"], "all"):
    if e.pose is not None:
      u, _ = normalize(to_unified(e.pose))
      right = u.data[:, skeletons.UNIFIED_RIGHT_HAND]
      # Time-normalised trajectory of the right hand, 16 steps.
      idx = np.linspace(0, u.num_frames - 1, 16).round().astype(int)
      by_gloss.setdefault(e.gloss, []).append(right[idx].reshape(-1))
  same = [np.linalg.norm(v[0] - v[1]) for v in by_gloss.values() if len(v) > 1]
  keys = list(by_gloss)
  different = [np.linalg.norm(by_gloss[a][0] - by_gloss[b][0]) for a, b in zip(keys, keys[1:])]
  assert np.median(same) < 0.5 * np.median(different)


def test_question_sentences_raise_the_brows():
  from asl_motiongpt.corpora.sample import animate
  signer = animate.make_signers(1, 0)[0]
  plain = animate.animate(("rain",), signer, False, np.random.default_rng(0))
  asked = animate.animate(("rain",), signer, True, np.random.default_rng(0))
  brows = slice(skeletons.UNIFIED_FACE_BLOCK.start + 2, skeletons.UNIFIED_FACE_BLOCK.start + 8)
  lift = plain.data[:, brows, 1] - asked.data[:, brows, 1]
  present = plain.mask[:, brows] & asked.mask[:, brows]
  np.testing.assert_allclose(lift[present], 0.05, atol=1e-5)
