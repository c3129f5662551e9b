"""KV-cache decoding equals the full forward pass; greedy generation equals transformers'."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_helpers import saved_model, tokens

torch = pytest.importorskip("torch", reason="torch (test extra) is the reference")

from asl_motiongpt.llm import Transformer, init_cache, load_hf  # noqa: E402
from asl_motiongpt.llm.generate import MotionSpan, Sampling, TextOnly, generate  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("hf_models"))


@pytest.mark.parametrize("kind", ["llama3", "qwen3"])
def test_cached_decoding_equals_full_forward_at_every_step(root, kind):
  config, params = load_hf(saved_model(kind, False, root))
  model = Transformer(config)
  ids = tokens(length=30, seed=2)
  mask = np.ones_like(ids, bool)
  mask[1, :6] = False  # left padding in row 1
  positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
  full = np.asarray(jax.jit(model.apply)({"params": params}, jnp.asarray(ids), jnp.asarray(positions), kv_mask=jnp.asarray(mask)))
  prefill = 12
  cache = init_cache(config, 2, 30)
  step = jax.jit(lambda p, t, pos, c, i: model.apply({"params": p}, t, pos, kv_mask=jnp.asarray(mask), cache=c,
                                                     cache_index=i))
  logits, cache = step(params, jnp.asarray(ids[:, :prefill]), jnp.asarray(positions[:, :prefill]), cache, 0)
  np.testing.assert_allclose(np.asarray(logits)[mask[:, :prefill]], full[:, :prefill][mask[:, :prefill]], atol=1e-5)
  for t in range(prefill, 30):
    logits, cache = step(params, jnp.asarray(ids[:, t:t + 1]), jnp.asarray(positions[:, t:t + 1]), cache, t)
    np.testing.assert_allclose(np.asarray(logits)[:, 0], full[:, t], atol=1e-5, err_msg=f"step {t}")


def test_per_layer_and_stacked_caches_decode_alike(root):
  """Layers unrolled keep one cache array per layer (written in place, read without a copy); under
  scan_layers the cache is one stacked array. Greedy and beam search (which reorders cache rows on
  each layout's batch axis) pick the same tokens either way."""
  path = saved_model("qwen3", False, root)
  config, params = load_hf(path)
  scan_config, scan_params = load_hf(path, scan_layers=True)
  per_layer, stacked = init_cache(config, 2, 30), init_cache(scan_config, 2, 30)
  assert len(per_layer["k"]) == config.num_layers and per_layer["k"][0].shape == (2, config.num_kv_heads, 30,
                                                                                  config.head_dim)
  assert stacked["k"].shape == (config.num_layers,) + per_layer["k"][0].shape
  prompts = tokens(length=7, batch=3, seed=6).tolist()
  for sampling in (Sampling(max_new_tokens=12), Sampling(max_new_tokens=12, beams=3)):
    ours = generate(config, params, prompts, sampling)
    assert ours == generate(scan_config, scan_params, prompts, sampling), sampling
    assert len(set(map(tuple, ours))) > 1  # rows differ: a cache row that followed the wrong beam would show


@pytest.mark.parametrize("kind", ["llama3", "qwen2"])
def test_greedy_generation_equals_transformers(root, kind):
  import transformers
  path = saved_model(kind, False, root)
  config, params = load_hf(path)
  prompts = tokens(length=9, batch=2, seed=3)
  ours = generate(config, params, prompts.tolist(), Sampling(max_new_tokens=20), eos_ids=())
  hf = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
  ref = hf.generate(torch.tensor(prompts, dtype=torch.long), max_new_tokens=20, do_sample=False,
                    eos_token_id=None, pad_token_id=0)
  assert ours == ref[:, 9:].tolist()


def test_padded_batch_generates_what_each_prompt_generates_alone(root):
  config, params = load_hf(saved_model("qwen3", False, root))
  a, b = tokens(length=5, batch=1, seed=4)[0].tolist(), tokens(length=11, batch=1, seed=5)[0].tolist()
  both = generate(config, params, [a, b], Sampling(max_new_tokens=8))
  assert both == [generate(config, params, [a], Sampling(max_new_tokens=8))[0],
                  generate(config, params, [b], Sampling(max_new_tokens=8))[0]]


def test_stops_at_end_token_and_top_k_one_is_greedy(root):
  config, params = load_hf(saved_model("llama3", False, root))
  prompt = tokens(length=6, batch=1, seed=6).tolist()
  greedy = generate(config, params, prompt, Sampling(max_new_tokens=12))[0]
  stop = greedy[4]
  cut = generate(config, params, prompt, Sampling(max_new_tokens=12), eos_ids=(stop,))[0]
  assert cut == greedy[:greedy.index(stop) + 1]
  sampled = generate(config, params, prompt, Sampling(max_new_tokens=12, temperature=1.0, top_k=1),
                     rng=jax.random.PRNGKey(3))[0]
  assert sampled == greedy
  nucleus = generate(config, params, prompt, Sampling(max_new_tokens=12, temperature=0.7, top_p=1e-6),
                     rng=jax.random.PRNGKey(4))[0]
  assert nucleus == greedy
  varied = {tuple(generate(config, params, prompt, Sampling(max_new_tokens=12, temperature=5.0),
                           rng=jax.random.PRNGKey(s))[0]) for s in range(4)}
  assert len(varied) > 1  # real sampling, not argmax in disguise


def test_constrained_decoding(root):
  config, params = load_hf(saved_model("qwen2", False, root))
  prompt = tokens(length=7, batch=2, seed=7).tolist()
  # pretend ids 200..239 are motion codes, 240 begin, 241 end
  span = MotionSpan(begin_id=240, end_id=241, first_code_id=200, num_codes=40)
  out = generate(config, params, prompt, Sampling(max_new_tokens=15, temperature=1.0), eos_ids=(241,),
                 constraint=span, rng=jax.random.PRNGKey(0))
  for row in out:
    assert row[0] == 240
    assert all(200 <= t < 240 for t in row[1:-1])
    assert row[-1] == 241 or len(row) == 15
  # a code budget: <end> is forced after max_codes codes, so every sign closes within it
  capped = generate(config, params, prompt, Sampling(max_new_tokens=15, temperature=1.0), eos_ids=(241,),
                    constraint=MotionSpan(240, 241, 200, 40, max_codes=4), rng=jax.random.PRNGKey(0))
  for row in capped:
    assert row[0] == 240 and row[-1] == 241 and 1 + 1 <= len(row) <= 4 + 2
    assert all(200 <= t < 240 for t in row[1:-1])
  text = generate(config, params, prompt, Sampling(max_new_tokens=15, temperature=3.0),
                  constraint=TextOnly(200, 242), rng=jax.random.PRNGKey(1))
  assert all(not (200 <= t < 242) for row in text for t in row)
  free = generate(config, params, prompt, Sampling(max_new_tokens=60, temperature=3.0), rng=jax.random.PRNGKey(1))
  assert any(200 <= t < 242 for row in free for t in row)  # without the constraint they do appear


def test_decoding_never_projects_a_whole_prompt_to_logits_at_a_real_vocabulary():
  """Prefill keeps only the last position's logits: at Qwen's 151,936 rows a batch of 16 prompts of
  256 tokens would otherwise hold 2.4 GB of float32 logits (XLA does not slice through the head)."""
  import jax.numpy as jnp
  from asl_motiongpt.llm import generate as g
  from asl_motiongpt.llm.config import LlmConfig
  from asl_motiongpt.llm.transformer import Transformer
  config = LlmConfig("qwen2", vocab_size=151_936, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                     num_kv_heads=2, head_dim=16, tie_word_embeddings=True)
  params = jax.eval_shape(lambda: Transformer(config).init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"])
  B, P = 16, 256
  compiled = g._generate.lower(params, None, jax.ShapeDtypeStruct((B, P), jnp.int32), jax.ShapeDtypeStruct((B, P), bool),
                               jax.random.PRNGKey(0), decoder=g.TransformerDecoder(config),
                               sampling=g.Sampling(max_new_tokens=8), constraint=g.NoConstraint(), eos_ids=(1,),
                               pad_id=0).compile()
  whole_logits = B * P * config.vocab_size * 4
  assert compiled.memory_analysis().temp_size_in_bytes < whole_logits / 8
