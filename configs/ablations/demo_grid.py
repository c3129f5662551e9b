"""An ablation grid on the embedded corpus: strategies x combinations x LLM families, each a chain,
evaluated on the dev split, collected into one table (Markdown, CSV, PNG) like the seed's.

  asl-motiongpt ablate --config configs/ablations/demo_grid.py --workdir runs/ablation \
      --config.data.prepared=demo_workdir/prepared
"""
import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.data = ml_collections.ConfigDict()
  config.data.prepared = ""
  config.data.corpus = "phoenix14t"
  config.preset = "tiny"  # the strategies' preset (configs/chain_base.py)
  config.strategies = ["direct_alignment_fusion", "joint", "staged"]
  config.combinations = ["mlp", "llm_align", "mlp_llm", "mlp_llm_llm"]
  config.families = ["llama", "qwen3"]
  config.step_scale = 1.0  # multiplies every LLM stage's steps (small for smoke runs)
  config.tokenizer_steps = 600
  config.eval_split = "dev"
  config.eval_limit = 12
  config.beams = 1  # decoding of every cell's eval: 1 greedy, N beam search
  config.reports = True  # each cell's eval also writes report.html (every example, both signs); index.html links them
  config.length_penalty = 1.0  # beam search: scores / length ** length_penalty
  # text -> sign by a text-motion evaluator (FID, R-precision columns): a trained one's workdir, or
  # trained here once on the grid's corpus for evaluator_steps (0 and no workdir: no such columns)
  config.evaluator = ""
  config.evaluator_steps = 300
  config.metric_protocol = "slt"  # text metrics: slt | sacrebleu (metrics/text_metrics.py PROTOCOLS)
  # overrides for every cell's chain, e.g. ["--config.train.eval_every=0", "--config.data.max_len=128"]
  config.overrides = []
  return config
