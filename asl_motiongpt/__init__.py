"""asl-motiongpt: LLM-based sign-language translation and production in JAX/Flax."""
import os as _os

# We use `transformers` for tokenizers only (our models are Flax); without PyTorch it advises on
# every import that "PyTorch was not found. Models won't be available…", which reads like an error
# on a normal run. Advisory notices only: its warnings and errors still show. A user's own setting wins.
_os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

__version__ = "0.1.0"
