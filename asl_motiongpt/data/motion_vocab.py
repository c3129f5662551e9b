"""The ids of the motion tokens: <motion_id_0..K-1>, <motion_begin>, <motion_end>, <motion_mask>,
right after the text tokenizer's last id. Task formatting (data/tasks.py) writes them; the model
(model/vocab.py) registers them with the tokenizer and gives them embedding rows."""
from __future__ import annotations

import dataclasses

import numpy as np


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
