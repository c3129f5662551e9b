"""Grain pipeline of fixed-length pose windows for the tokenizer stage.

    source -> shuffle(seed) -> repeat -> [augmentation] -> random 64-frame window -> this process'
    rows -> drop text-only -> batch

Sequences shorter than the window are zero-padded with `time_mask` False. The iterator is a
Grain DatasetIterator: its state goes into the checkpoint, so a resumed run sees the same batches.
"""
from __future__ import annotations

import grain
import jax
import numpy as np

from asl_motiongpt.data.prepare import load_prepared
from asl_motiongpt.data.process_rows import process_rows
from asl_motiongpt.data.shuffle import EpochShuffle
from asl_motiongpt.data.workers import read_options, with_workers
from asl_motiongpt.pose.augment import Augmentation, augment
from asl_motiongpt.pose.transform import fit_dims


def crop_window(record: dict, rng: np.random.Generator, frames: int, dims: int,
                augmentation: Augmentation | None = None) -> dict | None:
  if not record["has_pose"]:
    return None
  pose, conf = record["pose"], record["confidence"]
  if augmentation is not None and augmentation.active:  # the whole sequence: a speed change alters its length
    pose, mask = augment(fit_dims(pose, dims), conf > 0, rng, augmentation)
    conf = mask.astype(np.float32)
  length = pose.shape[0]
  start = int(rng.integers(0, length - frames + 1)) if length > frames else 0
  pose = fit_dims(pose[start:start + frames], dims)
  mask = conf[start:start + frames] > 0
  kept = pose.shape[0]
  out_pose = np.zeros((frames,) + pose.shape[1:], np.float32)
  out_mask = np.zeros((frames, mask.shape[1]), bool)
  out_pose[:kept], out_mask[:kept] = pose, mask
  time_mask = np.zeros((frames,), bool)
  time_mask[:kept] = True
  return {"pose": out_pose, "mask": out_mask, "time_mask": time_mask}


def window_dataset(prepared: str, corpus: str, split: str, *, frames: int, dims: int, batch_size: int,
                   seed: int, process_index: int | None = None, process_count: int | None = None,
                   worker_count: int = 0, augmentation: Augmentation | None = None) -> grain.IterDataset:
  """Batches of windows for this process (its rows of each global batch: data/process_rows.py),
  made in `worker_count` Grain worker processes when > 0."""
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  source = load_prepared(prepared, corpus, split)
  ds = EpochShuffle(grain.MapDataset.source(source).seed(seed), seed)
  # Window first, then drop text-only entries: Grain derives each element's random generator
  # from its index, and filtering before a random map would repeat generators.
  ds = ds.random_map(lambda r, rng: crop_window(r, rng, frames, dims, augmentation))
  ds = process_rows(ds, batch_size, process_index, process_count).filter(lambda w: w is not None)
  return with_workers(ds.to_iter_dataset(read_options()).batch(batch_size, drop_remainder=True), worker_count)


def full_sequences(prepared: str, corpus: str, split: str, dims: int):
  """(id, pose [T, J, D], mask [T, J]) of every example with a pose, in record order."""
  source = load_prepared(prepared, corpus, split)
  for index in range(len(source)):
    record = source[index]
    if record["has_pose"]:
      yield record["id"].decode("utf-8"), fit_dims(record["pose"], dims), record["confidence"] > 0
