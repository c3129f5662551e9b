"""A folder of signing videos with a table of id and text (`index.tsv`: id, text[, video, gloss,
signer, split]): what a signer, a linguist or a lab with its own recordings has.

Each video is turned into MediaPipe Holistic poses once (`pose/video.py`, the `[video]` extra), in
worker processes, and cached as `<pose_cache>/<id>.pose` (`prepare` puts the cache beside the
prepared data: `<out>/video_poses/<corpus>/`); a later `prepare` reads the cached files. The video
of a row is its `video` column (relative to the folder) or `<id>.mp4|.mov|.webm|.avi|.mkv`. A video
that cannot be decoded is skipped and listed with the decoder's reason (and tried again next time);
a row without a video is skipped as a missing file.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Iterator

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.corpora.example import Example, check_pose, check_text, read_table, table_splits
from asl_motiongpt.pose.pose_io import PoseFileError, read_pose

NAME = "videos"
SPLITS = {"train": "train", "dev": "dev", "test": "test"}
TABLE = "index.tsv"
VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".avi", ".mkv")
MISSING_VIDEO = "missing_video"
BAD_VIDEO = "bad_video"


def _video_of(src: str, row: dict) -> str | None:
  named = (row.get("video") or "").strip()
  if named:
    path = os.path.join(src, named)
    return path if os.path.exists(path) else None
  for extension in VIDEO_EXTENSIONS:
    path = os.path.join(src, row["id"].strip() + extension)
    if os.path.exists(path):
      return path
  return None


def _extract_one(video: str, out: str) -> str | None:
  """Runs in a worker process: the poses of one video written to `out`; the error's text on failure."""
  from asl_motiongpt.pose.video import VideoError, video_to_poses, write_video_poses
  try:
    write_video_poses(video_to_poses(video, progress=False), out)
  except (VideoError, ValueError) as e:
    return str(e)
  return None


def extract_poses(jobs: list[tuple[str, str, str]], workers: int = 1, progress: bool = True) -> dict[str, str]:
  """(record id, video, .pose path) for each video without cached poses -> {record id: why it failed}."""
  from asl_motiongpt.pose.video import VideoExtraMissing, video_extra_missing
  if not jobs:
    return {}
  missing = video_extra_missing()
  if missing:
    raise VideoExtraMissing(f"the videos corpus needs MediaPipe to extract poses from {len(jobs)} videos: {missing}")
  from tqdm import tqdm
  failures = {}
  bar = tqdm(total=len(jobs), desc="poses from videos", unit="video", disable=not progress)
  workers = max(1, min(workers, len(jobs)))
  # spawn: the caller may hold threads (TFDS, JAX) that a forked child would inherit half-locked
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
    futures = {pool.submit(_extract_one, video, out): record for record, video, out in jobs}
    for future in concurrent.futures.as_completed(futures):
      error = future.result()
      if error is not None:
        failures[futures[future]] = error
      bar.update(1)
  bar.close()
  return failures


def available_splits(src: str) -> tuple[str, ...]:
  return table_splits(os.path.join(src, TABLE), tuple(SPLITS))


def read(src: str, split: str, report: rp.ReadReport, max_text_chars: int | None = None, workers: int = 1,
         pose_cache: str | None = None, **unused) -> Iterator[Example]:
  table = os.path.join(src, TABLE)
  rows = [row for _, row in read_table(table, "\t", ("id", "text"), report)
          if not row.get("split") or row["split"].strip() == split]
  cache = pose_cache or os.path.join(src, ".video_poses")
  os.makedirs(cache, exist_ok=True)
  cached = {row["id"].strip(): os.path.join(cache, f"{row['id'].strip()}.pose") for row in rows}
  videos = {row["id"].strip(): _video_of(src, row) for row in rows}
  todo = [(i, videos[i], cached[i]) for i in cached if videos[i] and not os.path.exists(cached[i])]
  failures = extract_poses(todo, workers)
  for row in rows:
    entry_id = row["id"].strip()
    with report.record():
      text = check_text(row["text"].strip(), table, entry_id, "text", max_text_chars)
      video = videos[entry_id]
      if video is None:
        where = row.get("video") or f"{entry_id}{{{','.join(VIDEO_EXTENSIONS)}}}"
        raise rp.CorpusError(MISSING_VIDEO, os.path.join(src, where), entry_id, "video", "video file not found")
      if entry_id in failures:
        raise rp.CorpusError(BAD_VIDEO, video, entry_id, "video", failures[entry_id])
      try:
        pose = check_pose(read_pose(cached[entry_id]), report, cached[entry_id], entry_id)
      except PoseFileError as e:
        raise rp.unreadable_pose(e, cached[entry_id], entry_id) from e
      report.read += 1
      yield Example(id=entry_id, text=text, gloss=(row.get("gloss") or "").strip() or None, hamnosys=None,
                    signer=(row.get("signer") or "").strip() or None, corpus=NAME, pose=pose, split=split)
