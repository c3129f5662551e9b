"""What a running stage shows: a JSONL log of every logged step, TensorBoard scalars, a progress bar."""
from __future__ import annotations

import io
import json
import time

import jax
import numpy as np

from asl_motiongpt import storage
from asl_motiongpt.train.tensorboard import EventWriter


class MetricsWriter:
  """Writes on process 0 only. On a bucket, the logs are uploaded whole at most every
  `flush_seconds` and at every `flush()` (the stages call it when they save a checkpoint, so a
  resumed run never lacks a logged step before its checkpoint)."""

  def __init__(self, logdir: str, flush_seconds: float = 30.0):
    self.enabled = jax.process_index() == 0
    self.jsonl = None
    self.tb = None
    self.flush_seconds = flush_seconds
    self.flushed_at = time.monotonic()
    if not self.enabled:
      return
    storage.makedirs(logdir)
    self.jsonl = storage.GrowingObject(storage.join(logdir, "metrics.jsonl"))
    self.tb = EventWriter(logdir)

  def write(self, step: int, metrics: dict, prefix: str = "train") -> None:
    if not self.enabled:
      return
    values = {key: float(np.asarray(value)) for key, value in metrics.items()}
    self.jsonl.write(json.dumps({"step": step, "split": prefix, **values}) + "\n")
    for key, value in values.items():
      self.tb.add_scalar(f"{prefix}/{key}", value, step)
    if not self.jsonl.remote or time.monotonic() - self.flushed_at > self.flush_seconds:
      self.flush()

  def write_image(self, step: int, tag: str, image) -> None:
    """A picture (a PIL image) in TensorBoard's Images tab under `tag`, at `step`."""
    if not self.enabled:
      return
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    self.tb.add_image(tag, buffer.getvalue(), image.height, image.width, step)
    if not self.jsonl.remote:
      self.tb.flush()

  def flush(self) -> None:
    if not self.enabled:
      return
    self.jsonl.flush()
    self.tb.flush()
    self.flushed_at = time.monotonic()

  def close(self) -> None:
    if self.jsonl:
      self.jsonl.close()
    if self.tb is not None:
      self.tb.close()


def read_metrics(logdir: str, split: str = "train") -> dict[int, dict]:
  """step -> metrics of one split from a stage's metrics.jsonl (a resumed run logs redone steps
  again: the last entry of a step wins)."""
  out = {}
  path = storage.join(logdir, "metrics.jsonl")
  if storage.exists(path):
    for line in storage.read_text(path).splitlines():
      entry = json.loads(line)
      if entry.get("split") == split:
        out[entry["step"]] = entry
  return dict(sorted(out.items()))


def plot_losses(workdir: str, stages: list[str], path: str) -> str | None:
  """One panel per stage: training loss and held-out loss against the step, as a PNG."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  logged = [(s, read_metrics(storage.join(workdir, s,
                                          "logs")), read_metrics(storage.join(workdir, s, "logs"), "eval"))
            for s in stages]
  logged = [(s, train, held) for s, train, held in logged if train and "loss" in next(iter(train.values()))]
  if not logged:
    return None
  fig, axes = plt.subplots(1, len(logged), figsize=(4 * len(logged), 3.2), squeeze=False)
  for ax, (stage, train, held) in zip(axes[0], logged):
    ax.plot(list(train), [m["loss"] for m in train.values()], label="train", color="#4a7ab8")
    held = {step: m for step, m in held.items() if "loss" in m}  # the tokenizer's eval is MPJPE, not a loss
    if held:
      ax.plot(list(held), [m["loss"] for m in held.values()], "o-", label="held-out", color="#d0703c")
    ax.set_title(stage)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
  fig.tight_layout()
  image = io.BytesIO()
  fig.savefig(image, format="png", dpi=100)
  plt.close(fig)
  storage.write_bytes(path, image.getvalue())
  return path
