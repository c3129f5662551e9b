"""asl-motiongpt: LLM-based sign-language translation and production in JAX/Flax."""
__version__ = "0.1.0"
