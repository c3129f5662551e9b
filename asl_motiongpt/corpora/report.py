"""Bad input: one error type that names file, record and field, and a report of what was skipped.

Policy (the same for every reader):
  * strict mode raises `CorpusError` at the first problem;
  * lenient mode (the default) never drops anything silently: a broken record is skipped and a
    broken frame or joint inside a good record is masked (confidence 0, so timing is kept), and
    each event is counted under a reason and listed with file, record and field.
Problems that make a whole file unreadable (a table without its required columns) raise in
both modes: there is no record to skip, only a wrong input.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os


class CorpusError(ValueError):
  """Bad input, located: which file, which record, which field, and why."""

  def __init__(self, reason: str, file: str, record: str | None, field: str | None, detail: str):
    self.reason, self.file, self.record, self.field, self.detail = reason, str(file), record, field, detail
    where = self.file + (f", record {record}" if record is not None else "") + (
        f", field {field}" if field is not None else "")
    super().__init__(f"{where}: {detail} [{reason}]")

  def as_dict(self) -> dict:
    return dict(reason=self.reason, file=self.file, record=self.record, field=self.field,
                detail=self.detail)


# Reasons a record is skipped or a frame masked; tests and the summary refer to these names.
MALFORMED_JSON = "malformed_json"
WRONG_VALUE_COUNT = "wrong_value_count"
NON_FINITE = "non_finite"
NO_PERSON = "no_person"
MISSING_POSE = "missing_pose_file"
BAD_COLUMNS = "bad_columns"
EMPTY_SEQUENCE = "empty_sequence"
BAD_ENCODING = "bad_encoding"
BAD_POSE_FILE = "bad_pose_file"
UNKNOWN_LAYOUT = "unknown_pose_layout"
TEXT_TOO_LONG = "text_too_long"
IMPLAUSIBLE_HAND = "implausible_hand"  # a hand in a frame that no hand can be (pose.plausibility)
# not an error: body joint-frames MediaPipe reports with a visibility below PrepareOptions.min_visibility
# (out of the image or hidden: their positions are guesses), masked and counted
BODY_NOT_VISIBLE = "body_joint_not_visible"
TEXT_ONLY = "text_only"  # not an error: a HamNoSys entry without a pose, kept with pose=None


def unreadable_pose(error: Exception, path, record: str) -> CorpusError:
  """A .pose file that did not read, as a located error: an unknown layout apart from a broken file."""
  from asl_motiongpt.pose.pose_io import UnknownLayoutError
  reason = UNKNOWN_LAYOUT if isinstance(error, UnknownLayoutError) else BAD_POSE_FILE
  return CorpusError(reason, path, record, "pose", str(error))


@dataclasses.dataclass
class ReadReport:
  """Counts and lists what a read skipped (records) or masked (frames, joints)."""
  strict: bool = False
  skipped: list[dict] = dataclasses.field(default_factory=list)
  masked: list[dict] = dataclasses.field(default_factory=list)
  notes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  read: int = 0

  def skip(self, error: CorpusError) -> None:
    """A whole record is left out (strict mode raises instead)."""
    if self.strict:
      raise error
    self.skipped.append(error.as_dict())

  def mask(self, error: CorpusError) -> None:
    """A frame or joint of a kept record is masked (strict mode raises instead)."""
    if self.strict:
      raise error
    self.masked.append(error.as_dict())

  def note(self, what: str, count: int = 1) -> None:
    """Counts something that is not an error (e.g. text-only entries)."""
    self.notes[what] += count

  @contextlib.contextmanager
  def record(self):
    """Runs the reading of one record; a CorpusError inside skips the record (or raises)."""
    try:
      yield
    except CorpusError as e:
      self.skip(e)

  def counts(self) -> dict[str, dict[str, int]]:
    return {"skipped_records": dict(collections.Counter(s["reason"] for s in self.skipped)),
            "masked": dict(collections.Counter(s["reason"] for s in self.masked)),
            "notes": dict(self.notes)}

  def summary(self) -> str:
    counts = self.counts()
    lines = [f"read {self.read} records; skipped {len(self.skipped)}; masked {len(self.masked)} frames/joints"]
    for title, key in (("skipped", "skipped_records"), ("masked", "masked"), ("noted", "notes")):
      for reason, count in sorted(counts[key].items()):
        lines.append(f"  {title:8s} {reason:20s} {count}")
    return "\n".join(lines)

  def jsonl(self) -> str:
    """Every skipped and masked item, one JSON object a line."""
    return "".join(json.dumps({"kind": kind, **item}, ensure_ascii=False) + "\n"
                   for kind, items in (("skipped", self.skipped), ("masked", self.masked)) for item in items)

  def write(self, path: str | os.PathLike) -> None:
    """Writes every skipped and masked item (JSON lines) so nothing is lost from view."""
    with open(path, "w", encoding="utf-8") as handle:
      handle.write(self.jsonl())
