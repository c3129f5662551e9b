"""What a running stage shows: a JSONL log of every logged step, TensorBoard scalars, a progress bar."""
from __future__ import annotations

import json
import os

import jax
import numpy as np


class MetricsWriter:
  """Writes on process 0 only."""

  def __init__(self, logdir: str):
    self.enabled = jax.process_index() == 0
    self.jsonl = None
    self.tb = None
    if not self.enabled:
      return
    os.makedirs(logdir, exist_ok=True)
    self.jsonl = open(os.path.join(logdir, "metrics.jsonl"), "a", encoding="utf-8")
    try:
      from tensorboardX import SummaryWriter
      self.tb = SummaryWriter(logdir)
    except ImportError:
      self.tb = None

  def write(self, step: int, metrics: dict, prefix: str = "train") -> None:
    if not self.enabled:
      return
    values = {k: float(np.asarray(v)) for k, v in metrics.items()}
    self.jsonl.write(json.dumps({"step": step, "split": prefix, **values}) + "\n")
    self.jsonl.flush()
    if self.tb is not None:
      for k, v in values.items():
        self.tb.add_scalar(f"{prefix}/{k}", v, step)

  def close(self) -> None:
    if self.jsonl:
      self.jsonl.close()
    if self.tb is not None:
      self.tb.close()
