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
  return train_and_report(args, prepared, CORPUS,
                          {"train": "train", "unseen files": "test", "unseen languages": "dev"}, workdir, groups=languages)


if __name__ == "__main__":
  main()
