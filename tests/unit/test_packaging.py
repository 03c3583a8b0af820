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


def test_every_folder_of_data_files_under_lib_is_listed_as_a_package():
    """A folder that holds only data (no __init__.py) ships through package-data; setuptools then wants it
    listed as a package, or every `pip install` prints a BuildBackendWarning per folder."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {p.parent for p in (REPO / "lib").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
               and "__pycache__" not in p.parts and not any(part.endswith(".egg-info") for part in p.parts)}
    names = {".".join(f.relative_to(REPO / "lib").parts) for f in folders if f != REPO / "lib"}
    assert names - listed == set()
