"""The ablation grid: a table shaped like the seed's (Markdown, CSV, PNG); an interrupted grid
completes only what is missing."""
import csv
import os


from asl_motiongpt import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _args(prepared, workdir):
  return ["ablate", "--config", os.path.join(REPO, "configs", "ablations", "demo_grid.py"), "--workdir", str(workdir),
          f"--config.data.prepared={prepared}", "--config.strategies=['joint']",
          "--config.combinations=['llm_align']", "--config.families=['llama', 'qwen3']", "--config.step_scale=0.02",
          "--config.tokenizer_steps=20", "--config.eval_limit=2", "--config.evaluator_steps=5",
          "--config.overrides=['--config.train.eval_every=0']"]


def test_grid_table_and_resume(prepared, tmp_path, capsys):
  assert cli.main(_args(prepared, tmp_path)) == 0
  out = capsys.readouterr().out
  assert "| Strategy | Combination | LLM | BLEU@1 |" in out and "| FID | R@1 | R@3 |" in out
  # one text-motion evaluator, trained once for the grid, scores every cell's generated signs
  assert (tmp_path / "shared_evaluator" / "evaluator" / "evaluator.json").exists()
  rows = list(csv.DictReader(open(tmp_path / "results.csv", encoding="utf-8")))
  assert [(r["strategy"], r["combination"], r["family"]) for r in rows] == [
      ("joint", "llm_align", "llama"), ("joint", "llm_align", "qwen3")]
  import json
  for r in rows:  # the table holds each cell's own results
    cell = json.load(open(tmp_path / f"{r['strategy']}__{r['combination']}__{r['family']}" / "results.json"))
    assert float(r["wer"]) == cell["wer"] and int(r["insertions"]) == cell["insertions"]
    assert int(r["failed_generations"]) == cell["failed_generations"]
    assert set(cell) >= {"fid", "r_precision_top1", "r_precision_top3"}
    if cell["failed_generations"] == 0:  # two signs to compare: the evaluator's figures are there
      assert float(r["fid"]) == cell["fid"] and 0 <= cell["r_precision_top1"] <= 1
  assert (tmp_path / "results.png").stat().st_size > 1000
  # index.html beside results.md links each cell's evaluation report (relative: the folder can move)
  import re
  index = (tmp_path / "index.html").read_text(encoding="utf-8")
  links = re.findall(r'<a href="([^"]+/report\.html)">', index)
  assert len(links) == 2 and all((tmp_path / link).is_file() for link in links)
  assert all(not link.startswith("/") for link in links)
  # An interrupted grid: one cell's result is missing; the rerun redoes only that one.
  os.remove(tmp_path / "joint__llm_align__qwen3" / "results.json")
  assert cli.main(_args(prepared, tmp_path)) == 0
  out = capsys.readouterr().out
  assert "joint__llm_align__llama: done earlier; skipped" in out
  assert "[ablate] joint__llm_align__qwen3\n" in out
  assert "[joint] finished earlier; skipped" in out  # the chain inside the cell was complete already
