"""Our own on-disk form of an LLM: `llm_config.json` + Orbax parameters (+ the tokenizer files).

`asl-motiongpt convert-hf` writes it from a Hugging Face folder; `export-hf` turns it back.
"""
from __future__ import annotations

import dataclasses
import os

import orbax.checkpoint as ocp

from asl_motiongpt import storage
from asl_motiongpt.llm.config import LlmConfig

TOKENIZER_PREFIXES = ("tokenizer", "special_tokens_map", "vocab", "merges", "added_tokens")


def config_to_json(config: LlmConfig) -> dict:
  fields = dataclasses.asdict(config)
  fields["eos_token_id"] = list(config.eos_token_id)
  fields["hf_extra"] = [list(kv) for kv in config.hf_extra]
  return fields


def config_from_json(fields: dict) -> LlmConfig:
  fields = dict(fields)
  fields["eos_token_id"] = tuple(fields.get("eos_token_id", ()))
  fields["hf_extra"] = tuple(tuple(kv) for kv in fields.get("hf_extra", ()))
  if "lora_targets" in fields:
    fields["lora_targets"] = tuple(fields["lora_targets"])
  known = {f.name for f in dataclasses.fields(LlmConfig)}
  unknown = sorted(set(fields) - known)
  if unknown:
    raise ValueError(f"llm_config.json: unknown fields {unknown}")
  return LlmConfig(**fields)


def save_llm(out_dir: str, config: LlmConfig, params, tokenizer_dir: str | None = None) -> None:
  """`out_dir` local (relative or absolute) or a bucket path; `tokenizer_dir` a local folder."""
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(storage.join(out_dir, "params"), params, force=True)
  checkpointer.wait_until_finished()
  storage.write_json(storage.join(out_dir, "llm_config.json"), config_to_json(config))
  if tokenizer_dir:
    for name in os.listdir(tokenizer_dir):
      if name.startswith(TOKENIZER_PREFIXES):
        storage.write_bytes(storage.join(out_dir, "tokenizer", name),
                            open(os.path.join(tokenizer_dir, name), "rb").read())


def load_llm(ckpt_dir: str) -> tuple[LlmConfig, dict]:
  path = storage.join(ckpt_dir, "llm_config.json")
  if not storage.exists(path):
    raise FileNotFoundError(f"{storage.absolute(ckpt_dir)}: no llm_config.json (write one with "
                            "`asl-motiongpt convert-hf`)")
  config = config_from_json(storage.read_json(path))
  params = ocp.StandardCheckpointer().restore(storage.join(ckpt_dir, "params"))
  return config, params
