"""Throughput of `prepare` on the embedded sample corpus (frames/s), beside reading alone.

  python tools/bench_prepare.py [--small] [--repeats 3] [--workers N] [--how2sign SENTENCES]

For each corpus: (a) reading the source files with the corpus reader only, (b) the whole prepare
(read + unified mapping + normalisation + ArrayRecord writing + statistics) in one process, (c) the
whole prepare with `--workers` processes parsing OpenPose JSON frames (How2Sign; the other readers
read one file per record and ignore it). b/a shows what preparation costs on top of parsing the
formats, c/b what the worker processes buy. Best of `--repeats` runs, interleaved.
"""
import argparse
import dataclasses
import os
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
  parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
  parser.add_argument("--how2sign",
                      type=int,
                      help="How2Sign sentences in the sample corpus (default: its size; "
                      "more, to see what the workers do at a scale where starting them is paid back)")
  args = parser.parse_args()
  absl_logging.set_verbosity(absl_logging.ERROR)
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    sizes = SMALL if args.small else SampleSizes()
    if args.how2sign:
      sizes = dataclasses.replace(sizes, how2sign=args.how2sign)
    folders = write_sample_corpus(f"{tmp}/corpus", sizes)
    print(f"sample corpus written in {time.perf_counter() - start:.1f}s")
    many = f"{args.workers} workers f/s"
    print(f"{'corpus':12s} {'frames':>8s} {'read only f/s':>14s} {'prepare f/s':>12s} {'prepare/read':>13s} "
          f"{many:>17s} {'workers/one':>12s}")
    for corpus, src in folders.items():
      read_best, prep_best, many_best, frames = float("inf"), float("inf"), float("inf"), 0
      for repeat in range(args.repeats):
        start = time.perf_counter()
        frames = sum(e.pose.num_frames for s in corpora.splits(corpus)
                     for e in corpora.read(corpus, src, s) if e.pose is not None)
        read_best = min(read_best, time.perf_counter() - start)
        for workers in sorted({1, args.workers}):
          start = time.perf_counter()
          prepare(
              PrepareOptions(corpus=corpus, src=src, out=f"{tmp}/prepared", overwrite=True, workers=workers))
          seconds = time.perf_counter() - start
          if workers == 1:
            prep_best = min(prep_best, seconds)
          if workers == args.workers:
            many_best = min(many_best, seconds)
      print(f"{corpus:12s} {frames:8d} {frames / read_best:14.0f} {frames / prep_best:12.0f} "
            f"{read_best / prep_best:13.2f} {frames / many_best:17.0f} {prep_best / many_best:12.2f}")


if __name__ == "__main__":
  main()
