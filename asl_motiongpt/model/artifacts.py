"""Reading what an assembly needs from a chain's workdir (the I/O half of model/assembly.py).

  - the gesture tokenizer: the tokenizer stage's newest checkpoint (network + codebooks);
  - the text tokenizer: the LLM's Hugging Face folder, or the word tokenizer a tiny chain trained
    into <workdir>/text_tokenizer (training writes it: asl_motiongpt/train/text_vocab.py);
  - the base LLM's config.json when the chain starts from Hugging Face (weights are not read here:
    inference restores trained parameters, and only training loads the pretrained ones).
"""
from __future__ import annotations


from asl_motiongpt import chain_config, checkpoints, storage
from asl_motiongpt.llm.hf_folder import check_fits, hf_folder
from asl_motiongpt.data.text_tokenizer import load_word_tokenizer
from asl_motiongpt.model.assembly import Artifacts
from asl_motiongpt.gesture import GestureTokenizer, TokenizerSpec, VqConfig

TEXT_TOKENIZER_DIR = "text_tokenizer"


def tokenizer_spec(stage) -> TokenizerSpec:
  """The gesture tokenizer's architecture from its stage config."""
  model = stage.model
  vq = VqConfig(width=model.width,
                depth=model.depth,
                dilation_growth=model.dilation_growth,
                down_t=model.down_t,
                code_dim=model.code_dim,
                codebook_size=model.codebook_size,
                activation=model.activation,
                ema_decay=model.ema_decay,
                reset_threshold=model.reset_threshold,
                dead_code_reset=model.dead_code_reset,
                commitment=model.commitment,
                velocity_weight=model.velocity_weight,
                quantize=model.get("quantize", True),  # chain configs saved before the fields: their defaults
                residual_levels=model.get("residual_levels", 1),
                dtype=model.dtype)
  return TokenizerSpec(vq=vq,
                       joints=stage.joints,
                       dims=stage.dims,
                       partwise=model.partwise,
                       hand_relative=model.hand_relative,
                       window=stage.window if model.windowed_inference else None)


def load_gesture_tokenizer(config, workdir: str):
  """(GestureTokenizer, params, codebook state) of the chain's finished tokenizer stage."""
  stage = chain_config.tokenizer_stage(config)
  state = checkpoints.restore_state(workdir, stage.name)
  return GestureTokenizer(tokenizer_spec(stage)), state["params"], state["vq"]


def text_tokenizer_dir(workdir: str) -> str:
  return storage.join(workdir, TEXT_TOKENIZER_DIR)


def load_text_tokenizer(config, workdir: str):
  if config.llm.hf_dir:
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(hf_folder(config.llm.hf_dir))
  path = text_tokenizer_dir(workdir)
  if not storage.exists(storage.join(path, "tokenizer.json")):
    raise FileNotFoundError(f"{path}: no text tokenizer; the first LLM stage of the chain writes it "
                            "(or set config.llm.hf_dir to use a Hugging Face tokenizer)")
  return load_word_tokenizer(path)


def load_artifacts(config, workdir: str, text_tokenizer=None) -> Artifacts:
  """Everything assemble() needs, read from the workdir (and config.llm.hf_dir)."""
  gesture, params, state = load_gesture_tokenizer(config, workdir)
  base = None
  if config.llm.hf_dir:
    from asl_motiongpt.llm.config import read_hf_config
    base = read_hf_config(hf_folder(config.llm.hf_dir))
  text_tokenizer = text_tokenizer or load_text_tokenizer(config, workdir)
  if base is not None:
    check_fits(config.llm.hf_dir, text_tokenizer, base.vocab_size)
  return Artifacts(text_tokenizer=text_tokenizer, gesture=gesture, gesture_params=params, gesture_state=state,
                   base_llm=base)


def _fresh_part(tree: dict) -> dict:
  """What a Hugging Face start does not read from the checkpoint: everything but the LLM, and the
  LLM's LoRA adapters (llm/lora.py; an empty dict without LoRA)."""
  from asl_motiongpt.llm import lora
  return {**{k: v for k, v in tree.items() if k != "llm"}, "llm": lora.split(tree["llm"])[1]}


def starting_params(system, config, seed: int, shardings=None) -> dict:
  """The parameters a chain starts from: fresh random ones, with the Hugging Face LLM's weights in
  place of the random LLM when config.llm.hf_dir is set (motion rows at the mean of the text rows,
  llm/hf.new_row_values). Created in `shardings` (default: one device, `system.param_shardings()`):
  the fresh part under jit, the LLM block by block from the safetensors, never whole on a host
  unless a device holds a tensor whole. The one way from a checkpoint to parameters."""
  import jax
  from flax import linen as nn
  from asl_motiongpt.llm import load_hf_sharded, lora
  from asl_motiongpt.parallel.run_once import run_once
  shardings = system.param_shardings() if shardings is None else shardings
  if not config.llm.hf_dir:
    return run_once(
        lambda: nn.meta.unbox(system.model.init(jax.random.PRNGKey(seed), *system.init_args())["params"]),
        out_shardings=shardings)
  # the LLM's random weights are never computed: not an output of this program
  fresh = run_once(lambda: _fresh_part(system.init_params(jax.random.PRNGKey(seed))),
                   out_shardings=_fresh_part(shardings))
  like = jax.tree.map(lambda a, sharding: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
                      lora.split(system.abstract_params()["llm"])[0], lora.split(shardings["llm"])[0])
  llm = load_hf_sharded(hf_folder(config.llm.hf_dir, weights=True), system.llm_config, like,
                        text_rows=system.vocab.text_vocab_size)
  return {**fresh, "llm": lora.join(llm, fresh["llm"])}
