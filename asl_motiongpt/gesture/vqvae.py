"""The gesture tokenizer's networks: T2M-GPT/MotionGPT-style 1D convolutional encoder and decoder.

Encoder: conv(3) -> act -> [conv(4, stride 2) -> dilated residual stack] x down_t -> conv(3) to code_dim.
Decoder: conv(3) -> act -> [dilated residual stack -> nearest x2 upsample -> conv(3)] x down_t
         -> conv(3) -> act -> conv(3) to the pose features.
Residual blocks: act -> conv(3, dilation d) -> act -> conv(1), added to the input; dilations
9, 3, 1 (depth 3, growth 3, reversed). Layout [batch, time, channels]; time is downsampled by
2**down_t (x4 by default). Every kernel carries logical axis names.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import linen as nn

_ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


@dataclasses.dataclass(frozen=True)
class VqConfig:
  width: int = 512
  depth: int = 3              # residual blocks per stack
  dilation_growth: int = 3
  down_t: int = 2             # two stride-2 blocks: x4 temporal downsampling
  code_dim: int = 512
  codebook_size: int = 1024
  activation: str = "relu"
  ema_decay: float = 0.99
  # A code is reset when its EMA count falls below this share of its fair share, the count per code
  # of a batch if use were uniform (valid vectors / codebook size); new and reset codes start at the
  # fair share, so with decay 0.99 a code unused for ~70 steps is reset, at any batch size. (An
  # absolute 1.0, T2M-GPT's at 4096 vectors and 512 codes, calls every code dead at every step at
  # the demo's 128 vectors and 256 codes.) Measured on real poses: tools/tokenizer_real_poses.py.
  reset_threshold: float = 0.5
  dead_code_reset: bool = True
  commitment: float = 0.02
  velocity_weight: float = 0.5
  # False: the same networks trained as a plain autoencoder, the latents decoded as they are (no
  # codebook, no codes): the bound that any codebook on this architecture is measured against.
  quantize: bool = True
  # Residual quantisation (MoMask's RVQ): each level quantises what the levels before it left over,
  # with a codebook of its own; the decoder reads the sum. Codes per time step: parts x levels.
  residual_levels: int = 1
  dtype: str = "float32"

  @property
  def downsample(self) -> int:
    return 2 ** self.down_t


class _Conv(nn.Module):
  """nn.Conv whose output is pinned to batch sharding with replicated channels.

  Why the constraint: without it, on a (data=2, fsdp=2, tensor=2) mesh, XLA's partitioner (jax
  0.10.2, Shardy and GSPMD alike) produced wrong gradients (off by 50-90%) for a time-sliced or
  strided layer followed by a residual connection; pinning the activation layout avoids that path
  (tests/test_sharding.py checks every mesh against one device).
  """
  features: int
  kernel: int
  config: VqConfig
  stride: int = 1
  dilation: int = 1
  axes: tuple[str, str] = ("conv_in", "conv_out")

  @nn.compact
  def __call__(self, inputs):
    pad = (self.kernel - 1) * self.dilation // 2 if self.stride == 1 else (self.kernel - self.stride) // 2
    outputs = nn.Conv(self.features, (self.kernel,),
                      strides=(self.stride,),
                      kernel_dilation=(self.dilation,),
                      padding=[(pad, pad)],
                      dtype=jnp.dtype(self.config.dtype),
                      kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                               ("conv_width",) + self.axes),
                      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (self.axes[1],)),
                      name="conv")(inputs)
    return nn.with_logical_constraint(outputs, ("batch", "length", "conv_act"))


def _conv(features, kernel, config: VqConfig, name, stride=1, dilation=1, axes=("conv_in", "conv_out")):
  return _Conv(features, kernel, config, stride=stride, dilation=dilation, axes=axes, name=name)


class ResidualStack(nn.Module):
  config: VqConfig

  @nn.compact
  def __call__(self, hidden):
    config = self.config
    act = _ACTIVATIONS[config.activation]
    dilations = [config.dilation_growth ** block for block in range(config.depth)][::-1]  # 9, 3, 1
    for block, rate in enumerate(dilations):
      inner = _conv(config.width, 3, config, f"block{block}_dilated", dilation=rate)(act(hidden))
      hidden = hidden + _conv(config.width, 1, config, f"block{block}_pointwise")(act(inner))
    return hidden


class Encoder(nn.Module):
  config: VqConfig

  @nn.compact
  def __call__(self, x_BTF):
    config = self.config
    act = _ACTIVATIONS[config.activation]
    hidden = act(_conv(config.width, 3, config, "conv_in", axes=("pose_features", "conv_out"))(x_BTF))
    for level in range(config.down_t):
      hidden = _conv(config.width, 4, config, f"down{level}", stride=2)(hidden)
      hidden = ResidualStack(config, name=f"res{level}")(hidden)
    return _conv(config.code_dim, 3, config, "conv_out", axes=("conv_in", "code"))(hidden)


class Decoder(nn.Module):
  config: VqConfig
  features: int

  @nn.compact
  def __call__(self, z_BTC):
    config = self.config
    act = _ACTIVATIONS[config.activation]
    hidden = act(_conv(config.width, 3, config, "conv_in", axes=("code", "conv_out"))(z_BTC))
    for level in range(config.down_t):
      hidden = ResidualStack(config, name=f"res{level}")(hidden)
      hidden = jnp.repeat(hidden, 2, axis=1)  # nearest-neighbour upsampling in time
      hidden = _conv(config.width, 3, config, f"up{level}")(hidden)
    hidden = act(_conv(config.width, 3, config, "conv_pre")(hidden))
    return _conv(self.features, 3, config, "conv_out", axes=("conv_in", "pose_features"))(hidden)


class PartVqVae(nn.Module):
  """Encoders and decoders of every part (one part = all joints, unless part-wise)."""
  config: VqConfig
  part_features: tuple[int, ...]

  def setup(self):
    self.encoders = [Encoder(self.config, name=f"encoder_{i}") for i in range(len(self.part_features))]
    self.decoders = [Decoder(self.config, f, name=f"decoder_{i}") for i, f in enumerate(self.part_features)]

  def encode(self, parts):
    return [enc(x) for enc, x in zip(self.encoders, parts)]

  def decode(self, latents):
    return [dec(z) for dec, z in zip(self.decoders, latents)]

  def __call__(self, parts):
    return self.decode(self.encode(parts))
