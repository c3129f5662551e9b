"""The tokenizer stage: train the gesture VQ-VAE on pose windows, then cache codes for every example.

Reads as phases: spec -> data -> params/optimizer -> restore -> step -> loop (log, eval,
checkpoint) -> code cache. `run(config, workdir)` is what `asl-motiongpt train` and the stage
chain call; it resumes from <workdir>/<stage>/ when a checkpoint is there.
"""
from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax

from asl_motiongpt.data.prepare import dataset_dir
from asl_motiongpt.data.windows import full_sequences, window_dataset
from asl_motiongpt.tokenizer import GestureTokenizer, TokenizerSpec, VqConfig
from asl_motiongpt.parallel import DEFAULT_RULES, describe, make_mesh
from asl_motiongpt.tokenizer.train_step import make_sharded_train_step, state_shardings
from asl_motiongpt.train import loop
from asl_motiongpt.train.checkpoints import StageCheckpoints
from asl_motiongpt.train.logging_utils import MetricsWriter


def spec_from_config(config) -> TokenizerSpec:
  m = config.model
  vq = VqConfig(width=m.width, depth=m.depth, dilation_growth=m.dilation_growth, down_t=m.down_t,
                code_dim=m.code_dim, codebook_size=m.codebook_size, activation=m.activation, ema_decay=m.ema_decay,
                reset_threshold=m.reset_threshold, dead_code_reset=m.dead_code_reset, commitment=m.commitment,
                velocity_weight=m.velocity_weight, dtype=m.dtype)
  return TokenizerSpec(vq=vq, joints=config.data.joints, dims=config.data.dims, partwise=m.partwise)


def make_optimizer(config) -> optax.GradientTransformation:
  o = config.optim
  warmup = min(o.warmup_steps, max(config.train.steps // 10, 1))
  schedule = optax.warmup_cosine_decay_schedule(0.0, o.lr, warmup, max(config.train.steps, warmup + 1),
                                                end_value=o.lr * o.final_lr_fraction)
  return optax.chain(optax.clip_by_global_norm(o.grad_clip), optax.adamw(schedule, b1=o.b1, b2=o.b2,
                                                                          weight_decay=o.weight_decay))


def evaluate(tokenizer, params, vq, config, split: str) -> dict:
  """Reconstruction of whole sequences of `split` through encode -> decode: mean per-joint error
  (normalised units, present joints only) and codebook use."""
  errors, counts, used = 0.0, 0, set()
  for _, pose, mask in full_sequences(config.data.prepared, config.data.corpus, split, config.data.dims):
    codes = tokenizer.encode(params, vq, pose, mask)
    recon = tokenizer.decode(params, vq, codes, pose.shape[0])
    err = np.linalg.norm(recon - pose, axis=-1)
    errors += float(err[mask].sum())
    counts += int(mask.sum())
    used.update(np.unique(codes).tolist())
  return {"mpjpe": errors / max(counts, 1), "distinct_codes": float(len(used))}


def code_cache_dir(workdir: str, stage: str, corpus: str) -> str:
  """Codes live with the tokenizer that made them (not beside the prepared data, where runs with
  different tokenizers sharing one prepared folder would overwrite each other's codes)."""
  return os.path.join(workdir, stage, "codes", corpus)


def write_code_cache(tokenizer, params, vq, prepared: str, corpus: str, dims: int, out: str) -> str:
  """Codes of every prepared example of `corpus`, per split (no pickles):
  <out>/<split>.codes.npy [total, parts] int16, .offsets.npy [N+1], .ids.json.
  Written into a temporary folder and renamed, so a crash never leaves half a cache."""
  with open(os.path.join(dataset_dir(prepared, corpus), "dataset_info.json"), encoding="utf-8") as f:
    splits = [s["name"] for s in json.load(f)["splits"]]
  partial = f"{out}.partial-{os.getpid()}"
  os.makedirs(partial, exist_ok=True)
  for split in splits:
    ids, chunks = [], []
    for entry_id, pose, mask in full_sequences(prepared, corpus, split, dims):
      ids.append(entry_id)
      chunks.append(tokenizer.encode(params, vq, pose, mask).astype(np.int16))
    offsets = np.cumsum([0] + [len(c) for c in chunks])
    codes = np.concatenate(chunks) if chunks else np.zeros((0, len(tokenizer.spec.parts)), np.int16)
    np.save(os.path.join(partial, f"{split}.codes.npy"), codes)
    np.save(os.path.join(partial, f"{split}.offsets.npy"), offsets)
    with open(os.path.join(partial, f"{split}.ids.json"), "w", encoding="utf-8") as f:
      json.dump(ids, f)
  if os.path.exists(out):
    shutil.rmtree(out)
  os.replace(partial, out)
  return out


def load_code_cache(directory: str, split: str) -> dict[str, np.ndarray]:
  """id -> codes [T', parts] of one split ({} for a split the corpus does not have)."""
  if not os.path.exists(os.path.join(directory, f"{split}.ids.json")):
    return {}
  codes = np.load(os.path.join(directory, f"{split}.codes.npy"))
  offsets = np.load(os.path.join(directory, f"{split}.offsets.npy"))
  with open(os.path.join(directory, f"{split}.ids.json"), encoding="utf-8") as f:
    ids = json.load(f)
  return {i: codes[offsets[k]:offsets[k + 1]] for k, i in enumerate(ids)}


def run(config, workdir: str) -> dict:
  stage = config.stage
  # -- spec, data ---------------------------------------------------------------------------------
  spec = spec_from_config(config)
  tokenizer = GestureTokenizer(spec)
  mesh = make_mesh(dict(config.mesh))
  if config.data.batch_size % jax.process_count():
    raise ValueError(f"batch size {config.data.batch_size} does not split over {jax.process_count()} processes")
  # Each process reads its own records and feeds its rows of the global batch.
  data = window_dataset(config.data.prepared, config.data.corpus, config.data.train_split,
                        frames=config.data.window, dims=config.data.dims,
                        batch_size=config.data.batch_size // jax.process_count(), seed=config.seed,
                        worker_count=config.data.worker_count)
  data_iter = iter(data)
  # -- params, optimizer, state ---------------------------------------------------------------------
  tx = make_optimizer(config)
  params, vq = tokenizer.init(jax.random.PRNGKey(config.seed), config.data.window)
  ts = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params), "vq": vq,
        "rng": jax.random.PRNGKey(config.seed + 1)}
  # -- restore, loop ---------------------------------------------------------------------------------
  checkpoints = StageCheckpoints(workdir, stage, keep=config.train.keep_checkpoints)
  shardings = state_shardings(tokenizer, tx, mesh, config.data.window, DEFAULT_RULES)
  ts = loop.restore_or_keep(checkpoints, ts, shardings, data_iter, stage)
  step_fn = make_sharded_train_step(tokenizer, tx, mesh, shardings, DEFAULT_RULES)
  if jax.process_index() == 0:
    print(f"[{stage}] mesh {describe(mesh)}, global batch {config.data.batch_size} x {config.data.window} frames")
  writer = MetricsWriter(os.path.join(workdir, stage, "logs"))
  meta = {"stage": stage, "config": config.to_dict()}
  out = loop.run(stage=stage, checkpoints=checkpoints, writer=writer, ts=ts, step_fn=step_fn, data_iter=data_iter,
                 steps=config.train.steps, log_every=config.train.log_every,
                 checkpoint_every=config.train.checkpoint_every, stop_after_steps=config.train.stop_after_steps,
                 meta=meta, units_per_step=config.data.batch_size * config.data.window, unit="frames",
                 postfix=lambda m: {"mpjpe": f"{m['mpjpe']:.3f}", "used": f"{m['codes_used']:.2f}"})
  writer.close()
  ts, history, last = out.state, out.history, out.last
  if out.stopped is not None:
    print(f"[{stage}] stopped ({out.stopped}) after step {int(ts['step'])}; saved, resume with the same command")
    return {"stopped": True, "step": int(ts["step"])}
  # -- evaluation and code cache --------------------------------------------------------------------
  params, vq = ts["params"], ts["vq"]
  result = {"step": int(ts["step"]), "train": {k: float(v) for k, v in last.items()}, "history": history}
  if config.data.eval_split:
    result["eval"] = evaluate(tokenizer, params, vq, config, config.data.eval_split)
    MetricsWriter(os.path.join(workdir, stage, "logs")).write(int(ts["step"]), result["eval"], prefix="eval")
  if config.train.write_code_cache and jax.process_index() == 0:
    result["code_cache"] = write_code_cache(tokenizer, params, vq, config.data.prepared, config.data.corpus,
                                            config.data.dims, code_cache_dir(workdir, stage, config.data.corpus))
  with open(os.path.join(workdir, stage, "summary.json"), "w", encoding="utf-8") as f:
    json.dump({k: v for k, v in result.items() if k != "history"}, f, indent=1)
  return result


def load_trained(workdir: str, stage: str, config):
  """(tokenizer, params, vq_state) from a finished tokenizer stage."""
  spec = spec_from_config(config)
  tokenizer = GestureTokenizer(spec)
  tx = make_optimizer(config)
  params, vq = tokenizer.init(jax.random.PRNGKey(0), config.data.window)
  abstract = {"step": np.zeros((), np.int32), "params": params, "opt_state": tx.init(params), "vq": vq,
              "rng": jax.random.PRNGKey(0)}
  checkpoints = StageCheckpoints(workdir, stage)
  restored = checkpoints.restore(jax.tree.map(np.zeros_like, abstract), None)
  checkpoints.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint of stage {stage!r} in {workdir}")
  _, ts, _ = restored
  return tokenizer, ts["params"], ts["vq"]


