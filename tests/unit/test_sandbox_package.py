"""The sandbox is its own package, and the installed tool declares what it imports.

- lib/forensics never imports forensics_sandbox (the CLI reaches it through the ``forensics.plugins``
  entry point only); forensics_sandbox imports forensics, downwards, and has no import cycle inside;
- every third-party module imported by lib/forensics or by a notebook is a declared runtime dependency
  of pyproject.toml, and forensics_sandbox's are runtime or ``sandbox`` extra dependencies;
- without moto, `forensics sandbox ...` and `forensics demo` say in one line what to install;
- no module of the sandbox is over 500 lines.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "lib"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(LIB).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute module names imported by ``path`` (relative imports resolved), with their line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            # `from pkg import sub`: the submodule when it is one
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append((sub if _is_module(sub) else mod, node.lineno))
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (LIB / rel).with_suffix(".py").is_file() or (LIB / rel / "__init__.py").is_file()


def _files(package: str) -> list[Path]:
    return sorted(p for p in (LIB / package).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_library_never_imports_the_sandbox():
    found = [f"{p.relative_to(REPO)}:{line} imports {mod}" for p in _files("forensics")
             for mod, line in _imports(p) if mod.split(".")[0] == "forensics_sandbox"]
    assert not found, found
    # nor by a string (importlib.import_module("forensics_sandbox...")), nor its old place
    texts = [p for p in _files("forensics") if "forensics_sandbox" in p.read_text(encoding="utf-8")
             and p.name != "cli.py"]
    assert not texts, texts
    assert not (LIB / "forensics" / "sandbox").exists()


def test_the_cli_reaches_the_sandbox_through_one_entry_point():
    eps = PYPROJECT["project"]["entry-points"]["forensics.plugins"]
    assert eps == {"sandbox": "forensics_sandbox.cli:commands"}
    from forensics_sandbox.cli import commands

    assert sorted(commands()) == ["demo", "sandbox"]


def _graph(package: str) -> dict[str, set[str]]:
    graph = {}
    for p in _files(package):
        me = _module_name(p)
        graph[me] = {m for m, _ in _imports(p) if m.split(".")[0] == package and m != me}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_sandbox_has_no_import_cycle():
    graph = _graph("forensics_sandbox")
    assert "forensics_sandbox.scenarios.pool_exhaustion" in graph
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_sandbox_ties_to_the_tool_run_downwards_only():
    used = sorted({m for p in _files("forensics_sandbox") for m, _ in _imports(p) if m.split(".")[0] == "forensics"})
    # params writing, the window's UTC, the error root, the CLI's helpers, the runner and its exit code (demo)
    assert set(used) <= {"forensics", "forensics.params", "forensics.window", "forensics.errors", "forensics.cli",
                         "forensics.runner", "forensics.coverage", "forensics.resources"}, used


def test_no_sandbox_module_is_over_500_lines():
    long = {str(p.relative_to(REPO)): n for p in _files("forensics_sandbox")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long


# ---- what pyproject declares against what is imported ---------------------------------------------------
def _requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")


def _declared(*extras: str) -> set[str]:
    deps = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    for extra in extras:
        deps |= {_requirement_name(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]}
    return deps


def _notebook_imports() -> list[tuple[str, str]]:
    out = []
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, ast.Import):
                    out += [(a.name, nb.name) for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    out.append((node.module, nb.name))
    return out


def _third_party(pairs) -> dict[str, str]:
    """top-level module -> where it is imported, for modules neither stdlib nor ours."""
    ours = {"forensics", "forensics_sandbox"}
    out = {}
    for mod, where in pairs:
        top = mod.split(".")[0]
        if top and top not in sys.stdlib_module_names and top not in ours:
            out.setdefault(top, str(where))
    return out


def _undeclared(modules: dict[str, str], declared: set[str]) -> list[str]:
    dists = importlib.metadata.packages_distributions()
    missing = []
    for top, where in sorted(modules.items()):
        names = {d.lower().replace("_", "-") for d in dists.get(top, [])}
        if not names:
            missing.append(f"{top} (imported by {where}) is installed by no distribution here")
        elif not names & declared:
            missing.append(f"{top} (imported by {where}) comes from {sorted(names)}, not declared in pyproject.toml")
    return missing


def test_every_import_of_the_library_and_the_notebooks_is_a_declared_dependency():
    pairs = [(m, p.relative_to(REPO)) for p in _files("forensics") for m, _ in _imports(p)] + _notebook_imports()
    modules = _third_party(pairs)
    assert {"pandas", "yaml", "ahocorasick", "jmespath", "fastjsonschema", "jinja2"} <= set(modules)
    assert _undeclared(modules, _declared()) == []


def test_every_import_of_the_sandbox_is_declared_with_the_sandbox_extra():
    modules = _third_party((m, p.relative_to(REPO)) for p in _files("forensics_sandbox") for m, _ in _imports(p))
    assert "moto" in modules
    assert _undeclared(modules, _declared("sandbox")) == []
    assert "moto" not in _declared()  # the library itself does not need moto


def test_the_dependency_check_sees_a_missing_declaration():
    assert _undeclared({"ahocorasick": "x.py"}, {"pandas"}) != []
    assert _undeclared({"no_such_module_anywhere": "x.py"}, {"pandas"}) != []
    assert _requirement_name("psycopg[binary]>=3.1") == "psycopg"
    assert _requirement_name("Jinja2>=3.1") == "jinja2"


# ---- without moto -----------------------------------------------------------------------------------
_WITHOUT_MOTO = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "moto" or name.startswith("moto."):
            raise ModuleNotFoundError("No module named 'moto'", name="moto")
sys.meta_path.insert(0, Block())
import importlib.util
_find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] == "moto" else _find(name, *a)
from forensics.cli import main
sys.argv = ["forensics", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("argv", [["sandbox", "up", "--empty"], ["demo"], ["sandbox", "--help"]])
def test_without_moto_the_sandbox_commands_say_what_to_install(argv, tmp_path):
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_MOTO, *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "install forensics[sandbox]" in lines[0] and "moto" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_moto_the_rest_of_the_tool_works(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_MOTO, "list"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and "api-errors" in proc.stdout, proc.stderr
