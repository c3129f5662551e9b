"""Throughput of `prepare` on the embedded sample corpus (frames/s), beside reading alone.

  python tools/bench_prepare.py [--small] [--repeats 3]

For each corpus: (a) reading the source files with the corpus reader only, (b) the whole prepare
(read + unified mapping + normalisation + ArrayRecord writing + statistics). The ratio b/a shows
what preparation costs on top of parsing the formats. Best of `--repeats` runs.
"""
import argparse
import tempfile
import time

from absl import logging as absl_logging

from asl_motiongpt import corpora
from asl_motiongpt.corpora.sample import SMALL, SampleSizes, write_sample_corpus
from asl_motiongpt.data.prepare import PrepareOptions, prepare


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--small", action="store_true")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  absl_logging.set_verbosity(absl_logging.ERROR)
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    folders = write_sample_corpus(f"{tmp}/corpus", SMALL if args.small else SampleSizes())
    print(f"sample corpus written in {time.perf_counter() - start:.1f}s")
    print(f"{'corpus':12s} {'frames':>8s} {'read only f/s':>14s} {'prepare f/s':>12s} {'prepare/read':>13s}")
    for corpus, src in folders.items():
      read_best, prep_best, frames = float("inf"), float("inf"), 0
      for r in range(args.repeats):
        start = time.perf_counter()
        frames = sum(e.pose.num_frames for s in corpora.splits(corpus)
                     for e in corpora.read(corpus, src, s) if e.pose is not None)
        read_best = min(read_best, time.perf_counter() - start)
        start = time.perf_counter()
        prepare(PrepareOptions(corpus=corpus, src=src, out=f"{tmp}/prepared", overwrite=True))
        prep_best = min(prep_best, time.perf_counter() - start)
      print(f"{corpus:12s} {frames:8d} {frames / read_best:14.0f} {frames / prep_best:12.0f} "
            f"{read_best / prep_best:13.2f}")


if __name__ == "__main__":
  main()
