"""The readers on the real corpus samples in tests/fixtures."""
import json

import numpy as np
import pytest

from asl_motiongpt import corpora
from asl_motiongpt.corpora import hamnosys
from asl_motiongpt.pose import normalize, skeletons, to_unified


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_progressive_transformers_skels(fixtures, split):
  src = fixtures / "phoenix14t_progressive_transformers"
  report = corpora.ReadReport()
  examples = list(corpora.read("phoenix14t_pt", str(src), split, report=report))
  names = (src / f"{split}.files").read_text(encoding="utf-8").split()
  assert [e.id for e in examples] == [n.split("/")[-1] for n in names]
  lines = (src / f"{split}.skels").read_text().splitlines()
  texts = (src / f"{split}.text").read_text(encoding="utf-8").splitlines()
  for ex, line, text in zip(examples, lines, texts):
    values = line.split()
    assert ex.pose.data.shape == (len(values) // 151, 50, 3)
    assert ex.text == text.strip()
    # Scaling undone: the first frame equals the file's values times 3 (counter stripped).
    first = np.asarray(values[:150], np.float32).reshape(50, 3) * 3
    np.testing.assert_allclose(ex.pose.data[0][ex.pose.mask[0]], first[ex.pose.mask[0]], rtol=1e-5)
    u, _ = normalize(to_unified(ex.pose))
    width = np.linalg.norm(ex.pose.data[:, 2] - ex.pose.data[:, 5], axis=-1).mean()
    assert 0.85 < width < 1.15  # the PT data is already in shoulder units once the 1/3 is undone
    assert (ex.pose.data[:, skeletons.NECK] == 0).all()
    def gap(wrist, hand):
      return np.median(np.linalg.norm(u.data[:, wrist] - u.data[:, hand.start], axis=-1))
    # Joints 8-28 are the left hand, 29-49 the right: each hand's root sits at its own wrist
    # (within a quarter shoulder width) and far from the other wrist.
    for wrist, own, other in ((skeletons.LEFT_WRIST, skeletons.UNIFIED_LEFT_HAND, skeletons.UNIFIED_RIGHT_HAND),
                              (skeletons.RIGHT_WRIST, skeletons.UNIFIED_RIGHT_HAND, skeletons.UNIFIED_LEFT_HAND)):
      assert gap(wrist, own) < 0.25 and gap(wrist, own) < gap(wrist, other) / 3
  assert report.skipped == []


def test_phoenix_umlauts_survive(fixtures):
  examples = list(corpora.read("phoenix14t_pt", str(fixtures / "phoenix14t_progressive_transformers"), "dev"))
  assert examples[0].text.startswith("tiefer luftdruck bestimmt in den nächsten tagen")
  assert "kräftige" in examples[1].text


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_phoenix_tfds_csv_and_holistic_pose(fixtures, split):
  examples = list(corpora.read("phoenix14t", str(fixtures / "phoenix14t_tfds"), split))
  assert len(examples) == 1
  ex = examples[0]
  assert ex.id == "25October_2010_Monday_tagesschau-17"
  assert ex.signer == "Signer01"
  assert ex.gloss.startswith("REGEN SCHNEE REGION")
  assert ex.text.startswith("regen und schnee lassen an den alpen")
  assert ex.pose.skeleton == "holistic_543" and ex.pose.data.shape == (86, 543, 3)


def test_same_sequence_in_both_phoenix_formats_has_similar_content(fixtures):
  """PT (181 frames) and Holistic (86 frames) are different extractions: compare the content."""
  pt = {e.id: e for e in corpora.read("phoenix14t_pt", str(fixtures / "phoenix14t_progressive_transformers"), "test")}
  hol = next(iter(corpora.read("phoenix14t", str(fixtures / "phoenix14t_tfds"), "test")))
  a, _ = normalize(to_unified(pt[hol.id].pose))
  b, _ = normalize(to_unified(hol.pose))
  assert pt[hol.id].text.rstrip(" .") == hol.text.rstrip(" .")
  # After mapping, each unified wrist follows the same trajectory in both extractions (time
  # stretched to match): this is what shows that the PT file's sides are swapped.
  ta, tb = np.linspace(0, 1, a.num_frames), np.linspace(0, 1, b.num_frames)
  for joint in (skeletons.RIGHT_WRIST, skeletons.LEFT_WRIST):
    present = b.mask[:, joint]
    xa = np.interp(tb[present], ta, a.data[:, joint, 0])
    xb = b.data[present, joint, 0]
    assert np.sign(xa.mean()) == np.sign(xb.mean()), joint
  present = b.mask[:, skeletons.LEFT_WRIST]
  xa = np.interp(tb[present], ta, a.data[:, skeletons.LEFT_WRIST, 0])
  assert np.corrcoef(xa, b.data[present, skeletons.LEFT_WRIST, 0])[0, 1] > 0.5


def test_hamnosys_all_entries(fixtures):
  src = fixtures / "ham2pose"
  raw = json.loads((src / "hamnosys_data.json").read_text(encoding="utf-8"))
  report = corpora.ReadReport()
  examples = list(corpora.read("hamnosys", str(src), "all", report=report))
  assert len(examples) == len(raw) == 959  # the trimmed sample (tests/fixtures/README.md)
  assert report.counts()["notes"] == {"text_only": 959}  # the fixture ships no poses
  by_id = {e.id: e for e in examples}
  e = by_id["10010"]
  assert e.gloss == "PILL1^" and e.pose is None
  assert e.hamnosys == raw["10010"]["hamnosys"]
  assert e.hamnosys_symbols[:3] == ("hampinch12", "hamextfingerul", "hampalml")
  # Where the file names the symbols and the lengths agree, our table gives the same names.
  agree = 0
  for key, entry in raw.items():
    names = entry["hamnosys_text"].split(",") if entry["hamnosys_text"] else []
    if names and len(names) == len(entry["hamnosys"]):
      assert hamnosys.symbol_names(entry["hamnosys"]) == tuple(names)
      agree += 1
  assert agree > 300  # of the 319 entries whose names and symbols have equal lengths
  # Every entry gets one name per symbol; unknown code points are named, not dropped.
  assert all(len(e.hamnosys_symbols) == len(e.hamnosys) for e in examples if e.hamnosys_symbols
             and not raw[e.id]["hamnosys_text"])
  unknown = sum(s.startswith("U+") for e in examples for s in e.hamnosys_symbols)
  total = sum(len(e.hamnosys_symbols) for e in examples)
  assert unknown / total < 0.01


def test_hamnosys_hash_splits_partition_the_corpus(fixtures):
  src = str(fixtures / "ham2pose")
  ids = {s: {e.id for e in corpora.read("hamnosys", src, s)} for s in ("train", "dev", "test")}
  assert sum(map(len, ids.values())) == 959
  assert not (ids["train"] & ids["dev"]) and not (ids["train"] & ids["test"]) and not (ids["dev"] & ids["test"])
  assert 0.03 < len(ids["test"]) / 959 < 0.07


def test_openpose_poseheader_matches_our_openpose_layout(fixtures):
  """Ham2Pose's component header (137 points) is the layout we call openpose_137."""
  from pose_format.pose_header import PoseHeader
  from pose_format.utils.reader import BufferReader
  header = PoseHeader.read(BufferReader((fixtures / "ham2pose/openpose.poseheader").read_bytes()))
  assert tuple((c.name, len(c.points)) for c in header.components) == skeletons.OPENPOSE_137.signature()
  assert [p for c in header.components for p in c.points] == [p for _, p in skeletons.OPENPOSE_137.points]
