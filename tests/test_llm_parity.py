"""Our Flax LLaMA / Qwen against transformers: logits on 320-token inputs, export, reload."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_helpers import LONG, hf_logits, saved_model, tokens

torch = pytest.importorskip("torch", reason="torch (test extra) is the reference for logit parity")

from asl_motiongpt.llm import Transformer, export_hf, load_hf  # noqa: E402

MODELS = [("llama3", False), ("llama3", True), ("llama2", False), ("qwen2", False), ("qwen2", True),
          ("qwen3", False), ("qwen3", True)]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("hf_models"))


@pytest.mark.parametrize("kind,tied", MODELS)
def test_logits_match_transformers(root, kind, tied):
  path = saved_model(kind, tied, root)
  config, params = load_hf(path)
  ids = tokens()
  ours = np.asarray(jax.jit(Transformer(config).apply)({"params": params}, jnp.asarray(ids)))
  ref = hf_logits(path, ids)
  assert ours.shape == ref.shape == (2, LONG, 256)
  np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind,tied", [("llama3", False), ("qwen3", True)])
def test_export_then_transformers_loads_and_matches(root, tmp_path, kind, tied):
  path = saved_model(kind, tied, root)
  config, params = load_hf(path)
  export_hf(config, params, tmp_path / "exported")
  ids = tokens(seed=1)
  np.testing.assert_allclose(hf_logits(str(tmp_path / "exported"), ids), hf_logits(path, ids), atol=1e-5, rtol=0)


def test_sharded_export_reloads(root, tmp_path):
  path = saved_model("qwen2", False, root)
  config, params = load_hf(path)
  export_hf(config, params, tmp_path / "sharded", max_shard_bytes=100_000)
  assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
  config2, params2 = load_hf(tmp_path / "sharded")
  assert config2.replace(hf_extra=()) == config.replace(hf_extra=())
  jax.tree.map(np.testing.assert_array_equal, params2, params)


def test_scanned_layers_give_the_same_logits(root):
  path = saved_model("llama3", False, root)
  config, params = load_hf(path)
  scan_config, scan_params = load_hf(path, scan_layers=True, remat_policy="full")
  ids = jnp.asarray(tokens(length=40))
  a = jax.jit(Transformer(config).apply)({"params": params}, ids)
  b = jax.jit(Transformer(scan_config).apply)({"params": scan_params}, ids)
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_left_padding_matches_transformers_attention_mask(root):
  path = saved_model("qwen2", False, root)
  config, params = load_hf(path)
  ids = tokens(length=24)
  mask = np.ones_like(ids)
  mask[0, :5] = 0
  positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
  ours = np.asarray(jax.jit(Transformer(config).apply)({"params": params}, jnp.asarray(ids), jnp.asarray(positions),
                                             kv_mask=jnp.asarray(mask, bool)))
  ref = hf_logits(path, ids, attention_mask=mask)
  np.testing.assert_allclose(ours[mask == 1], ref[mask == 1], atol=1e-4)


def test_cli_convert_then_export_round_trip(root, tmp_path):
  from asl_motiongpt import cli
  path = saved_model("llama3", True, root)
  assert cli.main(["convert-hf", "--hf-dir", path, "--out", str(tmp_path / "ours")]) == 0
  assert cli.main(["export-hf", "--llm-checkpoint", str(tmp_path / "ours"), "--out", str(tmp_path / "back")]) == 0
  ids = tokens(length=40, seed=9)
  np.testing.assert_allclose(hf_logits(str(tmp_path / "back"), ids), hf_logits(path, ids), atol=1e-5, rtol=0)


def test_unsupported_config_fields_are_refused(tmp_path):
  from asl_motiongpt.llm import UnsupportedConfigError, from_hf_dict
  from llm_helpers import hf_config
  base = hf_config("qwen2", False).to_dict()
  from_hf_dict(base)  # the plain config loads
  for change, message in [({"use_sliding_window": True, "sliding_window": 64}, "sliding-window"),
                          ({"num_experts": 8}, "num_experts"),
                          ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e6}}, "yarn"),
                          ({"hidden_act": "gelu"}, "hidden_act"),
                          ({"model_type": "mistral"}, "mistral")]:
    with pytest.raises(UnsupportedConfigError, match=message):
      from_hf_dict({**base, **change})


def test_pickled_checkpoints_are_never_loaded(tmp_path, root):
  import shutil
  path = saved_model("llama2", False, root)
  only_bin = tmp_path / "bin_only"
  only_bin.mkdir()
  shutil.copy(f"{path}/config.json", only_bin)
  (only_bin / "pytorch_model.bin").write_bytes(b"not loaded")
  with pytest.raises(FileNotFoundError, match="safetensors only"):
    load_hf(only_bin)


def test_bfloat16_checkpoint_and_block_loading_of_scanned_tied_models(root, tmp_path):
  """A bf16 safetensors file reads as numpy (no device staging) into fp32 parameters equal to the
  bf16 values; load_hf_sharded gives exactly load_hf's arrays, for stacked (scan) layers and tied
  embeddings too, with motion rows added as resize_for_motion adds them (the 8-device block split
  is in tests/sharding_check.py)."""
  import transformers
  from flax import linen as nn
  from asl_motiongpt.llm import load_hf_sharded
  from asl_motiongpt.model.vocab import MotionVocab, resize_for_motion
  model = transformers.AutoModelForCausalLM.from_pretrained(saved_model("qwen3", True, root), dtype=torch.bfloat16)
  model.save_pretrained(tmp_path / "bf16", safe_serialization=True)
  config, params = load_hf(tmp_path / "bf16", scan_layers=True)
  embed = model.model.embed_tokens.weight.detach().float().numpy()
  np.testing.assert_array_equal(params["embed_tokens"]["embedding"], embed)
  vocab = MotionVocab(250, 16)
  grown_config, grown = resize_for_motion(config, params, vocab)
  abstract = jax.eval_shape(lambda: nn.meta.unbox(Transformer(grown_config).init(
      jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"]))
  like = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=jax.sharding.SingleDeviceSharding(
      jax.devices()[0])), abstract)
  loaded = load_hf_sharded(tmp_path / "bf16", config, like, text_rows=vocab.text_vocab_size)
  assert jax.tree.structure(loaded) == jax.tree.structure(grown)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), loaded, grown)


def test_attention_in_causal_query_blocks_computes_the_whole_attention(root):
  """llm.causal_block: the training forward in query blocks (the last one ragged), each over the keys
  up to its end, gives the whole-attention logits and gradients — with left padding and packed
  segments in the mask — and transformers' logits."""
  path = saved_model("qwen3", False, root)
  config, params = load_hf(path)
  ids = tokens(length=45)
  blocked = config.replace(causal_block=16)
  np.testing.assert_allclose(np.asarray(jax.jit(Transformer(blocked).apply)({"params": params}, jnp.asarray(ids))),
                             hf_logits(path, ids), atol=1e-4, rtol=0)
  mask = np.ones_like(ids, bool)
  mask[0, :7] = False
  segments = np.where(np.arange(45) < 20, 1, 2)[None].repeat(2, 0) * mask

  def loss(p, cfg):
    logits = Transformer(cfg).apply({"params": p}, jnp.asarray(ids), kv_mask=jnp.asarray(mask),
                                    segment_ids=jnp.asarray(segments))
    return jnp.sum(jax.nn.log_softmax(logits)[..., 3] * mask)

  whole, whole_grads = jax.jit(jax.value_and_grad(lambda p: loss(p, config)))(params)
  parts, parts_grads = jax.jit(jax.value_and_grad(lambda p: loss(p, blocked)))(params)
  np.testing.assert_allclose(float(parts), float(whole), rtol=1e-6)
  for a, b in zip(jax.tree.leaves(parts_grads), jax.tree.leaves(whole_grads)):  # float32 sums in another order
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_attention_kernel_choice_and_cudnn_equals_ours_where_it_runs(root):
  """llm.attention: auto picks cuDNN flash attention only on a GPU in bfloat16/float16 with a
  supported head size, else ours; an explicit cudnn where it cannot run is refused with the reason.
  On a GPU (skipped elsewhere) the cuDNN path's logits and gradients equal ours within bf16 rounding,
  with left padding and packed segments in the mask."""
  from asl_motiongpt.llm.transformer import attention_kernel
  assert attention_kernel("auto", jnp.bfloat16, 64, platform="gpu") == "cudnn"
  assert attention_kernel("auto", jnp.float32, 64, platform="gpu") == "xla"
  assert attention_kernel("auto", jnp.bfloat16, 256, platform="gpu") == "xla"
  assert attention_kernel("auto", jnp.bfloat16, 64, platform="tpu") == "xla"
  assert attention_kernel("xla", jnp.bfloat16, 64, platform="gpu") == "xla"
  with pytest.raises(ValueError, match="NVIDIA GPUs only"):
    attention_kernel("cudnn", jnp.bfloat16, 64, platform="cpu")
  with pytest.raises(ValueError, match="bfloat16 or float16"):
    attention_kernel("cudnn", jnp.float32, 64, platform="gpu")
  if jax.default_backend() != "gpu":
    pytest.skip("the cuDNN path itself needs an NVIDIA GPU")
  path = saved_model("llama3", False, root)
  config, params = load_hf(path, dtype="bfloat16")
  ids = tokens(length=64)
  mask = np.ones_like(ids, bool)
  mask[0, :9] = False
  segments = np.where(np.arange(64) < 30, 1, 2)[None].repeat(2, 0) * mask

  def loss(p, cfg):
    logits = Transformer(cfg).apply({"params": p}, jnp.asarray(ids), kv_mask=jnp.asarray(mask),
                                    segment_ids=jnp.asarray(segments))
    return jnp.sum(jax.nn.log_softmax(logits.astype(jnp.float32))[..., 3] * mask), logits

  (ours, ours_logits), ours_grads = jax.jit(jax.value_and_grad(lambda p: loss(p, config), has_aux=True))(params)
  (fused, fused_logits), fused_grads = jax.jit(jax.value_and_grad(
      lambda p: loss(p, config.replace(attention="cudnn")), has_aux=True))(params)
  np.testing.assert_allclose(np.asarray(fused_logits, np.float32)[mask], np.asarray(ours_logits, np.float32)[mask],
                             atol=5e-2)
  np.testing.assert_allclose(float(fused), float(ours), rtol=2e-2)
  for a, b in zip(jax.tree.leaves(fused_grads), jax.tree.leaves(ours_grads)):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    assert np.abs(a - b).max() <= 5e-2 * max(np.abs(b).max(), 1e-3)
