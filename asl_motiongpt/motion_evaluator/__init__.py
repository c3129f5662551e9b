"""The text-motion evaluator (after Guo et al.'s T2M evaluator, used by MotionGPT and T2M-GPT): a
text encoder and a motion encoder trained contrastively on real pairs, whose embeddings score
generated signs by FID, R-precision, matching distance, diversity and multimodality."""
from asl_motiongpt.motion_evaluator.networks import EvaluatorSpec, TextMotionEvaluator

__all__ = ["EvaluatorSpec", "TextMotionEvaluator"]
