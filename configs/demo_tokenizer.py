"""A tokenizer small enough to train on the embedded sample corpus in a few CPU minutes
(= `configs/tokenizer.py:tiny`)."""
from configs import tokenizer


def get_config():
  return tokenizer.get_config("tiny")
