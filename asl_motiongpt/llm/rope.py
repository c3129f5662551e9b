"""Rotary position embeddings in the Hugging Face "rotate half" layout, computed in float32.

HF checkpoints store q/k projections for this layout (the first and second halves of each head
are the two coordinates of each rotated pair), so their weights load with transposes only.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from asl_motiongpt.llm.config import LlmConfig


def inverse_frequencies(config: LlmConfig) -> np.ndarray:
  """[head_dim // 2] float64 -> float32, including `linear` and `llama3` scaling."""
  dim = config.head_dim
  inv = 1.0 / (config.rope_theta ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / dim))
  if config.rope_type == "linear":
    inv = inv / config.rope_factor
  elif config.rope_type == "llama3":
    factor = config.rope_factor
    low, high = config.rope_low_freq_factor, config.rope_high_freq_factor
    old = config.rope_original_max_positions
    wavelen = 2 * math.pi / inv
    # Long wavelengths (low frequencies) are stretched by `factor`, short ones kept, the band
    # between them interpolated smoothly (Llama 3.1's recipe).
    scaled = np.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / high) & ~(wavelen > old / low)
    inv = np.where(medium, smoothed, scaled)
  return inv.astype(np.float32)


def cos_sin(positions: jnp.ndarray, config: LlmConfig) -> tuple[jnp.ndarray, jnp.ndarray]:
  """cos, sin [batch, length, head_dim] for integer positions [batch, length]."""
  inv = jnp.asarray(inverse_frequencies(config))
  angles = positions.astype(jnp.float32)[..., None] * inv  # [B, T, hd/2]
  angles = jnp.concatenate([angles, angles], axis=-1)
  return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x_BTNH: jnp.ndarray, cos_BTH: jnp.ndarray, sin_BTH: jnp.ndarray) -> jnp.ndarray:
  """Rotates q or k [batch, length, heads, head_dim] in float32; returns the input dtype."""
  inputs = x_BTNH.astype(jnp.float32)
  half = inputs.shape[-1] // 2
  rotated = jnp.concatenate([-inputs[..., half:], inputs[..., :half]], axis=-1)
  out = inputs * cos_BTH[:, :, None, :] + rotated * sin_BTH[:, :, None, :]
  return out.astype(x_BTNH.dtype)
