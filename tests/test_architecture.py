"""The package's layering, checked on the source (ast): training and inference both build on the
assembly (model/assembly.py) and never on each other; only the workflows (demo, ablation grid) and
the command line see both."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "asl_motiongpt"


def _imports() -> dict[str, set[str]]:
  """module (dotted) -> the asl_motiongpt modules it imports (anywhere in the file, lazy imports too)."""
  graph = {}
  for path in PACKAGE.rglob("*.py"):
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
      if isinstance(node, ast.Import):
        found |= {a.name for a in node.names if a.name.startswith("asl_motiongpt")}
      elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("asl_motiongpt"):
        found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    graph[module] = found
  return graph


def _package(module: str) -> str:
  parts = module.split(".")
  return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def test_eval_imports_nothing_from_train_and_train_nothing_from_eval():
  graph = _imports()
  for module, imported in graph.items():
    if _package(module) == "asl_motiongpt.eval":  # (not asl_motiongpt.evaluator, a lower layer both use)
      assert not [m for m in imported if _package(m) == "asl_motiongpt.train"], module
    if _package(module) == "asl_motiongpt.train":
      assert not [m for m in imported if _package(m) == "asl_motiongpt.eval"], module


def test_the_lower_layers_import_neither_train_nor_eval():
  graph = _imports()
  lower = ("model", "llm", "data", "tokenizer", "evaluator", "pose", "corpora", "parallel", "chain_config", "metrics",
           "checkpoints")
  for module, imported in graph.items():
    if _package(module).split(".")[-1] in lower:
      bad = [m for m in imported if _package(m).split(".")[-1] in ("train", "eval", "workflows", "cli")]
      assert not bad, (module, bad)


def test_no_import_cycle_between_packages():
  """Package-level graph (asl_motiongpt.<pkg>): no cycle that runs through train or eval."""
  graph = _imports()
  edges: dict[str, set[str]] = {}
  for module, imported in graph.items():
    edges.setdefault(_package(module), set()).update(_package(m) for m in imported if _package(m) != _package(module))

  def reaches(start, goal, seen=()):
    return any(n == goal or (n not in seen and reaches(n, goal, seen + (n,))) for n in edges.get(start, ()))

  for pkg in ("asl_motiongpt.train", "asl_motiongpt.eval"):
    assert not reaches(pkg, pkg), f"{pkg} imports something that imports it back"


def test_ci_runs_the_readme_test_command_verbatim():
  """CI's entry point is the README's second command (the one a newcomer runs), word for word."""
  import pathlib
  repo = pathlib.Path(__file__).resolve().parents[1]
  commands = [l for l in (repo / "README.md").read_text(encoding="utf-8").splitlines()
              if l.startswith("python3 -m venv .venv && ")][:2]
  assert len(commands) == 2 and "pytest" in commands[1]
  assert commands[1] in (repo / ".ci" / "run").read_text(encoding="utf-8").splitlines()
