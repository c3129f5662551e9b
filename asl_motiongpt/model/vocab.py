"""Motion tokens in the LLM vocabulary: <motion_id_0..K-1>, <motion_begin>, <motion_end>, <motion_mask>.

They are appended right after the text tokenizer's last id (`len(tokenizer)`), whatever the
embedding matrix size: checkpoints often pad their vocabulary (Qwen2.5: 151,936 rows for 151,665
tokens), and those spare rows are simply reused. The embedding (and untied output) rows of the
new tokens start from the mean of the real token rows, a neutral point the model can move from.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from asl_motiongpt.llm.config import LlmConfig


@dataclasses.dataclass(frozen=True)
class MotionVocab:
  text_vocab_size: int  # len(tokenizer)
  num_codes: int        # the gesture tokenizer's codebook size

  @property
  def first_code_id(self) -> int:
    return self.text_vocab_size

  @property
  def begin_id(self) -> int:
    return self.text_vocab_size + self.num_codes

  @property
  def end_id(self) -> int:
    return self.begin_id + 1

  @property
  def mask_id(self) -> int:
    return self.begin_id + 2

  @property
  def size(self) -> int:
    """Smallest vocabulary that holds text and motion tokens."""
    return self.begin_id + 3

  def token_strings(self) -> list[str]:
    return [f"<motion_id_{i}>" for i in range(self.num_codes)] + ["<motion_begin>", "<motion_end>", "<motion_mask>"]

  def codes_to_ids(self, codes) -> np.ndarray:
    """Token ids (int32) of motion codes. Codes may arrive in a compact integer type (a cache's
    int16): they are widened first, since a real vocabulary puts the first motion id above 32,767
    (LLaMA-2 32,000, LLaMA-3 128,256, Qwen 151,665) and int16 arithmetic would wrap silently."""
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu":
      raise TypeError(f"motion codes must be integers, got {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= self.num_codes):
      raise ValueError(f"motion codes must be in [0, {self.num_codes}), got [{codes.min()}, {codes.max()}]")
    return (codes.astype(np.int64) + self.first_code_id).astype(np.int32)

  def ids_to_codes(self, ids) -> np.ndarray:
    """Codes of the motion-code ids in `ids` (other ids dropped: begin/end/text)."""
    ids = np.asarray(ids).astype(np.int64)
    keep = (ids >= self.first_code_id) & (ids < self.first_code_id + self.num_codes)
    return (ids[keep] - self.first_code_id).astype(np.int32)

  def is_motion(self, ids) -> np.ndarray:
    ids = np.asarray(ids)
    return (ids >= self.first_code_id) & (ids < self.size)


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
  """Embedding/output matrices big enough for `vocab` (padded to a multiple, for sharding);
  motion rows (and new padding rows) initialised from the mean of the real text rows."""
  rows = max(config.vocab_size, vocab.size)
  rows = -(-rows // pad_to_multiple) * pad_to_multiple
  params = dict(params)

  def grow(matrix: np.ndarray, axis: int) -> np.ndarray:
    matrix = np.asarray(matrix)
    text = np.take(matrix, np.arange(vocab.text_vocab_size), axis=axis)
    mean = text.mean(axis=axis, keepdims=True)
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
