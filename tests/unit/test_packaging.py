"""Every package under lib/ ships in the wheel: pyproject lists packages by hand (lib/ also holds the notebooks'
and parameters' package mappings), so a new package left off the list would be missing for an installed
user while every test in the checkout passes (forensics.captures once was)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_package_under_lib_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO / "lib").parts) for p in (REPO / "lib").rglob("__init__.py")
             if "__pycache__" not in p.parts and ".egg-info" not in str(p)}
    assert found - listed == set()
