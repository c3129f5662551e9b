"""Beam search (asl_motiongpt/llm/beam_search.py) against transformers' beam search on the same
weights: sequences and length-penalised scores, LLaMA and Qwen, with end tokens that do end some
hypotheses early; beam 1 is greedy; constraints hold inside the beam. (Every combination's decoder:
tests/test_motion_model.py.)"""
import jax
import numpy as np
import pytest

from llm_helpers import saved_model, tokens

torch = pytest.importorskip("torch", reason="torch (test extra) is the reference")

from asl_motiongpt.llm import load_hf  # noqa: E402
from asl_motiongpt.llm.beam_search import beam_search  # noqa: E402
from asl_motiongpt.llm.generate import MotionSpan, NoConstraint, Sampling, TransformerDecoder, generate, left_pad  # noqa: E402

NEW = 10


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("hf_models"))


def _prompts():
  return [tokens(length=7, batch=1, seed=1)[0].tolist(), tokens(length=11, batch=1, seed=2)[0].tolist()]


def _cut(row, eos):
  out = []
  for t in row:
    if t == 0 and eos != 0:  # padding after the end
      break
    out.append(int(t))
    if t == eos:
      break
  return out


@pytest.mark.parametrize("kind,beams,alpha", [("llama3", 4, 1.0), ("qwen2", 3, 0.6)])
def test_sequences_and_scores_equal_transformers(root, kind, beams, alpha):
  import transformers
  path = saved_model(kind, False, root)
  config, params = load_hf(path)
  prompts = _prompts()
  greedy = generate(config, params, prompts, Sampling(max_new_tokens=NEW))
  eos = greedy[0][2]  # a token the model does produce early: some hypotheses end before the limit
  assert generate(config, params, prompts, Sampling(max_new_tokens=NEW, beams=1), eos_ids=(eos,)) == \
      generate(config, params, prompts, Sampling(max_new_tokens=NEW), eos_ids=(eos,))
  ids, mask = left_pad(prompts, 0)
  model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
  ended_early = 0
  seqs, scores = beam_search(params, None, ids, mask, decoder=TransformerDecoder(config), beams=beams,
                             max_new_tokens=NEW, length_penalty=alpha, constraint=NoConstraint(), eos_ids=(eos,))
  with torch.no_grad():
    ref = model.generate(torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask.astype(np.int64)),
                         num_beams=beams, length_penalty=alpha, do_sample=False, max_new_tokens=NEW,
                         eos_token_id=eos, pad_token_id=0, early_stopping=False, return_dict_in_generate=True,
                         output_scores=True)
  ref_new = ref.sequences[:, ids.shape[1]:].numpy()
  for ours, theirs in zip(seqs, ref_new):
    assert _cut(ours, eos) == _cut(theirs, eos), (beams, alpha, ours, theirs)
    ended_early += eos in _cut(ours, eos) and len(_cut(ours, eos)) < NEW
  np.testing.assert_allclose(scores, ref.sequences_scores.numpy(), atol=1e-4, rtol=0)
  assert ended_early  # the end-token path was exercised


def test_motion_span_holds_inside_the_beam(root):
  config, params = load_hf(saved_model("llama3", False, root))
  span = MotionSpan(begin_id=250, end_id=251, first_code_id=200, num_codes=40, max_codes=5)
  out = generate(config, params, _prompts(), Sampling(max_new_tokens=8, beams=4, length_penalty=1.0), constraint=span,
                 eos_ids=(251,))
  for row in out:
    assert row[0] == 250 and row[-1] == 251 and len(row) - 2 <= 5, row
    assert all(200 <= t < 240 for t in row[1:-1]), row
