"""GestureTokenizer: pose sequences <-> discrete codes, and the training loss.

Input: normalised unified poses [B, T, J, D] with a joint mask [B, T, J] (confidence > 0) and a
time mask [B, T] (False on padding). Masked joints are zeroed on the way in and count nowhere in
the loss. T must be a multiple of the downsampling (4); `encode`/`decode` pad and crop any length.

The networks see features, not raw positions (gesture/features.py): optionally fingers relative to
their wrist (`hand_relative`), then standardised with the statistics in the state (`feature_mean`,
`feature_std`; identity unless the stage set them from the prepared corpus). The reconstruction
loss is taken on those features; MPJPE is reported on positions.

Part-wise tokenization (`partwise=True`): separate encoder/decoder/codebook for the body (8 joints),
left hand (21), right hand (21) and, with the face block, face (22). The codes of one time step
are interleaved in that order: [t0 body, t0 left, t0 right, (t0 face), t1 body, ...].
"""
from __future__ import annotations

import collections
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from asl_motiongpt.gesture import features, quantizer
from asl_motiongpt.parallel.run_once import run_once
from asl_motiongpt.gesture.vqvae import PartVqVae, VqConfig


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
  vq: VqConfig = VqConfig()
  joints: int = 50
  dims: int = 3
  partwise: bool = False
  hand_relative: bool = False  # fingers as offsets from their wrist (gesture/features.py)
  # Frames per piece when encoding/decoding sequences (the training window); None: in one pass.
  window: int | None = None

  @property
  def parts(self) -> tuple[tuple[str, int, int], ...]:
    if not self.partwise:
      return (("all", 0, self.joints),)
    parts = [("body", 0, 8), ("left_hand", 8, 29), ("right_hand", 29, 50)]
    if self.joints > 50:
      parts.append(("face", 50, self.joints))
    return tuple(parts)

  @property
  def codes_per_step(self) -> int:
    """Code columns per time step: each part's residual levels, part-major (part p, level l: p * L + l)."""
    return len(self.parts) * self.vq.residual_levels

  @property
  def part_features(self) -> tuple[int, ...]:
    return tuple((stop - start) * self.dims for _, start, stop in self.parts)


def _smooth_l1(difference):
  magnitude = jnp.abs(difference)
  return jnp.where(magnitude < 1.0, 0.5 * difference * difference, magnitude - 0.5)


class GestureTokenizer:
  """Functional wrapper: params (network) + state (codebooks and their EMA statistics)."""

  def __init__(self, spec: TokenizerSpec):
    if spec.joints not in (50, 72):  # the unified skeleton, without or with its face block
      raise ValueError(f"the tokenizer reads the unified skeleton (50 or 72 joints), got {spec.joints}")
    if spec.window is not None and spec.window % spec.vq.downsample:
      raise ValueError(f"the tokenizer's window ({spec.window} frames) must be a multiple of its downsampling "
                       f"({spec.vq.downsample})")
    self.spec = spec
    self.net = PartVqVae(spec.vq, spec.part_features)

  # -- set-up -------------------------------------------------------------------------------------
  def init(self, rng, frames: int = 64):
    parts = [jnp.zeros((1, frames, f)) for f in self.spec.part_features]
    # compiled, as in the training stage (eager and compiled initialisers can differ in the last bit)
    params = run_once(lambda key: nn.meta.unbox(self.net.init(key, parts)["params"]), rng)
    return params, self.init_state()

  def init_state(self, statistics: dict | None = None) -> dict:
    """Empty codebooks (set from the first training batch) and the feature statistics (identity
    unless given: `features.statistics_from_prepared`)."""
    state = quantizer.init_state(self.spec.codes_per_step, self.spec.vq.codebook_size, self.spec.vq.code_dim)
    statistics = statistics or features.identity_statistics(self.spec.joints, self.spec.dims)
    state.update({k: jnp.asarray(v, jnp.float32) for k, v in statistics.items()})
    return state

  def to_features(self, state, pose_BTJD, mask_BTJ):
    """(features, feature mask) [B, T, J, D], [B, T, J]: relative and standardised, 0 where masked."""
    feats, mask = pose_BTJD, mask_BTJ
    if self.spec.hand_relative:
      feats, mask = features.hand_relative(feats, mask, xp=jnp)
    feats = (feats - state["feature_mean"]) / state["feature_std"]
    return jnp.where(mask[..., None], feats, 0.0), mask

  def from_features(self, state, x_BTJD):
    feats = x_BTJD * state["feature_std"] + state["feature_mean"]
    return features.absolute_from_hand_relative(feats, xp=jnp) if self.spec.hand_relative else feats

  def _split(self, state, pose_BTJD, mask_BTJ):
    standardised, mask_BTJ = self.to_features(state, pose_BTJD, mask_BTJ)
    B, T = standardised.shape[:2]
    feats, fmasks = [], []
    for _, start, stop in self.spec.parts:
      feats.append(standardised[:, :, start:stop].reshape(B, T, -1))
      fmasks.append(jnp.repeat(mask_BTJ[:, :, start:stop], self.spec.dims, axis=-1))
    return feats, fmasks

  # -- training -------------------------------------------------------------------------------------
  def loss(self, params, state, pose_BTJD, mask_BTJ, time_mask_BT, rng, train: bool = True):
    """(loss, (metrics, new_state)). With train=False the state is returned unchanged."""
    vq = self.spec.vq
    time_mask = time_mask_BT.astype(bool)
    mask_BTJ = mask_BTJ & time_mask[..., None]  # padding frames: zeroed on the way in, never scored
    feats, fmasks = self._split(state, pose_BTJD, mask_BTJ)
    latents = self.net.apply({"params": params}, feats, method=PartVqVae.encode)
    code_mask_BT = time_mask[:, ::vq.downsample]
    valid_N = code_mask_BT.reshape(-1)
    quantized, new_parts, commit, resets, usage = [], [], 0.0, 0, []
    rngs = jax.random.split(rng, 2 * len(latents) * vq.residual_levels)
    # Vectors per code if use were uniform: new and reset codes start at this EMA count, and a code
    # is dead below `reset_threshold` of it, so the rule means the same at any batch size.
    fair_share = valid_N.sum().astype(jnp.float32) / vq.codebook_size
    for part, latent in enumerate(latents):
      if not vq.quantize:  # a plain autoencoder: the latents go to the decoder as they are
        quantized.append(latent)
        continue
      z_NC = latent.reshape(-1, vq.code_dim).astype(jnp.float32)
      residual, z_q = z_NC, jnp.zeros_like(z_NC)
      for level in range(vq.residual_levels):  # each level quantises what the ones before left over
        book = part * vq.residual_levels + level
        part_state = {k: state[k][book] for k in ("codebook", "ema_sum", "ema_count")}
        if train:  # the first batch sets the codebook before it is used
          first = quantizer.first_batch_init(residual, valid_N, rngs[2 * book], vq.codebook_size, fair_share)
          part_state = jax.tree.map(lambda a, b: jnp.where(state["initialised"], a, b), part_state, first)
        codes = quantizer.nearest_codes(residual, part_state["codebook"])
        level_q = part_state["codebook"][codes]
        err = jnp.sum((residual - jax.lax.stop_gradient(level_q)) ** 2, axis=-1)
        commit += jnp.sum(err * valid_N) / jnp.maximum(valid_N.sum() * vq.code_dim, 1.0) / vq.residual_levels
        usage.append(quantizer.usage_metrics(codes, valid_N, vq.codebook_size))
        if train:
          if vq.dead_code_reset:
            replacements = quantizer.random_rows(rngs[2 * book + 1], residual, valid_N, vq.codebook_size)
            updated, part_resets = quantizer.ema_update(part_state, residual, codes, valid_N, replacements,
                                                        vq.ema_decay, vq.reset_threshold * fair_share,
                                                        fair_share)
          else:
            updated, part_resets = _ema_without_reset(part_state, residual, codes, valid_N, vq.ema_decay), 0
          new_parts.append(updated)
          resets += part_resets
        z_q = z_q + level_q
        residual = residual - jax.lax.stop_gradient(level_q)
      quantized.append(quantizer.straight_through(z_NC, z_q).reshape(latent.shape).astype(latent.dtype))
    recon_parts = self.net.apply({"params": params}, quantized, method=PartVqVae.decode)
    recon_sum, recon_n, vel_sum, vel_n = 0.0, 0.0, 0.0, 0.0
    for part_recon, target, target_mask in zip(recon_parts, feats, fmasks):
      mf = target_mask.astype(jnp.float32)
      recon_sum += jnp.sum(_smooth_l1(part_recon.astype(jnp.float32) - target) * mf)
      recon_n += mf.sum()
      # A true velocity loss: frame differences, where both frames have the feature.
      vm = mf[:, 1:] * mf[:, :-1]
      dv = (part_recon[:, 1:] - part_recon[:, :-1]).astype(jnp.float32) - (target[:, 1:] - target[:, :-1])
      vel_sum += jnp.sum(_smooth_l1(dv) * vm)
      vel_n += vm.sum()
    recon = recon_sum / jnp.maximum(recon_n, 1.0)
    velocity = vel_sum / jnp.maximum(vel_n, 1.0)
    commit = commit / len(latents)
    no_usage = {"perplexity": jnp.zeros(()), "codes_used": jnp.zeros(())}
    total = recon + vq.velocity_weight * velocity + vq.commitment * commit
    pose_hat = self.from_features(state, self._merge(recon_parts, pose_BTJD.shape).astype(jnp.float32))
    joint_mask = mask_BTJ
    err = jnp.linalg.norm(pose_hat - jnp.where(mask_BTJ[..., None], pose_BTJD, 0.0).astype(jnp.float32),
                          axis=-1)
    metrics = {"loss": total, "recon": recon, "velocity": velocity, "commitment": commit,
               "mpjpe": jnp.sum(err * joint_mask) / jnp.maximum(joint_mask.sum(), 1),
               "perplexity": jnp.mean(jnp.stack([u["perplexity"] for u in usage or [no_usage]])),
               "codes_used": jnp.mean(jnp.stack([u["codes_used"] for u in usage or [no_usage]])),
               "resets": jnp.asarray(resets, jnp.float32)}
    if train and vq.quantize:
      new_state = {k: jnp.stack([s[k] for s in new_parts]) for k in ("codebook", "ema_sum", "ema_count")}
      new_state["initialised"] = jnp.ones((), bool)
      new_state.update({k: state[k] for k in ("feature_mean", "feature_std")})
    else:
      new_state = state
    return total, (metrics, new_state)

  def _merge(self, part_feats, shape):
    B, T, J, D = shape
    out = [f.reshape(B, T, stop - start, D) for f, (_, start, stop) in zip(part_feats, self.spec.parts)]
    return jnp.concatenate(out, axis=2)

  # -- inference ------------------------------------------------------------------------------------
  def pad_length(self, frames: int) -> int:
    ds = self.spec.vq.downsample
    return -(-frames // ds) * ds

  def bucket_length(self, frames: int) -> int:
    """The padded length a sequence is encoded/decoded at: four sizes per octave (at most 25 % padding),
    so encoding a corpus of many lengths compiles a handful of programs, not one per length."""
    padded = max(frames, 16)
    step = max(self.spec.vq.downsample, 2 ** (int(np.ceil(np.log2(padded))) - 3))
    return -(-padded // step) * step

  # Equal specs compute the same functions: jitted methods (self is static) are reused across instances.
  def __eq__(self, other):
    return isinstance(other, GestureTokenizer) and other.spec == self.spec

  def __hash__(self):
    return hash(self.spec)

  @functools.partial(jax.jit, static_argnums=0)
  def _encode(self, params, state, pose_BTJD, mask_BTJ):
    feats, _ = self._split(state, pose_BTJD, mask_BTJ)
    latents = self.net.apply({"params": params}, feats, method=PartVqVae.encode)
    levels, codes = self.spec.vq.residual_levels, []
    for part, latent in enumerate(latents):
      residual = latent.reshape(-1, latent.shape[-1])
      for level in range(levels):
        book = state["codebook"][part * levels + level]
        level_codes = quantizer.nearest_codes(residual, book)
        residual = residual - book[level_codes]
        codes.append(level_codes.reshape(latent.shape[:2]))
    return jnp.stack(codes, axis=-1)  # [B, T', parts x levels]

  def encode(self, params, state, pose_TJD: np.ndarray, mask_TJ: np.ndarray) -> np.ndarray:
    """Codes [ceil(T / 4), parts] of one sequence of any length T.

    With `spec.window` the sequence is cut into pieces of that many frames (the last one padded
    and masked, as a short training window is), encoded as one batch, the codes concatenated:
    every code is computed from the context the network was trained on. The encoder's receptive
    field (176 frames at the default depth and dilations) is wider than the training windows, so
    the weights that would read far context only ever saw padding; one pass over a long sequence
    feeds them real frames they were never trained on (measured: tools/tokenizer_real_poses.py).
    Without a window the sequence is padded at the end to its bucket length and encoded whole."""
    if not self.spec.vq.quantize:
      raise ValueError("this gesture tokenizer was trained without a codebook (model.quantize=false): it has no "
                       "codes to encode to; `autoencode` reconstructs with it")
    n_codes = self.pad_length(pose_TJD.shape[0]) // self.spec.vq.downsample
    pose, mask = self._batched(pose_TJD, mask_TJ)
    codes = np.asarray(self._encode(params, state, jnp.asarray(pose), jnp.asarray(mask)))
    return codes.reshape(-1, codes.shape[-1])[:n_codes]

  def _batched(self, pose_TJD: np.ndarray, mask_TJ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, L, J, D], [B, L, J]: the sequence padded (and masked) at the end and cut into the pieces
    `encode` reads: B pieces of the training window, or one piece of the bucket length."""
    T = pose_TJD.shape[0]
    window = self.spec.window
    if window:
      pieces = -(-T // window)
      batch = 1 << (pieces - 1).bit_length()  # a power of two: a few programs for all lengths
      length = batch * window
    else:
      batch, length = 1, self.bucket_length(T)
    pose = np.pad(pose_TJD, ((0, length - T), (0, 0), (0, 0))).reshape(batch, length // batch,
                                                                       *pose_TJD.shape[1:])
    mask = np.pad(mask_TJ, ((0, length - T), (0, 0))).reshape(batch, length // batch, mask_TJ.shape[1])
    return pose, mask

  @functools.partial(jax.jit, static_argnums=0)
  def _autoencode(self, params, state, pose_BTJD, mask_BTJ):
    feats, _ = self._split(state, pose_BTJD, mask_BTJ)
    recon = self.net.apply({"params": params}, feats)
    return self.from_features(state, self._merge(recon, pose_BTJD.shape).astype(jnp.float32))

  def autoencode(self, params, state, pose_TJD: np.ndarray, mask_TJ: np.ndarray) -> np.ndarray:
    """Poses [T, J, D] of a tokenizer trained with model.quantize=false: encoded and decoded in the
    pieces `encode` cuts, the latents decoded as they are."""
    if self.spec.vq.quantize:
      raise ValueError("autoencode is for a tokenizer without a codebook (model.quantize=false); "
                       "a tokenizer with codes reconstructs through encode and decode")
    pose, mask = self._batched(pose_TJD, mask_TJ)
    recon = np.asarray(self._autoencode(params, state, jnp.asarray(pose), jnp.asarray(mask)))
    return recon.reshape(-1, *recon.shape[2:])[:pose_TJD.shape[0]]

  def _pieces(self, pose_TJD: np.ndarray, mask_TJ: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The padded pieces `encode` runs the network on: windows of `spec.window` frames (the last one
    padded), or the whole sequence padded to its bucket length."""
    T = pose_TJD.shape[0]
    length = self.spec.window or self.bucket_length(T)
    pieces = -(-T // length)
    pad = pieces * length - T
    pose = np.pad(pose_TJD, ((0, pad), (0, 0), (0, 0))).reshape(pieces, length, *pose_TJD.shape[1:])
    mask = np.pad(mask_TJ, ((0, pad), (0, 0))).reshape(pieces, length, mask_TJ.shape[1])
    return list(zip(pose, mask))

  def encode_many(self, params, state, sequences, frames_per_batch: int = 4096):
    """Codes [ceil(T / 4), parts] of each (pose [T, J, D], mask [T, J]) of `sequences`, in order:
    what `encode` gives each one, with the pieces of many sequences encoded together in batches of
    `frames_per_batch` frames (pieces of one length per batch; the last batch of each length padded
    with empty rows). A corpus then runs one compiled program per piece length at a full batch,
    instead of one call per sequence at the few rows that sequence has."""
    parts = self.spec.codes_per_step
    queued: dict[int, list] = collections.defaultdict(list)  # piece length -> [(sequence, piece, pose, mask)]
    done: dict[int, list] = {}                                # sequence -> codes of each piece (None: queued)
    wanted: dict[int, int] = {}                               # sequence -> number of codes
    following = 0                                              # the next sequence to hand out

    def run(length: int, everything: bool = False):
      rows = max(1, frames_per_batch // length)
      while len(queued[length]) >= rows or (everything and queued[length]):
        batch, queued[length][:rows] = queued[length][:rows], []
        pose = np.zeros((rows, length) + batch[0][2].shape[1:], np.float32)
        mask = np.zeros((rows, length) + batch[0][3].shape[1:], bool)
        for row, (_, _, piece_pose, piece_mask) in enumerate(batch):
          pose[row], mask[row] = piece_pose, piece_mask
        codes = np.asarray(self._encode(params, state, jnp.asarray(pose), jnp.asarray(mask)))
        for row, (sequence, piece, _, _) in enumerate(batch):
          done[sequence][piece] = codes[row]

    def finished():
      nonlocal following
      while following in wanted and all(c is not None for c in done[following]):
        codes = done.pop(following)
        yield (np.concatenate(codes) if codes else np.zeros((0, parts), np.int32))[:wanted.pop(following)]
        following += 1

    for index, (pose, mask) in enumerate(sequences):
      pieces = self._pieces(np.asarray(pose, np.float32), np.asarray(mask, bool))
      wanted[index] = self.pad_length(len(pose)) // self.spec.vq.downsample
      done[index] = [None] * len(pieces)
      for piece, (piece_pose, piece_mask) in enumerate(pieces):
        queued[piece_pose.shape[0]].append((index, piece, piece_pose, piece_mask))
        run(piece_pose.shape[0])
      yield from finished()
    for length in list(queued):
      run(length, everything=True)
    yield from finished()

  @functools.partial(jax.jit, static_argnums=0)
  def _decode(self, params, state, codes_BTP):
    levels = self.spec.vq.residual_levels
    latents = [sum(state["codebook"][part * levels + level][codes_BTP[..., part * levels + level]]
                   for level in range(levels)) for part in range(len(self.spec.parts))]
    feats = self.net.apply({"params": params}, latents, method=PartVqVae.decode)
    B, T = codes_BTP.shape[:2]
    merged = self._merge(feats, (B, T * self.spec.vq.downsample, self.spec.joints, self.spec.dims))
    return self.from_features(state, merged.astype(jnp.float32))

  def decode(self, params, state, codes_TP: np.ndarray, frames: int | None = None) -> np.ndarray:
    """Poses [frames, J, D] (normalised) from codes [T', parts]; frames defaults to 4 * T'. Decoded
    in the pieces `encode` cuts (`spec.window`), or whole at the bucket length; the last code is
    held over the padding, the padded frames cut."""
    codes_TP = np.asarray(codes_TP).reshape(-1, self.spec.codes_per_step)
    ds = self.spec.vq.downsample
    length = len(codes_TP)
    if not length:
      raise ValueError("decode: no codes (a generation without motion has no pose)")
    if self.spec.window:
      per_piece = self.spec.window // ds
      batch = 1 << (-(-length // per_piece) - 1).bit_length()
      padded_length = batch * per_piece
    else:
      batch, padded_length = 1, self.bucket_length(length * ds) // ds
    padded = np.pad(codes_TP, ((0, padded_length - length), (0, 0)),
                    mode="edge").reshape(batch, -1, codes_TP.shape[1])
    pose = np.asarray(self._decode(params, state, jnp.asarray(padded)))
    pose = pose.reshape(-1, *pose.shape[2:])[: length * ds]
    return pose[:frames] if frames is not None else pose

  def interleave(self, codes_TP: np.ndarray) -> np.ndarray:
    """Codes in LLM order: time-major, parts interleaved within a time step."""
    return np.asarray(codes_TP).reshape(-1)

  def deinterleave(self, codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    columns = self.spec.codes_per_step
    return codes[: len(codes) // columns * columns].reshape(-1, columns)


def _ema_without_reset(part_state, z_NC, codes_N, valid_N, decay):
  """Plain EMA codebook (the ablation without dead-code reset): unused codes stay where they are."""
  K = part_state["codebook"].shape[0]
  onehot = jax.nn.one_hot(codes_N, K, dtype=jnp.float32) * valid_N[:, None]
  ema_sum = decay * part_state["ema_sum"] + (1 - decay) * (onehot.T @ jax.lax.stop_gradient(z_NC))
  ema_count = decay * part_state["ema_count"] + (1 - decay) * onehot.sum(0)
  codebook = jnp.where((ema_count > 1e-6)[:, None], ema_sum / jnp.maximum(ema_count, 1e-12)[:, None],
                       part_state["codebook"])
  return {"codebook": codebook, "ema_sum": ema_sum, "ema_count": ema_count}
