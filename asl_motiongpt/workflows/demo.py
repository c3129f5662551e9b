"""`asl-motiongpt demo`: the whole system on the embedded sample corpus, in five steps.

  [1/5] write the sample corpus (How2Sign, PHOENIX-2014T and Ham2Pose formats)
  [2/5] prepare each corpus (read -> unified skeleton -> normalise -> ArrayRecord)
  [3/5] draw one example per corpus from the prepared records
  [4/5] train a small gesture tokenizer and draw a reconstruction
  [5/5] the staged strategy with a tiny LLaMA- and a tiny Qwen3-family model; each trained chain
        beside its untrained start in both directions; one generated sign per family
"""
from __future__ import annotations

import os
import shutil

import numpy as np

from asl_motiongpt import storage
from asl_motiongpt.chain_config import tokenizer_stage
from asl_motiongpt.config_loader import load_config, shipped_config
from asl_motiongpt.corpora.sample import SMALL, SampleSizes, write_sample_corpus
from asl_motiongpt.data.prepare import PrepareOptions, load_prepared, prepare, print_summary
from asl_motiongpt.eval.inference import ChainModel
from asl_motiongpt.eval.run_eval import EvalOptions, evaluate
from asl_motiongpt.model.artifacts import load_gesture_tokenizer
from asl_motiongpt.pose import render
from asl_motiongpt.pose.pose_io import write_generated_pose
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.train.chain import run_chain

# Qwen3 rather than Qwen2: at initialisation a Qwen2 (zero q/k/v biases) computes exactly what the
# LLaMA of the same seed computes; Qwen3's q/k norms make the two families differ from the start.
DEMO_FAMILIES = (("llama", "LLaMA"), ("qwen3", "Qwen3"))


def run_demo(workdir: str, small: bool = False) -> str:
  if storage.is_remote(workdir):
    raise ValueError(
        f"--workdir {workdir}: the demo writes its sample corpus with ordinary files; give it a local "
        "folder (train, eval and generate take bucket paths)")
  work = os.path.abspath(workdir)
  print(f"[1/5] writing the embedded sample corpus to {work}/corpus")
  folders = write_sample_corpus(os.path.join(work, "corpus"), SMALL if small else SampleSizes())
  print("[2/5] preparing each corpus (read -> unified skeleton -> normalise -> ArrayRecord)")
  prepared = os.path.join(work, "prepared")
  for corpus, src in folders.items():
    print_summary(prepare(PrepareOptions(corpus=corpus, src=src, out=prepared, overwrite=True)))
  print("[3/5] what was read: one example per corpus, drawn from the prepared records")
  pictures = os.path.join(work, "pictures")
  os.makedirs(pictures, exist_ok=True)
  for corpus in folders:
    record = load_prepared(prepared, corpus, "train")[0]
    dec = lambda b: b.decode("utf-8")
    seq = PoseSequence(record["pose"], record["confidence"], float(record["fps"]), "unified")
    path = os.path.join(pictures, f"{corpus}.png")
    render.contact_sheet(seq, path)
    print(f"  {corpus:10s} id={dec(record['id'])} text={dec(record['text'])!r} gloss={dec(record['gloss'])!r}"
          f" hamnosys={dec(record['hamnosys_symbols'])[:60]!r} frames={seq.num_frames} -> {path}")
  print("[4/5] training a small gesture tokenizer (VQ-VAE) on the PHOENIX-style corpus")
  runs = os.path.join(work, "runs")
  tok_config = load_config(shipped_config("tokenizer.py:tiny"), [f"--config.data.prepared={prepared}"] +
                           (["--config.stages.0.steps=80"] if small else []))
  result = run_chain(tok_config, runs)[tokenizer_stage(tok_config).name]
  tok, params, vq = load_gesture_tokenizer(tok_config, runs)
  record = load_prepared(prepared, "phoenix14t", tok_config.data.eval_split)[0]
  pose, mask = record["pose"], record["confidence"] > 0
  codes = tok.encode(params, vq, pose, mask)
  recon = tok.decode(params, vq, codes, pose.shape[0])
  original = PoseSequence(pose, record["confidence"], float(record["fps"]), "unified")
  decoded = original.replace(data=recon, confidence=mask.astype(np.float32))
  path = os.path.join(pictures, "tokenizer_reconstruction.png")
  render.comparison_sheet(original, decoded, path, titles=("original", "decoded"))
  print(
      f"  {tok_config.data.eval_split} reconstruction error {result['eval']['mpjpe']:.3f} shoulder widths "
      f"(mean per joint), {len(codes)} codes for {pose.shape[0]} frames; original (top) vs decoded (bottom): {path}"
  )
  summary = _demo_chains(work, prepared, pictures, runs, small)
  print(
      f"\ndone: corpus in {work}/corpus, prepared data in {prepared}, runs in {runs}, pictures in {pictures}, "
      f"summary in {summary}")
  return summary


def _fmt(value) -> str:
  return "—" if value is None else f"{value:.2f}"


def _demo_chains(work, prepared, pictures, runs, small: bool) -> str:
  """[5/5] the staged strategy with a tiny LLaMA-family and a tiny Qwen-family model on the PHOENIX-style
  corpus; each trained chain beside its untrained start in both directions; one generated sign per
  family written as .pose, .mp4, .gif and a contact sheet."""
  limit = 2 if small else 12
  results, generated, reports = {}, [], []
  example = load_prepared(prepared, "phoenix14t", "dev")[0]  # its sentence is signed; its poses are the reference
  sentence = example["text"].decode()
  reference = PoseSequence(example["pose"], example["confidence"], float(example["fps"]), "unified")
  for family, label in DEMO_FAMILIES[:1] if small else DEMO_FAMILIES:  # --small (the tests): LLaMA only
    print(
        f"[5/5] pretraining strategy 'staged' (motion LM -> alignment -> instruction) with a tiny {label}-family model"
    )
    config = load_config(shipped_config("strategies/staged.py:tiny"),
                         [f"--config.data.prepared={prepared}", "--config.combination=llm_align",
                          f"--config.llm.family={family}"] + (["--config.train.eval_every=0"] if small else []))
    if small:
      for stage in config.stages[1:]:
        stage.steps = 10
    chain_dir = os.path.join(runs, f"staged_{family}")
    tok = tokenizer_stage(config).name
    if not os.path.exists(os.path.join(chain_dir, tok)):  # the tokenizer of step 4, shared
      shutil.copytree(os.path.join(runs, tok), os.path.join(chain_dir, tok))
    run_chain(config, chain_dir)
    trained = ChainModel.load(chain_dir)
    for name, model in (("untrained", trained.untrained()), ("trained", trained)):
      results[(label, name)] = evaluate(model, config, os.path.join(chain_dir, name), config.data.eval_split,
                                        EvalOptions(limit=limit, report=name == "trained"))
    reports.append(f"{label}: {os.path.join(chain_dir, 'trained', 'eval', config.data.eval_split, 'report.html')}")
    seq = trained.text_to_sign([sentence])[0]
    if seq is None:
      generated.append(f"{label}: the generation failed (no motion codes)")
      continue
    stem = os.path.join(pictures, f"generated_{family}")
    write_generated_pose(seq, stem + ".pose")
    render.write_mp4(seq, stem + ".mp4")
    render.write_animation(seq, stem + ".gif", reference=reference)  # the dev example's signer beside it
    render.comparison_sheet(reference, seq, stem + ".png", titles=("reference", "generated"))
    generated.append(f"{label}: {stem}.pose / .mp4, and beside the reference .gif / .png ({seq.num_frames} "
                     f"frames); loss curves {os.path.join(chain_dir, 'loss_curves.png')}")
  rows = [("sign -> text WER (lower is better)", lambda m: m["sign_to_text"]["wer"]),
          ("sign -> text BLEU@1", lambda m: m["sign_to_text"]["bleu1"]),
          ("sign -> text ROUGE-L", lambda m: m["sign_to_text"]["rouge_l"]),
          ("text -> sign DTW-MJE (shoulder widths, lower is better)", lambda m: m["text_to_sign"]["dtw_mje"]),
          ("text -> sign length / reference length", lambda m: m["text_to_sign"]["length_ratio"]),
          ("text -> sign failed generations (no motion)",
           lambda m: float(m["text_to_sign"]["failed_generations"])),
          ("back-translation WER (lower is better)", lambda m: m["text_to_sign"]["back_translation"]["wer"])]
  columns = list(results)
  table = [
      f"| dev, first {limit} examples | " + " | ".join(f"{label} {name}" for label, name in columns) + " |",
      "|---|" + "---|" * len(columns)
  ]
  table += [f"| {text} | " + " | ".join(_fmt(get(results[c])) for c in columns) + " |" for text, get in rows]
  print("\n".join(table))
  print(f"  generated for {sentence!r}:\n    " + "\n    ".join(generated))
  print("  every example, both signs side by side (open in a browser):\n    " + "\n    ".join(reports))
  summary = os.path.join(work, "summary.md")
  with open(summary, "w", encoding="utf-8") as handle:
    handle.write("# asl-motiongpt demo: trained vs untrained (staged strategy, llm_align)\n\n" +
                 "\n".join(table) + f"\n\ngenerated for the dev sentence {sentence!r}:\n\n" +
                 "".join(f"- {g}\n" for g in generated) + "\nevaluation reports (every example, both signs "
                 "side by side):\n\n" + "".join(f"- {r}\n" for r in reports))
  return summary
