"""tools/tokenizer_generalisation.py's corpus from sign.mt's fingerspelling lexicon, on three of its
real files (tests/fixtures/fingerspelling_lexicon): only the chosen languages are read, held-out
languages go to "unseen languages" (dev), every fifth file of the others to "unseen files" (test), a
listed file that is missing is counted, and the corpus prepares with MediaPipe's world landmarks."""
import importlib.util
import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEXICON = os.path.join(REPO, "tests", "fixtures", "fingerspelling_lexicon")


def _tool():
  spec = importlib.util.spec_from_file_location("tokenizer_generalisation",
                                                os.path.join(REPO, "tools", "tokenizer_generalisation.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_split_by_language_and_by_file():
  tool = _tool()
  assert set(tool.HELD_OUT) <= set(tool.LANGUAGES)
  assert tool.split_of({"signed_language": "gss"}, 4) == "dev"  # a held-out language: never trained on
  splits = [tool.split_of({"signed_language": "tsm"}, position) for position in range(10)]
  assert splits == ["train"] * 4 + ["test"] + ["train"] * 4 + ["test"]  # every fifth file of the others


def test_the_lexicon_becomes_a_prepared_pose_dir_corpus(tmp_path, capsys):
  tool = _tool()
  counts = tool.build_corpus(LEXICON, str(tmp_path / "lexicon"))
  printed = capsys.readouterr().out
  assert "lexicon: 3 files of 11 signed languages (1 listed but missing)" in printed  # ase/fsl not read
  assert counts == {"dev": 2, "train": 1}
  rows = [line.split("\t") for line in (tmp_path / "lexicon" / "index.tsv").read_text(encoding="utf-8").splitlines()]
  assert rows[0] == ["id", "text", "signer", "split"]
  assert sorted((row[2], row[3]) for row in rows[1:]) == [("gss", "dev"), ("gss", "dev"), ("tsm", "train")]
  from asl_motiongpt.data.prepare import PrepareOptions, load_prepared, prepare
  prepare(PrepareOptions(corpus=tool.CORPUS, src=str(tmp_path / "lexicon"), out=str(tmp_path / "prepared"), dims=3,
                         world_landmarks=True))
  train = load_prepared(str(tmp_path / "prepared"), tool.CORPUS, "train")
  dev = load_prepared(str(tmp_path / "prepared"), tool.CORPUS, "dev")
  assert len(train) == 1 and len(dev) == 2
  record = train[0]
  assert record["text"].decode() == "G" and record["pose"].shape[-1] == 3
  left_hand = record["confidence"][:, 8:29] > 0
  assert left_hand.any(axis=1).mean() > 0.5  # tsm signs with both hands: the left one is read
  assert np.isfinite(record["pose"][record["confidence"] > 0]).all()
  # the smoothing figure: a 1-frame average is the data itself; 3 frames smooth something away
  from asl_motiongpt.gesture.reconstruction import mean_pose
  from asl_motiongpt.data.windows import full_sequences
  training_mean = mean_pose(full_sequences(str(tmp_path / "prepared"), tool.CORPUS, "train", 3))
  assert tool.moving_average_floor(str(tmp_path / "prepared"), "train", training_mean, 1) == {
      "body": 0.0, "left_hand": 0.0, "right_hand": 0.0}
  smoothed = tool.moving_average_floor(str(tmp_path / "prepared"), "dev", training_mean, 3)
  assert set(smoothed) == {"body", "right_hand"} and 0 < smoothed["right_hand"] < 1  # gss: no left hand
