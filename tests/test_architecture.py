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
    if _package(module) == "asl_motiongpt.eval":  # (not asl_motiongpt.motion_evaluator, a lower layer both use)
      assert not [m for m in imported if _package(m) == "asl_motiongpt.train"], module
    if _package(module) == "asl_motiongpt.train":
      assert not [m for m in imported if _package(m) == "asl_motiongpt.eval"], module


def test_the_lower_layers_import_neither_train_nor_eval():
  graph = _imports()
  lower = ("model", "llm", "data", "gesture", "motion_evaluator", "pose", "corpora", "parallel", "chain_config", "metrics",
           "checkpoints")
  for module, imported in graph.items():
    if _package(module).split(".")[-1] in lower:
      bad = [m for m in imported if _package(m).split(".")[-1] in ("train", "eval", "workflows", "cli")]
      assert not bad, (module, bad)


# The layers, bottom first (docs/DESIGN.md, "Packages and their layers"): a package imports packages of
# lower layers only (or of its own layer, without a cycle).
LAYERS = (("storage", "config_loader"), ("pose",), ("corpora", "metrics", "parallel"), ("llm", "gesture", "data"),
          ("chain_config", "checkpoints"), ("motion_evaluator", "model"), ("train", "eval"), ("workflows",),
          ("cli", "__main__", "asl_motiongpt"))  # asl_motiongpt: the package root (__init__.py)


def _module_graph() -> dict[str, set[str]]:
  """module -> the package's modules it imports. `from pkg import sub` depends on the submodule
  `pkg.sub`, not on `pkg/__init__.py` (which only re-exports), so re-exports make no cycle."""
  paths = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
           for p in PACKAGE.rglob("*.py")}
  graph = {}
  for module, path in paths.items():
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
      if isinstance(node, ast.Import):
        found |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom) and node.module:
        found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module for a in node.names}
    graph[module] = {m for m in found if m in paths and m != module}
  return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components with more than one node (Tarjan), i.e. the import cycles."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for other in graph.get(node, ()):
      if other not in index:
        visit(other)
        low[node] = min(low[node], low[other])
      elif other in on_stack:
        low[node] = min(low[node], index[other])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return found


def _package_graph(modules: dict[str, set[str]]) -> dict[str, set[str]]:
  graph: dict[str, set[str]] = {}
  for module, imported in modules.items():
    graph.setdefault(_package(module), set()).update(_package(m) for m in imported if _package(m) != _package(module))
  return graph


def test_no_import_cycle_between_modules_or_packages():
  modules = _module_graph()
  assert not _cycles(modules), _cycles(modules)
  packages = _package_graph(modules)
  assert not _cycles(packages), _cycles(packages)


def test_a_cycle_is_found_where_there_is_one():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
  assert _cycles({"a": {"b"}, "b": set()}) == []


def test_packages_import_only_their_own_or_lower_layers():
  layer = {name: i for i, names in enumerate(LAYERS) for name in names}
  packages = _package_graph(_module_graph())
  assert set(layer) >= {p.split(".")[-1] for p in packages}, "a new package: give it a layer in LAYERS and DESIGN.md"
  upward = [(p, q) for p, imported in packages.items() for q in imported
            if layer[q.split(".")[-1]] > layer[p.split(".")[-1]]]
  assert not upward, upward


def test_ci_runs_the_readme_test_command_verbatim():
  """CI's entry point is the README's second command (the one a newcomer runs), word for word."""
  import pathlib
  repo = pathlib.Path(__file__).resolve().parents[1]
  commands = [l for l in (repo / "README.md").read_text(encoding="utf-8").splitlines()
              if l.startswith("python3 -m venv .venv && ")][:2]
  assert len(commands) == 2 and "pytest" in commands[1]
  assert commands[1] in (repo / ".ci" / "run").read_text(encoding="utf-8").splitlines()


# A one-letter name says nothing to a reader of a long function. Allowed: the variables of
# comprehensions and lambdas (their scope is one expression), `_`, and capital letters, which
# name the dimensions of the shape suffixes (`B, T = x_BTD.shape[:2]`; docs/DESIGN.md).
def one_letter_names(source: str) -> list[tuple[int, str]]:
  tree = ast.parse(source)
  short_scoped = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
      for generator in node.generators:
        short_scoped.update(id(target) for target in ast.walk(generator.target))
    if isinstance(node, ast.Lambda):
      short_scoped.update(id(argument) for argument in ast.walk(node.args))
  found = []
  for node in ast.walk(tree):
    if id(node) in short_scoped:
      continue
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
      name = node.id
    elif isinstance(node, ast.arg):
      name = node.arg
    else:
      continue
    if len(name) == 1 and name.islower():
      found.append((node.lineno, name))
  return sorted(found)


def test_no_one_letter_names_outside_comprehensions_and_lambdas():
  offenders = []
  for path in sorted([*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "tools").rglob("*.py"),
                      *(PACKAGE.parent / "configs").rglob("*.py")]):
    offenders += [f"{path.relative_to(PACKAGE.parent)}:{line} {name}"
                  for line, name in one_letter_names(path.read_text(encoding="utf-8"))]
  assert not offenders, "name these for what they hold:\n" + "\n".join(offenders)


def test_the_name_check_finds_a_one_letter_name():
  assert one_letter_names("def f(config):\n  c = config\n  return [x for x in c]\n") == [(2, "c")]
  assert one_letter_names("with open(p) as f:\n  pass\nfor i in range(3):\n  pass\n") == [(1, "f"), (3, "i")]
  assert one_letter_names("B, T = x_BTD.shape[:2]\nsquare = lambda v: v * v\n") == []
