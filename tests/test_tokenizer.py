"""The gesture tokenizer: quantizer against a NumPy reference, masking, lengths, determinism."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asl_motiongpt.gesture import GestureTokenizer, TokenizerSpec, VqConfig
from asl_motiongpt.gesture import quantizer

SMALL = VqConfig(width=32, depth=2, code_dim=16, codebook_size=32)


def _numpy_ema(codebook, ema_sum, ema_count, z, codes, valid, replacements, decay, threshold):
  K = codebook.shape[0]
  batch_sum = np.zeros_like(ema_sum)
  batch_count = np.zeros(K)
  for vec, code, ok in zip(z, codes, valid):
    if ok:
      batch_sum[code] += vec
      batch_count[code] += 1
  ema_sum = decay * ema_sum + (1 - decay) * batch_sum
  ema_count = decay * ema_count + (1 - decay) * batch_count
  new_codebook = np.empty_like(codebook)
  resets = 0
  for k in range(K):
    if ema_count[k] >= threshold:
      new_codebook[k] = ema_sum[k] / ema_count[k]
    else:
      new_codebook[k] = replacements[k]
      ema_sum[k], ema_count[k] = replacements[k], 1.0
      resets += 1
  return new_codebook, ema_sum, ema_count, resets


def test_ema_update_and_dead_code_reset_match_numpy():
  rng = np.random.default_rng(0)
  K, C, N = 8, 4, 40
  codebook = rng.normal(size=(K, C)).astype(np.float32)
  ema_count = np.array([5.0, 0.2, 3.0, 0.995, 1.5, 0.0, 2.0, 1.0], np.float32)
  ema_sum = codebook * ema_count[:, None]
  z = rng.normal(size=(N, C)).astype(np.float32)
  valid = rng.uniform(size=N) > 0.2
  codes = np.asarray(quantizer.nearest_codes(jnp.asarray(z), jnp.asarray(codebook)))
  # nearest code against a brute-force NumPy search
  np.testing.assert_array_equal(codes, np.argmin(((z[:, None] - codebook[None]) ** 2).sum(-1), axis=1))
  replacements = rng.normal(size=(K, C)).astype(np.float32)
  state = {"codebook": jnp.asarray(codebook), "ema_sum": jnp.asarray(ema_sum), "ema_count": jnp.asarray(ema_count)}
  got, resets = quantizer.ema_update(state, jnp.asarray(z), jnp.asarray(codes), jnp.asarray(valid),
                                     jnp.asarray(replacements), 0.99, 1.0)
  want = _numpy_ema(codebook, ema_sum.copy(), ema_count.copy(), z, codes, valid, replacements, 0.99, 1.0)
  np.testing.assert_allclose(np.asarray(got["codebook"]), want[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(got["ema_sum"]), want[1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(got["ema_count"]), want[2], rtol=1e-6)
  assert int(resets) == want[3] > 0


def test_replacement_rows_come_from_valid_encoder_outputs_only():
  z = jnp.arange(20, dtype=jnp.float32).reshape(10, 2)
  valid = jnp.asarray([False] * 7 + [True] * 3)
  rows = np.asarray(quantizer.random_rows(jax.random.PRNGKey(0), z, valid, 50))
  assert {tuple(r) for r in rows} <= {tuple(np.asarray(z[i])) for i in (7, 8, 9)}


def test_straight_through_gradient_is_the_identity():
  z = jnp.asarray(np.random.default_rng(1).normal(size=(6, 4)), jnp.float32)
  z_q = jnp.round(z)
  w = jnp.arange(24, dtype=jnp.float32).reshape(6, 4)
  out = quantizer.straight_through(z, z_q)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(z_q))
  grad = jax.grad(lambda v: jnp.sum(w * quantizer.straight_through(v, jnp.round(v))))(z)
  np.testing.assert_array_equal(np.asarray(grad), np.asarray(w))


def _batch(seed=0, frames=16, joints=50, dims=3):
  rng = np.random.default_rng(seed)
  pose = jnp.asarray(rng.normal(size=(2, frames, joints, dims)), jnp.float32)
  mask = jnp.asarray(rng.uniform(size=(2, frames, joints)) > 0.2)
  time_mask = jnp.ones((2, frames), bool).at[1, 12:].set(False)
  return pose, mask, time_mask


@pytest.mark.parametrize("partwise", [False])  # part-wise: the same masking per part's slice (13 s more to compile)
def test_masked_joints_and_padding_do_not_change_the_loss(partwise):
  tok = GestureTokenizer(TokenizerSpec(SMALL, partwise=partwise))
  params, state = tok.init(jax.random.PRNGKey(0), 16)
  pose, mask, time_mask = _batch()
  noise = jnp.asarray(np.random.default_rng(5).normal(size=pose.shape) * 100, jnp.float32)
  hidden = ~mask | ~time_mask[..., None]
  changed = jnp.where(hidden[..., None], pose + noise, pose)
  loss = jax.jit(tok.loss, static_argnames="train")
  a, (ma, _) = loss(params, state, pose, mask, time_mask, jax.random.PRNGKey(2))
  b, (mb, _) = loss(params, state, changed, mask, time_mask, jax.random.PRNGKey(2))
  assert float(a) == float(b) and float(ma["mpjpe"]) == float(mb["mpjpe"])
  c, _ = loss(params, state, jnp.where(hidden[..., None], pose, pose + noise), mask, time_mask, jax.random.PRNGKey(2))
  assert float(c) != float(a)  # visible joints do count


@pytest.mark.parametrize("frames", [5, 37, 41, 64])
def test_any_length_round_trips_to_the_right_length(frames):
  tok = GestureTokenizer(TokenizerSpec(SMALL, dims=2))
  params, state = tok.init(jax.random.PRNGKey(0))
  state = {**state, "codebook": jax.random.normal(jax.random.PRNGKey(1), state["codebook"].shape)}
  pose = np.random.default_rng(0).normal(size=(frames, 50, 2)).astype(np.float32)
  codes = tok.encode(params, state, pose, np.ones((frames, 50), bool))
  assert codes.shape == (-(-frames // 4), 1)
  assert tok.decode(params, state, codes, frames).shape == (frames, 50, 2)


def test_partwise_codes_are_interleaved_per_time_step():
  tok = GestureTokenizer(TokenizerSpec(SMALL, joints=72, partwise=True))
  assert [p[0] for p in tok.spec.parts] == ["body", "left_hand", "right_hand", "face"]
  codes = np.arange(12).reshape(3, 4)  # 3 time steps x 4 parts
  flat = tok.interleave(codes)
  np.testing.assert_array_equal(flat[:4], codes[0])
  np.testing.assert_array_equal(tok.deinterleave(flat), codes)
  params, state = tok.init(jax.random.PRNGKey(0))
  out = tok.decode(params, state, codes % 32, 10)
  assert out.shape == (10, 72, 3)


def test_same_seed_same_parameters_and_same_training():
  from asl_motiongpt.gesture.train_step import make_step as make_tokenizer_step
  import optax
  tok = GestureTokenizer(TokenizerSpec(SMALL))
  pose, mask, time_mask = _batch(frames=16)

  def train(seed):
    params, state = tok.init(jax.random.PRNGKey(seed), 16)
    tx = optax.adamw(1e-3)
    ts = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params), "vq": state,
          "rng": jax.random.PRNGKey(seed)}
    step = jax.jit(make_tokenizer_step(tok, tx), donate_argnums=0)
    for _ in range(3):
      ts, _ = step(ts, {"pose": pose, "mask": mask, "time_mask": time_mask})
    return jax.device_get(ts)

  a, b, c = train(0), train(0), train(1)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert not np.array_equal(a["params"]["encoder_0"]["conv_in"]["conv"]["kernel"], c["params"]["encoder_0"]["conv_in"]["conv"]["kernel"])


def test_hand_relative_features_invert_and_drop_fingers_without_a_wrist():
  from asl_motiongpt.pose.transform import absolute_from_hand_relative, hand_relative
  rng = np.random.default_rng(3)
  pose = rng.normal(size=(6, 72, 3))
  mask = np.ones((6, 72), bool)
  mask[2, 29] = False  # the right wrist missing in frame 2
  relative, rel_mask = hand_relative(pose, mask)
  np.testing.assert_allclose(relative[:, 9], pose[:, 9] - pose[:, 8])  # a left finger joint minus the left wrist
  np.testing.assert_array_equal(relative[:, :9], pose[:, :9])          # body and wrists unchanged
  np.testing.assert_array_equal(relative[:, 50:], pose[:, 50:])         # the face block too
  assert not rel_mask[2, 30:50].any() and rel_mask[2, 9:29].all() and rel_mask[3, 30:50].all()
  np.testing.assert_allclose(absolute_from_hand_relative(relative), pose, atol=1e-12)


@pytest.mark.parametrize("hand_relative", [False, True])
def test_features_are_standardised_with_the_state_statistics_and_decode_back(hand_relative):
  """The networks see (x - mean) / std of the (optionally hand-relative) features, masked joints at 0
  (the mean pose); `from_features` inverts it exactly; the statistics live in the state and pass
  through a training step unchanged."""
  from asl_motiongpt.pose.transform import hand_relative as relative_fn
  tok = GestureTokenizer(TokenizerSpec(SMALL, dims=2, hand_relative=hand_relative))
  rng = np.random.default_rng(0)
  stats = {"feature_mean": rng.normal(size=(50, 2)).astype(np.float32),
           "feature_std": rng.uniform(0.5, 2, size=(50, 2)).astype(np.float32)}
  state = tok.init_state(stats)
  pose = rng.normal(size=(1, 8, 50, 2)).astype(np.float32)
  mask = rng.uniform(size=(1, 8, 50)) > 0.2
  feats, fmask = tok.to_features(state, jnp.asarray(pose), jnp.asarray(mask))
  x, m = relative_fn(pose, mask) if hand_relative else (pose, mask)
  expected = np.where(m[..., None], (x - stats["feature_mean"]) / stats["feature_std"], 0.0)
  np.testing.assert_allclose(np.asarray(feats), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(fmask), m)
  full, _ = tok.to_features(state, jnp.asarray(pose), jnp.ones((1, 8, 50), bool))
  np.testing.assert_allclose(np.asarray(tok.from_features(state, full)), pose, rtol=1e-5, atol=1e-5)
  params, _ = tok.init(jax.random.PRNGKey(0), 8)
  _, (_, new_state) = jax.jit(tok.loss)(params, state, jnp.asarray(pose), jnp.asarray(mask), jnp.ones((1, 8), bool),
                                        jax.random.PRNGKey(1))
  np.testing.assert_array_equal(new_state["feature_std"], stats["feature_std"])


def test_windowed_encoding_is_the_training_window_encoding_piece_by_piece():
  """With a window, a long sequence's codes are exactly those of its window-long pieces encoded
  alone (the last piece padded), and decoding returns each piece's decode; without one, the far
  context changes the codes (the network reads it)."""
  windowed = GestureTokenizer(TokenizerSpec(SMALL, dims=2, window=16))
  params, state = windowed.init(jax.random.PRNGKey(0))
  state = {**state, "codebook": jax.random.normal(jax.random.PRNGKey(1), state["codebook"].shape)}
  pose = np.random.default_rng(0).normal(size=(41, 50, 2)).astype(np.float32)
  mask = np.ones((41, 50), bool)
  codes = windowed.encode(params, state, pose, mask)
  assert codes.shape == (11, 1)
  one_pass = GestureTokenizer(TokenizerSpec(SMALL, dims=2))
  pieces = [one_pass.encode(params, state, pose[s:s + 16], mask[s:s + 16]) for s in (0, 16, 32)]
  np.testing.assert_array_equal(codes, np.concatenate(pieces))
  decoded = windowed.decode(params, state, codes, 41)
  assert decoded.shape == (41, 50, 2)
  np.testing.assert_allclose(decoded[16:32], one_pass.decode(params, state, codes[4:8]), rtol=1e-5, atol=1e-5)
  assert not np.array_equal(one_pass.encode(params, state, pose, mask), codes)


def test_residual_levels_quantise_what_the_levels_before_left():
  """model.residual_levels=2: level 0 picks the codes a one-level tokenizer with the same codebook picks,
  level 1 the nearest code to what level 0 left over, and the decoder reads the sum of both; a training
  step sets both codebooks from the first batch."""
  from asl_motiongpt.gesture.vqvae import PartVqVae
  two = GestureTokenizer(TokenizerSpec(dataclasses.replace(SMALL, residual_levels=2), dims=2))
  one = GestureTokenizer(TokenizerSpec(SMALL, dims=2))
  params, state = two.init(jax.random.PRNGKey(0), 16)
  assert state["codebook"].shape[0] == two.spec.codes_per_step == 2
  books = np.array(jax.random.normal(jax.random.PRNGKey(1), state["codebook"].shape))
  books[1] *= 0.3  # the second level's codes are smaller, as residuals are
  state = {**state, "codebook": jnp.asarray(books), "initialised": jnp.ones((), bool)}
  pose = np.random.default_rng(0).normal(size=(16, 50, 2)).astype(np.float32)
  mask = np.ones((16, 50), bool)
  codes = two.encode(params, state, pose, mask)
  assert codes.shape == (4, 2)
  one_state = {**state, "codebook": state["codebook"][:1], "ema_sum": state["ema_sum"][:1],
               "ema_count": state["ema_count"][:1]}
  np.testing.assert_array_equal(codes[:, 0], one.encode(params, one_state, pose, mask)[:, 0])
  feats, _ = two._split(state, jnp.asarray(pose[None]), jnp.asarray(mask[None]))
  z = np.asarray(two.net.apply({"params": params}, feats, method=PartVqVae.encode)[0][0])
  left_over = z - books[0][codes[:, 0]]
  nearest = ((left_over[:, None] - books[1][None]) ** 2).sum(-1).argmin(-1)
  np.testing.assert_array_equal(codes[:, 1], nearest)
  summed = [jnp.asarray((books[0][codes[:, 0]] + books[1][codes[:, 1]])[None])]
  expected = two.from_features(state, two._merge(two.net.apply({"params": params}, summed, method=PartVqVae.decode),
                                                 (1, 16, 50, 2)))[0]
  np.testing.assert_allclose(two.decode(params, state, codes, 16), expected, rtol=1e-5, atol=1e-5)
  fresh = two.init_state()  # a batch of 128 code vectors for 32 codes: level 0 cannot place all of them exactly
  batch = np.random.default_rng(1).normal(size=(8, 64, 50, 2)).astype(np.float32)
  _, (_, trained) = jax.jit(two.loss, static_argnames="train")(params, fresh, batch, np.ones((8, 64, 50), bool),
                                                               np.ones((8, 64), bool), jax.random.PRNGKey(2))
  assert all(np.abs(np.asarray(trained["codebook"][level])).sum() > 0 for level in range(2))


def test_without_a_codebook_the_latents_are_decoded_as_they_are():
  """model.quantize=false (the benchmarks' bound for any codebook): training leaves the codebook state
  alone, and `autoencode` reconstructs exactly what the training loss scores (no code in between);
  there are no codes to encode to, and a tokenizer with codes does not autoencode."""
  from asl_motiongpt.gesture.reconstruction import format_report, reconstruction_report
  continuous = GestureTokenizer(TokenizerSpec(VqConfig(width=32, depth=2, code_dim=16, codebook_size=32,
                                                       quantize=False), dims=2, window=16))
  params, state = continuous.init(jax.random.PRNGKey(0), 16)
  # a codebook in the state as a trained one would be (a random one: any quantisation would be lossy)
  state = {**state, "codebook": jax.random.normal(jax.random.PRNGKey(1), state["codebook"].shape),
           "initialised": jnp.ones((), bool)}
  pose = np.random.default_rng(0).normal(size=(16, 50, 2)).astype(np.float32)
  mask = np.ones((16, 50), bool)
  loss = jax.jit(continuous.loss, static_argnames="train")
  _, (metrics, new_state) = loss(params, state, pose[None], mask[None], np.ones((1, 16), bool), jax.random.PRNGKey(1))
  jax.tree.map(np.testing.assert_array_equal, new_state, state)
  assert float(metrics["commitment"]) == 0.0
  recon = continuous.autoencode(params, state, pose, mask)
  np.testing.assert_allclose(np.linalg.norm(recon - pose, axis=-1).mean(), float(metrics["mpjpe"]), rtol=1e-5)
  # with the codebook (a random one) the same networks reconstruct something else: the codes matter
  coded = GestureTokenizer(TokenizerSpec(SMALL, dims=2, window=16))
  assert not np.allclose(coded.decode(params, state, coded.encode(params, state, pose, mask), 16), recon)
  with pytest.raises(ValueError, match="quantize=false"):
    continuous.encode(params, state, pose, mask)
  with pytest.raises(ValueError, match="autoencode"):
    coded.autoencode(params, state, pose, mask)
  report = reconstruction_report(continuous, params, state, [("a", pose, mask)])
  assert report["distinct_codes"] == 0 and "codebook: none" in format_report(report)
  assert report["mpjpe"] == pytest.approx(float(np.linalg.norm(recon - pose, axis=-1).mean()), rel=1e-6)


@pytest.mark.parametrize("window", [16, None])
def test_encoding_many_sequences_in_batches_gives_each_its_own_codes(window):
  """encode_many (the code cache's path): the pieces of many sequences of any length, batched across
  sequences (several batches, the last padded), come back in order with exactly the codes `encode`
  gives each sequence alone, masks included."""
  tok = GestureTokenizer(TokenizerSpec(SMALL, dims=2, window=window))
  params, state = tok.init(jax.random.PRNGKey(0))
  state = {**state, "codebook": jax.random.normal(jax.random.PRNGKey(1), state["codebook"].shape)}
  rng = np.random.default_rng(0)
  sequences = []
  for frames in (41, 3, 16, 17, 90, 64, 1, 33):
    mask = rng.random((frames, 50)) > 0.2
    sequences.append((rng.normal(size=(frames, 50, 2)).astype(np.float32), mask))
  batched = list(tok.encode_many(params, state, iter(sequences), frames_per_batch=64))
  assert len(batched) == len(sequences)
  for (pose, mask), codes in zip(sequences, batched):
    np.testing.assert_array_equal(codes, tok.encode(params, state, pose, mask))
