"""Codes of every prepared example, as the chain's gesture tokenizer encodes them (no pickles).

  <workdir>/<tokenizer stage>/codes/<corpus>/<split>.codes.npy [total, parts] int16, .offsets.npy [N+1], .ids.json

Codes live with the tokenizer that made them (not beside the prepared data, where runs with
different tokenizers sharing one prepared folder would overwrite each other's codes). A cache is
written into a temporary folder and renamed, so a crash never leaves half a cache.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

from asl_motiongpt.data.prepare import dataset_dir
from asl_motiongpt.data.windows import full_sequences


def code_cache_dir(workdir: str, stage: str, corpus: str) -> str:
  return os.path.join(workdir, stage, "codes", corpus)


def write_code_cache(tokenizer, params, vq, prepared: str, corpus: str, dims: int, out: str) -> str:
  with open(os.path.join(dataset_dir(prepared, corpus), "dataset_info.json"), encoding="utf-8") as f:
    splits = [s["name"] for s in json.load(f)["splits"]]
  partial = f"{out}.partial-{os.getpid()}"
  os.makedirs(partial, exist_ok=True)
  for split in splits:
    ids, chunks = [], []
    for entry_id, pose, mask in full_sequences(prepared, corpus, split, dims):
      ids.append(entry_id)
      chunks.append(tokenizer.encode(params, vq, pose, mask).astype(np.int16))
    offsets = np.cumsum([0] + [len(c) for c in chunks])
    codes = np.concatenate(chunks) if chunks else np.zeros((0, len(tokenizer.spec.parts)), np.int16)
    np.save(os.path.join(partial, f"{split}.codes.npy"), codes)
    np.save(os.path.join(partial, f"{split}.offsets.npy"), offsets)
    with open(os.path.join(partial, f"{split}.ids.json"), "w", encoding="utf-8") as f:
      json.dump(ids, f)
  if os.path.exists(out):
    shutil.rmtree(out)
  os.replace(partial, out)
  return out


def load_code_cache(directory: str, split: str) -> dict[str, np.ndarray]:
  """id -> codes [T', parts] of one split ({} for a split the corpus does not have)."""
  if not os.path.exists(os.path.join(directory, f"{split}.ids.json")):
    return {}
  codes = np.load(os.path.join(directory, f"{split}.codes.npy"))
  offsets = np.load(os.path.join(directory, f"{split}.offsets.npy"))
  with open(os.path.join(directory, f"{split}.ids.json"), encoding="utf-8") as f:
    ids = json.load(f)
  return {i: codes[offsets[k]:offsets[k + 1]] for k, i in enumerate(ids)}
