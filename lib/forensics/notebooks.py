"""The catalogue of notebooks: every ``notebooks/<name>.ipynb``, described by its ``forensics`` metadata
(title, what it serves, run order) and by its cells: the captures it pulls and the findings it writes are
read from the calls it makes (``pull.<name>(inc)``, ``inc.pull("<name>")``, ``inc.sampling("<name>")``,
``inc.optional("<name>")``, ``inc.finding("<key>", ...)``), so they cannot disagree with what it does.

A notebook runs when the environment configures one of the captures it requires; a capture it reads with
``inc.optional`` (CloudTrail's changes for api-errors' suspected change) is pulled when configured but never
makes a notebook run on its own."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ForensicsError
from .resources import notebook_dir

#: the checkout's notebooks/, or the installed package's copy (see resources.py)
NOTEBOOK_DIR = notebook_dir()

_PULL = re.compile(r"\bpull\.([a-z_][a-z0-9_]*)\(")
_PULL_BY_NAME = re.compile(r"\binc\.(?:pull|sampling)\(\s*[\"']([a-z0-9_.-]+)[\"']")
_OPTIONAL = re.compile(r"\binc\.optional\(\s*[\"']([a-z0-9_.-]+)[\"']")
_FINDING = re.compile(r"\binc\.finding\(\s*[\"']([^\"']+)[\"']")
#: Keys every notebook's entry in findings.json has besides its findings (written by the runner).
ENTRY_KEYS = ("status", "unknown", "failed_sources", "error", "reason")


@dataclass(frozen=True)
class NotebookInfo:
    name: str
    path: Path
    title: str
    serves: tuple[str, ...]
    order: int
    #: the names its cells pull (a capture's, or a helper's of forensics.pull such as all_change_events)
    pulls: tuple[str, ...] = ()
    #: the findings its cells write (``inc.finding("<key>", ...)``), in order
    findings: tuple[str, ...] = ()
    #: the captures its cells read only when the environment configures them (``inc.optional("<name>")``)
    optional: tuple[str, ...] = ()

    @property
    def captures(self) -> tuple[str, ...]:
        """The captures the notebook reads: the runner pulls them (and those they read) before it starts."""
        return tuple(dict.fromkeys([*self.required, *self.optional]))

    @property
    def required(self) -> tuple[str, ...]:
        """The captures it reads whatever the environment: one of them configured, the notebook runs."""
        from .pull import PULLS

        return tuple(dict.fromkeys(c for name in self.pulls for c in PULLS.get(name, (name,))))


def code(path: Path) -> str:
    """The notebook's code cells, joined."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return "\n".join("".join(c.get("source") or []) for c in nb.get("cells", []) if c.get("cell_type") == "code")


def pulls(source: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*_PULL.findall(source), *_PULL_BY_NAME.findall(source)]))


def optional(source: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_OPTIONAL.findall(source)))


def findings(source: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_FINDING.findall(source)))


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
        cells = code(path)
        out.append(NotebookInfo(name=path.stem, path=path, title=meta.get("title", path.stem),
                                serves=tuple(meta.get("serves", ())), order=int(meta.get("order", 50)),
                                pulls=pulls(cells), findings=findings(cells), optional=optional(cells)))
    return {nb.name: nb for nb in sorted(out, key=lambda n: (n.order, n.name))}


def names(directory: Path | None = None) -> list[str]:
    return list(catalogue(directory))


def unknown_finding(reference: str, cat: dict[str, NotebookInfo]) -> str | None:
    """Why ``notebook.key[.more]`` names no finding a notebook of ``cat`` writes (None when it does)."""
    notebook, _, rest = reference.partition(".")
    if notebook not in cat:
        return f"no notebook named {notebook!r} (notebooks: {', '.join(cat)})"
    key = rest.split(".", 1)[0]
    if not key:
        return f"{reference!r} names a notebook, not one of its findings"
    if key not in cat[notebook].findings and key not in ENTRY_KEYS:
        return (f"notebook {notebook} writes no finding {key!r} (it writes: "
                f"{', '.join(cat[notebook].findings) or 'none'})")
    return None
