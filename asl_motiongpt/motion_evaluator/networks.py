"""The evaluator's two encoders and their contrastive loss.

Motion: the unified pose, standardised per joint and coordinate (gesture/features.py, from the
prepared statistics), flattened per frame, through strided 1D convolutions (x4 in time), averaged
over the valid frames, projected. Text: word embeddings through 1D convolutions, averaged over the
words, projected. Both embeddings are L2-normalised, so every distance the metrics use lies in
[0, 2] whatever the training run. Loss: symmetric InfoNCE over the batch (each motion against every
text of the batch and back), a fixed temperature.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn


@dataclasses.dataclass(frozen=True)
class EvaluatorSpec:
  vocab_size: int
  joints: int = 50
  dims: int = 3
  width: int = 256
  embed: int = 128
  max_words: int = 32
  max_frames: int = 200
  temperature: float = 0.1


def _masked_mean(h_BTC, mask_BT):
  weights = mask_BT.astype(h_BTC.dtype)[..., None]
  return (h_BTC * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)


def _normalise(vectors):
  return vectors / jnp.maximum(jnp.linalg.norm(vectors, axis=-1, keepdims=True), 1e-6)


class MotionEncoder(nn.Module):
  spec: EvaluatorSpec

  @nn.compact
  def __call__(self, features_BTF, time_mask_BT):
    width = self.spec.width
    hidden = nn.relu(nn.Conv(width, (3,), name="conv_in")(features_BTF))
    mask = time_mask_BT
    for level in range(2):  # x4 in time; a step counts where any of its frames is valid
      hidden = nn.relu(nn.Conv(width, (4,), strides=(2,), padding=[(1, 1)], name=f"down{level}")(hidden))
      mask = mask.reshape(mask.shape[0], -1, 2).any(-1)
      hidden = hidden + nn.Conv(width, (3,), name=f"res{level}")(nn.relu(hidden))
    pooled = _masked_mean(hidden, mask)
    return _normalise(nn.Dense(self.spec.embed, name="out")(nn.relu(nn.Dense(width, name="hidden")(pooled))))


class TextEncoder(nn.Module):
  spec: EvaluatorSpec

  @nn.compact
  def __call__(self, ids_BL, mask_BL):
    width = self.spec.width
    hidden = nn.Embed(self.spec.vocab_size, width, name="embed")(ids_BL)
    for layer in range(2):
      hidden = hidden + nn.Conv(width, (3,), name=f"conv{layer}")(nn.relu(hidden))
    pooled = _masked_mean(hidden, mask_BL)
    return _normalise(nn.Dense(self.spec.embed, name="out")(nn.relu(nn.Dense(width, name="hidden")(pooled))))


class TextMotionEvaluator(nn.Module):
  spec: EvaluatorSpec

  def setup(self):
    self.motion = MotionEncoder(self.spec)
    self.text = TextEncoder(self.spec)

  def embed_motion(self, features_BTF, time_mask_BT):
    return self.motion(features_BTF, time_mask_BT)

  def embed_text(self, ids_BL, mask_BL):
    return self.text(ids_BL, mask_BL)

  def __call__(self, batch):
    return (self.embed_motion(batch["features"], batch["time_mask"]),
            self.embed_text(batch["words"], batch["word_mask"]))


def contrastive_loss(model: TextMotionEvaluator, params, batch):
  """(loss, metrics): symmetric InfoNCE; `accuracy` = share of motions whose own text is the
  nearest of the batch's texts."""
  motion, text = model.apply({"params": params}, batch)
  logits = motion @ text.T / model.spec.temperature
  labels = jnp.arange(logits.shape[0])
  loss = 0.5 * (optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
                + optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean())
  accuracy = jnp.mean(jnp.argmax(logits, axis=1) == labels)
  return loss, {"loss": loss, "accuracy": accuracy}


def make_step(model: TextMotionEvaluator, tx):
  """step(state, batch[, hyper]) -> (state, metrics); state = {step, params, opt_state, features}. The
  feature statistics ride along unchanged (they are the evaluator's, saved with it). With `hyper`, tx
  is a train/optimizer.Optimizer built from those numbers (see train/llm_step.make_step)."""
  def step(ts, batch, hyper=None):
    (_, metrics), grads = jax.value_and_grad(lambda p: contrastive_loss(model, p, batch),
                                             has_aux=True)(ts["params"])
    updates, opt_state = (tx if hyper is None else tx.build(hyper)).update(grads, ts["opt_state"], ts["params"])
    metrics["grad_norm"] = optax.tree.norm(grads)
    return {**ts, "step": ts["step"] + 1, "params": optax.apply_updates(ts["params"], updates),
            "opt_state": opt_state}, metrics
  return step
