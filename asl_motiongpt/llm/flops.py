"""Training FLOPs and MFU with MaxText's accounting.

FLOPs per trained token = 6 x (parameters used in matrix multiplies: attention and MLP projections
and the output projection; embedding lookups are not matmuls) + causal attention
6 x layers x heads x head_dim x sequence length (QK^T and AV, forward and backward, half the
square for causal masking). Recomputation under remat is not counted: MFU measures useful work.
"""
from __future__ import annotations

import jax

from asl_motiongpt.llm.config import LlmConfig

# Dense bf16 peak per chip (FLOP/s), by jax's device_kind.
PEAK_BF16 = {
    "NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H100": 989e12, "NVIDIA H200": 989e12, "NVIDIA H100 PCIe": 756e12,
    "NVIDIA A100-SXM4-80GB": 312e12, "NVIDIA A100-SXM4-40GB": 312e12, "NVIDIA A100 80GB PCIe": 312e12,
    "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6 lite": 918e12,
    "TPU v6e": 918e12,
}


def matmul_params(config: LlmConfig) -> int:
  attention = config.hidden_size * config.head_dim * (2 * config.num_heads + 2 * config.num_kv_heads)
  mlp = 3 * config.hidden_size * config.intermediate_size
  return config.num_layers * (attention + mlp) + config.hidden_size * config.vocab_size


def total_params(config: LlmConfig) -> int:
  embed = config.vocab_size * config.hidden_size
  norms = config.num_layers * 2 * config.hidden_size + config.hidden_size
  return matmul_params(config) + (0 if config.tie_word_embeddings else embed) + norms


def train_flops_per_token(config: LlmConfig, seq_len: int) -> float:
  return 6.0 * matmul_params(config) + 6.0 * config.num_layers * config.num_heads * config.head_dim * seq_len


def peak_flops(device=None) -> float | None:
  device = device or jax.devices()[0]
  kind = device.device_kind
  return PEAK_BF16.get(kind) or next((v for k, v in PEAK_BF16.items() if kind.startswith(k)), None)


def mfu(tokens_per_second: float, config: LlmConfig, seq_len: int, devices: int | None = None) -> float | None:
  peak = peak_flops()
  if peak is None:
    return None
  devices = devices or jax.device_count()
  return tokens_per_second * train_flops_per_token(config, seq_len) / (peak * devices)
