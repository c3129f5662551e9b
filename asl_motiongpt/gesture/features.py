"""What the gesture tokenizer's networks see: pose -> features -> pose.

Two optional transforms, both invertible, both applied to [..., J, D] arrays of the unified
skeleton:

- hand-relative (`pose.transform.hand_relative`): the 20 finger joints of each hand become offsets from that hand's wrist (the
  wrist itself stays where the body puts it). Fingers move little in absolute terms while the arm
  carries the hand around; relative to the wrist their configuration, which carries most of a
  sign's meaning, is what varies.
- standardisation: each feature minus its mean over the training corpus, divided by its standard
  deviation (MotionGPT / T2M-GPT do the same). In standardised units a masked or padded joint is 0,
  i.e. the mean pose, not a collapse onto the skeleton's origin; a finger joint's small motion weighs
  as much in the loss as an arm's large one.

The statistics are the prepared corpus' (stats.json of `prepare`), stored in the tokenizer's state
(`feature_mean`, `feature_std` [J, D]) so that every later encode/decode uses the same ones.
"""
from __future__ import annotations

import numpy as np

from asl_motiongpt.pose.transform import absolute_from_hand_relative, hand_relative  # noqa: F401 (re-exported)

STD_FLOOR = 1e-3  # shoulder widths: a joint that never moves (the normalisation's anchors) is not amplified


def identity_statistics(joints: int, dims: int) -> dict:
  return {"feature_mean": np.zeros((joints, dims), np.float32), "feature_std": np.ones((joints, dims), np.float32)}


def statistics_from_prepared(split_stats: dict, joints: int, dims: int, relative: bool) -> dict:
  """feature_mean / feature_std [J, D] from one split of a prepared corpus' stats.json."""
  key = "hand_relative_" if relative else "joint_"
  if f"{key}mean" not in split_stats:
    raise ValueError(f"the prepared statistics have no {key}mean/{key}std (prepared by an older version): "
                     "run `asl-motiongpt prepare` again")
  mean = np.asarray(split_stats[f"{key}mean"], np.float32)
  std = np.asarray(split_stats[f"{key}std"], np.float32)
  if mean.shape[0] < joints:
    raise ValueError(f"the prepared statistics cover {mean.shape[0]} joints, the tokenizer reads {joints} "
                     "(prepare with --face for the 72-joint skeleton)")
  # A dimension the corpus does not have (2D data read as 3D: depth 0) passes through unchanged.
  missing = max(dims - mean.shape[1], 0)
  mean = np.pad(mean[:joints, :dims], ((0, 0), (0, missing)))
  std = np.pad(std[:joints, :dims], ((0, 0), (0, missing)), constant_values=1.0)
  return {"feature_mean": mean, "feature_std": np.maximum(std, STD_FLOOR).astype(np.float32)}
