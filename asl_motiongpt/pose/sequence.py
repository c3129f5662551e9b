"""PoseSequence: the one in-memory representation of a signer's poses."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class PoseSequence:
  """Keypoints of one signer over time.

  data:       float32 [frames, joints, dims]; values of masked joints are meaningless (kept 0).
  confidence: float32 [frames, joints]; 0 means the joint is missing in that frame.
  fps:        frames per second.
  skeleton:   name of the joint layout (see `pose.skeletons`).
  points:     for layouts only known from a file header (mediapipe_178), its (component, point)
              names; None for registry layouts.
  """
  data: np.ndarray
  confidence: np.ndarray
  fps: float
  skeleton: str
  points: tuple[tuple[str, str], ...] | None = None

  def __post_init__(self):
    self.data = np.asarray(self.data, np.float32)
    self.confidence = np.asarray(self.confidence, np.float32)
    if self.data.ndim != 3:
      raise ValueError(f"pose data must be [frames, joints, dims], got shape {self.data.shape}")
    if self.confidence.shape != self.data.shape[:2]:
      raise ValueError(f"confidence shape {self.confidence.shape} does not match data "
                       f"{self.data.shape[:2]}")
    if not self.fps > 0:
      raise ValueError(f"fps must be positive, got {self.fps}")

  @property
  def num_frames(self) -> int:
    return self.data.shape[0]

  @property
  def num_joints(self) -> int:
    return self.data.shape[1]

  @property
  def dims(self) -> int:
    return self.data.shape[2]

  @property
  def mask(self) -> np.ndarray:
    """bool [frames, joints]: True where the joint is present."""
    return self.confidence > 0

  def replace(self, **changes) -> "PoseSequence":
    return dataclasses.replace(self, **changes)

  def __eq__(self, other) -> bool:
    return (isinstance(other, PoseSequence) and self.skeleton == other.skeleton
            and self.fps == other.fps and self.points == other.points
            and np.array_equal(self.data, other.data)
            and np.array_equal(self.confidence, other.confidence))
