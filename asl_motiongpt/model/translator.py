"""Translating with an assembled system and its parameters, in both directions, on a mesh.

    translator = Translator(system, params, stage_name, mesh, rules)
    codes = translator.generate_codes(["morgen regen im süden"])   # text -> motion codes
    texts = translator.codes_to_text([codes[0].codes])               # motion codes -> text

Decoding runs the very model code that training ran (adapter, bridge and stacked LLMs included),
with KV caches, constrained: text -> sign emits <motion_begin>, motion codes, <motion_end>;
sign -> text never emits motion tokens. A trained chain loaded from its workdir is an
eval/inference.ChainModel; training decodes held-out examples with its own parameters in place
(train/held_out_decoding.py).
"""
from __future__ import annotations

import copy
import dataclasses

import jax
import numpy as np
from flax import linen as nn
from jax.sharding import Mesh

from asl_motiongpt import chain_config
from asl_motiongpt.data.tasks import PROMPTS
from asl_motiongpt.llm.generate import MotionSpan, Sampling, TextOnly
from asl_motiongpt.model.artifacts import starting_params
from asl_motiongpt.model.assembly import MotionSystem
from asl_motiongpt.parallel import DEFAULT_RULES, make_mesh
from asl_motiongpt.parallel.sharding import batch_sharding
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.pose.plausibility import cleaned
from asl_motiongpt.pose.transform import fit_dims, normalize, to_unified


@dataclasses.dataclass
class GeneratedCodes:
  """One text -> sign generation: its motion codes, and whether <motion_end> came before the limit."""
  codes: np.ndarray
  ended: bool

  @property
  def failed(self) -> bool:
    """No motion at all: nothing to decode into a sign (counted, never scored as one)."""
    return len(self.codes) == 0


class Translator:
  """An assembled system with parameters on a mesh, in both directions: parameters sharded as in
  training, decoding batches split over the mesh's data and FSDP axes."""

  def __init__(self, system: MotionSystem, params, stage_name: str, mesh: Mesh | None = None, rules=DEFAULT_RULES,
               beams: int = 1, length_penalty: float = 1.0):
    self.system, self.stage_name = system, stage_name
    self.beams, self.length_penalty = beams, length_penalty  # 1: greedy
    self.checkpoint = "last"  # which of the stage's checkpoints the parameters are (set by ChainModel.load)
    self.mesh = mesh or make_mesh({"data": 1}, devices=jax.devices()[:1])
    self.rules = rules
    self.shardings = system.param_shardings(self.mesh, rules)
    self.params = jax.device_put(params, self.shardings)  # already in place when restored into them
    self.config = system.config
    self.vocab, self.text_tokenizer, self.formatter = system.vocab, system.text_tokenizer, system.formatter
    self.llm_config = system.llm_config
    self.max_len = self.config.data.max_len

  def with_decoding(self, beams: int = 1, length_penalty: float = 1.0) -> "Translator":
    """The same model and parameters, decoding greedily (beams=1) or by beam search."""
    if beams < 1:
      raise ValueError(f"beams must be >= 1, got {beams}")
    other = copy.copy(self)
    other.beams, other.length_penalty = beams, length_penalty
    return other

  def with_params(self, params) -> "Translator":
    """The same model with other parameters already in this model's shardings (a training state's:
    the training loop decodes with them in place, train/held_out_decoding.py)."""
    other = copy.copy(self)
    other.params = params
    return other

  @property
  def decoding(self) -> str:
    return "greedy" if self.beams == 1 else f"beam {self.beams} (length penalty {self.length_penalty:g})"

  def untrained(self) -> "Translator":
    """The same model with the parameters the chain started from (fresh, or the Hugging Face LLM's):
    the baseline the demo compares against."""
    first = chain_config.resolve_stage(self.config, chain_config.llm_stages(self.config)[0])
    return type(self)(self.system, starting_params(self.system, self.config, first.seed, self.shardings), self.stage_name,
                      self.mesh, self.rules, self.beams, self.length_penalty)

  def _generate(self, prompts, constraint, max_new_tokens: int, temperature: float = 0.0, rng=None):
    sampling = Sampling(max_new_tokens=max_new_tokens, beams=self.beams, length_penalty=self.length_penalty) \
        if not temperature else Sampling(max_new_tokens=max_new_tokens, temperature=temperature)
    with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      return self.system.generate(self.params, prompts, constraint, max_new_tokens, sampling=sampling,
                                  batch_sharding=batch_sharding(self.mesh, 2), rng=rng)

  def _ids(self, text: str) -> list[int]:
    return self.text_tokenizer(text, add_special_tokens=False)["input_ids"]

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
  def _tokenizer_input(self, seq: PoseSequence):
    gesture = self.system.gesture
    unified, _ = normalize(to_unified(seq, face=gesture.spec.joints > 50))
    unified = cleaned(unified, seq.skeleton)  # what `prepare` keeps of a sequence (pose/plausibility.py)
    return fit_dims(unified.data, gesture.spec.dims), unified.mask

  def pose_codes(self, seq: PoseSequence) -> np.ndarray:
    """Codes of any PoseSequence (any known layout): unified, normalised, encoded."""
    gesture = self.system.gesture
    return gesture.interleave(gesture.encode(self.system.gesture_params, self.system.gesture_state,
                                             *self._tokenizer_input(seq)))

  def pose_codes_many(self, sequences) -> list[np.ndarray]:
    """pose_codes of each sequence (the same codes), the pieces of many encoded together in full
    batches (GestureTokenizer.encode_many): an evaluation split compiles one program per piece
    length instead of calling the tokenizer once per sequence."""
    gesture = self.system.gesture
    inputs = (self._tokenizer_input(seq) for seq in sequences)
    return [gesture.interleave(codes) for codes in
            gesture.encode_many(self.system.gesture_params, self.system.gesture_state, inputs)]

  def codes_to_text(self, code_lists, max_words: int = 64) -> list[str]:
    before, _, after = PROMPTS["s2t"][0].partition("{motion}")
    prompts = []
    for codes in code_lists:
      motion = [self.vocab.begin_id] + self.vocab.codes_to_ids(np.asarray(codes)[: self.max_len - 40 - self.formatter.framing]).tolist() + \
               [self.vocab.end_id]
      prompts.append(self.formatter.wrap_prompt(self._ids(before) + motion + self._ids(after)))
    out = self._generate(prompts, TextOnly(self.vocab.first_code_id, self.vocab.size), max_words)
    return [self.text_tokenizer.decode([t for t in row if t != self.formatter.eos], skip_special_tokens=True).strip()
            for row in out]

  def sign_to_text(self, sequences) -> list[str]:
    return self.codes_to_text(self.pose_codes_many(sequences))
