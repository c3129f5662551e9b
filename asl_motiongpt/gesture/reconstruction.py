"""How well the gesture tokenizer reproduces real poses: encode -> decode of whole sequences, per
body part, against the simplest baseline, and how much of the codebook the data uses.

Units are the normalised unified skeleton's (1 = one shoulder width). For every part (body, each
hand, the face block when present) the report gives

  mpjpe_<part>     mean Euclidean error per present joint of the reconstruction;
  baseline_<part>  the same error for always predicting the split's mean pose (one pose for every
                   frame): what a tokenizer that learned nothing about motion scores; with
                   `baseline_pose` (e.g. the training split's `mean_pose`) that pose instead, so
                   that held-out splits are measured against what training could know;
  ratio_<part>     mpjpe / baseline (1.0 = no better than the mean pose; lower is better);

and for each hand where it is two halves of its error (whether a tokenizer misplaces hands or misshapes
them; a hand's joints sit close together, so both are of the same size as its mpjpe):

  place_<hand>     the error of the hand's wrist (where the hand is);
  shape_<hand>     the fingers' error once each hand, original and reconstructed, is moved to have its
                   wrist at the origin (what the hand looks like, wherever it is);

plus `mpjpe` over all joints and codebook use over the whole split: `perplexity` (exp of the
entropy of the code histogram, per part, averaged), `codes_used` (share of the codebook that
occurs at least once) and `distinct_codes`.

`chunk=N` encodes and decodes each sequence as independent N-frame pieces (how the training windows
are seen); without it the sequence goes whole, as the code cache and inference encode it.
"""
from __future__ import annotations

import numpy as np

from asl_motiongpt.pose import skeletons

PARTS = {"body": skeletons.UNIFIED_BODY, "left_hand": skeletons.UNIFIED_LEFT_HAND,
         "right_hand": skeletons.UNIFIED_RIGHT_HAND, "face": skeletons.UNIFIED_FACE_BLOCK}


def parts_of(joints: int) -> dict[str, slice]:
  return {name: part for name, part in PARTS.items() if part.stop <= joints}


def reconstruct(tokenizer, params, vq, pose: np.ndarray, mask: np.ndarray, chunk: int | None = None):
  """(reconstruction [T, J, D], codes [T', parts]) of one sequence, whole or in `chunk`-frame pieces.
  A tokenizer without a codebook (model.quantize=false) reconstructs through its latents: no codes."""
  if not chunk and not tokenizer.spec.vq.quantize:
    return tokenizer.autoencode(params, vq, pose, mask), np.zeros((0, tokenizer.spec.codes_per_step), np.int64)
  if not chunk:
    codes = tokenizer.encode(params, vq, pose, mask)
    return tokenizer.decode(params, vq, codes, pose.shape[0]), codes
  pieces, codes = [], []
  for start in range(0, pose.shape[0], chunk):
    recon, chunk_codes = reconstruct(tokenizer, params, vq, pose[start:start + chunk],
                                     mask[start:start + chunk])
    pieces.append(recon)
    codes.append(chunk_codes)
  return np.concatenate(pieces), np.concatenate(codes)


def mean_pose(sequences) -> np.ndarray:
  """[J, D]: each joint's mean over the frames of `sequences` where it is present."""
  sequences = list(sequences)
  total = sum(np.where(m[..., None], pose, 0.0).sum(0) for _, pose, m in sequences)
  count = sum(m.sum(0) for _, _, m in sequences)
  return total / np.maximum(count, 1)[:, None]


def reconstruction_report(tokenizer, params, vq, sequences, chunk: int | None = None,
                          on_sequence=None, baseline_pose: np.ndarray | None = None) -> dict:
  """Per-part reconstruction errors, mean-pose baseline and codebook use over `sequences`
  (an iterable of (id, pose [T, J, D], mask [T, J])). `on_sequence(id, pose, mask, recon)` sees
  every reconstruction (for pictures)."""
  sequences = list(sequences)
  if not sequences:
    return {}
  joints = sequences[0][1].shape[1]
  parts = parts_of(joints)
  baseline = mean_pose(sequences) if baseline_pose is None else baseline_pose
  err_sum, base_sum, counted = np.zeros(joints), np.zeros(joints), np.zeros(joints)
  hands = {name: part for name, part in parts.items() if name.endswith("_hand")}
  shape_sum, shape_counted = dict.fromkeys(hands, 0.0), dict.fromkeys(hands, 0)
  code_counts = np.zeros((tokenizer.spec.vq.codebook_size, tokenizer.spec.codes_per_step))
  for entry_id, pose, mask in sequences:
    recon, codes = reconstruct(tokenizer, params, vq, pose, mask, chunk)
    if on_sequence is not None:
      on_sequence(entry_id, pose, mask, recon)
    err_sum += np.where(mask, np.linalg.norm(recon - pose, axis=-1), 0.0).sum(0)
    base_sum += np.where(mask, np.linalg.norm(baseline[None] - pose, axis=-1), 0.0).sum(0)
    counted += mask.sum(0)
    for name, part in hands.items():
      wrist, fingers = part.start, slice(part.start + 1, part.stop)
      present = mask[:, fingers] & mask[:, wrist:wrist + 1]
      relative_error = (recon[:, fingers] - recon[:, wrist:wrist + 1]) - (pose[:, fingers] - pose[:, wrist:wrist + 1])
      shape_sum[name] += np.where(present, np.linalg.norm(relative_error, axis=-1), 0.0).sum()
      shape_counted[name] += int(present.sum())
    for part_index in range(codes.shape[1]):
      np.add.at(code_counts[:, part_index], codes[:, part_index], 1)
  report = {"mpjpe": float(err_sum.sum() / max(counted.sum(), 1)), "sequences": len(sequences)}
  for name, part in parts.items():
    if counted[part].sum() == 0:
      continue  # a part no frame has (a corpus without hands): nothing to score
    report[f"mpjpe_{name}"] = float(err_sum[part].sum() / counted[part].sum())
    report[f"baseline_{name}"] = float(base_sum[part].sum() / counted[part].sum())
    report[f"ratio_{name}"] = report[f"mpjpe_{name}"] / max(report[f"baseline_{name}"], 1e-12)
    if name in hands and counted[part.start] and shape_counted[name]:
      report[f"place_{name}"] = float(err_sum[part.start] / counted[part.start])
      report[f"shape_{name}"] = float(shape_sum[name] / shape_counted[name])
  report.update(_usage(code_counts))
  return report


def _usage(code_counts_KP: np.ndarray) -> dict:
  probs = code_counts_KP / np.maximum(code_counts_KP.sum(0, keepdims=True), 1)
  entropy = -np.sum(np.where(probs > 0, probs * np.log(np.maximum(probs, 1e-12)), 0.0), axis=0)
  return {"perplexity": float(np.exp(entropy).mean()), "codes_used": float((code_counts_KP > 0).mean()),
          "distinct_codes": float((code_counts_KP > 0).sum(0).mean())}


def codebook_use(codes: list[np.ndarray], codebook_size: int) -> dict:
  """Perplexity and share of the codebook used by a list of code sequences [T', parts] (a code cache)."""
  parts = codes[0].shape[1]
  counts = np.zeros((codebook_size, parts))
  for code_row in codes:
    for part_index in range(parts):
      np.add.at(counts[:, part_index], code_row[:, part_index].astype(np.int64), 1)
  return _usage(counts)


def format_report(report: dict, title: str = "") -> str:
  """One table row per part: error, mean-pose baseline, ratio (and for hands: place and shape)."""
  lines = [title] if title else []
  lines.append(f"  {'part':<11} {'MPJPE':>7} {'mean pose':>9} {'ratio':>6}   {'place':>6} {'shape':>6}")
  for name in PARTS:
    if f"mpjpe_{name}" in report:
      halves = (f"   {report[f'place_{name}']:6.4f} {report[f'shape_{name}']:6.4f}"
                if f"place_{name}" in report else "")
      lines.append(f"  {name:<11} {report[f'mpjpe_{name}']:7.4f} {report[f'baseline_{name}']:9.4f} "
                   f"{report[f'ratio_{name}']:6.3f}{halves}")
  lines.append(f"  {'all':<11} {report['mpjpe']:7.4f}")
  if report["distinct_codes"] == 0:  # every sequence reconstructed through latents: no codes at all
    lines.append("  codebook: none (model.quantize=false: the latents decoded as they are)")
  else:
    lines.append(f"  codebook: perplexity {report['perplexity']:.1f}, used {100 * report['codes_used']:.1f}% "
                 f"({report['distinct_codes']:.0f} codes per part)")
  return "\n".join(lines)
