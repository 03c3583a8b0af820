"""Log text into entries, vectorised: one RE2 pass (Arrow ``extract_regex``) over every line with the regex of
``log_line_prefix`` (:mod:`.prefix`), lines without a prefix (tab-indented continuations, a multi-line
statement's next lines) joined to the line above them with list offsets (``binary_join``), secondary lines
(DETAIL, HINT, CONTEXT, STATEMENT, QUERY) attached to the last primary entry of the same process.
No Python loop runs per line.

Inputs: stderr text (a file, RDS's downloaded log), a CloudWatch Logs frame of RDS/Aurora's export
(``timestamp, message``; a message may hold several lines), csvlog and jsonlog files (PostgreSQL 15+'s
``jsonlog``, CloudNativePG's wrapped records, Cloud SQL's ``textPayload`` lines).

:data:`ENTRY_COLUMNS` is the frame every reader returns, one row per primary entry.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .prefix import RDS_PREFIX, SECONDARY, SEVERITIES, compile_prefix

ENTRY_COLUMNS = ["timestamp", "pid", "user", "database", "client", "application", "session", "severity",
                 "sqlstate", "message", "detail", "hint", "context", "statement", "query"]
_SECONDARY_FIELD = {"DETAIL": "detail", "HINT": "hint", "CONTEXT": "context", "STATEMENT": "statement",
                    "QUERY": "query"}
#: Time-zone abbreviations PostgreSQL writes with %t/%m (log_timezone); an unknown one makes the time NaT.
TZ_OFFSETS = {"UTC": 0, "GMT": 0, "Z": 0, "CET": 60, "CEST": 120, "EET": 120, "EEST": 180, "WET": 0, "WEST": 60,
              "BST": 60, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
              "PST": -480, "PDT": -420, "JST": 540, "KST": 540, "IST": 330, "AEST": 600, "AEDT": 660,
              "MSK": 180, "HKT": 480, "SGT": 480, "NZST": 720, "NZDT": 780, "UT": 0}
_UNKNOWN = {"[unknown]", ""}
_STR = {pa.string(): pd.StringDtype("pyarrow", na_value=np.nan)}


# ---- text lines ---------------------------------------------------------------------------------------
def _utf8(data: str | bytes) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:  # a log holds what clients sent: keep it readable, never fail on it
        data = data.decode("utf-8", errors="replace").encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    return data


def parse_text(text: str | bytes, prefix: str | None = None) -> pd.DataFrame:
    """Entries of stderr-format text written with ``log_line_prefix`` ``prefix`` (default RDS's)."""
    return parse_buffer(_utf8(text), prefix)


def parse_events(events: pd.DataFrame, prefix: str | None = None) -> pd.DataFrame:
    """Entries of a CloudWatch Logs frame (``timestamp, message``) of RDS/Aurora's PostgreSQL log (one event a
    line or a whole multi-line entry). An event's own time fills in where the prefix has none."""
    if events is None or not len(events):
        return empty()
    msgs = [m.rstrip("\r\n") for m in events["message"].astype(str).tolist()]
    data = _utf8("\n".join(msgs) + "\n")
    per_event = np.fromiter((m.count("\n") + 1 for m in msgs), dtype=np.int64, count=len(msgs))
    ts = pd.to_datetime(events["timestamp"], utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    return parse_buffer(data, prefix, np.repeat(ts, per_event))


def parse_lines(lines, prefix: str | None = None, times=None) -> pd.DataFrame:
    """Entries of a sequence of stderr-format lines (no newline inside); ``times`` one per line."""
    lines = [str(x).rstrip("\r\n") for x in lines]
    return parse_buffer(_utf8("\n".join(lines) + "\n"), prefix,
                        None if times is None else pd.to_datetime(pd.Series(list(times)), utc=True)
                        .dt.tz_localize(None).to_numpy(dtype="datetime64[us]"))


def parse_buffer(data: bytes, prefix: str | None = None, times: np.ndarray | None = None) -> pd.DataFrame:
    """Entries of UTF-8 log text, vectorised over its lines.

    The lines are views on ``data`` (no copy); the prefix regex runs on each line's first 512 characters;
    an entry's text - its message and every unheaded line below it - is one contiguous span of ``data``,
    cut out by offsets (no join, no regex over the messages)."""
    if not data:
        return empty()
    if not data.endswith(b"\n"):
        data += b"\n"
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    n = len(ends)
    buf = pa.py_buffer(data)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[:-1], offsets[-1] = starts, ends[-1]
    # each line without its newline: interleave [line, "\n"] spans and keep the lines
    inter = np.empty(2 * n, dtype=np.int64)
    inter[0::2], inter[1::2] = starts, ends
    inter = np.append(inter, len(data))
    lines = pa.LargeStringArray.from_buffers(2 * n, pa.py_buffer(inter.tobytes()), buf).take(
        pa.array(np.arange(0, 2 * n, 2)))
    st = pc.extract_regex(pc.utf8_slice_codeunits(lines, 0, 512), compile_prefix(prefix))
    sev_all = st.field("sev")
    headed = np.asarray(pc.fill_null(pc.is_in(sev_all, pa.array(list(SEVERITIES + SECONDARY))), False))
    heads = np.flatnonzero(headed)
    if not len(heads):
        return empty()
    take = pa.array(heads)
    every = len(heads) == n  # one line per entry (RDS, most logs): no take needed
    fields = {f.name: (st.field(i) if every else pc.take(st.field(i), take)) for i, f in enumerate(st.type)}
    fields = {k: (v if k in ("head", "sev") else pc.if_else(pc.equal(v, ""), pa.scalar(None, v.type), v))
              for k, v in fields.items()}
    msg_start = starts[heads] + np.asarray(pc.binary_length(fields["head"]), dtype=np.int64)
    last_line = np.append(heads[1:] - 1, n - 1)
    msg_end = ends[last_line]
    spans = np.empty(2 * len(heads) + 1, dtype=np.int64)
    spans[0:-1:2], spans[1:-1:2], spans[-1] = msg_start, msg_end, len(data)
    joined = pa.LargeStringArray.from_buffers(2 * len(heads), pa.py_buffer(spans.tobytes()), buf).take(
        pa.array(np.arange(0, 2 * len(heads), 2)))
    joined = pc.utf8_rtrim_whitespace(joined)
    sev = fields["sev"]
    ts = _timestamps(fields.get("ts"), fields.get("epoch"), times[heads] if times is not None else None, len(heads))
    pid = (np.asarray(pc.cast(fields["pid"], pa.float64()).to_numpy(zero_copy_only=False)) if "pid" in fields
           else np.full(len(heads), np.nan))
    # secondary lines go to the last primary entry of their process
    is_secondary = np.asarray(pc.is_in(sev, pa.array(list(SECONDARY))))
    idx = np.arange(len(heads), dtype=float)
    owner = pd.Series(np.where(is_secondary, np.nan, idx))
    owner = owner.groupby(np.nan_to_num(pid, nan=-1)).ffill() if "pid" in fields else owner.ffill()
    primary = np.flatnonzero(~is_secondary)
    all_primary = len(primary) == len(heads)

    def pick(arr):
        return arr if all_primary else pc.take(arr, ptake)

    ptake = pa.array(primary)
    out = {"timestamp": ts[primary], "pid": pd.array(pid[primary], dtype="Float64").astype("Int64")}
    for col, key in (("user", "user"), ("database", "db"), ("client", "client"), ("application", "app"),
                     ("session", "session"), ("sqlstate", "sqlstate")):
        out[col] = _clean(pick(fields[key])) if key in fields else None
    out["severity"] = pick(sev)
    out["message"] = pick(joined)
    sec_rows = np.flatnonzero(is_secondary)
    owners = owner.to_numpy()[sec_rows]
    ok = ~np.isnan(owners)
    sec_rows, owners = sec_rows[ok], owners[ok].astype(np.int64)
    position = np.full(len(heads), -1, dtype=np.int64)
    position[primary] = np.arange(len(primary))
    sec_sev = np.asarray(pc.take(sev, pa.array(sec_rows)).to_numpy(zero_copy_only=False), dtype=object)
    sec_text = pc.take(joined, pa.array(sec_rows))
    for level, col in _SECONDARY_FIELD.items():
        sel = np.flatnonzero(sec_sev == level)
        values = None
        if len(sel):
            dest = position[owners[sel]]
            keep = np.unique(dest, return_index=True)[1]  # the first such line of an entry
            values = _scatter(len(primary), dest[keep], pc.take(sec_text, pa.array(sel[keep])))
        out[col] = values
    return _frame(out, len(primary))


def _scatter(n: int, dest: np.ndarray, values: pa.Array) -> pa.Array:
    """An array of ``n`` nulls with ``values`` at ``dest``."""
    index = np.full(n, -1, dtype=np.int64)
    index[dest] = np.arange(len(dest))
    return pc.take(values, pa.array(index, mask=index < 0))


def _clean(arr: pa.Array) -> pa.Array:
    """Empty and ``[unknown]`` values as nulls."""
    arr = arr.cast(pa.string())
    return pc.if_else(pc.is_in(arr, pa.array(sorted(_UNKNOWN))), pa.scalar(None, pa.string()), arr)


def _timestamps(ts: pa.Array | None, epoch: pa.Array | None, fallback, n: int) -> np.ndarray:
    """UTC times (datetime64[us]) of ``%t``/``%m`` texts (their zone abbreviation or offset), ``%n`` epochs,
    else ``fallback``."""
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    if ts is not None:
        out = parse_times(ts)
    if epoch is not None:
        sec = pd.to_numeric(pd.Series(epoch.to_numpy(zero_copy_only=False)), errors="coerce").to_numpy()
        ep = (sec * 1e6).astype("int64").astype("datetime64[us]")
        out = np.where(np.isnat(out) & ~np.isnan(sec), ep, out)
    if fallback is not None:
        out = np.where(np.isnat(out), np.asarray(fallback, dtype="datetime64[us]"), out)
    return out


def parse_times(ts: pa.Array) -> np.ndarray:
    """``2020-03-11 20:40:43 CET`` / ``... .484 UTC`` / ``... +02`` texts as UTC datetime64[us]."""
    ts = ts.cast(pa.string())
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    enc = pc.dictionary_encode(ts)
    uniq = _parse_unique_times(enc.dictionary)
    index = np.asarray(enc.indices.fill_null(0) if enc.null_count else enc.indices, dtype=np.int64)
    out = uniq[index] if len(uniq) else np.full(len(ts), np.datetime64("NaT"), dtype="datetime64[us]")
    if enc.null_count:
        out[np.asarray(enc.indices.is_null())] = np.datetime64("NaT")
    return out


def _parse_unique_times(ts: pa.Array) -> np.ndarray:
    parts = pc.extract_regex(ts, r"^(?P<base>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?) ?(?P<tz>.*)$")
    base = pd.Series(parts.field("base").to_numpy(zero_copy_only=False))
    local = pd.to_datetime(base, format="ISO8601", errors="coerce", cache=True).to_numpy(dtype="datetime64[us]")
    tz = pd.Series(parts.field("tz").to_numpy(zero_copy_only=False)).fillna("UTC").replace("", "UTC")
    minutes = tz.map({z: _tz_minutes(z) for z in tz.unique()}).to_numpy(dtype=float)
    shift = np.where(np.isnan(minutes), 0, minutes).astype("int64") * 60_000_000
    out = (local.astype("int64") - shift).astype("datetime64[us]")
    out[np.isnan(minutes) | np.isnat(local)] = np.datetime64("NaT")
    return out


def _tz_minutes(zone) -> float:
    if zone is None:
        return 0.0
    zone = str(zone).strip()
    if zone.upper() in TZ_OFFSETS:
        return float(TZ_OFFSETS[zone.upper()])
    if zone[:1] in "+-" and zone[1:3].isdigit():
        rest = zone[3:].lstrip(":")
        sign = -1 if zone[0] == "-" else 1
        return sign * (int(zone[1:3]) * 60 + (int(rest[:2]) if rest[:2].isdigit() else 0))
    return float("nan")


def _frame(cols: dict, n: int) -> pd.DataFrame:
    data = {}
    for c in ENTRY_COLUMNS:
        v = cols.get(c)
        if v is None:
            data[c] = (pa.nulls(n, pa.string()).to_pandas(types_mapper=_STR.get) if c != "pid"
                       else pd.Series(pd.NA, index=range(n), dtype="Int64"))
        elif isinstance(v, (pa.Array, pa.ChunkedArray)):
            data[c] = v.cast(pa.string()).to_pandas(types_mapper=_STR.get)
        else:
            data[c] = v
    ts = np.asarray(data.pop("timestamp") if cols.get("timestamp") is not None else np.full(n, np.datetime64("NaT")),
                    dtype="datetime64[us]")
    data = {"timestamp": pd.DatetimeIndex(ts).tz_localize("UTC"), **data}
    df = pd.DataFrame(data, copy=False)
    df["pid"] = df["pid"].astype("Int64")
    return df


def empty() -> pd.DataFrame:
    return _frame({}, 0)


# ---- csvlog and jsonlog --------------------------------------------------------------------------------------
CSV_COLUMNS = ("log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
               "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id",
               "transaction_id", "error_severity", "sql_state_code", "message", "detail", "hint",
               "internal_query", "internal_query_pos", "context", "query", "query_pos", "location",
               "application_name", "backend_type", "leader_pid", "query_id")
#: csvlog column (and CloudNativePG's record keys) -> jsonlog key
_JSON_KEYS = {"log_time": "timestamp", "user_name": "user", "database_name": "dbname", "process_id": "pid",
              "connection_from": "remote_host", "session_id": "session_id", "error_severity": "error_severity",
              "sql_state_code": "state_code", "message": "message", "detail": "detail", "hint": "hint",
              "internal_query": "internal_query", "context": "context", "query": "statement",
              "application_name": "application_name"}


def parse_csvlog(data: str | bytes) -> pd.DataFrame:
    """Entries of a csvlog file (Arrow's CSV reader, quoted newlines kept)."""
    import pyarrow.csv as pacsv

    raw = data.encode() if isinstance(data, str) else data
    if not raw.strip():
        return empty()
    ncols = len(next(iter(__import__("csv").reader(io.StringIO(raw[:65536].decode("utf-8", "replace"))))))
    names = list(CSV_COLUMNS[:ncols]) + [f"extra_{i}" for i in range(max(0, ncols - len(CSV_COLUMNS)))]
    table = pacsv.read_csv(io.BytesIO(raw), read_options=pacsv.ReadOptions(column_names=names),
                           parse_options=pacsv.ParseOptions(newlines_in_values=True),
                           convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                                strings_can_be_null=True))
    return _from_columns({c: table.column(c).combine_chunks() for c in names}, "csv")


def parse_jsonlog(data: str | bytes, prefix: str | None = None) -> pd.DataFrame:
    """Entries of newline-delimited JSON logs: PostgreSQL's ``jsonlog``, CloudNativePG's (``record`` with csvlog
    keys) and Cloud SQL's (``textPayload`` stderr lines with ``timestamp``; their ``prefix``)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    rows = [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
    if not rows:
        return empty()
    if any("textPayload" in r for r in rows):
        keep = [r for r in rows if r.get("textPayload")]
        times = pd.to_datetime(pd.Series([r.get("timestamp") for r in keep]), utc=True, format="ISO8601")
        return parse_lines([r["textPayload"] for r in keep], prefix or "[%p]: [%l-1] db=%d,user=%u ", times)
    if any(isinstance(r.get("record"), dict) for r in rows):
        recs = [r["record"] for r in rows if isinstance(r.get("record"), dict)]
        cols = {c: pa.array([r.get(c) for r in recs], type=pa.string()) for c in CSV_COLUMNS}
        return _from_columns(cols, "csv")
    cols = {c: pa.array([None if r.get(k) is None else str(r.get(k)) for r in rows], type=pa.string())
            for c, k in _JSON_KEYS.items()}
    return _from_columns(cols, "csv")


def _from_columns(cols: dict, kind: str) -> pd.DataFrame:
    n = len(cols["message"])
    get = lambda c: cols.get(c) if cols.get(c) is not None else pa.nulls(n, pa.string())  # noqa: E731
    client = pc.replace_substring_regex(get("connection_from").cast(pa.string()), r":\d+$", "")
    out = {"timestamp": parse_times(get("log_time")),
           "pid": pd.to_numeric(pd.Series(get("process_id").to_numpy(zero_copy_only=False)), errors="coerce"
                                ).astype("Int64").to_numpy(),
           "user": _clean(get("user_name")), "database": _clean(get("database_name")), "client": _clean(client),
           "application": _clean(get("application_name")), "session": _clean(get("session_id")),
           "severity": get("error_severity"), "sqlstate": _clean(get("sql_state_code")), "message": get("message"),
           "detail": get("detail"), "hint": get("hint"), "context": get("context"), "statement": get("query"),
           "query": get("internal_query")}
    out = {k: (v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v) for k, v in out.items()}
    return _frame(out, n)


# ---- dispatch ------------------------------------------------------------------------------------------------
FORMATS = ("stderr", "rds", "csvlog", "jsonlog")


def detect_format(head: str) -> str:
    """``jsonlog`` (a JSON object per line), ``csvlog`` (a quoted csv record) or ``stderr``."""
    first = next((ln for ln in head.splitlines() if ln.strip()), "")
    if first.lstrip().startswith("{"):
        return "jsonlog"
    if first[:4].isdigit() and first.count(",") >= 12 and "," in first[:30]:
        return "csvlog"
    return "stderr"


def parse(data: str | bytes, fmt: str | None = None, prefix: str | None = None) -> pd.DataFrame:
    """Entries of one log file's content in ``fmt`` (detected when None)."""
    head = (data[:65536].decode("utf-8", "replace") if isinstance(data, bytes) else data[:65536])
    fmt = fmt or detect_format(head)
    if fmt not in FORMATS:
        raise ValueError(f"unknown PostgreSQL log format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "csvlog":
        return parse_csvlog(data)
    if fmt == "jsonlog":
        return parse_jsonlog(data, prefix)
    return parse_text(data, RDS_PREFIX if fmt == "rds" and prefix is None else prefix)
