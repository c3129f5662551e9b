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

import dataclasses
import json
import os
import tempfile

import jax
import numpy as np
from flax import linen as nn
from jax.sharding import Mesh

from asl_motiongpt import chain_config, checkpoints, storage
from asl_motiongpt.data.tasks import PROMPTS
from asl_motiongpt.llm.generate import MotionSpan, Sampling, TextOnly
from asl_motiongpt.model.artifacts import load_artifacts, starting_params
from asl_motiongpt.model.assembly import MotionSystem, assemble
from asl_motiongpt.parallel import DEFAULT_RULES, make_mesh, mesh_from_config, rules_from_config
from asl_motiongpt.parallel.sharding import abstract_with_specs, batch_sharding, logical_to_shardings
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.pose.transform import fit_dims, normalize, to_unified


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


def param_shardings(system: MotionSystem, mesh: Mesh, rules) -> dict:
  """The parameters' shardings on `mesh`, from their logical axes (as training shards them)."""
  _, specs = abstract_with_specs(lambda: system.model.init(jax.random.PRNGKey(0), *system.init_args())["params"])
  return logical_to_shardings(specs, mesh, rules)


@dataclasses.dataclass
class GeneratedCodes:
  """One text -> sign generation: its motion codes, and whether <motion_end> came before the limit."""
  codes: np.ndarray
  ended: bool

  @property
  def failed(self) -> bool:
    """No motion at all: nothing to decode into a sign (counted, never scored as one)."""
    return len(self.codes) == 0


def inference_mesh(config, stage) -> Mesh:
  """The mesh a stage trained on, on this machine's devices; where its fixed axis sizes do not fit
  them (a pod's chain evaluated on one host), FSDP over all devices."""
  try:
    return mesh_from_config(chain_config.resolve_stage(config, stage).mesh)
  except ValueError:
    return make_mesh({"fsdp": -1})


class ChainModel:
  """A trained stage on a mesh: parameters sharded as in training (restored straight into their
  shards), decoding batches split over the mesh's data and FSDP axes."""

  def __init__(self, system: MotionSystem, params, stage_name: str, mesh: Mesh | None = None, rules=DEFAULT_RULES,
               beams: int = 1, length_penalty: float = 1.0):
    self.system, self.stage_name = system, stage_name
    self.beams, self.length_penalty = beams, length_penalty  # 1: greedy
    self.mesh = mesh or make_mesh({"data": 1}, devices=jax.devices()[:1])
    self.rules = rules
    self.shardings = param_shardings(system, self.mesh, rules)
    self.params = jax.device_put(params, self.shardings)  # already in place when restored into them
    self.config = system.config
    self.vocab, self.tokenizer, self.formatter = system.vocab, system.tokenizer, system.formatter
    self.llm_config = system.llm_config
    self.max_len = self.config.data.max_len

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
                        param_shardings(system, mesh, rules))
    params = checkpoints.restore_params(workdir, found.name, like=like, checkpoint=checkpoint)
    if any(c is not None and c.lora_rank for c in (system.llm_config, system.llm_b_config)):
      system, params = _merged(config, artifacts, system, params)
    return cls(system, params, found.name, mesh, rules)

  def with_decoding(self, beams: int = 1, length_penalty: float = 1.0) -> "ChainModel":
    """The same model and parameters, decoding greedily (beams=1) or by beam search."""
    if beams < 1:
      raise ValueError(f"beams must be >= 1, got {beams}")
    return ChainModel(self.system, self.params, self.stage_name, self.mesh, self.rules, beams, length_penalty)

  @property
  def decoding(self) -> str:
    return "greedy" if self.beams == 1 else f"beam {self.beams} (length penalty {self.length_penalty:g})"

  def untrained(self) -> "ChainModel":
    """The same model with the parameters the chain started from (fresh, or the Hugging Face LLM's):
    the baseline the demo compares against."""
    first = chain_config.resolve_stage(self.config, chain_config.llm_stages(self.config)[0])
    return ChainModel(self.system, starting_params(self.system, self.config, first.seed), self.stage_name,
                      self.mesh, self.rules, self.beams, self.length_penalty)

  def _generate(self, prompts, constraint, max_new_tokens: int, temperature: float = 0.0, rng=None):
    sampling = Sampling(max_new_tokens=max_new_tokens, beams=self.beams, length_penalty=self.length_penalty) \
        if not temperature else Sampling(max_new_tokens=max_new_tokens, temperature=temperature)
    with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      return self.system.generate(self.params, prompts, constraint, max_new_tokens, sampling=sampling,
                                  batch_sharding=batch_sharding(self.mesh, 2), rng=rng)

  def _ids(self, text: str) -> list[int]:
    return self.tokenizer(text, add_special_tokens=False)["input_ids"]

  # -- text -> sign --------------------------------------------------------------------------------
  def generate_codes(self, texts, max_codes: int = 128, temperature: float = 0.0, seed: int = 0) -> list[GeneratedCodes]:
    """Motion codes per text: by this model's decoding (greedy or beam), or sampled at `temperature`
    (> 0) from the random stream `seed` (each seed another draw: what multimodality compares)."""
    prompts = [self.formatter.wrap_prompt(self._ids(PROMPTS["t2s"][0].format(text=t))) for t in texts]
    span = MotionSpan(self.vocab.begin_id, self.vocab.end_id, self.vocab.first_code_id, self.vocab.num_codes,
                      max_codes=max_codes)
    out = self._generate(prompts, span, max_codes + 2, temperature, jax.random.PRNGKey(seed))  # <begin> codes <end>
    return [GeneratedCodes(self.vocab.ids_to_codes(row), self.vocab.end_id in row) for row in out]

  def text_to_codes(self, texts, max_codes: int = 128) -> list[np.ndarray]:
    return [g.codes for g in self.generate_codes(texts, max_codes)]

  def codes_to_pose(self, codes, fps: float = 25.0) -> PoseSequence:
    gesture = self.system.gesture
    pose = gesture.decode(self.system.gesture_params, self.system.gesture_state, gesture.deinterleave(codes))
    skeleton = "unified" if pose.shape[1] == 50 else "unified_face"
    return PoseSequence(pose, np.ones(pose.shape[:2], np.float32), fps, skeleton)

  def text_to_sign(self, texts, fps: float = 25.0) -> list[PoseSequence | None]:
    """A sign per text; None where the generation failed (no motion codes at all)."""
    return [None if g.failed else self.codes_to_pose(g.codes, fps) for g in self.generate_codes(texts)]

  # -- sign -> text --------------------------------------------------------------------------------
  def pose_codes(self, seq: PoseSequence) -> np.ndarray:
    """Codes of any PoseSequence (any known layout): unified, normalised, encoded."""
    gesture = self.system.gesture
    unified, _ = normalize(to_unified(seq, face=gesture.spec.joints > 50))
    data = fit_dims(unified.data, gesture.spec.dims)
    return gesture.interleave(gesture.encode(self.system.gesture_params, self.system.gesture_state, data,
                                             unified.mask))

  def codes_to_text(self, code_lists, max_words: int = 64) -> list[str]:
    before, _, after = PROMPTS["s2t"][0].partition("{motion}")
    prompts = []
    for codes in code_lists:
      motion = [self.vocab.begin_id] + self.vocab.codes_to_ids(np.asarray(codes)[: self.max_len - 40 - self.formatter.framing]).tolist() + \
               [self.vocab.end_id]
      prompts.append(self.formatter.wrap_prompt(self._ids(before) + motion + self._ids(after)))
    out = self._generate(prompts, TextOnly(self.vocab.first_code_id, self.vocab.size), max_words)
    return [self.tokenizer.decode([t for t in row if t != self.formatter.eos], skip_special_tokens=True).strip()
            for row in out]

  def sign_to_text(self, sequences) -> list[str]:
    return self.codes_to_text([self.pose_codes(s) for s in sequences])


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
  v = model.vocab
  with tempfile.TemporaryDirectory(prefix="asl-export-") as local:  # safetensors writes local files
    export_hf(model.llm_config, jax.device_get(model.params["llm"]), local)
    model.tokenizer.save_pretrained(local)
    with open(os.path.join(local, "motion_vocab.json"), "w", encoding="utf-8") as f:
      json.dump({"first_code_id": v.first_code_id, "num_codes": v.num_codes, "begin_id": v.begin_id,
                 "end_id": v.end_id, "mask_id": v.mask_id, "stage": model.stage_name}, f, indent=1)
    storage.upload(local, out_dir)
  return storage.absolute(out_dir)
