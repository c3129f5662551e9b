"""Real pose files from tests/fixtures read into PoseSequence and mapped to the unified skeleton."""
import numpy as np
import pytest
from pose_format import Pose

from asl_motiongpt.pose import PoseFileError, normalize, read_pose, to_unified, write_pose
from asl_motiongpt.pose import skeletons

CASES = [  # file, skeleton, frames, points, dims, fps
    ("pose_format/openpose.pose", "openpose_137", 93, 137, 2, 24),
    ("pose_format/mediapipe.pose", "mediapipe_178", 170, 178, 3, 24),
    ("phoenix14t_tfds/25October_2010_Monday_tagesschau-17.pose", "holistic_543", 86, 543, 3, 25),
    # what pose-format 0.15's `video_to_pose` (MediaPipe Holistic 0.10.21) writes for a real clip: with
    # world landmarks, face 468 and (refine_face_landmarks=true) 478 points
    ("video/test_video.holistic.pose", "holistic_576", 58, 576, 3, pytest.approx(29.9167, abs=1e-3)),
    ("video/test_video.holistic_refined.pose", "holistic_586", 58, 586, 3, pytest.approx(29.9167, abs=1e-3)),
]


def _shoulder_width(u):
  both = u.mask[:, skeletons.RIGHT_SHOULDER] & u.mask[:, skeletons.LEFT_SHOULDER]
  return np.linalg.norm(u.data[both, skeletons.RIGHT_SHOULDER] - u.data[both, skeletons.LEFT_SHOULDER], axis=-1)


@pytest.mark.parametrize("path,skeleton,frames,points,dims,fps", CASES)
def test_reads_real_pose_file_with_its_layout(fixtures, path, skeleton, frames, points, dims, fps):
  seq = read_pose(fixtures / path)
  assert seq.skeleton == skeleton
  assert seq.data.shape == (frames, points, dims)
  assert seq.confidence.shape == (frames, points)
  assert seq.fps == fps


@pytest.mark.parametrize("path,skeleton,frames,points,dims,fps", CASES)
def test_body_wrist_and_hand_root_coincide_in_unified(fixtures, path, skeleton, frames, points, dims, fps):
  u = to_unified(read_pose(fixtures / path), face=True)
  assert u.data.shape == (frames, 72, dims)
  width = _shoulder_width(u).mean()
  checked = 0
  for wrist, hand in ((skeletons.RIGHT_WRIST, skeletons.UNIFIED_RIGHT_HAND.start),
                      (skeletons.LEFT_WRIST, skeletons.UNIFIED_LEFT_HAND.start)):
    both = u.mask[:, wrist] & u.mask[:, hand]
    distance = np.linalg.norm(u.data[both, wrist] - u.data[both, hand], axis=-1) / width
    checked += both.sum()
    # Different detectors (body vs hand model) agree on the wrist within a third of a shoulder width.
    assert (distance < 0.33).all(), (path, distance.max())
  assert checked > 0


@pytest.mark.parametrize("path,skeleton,frames,points,dims,fps", CASES)
def test_normalised_neck_at_origin_and_unit_shoulders(fixtures, path, skeleton, frames, points, dims, fps):
  u, norm = normalize(to_unified(read_pose(fixtures / path)))
  neck = u.data[u.mask[:, skeletons.NECK], skeletons.NECK]
  assert np.abs(neck).max() < 1e-5
  assert abs(_shoulder_width(u).mean() - 1.0) < 1e-4
  assert norm.scale > 0


def test_mediapipe_neck_is_the_shoulder_midpoint_and_nose_is_missing(fixtures):
  seq = read_pose(fixtures / "pose_format/mediapipe.pose")
  u = to_unified(seq)
  pts = seq.points
  ls, rs = pts.index(("POSE_LANDMARKS", "LEFT_SHOULDER")), pts.index(("POSE_LANDMARKS", "RIGHT_SHOULDER"))
  both = seq.mask[:, ls] & seq.mask[:, rs]
  np.testing.assert_allclose(u.data[both, skeletons.NECK], (seq.data[both, ls] + seq.data[both, rs]) / 2, rtol=1e-6)
  # The 178-point layout has neither a body nose nor face-mesh point 1: masked, not invented.
  assert not u.mask[:, 0].any()


def test_openpose_joints_land_on_the_right_unified_joints(fixtures):
  seq = read_pose(fixtures / "pose_format/openpose.pose")
  u = to_unified(seq, face=True)
  op = skeletons.OPENPOSE_137
  pairs = [(op.index("pose_keypoints_2d", "RWrist"), skeletons.RIGHT_WRIST),
           (op.index("hand_left_keypoints_2d", "BASE"), skeletons.UNIFIED_LEFT_HAND.start),
           (op.index("hand_right_keypoints_2d", "P_DIP"), skeletons.UNIFIED_RIGHT_HAND.stop - 1),
           (op.index("face_keypoints_2d", "FN_30"), skeletons.UNIFIED_FACE_BLOCK.start)]
  for src, dst in pairs:
    present = seq.mask[:, src]
    np.testing.assert_array_equal(u.data[present, dst], seq.data[present, src])
    np.testing.assert_array_equal(u.mask[:, dst], present)


def test_unknown_layout_is_refused_with_the_file_name(fixtures):
  path = fixtures / "pose_format/mediapipe_hand_normalized.pose"
  with pytest.raises(PoseFileError, match="mediapipe_hand_normalized.pose.*unrecognised pose layout"):
    read_pose(path)


@pytest.mark.parametrize("path", [c[0] for c in CASES])
def test_pose_write_read_is_exact_and_opens_in_pose_format(fixtures, tmp_path, path):
  for seq in (read_pose(fixtures / path), to_unified(read_pose(fixtures / path), face=True)):
    out = tmp_path / "out.pose"
    write_pose(seq, out)
    back = read_pose(out)
    if "video/" in path and seq.points is not None:  # world landmarks are stored scaled by the frame size
      np.testing.assert_allclose(back.data, seq.data, rtol=1e-6, atol=1e-6)
      back = back.replace(data=seq.data)
    assert back == seq
    pose = Pose.read(out.read_bytes())
    assert pose.body.data.shape == (seq.num_frames, 1, seq.num_joints, seq.dims)
    assert pose.header.total_points() == seq.num_joints


def test_truncated_pose_file_is_a_clear_error(fixtures, tmp_path):
  bad = tmp_path / "cut.pose"
  bad.write_bytes((fixtures / CASES[0][0]).read_bytes()[:5000])
  with pytest.raises(PoseFileError, match="cut.pose"):
    read_pose(bad)


@pytest.mark.parametrize("components,name", [
    ((("POSE_LANDMARKS", 33), ("FACE_LANDMARKS", 468), ("LEFT_HAND_LANDMARKS", 21), ("RIGHT_HAND_LANDMARKS", 21)),
     "holistic_543"),
    ((("POSE_LANDMARKS", 33), ("FACE_LANDMARKS", 478), ("LEFT_HAND_LANDMARKS", 21), ("RIGHT_HAND_LANDMARKS", 21)),
     "holistic_553"),
    ((("POSE_LANDMARKS", 33), ("LEFT_HAND_LANDMARKS", 21), ("RIGHT_HAND_LANDMARKS", 21), ("POSE_WORLD_LANDMARKS", 33)),
     "holistic_108"),
    ((("RIGHT_HAND_LANDMARKS", 21), ("POSE_LANDMARKS", 33), ("LEFT_HAND_LANDMARKS", 21)), "holistic_75"),  # any order
    ((("POSE_LANDMARKS", 8), ("FACE_LANDMARKS", 128), ("LEFT_HAND_LANDMARKS", 21), ("RIGHT_HAND_LANDMARKS", 21)),
     "mediapipe_178"),
    ((("pose_keypoints_2d", 25), ("face_keypoints_2d", 68), ("hand_left_keypoints_2d", 21),
      ("hand_right_keypoints_2d", 21)), "openpose_135"),
    ((("pose_keypoints_2d", 25), ("hand_left_keypoints_2d", 21), ("hand_right_keypoints_2d", 21)), "openpose_67"),
    ((("BODY", 8), ("LEFT_HAND", 21), ("RIGHT_HAND", 21), ("FACE", 22)), "unified_face"),
])
def test_layouts_are_recognised_by_their_components_not_a_total(components, name):
  assert skeletons.identify(components) == name
  assert skeletons.layout_family(name) in skeletons.FAMILY_RULES


@pytest.mark.parametrize("components,why", [
    ((("LEFT_HAND_LANDMARKS", 21),), "no body"),
    ((("POSE_LANDMARKS", 33), ("FACE_LANDMARKS", 470), ("LEFT_HAND_LANDMARKS", 21), ("RIGHT_HAND_LANDMARKS", 21)),
     "a face of 470 points"),
    ((("POSE_LANDMARKS", 33), ("LEFT_HAND_LANDMARKS", 21), ("RIGHT_HAND_LANDMARKS", 21), ("EXTRA", 5)),
     "an unknown component"),
    ((("POSE_LANDMARKS", 33), ("LEFT_HAND_LANDMARKS", 21), ("LEFT_HAND_LANDMARKS", 21)), "a repeated component"),
])
def test_an_unknown_layout_is_refused_listing_its_components_and_what_is_known(components, why):
  with pytest.raises(ValueError) as e:
    skeletons.identify(components)
  message = str(e.value)
  assert all(f"{n} ({k} points)" in message for n, k in components), (why, message)
  assert "holistic_N" in message and "openpose_N" in message and "get_components" in message


@pytest.mark.parametrize("path", ["video/test_video.holistic.pose", "video/test_video.holistic_refined.pose"])
def test_world_landmarks_give_the_body_in_metres_with_hands_and_face_attached(fixtures, path):
  """pose-format stores Holistic's world landmarks as (x * width, y * height, z metres); read back in
  metres, they make a body of human size, and the image-space hands and face scaled onto it do too."""
  from asl_motiongpt.pose.transform import with_world_landmarks
  seq = read_pose(fixtures / path)
  world = to_unified(with_world_landmarks(seq), face=True)
  image = to_unified(seq, face=True)
  np.testing.assert_array_equal(world.mask[:, :8], image.mask[:, :8])
  assert 0.25 < _shoulder_width(world).mean() < 0.45  # metres (an adult's shoulders, joint centres)
  hand = skeletons.UNIFIED_RIGHT_HAND.start
  present = world.mask[:, hand] & world.mask[:, hand + 9]
  assert present.sum() >= 10  # the signer's right hand is seen in a third of the clip
  palm = np.linalg.norm(world.data[present, hand] - world.data[present, hand + 9], axis=-1)
  assert 0.06 < palm.mean() < 0.13  # wrist -> middle finger knuckle
  np.testing.assert_allclose(world.data[present, hand], world.data[present, skeletons.RIGHT_WRIST], atol=1e-6)
  assert np.ptp(world.data[world.mask[:, 0], 0, 2]) > 0  # real depth varies (image z of the body is not used)


def test_supported_layouts_table_in_the_docs_is_the_registry(fixtures):
  design = (fixtures.parent.parent / "docs" / "DESIGN.md").read_text(encoding="utf-8")
  assert skeletons.supported_layouts_markdown() in design, "regenerate: python -c 'from asl_motiongpt.pose import " \
      "skeletons; print(skeletons.supported_layouts_markdown())'"
