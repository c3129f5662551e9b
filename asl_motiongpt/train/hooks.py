"""Hooks the training loop runs every N steps (train/loop.py: Hook).

`HeldOutEvaluation`: held-out metrics (`evaluate(state) -> metrics`) logged with the prefix "eval"
every `every` steps, after the last step, and at step 0 of a fresh stage (for comparison); with a
`BestCheckpoint`, the parameters at the best evaluation kept apart (the record of the best so far
travels in every checkpoint's meta, so a resumed run continues with it exactly); with `patience`,
the stage ends early after that many evaluations without a new best. "Best" is by `metric` (a key of
the metrics: the held-out loss by default, or a translation score such as BLEU-4, `maximize`d). With
`pictures`, each evaluation also logs images (an LLM stage's generated sign: train/held_out_pictures.py).
"""
from __future__ import annotations

from collections.abc import Callable

import jax
from tqdm import tqdm

from asl_motiongpt.checkpoints import BestCheckpoint
from asl_motiongpt.train.logging_utils import MetricsWriter
from asl_motiongpt.train.loop import Hook


class HeldOutEvaluation(Hook):
  def __init__(self, stage: str, evaluate: Callable[[dict], dict], every: int, writer: MetricsWriter, *,
               keep_best: BestCheckpoint | None = None, best: dict | None = None, patience: int = 0,
               metric: str = "loss", maximize: bool = False, pictures: Callable[[dict], dict] | None = None):
    self.stage, self.evaluate, self.every, self.writer = stage, evaluate, int(every), writer
    self.pictures = pictures  # state -> {tag: PIL image}, logged beside the metrics (TensorBoard images)
    self.keep_best, self.best, self.patience = keep_best, best, int(patience)
    self.metric, self.maximize = metric, maximize
    self.evals: list[dict] = []

  def start(self, state, step: int) -> None:
    if step == 0:  # where the stage begins, for comparison
      self._held_out(state, 0)

  def __call__(self, state, step: int) -> bool:
    held = self._held_out(state, step)
    if jax.process_index() == 0:
      tqdm.write(f"[{self.stage}] step {step}: held-out " + ", ".join(f"{k} {v:.4g}" for k, v in held.items())
                 + (f" (step 0: loss {self.evals[0]['loss']:.4g})" if self.evals[0]["step"] == 0 else ""))
    if self._patience_ran_out(step):
      tqdm.write(f"[{self.stage}] early stop after step {step}: no better held-out {self.metric} in {self.patience} "
                 f"evaluations (best {self.best[self.metric]:.4g} at step {self.best['step']})")
      return True
    return False

  def checkpoint_meta(self) -> dict:
    return {"best": self.best}

  def close(self) -> None:
    if self.keep_best is not None:
      self.keep_best.close()

  def _held_out(self, state, step: int) -> dict:
    metrics = self.evaluate(state)
    self.writer.write(step, metrics, prefix="eval")
    for tag, image in (self.pictures(state) if self.pictures else {}).items():
      self.writer.write_image(step, tag, image)
    self.evals.append({"step": step, **metrics})
    if self.keep_best is not None and self._is_better(metrics[self.metric]):
      self.best = {"step": step, self.metric: metrics[self.metric]}
      self.keep_best.save(step, state["params"], self.best)
    return metrics

  def _is_better(self, value: float) -> bool:
    if self.best is None or self.metric not in self.best:  # none yet, or a record by another metric (the config changed)
      return True
    return value > self.best[self.metric] if self.maximize else value < self.best[self.metric]

  def _patience_ran_out(self, step: int) -> bool:
    return bool(self.patience and self.best is not None and step - self.best["step"] >= self.patience * self.every)
