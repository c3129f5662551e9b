"""Config files are Python (`get_config()` returning an ml_collections ConfigDict); any field can be
overridden on the command line as `--config.section.key=value`.

`path/to/config.py:ARG` calls `get_config("ARG")` (the big_vision convention): one file, several
presets, e.g. `configs/strategies/staged.py:tiny` for the laptop-sized version of a seed-sized run."""
from __future__ import annotations

import ast
import importlib.util
import os
import sys


def load_config(path: str, overrides: list[str] = ()):
  path, sep, arg = path.partition(".py:")
  path = os.path.abspath(path + ".py" if sep else path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path} not found")
  # So that `from configs import chain_base` works inside config files wherever we are started:
  # put the folder that holds the `configs` package (the nearest ancestor named configs) on the path.
  folder = os.path.dirname(path)
  while os.path.basename(folder) != "configs" and os.path.dirname(folder) != folder:
    folder = os.path.dirname(folder)
  root = os.path.dirname(folder) if os.path.basename(folder) == "configs" else os.path.dirname(path)
  if root not in sys.path:
    sys.path.insert(0, root)
  spec = importlib.util.spec_from_file_location(f"_config_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  for item in overrides:
    apply_override(config, item)
  return config


def _cast(old, text: str):
  if isinstance(old, bool):
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise ValueError(f"expected a boolean, got {text!r}")
  if isinstance(old, int):
    return int(text)
  if isinstance(old, float):
    return float(text)
  if isinstance(old, str):
    return text
  return ast.literal_eval(text)


def apply_override(config, item: str) -> None:
  """`--config.a.b=value` (or `config.a.b=value`): sets an existing field, typed like its default;
  a number picks a list entry (`--config.stages.0.steps=100`)."""
  key, sep, value = item.lstrip("-").partition("=")
  if not sep or not key.startswith("config."):
    raise ValueError(f"override {item!r} must look like --config.section.key=value")
  *parents, leaf = key.split(".")[1:]
  node = config
  for name in parents:  # a list entry by its index: --config.stages.1.lr=1e-5
    if isinstance(node, (list, tuple)):
      if not name.isdigit() or int(name) >= len(node):
        raise KeyError(f"override {item!r}: no entry {name!r} (the list has {len(node)})")
      node = node[int(name)]
      continue
    if name not in node:
      raise KeyError(f"override {item!r}: no section {name!r}")
    node = node[name]
  if leaf not in node:
    raise KeyError(f"override {item!r}: no field {leaf!r} (have {sorted(node.keys())})")
  node[leaf] = _cast(node[leaf], value)
