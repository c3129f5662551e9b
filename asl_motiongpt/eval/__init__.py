"""Evaluation of a trained chain: loading it (inference.py), both directions on a split with every
metric (run_eval.py). The metrics themselves are in asl_motiongpt/metrics."""
