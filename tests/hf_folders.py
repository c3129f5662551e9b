"""Tiny Hugging Face model folders whose tokenizers carry the special tokens of the official ones.

Built offline: a BPE trained with `tokenizers` on the corpus' sentences, the real special-token
names and settings of each family's tokenizer_config.json (which token is BOS, EOS, pad; none where
the official one has none), the family's chat template for instruct models, and a tiny random model
of that family saved as safetensors by `transformers`.

  qwen2.5-instruct  no BOS, EOS <|im_end|>, pad <|endoftext|>, ChatML template with a system turn
  qwen3-base        no BOS, EOS and pad <|endoftext|>
  llama3-instruct   BOS <|begin_of_text|>, EOS <|eot_id|>, no pad, header-style template
  llama2-base       BOS <s>, EOS </s>, <unk>, no pad, SentencePiece-style (Metaspace) pieces

`real_size=True` builds them at the official sizes and id layouts (REAL_SIZES): the trained pieces
plus unreachable filler pieces up to the real count of ordinary tokens, then the family's special
tokens at their real ids; config.json as the official one writes it (Llama-3.1's list of three end
ids, Qwen's null BOS and its vocab_size padded beyond the tokenizer). Built in about a second.
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


LLAMA3_SPECIALS = (["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
                   + [f"<|reserved_special_token_{i}|>" for i in range(3, 248)])  # ids 128,000-128,255
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
                 "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>",
                 "<|file_sep|>"]  # ids 151,643-151,664
# ordinary tokens, special tokens after them, embedding rows (config.json vocab_size), config.json overrides
REAL_SIZES = {
    "llama3-instruct": dict(ordinary=128_000, specials=LLAMA3_SPECIALS, rows=128_256,
                            config=dict(bos_token_id=128_000, eos_token_id=[128_001, 128_008, 128_009])),
    "qwen2.5-instruct": dict(ordinary=151_643, specials=QWEN_SPECIALS, rows=151_936,
                             config=dict(bos_token_id=None, eos_token_id=151_645)),
    "qwen3-base": dict(ordinary=151_643, specials=QWEN_SPECIALS, rows=151_936,
                       config=dict(bos_token_id=None, eos_token_id=151_643)),
    # <unk> <s> </s> at 0-2, the 256 byte-fallback pieces <0x00>..<0xFF> at 3-258, 32,000 in all; a
    # folder holding only tokenizer.model (SentencePiece), as Meta's original release
    "llama2-base": dict(ordinary=32_000, specials=[], rows=32_000, config=dict(bos_token_id=1, eos_token_id=2)),
}


def _grow_to_real_size(bpe, style: str):
  """The trained pieces kept (merges name pieces, so ids may move), filler pieces that no merge
  reaches up to the real count, then the special tokens at their real ids."""
  import json
  from tokenizers import Tokenizer
  real, state = REAL_SIZES[style], json.loads(bpe.to_str())
  trained = sorted(state["model"]["vocab"].items(), key=lambda kv: kv[1])
  assert STYLES[style]["pieces"] == "bytes", "LLaMA-2 at real size is a SentencePiece folder (_sentencepiece_folder)"
  pieces, filler = [t for t, _ in trained], "ĉĉ{}"  # byte-level alphabet characters: decodable
  pieces += [filler.format(i) for i in range(real["ordinary"] - len(pieces))]
  state["model"]["vocab"] = {t: i for i, t in enumerate(pieces)}
  state["added_tokens"] = [a for a in state["added_tokens"] if a["content"] in state["model"]["vocab"]]
  for a in state["added_tokens"]:
    a["id"] = state["model"]["vocab"][a["content"]]
  grown = Tokenizer.from_str(json.dumps(state))
  grown.add_special_tokens(real["specials"])
  return grown


def _sentencepiece_folder(texts: list[str], folder: str) -> None:
  """A LLaMA-2 tokenizer as Meta shipped it: `tokenizer.model` (SentencePiece BPE, byte fallback,
  <unk> <s> </s> at 0-2, 32,000 pieces: the trained ones, then unreachable fillers) and no
  tokenizer.json; transformers converts it with `sentencepiece` on every load."""
  import io
  import json
  import sentencepiece
  from transformers.convert_slow_tokenizer import import_protobuf
  trained = io.BytesIO()
  sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=trained, vocab_size=400,
                                           model_type="bpe", byte_fallback=True, unk_id=0, bos_id=1, eos_id=2,
                                           pad_id=-1, hard_vocab_limit=False, minloglevel=2)
  proto = import_protobuf().ModelProto()
  proto.ParseFromString(trained.getvalue())
  lowest = min(p.score for p in proto.pieces)
  for i in range(REAL_SIZES["llama2-base"]["ordinary"] - len(proto.pieces)):
    piece = proto.pieces.add()
    piece.piece, piece.score, piece.type = f"▁▁{i}", lowest - 1 - i, piece.NORMAL
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "tokenizer.model"), "wb") as f:
    f.write(proto.SerializeToString())
  with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
    json.dump({"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
               "add_bos_token": True, "add_eos_token": False, "model_max_length": 4096}, f)


def build_tokenizer(style: str, texts: list[str], vocab_size: int = 400, real_size: bool = False,
                    folder: str | None = None):
  import transformers
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
  s = STYLES[style]
  if real_size and style == "llama2-base":
    import tempfile
    folder = folder or tempfile.mkdtemp(prefix="llama2-tokenizer-")
    _sentencepiece_folder(texts, folder)
    return transformers.AutoTokenizer.from_pretrained(folder)
  if s["pieces"] == "bytes":  # GPT-2-style byte-level BPE (Qwen, LLaMA-3)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[] if real_size else s["specials"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  else:  # SentencePiece-style pieces with a word-boundary marker (LLaMA-2)
    bpe = Tokenizer(models.BPE(unk_token=s["unk"], byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    bpe.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=s["specials"])
  bpe.train_from_iterator(texts, trainer)
  if real_size:
    bpe = _grow_to_real_size(bpe, style)
  tokenizer = transformers.PreTrainedTokenizerFast(
      tokenizer_object=bpe, bos_token=s["bos"], eos_token=s["eos"], pad_token=s["pad"], unk_token=s["unk"],
      additional_special_tokens=[t for t in s["specials"] if t not in (s["bos"], s["eos"], s["pad"], s["unk"])])
  if s["chat"]:
    tokenizer.chat_template = s["chat"]
  return tokenizer


def build_folder(style: str, texts: list[str], root: str, real_size: bool = False) -> str:
  """A Hugging Face folder (config.json, model.safetensors, tokenizer files) of a tiny random model
  whose tokenizer is `style`'s; the embedding has a few rows more than the tokenizer (as official
  checkpoints do), or, with real_size, exactly the official rows."""
  import torch
  import transformers
  folder = os.path.join(root, style + ("-real" if real_size else ""))
  tokenizer = build_tokenizer(style, texts, real_size=real_size, folder=folder)
  s = STYLES[style]
  ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
             pad_token_id=tokenizer.pad_token_id)
  rows = len(tokenizer) + 16
  if real_size:
    real = REAL_SIZES[style]
    assert len(tokenizer) == real["ordinary"] + len(real["specials"]), (style, len(tokenizer))
    ids.update(real["config"])
    rows = real["rows"]
  sizes = dict(vocab_size=rows, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, **ids)
  config = {"qwen2": lambda: transformers.Qwen2Config(**sizes, tie_word_embeddings=True),
            "qwen3": lambda: transformers.Qwen3Config(**sizes, head_dim=8, tie_word_embeddings=True),
            "llama": lambda: transformers.LlamaConfig(**sizes, tie_word_embeddings=False)}[s["model"]]()
  torch.manual_seed(0)
  transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(folder)
  if not (real_size and style == "llama2-base"):  # that one stays tokenizer.model alone, as Meta shipped it
    tokenizer.save_pretrained(folder)
  return folder
