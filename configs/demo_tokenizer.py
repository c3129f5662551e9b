"""A tokenizer small enough to train on the embedded sample corpus in a few CPU minutes."""
from configs import tokenizer


def get_config():
  c = tokenizer.get_config()
  c.data.corpus = "phoenix14t"
  c.data.batch_size = 32
  c.model.width = 64
  c.model.code_dim = 64
  c.model.codebook_size = 256
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 50
  c.train.steps = 600
  c.train.log_every = 25
  c.train.checkpoint_every = 200
  return c
