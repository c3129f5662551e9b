"""The gesture tokenizer stage, with the seed's hyper-parameters (T2M-GPT / MotionGPT).

Every strategy's chain starts with this stage (`configs/chain_base.py`); alone it is a chain of one:

  asl-motiongpt train --config configs/tokenizer.py --workdir runs/tok \
      --config.data.prepared=/data/prepared --config.data.corpus=phoenix14t
  asl-motiongpt train --config configs/tokenizer.py:tiny ...     (the demo's laptop size)

A stage sets only what is its own; seed, mesh, optimizer and loop knobs it leaves at None inherit the
chain's (`asl_motiongpt/chain_config.py: resolve_stage`).
"""
import ml_collections

PRESETS = ("seed", "tiny")


def stage(preset: str = "seed") -> ml_collections.ConfigDict:
  from configs import chain_base
  tiny = preset == "tiny"
  s = chain_base.stage_base("tokenizer", "tokenizer", steps=600 if tiny else 100_000,
                            lr=1e-3 if tiny else 2e-4, batch_size=32 if tiny else 256,
                            warmup_steps=50 if tiny else 1000)
  s.window = 64                   # frames per training window
  s.joints = 50                   # 72 with the face block
  s.dims = 3
  s.train_split = "train"
  s.write_code_cache = True       # codes of every example of data.corpus, for the LLM stages
  s.model = ml_collections.ConfigDict()
  s.model.width = 64 if tiny else 512
  s.model.depth = 3
  s.model.dilation_growth = 3
  s.model.down_t = 2
  s.model.code_dim = 64 if tiny else 512
  s.model.codebook_size = 256 if tiny else 1024
  s.model.activation = "relu"
  s.model.ema_decay = 0.99
  s.model.reset_threshold = 0.5    # x the fair share of a batch's vectors per code (gesture/vqvae.py)
  s.model.dead_code_reset = True
  s.model.commitment = 0.02
  s.model.velocity_weight = 0.5
  s.model.standardize = True      # features standardised by the training split's statistics (stats.json)
  s.model.hand_relative = False   # fingers as offsets from their wrist
  s.model.windowed_inference = True  # encode/decode sequences in pieces of `window` frames, as trained
  s.model.partwise = False        # separate codebooks per body part (tokenizer only: LLM stages refuse it)
  s.model.dtype = "float32"
  if tiny:
    s.train.log_every, s.train.checkpoint_every = 25, 200
  return s


def get_config(preset: str = "seed") -> ml_collections.ConfigDict:
  from configs import chain_base
  c = chain_base.get_config(preset)
  c.stages = [stage(preset)]
  return c
