"""OpenPose 1.3 JSON frame folders -> PoseSequence (openpose_137, 2D).

One folder per sequence, one file per frame named `<NAME>_<12-digit frame>_keypoints.json`;
in each, `people[0]` carries `pose_keypoints_2d` (25 points), `face_keypoints_2d` (70),
`hand_left_keypoints_2d` and `hand_right_keypoints_2d` (21 each), as flat x, y, confidence
triples. An empty list means the detector did not run for that part (masked, not an error).
"""
from __future__ import annotations

import collections
import concurrent.futures
import itertools
import json
import multiprocessing
import os
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

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
    match = FRAME_FILE.search(name)
    if match:
      found.append((int(match.group(1)), name))
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
  for frame, (_, name) in enumerate(files):
    path = os.path.join(folder, name)
    values = _read_frame(path, record, report)
    if values is None:
      continue
    for part, flat in enumerate(values):
      if flat is None:
        continue
      lo, hi = _OFFSETS[part], _OFFSETS[part + 1]
      data[frame, lo:hi] = flat[:, :2]
      confidence[frame, lo:hi] = flat[:, 2]
  return PoseSequence(data, confidence, fps, "openpose_137")


def _read_frame(path: str, record: str, report: rp.ReadReport):
  """Per component an array [points, 3] (or None when absent); None if the frame is unusable."""
  try:
    with open(path, "rb") as handle:
      frame = json.loads(handle.read().decode("utf-8"))
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
  for frame in range(seq.num_frames):
    person = {"person_id": [-1]}
    for part, field in enumerate(skeletons.OPENPOSE_JSON_FIELDS):
      lo, hi = _OFFSETS[part], _OFFSETS[part + 1]
      triples = np.concatenate([seq.data[frame, lo:hi], seq.confidence[frame, lo:hi, None]], axis=1)
      person[field] = [round(float(v), 3) for v in triples.reshape(-1)]
    frames.append({"version": 1.3, "people": [person]})
  return frames




MIN_FOLDERS_PER_WORKER = 16


class LoadedFolder(NamedTuple):
  """One folder read apart from the reading's report (possibly in another process): the sequence,
  or the error that skips its record, and the frames it masked."""
  pose: PoseSequence | None
  error: dict | None   # CorpusError.as_dict() (exceptions with several fields do not pickle as themselves)
  masked: list

  def into(self, report: rp.ReadReport) -> PoseSequence:
    """The sequence, its masked frames added to `report`; raises the error (skipping the record)."""
    if self.error is not None:
      raise rp.CorpusError(**self.error)
    for item in self.masked:
      report.mask(rp.CorpusError(**item))
    return self.pose


def _load_folder(job: tuple[str, str, float, bool]) -> LoadedFolder:
  folder, record, fps, strict = job
  local = rp.ReadReport(strict=strict)
  try:
    return LoadedFolder(read_openpose_folder(folder, record, local, fps), None, local.masked)
  except rp.CorpusError as e:
    return LoadedFolder(None, e.as_dict(), [])


def _load_chunk(jobs: list) -> list[LoadedFolder]:
  return [_load_folder(job) for job in jobs]


def load_openpose_folders(folders: Iterable[tuple[str, str]], fps: float, strict: bool = False,
                          workers: int = 1, chunk: int = 8) -> Iterator[LoadedFolder]:
  """Each (folder, record) read, in order. With `workers` > 1 the folders are parsed in that many
  processes (a corpus of a few million JSON frames is CPU-bound on parsing), `chunk` folders per
  task and a bounded number of tasks ahead, so memory stays flat however long the corpus is. Fewer
  workers than asked when there are few folders: starting one costs about a second."""
  folders = list(folders)
  jobs = ((folder, record, fps, strict) for folder, record in folders)
  workers = min(workers, len(folders) // MIN_FOLDERS_PER_WORKER)
  if workers <= 1:
    yield from map(_load_folder, jobs)
    return
  chunks = iter(lambda: list(itertools.islice(jobs, chunk)), [])
  # spawn: the caller may hold threads (TFDS, JAX) that a forked child would inherit half-locked
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
    ahead = collections.deque(pool.submit(_load_chunk, c) for c in itertools.islice(chunks, 4 * workers))
    while ahead:
      done = ahead.popleft().result()
      following = next(chunks, None)
      if following is not None:
        ahead.append(pool.submit(_load_chunk, following))
      yield from done
