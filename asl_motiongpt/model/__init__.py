"""Motion joined to the LLM: motion vocabulary, MLP adapter, the four model combinations, the loss.
The assembly of a whole motion-language system from a chain config is `model/assembly.py` (and its
I/O half `model/artifacts.py`); they are imported by their module path, since they build on `data`."""
from asl_motiongpt.model.combinations import (COMBINATIONS, TRAINABLE, MotionLanguageModel, code_features,
                                              next_token_loss, next_token_nll)
from asl_motiongpt.model.vocab import MotionVocab, add_to_tokenizer, resize_for_motion

__all__ = ["COMBINATIONS", "TRAINABLE", "MotionLanguageModel", "code_features", "next_token_loss", "next_token_nll",
           "MotionVocab", "add_to_tokenizer", "resize_for_motion"]
