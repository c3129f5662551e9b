"""Tokenizer training-step time and encode throughput: our jitted JAX step beside a PyTorch (eager)
implementation of the same architecture, measured in the same process on the same batch shape.

  python tools/bench_tokenizer.py                 # width 512, code 512, codebook 1024, batch 32 x 64 frames
  python tools/bench_tokenizer.py --batch 256     # the seed's batch (slow on a laptop CPU)

Prints seconds per train step for each and the ratio JAX / torch (lower is better for us), and
encode frames/s for each. torch is a test dependency (`pip install -e '.[test]'`).
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch import nn as tnn

from asl_motiongpt.gesture import GestureTokenizer, TokenizerSpec, VqConfig
from asl_motiongpt.gesture.train_step import make_step as make_tokenizer_step


class TorchResStack(tnn.Module):
  def __init__(self, width, depth, growth):
    super().__init__()
    dilations = [growth ** i for i in range(depth)][::-1]
    self.blocks = tnn.ModuleList(
        tnn.ModuleList([tnn.Conv1d(width, width, 3, padding=d, dilation=d), tnn.Conv1d(width, width, 1)])
        for d in dilations)

  def forward(self, hidden):
    for dilated, pointwise in self.blocks:
      hidden = hidden + pointwise(torch.relu(dilated(torch.relu(hidden))))
    return hidden


class TorchVqVae(tnn.Module):
  """The same layers as asl_motiongpt.gesture.vqvae, channels-first."""

  def __init__(self, features, vq_config: VqConfig):
    super().__init__()
    enc = [tnn.Conv1d(features, vq_config.width, 3, padding=1), tnn.ReLU()]
    for _ in range(vq_config.down_t):
      enc += [
          tnn.Conv1d(vq_config.width, vq_config.width, 4, stride=2, padding=1),
          TorchResStack(vq_config.width, vq_config.depth, vq_config.dilation_growth)
      ]
    enc += [tnn.Conv1d(vq_config.width, vq_config.code_dim, 3, padding=1)]
    self.encoder = tnn.Sequential(*enc)
    dec = [tnn.Conv1d(vq_config.code_dim, vq_config.width, 3, padding=1), tnn.ReLU()]
    for _ in range(vq_config.down_t):
      dec += [
          TorchResStack(vq_config.width, vq_config.depth, vq_config.dilation_growth),
          tnn.Upsample(scale_factor=2, mode="nearest"),
          tnn.Conv1d(vq_config.width, vq_config.width, 3, padding=1)
      ]
    dec += [
        tnn.Conv1d(vq_config.width, vq_config.width, 3, padding=1),
        tnn.ReLU(),
        tnn.Conv1d(vq_config.width, features, 3, padding=1)
    ]
    self.decoder = tnn.Sequential(*dec)
    self.register_buffer("codebook", torch.randn(vq_config.codebook_size, vq_config.code_dim))
    self.register_buffer("ema_sum", self.codebook.clone())
    self.register_buffer("ema_count", torch.ones(vq_config.codebook_size))
    self.c = vq_config

  def forward(self, x_BFT, mask_BFT):
    latent = self.encoder(x_BFT * mask_BFT)                      # [B, C, T']
    flat = latent.permute(0, 2, 1).reshape(-1, latent.shape[1])
    dist = (flat ** 2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T + (self.codebook ** 2).sum(1)[None]
    codes = dist.argmin(1)
    z_q = self.codebook[codes]
    commit = ((flat - z_q.detach()) ** 2).mean()
    st = flat + (z_q - flat).detach()
    recon = self.decoder(st.reshape(latent.shape[0], -1, latent.shape[1]).permute(0, 2, 1))
    loss_recon = (torch.nn.functional.smooth_l1_loss(recon, x_BFT, reduction="none") *
                  mask_BFT).sum() / mask_BFT.sum()
    vel_mask = mask_BFT[..., 1:] * mask_BFT[..., :-1]
    dv = (recon[..., 1:] - recon[..., :-1]) - (x_BFT[..., 1:] - x_BFT[..., :-1])
    loss_vel = (torch.nn.functional.smooth_l1_loss(dv, torch.zeros_like(dv), reduction="none") *
                vel_mask).sum() / vel_mask.sum()
    with torch.no_grad():  # EMA with dead-code reset
      onehot = torch.nn.functional.one_hot(codes, self.c.codebook_size).float()
      self.ema_sum.mul_(self.c.ema_decay).add_((1 - self.c.ema_decay) * onehot.T @ flat)
      self.ema_count.mul_(self.c.ema_decay).add_((1 - self.c.ema_decay) * onehot.sum(0))
      live = self.ema_count >= self.c.reset_threshold * flat.shape[0] / self.c.codebook_size
      rand = flat[torch.randint(0, flat.shape[0], (self.c.codebook_size,))]
      self.codebook.copy_(
          torch.where(live[:, None], self.ema_sum / self.ema_count.clamp(min=1e-12)[:, None], rand))
    return loss_recon + self.c.velocity_weight * loss_vel + self.c.commitment * commit


def best_of(fn, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--frames", type=int, default=64)
  parser.add_argument("--width", type=int, default=512)
  parser.add_argument("--code-dim", type=int, default=512)
  parser.add_argument("--codebook", type=int, default=1024)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--torch-device", default="cuda" if torch.cuda.is_available() else "cpu")
  args = parser.parse_args()
  dev = torch.device(args.torch_device)
  sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
  torch.set_num_threads(max(torch.get_num_threads(), 1))
  vq = VqConfig(width=args.width, code_dim=args.code_dim, codebook_size=args.codebook)
  spec = TokenizerSpec(vq, joints=50, dims=3)
  B, T, F = args.batch, args.frames, 150
  rng = np.random.default_rng(0)
  pose = rng.normal(size=(B, T, 50, 3)).astype(np.float32)
  mask = np.ones((B, T, 50), bool)
  print(
      f"jax device: {jax.devices()[0].device_kind}; torch device: {dev} ({torch.get_num_threads()} threads); batch {B} x {T} frames, "
      f"width {args.width}, code dim {args.code_dim}, codebook {args.codebook}")

  # --- JAX ---
  tok = GestureTokenizer(spec)
  params, state = tok.init(jax.random.PRNGKey(0), T)
  tx = optax.adamw(2e-4)
  ts = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params), "vq": state,
        "rng": jax.random.PRNGKey(1)}
  step = jax.jit(make_tokenizer_step(tok, tx), donate_argnums=0)
  batch = {"pose": jnp.asarray(pose), "mask": jnp.asarray(mask), "time_mask": jnp.ones((B, T), bool)}
  ts, step_metrics = step(ts, batch)
  jax.block_until_ready(step_metrics["loss"])
  holder = {"ts": ts}

  def jax_steps():
    for _ in range(args.steps):
      holder["ts"], metrics = step(holder["ts"], batch)
    jax.block_until_ready(metrics["loss"])

  jax_step = best_of(jax_steps, args.repeats) / args.steps
  encode = jax.jit(lambda parser, s, inputs, mk: tok._encode(parser, s, inputs, mk))
  encode(holder["ts"]["params"], holder["ts"]["vq"], batch["pose"], batch["mask"]).block_until_ready()
  jax_encode = best_of(lambda: encode(holder["ts"]["params"], holder["ts"]["vq"], batch["pose"],
                                      batch["mask"]).block_until_ready(), args.repeats)

  # --- torch (eager) ---
  model = TorchVqVae(F, vq).to(dev)
  opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
  inputs = torch.from_numpy(pose.reshape(B, T, F)).permute(0, 2, 1).contiguous().to(dev)
  mk = torch.ones_like(inputs)

  def torch_steps():
    for _ in range(args.steps):
      opt.zero_grad(set_to_none=True)
      loss = model(inputs, mk)
      loss.backward()
      opt.step()
    sync()

  torch_steps()
  torch_step = best_of(torch_steps, args.repeats) / args.steps
  with torch.no_grad():
    torch_encode = best_of(lambda: (model.encoder(inputs), sync()), args.repeats)

  frames = B * T
  print(
      f"train step  jax {jax_step * 1e3:9.1f} ms   torch {torch_step * 1e3:9.1f} ms   jax/torch {jax_step / torch_step:.2f}x"
  )
  print(f"encode      jax {frames / jax_encode:9.0f} f/s  torch {frames / torch_encode:9.0f} f/s  "
        f"jax/torch time {jax_encode / torch_encode:.2f}x")


if __name__ == "__main__":
  main()
