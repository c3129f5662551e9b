"""OpenPose 1.3 JSON frame folders -> PoseSequence (openpose_137, 2D).

One folder per sequence, one file per frame named `<NAME>_<12-digit frame>_keypoints.json`;
in each, `people[0]` carries `pose_keypoints_2d` (25 points), `face_keypoints_2d` (70),
`hand_left_keypoints_2d` and `hand_right_keypoints_2d` (21 each), as flat x, y, confidence
triples. An empty list means the detector did not run for that part (masked, not an error).
"""
from __future__ import annotations

import json
import os
import re

import numpy as np

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.sequence import PoseSequence

FRAME_FILE = re.compile(r"_(\d{12})_keypoints\.json$")
_SIZES = [len(c.points) for c in skeletons.OPENPOSE_137.components]
_OFFSETS = np.cumsum([0] + _SIZES)


def frame_files(folder: str) -> list[tuple[int, str]]:
  """(frame number, file name) of every keypoint file in `folder`, in frame order."""
  found = []
  for name in os.listdir(folder):
    m = FRAME_FILE.search(name)
    if m:
      found.append((int(m.group(1)), name))
  return sorted(found)


def read_openpose_folder(folder: str, record: str, report: rp.ReadReport,
                         fps: float) -> PoseSequence:
  if not os.path.isdir(folder):
    raise rp.CorpusError(rp.MISSING_POSE, folder, record, "pose", "OpenPose JSON folder not found")
  files = frame_files(folder)
  if not files:
    raise rp.CorpusError(rp.EMPTY_SEQUENCE, folder, record, "pose", "no *_keypoints.json frames")
  total = skeletons.OPENPOSE_137.num_joints
  data = np.zeros((len(files), total, 2), np.float32)
  confidence = np.zeros((len(files), total), np.float32)
  for t, (_, name) in enumerate(files):
    path = os.path.join(folder, name)
    values = _read_frame(path, record, report)
    if values is None:
      continue
    for part, flat in enumerate(values):
      if flat is None:
        continue
      lo, hi = _OFFSETS[part], _OFFSETS[part + 1]
      data[t, lo:hi] = flat[:, :2]
      confidence[t, lo:hi] = flat[:, 2]
  return PoseSequence(data, confidence, fps, "openpose_137")


def _read_frame(path: str, record: str, report: rp.ReadReport):
  """Per component an array [points, 3] (or None when absent); None if the frame is unusable."""
  try:
    with open(path, "rb") as f:
      frame = json.loads(f.read().decode("utf-8"))
  except (ValueError, UnicodeDecodeError) as e:
    report.mask(rp.CorpusError(rp.MALFORMED_JSON, path, record, None,
                               f"malformed JSON ({e}); frame masked"))
    return None
  people = frame.get("people") if isinstance(frame, dict) else None
  if not isinstance(people, list):
    report.mask(rp.CorpusError(rp.MALFORMED_JSON, path, record, "people",
                               "no 'people' list; frame masked"))
    return None
  if not people:
    report.mask(rp.CorpusError(rp.NO_PERSON, path, record, "people",
                               "no person detected; frame masked"))
    return None
  person = people[0]
  parts = []
  for field, size in zip(skeletons.OPENPOSE_JSON_FIELDS, _SIZES):
    flat = person.get(field, [])
    if not flat:
      parts.append(None)
      continue
    if len(flat) != 3 * size:
      report.mask(rp.CorpusError(rp.WRONG_VALUE_COUNT, path, record, field,
                                 f"{len(flat)} values, expected {3 * size}; frame masked"))
      return None
    try:
      arr = np.asarray(flat, np.float64).reshape(size, 3)
    except (TypeError, ValueError):
      report.mask(rp.CorpusError(rp.MALFORMED_JSON, path, record, field,
                                 "values are not numbers; frame masked"))
      return None
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
      report.mask(rp.CorpusError(rp.NON_FINITE, path, record, field,
                                 f"{int(bad.sum())} points NaN or infinite; masked"))
      arr[bad] = 0.0
    parts.append(arr)
  return parts


def to_openpose_json(seq: PoseSequence) -> list[dict]:
  """The inverse, for writing frames: one OpenPose 1.3 JSON dict per frame."""
  assert seq.skeleton == "openpose_137" and seq.dims == 2
  frames = []
  for t in range(seq.num_frames):
    person = {"person_id": [-1]}
    for part, field in enumerate(skeletons.OPENPOSE_JSON_FIELDS):
      lo, hi = _OFFSETS[part], _OFFSETS[part + 1]
      triples = np.concatenate([seq.data[t, lo:hi], seq.confidence[t, lo:hi, None]], axis=1)
      person[field] = [round(float(v), 3) for v in triples.reshape(-1)]
    frames.append({"version": 1.3, "people": [person]})
  return frames


