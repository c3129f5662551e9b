"""Motion tokens in the LLM: registered with the text tokenizer, and their embedding rows.

The ids themselves (`MotionVocab`, data/motion_vocab.py) are appended right after the text
tokenizer's last id (`len(tokenizer)`), whatever the embedding matrix size: checkpoints often pad
their vocabulary (Qwen2.5: 151,936 rows for 151,665 tokens), and those spare rows are simply reused.
The embedding (and untied output) rows of the new tokens start from the mean of the real token rows,
a neutral point the model can move from.
"""
from __future__ import annotations

import numpy as np

from asl_motiongpt.data.motion_vocab import MotionVocab
from asl_motiongpt.llm.config import LlmConfig
from asl_motiongpt.llm.hf import new_row_values

__all__ = ["MotionVocab", "add_to_tokenizer", "resize_for_motion"]


def add_to_tokenizer(tokenizer, vocab: MotionVocab) -> None:
  """Registers the motion tokens with a `transformers` tokenizer, checking the ids come out right."""
  if len(tokenizer) != vocab.text_vocab_size:
    raise ValueError(f"tokenizer has {len(tokenizer)} tokens, the motion vocabulary expects {vocab.text_vocab_size}")
  tokenizer.add_tokens(vocab.token_strings(), special_tokens=True)
  got = tokenizer.convert_tokens_to_ids(["<motion_id_0>", "<motion_mask>"])
  if got != [vocab.first_code_id, vocab.mask_id]:
    raise ValueError(f"motion tokens received ids {got}, expected {[vocab.first_code_id, vocab.mask_id]}")


def resize_for_motion(config: LlmConfig, params: dict, vocab: MotionVocab,
                      pad_to_multiple: int = 128) -> tuple[LlmConfig, dict]:
  """Embedding/output matrices big enough for `vocab` (padded to a multiple, for sharding), on whole
  host arrays; motion rows (and new padding rows) start at llm/hf.new_row_values. Chains start through
  model/artifacts.starting_params (block by block, the same values); this is the host form, for
  parameters already in memory and as the reference in the tests."""
  rows = max(config.vocab_size, vocab.size)
  rows = -(-rows // pad_to_multiple) * pad_to_multiple
  params = dict(params)

  def grow(matrix: np.ndarray, axis: int) -> np.ndarray:
    matrix = np.asarray(matrix)
    text = np.take(matrix, np.arange(vocab.text_vocab_size), axis=axis)
    mean = new_row_values(text, axis)
    shape = list(matrix.shape)
    shape[axis] = rows
    out = np.broadcast_to(mean, shape).copy()
    index = [slice(None)] * matrix.ndim
    index[axis] = slice(0, vocab.text_vocab_size)
    out[tuple(index)] = text
    return out.astype(matrix.dtype)

  params["embed_tokens"] = {"embedding": grow(params["embed_tokens"]["embedding"], 0)}
  if not config.tie_word_embeddings:
    params["lm_head"] = {"kernel": grow(params["lm_head"]["kernel"], 1)}
  return config.replace(vocab_size=rows), params
