"""Staged pretraining: tokenizer -> motion-only LM -> alignment on pairs -> instruction tuning
(the seed's final learning rate, 1e-6, at real scale; higher here so a tiny model moves at all)."""
from configs import chain_base


def get_config():
  c = chain_base.get_config()
  c.stages = [
      chain_base.stage("motion_lm", {"m2m": 1.0}, steps=80, lr=2e-3),
      chain_base.stage("alignment", {"t2s": 1.0, "s2t": 1.0}, steps=120, lr=1e-3, init_from="motion_lm"),
      chain_base.stage("instruction", {"t2s": 1.0, "s2t": 1.0, "t2t": 0.5}, steps=60, lr=1e-4,
                       init_from="alignment"),
  ]
  return c
