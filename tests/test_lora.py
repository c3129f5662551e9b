"""LoRA (asl_motiongpt/llm/lora.py) on tiny Hugging Face LLaMA and Qwen models: fresh adapters leave
the logits exactly as they were, merged adapters give the unmerged logits, an exported merged model
gives them in transformers, adapters shard with their kernels, and only adapters (plus, for llm_align,
the motion rows) get optimizer state. (A whole LoRA chain from a Hugging Face folder: trains,
evaluates, exports: tests/test_hf_families.py.)"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from llm_helpers import hf_logits, saved_model, tokens

torch = pytest.importorskip("torch", reason="torch (test extra) is the reference")

from asl_motiongpt.llm import Transformer, export_hf, load_hf, lora  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("hf_models"))


def _with_adapters(config, params, rank=4, seed=1, trained=False):
  """The loaded weights with fresh adapters; `trained`: B random too (as after some training)."""
  lcfg = config.replace(lora_rank=rank, lora_alpha=8.0)
  fresh = nn.meta.unbox(jax.jit(Transformer(lcfg).init)(jax.random.PRNGKey(seed), jnp.zeros((1, 8), jnp.int32))["params"])
  _, adapters = lora.split(jax.device_get(fresh))
  if trained:
    keys = iter(jax.random.split(jax.random.PRNGKey(seed + 1), 1000))
    adapters = jax.tree.map(lambda x: np.asarray(jax.random.normal(next(keys), x.shape) * 0.05, x.dtype), adapters)
  return lcfg, lora.join(params, adapters)


# Scanned Qwen2 (q/k/v biases, stacked layers); LLaMA with LoRA, unrolled, is exported and compared
# with transformers in tests/test_hf_families.py.
@pytest.mark.parametrize("kind,scan", [("qwen2", True)])
def test_adapters_start_neutral_merge_exactly_and_export_to_transformers(root, tmp_path, kind, scan):
  path = saved_model(kind, False, root)
  config, params = load_hf(path, scan_layers=scan)
  ids = jnp.asarray(tokens(length=24, batch=2))
  plain_apply = jax.jit(Transformer(config).apply)  # one compile each for the plain and the adapted model
  base = np.asarray(plain_apply({"params": params}, ids))
  lcfg, fresh = _with_adapters(config, params)
  adapted_apply = jax.jit(Transformer(lcfg).apply)
  assert "lora_a" in (fresh["layers"] if scan else fresh["layers_0"])["attn"]["q_proj"]
  np.testing.assert_array_equal(np.asarray(adapted_apply({"params": fresh}, ids)), base)
  lcfg, trained = _with_adapters(config, params, trained=True)
  adapted = np.asarray(adapted_apply({"params": trained}, ids))
  assert np.abs(adapted - base).max() > 1e-3  # the adapters do change the model
  merged = lora.merge(trained, lcfg)
  assert jax.tree.structure(merged) == jax.tree.structure(params)
  np.testing.assert_allclose(np.asarray(plain_apply({"params": merged}, ids)), adapted, atol=1e-5, rtol=0)
  export_hf(config, merged, tmp_path / "merged")
  np.testing.assert_allclose(hf_logits(str(tmp_path / "merged"), np.asarray(ids)), adapted, atol=1e-4, rtol=0)


def test_adapters_shard_with_their_kernels_and_only_they_get_optimizer_state():
  from asl_motiongpt.llm import LlmConfig
  from asl_motiongpt.train.optimizer import with_frozen
  import optax
  config = LlmConfig("llama", vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                     num_kv_heads=2, head_dim=8, lora_rank=4, lora_targets=("q_proj", "down_proj"))
  boxed = jax.eval_shape(lambda: Transformer(config).init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"])
  specs = nn.get_partition_spec(boxed)["layers_0"]
  assert tuple(specs["attn"]["q_proj"]["lora_a"]) == ("embed", None)
  assert tuple(specs["attn"]["q_proj"]["lora_b"]) == (None, "q_heads")
  assert tuple(specs["mlp"]["down_proj"]["lora_b"]) == (None, "embed")
  assert "lora_a" not in specs["attn"]["k_proj"]  # not a target
  abstract = nn.meta.unbox(boxed)
  tx, mask = with_frozen(optax.adam(1e-3), abstract, (r"/lora_[ab]$",))
  state = jax.eval_shape(tx.init, abstract)
  moments = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state) if x.ndim)
  adapters = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(lora.split(abstract)[1]))
  assert moments == 2 * adapters  # Adam's two moments, for the adapters only
