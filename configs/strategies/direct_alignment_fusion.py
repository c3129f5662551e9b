"""Direct alignment & fusion: tokenizer -> align (only the motion side trains: the adapter, or for
llm_align the embedding/output layers that hold the new motion tokens) -> fuse (everything)."""
from configs import chain_base


def get_config():
  c = chain_base.get_config()
  align_params = (r"^adapter/",) if c.combination != "llm_align" else (r"embed_tokens/", r"lm_head/")
  c.stages = [
      chain_base.stage("align", {"t2s": 1.0, "s2t": 1.0}, steps=120, lr=2e-3, trainable=align_params),
      chain_base.stage("fuse", {"t2s": 1.0, "s2t": 1.0}, steps=120, lr=1e-3, init_from="align"),
  ]
  return c
