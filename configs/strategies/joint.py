"""Joint pretraining: tokenizer -> one stage on motion-only, text-only and paired data together."""
from configs import chain_base


def get_config():
  c = chain_base.get_config()
  c.stages = [chain_base.stage("joint", {"m2m": 1.0, "t2t": 1.0, "t2s": 2.0, "s2t": 2.0}, steps=200, lr=1e-3)]
  return c
