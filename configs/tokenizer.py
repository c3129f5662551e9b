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
  stage_config = chain_base.stage_base("tokenizer",
                                       "tokenizer",
                                       steps=600 if tiny else 100_000,
                                       lr=1e-3 if tiny else 2e-4,
                                       batch_size=32 if tiny else 256,
                                       warmup_steps=50 if tiny else 1000)
  stage_config.window = 64  # frames per training window
  stage_config.joints = 50  # 72 with the face block
  stage_config.dims = 3
  stage_config.train_split = "train"
  stage_config.write_code_cache = True  # codes of every example of data.corpus, for the LLM stages
  # Training windows changed in ways that keep a sign's meaning (asl_motiongpt/pose/augment.py); 0: off
  stage_config.augment = ml_collections.ConfigDict({"rotation_degrees": 0.0, "tilt_degrees": 0.0, "scale": 0.0,
                                                    "shift": 0.0, "speed": 0.0, "hand_dropout": 0.0, "mirror": 0.0,
                                                    "short_piece": 0.0})
  stage_config.model = ml_collections.ConfigDict()
  stage_config.model.width = 64 if tiny else 512
  stage_config.model.depth = 3
  stage_config.model.dilation_growth = 3
  stage_config.model.down_t = 2
  stage_config.model.code_dim = 64 if tiny else 512
  stage_config.model.codebook_size = 256 if tiny else 1024
  stage_config.model.activation = "relu"
  stage_config.model.ema_decay = 0.99
  stage_config.model.reset_threshold = 0.5  # x the fair share of a batch's vectors per code (gesture/vqvae.py)
  stage_config.model.dead_code_reset = True
  stage_config.model.commitment = 0.02
  stage_config.model.velocity_weight = 0.5
  stage_config.model.standardize = True  # features standardised by the training split's statistics (stats.json)
  stage_config.model.hand_relative = False  # fingers as offsets from their wrist
  stage_config.model.windowed_inference = True  # encode/decode sequences in pieces of `window` frames, as trained
  stage_config.model.partwise = False  # separate codebooks per body part (tokenizer only: LLM stages refuse it)
  # false: no codebook, the latents decoded as they are (a plain autoencoder): the bound a codebook is
  # measured against in the benchmarks (tools/tokenizer_generalisation.py); no codes, so no code cache
  # and no LLM stages
  stage_config.model.quantize = True
  # codebooks per part, each quantising what the ones before left over (MoMask's residual VQ); more than 1:
  # several codes per time step, which the LLM stages cannot read yet (they refuse it, as part-wise codes)
  stage_config.model.residual_levels = 1
  stage_config.model.dtype = "float32"
  if tiny:
    stage_config.train.log_every, stage_config.train.checkpoint_every = 25, 200
  return stage_config


def get_config(preset: str = "seed") -> ml_collections.ConfigDict:
  from configs import chain_base
  config = chain_base.get_config(preset)
  config.stages = [stage(preset)]
  return config
