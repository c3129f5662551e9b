"""prepare -> ArrayRecord -> read back (TFDS data source and Grain) equals the source."""
import json
import os

import numpy as np
import pytest

from asl_motiongpt import corpora
from asl_motiongpt.data.prepare import PrepareOptions, dataset_dir, load_prepared, prepare
from asl_motiongpt.pose import normalize, to_unified

SPLITS = {"how2sign": ("train", "val", "test"), "phoenix14t": ("train", "dev", "test"),
          "hamnosys": ("train", "dev", "test")}


@pytest.fixture(scope="module")
def prepared(sample_corpus, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("prepared"))
  stats = {c: prepare(PrepareOptions(corpus=c, src=src, out=out)) for c, src in sample_corpus.items()}
  return out, stats


@pytest.mark.parametrize("corpus", list(SPLITS))
def test_read_back_equals_source(sample_corpus, prepared, corpus):
  out, _ = prepared
  for split in SPLITS[corpus]:
    source = {e.id: e for e in corpora.read(corpus, sample_corpus[corpus], split)}
    records = load_prepared(out, corpus, split)
    assert len(records) == len(source)
    seen = set()
    for i in range(len(records)):
      r = records[i]
      ex = source[r["id"].decode()]
      seen.add(ex.id)
      assert r["text"].decode() == (ex.text or "")
      assert r["gloss"].decode() == (ex.gloss or "")
      assert r["hamnosys"].decode() == (ex.hamnosys or "")
      assert r["corpus"].decode() == corpus
      if ex.pose is None:
        assert not r["has_pose"] and r["pose"].shape[0] == 0
        continue
      expected, norm = normalize(to_unified(ex.pose))
      np.testing.assert_array_equal(r["pose"][..., :expected.dims], expected.data)
      np.testing.assert_array_equal(r["confidence"], expected.confidence)
      np.testing.assert_allclose(r["scale"], norm.scale, rtol=1e-6)
      assert r["fps"] == ex.pose.fps
    assert seen == set(source)


def test_grain_reads_prepared_records(prepared):
  import grain
  out, _ = prepared
  source = load_prepared(out, "phoenix14t", "train")
  dataset = grain.MapDataset.source(source).map(lambda r: r["pose"].shape[0])
  lengths = list(dataset)
  assert len(lengths) == len(source) and min(lengths) > 0


def test_stats_file(prepared):
  out, stats = prepared
  with open(os.path.join(dataset_dir(out, "hamnosys"), "stats.json"), encoding="utf-8") as f:
    written = json.load(f)
  train = written["splits"]["train"]
  assert train["text_only"] > 0 and train["examples"] == train["with_pose"] + train["text_only"]
  assert len(train["joint_mean"]) == 50 and len(train["joint_mean"][0]) == 2
  # Normalised: the neck (joint 1) is at the origin on average, with no spread.
  np.testing.assert_allclose(train["joint_mean"][1], 0, atol=1e-4)
  assert written["problems"]["train"]["notes"] == {"text_only": train["text_only"]}
  assert stats["phoenix14t"]["frames_per_second"] > 0


def test_existing_output_is_not_overwritten_by_accident(sample_corpus, prepared):
  out, _ = prepared
  with pytest.raises(FileExistsError, match="--overwrite"):
    prepare(PrepareOptions(corpus="hamnosys", src=sample_corpus["hamnosys"], out=out))


def test_face_block_and_3d_options(sample_corpus, tmp_path):
  prepare(PrepareOptions(corpus="how2sign", src=sample_corpus["how2sign"], out=str(tmp_path), face=True,
                         dims=3, splits=("val",)))
  r = load_prepared(str(tmp_path), "how2sign", "val")[0]
  assert r["pose"].shape[1:] == (72, 3)
  assert (r["pose"][..., 2] == 0).all()  # 2D source: no invented depth
  assert r["confidence"][:, 50:].max() > 0  # face block present
