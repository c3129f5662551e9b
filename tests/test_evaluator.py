"""The text-motion evaluator: its metrics against references, and training that learns to match
sentences with their signs on the embedded corpus."""
import json
import os

import numpy as np
import pytest
import scipy.linalg

from asl_motiongpt import cli
from asl_motiongpt.motion_evaluator import metrics as gm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_fid_equals_the_scipy_matrix_square_root_formula():
  rng = np.random.default_rng(0)
  real = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
  gen = rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.5
  c_r, c_g = np.cov(real, rowvar=False), np.cov(gen, rowvar=False)
  reference = (((real.mean(0) - gen.mean(0)) ** 2).sum() + np.trace(c_r) + np.trace(c_g)
               - 2 * np.trace(scipy.linalg.sqrtm(c_r @ c_g).real))
  assert gm.fid(real, gen) == pytest.approx(reference, rel=1e-6)
  assert abs(gm.fid(real, real)) < 1e-6


def test_r_precision_matching_distance_diversity_multimodality():
  rng = np.random.default_rng(1)
  text = rng.normal(size=(64, 8))
  assert gm.r_precision(text, text + 1e-3) == [1.0, 1.0, 1.0]  # each motion nearest its own text
  shuffled = gm.r_precision(text, text[rng.permutation(64)])
  assert shuffled[0] < 0.2 and shuffled[0] <= shuffled[1] <= shuffled[2]
  # a motion whose own text is exactly the second nearest of its pool: top-1 misses, top-2 hits
  t = np.array([[0.0, 0], [1, 0], [10, 0], [20, 0]])
  m = np.array([[0.9, 0], [1, 0], [10, 0], [20, 0]])  # motion 0 is nearer text 1 than its own text 0
  assert gm.r_precision(t, m)[:2] == [0.75, 1.0]
  assert gm.matching_distance(t, m) == pytest.approx(0.9 / 4)
  pts = np.array([[0.0, 0], [3, 4]])
  assert gm.diversity(pts) == pytest.approx(5.0)
  assert gm.multimodality([np.array([[0.0, 0], [0, 2]]), np.array([[1.0, 1], [1, 1], [1, 1]])]) == pytest.approx(1.0)


def test_evaluator_learns_to_match_sentences_with_their_signs(prepared, tmp_path, capsys):
  """Trained on the embedded PHOENIX-style corpus (tiny preset, 150 steps), the evaluator ranks a
  dev sign's own sentence first far more often than chance (1/32), real dev motions score better
  than shuffled ones, and the trained evaluator reloads from its workdir."""
  from asl_motiongpt.motion_evaluator.artifact import Evaluator
  from asl_motiongpt.motion_evaluator.data import split_pairs
  workdir = str(tmp_path / "evaluator")
  assert cli.main(["train", "--config", os.path.join(REPO, "configs", "evaluator.py:tiny"), "--workdir", workdir,
                   f"--config.data.prepared={prepared}", "--config.stages.evaluator.steps=150"]) == 0
  summary = json.load(open(os.path.join(workdir, "evaluator", "summary.json")))
  assert summary["eval"]["r_precision_top1"] > 0.3, summary
  assert "R-precision top-1/2/3" in capsys.readouterr().out
  evaluator = Evaluator.load(workdir)
  pairs = split_pairs(prepared, "phoenix14t", "dev")
  text = evaluator.embed_texts([t for _, t, _, _ in pairs])
  motion = evaluator.embed_motions([(p, m) for _, _, p, m in pairs])
  np.testing.assert_allclose(np.linalg.norm(motion, axis=1), 1.0, rtol=1e-5)
  real = gm.generation_metrics(text, motion, motion)
  shuffled = gm.generation_metrics(text, motion, motion[np.roll(np.arange(len(motion)), 1)])
  assert real["fid"] < 1e-6 and real["r_precision_top1"] == pytest.approx(summary["eval"]["r_precision_top1"])
  assert shuffled["matching_distance"] > real["matching_distance"] and shuffled["r_precision_top1"] < real["r_precision_top1"]


def test_multimodality_in_eval_groups_each_texts_samples():
  """eval --multimodality K: K draws per text (seeds 0..K-1), grouped by text, failed draws left out."""
  from types import SimpleNamespace
  from asl_motiongpt.eval.run_eval import _multimodality

  class Model:
    calls = []

    def generate_codes(self, texts, temperature, seed):
      self.calls.append((tuple(texts), temperature, seed))
      # text i, seed s -> a "sign" whose embedding is (i, s * (i + 1)); text 2 fails at seed 1
      return [SimpleNamespace(failed=(i == 2 and seed == 1), codes=np.array([float(i), float(seed * (i + 1))]))
              for i in (int(t) for t in texts)]

    def codes_to_pose(self, codes):
      return SimpleNamespace(data=codes, mask=None)

  evaluator = SimpleNamespace(embed_motions=lambda group: np.stack([data for data, _ in group]))
  model = Model()
  out = _multimodality(model, evaluator, ["0", "1", "2"], samples=3, temperature=0.7, batch=2)
  assert {(temperature, seed) for _, temperature, seed in model.calls} == {(0.7, 0), (0.7, 1), (0.7, 2)}
  # second coordinates: text 0: 0,1,2 -> mean distance 4/3; text 1: 0,2,4 -> 8/3; text 2 (seed 1 failed): 0,6 -> 6
  assert out["multimodality"] == pytest.approx(np.mean([4 / 3, 8 / 3, 6.0]))
  assert out["multimodality_texts"] == 3 and out["multimodality_samples"] == 3
