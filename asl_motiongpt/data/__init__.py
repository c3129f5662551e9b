"""Data: ArrayRecord preparation (and, as later issues land, Grain pipelines and batching)."""
