"""The gesture tokenizer on real poses: train it on the PHOENIX-2014T sample in tests/fixtures
(Progressive Transformers 3D skeletons) and print how well it reproduces them, per body part,
whole sequences (as the code cache encodes them) beside one pass of the network over the
whole sequence and independent 32-frame chunks, train and dev, with codebook use.

  python tools/tokenizer_real_poses.py                                # demo size, 1000 steps
  python tools/tokenizer_real_poses.py --set model.standardize=false  # any stage key, repeatable
  python tools/tokenizer_real_poses.py --steps 3000 --set model.width=256 --set model.codebook_size=512

Demo size: `configs/demo_tokenizer.py`, window 32, batch 16, 1000 steps.
A JSON of every figure goes to <workdir>/report.json (compare two runs with it). The workdir is a
fresh temporary folder unless --workdir is given (an existing run there resumes or is reused).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "phoenix14t_progressive_transformers")
CORPUS = "phoenix14t_pt"


def arguments(description: str, argv=None, extra=None) -> argparse.Namespace:
  """The settings every tokenizer benchmark takes (demo size by default)."""
  parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--window", type=int, default=32)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--chunk", type=int, default=32, help="frames per piece for the chunked figures")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="a tokenizer-stage override, e.g. model.width=256 (repeatable)")
  parser.add_argument("--workdir", default=None)
  if extra:
    extra(parser)
  return parser.parse_args(argv)


def train_and_report(args, prepared: str, corpus: str, splits: dict, workdir: str, sequences_per_split=None,
                     groups=None) -> dict:
  """Trains configs/demo_tokenizer.py on `corpus`'s train split with the benchmark's settings and
  reports reconstruction per body part for each split ({title: split name}): whole sequences (as the
  code cache encodes them), one pass over the whole sequence, independent chunks. `groups` ({title:
  (split, id -> bool)}) adds whole-sequence reports of parts of a split (e.g. each held-out language)."""
  from asl_motiongpt import cli
  from asl_motiongpt.config_loader import load_config
  from asl_motiongpt.data.windows import full_sequences
  from asl_motiongpt.gesture.reconstruction import format_report, mean_pose, reconstruction_report
  from asl_motiongpt.model.artifacts import load_gesture_tokenizer
  from asl_motiongpt.gesture import GestureTokenizer

  stage = "--config.stages.tokenizer."
  overrides = [
      f"--config.data.prepared={prepared}", f"--config.data.corpus={corpus}", "--config.data.eval_split=dev",
      f"--config.seed={args.seed}", f"{stage}steps={args.steps}", f"{stage}window={args.window}",
      f"{stage}batch_size={args.batch}", f"{stage}write_code_cache=false", "--config.train.log_every=100",
      f"--config.train.checkpoint_every={args.steps}"
  ]
  overrides += [stage + kv for kv in args.set]
  config_file = os.path.join(REPO, "configs", "demo_tokenizer.py")
  run_dir = os.path.join(workdir, "run")
  start = time.time()
  if cli.main(["train", "--config", config_file, "--workdir", run_dir, *overrides]) != 0:
    raise SystemExit("training failed")
  train_seconds = time.time() - start
  config = load_config(config_file, overrides)
  tokenizer, params, vq = load_gesture_tokenizer(config, run_dir)
  report = {"settings": {"steps": args.steps, "window": args.window, "batch": args.batch, "set": args.set},
            "train_seconds": round(train_seconds, 1)}
  # "whole": as the code cache and inference encode (in training-window pieces unless
  # model.windowed_inference=false); "one-pass": the whole sequence through the network at once;
  # "chunkN": independent N-frame pieces.
  one_pass = GestureTokenizer(dataclasses.replace(tokenizer.spec, window=None))
  modes = (("whole", tokenizer, None), ("one-pass", one_pass, None), (f"chunk{args.chunk}", one_pass, args.chunk))
  # Every split against the TRAINING split's mean pose: what a tokenizer that learned nothing but
  # the training data's average pose would score on it.
  training_mean = mean_pose(full_sequences(prepared, corpus, splits["train"], 3))
  for title, split in splits.items():
    for mode, tok, chunk in modes:
      split_report = reconstruction_report(tok, params, vq, full_sequences(prepared, corpus, split, 3), chunk=chunk,
                                           baseline_pose=training_mean)
      report[f"{title}/{mode}"] = split_report
      print(format_report(split_report, f"{title}, {mode} ({split_report['sequences']} sequences)"))
  for title, (split, wanted) in (groups or {}).items():
    chosen = [entry for entry in full_sequences(prepared, corpus, split, 3) if wanted(entry[0])]
    report[f"{title}/whole"] = reconstruction_report(tokenizer, params, vq, chosen, baseline_pose=training_mean)
    print(format_report(report[f"{title}/whole"], f"{title}, whole ({len(chosen)} sequences)"))
  for title in splits:
    ratio = report[f"{title}/whole"]["mpjpe"] / report[f"{title}/chunk{args.chunk}"]["mpjpe"]
    report[f"{title}/whole_over_chunk"] = ratio
    print(f"{title}: whole-sequence MPJPE / {args.chunk}-frame-chunk MPJPE = {ratio:.2f}")
  with open(os.path.join(workdir, "report.json"), "w", encoding="utf-8") as handle:
    json.dump(report, handle, indent=1)
  print(f"trained in {train_seconds:.0f} s; figures in {os.path.join(workdir, 'report.json')}")
  return report


def main(argv=None) -> dict:
  args = arguments(__doc__, argv)
  from asl_motiongpt.data.prepare import PrepareOptions, prepare
  workdir = args.workdir or tempfile.mkdtemp(prefix="tokenizer_real_poses_")
  prepared = os.path.join(workdir, "prepared")
  if not os.path.isdir(prepared):
    prepare(PrepareOptions(corpus=CORPUS, src=FIXTURES, out=prepared, dims=3))
  return train_and_report(args, prepared, CORPUS, {"train": "train", "dev": "dev"}, workdir)


if __name__ == "__main__":
  main()
