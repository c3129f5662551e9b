#!/usr/bin/env bash
# Issue 15's GPU checks as one short run on an NVIDIA H100/H200 machine (the device tool's `run`,
# one call, timeout ~540 s; nothing here needs the network):
#
#   bash tools/gpu_check.sh 2>&1 | tee $OUT/gpu_check.log
#
# Uses that machine's own Python (JAX with CUDA, flax, optax, orbax, torch, transformers are there;
# the LLM modules and these checks need nothing else), this checkout on PYTHONPATH. It prints:
#   1. the cuDNN attention path against ours (tests/test_llm_parity.py, skipped on machines without a GPU),
#   2. the 1.24B LLaMA preset's train step, bf16, 256 x 256 tokens in 4 microbatches, with our
#      attention and with cuDNN flash attention: ms/step, tokens/s and MFU (parallel/flops.py).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
# float32 parity needs full-precision matmuls (a GPU's default is TF32)
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 150 python3 -m pytest -n0 -q -p no:cacheprovider \
    tests/test_llm_parity.py -rs -k "kernel_choice or causal_query or logits_match_transformers"
for attention in xla cudnn; do
  timeout 150 python3 tools/bench_llm_step.py --preset llama-1b --batch 256 --seq 256 --dtype bfloat16 \
      --accumulation 4 --attention "$attention" --steps 5
done
