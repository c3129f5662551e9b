"""LLM stage data: prepared corpora + the tokenizer's codes -> task examples -> a weighted mixture of
corpora -> formatted, padded or packed, batched Grain iterator (per-process slice, order fixed by
the seed).

Padding: one example per row of `max_len` tokens. Packing (Grain's first-fit packer): several
examples per row, with `segment_ids` (1, 2, ...; 0 = padding) and per-example `positions`, which
the model turns into a block-diagonal causal mask; the loss is unchanged (an example's first token,
bos, is never a target, so nothing is predicted across a boundary). Short examples (a sentence and
its signs are ~60-100 tokens of 250) then fill rows instead of padding.

Each example takes part in the stage's tasks it has the fields for (`TaskExample.supports`), the
task drawn per example with the stage's weights renormalised over those. Examples that support none
of a stage's tasks are left out and counted in the report, never silently.
"""
from __future__ import annotations

import dataclasses

import grain
import numpy as np

from asl_motiongpt.data.prepare import load_prepared
from asl_motiongpt.data.process_rows import process_rows
from asl_motiongpt.data.shuffle import EpochShuffle
from asl_motiongpt.data.tasks import TaskExample, TaskFormatter
from asl_motiongpt.data.workers import read_options, with_workers

# Motion positions are not a batch field: the model finds them by their ids (model/combinations.py).
BATCH_KEYS = ("input_ids", "target_mask")
PACKED_KEYS = BATCH_KEYS + ("segment_ids", "positions")


def read_task_examples(prepared: str, corpus: str, split: str, codes: dict[str,
                                                                           np.ndarray]) -> list[TaskExample]:
  """Every record of a prepared split as a TaskExample (codes from the tokenizer's cache)."""
  source = load_prepared(prepared, corpus, split)
  empty = np.zeros((0,), np.int32)
  out = []
  for index in range(len(source)):
    record = source[index]
    entry_id = record["id"].decode()
    symbols = record["hamnosys_symbols"].decode()
    out.append(
        TaskExample(entry_id,
                    record["text"].decode(),
                    codes.get(entry_id, empty).reshape(-1),
                    gloss=record["gloss"].decode(),
                    hamnosys=" ".join(s for s in symbols.split(",") if s)))
  return out


@dataclasses.dataclass
class MixtureReport:
  """What a stage's data is made of: per corpus, examples read, used, and usable per task."""
  weights: dict[str, float]
  read: dict[str, int]
  used: dict[str, int]
  per_task: dict[str, dict[str, int]]

  def summary(self, batch_size: int | None = None) -> str:
    """One line per corpus; with `batch_size`, a corpus with fewer usable examples than one batch is
    said to repeat examples inside each batch (it trains, but on fewer distinct examples than it looks)."""
    parts = []
    for corpus, weight in self.weights.items():
      tasks = ", ".join(f"{t} {n}" for t, n in self.per_task[corpus].items())
      left = self.read[corpus] - self.used[corpus]
      small = batch_size and weight > 0 and 0 < self.used[corpus] < batch_size
      parts.append(
          f"{corpus} (weight {weight:g}): {self.used[corpus]} of {self.read[corpus]} examples [{tasks}]" +
          (f", {left} support none of the tasks" if left else "") +
          (f"; FEWER THAN ONE BATCH ({batch_size}): examples repeat inside every batch" if small else ""))
    return "; ".join(parts)


def _packed_fields(row: dict) -> dict:
  """Grain names the packing metadata per feature; all features share it: keep one copy."""
  out = {key: row[key] for key in BATCH_KEYS}
  out["segment_ids"] = row["input_ids_segment_ids"].astype(np.int32)
  out["positions"] = row["input_ids_positions"].astype(np.int32)
  return out


def task_mixture(examples: dict[str, list[TaskExample]], corpus_weights: dict[str, float],
                 task_weights: dict[str, float], formatter: TaskFormatter, *, seed: int, batch_size: int,
                 process_index: int = 0, process_count: int = 1, worker_count: int = 0, packing: bool = False):
  """An endless, batched iterator dataset over the weighted mixture; `batch_size` is per process."""
  tasks = list(task_weights)
  sources, weights, report = [], [], MixtureReport({}, {}, {}, {})
  for corpus, weight in corpus_weights.items():
    usable = [e for e in examples[corpus] if any(e.supports(t) for t in tasks)]
    report.weights[corpus], report.read[corpus], report.used[corpus] = weight, len(
        examples[corpus]), len(usable)
    report.per_task[corpus] = {t: sum(e.supports(t) for e in usable) for t in tasks}
    if weight <= 0:
      continue
    if not usable:
      raise ValueError(f"corpus {corpus!r}: no example supports the tasks {tasks} "
                       f"({len(examples[corpus])} read)")
    # shuffling and repetition are seeded, so the order (and where a restored iterator continues) is
    # the same in every run; each process then takes its rows of every global batch (below)
    sources.append(EpochShuffle(grain.MapDataset.source(usable).seed(seed), seed))
    weights.append(float(weight))
  if not sources:
    raise ValueError(f"no corpus with a positive weight in the mixture {corpus_weights}")
  mixed = sources[0] if len(sources) == 1 else grain.MapDataset.mix(sources, weights)

  def format_one(example: TaskExample, rng: np.random.Generator) -> dict:
    supported = [t for t in tasks if example.supports(t)]
    probabilities = np.asarray([task_weights[t] for t in supported], np.float64)
    task = supported[int(rng.choice(len(supported), p=probabilities / probabilities.sum()))]
    out = formatter.format(example, task, rng)
    keep = int(out["length"]) if packing else formatter.max_len
    return {key: out[key][:keep] for key in BATCH_KEYS}

  ds = process_rows(mixed.seed(seed).random_map(format_one), batch_size, process_index, process_count)
  ds = ds.to_iter_dataset(read_options())
  if packing:
    ds = grain.experimental.FirstFitPackIterDataset(ds,
                                                    length_struct={k: formatter.max_len for k in BATCH_KEYS},
                                                    num_packing_bins=batch_size,
                                                    shuffle_bins=False)
    ds = ds.map(_packed_fields)
  ds = ds.batch(batch_size, drop_remainder=True)
  return with_workers(ds, worker_count), report
