"""Our own on-disk form of an LLM: `llm_config.json` + Orbax parameters (+ the tokenizer files).

`asl-motiongpt convert-hf` writes it from a Hugging Face folder; `export-hf` turns it back.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil

import orbax.checkpoint as ocp

from asl_motiongpt.llm.config import LlmConfig

TOKENIZER_PREFIXES = ("tokenizer", "special_tokens_map", "vocab", "merges", "added_tokens")


def config_to_json(config: LlmConfig) -> dict:
  d = dataclasses.asdict(config)
  d["eos_token_id"] = list(config.eos_token_id)
  d["hf_extra"] = [list(kv) for kv in config.hf_extra]
  return d


def config_from_json(d: dict) -> LlmConfig:
  d = dict(d)
  d["eos_token_id"] = tuple(d.get("eos_token_id", ()))
  d["hf_extra"] = tuple(tuple(kv) for kv in d.get("hf_extra", ()))
  known = {f.name for f in dataclasses.fields(LlmConfig)}
  unknown = sorted(set(d) - known)
  if unknown:
    raise ValueError(f"llm_config.json: unknown fields {unknown}")
  return LlmConfig(**d)


def save_llm(out_dir: str, config: LlmConfig, params, tokenizer_dir: str | None = None) -> None:
  out_dir = os.path.abspath(out_dir)
  os.makedirs(out_dir, exist_ok=True)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(out_dir, "params"), params, force=True)
  checkpointer.wait_until_finished()
  with open(os.path.join(out_dir, "llm_config.json"), "w", encoding="utf-8") as f:
    json.dump(config_to_json(config), f, indent=1)
  if tokenizer_dir:
    target = os.path.join(out_dir, "tokenizer")
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(tokenizer_dir):
      if name.startswith(TOKENIZER_PREFIXES):
        shutil.copy(os.path.join(tokenizer_dir, name), target)


def load_llm(ckpt_dir: str) -> tuple[LlmConfig, dict]:
  ckpt_dir = os.path.abspath(ckpt_dir)
  path = os.path.join(ckpt_dir, "llm_config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{ckpt_dir}: no llm_config.json (write one with `asl-motiongpt convert-hf`)")
  with open(path, encoding="utf-8") as f:
    config = config_from_json(json.load(f))
  params = ocp.StandardCheckpointer().restore(os.path.join(ckpt_dir, "params"))
  return config, params
