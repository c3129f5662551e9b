"""Using a trained chain: text -> sign (codes -> poses), sign -> text, and the evaluation of both.

    model = ChainModel.load(workdir)                     # the chain's last stage
    poses = model.text_to_sign(["morgen regen im süden"])   # normalised unified poses
    texts = model.sign_to_text([pose_sequence])

Decoding is constrained: text -> sign emits <motion_begin>, motion codes, <motion_end>; sign -> text
never emits motion tokens. Adapter combinations feed generated motion tokens back through the
adapter (the same embedding rule as training); the stacked mlp_llm_llm decodes with two KV caches
(LLM A's hidden states, bridged, are LLM B's inputs at every step).
"""
from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from asl_motiongpt.data.tasks import PROMPTS
from asl_motiongpt.llm import LlmConfig, Transformer
from asl_motiongpt.llm.generate import MotionSpan, Sampling, TextOnly, TransformerDecoder, generate
from asl_motiongpt.llm.model import init_cache
from asl_motiongpt.model.combinations import Mlp2, code_features
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.pose.transform import normalize, to_unified

CONFIG_FILE = "chain_config.json"


def save_chain_config(config, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, CONFIG_FILE), "w", encoding="utf-8") as f:
    f.write(config.to_json(indent=1))


def load_chain_config(workdir: str):
  import ml_collections
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir}: no {CONFIG_FILE}; is this the workdir of `asl-motiongpt train --config "
                            "configs/strategies/...`?")
  with open(path, encoding="utf-8") as f:
    raw = json.load(f)
  stages = raw.pop("stages")
  config = ml_collections.ConfigDict(raw)
  config.stages = [ml_collections.ConfigDict(s) for s in stages]
  return config


@dataclasses.dataclass(frozen=True)
class AdapterEmbedding:
  """Token embeddings with motion tokens replaced by adapter(code embedding), as in training."""
  config: LlmConfig
  adapter_hidden: int
  first_code_id: int
  num_codes: int
  motion_end: int  # one past the last motion token id (codes, begin, end, mask)

  def __call__(self, llm_params, aux, ids):
    embeds = Transformer(self.config).apply({"params": llm_params}, ids, method=Transformer.embed)
    feats = code_features(ids, aux["codebook"], self.first_code_id)
    adapted = Mlp2(self.adapter_hidden, self.config.hidden_size, "motion_feature", self.config.dtype).apply(
        {"params": aux["adapter"]}, feats).astype(embeds.dtype)
    is_motion = (ids >= self.first_code_id) & (ids < self.motion_end)
    return jnp.where(is_motion[..., None], adapted, embeds)


@dataclasses.dataclass(frozen=True)
class StackedDecoder:
  """mlp_llm_llm, one step: adapter embeddings -> LLM A (final hidden states) -> bridge MLP -> LLM B
  -> logits, each LLM with its own KV cache. params: the model's {llm, bridge, llm_b}."""
  embed: AdapterEmbedding
  config_b: LlmConfig
  bridge_hidden: int

  def init_cache(self, batch: int, length: int):
    return init_cache(self.embed.config, batch, length), init_cache(self.config_b, batch, length)

  def __call__(self, params, aux, ids_BT, positions_BT, kv_mask_BS, cache, cache_index):
    cache_a, cache_b = cache
    embeds = self.embed(params["llm"], aux, ids_BT)
    hidden, cache_a = Transformer(self.embed.config).apply(
        {"params": params["llm"]}, positions=positions_BT, inputs_embeds=embeds, kv_mask=kv_mask_BS, cache=cache_a,
        cache_index=cache_index, return_hidden=True)
    bridged = Mlp2(self.bridge_hidden, self.config_b.hidden_size, "embed", self.embed.config.dtype).apply(
        {"params": params["bridge"]}, hidden)
    logits, cache_b = Transformer(self.config_b).apply(
        {"params": params["llm_b"]}, positions=positions_BT, inputs_embeds=bridged, kv_mask=kv_mask_BS, cache=cache_b,
        cache_index=cache_index)
    return logits, (cache_a, cache_b)


class ChainModel:
  def __init__(self, config, workdir: str, stage_name: str | None = None):
    from asl_motiongpt.train import llm_stage
    stage = next(s for s in config.stages if s.name == stage_name) if stage_name else config.stages[-1]
    self.stage = llm_stage.LlmStage(config, stage, workdir)
    self.params = llm_stage.load_stage_params(workdir, stage.name, self.stage.fresh_params(jax.random.PRNGKey(0)))
    self.vocab, self.tokenizer, self.formatter = self.stage.vocab, self.stage.tokenizer, self.stage.formatter
    self.llm_config = self.stage.llm_config
    if config.combination == "llm_align":
      self.decoder, self.aux = TransformerDecoder(self.llm_config), None
    else:
      embed = AdapterEmbedding(self.llm_config, config.adapter_hidden, self.vocab.first_code_id,
                               self.vocab.num_codes, self.vocab.size)
      self.aux = {"codebook": self.stage.codebook, "adapter": self.params["adapter"]}
      self.decoder = TransformerDecoder(self.llm_config, embed) if config.combination != "mlp_llm_llm" else \
          StackedDecoder(embed, self.stage.llm_b_config, config.adapter_hidden)
    self.vq, self.vq_params, self.vq_state = self.stage.vq_tokenizer, self.stage.vq_params, self.stage.vq_state
    self.max_len = config.data.max_len

  def untrained(self) -> "ChainModel":
    """The same model with the parameters the chain started from (fresh initialisation): the
    baseline the demo compares against."""
    import copy
    other = copy.copy(self)
    first = self.stage.config.stages[0]
    from asl_motiongpt.train import llm_stage
    other.params = llm_stage.LlmStage(self.stage.config, first, self.stage.workdir).initial_params(
        jax.random.PRNGKey(self.stage.config.seed))
    if self.aux is not None:
      other.aux = {**self.aux, "adapter": other.params["adapter"]}
    return other

  @classmethod
  def load(cls, workdir: str, stage: str | None = None) -> "ChainModel":
    return cls(load_chain_config(workdir), workdir, stage)

  def _ids(self, text: str) -> list[int]:
    return self.tokenizer(text, add_special_tokens=False)["input_ids"]

  def _generate(self, prompts, constraint, max_new, sampling=None):
    sampling = sampling or Sampling(max_new_tokens=max_new)
    params = self.params if isinstance(self.decoder, StackedDecoder) else self.params["llm"]
    return generate(self.llm_config, params, prompts, sampling, eos_ids=(self.vocab.end_id, self.formatter.eos),
                    pad_id=self.formatter.pad, constraint=constraint, decoder=self.decoder, aux=self.aux)

  def text_to_codes(self, texts, max_codes: int = 128) -> list[np.ndarray]:
    prompts = [[self.formatter.bos] + self._ids(PROMPTS["t2s"][0].format(text=t)) for t in texts]
    span = MotionSpan(self.vocab.begin_id, self.vocab.end_id, self.vocab.first_code_id, self.vocab.num_codes)
    out = self._generate(prompts, span, max_codes + 1)  # <motion_begin> + at most max_codes codes
    return [self.vocab.ids_to_codes(row) for row in out]

  def text_to_sign(self, texts, fps: float = 25.0) -> list[PoseSequence]:
    poses = []
    for codes in self.text_to_codes(texts):
      parts = self.vq.deinterleave(codes % self.vq.spec.vq.codebook_size) if len(codes) else np.zeros((1, 1), int)
      pose = self.vq.decode(self.vq_params, self.vq_state, parts)
      skeleton = "unified" if pose.shape[1] == 50 else "unified_face"
      poses.append(PoseSequence(pose, np.ones(pose.shape[:2], np.float32), fps, skeleton))
    return poses

  def pose_codes(self, seq: PoseSequence) -> np.ndarray:
    """Codes of any PoseSequence (any known layout): unified, normalised, encoded."""
    unified, _ = normalize(to_unified(seq, face=self.vq.spec.joints > 50))
    data = unified.data[..., :self.vq.spec.dims]
    if data.shape[-1] < self.vq.spec.dims:
      data = np.pad(data, ((0, 0), (0, 0), (0, self.vq.spec.dims - data.shape[-1])))
    return self.vq.interleave(self.vq.encode(self.vq_params, self.vq_state, data, unified.mask))

  def codes_to_text(self, code_lists, max_words: int = 64) -> list[str]:
    before, _, after = PROMPTS["s2t"][0].partition("{motion}")
    prompts = []
    for codes in code_lists:
      motion = [self.vocab.begin_id] + self.vocab.codes_to_ids(np.asarray(codes)[: self.max_len - 40]).tolist() + \
               [self.vocab.end_id]
      prompts.append([self.formatter.bos] + self._ids(before) + motion + self._ids(after))
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
  combination = model.stage.config.combination
  if combination != "llm_align":
    raise ValueError(f"combination {combination!r}: only llm_align (motion as vocabulary tokens) is a plain causal LM "
                     "that Hugging Face can hold; adapter combinations need the MLP adapter at their input")
  export_hf(model.llm_config, model.params["llm"], out_dir)
  model.tokenizer.save_pretrained(out_dir)
  v = model.vocab
  with open(os.path.join(out_dir, "motion_vocab.json"), "w", encoding="utf-8") as f:
    json.dump({"first_code_id": v.first_code_id, "num_codes": v.num_codes, "begin_id": v.begin_id,
               "end_id": v.end_id, "mask_id": v.mask_id, "stage": model.stage.stage.name}, f, indent=1)
  return out_dir
