"""PHOENIX-2014T in the Progressive Transformers files: `{split}.text/.gloss/.files/.skels`.

The four files are line-aligned. A `.skels` line holds, per frame, 150 values (50 joints x xyz,
scaled by 1/3, neck at the origin) followed by a progress counter t/T; we strip the counter and
undo the scaling. Joints 0-7 are the upper body in OpenPose order, then two hands; the file's left
and right are the signer's right and left (see `skeletons.PT_50`), which `to_unified` undoes.
The format carries no confidence; a joint other than the neck that is exactly (0, 0, 0) is
taken as missing.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.corpora.example import Example, check_pose, check_text, read_lines
from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.sequence import PoseSequence

NAME = "phoenix14t_pt"
SPLITS = {"train": "train", "dev": "dev", "test": "test"}  # canonical name -> the corpus' own
JOINTS, DIMS = 50, 3
VALUES_PER_FRAME = JOINTS * DIMS + 1
SCALE = 3.0
FPS = 25.0


def _lines(path: str) -> list[str | UnicodeDecodeError]:
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: Progressive Transformers file not found")
  lines = [line for _, line in read_lines(path)]
  while lines and lines[-1] == "":  # trailing newline
    lines.pop()
  return lines


def parse_skels_line(line: str, path: str, record: str) -> PoseSequence:
  try:
    values = np.asarray(line.split(), np.float64)
  except ValueError as e:
    raise rp.CorpusError(rp.WRONG_VALUE_COUNT, path, record, "skels", f"non-numeric value ({e})")
  if values.size == 0:
    raise rp.CorpusError(rp.EMPTY_SEQUENCE, path, record, "skels", "the sequence has no frames")
  if values.size % VALUES_PER_FRAME:
    raise rp.CorpusError(rp.WRONG_VALUE_COUNT, path, record, "skels",
                         f"{values.size} values is not a multiple of {VALUES_PER_FRAME} "
                         f"({JOINTS} joints x {DIMS} + counter)")
  frames = values.reshape(-1, VALUES_PER_FRAME)[:, :-1].reshape(-1, JOINTS, DIMS) * SCALE
  missing = (frames == 0).all(axis=-1)
  missing[:, skeletons.NECK] = False  # the neck is the origin by construction
  return PoseSequence(np.where(missing[..., None], 0.0, frames), (~missing).astype(np.float32),
                      FPS, "pt_50")


def read(src: str, split: str, report: rp.ReadReport, max_text_chars: int | None = None,
         **unused) -> Iterator[Example]:
  paths = {key: os.path.join(src, f"{split}.{key}") for key in ("text", "gloss", "files", "skels")}
  columns = {key: _lines(p) for key, p in paths.items()}
  counts = {key: len(v) for key, v in columns.items()}
  if len(set(counts.values())) != 1:
    raise rp.CorpusError(rp.BAD_COLUMNS, paths["files"], None, None,
                         f"the four files must have one line per sequence; line counts {counts}")
  for index in range(counts["files"]):
    name = columns["files"][index]
    record = name.split("/")[-1].strip() if isinstance(name, str) else f"line {index + 1}"
    with report.record():
      for key in ("files", "text", "gloss", "skels"):
        if isinstance(columns[key][index], UnicodeDecodeError):
          raise rp.CorpusError(rp.BAD_ENCODING, paths[key], record, key,
                               f"line {index + 1} is not valid UTF-8 (byte {columns[key][index].start})")
      text = check_text(columns["text"][index].strip(), paths["text"], record, "text", max_text_chars)
      pose = parse_skels_line(columns["skels"][index], paths["skels"], record)
      pose = check_pose(pose, report, paths["skels"], record)
      report.read += 1
      yield Example(id=record, text=text, gloss=columns["gloss"][index].strip() or None, hamnosys=None,
                    signer=None, corpus=NAME, pose=pose, split=split)
