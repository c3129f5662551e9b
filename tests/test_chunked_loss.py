"""The loss over chunks of positions (no whole [B, T, V] logits) equals the whole-logits loss, and
so does its gradient, in float32, for tied and untied output projections and any chunk size."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from asl_motiongpt.llm import LlmConfig, Transformer
from asl_motiongpt.model.combinations import chunked_next_token_nll, next_token_nll

CONFIG = LlmConfig("llama", vocab_size=97, hidden_size=32, intermediate_size=48, num_layers=1, num_heads=4,
                   num_kv_heads=2, head_dim=8)


@pytest.mark.parametrize("tied,chunk", [(False, 7), (True, 4)])  # 20 predictions: a ragged last chunk, even ones
def test_chunked_loss_and_gradient_equal_the_whole_logits_loss(tied, chunk):
  config = CONFIG.replace(tie_word_embeddings=tied)
  model = Transformer(config)
  rng = np.random.default_rng(0)
  ids = jnp.asarray(rng.integers(0, config.vocab_size, (3, 21)), jnp.int32)
  mask = jnp.asarray(rng.random((3, 21)) < 0.7)
  params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), ids)["params"])

  def mean(nll_and_count):  # the training loss: the sum over target tokens / their number
    nll, count = nll_and_count
    return nll / count, (nll, count)

  def whole(p):
    return mean(next_token_nll(model.apply({"params": p}, ids), ids, mask))

  def chunked(p):
    hidden = model.apply({"params": p}, ids, return_hidden=True)
    head = lambda h: model.apply({"params": p}, h, method=Transformer.logits)
    return mean(chunked_next_token_nll(head, hidden, ids, mask, chunk))

  (_, (nll_a, count_a)), grads_a = jax.jit(jax.value_and_grad(whole, has_aux=True))(params)
  (_, (nll_b, count_b)), grads_b = jax.jit(jax.value_and_grad(chunked, has_aux=True))(params)
  assert count_a == count_b == mask[:, 1:].sum()
  np.testing.assert_allclose(nll_b, nll_a, rtol=1e-6)
  diff = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)))
  assert diff <= 1e-6, diff
  # the gradient reaches the output projection and the layers below it
  head_name = "embed_tokens" if tied else "lm_head"
  assert float(jnp.abs(grads_b[head_name][next(iter(grads_b[head_name]))]).max()) > 0


def test_the_chunked_program_never_holds_the_whole_logits():
  """The point of chunking: no [B, T-1, V] float32 array in the compiled gradient program."""
  model = Transformer(CONFIG)
  ids = jnp.zeros((2, 33), jnp.int32)
  mask = jnp.ones((2, 33), bool)
  params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), ids)["params"])

  def chunked(p):
    hidden = model.apply({"params": p}, ids, return_hidden=True)
    return chunked_next_token_nll(lambda h: model.apply({"params": p}, h, method=Transformer.logits), hidden, ids,
                                  mask, 8)[0]

  def whole(p):
    return next_token_nll(model.apply({"params": p}, ids), ids, mask)[0]

  whole_shape = f"tensor<2x32x{CONFIG.vocab_size}xf32>"
  assert whole_shape in jax.jit(jax.grad(whole)).lower(params).as_text()
  text = jax.jit(jax.grad(chunked)).lower(params).as_text()
  assert whole_shape not in text and f"tensor<2x8x{CONFIG.vocab_size}xf32>" in text
