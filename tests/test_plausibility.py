"""Hands a detector lost: `prepare` masks a hand in the frames where it cannot be a hand, lists each
masked hand under its record, raises in strict mode, and leaves real hands alone. The real case is
tests/fixtures/lost_hand: 14 frames of a lexicon file whose right hand flies off from frame 8 on."""
import json
import shutil

import numpy as np
import pytest

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.corpora.report import CorpusError
from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.plausibility import describe, implausible_hands

RIGHT_HAND = skeletons.UNIFIED_RIGHT_HAND
HEAD_AND_SHOULDERS = [skeletons.UNIFIED_BODY_POINTS.index(n) for n in ("NOSE", "NECK", "RIGHT_SHOULDER", "LEFT_SHOULDER")]


def _corpus(fixtures, tmp_path):
  src = tmp_path / "lost_hand"
  src.mkdir()
  shutil.copy(next((fixtures / "lost_hand").glob("*.pose")), src / "omicron.pose")
  shutil.copy(fixtures / "fingerspelling_lexicon" / "tsm" / "fs-sts2356b5844caddef7bb7b2439f4a6c39e.pose",
              src / "tsm_g.pose")  # both hands, tracked throughout: nothing to mask
  (src / "index.tsv").write_text("id\ttext\tsplit\nomicron\tΟ\ttrain\ntsm_g\tG\ttrain\n", encoding="utf-8")
  return src


@pytest.mark.parametrize("world_landmarks", [False, True])
def test_a_lost_hand_is_masked_in_its_frames_and_listed(fixtures, tmp_path, world_landmarks):
  from asl_motiongpt.data.prepare import PrepareOptions, load_prepared, prepare
  out = tmp_path / "prepared"
  stats = prepare(PrepareOptions(corpus="pose_dir", src=str(_corpus(fixtures, tmp_path)), out=str(out), dims=3,
                                 world_landmarks=world_landmarks))
  records = {r["id"].decode(): r for r in load_prepared(str(out), "pose_dir", "train")}
  right_hand_seen = (records["omicron"]["confidence"][:, RIGHT_HAND] > 0).any(axis=1)
  # Frames 0-8 sign the letter (8: the hand starts to fly off, still within the bounds); from 9 on
  # the fingers lie 1.2-3.2 shoulder widths from the wrist. Judged in image space with world
  # landmarks too (they hang the hand from the body's wrist, which hides where it was found).
  assert right_hand_seen.tolist() == [True] * 9 + [False] * 5
  assert (records["omicron"]["pose"][9:, RIGHT_HAND] == 0).all()
  body = records["omicron"]["confidence"][:, skeletons.UNIFIED_BODY] > 0
  assert body[9:13][:, HEAD_AND_SHOULDERS].all()  # the frames keep their time and their body (its arms may
  # be masked as not seen: test_body_points_mediapipe_did_not_see_are_masked_and_counted)
  assert (records["tsm_g"]["confidence"][:, RIGHT_HAND] > 0).any(axis=1).all()
  masked = [json.loads(line) for line in (out / "sign_corpus" / "pose_dir" / "1.0.0" / "skipped.jsonl").open()]
  assert [(m["kind"], m["reason"], m["record"], m["field"]) for m in masked] == [
      ("masked", rp.IMPLAUSIBLE_HAND, "omicron", "right_hand")]
  assert "frames 9-13 (5 of 14)" in masked[0]["detail"] and "the detector lost the hand" in masked[0]["detail"]
  assert stats["problems"]["train"]["masked"] == {rp.IMPLAUSIBLE_HAND: 1}


@pytest.mark.parametrize("min_visibility", [0.5, 0.0])
def test_body_points_mediapipe_did_not_see_are_masked_and_counted(fixtures, tmp_path, min_visibility):
  """MediaPipe's body confidence is a visibility: below 0.5 (an arm below the frame) the position is a
  guess, masked and counted as a note; 0 keeps every point. What `prepare` stores of a file is what
  inference makes of it (`plausibility.cleaned`), so a model reads what it was trained on."""
  from asl_motiongpt.data.prepare import PrepareOptions, load_prepared, prepare
  from asl_motiongpt.pose import read_pose
  from asl_motiongpt.pose.plausibility import cleaned
  from asl_motiongpt.pose.transform import normalize, to_unified
  src = _corpus(fixtures, tmp_path)
  out = tmp_path / "prepared"
  stats = prepare(PrepareOptions(corpus="pose_dir", src=str(src), out=str(out), dims=3, min_visibility=min_visibility))
  records = {r["id"].decode(): r for r in load_prepared(str(out), "pose_dir", "train")}
  unseen_total = 0
  for name in ("omicron", "tsm_g"):
    source = read_pose(str(src / f"{name}.pose"))
    raw = normalize(to_unified(source))[0].confidence[:, skeletons.UNIFIED_BODY]
    stored = records[name]["confidence"][:, skeletons.UNIFIED_BODY]
    unseen = (raw > 0) & (raw < min_visibility)
    unseen_total += int(unseen.sum())
    np.testing.assert_array_equal(stored, np.where(unseen, 0.0, raw))
    assert (records[name]["pose"][:, skeletons.UNIFIED_BODY][unseen] == 0).all()
    if min_visibility:  # the inference path keeps and drops the same joints, at the same places
      inference = cleaned(normalize(to_unified(source))[0], source.skeleton)
      np.testing.assert_array_equal(inference.confidence, records[name]["confidence"])
      np.testing.assert_allclose(inference.data, records[name]["pose"], atol=1e-6)
  notes = stats["problems"]["train"]["notes"].get(rp.BODY_NOT_VISIBLE, 0)
  assert notes == unseen_total and (notes > 20 if min_visibility else notes == 0)  # the arm below the frame


def test_an_openpose_score_is_not_a_visibility(fixtures):
  """OpenPose's confidences are detection scores (17 % of this file's body points under 0.5): kept."""
  from asl_motiongpt.pose import read_pose
  from asl_motiongpt.pose.plausibility import unseen_body_joints
  from asl_motiongpt.pose.transform import to_unified
  openpose = read_pose(str(fixtures / "pose_format" / "openpose.pose"))
  confidence = to_unified(openpose).confidence
  assert ((confidence[:, skeletons.UNIFIED_BODY] > 0) & (confidence[:, skeletons.UNIFIED_BODY] < 0.5)).any()
  assert not unseen_body_joints(confidence, openpose.skeleton).any()


def test_strict_prepare_names_the_record_and_the_hand(fixtures, tmp_path):
  from asl_motiongpt.data.prepare import PrepareOptions, prepare
  with pytest.raises(CorpusError) as info:
    prepare(PrepareOptions(corpus="pose_dir", src=str(_corpus(fixtures, tmp_path)), out=str(tmp_path / "out"), dims=3,
                           strict=True))
  assert (info.value.reason, info.value.record, info.value.field) == (rp.IMPLAUSIBLE_HAND, "omicron", "right_hand")


def test_each_bound_alone_flags_a_hand():
  """A real hand shape (a spread hand of 0.3 shoulder widths at the body's wrist) passes; fingers
  stretched past 1 shoulder width, or the hand's wrist 1.5 away from the body's, do not."""
  frames, joints = 4, skeletons.unified_skeleton(False).num_joints
  pose = np.zeros((frames, joints, 3), np.float32)
  mask = np.zeros((frames, joints), bool)
  body_wrist = skeletons.UNIFIED_BODY_POINTS.index("RIGHT_WRIST")
  angles = np.linspace(0, np.pi, 20)
  fingers = 0.3 * np.stack([np.cos(angles), np.sin(angles), np.zeros(20)], axis=-1)
  pose[:, body_wrist] = pose[:, RIGHT_HAND.start] = [0.5, 0.8, 0.0]
  pose[:, RIGHT_HAND.start + 1:RIGHT_HAND.stop] = pose[:, RIGHT_HAND.start:RIGHT_HAND.start + 1] + fingers
  mask[:, body_wrist] = mask[:, RIGHT_HAND] = True
  pose[1, RIGHT_HAND.start + 1:RIGHT_HAND.stop] = pose[1, RIGHT_HAND.start] + 4 * fingers  # stretched
  pose[2, RIGHT_HAND] += np.array([1.5, 0.0, 0.0], np.float32)  # the whole hand 1.5 away from the wrist
  found = implausible_hands(pose, mask)
  assert found["right_hand"].tolist() == [False, True, True, False]
  assert not found["left_hand"].any()  # absent: nothing to judge
  mask[:, body_wrist] = False  # no body wrist: the place cannot be judged, the size still can
  assert implausible_hands(pose, mask)["right_hand"].tolist() == [False, True, False, False]


def test_masked_frames_are_described_as_ranges():
  assert describe(np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 1], bool)) == "frames 3-5, 9 (4 of 10)"
