"""Application Load Balancer access logs from S3: one row per request of the window.

The environment's section::

    alb: {load_balancer: app/web/0123456789abcdef, access_logs: {bucket: my-logs, prefix: web,
          accounts: [123456789012], regions: [eu-west-1]}}

ALB writes ``<prefix>/AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/...
_app.<name>.<id>_<end-time>_<ip>_<random>.log.gz``, one file per node every 5 minutes, where
``end-time`` ends the file's interval: only the day prefixes of the window are listed, and only the
files whose interval overlaps it are read (see :func:`forensics.sources.s3_objects.keys_for_window`).
``accounts``/``regions`` absent are found by listing; ``load_balancer`` present keeps that one's files.

Format: AWS's documented access-log entry (every field, in order, :data:`FIELDS`), space separated,
some fields double-quoted. AWS appends fields over time and says to ignore trailing fields one does not
expect: they are kept, joined, in ``extra_fields``. Fields the file's format predates are null. A line
with fewer than :data:`MIN_FIELDS` fields, or fewer than its file's usual count (a line cut short), is
not parsed: it is counted in ``attrs["bad_lines"]`` and reported per file in ``attrs["errors"]``.

Values: ``-`` is null everywhere; a processing time of ``-1`` (the load balancer could not dispatch the
request, or the connection closed before a response) is null; ``elb_status_code``/``target_status_code``
are nullable integers. ``request`` is split into ``request_verb, request_url, request_proto`` and the
URL into ``host, path, query``.
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlsplit

import pandas as pd

from ..errors import ShortLine
from ..window import IncidentWindow
from . import _empty, _typed
from . import s3_objects as so
from .call import Call

SOURCE = "alb_access_logs"

#: The documented fields of an ALB access-log entry, in order (raw names as AWS writes them).
FIELDS = ("type", "time", "elb", "client:port", "target:port", "request_processing_time",
          "target_processing_time", "response_processing_time", "elb_status_code", "target_status_code",
          "received_bytes", "sent_bytes", "request", "user_agent", "ssl_cipher", "ssl_protocol",
          "target_group_arn", "trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
          "request_creation_time", "actions_executed", "redirect_url", "error_reason", "target:port_list",
          "target_status_code_list", "classification", "classification_reason", "conn_trace_id",
          "transformed_host", "transformed_uri", "request_transform_status")
#: Every format AWS has published since 2018 has at least the fields up to ``error_reason``.
MIN_FIELDS = FIELDS.index("error_reason") + 1

#: Columns of the frame (names as in AWS's Athena table for ALB logs where it has one).
COLUMNS = {
    "timestamp": "ts", "type": "str", "elb": "str", "client_ip": "str", "client_port": "Int64",
    "target_ip": "str", "target_port": "Int64", "request_processing_time": "Float64",
    "target_processing_time": "Float64", "response_processing_time": "Float64", "elb_status_code": "Int64",
    "target_status_code": "Int64", "received_bytes": "Int64", "sent_bytes": "Int64", "request_verb": "str",
    "request_url": "str", "request_proto": "str", "host": "str", "path": "str", "query": "str",
    "user_agent": "str", "ssl_cipher": "str", "ssl_protocol": "str", "target_group_arn": "str",
    "trace_id": "str", "domain_name": "str", "chosen_cert_arn": "str", "matched_rule_priority": "Int64",
    "request_creation_time": "ts", "actions_executed": "str", "redirect_url": "str", "error_reason": "str",
    "target_port_list": "str", "target_status_code_list": "str", "classification": "str",
    "classification_reason": "str", "conn_trace_id": "str", "transformed_host": "str",
    "transformed_uri": "str", "request_transform_status": "str", "extra_fields": "str", "log_file": "str",
}

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_TIMES = ("request_processing_time", "target_processing_time", "response_processing_time")
_INTS = ("elb_status_code", "target_status_code", "received_bytes", "sent_bytes", "matched_rule_priority")


def tokens(line: str) -> list[str | None]:
    """The fields of one line, quotes removed; ``-`` (quoted or not) is None."""
    out: list[str | None] = []
    for m in _TOKEN.finditer(line):
        value = m.group(1) if m.group(1) is not None else m.group(2)
        out.append(None if value == "-" else value)
    return out


def _endpoint(value: str | None) -> tuple[str | None, int | None]:
    """``10.0.0.1:443`` / ``[2001:db8::1]:443`` -> (ip, port)."""
    if not value:
        return None, None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return value, None
    return host.strip("[]"), int(port)


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except ValueError:
        return None
    return None if out < 0 else out  # -1: not dispatched / connection closed before a response


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _request(value: str | None) -> dict:
    """``"GET http://host:80/p?q=1 HTTP/1.1"`` -> verb, url, proto, host, path, query (None where ``-``)."""
    out = dict.fromkeys(("request_verb", "request_url", "request_proto", "host", "path", "query"))
    if not value:
        return out
    parts = value.split(" ")
    verb = parts[0] if parts else None
    proto = parts[-1] if len(parts) >= 3 and parts[-1].startswith("HTTP") else None
    url = " ".join(parts[1:-1] if proto else parts[1:]).strip() or None
    out["request_verb"] = None if verb in ("-", "") else verb
    out["request_proto"] = proto
    if url:
        url = url[:-1] if url.endswith("-") and "://" in url and url.count("/") == 2 else url  # "http://h:80-"
        out["request_url"] = url
        try:
            parts_ = urlsplit(url)
            out["host"] = parts_.hostname
            out["path"] = parts_.path or "/"
            out["query"] = parts_.query or None
        except ValueError:
            out["path"] = url
    return out


def parse_line(line: str, min_fields: int = MIN_FIELDS) -> dict:
    """One access-log line as a row of :data:`COLUMNS` (without ``log_file``); :class:`ShortLine` when
    it has fewer than ``min_fields`` fields."""
    f = tokens(line)
    if len(f) < min_fields:
        raise ShortLine(f"{len(f)} fields, the format has at least {min_fields}")
    raw = dict(zip(FIELDS, f))
    client_ip, client_port = _endpoint(raw.get("client:port"))
    target_ip, target_port = _endpoint(raw.get("target:port"))
    row = {"timestamp": raw["time"], "type": raw["type"], "elb": raw["elb"], "client_ip": client_ip,
           "client_port": client_port, "target_ip": target_ip, "target_port": target_port,
           **{k: _seconds(raw[k]) for k in _TIMES}, **{k: _int(raw.get(k)) for k in _INTS},
           **_request(raw["request"])}
    for k in ("user_agent", "ssl_cipher", "ssl_protocol", "target_group_arn", "trace_id", "domain_name",
              "chosen_cert_arn", "request_creation_time", "actions_executed", "redirect_url", "error_reason",
              "target_status_code_list", "classification", "classification_reason", "conn_trace_id",
              "transformed_host", "transformed_uri", "request_transform_status"):
        row[k] = raw.get(k)
    row["target_port_list"] = raw.get("target:port_list")
    extra = f[len(FIELDS):]
    row["extra_fields"] = " ".join("-" if v is None else v for v in extra) if extra else None
    return row


def parse_lines(lines, log_file: str | None = None) -> tuple[list[dict], list[tuple[int, str]]]:
    """Rows of the parseable lines, and ``(line number, reason)`` of the others. A line with fewer
    fields than the file's most common count is cut short, whatever the minimum."""
    lines = [ln for ln in lines if ln.strip()]
    counts = [len(tokens(ln)) for ln in lines]
    usual = Counter(c for c in counts if c >= MIN_FIELDS).most_common(1)
    need = max(MIN_FIELDS, usual[0][0]) if usual else MIN_FIELDS
    rows, bad = [], []
    for i, (line, n) in enumerate(zip(lines, counts), start=1):
        if n < need:
            bad.append((i, f"{n} fields, the file's format has {need}"))
            continue
        row = parse_line(line, need)
        row["log_file"] = log_file
        rows.append(row)
    return rows, bad


def frame(rows: list[dict]) -> pd.DataFrame:
    """Parsed rows as a typed frame sorted by time."""
    if not rows:
        return _empty(COLUMNS)
    df = _typed(pd.DataFrame(rows), COLUMNS)
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def log_bases(access_logs: dict, aws: dict | None = None, *, client=None) -> list[str]:
    """``<prefix>/AWSLogs/<account>/elasticloadbalancing/<region>`` for each configured or found account
    and region."""
    s3 = so.read_client("s3", aws, client)
    bucket, prefix = _bucket(access_logs), access_logs.get("prefix") or ""
    accounts = [str(a) for a in access_logs.get("accounts") or []] or [
        a for a in so.list_folders(s3, bucket, so.join(prefix, "AWSLogs"), SOURCE) if a.isdigit()]
    return so.delivery_bases(s3, bucket, prefix, "elasticloadbalancing", accounts, access_logs.get("regions"),
                             SOURCE)


def _section(alb: dict) -> dict:
    """The ``access_logs`` sub-section of ``alb`` (or ``alb`` itself when given the sub-section)."""
    alb = alb or {}
    return alb.get("access_logs") or alb


def _bucket(access_logs: dict) -> str:
    if not access_logs.get("bucket"):
        raise ValueError("alb.access_logs: bucket is required to read access logs from S3")
    return str(access_logs["bucket"])


def access_logs(alb: dict, window: IncidentWindow, aws: dict | None = None, *,
                max_bytes: int = so.DEFAULT_MAX_BYTES, client=None) -> pd.DataFrame:
    """Every request of ``window`` in the load balancer's access logs, oldest first (module doc).

    ``attrs``: ``bucket, prefixes, objects_listed, objects_read, bytes_read, errors, bad_lines, truncated,
    engine, bytes_scanned``."""
    section = _section(alb)
    s3 = so.read_client("s3", aws, client)
    bucket = _bucket(section)
    reading = so.Reading(bucket)
    keys = so.window_keys(s3, bucket, log_bases(section, aws, client=s3), window, reading,
                          before=pd.Timedelta(0), after=pd.Timedelta("5min"), source=SOURCE)
    lb = (alb or {}).get("load_balancer")
    if lb:
        tag = "_" + str(lb).replace("/", ".") + "_"
        keys = [k for k in keys if tag in k.rsplit("/", 1)[-1]]
    rows: list[dict] = []
    bad_lines = 0

    def read(key):
        return parse_lines(so.read_lines(s3, bucket, key, reading, SOURCE), log_file=key)

    for key, (parsed, bad) in so.read_each(s3, keys, reading, read, max_bytes=max_bytes):
        rows += parsed
        if bad:
            bad_lines += len(bad)
            reading.error(key, f"{len(bad)} line(s) with fewer fields than the format, not parsed "
                               f"(first: line {bad[0][0]}, {bad[0][1]})")
    df = frame(rows)
    df = df[(df["timestamp"] >= window.start) & (df["timestamp"] < window.end)].reset_index(drop=True)
    df.attrs.update(reading.attrs())
    df.attrs["bad_lines"] = bad_lines
    return df


def access_logs_call(alb: dict, window: IncidentWindow, aws: dict | None = None) -> Call:
    """:func:`access_logs` as one :class:`~forensics.sources.call.Call`."""
    section = _section(alb)
    keep = ("bucket", "prefix", "accounts", "regions")
    args = {**{k: section.get(k) for k in keep if section.get(k)}, **window.as_dict(),
            **({"load_balancer": alb["load_balancer"]} if (alb or {}).get("load_balancer") else {})}
    return Call(None, args, lambda: access_logs(alb, window, aws=aws))
