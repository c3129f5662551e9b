"""Augmentations of training windows (asl_motiongpt/pose/augment.py): each keeps a sign's meaning and
does nothing when set to nothing."""
import numpy as np
import pytest

from asl_motiongpt.pose import augment, skeletons


def _window(frames=12, joints=50, dims=3, seed=0):
  rng = np.random.default_rng(seed)
  pose = rng.normal(size=(frames, joints, dims)).astype(np.float32)
  mask = rng.random((frames, joints)) > 0.1
  return np.where(mask[..., None], pose, 0.0).astype(np.float32), mask


def test_a_rotation_by_zero_is_the_identity_and_rotations_keep_lengths():
  pose, _ = _window()
  np.testing.assert_allclose(augment.rotate(pose, 0.0), pose, atol=1e-7)
  turned = augment.rotate(pose, 0.3)
  np.testing.assert_allclose(np.linalg.norm(turned, axis=-1), np.linalg.norm(pose, axis=-1), rtol=1e-5)
  np.testing.assert_allclose(augment.rotate(turned, -0.3), pose, atol=1e-5)
  flat, _ = _window(dims=2)
  np.testing.assert_array_equal(augment.rotate(flat, 0.3, (0, 2)), flat)  # no depth to turn through


def test_a_resample_keeps_the_first_and_last_frame_and_changes_the_length_by_the_speed():
  pose, mask = _window(frames=21)
  faster, faster_mask = augment.resample(pose, mask, 2.0)
  assert faster.shape[0] == 11 and faster_mask.shape == (11, 50)
  for frame in (0, -1):
    np.testing.assert_allclose(faster[frame], pose[frame], atol=1e-6)
    np.testing.assert_array_equal(faster_mask[frame], mask[frame])
  slower, _ = augment.resample(pose, mask, 0.5)
  assert slower.shape[0] == 41
  np.testing.assert_allclose(slower[::2][mask[:, :, None].repeat(3, -1)[:, :, 0]], pose[mask], atol=1e-6)
  same, same_mask = augment.resample(pose, mask, 1.0)
  assert same is pose and same_mask is mask


def test_mirroring_twice_is_the_identity_and_swaps_the_hands():
  for joints in (50, 72):
    pose, mask = _window(joints=joints)
    once, once_mask = augment.mirror(pose, mask)
    np.testing.assert_allclose(once[:, skeletons.UNIFIED_RIGHT_HAND, 1], pose[:, skeletons.UNIFIED_LEFT_HAND, 1])
    np.testing.assert_allclose(once[:, skeletons.UNIFIED_RIGHT_HAND, 0], -pose[:, skeletons.UNIFIED_LEFT_HAND, 0])
    np.testing.assert_array_equal(once_mask[:, skeletons.RIGHT_WRIST], mask[:, skeletons.LEFT_WRIST])
    np.testing.assert_allclose(once[:, skeletons.NECK, 0], -pose[:, skeletons.NECK, 0])  # the middle stays
    twice, twice_mask = augment.mirror(once, once_mask)
    np.testing.assert_array_equal(twice, pose)
    np.testing.assert_array_equal(twice_mask, mask)
  with pytest.raises(ValueError, match="unified skeleton"):
    augment.mirror_permutation(137)


def test_nothing_set_changes_nothing_and_a_draw_is_reproducible():
  pose, mask = _window()
  same_pose, same_mask = augment.augment(pose, mask, np.random.default_rng(1), augment.Augmentation())
  assert same_pose is pose and same_mask is mask
  everything = augment.Augmentation(rotation_degrees=10, tilt_degrees=5, scale=0.1, shift=0.1, speed=0.2,
                                    hand_dropout=0.5, mirror=0.5, short_piece=0.5)
  first = augment.augment(pose, mask, np.random.default_rng(7), everything)
  again = augment.augment(pose, mask, np.random.default_rng(7), everything)
  np.testing.assert_array_equal(first[0], again[0])
  np.testing.assert_array_equal(first[1], again[1])
  assert np.all(first[0][~first[1]] == 0)  # a missing joint stays zero


def test_a_dropped_hand_is_missing_for_the_whole_window():
  pose, mask = _window()
  dropped = augment.drop_hand(mask, skeletons.UNIFIED_LEFT_HAND)
  assert not dropped[:, skeletons.UNIFIED_LEFT_HAND].any()
  np.testing.assert_array_equal(dropped[:, skeletons.UNIFIED_RIGHT_HAND], mask[:, skeletons.UNIFIED_RIGHT_HAND])


def test_a_short_piece_is_a_run_of_the_sequence_of_every_length_from_one_code_up():
  pose, mask = _window(frames=12)
  rng = np.random.default_rng(3)
  lengths = set()
  for _ in range(200):
    piece, piece_mask = augment.short_piece(pose, mask, rng)
    length = piece.shape[0]
    lengths.add(length)
    starts = [s for s in range(12 - length + 1) if np.array_equal(pose[s:s + length], piece)]
    assert starts and np.array_equal(mask[starts[0]:starts[0] + length], piece_mask)  # contiguous, as recorded
  assert lengths == set(range(augment.SHORT_PIECE_MIN, 13))  # 4 frames (one code) up to the whole
  short, short_mask = _window(frames=augment.SHORT_PIECE_MIN)
  assert augment.short_piece(short, short_mask, rng)[0] is short  # nothing shorter than one code
  # through `augment`: with probability 1 the window is such a piece, never longer than the sequence
  pieces = [augment.augment(pose, mask, np.random.default_rng(seed), augment.Augmentation(short_piece=1.0))[0]
            for seed in range(20)]
  assert max(p.shape[0] for p in pieces) <= 12 and min(p.shape[0] for p in pieces) < 12
