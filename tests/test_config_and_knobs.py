"""The chain config is data that reaches the code: a flat chain whose stages inherit the chain's
knobs, clear errors for mistyped overrides, and every training knob (accumulation, remat,
scan_layers, axis rules, mesh incl. DCN) arriving at the compiled step without changing the math."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asl_motiongpt.chain_config import resolve_stage
from asl_motiongpt.config_loader import ConfigError, load_config
from asl_motiongpt.model.combinations import next_token_loss

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGED = os.path.join(REPO, "configs", "strategies", "staged.py:tiny")


# -- the flat chain config ----------------------------------------------------------------------------
def test_stages_inherit_the_chains_knobs_unless_they_set_their_own():
  config = load_config(STAGED, ["--config.seed=7", "--config.mesh.fsdp=2", "--config.mesh.data=1",
                                "--config.train.stop_after_steps=50", "--config.optim.b2=0.95",
                                "--config.stages.instruction.optim.b2=0.9", "--config.stages.tokenizer.seed=3"])
  tokenizer, motion_lm, instruction = (resolve_stage(config, config.stages[i]) for i in (0, 1, 3))
  assert config.stages[0].kind == "tokenizer"  # the tokenizer is one stage among the stages
  assert (tokenizer.seed, motion_lm.seed) == (3, 7)
  assert tokenizer.mesh.fsdp == motion_lm.mesh.fsdp == 2
  assert tokenizer.train.stop_after_steps == instruction.train.stop_after_steps == 50
  assert (motion_lm.optim.b2, instruction.optim.b2, tokenizer.optim.b2) == (0.95, 0.9, 0.95)
  # a stage's own warm-up stays its own; the chain's other optimizer fields fill in
  assert tokenizer.optim.warmup_steps == config.stages[0].optim.warmup_steps
  assert instruction.optim.grad_clip == config.optim.grad_clip


@pytest.mark.parametrize("override,named", [("--config.stages.9.lr=1e-5", "'9'"),
                                            ("--config.stages.instrction.lr=1e-5", "'instrction'"),
                                            ("--config.trian.steps=3", "'trian'"),
                                            ("--config.train.stepz=3", "'stepz'"),
                                            ("--config.seed=abc", "config.seed")])
def test_a_mistyped_override_names_the_key(override, named):
  with pytest.raises(ConfigError, match=named):
    load_config(STAGED, [override])


def test_the_command_line_reports_a_mistyped_override_without_a_traceback(tmp_path):
  result = subprocess.run([sys.executable, "-m", "asl_motiongpt", "train", "--config", STAGED, "--workdir",
                           str(tmp_path / "w"), "--config.trian.steps=3"], capture_output=True, text=True, cwd=REPO)
  assert result.returncode == 2
  assert "error: override '--config.trian.steps=3': config has no section 'trian'" in result.stderr
  assert "Traceback" not in result.stderr and not (tmp_path / "w").exists()


def test_shipped_configs_are_found_from_any_folder(tmp_path, monkeypatch):
  """`--config configs/strategies/joint.py:tiny` from a folder that has no configs/ (an installed package
  used from the user's own directory) falls back to the shipped copy."""
  from asl_motiongpt.config_loader import configs_dir
  monkeypatch.chdir(tmp_path)
  config = load_config("configs/strategies/joint.py:tiny")
  assert [s.name for s in config.stages] == ["tokenizer", "joint"]
  assert os.path.isfile(os.path.join(configs_dir(), "strategies", "staged.py"))


def test_a_wheel_carries_the_configs(tmp_path):
  """A regular (not editable) install has the configs as package data: demo and ablate find them."""
  wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                  str(wheel_dir), REPO], check=True, capture_output=True, timeout=300)
  import zipfile
  (wheel,) = wheel_dir.glob("*.whl")
  zipfile.ZipFile(wheel).extractall(site)
  code = ("from asl_motiongpt.config_loader import configs_dir, load_config, shipped_config; "
          "print(configs_dir()); print(len(load_config(shipped_config('strategies/staged.py:tiny')).stages))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(site)}, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  folder, stages = out.stdout.split()
  assert folder.startswith(str(site)) and stages == "4"


# -- knobs that reach the compiled step --------------------------------------------------------------
def _system(overrides=()):
  """A tiny assembled system, built from in-memory artifacts (nothing read from disk)."""
  from asl_motiongpt.data.tasks import PROMPTS
  from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
  from asl_motiongpt.model.assembly import Artifacts, assemble
  from asl_motiongpt.gesture import GestureTokenizer, TokenizerSpec, VqConfig
  config = load_config(os.path.join(REPO, "configs", "strategies", "joint.py:tiny"),
                       ["--config.combination=mlp_llm", "--config.stages.joint.batch_size=4", "--config.data.max_len=24",
                        *overrides])
  words = ["heute regen im norden", "morgen sonne im süden"] + [p for v in PROMPTS.values() for p in v]
  gesture = GestureTokenizer(TokenizerSpec(VqConfig(width=16, depth=1, code_dim=8, codebook_size=32)))
  params, state = gesture.init(jax.random.PRNGKey(0), 16)
  state = {**state, "codebook": jax.random.normal(jax.random.PRNGKey(1), state["codebook"].shape)}
  system = assemble(config, Artifacts(train_word_tokenizer(words), gesture, params, state))
  return config, system


def _batch(system, rows=4, length=24):
  rng = np.random.default_rng(0)
  ids = rng.integers(0, system.vocab.first_code_id, (rows, length))
  ids[:, 3:9] = rng.integers(system.vocab.first_code_id, system.vocab.begin_id, (rows, 6))
  target = np.zeros((rows, length), bool)
  target[:, 10:] = True
  return {"input_ids": ids.astype(np.int32), "target_mask": target}


def _one_step(config, system, params):
  from asl_motiongpt.train import llm_stage, stage_driver
  s = resolve_stage(config, config.stages[1])
  compiled = stage_driver.compile_program(llm_stage.LlmStage(config, s, system=system).program())
  state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": compiled.program.tx.init(params)}
  state = jax.device_put(state, compiled.shardings)
  batch = _batch(system)
  hlo = compiled.step.lower(state, batch).as_text()
  new_state, metrics = compiled.step(state, batch)
  return jax.device_get(new_state["params"]), float(metrics["loss"]), hlo, compiled


@pytest.fixture(scope="module")
def baseline():
  """(params, one step's new params, loss, program text, compiled stage) with the default knobs."""
  config, system = _system()
  params = jax.device_get(system.init_params(jax.random.PRNGKey(0)))
  return (params,) + _one_step(config, system, params)


def test_gradient_accumulation_gives_the_same_update(baseline):
  params, one, loss_one, hlo_one, _ = baseline
  config2, system2 = _system(["--config.stages.joint.train.accumulation=2"])
  two, loss_two, hlo_two, _ = _one_step(config2, system2, params)
  assert "while" in hlo_two and "while" not in hlo_one  # the microbatches are scanned
  np.testing.assert_allclose(loss_one, loss_two, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), one, two)


def test_remat_changes_the_program_not_the_loss(baseline):
  params, _, loss, hlo, _ = baseline
  config2, system2 = _system(["--config.llm.remat=full"])
  assert system2.llm_config.remat_policy == "full"
  _, loss_remat, hlo_remat, _ = _one_step(config2, system2, params)
  assert hlo_remat != hlo
  np.testing.assert_allclose(loss, loss_remat, rtol=1e-6)


def test_an_unknown_remat_policy_is_refused_by_name():
  with pytest.raises(ValueError, match="llm.remat='everything'"):
    _system(["--config.llm.remat=everything"])


def test_scan_layers_changes_the_program_not_the_loss(baseline):
  params, _, loss, hlo, _ = baseline
  config2, system2 = _system(["--config.llm.scan_layers=true"])
  # the same weights, the layers stacked along a leading axis (what nn.scan reads)
  layers = [params["llm"][f"layers_{i}"] for i in range(system2.llm_config.num_layers)]
  stacked = {**params, "llm": {k: v for k, v in params["llm"].items() if not k.startswith("layers_")}}
  stacked["llm"]["layers"] = jax.tree.map(lambda *xs: np.stack(xs), *layers)
  assert jax.tree.structure(stacked) == jax.tree.structure(jax.device_get(system2.abstract_params()))
  _, loss_scan, hlo_scan, _ = _one_step(config2, system2, stacked)
  assert "while" in hlo_scan and "while" not in hlo
  np.testing.assert_allclose(loss, loss_scan, rtol=1e-5)


def test_axis_rules_and_the_mesh_come_from_the_config(baseline, monkeypatch):
  from asl_motiongpt.train import llm_stage, stage_driver
  default = baseline[-1].shardings["params"]["llm"]["embed_tokens"]["embedding"].spec
  config, system = _system(['--config.rules=[["embed", None], ["vocab", "fsdp"]]'])
  compiled = stage_driver.compile_program(llm_stage.LlmStage(config, config.stages[1], system=system).program())
  spec = compiled.shardings["params"]["llm"]["embed_tokens"]["embedding"].spec
  assert tuple(default) == ("tensor", "fsdp") and tuple(spec) == ("fsdp", None)
  # a multi-slice mesh: config.mesh.dcn goes to the hybrid mesh builder
  from asl_motiongpt.parallel import mesh as mesh_module
  seen = {}
  monkeypatch.setattr(mesh_module, "make_mesh", lambda shape, dcn=None, devices=None: seen.update(shape=shape, dcn=dcn))
  config = load_config(STAGED, ["--config.mesh.dcn.data=2"])
  mesh_module.mesh_from_config(resolve_stage(config, config.stages[1]).mesh)
  assert seen["dcn"] == {"data": 2, "fsdp": 1, "tensor": 1} and seen["shape"] == {"data": -1, "fsdp": 1, "tensor": 1}


def test_loss_chunks_change_the_program_not_the_update(baseline):
  """train.loss_chunk: the loss projects 5 positions at a time (23 predictions: a ragged last chunk),
  for the stacked combination too (its logits come from the upper LLM)."""
  params, one, loss, hlo, _ = baseline
  config2, system2 = _system(["--config.train.loss_chunk=5"])
  two, loss_two, hlo_two, _ = _one_step(config2, system2, params)
  assert hlo_two != hlo
  np.testing.assert_allclose(loss, loss_two, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), one, two)


def test_lora_dropout_draws_masks_by_step_in_training_only():
  """llm.lora_dropout: the training step drops the adapters' input with masks drawn from (seed, step)
  — the same step number gives the same update (resume-exact), another step another mask — while
  the held-out loss and decoding (no random stream) compute the model without dropout."""
  config, system = _system(["--config.llm.lora_rank=4", "--config.llm.lora_dropout=0.5"])
  params = jax.device_get(system.init_params(jax.random.PRNGKey(0)))
  params = jax.tree_util.tree_map_with_path(  # B = 0 at initialisation would hide the adapters
      lambda path, x: x + 0.05 if "lora_b" in jax.tree_util.keystr(path) else x, params)
  batch = _batch(system)
  _, plain = _system(["--config.llm.lora_rank=4"])
  np.testing.assert_array_equal(jax.jit(system.apply)(params, batch), jax.jit(plain.apply)(params, batch))  # no rng
  _, loss, _, compiled = _one_step(config, system, params)

  def update(step):
    state = {"step": jnp.asarray(step, jnp.int32), "params": params, "opt_state": compiled.program.tx.init(params)}
    new, metrics = compiled.step(jax.device_put(state, compiled.shardings), batch)
    return float(metrics["loss"]), jax.device_get(new["params"])

  (loss0, at0), (again0, again), (loss1, _) = update(0), update(0), update(1)
  assert loss0 == loss == again0 and loss1 != loss0
  jax.tree.map(np.testing.assert_array_equal, at0, again)
  no_dropout = float(next_token_loss(jax.jit(plain.apply)(params, batch), batch["input_ids"], batch["target_mask"])[0])
  assert abs(no_dropout - loss0) > 1e-4, (no_dropout, loss0)  # the step did drop something
