"""The final pass over a finished record: every secret found anywhere in it is masked everywhere in it.

Each notebook runs in its own kernel, so a secret found by one capture is unknown to the others. The
pass (1) detects in every text file and every parquet text column, registering what it finds, (2)
recovers, from the markers already in the record, the values of secrets that were redacted in another
process (tokens whose keyed hash equals a marker's digest), (3) masks every known value in every file,
rewriting only the files that change (atomically). Values stay in memory; nothing is written but the
scrubbed files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from . import engine
from .known import Scrubber

#: YAML is left out: a marker ``[REDACTED:...]`` would turn a scalar into a list, and the record's only
#: YAML (params.yaml) is secret-free by construction (a secret-looking parameter is refused).
TEXT_SUFFIXES = {".html", ".htm", ".md", ".json", ".txt", ".csv", ".log", ".tsv"}


def _files(paths) -> list[Path]:
    out: list[Path] = []
    for p in [paths] if isinstance(paths, (str, Path)) else paths:
        p = Path(p)
        if p.is_dir():
            out.extend(q for q in sorted(p.rglob("*")) if q.is_file())
        elif p.is_file():
            out.append(p)
    return [p for p in out if p.suffix in TEXT_SUFFIXES | {".ipynb", ".parquet"}]


def _walk(value, fn, key=""):
    """Apply ``fn`` to every string of a notebook, except image outputs (base64 is not text)."""
    if isinstance(value, str):
        return value if key.startswith("image/") else fn(value)
    if isinstance(value, list):
        return [_walk(v, fn, key) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, fn, k) for k, v in value.items()}
    return value


def _strings(value, key=""):
    if isinstance(value, str):
        if not key.startswith("image/"):
            yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)


def scrub_record_files(paths, scrubber: Scrubber | None = None) -> list[Path]:
    """Scrub the text files (ipynb, html, md, json, txt, csv, log) and parquet text columns under
    ``paths`` (a record directory or a list of files) so that a secret found in any of them is masked
    in all of them. Returns the files rewritten."""
    scrubber = scrubber or Scrubber()
    loaded: dict[Path, object] = {}
    for path in _files(paths):
        if path.suffix == ".parquet":
            loaded[path] = pd.read_parquet(path)
        elif path.suffix == ".ipynb":
            loaded[path] = json.loads(path.read_text(encoding="utf-8"))
        else:
            loaded[path] = path.read_text(encoding="utf-8", errors="surrogateescape")

    def texts(content):
        if isinstance(content, pd.DataFrame):
            for col in content.columns:
                if content[col].dtype == object or pd.api.types.is_string_dtype(content[col].dtype):
                    for v in pd.unique(content[col].dropna().astype(str)):
                        yield v
        elif isinstance(content, (dict, list)):
            yield from _strings(content)
        else:
            yield content

    # 1. detect: scrub each file's content, registering the values found
    scrubbed = {}
    tables = [p for p, c in loaded.items() if isinstance(c, pd.DataFrame)]
    scrubbed.update(zip(tables, scrubber.frames([loaded[p] for p in tables])))  # one prefilter call for all
    for path, content in loaded.items():
        if isinstance(content, pd.DataFrame):
            continue
        elif isinstance(content, (dict, list)):
            scrubbed[path] = _walk(content, scrubber.text)
        else:
            scrubbed[path] = scrubber.text(content)
    # 2. recover values redacted in other processes from the markers in the record
    kinds: dict[str, str] = {}
    for content in scrubbed.values():
        for text in texts(content):
            if "[REDACTED:" in text:
                for m in engine.MARKER.finditer(text):
                    kind, dig = m.group(0)[10:-1].rsplit(":", 1)
                    kinds.setdefault(dig, kind)
    digests = set(kinds) - scrubber.digests()
    if digests:
        scrubber.recover_texts((text for content in scrubbed.values() for text in texts(content)), digests, kinds)
    # 3. mask every known value everywhere; write what changed
    written = []
    masked = dict(zip(tables, scrubber.frames([scrubbed[p] for p in tables], detect=False)))
    for path, content in scrubbed.items():
        if isinstance(content, pd.DataFrame):
            final = masked[path]
            if not final.equals(loaded[path]):
                tmp = path.with_name(path.name + ".tmp")
                final.to_parquet(tmp, index=False)
                os.replace(tmp, path)
                written.append(path)
            continue
        if isinstance(content, (dict, list)):
            final = _walk(content, scrubber.mask)
            if final != loaded[path]:
                _write_text(path, json.dumps(final, indent=1, ensure_ascii=False) + "\n")
                written.append(path)
            continue
        final = scrubber.mask(content)
        if final != loaded[path]:
            _write_text(path, final)
            written.append(path)
    return written


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    os.replace(tmp, path)
