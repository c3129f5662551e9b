"""Tiny random Hugging Face models, built offline and saved as safetensors, for parity tests."""
import functools
import os

import numpy as np

LONG = 320  # parity inputs longer than 300 tokens: RoPE bugs hide in short inputs

TINY = dict(vocab_size=256, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)


def hf_config(kind: str, tied: bool):
  import transformers
  if kind == "llama3":
    return transformers.LlamaConfig(**TINY, tie_word_embeddings=tied, rms_norm_eps=1e-5, rope_theta=500000.0,
                                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                                    bos_token_id=1, eos_token_id=2)
  if kind == "llama2":
    return transformers.LlamaConfig(**TINY, tie_word_embeddings=tied, bos_token_id=1, eos_token_id=2)
  if kind == "qwen2":
    return transformers.Qwen2Config(**TINY, tie_word_embeddings=tied, rope_theta=1000000.0, eos_token_id=2)
  if kind == "qwen3":
    return transformers.Qwen3Config(**TINY, head_dim=24, tie_word_embeddings=tied, eos_token_id=2)
  raise ValueError(kind)


@functools.lru_cache(maxsize=None)
def saved_model(kind: str, tied: bool, root: str) -> str:
  """Builds the tiny model with a fixed seed, perturbs norms and biases (so a missed one shows),
  saves it as safetensors under `root`; returns the folder."""
  import torch
  import transformers
  torch.manual_seed(0)
  config = hf_config(kind, tied)
  model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "norm" in name or name.endswith(".bias"):
        p.add_(torch.randn_like(p) * 0.1)
  path = os.path.join(root, f"{kind}_{'tied' if tied else 'untied'}")
  model.save_pretrained(path, safe_serialization=True)
  return path


def tokens(length: int = LONG, batch: int = 2, vocab: int = 256, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(3, vocab, (batch, length)).astype(np.int32)


def hf_logits(path: str, ids: np.ndarray, attention_mask=None) -> np.ndarray:
  import torch
  import transformers
  model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
  model.eval()
  with torch.no_grad():
    kwargs = {}
    if attention_mask is not None:
      kwargs["attention_mask"] = torch.tensor(attention_mask)
    return model(torch.tensor(ids, dtype=torch.long), **kwargs).logits.numpy()
