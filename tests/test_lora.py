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


def _with_adapters(config, params, rank=4, seed=1, trained=False, rows_from=0):
  """The loaded weights with fresh adapters (and, from `rows_from` on, rows' deltas); `trained`: B and
  the deltas random too (as after some training)."""
  lcfg = config.replace(lora_rank=rank, lora_alpha=8.0, lora_rows_from=rows_from)
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
  ids = tokens(length=24, batch=2)
  ids[:, -3:] = [[255, 250, 241], [244, 255, 248]]  # rows with deltas (from 240 on) in the input
  ids = jnp.asarray(ids)
  plain_apply = jax.jit(Transformer(config).apply)  # one compile each for the plain and the adapted model
  base = np.asarray(plain_apply({"params": params}, ids))
  rows_from = config.vocab_size - 16  # as a chain's motion rows: their own trainable deltas
  lcfg, fresh = _with_adapters(config, params, rows_from=rows_from)
  adapted_apply = jax.jit(Transformer(lcfg).apply)
  assert "lora_a" in (fresh["layers"] if scan else fresh["layers_0"])["attn"]["q_proj"]
  assert fresh[lora.EMBED_ROWS].shape == (16, config.hidden_size) and fresh[lora.HEAD_ROWS].shape == (config.hidden_size, 16)
  np.testing.assert_array_equal(np.asarray(adapted_apply({"params": fresh}, ids)), base)
  lcfg, trained = _with_adapters(config, params, trained=True, rows_from=rows_from)
  adapted = np.asarray(adapted_apply({"params": trained}, ids))
  assert np.abs(adapted - base).max() > 1e-3  # the adapters do change the model
  merged = lora.merge(trained, lcfg)
  assert jax.tree.structure(merged) == jax.tree.structure(params)
  np.testing.assert_array_equal(merged["embed_tokens"]["embedding"][:rows_from], params["embed_tokens"]["embedding"][:rows_from])
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
  tx, mask = with_frozen(optax.adam(1e-3), abstract, (r"/lora_[ab]$",))  # (rows' deltas: test below)
  state = jax.eval_shape(tx.init, abstract)
  moments = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state) if x.ndim)
  adapters = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(lora.split(abstract)[1]))
  assert moments == 2 * adapters  # Adam's two moments, for the adapters only


def test_tied_rows_delta_starts_neutral_and_merges_into_the_shared_table():
  """lora_rows_from on a tied model: one delta serves the embedding and the output columns; zero at the
  start (the logits as without it), merged into the table's rows (the same logits, text rows untouched);
  with the chain's trainable patterns only the adapters and the rows' delta get optimizer state."""
  from asl_motiongpt.llm import LlmConfig
  from asl_motiongpt.train.optimizer import with_frozen
  import optax
  config = LlmConfig("qwen2", vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=4,
                     num_kv_heads=2, head_dim=8, tie_word_embeddings=True)
  lcfg = config.replace(lora_rank=4, lora_rows_from=48)
  ids = jnp.asarray([[5, 9, 48, 63, 50, 7]])
  params = nn.meta.unbox(Transformer(config).init(jax.random.PRNGKey(0), ids)["params"])
  adapted = nn.meta.unbox(Transformer(lcfg).init(jax.random.PRNGKey(1), ids)["params"])
  assert lora.HEAD_ROWS not in adapted and adapted[lora.EMBED_ROWS].shape == (16, 32)
  with_rows = lora.join(params, lora.split(adapted)[1])
  base = Transformer(config).apply({"params": params}, ids)
  np.testing.assert_array_equal(Transformer(lcfg).apply({"params": with_rows}, ids), base)
  with_rows[lora.EMBED_ROWS] = jax.random.normal(jax.random.PRNGKey(2), (16, 32)) * 0.1
  trained = Transformer(lcfg).apply({"params": with_rows}, ids)
  assert np.abs(np.asarray(trained[..., 48:] - base[..., 48:])).max() > 1e-3  # the motion columns moved
  merged = lora.merge(with_rows, lcfg)
  np.testing.assert_array_equal(merged["embed_tokens"]["embedding"][:48], params["embed_tokens"]["embedding"][:48])
  np.testing.assert_allclose(Transformer(config).apply({"params": merged}, ids), trained, atol=1e-5, rtol=0)
  tx, _ = with_frozen(optax.adam(1e-3), adapted, (r"/lora_[ab]$", rf"^{lora.EMBED_ROWS}$"))
  moments = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(jax.eval_shape(tx.init, adapted)) if x.ndim)
  assert moments == 2 * sum(int(np.prod(x.shape)) for x in jax.tree.leaves(lora.split(adapted)[1]))
