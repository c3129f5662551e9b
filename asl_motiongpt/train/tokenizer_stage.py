"""The tokenizer stage: train the gesture VQ-VAE on pose windows, then cache codes for every example.

What is its own (a `StageKind`, run by train/stage_driver.py): the spec and its feature statistics,
random pose windows as data, the VQ-VAE step; when it finishes, the held-out reconstruction (per body
part, pictures) and the code cache (and codebook use over the training split from it).
`run(config, stage, workdir)` is what the chain calls; it resumes from <workdir>/<stage>/.
"""
from __future__ import annotations

import json

import jax
import numpy as np

from asl_motiongpt import storage
from asl_motiongpt.chain_config import resolve_stage
from asl_motiongpt.data.code_cache import code_cache_dir, load_code_cache, write_code_cache
from asl_motiongpt.data.prepare import canonical, prepared_statistics
from asl_motiongpt.data.windows import full_sequences, window_dataset
from asl_motiongpt.gesture.reconstruction import codebook_use, format_report, reconstruction_report
from asl_motiongpt.model.artifacts import tokenizer_spec
from asl_motiongpt.parallel import describe, mesh_from_config, rules_from_config
from asl_motiongpt.parallel.sharding import barrier, to_host
from asl_motiongpt.pose import render
from asl_motiongpt.pose.augment import Augmentation
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.gesture import GestureTokenizer, features
from asl_motiongpt.gesture import train_step as tokenizer_step
from asl_motiongpt.train import stage_driver
from asl_motiongpt.train.optimizer import make_optimizer


def evaluate(tokenizer, params, vq, prepared: str, corpus: str, split: str, dims: int, sheets: str | None = None,
             sheet_count: int = 3, pictures: list | None = None) -> dict:
  """Reconstruction of whole sequences of `split` through encode -> decode, per body part and
  against the mean pose (eval/reconstruction.py), with codebook use; the first `sheet_count`
  sequences drawn original (top) above decoded (bottom) into `sheets`/<id>.png when given (and the
  images appended to `pictures`, for TensorBoard)."""
  drawn = []

  def draw(entry_id, pose, mask, recon):
    if sheets is None or len(drawn) >= sheet_count:
      return
    original = PoseSequence(pose, mask.astype(np.float32), 25.0, "unified")
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in entry_id) + ".png"
    image = render.comparison_image(original, original.replace(data=recon), titles=(f"original: {entry_id}", "decoded"))
    with storage.local_file_for(storage.join(sheets, name)) as local:
      image.save(local)
    drawn.append(storage.join(sheets, name))
    if pictures is not None:
      pictures.append(image)

  report = reconstruction_report(tokenizer, params, vq, full_sequences(prepared, corpus, split, dims), on_sequence=draw)
  if drawn:
    report["sheets"] = drawn
  return report


def _statistics(stage, prepared: str, corpus: str) -> dict | None:
  """The feature statistics the tokenizer keeps (None: identity, positions as they are)."""
  if not stage.model.standardize:
    return None
  split_stats = prepared_statistics(prepared, corpus, stage.train_split)
  return features.statistics_from_prepared(split_stats, stage.joints, stage.dims, stage.model.hand_relative)


def _check_sequences(stage, prepared: str, corpus: str) -> None:
  """Before compiling anything: a split with no sequence to window is an error (windowing would
  look for one forever); fewer sequences than one batch is said, as windows then repeat."""
  counts = prepared_statistics(prepared, corpus, stage.train_split)
  with_pose = int(counts.get("with_pose", counts.get("examples", 0)))
  if with_pose == 0:
    raise ValueError(f"stage {stage.name!r}: split {stage.train_split!r} of {corpus!r} in {prepared} has no sequence with a "
                     f"pose ({counts.get('text_only', 0)} text-only entries): the gesture tokenizer has nothing to learn "
                     "from; prepare a corpus with poses (data.corpus)")
  if with_pose < stage.batch_size and jax.process_index() == 0:
    print(f"[{stage.name}] {corpus} {stage.train_split}: {with_pose} sequences with poses, FEWER THAN ONE BATCH "
          f"({stage.batch_size}): windows of the same sequences fill every batch")


def example_batch(stage) -> dict:
  """A process-local batch of zeros in the stage's layout (one window)."""
  return {"pose": np.zeros((1, stage.window, stage.joints, stage.dims), np.float32),
          "mask": np.zeros((1, stage.window, stage.joints), bool), "time_mask": np.zeros((1, stage.window), bool)}


class TokenizerStage(stage_driver.StageKind):
  """`workdir=None`: planning only (train --dry-run): no data, no statistics read."""

  def __init__(self, config, stage, workdir: str | None = None):
    self.config, self.stage, self.workdir = config, resolve_stage(config, stage), workdir
    self.prepared, self.corpus = config.data.prepared, config.data.corpus
    self.gesture = GestureTokenizer(tokenizer_spec(self.stage))

  def program(self, devices=None) -> stage_driver.StageProgram:
    stage = self.stage
    tx = make_optimizer(stage)
    statistics = _statistics(stage, self.prepared, self.corpus) if self.workdir is not None else None
    return stage_driver.StageProgram(
        mesh=mesh_from_config(stage.mesh, devices), rules=rules_from_config(self.config.rules), tx=tx,
        init_boxed=tokenizer_step.boxed_state(self.gesture, tx, stage.window, stage.seed, statistics),
        step=tokenizer_step.make_step(self.gesture, tx), example=example_batch(stage),
        units_per_step=stage.batch_size * stage.window, unit="frames")

  def data(self):
    stage = self.stage
    _check_sequences(stage, self.prepared, self.corpus)
    # Each process reads its own records and feeds its rows of the global batch.
    augmentation = Augmentation(**dict(stage.get("augment") or {}))  # pose/augment.py; all 0: off
    return window_dataset(self.prepared, self.corpus, stage.train_split, frames=stage.window, dims=stage.dims,
                          batch_size=stage.batch_size // jax.process_count(), seed=stage.seed,
                          worker_count=self.config.data.worker_count, augmentation=augmentation)

  def describe(self, compiled) -> str:
    return f"mesh {describe(compiled.program.mesh)}, global batch {self.stage.batch_size} x {self.stage.window} frames"

  def meta(self) -> dict:
    return {"stage": self.stage.name, "config": json.loads(self.config.to_json())}

  def postfix(self, metrics: dict) -> dict:
    return {"mpjpe": f"{metrics['mpjpe']:.3f}", "used": f"{metrics['codes_used']:.2f}"}

  def finish(self, result, compiled, writer) -> dict:
    """Held-out reconstruction (with pictures) and the code cache of every example."""
    stage, config, step = self.stage, self.config, int(result.state["step"])
    params, vq = to_host(result.state["params"]), to_host(result.state["vq"])  # whole on every process
    summary = {"train": {k: float(v) for k, v in result.last.items()}}
    if config.data.eval_split and jax.process_index() == 0:
      sheets = storage.join(self.workdir, stage.name, "reconstructions", config.data.eval_split)
      pictures = []
      summary["eval"] = evaluate(self.gesture, params, vq, self.prepared, self.corpus, config.data.eval_split, stage.dims,
                                 sheets, pictures=pictures)
      writer.write(step, {k: v for k, v in summary["eval"].items() if k != "sheets"}, prefix="eval")
      for index, image in enumerate(pictures):  # TensorBoard's Images tab, beside the held-out figures
        writer.write_image(step, f"eval/reconstruction_{index}", image)
      print(format_report(summary["eval"], f"[{stage.name}] {config.data.eval_split} reconstruction, whole sequences "
                                           "(shoulder widths; ratio = error / the mean pose's error)"))
      print(f"[{stage.name}] original (top) vs decoded (bottom): {', '.join(summary['eval'].get('sheets', []))}")
    if stage.write_code_cache:
      cache = code_cache_dir(self.workdir, stage.name, self.corpus)
      if jax.process_index() == 0:
        write_code_cache(self.gesture, params, vq, self.prepared, self.corpus, stage.dims, cache)
        # Codebook use over the whole training split, from the codes just written (no second encoding).
        train_codes = list(load_code_cache(cache, canonical(self.corpus, stage.train_split)).values())
        if train_codes:
          summary["codebook"] = codebook_use(train_codes, stage.model.codebook_size)
          writer.write(step, summary["codebook"], prefix="codebook")
          print(f"[{stage.name}] codebook over the {stage.train_split} split: perplexity "
                f"{summary['codebook']['perplexity']:.1f}, {100 * summary['codebook']['codes_used']:.1f}% of "
                f"{stage.model.codebook_size} codes used")
      barrier("code cache written")  # the next stage's processes read it
      summary["code_cache"] = cache
    return summary


def run(config, stage, workdir: str) -> dict:
  return stage_driver.run_stage(TokenizerStage(config, stage, workdir), workdir)
