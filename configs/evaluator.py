"""The text-motion evaluator (after Guo et al.'s T2M evaluator), trained on a prepared corpus' real
(sentence, pose) pairs; `eval --evaluator <workdir>` and the ablation grid score generated signs
with it (FID, R-precision, matching distance, diversity, multimodality).

  asl-motiongpt train --config configs/evaluator.py --workdir runs/evaluator \\
      --config.data.prepared=/data/prepared --config.data.corpus=how2sign
  asl-motiongpt train --config configs/evaluator.py:tiny ...      (the embedded corpus' size)

Train it once per corpus, on its training split, and keep it fixed: figures from two evaluators
are not comparable.
"""
import ml_collections

PRESETS = ("seed", "tiny")


def stage(preset: str = "seed") -> ml_collections.ConfigDict:
  from configs import chain_base
  tiny = preset == "tiny"
  stage_config = chain_base.stage_base("evaluator",
                                       "evaluator",
                                       steps=300 if tiny else 20_000,
                                       lr=1e-3 if tiny else 2e-4,
                                       batch_size=32 if tiny else 128,
                                       warmup_steps=20 if tiny else 500)
  stage_config.joints = 50
  stage_config.dims = 3
  stage_config.train_split = "train"
  stage_config.model = ml_collections.ConfigDict()
  stage_config.model.width = 128 if tiny else 512
  stage_config.model.embed = 64 if tiny else 256
  stage_config.model.max_words = 32
  stage_config.model.max_frames = 128 if tiny else 200  # a multiple of 4; longer signs are sampled evenly down to it
  stage_config.model.temperature = 0.1
  if tiny:
    stage_config.train.log_every, stage_config.train.checkpoint_every = 25, 100
  return stage_config


def get_config(preset: str = "seed") -> ml_collections.ConfigDict:
  from configs import chain_base
  config = chain_base.get_config(preset)
  config.stages = [stage(preset)]
  return config
