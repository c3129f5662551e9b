"""The optional sign_language_datasets source: our conversion of one TFDS example (the builders
themselves download corpora, which tests never do)."""
import numpy as np
import pytest

from asl_motiongpt.corpora import CorpusError, ReadReport
from asl_motiongpt.corpora.tfds_source import from_tfds_example


def _example(points=543, frames=5):
  data = np.random.default_rng(0).normal(size=(frames, 1, points, 3)).astype(np.float32)
  conf = np.ones((frames, 1, points), np.float32)
  return {"id": b"seq-1", "signer": b"Signer03", "gloss": "REGEN MORGEN".encode(), "text": "regen übermorgen".encode(),
          "pose": {"data": data, "conf": conf, "fps": np.float32(25)}}


def test_tfds_example_becomes_an_example():
  ex = from_tfds_example(_example(), "phoenix14t", "holistic_543", "text", "gloss", ReadReport(), "train")
  assert (ex.id, ex.text, ex.gloss, ex.signer) == ("seq-1", "regen übermorgen", "REGEN MORGEN", "Signer03")
  assert ex.pose.data.shape == (5, 543, 3) and ex.pose.fps == 25


def test_tfds_example_with_the_wrong_layout_is_named():
  with pytest.raises(CorpusError, match="seq-1.*expected \\[frames, 543"):
    from_tfds_example(_example(points=137), "phoenix14t", "holistic_543", "text", "gloss", ReadReport(), "train")


def test_tfds_example_with_nan_is_masked_and_counted():
  example = _example()
  example["pose"]["data"][2, 0, 7, 1] = np.nan
  report = ReadReport()
  ex = from_tfds_example(example, "phoenix14t", "holistic_543", "text", "gloss", report, "train")
  assert not ex.pose.mask[2, 7] and report.counts()["masked"] == {"non_finite": 1}
