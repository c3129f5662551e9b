"""The tokenizer stage: train the gesture VQ-VAE on pose windows, then cache codes for every example.

Reads as phases: resolved stage -> spec -> data -> optimizer -> state (sharded) -> restore -> step
-> loop (log, checkpoint) -> held-out reconstruction -> code cache. `run(config, stage, workdir)`
is what the chain calls; it resumes from <workdir>/<stage>/ when a checkpoint is there.
"""
from __future__ import annotations

import json

import jax
import numpy as np

from asl_motiongpt import storage
from asl_motiongpt.chain_config import resolve_stage
from asl_motiongpt.checkpoints import StageCheckpoints
from asl_motiongpt.data.code_cache import code_cache_dir, write_code_cache
from asl_motiongpt.data.windows import full_sequences, window_dataset
from asl_motiongpt.model.artifacts import tokenizer_spec
from asl_motiongpt.parallel import describe, mesh_from_config, rules_from_config
from asl_motiongpt.parallel.sharding import barrier, to_host
from asl_motiongpt.tokenizer import GestureTokenizer
from asl_motiongpt.tokenizer import train_step as tokenizer_step
from asl_motiongpt.train import loop, step as step_compiler
from asl_motiongpt.train.logging_utils import MetricsWriter
from asl_motiongpt.train.optimizer import make_optimizer


def evaluate(tokenizer, params, vq, prepared: str, corpus: str, split: str, dims: int) -> dict:
  """Reconstruction of whole sequences of `split` through encode -> decode: mean per-joint error
  (normalised units, present joints only) and codebook use."""
  errors, counts, used = 0.0, 0, set()
  for _, pose, mask in full_sequences(prepared, corpus, split, dims):
    codes = tokenizer.encode(params, vq, pose, mask)
    recon = tokenizer.decode(params, vq, codes, pose.shape[0])
    err = np.linalg.norm(recon - pose, axis=-1)
    errors += float(err[mask].sum())
    counts += int(mask.sum())
    used.update(np.unique(codes).tolist())
  return {"mpjpe": errors / max(counts, 1), "distinct_codes": float(len(used))}


def run(config, stage, workdir: str) -> dict:
  s = resolve_stage(config, stage)
  prepared, corpus = config.data.prepared, config.data.corpus
  # -- spec, mesh, data ---------------------------------------------------------------------------
  tokenizer = GestureTokenizer(tokenizer_spec(s))
  mesh, rules = mesh_from_config(s.mesh), rules_from_config(config.rules)
  if s.batch_size % jax.process_count():
    raise ValueError(f"stage {s.name!r}: batch size {s.batch_size} does not split over {jax.process_count()} processes")
  # Each process reads its own records and feeds its rows of the global batch.
  data = window_dataset(prepared, corpus, s.train_split, frames=s.window, dims=s.dims,
                        batch_size=s.batch_size // jax.process_count(), seed=s.seed,
                        worker_count=config.data.worker_count)
  data_iter = iter(data)
  # -- optimizer, state, restore, step --------------------------------------------------------------
  tx = make_optimizer(s)
  init_boxed = tokenizer_step.boxed_state(tokenizer, tx, s.window, s.seed)
  _, shardings = step_compiler.abstract_state(init_boxed, mesh, rules)
  ts = step_compiler.init_state(init_boxed, shardings)
  checkpoints = StageCheckpoints(workdir, s.name, keep=s.train.keep_checkpoints)
  ts, _ = loop.restore_or_keep(checkpoints, ts, shardings, data_iter, s.name)
  example = {"pose": np.zeros((1, s.window, s.joints, s.dims), np.float32),
             "mask": np.zeros((1, s.window, s.joints), bool), "time_mask": np.zeros((1, s.window), bool)}
  step_fn = step_compiler.compile_step(tokenizer_step.make_step(tokenizer, tx), mesh, shardings, example, rules)
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
  if config.data.eval_split:
    result["eval"] = evaluate(tokenizer, params, vq, prepared, corpus, config.data.eval_split, s.dims)
    writer.write(int(ts["step"]), result["eval"], prefix="eval")
  writer.close()
  if s.write_code_cache:
    cache = code_cache_dir(workdir, s.name, corpus)
    if jax.process_index() == 0:
      write_code_cache(tokenizer, params, vq, prepared, corpus, s.dims, cache)
    barrier("code cache written")  # the next stage's processes read it
    result["code_cache"] = cache
  if jax.process_index() == 0:
    storage.write_json(storage.join(workdir, s.name, "summary.json"), {k: v for k, v in result.items() if k != "history"})
  return result
