"""`asl-motiongpt ablate`: every strategy x combination x LLM family as a chain, evaluated, tabulated.

Each cell lives in <workdir>/<strategy>__<combination>__<family>/ and is done when its results.json
exists: rerunning the command after an interruption trains and evaluates only what is missing (an
interrupted chain resumes inside the cell). The gesture tokenizer is trained once and copied into
every cell. Output: results.md, results.csv and results.png beside the cells. As a job of several
processes every process trains and evaluates each cell together; process 0 writes the files.
"""
from __future__ import annotations

import csv
import io

from asl_motiongpt import storage
from asl_motiongpt.chain_config import tokenizer_stage
from asl_motiongpt.config_loader import load_config, shipped_config
from asl_motiongpt.eval.inference import ChainModel
from asl_motiongpt.eval.run_eval import EvalOptions, decoding_tag, evaluate, output_dir
from asl_motiongpt.parallel.runtime import print_once
from asl_motiongpt.parallel.sharding import agree, written_once
from asl_motiongpt.train.chain import finished, run_chain

COLUMNS = ("strategy", "combination", "family", "bleu1", "bleu4", "rouge_l", "cider", "wer", "insertions",
           "deletions", "dtw_mje", "length_ratio", "failed_generations", "fid", "r_precision_top1",
           "r_precision_top3")
GENERATION_KEYS = ("fid", "r_precision_top1", "r_precision_top3")


def _evaluator(grid, workdir: str):
  """The text-motion evaluator every cell is scored by: `grid.evaluator` (a trained one's workdir),
  else one trained here once (`grid.evaluator_steps` > 0) on the grid's corpus; None: no FID columns."""
  from asl_motiongpt.motion_evaluator.artifact import Evaluator
  if grid.get("evaluator"):
    return Evaluator.load(grid.evaluator)
  if not grid.get("evaluator_steps"):
    return None
  folder = storage.join(workdir, "shared_evaluator")
  config = load_config(shipped_config(f"evaluator.py:{grid.preset}"), [
      f"--config.data.prepared={grid.data.prepared}", f"--config.data.corpus={grid.data.corpus}",
      f"--config.stages.evaluator.steps={grid.evaluator_steps}", f"--config.data.eval_split={grid.eval_split}"
  ])
  run_chain(config, folder)  # skipped when finished earlier
  return Evaluator.load(folder)


def _strategy_config(grid, strategy: str, combination: str, family: str):
  config = load_config(shipped_config(f"strategies/{strategy}.py:{grid.preset}"), [
      f"--config.data.prepared={grid.data.prepared}", f"--config.data.corpus={grid.data.corpus}",
      f"--config.combination={combination}", f"--config.llm.family={family}",
      f"--config.stages.tokenizer.steps={grid.tokenizer_steps}",
      f"--config.data.eval_split={grid.eval_split}", *grid.get("overrides", [])
  ])
  for stage in config.stages:
    if stage.kind == "llm":
      stage.steps = max(2, int(round(stage.steps * grid.step_scale)))
  return config


def run_grid(grid, workdir: str) -> list[dict]:
  workdir = storage.absolute(workdir)
  shared = storage.join(workdir, "shared")
  first = _strategy_config(grid, grid.strategies[0], grid.combinations[0], grid.families[0])
  tok = tokenizer_stage(first)
  if finished(shared, tok.name) is None:  # one tokenizer for every cell
    first.stages = [tok]
    run_chain(first, shared)
  evaluator = _evaluator(grid, workdir)
  rows = []
  for strategy in grid.strategies:
    for combination in grid.combinations:
      for family in grid.families:
        name = f"{strategy}__{combination}__{family}"
        cell = storage.join(workdir, name)
        result_path = storage.join(cell, "results.json")
        if agree(storage.exists(result_path)):  # every process of a job takes the same cells
          print_once(f"[ablate] {name}: done earlier; skipped")
        else:
          print_once(f"[ablate] {name}")
          if not agree(storage.exists(storage.join(cell, tok.name))):
            written_once(lambda: storage.copy_tree(storage.join(shared, tok.name), storage.join(cell, tok.name)),
                         f"ablate {name} tokenizer")
          config = _strategy_config(grid, strategy, combination, family)
          run_chain(config, cell)
          model = ChainModel.load(cell).with_decoding(grid.get("beams", 1), grid.get("length_penalty", 1.0))
          row = {"strategy": strategy, "combination": combination, "family": family,
                 # index.html's link, relative to the grid's folder
                 "report": output_dir(config, cell, grid.eval_split, config.data.corpus, decoding_tag(model))
                 .removeprefix(workdir.rstrip("/") + "/") + "/report.html" if grid.get("reports", True) else ""}
          metrics = evaluate(model, config, cell, grid.eval_split,
                             EvalOptions(limit=grid.eval_limit, protocol=grid.get("metric_protocol", "slt"),
                                         evaluator=evaluator, report=bool(grid.get("reports", True))))
          sign_to_text = metrics["sign_to_text"]
          row.update({
              k: sign_to_text[k]
              for k in ("bleu1", "bleu4", "rouge_l", "cider", "wer", "insertions", "deletions")
          })
          for key in ("dtw_mje", "length_ratio", "failed_generations"):
            row[key] = metrics["text_to_sign"][key]
          scored = metrics["text_to_sign"].get("evaluator") or {}
          row.update({k: scored.get(k) for k in GENERATION_KEYS})
          # whole or absent: a cell is done only once its result is
          written_once(lambda: storage.write_json(result_path, row), f"ablate {name}")
        rows.append(storage.read_json(result_path))
  beams = grid.get("beams", 1)
  decoding = ("greedy decoding" if beams == 1 else
              f"beam search, {beams} beams, length penalty {grid.get('length_penalty', 1.0):g}") + \
      f"; text metrics: protocol {grid.get('metric_protocol', 'slt')}"
  written_once(lambda: write_tables(rows, workdir, decoding), "ablate tables")
  return rows


def _fmt(value) -> str:
  if value is None:
    return "—"
  return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_tables(rows: list[dict], workdir: str, decoding: str = "greedy decoding") -> None:
  table = io.StringIO()
  writer = csv.DictWriter(table, fieldnames=COLUMNS, extrasaction="ignore")  # (the report link: index.html)
  writer.writeheader()
  writer.writerows(rows)
  storage.write_text(storage.join(workdir, "results.csv"), table.getvalue())
  header = ["Strategy", "Combination", "LLM", "BLEU@1", "BLEU@4", "ROUGE-L", "CIDEr", "WER", "Ins", "Del",
            "DTW-MJE", "Length", "Failed", "FID", "R@1", "R@3"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(_fmt(r.get(c)) for c in COLUMNS) + " |" for r in rows]
  storage.write_text(
      storage.join(workdir, "results.md"),
      f"{decoding}; sign -> text on the dev split (WER: lower is better); text -> sign DTW-MJE in shoulder widths and "
      "the generated length relative to the reference (DTW forgives overlong signing), over the signs "
      "generated; Failed: generations without any motion code (not scored); FID (lower is better) and "
      "R-precision top-1/top-3 of the generated signs by the text-motion evaluator (— without one)\n\n" +
      "\n".join(lines) + "\n")
  with storage.local_file_for(storage.join(workdir, "results.png")) as local:
    plot_grid(rows, local)
  storage.write_text(storage.join(workdir, "index.html"), index_page(rows, decoding))


def index_page(rows: list[dict], decoding: str) -> str:
  """index.html beside results.md: the grid's table with each cell's evaluation report linked (paths
  relative to the grid's folder, so the folder can be copied and opened anywhere)."""
  import html
  header = ["Strategy", "Combination", "LLM", "BLEU@4", "WER", "DTW-MJE", "Failed", "report"]
  body = []
  for row in rows:
    link = f'<a href="{html.escape(row["report"])}">report</a>' if row.get("report") else "—"
    cells = [row["strategy"], row["combination"], row["family"], _fmt(row.get("bleu4")), _fmt(row.get("wer")),
             _fmt(row.get("dtw_mje")), _fmt(row.get("failed_generations"))]
    body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + f"<td>{link}</td></tr>")
  return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ablation grid</title>"
          "<style>body{font-family:system-ui,sans-serif;margin:1.5em} table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:0.3em 0.6em}</style></head>\n<body>\n<h1>Ablation grid</h1>\n"
          f"<p>{html.escape(decoding)}; the full table: <a href=\"results.md\">results.md</a>, "
          "<a href=\"results.csv\">results.csv</a>, <a href=\"results.png\">results.png</a></p>\n<table><thead><tr>"
          + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead>\n<tbody>\n" + "\n".join(body)
          + "\n</tbody></table>\n</body></html>\n")


def plot_grid(rows: list[dict], path: str) -> None:
  """Two annotated heat maps (BLEU@1 and WER): a row per strategy x LLM family, a column per
  combination. Colours saturate at WER 100 so one failed cell does not wash out the rest."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  scored = [row for row in rows if row["bleu1"] is not None]
  combos = list(dict.fromkeys(row["combination"] for row in scored))
  lines = list(dict.fromkeys((row["strategy"], row["family"]) for row in scored))
  fig, axes = plt.subplots(1, 2, figsize=(2.5 + 2.6 * len(combos), 1.2 + 0.45 * len(lines)))
  for ax, key, title, vmax, cmap in ((axes[0], "bleu1", "BLEU@1 (higher is better)", 100, "viridis"),
                                     (axes[1], "wer", "WER (lower is better)", 100, "viridis_r")):
    grid = np.full((len(lines), len(combos)), np.nan)
    for row in scored:
      grid[lines.index((row["strategy"], row["family"])), combos.index(row["combination"])] = row[key]
    ax.imshow(np.minimum(grid, vmax), cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
    for (row_index, column_index), value in np.ndenumerate(grid):
      if not np.isnan(value):
        ax.text(column_index, row_index, f"{value:.0f}", ha="center", va="center", fontsize=8,
                color="white" if (value < 50) == (key == "bleu1") else "black")
    ax.set_xticks(range(len(combos)), combos, fontsize=8)
    ax.set_yticks(range(len(lines)), [f"{s} / {f}" for s, f in lines], fontsize=8)
    ax.set_title(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
