"""Codes of every prepared example, as the chain's gesture tokenizer encodes them (no pickles).

  <workdir>/<tokenizer stage>/codes/<corpus>/<split>.codes.npy [total, parts] int32, .offsets.npy [N+1], .ids.json

Codes live with the tokenizer that made them (not beside the prepared data, where runs with
different tokenizers sharing one prepared folder would overwrite each other's codes). A cache is
finished when its `COMPLETE` marker exists, written after every split's files (a bucket cannot
rename a folder); a crash mid-write leaves no marker and the next run writes the cache again.
"""
from __future__ import annotations

import io
import numpy as np

from asl_motiongpt import storage
from asl_motiongpt.data.prepare import prepared_splits
from asl_motiongpt.data.windows import full_sequences

COMPLETE = "COMPLETE"


def code_cache_dir(workdir: str, stage: str, corpus: str) -> str:
  return storage.join(workdir, stage, "codes", corpus)


def code_cache_complete(directory: str) -> bool:
  return storage.exists(storage.join(directory, COMPLETE))


def _save_array(path: str, array: np.ndarray) -> None:
  buffer = io.BytesIO()
  np.save(buffer, array)
  storage.write_bytes(path, buffer.getvalue())


def _load_array(path: str) -> np.ndarray:
  return np.load(io.BytesIO(storage.path(path).read_bytes()))


def write_code_cache(tokenizer, params, vq, prepared: str, corpus: str, dims: int, out: str) -> str:
  storage.rmtree(out)  # what an interrupted write left
  for split in prepared_splits(prepared, corpus):
    ids = []

    def sequences():  # the ids collected as the sequences stream past
      for entry_id, pose, mask in full_sequences(prepared, corpus, split, dims):
        ids.append(entry_id)
        yield pose, mask

    # int32 whatever the codebook size (a cache is a few MB); ids are formed from codes only by
    # MotionVocab.codes_to_ids, which widens again before adding the first motion id
    chunks = [np.asarray(c, np.int32) for c in tokenizer.encode_many(params, vq, sequences())]
    offsets = np.cumsum([0] + [len(c) for c in chunks])
    codes = np.concatenate(chunks) if chunks else np.zeros((0, tokenizer.spec.codes_per_step), np.int32)
    _save_array(storage.join(out, f"{split}.codes.npy"), codes)
    _save_array(storage.join(out, f"{split}.offsets.npy"), offsets)
    storage.write_json(storage.join(out, f"{split}.ids.json"), ids, indent=None)
  storage.write_text(storage.join(out, COMPLETE), "")
  return out


def load_code_cache(directory: str, split: str) -> dict[str, np.ndarray]:
  """id -> codes [T', parts] of one split ({} for a split the corpus does not have)."""
  if not storage.exists(storage.join(directory, f"{split}.ids.json")):
    return {}
  codes = _load_array(storage.join(directory, f"{split}.codes.npy")).astype(np.int32)  # older caches: int16
  offsets = _load_array(storage.join(directory, f"{split}.offsets.npy"))
  ids = storage.read_json(storage.join(directory, f"{split}.ids.json"))
  return {i: codes[offsets[k]:offsets[k + 1]] for k, i in enumerate(ids)}
