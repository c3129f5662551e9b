"""The README is the front door and docs/ holds the rest: every link between them resolves (files and
headings), the README stays short, and no page speaks of issue numbers."""
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: pathlib.Path) -> set[str]:
  """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
  out, fenced = set(), False
  for line in page.read_text(encoding="utf-8").splitlines():
    fenced ^= line.startswith("```")
    if not fenced and line.startswith("#"):
      title = line.lstrip("#").strip().lower()
      out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
  return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves(page):
  broken = []
  for target in LINK.findall(page.read_text(encoding="utf-8")):
    if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
      continue
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    if not file.exists():
      broken.append(target)
    elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
      broken.append(target)
  assert not broken, f"{page.name}: {broken}"


def test_the_readme_is_a_front_door():
  readme = (REPO / "README.md").read_text(encoding="utf-8")
  assert len(readme.splitlines()) <= 250
  assert readme.startswith("```bash\npython3 -m venv .venv && ")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_issue_numbers(page):
  assert not re.search(r"issue [0-9]", page.read_text(encoding="utf-8"), re.IGNORECASE)
