"""An LLM stage: train a model combination on a mixture of tasks over (text, motion codes) pairs.

Phases: text tokenizer + motion vocabulary -> data (prepared corpora + the tokenizer stage's codes,
a weighted corpus and task mixture, padded or packed) -> model and parameters (fresh, Hugging Face,
or `init_from` the previous stage) -> optimizer with frozen groups (optax.partition + set_to_zero:
frozen weights carry no Adam state) -> sharded step -> the shared loop (held-out loss every N
steps) -> summary.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from asl_motiongpt.data.task_data import BATCH_KEYS, PACKED_KEYS, read_task_examples, task_mixture
from asl_motiongpt.data.tasks import TaskExample, TaskFormatter
from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
from asl_motiongpt.llm import LlmConfig, load_hf
from asl_motiongpt.model import (MotionLanguageModel, MotionVocab, add_to_tokenizer, code_features, resize_for_motion,
                                 trainable_mask)
from asl_motiongpt.parallel import describe, make_mesh
from asl_motiongpt.train import llm_step, loop
from asl_motiongpt.train import tokenizer_stage
from asl_motiongpt.train.checkpoints import StageCheckpoints
from asl_motiongpt.train.logging_utils import MetricsWriter


def mixture_weights(config, stage) -> dict[str, float]:
  """corpus -> weight of a stage's data: the stage's own mixture, else the chain's, else data.corpus."""
  return {k: float(v) for k, v in dict(stage.mixture or config.data.mixture or {config.data.corpus: 1.0}).items()}


def text_tokenizer(config, workdir: str):
  """The LLM's tokenizer (from its HF folder), or a word tokenizer trained once on every text,
  gloss and HamNoSys string of the chain's corpora and the task prompts."""
  from transformers import AutoTokenizer
  if config.llm.hf_dir:
    return AutoTokenizer.from_pretrained(config.llm.hf_dir)
  path = os.path.join(workdir, "text_tokenizer")
  if os.path.exists(os.path.join(path, "tokenizer.json")):
    return AutoTokenizer.from_pretrained(path)
  from asl_motiongpt.data.tasks import PROMPTS
  corpora = sorted({c for s in config.stages for c in mixture_weights(config, s)} | {config.data.corpus})
  texts = []
  for corpus in corpora:
    for split in ("train", config.data.eval_split):
      if split:
        texts += [t for e in read_task_examples(config.data.prepared, corpus, split, {})
                  for t in (e.text, e.gloss, e.hamnosys) if t]
  texts += [p for variants in PROMPTS.values() for p in variants]
  return train_word_tokenizer(texts, path if jax.process_index() == 0 else None)


def _llm_config(section, vocab_size: int, name: str = "llm") -> LlmConfig:
  if section.hidden_size is None and name == "llm_b":
    raise ValueError("config.llm_b: mlp_llm_llm's upper LLM is built from its sizes; set --config.llm_b.hidden_size, "
                     "intermediate_size, num_layers, num_heads and num_kv_heads")
  if section.hidden_size is None:
    raise ValueError(f"config.{name}: no Hugging Face folder (hf_dir) and no model sizes; the seed "
                     "preset starts from a pretrained LLaMA/Qwen: set --config.llm.hf_dir=<folder with config.json "
                     "and safetensors>, or use the ':tiny' preset of the config for a tiny random model")
  return LlmConfig(section.family, vocab_size=vocab_size, hidden_size=section.hidden_size,
                   intermediate_size=section.intermediate_size, num_layers=section.num_layers,
                   num_heads=section.num_heads, num_kv_heads=section.num_kv_heads,
                   head_dim=section.hidden_size // section.num_heads, qk_norm=section.family == "qwen3",
                   attention_bias=section.family == "qwen2", dtype=section.dtype)


class LlmStage:
  def __init__(self, config, stage, workdir: str):
    self.config, self.stage, self.workdir = config, stage, workdir
    tok_config = tokenizer_stage_config(config)
    self.vq_tokenizer, self.vq_params, self.vq_state = tokenizer_stage.load_trained(workdir, tok_config.stage,
                                                                                    tok_config)
    self.codebook = jnp.asarray(self.vq_state["codebook"][0])  # adapter features: code embeddings
    self.tokenizer = text_tokenizer(config, workdir)
    parts = len(self.vq_tokenizer.spec.parts)
    self.vocab = MotionVocab(len(self.tokenizer), tok_config.model.codebook_size * parts)
    add_to_tokenizer(self.tokenizer, self.vocab)
    self.formatter = TaskFormatter(self.tokenizer, self.vocab, config.data.max_len)
    if config.llm.hf_dir:
      base, base_params = load_hf(config.llm.hf_dir, dtype=config.llm.dtype)
      self.llm_config, self.hf_params = resize_for_motion(base, base_params, self.vocab)
    else:
      self.llm_config, self.hf_params = _llm_config(config.llm, -(-self.vocab.size // 128) * 128), None
    self.llm_b_config = None
    if config.combination == "mlp_llm_llm":
      if config.llm_b.hf_dir:
        # B's logits are over A's vocabulary (text + motion tokens); a pretrained B with its own
        # tokenizer would need a vocabulary mapping that does not exist yet: refuse, do not ignore
        raise ValueError("config.llm_b.hf_dir: loading the upper LLM of mlp_llm_llm from Hugging Face is not "
                         "supported (its output vocabulary must be the lower LLM's); leave it empty")
      self.llm_b_config = _llm_config(config.llm_b, self.llm_config.vocab_size, "llm_b")
    self.model = MotionLanguageModel(config.combination, self.llm_config, llm_b=self.llm_b_config,
                                     motion_dim=self.codebook.shape[-1], adapter_hidden=config.adapter_hidden)

  def features(self, ids):
    """Adapter inputs: the VQ code embedding at each motion-code position (zeros elsewhere)."""
    return code_features(ids, self.codebook, self.vocab.first_code_id)

  def apply(self, params, batch):
    ids = batch["input_ids"]
    return self.model.apply({"params": params}, ids, self.features(ids), batch["motion_mask"],
                            positions=batch.get("positions"), segment_ids=batch.get("segment_ids"))

  def codes(self, corpus: str, split: str) -> dict[str, np.ndarray]:
    """The chain tokenizer's codes of a corpus split; encoded now (once) for a corpus that the
    tokenizer stage did not cache (a corpus added to a mixture later)."""
    tok_config = tokenizer_stage_config(self.config)
    cache = tokenizer_stage.code_cache_dir(self.workdir, tok_config.stage, corpus)
    if not os.path.exists(cache):
      if jax.process_index() == 0:
        print(f"[{self.stage.name}] encoding {corpus} with the chain's gesture tokenizer -> {cache}")
        tokenizer_stage.write_code_cache(self.vq_tokenizer, self.vq_params, self.vq_state, self.config.data.prepared,
                                         corpus, tok_config.data.dims, cache)
      if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(f"code cache {corpus}")
    return tokenizer_stage.load_code_cache(cache, split)

  def examples(self, corpus: str, split: str) -> list[TaskExample]:
    return read_task_examples(self.config.data.prepared, corpus, split, self.codes(corpus, split))

  def dataset(self, split: str, seed: int, worker_count: int | None = None):
    """(batched iterator dataset of this process, MixtureReport) of the stage's corpus and task mixture;
    worker_count defaults to data.worker_count."""
    weights = mixture_weights(self.config, self.stage)
    examples = {corpus: self.examples(corpus, split) for corpus in weights}
    return task_mixture(examples, weights, dict(self.stage.tasks), self.formatter, seed=seed,
                        batch_size=self.stage.batch_size // jax.process_count(), process_index=jax.process_index(),
                        process_count=jax.process_count(),
                        worker_count=self.config.data.worker_count if worker_count is None else worker_count,
                        packing=self.config.data.packing)

  def fresh_params(self, rng) -> dict:
    """Randomly initialised parameters of the whole model (plain numpy arrays)."""
    ids = jnp.zeros((1, 8), jnp.int32)
    boxed = self.model.init(rng, ids, jnp.zeros((1, 8, self.codebook.shape[-1])), jnp.zeros((1, 8), bool))["params"]
    return jax.tree.map(np.asarray, jax.device_get(nn.meta.unbox(boxed)))

  def initial_params(self, rng):
    """Fresh (HF weights for the LLM when given) or the final params of `init_from`."""
    params = self.fresh_params(rng)
    if self.stage.init_from:
      params = load_stage_params(self.workdir, self.stage.init_from, params)
    elif self.hf_params is not None:
      params["llm"] = self.hf_params
    return params

  def _motion_rows_only(self, params) -> optax.GradientTransformation:
    """Zeroes gradients of the text-token rows, so those rows (and their Adam moments) stay put."""
    first = self.vocab.first_code_id
    llm = params["llm"]
    masks = {"embed_tokens": {"embedding": _row_mask(np.shape(llm["embed_tokens"]["embedding"]), 0, first)}}
    if "lm_head" in llm:
      masks["lm_head"] = {"kernel": _row_mask(np.shape(llm["lm_head"]["kernel"]), 1, first)}

    def update(updates, state, params=None):
      llm_updates = dict(updates["llm"])
      for name, leaves in masks.items():
        llm_updates[name] = {k: llm_updates[name][k] * v for k, v in leaves.items()}
      return {**updates, "llm": llm_updates}, state

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)

  def optimizer(self, params):
    s = self.stage
    schedule = optax.warmup_cosine_decay_schedule(0.0, s.lr, max(1, min(s.warmup_steps, s.steps // 10)),
                                                  max(s.steps, 2), end_value=s.lr * 0.1)
    train = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, b1=0.9, b2=0.99, weight_decay=0.0))
    patterns = tuple(s.trainable) if s.trainable else None
    if patterns == ("motion_side",):
      # Alignment: only what represents motion learns. With an adapter, the adapter; with the
      # extended vocabulary, the motion-token rows of the embedding and output matrices.
      if self.config.combination == "llm_align":
        patterns = (r"^llm/embed_tokens/", r"^llm/lm_head/")
        train = optax.chain(self._motion_rows_only(params), train)
      else:
        patterns = (r"^adapter/",)
    mask = trainable_mask(params, self.config.combination, patterns)
    labels = jax.tree.map(lambda t: "train" if t else "freeze", mask)
    return optax.partition({"train": train, "freeze": optax.set_to_zero()}, labels), mask


def _held_out_loss(s: LlmStage, mesh, param_shardings, example):
  """state -> {loss, tokens} on the first `eval_batches` batches of the eval split (the same
  batches every time: a fixed seed), with the stage's corpus and task mixture."""
  config = s.config
  data, _ = s.dataset(config.data.eval_split, seed=config.seed + 1, worker_count=0)  # a few batches: no workers
  iterator = iter(data)
  batches = [next(iterator) for _ in range(config.train.eval_batches)]
  run = llm_step.compile_eval(llm_step.make_eval_step(s.apply), mesh, param_shardings, example)

  def evaluate(state):
    totals = [jax.device_get(run(state["params"], b)) for b in batches]
    nll, tokens = sum(float(t["nll"]) for t in totals), sum(float(t["tokens"]) for t in totals)
    return {"loss": nll / max(tokens, 1.0), "tokens": tokens}

  return evaluate


def _row_mask(shape, axis: int, first: int):
  keep = (np.arange(shape[axis]) >= first).astype(np.float32)
  return keep[:, None] if axis == 0 else keep[None, :]


def _mfu_postfix(metrics: dict, llm_config, seq_len: int) -> dict:
  """MFU of the LLM part (MaxText accounting), shown where the device's peak is known."""
  from asl_motiongpt.parallel import flops
  value = flops.mfu(metrics["tokens_per_s"], llm_config, seq_len)
  return {} if value is None else {"mfu": f"{value:.1%}"}


def tokenizer_stage_config(config):
  """The tokenizer stage's config inside a chain config."""
  c = config.tokenizer
  c.data.prepared, c.data.corpus = config.data.prepared, config.data.corpus
  return c


def final_checkpoint(workdir: str, stage: str) -> str:
  """The folder of a stage's newest checkpoint (the parent a following stage starts from)."""
  checkpoints = StageCheckpoints(workdir, stage)
  step = checkpoints.latest_step()
  checkpoints.close()
  if step is None:
    raise FileNotFoundError(f"stage {stage!r} has no checkpoint in {workdir} (init_from)")
  return os.path.join(workdir, stage, str(step))


def load_stage_params(workdir: str, stage: str, like: dict) -> dict:
  """Final parameters of a finished stage (params only: `init_from`)."""
  import orbax.checkpoint as ocp
  restored = ocp.StandardCheckpointer().restore(os.path.join(final_checkpoint(workdir, stage), "state"))
  return jax.tree.map(lambda a, b: np.asarray(b, np.asarray(a).dtype), like, restored["params"])


def run(config, stage, workdir: str) -> dict:
  name = stage.name
  s = LlmStage(config, stage, workdir)
  mesh = make_mesh(dict(config.mesh))
  params = s.initial_params(jax.random.PRNGKey(config.seed))
  tx, mask = s.optimizer(params)
  state, shardings = llm_step.sharded_state(s.model, tx, mesh, (jnp.zeros((1, 8), jnp.int32),
                                                                jnp.zeros((1, 8, s.codebook.shape[-1])),
                                                                jnp.zeros((1, 8), bool)),
                                            jax.random.PRNGKey(config.seed), params=params)
  train_data, report = s.dataset("train", config.seed)
  data_iter = iter(train_data)
  example = {k: np.zeros((stage.batch_size // jax.process_count(), config.data.max_len),
                         bool if k.endswith("_mask") else np.int32)
             for k in (PACKED_KEYS if config.data.packing else BATCH_KEYS)}
  step_fn = llm_step.compile_step(llm_step.make_step(s.apply, tx), mesh, shardings, example)
  checkpoints = StageCheckpoints(workdir, name, keep=config.train.keep_checkpoints)
  state = loop.restore_or_keep(checkpoints, state, shardings, data_iter, name)
  if jax.process_index() == 0:
    sizes = [(int(np.prod(np.shape(p))), t) for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(mask))]
    print(f"[{name}] {config.combination} on {s.llm_config.model_type} ({describe(mesh)}); tasks {dict(stage.tasks)}; "
          f"trainable {sum(n for n, t in sizes if t):,} of {sum(n for n, _ in sizes):,} parameters")
    print(f"[{name}] data: {report.summary()}")
  evaluate = _held_out_loss(s, mesh, shardings["params"], example) if config.train.eval_every and \
      config.data.eval_split else None
  writer = MetricsWriter(os.path.join(workdir, name, "logs"))
  meta = {"stage": name, "combination": config.combination, "init_from": stage.init_from,
          "parent_checkpoint": final_checkpoint(workdir, stage.init_from) if stage.init_from else "",
          "config": json.loads(config.to_json())}  # to_dict keeps the ConfigDicts inside lists
  out = loop.run(stage=name, checkpoints=checkpoints, writer=writer, ts=state, step_fn=step_fn, data_iter=data_iter,
                 steps=stage.steps, log_every=config.train.log_every, checkpoint_every=config.train.checkpoint_every,
                 stop_after_steps=config.train.stop_after_steps, meta=meta,
                 units_per_step=stage.batch_size * config.data.max_len, unit="tokens",
                 postfix=lambda m: _mfu_postfix(m, s.llm_config, config.data.max_len),
                 evaluate=evaluate, eval_every=config.train.eval_every)
  writer.close()
  if out.stopped is not None:
    return {"stopped": True, "step": int(out.state["step"])}
  losses = [h["loss"] for h in out.history]
  summary = {"stage": name, "step": int(out.state["step"]), "first_loss": losses[0] if losses else None,
             "last_loss": losses[-1] if losses else None, "done": True}
  if out.evals:
    summary["eval_loss"] = {e["step"]: e["loss"] for e in out.evals}
  if jax.process_index() == 0:
    with open(os.path.join(workdir, name, "summary.json"), "w", encoding="utf-8") as f:
      json.dump(summary, f, indent=1)
  return summary
