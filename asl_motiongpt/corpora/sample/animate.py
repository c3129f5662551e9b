"""Turns a sequence of signs into poses of the unified skeleton (with face), for one signer.

Coordinates are normalised (neck at the origin, shoulder width 1, y down, z negative towards the
viewer). A sign is a path of the wrist (location + movement) with a hand configuration (curls,
spread, roll, yaw); between signs every parameter is interpolated, and a sentence starts and ends
at rest with the hands low. The signer changes proportions, speed, jitter and dropped keypoints.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from asl_motiongpt.corpora.sample import lexicon
from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.sequence import PoseSequence

FPS = 25.0
REST = np.array([-0.4, 1.15, -0.1])
UPPER_ARM, FOREARM = 0.62, 0.58
# Hand model (right hand, palm to the viewer, fingers up), in shoulder widths.
_BASES = np.array([[0.05, -0.05, 0.0], [0.05, -0.17, 0.0], [0.015, -0.18, 0.0],
                   [-0.02, -0.17, 0.0], [-0.05, -0.15, 0.0]])  # thumb CMC, finger MCPs
_SEGMENTS = np.array([[0.05, 0.04, 0.035], [0.07, 0.045, 0.03], [0.075, 0.05, 0.03],
                      [0.07, 0.045, 0.03], [0.055, 0.035, 0.025]])
_FAN = np.radians([-35.0, -8.0, 0.0, 7.0, 15.0])  # finger direction in the palm plane
_FLEX = np.radians([60.0, 95.0, 70.0])  # flexion of the three joints at full curl
# Face block, relative to the nose tip, in the order of skeletons.FACE_POINTS.
_FACE = np.array([
    [0.0, 0.0, 0.0], [0.0, 0.28, 0.05],                                           # nose tip, chin
    [-0.2, -0.2, 0.05], [-0.12, -0.23, 0.0], [-0.04, -0.2, 0.0],                 # right brow
    [0.04, -0.2, 0.0], [0.12, -0.23, 0.0], [0.2, -0.2, 0.05],                    # left brow
    [-0.17, -0.12, 0.05], [-0.11, -0.14, 0.02], [-0.05, -0.12, 0.03], [-0.11, -0.1, 0.02],
    [0.05, -0.12, 0.03], [0.11, -0.14, 0.02], [0.17, -0.12, 0.05], [0.11, -0.1, 0.02],
    [-0.09, 0.12, 0.03], [0.0, 0.09, 0.0], [0.09, 0.12, 0.03], [0.0, 0.16, 0.01],
    [0.0, 0.115, 0.01], [0.0, 0.125, 0.01]], np.float64)


@dataclasses.dataclass(frozen=True)
class Signer:
  id: str
  arm_scale: float      # proportions
  speed: float          # > 1 signs faster (fewer frames)
  jitter: float         # detector noise, shoulder widths
  dropout: float        # probability that a keypoint is missed
  size_px: float        # shoulder width in pixels
  offset_px: tuple[float, float]


def make_signers(count: int, seed: int) -> list[Signer]:
  rng = np.random.default_rng(seed)
  return [Signer(id=f"signer{i:02d}", arm_scale=float(rng.uniform(0.92, 1.08)),
                 speed=float(rng.uniform(0.8, 1.25)), jitter=float(rng.uniform(0.003, 0.012)),
                 dropout=float(rng.uniform(0.0, 0.04)), size_px=float(rng.uniform(0.85, 1.15)),
                 offset_px=(float(rng.uniform(-0.1, 0.1)), float(rng.uniform(-0.05, 0.05))))
          for i in range(count)]


def _rot(axis: int, angle: float) -> np.ndarray:
  cosine, sine = np.cos(angle), np.sin(angle)
  first, second = [k for k in range(3) if k != axis]
  rotation = np.eye(3)
  rotation[first, first], rotation[first,
                                   second], rotation[second,
                                                     first], rotation[second,
                                                                      second] = cosine, -sine, sine, cosine
  return rotation


def hand_points(curls, spread, roll_deg, yaw_deg, mirror: bool) -> np.ndarray:
  """21 hand points relative to the wrist, in the MediaPipe order."""
  points = [np.zeros(3)]
  for finger in range(5):
    fan = _FAN[finger] * (1.0 + spread)
    direction = np.array([np.sin(fan), -np.cos(fan), 0.0])
    point = _BASES[finger].copy()
    if finger == 0:  # the thumb's CMC sits on the palm; its chain starts from the wrist
      point = _BASES[0] * 0.6
    points.append(point)
    bend = 0.0
    for segment in range(3):
      bend += _FLEX[segment] * curls[finger]
      # flexion turns the finger from "up" towards the viewer and down
      bend_direction = direction * np.cos(bend) + np.array([0.0, 0.0, -1.0]) * np.sin(bend)
      point = point + _SEGMENTS[finger, segment] * bend_direction
      points.append(point)
  pts = np.array(points)  # wrist, then 4 points per finger (thumb CMC..TIP, finger MCP..TIP)
  rotation = _rot(2, np.radians(roll_deg)) @ _rot(1, np.radians(yaw_deg))
  pts = pts @ rotation.T
  if mirror:
    pts = pts * np.array([-1.0, 1.0, 1.0])
  return pts


def _path(movement: str, phase: np.ndarray) -> np.ndarray:
  """Wrist displacement [len(t), 3] over a sign, t in [0, 1]."""
  zero = np.zeros_like(phase)
  if movement == "up":
    return np.stack([zero, -0.3 * phase, zero], -1)
  if movement == "down":
    return np.stack([zero, 0.3 * phase, zero], -1)
  if movement == "left":
    return np.stack([0.35 * phase, zero, zero], -1)
  if movement == "right":
    return np.stack([-0.35 * phase, zero, zero], -1)
  if movement == "out":
    return np.stack([zero, 0.05 * phase, -0.35 * phase], -1)
  if movement in ("circle_in", "circle_out"):
    sign = 1.0 if movement == "circle_in" else -1.0
    angle = 2 * np.pi * phase
    return np.stack([0.13 * np.sin(sign * angle), 0.13 * (1 - np.cos(angle)), zero], -1)
  if movement == "wavy":
    return np.stack([-0.35 * phase, 0.06 * np.sin(4 * np.pi * phase), zero], -1)
  if movement == "tap":
    return np.stack([zero, 0.08 * np.abs(np.sin(2 * np.pi * phase)), zero], -1)
  if movement == "wiggle":
    return np.stack([zero, zero, zero], -1)
  raise ValueError(movement)


def _keyframes(sign: lexicon.Sign, frames: int):
  """Per frame: right wrist, curls [5], spread, roll, yaw."""
  phase = np.linspace(0.0, 1.0, frames)
  wrist = np.array(lexicon.LOCATIONS[sign.location]) + _path(sign.movement, phase)
  curls, spread = lexicon.HANDSHAPES[sign.handshape]
  curls = np.tile(np.array(curls), (frames, 1))
  if sign.movement == "wiggle":
    curls = np.clip(curls + 0.35 * np.sin(6 * np.pi * phase[:, None] + np.arange(5)[None]), 0, 1)
  return dict(wrist=wrist, curls=curls, spread=np.full(frames, spread),
              roll=np.full(frames, lexicon.FINGER_DIRECTIONS[sign.finger_direction]),
              yaw=np.full(frames, lexicon.PALMS[sign.palm]))


def _rest(frames: int):
  return dict(wrist=np.tile(REST, (frames, 1)), curls=np.full((frames, 5), 0.25),
              spread=np.zeros(frames), roll=np.full(frames, 170.0), yaw=np.zeros(frames))


def _blend(start: dict, end: dict, frames: int) -> dict:
  """Interpolates from the last frame of `a` to the first of `b` (ease in/out)."""
  weight = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, frames + 2)[1:-1])
  out = {}
  for key in end:
    if key.startswith("_"):
      continue
    x0, x1 = start[key][-1], end[key][0]
    shape = (frames,) + (1,) * np.ndim(x0)
    out[key] = x0 + (x1 - x0) * weight.reshape(shape)
  return out


def _elbow(shoulder, wrist, outward: float, scale: float) -> np.ndarray:
  """Two-link inverse kinematics with the elbow pointing down and out."""
  upper, lower = UPPER_ARM * scale, FOREARM * scale
  reach = wrist - shoulder
  distance = np.clip(np.linalg.norm(reach, axis=-1, keepdims=True),
                     abs(upper - lower) + 1e-3, upper + lower - 1e-3)
  unit = reach / np.maximum(np.linalg.norm(reach, axis=-1, keepdims=True), 1e-6)
  along = (upper * upper - lower * lower + distance * distance) / (2 * distance)
  height = np.sqrt(np.maximum(upper * upper - along * along, 0.0))
  pole = np.array([outward * 0.6, 1.0, 0.3])
  pole = pole - (unit @ pole)[:, None] * unit
  pole = pole / np.maximum(np.linalg.norm(pole, axis=-1, keepdims=True), 1e-6)
  return shoulder + along * unit + height * pole


def animate(concepts: tuple[str, ...], signer: Signer, question: bool,
            rng: np.random.Generator, face: bool = True) -> PoseSequence:
  """Normalised unified(-face) poses of one signer signing `concepts` in order."""
  signs = lexicon.signs()
  sign_frames = max(6, int(round(13 / signer.speed)))
  gap = max(3, int(round(5 / signer.speed)))
  parts = [_rest(4)]
  for concept in concepts:
    key = _keyframes(signs[concept], sign_frames + int(rng.integers(-1, 2)))
    key["two_handed"] = signs[concept].two_handed
    parts.append(key)
  parts.append(_rest(4))
  right, left = [], []
  previous = None
  for part in parts:
    two = part.pop("two_handed", False)
    if previous is not None:
      blend = _blend(previous, part, gap)
      right.append(blend)
      left.append(_blend(previous["_left"], _mirror_or_rest(part, two), gap))
    part["_left"] = _mirror_or_rest(part, two)
    right.append({k: v for k, v in part.items() if k != "_left"})
    left.append(part["_left"])
    previous = part
  right_track = {k: np.concatenate([p[k] for p in right]) for k in right[0]}
  left_track = {k: np.concatenate([p[k] for p in left]) for k in left[0]}
  frames = len(right_track["wrist"])
  time = np.arange(frames) / FPS

  joints = np.zeros((frames, skeletons.UNIFIED_FACE.num_joints, 3))
  sway = 0.02 * np.sin(2 * np.pi * 0.4 * time + rng.uniform(0, 6))
  neck = np.stack([sway, np.zeros(frames), np.zeros(frames)], -1)
  joints[:, skeletons.NECK] = neck
  r_sh = neck + np.array([-0.5, 0.02, 0.0])
  l_sh = neck + np.array([0.5, 0.02, 0.0])
  joints[:, skeletons.RIGHT_SHOULDER], joints[:, skeletons.LEFT_SHOULDER] = r_sh, l_sh
  scale = signer.arm_scale
  r_wrist = neck + right_track["wrist"] * scale
  l_wrist = neck + left_track["wrist"] * scale
  joints[:, skeletons.RIGHT_WRIST], joints[:, skeletons.LEFT_WRIST] = r_wrist, l_wrist
  joints[:, 3] = _elbow(r_sh, r_wrist, -1.0, scale)
  joints[:, 6] = _elbow(l_sh, l_wrist, 1.0, scale)
  nose = neck + np.array([0.0, -0.55, -0.12]) + 0.01 * np.sin(time[:, None] * 3 + np.arange(3))
  joints[:, 0] = nose
  for frame in range(frames):
    joints[frame,
           skeletons.UNIFIED_RIGHT_HAND] = r_wrist[frame] + scale * hand_points(right_track["curls"][frame],
                                                                                right_track["spread"][frame],
                                                                                right_track["roll"][frame],
                                                                                right_track["yaw"][frame],
                                                                                mirror=False)
    joints[frame,
           skeletons.UNIFIED_LEFT_HAND] = l_wrist[frame] + scale * hand_points(left_track["curls"][frame],
                                                                               left_track["spread"][frame],
                                                                               left_track["roll"][frame],
                                                                               left_track["yaw"][frame],
                                                                               mirror=True)
  face_points = nose[:, None] + _FACE[None]
  if question:  # non-manual marker: raised brows throughout a yes/no question
    face_points[:, 2:8, 1] -= 0.05
  joints[:, skeletons.UNIFIED_FACE_BLOCK] = face_points
  joints += rng.normal(0.0, signer.jitter, joints.shape)
  confidence = rng.uniform(0.6, 0.98, joints.shape[:2])
  confidence[rng.uniform(size=confidence.shape) < signer.dropout] = 0.0
  if rng.uniform() < 0.3:  # a hand lost by the detector for a few frames (fast motion)
    start = int(rng.integers(0, max(1, frames - 4)))
    hand = skeletons.UNIFIED_LEFT_HAND if rng.uniform() < 0.5 else skeletons.UNIFIED_RIGHT_HAND
    confidence[start:start + 3, hand] = 0.0
  confidence[:, skeletons.NECK] = np.maximum(confidence[:, skeletons.NECK], 0.6)
  joints[confidence == 0] = 0.0
  seq = PoseSequence(joints.astype(np.float32), confidence.astype(np.float32), FPS, "unified_face")
  if not face:
    seq = PoseSequence(seq.data[:, :50], seq.confidence[:, :50], FPS, "unified")
  return seq


def _mirror_or_rest(part: dict, two_handed: bool) -> dict:
  frames = len(part["wrist"])
  if not two_handed:
    rest = _rest(frames)
    rest["wrist"] = rest["wrist"] * np.array([-1.0, 1.0, 1.0])
    return rest
  mirrored = {k: np.array(v) for k, v in part.items() if not k.startswith("_")}
  mirrored["wrist"] = mirrored["wrist"] * np.array([-1.0, 1.0, 1.0])
  return mirrored
