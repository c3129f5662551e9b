"""The gesture tokenizer on signers and languages it has never seen: a benchmark on the fingerspelling
lexicon of sign.mt (`assets/fingerspelling_lexicon/` of sign-language-processing/spoken-to-signed-translation,
MIT: MediaPipe Holistic .pose files with refined face and world landmarks, an index.csv with path,
spoken and signed language and letter).

  python tools/tokenizer_generalisation.py --src spoken_to_signed/assets/fingerspelling_lexicon
  python tools/tokenizer_generalisation.py --src ... --steps 3000 --set model.width=256 --set model.codebook_size=512

Only the signed languages in LANGUAGES are read (the lexicon's others are kept aside for an
independent check). They are split twice: HELD_OUT languages are never trained on ("unseen
languages": new signers, new handshapes), and every FILE_STRIDE-th file of the training languages is
held out too ("unseen files": seen languages and signers, new recordings). The tokenizer trains on the
rest at demo size (configs/demo_tokenizer.py, window 32, batch 16, 1000 steps) and the report gives,
per split and per held-out language, each body part's error as a fraction of the training mean pose's
error (whole sequences, as the code cache encodes them; for hands also split into place and shape),
codebook use and seconds; report.json holds every figure.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tokenizer_real_poses import arguments, train_and_report  # noqa: E402  (the shared benchmark steps)

LANGUAGES = ("asq", "bzs", "eso", "gss", "lls", "mfs", "psr", "sgg", "ssp", "tsm", "ukl")
HELD_OUT = ("gss", "psr", "ukl")
FILE_STRIDE = 5
CORPUS = "pose_dir"


def lexicon_rows(src: str) -> list[dict]:
  """index.csv rows of the chosen languages whose .pose file is there (missing ones are counted)."""
  table = os.path.join(src, "index.csv")
  if not os.path.exists(table):
    raise SystemExit(f"{table} not found: --src is the lexicon folder (assets/fingerspelling_lexicon)")
  rows, missing = [], 0
  with open(table, encoding="utf-8", newline="") as handle:
    for row in csv.DictReader(handle):
      if row["signed_language"] not in LANGUAGES:
        continue
      if not os.path.exists(os.path.join(src, row["path"])):
        missing += 1
        continue
      rows.append(row)
  print(f"lexicon: {len(rows)} files of {len(LANGUAGES)} signed languages ({missing} listed but missing)")
  return rows


def split_of(row: dict, position: int) -> str:
  if row["signed_language"] in HELD_OUT:
    return "dev"  # unseen languages
  return "test" if position % FILE_STRIDE == FILE_STRIDE - 1 else "train"  # unseen files


def build_corpus(src: str, folder: str) -> dict:
  """A pose_dir corpus (links to the lexicon's files and an index.tsv with a split column)."""
  os.makedirs(folder, exist_ok=True)
  counts: dict[str, int] = {}
  seen_per_language: dict[str, int] = {}
  with open(os.path.join(folder, "index.tsv"), "w", encoding="utf-8") as index:
    index.write("id\ttext\tsigner\tsplit\n")
    for row in sorted(lexicon_rows(src), key=lambda row: row["path"]):
      language = row["signed_language"]
      position = seen_per_language[language] = seen_per_language.get(language, -1) + 1
      split = split_of(row, position)
      entry_id = f"{language}_{os.path.splitext(os.path.basename(row['path']))[0]}"
      link = os.path.join(folder, f"{entry_id}.pose")
      if not os.path.lexists(link):
        os.symlink(os.path.abspath(os.path.join(src, row["path"])), link)
      index.write(f"{entry_id}\t{row['words'] or '-'}\t{language}\t{split}\n")
      counts[split] = counts.get(split, 0) + 1
  print(f"splits: train {counts.get('train', 0)}, unseen files {counts.get('test', 0)}, "
        f"unseen languages {counts.get('dev', 0)} ({', '.join(HELD_OUT)})")
  return counts


def moving_average_floor(prepared: str, split: str, training_mean, frames: int) -> dict[str, float]:
  """{part: error of a centred `frames`-frame moving average of each sequence (present frames only)
  against the sequence itself / the training mean pose's error}: how much of a split's motion is
  faster than `frames` frames, which a decoder smooth at that scale would not reproduce."""
  import numpy as np
  from asl_motiongpt.data.windows import full_sequences
  from asl_motiongpt.gesture.reconstruction import parts_of
  kernel = np.ones(frames) / frames
  smooth_along_time = lambda values: np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, values)
  error_sum, baseline_sum = {}, {}
  for _, pose, mask in full_sequences(prepared, CORPUS, split, 3):
    weight = mask.astype(np.float32)[..., None]
    smooth = smooth_along_time(pose * weight) / np.maximum(smooth_along_time(weight), 1e-6)
    for name, part in parts_of(pose.shape[1]).items():
      present = mask[:, part]
      error_sum[name] = error_sum.get(name, 0.0) + np.linalg.norm(smooth[:, part] - pose[:, part], axis=-1)[present].sum()
      baseline_sum[name] = baseline_sum.get(name, 0.0) + np.linalg.norm(
          training_mean[None, part] - pose[:, part], axis=-1)[present].sum()
  return {name: error_sum[name] / baseline_sum[name] for name in error_sum if baseline_sum[name] > 0}


def main(argv=None) -> dict:
  def extra(parser):
    parser.add_argument("--src", required=True, help="the lexicon folder (with index.csv)")
    parser.add_argument("--world-landmarks", action="store_true",
                        help="prepare with MediaPipe's world landmarks (metres, a real depth) for the body")
  args = arguments(__doc__, argv, extra=extra)
  from asl_motiongpt.data.prepare import PrepareOptions, prepare
  workdir = args.workdir or tempfile.mkdtemp(prefix="tokenizer_generalisation_")
  corpus_folder = os.path.join(workdir, "lexicon")
  build_corpus(args.src, corpus_folder)
  prepared = os.path.join(workdir, "prepared")
  if not os.path.isdir(prepared):
    prepare(PrepareOptions(corpus=CORPUS, src=corpus_folder, out=prepared, dims=3, world_landmarks=args.world_landmarks))
  # each held-out language alone as well: they differ (gss's files are short, two lose the hand)
  languages = {f"unseen language {language}": ("dev", lambda entry_id, language=language: entry_id.startswith(f"{language}_"))
               for language in HELD_OUT}
  splits = {"train": "train", "unseen files": "test", "unseen languages": "dev"}
  report = train_and_report(args, prepared, CORPUS, splits, workdir, groups=languages)
  # For scale: the error of smoothing over about one code's frames (down_t=2: 4 frames a code), as
  # a fraction of the same mean-pose error the tokenizer's figures use.
  from asl_motiongpt.data.windows import full_sequences
  from asl_motiongpt.gesture.reconstruction import mean_pose
  training_mean = mean_pose(full_sequences(prepared, CORPUS, "train", 3))
  for frames in (3, 5):
    for title, split in splits.items():
      floor = moving_average_floor(prepared, split, training_mean, frames)
      report[f"{title}/moving_average_{frames}"] = floor
      print(f"{title}: a centred {frames}-frame moving average / the mean pose's error: " +
            ", ".join(f"{name} {value:.3f}" for name, value in floor.items()))
  with open(os.path.join(workdir, "report.json"), "w", encoding="utf-8") as handle:
    json.dump(report, handle, indent=1)
  return report


if __name__ == "__main__":
  main()
