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
  s = chain_base.stage_base("evaluator", "evaluator", steps=300 if tiny else 20_000, lr=1e-3 if tiny else 2e-4,
                            batch_size=32 if tiny else 128, warmup_steps=20 if tiny else 500)
  s.joints = 50
  s.dims = 3
  s.train_split = "train"
  s.model = ml_collections.ConfigDict()
  s.model.width = 128 if tiny else 512
  s.model.embed = 64 if tiny else 256
  s.model.max_words = 32
  s.model.max_frames = 128 if tiny else 200   # a multiple of 4; longer signs are sampled evenly down to it
  s.model.temperature = 0.1
  if tiny:
    s.train.log_every, s.train.checkpoint_every = 25, 100
  return s


def get_config(preset: str = "seed") -> ml_collections.ConfigDict:
  from configs import chain_base
  c = chain_base.get_config(preset)
  c.stages = [stage(preset)]
  return c
