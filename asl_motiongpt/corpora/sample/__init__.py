"""The embedded sample corpus: a synthetic, learnable sign lexicon written in the real formats."""
from asl_motiongpt.corpora.sample.writer import SMALL, SampleSizes, write_sample_corpus

__all__ = ["write_sample_corpus", "SampleSizes", "SMALL"]
