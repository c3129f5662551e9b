"""RWTH-PHOENIX-Weather-2014T (DGS) in the TFDS layout: annotation CSV + one `.pose` per sequence.

`PHOENIX-2014-T.{split}.corpus.csv` is `|`-delimited with header
name|video|start|end|speaker|orth|translation (orth = gloss, translation = German sentence).
Poses (MediaPipe Holistic, 543 points) are `<name>.pose` under the first of `<src>/poses/<split>`,
`<src>/poses`, `<src>/<split>`, `<src>` that has it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.corpora.example import Example, check_pose, check_text, first_existing, read_table
from asl_motiongpt.pose.pose_io import PoseFileError, read_pose

NAME = "phoenix14t"
SPLITS = {"train": "train", "dev": "dev", "test": "test"}  # canonical name -> the corpus' own
COLUMNS = ("name", "speaker", "orth", "translation")


def table_path(src: str, split: str) -> str:
  return os.path.join(src, f"PHOENIX-2014-T.{split}.corpus.csv")


def pose_candidates(src: str, split: str, name: str) -> list[str]:
  return [os.path.join(d, f"{name}.pose") for d in (os.path.join(src, "poses", split),
                                                     os.path.join(src, "poses"),
                                                     os.path.join(src, split), src)]


def read(src: str, split: str, report: rp.ReadReport, max_text_chars: int | None = None,
         **unused) -> Iterator[Example]:
  table = table_path(src, split)
  for _, row in read_table(table, "|", COLUMNS, report):
    name = row["name"].strip()
    with report.record():
      text = check_text(row["translation"].strip(), table, name, "translation", max_text_chars)
      candidates = pose_candidates(src, split, name)
      path = first_existing(candidates)
      if path is None:
        raise rp.CorpusError(rp.MISSING_POSE, candidates[0], name, "pose",
                             "no .pose file for this sequence")
      try:
        pose = read_pose(path)
      except PoseFileError as e:
        raise rp.unreadable_pose(e, path, name) from e
      pose = check_pose(pose, report, path, name)
      report.read += 1
      yield Example(id=name, text=text, gloss=row["orth"].strip() or None, hamnosys=None,
                    signer=row["speaker"].strip() or None, corpus=NAME, pose=pose, split=split)
