"""The gesture tokenizer stage, with the seed's hyper-parameters (T2M-GPT / MotionGPT).

  asl-motiongpt train --config configs/tokenizer.py --workdir runs/tok \
      --config.data.prepared=/data/prepared --config.data.corpus=phoenix14t
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.stage = "tokenizer"
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.prepared = ""            # the --out folder of `asl-motiongpt prepare`
  c.data.corpus = "phoenix14t"
  c.data.train_split = "train"
  c.data.eval_split = "dev"       # "" to skip evaluation
  c.data.window = 64              # frames per training window
  c.data.batch_size = 256
  c.data.joints = 50              # 72 with the face block
  c.data.dims = 3
  c.data.worker_count = 0         # >0: Grain worker processes cut the windows (resume with the same count)

  c.model = ml_collections.ConfigDict()
  c.model.width = 512
  c.model.depth = 3
  c.model.dilation_growth = 3
  c.model.down_t = 2
  c.model.code_dim = 512
  c.model.codebook_size = 1024
  c.model.activation = "relu"
  c.model.ema_decay = 0.99
  c.model.reset_threshold = 1.0
  c.model.dead_code_reset = True
  c.model.commitment = 0.02
  c.model.velocity_weight = 0.5
  c.model.partwise = False
  c.model.dtype = "float32"

  c.mesh = ml_collections.ConfigDict()  # -1: the remaining devices
  c.mesh.data = -1
  c.mesh.fsdp = 1
  c.mesh.tensor = 1

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 2e-4
  c.optim.warmup_steps = 1000
  c.optim.final_lr_fraction = 0.1
  c.optim.b1 = 0.9
  c.optim.b2 = 0.99
  c.optim.weight_decay = 0.0
  c.optim.grad_clip = 1.0

  c.train = ml_collections.ConfigDict()
  c.train.steps = 100_000
  c.train.log_every = 50
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3
  c.train.write_code_cache = True
  c.train.stop_after_steps = 0    # >0: save and stop after this many steps of this run (time-limited jobs)
  return c
