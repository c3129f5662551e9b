"""The evaluator stage: train the text-motion evaluator (asl_motiongpt/evaluator) on a prepared
corpus' real (sentence, pose) pairs, contrastively; checkpointed and resumed like every stage.

What is its own (a `StageKind`, run by train/stage_driver.py): a word tokenizer (trained once on
the training sentences), feature statistics, the spec, (sentence, pose) pairs as data, the
contrastive step; when it finishes, the evaluator scored on its own held-out pairs (R-precision and
matching distance of the real motions: the ceiling a generator can reach with it) and its files.
`configs/evaluator.py` is its chain.
"""
from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np

from asl_motiongpt import storage
from asl_motiongpt.chain_config import resolve_stage
from asl_motiongpt.data.prepare import load_prepared, prepared_statistics
from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
from asl_motiongpt.motion_evaluator import metrics as retrieval_metrics
from asl_motiongpt.data.text_tokenizer import load_word_tokenizer
from asl_motiongpt.motion_evaluator.artifact import SPEC_FILE, TOKENIZER_DIR, Evaluator
from asl_motiongpt.motion_evaluator.data import pair_dataset, split_pairs
from asl_motiongpt.motion_evaluator.networks import EvaluatorSpec, TextMotionEvaluator, make_step
from asl_motiongpt.parallel import describe, mesh_from_config, rules_from_config
from asl_motiongpt.parallel.sharding import barrier, to_host
from asl_motiongpt.gesture.features import statistics_from_prepared
from asl_motiongpt.train import stage_driver
from asl_motiongpt.train.optimizer import make_optimizer


def _word_tokenizer(prepared: str, corpus: str, split: str, folder: str):
  directory = storage.join(folder, TOKENIZER_DIR)
  if jax.process_index() == 0 and not storage.exists(storage.join(directory, "tokenizer.json")):
    source = load_prepared(prepared, corpus, split)
    train_word_tokenizer([source[i]["text"].decode("utf-8") for i in range(len(source))], directory)
  barrier("evaluator word tokenizer")
  return load_word_tokenizer(directory)


def held_out(evaluator: Evaluator, prepared: str, corpus: str, split: str) -> dict:
  """The evaluator on real pairs it did not train on: R-precision and matching distance."""
  pairs = split_pairs(prepared, corpus, split)
  if len(pairs) < 2:
    return {}
  text = evaluator.embed_texts([t for _, t, _, _ in pairs])
  motion = evaluator.embed_motions([(p, m) for _, _, p, m in pairs])
  r_precision = retrieval_metrics.r_precision(text, motion)
  return {
      "r_precision_top1": r_precision[0],
      "r_precision_top2": r_precision[1],
      "r_precision_top3": r_precision[2],
      "matching_distance": retrieval_metrics.matching_distance(text, motion),
      "diversity": retrieval_metrics.diversity(motion),
      "pairs": len(pairs)
  }


PLANNING_WORDS = 2000  # the word vocabulary a dry run assumes (the real one is trained on the data)


def example_batch(spec: EvaluatorSpec) -> dict:
  return {"features": np.zeros((1, spec.max_frames, spec.joints * spec.dims), np.float32),
          "time_mask": np.zeros((1, spec.max_frames), bool), "words": np.zeros((1, spec.max_words), np.int32),
          "word_mask": np.zeros((1, spec.max_words), bool)}


class EvaluatorStage(stage_driver.StageKind):
  """`workdir=None`: planning only (train --dry-run): a stand-in vocabulary, identity statistics."""

  def __init__(self, config, stage, workdir: str | None = None):
    self.config, self.stage, self.workdir = config, resolve_stage(config, stage), workdir
    stage = self.stage
    self.prepared, self.corpus = config.data.prepared, config.data.corpus
    if workdir is None:
      self.words, words = None, PLANNING_WORDS
      self.statistics = {"feature_mean": np.zeros((stage.joints, stage.dims), np.float32),
                         "feature_std": np.ones((stage.joints, stage.dims), np.float32)}
    else:
      self.folder = storage.join(workdir, stage.name)
      self.words = _word_tokenizer(self.prepared, self.corpus, stage.train_split, self.folder)
      words = len(self.words)
      self.statistics = statistics_from_prepared(prepared_statistics(self.prepared, self.corpus,
                                                                     stage.train_split),
                                                 stage.joints,
                                                 stage.dims,
                                                 relative=False)
    model = stage.model
    self.spec = EvaluatorSpec(vocab_size=words,
                              joints=stage.joints,
                              dims=stage.dims,
                              width=model.width,
                              embed=model.embed,
                              max_words=model.max_words,
                              max_frames=model.max_frames,
                              temperature=model.temperature)
    self.model = TextMotionEvaluator(self.spec)

  def program(self, devices=None) -> stage_driver.StageProgram:
    stage, model, statistics = self.stage, self.model, self.statistics
    tx = make_optimizer(stage)
    example = example_batch(self.spec)

    def init_boxed():
      params = model.init(jax.random.PRNGKey(stage.seed), example)["params"]
      return {"step": jax.numpy.zeros((), jax.numpy.int32), "params": params, "opt_state": tx.init(params),
              "features": {k: jax.numpy.asarray(v) for k, v in statistics.items()}}

    return stage_driver.StageProgram(mesh=mesh_from_config(stage.mesh, devices),
                                     rules=rules_from_config(self.config.rules),
                                     tx=tx,
                                     init_boxed=init_boxed,
                                     step=make_step(model, tx),
                                     example=example,
                                     units_per_step=stage.batch_size,
                                     unit="pairs")

  def data(self):
    stage = self.stage
    return pair_dataset(self.prepared, self.corpus, stage.train_split, self.words, self.statistics, self.spec,
                        batch_size=stage.batch_size // jax.process_count(), seed=stage.seed)

  def describe(self, compiled) -> str:
    stage = self.stage
    return (
        f"text-motion evaluator on {self.corpus} {stage.train_split}: mesh {describe(compiled.program.mesh)}, batch "
        f"{stage.batch_size}, {len(self.words)} words, {self.spec.max_frames} frames")

  def meta(self) -> dict:
    return {"stage": self.stage.name, "config": json.loads(self.config.to_json())}

  def postfix(self, metrics: dict) -> dict:
    return {"acc": f"{metrics['accuracy']:.2f}"}

  def finish(self, result, compiled, writer) -> dict:
    """The evaluator's files, and its scores on real held-out pairs."""
    stage, config, history = self.stage, self.config, result.history
    summary = {"first_loss": history[0]["loss"] if history else None,
               "last_loss": history[-1]["loss"] if history else None}
    params = to_host(result.state["params"])  # every process takes part in the gather
    if jax.process_index() == 0:
      storage.write_json(storage.join(self.folder, SPEC_FILE), {
          "spec": dataclasses.asdict(self.spec),
          "corpus": self.corpus,
          "train_split": stage.train_split
      })
      evaluator = Evaluator(self.spec, params, self.statistics, self.words, self.corpus)
      if config.data.eval_split:
        summary["eval"] = held_out(evaluator, self.prepared, self.corpus, config.data.eval_split)
        writer.write(int(result.state["step"]), summary["eval"], prefix="eval")
        scores = summary["eval"]
        if scores:
          print(
              f"[{stage.name}] {config.data.eval_split}, real pairs: R-precision top-1/2/3 {scores['r_precision_top1']:.3f} / "
              f"{scores['r_precision_top2']:.3f} / {scores['r_precision_top3']:.3f} (chance with pools of 32: "
              f"{1 / 32:.3f} / {2 / 32:.3f} / {3 / 32:.3f}), matching distance {scores['matching_distance']:.3f}"
          )
    return summary


def run(config, stage, workdir: str) -> dict:
  return stage_driver.run_stage(EvaluatorStage(config, stage, workdir), workdir)
