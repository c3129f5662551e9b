"""Generation metrics over evaluator embeddings (the protocol of Guo et al. 2022, as MotionGPT and
T2M-GPT report it). Every embedding is [N, E] numpy, L2-normalised by the evaluator.

- FID: Fréchet distance between Gaussians fitted to real and generated motion embeddings.
- R-precision top-k: the pairs are cut into pools of 32 (shuffled, fixed seed); in each pool every
  generated motion ranks the 32 texts by distance, and counts a hit when its own text is among the k
  nearest. Reported for k = 1, 2, 3.
- matching distance: the mean distance between a motion and its own text.
- diversity: the mean distance between the motions of random pairs (300, or fewer on a small set).
- multimodality: for each text with several generated motions, the mean distance between pairs of
  them (how different the signs generated for one sentence are); averaged over texts.
"""
from __future__ import annotations

import numpy as np

POOL = 32


def _distances(a_NE, b_ME):
  return np.sqrt(np.maximum((a_NE ** 2).sum(1)[:, None] - 2 * a_NE @ b_ME.T + (b_ME ** 2).sum(1)[None], 0.0))


def fid(real_NE: np.ndarray, generated_ME: np.ndarray) -> float:
  """|mu_r - mu_g|^2 + tr(C_r + C_g - 2 (C_r C_g)^(1/2)); the trace of the square root from the
  eigenvalues of C_r^(1/2) C_g C_r^(1/2) (symmetric, so no complex parts to discard)."""
  real, gen = np.asarray(real_NE, np.float64), np.asarray(generated_ME, np.float64)
  mu_r, mu_g = real.mean(0), gen.mean(0)
  c_r, c_g = np.cov(real, rowvar=False), np.cov(gen, rowvar=False)
  eigenvalues, eigenvectors = np.linalg.eigh(c_r)
  root_r = (eigenvectors * np.sqrt(np.maximum(eigenvalues, 0.0))) @ eigenvectors.T
  inner = np.linalg.eigvalsh(root_r @ c_g @ root_r)
  return float(((mu_r - mu_g)**2).sum() + np.trace(c_r) + np.trace(c_g) -
               2 * np.sqrt(np.maximum(inner, 0.0)).sum())


def r_precision(text_NE: np.ndarray, motion_NE: np.ndarray, top: int = 3, seed: int = 0) -> list[float]:
  """[top-1, ..., top-`top`] R-precision over pools of 32 (the last pool may be smaller, never < 2)."""
  count = len(text_NE)
  order = np.random.default_rng(seed).permutation(count)
  hits, counted = np.zeros(top), 0
  for start in range(0, count, POOL):
    pool = order[start:start + POOL]
    if len(pool) < 2:
      continue
    distances = _distances(motion_NE[pool], text_NE[pool])
    rank = (distances < np.diag(distances)[:, None]).sum(1)  # texts strictly nearer than the motion's own
    hits += np.array([(rank < k).sum() for k in range(1, top + 1)])
    counted += len(pool)
  return (hits / max(counted, 1)).tolist()


def matching_distance(text_NE: np.ndarray, motion_NE: np.ndarray) -> float:
  return float(np.linalg.norm(text_NE - motion_NE, axis=1).mean())


def diversity(motion_NE: np.ndarray, pairs: int = 300, seed: int = 0) -> float:
  count = len(motion_NE)
  if count < 2:
    return float("nan")
  rng = np.random.default_rng(seed)
  pairs = min(pairs, count * (count - 1) // 2)
  first = rng.integers(0, count, pairs)
  second = (first + rng.integers(1, count, pairs)) % count  # never a motion with itself
  return float(np.linalg.norm(motion_NE[first] - motion_NE[second], axis=1).mean())


def multimodality(groups: list[np.ndarray]) -> float:
  """groups: per text, the embeddings [K, E] of its K >= 2 generated motions."""
  values = [_distances(g, g)[np.triu_indices(len(g), 1)].mean() for g in groups if len(g) >= 2]
  return float(np.mean(values)) if values else float("nan")


def generation_metrics(text_NE, real_NE, generated_NE, seed: int = 0) -> dict:
  """All of the above but multimodality for N generated motions, each paired with its text and the
  real motion of that text; the real motions' own R-precision and matching distance beside them
  (what a perfect generator would reach with this evaluator)."""
  r_gen, r_real = r_precision(text_NE, generated_NE, seed=seed), r_precision(text_NE, real_NE, seed=seed)
  return {"fid": fid(real_NE, generated_NE) if len(generated_NE) > 1 else float("nan"),
          "r_precision_top1": r_gen[0], "r_precision_top2": r_gen[1], "r_precision_top3": r_gen[2],
          "matching_distance": matching_distance(text_NE, generated_NE),
          "diversity": diversity(generated_NE, seed=seed),
          "real_r_precision_top3": r_real[2], "real_matching_distance": matching_distance(text_NE, real_NE),
          "real_diversity": diversity(real_NE, seed=seed), "pairs": int(len(generated_NE))}
