"""Corpus readers: each turns one corpus format into a stream of `Example`s.

    from asl_motiongpt import corpora
    report = corpora.ReadReport()
    for ex in corpora.read("phoenix14t", "/data/phoenix", split="dev", report=report):
        ...
    print(report.summary())
"""
from __future__ import annotations

import inspect
from collections.abc import Iterator

from asl_motiongpt.corpora import hamnosys, how2sign, phoenix, phoenix_pt, pose_dir, videos
from asl_motiongpt.corpora.example import Example
from asl_motiongpt.corpora.report import CorpusError, ReadReport

READERS = {m.NAME: m for m in (how2sign, phoenix, phoenix_pt, hamnosys, pose_dir, videos)}
CORPORA = tuple(READERS) + ("tfds:phoenix14t", "tfds:how2sign")


# Every prepared corpus names its splits train/dev/test, whatever the corpus calls them (How2Sign's
# held-out split is `val`, TFDS's `validation`), so that one `data.eval_split` names the held-out
# split of every corpus in a mixture. The corpus' own name is kept in the prepared statistics.
CANONICAL_SPLITS = ("train", "dev", "test")


def splits(corpus: str) -> dict[str, str]:
  """canonical split name -> the corpus' own name for it."""
  if corpus.startswith("tfds:"):
    return {"train": "train", "dev": "validation", "test": "test"}
  return dict(_reader(corpus).SPLITS)


def available_splits(corpus: str, src: str) -> tuple[str, ...]:
  """The canonical splits a corpus folder has records for (readers of a table with a `split` column
  know; the others have every split of their corpus)."""
  reader = None if corpus.startswith("tfds:") else _reader(corpus)
  if reader is not None and hasattr(reader, "available_splits"):
    return reader.available_splits(src)
  return tuple(splits(corpus))


def canonical_split(corpus: str, split: str) -> str:
  """The canonical name of a split given by either name ("val" of How2Sign -> "dev")."""
  names = splits(corpus)
  if split in names:
    return split
  for canonical, own in names.items():
    if own == split:
      return canonical
  raise ValueError(f"{corpus} has no split {split!r}; its splits are {', '.join(names)} "
                   f"(its own names: {', '.join(names.values())})")


def source_split(corpus: str, split: str) -> str:
  """The corpus' own name of a split given by either name."""
  return splits(corpus)[canonical_split(corpus, split)]


def _reader(corpus: str):
  if corpus not in READERS:
    raise KeyError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
  return READERS[corpus]


def read(corpus: str, src: str, split: str = "train", *, strict: bool = False,
         report: ReadReport | None = None, **options) -> Iterator[Example]:
  """Examples of `split` (canonical or the corpus' own name) of `corpus` under `src`, each with its
  pose in the corpus' own layout.

  strict: stop at the first bad record with a `CorpusError` (file, record, field); otherwise skip
  or mask it and count it in `report`. Options: `fps` (readers of OpenPose JSON), `max_text_chars`,
  `workers` (How2Sign: frame folders parsed in that many processes; videos: poses extracted in that
  many; ignored by the other readers), `pose_cache` (videos: where extracted poses are kept).
  """
  report = report if report is not None else ReadReport(strict=strict)
  report.strict = strict
  if split != "all":  # "all": every entry of a corpus that splits by itself (HamNoSys)
    split = source_split(corpus, split)
  if corpus.startswith("tfds:"):
    from asl_motiongpt.corpora import tfds_source
    return tfds_source.read(corpus[5:], split, report, data_dir=src or None)
  reader = _reader(corpus)
  if "workers" in options and "workers" not in inspect.signature(reader.read).parameters:
    options.pop("workers")  # readers of one file per record read fast enough in one process
  return reader.read(src, split, report, **options)


__all__ = ["Example", "CorpusError", "ReadReport", "read", "splits", "available_splits", "canonical_split", "source_split",
           "CANONICAL_SPLITS", "CORPORA", "READERS"]
