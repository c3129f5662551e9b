"""The command line: the README's first command (the demo) and the sample-corpus writer."""
import os
import subprocess
import sys

import pytest
from PIL import Image


def test_demo_runs_end_to_end(tmp_path):
  """As the README runs it: a relative --workdir, from the user's own directory."""
  work = tmp_path / "demo"
  result = subprocess.run([sys.executable, "-m", "asl_motiongpt", "demo", "--workdir", "demo", "--small"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout
  for corpus in ("how2sign", "phoenix14t", "hamnosys"):
    assert f"{corpus}: prepared into" in out
  assert "dev reconstruction error" in out
  # the tokenizer's per-part table: body, each hand, against the mean pose
  assert "right_hand" in out and "mean pose" in out and "codebook over the train split" in out
  for name in ("how2sign", "phoenix14t", "hamnosys", "tokenizer_reconstruction", "generated_llama"):
    picture = work / "pictures" / f"{name}.png"
    image = Image.open(picture)
    # A drawn skeleton: a white sheet with a good number of coloured pixels on it.
    import numpy as np
    assert (np.asarray(image.convert("L")) < 200).sum() > 300
  # trained vs untrained, side by side (--small: the LLaMA family only; the full demo adds Qwen3)
  assert "| LLaMA untrained | LLaMA trained |" in out and "Qwen3" not in out
  assert "| sign -> text WER (lower is better) |" in out and "| text -> sign failed generations (no motion) |" in out
  assert "on llama" in out
  assert (work / "summary.md").exists()
  from pose_format import Pose
  for family in ("llama",):
    generated = Pose.read((work / "pictures" / f"generated_{family}.pose").read_bytes())
    assert generated.body.data.shape[2] == 50
    assert (work / "pictures" / f"generated_{family}.mp4").stat().st_size > 1000
  assert "done:" in out


def test_help_lists_the_commands():
  result = subprocess.run([sys.executable, "-m", "asl_motiongpt", "--help"], capture_output=True, text=True)
  assert result.returncode == 0
  from asl_motiongpt.cli import COMMANDS
  assert {"prepare", "sample-corpus", "demo", "pose", "train", "eval", "translate", "generate", "export-hf",
          "convert-hf", "ablate"} == {c.name for c in COMMANDS}
  for command in COMMANDS:  # the table is the help
    assert f"  {command.name:14s} {command.help}" in result.stdout


def test_overrides_only_where_the_command_takes_them():
  from asl_motiongpt import cli
  with pytest.raises(SystemExit) as e:  # argparse's usage error
    cli.main(["eval", "--workdir", "w", "--config.seed=3"])
  assert e.value.code == 2
  assert {c.name for c in cli.COMMANDS if c.overrides} == {"train", "ablate"}


def test_prepare_reports_a_missing_source_clearly(tmp_path):
  result = subprocess.run([sys.executable, "-m", "asl_motiongpt", "prepare", "--corpus", "phoenix14t",
                           "--src", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
  assert result.returncode == 2
  assert f"the corpus folder {tmp_path / 'nowhere'} does not exist" in result.stderr, result.stderr
  assert not os.path.exists(tmp_path / "out" / "sign_corpus" / "phoenix14t" / "1.0.0")
  (tmp_path / "elsewhere").mkdir()  # a folder, but not the corpus: the missing table is named
  (tmp_path / "elsewhere" / "notes.txt").write_text("x")
  result = subprocess.run([sys.executable, "-m", "asl_motiongpt", "prepare", "--corpus", "phoenix14t",
                           "--src", str(tmp_path / "elsewhere"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert "PHOENIX-2014-T.train.corpus.csv" in result.stderr and "not found" in result.stderr


def test_train_without_prepared_data_names_what_is_missing(tmp_path):
  result = subprocess.run([sys.executable, "-m", "asl_motiongpt", "train", "--config", "configs/tokenizer.py",
                           "--workdir", str(tmp_path / "w"), f"--config.data.prepared={tmp_path / 'nothing'}"],
                          capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert result.returncode == 2
  assert "no prepared 'phoenix14t' dataset" in result.stderr and "asl-motiongpt prepare" in result.stderr


HIDE_TORCH = """
import importlib.metadata as metadata, importlib.util as util, sys
find_spec, version = util.find_spec, metadata.version
util.find_spec = lambda name, *a, **k: None if name.split(".")[0] == "torch" else find_spec(name, *a, **k)
def hidden(name):
  if name == "torch":
    raise metadata.PackageNotFoundError(name)
  return version(name)
metadata.version = hidden
if sys.argv[1] == "ours":
  import asl_motiongpt
import transformers
"""


def test_no_library_advice_on_a_machine_without_torch():
  """Users install without torch (it is the tests' reference only); transformers then advises
  "PyTorch was not found…" on import, which reads like an error. Importing our package first silences
  advice (not warnings)."""
  env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSFORMERS_")}  # as a user's shell has it

  def stderr(who):
    return subprocess.run([sys.executable, "-c", HIDE_TORCH, who], capture_output=True, text=True, env=env).stderr
  assert "PyTorch was not found" in stderr("plain")  # the torch-less machine is simulated faithfully
  assert "PyTorch was not found" not in stderr("ours")
