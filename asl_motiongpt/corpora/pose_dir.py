"""A folder of `.pose` files with a table of id and text (`index.tsv`: id, text[, gloss, signer]).

The simplest way to bring your own data: any layout pose-format writes that we know (MediaPipe
Holistic as `video_to_pose` writes it, with or without refined face and world landmarks, pose-format's
reduced 178, OpenPose, unified: docs/DESIGN.md, "Pose layouts we read"). Rows may carry a `split` column; without it
every row belongs to every split asked for.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.corpora.example import Example, check_pose, check_text, read_table, table_splits
from asl_motiongpt.pose.pose_io import PoseFileError, read_pose

NAME = "pose_dir"
SPLITS = {"train": "train", "dev": "dev", "test": "test"}  # canonical name -> the corpus' own
TABLE = "index.tsv"


def available_splits(src: str) -> tuple[str, ...]:
  return table_splits(os.path.join(src, TABLE), tuple(SPLITS))


def read(src: str, split: str, report: rp.ReadReport, max_text_chars: int | None = None,
         **unused) -> Iterator[Example]:
  table = os.path.join(src, TABLE)
  for _, row in read_table(table, "\t", ("id", "text"), report):
    if row.get("split") and row["split"].strip() != split:
      continue
    entry_id = row["id"].strip()
    with report.record():
      text = check_text(row["text"].strip(), table, entry_id, "text", max_text_chars)
      path = os.path.join(src, f"{entry_id}.pose")
      if not os.path.exists(path):
        raise rp.CorpusError(rp.MISSING_POSE, path, entry_id, "pose", ".pose file not found")
      try:
        pose = check_pose(read_pose(path), report, path, entry_id)
      except PoseFileError as e:
        raise rp.unreadable_pose(e, path, entry_id) from e
      report.read += 1
      yield Example(id=entry_id, text=text, gloss=(row.get("gloss") or "").strip() or None,
                    hamnosys=None, signer=(row.get("signer") or "").strip() or None,
                    corpus=NAME, pose=pose, split=split)
