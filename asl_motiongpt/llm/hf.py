"""Hugging Face checkpoints (safetensors only; never pickles) <-> our parameter tree.

    config, params = load_hf("path/to/hf_model")     # single file or sharded with an index
    params = load_hf_sharded("path", config, like)   # each device's block read alone, into its sharding
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
  names = {"input_layernorm.weight": (("input_norm", "scale"), False),
       "post_attention_layernorm.weight": (("post_attention_norm", "scale"), False)}
  for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
    names[f"self_attn.{proj}.weight"] = (("attn", proj, "kernel"), True)
  for proj in ("q_proj", "k_proj", "v_proj"):
    if config.attention_bias:
      names[f"self_attn.{proj}.bias"] = (("attn", proj, "bias"), False)
  if config.o_bias:
    names["self_attn.o_proj.bias"] = (("attn", "o_proj", "bias"), False)
  if config.qk_norm:
    names["self_attn.q_norm.weight"] = (("attn", "q_norm", "scale"), False)
    names["self_attn.k_norm.weight"] = (("attn", "k_norm", "scale"), False)
  for proj in ("gate_proj", "up_proj", "down_proj"):
    names[f"mlp.{proj}.weight"] = (("mlp", proj, "kernel"), True)
    if config.mlp_bias:
      names[f"mlp.{proj}.bias"] = (("mlp", proj, "bias"), False)
  return names


def _global_map(config: LlmConfig) -> dict[str, tuple[tuple[str, ...], bool]]:
  names = {"model.embed_tokens.weight": (("embed_tokens", "embedding"), False),
       "model.norm.weight": (("final_norm", "scale"), False)}
  if not config.tie_word_embeddings:
    names["lm_head.weight"] = (("lm_head", "kernel"), True)
  return names


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
    with open(index, encoding="utf-8") as handle:
      weight_map = json.load(handle)["weight_map"]
    return {name: os.path.join(hf_dir, file) for name, file in weight_map.items()}
  single = os.path.join(hf_dir, "model.safetensors")
  if not os.path.exists(single):
    found = sorted(os.listdir(hf_dir)) if os.path.isdir(hf_dir) else []
    raise FileNotFoundError(f"{hf_dir}: no model.safetensors or model.safetensors.index.json "
                            f"(we load safetensors only, never pickled .bin files); found {found}")
  with safe_open(single, framework="numpy") as handle:
    return {name: single for name in handle.keys()}


def _read_tensors(files: dict[str, str]) -> dict[str, np.ndarray]:
  import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
  by_file: dict[str, list[str]] = {}
  for name, path in files.items():
    by_file.setdefault(path, []).append(name)
  out = {}
  for path, names in by_file.items():
    # numpy (bfloat16 through ml_dtypes): host arrays, never staged on a device
    with safe_open(path, framework="numpy") as handle:
      for name in names:
        out[name] = handle.get_tensor(name)
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
  for layer_index in range(config.num_layers):
    layer: dict = {}
    for hf_name, (path, transpose) in layer_map.items():
      _set(layer, path, take(f"model.layers.{layer_index}.{hf_name}", path, transpose))
    layers.append(layer)
  if config.scan_layers:  # one tree, every leaf stacked along a leading layer axis
    params["layers"] = jax.tree.map(lambda *xs: np.stack(xs), *layers)
  else:
    params.update({f"layers_{layer_index}": layer for layer_index, layer in enumerate(layers)})
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


def _sources(config: LlmConfig) -> dict[tuple[str, ...], tuple[list[str], bool]]:
  """Our parameter path -> (HF tensor names, one per stacked layer or a single one; transpose?)."""
  out = {path: ([name], transpose) for name, (path, transpose) in _global_map(config).items()}
  for hf_name, (path, transpose) in _layer_map(config).items():
    names = [f"model.layers.{i}.{hf_name}" for i in range(config.num_layers)]
    if config.scan_layers:
      out[("layers",) + path] = (names, transpose)
    else:
      out.update({(f"layers_{i}",) + path: ([name], transpose) for i, name in enumerate(names)})
  return out


def new_row_values(text_rows: np.ndarray, axis: int) -> np.ndarray:
  """Where every vocabulary row beyond the text tokens (motion tokens, padding) starts: the mean of
  the text rows along the vocabulary `axis`, a neutral point the model can move from. The one
  definition (load_hf_sharded by slabs, model/vocab.resize_for_motion on whole host arrays)."""
  return text_rows.mean(axis=axis, keepdims=True)


def load_hf_sharded(hf_dir: str | os.PathLike,
                    config: LlmConfig,
                    like: dict,
                    text_rows: int | None = None) -> dict:
  """The LLM parameters of a Hugging Face folder, each array created in its sharding: every local
  device's block is read from the safetensors file alone (a slice, transposed when our layout is)
  and placed before the next is read, so a tensor is whole on the host only when a device holds it
  whole. `like`: our parameter tree as ShapeDtypeStructs with shardings (dtypes and
  shapes, e.g. from the assembly's template). `text_rows`: the embedding and output rows from that
  row on (motion tokens, padding up to `like`'s rows) start at the mean of the text rows, as
  `model.vocab.resize_for_motion` does on the host."""
  import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy: bf16 checkpoints read as numpy)
  hf_dir = str(hf_dir)
  files = _tensor_files(hf_dir)
  handles: dict[str, object] = {}

  def tensor(name: str):
    if name not in files:
      raise KeyError(f"{hf_dir}: tensor {name!r} missing from the checkpoint")
    path = files[name]
    if path not in handles:
      handles[path] = safe_open(path, framework="numpy")
    return handles[path].get_slice(name)

  def read(name: str, index: tuple, transpose: bool, dtype) -> np.ndarray:
    block = tensor(name)[index[::-1] if transpose else index]
    return np.ascontiguousarray(block.T if transpose else block, dtype)  # contiguous: sums as the host path

  sources = _sources(config)
  grown = {("embed_tokens", "embedding"): 0, ("lm_head", "kernel"): 1}  # the vocabulary axis in our layout
  means: dict = {}

  def column_mean(name, path, axis, other: slice, transpose, dtype):
    """Mean over the text rows of the columns `other` (a slab of the matrix, read once per slab)."""
    key = (path, other.start, other.stop)
    if key not in means:
      index = (slice(0, text_rows), other) if axis == 0 else (other, slice(0, text_rows))
      means[key] = new_row_values(read(name, index, transpose, dtype), axis)
    return means[key]

  def build(path: tuple[str, ...], leaf):
    names, transpose = sources[path]
    dtype = np.dtype(leaf.dtype)

    def block(index):
      index = tuple(slice(*i.indices(n)) for i, n in zip(index, leaf.shape))
      axis = grown.get(path)
      if axis is not None and text_rows is not None:
        rows, other = index[axis], index[1 - axis]
        out = np.empty(tuple(i.stop - i.start for i in index), dtype)
        real = slice(rows.start, min(rows.stop, text_rows))
        mine = [slice(None), slice(None)]
        if real.stop > real.start:
          mine[axis] = slice(0, real.stop - real.start)
          read_index = (real, other) if axis == 0 else (other, real)
          out[tuple(mine)] = read(names[0], read_index, transpose, dtype)
        if rows.stop > max(rows.start, text_rows):
          mine[axis] = slice(max(rows.start, text_rows) - rows.start, None)
          out[tuple(mine)] = column_mean(names[0], path, axis, other, transpose, dtype)
        return out
      if len(names) > 1:  # stacked layers: the layer axis first
        return np.stack(
            [read(names[i], index[1:], transpose, dtype) for i in range(index[0].start, index[0].stop)])
      return read(names[0], index, transpose, dtype)

    # One device's block at a time (make_array_from_callback would hold every local device's
    # block at once: the whole array on a one-host mesh).
    # Each transfer is awaited, so its host buffer is freed before the next block is read.
    arrays = [jax.device_put(block(index), device).block_until_ready()
              for device, index in leaf.sharding.addressable_devices_indices_map(leaf.shape).items()]
    return jax.make_array_from_single_device_arrays(leaf.shape, leaf.sharding, arrays)

  def walk(tree, prefix=()):
    return {
        k: walk(v, prefix + (k,)) if isinstance(v, dict) else build(prefix + (k,), v) for k, v in tree.items()
    }

  params = walk(like)
  known = {n for names, _ in sources.values() for n in names}
  if config.tie_word_embeddings:
    known.add("lm_head.weight")
  unused = sorted(n for n in files if n not in known and not n.endswith(_IGNORED_SUFFIXES))
  if unused:
    raise ValueError(f"{hf_dir}: checkpoint tensors we do not know how to use: {unused[:8]}"
                     f"{' ...' if len(unused) > 8 else ''}")
  return params


def state_dict_from_params(config: LlmConfig, params: dict) -> dict[str, np.ndarray]:
  params = jax.device_get(params)
  out = {}
  for name, (path, transpose) in _global_map(config).items():
    value = np.asarray(_get(params, path), np.float32)
    out[name] = np.ascontiguousarray(value.T if transpose else value)
  for layer_index in range(config.num_layers):
    for hf_name, (path, transpose) in _layer_map(config).items():
      if config.scan_layers:
        value = np.asarray(_get(params["layers"], path)[layer_index], np.float32)
      else:
        value = np.asarray(_get(params[f"layers_{layer_index}"], path), np.float32)
      out[f"model.layers.{layer_index}.{hf_name}"] = np.ascontiguousarray(value.T if transpose else value)
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
    for shard_index, shard in enumerate(shards):
      file = f"model-{shard_index + 1:05d}-of-{len(shards):05d}.safetensors"
      save_file(shard, os.path.join(out_dir, file), metadata={"format": "pt"})
      weight_map.update({name: file for name in shard})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w", encoding="utf-8") as handle:
      json.dump(
          {
              "metadata": {
                  "total_size": sum(v.nbytes for v in tensors.values())
              },
              "weight_map": weight_map
          },
          handle,
          indent=1)
  with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as handle:
    json.dump(hf, handle, indent=1)
  if tokenizer_dir:
    for name in os.listdir(tokenizer_dir):
      if name.startswith(("tokenizer", "special_tokens_map", "vocab", "merges", "added_tokens")):
        shutil.copy(os.path.join(tokenizer_dir, name), out_dir)
