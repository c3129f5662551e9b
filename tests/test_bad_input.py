"""Every kind of bad input, in strict mode (an error naming file, record and field) and in the
default lenient mode (skipped or masked, counted, listed; nothing dropped silently)."""
import concurrent.futures
import json
import os

import numpy as np
import pytest

from asl_motiongpt import corpora
from asl_motiongpt.corpora import CorpusError
from asl_motiongpt.corpora import report as rp


def _how2sign_frames(src, split="train"):
  root = os.path.join(src, f"{split}_2D_keypoints", "openpose_output", "json")
  name = sorted(os.listdir(root))[0]
  folder = os.path.join(root, name)
  return name, folder, sorted(os.listdir(folder))


def _read(corpus, src, split, strict):
  report = rp.ReadReport(strict=strict)
  return list(corpora.read(corpus, src, split, strict=strict, report=report)), report


def _expect_strict_error(corpus, src, split, reason, file_part, record, field=None):
  with pytest.raises(CorpusError) as info:
    _read(corpus, src, split, strict=True)
  e = info.value
  assert e.reason == reason
  assert file_part in e.file and record in str(e.record)
  if field is not None:
    assert e.field == field
  assert file_part in str(e) and str(record) in str(e)  # the message itself names them
  return e


def _count(report, kind, reason):
  return report.counts()[kind].get(reason, 0)


# --- frame-level problems: the frame is masked, the record kept --------------------------------

def _corrupt_frame(src, write):
  name, folder, files = _how2sign_frames(src)
  path = os.path.join(folder, files[2])
  write(path)
  return name, path, len(files)


FRAME_CASES = {
    rp.MALFORMED_JSON: lambda p: open(p, "w").write('{"version": 1.3, "people": [{"pose_keypoints_2d": [1, 2'),
    rp.WRONG_VALUE_COUNT: lambda p: open(p, "w").write(json.dumps(
        {"people": [{"pose_keypoints_2d": [0.5] * 74, "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
                     "hand_right_keypoints_2d": []}]})),
    rp.NO_PERSON: lambda p: open(p, "w").write('{"version": 1.3, "people": []}'),
}


@pytest.mark.parametrize("reason", list(FRAME_CASES))
def test_bad_frame_strict(tiny_corpus, reason):
  name, path, _ = _corrupt_frame(tiny_corpus["how2sign"], FRAME_CASES[reason])
  _expect_strict_error("how2sign", tiny_corpus["how2sign"], "train", reason, os.path.basename(path), name)


@pytest.mark.parametrize("reason", list(FRAME_CASES))
def test_bad_frame_lenient_masks_it(tiny_corpus, reason):
  before, _ = _read("how2sign", tiny_corpus["how2sign"], "train", strict=False)
  name, path, frames = _corrupt_frame(tiny_corpus["how2sign"], FRAME_CASES[reason])
  after, report = _read("how2sign", tiny_corpus["how2sign"], "train", strict=False)
  assert [e.id for e in after] == [e.id for e in before]  # nothing dropped
  ex = next(e for e in after if e.id == name)
  assert ex.pose.num_frames == frames  # timing kept
  assert not ex.pose.mask[2].any() and ex.pose.mask[1].any()
  assert _count(report, "masked", reason) == 1
  assert report.masked[0]["file"] == path and report.masked[0]["record"] == name


def test_nan_in_json_frame(tiny_corpus):
  def write(p):
    frame = json.load(open(p))
    frame["people"][0]["pose_keypoints_2d"][3] = float("nan")  # joint 1 (Neck), x
    open(p, "w").write(json.dumps(frame))  # json writes the NaN literal, as broken tools do
  name, path, _ = _corrupt_frame(tiny_corpus["how2sign"], write)
  _expect_strict_error("how2sign", tiny_corpus["how2sign"], "train", rp.NON_FINITE, os.path.basename(path), name,
                       field="pose_keypoints_2d")
  examples, report = _read("how2sign", tiny_corpus["how2sign"], "train", strict=False)
  ex = next(e for e in examples if e.id == name)
  assert not ex.pose.mask[2, 1] and ex.pose.mask[2, 0] and np.isfinite(ex.pose.data).all()
  assert _count(report, "masked", rp.NON_FINITE) == 1


def _skels_with_nan(src):
  path = os.path.join(src, "dev.skels")
  lines = open(path).read().splitlines()
  values = lines[1].split()
  values[151 * 3 + 7] = "nan"   # frame 3, joint 2, y
  values[151 * 5] = "inf"       # frame 5, joint 0, x
  lines[1] = " ".join(values)
  open(path, "w").write("\n".join(lines) + "\n")
  return path


def test_nan_in_skels(fixtures, tmp_path):
  import shutil
  src = str(tmp_path / "pt")
  shutil.copytree(fixtures / "phoenix14t_progressive_transformers", src)
  path = _skels_with_nan(src)
  e = _expect_strict_error("phoenix14t_pt", src, "dev", rp.NON_FINITE, "dev.skels", "11August_2010_Wednesday_tagesschau-3")
  assert e.field == "pose frame 3"
  examples, report = _read("phoenix14t_pt", src, "dev", strict=False)
  assert len(examples) == 5
  pose = examples[1].pose
  assert not pose.mask[3, 2] and not pose.mask[5, 0] and pose.mask[4].all()
  assert np.isfinite(pose.data).all()
  assert _count(report, "masked", rp.NON_FINITE) == 2
  assert {m["file"] for m in report.masked} == {path}


# --- record-level problems: the record is skipped ---------------------------------------------

def test_missing_pose_file(tiny_corpus):
  src = tiny_corpus["phoenix14t"]
  name = open(os.path.join(src, "PHOENIX-2014-T.train.corpus.csv"), encoding="utf-8").read().splitlines()[2].split("|")[0]
  os.remove(os.path.join(src, "poses", f"{name}.pose"))
  _expect_strict_error("phoenix14t", src, "train", rp.MISSING_POSE, f"{name}.pose", name, field="pose")
  examples, report = _read("phoenix14t", src, "train", strict=False)
  assert name not in {e.id for e in examples} and len(examples) == 7
  assert report.skipped[0]["record"] == name and _count(report, "skipped_records", rp.MISSING_POSE) == 1


def test_missing_openpose_folder(tiny_corpus):
  src = tiny_corpus["how2sign"]
  name, folder, files = _how2sign_frames(src)
  for f in files:
    os.remove(os.path.join(folder, f))
  os.rmdir(folder)
  _expect_strict_error("how2sign", src, "train", rp.MISSING_POSE, name, name)
  examples, report = _read("how2sign", src, "train", strict=False)
  assert name not in {e.id for e in examples}
  assert _count(report, "skipped_records", rp.MISSING_POSE) == 1


def test_table_without_required_columns_fails_in_both_modes(tiny_corpus):
  src = tiny_corpus["phoenix14t"]
  path = os.path.join(src, "PHOENIX-2014-T.train.corpus.csv")
  lines = open(path, encoding="utf-8").read().splitlines()
  lines[0] = lines[0].replace("translation", "text")
  open(path, "w", encoding="utf-8").write("\n".join(lines))
  for strict in (True, False):
    with pytest.raises(CorpusError, match=r"PHOENIX-2014-T.train.corpus.csv, record header, field translation"):
      _read("phoenix14t", src, "train", strict=strict)


def test_row_with_wrong_number_of_fields(tiny_corpus):
  src = tiny_corpus["how2sign"]
  path = os.path.join(src, "how2sign_realigned_train.csv")
  lines = open(path, encoding="utf-8").read().splitlines()
  lines[3] = lines[3] + "\textra"
  open(path, "w", encoding="utf-8").write("\n".join(lines) + "\n")
  _expect_strict_error("how2sign", src, "train", rp.BAD_COLUMNS, "how2sign_realigned_train.csv", "line 4")
  examples, report = _read("how2sign", src, "train", strict=False)
  assert len(examples) == 7 and _count(report, "skipped_records", rp.BAD_COLUMNS) == 1


def test_empty_sequence(tiny_corpus):
  src = tiny_corpus["how2sign"]
  name, folder, files = _how2sign_frames(src)
  for f in files:
    os.remove(os.path.join(folder, f))
  _expect_strict_error("how2sign", src, "train", rp.EMPTY_SEQUENCE, name, name)
  examples, report = _read("how2sign", src, "train", strict=False)
  assert name not in {e.id for e in examples} and len(examples) == 7
  assert _count(report, "skipped_records", rp.EMPTY_SEQUENCE) == 1


def test_sequence_where_no_frame_has_a_person(tiny_corpus):
  src = tiny_corpus["how2sign"]
  name, folder, files = _how2sign_frames(src)
  for f in files:
    open(os.path.join(folder, f), "w").write('{"people": []}')
  examples, report = _read("how2sign", src, "train", strict=False)
  assert name not in {e.id for e in examples}
  assert _count(report, "skipped_records", rp.EMPTY_SEQUENCE) == 1
  assert _count(report, "masked", rp.NO_PERSON) == len(files)


def test_non_utf8_text(tiny_corpus):
  src = tiny_corpus["phoenix14t"]
  path = os.path.join(src, "PHOENIX-2014-T.train.corpus.csv")
  raw = open(path, "rb").read().split(b"\n")
  raw[2] = raw[2] + " gr\xfc\xdfe".encode("latin-1")  # Latin-1 umlaut: invalid UTF-8
  open(path, "wb").write(b"\n".join(raw))
  _expect_strict_error("phoenix14t", src, "train", rp.BAD_ENCODING, "PHOENIX-2014-T.train.corpus.csv", "line 3")
  examples, report = _read("phoenix14t", src, "train", strict=False)
  assert len(examples) == 7 and _count(report, "skipped_records", rp.BAD_ENCODING) == 1


def test_non_utf8_in_progressive_transformer_text(fixtures, tmp_path):
  import shutil
  src = str(tmp_path / "pt")
  shutil.copytree(fixtures / "phoenix14t_progressive_transformers", src)
  path = os.path.join(src, "test.text")
  raw = open(path, "rb").read().split(b"\n")
  raw[0] = "für".encode("latin-1")
  open(path, "wb").write(b"\n".join(raw))
  _expect_strict_error("phoenix14t_pt", src, "test", rp.BAD_ENCODING, "test.text", "25October_2010_Monday_tagesschau-17")
  examples, report = _read("phoenix14t_pt", src, "test", strict=False)
  assert len(examples) == 4 and _count(report, "skipped_records", rp.BAD_ENCODING) == 1


def test_text_too_long(tiny_corpus):
  src = tiny_corpus["phoenix14t"]
  with pytest.raises(CorpusError, match="limit is 10"):
    list(corpora.read("phoenix14t", src, "train", strict=True, max_text_chars=10))
  report = rp.ReadReport()
  examples = list(corpora.read("phoenix14t", src, "train", report=report, max_text_chars=30))
  long = _count(report, "skipped_records", rp.TEXT_TOO_LONG)
  assert long > 0 and len(examples) + long == 8
  assert all(len(e.text) <= 30 for e in examples)


def test_wrong_value_count_in_skels(fixtures, tmp_path):
  import shutil
  src = str(tmp_path / "pt")
  shutil.copytree(fixtures / "phoenix14t_progressive_transformers", src)
  path = os.path.join(src, "train.skels")
  lines = open(path).read().splitlines()
  lines[0] = lines[0] + " 0.5"
  open(path, "w").write("\n".join(lines) + "\n")
  _expect_strict_error("phoenix14t_pt", src, "train", rp.WRONG_VALUE_COUNT, "train.skels",
                       "11August_2010_Wednesday_tagesschau-1", field="skels")
  examples, report = _read("phoenix14t_pt", src, "train", strict=False)
  assert len(examples) == 4 and _count(report, "skipped_records", rp.WRONG_VALUE_COUNT) == 1


def test_misaligned_progressive_transformer_files(fixtures, tmp_path):
  import shutil
  src = str(tmp_path / "pt")
  shutil.copytree(fixtures / "phoenix14t_progressive_transformers", src)
  path = os.path.join(src, "dev.gloss")
  open(path, "w").write("\n".join(open(path).read().splitlines()[:-1]) + "\n")
  for strict in (True, False):
    with pytest.raises(CorpusError, match="line counts"):
      _read("phoenix14t_pt", src, "dev", strict=strict)


# --- prepare: lenient mode writes the list, strict mode exits with the message -----------------

def test_prepare_lists_skipped_records_and_strict_cli_names_them(tiny_corpus, tmp_path, capsys):
  from asl_motiongpt import cli
  src = tiny_corpus["phoenix14t"]
  name = open(os.path.join(src, "PHOENIX-2014-T.train.corpus.csv"), encoding="utf-8").read().splitlines()[1].split("|")[0]
  os.remove(os.path.join(src, "poses", f"{name}.pose"))
  out = str(tmp_path / "prepared")
  assert cli.main(["prepare", "--corpus", "phoenix14t", "--src", src, "--out", out]) == 0
  printed = capsys.readouterr().out
  assert "missing_pose_file" in printed and "skipped.jsonl" in printed
  from asl_motiongpt.data.prepare import dataset_dir
  listed = [json.loads(l) for l in open(os.path.join(dataset_dir(out, "phoenix14t"), "skipped.jsonl"))]
  assert [(l["kind"], l["record"], l["reason"]) for l in listed] == [("skipped", name, "missing_pose_file")]
  code = cli.main(["prepare", "--corpus", "phoenix14t", "--src", src, "--out", str(tmp_path / "strict"), "--strict"])
  assert code == 2
  err = capsys.readouterr().err
  assert name in err and "missing_pose_file" in err and "field pose" in err


def test_frames_parsed_in_worker_processes_read_as_in_one(tiny_corpus, monkeypatch):
  """How2Sign's frame folders parsed by 2 worker processes: the same examples in the same order, the
  same masked frames and skipped records (a malformed frame, a missing folder); strict mode raises the
  same located error from a worker."""
  from asl_motiongpt.corpora import openpose_json
  monkeypatch.setattr(openpose_json, "MIN_FOLDERS_PER_WORKER", 1)  # workers even for this tiny corpus
  pools = []

  class CountedPool(concurrent.futures.ProcessPoolExecutor):
    def __init__(self, workers, **kwargs):
      pools.append(workers)
      super().__init__(workers, **kwargs)

  monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", CountedPool)
  src = tiny_corpus["how2sign"]
  root = os.path.dirname(_how2sign_frames(src)[1])
  names = sorted(os.listdir(root))
  FRAME_CASES[rp.MALFORMED_JSON](os.path.join(root, names[1], sorted(os.listdir(os.path.join(root, names[1])))[3]))
  for f in os.listdir(os.path.join(root, names[2])):
    os.remove(os.path.join(root, names[2], f))
  os.rmdir(os.path.join(root, names[2]))
  read = {}
  for workers in (1, 2):
    report = rp.ReadReport()
    read[workers] = list(corpora.read("how2sign", src, "train", report=report, workers=workers)), report
  (one, one_report), (two, two_report) = read[1], read[2]
  assert [e.id for e in two] == [e.id for e in one] and names[2] not in {e.id for e in one}
  for a, b in zip(one, two):
    np.testing.assert_array_equal(a.pose.data, b.pose.data)
    np.testing.assert_array_equal(a.pose.confidence, b.pose.confidence)
    assert a.text == b.text
  assert two_report.skipped == one_report.skipped and two_report.masked == one_report.masked
  assert two_report.read == one_report.read and _count(two_report, "masked", rp.MALFORMED_JSON) == 1
  with pytest.raises(CorpusError) as info:
    list(corpora.read("how2sign", src, "train", strict=True, workers=2))
  assert info.value.reason == rp.MALFORMED_JSON and names[1] == info.value.record
  assert pools == [2, 2]  # both reads with workers=2 did use 2 processes


def _unreadable_pose_dir(root):
  """A pose_dir corpus where no file reads: garbage, a truncated real file, a layout we do not map."""
  from conftest import FIXTURES
  src = root / "unreadable"
  src.mkdir()
  (src / "index.tsv").write_text("id\ttext\na\thello there\nb\tgood day\nc\tgood morning\n", encoding="utf-8")
  (src / "a.pose").write_bytes(b"not a pose file")
  (src / "b.pose").write_bytes((FIXTURES / "pose_format" / "openpose.pose").read_bytes()[:3000])
  (src / "c.pose").write_bytes((FIXTURES / "pose_format" / "mediapipe_hand_normalized.pose").read_bytes())
  return src


def test_prepare_of_only_unreadable_files_stops_with_the_reasons_not_a_traceback(tmp_path, capsys):
  from asl_motiongpt import cli
  src, out = _unreadable_pose_dir(tmp_path), tmp_path / "prepared"
  assert cli.main(["prepare", "--corpus", "pose_dir", "--src", str(src), "--out", str(out)]) == 2
  err = capsys.readouterr().err
  assert "Traceback" not in err and "AssertionError" not in err
  assert "no usable example in split 'train'" in err and "3 records skipped, 0 read" in err
  assert f"2 x bad_pose_file: e.g. {src / 'a.pose'}, record a" in err
  assert f"1 x unknown_pose_layout: e.g. {src / 'c.pose'}, record c" in err and "RIGHT_HAND_LANDMARKS (21 points)" in err
  listing = out / "pose_dir.skipped.jsonl"
  assert f"every skipped record: {listing}" in err
  assert sorted(json.loads(l)["record"] for l in listing.read_text().splitlines()) == ["a", "b", "c"]
  assert sorted(p.name for p in out.iterdir()) == ["pose_dir.skipped.jsonl"]  # no half-made dataset folders


@pytest.mark.parametrize("case", ["missing", "empty", "columns"])
def test_prepare_names_a_missing_or_empty_corpus_folder_or_a_table_without_its_columns(tmp_path, capsys, case):
  from asl_motiongpt import cli
  src = tmp_path / "corpus"
  if case != "missing":
    src.mkdir()
  if case == "columns":
    (src / "index.tsv").write_text("name\tsentence\na\thello\n", encoding="utf-8")
  assert cli.main(["prepare", "--corpus", "pose_dir", "--src", str(src), "--out", str(tmp_path / "out")]) == 2
  err = capsys.readouterr().err
  assert "Traceback" not in err
  expected = {"missing": f"corpus folder {src} does not exist", "empty": f"corpus folder {src} is empty",
              "columns": "required columns ['id', 'text'] not in header ['name', 'sentence']"}[case]
  assert expected in err, err
