"""How2Sign (ASL): `how2sign_realigned_{split}.csv` + one OpenPose JSON folder per sentence.

The table is tab-separated with columns VIDEO_ID, VIDEO_NAME, SENTENCE_ID, SENTENCE_NAME,
START_REALIGNED, END_REALIGNED, SENTENCE. Frame folders are looked up by SENTENCE_NAME under
the first of these that exists: `<src>/<split>_2D_keypoints/openpose_output/json` (the layout of
the official download), `<src>/<split>/json`, `<src>/json`, `<src>`.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.corpora.example import Example, check_pose, check_text, read_table
from asl_motiongpt.corpora.openpose_json import load_openpose_folders

NAME = "how2sign"
SPLITS = {"train": "train", "dev": "val", "test": "test"}  # canonical name -> How2Sign's own
COLUMNS = ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED",
           "END_REALIGNED", "SENTENCE")
FPS = 24.0


def table_path(src: str, split: str) -> str:
  return os.path.join(src, f"how2sign_realigned_{split}.csv")


def pose_roots(src: str, split: str) -> list[str]:
  return [os.path.join(src, f"{split}_2D_keypoints", "openpose_output", "json"),
          os.path.join(src, split, "json"), os.path.join(src, "json"), src]


def read(src: str, split: str, report: rp.ReadReport, fps: float = FPS,
         max_text_chars: int | None = None, workers: int = 1) -> Iterator[Example]:
  """workers > 1: the frame folders are parsed in that many processes (openpose_json.load_openpose_folders);
  the examples, their order and the report are those of one process."""
  table = table_path(src, split)
  roots = [r for r in pose_roots(src, split) if os.path.isdir(r)]
  rows = [row for _, row in read_table(table, "\t", COLUMNS, report)]
  names = [row["SENTENCE_NAME"].strip() for row in rows]
  folders = [next((os.path.join(r, name) for r in roots if os.path.isdir(os.path.join(r, name))),
                  os.path.join(roots[0] if roots else src, name)) for name in names]
  loaded = load_openpose_folders(zip(folders, names), fps, report.strict, workers)
  for row, name, folder, poses in zip(rows, names, folders, loaded):
    with report.record():
      text = check_text(row["SENTENCE"].strip(), table, name, "SENTENCE", max_text_chars)
      pose = check_pose(poses.into(report), report, folder, name)
      report.read += 1
      yield Example(id=name, text=text, gloss=None, hamnosys=None, signer=row["VIDEO_ID"].strip() or None,
                    corpus=NAME, pose=pose, split=split)
