"""PostgreSQL's own server log, classified: connection exhaustion, deadlocks, statement and lock timeouts,
lock waits, authentication failures, checkpoint pressure, others.

The categories and their message patterns are data (``lib/forensics/data/pglog_patterns.yaml``). Input:

- stderr lines with any ``log_line_prefix``: the prefix is whatever precedes the severity
  (``LOG:  ``, ``ERROR:  ``...); time, pid, user, database and client are read from it when written in
  a common way: ``%m``/``%t``, ``[%p]``, ``user=%u,db=%d``/``%u@%d``, ``client=%h``/``host=%h`` and RDS's
  ``%t:%r:%u@%d:[%p]:`` (what ``/aws/rds/instance/<id>/postgresql`` holds, one line per log event);
- csvlog files (:func:`parse_csvlog`), whose SQLSTATE column lets the patterns be checked;
- a CloudWatch Logs frame (``[timestamp, message, ...]``, :func:`parse_events`).

``DETAIL``/``HINT``/``CONTEXT``/``STATEMENT``/``QUERY`` lines and tab-indented continuations belong to the
entry above them: they are not entries of their own (their text is kept in ``detail``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PATTERNS_FILE = Path(__file__).resolve().parent.parent / "data" / "pglog_patterns.yaml"
OTHER = "other"

COLUMNS = ["timestamp", "severity", "category", "pid", "user", "database", "client", "sqlstate", "message",
           "detail"]

_SEVERITY = r"DEBUG[1-5]?|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC"
_SECONDARY = r"DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION"
_LINE = re.compile(rf"^(?P<prefix>.*?)\b(?P<sev>{_SEVERITY}|{_SECONDARY}):\s+(?P<msg>.*)$")
_TS = re.compile(r"(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)(?:\s*(?P<tz>[A-Z]{1,5}|[+-]\d\d(?::?\d\d)?))?")
_RDS = re.compile(r"^\s*(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? ?[A-Z]{0,5}):(?P<client>[^:]*?(?:\(\d+\))?):"
                  r"(?P<user>[^@:]*)@(?P<db>[^:]*):\[(?P<pid>\d+)\]:")
_PID = re.compile(r"\[(\d+)\]")
_KV = {"user": re.compile(r"\buser=([^,\s]*)"), "database": re.compile(r"\b(?:db|database)=([^,\s]*)"),
       "client": re.compile(r"\b(?:client|host|remote)=([^,\s]*)")}
_AT = re.compile(r"\s(?P<user>[\w.\-\[\]]*)@(?P<db>[\w.\-\[\]]*)\s")
#: Time-zone abbreviations PostgreSQL writes with %t/%m (log_timezone); others are read as UTC and flagged.
_TZ = {"UTC": "+00:00", "GMT": "+00:00", "Z": "+00:00", "CET": "+01:00", "CEST": "+02:00", "EET": "+02:00",
       "EEST": "+03:00", "WET": "+00:00", "WEST": "+01:00", "BST": "+01:00", "EST": "-05:00", "EDT": "-04:00",
       "CST": "-06:00", "CDT": "-05:00", "MST": "-07:00", "MDT": "-06:00", "PST": "-08:00", "PDT": "-07:00",
       "JST": "+09:00", "IST": "+05:30"}


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    sqlstate: tuple[str, ...]
    patterns: tuple[re.Pattern, ...]


def load_patterns(path: Path | str = PATTERNS_FILE) -> list[Category]:
    """The categories of the patterns file, in file order; a malformed file is a clear error."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected categories at the top level")
    out = []
    for name, body in data.items():
        pats = (body or {}).get("patterns") if isinstance(body, dict) else None
        if not isinstance(pats, list) or not pats:
            raise ValueError(f"{path}: category {name!r} needs a list of regexes under 'patterns'")
        try:
            compiled = tuple(re.compile(p) for p in pats)
        except re.error as exc:
            raise ValueError(f"{path}: category {name!r}: bad regex ({exc})") from exc
        out.append(Category(str(name), str(body.get("description") or ""),
                            tuple(str(s) for s in body.get("sqlstate") or ()), compiled))
    return out


CATEGORIES: list[Category] = load_patterns()


def classify_message(message: str, categories: list[Category] | None = None) -> str:
    """The category of one primary message text (no prefix, no severity), else ``"other"``."""
    for cat in categories or CATEGORIES:
        if any(p.search(message) for p in cat.patterns):
            return cat.name
    return OTHER


def _timestamp(text: str | None):
    if not text:
        return pd.NaT
    m = _TS.search(text)
    if not m:
        return pd.NaT
    tz = m.group("tz") or "UTC"
    offset = _TZ.get(tz, tz if tz[0] in "+-" else None)
    if offset is None:
        return pd.NaT
    if re.fullmatch(r"[+-]\d\d", offset):
        offset += ":00"
    try:
        return pd.Timestamp(m.group("ts").replace(" ", "T") + offset).tz_convert("UTC")
    except ValueError:
        return pd.NaT


def _prefix_fields(prefix: str) -> dict:
    m = _RDS.match(prefix)
    if m:
        client = m.group("client") or None
        return {"timestamp": _timestamp(m.group("ts")), "pid": int(m.group("pid")),
                "user": m.group("user") or None, "database": m.group("db") or None,
                "client": re.sub(r"\(\d+\)$", "", client) if client else None}
    out = {"timestamp": _timestamp(prefix)}
    pid = _PID.search(prefix)
    out["pid"] = int(pid.group(1)) if pid else None
    for key, rx in _KV.items():
        kv = rx.search(prefix)
        out[key] = (kv.group(1) or None) if kv else None
    if out["user"] is None and out["database"] is None:
        at = _AT.search(" " + prefix + " ")
        if at:
            out["user"], out["database"] = at.group("user") or None, at.group("db") or None
    return out


def parse_stderr(lines: Iterable[str], timestamps: Iterable | None = None) -> pd.DataFrame:
    """Entries of stderr-format log lines, classified (:data:`COLUMNS`). ``timestamps`` (one per line,
    e.g. CloudWatch's event times) fill in entries whose prefix has no readable time."""
    rows: list[dict] = []
    times = iter(timestamps) if timestamps is not None else None
    for line in lines:
        fallback = next(times, pd.NaT) if times is not None else pd.NaT
        line = line.rstrip("\r\n")
        m = _LINE.match(line)
        if not m or line.startswith(("\t", " ")) and not _TS.match(line.lstrip()):
            if rows and line.strip():
                rows[-1]["detail"] = ((rows[-1]["detail"] + "\n") if rows[-1]["detail"] else "") + line.strip()
            continue
        sev, msg = m.group("sev"), m.group("msg")
        if re.fullmatch(_SECONDARY, sev):
            if rows:
                rows[-1]["detail"] = ((rows[-1]["detail"] + "\n") if rows[-1]["detail"] else "") + f"{sev}: {msg}"
            continue
        fields = _prefix_fields(m.group("prefix"))
        if fields["timestamp"] is pd.NaT and fallback is not pd.NaT:
            fields["timestamp"] = pd.Timestamp(fallback)
        rows.append({**fields, "severity": sev, "category": classify_message(msg), "sqlstate": None,
                     "message": msg, "detail": None})
    return _frame(rows)


#: csvlog columns (PostgreSQL 13+ adds backend_type, 14+ leader_pid and query_id; older files have fewer).
CSV_COLUMNS = ("log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
               "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id",
               "transaction_id", "error_severity", "sql_state_code", "message", "detail", "hint",
               "internal_query", "internal_query_pos", "context", "query", "query_pos", "location",
               "application_name", "backend_type", "leader_pid", "query_id")


def parse_csvlog(text: str | Iterable[str]) -> pd.DataFrame:
    """Entries of a csvlog file (text or lines), classified by message text; ``sqlstate`` kept."""
    handle = io.StringIO(text) if isinstance(text, str) else text
    rows = []
    for rec in csv.reader(handle):
        if len(rec) < 14:
            continue
        r = dict(zip(CSV_COLUMNS, rec))
        client = r["connection_from"] or None
        rows.append({"timestamp": _timestamp(r["log_time"]), "severity": r["error_severity"],
                     "category": classify_message(r["message"]),
                     "pid": int(r["process_id"]) if r["process_id"].isdigit() else None,
                     "user": r["user_name"] or None, "database": r["database_name"] or None,
                     "client": re.sub(r":\d+$", "", client) if client else None,
                     "sqlstate": r["sql_state_code"] or None, "message": r["message"],
                     "detail": "\n".join(f"{k.upper()}: {r[k]}" for k in ("detail", "hint", "context", "query")
                                         if r.get(k)) or None})
    return _frame(rows)


def parse_events(events: pd.DataFrame) -> pd.DataFrame:
    """A CloudWatch Logs frame of a PostgreSQL log group (``timestamp, message``), classified. A message
    may hold several lines (a multi-line entry)."""
    if events is None or not len(events):
        return _frame([])
    lines, times = [], []
    for ts, msg in zip(events["timestamp"], events["message"].astype(str)):
        for part in msg.splitlines() or [""]:
            lines.append(part)
            times.append(ts)
    return parse_stderr(lines, times)


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[us, UTC]")
    df["pid"] = df["pid"].astype("Int64")
    return df


def summary(entries: pd.DataFrame, include_other: bool = False) -> pd.DataFrame:
    """Per category: ``entries, first_seen, last_seen, users, databases, clients, example``, in the
    patterns file's order (``other`` last when included)."""
    cols = ["category", "entries", "first_seen", "last_seen", "users", "databases", "clients", "example"]
    if entries is None or not len(entries):
        return pd.DataFrame(columns=cols)
    df = entries if include_other else entries[entries["category"] != OTHER]
    order = {c.name: i for i, c in enumerate(CATEGORIES)}
    out = []
    for cat, g in df.groupby("category", sort=False):
        out.append({"category": cat, "entries": len(g), "first_seen": g["timestamp"].min(),
                    "last_seen": g["timestamp"].max(),
                    **{k: sorted(set(g[c].dropna().astype(str))) for k, c in
                       (("users", "user"), ("databases", "database"), ("clients", "client"))},
                    "example": g["message"].iloc[0]})
    res = pd.DataFrame(out, columns=cols)
    return res.sort_values("category", key=lambda s: s.map(lambda c: order.get(c, len(order)))).reset_index(drop=True)


def per_minute(entries: pd.DataFrame, freq: str = "1min") -> pd.DataFrame:
    """Entries per ``freq`` by category (wide, one column per category seen, ``other`` excluded)."""
    if entries is None or not len(entries):
        return pd.DataFrame()
    df = entries[(entries["category"] != OTHER) & entries["timestamp"].notna()]
    if not len(df):
        return pd.DataFrame()
    return df.groupby([pd.Grouper(key="timestamp", freq=freq), "category"]).size().unstack("category", fill_value=0)


def check_against_sqlstate(entries: pd.DataFrame, categories: list[Category] | None = None) -> pd.DataFrame:
    """Per category with SQLSTATEs: entries whose code says the category (``truth``), found by the
    patterns (``found``), both (``hits``), ``precision`` and ``recall``. Needs ``sqlstate`` (csvlog)."""
    rows = []
    df = entries[entries["sqlstate"].notna()]
    for cat in categories or CATEGORIES:
        if not cat.sqlstate:
            continue
        truth = df["sqlstate"].isin(cat.sqlstate)
        found = df["category"] == cat.name
        hits = int((truth & found).sum())
        rows.append({"category": cat.name, "truth": int(truth.sum()), "found": int(found.sum()), "hits": hits,
                     "precision": hits / int(found.sum()) if found.any() else None,
                     "recall": hits / int(truth.sum()) if truth.any() else None})
    return pd.DataFrame(rows, columns=["category", "truth", "found", "hits", "precision", "recall"])


def counts(entries: pd.DataFrame, categories: Iterable[str] | None = None) -> dict:
    """Findings: ``{category: {entries, first_seen, example}}`` for the categories asked (all but ``other``
    when None), the categories with no entry left out."""
    table = summary(entries)
    if categories is not None:
        table = table[table["category"].isin(list(categories))]
    return {r["category"]: {"entries": int(r["entries"]), "first_seen": r["first_seen"], "example": r["example"]}
            for _, r in table.iterrows()}
