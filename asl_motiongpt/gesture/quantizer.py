"""The vector quantizer as pure functions over an explicit state pytree.

State (per part p; parts are stacked on the leading axis):
  codebook  [P, K, C]   the codes
  ema_sum   [P, K, C]   exponential moving sum of the encoder outputs assigned to each code
  ema_count [P, K]      exponential moving count of assignments
  initialised []        bool: the codebook is set from the first batch's encoder outputs

Update rule (T2M-GPT's EMA-with-reset, written out so a NumPy reference can check it):
  sum_k   = sum of vectors assigned to k in this batch,  count_k = how many
  ema_sum   <- decay * ema_sum + (1 - decay) * sum
  ema_count <- decay * ema_count + (1 - decay) * count
  live code (ema_count >= threshold): codebook_k = ema_sum_k / ema_count_k
  dead code: codebook_k = a random encoder output of this batch, and its EMA restarts there
             (ema_sum_k = that vector, ema_count_k = 1), so it gets a fair chance to be used.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def init_state(parts: int, codebook_size: int, code_dim: int) -> dict:
  return {"codebook": jnp.zeros((parts, codebook_size, code_dim), jnp.float32),
          "ema_sum": jnp.zeros((parts, codebook_size, code_dim), jnp.float32),
          "ema_count": jnp.zeros((parts, codebook_size), jnp.float32),
          "initialised": jnp.zeros((), bool)}


def nearest_codes(z_NC, codebook_KC):
  """Index of the nearest code (squared Euclidean) for each row of z."""
  distances = (jnp.sum(z_NC ** 2, axis=-1, keepdims=True) - 2 * z_NC @ codebook_KC.T
               + jnp.sum(codebook_KC ** 2, axis=-1)[None])
  return jnp.argmin(distances, axis=-1)


def straight_through(latent, z_q):
  """Forward: the quantized vector; backward: the identity to z."""
  return latent + jax.lax.stop_gradient(z_q - latent)


def random_rows(rng, z_NC, valid_N, count):
  """`count` rows drawn (with replacement) from the valid rows of z."""
  share = valid_N.astype(jnp.float32)
  share = share / jnp.maximum(share.sum(), 1.0)
  index = jax.random.choice(rng, z_NC.shape[0], (count,), replace=True, p=share)
  return z_NC[index]


def ema_update(state_part: dict, z_NC, codes_N, valid_N, replacements_KC, decay: float, threshold,
               restart_count=1.0):
  """One part's update from a batch of encoder outputs; returns (new state, number of resets).

  replacements_KC: candidate vectors for dead codes (`random_rows` of this batch's encoder outputs).
  restart_count: the EMA count a reset code starts from.
  """
  z_NC = jax.lax.stop_gradient(z_NC).astype(jnp.float32)
  K = state_part["codebook"].shape[0]
  onehot_NK = jax.nn.one_hot(codes_N, K, dtype=jnp.float32) * valid_N[:, None]
  batch_sum = onehot_NK.T @ z_NC
  batch_count = onehot_NK.sum(axis=0)
  ema_sum = decay * state_part["ema_sum"] + (1 - decay) * batch_sum
  ema_count = decay * state_part["ema_count"] + (1 - decay) * batch_count
  live = ema_count >= threshold
  random_KC = jax.lax.stop_gradient(replacements_KC).astype(jnp.float32)
  codebook = jnp.where(live[:, None], ema_sum / jnp.maximum(ema_count, 1e-12)[:, None], random_KC)
  ema_sum = jnp.where(live[:, None], ema_sum, random_KC * restart_count)
  ema_count = jnp.where(live, ema_count, restart_count)
  return {"codebook": codebook, "ema_sum": ema_sum, "ema_count": ema_count}, jnp.sum(~live)


def first_batch_init(z_NC, valid_N, rng, codebook_size: int, count=1.0):
  """Codebook from random valid encoder outputs of the first batch (EMA starts there, each code
  with EMA count `count`)."""
  rows = random_rows(rng, jax.lax.stop_gradient(z_NC).astype(jnp.float32), valid_N, codebook_size)
  counts = jnp.full((codebook_size,), count, jnp.float32)
  return {"codebook": rows, "ema_sum": rows * counts[:, None], "ema_count": counts}


def usage_metrics(codes_N, valid_N, codebook_size: int) -> dict:
  counts = jnp.zeros((codebook_size,), jnp.float32).at[codes_N].add(valid_N.astype(jnp.float32))
  probs = counts / jnp.maximum(counts.sum(), 1.0)
  entropy = -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.maximum(probs, 1e-12)), 0.0))
  return {"perplexity": jnp.exp(entropy), "codes_used": jnp.mean(counts > 0)}
