"""Run by tests/test_sharding.py in a subprocess with 8 fake CPU devices (XLA_FLAGS must be set
before JAX starts). One training step of the LLM and of the tokenizer on several meshes, compared
with one device; prints a JSON report."""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from asl_motiongpt.llm import LlmConfig, Transformer
from asl_motiongpt.parallel import DEFAULT_RULES, make_mesh
from asl_motiongpt.parallel import sharding as shd
from asl_motiongpt.train import llm_step, step as step_compiler
from asl_motiongpt.gesture import GestureTokenizer, TokenizerSpec, VqConfig
from asl_motiongpt.gesture import train_step as tokenizer_step

# The accumulation run's mesh is data=2 x fsdp=4 (microbatches split across both batch axes).
MESHES = {"single": None, "fsdp": {"fsdp": 8}, "2x2x2": {"data": 2, "fsdp": 2, "tensor": 2}}  # 2x2x2: tensor too
# The tokenizer (slow to compile: convolutions) on the mesh that exercises all its sharded axes at once
# (FSDP, tensor and data; where the partitioner miscompile was found).
TOKENIZER_MESHES = ("2x2x2",)
CONFIG = LlmConfig("llama", vocab_size=128, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=8)


def llm_batch(rows=8):
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 128, (rows, 24)).astype(np.int32)
  target = np.zeros((rows, 24), bool)
  target[:, 10:] = True
  return {"input_ids": ids, "target_mask": target}


def run_llm(mesh_shape, steps=2, accumulation=1, config=CONFIG, rows=8):
  devices = jax.devices()[:1] if mesh_shape is None else jax.devices()
  mesh = make_mesh(mesh_shape or {"data": 1}, devices=devices)
  model = Transformer(config)
  tx = optax.adamw(1e-3)
  batch = llm_batch(rows)
  init = llm_step.boxed_state(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 24), jnp.int32))["params"], tx)
  _, shardings = step_compiler.abstract_state(init, mesh)
  state = step_compiler.init_state(init, shardings)
  step = step_compiler.compile_step(llm_step.make_step(lambda p, b: model.apply({"params": p}, b["input_ids"]), tx,
                                                  accumulation), mesh, shardings, batch)
  losses = []
  for _ in range(steps):
    state, metrics = step(state, shd.global_batch(batch, mesh))
    losses.append(float(metrics["loss"]))
  return losses, jax.device_get(state["params"]), state, step, batch


def run_tokenizer(mesh_shape, steps=2):
  devices = jax.devices()[:1] if mesh_shape is None else jax.devices()
  mesh = make_mesh(mesh_shape or {"data": 1}, devices=devices)
  # one residual block per level: every sharded parameter kind, half the convolutions to compile
  spec = TokenizerSpec(VqConfig(width=32, depth=1, code_dim=16, codebook_size=32), joints=50, dims=2)
  tok = GestureTokenizer(spec)
  tx = optax.adamw(1e-3)
  params, vq = tok.init(jax.random.PRNGKey(0), 16)
  # A trained-looking codebook: well-separated codes and healthy usage counts. Nearest-code choices
  # are discrete, so a near-tie could flip under a different summation order on another mesh; with
  # separated codes (and no dead codes to redraw at random) every mesh must agree to float precision.
  codebook = jax.random.normal(jax.random.PRNGKey(7), vq["codebook"].shape) * 3.0
  vq = {**vq, "codebook": codebook, "ema_sum": codebook * 10.0, "ema_count": jnp.full(vq["ema_count"].shape, 10.0),
        "initialised": jnp.ones((), bool)}
  _, shardings = step_compiler.abstract_state(tokenizer_step.boxed_state(tok, tx, 16, 0), mesh, DEFAULT_RULES)
  ts = jax.device_put({"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params), "vq": vq,
                       "rng": jax.random.PRNGKey(1)}, shardings)
  rng = np.random.default_rng(0)
  batch = {"pose": rng.normal(size=(8, 16, 50, 2)).astype(np.float32), "mask": rng.uniform(size=(8, 16, 50)) > 0.1,
           "time_mask": np.ones((8, 16), bool)}
  grad_fn = jax.jit(jax.grad(lambda p, b: tok.loss(p, vq, b["pose"], b["mask"], b["time_mask"], jax.random.PRNGKey(3))[0]))
  with jax.set_mesh(mesh), nn.logical_axis_rules(DEFAULT_RULES):
    grads = jax.device_get(grad_fn(ts["params"], shd.global_batch(batch, mesh)))
  example = {k: v[:1] for k, v in batch.items()}
  step = step_compiler.compile_step(tokenizer_step.make_step(tok, tx), mesh, shardings, example, DEFAULT_RULES)
  losses = []
  for _ in range(steps):
    ts, metrics = step(ts, batch)
    losses.append(float(metrics["loss"]))
  return losses, jax.device_get(ts["params"]), grads


def hf_loading(folder: str) -> dict:
  """A ~265 MB LLaMA (12 layers, a 16k vocabulary) saved as safetensors, then loaded two ways into FSDP-8 shardings (motion rows
  added): whole on the host first (load_hf + resize_for_motion + device_put), and block by block
  (load_hf_sharded). Peak host memory by tracemalloc (numpy buffers; the CPU devices' own buffers
  are XLA's and not counted), and the largest difference between the two results."""
  import tracemalloc
  from asl_motiongpt.llm import export_hf, load_hf, load_hf_sharded
  from asl_motiongpt.model.vocab import MotionVocab, resize_for_motion
  config = LlmConfig("llama", vocab_size=16000, hidden_size=512, intermediate_size=2048, num_layers=12, num_heads=8,
                     num_kv_heads=4, head_dim=64)
  model = Transformer(config)
  shapes = jax.eval_shape(lambda: nn.meta.unbox(model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"]))
  rng = np.random.default_rng(0)
  export_hf(config, jax.tree.map(lambda a: rng.standard_normal(a.shape, np.float32) * 0.02, shapes), folder)
  vocab = MotionVocab(15900, 256)  # a tokenizer a little smaller than the embedding, 256 motion codes
  grown_config = config.replace(vocab_size=-(-vocab.size // 128) * 128)
  mesh = make_mesh({"fsdp": 8})
  grown = Transformer(grown_config)
  abstract, shardings = step_compiler.abstract_state(
      lambda: grown.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"], mesh)
  tracemalloc.start()
  _, params = load_hf(folder)
  whole = jax.device_put(resize_for_motion(config, params, vocab)[1], shardings)
  del params
  whole_peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  tracemalloc.start()
  sharded = load_hf_sharded(folder, config, abstract, text_rows=vocab.text_vocab_size)
  sharded_peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  same_shardings = all(a.sharding == b.sharding for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(sharded)))
  return {"whole_peak": whole_peak, "sharded_peak": sharded_peak, "max_diff": max_diff(whole, sharded),
          "same_shardings": same_shardings, "model_bytes": sum(a.size * 4 for a in jax.tree.leaves(shapes))}


def max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def main():
  import os
  if os.environ.get("ASL_COMPILE_CACHE"):  # the test session's persistent compilation cache (tests/conftest.py)
    jax.config.update("jax_compilation_cache_dir", os.environ["ASL_COMPILE_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
  report = {"devices": jax.device_count()}
  ref_losses, ref_params, *single_run = run_llm(None)
  compiled_runs = {"single": single_run}
  for name, shape in MESHES.items():
    if name == "single":
      continue
    losses, params, *compiled_runs[name] = run_llm(shape)
    report[f"llm_{name}"] = {"loss_diff": max(abs(a - b) for a, b in zip(losses, ref_losses)),
                             "param_diff": max_diff(params, ref_params)}
  # 4 microbatches of 8 rows, each spread over all 8 devices, against the whole batch on one device
  whole_losses, whole_params, *_ = run_llm(None, rows=32)
  acc_losses, acc_params, *_ = run_llm({"data": 2, "fsdp": 4}, accumulation=4, rows=32)
  report["llm_accumulation"] = {"loss_diff": max(abs(a - b) for a, b in zip(acc_losses, whole_losses)),
                                "param_diff": max_diff(acc_params, whole_params)}
  ref_losses, ref_params, ref_grads = run_tokenizer(None)
  for name, shape in MESHES.items():
    if name not in TOKENIZER_MESHES:
      continue
    losses, params, grads = run_tokenizer(shape)
    report[f"tokenizer_{name}"] = {
        "loss_diff": max(abs(a - b) for a, b in zip(losses, ref_losses)), "param_diff": max_diff(params, ref_params),
        "grad_rel_diff": max(float(np.abs(g - r).max() / (np.abs(r).max() + 1e-30))
                             for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)))}
  # FSDP memory: what one device holds of the train state the sharded steps returned, against one
  # device (the same accounting as the compiled step's argument sizes, without compiling it again).
  sizes = {name: shd.bytes_per_device(compiled_runs[name][0]) for name in ("single", "fsdp")}
  report["fsdp_state_bytes"] = sizes
  import tempfile
  with tempfile.TemporaryDirectory() as folder:
    report["hf_loading"] = hf_loading(folder)
  json.dump(report, sys.stdout)


if __name__ == "__main__":
  main()
