"""Thin, read-only adapters from the incident's data sources to DataFrames (DESIGN §3).

- :mod:`forensics.sources.cloudwatch` — metrics, long frame ``[timestamp, id, label, value, stat, unit]``
- :mod:`forensics.sources.logs` — log events ``[timestamp, log_group, log_stream, message, event_id]``
  and Logs Insights results
- :mod:`forensics.sources.aws_events` — change/timeline events ``[timestamp, source, resource, kind,
  message, ...]`` (ECS deployments, service events, stopped tasks; RDS events)
- :mod:`forensics.sources.postgres` — read-only sessions; pg_stat_activity, pg_locks,
  pg_stat_statements snapshots, settings

Rules every adapter keeps:

- every timestamp column is tz-aware UTC with dtype :data:`TS_DTYPE` (pandas 3's default resolution);
- nothing found is an empty frame *with* the contract columns and dtypes, never a bare ``DataFrame()``;
- pagination is handled inside: callers never see pages;
- any failure of the service (unreachable, throttled after retries, timed out, access denied,
  malformed request) is a one-line :class:`~forensics.errors.SourceError`, the original exception
  kept as ``__cause__``. :class:`~forensics.errors.ReadOnlyViolation` passes through untouched.

boto3 and psycopg are imported inside the functions that need them, so ``import forensics.sources``
stays cheap.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping

import pandas as pd

from ..contracts import TS_DTYPE
from ..errors import ForensicsError, SourceError

__all__ = ["TS_DTYPE"]


# ---- frames -------------------------------------------------------------------------------------
def _utc(values) -> pd.Series | pd.DatetimeIndex:
    """Anything datetime-like (aware datetimes, ISO text, NaT/None) -> UTC with :data:`TS_DTYPE`."""
    out = pd.to_datetime(values, utc=True)
    return out.astype(TS_DTYPE)


def _utc_ms(values) -> pd.Series:
    """Epoch milliseconds -> UTC with :data:`TS_DTYPE`."""
    return pd.to_datetime(pd.Series(values, dtype="Int64"), unit="ms", utc=True).astype(TS_DTYPE)


def _typed(df: pd.DataFrame, schema: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with exactly the ``schema`` columns first (in order, missing ones added as nulls) and
    their dtypes; columns not in the schema are kept after them. ``"ts"`` marks a UTC timestamp."""
    df = df.copy() if len(df.columns) else pd.DataFrame(index=df.index)
    for col, dtype in schema.items():
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), index=df.index, dtype="object")
        if dtype == "ts":
            df[col] = _utc(df[col]) if len(df) else pd.Series([], dtype=TS_DTYPE, index=df.index)
        elif dtype == "object":
            df[col] = df[col].astype("object")
        else:
            df[col] = df[col].astype(dtype)
    extra = [c for c in df.columns if c not in schema]
    return df[list(schema) + extra]


def _empty(schema: Mapping[str, str]) -> pd.DataFrame:
    return _typed(pd.DataFrame(), schema)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _as_list(names: str | Iterable[str] | None, what: str) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    out = [str(n) for n in names]
    if any(not n.strip() for n in out):
        raise ValueError(f"{what}: empty name in {out!r}")
    return list(dict.fromkeys(out))  # unique, order kept


# ---- errors -------------------------------------------------------------------------------------
_WS = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]+>")


def _one_line(text, limit: int = 300) -> str:
    text = _WS.sub(" ", _TAGS.sub(" ", str(text or ""))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _aws_message(exc: BaseException, operation: str, hint: str | None = None) -> str:
    """One line describing a botocore failure of ``operation``."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata", {}) or {}
        code = str(err.get("Code") or "")
        status = meta.get("HTTPStatusCode")
        attempts = meta.get("RetryAttempts")
        raw = str(err.get("Message") or "")
        message = "" if re.search(r"<(!doctype|html)", raw, re.I) else _one_line(raw)  # an HTML error page
        if code.isdigit() or not code:
            code = f"HTTP {status or code}"
        line = f"{operation} failed: {code}"
        if message and message != code:
            line += f": {message}"
        if "Throttl" in code or code in ("RequestLimitExceeded", "TooManyRequestsException"):
            line += f" (still throttled after {attempts} retries)" if attempts else " (throttled)"
        elif code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                      "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
                      "ExpiredTokenException"):
            line += ("; the collector's credentials are missing this permission: attach the policy "
                     "lib/forensics/iam/forensics-read-only.json")
        elif isinstance(status, int) and status >= 500 and attempts:
            line += f" (retried {attempts} times)"
    elif isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ConnectionClosedError,
                          bex.ProxyConnectionError)):
        line = f"{operation} failed: endpoint unreachable ({_one_line(exc)})"
    elif isinstance(exc, bex.ReadTimeoutError):
        line = f"{operation} failed: timed out waiting for the response ({_one_line(exc)})"
    elif isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError, bex.TokenRetrievalError,
                          bex.CredentialRetrievalError)):
        line = (f"{operation} failed: no usable AWS credentials ({_one_line(exc)}); set AWS_PROFILE or the "
                "environment's aws.profile")
    elif isinstance(exc, bex.NoRegionError):
        line = f"{operation} failed: no AWS region; set aws.region in the environment or AWS_REGION"
    elif isinstance(exc, bex.ParamValidationError):
        line = f"{operation} failed: malformed request ({_one_line(exc)})"
    else:
        line = f"{operation} failed: {type(exc).__name__}: {_one_line(exc)}"
    if hint:
        line += f"; {hint}"
    return line


@contextlib.contextmanager
def _aws_errors(source: str, operation: str, hint=None):
    """Turn botocore failures inside the block into ``SourceError(source, one line)`` from the original.

    ``hint`` is a string, or a callable ``hint(exc) -> str | None`` for advice that depends on the error.
    Our own errors (ReadOnlyViolation...) and botocore's Stubber assertions pass through untouched.
    """
    from botocore import exceptions as bex

    try:
        yield
    except ForensicsError:
        raise
    except bex.StubResponseError:
        raise
    except (bex.BotoCoreError, bex.ClientError) as exc:
        text = hint(exc) if callable(hint) else hint
        raise SourceError(source, _aws_message(exc, operation, text)) from exc


def _aws_client(service: str, aws, client=None, config=None):
    """The caller's client (e.g. one with a Stubber active), else a read-only one from ``_aws.client``."""
    if client is not None:
        return client
    from .. import _aws

    with _aws_errors(service, f"{service} client"):
        return _aws.client(service, aws, config=config)
