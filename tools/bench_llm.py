"""Our LLM beside PyTorch / `transformers` on the same weights: the training step and greedy decoding.

  python tools/bench_llm.py                      # Qwen2-shaped 40M model, 8 x 256 tokens, AdamW, 128 new tokens
  python tools/bench_llm.py --family llama --variants plain,scan,chunked --repeats 5
  python tools/bench_llm.py --dtype bfloat16 --skip-decode     # mixed precision on both sides

A random model is built by `transformers` (nothing is downloaded), saved as safetensors and loaded
into ours, so both sides run the same architecture and weights. Each repeat times our side and the
reference back to back (interleaved: the machine's speed drifts, ±15% here between runs, and a ratio
of neighbours is what stays put); medians are printed. Figures:

  train step   seconds per AdamW step on one batch (ours jitted and donated, PyTorch eager), their
               ratio (ours / PyTorch: below 1 is faster), tokens/s, achieved FLOP/s (MaxText's
               accounting, llm/flops.py) and MFU where the device's peak is known;
  decoding     greedy generation of --new-tokens after a --prompt-len prompt at batch 1 and --batch
               (ours: one jitted while loop with a KV cache; transformers: generate(do_sample=False)),
               and the speed-up (transformers / ours: above 1 is faster).

Variants of our training step: `plain` (layers unrolled), `scan` (scan_layers), `chunked` (the loss
over sequence chunks, no full [B, T, V] fp32 logits; --loss-chunk tokens per chunk), `blocked`
(llm.causal_block: attention in causal query blocks of --causal-block positions).
Needs torch (the test extra: pip install -e '.[test]').
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from asl_motiongpt.llm import generate as llm_generate
from asl_motiongpt.llm.hf import load_hf
from asl_motiongpt.llm.transformer import Transformer
from asl_motiongpt.llm import flops
from asl_motiongpt.train import llm_step


def reference_model(args):
  import torch
  from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config
  shape = dict(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
               num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
               max_position_embeddings=max(4096, args.seq + args.prompt_len + args.new_tokens),
               tie_word_embeddings=False)
  config = (Qwen2Config if args.family == "qwen2" else LlamaConfig)(**shape)
  torch.manual_seed(0)
  model = AutoModelForCausalLM.from_config(config,
                                           dtype=torch.float32,
                                           attn_implementation=args.torch_attention)
  model.generation_config.eos_token_id = None  # every run generates exactly --new-tokens
  model.generation_config.pad_token_id = 0
  return model


def median_of(times):
  return statistics.median(times)


def our_train_step(config, params, batch, loss_chunk: int):
  tx = optax.adamw(1e-4)
  model = Transformer(config)
  if loss_chunk:
    apply = lambda p, b: model.apply({"params": p}, b["input_ids"], return_hidden=True)
    head = lambda p, h: model.apply({"params": p}, h, method=Transformer.logits)
    step = llm_step.make_step(apply, tx, head_fn=head, loss_chunk=loss_chunk)
  else:
    step = llm_step.make_step(lambda p, b: model.apply({"params": p}, b["input_ids"]), tx)
  state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}
  return jax.jit(step, donate_argnums=0), state


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--family", default="qwen2", choices=("qwen2", "llama"))
  parser.add_argument("--vocab", type=int, default=16384)
  parser.add_argument("--hidden", type=int, default=512)
  parser.add_argument("--intermediate", type=int, default=1408)
  parser.add_argument("--layers", type=int, default=8)
  parser.add_argument("--heads", type=int, default=8)
  parser.add_argument("--kv-heads", type=int, default=4)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seq", type=int, default=256)
  parser.add_argument("--prompt-len", type=int, default=16)
  parser.add_argument("--new-tokens", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--steps", type=int, default=1, help="training steps per timed repeat")
  parser.add_argument("--variants", default="plain,scan,chunked,blocked")
  parser.add_argument("--loss-chunk", type=int, default=64)
  parser.add_argument("--causal-block", type=int, default=64, help="the `blocked` variant's llm.causal_block")
  parser.add_argument("--torch-attention", default="sdpa", choices=("sdpa", "eager"))
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                 help="training compute dtype of both sides: ours llm.dtype (parameters and Adam stay "
                      "float32), PyTorch under torch.autocast; decoding stays float32")
  parser.add_argument("--skip-train", action="store_true")
  parser.add_argument("--skip-decode", action="store_true")
  args = parser.parse_args()

  import torch
  reference = reference_model(args)
  with tempfile.TemporaryDirectory() as folder:
    reference.save_pretrained(folder)  # safetensors
    config, params = load_hf(folder)
    scan_config, scanned = load_hf(folder, scan_layers=True)
  n_params = sum(x.numel() for x in reference.parameters())
  print(
      f"{args.family}-shaped model, {n_params / 1e6:.1f}M parameters ({config.num_layers} layers, hidden "
      f"{config.hidden_size}, vocab {config.vocab_size}); {jax.devices()[0].device_kind} x{jax.device_count()}, "
      f"torch {torch.__version__} on {torch.get_num_threads()} threads ({args.torch_attention} attention), "
      f"jax {jax.__version__}")
  rng = np.random.default_rng(0)

  if not args.skip_train:
    ids = rng.integers(0, args.vocab, (args.batch, args.seq)).astype(np.int32)
    batch = {"input_ids": jnp.asarray(ids), "target_mask": jnp.ones(ids.shape, bool)}
    torch_ids = torch.from_numpy(ids.astype(np.int64))
    untrained = {name: value.clone() for name, value in reference.state_dict().items()}
    reference.train()
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-4, weight_decay=1e-4)

    def torch_step():
      with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
        loss = reference(input_ids=torch_ids, labels=torch_ids).loss
      loss.backward()
      optimizer.step()
      optimizer.zero_grad(set_to_none=True)
      return loss.item()

    variants = {}
    for name in args.variants.split(","):
      run_config, run_params = (scan_config, scanned) if name == "scan" else (config, params)
      if name == "blocked":
        run_config = run_config.replace(causal_block=args.causal_block)
      run_config = run_config.replace(dtype=args.dtype)
      step, state = our_train_step(run_config, jax.tree.map(jnp.array, run_params), batch,
                                   args.loss_chunk if name == "chunked" else 0)
      start = time.perf_counter()
      state, metrics = step(state, batch)
      first_loss = float(metrics["loss"])
      variants[name] = {"step": step, "state": state, "compile_s": time.perf_counter() - start, "times": [],
                        "first_loss": first_loss}
    torch_first = torch_step()
    torch_times = []
    for _ in range(args.repeats):
      for variant in variants.values():
        start = time.perf_counter()
        for _ in range(args.steps):
          variant["state"], metrics = variant["step"](variant["state"], batch)
        jax.block_until_ready(metrics["loss"])
        variant["times"].append((time.perf_counter() - start) / args.steps)
      start = time.perf_counter()
      for _ in range(args.steps):
        torch_step()
      torch_times.append((time.perf_counter() - start) / args.steps)
    torch_s = median_of(torch_times)
    tokens = args.batch * args.seq
    print(
        f"\ntrain step, batch {args.batch} x {args.seq} tokens, AdamW, {args.dtype} compute, medians of {args.repeats} "
        f"(x{args.steps} steps); first-step loss: PyTorch {torch_first:.4f}")
    print(f"  {'':18s} {'ms/step':>9s} {'ours/PyTorch':>13s} {'tokens/s':>10s} {'GFLOP/s':>9s} {'MFU':>6s}  "
          f"first loss, compile")
    per_token = flops.train_flops_per_token(config, args.seq)
    for name, variant in variants.items():
      seconds = median_of(variant["times"])
      util = flops.mfu(tokens / seconds, config, args.seq)
      print(f"  ours ({name:10s}) {seconds * 1e3:9.1f} {seconds / torch_s:13.2f} {tokens / seconds:10,.0f} "
            f"{per_token * tokens / seconds / 1e9:9.1f} {'n/a' if util is None else f'{util:.1%}':>6s}  "
            f"{variant['first_loss']:.4f}, {variant['compile_s']:.1f}s")
    print(f"  {'PyTorch eager':18s} {torch_s * 1e3:9.1f} {1.0:13.2f} {tokens / torch_s:10,.0f} "
          f"{per_token * tokens / torch_s / 1e9:9.1f}")
    del variants, optimizer
    reference.load_state_dict(untrained)  # decoding compares the same weights (ours were never updated)

  if not args.skip_decode:
    reference.eval()
    print(f"\ngreedy decoding, {args.prompt_len}-token prompts, {args.new_tokens} new tokens, medians of "
          f"{args.repeats}")
    print(
        f"  {'batch':>5s} {'ours ms':>9s} {'transformers ms':>16s} {'speed-up':>9s} {'ours tokens/s':>14s}  same tokens"
    )
    sampling = llm_generate.Sampling(max_new_tokens=args.new_tokens)
    for rows in sorted({1, args.batch}):
      prompts = rng.integers(1, args.vocab, (rows, args.prompt_len))
      torch_prompts = torch.from_numpy(prompts.astype(np.int64))

      def ours():
        return llm_generate.generate(config, params, prompts.tolist(), sampling)

      def theirs():
        with torch.no_grad():
          return reference.generate(torch_prompts,
                                    attention_mask=torch.ones_like(torch_prompts),
                                    do_sample=False,
                                    max_new_tokens=args.new_tokens,
                                    min_new_tokens=args.new_tokens)

      ours_out = ours()  # compiles
      theirs_out = theirs()[:, args.prompt_len:].tolist()
      same = sum(a == b for a, b in zip(ours_out, theirs_out))
      ours_times, theirs_times = [], []
      for _ in range(args.repeats):
        start = time.perf_counter()
        ours()
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs()
        theirs_times.append(time.perf_counter() - start)
      ours_s, theirs_s = median_of(ours_times), median_of(theirs_times)
      print(
          f"  {rows:5d} {ours_s * 1e3:9.1f} {theirs_s * 1e3:16.1f} {theirs_s / ours_s:9.2f} {rows * args.new_tokens / ours_s:14,.0f}  "
          f"{same}/{rows}")


if __name__ == "__main__":
  os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
  main()
