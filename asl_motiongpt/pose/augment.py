"""Changes to a training window that keep what a sign means, for a tokenizer that has to reconstruct
signers it never saw: a small rotation, a scale and a shift (another camera, another body), another
speed (resampled in time), a hand missing for a while (as MediaPipe loses hands), the mirror image
(a left-handed signer: left and right swap), and a short piece of the sequence (a clip of a few
frames, shorter than any the training corpus holds).

Each is a pure function of (pose [T, J, D], mask [T, J]) in the unified skeleton's normalised frame
(neck at the origin, a shoulder width of 1: pose/transform.py), so each can be checked on its own;
`augment` draws them from one generator, which Grain derives from the element's index, so a resumed
run sees the same windows. All settings 0: the window unchanged.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from asl_motiongpt.pose import skeletons


@dataclasses.dataclass(frozen=True)
class Augmentation:
  rotation_degrees: float = 0.0   # uniform in +-this, about the vertical axis (the signer turns)
  tilt_degrees: float = 0.0       # uniform in +-this, in the image plane (the camera rolls)
  scale: float = 0.0              # factor uniform in 1 +- this
  shift: float = 0.0              # uniform in +-this shoulder widths, x and y
  speed: float = 0.0              # speed factor uniform in 1 +- this (resampled in time)
  hand_dropout: float = 0.0       # probability that a hand is missing for the whole window
  mirror: float = 0.0             # probability of the mirror image
  # probability that only a short piece of the sequence is kept (SHORT_PIECE_MIN frames up to its
  # length): clips shorter than the training sequences, which the window then pads, as it pads them
  short_piece: float = 0.0

  @property
  def active(self) -> bool:
    return any(value > 0 for value in dataclasses.asdict(self).values())


def rotation_matrix(angle: float, plane: tuple[int, int]) -> np.ndarray:
  """The 3x3 rotation by `angle` radians in the plane of two axes (0 x, 1 y, 2 z)."""
  first, second = plane
  matrix = np.eye(3)
  cosine, sine = np.cos(angle), np.sin(angle)
  matrix[first, first], matrix[first, second] = cosine, -sine
  matrix[second, first], matrix[second, second] = sine, cosine
  return matrix


def rotate(pose: np.ndarray, angle: float, plane: tuple[int, int] = (0, 2)) -> np.ndarray:
  """Turns every joint about the origin (the neck). 2D poses turn in the image plane only."""
  dims = pose.shape[-1]
  if dims == 2 and 2 in plane:
    return pose  # no depth to turn through
  matrix = rotation_matrix(angle, plane)[:dims, :dims]
  return (pose @ matrix.T).astype(pose.dtype)


def scale_and_shift(pose: np.ndarray, scale: float, shift_xy: tuple[float, float]) -> np.ndarray:
  moved = pose * scale
  moved[..., 0] += shift_xy[0]
  moved[..., 1] += shift_xy[1]
  return moved.astype(pose.dtype)


def resample(pose: np.ndarray, mask: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
  """The sequence played `speed` times as fast: linear interpolation between frames, the first and
  the last frame kept; a joint is present where both frames it comes from have it."""
  frames = pose.shape[0]
  if frames < 2 or speed == 1.0:
    return pose, mask
  length = max(2, int(round((frames - 1) / speed)) + 1)
  source = np.linspace(0.0, frames - 1, length)
  before = np.floor(source).astype(int)
  after = np.minimum(before + 1, frames - 1)
  weight = (source - before)[:, None, None]
  resampled = pose[before] * (1.0 - weight) + pose[after] * weight
  present = mask[before] & (mask[after] | (weight[..., 0] == 0))
  return np.where(present[..., None], resampled, 0.0).astype(pose.dtype), present


SHORT_PIECE_MIN = 4  # frames: one code at the default 4x downsampling


def short_piece(pose: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                min_frames: int = SHORT_PIECE_MIN) -> tuple[np.ndarray, np.ndarray]:
  """A contiguous piece of the sequence, its length uniform in [min_frames, the sequence's length]
  and its start uniform where it fits; a sequence of at most min_frames frames is kept whole."""
  frames = pose.shape[0]
  if frames <= min_frames:
    return pose, mask
  length = int(rng.integers(min_frames, frames + 1))
  start = int(rng.integers(0, frames - length + 1))
  return pose[start:start + length], mask[start:start + length]


def drop_hand(mask: np.ndarray, hand: slice) -> np.ndarray:
  dropped = mask.copy()
  dropped[:, hand] = False
  return dropped


def mirror_permutation(joints: int) -> np.ndarray:
  """For each joint, the joint that takes its place in the mirror image (left and right swapped, by
  name: body points, the hand blocks, the face block's sides)."""
  names = list(skeletons.UNIFIED_BODY_POINTS)
  names += [f"LEFT_HAND_{point}" for point in skeletons.HAND_POINTS]
  names += [f"RIGHT_HAND_{point}" for point in skeletons.HAND_POINTS]
  names += list(skeletons.FACE_POINTS)
  names = names[:joints]
  if len(names) != joints:
    raise ValueError(f"mirroring knows the unified skeleton (50 or 72 joints), not {joints} joints")

  def swapped(name: str) -> str:
    return name.replace("LEFT", "\0").replace("RIGHT", "LEFT").replace("\0", "RIGHT")

  index = {name: position for position, name in enumerate(names)}
  return np.asarray([index.get(swapped(name), position) for position, name in enumerate(names)])


def mirror(pose: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The mirror image: x negated, left and right joints swapped."""
  order = mirror_permutation(pose.shape[1])
  flipped = pose[:, order].copy()
  flipped[..., 0] = -flipped[..., 0]
  return flipped, mask[:, order]


def augment(pose: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            settings: Augmentation) -> tuple[np.ndarray, np.ndarray]:
  """One draw of every change `settings` turns on (the order: length, speed, mirror, geometry, dropout)."""
  if not settings.active:
    return pose, mask
  if settings.short_piece > 0 and rng.random() < settings.short_piece:
    pose, mask = short_piece(pose, mask, rng)
  if settings.speed > 0:
    pose, mask = resample(pose, mask, float(rng.uniform(1 - settings.speed, 1 + settings.speed)))
  if settings.mirror > 0 and rng.random() < settings.mirror:
    pose, mask = mirror(pose, mask)
  if settings.rotation_degrees > 0:
    pose = rotate(pose, np.deg2rad(rng.uniform(-settings.rotation_degrees, settings.rotation_degrees)), (0, 2))
  if settings.tilt_degrees > 0:
    pose = rotate(pose, np.deg2rad(rng.uniform(-settings.tilt_degrees, settings.tilt_degrees)), (0, 1))
  if settings.scale > 0 or settings.shift > 0:
    pose = scale_and_shift(pose, float(rng.uniform(1 - settings.scale, 1 + settings.scale)),
                           tuple(rng.uniform(-settings.shift, settings.shift, 2)))
  if settings.hand_dropout > 0:
    for hand in (skeletons.UNIFIED_LEFT_HAND, skeletons.UNIFIED_RIGHT_HAND):
      if rng.random() < settings.hand_dropout:
        mask = drop_hand(mask, hand)
  return np.where(mask[..., None], pose, 0.0).astype(np.float32), mask
