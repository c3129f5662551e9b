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
