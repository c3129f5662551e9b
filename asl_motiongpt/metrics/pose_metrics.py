"""Pose errors between generated and reference sequences (normalised unified skeleton units:
1 = one shoulder width).

- MPJPE: mean Euclidean distance per joint over frames and joints present in both (same length).
- DTW-MJE: the sequences are aligned in time with dynamic time warping whose frame-to-frame cost
  is the mean per-joint Euclidean distance over joints present in both frames; the score is the
  mean of that cost along the optimal warping path (total cost / path length), so it is in the
  same units as MPJPE and does not grow with length. Frames sharing no present joint cost the
  largest finite frame cost of the pair (they cannot be matched well, nor skipped for free).
- `joints=` restricts either to a subset: HANDS (both hands) for the hand-only variants.
"""
from __future__ import annotations

import numpy as np

from asl_motiongpt.pose import skeletons

HANDS = np.r_[skeletons.UNIFIED_LEFT_HAND, skeletons.UNIFIED_RIGHT_HAND]
BODY = np.r_[skeletons.UNIFIED_BODY]


def _select(pose, mask, joints):
  if joints is None:
    return pose, mask
  return pose[:, joints], mask[:, joints]


def mpjpe(pred, pred_mask, ref, ref_mask, joints=None) -> float:
  pred, pred_mask = _select(np.asarray(pred, np.float64), np.asarray(pred_mask, bool), joints)
  ref, ref_mask = _select(np.asarray(ref, np.float64), np.asarray(ref_mask, bool), joints)
  if pred.shape != ref.shape:
    raise ValueError(f"MPJPE needs equal shapes, got {pred.shape} and {ref.shape} (use DTW-MJE)")
  both = pred_mask & ref_mask
  if not both.any():
    return float("nan")
  return float(np.linalg.norm(pred - ref, axis=-1)[both].mean())


def frame_costs(pred, pred_mask, ref, ref_mask) -> np.ndarray:
  """[len(pred), len(ref)] mean per-joint distance over jointly present joints."""
  dist = np.linalg.norm(pred[:, None] - ref[None], axis=-1)           # [P, R, J]
  both = pred_mask[:, None] & ref_mask[None]
  count = both.sum(-1)
  cost = np.where(count > 0, (dist * both).sum(-1) / np.maximum(count, 1), np.nan)
  worst = np.nanmax(cost) if np.isfinite(cost).any() else 0.0
  return np.where(np.isnan(cost), worst, cost)


def dtw_mje(pred, pred_mask, ref, ref_mask, joints=None) -> float:
  pred, pred_mask = _select(np.asarray(pred, np.float64), np.asarray(pred_mask, bool), joints)
  ref, ref_mask = _select(np.asarray(ref, np.float64), np.asarray(ref_mask, bool), joints)
  if len(pred) == 0 or len(ref) == 0:
    return float("nan")
  cost = frame_costs(pred, pred_mask, ref, ref_mask)
  rows, columns = cost.shape
  total = np.full((rows + 1, columns + 1), np.inf)
  steps = np.zeros((rows + 1, columns + 1), np.int64)
  total[0, 0] = 0.0
  # One anti-diagonal (i + j = d) at a time, as arrays: its cells depend only on the two before it.
  # Of the three predecessors the lowest total wins, ties going to the shorter path.
  for diagonal in range(2, rows + columns + 1):
    row_index = np.arange(max(1, diagonal - columns), min(rows, diagonal - 1) + 1)
    column_index = diagonal - row_index
    totals = np.stack([
        total[row_index - 1, column_index - 1], total[row_index - 1, column_index], total[row_index,
                                                                                          column_index - 1]
    ])
    lengths = np.stack([
        steps[row_index - 1, column_index - 1], steps[row_index - 1, column_index], steps[row_index,
                                                                                          column_index - 1]
    ])
    best_total = totals.min(axis=0)
    best_length = np.where(totals == best_total, lengths, np.iinfo(np.int64).max).min(axis=0)
    total[row_index, column_index] = best_total + cost[row_index - 1, column_index - 1]
    steps[row_index, column_index] = best_length + 1
  return float(total[rows, columns] / steps[rows, columns])


def pose_metrics(pred, pred_mask, ref, ref_mask) -> dict:
  out = {"dtw_mje": dtw_mje(pred, pred_mask, ref, ref_mask),
         "dtw_mje_hands": dtw_mje(pred, pred_mask, ref, ref_mask, HANDS)}
  if np.shape(pred) == np.shape(ref):
    out["mpjpe"] = mpjpe(pred, pred_mask, ref, ref_mask)
    out["mpjpe_hands"] = mpjpe(pred, pred_mask, ref, ref_mask, HANDS)
  return out
