"""LLM task formatting: (text, gloss, HamNoSys, motion codes) examples -> token ids, target mask,
motion positions.

Tasks (prompts in our own words, several paraphrases each, one drawn per example):
  t2s   text -> sign:      prompt(text) -> <motion_begin> codes <motion_end>
  s2t   sign -> text:      prompt(<motion_begin> codes <motion_end>) -> text
  h2s   HamNoSys -> sign:  prompt(HamNoSys symbol names) -> <motion_begin> codes <motion_end>
  s2g   sign -> gloss:     prompt(<motion_begin> codes <motion_end>) -> glosses
  m2m   motion-only LM:    <motion_begin> codes <motion_end> (all target)
  t2t   text-only LM:      text (all target) — keeps the LLM's language ability
A task needs certain fields (`NEEDS`); an example takes part only in the tasks it has the fields for
(Ham2Pose has HamNoSys but no sentence, PHOENIX has glosses, How2Sign neither).
Sequence: [bos] prompt target [eos]; only target tokens (and eos) are scored. Everything is padded
(or, for codes, truncated and counted) to `max_len` tokens.

Pretrained tokenizers differ in their special tokens, and we take them as they are: no BOS is
written where the tokenizer has none (Qwen2/2.5/3), the end token is the tokenizer's `eos_token`
(`<|endoftext|>`, `<|im_end|>`, `<|end_of_text|>`, `<|eot_id|>`, `</s>`), and padding uses the pad
token or, where there is none (LLaMA), the end token (padding is never attended to or scored). With
`chat_template=True` (instruct models) a prompted task is wrapped in the model's own chat template
as one user turn followed by the assistant's opening: the template's text around the prompt.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from asl_motiongpt.data.motion_vocab import MotionVocab

PROMPTS = {
    "t2s": ("Sign this sentence: {text}", "How is this signed? {text}", "Produce the signs for: {text}"),
    "s2t": ("{motion} What does this signing say?", "Translate the signs into text: {motion}",
            "{motion} Write the meaning of these signs:"),
    "h2s": ("Perform this HamNoSys notation: {text}", "Sign what this HamNoSys describes: {text}",
            "HamNoSys {text} as a sign:"),
    "s2g": ("{motion} Write the glosses of this signing:", "Gloss these signs: {motion}",
            "{motion} Which glosses are signed here?"),
    "m2m": ("",),
    "t2t": ("",),
}
TASKS = tuple(PROMPTS)
NEEDS = {"t2s": ("text", "codes"), "s2t": ("text", "codes"), "h2s": ("hamnosys", "codes"),
         "s2g": ("gloss", "codes"), "m2m": ("codes",), "t2t": ("text",)}
_SOURCE = {"t2s": "text", "h2s": "hamnosys"}   # written input -> motion
_TARGET = {"s2t": "text", "s2g": "gloss"}      # motion -> written output


@dataclasses.dataclass(frozen=True)
class TaskExample:
  id: str
  text: str
  codes: np.ndarray      # [T'] motion codes (interleaved parts), possibly empty
  gloss: str = ""
  hamnosys: str = ""     # HamNoSys symbol names separated by spaces ("hamfist hamthumbacrossmod ...")

  def supports(self, task: str) -> bool:
    return all(len(getattr(self, field)) > 0 for field in NEEDS[task])


class TaskFormatter:
  def __init__(self, tokenizer, vocab: MotionVocab, max_len: int = 250, chat_template: bool = False):
    self.tokenizer, self.vocab, self.max_len = tokenizer, vocab, max_len
    self.bos = tokenizer.bos_token_id  # None for tokenizers without one (Qwen)
    self.eos = tokenizer.eos_token_id
    if self.eos is None:
      raise ValueError(f"the text tokenizer ({type(tokenizer).__name__}, {getattr(tokenizer, 'name_or_path', '')!r}) "
                       "has no eos_token: a sequence could never end; set eos_token in its tokenizer_config.json")
    self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
    self.start = [self.bos] if self.bos is not None else []
    self.chat_head, self.chat_tail = self._chat_frame() if chat_template else (self.start, [])
    self.framing = len(self.chat_head) + len(self.chat_tail) + 1  # tokens around a prompt and target

  def _chat_frame(self) -> tuple[list[int], list[int]]:
    """The token ids a chat template puts before and after one user message (the "after" ends with
    the assistant's opening, so the target follows it)."""
    if not getattr(self.tokenizer, "chat_template", None):
      raise ValueError(f"data.chat_template=true but the tokenizer {getattr(self.tokenizer, 'name_or_path', '')!r} has "
                       "no chat template (a base model?); set data.chat_template=false")
    marker = "\ue000PROMPT\ue000"  # a private-use character: never in a template
    text = self.tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False,
                                              add_generation_prompt=True)
    before, found, after = text.partition(marker)
    if not found:
      raise ValueError("the tokenizer's chat template does not show the user's message verbatim")
    return self._text_ids(before), self._text_ids(after)

  def wrap_prompt(self, prompt: list[int]) -> list[int]:
    """What comes before the target: [bos] prompt, or the chat template's turn around the prompt."""
    return self.chat_head + prompt + self.chat_tail if prompt else self.start + prompt

  def _text_ids(self, text: str) -> list[int]:
    return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

  def _motion_ids(self, codes, budget: int) -> list[int]:
    codes = np.asarray(codes)[:max(budget - 2, 0)]
    return [self.vocab.begin_id] + self.vocab.codes_to_ids(codes).tolist() + [self.vocab.end_id]

  def format(self, example: TaskExample, task: str, rng: np.random.Generator) -> dict:
    if task not in PROMPTS:
      raise ValueError(f"unknown task {task!r}; tasks: {TASKS}")
    if not example.supports(task):
      raise ValueError(f"example {example.id!r}: task {task!r} needs {NEEDS[task]}")
    template = PROMPTS[task][int(rng.integers(len(PROMPTS[task])))]
    if task in _SOURCE:
      prompt = self._text_ids(template.format(text=getattr(example, _SOURCE[task])))
      target = self._motion_ids(example.codes, self.max_len - self.framing - len(prompt))
    elif task in _TARGET:
      target = self._text_ids(getattr(example, _TARGET[task]))
      before, _, after = template.partition("{motion}")
      before, after = self._text_ids(before), self._text_ids(after)
      motion = self._motion_ids(example.codes, self.max_len - self.framing - len(before) - len(after) - len(target))
      prompt = before + motion + after
    elif task == "m2m":
      prompt, target = [], self._motion_ids(example.codes, self.max_len - len(self.start) - 1)
    else:  # t2t
      prompt, target = [], self._text_ids(example.text)
    wrapped = self.wrap_prompt(prompt)
    ids = wrapped + target + [self.eos]
    truncated = len(ids) > self.max_len
    ids = ids[:self.max_len]
    n_prompt = len(wrapped)
    out_ids = np.full(self.max_len, self.pad, np.int32)
    out_ids[:len(ids)] = ids
    target_mask = np.zeros(self.max_len, bool)
    target_mask[n_prompt:len(ids)] = True
    return {"input_ids": out_ids, "target_mask": target_mask,
            "motion_mask": self.vocab.is_motion(out_ids) & (np.arange(self.max_len) < len(ids)),
            "truncated": np.asarray(truncated), "length": np.asarray(len(ids), np.int32)}
