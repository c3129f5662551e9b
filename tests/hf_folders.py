"""Tiny Hugging Face model folders whose tokenizers carry the special tokens of the official ones.

Built offline: a BPE trained with `tokenizers` on the corpus' sentences, the real special-token
names and settings of each family's tokenizer_config.json (which token is BOS, EOS, pad; none where
the official one has none), the family's chat template for instruct models, and a tiny random model
of that family saved as safetensors by `transformers`.

  qwen2.5-instruct  no BOS, EOS <|im_end|>, pad <|endoftext|>, ChatML template with a system turn
  qwen3-base        no BOS, EOS and pad <|endoftext|>
  llama3-instruct   BOS <|begin_of_text|>, EOS <|eot_id|>, no pad, header-style template
  llama2-base       BOS <s>, EOS </s>, <unk>, no pad, SentencePiece-style (Metaspace) pieces
"""
from __future__ import annotations

import os

QWEN_CHAT = (
    "{%- if messages[0]['role'] == 'system' %}<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>\n"
    "{%- else %}<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "{%- endif %}{%- for message in messages %}{%- if message['role'] != 'system' %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}")
LLAMA3_CHAT = (
    "{{ bos_token }}{%- for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>{%- endfor %}"
    "{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{%- endif %}")

STYLES = {
    "qwen2.5-instruct": dict(model="qwen2", specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos=None,
                             eos="<|im_end|>", pad="<|endoftext|>", unk=None, chat=QWEN_CHAT, pieces="bytes"),
    "qwen3-base": dict(model="qwen3", specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos=None,
                       eos="<|endoftext|>", pad="<|endoftext|>", unk=None, chat=None, pieces="bytes"),
    "llama3-instruct": dict(model="llama", specials=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                                     "<|end_header_id|>", "<|eot_id|>"],
                            bos="<|begin_of_text|>", eos="<|eot_id|>", pad=None, unk=None, chat=LLAMA3_CHAT,
                            pieces="bytes"),
    "llama2-base": dict(model="llama", specials=["<unk>", "<s>", "</s>"], bos="<s>", eos="</s>", pad=None,
                        unk="<unk>", chat=None, pieces="metaspace"),
}


def build_tokenizer(style: str, texts: list[str], vocab_size: int = 400):
  import transformers
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
  s = STYLES[style]
  if s["pieces"] == "bytes":  # GPT-2-style byte-level BPE (Qwen, LLaMA-3)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=s["specials"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  else:  # SentencePiece-style pieces with a word-boundary marker (LLaMA-2)
    bpe = Tokenizer(models.BPE(unk_token=s["unk"], byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    bpe.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=s["specials"])
  bpe.train_from_iterator(texts, trainer)
  tokenizer = transformers.PreTrainedTokenizerFast(
      tokenizer_object=bpe, bos_token=s["bos"], eos_token=s["eos"], pad_token=s["pad"], unk_token=s["unk"],
      additional_special_tokens=[t for t in s["specials"] if t not in (s["bos"], s["eos"], s["pad"], s["unk"])])
  if s["chat"]:
    tokenizer.chat_template = s["chat"]
  return tokenizer


def build_folder(style: str, texts: list[str], root: str) -> str:
  """A Hugging Face folder (config.json, model.safetensors, tokenizer files) of a tiny random model
  whose tokenizer is `style`'s; the embedding has a few rows more than the tokenizer (as official
  checkpoints do)."""
  import torch
  import transformers
  tokenizer = build_tokenizer(style, texts)
  s = STYLES[style]
  ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
             pad_token_id=tokenizer.pad_token_id)
  sizes = dict(vocab_size=len(tokenizer) + 16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, **ids)
  config = {"qwen2": lambda: transformers.Qwen2Config(**sizes, tie_word_embeddings=True),
            "qwen3": lambda: transformers.Qwen3Config(**sizes, head_dim=8, tie_word_embeddings=True),
            "llama": lambda: transformers.LlamaConfig(**sizes, tie_word_embeddings=False)}[s["model"]]()
  torch.manual_seed(0)
  folder = os.path.join(root, style)
  transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(folder)
  tokenizer.save_pretrained(folder)
  return folder
