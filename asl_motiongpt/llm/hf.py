"""Hugging Face checkpoints (safetensors only; never pickles) <-> our parameter tree.

    config, params = load_hf("path/to/hf_model")     # single file or sharded with an index
    export_hf(config, params, "out_dir")             # transformers.AutoModelForCausalLM loads it

Only transposes and renames: our decoder uses HF's rotate-half RoPE layout. Works with scanned
(stacked) layers too.
"""
from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from asl_motiongpt.llm.config import LlmConfig, read_hf_config, to_hf_dict

# Buffers some checkpoints carry that are recomputed, not learned.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def _layer_map(config: LlmConfig) -> dict[str, tuple[tuple[str, ...], bool]]:
  """HF name (within a layer) -> (our path within a layer, transpose?)."""
  m = {"input_layernorm.weight": (("input_norm", "scale"), False),
       "post_attention_layernorm.weight": (("post_attention_norm", "scale"), False)}
  for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
    m[f"self_attn.{proj}.weight"] = (("attn", proj, "kernel"), True)
  for proj in ("q_proj", "k_proj", "v_proj"):
    if config.attention_bias:
      m[f"self_attn.{proj}.bias"] = (("attn", proj, "bias"), False)
  if config.o_bias:
    m["self_attn.o_proj.bias"] = (("attn", "o_proj", "bias"), False)
  if config.qk_norm:
    m["self_attn.q_norm.weight"] = (("attn", "q_norm", "scale"), False)
    m["self_attn.k_norm.weight"] = (("attn", "k_norm", "scale"), False)
  for proj in ("gate_proj", "up_proj", "down_proj"):
    m[f"mlp.{proj}.weight"] = (("mlp", proj, "kernel"), True)
    if config.mlp_bias:
      m[f"mlp.{proj}.bias"] = (("mlp", proj, "bias"), False)
  return m


def _global_map(config: LlmConfig) -> dict[str, tuple[tuple[str, ...], bool]]:
  m = {"model.embed_tokens.weight": (("embed_tokens", "embedding"), False),
       "model.norm.weight": (("final_norm", "scale"), False)}
  if not config.tie_word_embeddings:
    m["lm_head.weight"] = (("lm_head", "kernel"), True)
  return m


def _set(tree: dict, path: tuple[str, ...], value) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def _get(tree: dict, path: tuple[str, ...]):
  for key in path:
    tree = tree[key]
  return tree


def _tensor_files(hf_dir: str) -> dict[str, str]:
  """tensor name -> safetensors file holding it."""
  index = os.path.join(hf_dir, "model.safetensors.index.json")
  if os.path.exists(index):
    with open(index, encoding="utf-8") as f:
      weight_map = json.load(f)["weight_map"]
    return {name: os.path.join(hf_dir, file) for name, file in weight_map.items()}
  single = os.path.join(hf_dir, "model.safetensors")
  if not os.path.exists(single):
    found = sorted(os.listdir(hf_dir)) if os.path.isdir(hf_dir) else []
    raise FileNotFoundError(f"{hf_dir}: no model.safetensors or model.safetensors.index.json "
                            f"(we load safetensors only, never pickled .bin files); found {found}")
  with safe_open(single, framework="numpy") as f:
    return {name: single for name in f.keys()}


def _read_tensors(files: dict[str, str]) -> dict[str, np.ndarray]:
  by_file: dict[str, list[str]] = {}
  for name, path in files.items():
    by_file.setdefault(path, []).append(name)
  out = {}
  for path, names in by_file.items():
    # framework="flax" reads bfloat16 too; we convert to numpy right away.
    with safe_open(path, framework="flax") as f:
      for name in names:
        out[name] = np.asarray(f.get_tensor(name))
  return out


def params_from_state_dict(config: LlmConfig, tensors: dict[str, np.ndarray], source: str = "") -> dict:
  dtype = np.dtype(config.param_dtype) if config.param_dtype != "bfloat16" else jax.numpy.bfloat16
  tensors = {k: v for k, v in tensors.items() if not k.endswith(_IGNORED_SUFFIXES)}
  if config.tie_word_embeddings:
    tensors.pop("lm_head.weight", None)
  params: dict = {}
  used = set()
  layer_map = _layer_map(config)

  def take(name, path, transpose):
    if name not in tensors:
      raise KeyError(f"{source}: tensor {name!r} missing from the checkpoint")
    value = tensors[name].T if transpose else tensors[name]
    used.add(name)
    return np.asarray(value, dtype)

  for name, (path, transpose) in _global_map(config).items():
    _set(params, path, take(name, path, transpose))
  layers = []
  for i in range(config.num_layers):
    layer: dict = {}
    for hf_name, (path, transpose) in layer_map.items():
      _set(layer, path, take(f"model.layers.{i}.{hf_name}", path, transpose))
    layers.append(layer)
  if config.scan_layers:  # one tree, every leaf stacked along a leading layer axis
    params["layers"] = jax.tree.map(lambda *xs: np.stack(xs), *layers)
  else:
    params.update({f"layers_{i}": layer for i, layer in enumerate(layers)})
  unused = sorted(set(tensors) - used)
  if unused:
    raise ValueError(f"{source}: checkpoint tensors we do not know how to use: {unused[:8]}"
                     f"{' ...' if len(unused) > 8 else ''}")
  return params


def load_hf(hf_dir: str | os.PathLike, **overrides) -> tuple[LlmConfig, dict]:
  """(config, params) from a Hugging Face model folder; `overrides` set run options (dtype, scan_layers...)."""
  hf_dir = str(hf_dir)
  config = read_hf_config(hf_dir).replace(**overrides)
  tensors = _read_tensors(_tensor_files(hf_dir))
  return config, params_from_state_dict(config, tensors, source=hf_dir)


def state_dict_from_params(config: LlmConfig, params: dict) -> dict[str, np.ndarray]:
  params = jax.device_get(params)
  out = {}
  for name, (path, transpose) in _global_map(config).items():
    value = np.asarray(_get(params, path), np.float32)
    out[name] = np.ascontiguousarray(value.T if transpose else value)
  for i in range(config.num_layers):
    for hf_name, (path, transpose) in _layer_map(config).items():
      if config.scan_layers:
        value = np.asarray(_get(params["layers"], path)[i], np.float32)
      else:
        value = np.asarray(_get(params[f"layers_{i}"], path), np.float32)
      out[f"model.layers.{i}.{hf_name}"] = np.ascontiguousarray(value.T if transpose else value)
  return out


def export_hf(config: LlmConfig, params: dict, out_dir: str | os.PathLike, tokenizer_dir: str | None = None,
              max_shard_bytes: int = 2 << 30) -> None:
  """Writes config.json + safetensors (sharded with an index above `max_shard_bytes`), float32."""
  out_dir = str(out_dir)
  os.makedirs(out_dir, exist_ok=True)
  tensors = state_dict_from_params(config, params)
  vocab = tensors["model.embed_tokens.weight"].shape[0]
  hf = to_hf_dict(config.replace(vocab_size=vocab))
  shards, current, size = [], {}, 0
  for name, value in tensors.items():
    if current and size + value.nbytes > max_shard_bytes:
      shards.append(current)
      current, size = {}, 0
    current[name] = value
    size += value.nbytes
  shards.append(current)
  if len(shards) == 1:
    save_file(shards[0], os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
  else:
    weight_map = {}
    for k, shard in enumerate(shards):
      file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
      save_file(shard, os.path.join(out_dir, file), metadata={"format": "pt"})
      weight_map.update({name: file for name in shard})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
      json.dump({"metadata": {"total_size": sum(v.nbytes for v in tensors.values())}, "weight_map": weight_map}, f, indent=1)
  with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
    json.dump(hf, f, indent=1)
  if tokenizer_dir:
    for name in os.listdir(tokenizer_dir):
      if name.startswith(("tokenizer", "special_tokens_map", "vocab", "merges", "added_tokens")):
        shutil.copy(os.path.join(tokenizer_dir, name), out_dir)
