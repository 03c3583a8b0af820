"""Scrub secrets from text before anything is written to a record.

A secret is replaced by ``[REDACTED:<kind>:<8 hex>]`` where the hex is a keyed hash of the secret:
the same secret gives the same marker everywhere in a record (and across records on one machine), so
it stays correlatable ("the key used at 09:03 is the one used at 11:40") without being readable.
The key comes from ``FORENSICS_REDACT_KEY`` if set, else a fixed project salt.

How it works (details in lib/forensics/redaction/ and the README):
1. *detect*: vendor token formats, PEM blocks, JWTs, URL/DSN/SQL/CLI passwords, auth headers,
   unlabelled AWS secret keys (shape + entropy) and ``<name> = <value>`` fields whose name says secret;
2. *mask known values*: every value found so far in this process is replaced wherever it appears,
   whatever precedes it (``register`` adds one by hand);
3. ``scrub_record_files`` is the final pass over a record, across the processes that wrote it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .redaction.engine import PREFILTER, PREFILTERS, detect, marker
from .redaction.known import Scrubber
from .redaction.record import scrub_record_files as _scrub_record_files

__all__ = ["PREFILTER", "PREFILTERS", "Scrubber", "found", "forget", "frame", "marker", "obj", "register",
           "scrub_record_files", "text"]

#: This process's registry of found secrets (values in memory only).
_SCRUBBER = Scrubber()


def text(value: str) -> str:
    """``value`` with every secret replaced by its marker (and every secret already known masked)."""
    return _SCRUBBER.text(value)


def obj(value: Any) -> Any:
    """Redact every string inside nested dicts/lists."""
    return _SCRUBBER.obj(value)


def frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell (and text inside list cells) redacted."""
    return _SCRUBBER.frame(df)


def register(value: str, kind: str = "known-secret") -> bool:
    """Mask ``value`` wherever it appears from now on in this process (False: too word-like to mask)."""
    return _SCRUBBER.register(value, kind)


def forget() -> None:
    """Drop the values this process has found (tests; a long-lived process between records)."""
    _SCRUBBER.forget()


def scrub_record_files(paths, detected=(), ahead=None, keep=()) -> list:
    """Final pass over a record directory (or files): a secret found in any file is masked in all.
    ``detected``: files already scrubbed with these rules when written (masked, not detected again);
    ``ahead``: a ``redaction.record.Ahead`` that read some of them while the notebooks ran; ``keep``:
    files read but never rewritten (a replay's copies of the original's captures)."""
    return _scrub_record_files(paths, _SCRUBBER, detected=detected, ahead=ahead, keep=keep)


def found(value: str) -> list[str]:
    """The kinds of secret detected in ``value`` (used to refuse secret-looking parameters)."""
    if not isinstance(value, str):
        return []
    hits: list[tuple[str, str]] = []
    detect(value, hits)
    return list(dict.fromkeys(kind for kind, _ in hits))
