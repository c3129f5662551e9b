"""A pretraining strategy = a chain of stages run in order under one workdir.

`run_chain(config, workdir)` checks the whole chain first (chain_config.validate), skips stages
that finished (their summary.json says so), resumes the one that was interrupted, and starts each
LLM stage from its `init_from` stage's final parameters. The first stage is the gesture tokenizer.
At the end, `loss_curves.png` shows every stage's training and held-out loss.
"""
from __future__ import annotations

import jax

from asl_motiongpt import chain_config, storage
from asl_motiongpt.train import evaluator_stage, llm_stage, tokenizer_stage
from asl_motiongpt.train.logging_utils import plot_losses

RUNNERS = {"tokenizer": tokenizer_stage.run, "llm": llm_stage.run, "evaluator": evaluator_stage.run}


def finished(workdir: str, name: str) -> dict | None:
  path = storage.join(workdir, name, "summary.json")
  if not storage.exists(path):
    return None
  summary = storage.read_json(path)
  return summary if summary.get("done", True) else None


def run_chain(config, workdir: str) -> dict:
  # Paths become absolute now: the chain's config.json is read later from other directories.
  workdir = storage.absolute(workdir)
  config = chain_config.with_absolute_paths(config)
  chain_config.validate(config)
  chain_config.check_inputs(config, workdir)
  if jax.process_index() == 0:
    chain_config.save(config, workdir)  # eval / translate / generate rebuild the model from it
  results = {}
  for stage in config.stages:
    done = finished(workdir, stage.name)
    if done is not None:
      if jax.process_index() == 0:
        print(f"[{stage.name}] finished earlier; skipped")
      results[stage.name] = done
      continue
    if stage.kind not in RUNNERS:
      raise ValueError(f"stage {stage.name!r}: kind {stage.kind!r}; kinds are {sorted(RUNNERS)}")
    result = RUNNERS[stage.kind](config, stage, workdir)
    if result.get("stopped"):
      return {"stopped": stage.name, **results}
    results[stage.name] = {k: v for k, v in result.items() if k != "history"}
  if jax.process_index() == 0:
    picture = plot_losses(workdir, [s.name for s in config.stages], storage.join(workdir, "loss_curves.png"))
    if picture:
      print(f"loss curves of every stage: {picture}")
  return results


def summary_table(results: dict) -> str:
  """A Markdown table of a chain's results: one row per stage."""
  lines = ["| stage | steps | train loss (first -> last) | held-out (step 0 -> last) |", "|---|---|---|---|"]
  for name, result in results.items():
    if name == "stopped":
      continue
    if "train" in result:  # the tokenizer stage
      held = f"MPJPE {result['eval']['mpjpe']:.3f}" if "eval" in result else ""
      train = f"loss {result['train']['loss']:.4f}, MPJPE {result['train']['mpjpe']:.3f}"
      lines.append(f"| {name} | {result['step']} | {train} | {held} |")
      continue
    train = f"{result['first_loss']:.3f} -> {result['last_loss']:.3f}" if result.get("first_loss") is not None else ""
    evals = list((result.get("eval_loss") or {}).values())
    held = f"{evals[0]:.3f} -> {evals[-1]:.3f}" if evals else ""
    lines.append(f"| {name} | {result['step']} | {train} | {held} |")
  if "stopped" in results:
    lines.append(f"\nstopped in stage {results['stopped']!r}: rerun the same command to resume")
  return "\n".join(lines)
