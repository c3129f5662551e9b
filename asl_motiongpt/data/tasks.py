"""LLM task formatting: (text, motion codes) examples -> token ids, target mask, motion positions.

Tasks (prompts in our own words, several paraphrases each, one drawn per example):
  t2s   text -> sign:    prompt(text) -> <motion_begin> codes <motion_end>
  s2t   sign -> text:    prompt(<motion_begin> codes <motion_end>) -> text
  m2m   motion-only LM:  <motion_begin> codes <motion_end> (all target)
  t2t   text-only LM:    text (all target) — keeps the LLM's language ability
Sequence: [bos] prompt target [eos]; only target tokens (and eos) are scored. Everything is padded
(or, for codes, truncated and counted) to `max_len` tokens.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from asl_motiongpt.model.vocab import MotionVocab

PROMPTS = {
    "t2s": ("Sign this sentence: {text}", "How is this signed? {text}", "Produce the signs for: {text}"),
    "s2t": ("{motion} What does this signing say?", "Translate the signs into text: {motion}",
            "{motion} Write the meaning of these signs:"),
    "m2m": ("",),
    "t2t": ("",),
}
TASKS = tuple(PROMPTS)


@dataclasses.dataclass(frozen=True)
class TaskExample:
  id: str
  text: str
  codes: np.ndarray  # [T'] motion codes (interleaved parts), possibly empty


class TaskFormatter:
  def __init__(self, tokenizer, vocab: MotionVocab, max_len: int = 250):
    self.tokenizer, self.vocab, self.max_len = tokenizer, vocab, max_len
    self.bos = tokenizer.bos_token_id
    self.eos = tokenizer.eos_token_id
    self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos

  def _text_ids(self, text: str) -> list[int]:
    return self.tokenizer(text, add_special_tokens=False)["input_ids"]

  def _motion_ids(self, codes, budget: int) -> list[int]:
    codes = np.asarray(codes)[:max(budget - 2, 0)]
    return [self.vocab.begin_id] + self.vocab.codes_to_ids(codes).tolist() + [self.vocab.end_id]

  def format(self, example: TaskExample, task: str, rng: np.random.Generator) -> dict:
    template = PROMPTS[task][int(rng.integers(len(PROMPTS[task])))]
    text_ids = self._text_ids(example.text)
    budget = self.max_len - 2 - len(text_ids) - len(self._text_ids(template.replace("{text}", "").replace("{motion}", "")))
    if task == "t2s":
      prompt, target = self._text_ids(template.format(text=example.text)), self._motion_ids(example.codes, budget)
    elif task == "s2t":
      before, _, after = template.partition("{motion}")
      prompt = self._text_ids(before) + self._motion_ids(example.codes, budget) + self._text_ids(after)
      target = text_ids
    elif task == "m2m":
      prompt, target = [], self._motion_ids(example.codes, self.max_len - 2)
    elif task == "t2t":
      prompt, target = [], text_ids
    else:
      raise ValueError(f"unknown task {task!r}; tasks: {TASKS}")
    ids = [self.bos] + prompt + target + [self.eos]
    truncated = len(ids) > self.max_len
    ids = ids[:self.max_len]
    n_prompt = 1 + len(prompt)
    out_ids = np.full(self.max_len, self.pad, np.int32)
    out_ids[:len(ids)] = ids
    target_mask = np.zeros(self.max_len, bool)
    target_mask[n_prompt:len(ids)] = True
    return {"input_ids": out_ids, "target_mask": target_mask,
            "motion_mask": self.vocab.is_motion(out_ids) & (np.arange(self.max_len) < len(ids)),
            "truncated": np.asarray(truncated)}
