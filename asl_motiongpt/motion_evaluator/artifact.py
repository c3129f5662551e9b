"""A trained evaluator as one object: its encoders, parameters, word tokenizer and feature
statistics, read from `<workdir>/<stage>/` (written by train/evaluator_stage.py)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from asl_motiongpt import checkpoints, storage
from asl_motiongpt.data.text_tokenizer import load_word_tokenizer
from asl_motiongpt.motion_evaluator.data import motion_features, word_ids
from asl_motiongpt.motion_evaluator.networks import EvaluatorSpec, TextMotionEvaluator

SPEC_FILE = "evaluator.json"
TOKENIZER_DIR = "text_tokenizer"
BATCH = 32  # embeddings are computed in batches of this size (one compiled program per encoder)


class Evaluator:
  def __init__(self, spec: EvaluatorSpec, params, statistics: dict, word_tokenizer, corpus: str = ""):
    self.spec, self.params, self.statistics, self.word_tokenizer, self.corpus = spec, params, statistics, word_tokenizer, corpus
    self.model = TextMotionEvaluator(spec)

  @classmethod
  def load(cls, workdir: str, stage: str = "evaluator") -> "Evaluator":
    folder = storage.join(workdir, stage)
    if not storage.exists(storage.join(folder, SPEC_FILE)):
      raise FileNotFoundError(f"{folder}: no trained evaluator ({SPEC_FILE} missing); train one with "
                              "`asl-motiongpt train --config configs/evaluator.py --workdir ...`")
    described = storage.read_json(storage.join(folder, SPEC_FILE))
    state = checkpoints.restore_state(workdir, stage)
    return cls(EvaluatorSpec(**described["spec"]), state["params"], state["features"],
               load_word_tokenizer(storage.join(folder, TOKENIZER_DIR)), described.get("corpus", ""))

  @functools.partial(jax.jit, static_argnums=0)
  def _motion(self, params, features, time_mask):
    return self.model.apply({"params": params}, features, time_mask, method=TextMotionEvaluator.embed_motion)

  @functools.partial(jax.jit, static_argnums=0)
  def _text(self, params, ids, mask):
    return self.model.apply({"params": params}, ids, mask, method=TextMotionEvaluator.embed_text)

  def __hash__(self):
    return id(self)

  def embed_texts(self, texts: list[str]) -> np.ndarray:
    ids, mask = word_ids(self.word_tokenizer, texts, self.spec)
    return self._batched(self._text, ids, mask)

  def embed_motions(self, poses: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """poses: (pose [T, J, D], joint mask [T, J]) in normalised unified-skeleton units."""
    pairs = [motion_features(p, m, self.statistics, self.spec) for p, m in poses]
    return self._batched(self._motion, np.stack([f for f, _ in pairs]), np.stack([t for _, t in pairs]))

  def _batched(self, fn, first, second) -> np.ndarray:
    out = []
    for start in range(0, len(first), BATCH):
      first_batch, second_batch = first[start:start + BATCH], second[start:start + BATCH]
      pad = BATCH - len(first_batch)  # a fixed batch: one program for every call
      first_batch, second_batch = np.pad(first_batch, [(0, pad)] + [(0, 0)] * (first_batch.ndim - 1)), np.pad(
          second_batch, [(0, pad)] + [(0, 0)] * (second_batch.ndim - 1))
      out.append(np.asarray(fn(self.params, jnp.asarray(first_batch), jnp.asarray(second_batch)))[:BATCH - pad])
    return np.concatenate(out) if out else np.zeros((0, self.spec.embed), np.float32)
