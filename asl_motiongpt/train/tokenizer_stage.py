"""The tokenizer stage: train the gesture VQ-VAE on pose windows, then cache codes for every example.

Reads as phases: resolved stage -> spec -> data -> optimizer -> state (sharded) -> restore -> step
-> loop (log, checkpoint) -> held-out reconstruction (per body part, pictures) -> code cache
(and codebook use over the training split from it). `run(config, stage, workdir)`
is what the chain calls; it resumes from <workdir>/<stage>/ when a checkpoint is there.
"""
from __future__ import annotations

import json

import jax
import numpy as np

from asl_motiongpt import storage
from asl_motiongpt.chain_config import resolve_stage
from asl_motiongpt.checkpoints import StageCheckpoints
from asl_motiongpt.data.code_cache import code_cache_dir, load_code_cache, write_code_cache
from asl_motiongpt.data.prepare import canonical, prepared_statistics
from asl_motiongpt.data.windows import full_sequences, window_dataset
from asl_motiongpt.tokenizer.reconstruction import codebook_use, format_report, reconstruction_report
from asl_motiongpt.model.artifacts import tokenizer_spec
from asl_motiongpt.parallel import describe, mesh_from_config, rules_from_config
from asl_motiongpt.parallel.sharding import barrier, to_host
from asl_motiongpt.pose import render
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.tokenizer import GestureTokenizer, features
from asl_motiongpt.tokenizer import train_step as tokenizer_step
from asl_motiongpt.train import loop, step as step_compiler
from asl_motiongpt.train.logging_utils import MetricsWriter
from asl_motiongpt.train.optimizer import make_optimizer


def evaluate(tokenizer, params, vq, prepared: str, corpus: str, split: str, dims: int, sheets: str | None = None,
             sheet_count: int = 3) -> dict:
  """Reconstruction of whole sequences of `split` through encode -> decode, per body part and
  against the mean pose (eval/reconstruction.py), with codebook use; the first `sheet_count`
  sequences drawn original (top) above decoded (bottom) into `sheets`/<id>.png when given."""
  drawn = []

  def draw(entry_id, pose, mask, recon):
    if sheets is None or len(drawn) >= sheet_count:
      return
    original = PoseSequence(pose, mask.astype(np.float32), 25.0, "unified")
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in entry_id) + ".png"
    with storage.local_file_for(storage.join(sheets, name)) as local:
      render.comparison_sheet(original, original.replace(data=recon), local)
    drawn.append(storage.join(sheets, name))

  report = reconstruction_report(tokenizer, params, vq, full_sequences(prepared, corpus, split, dims), on_sequence=draw)
  if drawn:
    report["sheets"] = drawn
  return report


def _statistics(s, prepared: str, corpus: str) -> dict | None:
  """The feature statistics the tokenizer keeps (None: identity, positions as they are)."""
  if not s.model.standardize:
    return None
  split_stats = prepared_statistics(prepared, corpus, s.train_split)
  return features.statistics_from_prepared(split_stats, s.joints, s.dims, s.model.hand_relative)


def _check_sequences(s, prepared: str, corpus: str) -> None:
  """Before compiling anything: a split with no sequence to window is an error (windowing would
  look for one forever); fewer sequences than one batch is said, as windows then repeat."""
  counts = prepared_statistics(prepared, corpus, s.train_split)
  with_pose = int(counts.get("with_pose", counts.get("examples", 0)))
  if with_pose == 0:
    raise ValueError(f"stage {s.name!r}: split {s.train_split!r} of {corpus!r} in {prepared} has no sequence with a "
                     f"pose ({counts.get('text_only', 0)} text-only entries): the gesture tokenizer has nothing to learn "
                     "from; prepare a corpus with poses (data.corpus)")
  if with_pose < s.batch_size and jax.process_index() == 0:
    print(f"[{s.name}] {corpus} {s.train_split}: {with_pose} sequences with poses, FEWER THAN ONE BATCH "
          f"({s.batch_size}): windows of the same sequences fill every batch")


def run(config, stage, workdir: str) -> dict:
  s = resolve_stage(config, stage)
  prepared, corpus = config.data.prepared, config.data.corpus
  # -- spec, mesh, data ---------------------------------------------------------------------------
  tokenizer = GestureTokenizer(tokenizer_spec(s))
  mesh, rules = mesh_from_config(s.mesh), rules_from_config(config.rules)
  if s.batch_size % jax.process_count():
    raise ValueError(f"stage {s.name!r}: batch size {s.batch_size} does not split over {jax.process_count()} processes")
  _check_sequences(s, prepared, corpus)
  # Each process reads its own records and feeds its rows of the global batch.
  data = window_dataset(prepared, corpus, s.train_split, frames=s.window, dims=s.dims,
                        batch_size=s.batch_size // jax.process_count(), seed=s.seed,
                        worker_count=config.data.worker_count)
  data_iter = iter(data)
  # -- optimizer, state, restore, step --------------------------------------------------------------
  tx = make_optimizer(s)
  init_boxed = tokenizer_step.boxed_state(tokenizer, tx, s.window, s.seed, _statistics(s, prepared, corpus))
  abstract, shardings = step_compiler.abstract_state(init_boxed, mesh, rules)
  checkpoints = StageCheckpoints(workdir, s.name, keep=s.train.keep_checkpoints)
  ts, _ = loop.restore_or_init(checkpoints, abstract, lambda: step_compiler.init_state(init_boxed, shardings),
                               data_iter, s.name)
  example = {"pose": np.zeros((1, s.window, s.joints, s.dims), np.float32),
             "mask": np.zeros((1, s.window, s.joints), bool), "time_mask": np.zeros((1, s.window), bool)}
  step_fn = step_compiler.compile_step(tokenizer_step.make_step(tokenizer, tx), mesh, shardings, example, rules, tx.arguments())
  if jax.process_index() == 0:
    print(f"[{s.name}] mesh {describe(mesh)}, global batch {s.batch_size} x {s.window} frames")
  writer = MetricsWriter(storage.join(workdir, s.name, "logs"))
  meta = {"stage": s.name, "config": json.loads(config.to_json())}
  out = loop.run(stage=s.name, checkpoints=checkpoints, writer=writer, ts=ts, step_fn=step_fn, data_iter=data_iter,
                 steps=s.steps, log_every=s.train.log_every, checkpoint_every=s.train.checkpoint_every,
                 stop_after_steps=s.train.stop_after_steps, meta=meta, units_per_step=s.batch_size * s.window,
                 unit="frames", postfix=lambda m: {"mpjpe": f"{m['mpjpe']:.3f}", "used": f"{m['codes_used']:.2f}"})
  ts, history, last = out.state, out.history, out.last
  if out.stopped is not None:
    writer.close()
    return {"stopped": True, "step": int(ts["step"])}
  # -- held-out reconstruction and code cache ----------------------------------------------------------
  params, vq = to_host(ts["params"]), to_host(ts["vq"])  # whole on every process (FSDP may split them)
  result = {"stage": s.name, "step": int(ts["step"]), "train": {k: float(v) for k, v in last.items()},
            "history": history, "done": True}
  if config.data.eval_split and jax.process_index() == 0:
    sheets = storage.join(workdir, s.name, "reconstructions", config.data.eval_split)
    result["eval"] = evaluate(tokenizer, params, vq, prepared, corpus, config.data.eval_split, s.dims, sheets)
    writer.write(int(ts["step"]), {k: v for k, v in result["eval"].items() if k != "sheets"}, prefix="eval")
    print(format_report(result["eval"], f"[{s.name}] {config.data.eval_split} reconstruction, whole sequences "
                                        "(shoulder widths; ratio = error / the mean pose's error)"))
    print(f"[{s.name}] original (top) vs decoded (bottom): {', '.join(result['eval'].get('sheets', []))}")
  if s.write_code_cache:
    cache = code_cache_dir(workdir, s.name, corpus)
    if jax.process_index() == 0:
      write_code_cache(tokenizer, params, vq, prepared, corpus, s.dims, cache)
      # Codebook use over the whole training split, from the codes just written (no second encoding).
      train_codes = list(load_code_cache(cache, canonical(corpus, s.train_split)).values())
      if train_codes:
        result["codebook"] = codebook_use(train_codes, s.model.codebook_size)
        writer.write(int(ts["step"]), result["codebook"], prefix="codebook")
        print(f"[{s.name}] codebook over the {s.train_split} split: perplexity {result['codebook']['perplexity']:.1f}, "
              f"{100 * result['codebook']['codes_used']:.1f}% of {s.model.codebook_size} codes used")
    barrier("code cache written")  # the next stage's processes read it
    result["code_cache"] = cache
  writer.close()
  if jax.process_index() == 0:
    storage.write_json(storage.join(workdir, s.name, "summary.json"), {k: v for k, v in result.items() if k != "history"})
  return result
