"""A Hugging Face model folder as we read it: config.json, a tokenizer, safetensors; checked before
any training step, with errors that name the folder and what to do."""
from __future__ import annotations

import os

from asl_motiongpt import storage

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")  # fast (Rust) or SentencePiece


def hf_folder(hf_dir: str, weights: bool = False) -> str:
  """A local copy of a Hugging Face model folder (the folder itself when local, a staged copy of a
  bucket path), checked for what we read from it: config.json, a tokenizer, and with `weights` the
  safetensors. The error names the folder and what to do."""
  local = storage.local_copy(hf_dir)
  if not os.path.isdir(local):
    raise FileNotFoundError(f"llm.hf_dir={hf_dir!r}: no such folder")
  found = sorted(os.listdir(local))
  advice = (f"download the whole model folder (e.g. `huggingface-cli download ORG/MODEL --local-dir {hf_dir}`); "
            f"found only: {', '.join(found) or 'nothing'}")
  if "config.json" not in found:
    raise FileNotFoundError(f"llm.hf_dir={hf_dir!r} has no config.json; {advice}")
  if not any(name in found for name in TOKENIZER_FILES):
    raise FileNotFoundError(f"llm.hf_dir={hf_dir!r} has no tokenizer ({' or '.join(TOKENIZER_FILES)}); {advice}")
  if weights and not any(name.endswith(".safetensors") for name in found):
    raise FileNotFoundError(f"llm.hf_dir={hf_dir!r} has no *.safetensors weights (we never read pickled "
                            f"*.bin files); {advice}")
  return local


def check_hf_folder(hf_dir: str) -> None:
  """What training needs from a Hugging Face folder, checked before any step: config.json, a tokenizer,
  safetensors, and a tokenizer that fits the checkpoint's embedding."""
  from transformers import AutoTokenizer
  from asl_motiongpt.llm.config import read_hf_config
  local = hf_folder(hf_dir, weights=True)
  check_fits(hf_dir, AutoTokenizer.from_pretrained(local), read_hf_config(local).vocab_size)


def check_fits(hf_dir: str, tokenizer, rows: int) -> None:
  if len(tokenizer) > rows:
    raise ValueError(f"llm.hf_dir={hf_dir!r}: its tokenizer has {len(tokenizer)} tokens but the checkpoint's "
                     f"embedding only {rows} rows (config.json vocab_size); the tokenizer belongs to another model — "
                     "use the tokenizer files that came with these weights")
