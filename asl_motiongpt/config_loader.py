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
  given = path + ".py" if sep else path
  path = os.path.abspath(given)
  if not os.path.exists(path) and given.replace(os.sep, "/").startswith("configs/"):
    path = shipped_config(given.replace(os.sep, "/")[len("configs/"):])  # the shipped copy, from any folder
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path} not found")
  if not path.endswith(".py"):
    raise ConfigError(f"config {path}: a config is a Python file with get_config()")
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


class ConfigError(ValueError):
  """A config file or override that does not fit the config: names the key and what exists."""


def _cast(old, text: str, field_type=None):
  kind = field_type if old is None and field_type is not None else type(old)
  if kind is bool:
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise ValueError(f"expected a boolean, got {text!r}")
  if text.lower() in ("none", "null") and old is None:
    return None
  if kind is int:
    return int(text)
  if kind is float:
    return float(text)
  if kind is str:
    return text
  return ast.literal_eval(text)


def _entry(node: list, name: str, item: str):
  """A list entry by index (`stages.1`) or by its `name` field (`stages.instruction`)."""
  if name.isdigit() and int(name) < len(node):
    return node[int(name)]
  named = [e for e in node if hasattr(e, "get") and e.get("name") == name]
  if named:
    return named[0]
  names = [e.get("name") for e in node if hasattr(e, "get")]
  raise ConfigError(f"override {item!r}: no entry {name!r} (the list has {len(node)} entries"
                    + (f": {', '.join(map(str, names))}" if any(names) else "") + ")")


def apply_override(config, item: str) -> None:
  """`--config.a.b=value` (or `config.a.b=value`): sets an existing field, typed like its default;
  a number or a stage name picks a list entry (`--config.stages.0.steps=100`,
  `--config.stages.instruction.lr=1e-6`). A key that does not exist is a ConfigError naming it."""
  key, sep, value = item.lstrip("-").partition("=")
  if not sep or not key.startswith("config."):
    raise ConfigError(f"override {item!r} must look like --config.section.key=value")
  *parents, leaf = key.split(".")[1:]
  node, path = config, "config"
  for name in parents:
    if isinstance(node, (list, tuple)):
      node = _entry(node, name, item)
    elif hasattr(node, "keys") and name in node:
      node = node[name]
    else:
      have = sorted(node.keys()) if hasattr(node, "keys") else type(node).__name__
      raise ConfigError(f"override {item!r}: {path} has no section {name!r} (it has {have})")
    path += f".{name}"
  if isinstance(node, (list, tuple)) or not hasattr(node, "keys"):
    raise ConfigError(f"override {item!r}: {path} is not a section with fields")
  if leaf not in node:
    raise ConfigError(f"override {item!r}: {path} has no field {leaf!r} (it has {sorted(node.keys())})")
  try:
    field_type = node.get_ref(leaf).get_type() if node[leaf] is None else None
  except Exception:  # not a typed reference
    field_type = None
  try:
    node[leaf] = _cast(node[leaf], value, field_type)
  except (ValueError, SyntaxError, TypeError) as e:
    raise ConfigError(f"override {item!r}: {value!r} does not fit {path}.{leaf} ({e})") from None


def configs_dir() -> str:
  """The folder of the shipped configs: the repository's configs/ in a checkout or an editable
  install, else the copy a regular install carries as package data (asl_motiongpt/configs)."""
  checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
  if os.path.isfile(os.path.join(checkout, "chain_base.py")):
    return checkout
  from importlib import resources
  installed = resources.files("asl_motiongpt") / "configs"
  if not installed.joinpath("chain_base.py").is_file():
    raise FileNotFoundError("the shipped configs are missing: neither a checkout's configs/ nor the installed "
                            "asl_motiongpt/configs; reinstall asl-motiongpt")
  return str(installed)


def shipped_config(relative: str) -> str:
  """The path of a shipped config (`strategies/staged.py:tiny`), wherever the package runs from."""
  return os.path.join(configs_dir(), relative)
