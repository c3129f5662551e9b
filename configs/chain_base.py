"""What every strategy shares: data, the LLM(s), the combination, the mesh, the optimizer and loop
knobs; the stages (the gesture tokenizer first, then LLM stages) are the strategy's.

Two presets (the part after `:` in `--config configs/strategies/<s>.py:<preset>`):
  seed   (default) the seed's hyper-parameters: AdamW, LR 2e-4 for pretraining and 1e-6 for the final
         tuning, batch 256, max token length 250, the full-size tokenizer; the LLM comes from a
         Hugging Face LLaMA/Qwen folder (`--config.llm.hf_dir=...`, its tokenizer and weights).
  tiny   the same chain at laptop size: a tiny random LLaMA-family model, small tokenizer, batch 16,
         higher learning rates (a tiny model barely moves at 1e-6), a few hundred steps. The demo,
         the ablation grid on the embedded corpus and the tests use it.

Inheritance: a stage's `seed`, `mesh.*`, `optim.*` and `train.*` fields are None unless the stage
sets them, and None means "the chain's value" (resolved by asl_motiongpt/chain_config.py). So
`--config.seed=3`, `--config.mesh.fsdp=8` or `--config.train.stop_after_steps=50` reach every stage,
the tokenizer included, and `--config.stages.instruction.optim.b2=0.95` changes one stage.
List entries are addressed by index or by stage name: `--config.stages.0.steps` = `--config.stages.tokenizer.steps`.
"""
import ml_collections

PRESETS = ("seed", "tiny")


def get_config(preset: str = "seed") -> ml_collections.ConfigDict:
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
  tiny = preset == "tiny"
  config = ml_collections.ConfigDict()
  config.preset = preset
  config.seed = 0
  config.combination = "llm_align"  # mlp | llm_align | mlp_llm | mlp_llm_llm
  config.adapter_hidden = 256 if tiny else 1024

  config.data = ml_collections.ConfigDict()
  config.data.prepared = ""  # the --out folder of `asl-motiongpt prepare`
  config.data.corpus = "phoenix14t"  # trains the gesture tokenizer; evaluated on
  # LLM stages read a weighted mixture of prepared corpora ({} = data.corpus alone); a stage may
  # set its own. Every corpus in a mixture is encoded by the chain's tokenizer.
  config.data.mixture = {}
  config.data.eval_split = "dev"  # "" skips held-out evaluation
  config.data.max_len = 250  # the seed's maximum token length
  # Instruct checkpoints: wrap each task prompt in the tokenizer's own chat template (a user turn,
  # then the assistant's opening) instead of a bare [bos] prompt.
  config.data.chat_template = False
  config.data.packing = not tiny  # several examples per row (segment-masked attention), else padding
  config.data.worker_count = 0  # >0: Grain worker processes prepare batches (resume with the same count)

  def llm(family):
    stage_config = ml_collections.ConfigDict()
    stage_config.family = family  # llama | qwen2 | qwen3
    stage_config.hf_dir = ""  # a Hugging Face folder; empty: a random model of the sizes below
    # Sizes of a randomly initialised model (the tiny preset's); with hf_dir they come from its
    # config.json. The seed preset leaves them unset: it starts from a pretrained LLM.
    stage_config.hidden_size = 64 if tiny else None
    stage_config.intermediate_size = 128 if tiny else None
    stage_config.num_layers = 2 if tiny else None
    stage_config.num_heads = 4 if tiny else None
    stage_config.num_kv_heads = 2 if tiny else None
    stage_config.dtype = "float32" if tiny else "bfloat16"
    # Memory/speed trade-offs of the compiled step; neither changes the loss.
    stage_config.remat = "none"  # none | full | dots_saveable | nothing_saveable | dots_with_no_batch_dims_saveable
    stage_config.scan_layers = False  # one nn.scan over the layers (faster compiles of deep models)
    stage_config.causal_block = 0  # > 0: cacheless attention in query blocks, skipping the masked upper triangle
    stage_config.attention = "xla"  # xla | cudnn (cuDNN flash attention, GPU, bf16/fp16) | auto (cudnn where it can run)
    # LoRA (asl_motiongpt/llm/lora.py): rank > 0 trains low-rank adapters instead of this LLM's weights
    stage_config.lora_rank = 0
    stage_config.lora_alpha = 16.0
    stage_config.lora_dropout = 0.0  # dropout on the adapters' input while training (PEFT's lora_dropout)
    stage_config.lora_targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                 "down_proj"]  # regexes
    return stage_config

  config.llm = llm("llama")
  config.llm_b = llm("qwen3")  # mlp_llm_llm's second LLM

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1  # -1: the remaining devices
  config.mesh.fsdp = 1
  config.mesh.tensor = 1
  config.mesh.dcn = ml_collections.ConfigDict({
      "data": 1,
      "fsdp": 1,
      "tensor": 1
  })  # multi-slice: axes across slices
  # Logical axis -> mesh axes, e.g. [["embed", "fsdp"], ["mlp", ["tensor", "fsdp"]]]; [] = the default
  # table (asl_motiongpt/parallel/rules.py).
  config.rules = []

  config.optim = ml_collections.ConfigDict()
  config.optim.schedule = "cosine"  # cosine | linear | constant, after a linear warm-up from 0
  config.optim.warmup_steps = 20 if tiny else 1000
  config.optim.final_lr_fraction = 0.1  # the LR at the last step, as a fraction of the peak
  config.optim.b1 = 0.9
  config.optim.b2 = 0.99
  config.optim.weight_decay = 0.0
  config.optim.grad_clip = 1.0  # global-norm clipping; 0: off

  config.train = ml_collections.ConfigDict()
  config.train.accumulation = 1  # microbatches per step (same update, less activation memory)
  # >0: the loss projects this many positions to logits at a time; 0: all at once. The seed preset starts
  # from real checkpoints (128k-152k tokens): whole [batch, length, vocab] float32 logits would be 39 GB
  # for its global batch of 256 x 250 at 152k, 152 MB per sequence.
  config.train.loss_chunk = 0 if tiny else 64
  config.train.log_every = 10 if tiny else 50
  config.train.eval_every = 100 if tiny else 1000  # held-out loss on data.eval_split; 0: off
  config.train.eval_batches = 2 if tiny else 20
  config.train.checkpoint_every = 50 if tiny else 1000
  config.train.keep_checkpoints = 2 if tiny else 3
  config.train.stop_after_steps = 0  # >0: save and stop after this many steps of this run (time-limited jobs)
  config.train.keep_best = 1  # 1: keep the parameters at the best held-out evaluation (<stage>/best/)
  # What "best" means: loss (held-out, lowest) | bleu4 (sign -> text) | back_translation_bleu4
  # (text -> sign -> text); a BLEU needs eval_decode > 0 (train/held_out_decoding.py)
  config.train.best_metric = "loss"
  config.train.eval_decode = 0  # >0: each evaluation also decodes this many held-out examples (greedy): BLEU-4s
  config.train.patience = 0  # >0: end a stage after this many held-out evaluations without a new best
  # 1: each held-out evaluation of an LLM stage also signs the first held-out sentence and logs the sign
  # beside the reference as a TensorBoard image (train/held_out_pictures.py); off in tiny (its decoding compiles)
  config.train.eval_pictures = 0 if tiny else 1
  config.stages = []
  return config


OPTIM_KEYS = ("schedule", "warmup_steps", "final_lr_fraction", "b1", "b2", "weight_decay", "grad_clip")
TRAIN_KEYS = ("accumulation", "loss_chunk", "log_every", "eval_every", "eval_batches", "checkpoint_every", "keep_checkpoints",
              "stop_after_steps", "keep_best", "best_metric", "eval_decode", "patience", "eval_pictures")


def stage_base(name: str, kind: str, steps: int, lr: float, batch_size: int, warmup_steps=None):
  """Fields every stage has; the inheritable ones are None (= the chain's value)."""
  stage_config = ml_collections.ConfigDict()
  stage_config.name, stage_config.kind, stage_config.steps, stage_config.lr, stage_config.batch_size = name, kind, steps, lr, batch_size
  stage_config.seed = ml_collections.FieldReference(None, field_type=int)
  stage_config.mesh = ml_collections.ConfigDict(
      {k: ml_collections.FieldReference(None, field_type=int) for k in ("data", "fsdp", "tensor")})
  stage_config.optim = ml_collections.ConfigDict({
      k:
          ml_collections.FieldReference(
              None, field_type=str if k == "schedule" else int if k == "warmup_steps" else float)
      for k in OPTIM_KEYS
  })
  stage_config.optim.warmup_steps = warmup_steps
  stage_config.train = ml_collections.ConfigDict({
      k: ml_collections.FieldReference(None, field_type=str if k == "best_metric" else int) for k in TRAIN_KEYS
  })
  return stage_config


def stage(name, tasks, steps, lr, batch_size, trainable=(), init_from="", warmup_steps=None, mixture=None):
  """One LLM stage: a task mixture (task -> weight), what trains, how long, from where.

  trainable: regexes over parameter paths ('llm/layers_0/...'), or ("motion_side",); () = the
  combination's default groups. mixture: corpus -> weight ({} or None = config.data.mixture).
  """
  stage_config = stage_base(name, "llm", steps, lr, batch_size, warmup_steps)
  stage_config.tasks, stage_config.trainable, stage_config.init_from, stage_config.mixture = dict(
      tasks), list(trainable), init_from, dict(mixture or {})
  stage_config.init_from_checkpoint = "last"  # of the init_from stage: last | best (its lowest held-out loss) | a step
  return stage_config


def sized(preset: str, seed, tiny):
  """The seed-scale value, or the tiny preset's."""
  return tiny if preset == "tiny" else seed
