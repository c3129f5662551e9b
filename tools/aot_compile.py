"""Ahead-of-time compile an LLM training step for a device topology and report memory per device.

  # 8 CPU devices standing in for a slice (this machine):
  python tools/aot_compile.py --topology cpu:8 --preset llama-1b --mesh fsdp=-1 --batch 256 --seq 250
  # a TPU topology (needs libtpu; nothing runs on TPUs, the compiler only plans):
  python tools/aot_compile.py --topology tpu:v5e-16 --preset llama-1b --mesh fsdp=-1

Nothing is allocated: state and batch are abstract (shape, dtype, sharding). Prints the compiled
step's per-device argument (params + optimizer state + batch), output, temporary and total bytes.
"""
import argparse
import os
import sys


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--topology", default="cpu:8", help="cpu:N or tpu:<TPU type>, e.g. tpu:v5e-16 or tpu:v5e:4x4")
  parser.add_argument("--preset", default="tiny")
  parser.add_argument("--mesh", default="fsdp=-1")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seq", type=int, default=250)
  parser.add_argument("--dtype", default="bfloat16")
  parser.add_argument("--accumulation", type=int, default=1)
  parser.add_argument("--remat", default="none")
  args = parser.parse_args()
  platform, _, name = args.topology.partition(":")
  if platform == "cpu":
    count = int(name or 8)
    flag = f"--xla_force_host_platform_device_count={count}"
    if flag not in os.environ.get("XLA_FLAGS", ""):  # JAX reads this once, at start: run again with it
      env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip(), JAX_PLATFORMS="cpu")
      os.execve(sys.executable, [sys.executable] + sys.argv, env)
  import jax
  from asl_motiongpt.parallel import target
  from asl_motiongpt.train import dry_run
  dry_run.use_topology(args.topology)
  devices = dry_run.topology_devices(args.topology) if platform == "tpu" else jax.devices()
  with target.compiling_for(devices[0].platform):  # kernels for the planned devices, not this CPU
    report(args, devices)


def report(args, devices):
  import jax
  import jax.numpy as jnp
  import optax
  from asl_motiongpt.llm import Transformer
  from asl_motiongpt.llm import flops
  from asl_motiongpt.parallel import describe, make_mesh
  from asl_motiongpt.parallel import sharding as shd
  from asl_motiongpt.train import llm_step, step as step_compiler
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from bench_llm_step import PRESETS

  mesh = make_mesh({k: int(v) for k, v in (kv.split("=") for kv in args.mesh.split(","))}, devices=devices)
  config = PRESETS[args.preset].replace(dtype=args.dtype, remat_policy=args.remat)
  model = Transformer(config)
  tx = optax.adamw(1e-4)
  init = llm_step.boxed_state(
      lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"], tx)
  state, shardings = step_compiler.abstract_state(init, mesh)  # nothing allocated
  batch = {
      "input_ids":
          jax.ShapeDtypeStruct((args.batch, args.seq), jnp.int32, sharding=shd.batch_sharding(mesh, 2)),
      "target_mask":
          jax.ShapeDtypeStruct((args.batch, args.seq), jnp.bool_, sharding=shd.batch_sharding(mesh, 2))
  }
  step = step_compiler.compile_step(
      llm_step.make_step(lambda prm, b: model.apply({"params": prm}, b["input_ids"]), tx, args.accumulation),
      mesh, shardings, batch)
  compiled = step.lower(state, batch).compile()
  memory = compiled.memory_analysis()
  gib = 1 << 30
  state_bytes = shd.bytes_per_device(state)
  print(
      f"{args.preset} ({flops.total_params(config) / 1e9:.2f}B params) on {args.topology}, mesh {describe(mesh)}, "
      f"batch {args.batch} x {args.seq}, {args.dtype}, accumulation {args.accumulation}, remat {args.remat}")
  print(
      f"  per device: state {state_bytes / gib:.3f} GiB; arguments {memory.argument_size_in_bytes / gib:.3f} GiB, "
      f"outputs {memory.output_size_in_bytes / gib:.3f} GiB, temporaries {memory.temp_size_in_bytes / gib:.3f} GiB, "
      f"peak estimate {(memory.argument_size_in_bytes + memory.temp_size_in_bytes) / gib:.3f} GiB")


if __name__ == "__main__":
  main()
