"""Using a trained chain: text -> sign (codes -> poses), sign -> text, and the export of a chain.

    model = ChainModel.load(workdir)                        # the chain's last stage
    poses = model.text_to_sign(["morgen regen im süden"])   # normalised unified poses (None: failed)
    texts = model.sign_to_text([pose_sequence])

The model is the assembled system (model/assembly.py) with a stage's trained parameters: decoding
runs the very model code that training ran (adapter, bridge and stacked LLMs included), with KV
caches. Decoding is constrained: text -> sign emits <motion_begin>, motion codes, <motion_end>;
sign -> text never emits motion tokens.
"""
from __future__ import annotations

import json
import os
import tempfile

import jax
from jax.sharding import Mesh

from asl_motiongpt import chain_config, checkpoints, storage
from asl_motiongpt.model.artifacts import load_artifacts
from asl_motiongpt.model.assembly import MotionSystem, assemble
from asl_motiongpt.model.translator import GeneratedCodes, Translator
from asl_motiongpt.parallel import make_mesh, mesh_from_config, rules_from_config

__all__ = ["ChainModel", "GeneratedCodes", "export_chain_hf", "inference_mesh"]


def _merged(config, artifacts, system: MotionSystem, params: dict):
  """A LoRA chain's system and parameters with the adapters folded into the LLM weights: plain
  projections for decoding and export (the same outputs, llm/lora.py)."""
  from asl_motiongpt.llm import lora
  plain = config.copy_and_resolve_references()
  for section in ("llm", "llm_b"):
    if section in plain:
      plain[section].lora_rank = 0
  merged = dict(params)
  for name, llm_config in (("llm", system.llm_config), ("llm_b", system.llm_b_config)):
    if llm_config is not None and llm_config.lora_rank:
      merged[name] = lora.merge(params[name], llm_config)
  return assemble(plain, artifacts), merged


def inference_mesh(config, stage) -> Mesh:
  """The mesh a stage trained on, on this machine's devices; where its fixed axis sizes do not fit
  them (a pod's chain evaluated on one host), FSDP over all devices."""
  try:
    return mesh_from_config(chain_config.resolve_stage(config, stage).mesh)
  except ValueError:
    return make_mesh({"fsdp": -1})


class ChainModel(Translator):
  """A trained stage of a chain on a mesh: parameters restored straight into their shards as in
  training (model/translator.py does the translating)."""

  @classmethod
  def load(cls, workdir: str, stage: str | None = None, mesh: Mesh | None = None,
           checkpoint: str | int = "last") -> "ChainModel":
    """A stage of a trained chain (default: the last), from <workdir>/chain_config.json and its
    checkpoint (last, best or a step), on `mesh` (default: the stage's training mesh, see
    inference_mesh)."""
    config = chain_config.load(workdir)
    found = chain_config.find_stage(config, stage)
    if found.kind != "llm":
      raise ValueError(f"stage {found.name!r} is the gesture tokenizer; pick an LLM stage of "
                       f"{[s.name for s in chain_config.llm_stages(config)]}")
    artifacts = load_artifacts(config, workdir)
    system = assemble(config, artifacts)
    mesh, rules = mesh or inference_mesh(config, found), rules_from_config(config.rules)
    like = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), system.abstract_params(),
                        system.param_shardings(mesh, rules))
    params = checkpoints.restore_params(workdir, found.name, like=like, checkpoint=checkpoint)
    if any(c is not None and c.lora_rank for c in (system.llm_config, system.llm_b_config)):
      system, params = _merged(config, artifacts, system, params)
    model = cls(system, params, found.name, mesh, rules)
    model.checkpoint = checkpoint
    return model


def export_chain_hf(model: ChainModel, out_dir: str) -> str:
  """A trained llm_align chain as a Hugging Face folder: config.json + safetensors + the tokenizer with
  its motion tokens (<motion_id_k>, <motion_begin>, <motion_end>, <motion_mask>) + motion_vocab.json.
  transformers then generates motion codes by itself; turning codes into poses needs the chain's
  gesture tokenizer (`ChainModel.text_to_sign`). Adapter combinations read motion through an MLP
  that a Hugging Face causal LM has no place for: they are refused."""
  from asl_motiongpt.llm import export_hf
  combination = model.config.combination
  if combination != "llm_align":
    raise ValueError(f"combination {combination!r}: only llm_align (motion as vocabulary tokens) is a plain causal LM "
                     "that Hugging Face can hold; adapter combinations need the MLP adapter at their input")
  vocab = model.vocab
  with tempfile.TemporaryDirectory(prefix="asl-export-") as local:  # safetensors writes local files
    export_hf(model.llm_config, jax.device_get(model.params["llm"]), local)
    model.text_tokenizer.save_pretrained(local)
    with open(os.path.join(local, "motion_vocab.json"), "w", encoding="utf-8") as out:
      json.dump({"first_code_id": vocab.first_code_id, "num_codes": vocab.num_codes, "begin_id": vocab.begin_id,
                 "end_id": vocab.end_id, "mask_id": vocab.mask_id, "stage": model.stage_name}, out, indent=1)
    storage.upload(local, out_dir)
  return storage.absolute(out_dir)
