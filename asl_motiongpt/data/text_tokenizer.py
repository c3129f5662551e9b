"""A small word-level tokenizer trained offline on corpus text (for tiny models in the demo and the
tests; real runs use the LLM's own tokenizer from its Hugging Face folder)."""
from __future__ import annotations

from collections.abc import Iterable


def train_word_tokenizer(texts: Iterable[str], out_dir: str | None = None, min_frequency: int = 1):
  from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
  from transformers import PreTrainedTokenizerFast
  tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
  tok.normalizer = normalizers.NFC()
  tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
  # every word that occurs min_frequency times (the trainer's default would keep only the 30,000 most frequent)
  trainer = trainers.WordLevelTrainer(vocab_size=2**31 - 1, special_tokens=["<pad>", "<unk>", "<s>", "</s>"],
                                      min_frequency=min_frequency)
  tok.train_from_iterator(list(texts), trainer)
  fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                 eos_token="</s>")
  if out_dir:
    import tempfile
    from asl_motiongpt import storage
    with tempfile.TemporaryDirectory() as local:  # save_pretrained writes local files; a bucket gets a copy
      fast.save_pretrained(local)
      storage.upload(local, out_dir)
  return fast


def load_word_tokenizer(directory: str):
  """A tokenizer written by train_word_tokenizer (a local folder or a bucket path). Loaded as the
  class it was saved as rather than through AutoTokenizer, which reads model configs and with them
  imports torch when it is installed (seconds at every start of a training process)."""
  from transformers import PreTrainedTokenizerFast
  from asl_motiongpt import storage
  return PreTrainedTokenizerFast.from_pretrained(storage.local_copy(directory))
