"""One matmul at a time: XLA's CPU dot kernels beside PyTorch's, on the shapes of tools/bench_llm.py.

  python tools/bench_cpu_matmul.py                  # bench_llm's default model: hidden 512, MLP 1408, vocab 16384
  python tools/bench_cpu_matmul.py --tokens 4096 --decode-mb 256

Why it exists: the training step of tools/bench_llm.py does the same matmuls as PyTorch eager, so
when it is slower, the question is whether the kernels are. Two tables:

  training    every projection of a layer and the LM head at --tokens rows: forward x @ W, the
              weight gradient x^T @ dY and the input gradient dY @ W^T, ms and GFLOP/s on each side,
              and ours / PyTorch (below 1 is faster);
  decoding    x @ W with 1 and --batch rows against a chain of distinct MLP-shaped weights of
              --decode-mb MB in all (more than the caches hold, as in decoding, where every step
              reads all weights once): weight bytes streamed per second on each side.

float32 throughout; medians of --repeats; jitted JAX vs torch on its default threads.
Needs torch (the test extra: pip install -e '.[test]').
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def median_ms(fn, repeats: int) -> float:
  fn()  # compiles / warms up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e3


def training_table(args, torch):
  rng = np.random.default_rng(0)
  shapes = {"q / o proj": (args.hidden, args.hidden), "k / v proj": (args.hidden, args.kv_width),
            "gate / up proj": (args.hidden, args.intermediate), "down proj": (args.intermediate, args.hidden),
            "lm head": (args.hidden, args.vocab)}
  forms = {"forward x @ W": (lambda inputs, weights, grads: inputs @ weights),
           "weight grad x^T @ dY": (lambda inputs, weights, grads: inputs.T @ grads),
           "input grad dY @ W^T": (lambda inputs, weights, grads: grads @ weights.T)}
  print(f"\ntraining matmuls, {args.tokens} rows, float32, medians of {args.repeats}")
  print(f"  {'shape':16s} {'matmul':22s} {'ours ms':>9s} {'GFLOP/s':>8s} {'PyTorch ms':>11s} {'GFLOP/s':>8s} "
        f"{'ours/PyTorch':>13s}")
  for name, (d_in, d_out) in shapes.items():
    inputs, weights, grads = (rng.standard_normal(s).astype(np.float32)
                              for s in ((args.tokens, d_in), (d_in, d_out), (args.tokens, d_out)))
    ours_args = [jnp.asarray(a) for a in (inputs, weights, grads)]
    theirs_args = [torch.from_numpy(a) for a in (inputs, weights, grads)]
    gflop = 2 * args.tokens * d_in * d_out / 1e9
    for form, fn in forms.items():
      compiled = jax.jit(fn)
      ours = median_ms(lambda: compiled(*ours_args).block_until_ready(), args.repeats)
      theirs = median_ms(lambda: fn(*theirs_args), args.repeats)
      print(f"  {name:16s} {form:22s} {ours:9.2f} {gflop / ours * 1e3:8.0f} {theirs:11.2f} "
            f"{gflop / theirs * 1e3:8.0f} {ours / theirs:13.2f}")


def decoding_table(args, torch):
  rng = np.random.default_rng(1)
  count = max(2, int(args.decode_mb * 1e6 // (args.hidden * args.intermediate * 4)))
  weights = [rng.standard_normal((args.hidden, args.intermediate)).astype(np.float32) for _ in range(count)]
  megabytes = count * weights[0].nbytes / 1e6
  ours_weights = [jnp.asarray(w) for w in weights]
  theirs_weights = [torch.from_numpy(w) for w in weights]

  def chain(inputs, ws):  # each product feeds the next input: no two run at once
    acc = inputs
    for weight in ws:
      acc = inputs + (acc @ weight)[:, :inputs.shape[1]] * 1e-6
    return acc

  print(f"\ndecoding-shaped matmuls: x @ W through {count} distinct {args.hidden}x{args.intermediate} weights "
        f"({megabytes:.0f} MB), medians of {args.repeats}")
  print(f"  {'rows':>4s} {'ours ms':>9s} {'GB/s':>6s} {'PyTorch ms':>11s} {'GB/s':>6s} {'ours/PyTorch':>13s}")
  for rows in sorted({1, args.batch}):
    inputs = rng.standard_normal((rows, args.hidden)).astype(np.float32)
    compiled = jax.jit(lambda inputs, ws: chain(inputs, ws))
    ours = median_ms(lambda: compiled(jnp.asarray(inputs), ours_weights).block_until_ready(), args.repeats)
    with torch.no_grad():
      theirs = median_ms(lambda: chain(torch.from_numpy(inputs), theirs_weights), args.repeats)
    print(f"  {rows:4d} {ours:9.2f} {megabytes / ours:6.1f} {theirs:11.2f} {megabytes / theirs:6.1f} "
          f"{ours / theirs:13.2f}")


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--hidden", type=int, default=512)
  parser.add_argument("--kv-width", type=int, default=256, help="key/value heads x head_dim")
  parser.add_argument("--intermediate", type=int, default=1408)
  parser.add_argument("--vocab", type=int, default=16384)
  parser.add_argument("--tokens", type=int, default=2048, help="rows of a training matmul (batch x sequence)")
  parser.add_argument("--batch", type=int, default=8, help="rows of a decoding matmul")
  parser.add_argument("--decode-mb", type=float, default=160, help="weights streamed per decoding chain")
  parser.add_argument("--repeats", type=int, default=9)
  parser.add_argument("--skip-training", action="store_true")
  parser.add_argument("--skip-decoding", action="store_true")
  args = parser.parse_args()
  import torch
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, torch {torch.__version__} on "
        f"{torch.get_num_threads()} threads")
  if not args.skip_training:
    training_table(args, torch)
  if not args.skip_decoding:
    decoding_table(args, torch)


if __name__ == "__main__":
  main()
