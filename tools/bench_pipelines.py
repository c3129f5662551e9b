"""Input pipelines beside what the train steps consume (examples/s), on the embedded corpus.

  python tools/bench_pipelines.py

For the tokenizer stage (64-frame windows, demo model) and an LLM stage (the stage's task mixture,
tiny LLaMA, 250 tokens, padded and packed): how many examples per second the Grain pipeline
produces on one process, and how many the jitted train step consumes. Pipeline/step > 1 means the
step, not the data, sets the pace. Packing puts several examples in a row: the step's cost per row
is the same, its examples per second grow with the examples per row.
"""
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging as absl_logging

from asl_motiongpt.corpora.sample import write_sample_corpus
from asl_motiongpt.data.prepare import PrepareOptions, prepare
from asl_motiongpt.data.tasks import TASKS, TaskFormatter
from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
from asl_motiongpt.data.windows import window_dataset
from asl_motiongpt.llm import LlmConfig, Transformer
from asl_motiongpt.model import MotionVocab, add_to_tokenizer
from asl_motiongpt.gesture import GestureTokenizer, TokenizerSpec, VqConfig
from asl_motiongpt.gesture.train_step import make_step as make_tokenizer_step
from asl_motiongpt.train import llm_step


def rate(next_batch, batch_size, seconds=3.0):
  next_batch()
  count, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    out = next_batch()
    count += batch_size
  jax.block_until_ready(out)
  return count / (time.perf_counter() - start)


def main():
  absl_logging.set_verbosity(absl_logging.ERROR)
  with tempfile.TemporaryDirectory() as tmp:
    folders = write_sample_corpus(f"{tmp}/corpus")
    prepare(PrepareOptions(corpus="phoenix14t", src=folders["phoenix14t"], out=f"{tmp}/prepared"))
    # tokenizer stage
    B = 32
    it = iter(window_dataset(f"{tmp}/prepared", "phoenix14t", "train", frames=64, dims=3, batch_size=B, seed=0,
                             process_index=0, process_count=1))
    pipe = rate(lambda: next(it), B)
    tok = GestureTokenizer(TokenizerSpec(VqConfig(width=64, code_dim=64, codebook_size=256)))
    params, vq = tok.init(jax.random.PRNGKey(0))
    tx = optax.adamw(1e-3)
    holder = {"ts": {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params), "vq": vq,
                     "rng": jax.random.PRNGKey(0)}}
    step, batch = jax.jit(make_tokenizer_step(tok, tx), donate_argnums=0), next(it)

    def tok_step():
      holder["ts"], step_metrics = step(holder["ts"], batch)
      return step_metrics["loss"]
    consume = rate(tok_step, B)
    print(
        f"tokenizer windows  pipeline {pipe:9.0f} ex/s   train step {consume:9.0f} ex/s   ratio {pipe / consume:6.1f}"
    )
    workers = iter(
        window_dataset(f"{tmp}/prepared",
                       "phoenix14t",
                       "train",
                       frames=64,
                       dims=3,
                       batch_size=B,
                       seed=0,
                       process_index=0,
                       process_count=1,
                       worker_count=2))
    pipe = rate(lambda: next(workers), B, seconds=6.0)  # longer: the workers start up first
    print(f"  with 2 worker processes: pipeline {pipe:9.0f} ex/s   ratio {pipe / consume:6.1f}")
    # LLM stage: the stage's own pipeline (task_mixture), padded and packed
    from asl_motiongpt.data.task_data import read_task_examples, task_mixture
    from asl_motiongpt.data.prepare import load_prepared
    source = load_prepared(f"{tmp}/prepared", "phoenix14t", "train")
    records = [source[i] for i in range(len(source))]
    rng = np.random.default_rng(0)  # codes as long as the tokenizer would make them (frames / 4)
    codes = {r["id"].decode(): rng.integers(0, 256, -(-r["pose"].shape[0] // 4)) for r in records}
    examples = {"phoenix14t": read_task_examples(f"{tmp}/prepared", "phoenix14t", "train", codes)}
    tokenizer = train_word_tokenizer([e.text for e in examples["phoenix14t"]] +
                                     [e.gloss for e in examples["phoenix14t"]])
    vocab = MotionVocab(len(tokenizer), 256)
    add_to_tokenizer(tokenizer, vocab)
    fmt = TaskFormatter(tokenizer, vocab, 250)
    config = LlmConfig("llama", vocab_size=-(-vocab.size // 128) * 128, hidden_size=64, intermediate_size=128,
                       num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16)
    model = Transformer(config)
    lparams = jax.jit(lambda: __import__("flax").linen.meta.unbox(
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"]))()
    ltx = optax.adamw(1e-3)
    apply = lambda p, b: model.apply(
        {"params": p}, b["input_ids"], b.get("positions"), segment_ids=b.get("segment_ids"))
    lstep = jax.jit(llm_step.make_step(apply, ltx))
    B = 16
    for packing in (False, True):
      ds, _ = task_mixture(examples, {"phoenix14t": 1.0}, {t: 1.0 for t in TASKS}, fmt, seed=0, batch_size=B,
                           packing=packing)
      lit = iter(ds)
      sample = [next(lit) for _ in range(20)]
      per_row = np.mean([b["segment_ids"].max(axis=1).mean() for b in sample]) if packing else 1.0
      fill = np.mean([
          ((b["segment_ids"] > 0) if packing else (b["input_ids"] != fmt.pad)).mean() for b in sample
      ])
      pipe = rate(lambda: next(lit), B) * per_row
      lholder = {"s": {"step": jnp.zeros((), jnp.int32), "params": lparams, "opt_state": ltx.init(lparams)}}
      lbatch = sample[0]

      def llm_consume():
        lholder["s"], step_metrics = lstep(lholder["s"], lbatch)
        return step_metrics["loss"]
      consume = rate(llm_consume, B) * per_row
      name = "packed" if packing else "padded"
      print(f"LLM tasks, 250 tok, {name}: pipeline {pipe:9.0f} ex/s   train step {consume:9.0f} ex/s   ratio "
            f"{pipe / consume:6.1f}   ({per_row:.2f} examples per row, {fill:.0%} of tokens real)")


if __name__ == "__main__":
  main()
