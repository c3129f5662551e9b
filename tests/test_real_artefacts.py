"""What users actually have, end to end: the `.pose` files pose-format's `video_to_pose` writes today
(MediaPipe Holistic with world landmarks, face 468 or 478 points) as a `pose_dir` corpus, prepared
and used to train the gesture tokenizer; and videos (the optional [video] extra: those tests skip,
saying why, where MediaPipe is not installed)."""
import json
import os
import shutil

import pytest

from asl_motiongpt import cli
from asl_motiongpt.data.prepare import dataset_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIDEO_POSES = ("test_video.holistic.pose", "test_video.holistic_refined.pose")
TINY_TOKENIZER = ["--config.stages.tokenizer.model.width=32", "--config.stages.tokenizer.model.depth=2",
                  "--config.stages.tokenizer.model.code_dim=16", "--config.stages.tokenizer.model.codebook_size=32",
                  "--config.stages.tokenizer.batch_size=8", "--config.stages.tokenizer.window=16",
                  "--config.stages.tokenizer.steps=3", "--config.train.eval_every=0"]


def _video_pose_dir(fixtures, root):
  src = root / "my_videos"
  src.mkdir()
  rows = ["id\ttext\tsplit"]
  for k in range(6):  # both face variants, train and dev
    name = VIDEO_POSES[k % 2]
    shutil.copy(fixtures / "video" / name, src / f"clip{k}.pose")
    rows.append(f"clip{k}\ta sentence number {k}\t{'dev' if k >= 4 else 'train'}")
  (src / "index.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  return src


def test_video_to_pose_files_prepare_and_train_a_tokenizer(fixtures, tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)  # relative paths, as a user types them
  _video_pose_dir(fixtures, tmp_path)
  assert cli.main(["prepare", "--corpus", "pose_dir", "--src", "my_videos", "--out", "prepared", "--split", "train",
                   "--split", "dev"]) == 0
  stats = json.load(open(os.path.join(dataset_dir(str(tmp_path / "prepared"), "pose_dir"), "stats.json")))
  assert stats["splits"]["train"]["examples"] == 4 and stats["splits"]["dev"]["examples"] == 2
  assert stats["splits"]["train"]["frames"] == 4 * 58 and stats["dims"] == 3
  presence = stats["splits"]["train"]["joint_presence"]
  # head and shoulders in every frame; the arms where MediaPipe saw them (visibility >= 0.5: the clip's
  # arms leave the frame below), the left hand never, the right hand in 20 of 58 frames
  head_and_shoulders, arms = presence[0:3] + presence[5:6], presence[3:5] + presence[6:8]
  assert min(head_and_shoulders) == 1.0 and 0.3 < min(arms) < 1.0
  assert max(presence[8:29]) == 0.0 and 0.3 < presence[29] < 0.4
  assert 'body_joint_not_visible' in capsys.readouterr().out  # counted in the summary, not dropped silently
  # world landmarks: the same clips prepared with real depth (metres before normalisation)
  assert cli.main(["prepare", "--corpus", "pose_dir", "--src", "my_videos", "--out", "prepared_world", "--split",
                   "train", "--world-landmarks"]) == 0
  world = json.load(open(os.path.join(dataset_dir(str(tmp_path / "prepared_world"), "pose_dir"), "stats.json")))
  assert world["splits"]["train"]["frames"] == 4 * 58
  z_std_world = world["splits"]["train"]["joint_std"][0][2]  # the nose's depth varies with world landmarks
  assert z_std_world > 0
  capsys.readouterr()
  assert cli.main(["train", "--config", os.path.join(REPO, "configs", "tokenizer.py"), "--workdir", "run",
                   "--config.data.prepared=prepared", "--config.data.corpus=pose_dir", *TINY_TOKENIZER]) == 0
  summary = json.load(open("run/tokenizer/summary.json"))
  assert summary["done"] and summary["step"] == 3, summary
  assert "pose_dir train: 4 sequences with poses, FEWER THAN ONE BATCH (8)" in capsys.readouterr().out


def test_a_split_without_any_pose_stops_the_tokenizer_stage_before_compiling(monkeypatch):
  from asl_motiongpt.train import tokenizer_stage
  from types import SimpleNamespace
  monkeypatch.setattr(tokenizer_stage, "prepared_statistics", lambda *a: {"examples": 5, "with_pose": 0, "text_only": 5})
  stage = SimpleNamespace(name="tokenizer", train_split="train", batch_size=8)
  with pytest.raises(ValueError, match="has no sequence with a pose \\(5 text-only entries\\)"):
    tokenizer_stage._check_sequences(stage, "prepared", "hamnosys")


def _needs_video_extra():
  from asl_motiongpt.pose.video import video_extra_missing
  if video_extra_missing():
    pytest.skip(f"the [video] extra is not installed: {video_extra_missing()}")


def test_pose_command_writes_what_pose_formats_video_to_pose_writes(fixtures, tmp_path, capsys):
  _needs_video_extra()
  from asl_motiongpt.pose import read_pose
  # the refined face (478 points); the default (468) is what translate --video and the videos corpus run
  out = tmp_path / "clip.pose"
  assert cli.main(["pose", "--video", str(fixtures / "video" / "test_video.mp4"), "--out", str(out),
                   "--refine-face"]) == 0
  assert read_pose(out) == read_pose(fixtures / "video" / "test_video.holistic_refined.pose")  # bit for bit
  assert "left hand in 0 frames, right hand in 20; layout holistic_586" in capsys.readouterr().out


def test_pose_command_refuses_models_that_would_download_and_names_a_broken_video(fixtures, tmp_path, capsys):
  bad = tmp_path / "broken.mp4"
  bad.write_bytes(b"not a video at all")
  assert cli.main(["pose", "--video", str(fixtures / "video" / "test_video.mp4"), "--out", str(tmp_path / "x.pose"),
                   "--model-complexity", "2"]) == 2
  assert "only model_complexity=1 ships inside the wheel" in capsys.readouterr().err
  _needs_video_extra()
  assert cli.main(["pose", "--video", str(bad), "--out", str(tmp_path / "x.pose")]) == 2
  err = capsys.readouterr().err
  assert f"{bad}: not a readable video" in err and "Traceback" not in err
  assert not (tmp_path / "x.pose").exists()


def test_a_folder_of_videos_prepares_once_skipping_and_listing_what_does_not_decode(fixtures, tmp_path, capsys):
  _needs_video_extra()
  src = tmp_path / "my_videos"
  src.mkdir()
  for name in ("hello.mp4", "later.mp4"):
    shutil.copy(fixtures / "video" / "test_video.mp4", src / name)
  (src / "broken.mp4").write_bytes(b"\x00" * 100)
  (src / "index.tsv").write_text("id\ttext\tsplit\tvideo\nhello\thello there\ttrain\t\nbroken\tbroken clip\ttrain\t\n"
                                 "gone\tno file\ttrain\t\nsee_you\tsee you later\tdev\tlater.mp4\n", encoding="utf-8")
  out = tmp_path / "prepared"
  assert cli.main(["prepare", "--corpus", "videos", "--src", str(src), "--out", str(out), "--workers", "2"]) == 0
  printed = capsys.readouterr().out
  assert "bad_video            1" in printed and "missing_video        1" in printed
  stats = json.load(open(os.path.join(dataset_dir(str(out), "videos"), "stats.json")))
  assert set(stats["splits"]) == {"train", "dev"}  # the table names no test split: none is written
  assert stats["splits"]["train"]["examples"] == 1 and stats["splits"]["dev"]["examples"] == 1
  listed = [json.loads(l) for l in open(os.path.join(dataset_dir(str(out), "videos"), "skipped.jsonl"))]
  assert {(l["record"], l["reason"]) for l in listed} == {("broken", "bad_video"), ("gone", "missing_video")}
  assert "not a readable video" in next(l["detail"] for l in listed if l["record"] == "broken")
  cache = out / "video_poses" / "videos"
  assert sorted(p.name for p in cache.iterdir()) == ["hello.pose", "see_you.pose"]
  stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
  assert cli.main(["prepare", "--corpus", "videos", "--src", str(src), "--out", str(out), "--overwrite"]) == 0
  assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps  # extracted once
