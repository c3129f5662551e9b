"""parallel/run_once: initialisations compiled for speed of compiling, with the same numbers everywhere."""
import jax
import jax.numpy as jnp
import numpy as np

from asl_motiongpt.llm import LlmConfig, init_params
from asl_motiongpt.parallel.run_once import run_once

CONFIG = LlmConfig("llama", vocab_size=64, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2,
                   num_kv_heads=1, head_dim=8)


def test_same_values_as_the_default_compile_and_inside_other_traces():
  """Random bits are exact at any optimisation level; normal draws equal the default compile's to
  float rounding. Called inside eval_shape (how abstract states are planned) it becomes part of that
  trace instead of compiling on its own."""
  key = jax.random.PRNGKey(3)
  bits = lambda k: jax.random.bits(k, (1000,))
  np.testing.assert_array_equal(run_once(bits, key), jax.jit(bits)(key))
  normal = lambda k: jax.random.normal(k, (64, 32))
  np.testing.assert_allclose(run_once(normal, key), jax.jit(normal)(key), rtol=0, atol=1e-6)
  shape = jax.eval_shape(lambda k: run_once(normal, k), key)
  assert shape.shape == (64, 32) and shape.dtype == jnp.float32


def test_one_seed_one_set_of_parameters():
  """Every initialiser of a model goes through run_once: the same seed gives bitwise the same
  parameters each time, and placed in given shardings they are the same numbers."""
  a = init_params(CONFIG, jax.random.PRNGKey(0))
  b = init_params(CONFIG, jax.random.PRNGKey(0))
  c = init_params(CONFIG, jax.random.PRNGKey(1))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(c)))
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  placed = run_once(lambda: init_params(CONFIG, jax.random.PRNGKey(0)),
                    out_shardings=jax.tree.map(lambda _: device, a))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(placed)):
    np.testing.assert_array_equal(x, y)
    assert y.sharding == device
