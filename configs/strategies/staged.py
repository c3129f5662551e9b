"""Staged pretraining: tokenizer -> motion-only LM -> alignment on pairs -> instruction tuning at the
seed's final learning rate, 1e-6 (the tiny preset uses 1e-4 so that a tiny model moves at all).

  asl-motiongpt train --config configs/strategies/staged.py[:tiny] --workdir W --config.data.prepared=P ...
"""
from configs import chain_base, tokenizer
from configs.chain_base import sized


def get_config(preset: str = "seed"):
  config = chain_base.get_config(preset)
  batch = sized(preset, 256, 16)
  warmup = sized(preset, 1000, 20)
  config.stages = [
      tokenizer.stage(preset),
      chain_base.stage("motion_lm", {"m2m": 1.0},
                       steps=sized(preset, 10_000, 400),
                       lr=sized(preset, 2e-4, 2e-3),
                       batch_size=batch,
                       warmup_steps=warmup),
      chain_base.stage("alignment", {
          "t2s": 1.0,
          "s2t": 1.0
      },
                       steps=sized(preset, 20_000, 600),
                       lr=sized(preset, 2e-4, 1e-3),
                       batch_size=batch,
                       init_from="motion_lm",
                       warmup_steps=warmup),
      chain_base.stage("instruction", {
          "t2s": 1.0,
          "s2t": 1.0,
          "t2t": 0.5
      },
                       steps=sized(preset, 5_000, 300),
                       lr=sized(preset, 1e-6, 1e-4),
                       batch_size=batch,
                       init_from="alignment",
                       warmup_steps=sized(preset, 100, 20)),
  ]
  return config
