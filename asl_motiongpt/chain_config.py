"""The chain config as data: which stage is which, what each stage inherits, and its copy on disk.

A chain config (configs/chain_base.py) holds chain-wide knobs (seed, mesh, rules, optim, train) and
a list of stages: the gesture tokenizer first, then LLM stages (or the text-motion evaluator alone). A stage's inheritable fields are
None unless it sets them; `resolve_stage` fills them from the chain, so every stage runner reads one
complete, flat description of itself. Both `train` (which writes the chain's copy) and `eval`
(which rebuilds the model from it) use this module; it imports neither.
"""
from __future__ import annotations

import copy
import json

import ml_collections

from asl_motiongpt import storage

CONFIG_FILE = "chain_config.json"
INHERITED = ("mesh", "optim", "train")


def tokenizer_stage(config) -> ml_collections.ConfigDict:
  """The chain's gesture tokenizer stage (its first stage)."""
  found = [s for s in config.stages if s.kind == "tokenizer"]
  if len(found) != 1 or config.stages[0].kind != "tokenizer":
    raise ValueError(f"a chain starts with exactly one tokenizer stage; its stages are "
                     f"{[(s.name, s.kind) for s in config.stages]}")
  return found[0]


def llm_stages(config) -> list:
  return [s for s in config.stages if s.kind == "llm"]


def find_stage(config, name: str | None):
  """A stage by name; None: the last stage."""
  if name is None:
    return config.stages[-1]
  for stage in config.stages:
    if stage.name == name:
      return stage
  raise ValueError(f"no stage {name!r} in this chain; its stages are {[stage.name for stage in config.stages]}")


def resolve_stage(config, stage) -> ml_collections.ConfigDict:
  """The stage with every inherited field (seed, mesh, optim, train) filled from the chain."""
  out = ml_collections.ConfigDict(json.loads(stage.to_json()))
  out.seed = config.seed if stage.get("seed") is None else stage.seed
  for section in INHERITED:
    merged = dict(json.loads(config[section].to_json()))
    own = stage.get(section) or {}
    merged.update({k: v for k, v in dict(own).items() if v is not None})
    out[section] = ml_collections.ConfigDict(merged)
  out.optim.warmup_steps = min(int(out.optim.warmup_steps), max(int(out.steps) - 1, 0))
  return out


def evaluator_only(config) -> bool:
  """A chain of the text-motion evaluator alone (configs/evaluator.py): no gesture tokenizer needed."""
  return bool(config.stages) and all(s.kind == "evaluator" for s in config.stages)


def validate(config) -> None:
  """What must hold before any training starts (so that no hour of work ends in a refusal)."""
  names = [stage.name for stage in config.stages]
  if len(set(names)) != len(names):
    raise ValueError(f"stage names must differ: {names}")
  if evaluator_only(config):
    return
  tok = tokenizer_stage(config)
  for stage in llm_stages(config):
    if stage.init_from and stage.init_from not in names[:names.index(stage.name)]:
      raise ValueError(
          f"stage {stage.name!r}: init_from {stage.init_from!r} is not an earlier stage of {names}")
  if llm_stages(config) and config.combination == "mlp_llm_llm" and config.llm_b.hf_dir:
    # B's logits are over A's vocabulary (text + motion tokens); a pretrained B with its own
    # tokenizer would need a vocabulary mapping that does not exist yet: refuse, do not ignore
    raise ValueError("config.llm_b.hf_dir: loading the upper LLM of mlp_llm_llm from Hugging Face is not "
                     "supported (its output vocabulary must be the lower LLM's); leave it empty")
  if not tok.model.get("quantize", True) and (llm_stages(config) or tok.write_code_cache):
    raise ValueError("stages.tokenizer.model.quantize=false trains a plain autoencoder with no codes (a "
                     "benchmark bound): it writes no code cache (set stages.tokenizer.write_code_cache=false) "
                     "and cannot feed LLM stages")
  if llm_stages(config) and tok.model.get("residual_levels", 1) > 1:
    raise ValueError("stages.tokenizer.model.residual_levels > 1: LLM stages read one code per time step (motion "
                     "ids, adapter features and decoding); a residual tokenizer trains alone (configs/tokenizer.py)")
  if llm_stages(config) and tok.model.partwise:
    raise ValueError("stages.tokenizer.model.partwise=true: LLM stages read one codebook (motion ids, adapter "
                     "features and decoding are single-part); a part-wise tokenizer trains alone "
                     "(configs/tokenizer.py) but not in a chain with LLM stages")


PATH_FIELDS = (("data", "prepared"), ("llm", "hf_dir"), ("llm_b", "hf_dir"))


def with_absolute_paths(config) -> ml_collections.ConfigDict:
  """A copy whose local path fields are absolute (relative to the current directory): the chain's
  config.json is read back by eval/translate/generate run from anywhere. Bucket paths stay."""
  config = copy.deepcopy(config)
  for group, field in PATH_FIELDS:
    if group in config and config[group].get(field):
      with config.unlocked():
        config[group][field] = storage.absolute(config[group][field])
  return config


def check_inputs(config, workdir: str) -> None:
  """Before any step: the workdir's bucket is reachable, every prepared corpus a stage reads has the
  splits it reads, and a Hugging Face folder has its config, tokenizer and weights."""
  storage.check_bucket(workdir)
  storage.check_bucket(config.data.prepared)
  from asl_motiongpt.data.prepare import check_prepared_split
  corpora = {config.data.corpus} | {c for s in llm_stages(config)
                                     for c in dict(s.mixture or config.data.mixture or {})}
  for corpus in sorted(corpora):
    for split in ("train", config.data.eval_split):
      if split:
        check_prepared_split(config.data.prepared, corpus, split)
  if llm_stages(config) and config.llm.hf_dir:
    from asl_motiongpt.llm.hf_folder import check_hf_folder
    check_hf_folder(config.llm.hf_dir)


def save(config, workdir) -> None:
  storage.write_text(storage.join(workdir, CONFIG_FILE), config.to_json(indent=1))


def load(workdir) -> ml_collections.ConfigDict:
  path = storage.path(workdir) / CONFIG_FILE
  if not path.exists():
    raise FileNotFoundError(
        f"{workdir}: no {CONFIG_FILE}; is this the workdir of `asl-motiongpt train --config "
        "configs/strategies/...`?")
  raw = json.loads(path.read_text())
  stages = raw.pop("stages")
  config = ml_collections.ConfigDict(raw)
  config.stages = [ml_collections.ConfigDict(s) for s in stages]
  return config
