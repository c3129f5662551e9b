"""An LLM stage: train a model combination on a mixture of tasks over (text, motion codes) pairs.

What is its own (a `StageKind`, run by train/stage_driver.py): the assembled system (gesture
tokenizer, text tokenizer, model combination), its data (prepared corpora + the tokenizer stage's
codes, a weighted corpus and task mixture, padded or packed), the optimizer with frozen groups, how
its state starts (fresh under jit into its shardings, Hugging Face weights, or `init_from` the
previous stage), the held-out evaluation hook (loss, optionally decoded BLEU-4; best checkpoint,
patience) and its summary.
"""
from __future__ import annotations

import json

import jax
import numpy as np
import optax

from asl_motiongpt import checkpoints as ckpt
from asl_motiongpt.chain_config import resolve_stage, tokenizer_stage
from asl_motiongpt.data.code_cache import code_cache_complete, code_cache_dir, load_code_cache, write_code_cache
from asl_motiongpt.data.task_data import BATCH_KEYS, PACKED_KEYS, read_task_examples, task_mixture
from asl_motiongpt.data.tasks import PROMPTS, TaskExample
from asl_motiongpt.train.held_out_decoding import BEST_METRICS, HeldOutDecoding
from asl_motiongpt.train.held_out_pictures import HeldOutPicture
from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
from asl_motiongpt.model import TRAINABLE
from asl_motiongpt.model.assembly import MotionSystem, assemble
from asl_motiongpt.model.artifacts import load_artifacts, load_text_tokenizer, starting_params, text_tokenizer_dir
from asl_motiongpt.parallel import describe, mesh_from_config, rules_from_config
from asl_motiongpt.parallel.run_once import run_once
from asl_motiongpt.parallel.sharding import agree, barrier
from asl_motiongpt.llm import flops, lora
from asl_motiongpt.train import llm_step, stage_driver, step as step_compiler
from asl_motiongpt.train.hooks import HeldOutEvaluation
from asl_motiongpt.train.optimizer import Optimizer, make_optimizer, with_frozen, wrap_transformation


def mixture_weights(config, stage) -> dict[str, float]:
  """corpus -> weight of a stage's data: the stage's own mixture, else the chain's, else data.corpus."""
  return {k: float(v) for k, v in dict(stage.mixture or config.data.mixture or {config.data.corpus: 1.0}).items()}


def text_tokenizer(config, workdir: str):
  """The LLM's tokenizer (from its HF folder) or the chain's word tokenizer, as inference reads them;
  the first LLM stage of a tiny chain trains the word tokenizer once on every text, gloss and
  HamNoSys string of the chain's corpora and the task prompts, and writes it to the workdir."""
  try:
    return load_text_tokenizer(config, workdir)
  except FileNotFoundError:
    pass
  corpora = sorted({c for s in config.stages if s.kind == "llm" for c in mixture_weights(config, s)}
                   | {config.data.corpus})
  texts = []
  for corpus in corpora:
    for split in ("train", config.data.eval_split):
      if split:
        texts += [t for e in read_task_examples(config.data.prepared, corpus, split, {})
                  for t in (e.text, e.gloss, e.hamnosys) if t]
  texts += [p for variants in PROMPTS.values() for p in variants]
  # every process trains the same tokenizer from the same texts; one writes it
  return train_word_tokenizer(texts, text_tokenizer_dir(workdir) if jax.process_index() == 0 else None)


def trainable_patterns(config, stage) -> tuple[str, ...]:
  """Regexes over parameter paths that train in this stage: the stage's own, "motion_side"
  (only what represents motion: the adapter, or for llm_align the embedding/output rows of the
  motion tokens), or the combination's default groups."""
  patterns = tuple(stage.trainable)
  if patterns == ("motion_side",):
    return (r"^llm/embed_tokens/", r"^llm/lm_head/") if config.combination == "llm_align" else (r"^adapter/",)
  if patterns:
    return patterns
  adapted = lora_llms(config)
  if not adapted:
    return tuple(rf"^{g}/" for g in TRAINABLE[config.combination])
  # LoRA: an adapted LLM trains its adapters only (llm_align: and the motion tokens' rows, their own
  # parameters, llm/lora.py); the combination's other groups (MLP adapter, bridge, an LLM without
  # LoRA) train as usual
  groups = [rf"^{g}/" for g in TRAINABLE[config.combination] if g not in adapted]
  groups += [rf"^{name}/.*/lora_[ab]$" for name in adapted]
  if config.combination == "llm_align":
    groups += [rf"^llm/({lora.EMBED_ROWS}|{lora.HEAD_ROWS})$"]
  return tuple(groups)


def lora_llms(config) -> tuple[str, ...]:
  """The chain's LLMs trained through LoRA adapters (llm.lora_rank / llm_b.lora_rank > 0)."""
  names = ("llm", "llm_b") if config.combination == "mlp_llm_llm" else ("llm",)
  return tuple(n for n in names if int(config[n].get("lora_rank", 0) or 0) > 0)


def _motion_rows_only(template, first_code_id: int) -> optax.GradientTransformation:
  """Zeroes gradients of the text-token rows, so those rows (and their Adam moments) stay put."""
  llm = template["llm"]

  def row_mask(shape, axis):
    keep = (np.arange(shape[axis]) >= first_code_id).astype(np.float32)
    return keep[:, None] if axis == 0 else keep[None, :]

  masks = {"embed_tokens": {"embedding": row_mask(llm["embed_tokens"]["embedding"].shape, 0)}}
  if "lm_head" in llm:
    masks["lm_head"] = {"kernel": row_mask(llm["lm_head"]["kernel"].shape, 1)}

  def update(updates, state, params=None):
    llm_updates = dict(updates["llm"])
    for name, leaves in masks.items():
      llm_updates[name] = {k: llm_updates[name][k] * v for k, v in leaves.items()}
    return {**updates, "llm": llm_updates}, state

  return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


def stage_optimizer(system: MotionSystem, config, stage) -> tuple[Optimizer, dict]:
  """(optimizer with the stage's frozen groups, trainable mask) for a resolved stage."""
  tx = make_optimizer(stage)
  motion_rows_only = tuple(stage.trainable) == ("motion_side",)
  if motion_rows_only and config.combination == "llm_align":  # the text rows stay as pretrained
    rows_only = _motion_rows_only(system.abstract_params(), system.vocab.first_code_id)
    tx = wrap_transformation(tx, lambda inner: optax.chain(rows_only, inner))
  return with_frozen(tx, system.abstract_params(), trainable_patterns(config, stage))


class StageData:
  """The stage's examples: prepared corpora joined with the chain tokenizer's codes."""

  def __init__(self, system: MotionSystem, config, stage, workdir: str):
    self.system, self.config, self.stage, self.workdir = system, config, stage, workdir

  def codes(self, corpus: str, split: str) -> dict[str, np.ndarray]:
    """The chain tokenizer's codes of a corpus split; encoded now (once) for a corpus that the
    tokenizer stage did not cache (a corpus added to a mixture later)."""
    name = tokenizer_stage(self.config).name
    cache = code_cache_dir(self.workdir, name, corpus)
    if not agree(code_cache_complete(cache)):  # process 0's view: every process takes the same branch
      if jax.process_index() == 0:
        print(f"[{self.stage.name}] encoding {corpus} with the chain's gesture tokenizer -> {cache}")
        if corpus != self.config.data.corpus and tokenizer_stage(self.config).model.standardize:
          print(f"[{self.stage.name}] note: the tokenizer standardises with {self.config.data.corpus}'s statistics; "
                f"{corpus} is encoded with them too")
        write_code_cache(self.system.gesture, self.system.gesture_params, self.system.gesture_state,
                         self.config.data.prepared, corpus, self.system.gesture.spec.dims, cache)
      barrier(f"code cache {corpus}")
    return load_code_cache(cache, split)

  def examples(self, corpus: str, split: str) -> list[TaskExample]:
    return read_task_examples(self.config.data.prepared, corpus, split, self.codes(corpus, split))

  def dataset(self, split: str, seed: int, worker_count: int | None = None):
    """(batched iterator dataset of this process, MixtureReport) of the stage's corpus and task mixture."""
    weights = mixture_weights(self.config, self.stage)
    examples = {corpus: self.examples(corpus, split) for corpus in weights}
    return task_mixture(examples, weights, dict(self.stage.tasks), self.system.formatter, seed=seed,
                        batch_size=self.stage.batch_size // jax.process_count(), process_index=jax.process_index(),
                        process_count=jax.process_count(),
                        worker_count=self.config.data.worker_count if worker_count is None else worker_count,
                        packing=self.config.data.packing)


def initial_state(system: MotionSystem, config, stage, workdir: str, tx, shardings) -> dict:
  """{step, params, opt_state} on the mesh: `init_from` the previous stage's final parameters, else
  the Hugging Face LLM's weights (motion rows added), else fresh; each created in its shardings."""
  init_boxed = llm_step.boxed_state(lambda: system.model.init(jax.random.PRNGKey(stage.seed),
                                                              *system.init_args())["params"], tx)
  if not stage.init_from and not config.llm.hf_dir:
    return step_compiler.init_state(init_boxed, shardings)
  if stage.init_from:  # straight into this stage's shardings: each process reads only its shards
    like = jax.tree.map(lambda a, sharding: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
                        system.abstract_params(), shardings["params"])
    params = ckpt.restore_params(workdir, stage.init_from, like=like, checkpoint=stage.get("init_from_checkpoint", "last"))
  else:  # block by block from the safetensors into the shardings
    params = starting_params(system, config, stage.seed, shardings["params"])
  opt_state = run_once(tx.init, params, out_shardings=shardings["opt_state"])
  return {"step": jax.device_put(np.zeros((), np.int32), shardings["step"]), "params": params,
          "opt_state": opt_state}


def _held_out_loss(system, data: StageData, stage, eval_split: str, mesh, rules, param_shardings, example):
  """state -> {loss, tokens} on the first `eval_batches` batches of the eval split (the same
  batches every time: a fixed seed), with the stage's corpus and task mixture."""
  dataset, _ = data.dataset(eval_split, seed=stage.seed + 1, worker_count=0)  # a few batches: no workers
  iterator = iter(dataset)
  batches = [next(iterator) for _ in range(stage.train.eval_batches)]
  run = step_compiler.compile_eval(llm_step.make_eval_step(**system.loss_functions(stage.train.loss_chunk)), mesh,
                                   param_shardings, example, rules)

  def evaluate(state):
    totals = [jax.device_get(run(state["params"], b)) for b in batches]
    nll, tokens = sum(float(t["nll"]) for t in totals), sum(float(t["tokens"]) for t in totals)
    return {"loss": nll / max(tokens, 1.0), "tokens": tokens}

  return evaluate


def _held_out(system, config, stage, data: StageData, mesh, rules, param_shardings, example):
  """(The stage's evaluate(state) -> metrics, its held-out decoding), (None, None) without eval_every
  and an eval split: the held-out loss, and with train.eval_decode > 0 the BLEU-4s of that many
  decoded held-out examples (the HeldOutDecoding, else None)."""
  if stage.train.best_metric not in BEST_METRICS:
    raise ValueError(f"stage {stage.name!r}: train.best_metric {stage.train.best_metric!r}; choose one of {list(BEST_METRICS)}")
  if stage.train.best_metric != "loss" and not (stage.train.eval_decode and stage.train.eval_every and config.data.eval_split):
    raise ValueError(f"stage {stage.name!r}: train.best_metric={stage.train.best_metric} is computed by decoding held-out "
                     f"examples: set train.eval_decode (e.g. 16), train.eval_every and data.eval_split")
  if not (stage.train.eval_every and config.data.eval_split):
    return None, None
  loss = _held_out_loss(system, data, stage, config.data.eval_split, mesh, rules, param_shardings, example)
  if not stage.train.eval_decode:
    return loss, None
  decoded = HeldOutDecoding(system, config, stage.name, mesh, rules, int(stage.train.eval_decode))
  return (lambda state: {**loss(state), **decoded(state["params"])}), decoded


def _mfu_postfix(metrics: dict, llm_config, seq_len: int) -> dict:
  """MFU of the LLM part (MaxText accounting), shown where the device's peak is known."""
  value = flops.mfu(metrics["tokens_per_s"], llm_config, seq_len)
  return {} if value is None else {"mfu": f"{value:.1%}"}


def batch_example(config, stage) -> dict:
  """A process-local batch of zeros with the stage's batch layout (for shardings and compiling)."""
  return {k: np.zeros((stage.batch_size // jax.process_count(), config.data.max_len), np.int32)
          for k in (PACKED_KEYS if config.data.packing else BATCH_KEYS)}


class LlmStage(stage_driver.StageKind):
  """An LLM stage as the driver runs it. `workdir=None` with an assembled `system`: planning only
  (train --dry-run: no data, no weights)."""

  def __init__(self, config, stage, workdir: str | None = None, system: MotionSystem | None = None):
    self.config, self.stage, self.workdir = config, resolve_stage(config, stage), workdir
    if system is None:
      system = assemble(config, load_artifacts(config, workdir, text_tokenizer=text_tokenizer(config, workdir)))
    self.system = system
    self.stage_data = StageData(system, config, self.stage, workdir) if workdir is not None else None
    self.held_out: HeldOutEvaluation | None = None

  def program(self, devices=None) -> stage_driver.StageProgram:
    """Mesh (config.mesh, incl. dcn), axis rules (config.rules), optimizer (stage.optim) with frozen
    groups, and the step with gradient accumulation (stage.train.accumulation); remat and
    scan_layers are in the model already (config.llm, assembly). `devices`: all by default, or a
    planned topology (train --dry-run)."""
    system, config, stage = self.system, self.config, self.stage
    tx, mask = stage_optimizer(system, config, stage)
    init_boxed = llm_step.boxed_state(lambda: system.model.init(jax.random.PRNGKey(0), *system.init_args())["params"],
                                      tx)
    dropout = any(c is not None and c.lora_rank and c.lora_dropout for c in (system.llm_config, system.llm_b_config))
    step = llm_step.make_step(tx=tx, accumulation=int(stage.train.accumulation), trainable=mask,
                              dropout_seed=int(stage.seed) if dropout else None, **system.loss_functions(stage.train.loss_chunk))
    tokens = stage.batch_size * config.data.max_len
    model_flops = tokens * sum(flops.train_flops_per_token(c, config.data.max_len)
                               for c in (system.llm_config, system.llm_b_config) if c is not None)
    return stage_driver.StageProgram(mesh=mesh_from_config(stage.mesh, devices), rules=rules_from_config(config.rules),
                                     tx=tx, init_boxed=init_boxed, step=step, example=batch_example(config, stage),
                                     units_per_step=tokens, unit="tokens", trainable=mask, model_flops=model_flops)

  def data(self):
    train_data, report = self.stage_data.dataset("train", self.stage.seed)
    if jax.process_index() == 0:
      print(f"[{self.stage.name}] data: {report.summary(self.stage.batch_size)}")
    return train_data

  def start(self, compiled) -> dict:
    return initial_state(self.system, self.config, self.stage, self.workdir, compiled.program.tx, compiled.shardings)

  def describe(self, compiled) -> str:
    sizes = [(int(np.prod(p.shape)), t) for p, t in zip(jax.tree.leaves(self.system.abstract_params()),
                                                         jax.tree.leaves(compiled.program.trainable))]
    return (f"{self.config.combination} on {self.system.llm_config.model_type} ({describe(compiled.program.mesh)}); "
            f"tasks {dict(self.stage.tasks)}; trainable {sum(n for n, t in sizes if t):,} of "
            f"{sum(n for n, _ in sizes):,} parameters")

  def hooks(self, compiled, writer, resumed_meta) -> list:
    stage, program = self.stage, compiled.program
    evaluate, decoding = _held_out(self.system, self.config, stage, self.stage_data, program.mesh, program.rules,
                                   compiled.shardings["params"], program.example)
    if evaluate is None:
      return []
    pictures = None
    if stage.train.get("eval_pictures"):  # drawn after `evaluate`, from its decoding when it has one
      picture = HeldOutPicture(self.system, self.config, stage.name, program.mesh, program.rules, decoding)
      pictures = lambda state: picture(state["params"])
    self.held_out = HeldOutEvaluation(
        stage.name, evaluate, stage.train.eval_every, writer,
        keep_best=ckpt.BestCheckpoint(self.workdir, stage.name) if stage.train.keep_best else None,
        best=(resumed_meta or {}).get("best"), patience=stage.train.patience, metric=stage.train.best_metric,
        maximize=BEST_METRICS[stage.train.best_metric], pictures=pictures)
    return [self.held_out]

  def meta(self) -> dict:
    stage = self.stage
    return {"stage": stage.name, "combination": self.config.combination, "init_from": stage.init_from,
            "parent_checkpoint": ckpt.final_checkpoint(self.workdir, stage.init_from, stage.get("init_from_checkpoint", "last"))
            if stage.init_from else "",
            "config": json.loads(self.config.to_json())}  # to_json keeps the ConfigDicts inside lists

  def postfix(self, metrics: dict) -> dict:
    return _mfu_postfix(metrics, self.system.llm_config, self.config.data.max_len)

  def finish(self, result, compiled, writer) -> dict:
    losses = [h["loss"] for h in result.history]
    summary = {"first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None}
    if self.held_out is not None and self.held_out.evals:
      summary["eval_loss"] = {e["step"]: e["loss"] for e in self.held_out.evals}
    if self.held_out is not None and self.held_out.best is not None:
      summary["best"] = self.held_out.best
    if result.early_stopped is not None:
      summary["early_stopped"] = result.early_stopped
    return summary


def run(config, stage, workdir: str) -> dict:
  return stage_driver.run_stage(LlmStage(config, stage, workdir), workdir)
