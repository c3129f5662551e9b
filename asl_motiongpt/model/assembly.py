"""Assembly: a chain config + its artifacts -> the motion-language system, with nothing allocated.

    artifacts = load_artifacts(config, workdir)        # I/O: asl_motiongpt/model/artifacts.py
    system = assemble(config, artifacts)                # pure
    logits = system.apply(params, batch)                # the training forward
    tokens = system.generate(params, prompts, ...)      # cached decoding: the same model code

`MotionSystem` holds the text tokenizer (with the motion tokens added), the motion vocabulary, the
gesture tokenizer with its codebook, one `MotionLanguageModel` and the parameter template (shapes,
dtypes and logical axes from `jax.eval_shape`). Loading Hugging Face weights, training a word
tokenizer, code caches and restoring checkpoints are I/O and stay outside: training
(asl_motiongpt/train/) and inference (asl_motiongpt/eval/) both start from here and never from
each other.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from asl_motiongpt.data.tasks import TaskFormatter
from asl_motiongpt.llm import LlmConfig
from asl_motiongpt.llm.generate import Sampling, generate
from asl_motiongpt.llm.transformer import REMAT_POLICIES
from asl_motiongpt.model.combinations import MotionLanguageModel
from asl_motiongpt.model.vocab import MotionVocab, add_to_tokenizer
from asl_motiongpt.parallel.run_once import run_once
from asl_motiongpt.gesture import GestureTokenizer

VOCAB_MULTIPLE = 128  # embedding rows padded to a multiple (shards evenly over 'tensor')


@dataclasses.dataclass
class Artifacts:
  """What an assembly reads from disk (loaded by model/artifacts.py)."""
  text_tokenizer: Any                     # a transformers tokenizer, without the motion tokens
  gesture: GestureTokenizer
  gesture_params: dict
  gesture_state: dict                     # codebooks and their EMA statistics
  base_llm: LlmConfig | None = None       # the Hugging Face LLM's config (config.llm.hf_dir), weights not loaded


@dataclasses.dataclass(frozen=True)
class SystemDecoder:
  """One decoding step of a MotionSystem's model (hashable: a static argument of the compiled loop)."""
  model: MotionLanguageModel

  def init_cache(self, batch: int, length: int):
    return self.model.init_cache(batch, length)

  def __call__(self, params, aux, ids_BT, positions_BT, kv_mask_BS, cache, cache_index):
    """(logits of the last position [B, 1, V], cache): a prompt's other positions are never projected
    (at a 152k vocabulary, batch 16 x 256 prompt tokens, their float32 logits were 2.4 GB)."""
    hidden, cache = self.model.apply({"params": params}, ids_BT, aux, positions=positions_BT, kv_mask=kv_mask_BS,
                                     cache=cache, cache_index=cache_index, return_hidden=True)
    return self.model.apply({"params": params}, hidden[:, -1:], method=type(self.model).logits), cache


@dataclasses.dataclass
class MotionSystem:
  config: Any
  text_tokenizer: Any                     # the text tokenizer with the motion tokens added
  vocab: MotionVocab
  formatter: TaskFormatter
  gesture: GestureTokenizer
  gesture_params: dict
  gesture_state: dict
  codebook: jax.Array                     # [K, C]: what the adapter reads for each motion code
  model: MotionLanguageModel
  llm_config: LlmConfig
  llm_b_config: LlmConfig | None
  param_template: Any                     # boxed ShapeDtypeStructs: shapes, dtypes, logical axes

  # -- the forward -------------------------------------------------------------------------------
  def init_args(self, batch: int = 1, length: int = 8) -> tuple:
    return jnp.zeros((batch, length), jnp.int32), self.codebook

  def apply(self, params, batch: dict, return_hidden: bool = False, dropout_rng=None):
    """Logits of a training/eval batch {input_ids, (positions, segment_ids) of packed rows}
    (return_hidden: the top LLM's final hidden states, which `head` projects to logits;
    dropout_rng: training with LoRA dropout, llm/lora.py)."""
    return self.model.apply({"params": params}, batch["input_ids"], self.codebook, positions=batch.get("positions"),
                            segment_ids=batch.get("segment_ids"), return_hidden=return_hidden,
                            rngs=None if dropout_rng is None else {"dropout": dropout_rng})

  def head(self, params, hidden):
    return self.model.apply({"params": params}, hidden, method=type(self.model).logits)

  def loss_functions(self, loss_chunk: int) -> dict:
    """The keyword arguments of train/llm_step.make_step / make_eval_step for a stage's loss_chunk."""
    if not loss_chunk:
      return {"apply_fn": self.apply}
    return {"apply_fn": functools.partial(self.apply, return_hidden=True), "head_fn": self.head,
            "loss_chunk": int(loss_chunk)}

  def init_params(self, rng) -> dict:
    """Fresh random parameters (unboxed). Compiled, like the training stage's initialisation under
    jit: eager and compiled random initialisers can differ in the last bit."""
    return run_once(lambda key: nn.meta.unbox(self.model.init(key, *self.init_args())["params"]), rng)

  def abstract_params(self) -> dict:
    return nn.meta.unbox(self.param_template)

  def param_shardings(self, mesh=None, rules=None) -> dict:
    """The parameters' shardings on `mesh` (default: this host's first device), from their logical
    axes, as training shards them."""
    from asl_motiongpt.parallel import DEFAULT_RULES, make_mesh
    from asl_motiongpt.parallel.sharding import abstract_with_specs, logical_to_shardings
    mesh = mesh or make_mesh({"data": 1}, devices=jax.devices()[:1])
    _, specs = abstract_with_specs(lambda: self.model.init(jax.random.PRNGKey(0), *self.init_args())["params"])
    return logical_to_shardings(specs, mesh, DEFAULT_RULES if rules is None else rules)

  # -- decoding ----------------------------------------------------------------------------------
  @property
  def eos_ids(self) -> tuple[int, ...]:
    """Ids that end a generation: <motion_end>, the tokenizer's end token and every end token of the
    checkpoint's config.json (Llama-3.1/3.2 list three: <|end_of_text|>, <|eom_id|>, <|eot_id|>)."""
    return tuple(dict.fromkeys((self.vocab.end_id, self.formatter.eos, *self.llm_config.eos_token_id)))

  @property
  def decoder(self) -> SystemDecoder:
    return SystemDecoder(self.model)

  def generate(self, params, prompts, constraint, max_new_tokens: int, sampling: Sampling | None = None,
               batch_sharding=None, rng=None):
    """New tokens per prompt (cut after the first end token), decoded by the training model
    (`batch_sharding`: rows over devices, called under the parameters' mesh; `rng`: for sampling)."""
    sampling = sampling or Sampling(max_new_tokens=max_new_tokens)
    return generate(self.llm_config, params, prompts, sampling, eos_ids=self.eos_ids,
                    pad_id=self.formatter.pad, constraint=constraint, decoder=self.decoder, aux=self.codebook,
                    batch_sharding=batch_sharding, rng=rng)


def llm_config_from_sizes(section, vocab_size: int, name: str = "llm") -> LlmConfig:
  """A randomly initialised LLM's config from a chain config's llm/llm_b section."""
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


def motion_vocab_rows(base_vocab_size: int, vocab: MotionVocab) -> int:
  """Embedding rows for text + motion tokens: the checkpoint's (padded) rows reused, padded to a multiple."""
  return -(-max(base_vocab_size, vocab.size) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def _run_options(section) -> dict:
  remat = section.get("remat", "none")
  if remat not in REMAT_POLICIES:
    raise ValueError(f"llm.remat={remat!r}; choose one of {REMAT_POLICIES}")
  lora = {"lora_rank": int(section.get("lora_rank", 0) or 0), "lora_alpha": float(section.get("lora_alpha", 16.0)),
          "lora_dropout": float(section.get("lora_dropout", 0.0) or 0.0),
          "lora_targets": tuple(section.get("lora_targets", LlmConfig.lora_targets))}
  return {"dtype": section.dtype, "remat_policy": remat, "scan_layers": bool(section.get("scan_layers", False)),
          "causal_block": int(section.get("causal_block", 0) or 0), "attention": _attention(section), **lora}


def _attention(section) -> str:
  from asl_motiongpt.llm.transformer import ATTENTION_KERNELS
  kernel = section.get("attention", "xla") or "xla"
  if kernel not in ATTENTION_KERNELS:
    raise ValueError(f"llm.attention={kernel!r}; choose one of {ATTENTION_KERNELS}")
  return kernel


def assemble(config, artifacts: Artifacts) -> MotionSystem:
  """The system a chain config describes, from its artifacts. Pure: reads no file, allocates no
  parameter (the template comes from jax.eval_shape)."""
  gesture = artifacts.gesture
  if gesture.spec.codes_per_step != 1:
    raise ValueError(f"a gesture tokenizer with {gesture.spec.codes_per_step} codes per time step (model.partwise=true "
                     "or model.residual_levels > 1) cannot feed the LLM stages: motion ids, adapter features and "
                     "decoding read one; train the tokenizer with partwise=false and residual_levels=1")
  tokenizer = copy.deepcopy(artifacts.text_tokenizer)
  codebook = jnp.asarray(artifacts.gesture_state["codebook"][0])
  vocab = MotionVocab(len(tokenizer), int(codebook.shape[0]))
  add_to_tokenizer(tokenizer, vocab)
  formatter = TaskFormatter(tokenizer, vocab, config.data.max_len, chat_template=config.data.get("chat_template", False))  # absent in older chains
  if artifacts.base_llm is not None:
    base = artifacts.base_llm
    llm_config = base.replace(vocab_size=motion_vocab_rows(base.vocab_size, vocab), **_run_options(config.llm))
  else:
    llm_config = llm_config_from_sizes(config.llm, motion_vocab_rows(0, vocab)).replace(**_run_options(config.llm))
  if config.combination == "llm_align" and llm_config.lora_rank:  # the motion rows train beside the adapters
    llm_config = llm_config.replace(lora_rows_from=vocab.first_code_id)
  llm_b_config = None
  if config.combination == "mlp_llm_llm":  # B is built from sizes (chain_config.validate refuses llm_b.hf_dir)
    llm_b_config = llm_config_from_sizes(config.llm_b, llm_config.vocab_size, "llm_b").replace(
        **_run_options(config.llm_b))
  model = MotionLanguageModel(config.combination, llm_config, llm_b=llm_b_config, motion_dim=int(codebook.shape[-1]),
                              adapter_hidden=config.adapter_hidden, first_code_id=vocab.first_code_id,
                              motion_end=vocab.size)
  template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32),
                                               codebook)["params"])
  return MotionSystem(config=config, text_tokenizer=tokenizer, vocab=vocab, formatter=formatter, gesture=gesture,
                      gesture_params=artifacts.gesture_params, gesture_state=artifacts.gesture_state,
                      codebook=codebook, model=model, llm_config=llm_config, llm_b_config=llm_b_config,
                      param_template=template)


def zeros_like_template(system: MotionSystem) -> dict:
  """Host zeros in the template's shapes (a restore target where shardings do not matter)."""
  return jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), system.abstract_params())
