"""Pose errors: MPJPE and DTW-MJE (and hand-only variants) on cases with known answers."""
import numpy as np
import pytest

from asl_motiongpt.metrics.pose_metrics import HANDS, dtw_mje, mpjpe, pose_metrics


def _seq(frames=20, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(frames, 50, 3)), np.ones((frames, 50), bool)


def test_mpjpe_of_a_constant_offset_is_its_length():
  pose, mask = _seq()
  assert mpjpe(pose + np.array([0.3, 0.4, 0.0]), mask, pose, mask) == pytest.approx(0.5)


def test_masked_joints_count_nowhere():
  pose, mask = _seq()
  other = pose.copy()
  other[:, 10] += 100.0
  m = mask.copy()
  m[:, 10] = False
  assert mpjpe(other, m, pose, mask) == pytest.approx(0.0)
  assert dtw_mje(other, m, pose, mask) == pytest.approx(0.0)


def test_dtw_mje_ignores_tempo_but_not_content():
  pose, mask = _seq(12)
  slow = np.repeat(pose, 2, axis=0)  # same signing at half speed
  assert dtw_mje(slow, np.repeat(mask, 2, axis=0), pose, mask) == pytest.approx(0.0)
  assert dtw_mje(pose + np.array([0.0, 0.0, 0.2]), mask, pose, mask) == pytest.approx(0.2)
  other, _ = _seq(12, seed=1)
  assert dtw_mje(other, mask, pose, mask) > 1.0


def test_dtw_mje_against_brute_force_alignment():
  """On short sequences, enumerate every monotone warping path and take the best mean cost."""
  from asl_motiongpt.metrics.pose_metrics import frame_costs
  pose_a, mask_a = _seq(4, seed=2)
  pose_b, mask_b = _seq(3, seed=3)
  cost = frame_costs(pose_a, mask_a, pose_b, mask_b)

  def paths(i, j):
    if (i, j) == (0, 0):
      yield [(0, 0)]
      return
    for di, dj in ((1, 1), (1, 0), (0, 1)):
      if i - di >= 0 and j - dj >= 0:
        for p in paths(i - di, j - dj):
          yield p + [(i, j)]

  best = min((sum(cost[i, j] for i, j in p), len(p)) for p in paths(3, 2))
  assert dtw_mje(pose_a, mask_a, pose_b, mask_b) == pytest.approx(best[0] / best[1])


def test_hand_variant_sees_only_hands():
  pose, mask = _seq()
  moved = pose.copy()
  moved[:, :8] += 1.0  # body only
  result = pose_metrics(moved, mask, pose, mask)
  assert result["mpjpe_hands"] == pytest.approx(0.0) and result["dtw_mje_hands"] == pytest.approx(0.0)
  assert result["mpjpe"] == pytest.approx(np.sqrt(3) * 8 / 50)
  assert len(HANDS) == 42
