"""Builds asl_motiongpt/corpora/hamnosys_symbols.json: HamNoSys code point -> symbol name.

The names are learned from a Ham2Pose data.json whose entries carry both the Unicode string and
the comma-separated symbol names (`hamnosys_text`): wherever both have the same length, they
align symbol by symbol. A code point that maps to two names stops the build.

  python tools/build_hamnosys_table.py path/to/Ham2Pose/data/hamnosys/data.json
"""
import collections
import json
import os
import sys


def build(data: dict) -> dict[str, str]:
  names = collections.defaultdict(set)
  for entry in data.values():
    text, symbols = entry.get("hamnosys") or "", entry.get("hamnosys_text") or ""
    symbols = symbols.split(",") if symbols else []
    if symbols and len(symbols) == len(text):
      for char, name in zip(text, symbols):
        names[char].add(name)
  clashes = {f"U+{ord(c):04X}": sorted(n) for c, n in names.items() if len(n) > 1}
  if clashes:
    raise SystemExit(f"code points with several names: {clashes}")
  return {f"U+{ord(c):04X}": n.pop() for c, n in sorted(names.items())}


if __name__ == "__main__":
  with open(sys.argv[1], encoding="utf-8") as handle:
    table = build(json.load(handle))
  out = os.path.join(os.path.dirname(__file__), "..", "asl_motiongpt", "corpora", "hamnosys_symbols.json")
  with open(out, "w", encoding="utf-8") as handle:
    json.dump(table, handle, indent=0, sort_keys=True)
  print(f"{len(table)} symbols -> {os.path.normpath(out)}")
