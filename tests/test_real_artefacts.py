"""What users actually have, end to end: the `.pose` files pose-format's `video_to_pose` writes today
(MediaPipe Holistic with world landmarks, face 468 or 478 points) as a `pose_dir` corpus, prepared
and used to train the gesture tokenizer."""
import json
import os
import shutil

from asl_motiongpt import cli
from asl_motiongpt.data.prepare import dataset_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIDEO_POSES = ("test_video.holistic.pose", "test_video.holistic_refined.pose")
TINY_TOKENIZER = ["--config.stages.tokenizer.model.width=32", "--config.stages.tokenizer.model.depth=2",
                  "--config.stages.tokenizer.model.code_dim=16", "--config.stages.tokenizer.model.codebook_size=32",
                  "--config.stages.tokenizer.batch_size=4", "--config.stages.tokenizer.window=16",
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
  assert min(presence[:8]) == 1.0 and max(presence[8:29]) == 0.0 and 0.3 < presence[29] < 0.4  # body, left, right hand
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
