"""The catalogue of notebooks: every ``notebooks/<name>.ipynb``, described by its ``forensics`` metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ForensicsError
from .resources import notebook_dir

#: the checkout's notebooks/, or the installed package's copy (see resources.py)
NOTEBOOK_DIR = notebook_dir()


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
    """Name -> info, in run order (``forensics.order`` in the notebook metadata, then name).

    No notebook at all is an error (an install without its package data), never an empty catalogue."""
    directory = Path(directory or NOTEBOOK_DIR)
    paths = sorted(directory.glob("*.ipynb"))
    if not paths:
        raise ForensicsError(f"no notebooks in {directory} (a broken install? set FORENSICS_NOTEBOOK_DIR "
                             "to a folder of forensics notebooks)")
    out = []
    for path in paths:
        meta = json.loads(path.read_text()).get("metadata", {}).get("forensics", {})
        out.append(NotebookInfo(name=path.stem, path=path, title=meta.get("title", path.stem),
                                serves=tuple(meta.get("serves", ())),
                                sources=tuple(meta.get("sources", ())), order=int(meta.get("order", 50)),
                                captures=tuple(meta.get("captures", ()))))
    return {nb.name: nb for nb in sorted(out, key=lambda n: (n.order, n.name))}


def names(directory: Path | None = None) -> list[str]:
    return list(catalogue(directory))
