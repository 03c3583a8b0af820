"""The sandbox's layout: scenarios share only what ``scenarios/common.py`` (and ``played.py``) offer, and
the moto extensions page every served API through one helper."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import forensics_sandbox.scenarios as scenarios_pkg
from forensics_sandbox.moto_ext.paging import paginate

SCENARIOS_DIR = Path(scenarios_pkg.__file__).parent
PACKAGE = scenarios_pkg.__name__
SHARED = {"__init__", "common", "played"}  # what scenarios may import from: the registry, the shared module, Played
SCENARIO_MODULES = sorted(p.stem for p in SCENARIOS_DIR.glob("*.py") if p.stem not in SHARED)
#: scenarios too large for one module are a package of their own (pool_exhaustion/)
SCENARIO_PACKAGES = sorted(p.parent.name for p in SCENARIOS_DIR.glob("*/__init__.py"))


def _imports(module: str, folder: Path = SCENARIOS_DIR) -> list[tuple[str, str, int]]:
    """``(imported module, imported name or attribute, line)`` for what ``module`` takes from a sibling
    module of the scenarios package, by ``from .x import name``, ``from . import x`` then ``x.name``, or the
    absolute spellings."""
    tree = ast.parse((folder / f"{module}.py").read_text(encoding="utf-8"))
    out, aliases = [], {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1:
            source = node.module
        elif node.level == 0 and (node.module or "").startswith(PACKAGE + "."):
            source = node.module[len(PACKAGE) + 1:]
        elif node.level == 0 and node.module == PACKAGE:
            source = None
        else:
            continue
        for a in node.names:
            if source is None:  # from . import x: x is a sibling module (or a name of __init__)
                if (folder / f"{a.name}.py").exists():
                    aliases[a.asname or a.name] = a.name
                else:
                    out.append(("__init__", a.name, node.lineno))
            else:
                out.append((source, a.name, node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            out.append((aliases[node.value.id], node.attr, node.lineno))
    return out


def test_the_scenarios_are_found():
    assert {"cache_redis", "security"} <= set(SCENARIO_MODULES) and "pool_exhaustion" in SCENARIO_PACKAGES


@pytest.mark.parametrize("package", SCENARIO_PACKAGES)
def test_a_scenario_package_takes_from_itself_common_and_played_only(package):
    """Inside a scenario package: ``from .x`` (its own modules), ``from ..common``/``..played``, and the
    sandbox's own modules (``from ...workload``); never another scenario."""
    folder = SCENARIOS_DIR / package
    bad = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module not in SHARED - {"__init__"}:
                bad.append(f"{package}/{path.name}:{node.lineno} takes from ..{node.module}")
            if isinstance(node, ast.ImportFrom) and node.level == 1 and not (folder / f"{node.module}.py").exists():
                bad.append(f"{package}/{path.name}:{node.lineno} takes from .{node.module}")
    assert not bad, bad


@pytest.mark.parametrize("module", SCENARIO_MODULES)
def test_no_scenario_imports_a_private_name_of_another_module(module):
    private = [f"{module}.py:{line} takes {name} from {source}" for source, name, line in _imports(module)
               if name.startswith("_") and source != module]
    assert not private, private


@pytest.mark.parametrize("module", SCENARIO_MODULES)
def test_scenarios_share_through_common_not_through_each_other(module):
    others = [f"{module}.py:{line} takes {name} from {source}" for source, name, line in _imports(module)
              if source not in SHARED]
    assert not others, others


def test_the_import_walk_sees_what_the_old_layout_did(tmp_path):
    """The checks above would catch ``from .pool_exhaustion import _iso`` and ``pool_exhaustion._hex``."""
    (tmp_path / "pool_exhaustion.py").write_text("def _iso(ts):\n    return ts\n")
    (tmp_path / "late.py").write_text("from .pool_exhaustion import _iso, timeline\nfrom . import pool_exhaustion\n"
                                      "x = pool_exhaustion._hex\n")
    assert sorted((s, n) for s, n, _ in _imports("late", tmp_path)) == [
        ("pool_exhaustion", "_hex"), ("pool_exhaustion", "_iso"), ("pool_exhaustion", "timeline")]


# ---- the one pagination helper ----------------------------------------------------------------------
def test_paginate_walks_every_item_once_in_order():
    items = list(range(23))
    seen, token, sizes = [], None, []
    while True:
        page = paginate(items, "Events", 5, token)
        seen += page["Events"]
        sizes.append(len(page["Events"]))
        token = page.get("NextToken")
        if token is None:
            break
    assert seen == items
    assert sizes == [5, 5, 5, 5, 3]  # full pages, then the rest


def test_paginate_token_names_the_next_offset_and_the_last_page_has_none():
    items = list("abcdefghij")
    first = paginate(items, "Items", 4)
    assert first == {"Items": list("abcd"), "NextToken": "4"}
    assert paginate(items, "Items", 4, first["NextToken"]) == {"Items": list("efgh"), "NextToken": "8"}
    assert paginate(items, "Items", 4, "8") == {"Items": list("ij")}  # last page: no token
    assert paginate(items, "Items", 5, "5") == {"Items": list("fghij")}  # exactly full last page: no token
    assert paginate(items, "Items", 10) == {"Items": items}


def test_paginate_names_the_token_as_the_api_does_and_handles_no_items():
    page = paginate(list(range(30)), "Events", 20, token_name="Marker")
    assert page["Marker"] == "20" and "NextToken" not in page
    assert paginate(list(range(30)), "Events", 20, page["Marker"], token_name="Marker") == {
        "Events": list(range(20, 30))}
    assert paginate([], "Events", 20) == {"Events": []}

