"""The projection layer of our decoders: nn.Dense with the leading axes flattened first.

Same parameters (`kernel`, `bias`), same numbers. Why: for an input [B, T, D], the weight gradient
contracts over two axes (B and T), and XLA's CPU backend computes that contraction about 1.7x
slower than the same one over a single [B*T] axis (measured: tanh(x @ W) with x [4, 256, 512],
W [512, 1408]: gradient 46 ms vs 27 ms on 2 cores). On GPU and TPU the reshape is free.
"""
from __future__ import annotations

from flax import linen as nn


class FlatDense(nn.Dense):

  @nn.compact
  def __call__(self, inputs):
    lead = inputs.shape[:-1]
    return super().__call__(inputs.reshape(-1, inputs.shape[-1])).reshape(*lead, self.features)
