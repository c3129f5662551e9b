"""The gesture tokenizer: a VQ-VAE that turns pose sequences into discrete codes and back."""
from asl_motiongpt.gesture.tokenizer import GestureTokenizer, TokenizerSpec
from asl_motiongpt.gesture.vqvae import VqConfig

__all__ = ["GestureTokenizer", "TokenizerSpec", "VqConfig"]
