"""Motion vocabulary, adapter and the four model combinations on tiny configs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from asl_motiongpt.llm import LlmConfig, Transformer, init_params
from asl_motiongpt.model import (COMBINATIONS, TRAINABLE, MotionLanguageModel, MotionVocab, add_to_tokenizer,
                                 next_token_loss, resize_for_motion)
from asl_motiongpt.train.optimizer import trainable_mask

TINY = LlmConfig("llama", vocab_size=96, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4,
                 num_kv_heads=2, head_dim=8)
TINY_B = LlmConfig("qwen3", vocab_size=80, hidden_size=24, intermediate_size=40, num_layers=1, num_heads=2,
                   num_kv_heads=1, head_dim=12, qk_norm=True, attention_bias=True)
FIRST_CODE, NUM_CODES = 60, 16          # motion code ids 60..75, then begin/end/mask 76..78
CODEBOOK = jnp.asarray(np.random.default_rng(1).normal(size=(NUM_CODES, 16)), jnp.float32)


def _model(combination):
  return MotionLanguageModel(combination, TINY, llm_b=TINY_B if combination == "mlp_llm_llm" else None,
                             motion_dim=16, adapter_hidden=20, first_code_id=FIRST_CODE,
                             motion_end=FIRST_CODE + NUM_CODES + 3)


def _batch():
  rng = np.random.default_rng(0)
  ids = rng.integers(0, FIRST_CODE, (2, 12))
  ids[:, 2:6] = rng.integers(FIRST_CODE, FIRST_CODE + NUM_CODES, (2, 4))  # motion codes
  target = jnp.zeros((2, 12), bool).at[:, 7:].set(True)
  return jnp.asarray(ids, jnp.int32), target


def _default_mask(params, combination):
  return trainable_mask(params, tuple(rf"^{g}/" for g in TRAINABLE[combination]))


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_forward_backward_and_frozen_parts(combination):
  model = _model(combination)
  ids, target = _batch()
  params = nn.meta.unbox(jax.jit(model.init)(jax.random.PRNGKey(0), ids, CODEBOOK)["params"])
  logits = jax.jit(model.apply)({"params": params}, ids, CODEBOOK)
  vocab = TINY_B.vocab_size if combination == "mlp_llm_llm" else TINY.vocab_size
  assert logits.shape == (2, 12, vocab)

  def loss(p):
    return next_token_loss(jax.jit(model.apply)({"params": p}, ids, CODEBOOK), ids, target)[0]

  grads = jax.jit(jax.grad(loss))(params)
  mask = _default_mask(params, combination)
  for (path, g), (_, trains) in zip(jax.tree_util.tree_leaves_with_path(grads),
                                    jax.tree_util.tree_leaves_with_path(mask)):
    if not trains:
      assert float(jnp.abs(g).max()) == 0.0, f"{combination}: frozen {jax.tree_util.keystr(path)} got a gradient"
  trained = [float(jnp.abs(g).max()) for g, t in zip(jax.tree.leaves(grads), jax.tree.leaves(mask)) if t]
  assert trained and max(trained) > 0
  if combination != "llm_align":  # the motion features reach the loss through the adapter
    assert float(jnp.abs(grads["adapter"]["fc1"]["kernel"]).max()) > 0


def test_adapter_reads_the_codebook_at_motion_tokens_only():
  """The adapter turns each motion code's VQ embedding into the LLM input; text tokens keep their
  embedding. Changing a code's codebook row moves the logits from that token on, nothing before."""
  model = _model("mlp")
  ids, _ = _batch()
  params = nn.meta.unbox(jax.jit(model.init)(jax.random.PRNGKey(1), ids, CODEBOOK)["params"])
  base = np.asarray(jax.jit(model.apply)({"params": params}, ids, CODEBOOK))
  unused = next(c for c in range(NUM_CODES) if c + FIRST_CODE not in np.asarray(ids))
  np.testing.assert_array_equal(base, jax.jit(model.apply)({"params": params}, ids, CODEBOOK.at[unused].add(5.0)))
  code = int(ids[0, 3]) - FIRST_CODE
  moved = np.asarray(jax.jit(model.apply)({"params": params}, ids, CODEBOOK.at[code].add(5.0)))
  first_use = int(np.argmax(np.asarray(ids[0]) == code + FIRST_CODE))
  assert not np.allclose(base[0, first_use:], moved[0, first_use:])
  np.testing.assert_array_equal(base[0, :first_use], moved[0, :first_use])  # causal


def test_loss_ignores_prompt_and_padding():
  ids, target = _batch()
  logits = jax.random.normal(jax.random.PRNGKey(0), (2, 12, 96))
  loss, count = next_token_loss(logits, ids, target)
  assert count == 2 * 5  # tokens 7..11 are predicted from positions 6..10
  grad = jax.grad(lambda l: next_token_loss(l, ids, target)[0])(logits)
  assert float(jnp.abs(grad[:, :6]).max()) == 0.0 and float(jnp.abs(grad[:, 11]).max()) == 0.0
  assert float(jnp.abs(grad[:, 6:11]).min()) > 0
  # against a direct computation
  logp = jax.nn.log_softmax(logits, -1)
  manual = -np.mean([float(logp[b, t - 1, ids[b, t]]) for b in range(2) for t in range(7, 12)])
  np.testing.assert_allclose(float(loss), manual, rtol=1e-6)


def test_motion_vocab_ids_and_padded_checkpoint_vocab():
  vocab = MotionVocab(text_vocab_size=90, num_codes=1024)
  assert (vocab.first_code_id, vocab.begin_id, vocab.end_id, vocab.mask_id, vocab.size) == (90, 1114, 1115, 1116, 1117)
  np.testing.assert_array_equal(vocab.ids_to_codes(vocab.codes_to_ids([0, 5, 1023]).tolist() + [3, 1114]), [0, 5, 1023])
  with pytest.raises(ValueError, match="motion codes"):
    vocab.codes_to_ids([1024])
  # The checkpoint pads its vocabulary to 96 rows for 90 real tokens: rows 90..95 are reused.
  params = init_params(TINY, jax.random.PRNGKey(0))
  config, resized = resize_for_motion(TINY, params, vocab, pad_to_multiple=64)
  assert config.vocab_size == 1152 and resized["embed_tokens"]["embedding"].shape == (1152, 32)
  emb = np.asarray(params["embed_tokens"]["embedding"])
  new = resized["embed_tokens"]["embedding"]
  np.testing.assert_array_equal(new[:90], emb[:90])
  np.testing.assert_allclose(new[90:], np.broadcast_to(emb[:90].mean(0), (1152 - 90, 32)), rtol=1e-6)
  # Text-token logits are unchanged by the extension.
  ids = jnp.asarray([[1, 5, 7, 60, 89]])
  before = jax.jit(Transformer(TINY).apply)({"params": params}, ids)
  after = jax.jit(Transformer(config).apply)({"params": resized}, ids)
  np.testing.assert_allclose(np.asarray(after)[..., :90], np.asarray(before)[..., :90], atol=1e-6)


@pytest.mark.parametrize("text_tokens", [32_000, 128_256, 151_665])  # LLaMA-2, LLaMA-3, Qwen2.5/3
def test_motion_ids_of_compact_codes_at_real_vocabulary_sizes(text_tokens):
  """Codes kept compact (int16, as older code caches hold them) become ids above 32,767 without
  wrapping: int16(800) + 32,002 used to give -32,734, and 128,256 overflowed."""
  vocab = MotionVocab(text_vocab_size=text_tokens, num_codes=1024)
  codes = np.asarray([0, 765, 766, 800, 1023], np.int16)
  ids = vocab.codes_to_ids(codes)
  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids, text_tokens + codes.astype(np.int64))
  np.testing.assert_array_equal(vocab.ids_to_codes(ids), codes)
  assert vocab.is_motion(ids).all() and not vocab.is_motion([text_tokens - 1]).any()


@pytest.mark.parametrize("codes,rows", [(32, 151_936), (1024, 152_704)])
def test_motion_rows_in_a_padded_checkpoint_vocabulary(codes, rows):
  """Qwen pads 151,665 tokens to 151,936 rows. Motion tokens always follow the tokenizer's last id:
  32 codes (+3 markers) fit in the 271 padding rows, which are reused (the embedding keeps its size);
  1,024 do not, and the embedding grows to the next multiple of 128. Text rows stay as they were."""
  from asl_motiongpt.model.assembly import motion_vocab_rows
  vocab = MotionVocab(text_vocab_size=151_665, num_codes=codes)
  assert motion_vocab_rows(151_936, vocab) == rows
  config = TINY.replace(vocab_size=151_936, hidden_size=4, tie_word_embeddings=True)
  embedding = np.random.default_rng(0).standard_normal((151_936, 4)).astype(np.float32)
  grown, params = resize_for_motion(config, {"embed_tokens": {"embedding": embedding}}, vocab)
  assert grown.vocab_size == rows and params["embed_tokens"]["embedding"].shape == (rows, 4)
  np.testing.assert_array_equal(params["embed_tokens"]["embedding"][:151_665], embedding[:151_665])
  np.testing.assert_allclose(params["embed_tokens"]["embedding"][vocab.first_code_id:vocab.size],
                             np.broadcast_to(embedding[:151_665].mean(0), (vocab.size - 151_665, 4)), rtol=1e-5)


def test_motion_tokens_in_a_real_tokenizer():
  from tokenizers import Tokenizer, models, pre_tokenizers, trainers
  from transformers import PreTrainedTokenizerFast
  tok = Tokenizer(models.BPE(unk_token="<unk>"))
  tok.pre_tokenizer = pre_tokenizers.Whitespace()
  tok.train_from_iterator(["morgen regen im süden", "heute sonne im norden"] * 10,
                          trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>", "<s>", "</s>"]))
  tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
  vocab = MotionVocab(text_vocab_size=len(tokenizer), num_codes=16)
  add_to_tokenizer(tokenizer, vocab)
  ids = tokenizer("regen <motion_begin><motion_id_3><motion_id_15><motion_end>")["input_ids"]
  assert ids[-4:] == [vocab.begin_id, vocab.first_code_id + 3, vocab.first_code_id + 15, vocab.end_id]
  assert "süden" in tokenizer.decode(tokenizer("im süden")["input_ids"])


@pytest.mark.parametrize("scan", [False, True])
def test_every_parameter_has_logical_axis_names(scan):
  from asl_motiongpt.llm.transformer import logical_axes
  config = TINY_B.replace(scan_layers=scan, num_layers=2, tie_word_embeddings=False)
  specs = logical_axes(config)
  shapes = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0)))
  for (path, spec), shape in zip(jax.tree_util.tree_leaves_with_path(specs, is_leaf=lambda x: x is None or
                                                                     isinstance(x, jax.sharding.PartitionSpec)),
                                 jax.tree.leaves(shapes)):
    assert spec is not None and len(spec) == len(shape.shape), jax.tree_util.keystr(path)
    assert all(name is not None for name in spec), (jax.tree_util.keystr(path), spec)
  if scan:
    assert specs["layers"]["attn"]["q_proj"]["kernel"][0] == "layers"


def test_bfloat16_compute_stays_close_to_float32():
  params = init_params(TINY, jax.random.PRNGKey(2))
  ids = jnp.asarray(np.random.default_rng(1).integers(0, 96, (2, 16)), jnp.int32)
  full = jax.jit(Transformer(TINY).apply)({"params": params}, ids)
  half = jax.jit(Transformer(TINY.replace(dtype="bfloat16")).apply)({"params": params}, ids)
  assert half.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(half, np.float32), np.asarray(full), atol=0.05)


def test_bfloat16_projections_accumulate_in_float32_on_cpu():
  """On CPU every projection of a bfloat16 model is a bf16 x bf16 dot with a float32 result, rounded
  once after (llm/dense.projection_dot: XLA:CPU's bf16-result dot is a slow path); float32 models
  keep plain dots."""
  import re
  params = init_params(TINY, jax.random.PRNGKey(2))
  ids = jnp.zeros((2, 16), jnp.int32)
  dots = lambda config: [line for line in jax.jit(Transformer(config).apply).lower({"params": params}, ids).as_text()
                         .splitlines() if "dot_general" in line]
  projections = 7 * TINY.num_layers + 1  # q, k, v, o, gate, up, down per layer; the LM head
  accumulating = [d for d in dots(TINY.replace(dtype="bfloat16")) if re.search(r"xbf16>\) -> tensor<[0-9x]+xf32>", d)]
  assert len(accumulating) >= projections, accumulating
  assert not [d for d in dots(TINY) if "bf16" in d]


def test_bfloat16_projection_gradients_equal_autodiff_of_the_same_product():
  """The float32-accumulating projection's own backward (dx = dy W^T; dW = x^T dy with x^T formed
  first, for XLA:CPU's bf16 kernel) gives what autodiff of the same product gives, to bf16 rounding."""
  from asl_motiongpt.llm.dense import float32_accumulating_dot
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(96, 40)), jnp.bfloat16)
  w = jnp.asarray(rng.normal(size=(40, 24)), jnp.bfloat16)
  dy = jnp.asarray(rng.normal(size=(96, 24)), jnp.bfloat16)
  dims = (((1,), (0,)), ((), ()))
  reference = lambda x, w: jax.lax.dot_general(x, w, dims, preferred_element_type=jnp.float32).astype(x.dtype)
  ours = lambda x, w: float32_accumulating_dot(x, w, dims)
  (y, pull), (y_ref, pull_ref) = jax.vjp(ours, x, w), jax.vjp(reference, x, w)
  np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(y_ref, np.float32))
  for got, want in zip(jax.jit(pull)(dy), jax.jit(pull_ref)(dy)):
    assert got.dtype == want.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_greedy_decoding_follows_the_training_forward(combination):
  """Greedy KV-cache decoding through the assembled system's decoder (the training model itself:
  adapter embeddings; for mlp_llm_llm two caches, A's hidden states bridged into B) picks at every
  step the argmax of the training forward over the sequence so far."""
  from asl_motiongpt.llm.generate import Sampling, generate
  from asl_motiongpt.model.assembly import SystemDecoder
  model = _model(combination)
  prompt = [3, 61, 70, 62, 75, 9]
  params = nn.meta.unbox(jax.jit(model.init)(jax.random.PRNGKey(2), jnp.asarray([prompt], jnp.int32), CODEBOOK)["params"])
  out = generate(TINY, params, [prompt], Sampling(max_new_tokens=6), decoder=SystemDecoder(model), aux=CODEBOOK)[0]
  assert len(out) == 6
  full = jnp.asarray([prompt + out], jnp.int32)
  logits = jax.jit(model.apply)({"params": params}, full, CODEBOOK)
  want = np.asarray(jnp.argmax(logits[0, len(prompt) - 1:-1], axis=-1))
  np.testing.assert_array_equal(np.asarray(out), want)
  # Beam search through the same decoder (caches reordered per beam, both caches for mlp_llm_llm):
  # its score is the training forward's log-probability of the sequence it returns, length-penalised.
  from asl_motiongpt.llm.beam_search import beam_search
  from asl_motiongpt.llm.generate import NoConstraint
  ids, mask = np.asarray([prompt], np.int32), np.ones((1, len(prompt)), bool)
  seq, score = beam_search(params, CODEBOOK, ids, mask, decoder=SystemDecoder(model), beams=3, max_new_tokens=6,
                           length_penalty=0.8, constraint=NoConstraint())
  logp = jax.nn.log_softmax(jax.jit(model.apply)({"params": params}, jnp.asarray([prompt + seq[0].tolist()]), CODEBOOK))
  forced = float(sum(logp[0, len(prompt) - 1 + i, t] for i, t in enumerate(seq[0])))
  np.testing.assert_allclose(score[0], forced / 6 ** 0.8, rtol=1e-5)


@pytest.mark.parametrize("combination", ["llm_align", "mlp_llm_llm"])
def test_packed_row_computes_what_each_example_computes_alone(combination):
  """Two examples packed into one row (segment ids, per-example positions) give the same logits and
  the same loss as the two examples padded into their own rows: no attention across the boundary."""
  model = _model(combination)
  rng = np.random.default_rng(3)
  lengths = (5, 8)
  examples = [rng.integers(1, 60, n) for n in lengths]
  examples[0][1:3] = rng.integers(FIRST_CODE, FIRST_CODE + NUM_CODES, 2)   # motion codes in both examples
  examples[1][1:4] = rng.integers(FIRST_CODE, FIRST_CODE + NUM_CODES, 3)
  params = nn.meta.unbox(jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 16), jnp.int32), CODEBOOK)["params"])
  packed = np.zeros((1, 16), np.int32)
  packed[0, :13] = np.concatenate(examples)
  segments = np.asarray([[1] * 5 + [2] * 8 + [0] * 3], np.int32)
  positions = np.asarray([list(range(5)) + list(range(8)) + [0] * 3], np.int32)
  packed_logits = jax.jit(model.apply)({"params": params}, jnp.asarray(packed), CODEBOOK,
                              positions=jnp.asarray(positions), segment_ids=jnp.asarray(segments))
  starts = (0, 5)
  for example, start in zip(examples, starts):
    n = len(example)
    alone = jax.jit(model.apply)({"params": params}, jnp.asarray(example[None], jnp.int32), CODEBOOK)
    np.testing.assert_allclose(packed_logits[0, start:start + n], alone[0], atol=2e-5)
  target = np.zeros((1, 16), bool)
  target[0, 2:5] = target[0, 8:13] = True
  packed_loss = next_token_loss(packed_logits, jnp.asarray(packed), jnp.asarray(target))
  padded_ids = np.zeros((2, 8), np.int32)
  padded_target = np.zeros((2, 8), bool)
  for row, (example, start) in enumerate(zip(examples, starts)):
    n = len(example)
    padded_ids[row, :n] = example
    padded_target[row, :n] = target[0, start:start + n]
  padded_logits = jax.jit(model.apply)({"params": params}, jnp.asarray(padded_ids), CODEBOOK)
  padded_loss = next_token_loss(padded_logits, jnp.asarray(padded_ids), jnp.asarray(padded_target))
  np.testing.assert_allclose(packed_loss[0], padded_loss[0], rtol=1e-5)
  assert float(packed_loss[1]) == float(padded_loss[1]) == 8
