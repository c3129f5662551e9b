"""Mapping to the unified skeleton, normalisation and its inverse, fps resampling."""
from __future__ import annotations

import dataclasses

import numpy as np

from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.sequence import PoseSequence


def fit_dims(values: np.ndarray, dims: int) -> np.ndarray:
  """Coordinates [..., D] as [..., dims]: 2D data in a 3D model gets z = 0 (depth unknown); 3D data
  in a 2D model loses z. The one place where pose dimensions are reconciled."""
  if values.shape[-1] >= dims:
    return values[..., :dims]
  return np.pad(values, [(0, 0)] * (values.ndim - 1) + [(0, dims - values.shape[-1])])


def source_points(seq: PoseSequence) -> tuple[tuple[str, str], ...]:
  return seq.points if seq.points is not None else skeletons.get(seq.skeleton).points


def to_unified(seq: PoseSequence, face: bool = False) -> PoseSequence:
  """Maps any known layout onto the unified skeleton (50 joints, or 72 with the face block).

  A unified joint built from several source joints (MediaPipe's neck = mid-shoulders) is present
  only in frames where all of them are present; joints the source lacks stay masked.
  """
  try:
    skeletons.layout_family(seq.skeleton)
  except KeyError as e:
    raise ValueError(str(e)) from None
  index, weight, used = skeletons.mapping_indices(seq.skeleton, source_points(seq), face)
  data = seq.data[:, index]                                  # [F, J_u, K, D]
  confidence = np.where(used, seq.confidence[:, index], np.inf)  # unused slots never limit
  conf = confidence.min(axis=2)                              # a composite joint: its weakest source
  ok = used.any(axis=1)[None] & (conf > 0)
  unified = np.einsum("fukd,uk->fud", data, weight)
  conf = np.where(ok, conf, 0.0).astype(np.float32)
  unified = np.where(ok[..., None], unified, 0.0)
  return PoseSequence(unified, conf, seq.fps, skeletons.unified_skeleton(face).name)


WORLD = "POSE_WORLD_LANDMARKS"
# What each image-space block hangs from when the body comes from world landmarks.
_WORLD_ANCHORS = (("LEFT_HAND_LANDMARKS", ("LEFT_HAND_LANDMARKS", "WRIST"), "LEFT_WRIST"),
                  ("RIGHT_HAND_LANDMARKS", ("RIGHT_HAND_LANDMARKS", "WRIST"), "RIGHT_WRIST"),
                  ("FACE_LANDMARKS", ("POSE_LANDMARKS", "NOSE"), "NOSE"))


def has_world_landmarks(seq: PoseSequence) -> bool:
  return any(component == WORLD for component, _ in source_points(seq))


def with_world_landmarks(seq: PoseSequence) -> PoseSequence:
  """A MediaPipe Holistic sequence whose body is its world landmarks (metres, origin between the hips,
  real depth) instead of image coordinates. Holistic estimates world coordinates for the body only,
  so each hand and the face keep their image-space shape, scaled to metres by the sequence's ratio
  of world to image shoulder width (one ratio per sequence: no per-frame jitter) and hung from the
  world wrist (hands) or nose (face). Joints are present where their sources are."""
  if not has_world_landmarks(seq):
    raise ValueError(f"layout {seq.skeleton!r} has no {WORLD} component (MediaPipe Holistic writes them; "
                     "pose-format's reduce_holistic and older files drop them)")
  points = source_points(seq)
  where = {p: point for point, p in enumerate(points)}
  data, conf = seq.data.copy(), seq.confidence.copy()
  image = lambda name: where[("POSE_LANDMARKS", name)]
  world = lambda name: where[(WORLD, name)]
  shoulders = [(image(n), world(n)) for n in ("LEFT_SHOULDER", "RIGHT_SHOULDER")]
  both = np.ones(seq.num_frames, bool)
  for point, world_point in shoulders:
    both &= (seq.confidence[:, point] > 0) & (seq.confidence[:, world_point] > 0)
  if not both.any():
    raise ValueError("no frame has both shoulders in image and world landmarks: cannot scale hands to metres")
  (li, lw), (ri, rw) = shoulders
  image_width = np.linalg.norm(seq.data[both, li, :2] - seq.data[both, ri, :2], axis=-1).mean()
  world_width = np.linalg.norm(seq.data[both, lw, :2] - seq.data[both, rw, :2], axis=-1).mean()
  metres_per_unit = float(world_width / max(image_width, 1e-9))
  for component, anchor, body_point in _WORLD_ANCHORS:
    block = [point for p, point in where.items() if p[0] == component]
    if not block or anchor not in where:
      continue
    anchor_point, world_point = where[anchor], world(body_point)
    data[:,
         block] = seq.data[:, world_point][:, None] + metres_per_unit * (seq.data[:, block] -
                                                                         seq.data[:, anchor_point][:, None])
    conf[:, block] = np.minimum(
        seq.confidence[:, block],
        np.minimum(seq.confidence[:, anchor_point], seq.confidence[:, world_point])[:, None])
  for component, name in points:  # the body itself: world values in the image landmarks' slots
    if component == "POSE_LANDMARKS" and (WORLD, name) in where:
      data[:, where[(component, name)]] = seq.data[:, world(name)]
      conf[:, where[(component, name)]] = seq.confidence[:, world(name)]
  data = np.where(conf[..., None] > 0, data, 0.0)
  return seq.replace(data=data, confidence=conf)


@dataclasses.dataclass(frozen=True)
class Normalization:
  """What `normalize` removed: per-frame neck position [frames, dims] and one scale."""
  center: np.ndarray
  scale: float


def normalize(seq: PoseSequence) -> tuple[PoseSequence, Normalization]:
  """Neck at the origin in every frame, mean shoulder width 1 over the sequence.

  One scale per sequence (a per-frame scale would turn detector noise into jitter). Frames without
  a neck take the neck of the nearest frame that has one. Fails if no frame has both shoulders.
  """
  if not seq.skeleton.startswith("unified"):
    raise ValueError(f"normalize expects a unified skeleton, got {seq.skeleton!r}")
  mask = seq.mask
  neck_ok = mask[:, skeletons.NECK]
  shoulders_ok = mask[:, skeletons.RIGHT_SHOULDER] & mask[:, skeletons.LEFT_SHOULDER]
  if not neck_ok.any() or not shoulders_ok.any():
    raise ValueError("cannot normalise: no frame has a neck and both shoulders")
  widths = np.linalg.norm(seq.data[shoulders_ok, skeletons.RIGHT_SHOULDER]
                          - seq.data[shoulders_ok, skeletons.LEFT_SHOULDER], axis=-1)
  scale = float(widths.mean())
  if not scale > 0:
    raise ValueError("cannot normalise: shoulder width is zero")
  have = np.flatnonzero(neck_ok)
  nearest = have[np.abs(np.arange(seq.num_frames)[:, None] - have[None]).argmin(axis=1)]
  center = seq.data[nearest, skeletons.NECK].astype(np.float32)
  data = np.where(mask[..., None], (seq.data - center[:, None]) / scale, 0.0)
  return seq.replace(data=data), Normalization(center, scale)


def denormalize(seq: PoseSequence, norm: Normalization) -> PoseSequence:
  data = seq.data * norm.scale + norm.center[:, None]
  return seq.replace(data=np.where(seq.mask[..., None], data, 0.0))


def resample(seq: PoseSequence, fps: float) -> PoseSequence:
  """Linear interpolation in time to `fps`, keeping the duration.

  An interpolated joint is present only if both neighbouring source frames have it; its
  confidence is the smaller of the two.
  """
  if fps == seq.fps or seq.num_frames == 0:
    return seq.replace(fps=float(fps))
  duration = (seq.num_frames - 1) / seq.fps
  count = int(np.floor(duration * fps + 1e-6)) + 1
  source_time = np.arange(count) / fps * seq.fps
  lo = np.clip(np.floor(source_time).astype(int), 0, seq.num_frames - 1)
  hi = np.clip(lo + 1, 0, seq.num_frames - 1)
  fraction = (source_time - lo).astype(np.float32)[:, None, None]
  data = seq.data[lo] * (1 - fraction) + seq.data[hi] * fraction
  # A neighbour with zero weight does not need to be present.
  conf_hi = np.where(fraction[..., 0] > 0, seq.confidence[hi], np.inf)
  conf = np.minimum(seq.confidence[lo], conf_hi)
  data = np.where(conf[..., None] > 0, data, 0.0)
  return seq.replace(data=data, confidence=conf, fps=float(fps))


def from_unified(seq: PoseSequence, target: str) -> PoseSequence:
  """Writes unified joints into another layout (the inverse of `to_unified` where it is 1:1).

  Points of the target that the unified skeleton does not carry, and composite points (MediaPipe
  has no neck: it is derived, so it is not written back), stay masked.
  """
  skeleton = skeletons.get(target)
  source = skeletons.get(seq.skeleton)
  rules = skeletons.FAMILY_RULES[skeletons.layout_family(target)]
  data = np.zeros((seq.num_frames, skeleton.num_joints, seq.dims), np.float32)
  conf = np.zeros((seq.num_frames, skeleton.num_joints), np.float32)
  for unified_point, alternatives in rules.items():
    if not source.has(*unified_point):
      continue
    single = next((a for a in alternatives if len(a) == 1 and skeleton.has(*a[0])), None)
    if single is None:
      continue
    target_index, source_index = skeleton.index(*single[0]), source.index(*unified_point)
    data[:, target_index], conf[:, target_index] = seq.data[:, source_index], seq.confidence[:, source_index]
  return PoseSequence(data, conf, seq.fps, target)


_HAND_BLOCKS = (skeletons.UNIFIED_LEFT_HAND, skeletons.UNIFIED_RIGHT_HAND)


def hand_relative(pose, mask, xp=np):
  """Unified-skeleton fingers as offsets from their wrist ([..., J, D], numpy or jax.numpy as `xp`); a
  finger counts as present only where its wrist is too. The tokenizer's optional features."""
  pose_parts, mask_parts, last = [], [], 0
  for hand in _HAND_BLOCKS:
    wrist = hand.start
    pose_parts += [
        pose[..., last:wrist + 1, :], pose[..., wrist + 1:hand.stop, :] - pose[..., wrist:wrist + 1, :]
    ]
    mask_parts += [mask[..., last:wrist + 1], mask[..., wrist + 1:hand.stop] & mask[..., wrist:wrist + 1]]
    last = hand.stop
  pose_parts.append(pose[..., last:, :])
  mask_parts.append(mask[..., last:])
  return xp.concatenate(pose_parts, axis=-2), xp.concatenate(mask_parts, axis=-1)


def absolute_from_hand_relative(features, xp=np):
  """The inverse of `hand_relative` (on the pose; the mask is not restored)."""
  parts, last = [], 0
  for hand in _HAND_BLOCKS:
    wrist = hand.start
    parts += [
        features[..., last:wrist + 1, :],
        features[..., wrist + 1:hand.stop, :] + features[..., wrist:wrist + 1, :]
    ]
    last = hand.stop
  parts.append(features[..., last:, :])
  return xp.concatenate(parts, axis=-2)
