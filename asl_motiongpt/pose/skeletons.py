"""Skeleton layouts we read, and how each maps onto the one unified skeleton.

A skeleton is a list of named components (body, face, hands), each a list of named points,
mirroring the header of a `.pose` file. Mappings are written with names, never raw indices,
so a file whose components come in another order still maps correctly.

The unified skeleton (DESIGN.md): 8 upper-body joints in OpenPose order, then the left and the
right hand (21 points each, wrist first, MediaPipe/OpenPose finger order), and optionally a
22-point face block for non-manual markers (brows, eyes, mouth). A unified joint whose sources
are missing in a frame is masked (confidence 0); nothing is invented.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
from pose_format.utils import openpose as _openpose

Point = tuple[str, str]  # (component name, point name)


@dataclasses.dataclass(frozen=True)
class Component:
  name: str
  points: tuple[str, ...]
  limbs: tuple[tuple[int, int], ...] = ()
  point_format: str = "XYZC"


@dataclasses.dataclass(frozen=True)
class Skeleton:
  name: str
  components: tuple[Component, ...]

  @functools.cached_property
  def points(self) -> tuple[Point, ...]:
    return tuple((c.name, p) for c in self.components for p in c.points)

  @property
  def num_joints(self) -> int:
    return len(self.points)

  @functools.cached_property
  def _index(self) -> dict[Point, int]:
    return {p: i for i, p in enumerate(self.points)}

  def index(self, component: str, point: str) -> int:
    return self._index[(component, point)]

  def has(self, component: str, point: str) -> bool:
    return (component, point) in self._index

  def limbs(self) -> list[tuple[int, int]]:
    """Limbs as pairs of global joint indices (for rendering)."""
    out, offset = [], 0
    for component in self.components:
      out += [(offset + a, offset + b) for a, b in component.limbs]
      offset += len(component.points)
    return out

  def signature(self) -> tuple[tuple[str, int], ...]:
    return tuple((c.name, len(c.points)) for c in self.components)


def _limbs(pairs, points) -> tuple[tuple[int, int], ...]:
  return tuple((points.index(a), points.index(b)) for a, b in pairs)


# ----------------------------------------------------------------------------------------
# Hands: MediaPipe names. OpenPose uses the same 21-point order under other names.
HAND_POINTS = ("WRIST",
               "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
               "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
               "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
               "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
               "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP")
# Each finger is a chain from the wrist.
HAND_LIMBS = tuple((0 if j % 4 == 1 else j - 1, j) for j in range(1, 21))

# ----------------------------------------------------------------------------------------
# OpenPose 137 (BODY_25 + face 70 + left hand + right hand, 2D): How2Sign and Ham2Pose.
_OP_BODY = tuple(_openpose.BODY_POINTS)
_OP_FACE = tuple(_openpose.FACE_POINTS)
_OP_HAND = tuple(_openpose.HAND_POINTS)
OPENPOSE_137 = Skeleton("openpose_137", (
    Component("pose_keypoints_2d", _OP_BODY, _limbs(_openpose.BODY_LIMBS, _OP_BODY), "XYC"),
    Component("face_keypoints_2d", _OP_FACE, (), "XYC"),
    Component("hand_left_keypoints_2d", _OP_HAND, _limbs(_openpose.HAND_LIMBS, _OP_HAND), "XYC"),
    Component("hand_right_keypoints_2d", _OP_HAND, _limbs(_openpose.HAND_LIMBS, _OP_HAND), "XYC"),
))
# OpenPose 1.3 JSON field of each component, in file order, with its values per point.
OPENPOSE_JSON_FIELDS = tuple(c.name for c in OPENPOSE_137.components)

# ----------------------------------------------------------------------------------------
# MediaPipe Holistic 543 (33 pose + 468 face + left + right hand, 3D): TFDS PHOENIX.
HOLISTIC_POSE_POINTS = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL",
    "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX")
_HOLISTIC_POSE_LIMBS = _limbs([
    ("LEFT_SHOULDER", "RIGHT_SHOULDER"), ("LEFT_SHOULDER", "LEFT_ELBOW"),
    ("LEFT_ELBOW", "LEFT_WRIST"), ("RIGHT_SHOULDER", "RIGHT_ELBOW"),
    ("RIGHT_ELBOW", "RIGHT_WRIST"), ("LEFT_SHOULDER", "LEFT_HIP"),
    ("RIGHT_SHOULDER", "RIGHT_HIP"), ("LEFT_HIP", "RIGHT_HIP")], HOLISTIC_POSE_POINTS)
HOLISTIC_543 = Skeleton("holistic_543", (
    Component("POSE_LANDMARKS", HOLISTIC_POSE_POINTS, _HOLISTIC_POSE_LIMBS),
    Component("FACE_LANDMARKS", tuple(str(i) for i in range(468))),
    Component("LEFT_HAND_LANDMARKS", HAND_POINTS, HAND_LIMBS),
    Component("RIGHT_HAND_LANDMARKS", HAND_POINTS, HAND_LIMBS),
))

# MediaPipe 178 (pose-format's reduced Holistic: 8 body + 128 face + hands). Its point lists
# come from the file header; the signature identifies it.
_MP178_BODY = ("LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST",
               "RIGHT_WRIST", "LEFT_HIP", "RIGHT_HIP")

# ----------------------------------------------------------------------------------------
# Unified skeleton.
UNIFIED_BODY_POINTS = ("NOSE", "NECK", "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST",
                       "LEFT_SHOULDER", "LEFT_ELBOW", "LEFT_WRIST")
_UNIFIED_BODY_LIMBS = _limbs([
    ("NOSE", "NECK"), ("NECK", "RIGHT_SHOULDER"), ("RIGHT_SHOULDER", "RIGHT_ELBOW"),
    ("RIGHT_ELBOW", "RIGHT_WRIST"), ("NECK", "LEFT_SHOULDER"), ("LEFT_SHOULDER", "LEFT_ELBOW"),
    ("LEFT_ELBOW", "LEFT_WRIST")], UNIFIED_BODY_POINTS)

# The face block: points that both OpenPose's 70-point face and MediaPipe's face mesh carry,
# chosen for non-manual markers (brow raise, eye aperture, mouth shape).
# name -> (OpenPose face point, MediaPipe face-mesh index)
FACE_BLOCK = {
    "NOSE_TIP": ("FN_30", 1), "CHIN": ("FB_8", 152),
    "RIGHT_BROW_OUTER": ("FEB_17", 70), "RIGHT_BROW_MID": ("FEB_19", 105),
    "RIGHT_BROW_INNER": ("FEB_21", 107), "LEFT_BROW_INNER": ("FEB_22", 336),
    "LEFT_BROW_MID": ("FEB_24", 334), "LEFT_BROW_OUTER": ("FEB_26", 300),
    "RIGHT_EYE_OUTER": ("FE_36", 33), "RIGHT_EYE_TOP": ("FE_38", 159),
    "RIGHT_EYE_INNER": ("FE_39", 133), "RIGHT_EYE_BOTTOM": ("FE_40", 145),
    "LEFT_EYE_INNER": ("FE_42", 362), "LEFT_EYE_TOP": ("FE_44", 386),
    "LEFT_EYE_OUTER": ("FE_45", 263), "LEFT_EYE_BOTTOM": ("FE_46", 374),
    "MOUTH_RIGHT": ("FLO_48", 61), "LIP_TOP_OUTER": ("FLO_51", 0),
    "MOUTH_LEFT": ("FLO_54", 291), "LIP_BOTTOM_OUTER": ("FLO_57", 17),
    "LIP_TOP_INNER": ("FLI_62", 13), "LIP_BOTTOM_INNER": ("FLI_66", 14),
}
FACE_POINTS = tuple(FACE_BLOCK)
_FACE_LIMBS = _limbs([
    ("RIGHT_BROW_OUTER", "RIGHT_BROW_MID"), ("RIGHT_BROW_MID", "RIGHT_BROW_INNER"),
    ("LEFT_BROW_INNER", "LEFT_BROW_MID"), ("LEFT_BROW_MID", "LEFT_BROW_OUTER"),
    ("RIGHT_EYE_OUTER", "RIGHT_EYE_TOP"), ("RIGHT_EYE_TOP", "RIGHT_EYE_INNER"),
    ("RIGHT_EYE_INNER", "RIGHT_EYE_BOTTOM"), ("RIGHT_EYE_BOTTOM", "RIGHT_EYE_OUTER"),
    ("LEFT_EYE_INNER", "LEFT_EYE_TOP"), ("LEFT_EYE_TOP", "LEFT_EYE_OUTER"),
    ("LEFT_EYE_OUTER", "LEFT_EYE_BOTTOM"), ("LEFT_EYE_BOTTOM", "LEFT_EYE_INNER"),
    ("MOUTH_RIGHT", "LIP_TOP_OUTER"), ("LIP_TOP_OUTER", "MOUTH_LEFT"),
    ("MOUTH_LEFT", "LIP_BOTTOM_OUTER"), ("LIP_BOTTOM_OUTER", "MOUTH_RIGHT"),
    ("LIP_TOP_INNER", "LIP_BOTTOM_INNER")], FACE_POINTS)

_UNIFIED_COMPONENTS = (
    Component("BODY", UNIFIED_BODY_POINTS, _UNIFIED_BODY_LIMBS),
    Component("LEFT_HAND", HAND_POINTS, HAND_LIMBS),
    Component("RIGHT_HAND", HAND_POINTS, HAND_LIMBS),
)
UNIFIED = Skeleton("unified", _UNIFIED_COMPONENTS)
UNIFIED_FACE = Skeleton("unified_face", _UNIFIED_COMPONENTS + (
    Component("FACE", FACE_POINTS, _FACE_LIMBS),))
# Progressive Transformers 50 joints (PHOENIX .skels): 8 body joints named in OpenPose order, then
# two hands. Measured on the fixtures (tests/test_corpora_fixtures.py): the file's "right" arm is the
# signer's LEFT arm (its trajectory follows Holistic's LEFT_WRIST on the same sequence, x sign
# included), and the first hand block hangs from the file's "left" wrist, i.e. the signer's right
# hand (also the hand that moves most, as the dominant hand does). The mapping below swaps sides.
PT_50 = Skeleton("pt_50", (
    Component("BODY", UNIFIED_BODY_POINTS, _UNIFIED_BODY_LIMBS),
    Component("HAND_1", HAND_POINTS, HAND_LIMBS),
    Component("HAND_2", HAND_POINTS, HAND_LIMBS),
))

# Joint index ranges of the unified skeleton, used by losses and metrics (hands-only variants).
UNIFIED_BODY = slice(0, 8)
UNIFIED_LEFT_HAND = slice(8, 29)
UNIFIED_RIGHT_HAND = slice(29, 50)
UNIFIED_FACE_BLOCK = slice(50, 72)
NECK, RIGHT_SHOULDER, LEFT_SHOULDER = 1, 2, 5
RIGHT_WRIST, LEFT_WRIST = 4, 7

# ----------------------------------------------------------------------------------------
# Mapping rules: unified point -> alternatives; each alternative is a list of source points
# that are averaged (all of them must be present in that frame). The first alternative whose
# points exist in the source skeleton is used.
Rule = tuple[tuple[Point, ...], ...]


def _openpose_rules() -> dict[Point, Rule]:
  body = dict(zip(UNIFIED_BODY_POINTS,
                  ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist")))
  rules = {("BODY", unified_name): ((("pose_keypoints_2d", source),),) for unified_name, source in body.items()}
  for side, comp in (("LEFT_HAND", "hand_left_keypoints_2d"), ("RIGHT_HAND", "hand_right_keypoints_2d")):
    for unified_name, source in zip(HAND_POINTS, _OP_HAND):
      rules[(side, unified_name)] = (((comp, source),),)
  for unified_name, (op, _) in FACE_BLOCK.items():
    rules[("FACE", unified_name)] = ((("face_keypoints_2d", op),),)
  return rules


def _mediapipe_rules() -> dict[Point, Rule]:
  pose = "POSE_LANDMARKS"
  rules = {
      # pose-format's reduced 178-point layout has no nose: fall back to the face mesh tip.
      ("BODY", "NOSE"): (((pose, "NOSE"),), (("FACE_LANDMARKS", "1"),)),
      # MediaPipe has no neck joint: the midpoint of the shoulders stands in for it.
      ("BODY", "NECK"): (((pose, "LEFT_SHOULDER"), (pose, "RIGHT_SHOULDER")),),
  }
  for unified_name in UNIFIED_BODY_POINTS[2:]:
    rules[("BODY", unified_name)] = (((pose, unified_name),),)
  for side, comp in (("LEFT_HAND", "LEFT_HAND_LANDMARKS"), ("RIGHT_HAND", "RIGHT_HAND_LANDMARKS")):
    for unified_name in HAND_POINTS:
      rules[(side, unified_name)] = (((comp, unified_name),),)
  for unified_name, (_, mp) in FACE_BLOCK.items():
    rules[("FACE", unified_name)] = ((("FACE_LANDMARKS", str(mp)),),)
  return rules


def _pt_rules() -> dict[Point, Rule]:
  swap = {"RIGHT": "LEFT", "LEFT": "RIGHT"}
  rules = {}
  for unified_name in UNIFIED_BODY_POINTS:
    side = unified_name.split("_")[0]
    rules[("BODY", unified_name)] = ((("BODY", unified_name.replace(side, swap[side], 1)
                                       if side in swap else unified_name),),)
  for unified_name in HAND_POINTS:
    rules[("RIGHT_HAND", unified_name)] = ((("HAND_1", unified_name),),)
    rules[("LEFT_HAND", unified_name)] = ((("HAND_2", unified_name),),)
  return rules


def _identity_rules(skeleton: Skeleton) -> dict[Point, Rule]:
  return {p: ((p,),) for p in skeleton.points}


# Mapping rules per layout *family*: a family's layouts differ only in which components (and how many
# points) they carry, and the rules name points, so one table serves them all (a rule whose points
# a file lacks falls through to the next alternative, or leaves the joint masked).
FAMILY_RULES = {
    "openpose": _openpose_rules(),
    "mediapipe": _mediapipe_rules(),
    "pt_50": _pt_rules(),
    "unified": _identity_rules(UNIFIED_FACE),
}

# Skeletons with a fixed point list (the others are known from a file header's point names).
REGISTRY = {s.name: s for s in (OPENPOSE_137, HOLISTIC_543, PT_50, UNIFIED, UNIFIED_FACE)}


@dataclasses.dataclass(frozen=True)
class LayoutFamily:
  """Layouts recognised by their components' names and point counts (never by a total alone).

  `required`/`optional`: component name -> the point counts it may have. A layout's name is
  `<prefix>_<total points>`, e.g. holistic_586; `origin` says who writes such files."""
  family: str
  prefix: str
  required: dict
  optional: dict
  origin: str

  def matches(self, counts: dict[str, int]) -> bool:
    allowed = {**self.required, **self.optional}
    return (all(name in counts for name in self.required)
            and all(name in allowed and n in allowed[name] for name, n in counts.items()))


_HANDS_MP = {"LEFT_HAND_LANDMARKS": (21,), "RIGHT_HAND_LANDMARKS": (21,)}
_HANDS_OP = {"hand_left_keypoints_2d": (21,), "hand_right_keypoints_2d": (21,)}
LAYOUT_FAMILIES = (
    LayoutFamily(
        "mediapipe", "holistic", {
            "POSE_LANDMARKS": (33,),
            **_HANDS_MP
        }, {
            "FACE_LANDMARKS": (468, 478),
            "POSE_WORLD_LANDMARKS": (33,)
        }, "MediaPipe Holistic via pose-format (`video_to_pose`, `load_holistic`): 33 body, 468 face "
        "(478 with refine_face_landmarks), 21 per hand, optionally 33 world landmarks; legacy files 543"),
    LayoutFamily("mediapipe", "mediapipe", {
        "POSE_LANDMARKS": (8,),
        **_HANDS_MP
    }, {"FACE_LANDMARKS": (128,)},
                 "pose-format's `reduce_holistic`: 8 body, 128 face-contour points, 21 per hand"),
    LayoutFamily(
        "openpose", "openpose", {
            "pose_keypoints_2d": (25,),
            **_HANDS_OP
        }, {"face_keypoints_2d": (70, 68)},
        "OpenPose BODY_25 + hands, face 70 points (How2Sign, Ham2Pose: 137 in all; pose-format's "
        "`load_openpose`), 68 without the pupils, or none"),
    LayoutFamily("pt_50", "pt", {
        "BODY": (8,),
        "HAND_1": (21,),
        "HAND_2": (21,)
    }, {}, "Progressive Transformers' PHOENIX .skels (50 joints, sides swapped)"),
    LayoutFamily("unified", "unified", {
        "BODY": (8,),
        "LEFT_HAND": (21,),
        "RIGHT_HAND": (21,)
    }, {"FACE": (22,)}, "this project's unified skeleton (prepared data, generated signs)"),
)
_FIXED_NAMES = {"pt_50": "pt_50", "unified_50": "unified", "unified_72": "unified_face"}  # historical names
SKELETON_NAMES = ("openpose_137", "holistic_543", "mediapipe_178", "pt_50", "unified", "unified_face")


def layout_family(name: str) -> str:
  """The rule family of a layout name (holistic_586 -> mediapipe)."""
  if name in ("unified", "unified_face"):
    return "unified"
  if name == "pt_50":
    return "pt_50"
  prefix = name.rsplit("_", 1)[0]
  for layout in LAYOUT_FAMILIES:
    if layout.prefix == prefix:
      return layout.family
  raise KeyError(f"no mapping from skeleton {name!r} to unified; known layouts: {supported_layouts_text()}")


def get(name: str) -> Skeleton:
  if name not in REGISTRY:
    raise KeyError(f"unknown skeleton {name!r}; known: {sorted(REGISTRY)} "
                   "(other layouts are read from a .pose header)")
  return REGISTRY[name]


def identify(signature: tuple[tuple[str, int], ...]) -> str:
  """Name of the layout whose components match `signature` ((name, #points) per component)."""
  counts = dict(signature)
  if len(counts) == len(signature):
    for layout in LAYOUT_FAMILIES:
      if layout.matches(counts):
        name = f"{layout.prefix}_{sum(counts.values())}"
        return _FIXED_NAMES.get(name, name)
  listed = ", ".join(f"{n} ({k} points)" for n, k in signature)
  raise ValueError(f"unrecognised pose layout: components {listed}. Known layouts (by components): "
                   f"{supported_layouts_text()}. Convert the file to one of them (pose-format's "
                   "`pose.get_components([...])` keeps named components), or add a LayoutFamily with mapping "
                   "rules to asl_motiongpt/pose/skeletons.py")


def supported_layouts_text() -> str:
  return "; ".join(f"{l.prefix}_N: " + ", ".join(f"{n} {'/'.join(map(str, k))}" for n, k in l.required.items())
                   + "".join(f", optional {n} {'/'.join(map(str, k))}" for n, k in l.optional.items())
                   for l in LAYOUT_FAMILIES)


def supported_layouts_markdown() -> str:
  """The table of docs/LAYOUTS.md, generated from LAYOUT_FAMILIES (tests keep the file in step)."""
  rows = ["| layout name | components (points) | optional components | mapped by | written by |",
          "| --- | --- | --- | --- | --- |"]
  for family in LAYOUT_FAMILIES:
    fmt = lambda d: ", ".join(f"`{n}` ({' or '.join(map(str, k))})" for n, k in d.items()) or "none"
    rows.append(
        f"| `{family.prefix}_<total>` | {fmt(family.required)} | {fmt(family.optional)} | `{family.family}` rules | {family.origin} |"
    )
  return "\n".join(rows) + "\n"


def unified_skeleton(face: bool) -> Skeleton:
  return UNIFIED_FACE if face else UNIFIED


@functools.lru_cache(maxsize=64)
def mapping_indices(source_name: str, source_points: tuple[Point, ...], face: bool):
  """How to gather the unified joints from one source layout.

  Returns (index [J_unified, K] int, weight [J_unified, K] float, used [J_unified, K] bool) where K
  is the most source joints any unified joint averages (2: MediaPipe's neck). Unified joint j is
  sum_k weight[j, k] * source[index[j, k]], present only where every used source joint is present;
  a row with nothing used is a joint this source does not have.
  """
  target = unified_skeleton(face)
  rules = FAMILY_RULES[layout_family(source_name)]
  where = {p: i for i, p in enumerate(source_points)}
  chosen = []
  for point in target.points:
    alternative = next((a for a in rules.get(point, ()) if all(p in where for p in a)), ())
    chosen.append([where[p] for p in alternative])
  width = max(1, max(len(c) for c in chosen))
  index = np.zeros((target.num_joints, width), np.int64)
  weight = np.zeros((target.num_joints, width), np.float32)
  used = np.zeros((target.num_joints, width), bool)
  for slot, sources in enumerate(chosen):
    index[slot, :len(sources)] = sources
    weight[slot, :len(sources)] = 1.0 / max(len(sources), 1)
    used[slot, :len(sources)] = True
  return index, weight, used
