"""The evaluator stage: train the text-motion evaluator (asl_motiongpt/evaluator) on a prepared
corpus' real (sentence, pose) pairs, contrastively; checkpointed and resumed like every stage.

Reads as phases: resolved stage -> word tokenizer (trained once on the training sentences) ->
feature statistics -> spec -> data -> state (sharded) -> restore -> step -> loop -> the evaluator
scored on its own held-out pairs (R-precision and matching distance of the real motions: the
ceiling a generator can reach with it) -> evaluator.json. `configs/evaluator.py` is its chain.
"""
from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np

from asl_motiongpt import storage
from asl_motiongpt.chain_config import resolve_stage
from asl_motiongpt.checkpoints import StageCheckpoints
from asl_motiongpt.data.prepare import load_prepared, prepared_statistics
from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
from asl_motiongpt.evaluator import metrics as gm
from asl_motiongpt.data.text_tokenizer import load_word_tokenizer
from asl_motiongpt.evaluator.artifact import SPEC_FILE, TOKENIZER_DIR, Evaluator
from asl_motiongpt.evaluator.data import pair_dataset, split_pairs
from asl_motiongpt.evaluator.model import EvaluatorSpec, TextMotionEvaluator, make_step
from asl_motiongpt.parallel import describe, mesh_from_config, rules_from_config
from asl_motiongpt.parallel.sharding import barrier, to_host
from asl_motiongpt.tokenizer.features import statistics_from_prepared
from asl_motiongpt.train import loop, step as step_compiler
from asl_motiongpt.train.logging_utils import MetricsWriter
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
  r = gm.r_precision(text, motion)
  return {"r_precision_top1": r[0], "r_precision_top2": r[1], "r_precision_top3": r[2],
          "matching_distance": gm.matching_distance(text, motion), "diversity": gm.diversity(motion),
          "pairs": len(pairs)}


def run(config, stage, workdir: str) -> dict:
  s = resolve_stage(config, stage)
  prepared, corpus = config.data.prepared, config.data.corpus
  folder = storage.join(workdir, s.name)
  tokenizer = _word_tokenizer(prepared, corpus, s.train_split, folder)
  statistics = statistics_from_prepared(prepared_statistics(prepared, corpus, s.train_split), s.joints, s.dims,
                                        relative=False)
  m = s.model
  spec = EvaluatorSpec(vocab_size=len(tokenizer), joints=s.joints, dims=s.dims, width=m.width, embed=m.embed,
                       max_words=m.max_words, max_frames=m.max_frames, temperature=m.temperature)
  model = TextMotionEvaluator(spec)
  mesh, rules = mesh_from_config(s.mesh), rules_from_config(config.rules)
  if s.batch_size % jax.process_count():
    raise ValueError(f"stage {s.name!r}: batch size {s.batch_size} does not split over {jax.process_count()} processes")
  data_iter = iter(pair_dataset(prepared, corpus, s.train_split, tokenizer, statistics, spec,
                                batch_size=s.batch_size // jax.process_count(), seed=s.seed))
  example = {"features": np.zeros((1, spec.max_frames, spec.joints * spec.dims), np.float32),
             "time_mask": np.zeros((1, spec.max_frames), bool), "words": np.zeros((1, spec.max_words), np.int32),
             "word_mask": np.zeros((1, spec.max_words), bool)}
  tx = make_optimizer(s)

  def init_boxed():
    params = model.init(jax.random.PRNGKey(s.seed), example)["params"]
    return {"step": jax.numpy.zeros((), jax.numpy.int32), "params": params, "opt_state": tx.init(params),
            "features": {k: jax.numpy.asarray(v) for k, v in statistics.items()}}

  abstract, shardings = step_compiler.abstract_state(init_boxed, mesh, rules)
  checkpoints = StageCheckpoints(workdir, s.name, keep=s.train.keep_checkpoints)
  ts, _ = loop.restore_or_init(checkpoints, abstract, lambda: step_compiler.init_state(init_boxed, shardings),
                               data_iter, s.name)
  step_fn = step_compiler.compile_step(make_step(model, tx), mesh, shardings, example, rules, tx.arguments())
  if jax.process_index() == 0:
    print(f"[{s.name}] text-motion evaluator on {corpus} {s.train_split}: mesh {describe(mesh)}, batch {s.batch_size}, "
          f"{len(tokenizer)} words, {spec.max_frames} frames")
  writer = MetricsWriter(storage.join(folder, "logs"))
  out = loop.run(stage=s.name, checkpoints=checkpoints, writer=writer, ts=ts, step_fn=step_fn, data_iter=data_iter,
                 steps=s.steps, log_every=s.train.log_every, checkpoint_every=s.train.checkpoint_every,
                 stop_after_steps=s.train.stop_after_steps, meta={"stage": s.name, "config": json.loads(config.to_json())},
                 units_per_step=s.batch_size, unit="pairs", postfix=lambda r: {"acc": f"{r['accuracy']:.2f}"})
  if out.stopped is not None:
    writer.close()
    return {"stopped": True, "step": int(out.state["step"])}
  history = out.history
  result = {"stage": s.name, "step": int(out.state["step"]), "done": True,
            "first_loss": history[0]["loss"] if history else None, "last_loss": history[-1]["loss"] if history else None}
  params = to_host(out.state["params"])  # every process takes part in the gather
  if jax.process_index() == 0:
    storage.write_json(storage.join(folder, SPEC_FILE), {"spec": dataclasses.asdict(spec), "corpus": corpus,
                                                         "train_split": s.train_split})
    evaluator = Evaluator(spec, params, statistics, tokenizer, corpus)
    if config.data.eval_split:
      result["eval"] = held_out(evaluator, prepared, corpus, config.data.eval_split)
      writer.write(result["step"], result["eval"], prefix="eval")
      e = result["eval"]
      if e:
        print(f"[{s.name}] {config.data.eval_split}, real pairs: R-precision top-1/2/3 {e['r_precision_top1']:.3f} / "
              f"{e['r_precision_top2']:.3f} / {e['r_precision_top3']:.3f} (chance with pools of 32: "
              f"{1 / 32:.3f} / {2 / 32:.3f} / {3 / 32:.3f}), matching distance {e['matching_distance']:.3f}")
    storage.write_json(storage.join(folder, "summary.json"), result)
  writer.close()
  return {**result, "history": history}
