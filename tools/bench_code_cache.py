"""Writing the code cache (frames/s): every prepared sequence encoded one call per sequence, as the
cache was written before, beside `GestureTokenizer.encode_many` (pieces of many sequences per batch),
on the embedded sample corpus with the tokenizer of configs/tokenizer.py (random weights: the work is
the same as trained ones'). Each run checks that both give the same codes.

  python tools/bench_code_cache.py [--small] [--repeats 3] [--frames-per-batch 4096]

Interleaved repeats; the ratio (batched frames/s over per-sequence frames/s) is the figure, absolute
rates move with the machine. The first pass of each compiles (reported apart).
"""
import argparse
import tempfile
import time

import jax
import numpy as np
from absl import logging as absl_logging

from asl_motiongpt.config_loader import load_config, shipped_config
from asl_motiongpt.corpora.sample import SMALL, SampleSizes, write_sample_corpus
from asl_motiongpt.chain_config import resolve_stage, tokenizer_stage
from asl_motiongpt.data.prepare import PrepareOptions, prepare
from asl_motiongpt.data.windows import full_sequences
from asl_motiongpt.model.artifacts import tokenizer_spec
from asl_motiongpt.gesture import GestureTokenizer


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--small", action="store_true")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--frames-per-batch", type=int, default=4096)
  parser.add_argument("--config",
                      default="tokenizer.py",
                      help="a shipped tokenizer config (tokenizer.py:tiny ...)")
  args = parser.parse_args()
  absl_logging.set_verbosity(absl_logging.ERROR)
  with tempfile.TemporaryDirectory() as tmp:
    folders = write_sample_corpus(f"{tmp}/corpus", SMALL if args.small else SampleSizes())
    prepare(PrepareOptions(corpus="phoenix14t", src=folders["phoenix14t"], out=f"{tmp}/prepared"))
    config = load_config(shipped_config(args.config), [f"--config.data.prepared={tmp}/prepared"])
    stage = resolve_stage(config, tokenizer_stage(config))
    tokenizer = GestureTokenizer(tokenizer_spec(stage))
    params, state = tokenizer.init(jax.random.PRNGKey(0))
    state = {**state, "codebook": jax.random.normal(jax.random.PRNGKey(1), state["codebook"].shape)}
    sequences = [(pose, mask) for _, pose, mask in full_sequences(f"{tmp}/prepared", "phoenix14t", "train",
                                                                 tokenizer.spec.dims)]
    frames = sum(len(p) for p, _ in sequences)
    print(f"{len(sequences)} sequences, {frames} frames (phoenix14t train of the sample corpus), "
          f"window {tokenizer.spec.window}, {jax.device_count()} {jax.devices()[0].platform} device(s)")

    def one_by_one():
      return [tokenizer.encode(params, state, p, m) for p, m in sequences]

    def batched():
      return list(tokenizer.encode_many(params, state, iter(sequences), frames_per_batch=args.frames_per_batch))

    timings = {"per sequence": [], "batched": []}
    for repeat in range(args.repeats + 1):  # the first pass compiles
      for name, run in (("per sequence", one_by_one), ("batched", batched)):
        start = time.perf_counter()
        codes = run()
        timings[name].append(time.perf_counter() - start)
        if name == "per sequence":
          reference = codes
        elif not all(np.array_equal(a, b) for a, b in zip(codes, reference)):
          raise SystemExit("batched codes differ from per-sequence codes")
    rates = {name: frames / float(np.median(seconds[1:])) for name, seconds in timings.items()}
    for name, seconds in timings.items():
      print(
          f"{name:13s} first pass (compiling) {seconds[0]:6.2f}s, then {rates[name]:9.0f} frames/s (median of {args.repeats})"
      )
    print(f"batched / per sequence: {rates['batched'] / rates['per sequence']:.2f}x (same codes)")


if __name__ == "__main__":
  main()
