"""Motion joined to the LLM: motion vocabulary, MLP adapter, the four model combinations, the loss."""
from asl_motiongpt.model.combinations import (COMBINATIONS, TRAINABLE, MotionLanguageModel, code_features,
                                              next_token_loss, next_token_nll, trainable_mask)
from asl_motiongpt.model.vocab import MotionVocab, add_to_tokenizer, resize_for_motion

__all__ = ["COMBINATIONS", "TRAINABLE", "MotionLanguageModel", "code_features", "next_token_loss", "next_token_nll",
           "trainable_mask", "MotionVocab",
           "add_to_tokenizer", "resize_for_motion"]
