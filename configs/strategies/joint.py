"""Joint pretraining: tokenizer -> one stage on motion-only, text-only and paired data together.

  asl-motiongpt train --config configs/strategies/joint.py[:tiny] --workdir W --config.data.prepared=P ...
"""
from configs import chain_base, tokenizer
from configs.chain_base import sized


def get_config(preset: str = "seed"):
  config = chain_base.get_config(preset)
  config.stages = [
      tokenizer.stage(preset),
      chain_base.stage("joint", {
          "m2m": 1.0,
          "t2t": 1.0,
          "t2s": 2.0,
          "s2t": 2.0
      },
                       steps=sized(preset, 30_000, 1000),
                       lr=sized(preset, 2e-4, 1e-3),
                       batch_size=sized(preset, 256, 16),
                       warmup_steps=sized(preset, 1000, 20))
  ]
  return config
