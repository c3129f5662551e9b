"""What every strategy shares: data, the tokenizer stage, the LLM(s), the combination, training knobs.

Tiny model sizes here so the whole chain runs on a laptop CPU; real runs set `llm.hf_dir` to a
Hugging Face LLaMA/Qwen folder (its tokenizer and weights are used) and the seed's sizes.
"""
import ml_collections

from configs import demo_tokenizer


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.combination = "llm_align"       # mlp | llm_align | mlp_llm | mlp_llm_llm
  c.adapter_hidden = 256

  c.data = ml_collections.ConfigDict()
  c.data.prepared = ""
  c.data.corpus = "phoenix14t"
  c.data.eval_split = "dev"
  c.data.max_len = 250              # the seed's maximum token length

  c.tokenizer = demo_tokenizer.get_config()
  c.tokenizer.train.write_code_cache = True

  def llm(family):
    s = ml_collections.ConfigDict()
    s.family = family               # llama | qwen2 | qwen3
    s.hf_dir = ""                   # a Hugging Face folder; empty: a tiny random model of the sizes below
    s.hidden_size = 64
    s.intermediate_size = 128
    s.num_layers = 2
    s.num_heads = 4
    s.num_kv_heads = 2
    s.dtype = "float32"
    return s

  c.llm = llm("llama")
  c.llm_b = llm("qwen3")           # mlp_llm_llm's second LLM

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1
  c.mesh.fsdp = 1
  c.mesh.tensor = 1

  c.train = ml_collections.ConfigDict()
  c.train.log_every = 10
  c.train.checkpoint_every = 50
  c.train.keep_checkpoints = 2
  c.train.stop_after_steps = 0
  c.stages = []
  return c


def stage(name, tasks, steps, lr=2e-4, batch_size=16, trainable=(), init_from="", warmup_steps=20):
  s = ml_collections.ConfigDict()
  s.name, s.kind, s.tasks, s.steps, s.lr = name, "llm", dict(tasks), steps, lr
  s.batch_size, s.trainable, s.init_from, s.warmup_steps = batch_size, list(trainable), init_from, warmup_steps
  return s
