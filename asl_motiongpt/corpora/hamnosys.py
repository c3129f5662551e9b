"""HamNoSys dictionary corpus in the Ham2Pose layout: `data.json` + poses keyed by id.

`data.json` maps an id to {hamnosys, hamnosys_text, type_name, video_*}. We keep HamNoSys as the
Unicode string and as symbol names (from `hamnosys_text` when filled, else from our code-point
table; an unknown code point is named `U+XXXX`), and the gloss from `type_name`.
Poses are `<id>.pose` (any known layout) or an OpenPose JSON folder `<id>/`, under `<src>/poses`,
`<src>/openpose` or `<src>`. An entry without a pose is kept as text-only (`pose=None`), counted
under `text_only`; pose tasks leave it out.
Splits: `<src>/splits.json` ({split: [ids]}) when present; otherwise a stable hash of the id puts
5% in `test`, 5% in `dev`, the rest in `train`; `all` reads everything.
"""
from __future__ import annotations

import functools
import json
import os
import zlib
from collections.abc import Iterator

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.corpora.example import Example, check_pose, check_text, first_existing
from asl_motiongpt.corpora.openpose_json import read_openpose_folder
from asl_motiongpt.pose.pose_io import PoseFileError, read_pose

NAME = "hamnosys"
SPLITS = {"train": "train", "dev": "dev", "test": "test"}  # and "all" when reading
FPS = 25.0
DATA_FILES = ("data.json", "hamnosys_data.json")


@functools.lru_cache(maxsize=1)
def symbol_table() -> dict[str, str]:
  with open(os.path.join(os.path.dirname(__file__), "hamnosys_symbols.json"), encoding="utf-8") as handle:
    return json.load(handle)


def symbol_names(hamnosys: str) -> tuple[str, ...]:
  table = symbol_table()
  names = []
  for char in hamnosys:
    key = f"U+{ord(char):04X}"
    names.append("hamspace" if char == " " else table.get(key, key))
  return tuple(names)


def hash_split(entry_id: str) -> str:
  bucket = zlib.crc32(entry_id.encode("utf-8")) % 20
  return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def _split_ids(src: str, split: str) -> set[str] | None:
  path = os.path.join(src, "splits.json")
  if split == "all" or not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as handle:
    splits = json.load(handle)
  if split not in splits:
    raise KeyError(f"{path}: no split {split!r}; has {sorted(splits)}")
  return set(splits[split])


def data_path(src: str) -> str:
  path = first_existing([os.path.join(src, n) for n in DATA_FILES])
  if path is None:
    raise FileNotFoundError(f"{src}: none of {DATA_FILES} found")
  return path


def _find_pose(src: str, entry_id: str) -> str | None:
  roots = [os.path.join(src, "poses"), os.path.join(src, "openpose"), src]
  return first_existing([os.path.join(r, f"{entry_id}.pose") for r in roots]
                        + [os.path.join(r, entry_id) for r in roots[:2]])


def read(src: str, split: str, report: rp.ReadReport, fps: float = FPS,
         max_text_chars: int | None = None) -> Iterator[Example]:
  path = data_path(src)
  try:
    with open(path, "rb") as handle:
      entries = json.loads(handle.read().decode("utf-8"))
  except UnicodeDecodeError as e:
    raise rp.CorpusError(rp.BAD_ENCODING, path, None, None, f"not valid UTF-8 at byte {e.start}") from e
  except ValueError as e:
    raise rp.CorpusError(rp.MALFORMED_JSON, path, None, None, f"malformed JSON: {e}") from e
  if not isinstance(entries, dict):
    raise rp.CorpusError(rp.BAD_COLUMNS, path, None, None, "expected an object keyed by id")
  wanted = _split_ids(src, split)
  for entry_id, entry in entries.items():
    if wanted is not None and entry_id not in wanted:
      continue
    if wanted is None and split != "all" and hash_split(entry_id) != split:
      continue
    with report.record():
      if not isinstance(entry, dict) or not isinstance(entry.get("hamnosys"), str):
        raise rp.CorpusError(rp.BAD_COLUMNS, path, entry_id, "hamnosys", "missing or not a string")
      hamnosys = check_text(entry["hamnosys"], path, entry_id, "hamnosys", max_text_chars)
      given = entry.get("hamnosys_text") or ""
      given = tuple(given.split(",")) if given else ()
      symbols = given if len(given) == len(hamnosys) else symbol_names(hamnosys)
      pose = None
      pose_path = _find_pose(src, entry_id)
      if pose_path is None:
        report.note(rp.TEXT_ONLY)
      elif os.path.isdir(pose_path):
        pose = check_pose(read_openpose_folder(pose_path, entry_id, report, fps), report, pose_path, entry_id)
      else:
        try:
          pose = check_pose(read_pose(pose_path), report, pose_path, entry_id)
        except PoseFileError as e:
          raise rp.unreadable_pose(e, pose_path, entry_id) from e
      report.read += 1
      yield Example(id=entry_id, text=None, gloss=(entry.get("type_name") or None), hamnosys=hamnosys,
                    signer=entry.get("signer"), corpus=NAME, pose=pose, hamnosys_symbols=symbols,
                    split=split if split != "all" else hash_split(entry_id))
