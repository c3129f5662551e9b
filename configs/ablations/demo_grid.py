"""An ablation grid on the embedded corpus: strategies x combinations x LLM families, each a chain,
evaluated on the dev split, collected into one table (Markdown, CSV, PNG) like the seed's.

  asl-motiongpt ablate --config configs/ablations/demo_grid.py --workdir runs/ablation \
      --config.data.prepared=demo_workdir/prepared
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict()
  c.data.prepared = ""
  c.data.corpus = "phoenix14t"
  c.preset = "tiny"              # the strategies' preset (configs/chain_base.py)
  c.strategies = ["direct_alignment_fusion", "joint", "staged"]
  c.combinations = ["mlp", "llm_align", "mlp_llm", "mlp_llm_llm"]
  c.families = ["llama", "qwen3"]
  c.step_scale = 1.0            # multiplies every LLM stage's steps (small for smoke runs)
  c.tokenizer_steps = 600
  c.eval_split = "dev"
  c.eval_limit = 12
  c.beams = 1                   # decoding of every cell's eval: 1 greedy, N beam search
  c.length_penalty = 1.0        # beam search: scores / length ** length_penalty
  # text -> sign by a text-motion evaluator (FID, R-precision columns): a trained one's workdir, or
  # trained here once on the grid's corpus for evaluator_steps (0 and no workdir: no such columns)
  c.evaluator = ""
  c.evaluator_steps = 300
  c.metric_protocol = "slt"     # text metrics: slt | sacrebleu (metrics/text_metrics.py PROTOCOLS)
  # overrides for every cell's chain, e.g. ["--config.train.eval_every=0", "--config.data.max_len=128"]
  c.overrides = []
  return c
