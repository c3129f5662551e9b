"""The evaluator's inputs: a sentence as word ids, a pose sequence as standardised per-frame features.

Motion features: each frame's unified pose standardised with the evaluator's statistics (the
prepared corpus' training split, gesture/features.py), masked joints 0, flattened to J * D
values; sequences longer than `max_frames` are sampled evenly down to it (the whole sign is seen),
shorter ones padded with `time_mask` False. Text: the evaluator's own word tokenizer (trained on
the corpus' training sentences, data/text_tokenizer.py), at most `max_words` words.
"""
from __future__ import annotations

import grain
import jax
import numpy as np

from asl_motiongpt.data.prepare import load_prepared
from asl_motiongpt.data.process_rows import process_rows
from asl_motiongpt.data.shuffle import EpochShuffle
from asl_motiongpt.data.workers import read_options
from asl_motiongpt.motion_evaluator.networks import EvaluatorSpec
from asl_motiongpt.pose.transform import fit_dims


def motion_features(pose_TJD: np.ndarray, mask_TJ: np.ndarray, statistics: dict, spec: EvaluatorSpec):
  """(features [max_frames, J*D] float32, time_mask [max_frames] bool)."""
  pose = fit_dims(np.asarray(pose_TJD, np.float32), spec.dims)[:, :spec.joints]
  mask = np.asarray(mask_TJ, bool)[:, :spec.joints]
  if len(pose) > spec.max_frames:
    keep = np.linspace(0, len(pose) - 1, spec.max_frames).round().astype(int)
    pose, mask = pose[keep], mask[keep]
  feats = (pose - statistics["feature_mean"]) / statistics["feature_std"]
  feats = np.where(mask[..., None], feats, 0.0).reshape(len(pose), -1)
  features = np.zeros((spec.max_frames, feats.shape[1]), np.float32)
  features[:len(feats)] = feats
  time_mask = np.zeros((spec.max_frames,), bool)
  time_mask[:len(feats)] = True
  return features, time_mask


def word_ids(tokenizer, texts: list[str], spec: EvaluatorSpec):
  """(ids [N, max_words] int32, mask [N, max_words] bool); 0 is the padding id."""
  ids = np.zeros((len(texts), spec.max_words), np.int32)
  for index, text in enumerate(texts):
    row = tokenizer(text, add_special_tokens=False)["input_ids"][:spec.max_words]
    ids[index, :len(row)] = row
  return ids, ids > 0


def pair(record: dict, tokenizer, statistics: dict, spec: EvaluatorSpec) -> dict | None:
  """One training example from a prepared record; None for a record without a pose or a sentence."""
  text = record["text"].decode("utf-8") if isinstance(record["text"], bytes) else record["text"]
  if not record["has_pose"] or not text.strip():
    return None
  features, time_mask = motion_features(record["pose"], record["confidence"] > 0, statistics, spec)
  words, word_mask = word_ids(tokenizer, [text], spec)
  return {"features": features, "time_mask": time_mask, "words": words[0], "word_mask": word_mask[0]}


def pair_dataset(prepared: str, corpus: str, split: str, tokenizer, statistics: dict, spec: EvaluatorSpec, *,
                 batch_size: int, seed: int) -> grain.IterDataset:
  """Shuffled, repeated batches of this process' rows (a checkpointable Grain iterator)."""
  source = load_prepared(prepared, corpus, split)
  ds = EpochShuffle(grain.MapDataset.source(source).seed(seed), seed)
  ds = ds.map(lambda r: pair(r, tokenizer, statistics, spec))
  ds = process_rows(ds, batch_size, jax.process_index(), jax.process_count()).filter(lambda x: x is not None)
  return ds.to_iter_dataset(read_options()).batch(batch_size, drop_remainder=True)


def split_pairs(prepared: str, corpus: str, split: str) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
  """(id, sentence, pose, mask) of every record of a split with both."""
  source = load_prepared(prepared, corpus, split)
  out = []
  for index in range(len(source)):
    record = source[index]
    text = record["text"].decode("utf-8")
    if record["has_pose"] and text.strip():
      out.append((record["id"].decode("utf-8"), text, record["pose"], record["confidence"] > 0))
  return out
