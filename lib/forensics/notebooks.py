"""The catalogue of notebooks: every ``notebooks/<name>.ipynb``, described by its ``forensics`` metadata."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .params import REPO_ROOT

NOTEBOOK_DIR = Path(os.environ.get("FORENSICS_NOTEBOOK_DIR", REPO_ROOT / "notebooks"))


@dataclass(frozen=True)
class NotebookInfo:
    name: str
    path: Path
    title: str
    serves: tuple[str, ...]
    sources: tuple[str, ...]
    order: int
    #: the captures the notebook reads (``forensics.captures``): the runner pulls them before it starts
    captures: tuple[str, ...] = ()


def catalogue(directory: Path | None = None) -> dict[str, NotebookInfo]:
    """Name -> info, in run order (``forensics.order`` in the notebook metadata, then name)."""
    directory = Path(directory or NOTEBOOK_DIR)
    out = []
    for path in sorted(directory.glob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("forensics", {})
        out.append(NotebookInfo(name=path.stem, path=path, title=meta.get("title", path.stem),
                                serves=tuple(meta.get("serves", ())),
                                sources=tuple(meta.get("sources", ())), order=int(meta.get("order", 50)),
                                captures=tuple(meta.get("captures", ()))))
    return {nb.name: nb for nb in sorted(out, key=lambda n: (n.order, n.name))}


def names(directory: Path | None = None) -> list[str]:
    return list(catalogue(directory))
