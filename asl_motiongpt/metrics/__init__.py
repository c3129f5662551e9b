"""Scores: pure functions of outputs and references (no model, no I/O). Translation metrics (BLEU@1-4,
ROUGE-L, CIDEr-D, WER with S/D/I) and pose errors (MPJPE, DTW-MJE). A lower layer: `eval` reports
them for a trained chain, and training computes held-out BLEU with them to pick its best checkpoint."""
from asl_motiongpt.metrics.pose_metrics import dtw_mje, mpjpe, pose_metrics
from asl_motiongpt.metrics.text_metrics import normalise, translation_metrics

__all__ = ["translation_metrics", "normalise", "pose_metrics", "dtw_mje", "mpjpe"]
