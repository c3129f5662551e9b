"""`asl-motiongpt ablate`: every strategy x combination x LLM family as a chain, evaluated, tabulated.

Each cell lives in <workdir>/<strategy>__<combination>__<family>/ and is done when its results.json
exists: rerunning the command after an interruption trains and evaluates only what is missing (an
interrupted chain resumes inside the cell). The gesture tokenizer is trained once and copied into
every cell. Output: results.md, results.csv and results.png beside the cells.
"""
from __future__ import annotations

import csv
import json
import os
import shutil

from asl_motiongpt.config_loader import load_config

COLUMNS = ("strategy", "combination", "family", "bleu1", "bleu4", "rouge_l", "cider", "wer", "insertions",
           "deletions", "dtw_mje")


def _strategy_config(grid, strategy: str, combination: str, family: str, repo_configs: str):
  config = load_config(os.path.join(repo_configs, "strategies", f"{strategy}.py:{grid.preset}"),
                       [f"--config.data.prepared={grid.data.prepared}", f"--config.data.corpus={grid.data.corpus}",
                        f"--config.combination={combination}", f"--config.llm.family={family}",
                        f"--config.tokenizer.train.steps={grid.tokenizer_steps}",
                        f"--config.data.eval_split={grid.eval_split}"])
  for stage in config.stages:
    stage.steps = max(2, int(round(stage.steps * grid.step_scale)))
  return config


def run_grid(grid, workdir: str, repo_configs: str) -> list[dict]:
  from asl_motiongpt.eval.inference import ChainModel
  from asl_motiongpt.eval.run_eval import evaluate
  from asl_motiongpt.train import llm_stage, tokenizer_stage
  from asl_motiongpt.train.chain import run_chain
  os.makedirs(workdir, exist_ok=True)
  shared = os.path.join(workdir, "shared")
  first = _strategy_config(grid, grid.strategies[0], grid.combinations[0], grid.families[0], repo_configs)
  tok_config = llm_stage.tokenizer_stage_config(first)
  if not os.path.exists(os.path.join(shared, tok_config.stage, "summary.json")):
    tokenizer_stage.run(tok_config, shared)
  rows = []
  for strategy in grid.strategies:
    for combination in grid.combinations:
      for family in grid.families:
        cell = os.path.join(workdir, f"{strategy}__{combination}__{family}")
        result_path = os.path.join(cell, "results.json")
        if os.path.exists(result_path):
          print(f"[ablate] {os.path.basename(cell)}: done earlier; skipped")
        else:
          print(f"[ablate] {os.path.basename(cell)}")
          if not os.path.exists(os.path.join(cell, tok_config.stage)):
            shutil.copytree(os.path.join(shared, tok_config.stage), os.path.join(cell, tok_config.stage))
          config = _strategy_config(grid, strategy, combination, family, repo_configs)
          run_chain(config, cell)
          row = {"strategy": strategy, "combination": combination, "family": family}
          metrics = evaluate(ChainModel.load(cell), config, cell, grid.eval_split, limit=grid.eval_limit)
          s = metrics["sign_to_text"]
          row.update({k: s[k] for k in ("bleu1", "bleu4", "rouge_l", "cider", "wer", "insertions", "deletions")})
          row["dtw_mje"] = metrics["text_to_sign"]["dtw_mje"]
          with open(result_path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(row, f, indent=1)
          os.replace(result_path + ".tmp", result_path)  # a cell is done only once its result is whole
        with open(result_path, encoding="utf-8") as f:
          rows.append(json.load(f))
  write_tables(rows, workdir)
  return rows


def _fmt(value) -> str:
  if value is None:
    return "—"
  return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_tables(rows: list[dict], workdir: str) -> None:
  with open(os.path.join(workdir, "results.csv"), "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  header = ["Strategy", "Combination", "LLM", "BLEU@1", "BLEU@4", "ROUGE-L", "CIDEr", "WER", "Ins", "Del",
            "DTW-MJE"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
  with open(os.path.join(workdir, "results.md"), "w", encoding="utf-8") as f:
    f.write("sign -> text on the dev split (WER: lower is better); text -> sign DTW-MJE in shoulder widths\n\n")
    f.write("\n".join(lines) + "\n")
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  scored = [r for r in rows if r["bleu1"] is not None]
  labels = [f"{r['strategy']}\n{r['combination']}/{r['family']}" for r in scored]
  fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.2 * len(scored)), 4))
  for ax, key, title in ((axes[0], "bleu1", "BLEU@1 (higher is better)"), (axes[1], "wer", "WER (lower is better)")):
    ax.bar(range(len(scored)), [r[key] for r in scored], color="#4a7ab8")
    ax.set_xticks(range(len(scored)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "results.png"), dpi=110)
  plt.close(fig)
