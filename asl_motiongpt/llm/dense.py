"""The projection layer of our decoders: nn.Dense with the leading axes flattened first.

Same parameters (`kernel`, `bias`), same numbers. Why: for an input [B, T, D], the weight gradient
contracts over two axes (B and T), and XLA's CPU backend computes that contraction about 1.7x
slower than the same one over a single [B*T] axis (measured: tanh(x @ W) with x [4, 256, 512],
W [512, 1408]: gradient 46 ms vs 27 ms on 2 cores). On GPU and TPU the reshape is free.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from asl_motiongpt.parallel import target


def _accumulate(lhs, rhs, contracting):
  """lhs . rhs over the given axes, accumulated and returned in float32."""
  return jax.lax.dot_general(lhs, rhs, (contracting, ((), ())), preferred_element_type=jnp.float32)


@jax.custom_vjp
def _narrow_matmul(x_ND, w_DF):
  return _accumulate(x_ND, w_DF, ((1,), (0,))).astype(x_ND.dtype)


def _narrow_matmul_forward(x_ND, w_DF):
  return _narrow_matmul(x_ND, w_DF), (x_ND, w_DF)


def _narrow_matmul_backward(residuals, dy_NF):
  x_ND, w_DF = residuals
  dx_ND = _accumulate(dy_NF, w_DF, ((1,), (1,))).astype(x_ND.dtype)
  # The weight gradient contracts the rows of both. XLA:CPU's bf16 kernel takes no transposed left
  # operand: the dot autodiff writes (x^T . dy) is upcast to float32 and run by the fallback kernel
  # (18 ms vs 4 ms at 2048 x 512 x 1408). So x^T is formed first, through a 3-D transpose that XLA
  # keeps as a copy (a plain x.T it folds back into the dot; an optimization barrier is dropped on CPU).
  N, D = x_ND.shape
  xT_DN = x_ND.reshape(N, D, 1).transpose(1, 0, 2).reshape(D, N)
  return dx_ND, _accumulate(xT_DN, dy_NF, ((1,), (0,))).astype(w_DF.dtype)


_narrow_matmul.defvjp(_narrow_matmul_forward, _narrow_matmul_backward)


def float32_accumulating_dot(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
  """lax.dot_general for nn.Dense that accumulates in float32 and rounds its output to the inputs'
  dtype once; for a 2-D input (FlatDense's) the backward's two products run in the same form.

  For bfloat16 compute on CPU (see `projection_dot`): XLA:CPU runs a bfloat16 x bfloat16 -> bfloat16
  dot through a slow path, and the same dot asked for a float32 result through a fast one (measured,
  x [2048, 512] @ W [512, 1408] on 2 cores: 19.3 ms vs 4.3 ms; float32 16.8 ms). The gradients come
  out in the inputs' dtype, as under PyTorch's autocast."""
  if lhs.ndim == 2 and dimension_numbers == (((1,), (0,)), ((), ())) and preferred_element_type is None:
    return _narrow_matmul(lhs, rhs)
  out = jax.lax.dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type=jnp.float32)
  return out.astype(preferred_element_type or jnp.result_type(lhs.dtype, rhs.dtype))


def projection_dot(dtype):
  """The dot_general of a projection computing in `dtype`: float32-accumulating for a narrower dtype
  on CPU; None (lax.dot_general) elsewhere, where GPUs and TPUs accumulate bfloat16 products in
  float32 anyway and the programs measured there stay as they are."""
  narrow = jnp.dtype(dtype).itemsize < 4
  return float32_accumulating_dot if narrow and target.platform() == "cpu" else None


class FlatDense(nn.Dense):

  @nn.compact
  def __call__(self, inputs):
    lead = inputs.shape[:-1]
    return super().__call__(inputs.reshape(-1, inputs.shape[-1])).reshape(*lead, self.features)
