"""The tokenizer's reconstruction report: per-part errors, the mean-pose baseline, codebook use."""
import numpy as np
import pytest

from asl_motiongpt.gesture.reconstruction import codebook_use, reconstruction_report


class _OffsetTokenizer:
  """A stand-in whose decode returns the input with the left hand moved by 0.1 along x, and whose
  codes are the frame index // 4 (so codebook use is known)."""

  class spec:
    class vq:
      codebook_size = 8
      quantize = True
    parts = (("all", 0, 50),)
    codes_per_step = 1

  def encode(self, params, state, pose, mask):
    self._last = pose
    return (np.arange(-(-len(pose) // 4)) % 8)[:, None]

  def decode(self, params, state, codes, frames):
    out = self._last[:frames].copy()
    out[:, 8:29, 0] += 0.1
    return out


def test_per_part_errors_baseline_and_codebook_use():
  rng = np.random.default_rng(0)
  sequences = [(f"s{i}", rng.normal(size=(n, 50, 2)), np.ones((n, 50), bool)) for i, n in enumerate((12, 20))]
  sequences[1][2][:, 30] = False  # a right-hand joint missing in one sequence: counts nowhere
  r = reconstruction_report(_OffsetTokenizer(), None, None, sequences)
  assert r["mpjpe_left_hand"] == pytest.approx(0.1) and r["mpjpe_body"] == 0 and r["mpjpe_right_hand"] == 0
  assert "mpjpe_face" not in r  # 50 joints: no face block
  poses = np.concatenate([p for _, p, _ in sequences])
  masks = np.concatenate([m for _, _, m in sequences])
  mean = np.stack([poses[masks[:, j], j].mean(0) for j in range(50)])
  body = np.linalg.norm(poses[:, :8] - mean[:8], axis=-1).mean()
  assert r["baseline_body"] == pytest.approx(body) and r["ratio_body"] == 0
  right = np.linalg.norm(poses[:, 29:50] - mean[29:50], axis=-1)[masks[:, 29:50]].mean()
  assert r["baseline_right_hand"] == pytest.approx(right)
  assert r["mpjpe"] == pytest.approx(0.1 * 21 * 32 / masks.sum())
  # codes 0,1,2 (12 frames) and 0..4 (20 frames): 5 of 8 codes used
  assert r["codes_used"] == pytest.approx(5 / 8) and r["distinct_codes"] == 5
  counts = np.array([2, 2, 2, 1, 1], float)
  assert r["perplexity"] == pytest.approx(np.exp(-(counts / 8 * np.log(counts / 8)).sum()))
  assert codebook_use([np.array([[0], [1]]), np.array([[1], [3]])], 4)["codes_used"] == 0.75


class _BentFingerTokenizer(_OffsetTokenizer):
  """Decodes the input with one left-hand finger joint (unified 9) moved by 0.2 along y."""

  def decode(self, params, state, codes, frames):
    out = self._last[:frames].copy()
    out[:, 9, 1] += 0.2
    return out


def test_hand_errors_split_into_place_and_shape():
  """A hand moved as a whole is misplaced, not misshaped; a bent finger is misshaped, not misplaced."""
  rng = np.random.default_rng(1)
  sequences = [("s", rng.normal(size=(16, 50, 2)), np.ones((16, 50), bool))]
  moved = reconstruction_report(_OffsetTokenizer(), None, None, sequences)
  assert moved["place_left_hand"] == pytest.approx(0.1) and moved["shape_left_hand"] == pytest.approx(0, abs=1e-12)
  assert moved["place_right_hand"] == 0 and moved["shape_right_hand"] == 0
  bent = reconstruction_report(_BentFingerTokenizer(), None, None, sequences)
  assert bent["place_left_hand"] == 0 and bent["shape_left_hand"] == pytest.approx(0.2 / 20)
  assert "place_body" not in bent
  from asl_motiongpt.gesture.reconstruction import format_report
  row = next(line for line in format_report(bent).splitlines() if line.strip().startswith("left_hand"))
  assert row.split()[-2:] == ["0.0000", "0.0100"]
