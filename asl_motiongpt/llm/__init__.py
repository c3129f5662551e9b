"""Our Flax LLaMA / Qwen decoders, Hugging Face conversion, KV-cache generation."""
from asl_motiongpt.llm.config import LlmConfig, UnsupportedConfigError, from_hf_dict, read_hf_config
from asl_motiongpt.llm.hf import export_hf, load_hf, load_hf_sharded
from asl_motiongpt.llm.transformer import Transformer, init_cache, init_params

__all__ = ["LlmConfig", "UnsupportedConfigError", "from_hf_dict", "read_hf_config", "load_hf", "load_hf_sharded", "export_hf",
           "Transformer", "init_cache", "init_params"]
