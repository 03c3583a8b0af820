"""Self-hosted servers' log files (stderr, csvlog, jsonlog) from a path (a file, a folder, a glob) or S3
(``s3://bucket/prefix``), as log-event rows (one per line; the file's name as ``log_group``), bounded."""

from __future__ import annotations

import glob
import gzip
import os
from pathlib import Path

import pandas as pd

from .. import contracts
from ..errors import SourceError
from ..sources import _aws_client, _aws_errors, _empty, _typed

MAX_BYTES = 2_000_000_000
MAX_FILES = 1000


def _decompress(name: str, data: bytes) -> bytes:
    return gzip.decompress(data) if name.endswith(".gz") else data


def local_files(spec: str) -> list[Path]:
    """The files a path names: a file, every file in a folder, or a glob's matches (sorted)."""
    p = Path(os.path.expanduser(spec))
    if p.is_dir():
        found = sorted(x for x in p.iterdir() if x.is_file())
    elif any(ch in spec for ch in "*?["):
        found = sorted(Path(x) for x in glob.glob(os.path.expanduser(spec)) if Path(x).is_file())
    else:
        found = [p] if p.is_file() else []
    if not found:
        raise SourceError("postgres_log", f"no log file at {spec}")
    return found[:MAX_FILES]


def read_files(specs: list[str], *, aws=None, client=None,
               max_bytes: int = MAX_BYTES) -> tuple[list[tuple[str, bytes]], dict]:
    """``[(name, bytes)]`` of every file ``specs`` name (paths and ``s3://`` prefixes), at most ``max_bytes``
    in all; and what was read (``objects_read``, ``bytes_read``, ``truncated``)."""
    out: list[tuple[str, bytes]] = []
    total, truncated = 0, False
    for spec in specs:
        spec = str(spec)
        if spec.startswith("s3://"):
            bucket, _, prefix = spec[5:].partition("/")
            s3 = _aws_client("s3", aws, client)
            with _aws_errors("s3", f"ListObjectsV2 on s3://{bucket}/{prefix}"):
                keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                        for o in page.get("Contents") or []]
            for key in sorted(keys)[:MAX_FILES]:
                with _aws_errors("s3", f"GetObject s3://{bucket}/{key}"):
                    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(max_bytes - total + 1)
                out.append((f"s3://{bucket}/{key}", _decompress(key, body)))
                total += len(body)
                if total > max_bytes:
                    truncated = True
                    break
        else:
            for path in local_files(spec):
                with open(path, "rb") as fh:
                    body = fh.read(max_bytes - total + 1)
                out.append((str(path), _decompress(path.name, body)))
                total += len(body)
                if total > max_bytes:
                    truncated = True
                    break
        if truncated:
            break
    return out, {"objects_read": len(out), "bytes_read": total, "truncated": truncated}


def as_events(files: list[tuple[str, bytes]], fmt: str | None) -> pd.DataFrame:
    """One row per line (``contracts.LOG_COLUMNS``): ``log_group`` the file, ``log_stream`` its format."""
    from .reader import detect_format

    frames = []
    for name, data in files:
        text = data.decode("utf-8", errors="replace")
        kind = fmt or detect_format(text[:65536])
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        frames.append(pd.DataFrame({"timestamp": pd.NaT, "log_group": name, "log_stream": kind, "message": lines,
                                    "event_id": [f"{i}" for i in range(len(lines))]}))
    if not frames:
        return _empty(contracts.LOG_COLUMNS)
    return _typed(pd.concat(frames, ignore_index=True), contracts.LOG_COLUMNS)
