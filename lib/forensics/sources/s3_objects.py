"""Log files that AWS delivers to S3 (CloudTrail, ALB access logs): the keys of a window, streamed.

Both services deliver under a dated layout and write a UTC time in every file name::

    <prefix>/AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_YYYYMMDDTHHMMZ_<rand>.json.gz
    <prefix>/AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/<account>_elasticloadbalancing_<region>_app.<lb>_YYYYMMDDTHHMMZ_<ip>_<rand>.log.gz

so a window needs only the ``YYYY/MM/DD/`` prefixes of its days (:func:`day_prefixes`), and of their
keys only those whose file-name time can hold events of the window (:func:`keys_for_window`). Objects
are read through ``GetObject``, gunzipped as a stream (:func:`read_lines`, :func:`read_json`), a few at
a time (:data:`READ_THREADS`: each GET waits mostly on the network, ~20-150 ms, and a trail has a file
per 5 minutes per account and Region) and handed over in key order; nothing lists or reads a whole bucket.

Failures of the bucket (missing, access denied) raise :class:`~forensics.errors.SourceError`; failures
of one object (not gzip, not JSON, truncated, denied, expanding beyond :data:`MAX_OBJECT_BYTES`) are
recorded in :class:`Reading`, named by their key, and the other objects are still read: the caller
reports ``reading.errors`` next to its frame (``attrs``).

Bounds: ``max_bytes`` counts the *compressed* bytes a reading downloads; :data:`MAX_OBJECT_BYTES` the
*decompressed* bytes of one object, checked as the stream is inflated, so a small gzip that expands to
gigabytes (a decompression bomb in a bucket an attacker can write to) is stopped at the cap with at most
one chunk beyond it in memory.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from .. import defaults
from ..errors import ObjectError, SourceError
from ..window import IncidentWindow
from . import _aws_errors

#: ``..._YYYYMMDDTHHMMZ_...`` in a delivery file name
_STAMP = re.compile(r"_(\d{8}T\d{4}Z)_")
#: 12-digit account ids and organisation ids under ``AWSLogs/``
_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
#: default ceiling of compressed bytes one reading downloads
DEFAULT_MAX_BYTES = 2 * 1024 ** 3
#: ceiling of decompressed bytes of one object (CloudTrail writes a file every ~5 minutes per account and
#: Region, ALB every 5 minutes per node: tens of MiB at the most)
MAX_OBJECT_BYTES = 128 * 1024 ** 2
_CHUNK = 1 << 20
#: objects read at once by :func:`read_each` (at most this many objects' results held in memory ahead of the
#: caller); the shared client's pool holds enough connections for every plan thread doing so
#: (defaults.AWS_MAX_POOL_CONNECTIONS)
READ_THREADS = defaults.S3_READ_THREADS


def read_client(service: str, aws: dict | None = None, client=None):
    """The caller's client, else a read-only boto3 client for ``service`` (s3, athena, glue): the operations
    it may call are :data:`forensics._aws.READ_OPERATIONS`' and nothing else."""
    if client is not None:
        return client
    from .. import _aws

    with _aws_errors(service, f"{service} client"):
        return _aws.client(service, aws)


# ---- keys ---------------------------------------------------------------------------------------
def join(*parts: str) -> str:
    """S3 key parts joined with single slashes, no leading slash."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def day_prefixes(base: str, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
    """``base/YYYY/MM/DD/`` for every UTC day that [start, end] touches."""
    days = pd.date_range(start.tz_convert("UTC").normalize(), end.tz_convert("UTC").normalize(), freq="D")
    return [join(base, d.strftime("%Y/%m/%d")) + "/" for d in days]


def key_time(key: str) -> pd.Timestamp | None:
    """The UTC time written in a delivery file's name, or None when the name has none."""
    m = _STAMP.search(key.rsplit("/", 1)[-1])
    if not m:
        return None
    return pd.Timestamp(pd.to_datetime(m.group(1), format="%Y%m%dT%H%MZ", utc=True))


def keys_for_window(keys, window: IncidentWindow, *, before: pd.Timedelta,
                    after: pd.Timedelta) -> list[str]:
    """The keys whose file-name time ``t`` satisfies ``window.start - before < t <= window.end + after``.

    - ALB: ``t`` is the *end* of the file's 5-minute interval, so ``before=0, after=5min`` keeps the
      files whose interval overlaps the window.
    - CloudTrail: ``t`` is when the file was written; it holds events of the minutes before ``t``
      (typically up to ~15), so ``before=5min`` (the stamp's granularity) and ``after`` = the delivery
      delay accepted.

    Keys without a time are kept (they are read and their records filtered by their own times).
    """
    lo, hi = window.start - before, window.end + after
    out = []
    for key in keys:
        t = key_time(key)
        if t is None or lo < t <= hi:
            out.append(key)
    return out


# ---- listing ------------------------------------------------------------------------------------
def _bucket_hint(bucket: str):
    def hint(exc):
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            return f"bucket {bucket!r} does not exist (check the environment's bucket name and account)"
        return None

    return hint


def list_keys(s3, bucket: str, prefix: str, source: str = "s3") -> list[dict]:
    """Every object under ``prefix``: ``[{Key, Size, LastModified}]`` (ListObjectsV2, paginated)."""
    out: list[dict] = []
    with _aws_errors(source, f"s3:ListObjectsV2 s3://{bucket}/{prefix}", _bucket_hint(bucket)):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [{"Key": o["Key"], "Size": o.get("Size", 0)} for o in page.get("Contents") or []]
    return out


def list_folders(s3, bucket: str, prefix: str, source: str = "s3") -> list[str]:
    """The names of the "folders" directly under ``prefix`` (ListObjectsV2 with ``Delimiter='/'``)."""
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    out: list[str] = []
    with _aws_errors(source, f"s3:ListObjectsV2 s3://{bucket}/{prefix}", _bucket_hint(bucket)):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            out += [p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes") or []]
    return out


def discover_accounts(s3, bucket: str, prefix: str, organization_id: str | None = None,
                      source: str = "s3") -> list[str]:
    """The account "folders" under ``<prefix>/AWSLogs/`` as paths relative to it: ``"123456789012"``
    or, for an organisation trail, ``"o-abc.../123456789012"``."""
    base = join(prefix, "AWSLogs")
    if organization_id:
        return [f"{organization_id}/{a}" for a in list_folders(s3, bucket, join(base, organization_id), source)
                if _ACCOUNT.match(a)]
    out = []
    for name in list_folders(s3, bucket, base, source):
        if _ACCOUNT.match(name):
            out.append(name)
        elif _ORG.match(name):
            out += [f"{name}/{a}" for a in list_folders(s3, bucket, join(base, name), source) if _ACCOUNT.match(a)]
    return out


def delivery_bases(s3, bucket: str, prefix: str, service: str, accounts: list[str], regions, source: str = "s3"
                   ) -> list[str]:
    """``<prefix>/AWSLogs/<account>/<service>/<region>`` for each account path and each region given or,
    when none are given, found by listing ``<account>/<service>/``."""
    bases = []
    for account in accounts:
        found = regions or list_folders(s3, bucket, join(prefix, "AWSLogs", account, service), source)
        bases += [join(prefix, "AWSLogs", account, service, r) for r in found]
    return bases


# ---- reading ------------------------------------------------------------------------------------
@dataclass
class Reading:
    """What one source read: prefixes listed, objects read, compressed bytes downloaded, per-object errors."""

    bucket: str
    prefixes: list[str] = field(default_factory=list)
    listed: int = 0
    objects: int = 0
    bytes_read: int = 0
    errors: list[dict] = field(default_factory=list)
    truncated: bool = False
    #: compressed bytes downloaded per object, as the readers finish (in any thread)
    downloaded: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def error(self, key: str, message: str) -> None:
        self.errors.append({"key": key, "error": message})

    def count(self, key: str, n: int) -> None:
        """``n`` compressed bytes of ``key`` downloaded (called by the reader, in its thread)."""
        with self._lock:
            self.downloaded[key] = self.downloaded.get(key, 0) + n

    def attrs(self) -> dict:
        """For ``frame.attrs``: JSON-serialisable."""
        return {"bucket": self.bucket, "prefixes": list(self.prefixes), "objects_listed": self.listed,
                "objects_read": self.objects, "bytes_read": self.bytes_read, "errors": list(self.errors),
                "truncated": self.truncated, "engine": "python", "bytes_scanned": self.bytes_read}


class _Counting(io.RawIOBase):
    """A readable wrapper counting the bytes that pass through (the compressed bytes downloaded)."""

    def __init__(self, body):
        self._body, self.count = body, 0

    def readable(self):
        return True

    def readinto(self, buf):
        data = self._body.read(len(buf))
        n = len(data)
        buf[:n] = data
        self.count += n
        return n


def _too_large(cap: int) -> ObjectError:
    return ObjectError(f"expands beyond {cap / 1024 ** 2:.0f} MiB decompressed; not read (a decompression "
                       "bomb, or a file that is not a delivery file)")


class _Capped(io.RawIOBase):
    """The decompressed stream, raising :class:`ObjectError` past ``cap`` bytes."""

    def __init__(self, gz, cap: int):
        self._gz, self._cap, self.count = gz, cap, 0

    def readable(self):
        return True

    def readinto(self, buf):
        data = self._gz.read(min(len(buf), _CHUNK))
        n = len(data)
        self.count += n
        if self.count > self._cap:
            raise _too_large(self._cap)
        buf[:n] = data
        return n


def _open(s3, bucket: str, key: str, source: str):
    with _aws_errors(source, f"s3:GetObject s3://{bucket}/{key}", _bucket_hint(bucket)):
        return s3.get_object(Bucket=bucket, Key=key)["Body"]


def read_lines(s3, bucket: str, key: str, reading: Reading, source: str = "s3", *,
               max_object_bytes: int = MAX_OBJECT_BYTES) -> Iterator[str]:
    """The text lines of one gzip object, decompressed as they stream in. Raises :class:`ObjectError`
    when the object is not gzip, is cut short or expands beyond ``max_object_bytes`` (lines already
    yielded stay yielded)."""
    body = _open(s3, bucket, key, source)
    raw = _Counting(body)
    try:
        with gzip.GzipFile(fileobj=io.BufferedReader(raw, 1 << 16), mode="rb") as gz:
            capped = io.BufferedReader(_Capped(gz, max_object_bytes), 1 << 16)
            for line in io.TextIOWrapper(capped, encoding="utf-8", errors="replace", newline=None):
                yield line.rstrip("\n")
    except gzip.BadGzipFile as exc:
        raise ObjectError(f"not gzip ({exc})") from exc
    except (EOFError, zlib.error) as exc:
        raise ObjectError(f"gzip stream cut short or corrupt ({exc})") from exc
    finally:
        reading.count(key, raw.count)
        body.close()


def read_json(s3, bucket: str, key: str, reading: Reading, source: str = "s3", *,
              max_object_bytes: int = MAX_OBJECT_BYTES):
    """One gzip JSON document (a CloudTrail delivery file), decompressed as it streams in, at most
    ``max_object_bytes`` of it (else :class:`ObjectError`)."""
    body = _open(s3, bucket, key, source)
    raw = _Counting(body)
    try:
        with gzip.GzipFile(fileobj=io.BufferedReader(raw, 1 << 16), mode="rb") as gz:
            chunks, total = [], 0
            while True:
                chunk = gz.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_object_bytes:
                    raise _too_large(max_object_bytes)
                chunks.append(chunk)
            data = b"".join(chunks)
            del chunks
            return json.loads(data.decode("utf-8"))
    except gzip.BadGzipFile as exc:
        raise ObjectError(f"not gzip ({exc})") from exc
    except (EOFError, zlib.error) as exc:
        raise ObjectError(f"gzip stream cut short or corrupt ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ObjectError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except ValueError as exc:
        raise ObjectError(f"not JSON ({exc})") from exc
    finally:
        reading.count(key, raw.count)
        body.close()


def read_each(s3, keys: list[str], reading: Reading, read: Callable[[str], object], *,
              max_bytes: int = DEFAULT_MAX_BYTES, threads: int = READ_THREADS) -> Iterator[tuple[str, object]]:
    """``(key, read(key))`` for each key, in the order of ``keys``; an object that fails is recorded in
    ``reading.errors`` and skipped. Stops (``reading.truncated``) once ``max_bytes`` compressed bytes were
    downloaded.

    ``threads`` objects are read at once, handed over in key order; which objects are read, the errors
    and ``reading.bytes_read`` are those of reading them one at a time (an object read ahead past the
    bound is dropped, not counted), so a reading does not depend on which GET answered first."""
    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="s3-read")
    pending = iter(keys)
    ahead: deque = deque(pool.submit(read, k) for k in itertools.islice(pending, max(1, threads)))
    try:
        for key in keys:
            if reading.bytes_read >= max_bytes:
                reading.truncated = True
                break
            fut = ahead.popleft()
            nxt = next(pending, None)
            if nxt is not None:
                ahead.append(pool.submit(read, nxt))
            try:
                try:
                    result = fut.result()
                finally:
                    reading.bytes_read += reading.downloaded.get(key, 0)
            except ObjectError as exc:
                reading.error(key, str(exc))
                continue
            except SourceError as exc:
                code = str(getattr(exc.__cause__, "response", {}).get("Error", {}).get("Code", ""))
                if code == "NoSuchBucket":
                    raise
                reading.error(key, exc.message)  # e.g. AccessDenied on one object (a KMS key we cannot use)
                continue
            reading.objects += 1
            yield key, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def window_keys(s3, bucket: str, bases: list[str], window: IncidentWindow, reading: Reading, *,
                before: pd.Timedelta, after: pd.Timedelta, source: str = "s3") -> list[str]:
    """List the day prefixes of ``[start - before, end + after]`` under each base; the keys of the window,
    sorted by their file-name time."""
    keys: list[str] = []
    for base in bases:
        for prefix in day_prefixes(base, window.start - before, window.end + after):
            reading.prefixes.append(prefix)
            listed = list_keys(s3, bucket, prefix, source)
            reading.listed += len(listed)
            keys += keys_for_window([o["Key"] for o in listed], window, before=before, after=after)
    return sorted(dict.fromkeys(keys), key=lambda k: (key_time(k) or pd.Timestamp.min.tz_localize("UTC"), k))
