"""`asl-motiongpt train --dry-run`: every stage of a chain compiled for a topology that this machine
does not have (8 CPU devices standing in), from an LLM folder holding only config.json; nothing is
read or written, and what it reports matches the model and the sharding."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.path.dirname(sys.executable), "asl-motiongpt")
LLAMA3_SHAPED = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
                 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "vocab_size": 1000, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 512,
                 "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu"}


def test_dry_run_of_a_chain_on_8_planned_devices_from_config_json_alone(tmp_path):
  hf = tmp_path / "llama3-shaped"
  hf.mkdir()
  (hf / "config.json").write_text(json.dumps(LLAMA3_SHAPED))  # no tokenizer, no safetensors
  run = tmp_path / "cwd"
  run.mkdir()
  plan_file = tmp_path / "plan.json"
  r = subprocess.run([BIN, "train", "--config", os.path.join(REPO, "configs", "strategies", "direct_alignment_fusion.py"),
                      "--dry-run", "--topology", "cpu:8", f"--config.llm.hf_dir={hf}", "--config.mesh.fsdp=8",
                      "--config.mesh.data=1", "--config.llm.dtype=float32", "--config.stages.align.batch_size=8",
                      "--config.stages.fuse.batch_size=8", "--config.stages.tokenizer.batch_size=8",
                      "--device-memory-gib", "1", "--plan-out", str(plan_file)],
                     cwd=run, capture_output=True, text=True, timeout=600,
                     env=dict(os.environ, JAX_PLATFORMS="", XLA_FLAGS=""))  # the topology comes from --topology
  assert r.returncode == 0, r.stderr[-3000:]
  assert "fsdp=8" in r.stdout and "results: dry run of 3 stages on cpu:8 (8 devices)" in r.stdout
  assert os.listdir(run) == []  # no workdir, no checkpoint, no cache
  plans = {p["stage"]: p for p in json.loads(plan_file.read_text())}
  assert list(plans) == ["tokenizer", "align", "fuse"]
  # The LLM stages hold the config.json model (motion rows added to its embedding and output layer)
  # and an adapter; align trains only the adapter (direct alignment), fuse trains everything.
  from asl_motiongpt.llm import LlmConfig
  from asl_motiongpt.llm import flops
  base = flops.total_params(LlmConfig("llama", vocab_size=1000, hidden_size=64, intermediate_size=128, num_layers=2,
                                      num_heads=4, num_kv_heads=2, head_dim=16))
  align, fuse = plans["align"], plans["fuse"]
  assert align["params"] == fuse["params"] > base and align["trainable"] < fuse["trainable"] == fuse["params"]
  # FSDP over 8 devices: each holds an eighth of the fp32 parameters and their two Adam moments
  # (plus small replicated leaves), far below the whole state.
  whole = 3 * 4 * fuse["params"]
  assert whole / 8 <= fuse["state_bytes"] <= whole / 6, (fuse["state_bytes"], whole)
  assert fuse["argument_bytes"] >= fuse["state_bytes"] and fuse["peak_bytes"] < 1 << 30
  assert fuse["units_per_step"] == 8 * 250 and fuse["model_flops"] > 6 * base * 8 * 250 * 0.5
  assert plans["tokenizer"]["unit"] == "frames" and plans["tokenizer"]["xla_flops"] > 0
  assert "| fuse |" in r.stdout and "| yes |" in r.stdout


# -- TPU slices ---------------------------------------------------------------------------------------
# What runs everywhere: XLA's refusal read into a row, the planned platform steering kernel choices.
# What needs libtpu (the [tpu] extra; skipped without it): real slices compiled on this machine.

import importlib.util

import pytest

from asl_motiongpt.train import dry_run

HAS_LIBTPU = importlib.util.find_spec("libtpu") is not None
NEEDS_LIBTPU = pytest.mark.skipif(not HAS_LIBTPU, reason="libtpu is not installed (pip install -e '.[tpu]')")


def test_stand_in_vocabulary_has_the_checkpoints_size():
  """A plan from config.json alone stands in a word tokenizer of the checkpoint's size: all its words
  (the tokenizers library's trainer would stop at 30,000 and put the motion rows at id 30,000)."""
  tokenizer = dry_run._stand_in_tokenizer(128_252)
  assert len(tokenizer) == 128_256


@pytest.mark.parametrize("message, figures", [
    ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO temporaries (57.30G) "
     "exceeds available HBM (15.75G).", "needs 57.30G, 15.75G available"),
    ("RESOURCE_EXHAUSTED: XLA:TPU compile permanent error. Ran out of memory in memory space hbm. Used 49.34G of "
     "32.00G hbm. Exceeded hbm capacity by 17.34G.", "needs 49.34G, 32.00G available"),
    ("RESOURCE_EXHAUSTED: Aborting compilation early because it's unlikely to have enough memory. Requires 3.84T, "
     "has 90.96G available.", "needs 3.84T, 90.96G available")])
def test_a_stage_that_does_not_fit_is_a_row_with_xlas_figures(message, figures):
  error = RuntimeError(message)
  assert dry_run.is_out_of_memory(error) and dry_run.out_of_memory_figures(error).startswith(figures)
  assert not dry_run.is_out_of_memory(RuntimeError("INVALID_ARGUMENT: bad sharding"))
  fits = dry_run.StagePlan("tokenizer", "tokenizer", "fsdp=8", 10, 10, 1 << 20, 2 << 20, 0, 3 << 20, 512, "frames",
                           None, None, devices=8)
  too_big = dry_run.StagePlan("align", "llm", "fsdp=8", 10, 5, 1 << 20, 0, 0, 0, 2000, "tokens", None, 8e12,
                              devices=8, does_not_fit=dry_run.out_of_memory_figures(error))
  rows = dry_run.table([fits, too_big]).splitlines()
  assert rows[0].endswith("| fits |") and rows[2].endswith("| yes |")
  assert f"**does not fit**: {figures}" in rows[3] and "| 1.00T |" in rows[3]  # model FLOPs per device


def test_kernel_choices_follow_the_planned_platform_not_this_machine():
  from asl_motiongpt.llm.dense import projection_dot
  from asl_motiongpt.llm.transformer import attention_kernel
  from asl_motiongpt.parallel import target
  import jax.numpy as jnp
  assert target.platform() == "cpu" and projection_dot(jnp.bfloat16) is not None  # the CPU-only bf16 dot
  with target.compiling_for("tpu"):
    assert target.platform() == "tpu" and projection_dot(jnp.bfloat16) is None
    assert attention_kernel("auto", jnp.bfloat16, 128) == "xla"
  with target.compiling_for("gpu"):
    assert attention_kernel("auto", jnp.bfloat16, 128) == "cudnn"
  assert target.platform() == "cpu"


def test_tpu_topologies_without_libtpu_say_what_to_install(monkeypatch):
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None)
  with pytest.raises(RuntimeError, match=r"pip install -e '\.\[tpu\]'"):
    dry_run.topology_devices("tpu:v5p-64")
  with pytest.raises(ValueError, match="v5litepod-16"):  # the table's refusal, before anything loads
    dry_run.topology_devices("tpu:v5e-12")


@NEEDS_LIBTPU
@pytest.mark.parametrize("name, devices, kind", [("tpu:v4-8", 4, "TPU v4"), ("tpu:v5p-64", 32, "TPU v5"),
                                                 ("tpu:v5e-16", 16, "TPU v5 lite"), ("tpu:v6e-8", 8, "TPU v6 lite"),
                                                 ("tpu:v5e-16x2", 32, "TPU v5 lite")])
def test_cloud_names_give_libtpu_the_real_slice(name, devices, kind):
  planned = subprocess.run([sys.executable, "-c", f"from asl_motiongpt.train import dry_run\n"
                            f"dry_run.use_topology({name!r})\n"
                            f"found = dry_run.topology_devices({name!r})\n"
                            f"print(len(found), found[0].device_kind, sep='|')"],
                           capture_output=True, text=True, timeout=300)
  assert planned.returncode == 0, planned.stderr[-2000:]
  assert planned.stdout.strip().splitlines()[-1] == f"{devices}|{kind}"


@NEEDS_LIBTPU
def test_a_tpu_plan_that_does_not_fit_says_so_and_the_other_stages_are_planned(tmp_path):
  hf = tmp_path / "llama3-shaped"
  hf.mkdir()
  (hf / "config.json").write_text(json.dumps(LLAMA3_SHAPED))
  plan_file = tmp_path / "plan.json"
  # One v5e chip (16 GiB) and a batch of 16,384 x 250 tokens with the whole logits in one piece.
  r = subprocess.run([BIN, "train", "--config", os.path.join(REPO, "configs", "strategies", "direct_alignment_fusion.py"),
                      "--dry-run", "--topology", "tpu:v5e-1", f"--config.llm.hf_dir={hf}", "--config.mesh.data=1",
                      "--config.stages.align.batch_size=16384", "--config.stages.fuse.batch_size=8",
                      "--config.stages.tokenizer.batch_size=8", "--config.train.loss_chunk=0",
                      "--plan-out", str(plan_file)],
                     cwd=tmp_path, capture_output=True, text=True, timeout=600, env=dict(os.environ, TMPDIR=str(tmp_path)))
  assert r.returncode == 1, r.stderr[-3000:]
  plans = {p["stage"]: p for p in json.loads(plan_file.read_text())}
  assert plans["align"]["does_not_fit"].startswith("needs ") and "available (XLA)" in plans["align"]["does_not_fit"]
  assert plans["tokenizer"]["does_not_fit"] is None and plans["fuse"]["peak_bytes"] > 0
  assert "| yes |" in r.stdout and "**does not fit**" in r.stdout and "DOES NOT FIT: align" in r.stdout
  assert not [name for name in os.listdir(tmp_path) if name.startswith("asl-dry-run-")]  # nothing left behind


def test_fit_finds_overrides_that_pasted_back_give_a_plan_that_fits(tmp_path):
  """--fit on a budget the configured plan exceeds: it prints overrides, cheapest first, and the chain
  planned under them fits (each stage 'yes')."""
  hf = tmp_path / "llama3-shaped"
  hf.mkdir()
  (hf / "config.json").write_text(json.dumps(LLAMA3_SHAPED))
  chain = [BIN, "train", "--config", os.path.join(REPO, "configs", "strategies", "joint.py:tiny"), "--dry-run",
           "--topology", "cpu:8", f"--config.llm.hf_dir={hf}", "--config.stages.joint.batch_size=64",
           "--config.train.loss_chunk=0", "--device-memory-gib", "0.065"]
  env = dict(os.environ, JAX_PLATFORMS="", XLA_FLAGS="")
  fitted = subprocess.run(chain + ["--fit", "--plan-out", str(tmp_path / "fit.json")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=env)
  assert fitted.returncode == 0, fitted.stderr[-3000:]
  overrides = json.loads((tmp_path / "fit.json").read_text())["overrides"]
  # the whole logits of 64 x 250 tokens do not fit 0.065 GiB; sharding alone does not help, the loss
  # in chunks does, and nothing costlier is asked for
  assert overrides == ["--config.mesh.fsdp=-1", "--config.mesh.data=1", "--config.train.loss_chunk=64"], fitted.stdout
  assert f"fits 0.065 GiB per device on cpu:8 with: {' '.join(overrides)}" in fitted.stdout
  assert "(as configured): joint: peak" in fitted.stdout  # the configured plan did not fit
  # The plan printed last is the chain compiled with exactly these strings applied as the command line
  # applies them (config_loader.apply_override); every stage fits under them.
  rows = [line for line in fitted.stdout.splitlines() if line.startswith("| tokenizer |") or line.startswith("| joint |")]
  assert len(rows) == 2 and all(row.endswith("| yes |") for row in rows), fitted.stdout
  from asl_motiongpt.config_loader import load_config
  pasted = load_config(os.path.join(REPO, "configs", "strategies", "joint.py:tiny"), overrides)
  assert (pasted.mesh.fsdp, pasted.mesh.data, pasted.train.loss_chunk) == (-1, 1, 64)
