"""Direct alignment & fusion: tokenizer -> align (only the motion side trains: the adapter, or for
llm_align the embedding/output layers that hold the new motion tokens) -> fuse (everything)."""
from configs import chain_base


def get_config():
  c = chain_base.get_config()
  c.stages = [
      # "motion_side": the adapter, or with llm_align only the motion-token rows (resolved at run time,
      # after command-line overrides of the combination)
      chain_base.stage("align", {"t2s": 1.0, "s2t": 1.0}, steps=120, lr=2e-3, trainable=("motion_side",)),
      chain_base.stage("fuse", {"t2s": 1.0, "s2t": 1.0}, steps=120, lr=1e-3, init_from="align"),
  ]
  return c
