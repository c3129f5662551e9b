"""Our translation metrics against the reference implementations: sacrebleu, pycocoevalcap, jiwer,
rouge-score (on ASCII, where its tokenizer is safe)."""
import pytest

from asl_motiongpt.metrics.text_metrics import cider_d, normalise, rouge_l, translation_metrics, wer

pytest.importorskip("pycocoevalcap", reason="pycocoevalcap (test extra) is the CIDEr-D reference")

ENGLISH = (
    ["the cat sat on the mat", "there will be rain in the north tomorrow", "hello world", "a b c d e f",
     "sunshine on the coast", ""],
    ["the cat is on the mat", "tomorrow it will rain in the north", "hello there world", "a b c d e f",
     "clouds on the coast today", "snow in the mountains"])
GERMAN = (
    ["morgen gibt es im süden regen", "an der küste weht ein kräftiger wind", "es wird heiß", "übermorgen schnee"],
    ["morgen regnet es im süden", "an der küste weht kräftiger wind", "es wird sehr heiß", "übermorgen viel schnee"])


def _coco_cider(hyps, refs):
  from pycocoevalcap.cider.cider import Cider
  score, _ = Cider().compute_score({i: [r] for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)})
  return score


@pytest.mark.parametrize("corpus", [ENGLISH, GERMAN], ids=["english", "german"])
def test_cider_d_matches_pycocoevalcap(corpus):
  hyps, refs = [normalise(h) for h in corpus[0]], [normalise(r) for r in corpus[1]]
  hyps = [h if h else "x" for h in hyps]  # coco's scorer cannot take an empty hypothesis
  assert cider_d(hyps, refs) == pytest.approx(_coco_cider(hyps, refs), abs=1e-9)


def test_cider_d_one_sentence_corpus_and_empty_hypothesis():
  assert cider_d(["the cat sat"], ["the cat sat"]) == pytest.approx(_coco_cider(["the cat sat"], ["the cat sat"]))
  assert cider_d(["", "a b c"], ["a b c", "a b d"]) >= 0.0


@pytest.mark.parametrize("corpus", [ENGLISH, GERMAN], ids=["english", "german"])
def test_bleu_matches_sacrebleu(corpus):
  import sacrebleu
  result = translation_metrics(*corpus)
  hyps, refs = [normalise(h) for h in corpus[0]], [normalise(r) for r in corpus[1]]
  import math
  full = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none")
  assert result["bleu4"] == pytest.approx(full.score, abs=1e-9)
  for n in range(1, 4):  # BLEU@n from sacrebleu's own n-gram precisions and brevity penalty
    ref = full.bp * math.exp(sum(math.log(p / 100) for p in full.precisions[:n]) / n) * 100
    assert result[f"bleu{n}"] == pytest.approx(ref, abs=1e-6)
  assert result["bleu1"] > result["bleu4"]  # BLEU@1 really is unigram-only


@pytest.mark.parametrize("corpus", [ENGLISH, GERMAN], ids=["english", "german"])
def test_wer_matches_jiwer(corpus):
  import jiwer
  result = translation_metrics(*corpus)
  pairs = [(normalise(r), normalise(h)) for h, r in zip(*corpus) if normalise(r)]
  out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
  assert (result["substitutions"], result["deletions"], result["insertions"]) == (
      out.substitutions, out.deletions, out.insertions)
  assert result["wer"] == pytest.approx(100 * out.wer, abs=1e-9)


def test_wer_counts_by_hand():
  r = wer(["a x c d", ""], ["a b c", "e f"])
  assert (r["substitutions"], r["deletions"], r["insertions"]) == (1, 2, 1)
  assert r["wer"] == pytest.approx(100 * 4 / 5)


def test_rouge_l_matches_rouge_score_on_ascii_and_keeps_umlauts():
  from rouge_score import rouge_scorer
  scorer = rouge_scorer.RougeScorer(["rougeL"])
  hyps, refs = [normalise(h) for h in ENGLISH[0][:5]], [normalise(r) for r in ENGLISH[1][:5]]
  expected = 100 * sum(scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)) / 5
  assert rouge_l(hyps, refs) == pytest.approx(expected, abs=1e-9)
  # rouge-score's tokenizer drops non-ASCII letters: "über" becomes "ber" and then equals "ber".
  assert scorer.score("ber regen", "über regen")["rougeL"].fmeasure == 1.0  # (the bug we avoid)
  assert rouge_l(["über regen"], ["ber regen"]) == pytest.approx(50.0)
  assert rouge_l(["über regen"], ["über regen"]) == pytest.approx(100.0)


def test_normalisation_is_reported_and_unicode_safe():
  result = translation_metrics(["Grüße, Welt!"], ["grüße welt"])
  assert result["normalisation"] == {"unicode": "NFC", "lowercase": True, "strip_punctuation": True,
                                     "tokens": "whitespace", "bleu_tokenize": "none"}
  assert result["wer"] == 0.0 and result["bleu1"] == pytest.approx(100.0)
  strict = translation_metrics(["Grüße, Welt!"], ["grüße welt"], lowercase=False, strip_punctuation=False)
  assert strict["wer"] > 0
  # decomposed "u + combining diaeresis" equals the composed "ü"
  assert normalise("su\u0308den") == normalise("süden")


def test_empty_hypotheses_score_zero_not_crash():
  result = translation_metrics(["", ""], ["regen im norden", "sonne"])
  assert result["bleu1"] == 0.0 and result["rouge_l"] == 0.0 and result["deletions"] == 4


@pytest.mark.parametrize("corpus", [ENGLISH, GERMAN], ids=["english", "german"])
def test_sacrebleu_protocol_is_sacrebleus_defaults_and_jiwer_on_cased_text(corpus):
  """Protocol "sacrebleu": BLEU exactly as sacrebleu scores the raw (NFC) text with its defaults
  (13a tokenizer, case kept), its signature reported; WER as jiwer on the same text."""
  import jiwer
  import sacrebleu
  hyps = [h.capitalize() + "," if h else h for h in corpus[0]]  # case and punctuation that the protocols treat apart
  refs = list(corpus[1])
  result = translation_metrics(hyps, refs, protocol="sacrebleu")
  assert result["bleu4"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
  assert "tok:13a" in result["bleu_signature"] and "case:mixed" in result["bleu_signature"]
  pairs = [(r, h) for h, r in zip(hyps, refs) if r]
  assert result["wer"] == pytest.approx(100 * jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]), abs=1e-9)
  slt = translation_metrics(hyps, refs, protocol="slt")
  assert slt["protocol"] == "slt" and "tok:none" in slt["bleu_signature"]
  assert slt["bleu4"] == pytest.approx(translation_metrics(corpus[0], refs)["bleu4"])  # case, commas: gone in slt
  assert result["bleu4"] != slt["bleu4"]
  with pytest.raises(ValueError, match="metric protocol"):
    translation_metrics(hyps, refs, protocol="coco")
