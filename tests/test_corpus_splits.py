"""Corpora name their held-out split differently (How2Sign `val`, PHOENIX `dev`); prepared corpora use
train/dev/test, so one `data.eval_split` works for a How2Sign chain and for a How2Sign + PHOENIX
mixture, and `eval` reports each corpus of a mixture apart."""
import json
import os

import pytest

from asl_motiongpt import cli
from asl_motiongpt.config_loader import load_config
from asl_motiongpt.data.prepare import PrepareOptions, check_prepared_split, prepare, prepared_splits
from asl_motiongpt.train.chain import run_chain

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def both(sample_corpus, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("prepared_both"))
  # How2Sign is 2D; 3D here so that one gesture tokenizer reads both corpora
  stats = prepare(PrepareOptions(corpus="how2sign", src=sample_corpus["how2sign"], out=out, dims=3))
  prepare(PrepareOptions(corpus="phoenix14t", src=sample_corpus["phoenix14t"], out=out))
  return out, stats


def test_how2sign_val_is_prepared_as_dev_and_its_own_name_is_kept(both, sample_corpus, tmp_path):
  out, stats = both
  assert prepared_splits(out, "how2sign") == ["train", "dev", "test"]
  assert stats["source_splits"] == {"train": "train", "dev": "val", "test": "test"}
  assert stats["splits"]["dev"]["examples"] > 0
  # either name picks the split when preparing only one
  one = prepare(PrepareOptions(corpus="how2sign", src=sample_corpus["how2sign"], out=str(tmp_path), splits=("val",)))
  assert list(one["splits"]) == ["dev"]
  with pytest.raises(FileNotFoundError, match="has no split 'validation'.*train, dev, test"):
    check_prepared_split(out, "how2sign", "validation")
  check_prepared_split(out, "how2sign", "val")  # the corpus' own name reads the same split


def test_how2sign_chain_mixed_with_phoenix_evaluates_each_corpus(both, tmp_path, capsys):
  out, _ = both
  config = load_config(os.path.join(REPO, "configs", "strategies", "joint.py:tiny"),
                       [f"--config.data.prepared={out}", "--config.data.corpus=how2sign",
                        "--config.stages.tokenizer.steps=20", "--config.stages.joint.steps=20",
                        "--config.train.eval_every=10", "--config.train.eval_batches=1", "--config.data.max_len=128"])
  config.data.mixture = {"how2sign": 1.0, "phoenix14t": 1.0}
  workdir = str(tmp_path / "run")
  results = run_chain(config, workdir)
  assert "eval" in results["tokenizer"]  # the tokenizer's held-out reconstruction on How2Sign's dev (= val)
  assert len(results["joint"]["eval_loss"]) == 3  # held-out loss at 0, 10, 20 on both corpora's dev
  capsys.readouterr()
  assert cli.main(["eval", "--workdir", workdir, "--split", "dev", "--limit", "2"]) == 0
  printed = capsys.readouterr().out
  assert "how2sign (dev, greedy)" in printed and "phoenix14t (dev, greedy)" in printed
  main = json.load(open(os.path.join(workdir, "eval", "dev", "metrics.json")))
  other = json.load(open(os.path.join(workdir, "eval", "dev", "phoenix14t", "metrics.json")))
  assert (main["corpus"], other["corpus"]) == ("how2sign", "phoenix14t")
  assert main["examples"] == other["examples"] == 2


def test_a_missing_split_is_named_before_any_training(both, tmp_path, capsys):
  out, _ = both
  code = cli.main(["train", "--config", os.path.join(REPO, "configs", "strategies", "joint.py:tiny"),
                   "--workdir", str(tmp_path / "run"), f"--config.data.prepared={out}",
                   "--config.data.corpus=how2sign", "--config.data.eval_split=validation"])
  assert code == 2
  err = capsys.readouterr().err
  assert "no split 'validation'" in err and "train, dev, test" in err
  assert not os.path.exists(tmp_path / "run" / "tokenizer")  # nothing started
