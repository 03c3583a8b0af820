"""The import graph of lib/forensics, read with ast: arrows only downwards.

- sources read the outside world and know nothing of the analysis (no sources -> analysis);
- the analysis works on frames and knows nothing of where they came from (no analysis -> sources);
- the library does not reach the sandbox (a development tool), except through the commands that start it;
- params (loaded first, by everything) reaches neither the sources nor the diagnosis.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import forensics

LIB = Path(forensics.__file__).resolve().parent
#: The commands that start the sandbox: the only modules outside it that may import it.


def _module(path: Path) -> str:
    rel = path.relative_to(LIB.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; ``from . import x`` gives ``package.x``)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rsplit(".", 1)[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            out.add(target)
            out |= {f"{target}.{a.name}" for a in node.names}
    return out


GRAPH = {_module(p): imports(p) for p in LIB.rglob("*.py")}


def _arrows(src: str, dst: str) -> list[str]:
    def inside(name: str, pkg: str) -> bool:
        return name == pkg or name.startswith(pkg + ".")

    return sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if inside(m, src)
                  for t in targets if inside(t, dst))


@pytest.mark.parametrize("src, dst", [
    ("forensics.sources", "forensics.analysis"),
    ("forensics.analysis", "forensics.sources"),
    ("forensics.params", "forensics.sources"),
    ("forensics.params", "forensics.diagnosis"),
])
def test_no_arrow_the_wrong_way(src, dst):
    assert _arrows(src, dst) == []


def test_the_library_never_imports_the_sandbox():
    """The sandbox (lib/forensics_sandbox) is reached through the forensics.plugins entry point only."""
    assert _arrows("forensics", "forensics_sandbox") == []


def test_the_graph_is_read():
    assert "forensics.sources.call" in GRAPH["forensics.sources.logs"]
    assert "forensics.analysis.onset" in GRAPH["forensics.sampling"]
    assert _arrows("forensics.captures", "forensics.sources")
