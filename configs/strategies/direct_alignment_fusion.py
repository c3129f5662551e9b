"""Direct alignment & fusion: tokenizer -> align (only the motion side trains: the adapter, or for
llm_align the embedding/output rows of the new motion tokens) -> fuse (everything, final LR).

  asl-motiongpt train --config configs/strategies/direct_alignment_fusion.py --workdir W \
      --config.data.prepared=P --config.llm.hf_dir=HF_LLAMA_OR_QWEN [--config.combination=mlp_llm]
  asl-motiongpt train --config configs/strategies/direct_alignment_fusion.py:tiny ...   (laptop size)
"""
from configs import chain_base, tokenizer
from configs.chain_base import sized


def get_config(preset: str = "seed"):
  config = chain_base.get_config(preset)
  batch = sized(preset, 256, 16)
  paired = {"t2s": 1.0, "s2t": 1.0}
  config.stages = [
      tokenizer.stage(preset),
      # "motion_side" is resolved at run time, after command-line overrides of the combination
      chain_base.stage("align",
                       paired,
                       steps=sized(preset, 20_000, 600),
                       lr=sized(preset, 2e-4, 2e-3),
                       batch_size=batch,
                       trainable=("motion_side",),
                       warmup_steps=sized(preset, 1000, 20)),
      chain_base.stage("fuse",
                       paired,
                       steps=sized(preset, 5_000, 600),
                       lr=sized(preset, 1e-6, 1e-3),
                       batch_size=batch,
                       init_from="align",
                       warmup_steps=sized(preset, 100, 20)),
  ]
  return config
