"""Pretraining strategies as chains of stages on the embedded corpus: every stage learns, stage k+1
starts from stage k, frozen groups stay put with no optimizer state, an interrupted stage resumes
exactly."""
import json
import os
import shutil

import jax
import numpy as np
import pytest

from asl_motiongpt import checkpoints
from asl_motiongpt.chain_config import resolve_stage
from asl_motiongpt.config_loader import load_config
from asl_motiongpt.model.artifacts import load_artifacts, starting_params
from asl_motiongpt.model.assembly import assemble
from asl_motiongpt.train import llm_stage, stage_driver
from asl_motiongpt.train.chain import run_chain

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT = ["--config.train.log_every=5", "--config.train.checkpoint_every=10", "--config.train.eval_every=0"]


def _config(strategy, prepared, extra=()):
  config = load_config(os.path.join(REPO, "configs", "strategies", f"{strategy}.py:tiny"),
                       [f"--config.data.prepared={prepared}", *SHORT, *extra])
  for stage in config.stages:
    stage.steps, stage.batch_size, stage.optim.warmup_steps = 30, 8, 3
  return config


def _system(config, workdir):
  return assemble(config, load_artifacts(config, workdir))


def _start_and_trained(config, workdir, stage):
  """(the parameters the chain started from, a stage's final parameters)."""
  system = _system(config, workdir)
  start = jax.device_get(starting_params(system, config, config.seed))  # host arrays
  return system, start, checkpoints.restore_params(workdir, stage, like=start)


@pytest.fixture(scope="module")
def base(prepared, tmp_path_factory):
  """Prepared corpus and a trained tokenizer stage, shared (copied) by every chain below."""
  workdir = str(tmp_path_factory.mktemp("chain") / "template")
  config = _config("joint", prepared, ["--config.data.eval_split="])
  config.stages = config.stages[:1]
  run_chain(config, workdir)
  return prepared, workdir


def _workdir(base, tmp_path):
  _, template = base
  target = str(tmp_path / "run")
  shutil.copytree(template, target)
  return target


@pytest.mark.parametrize("strategy,combination,packing", [("direct_alignment_fusion", "mlp", False),
                                                          ("joint", "llm_align", True), ("staged", "mlp_llm", False)])
def test_every_stage_of_every_strategy_learns(base, tmp_path, strategy, combination, packing):
  prepared, _ = base
  config = _config(strategy, prepared, [f"--config.combination={combination}", "--config.train.eval_every=15",
                                        f"--config.data.packing={packing}"])
  workdir = _workdir(base, tmp_path)
  results = run_chain(config, workdir)
  for stage in config.stages[1:]:
    r = results[stage.name]
    assert r["done"] and r["step"] == 30
    # held-out loss on the dev split (fixed batches) at the start, every 15 steps and at the end
    assert sorted(r["eval_loss"]) == [0, 15, 30], r
    assert r["eval_loss"][30] < r["eval_loss"][0], (stage.name, r)
    logged = [json.loads(l) for l in open(os.path.join(workdir, stage.name, "logs", "metrics.jsonl"))]
    assert [l["step"] for l in logged if l["split"] == "eval"] == [0, 15, 30]
  assert os.path.getsize(os.path.join(workdir, "loss_curves.png")) > 5000  # a panel per stage
  # each checkpoint's metadata names its stage and the checkpoint it started from
  for previous, stage in zip(config.stages[1:], config.stages[2:]):
    meta = json.load(open(os.path.join(workdir, stage.name, "30", "meta", "metadata"), encoding="utf-8"))
    assert meta["stage"] == stage.name and meta["config"]["combination"] == combination
    assert meta["parent_checkpoint"] == os.path.join(workdir, previous.name, "30")


def test_next_stage_starts_from_previous_final_params_and_frozen_groups_stay(base, tmp_path):
  prepared, _ = base
  workdir = _workdir(base, tmp_path)
  config = _config("direct_alignment_fusion", prepared, ["--config.combination=mlp_llm"])
  config.stages = config.stages[:2]  # only "align": the adapter trains, the LLM is frozen
  run_chain(config, workdir)
  system, fresh, trained = _start_and_trained(config, workdir, "align")
  jax.tree.map(np.testing.assert_array_equal, trained["llm"], fresh["llm"])  # frozen: bit-identical
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(trained["adapter"]),
                                                      jax.tree.leaves(fresh["adapter"])))
  # Frozen weights carry no optimizer state: Adam moments exist for the adapter only.
  tx, mask = llm_stage.stage_optimizer(system, config, resolve_stage(config, config.stages[1]))
  state_size = sum(np.size(x) for x in jax.tree.leaves(tx.init(fresh)) if np.ndim(x) > 0)
  trainable = sum(np.size(p) for p, t in zip(jax.tree.leaves(fresh), jax.tree.leaves(mask)) if t)
  assert state_size == 2 * trainable < sum(np.size(p) for p in jax.tree.leaves(fresh))
  # The next stage starts exactly where this one ended.
  full = _config("direct_alignment_fusion", prepared, ["--config.combination=mlp_llm"])
  fuse = resolve_stage(full, full.stages[2])
  kind = llm_stage.LlmStage(full, fuse, workdir, system=system)
  begins = kind.start(stage_driver.compile_program(kind.program()))["params"]
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(begins), trained)


def test_llm_align_alignment_trains_only_the_motion_token_rows(base, tmp_path):
  prepared, _ = base
  workdir = _workdir(base, tmp_path)
  config = _config("direct_alignment_fusion", prepared, ["--config.combination=llm_align"])
  config.stages = config.stages[:2]
  run_chain(config, workdir)
  system, fresh, trained = _start_and_trained(config, workdir, "align")
  first = system.vocab.first_code_id
  emb_a, emb_b = fresh["llm"]["embed_tokens"]["embedding"], trained["llm"]["embed_tokens"]["embedding"]
  np.testing.assert_array_equal(emb_a[:first], emb_b[:first])          # text rows untouched
  assert not np.array_equal(emb_a[first:], emb_b[first:])              # motion rows learned
  jax.tree.map(np.testing.assert_array_equal, fresh["llm"]["layers_0"], trained["llm"]["layers_0"])


@pytest.mark.parametrize("strategy", ["direct_alignment_fusion", "joint", "staged"])
def test_seed_preset_carries_the_seeds_hyper_parameters(strategy):
  config = load_config(os.path.join(REPO, "configs", "strategies", f"{strategy}.py"))  # no ':tiny'
  assert config.preset == "seed" and config.data.max_len == 250 and config.data.packing
  assert all(s.batch_size == 256 for s in config.stages)
  assert config.stages[0].kind == "tokenizer" and config.stages[0].model.codebook_size == 1024
  lrs = [s.lr for s in config.stages[1:]]
  assert lrs[0] == 2e-4 and (len(lrs) == 1 or lrs[-1] == 1e-6)  # pretraining, then the final tuning
  # without a Hugging Face folder there is no model to start from: a clear error, not a silent tiny model
  with pytest.raises(ValueError, match="hf_dir"):
    from asl_motiongpt.model.assembly import llm_config_from_sizes
    llm_config_from_sizes(config.llm, 1024)


def test_stacked_upper_llm_from_hugging_face_is_refused_not_ignored(base, tmp_path):
  prepared, _ = base
  config = _config("joint", prepared, ["--config.combination=mlp_llm_llm", "--config.llm_b.hf_dir=/some/folder"])
  with pytest.raises(ValueError, match="llm_b.hf_dir"):  # before any stage trains
    run_chain(config, str(tmp_path / "empty"))
  assert not os.path.exists(tmp_path / "empty")


def test_part_wise_tokenizer_in_a_chain_is_refused_before_training(prepared, tmp_path):
  """The LLM path reads one codebook: a part-wise tokenizer with LLM stages is a clear error at the
  start, not an hour of tokenizer training followed by codes the LLM misreads."""
  config = _config("staged", prepared, ["--config.stages.tokenizer.model.partwise=true"])
  with pytest.raises(ValueError, match="partwise"):
    run_chain(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")
  config = _config("staged", prepared, ["--config.stages.tokenizer.model.residual_levels=2"])
  with pytest.raises(ValueError, match="residual_levels"):  # several codes per step as well
    run_chain(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("strategy,extra", [("staged", []), ("tokenizer-alone", [])])
def test_a_tokenizer_without_codes_feeds_no_llm_stage_and_writes_no_code_cache(prepared, tmp_path, strategy, extra):
  """model.quantize=false (a benchmark's bound) has no codes: with LLM stages, or alone but asked to
  write the code cache, it is refused at the start."""
  if strategy == "tokenizer-alone":
    config = load_config(os.path.join(REPO, "configs", "tokenizer.py:tiny"),
                         [f"--config.data.prepared={prepared}", "--config.stages.tokenizer.model.quantize=false"])
  else:
    config = _config(strategy, prepared, ["--config.stages.tokenizer.model.quantize=false",
                                          "--config.stages.tokenizer.write_code_cache=false"])
  with pytest.raises(ValueError, match="quantize=false"):
    run_chain(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")
