"""Evaluation: translation metrics (BLEU@1-4, ROUGE-L, CIDEr-D, WER with S/D/I) and pose errors."""
from asl_motiongpt.eval.pose_metrics import dtw_mje, mpjpe, pose_metrics
from asl_motiongpt.eval.text_metrics import normalise, translation_metrics

__all__ = ["translation_metrics", "normalise", "pose_metrics", "dtw_mje", "mpjpe"]
