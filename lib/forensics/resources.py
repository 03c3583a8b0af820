"""Where the notebooks, the example parameters and the user's working files are.

Two ways to have the package: a checkout (``lib/forensics`` beside ``notebooks/`` and ``params/``), or an
installed wheel, which carries a copy of both as package data under ``forensics/_data/`` (pyproject.toml
maps ``forensics._data.notebooks`` to ``notebooks/`` and ``forensics._data.params`` to ``params/``).
A checkout always wins, so an editable install reads the files being edited.

The workspace is where the user's own files go and are looked for (``params/``, ``.sandbox/``,
``evidence/``): the checkout's root, or, installed, the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT = PACKAGE_DIR.parents[1]
DATA = PACKAGE_DIR / "_data"


def is_checkout() -> bool:
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "notebooks").is_dir()


def workspace() -> Path:
    return CHECKOUT if is_checkout() else Path.cwd()


def sandbox_dir() -> Path:
    """The background sandbox's state (``forensics sandbox up``): ``$FORENSICS_SANDBOX_DIR``, else
    ``<workspace>/.sandbox``."""
    if os.environ.get("FORENSICS_SANDBOX_DIR"):
        return Path(os.environ["FORENSICS_SANDBOX_DIR"])
    return workspace() / ".sandbox"


def notebook_dir() -> Path:
    """``$FORENSICS_NOTEBOOK_DIR``, else the checkout's ``notebooks/``, else the packaged copy."""
    if os.environ.get("FORENSICS_NOTEBOOK_DIR"):
        return Path(os.environ["FORENSICS_NOTEBOOK_DIR"])
    return CHECKOUT / "notebooks" if is_checkout() else DATA / "notebooks"


def builtin_notebook_dir() -> Path:
    """The notebooks that ship with the tool (the checkout's, else the packaged copy), whatever
    ``$FORENSICS_NOTEBOOK_DIR`` says: what the built-in runbook entries were written against."""
    return CHECKOUT / "notebooks" if is_checkout() else DATA / "notebooks"


def params_dir() -> Path:
    """The user's parameters: ``$FORENSICS_PARAMS_DIR``, else ``<workspace>/params``."""
    if os.environ.get("FORENSICS_PARAMS_DIR"):
        return Path(os.environ["FORENSICS_PARAMS_DIR"])
    return workspace() / "params"


def example_params_dir() -> Path:
    """The example parameters shipped with the package (the checkout's ``params/`` in a checkout)."""
    return CHECKOUT / "params" if is_checkout() else DATA / "params"
