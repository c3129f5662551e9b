"""`asl-motiongpt eval`: both directions of a trained chain on a split.

sign -> text: each example's poses -> codes -> text; translation metrics against the reference.
text -> sign: each reference text -> codes -> poses; DTW-MJE (all joints and hands) against the
reference poses, FID / R-precision / matching distance / diversity with a trained text-motion evaluator
(`--evaluator`), and back-translation: the generated signs read back by the sign -> text direction,
scored against the reference text. Writes metrics.json and examples.jsonl under <workdir>/eval/<split>/
for the chain's corpus (data.corpus) and under <workdir>/eval/<split>/<corpus>/ for each other corpus
of its mixtures: a mixture is evaluated per corpus, never pooled (corpora differ in language and
difficulty; a pooled score would hide which one moved).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
from tqdm import tqdm

from asl_motiongpt import storage
from asl_motiongpt.data.prepare import load_prepared
from asl_motiongpt.metrics.pose_metrics import HANDS, dtw_mje
from asl_motiongpt.motion_evaluator.metrics import generation_metrics, multimodality
from asl_motiongpt.parallel.runtime import is_main_process
from asl_motiongpt.parallel.sharding import written_once
from asl_motiongpt.gesture.reconstruction import format_report, reconstruction_report
from asl_motiongpt.metrics.text_metrics import sentence_wer, translation_metrics
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.pose.transform import fit_dims


def chain_corpora(config) -> list[str]:
  """The corpora a chain reads: data.corpus first, then those its LLM stages' mixtures add."""
  mixtures = [config.data.get("mixture") or {}] + [s.get("mixture") or {} for s in config.stages if s.kind == "llm"]
  return list(dict.fromkeys([config.data.corpus] + [c for m in mixtures for c in m]))


def output_dir(config, workdir: str, split: str, corpus: str, decoding: str = "") -> str:
  """eval/<split>/[<corpus>/][<decoding>/]: the main corpus greedily with the last checkpoint at the
  top; other corpora, beam search and other checkpoints (decoding "beam5", "best", "best/beam5") below."""
  parts = ("eval", split) if corpus == config.data.corpus else ("eval", split, corpus)
  return storage.join(workdir, *parts, *([decoding] if decoding else []))


def decoding_tag(model) -> str:
  """Where a model's results go beside the greedy decoding of the last checkpoint: the checkpoint
  when it is another one (best, a step), then the beam search."""
  checkpoint = str(getattr(model, "checkpoint", "last"))
  parts = ([] if checkpoint == "last" else [checkpoint if checkpoint == "best" else f"step{checkpoint}"]) + \
      ([] if model.beams == 1 else [f"beam{model.beams}"])
  return "/".join(parts)


def _multimodality(model, evaluator, texts, samples: int, temperature: float, batch: int) -> dict:
  """MotionGPT's multimodality: per text, `samples` signs drawn at `temperature` (seeds 0..samples-1),
  embedded by the evaluator; the mean pairwise distance within each text's group, averaged."""
  groups = [[] for _ in texts]
  for seed in range(samples):
    for start in range(0, len(texts), batch):
      generations = model.generate_codes(texts[start:start + batch], temperature=temperature, seed=seed)
      for index, generation in enumerate(generations):
        if not generation.failed:
          pose = model.codes_to_pose(generation.codes)
          groups[start + index].append((pose.data, pose.mask))
  embedded = [evaluator.embed_motions(g) for g in groups if len(g) >= 2]
  return {"multimodality": multimodality(embedded), "multimodality_samples": samples,
          "multimodality_temperature": temperature, "multimodality_texts": len(embedded)}


@dataclasses.dataclass(frozen=True)
class EvalOptions:
  """How an evaluation runs. back_translator: the model that reads the generated signs back (None:
  the evaluated model itself; a separately trained sign -> text model is a judge that did not produce
  the signs). corpus: one of the chain's corpora (None: data.corpus). protocol: of the text metrics
  (metrics/text_metrics.PROTOCOLS). evaluator: a trained text-motion evaluator (asl_motiongpt/evaluator)
  scoring the generated signs by FID, R-precision, matching distance and diversity; with
  multimodality_samples = K >= 2 also multimodality: K signs sampled at `temperature` per text (up to
  the first 32 texts), the mean distance between the K of a text."""
  limit: int | None = None
  batch: int = 8
  corpus: str | None = None
  protocol: str = "slt"
  back_translator: Any = None
  evaluator: Any = None
  multimodality_samples: int = 0
  temperature: float = 1.0
  report: bool = False  # also report.html: every example, both signs side by side (eval/report.py)


@dataclasses.dataclass
class Examples:
  """The split's examples that have both poses and a sentence."""
  corpus: str
  split: str
  ids: list[str]
  references: list[str]
  poses: list[PoseSequence]


@dataclasses.dataclass
class Decoded:
  """What the model made of them, in both directions (None: a failed generation, no motion)."""
  sign_to_text: list[str]
  text_to_sign: list[PoseSequence | None]
  ended: list[bool]            # <motion_end> came before the code limit
  back_translation: list[str]


def read_examples(config, split: str, corpus: str, limit: int | None) -> Examples:
  source = load_prepared(config.data.prepared, corpus, split)
  records = [r for r in (source[i] for i in range(len(source))) if r["has_pose"] and r["text"]][:limit]
  return Examples(corpus, split, [r["id"].decode() for r in records], [r["text"].decode() for r in records],
                  [PoseSequence(r["pose"], r["confidence"], float(r["fps"]), "unified") for r in records])


def decode(model, reader, examples: Examples, batch: int) -> Decoded:
  """Both directions in batches; the generated signs read back by `reader`."""
  out = Decoded([], [], [], [])
  for start in tqdm(range(0, len(examples.ids), batch), desc=f"eval {examples.split}", disable=not is_main_process()):
    chunk = slice(start, start + batch)
    out.sign_to_text += model.sign_to_text(examples.poses[chunk])
    generations = model.generate_codes(examples.references[chunk])
    generated = [None if g.failed else model.codes_to_pose(g.codes) for g in generations]
    out.text_to_sign += generated
    out.ended += [g.ended for g in generations]
    # a failed generation has no sign to read back: it says nothing (an empty hypothesis)
    readable = [g for g in generated if g is not None]
    read = iter(reader.sign_to_text(readable) if readable else [])
    out.back_translation += [next(read) if g is not None else "" for g in generated]
  return out


def _mean(values):
  return float(np.nanmean(values)) if len(values) else None


def score(model, examples: Examples, decoded: Decoded, options: EvalOptions) -> tuple[dict, list]:
  """(metrics, DTW-MJE per scored generation): translation metrics of both text outputs, pose errors
  of the generated signs, the evaluator's figures, and how much the gesture tokenizer keeps."""
  refs, protocol = examples.references, options.protocol
  scored = [(g, p) for g, p in zip(decoded.text_to_sign, examples.poses) if g is not None]
  dtw = [dtw_mje(g.data[..., :p.dims], g.mask, p.data, p.mask) for g, p in scored]
  dtw_hands = [dtw_mje(g.data[..., :p.dims], g.mask, p.data, p.mask, HANDS) for g, p in scored]
  text_to_sign = {"dtw_mje": _mean(dtw), "dtw_mje_hands": _mean(dtw_hands),
                  # DTW forgives length (a long sequence has a close frame for everything):
                  # how long the generated signs are, relative to the reference, says the rest
                  "length_ratio": _mean([g.num_frames / p.num_frames for g, p in scored]),
                  # no motion code at all: not a sign, so not scored as one (DTW, length)
                  "failed_generations": sum(g is None for g in decoded.text_to_sign),
                  # signs cut at the code limit before <motion_end>: scored, but counted
                  "unfinished_generations": int(sum(not e for e in decoded.ended)),
                  "back_translation": translation_metrics(decoded.back_translation, refs, protocol),
                  "back_translator": "self" if options.back_translator is None else "separate"}
  evaluator = options.evaluator
  if evaluator is not None and len(scored) > 1:
    texts = [ref for ref, g in zip(refs, decoded.text_to_sign) if g is not None]
    text_to_sign["evaluator"] = generation_metrics(
        evaluator.embed_texts(texts), evaluator.embed_motions([(p.data, p.mask) for _, p in scored]),
        evaluator.embed_motions([(g.data, g.mask) for g, _ in scored]))
    if options.multimodality_samples >= 2:
      text_to_sign["evaluator"].update(_multimodality(model, evaluator, refs[:32], options.multimodality_samples,
                                                      options.temperature, options.batch))
  # How much of the split's motion the gesture tokenizer keeps (what both directions are bounded by).
  system = model.system
  gesture = system.gesture
  reconstruction = reconstruction_report(gesture, system.gesture_params, system.gesture_state,
                                         [(i, fit_dims(p.data, gesture.spec.dims), p.mask)
                                          for i, p in zip(examples.ids, examples.poses)])
  metrics = {"corpus": examples.corpus, "split": examples.split, "examples": len(examples.ids),
             "sign_to_text": translation_metrics(decoded.sign_to_text, refs, protocol), "text_to_sign": text_to_sign,
             "decoding": model.decoding, "tokenizer_reconstruction": reconstruction}
  return metrics, dtw


def write(out: str, examples: Examples, decoded: Decoded, metrics: dict, dtw: list, protocol: str = "slt") -> None:
  """metrics.json and one line per example (examples.jsonl, with each text output's WER)."""
  scores = iter(dtw)
  lines = [json.dumps({"id": i, "reference": ref, "sign_to_text": hyp, "sign_to_text_wer": sentence_wer(hyp, ref, protocol),
                       "back_translation": back, "back_translation_wer": sentence_wer(back, ref, protocol),
                       "generated_frames": 0 if gen is None else gen.num_frames, "generation_failed": gen is None,
                       "generation_ended": bool(end), "dtw_mje": None if gen is None else next(scores)},
                      ensure_ascii=False)
           for i, ref, hyp, gen, back, end in zip(examples.ids, examples.references, decoded.sign_to_text,
                                                   decoded.text_to_sign, decoded.back_translation, decoded.ended)]
  storage.write_text(storage.join(out, "examples.jsonl"), "".join(line + "\n" for line in lines))
  storage.write_json(storage.join(out, "metrics.json"), metrics)


def evaluate(model, config, workdir: str, split: str, options: EvalOptions = EvalOptions()) -> dict:
  """Both directions of `model` on a split of one corpus: decode, score, write (see the module doc).
  As a job of several processes (a pod), every process runs this: decoding batches are split over the
  mesh's devices on all hosts, each host gets every row back, and process 0 writes the files once."""
  corpus = options.corpus or config.data.corpus
  examples = read_examples(config, split, corpus, options.limit)
  if not examples.ids:  # e.g. HamNoSys entries: poses with a notation, no sentence
    return {"corpus": corpus, "split": split, "examples": 0}
  decoded = decode(model, options.back_translator or model, examples, options.batch)
  metrics, dtw = score(model, examples, decoded, options)
  out = output_dir(config, workdir, split, corpus, decoding_tag(model))
  written_once(lambda: write(out, examples, decoded, metrics, dtw, options.protocol), f"eval {out}")
  if options.report:
    from asl_motiongpt.eval.report import write_report
    written_once(lambda: write_report(out, examples, decoded, metrics, dtw, options.protocol), f"report {out}")
  return metrics


def table(metrics: dict) -> str:
  sign_to_text, text_to_sign = metrics["sign_to_text"], metrics["text_to_sign"]
  rows = [("sign -> text", sign_to_text), ("back-translation", text_to_sign["back_translation"])]
  lines = ["| direction | BLEU@1 | BLEU@4 | ROUGE-L | CIDEr | WER | del | ins |", "|---|---|---|---|---|---|---|---|"]
  for name, scores in rows:
    lines.append(f"| {name} | {scores['bleu1']:.2f} | {scores['bleu4']:.2f} | {scores['rouge_l']:.2f} | "
                 f"{scores['cider']:.3f} | {scores['wer']:.2f} | {scores['deletions']} | {scores['insertions']} |")
  fmt = lambda v, spec: "—" if v is None else format(v, spec)
  lines.append(f"\ntext -> sign: DTW-MJE {fmt(text_to_sign['dtw_mje'], '.3f')}, "
               f"hands {fmt(text_to_sign['dtw_mje_hands'], '.3f')} (shoulder widths), "
               f"generated length {fmt(text_to_sign['length_ratio'], '.2f')} x the reference; "
               f"failed generations (no motion) {text_to_sign['failed_generations']}, cut at the limit "
               f"{text_to_sign['unfinished_generations']}; {metrics['examples']} examples of "
               f"{metrics.get('corpus', '')} {metrics['split']}")
  if text_to_sign.get("evaluator"):
    judged = text_to_sign["evaluator"]
    lines.append(f"text -> sign by the text-motion evaluator: FID {judged['fid']:.3f}, R-precision top-1/2/3 "
                 f"{judged['r_precision_top1']:.3f} / {judged['r_precision_top2']:.3f} / "
                 f"{judged['r_precision_top3']:.3f} (real signs: top-3 {judged['real_r_precision_top3']:.3f}), "
                 f"matching distance {judged['matching_distance']:.3f} (real {judged['real_matching_distance']:.3f}), "
                 f"diversity {judged['diversity']:.3f} (real {judged['real_diversity']:.3f}); {judged['pairs']} signs")
    if "multimodality" in judged:
      lines.append(f"multimodality {judged['multimodality']:.3f} ({judged['multimodality_samples']} signs sampled at "
                   f"temperature {judged['multimodality_temperature']:g} for each of {judged['multimodality_texts']} "
                   "texts)")
  if metrics.get("tokenizer_reconstruction"):
    lines.append(format_report(metrics["tokenizer_reconstruction"], "gesture tokenizer, encode -> decode of these "
                                                                     "examples' poses (shoulder widths; ratio = error / the mean pose's error):"))
  lines.append(f"text metrics: protocol {sign_to_text.get('protocol', 'slt')} "
               f"(BLEU: sacrebleu {sign_to_text.get('bleu_signature', '')})")
  return "\n".join(lines)
