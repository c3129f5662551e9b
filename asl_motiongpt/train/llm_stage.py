"""An LLM stage: train a model combination on a mixture of tasks over (text, motion codes) pairs.

Phases: text tokenizer + motion vocabulary -> examples (prepared texts + the tokenizer stage's
code cache) -> model and parameters (fresh, Hugging Face, or `init_from` the previous stage) ->
optimizer with frozen groups (optax.multi_transform + set_to_zero: frozen weights carry no Adam
state) -> sharded step -> the shared loop -> summary.
"""
from __future__ import annotations

import json
import os

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from asl_motiongpt.data.prepare import dataset_dir, load_prepared
from asl_motiongpt.data.tasks import TaskExample, TaskFormatter
from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
from asl_motiongpt.llm import LlmConfig, load_hf
from asl_motiongpt.model import MotionLanguageModel, MotionVocab, add_to_tokenizer, resize_for_motion, trainable_mask
from asl_motiongpt.parallel import describe, make_mesh
from asl_motiongpt.train import llm_step, loop
from asl_motiongpt.train import tokenizer_stage
from asl_motiongpt.train.checkpoints import StageCheckpoints
from asl_motiongpt.train.logging_utils import MetricsWriter


def _examples(config, split: str) -> list[TaskExample]:
  cache = os.path.join(dataset_dir(config.data.prepared, config.data.corpus), "codes", "tokenizer")
  codes = tokenizer_stage.load_code_cache(cache, split)
  source = load_prepared(config.data.prepared, config.data.corpus, split)
  out = []
  for i in range(len(source)):
    r = source[i]
    entry_id, text = r["id"].decode(), r["text"].decode()
    if text:
      out.append(TaskExample(entry_id, text, codes.get(entry_id, np.zeros((0, 1), np.int16)).reshape(-1)))
  return out


def text_tokenizer(config, workdir: str):
  """The LLM's tokenizer (from its HF folder), or a word tokenizer trained once on the corpus."""
  from transformers import AutoTokenizer
  if config.llm.hf_dir:
    return AutoTokenizer.from_pretrained(config.llm.hf_dir)
  path = os.path.join(workdir, "text_tokenizer")
  if os.path.exists(os.path.join(path, "tokenizer.json")):
    return AutoTokenizer.from_pretrained(path)
  from asl_motiongpt.data.tasks import PROMPTS
  texts = [e.text for s in ("train", config.data.eval_split) if s for e in _examples(config, s)]
  texts += [p for variants in PROMPTS.values() for p in variants]
  return train_word_tokenizer(texts, path if jax.process_index() == 0 else None)


def _llm_config(section, vocab_size: int) -> LlmConfig:
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
    self.llm_b_config = _llm_config(config.llm_b, self.llm_config.vocab_size) if config.combination == "mlp_llm_llm" else None
    self.model = MotionLanguageModel(config.combination, self.llm_config, llm_b=self.llm_b_config,
                                     motion_dim=self.codebook.shape[-1], adapter_hidden=config.adapter_hidden)

  def features(self, ids):
    """Adapter inputs: the VQ code embedding at each motion-code position (zeros elsewhere)."""
    code = jnp.clip(ids - self.vocab.first_code_id, 0, self.codebook.shape[0] - 1)
    is_code = (ids >= self.vocab.first_code_id) & (ids < self.vocab.first_code_id + self.codebook.shape[0])
    return jnp.where(is_code[..., None], self.codebook[code], 0.0)

  def apply(self, params, batch):
    ids = batch["input_ids"]
    return self.model.apply({"params": params}, ids, self.features(ids), batch["motion_mask"])

  def dataset(self, split: str, seed: int):
    examples = _examples(self.config, split)
    tasks = list(self.stage.tasks.keys())
    weights = np.asarray([self.stage.tasks[t] for t in tasks], np.float64)
    weights = weights / weights.sum()
    n, k = jax.process_count(), jax.process_index()

    def format_one(example, rng):
      task = tasks[int(rng.choice(len(tasks), p=weights))]
      out = self.formatter.format(example, task, rng)
      return {key: out[key] for key in ("input_ids", "target_mask", "motion_mask")}

    ds = grain.MapDataset.source(examples)[k::n].seed(seed).shuffle().repeat().random_map(format_one)
    return ds.to_iter_dataset().batch(self.stage.batch_size // n, drop_remainder=True)

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
    return optax.multi_transform({"train": train, "freeze": optax.set_to_zero()}, labels), mask


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


def load_stage_params(workdir: str, stage: str, like: dict) -> dict:
  """Final parameters of a finished stage (params only: `init_from`)."""
  import orbax.checkpoint as ocp
  checkpoints = StageCheckpoints(workdir, stage)
  step = checkpoints.latest_step()
  checkpoints.close()
  if step is None:
    raise FileNotFoundError(f"stage {stage!r} has no checkpoint in {workdir} (init_from)")
  restored = ocp.StandardCheckpointer().restore(os.path.join(workdir, stage, str(step), "state"))
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
  data_iter = iter(s.dataset("train", config.seed))
  example = {k: np.zeros((stage.batch_size // jax.process_count(), config.data.max_len),
                         np.int32 if k == "input_ids" else bool) for k in ("input_ids", "target_mask", "motion_mask")}
  step_fn = llm_step.compile_step(llm_step.make_step(s.apply, tx), mesh, shardings, example)
  checkpoints = StageCheckpoints(workdir, name, keep=config.train.keep_checkpoints)
  state = loop.restore_or_keep(checkpoints, state, shardings, data_iter, name)
  if jax.process_index() == 0:
    print(f"[{name}] {config.combination} on {s.llm_config.model_type} ({describe(mesh)}); tasks {dict(stage.tasks)}; "
          f"trainable {sum(int(np.prod(np.shape(p))) for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(mask)) if t):,}"
          f" of {sum(int(np.prod(np.shape(p))) for p in jax.tree.leaves(params)):,} parameters")
  writer = MetricsWriter(os.path.join(workdir, name, "logs"))
  meta = {"stage": name, "combination": config.combination, "init_from": stage.init_from}
  out = loop.run(stage=name, checkpoints=checkpoints, writer=writer, ts=state, step_fn=step_fn, data_iter=data_iter,
                 steps=stage.steps, log_every=config.train.log_every, checkpoint_every=config.train.checkpoint_every,
                 stop_after_steps=config.train.stop_after_steps, meta=meta,
                 units_per_step=stage.batch_size * config.data.max_len, unit="tokens",
                 postfix=lambda m: _mfu_postfix(m, s.llm_config, config.data.max_len))
  writer.close()
  if out.stopped is not None:
    return {"stopped": True, "step": int(out.state["step"])}
  losses = [h["loss"] for h in out.history]
  summary = {"stage": name, "step": int(out.state["step"]), "first_loss": losses[0] if losses else None,
             "last_loss": losses[-1] if losses else None, "done": True}
  if jax.process_index() == 0:
    with open(os.path.join(workdir, name, "summary.json"), "w", encoding="utf-8") as f:
      json.dump(summary, f, indent=1)
  return summary
