"""What every strategy shares: data, the tokenizer stage, the LLM(s), the combination, training knobs.

Two presets (the part after `:` in `--config configs/strategies/<s>.py:<preset>`):
  seed   (default) the seed's hyper-parameters: AdamW, LR 2e-4 for pretraining and 1e-6 for the final
         tuning, batch 256, max token length 250, the full-size tokenizer; the LLM comes from a
         Hugging Face LLaMA/Qwen folder (`--config.llm.hf_dir=...`, its tokenizer and weights).
  tiny   the same chain at laptop size: a tiny random LLaMA-family model, small tokenizer, batch 16,
         higher learning rates (a tiny model barely moves at 1e-6), a few hundred steps. The demo,
         the ablation grid on the embedded corpus and the tests use it.
"""
import ml_collections

from configs import demo_tokenizer, tokenizer

PRESETS = ("seed", "tiny")


def get_config(preset: str = "seed") -> ml_collections.ConfigDict:
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
  tiny = preset == "tiny"
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.seed = 0
  c.combination = "llm_align"       # mlp | llm_align | mlp_llm | mlp_llm_llm
  c.adapter_hidden = 256 if tiny else 1024

  c.data = ml_collections.ConfigDict()
  c.data.prepared = ""
  c.data.corpus = "phoenix14t"      # trains the gesture tokenizer; evaluated on
  # LLM stages read a weighted mixture of prepared corpora ({} = data.corpus alone); a stage may
  # set its own. Every corpus in a mixture is encoded by the chain's tokenizer.
  c.data.mixture = {}
  c.data.eval_split = "dev"
  c.data.max_len = 250              # the seed's maximum token length
  c.data.packing = not tiny         # several examples per row (segment-masked attention), else padding
  c.data.worker_count = 0           # >0: Grain worker processes prepare batches in parallel

  c.tokenizer = demo_tokenizer.get_config() if tiny else tokenizer.get_config()
  c.tokenizer.train.write_code_cache = True

  def llm(family):
    s = ml_collections.ConfigDict()
    s.family = family               # llama | qwen2 | qwen3
    s.hf_dir = ""                   # a Hugging Face folder; empty: a random model of the sizes below
    # Sizes of a randomly initialised model (the tiny preset's); with hf_dir they come from its
    # config.json. The seed preset leaves them unset: it starts from a pretrained LLM.
    s.hidden_size = 64 if tiny else None
    s.intermediate_size = 128 if tiny else None
    s.num_layers = 2 if tiny else None
    s.num_heads = 4 if tiny else None
    s.num_kv_heads = 2 if tiny else None
    s.dtype = "float32" if tiny else "bfloat16"
    return s

  c.llm = llm("llama")
  c.llm_b = llm("qwen3")           # mlp_llm_llm's second LLM

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1
  c.mesh.fsdp = 1
  c.mesh.tensor = 1

  c.train = ml_collections.ConfigDict()
  c.train.log_every = 10 if tiny else 50
  c.train.eval_every = 100 if tiny else 1000   # held-out loss on data.eval_split; 0: off
  c.train.eval_batches = 2 if tiny else 20
  c.train.checkpoint_every = 50 if tiny else 1000
  c.train.keep_checkpoints = 2 if tiny else 3
  c.train.stop_after_steps = 0
  c.stages = []
  return c


def stage(name, tasks, steps, lr, batch_size, trainable=(), init_from="", warmup_steps=20, mixture=None):
  """One LLM stage: a task mixture (task -> weight), what trains, how long, from where.

  trainable: regexes over parameter paths ('llm/layers_0/...'), or ("motion_side",); () = the
  combination's default groups. mixture: corpus -> weight ({} or None = config.data.mixture).
  """
  s = ml_collections.ConfigDict()
  s.name, s.kind, s.tasks, s.steps, s.lr = name, "llm", dict(tasks), steps, lr
  s.batch_size, s.trainable, s.init_from, s.warmup_steps = batch_size, list(trainable), init_from, warmup_steps
  s.mixture = dict(mixture or {})
  return s


def sized(preset: str, seed, tiny):
  """The seed-scale value, or the tiny preset's."""
  return tiny if preset == "tiny" else seed
