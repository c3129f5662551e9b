"""The record every corpus reader yields, and the checks all readers share."""
from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Iterator, Sequence

import numpy as np

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.pose.sequence import PoseSequence


@dataclasses.dataclass
class Example:
  """One signed utterance (or one dictionary sign).

  text:     spoken-language sentence (None where the corpus has none, e.g. HamNoSys entries).
  gloss:    gloss sequence, space-separated (None where absent).
  hamnosys: HamNoSys as its Unicode string (None where absent); `hamnosys_symbols` the same as
            symbol names (e.g. 'hamflathand').
  pose:     the signer's poses in the corpus' own layout (None for text-only entries).
  """
  id: str
  text: str | None
  gloss: str | None
  hamnosys: str | None
  signer: str | None
  corpus: str
  pose: PoseSequence | None
  hamnosys_symbols: tuple[str, ...] = ()
  split: str | None = None


def check_text(text: str | None, file: str, record: str, field: str,
               max_chars: int | None) -> str | None:
  if text is not None and max_chars is not None and len(text) > max_chars:
    raise rp.CorpusError(rp.TEXT_TOO_LONG, file, record, field,
                         f"text has {len(text)} characters, the limit is {max_chars}")
  return text


def check_pose(seq: PoseSequence, report: rp.ReadReport, file: str, record: str) -> PoseSequence:
  """Masks non-finite joints (counted per frame) and rejects sequences with nothing in them."""
  if seq.num_frames == 0:
    raise rp.CorpusError(rp.EMPTY_SEQUENCE, file, record, "pose", "the sequence has no frames")
  bad = ~np.isfinite(seq.data).all(axis=-1) | ~np.isfinite(seq.confidence)
  if bad.any():
    for frame in np.flatnonzero(bad.any(axis=1)):
      report.mask(rp.CorpusError(rp.NON_FINITE, file, record, f"pose frame {frame}",
                                 f"{int(bad[frame].sum())} joints are NaN or infinite; masked"))
    confidence = np.where(bad, 0.0, seq.confidence)
    seq = seq.replace(data=np.where(bad[..., None], 0.0, np.nan_to_num(seq.data)),
                      confidence=confidence)
  if not seq.mask.any():
    raise rp.CorpusError(rp.EMPTY_SEQUENCE, file, record, "pose", "no joint is present in any frame")
  return seq


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str | UnicodeDecodeError]]:
  """(1-based line number, decoded line) for each line; the decode error for a non-UTF-8 line
  (the caller reports it with the record it belongs to)."""
  with open(path, "rb") as handle:
    raw = handle.read()
  if raw.startswith(b"\xef\xbb\xbf"):
    raw = raw[3:]
  for number, line in enumerate(raw.split(b"\n"), start=1):
    line = line.rstrip(b"\r")
    try:
      yield number, line.decode("utf-8")
    except UnicodeDecodeError as e:
      yield number, e


def read_table(path: str | os.PathLike, delimiter: str, required: Sequence[str],
               report: rp.ReadReport) -> Iterator[tuple[int, dict[str, str]]]:
  """Rows of a delimited text table with a header, as dicts.

  A header missing a required column is an error in both modes (nothing can be read); a row
  with the wrong number of fields or bad UTF-8 is a skipped record.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: table not found")
  header = None
  for number, line in read_lines(path):
    if isinstance(line, UnicodeDecodeError):
      report.skip(rp.CorpusError(rp.BAD_ENCODING, str(path), f"line {number}", None,
                                 f"not valid UTF-8 at byte {line.start}"))
      continue
    if not line.strip():
      continue
    fields = next(csv.reader([line], delimiter=delimiter, quoting=csv.QUOTE_NONE))
    if header is None:
      header = [h.strip() for h in fields]
      missing = [c for c in required if c not in header]
      if missing:
        raise rp.CorpusError(rp.BAD_COLUMNS, str(path), "header", ",".join(missing),
                             f"required columns {missing} not in header {header}")
      continue
    if len(fields) != len(header):
      report.skip(rp.CorpusError(rp.BAD_COLUMNS, str(path), f"line {number}", None,
                                 f"{len(fields)} fields, the header has {len(header)}"))
      continue
    yield number, dict(zip(header, fields))
  if header is None:
    raise rp.CorpusError(rp.BAD_COLUMNS, str(path), "header", None, "the table is empty")


def table_splits(path: str | os.PathLike, splits: Sequence[str]) -> tuple[str, ...]:
  """The splits a table's optional `split` column names (all of `splits` without the column, where
  every row belongs to every split): `prepare` writes only those unless told which."""
  named = set()
  for _, row in read_table(path, "\t", (), rp.ReadReport()):
    if not (row.get("split") or "").strip():
      return tuple(splits)
    named.add(row["split"].strip())
  return tuple(s for s in splits if s in named)


def first_existing(candidates: Sequence[str]) -> str | None:
  for candidate in candidates:
    if os.path.exists(candidate):
      return candidate
  return None
