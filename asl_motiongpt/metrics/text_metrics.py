"""Translation metrics of the seed: BLEU@1-4, ROUGE-L, CIDEr-D, WER with substitutions, deletions,
insertions, under a named protocol (figures are only comparable under the same one).

    translation_metrics(hypotheses, references, protocol="slt") -> dict

Protocols (PROTOCOLS; the one used and sacrebleu's signature are in every result):
- "slt" (default): what PHOENIX-2014T sign-language translation papers compute: lowercased,
  punctuation removed, every metric on whitespace tokens (BLEU through sacrebleu, tokenize='none').
- "sacrebleu": BLEU with sacrebleu's defaults (its 13a tokenizer splits punctuation off, case kept),
  as How2Sign papers report it; the other metrics on the NFC text's whitespace tokens, case and
  punctuation kept.

Normalisation (reported in the result under "normalisation"): Unicode NFC; optional lowercasing;
optional removal of punctuation (Unicode category P*, so "ü", "ß" and "é" stay letters); whitespace
collapsed. All metrics then split on whitespace, with one reference per hypothesis.

- BLEU@n: sacrebleu's corpus BLEU with max_ngram_order=n and tokenize='none' (we normalised).
- ROUGE-L: sentence-level LCS F-measure (beta = 1.2, rouge-score's and the seed's convention
  averaged over sentences), on our Unicode-safe tokens: rouge-score's default tokenizer replaces
  every non [a-z0-9] character by a space, which splits "küste" into "k ste".
- CIDEr-D: corpus-level (document frequencies from the references), n = 1..4, Gaussian length
  penalty sigma = 6, clipped counts, x10 — pycocoevalcap's Cider scorer (which is CIDEr-D) is the
  reference, down to its quirks (the length is counted in bigrams; a one-sentence corpus scores 0
  because every n-gram then has idf 0).
- WER: jiwer.process_words over the corpus; substitutions, deletions, insertions are totals.
"""
from __future__ import annotations

import collections
import math
import re
import unicodedata
from collections.abc import Sequence

import jiwer
from sacrebleu.metrics import BLEU


def normalise(text: str, lowercase: bool = True, strip_punctuation: bool = True) -> str:
  text = unicodedata.normalize("NFC", text or "")
  if lowercase:
    text = text.lower()
  if strip_punctuation:
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
  return re.sub(r"\s+", " ", text).strip()


PROTOCOLS = {
    "slt": {"lowercase": True, "strip_punctuation": True, "bleu_tokenize": "none"},
    "sacrebleu": {"lowercase": False, "strip_punctuation": False, "bleu_tokenize": "13a"},
}


def _bleu_metric(order: int, tokenize: str) -> BLEU:
  return BLEU(max_ngram_order=order, tokenize=tokenize, effective_order=False)


def bleu(hypotheses: Sequence[str], references: Sequence[str], order: int, tokenize: str = "none") -> float:
  return _bleu_metric(order, tokenize).corpus_score(list(hypotheses), [list(references)]).score


def _lcs(first: list[str], second: list[str]) -> int:
  if not first or not second:
    return 0
  previous = [0] * (len(second) + 1)
  for first_word in first:
    current = [0]
    for column, second_word in enumerate(second):
      current.append(previous[column] +
                     1 if first_word == second_word else max(previous[column + 1], current[column]))
    previous = current
  return previous[-1]


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """Mean sentence ROUGE-L F1 (x100)."""
  scores = []
  for hyp, ref in zip(hypotheses, references):
    hyp_words, ref_words = hyp.split(), ref.split()
    lcs = _lcs(hyp_words, ref_words)
    if lcs == 0:
      scores.append(0.0)
      continue
    precision, recall = lcs / len(hyp_words), lcs / len(ref_words)
    scores.append(2 * precision * recall / (precision + recall))
  return 100.0 * sum(scores) / max(len(scores), 1)


def _ngrams(words: list[str], order: int) -> collections.Counter:
  return collections.Counter(tuple(words[i:i + order]) for i in range(len(words) - order + 1))


def cider_d(hypotheses: Sequence[str], references: Sequence[str], sigma: float = 6.0, max_n: int = 4) -> float:
  """Corpus CIDEr-D (x1, as pycocoevalcap reports it; 10 x the mean cosine)."""
  refs = [[r.split()] for r in references]
  hyps = [h.split() for h in hypotheses]
  count = len(refs)
  df = collections.Counter()
  for ref_list in refs:
    seen = set()
    for ref in ref_list:
      for order in range(1, max_n + 1):
        seen.update(_ngrams(ref, order))
    df.update(seen)
  log_count = math.log(float(count))

  def vector(words):
    vec, norms = [collections.defaultdict(float) for _ in range(max_n)], [0.0] * max_n
    for order in range(1, max_n + 1):
      for gram, tf in _ngrams(words, order).items():
        value = float(tf) * (log_count - math.log(max(1.0, df[gram])))
        vec[order - 1][gram] = value
        norms[order - 1] += value ** 2
    # The length in the penalty counts bigrams (coco-caption's scorer does; we keep its numbers).
    return vec, [math.sqrt(x) for x in norms], max(len(words) - 1, 0)

  total = 0.0
  for hyp, ref_list in zip(hyps, refs):
    vh, nh, lh = vector(hyp)
    score = [0.0] * max_n
    for ref in ref_list:
      vr, nr, lr = vector(ref)
      for order in range(max_n):
        dot = sum(
            min(value, vr[order][gram]) * vr[order][gram]
            for gram, value in vh[order].items()
            if gram in vr[order])
        if nh[order] != 0 and nr[order] != 0:
          dot /= nh[order] * nr[order]
        score[order] += dot * math.exp(-((lh - lr) ** 2) / (2 * sigma ** 2))
    total += 10.0 * (sum(score) / max_n) / len(ref_list)
  return total / max(len(hyps), 1)


def wer(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
  # jiwer refuses empty references; an empty reference with a non-empty hypothesis counts as insertions.
  pairs = [(r, h) for r, h in zip(references, hypotheses)]
  kept = [(r, h) for r, h in pairs if r.strip()]
  extra_insertions = sum(len(h.split()) for r, h in pairs if not r.strip())
  if kept:
    out = jiwer.process_words([r for r, _ in kept], [h if h.strip() else "" for _, h in kept])
    substitutions, deletions, insertions, reference_words = out.substitutions, out.deletions, out.insertions, sum(
        len(r.split()) for r, _ in kept)
  else:
    substitutions = deletions = insertions = reference_words = 0
  insertions += extra_insertions
  return {
      "wer": 100.0 * (substitutions + deletions + insertions) / max(reference_words, 1),
      "substitutions": substitutions,
      "deletions": deletions,
      "insertions": insertions,
      "reference_words": reference_words
  }


def sentence_wer(hypothesis: str, reference: str, protocol: str = "slt") -> float:
  """One sentence's WER (%) under `protocol`'s normalisation: what a per-example table sorts by."""
  settings = PROTOCOLS[protocol]
  return wer([normalise(hypothesis, settings["lowercase"], settings["strip_punctuation"])],
             [normalise(reference, settings["lowercase"], settings["strip_punctuation"])])["wer"]


def translation_metrics(hypotheses: Sequence[str], references: Sequence[str], protocol: str = "slt",
                        lowercase: bool | None = None, strip_punctuation: bool | None = None) -> dict:
  """Every metric under `protocol`; `lowercase` / `strip_punctuation` override its normalisation."""
  if protocol not in PROTOCOLS:
    raise ValueError(f"metric protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
  settings = PROTOCOLS[protocol]
  lowercase = settings["lowercase"] if lowercase is None else lowercase
  strip_punctuation = settings["strip_punctuation"] if strip_punctuation is None else strip_punctuation
  hyps = [normalise(h, lowercase, strip_punctuation) for h in hypotheses]
  refs = [normalise(r, lowercase, strip_punctuation) for r in references]
  result = {}
  for order in range(1, 5):
    metric = _bleu_metric(order, settings["bleu_tokenize"])
    result[f"bleu{order}"] = metric.corpus_score(hyps, [refs]).score
  result["bleu_signature"] = str(metric.get_signature())  # BLEU@4's (sacrebleu signs after scoring)
  result["rouge_l"] = rouge_l(hyps, refs)
  result["cider"] = cider_d(hyps, refs)
  result.update(wer(hyps, refs))
  result["sentences"] = len(hyps)
  result["protocol"] = protocol
  result["normalisation"] = {"unicode": "NFC", "lowercase": lowercase, "strip_punctuation": strip_punctuation,
                             "tokens": "whitespace", "bleu_tokenize": settings["bleu_tokenize"]}
  return result
