"""Sharded LLM training-step throughput: tokens/s and MFU (MaxText's FLOP accounting).

  python tools/bench_llm_step.py --preset llama-1b --batch 256 --seq 250 --dtype bfloat16 --accumulation 4
  python tools/bench_llm_step.py --preset tiny                       # any machine, a smoke run
  python tools/bench_llm_step.py --preset llama-1b --batch 256 --seq 256 --accumulation 4 --attention cudnn  # GPU

Presets are LLaMA/Qwen-shaped configs with random weights (nothing is downloaded). The mesh is
data-parallel over all devices unless --mesh says otherwise (e.g. --mesh fsdp=-1).
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from asl_motiongpt.llm import LlmConfig, Transformer
from asl_motiongpt.llm import flops
from asl_motiongpt.parallel import describe, make_mesh, sharding as shd
from asl_motiongpt.train import llm_step, step as step_compiler

PRESETS = {
    # Llama-3.2-1B's shape: 1.24B parameters
    "llama-1b":
        LlmConfig("llama",
                  vocab_size=128256,
                  hidden_size=2048,
                  intermediate_size=8192,
                  num_layers=16,
                  num_heads=32,
                  num_kv_heads=8,
                  head_dim=64,
                  rope_theta=500000.0,
                  tie_word_embeddings=True),
    # Qwen2.5-1.5B's shape
    "qwen-1.5b":
        LlmConfig("qwen2",
                  vocab_size=151936,
                  hidden_size=1536,
                  intermediate_size=8960,
                  num_layers=28,
                  num_heads=12,
                  num_kv_heads=2,
                  head_dim=128,
                  attention_bias=True,
                  tie_word_embeddings=True),
    "tiny":
        LlmConfig("llama",
                  vocab_size=512,
                  hidden_size=128,
                  intermediate_size=256,
                  num_layers=2,
                  num_heads=4,
                  num_kv_heads=2,
                  head_dim=32),
}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--preset", default="tiny", choices=PRESETS)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seq", type=int, default=250)
  parser.add_argument("--dtype", default="bfloat16")
  parser.add_argument("--accumulation", type=int, default=1)
  parser.add_argument("--remat", default="none")
  parser.add_argument("--scan", action="store_true")
  parser.add_argument("--attention", default="xla", help="xla | cudnn | auto (llm.attention)")
  parser.add_argument("--mesh", default="data=-1")
  parser.add_argument("--steps", type=int, default=5)
  args = parser.parse_args()
  config = PRESETS[args.preset].replace(dtype=args.dtype, remat_policy=args.remat, scan_layers=args.scan,
                                       attention=args.attention)
  mesh = make_mesh({k: int(v) for k, v in (kv.split("=") for kv in args.mesh.split(","))})
  model = Transformer(config)
  tx = optax.adamw(1e-4)
  init = llm_step.boxed_state(
      lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"], tx)
  _, shardings = step_compiler.abstract_state(init, mesh)
  state = step_compiler.init_state(init, shardings)
  rng = np.random.default_rng(0)
  batch = {"input_ids": rng.integers(0, config.vocab_size, (args.batch, args.seq)).astype(np.int32),
           "target_mask": np.ones((args.batch, args.seq), bool)}
  step = step_compiler.compile_step(
      llm_step.make_step(lambda prm, b: model.apply({"params": prm}, b["input_ids"]), tx, args.accumulation),
      mesh, shardings, batch)
  global_batch = shd.global_batch(batch, mesh)
  start = time.perf_counter()
  state, metrics = step(state, global_batch)
  jax.block_until_ready(metrics["loss"])
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(args.steps):
    state, metrics = step(state, global_batch)
  jax.block_until_ready(metrics["loss"])
  seconds = (time.perf_counter() - start) / args.steps
  tokens = args.batch * args.seq / seconds
  util = flops.mfu(tokens, config, args.seq)
  print(f"{args.preset}: {flops.total_params(config) / 1e9:.2f}B params, mesh {describe(mesh)}, "
        f"{jax.devices()[0].device_kind}, batch {args.batch} x {args.seq}, {args.dtype}, accumulation "
        f"{args.accumulation}, remat {args.remat}")
  print(
      f"  first step (compile) {compile_s:.1f}s; step {seconds * 1e3:.1f} ms; {tokens:,.0f} tokens/s; "
      f"{flops.train_flops_per_token(config, args.seq) * tokens / 1e12 / jax.device_count():.1f} TFLOP/s per device; "
      f"MFU {'n/a (unknown peak for this device)' if util is None else f'{util:.1%}'}; loss {float(metrics['loss']):.3f}"
  )


if __name__ == "__main__":
  main()
