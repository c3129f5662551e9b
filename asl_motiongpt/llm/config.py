"""The decoder's configuration, read from a Hugging Face `config.json` (LLaMA 2/3/3.x, Qwen2/2.5, Qwen3).

Fields that would change the math and that we do not implement stop with an error that names
them, instead of being ignored (as Penzai's converter does): a model that loads must compute what
`transformers` computes.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "qwen3")
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


class UnsupportedConfigError(ValueError):
  pass


@dataclasses.dataclass(frozen=True)
class LlmConfig:
  model_type: str
  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  rms_norm_eps: float = 1e-6
  rope_theta: float = 10000.0
  rope_type: str = "default"
  rope_factor: float = 1.0
  rope_low_freq_factor: float = 1.0
  rope_high_freq_factor: float = 4.0
  rope_original_max_positions: int = 8192
  max_position_embeddings: int = 4096
  attention_bias: bool = False       # q/k/v bias (Qwen2: always)
  o_bias: bool = False
  mlp_bias: bool = False
  qk_norm: bool = False              # Qwen3: RMSNorm over head_dim on q and k
  tie_word_embeddings: bool = False
  bos_token_id: int | None = None
  eos_token_id: tuple[int, ...] = ()
  pad_token_id: int | None = None
  # Not from HF: how we run it.
  dtype: str = "float32"             # compute dtype (bfloat16 for training at scale)
  param_dtype: str = "float32"
  scan_layers: bool = False
  remat_policy: str = "none"         # none | full | dots_saveable | nothing_saveable
  causal_block: int = 0              # > 0: training attention in query blocks of this many positions (model.py)
  attention: str = "xla"  # xla | cudnn | auto: the kernel of cacheless attention (model.attention_kernel)
  lora_rank: int = 0                 # > 0: LoRA adapters on the projections lora_targets names (llm/lora.py)
  lora_alpha: float = 16.0
  lora_dropout: float = 0.0          # dropout on the adapters' input, in training steps only
  lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
  # > 0 (with LoRA): the embedding rows and output columns from this id on (a chain's motion tokens)
  # get a trainable delta of their own, the tables stay frozen (llm/lora.py)
  lora_rows_from: int = 0
  hf_extra: tuple[tuple[str, Any], ...] = ()  # untouched HF fields, written back by export

  @property
  def num_groups(self) -> int:
    return self.num_heads // self.num_kv_heads

  def replace(self, **changes) -> "LlmConfig":
    return dataclasses.replace(self, **changes)


# HF fields we read, or that do not affect the forward pass.
_HARMLESS = {
    "architectures", "transformers_version", "output_hidden_states", "return_dict", "dtype", "torch_dtype",
    "chunk_size_feed_forward", "is_encoder_decoder", "id2label", "label2id", "problem_type",
    "initializer_range", "use_cache", "attention_dropout", "_name_or_path", "output_attentions",
    "pretraining_tp", "max_window_layers", "tokenizer_class", "bos_token_id", "eos_token_id",
    "pad_token_id", "model_type", "vocab_size", "hidden_size", "intermediate_size",
    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
    "max_position_embeddings", "rms_norm_eps", "tie_word_embeddings", "rope_parameters",
    "rope_scaling", "rope_theta", "attention_bias", "mlp_bias", "use_sliding_window",
    "sliding_window", "layer_types", "tf_legacy_loss", "pruned_heads", "torchscript",
    "use_bfloat16", "task_specific_params", "finetuning_task", "tie_encoder_decoder",
    "cross_attention_hidden_size", "add_cross_attention", "is_decoder", "decoder_start_token_id",
    "sep_token_id", "prefix", "bad_words_ids", "quantization_config",
}


def _refuse(model_type: str, what: str) -> None:
  raise UnsupportedConfigError(f"{model_type}: {what} is not implemented; refusing to load a model "
                               "whose outputs would differ from transformers")


def _rope(hf: dict, model_type: str) -> dict:
  params = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
  theta = params.pop("rope_theta", hf.get("rope_theta", 10000.0))
  rope_type = params.pop("rope_type", params.pop("type", "default")) or "default"
  if rope_type not in SUPPORTED_ROPE_TYPES:
    _refuse(model_type, f"rope_type {rope_type!r}")
  partial = params.pop("partial_rotary_factor", 1.0)
  if partial != 1.0:
    _refuse(model_type, f"partial_rotary_factor={partial}")
  out = dict(rope_theta=float(theta), rope_type=rope_type)
  if rope_type in ("linear", "llama3"):
    out["rope_factor"] = float(params.pop("factor"))
  if rope_type == "llama3":
    out["rope_low_freq_factor"] = float(params.pop("low_freq_factor"))
    out["rope_high_freq_factor"] = float(params.pop("high_freq_factor"))
    out["rope_original_max_positions"] = int(params.pop("original_max_position_embeddings"))
  params.pop("attention_factor", None) if params.get("attention_factor") in (None, 1.0) else _refuse(
      model_type, f"attention_factor={params['attention_factor']}")
  if params:
    _refuse(model_type, f"rope parameters {sorted(params)}")
  return out


def from_hf_dict(hf: dict) -> LlmConfig:
  model_type = hf.get("model_type")
  if model_type not in SUPPORTED_MODEL_TYPES:
    raise UnsupportedConfigError(
        f"model_type {model_type!r} is not supported; supported: {SUPPORTED_MODEL_TYPES}")
  if hf.get("hidden_act", "silu") != "silu":
    _refuse(model_type, f"hidden_act={hf['hidden_act']!r}")
  if hf.get("use_sliding_window"):
    _refuse(model_type, "sliding-window attention")
  layer_types = hf.get("layer_types")
  if layer_types and any(t != "full_attention" for t in layer_types):
    _refuse(model_type, f"layer_types {sorted(set(layer_types))}")
  if hf.get("quantization_config"):
    _refuse(model_type, "quantization_config")
  unknown = sorted(k for k in hf if k not in _HARMLESS)
  # Anything about experts, sliding windows, or other attention variants changes the math.
  risky = [k for k in unknown if any(w in k for w in ("expert", "moe", "window", "rope", "rotary", "attn",
                                                        "attention", "norm", "logit", "softcap", "scal"))]
  if risky:
    _refuse(model_type, f"config fields {risky}")
  heads = hf["num_attention_heads"]
  eos = hf.get("eos_token_id")
  eos = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (eos,))
  return LlmConfig(model_type=model_type,
                   vocab_size=hf["vocab_size"],
                   hidden_size=hf["hidden_size"],
                   intermediate_size=hf["intermediate_size"],
                   num_layers=hf["num_hidden_layers"],
                   num_heads=heads,
                   num_kv_heads=hf.get("num_key_value_heads") or heads,
                   head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
                   rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
                   max_position_embeddings=hf.get("max_position_embeddings", 4096),
                   attention_bias=True if model_type == "qwen2" else bool(hf.get("attention_bias", False)),
                   o_bias=bool(hf.get("attention_bias", False)) if model_type != "qwen2" else False,
                   mlp_bias=bool(hf.get("mlp_bias", False)),
                   qk_norm=model_type == "qwen3",
                   tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
                   bos_token_id=hf.get("bos_token_id"),
                   eos_token_id=eos,
                   pad_token_id=hf.get("pad_token_id"),
                   hf_extra=tuple(sorted((k, v) for k, v in hf.items() if k in unknown)),
                   **_rope(hf, model_type))


def read_hf_config(hf_dir: str | os.PathLike) -> LlmConfig:
  path = os.path.join(hf_dir, "config.json")
  with open(path, encoding="utf-8") as handle:
    hf = json.load(handle)
  try:
    return from_hf_dict(hf)
  except UnsupportedConfigError as e:
    raise UnsupportedConfigError(f"{path}: {e}") from e
  except KeyError as e:
    raise UnsupportedConfigError(f"{path}: required field {e} missing") from e


def to_hf_dict(config: LlmConfig) -> dict:
  """The config.json `transformers` loads for this model."""
  arch = {
      "llama": "LlamaForCausalLM",
      "qwen2": "Qwen2ForCausalLM",
      "qwen3": "Qwen3ForCausalLM"
  }[config.model_type]
  rope = {"rope_type": config.rope_type, "rope_theta": config.rope_theta}
  if config.rope_type in ("linear", "llama3"):
    rope["factor"] = config.rope_factor
  if config.rope_type == "llama3":
    rope.update(low_freq_factor=config.rope_low_freq_factor, high_freq_factor=config.rope_high_freq_factor,
                original_max_position_embeddings=config.rope_original_max_positions)
  hf = dict(config.hf_extra)
  hf.update(
      architectures=[arch], model_type=config.model_type, vocab_size=config.vocab_size,
      hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
      num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
      num_key_value_heads=config.num_kv_heads, head_dim=config.head_dim, hidden_act="silu",
      rms_norm_eps=config.rms_norm_eps, max_position_embeddings=config.max_position_embeddings,
      tie_word_embeddings=config.tie_word_embeddings, rope_parameters=rope,
      bos_token_id=config.bos_token_id, pad_token_id=config.pad_token_id,
      eos_token_id=list(config.eos_token_id) if len(config.eos_token_id) != 1 else config.eos_token_id[0],
      torch_dtype="float32")
  if config.model_type != "qwen2":
    hf["attention_bias"] = config.attention_bias
  if config.model_type == "llama":
    hf["mlp_bias"] = config.mlp_bias
  return hf
