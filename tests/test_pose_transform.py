"""Normalisation, its inverse, fps resampling, unified <-> native layouts."""
import numpy as np
import pytest

from asl_motiongpt.pose import PoseSequence, denormalize, from_unified, normalize, resample, to_unified
from asl_motiongpt.pose import skeletons


def _random_unified(frames=20, dims=3, seed=0):
  rng = np.random.default_rng(seed)
  data = rng.normal(size=(frames, 50, dims)).astype(np.float32) * 100 + 300
  conf = rng.uniform(0.5, 1.0, (frames, 50)).astype(np.float32)
  conf[rng.uniform(size=conf.shape) < 0.1] = 0
  conf[:, [skeletons.NECK, skeletons.RIGHT_SHOULDER, skeletons.LEFT_SHOULDER]] = 1
  data[conf == 0] = 0
  return PoseSequence(data, conf, 25.0, "unified")


def test_normalize_then_denormalize_restores_the_poses():
  seq = _random_unified()
  norm_seq, norm = normalize(seq)
  back = denormalize(norm_seq, norm)
  np.testing.assert_allclose(back.data, seq.data, atol=1e-3)
  np.testing.assert_array_equal(back.confidence, seq.confidence)


def test_normalize_fills_a_missing_neck_from_the_nearest_frame():
  seq = _random_unified()
  seq.confidence[3, skeletons.NECK] = 0
  _, norm = normalize(seq)
  np.testing.assert_array_equal(norm.center[3], seq.data[2, skeletons.NECK])


def test_normalize_refuses_a_sequence_without_shoulders():
  seq = _random_unified()
  seq.confidence[:, skeletons.LEFT_SHOULDER] = 0
  with pytest.raises(ValueError, match="shoulders"):
    normalize(seq)


def test_resample_keeps_duration_and_is_exact_on_linear_motion():
  frames = 26
  t = np.arange(frames, dtype=np.float32)
  data = np.broadcast_to(t[:, None, None], (frames, 50, 2)).copy()
  seq = PoseSequence(data, np.ones((frames, 50)), 25.0, "unified")
  half = resample(seq, 12.5)
  assert half.num_frames == 13 and half.fps == 12.5
  np.testing.assert_allclose(half.data[:, 0, 0], np.arange(0, 26, 2))
  double = resample(seq, 50.0)
  assert double.num_frames == 51
  np.testing.assert_allclose(double.data[:, 0, 0], np.arange(51) / 2, atol=1e-5)


def test_resample_masks_where_a_neighbour_is_missing():
  seq = _random_unified(frames=10)
  seq.confidence[4, 9] = 0
  up = resample(seq, 50.0)  # frame 2k = source k, 2k+1 between k and k+1
  assert up.confidence[8, 9] == 0          # exactly source frame 4
  assert up.confidence[7, 9] == 0 and up.confidence[9, 9] == 0   # between 3-4 and 4-5
  assert up.confidence[6, 9] > 0


@pytest.mark.parametrize("target", ["openpose_137", "holistic_543"])
def test_from_unified_then_to_unified_is_identity_on_shared_joints(target):
  seq = _random_unified(dims=2 if target == "openpose_137" else 3)
  face = PoseSequence(np.concatenate([seq.data, np.ones((20, 22, seq.dims), np.float32)], 1),
                      np.concatenate([seq.confidence, np.ones((20, 22), np.float32)], 1), 25.0, "unified_face")
  native = from_unified(face, target)
  back = to_unified(native, face=True)
  keep = np.ones(72, bool)
  if target == "holistic_543":
    keep[skeletons.NECK] = False  # MediaPipe's neck is derived (mid-shoulders), never stored
  np.testing.assert_array_equal(back.data[:, keep], face.data[:, keep])
  np.testing.assert_array_equal(back.confidence[:, keep], face.confidence[:, keep])


def test_pose_sequence_checks_shapes():
  with pytest.raises(ValueError, match="confidence shape"):
    PoseSequence(np.zeros((3, 50, 2)), np.zeros((3, 49)), 25.0, "unified")
