"""Corpus readers: each turns one corpus format into a stream of `Example`s.

    from asl_motiongpt import corpora
    report = corpora.ReadReport()
    for ex in corpora.read("phoenix14t", "/data/phoenix", split="dev", report=report):
        ...
    print(report.summary())
"""
from __future__ import annotations

from collections.abc import Iterator

from asl_motiongpt.corpora import hamnosys, how2sign, phoenix, phoenix_pt, pose_dir
from asl_motiongpt.corpora.example import Example
from asl_motiongpt.corpora.report import CorpusError, ReadReport

READERS = {m.NAME: m for m in (how2sign, phoenix, phoenix_pt, hamnosys, pose_dir)}
CORPORA = tuple(READERS) + ("tfds:phoenix14t", "tfds:how2sign")


def splits(corpus: str) -> tuple[str, ...]:
  if corpus.startswith("tfds:"):
    return ("train", "validation", "test")
  return _reader(corpus).SPLITS


def _reader(corpus: str):
  if corpus not in READERS:
    raise KeyError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
  return READERS[corpus]


def read(corpus: str, src: str, split: str = "train", *, strict: bool = False,
         report: ReadReport | None = None, **options) -> Iterator[Example]:
  """Examples of `split` of `corpus` under `src`, each with its pose in the corpus' own layout.

  strict: stop at the first bad record with a `CorpusError` (file, record, field); otherwise skip
  or mask it and count it in `report`. Options: `fps` (readers of OpenPose JSON), `max_text_chars`.
  """
  report = report if report is not None else ReadReport(strict=strict)
  report.strict = strict
  if corpus.startswith("tfds:"):
    from asl_motiongpt.corpora import tfds_source
    return tfds_source.read(corpus[5:], split, report, data_dir=src or None)
  return _reader(corpus).read(src, split, report, **options)


__all__ = ["Example", "CorpusError", "ReadReport", "read", "splits", "CORPORA", "READERS"]
