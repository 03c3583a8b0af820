"""What an incident needs from PostgreSQL's log entries (:mod:`.reader` frames), as frames: the ones pgbadger
reports, each with its first and last time.

Every function takes the entries and returns one frame (empty with its columns when the log holds none);
texts taken from the log are bounded (:data:`MAX_TEXT`) - they may be attacker-written. The work is
vectorised: Arrow string kernels (RE2) over the entries, pandas group-bys; Python runs per distinct
statement shape only (:mod:`.normalize`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import normalize, sqlstate

from .frames import (MAX_TEXT, ERROR_LEVELS, _STR, _arrow, _pd, _bounded, _nonempty, _num, KINDS, kinds, _of, _starts, _fields, _who)  # noqa: F401
from .activity import (AUTH_COLUMNS, _AUTH, _HBA_METHOD, auth_failures, LOCK_COLUMNS, _LOCK, lock_waits, lock_summary, DEADLOCK_COLUMNS, deadlocks, TEMP_COLUMNS, temp_files, CHECKPOINT_COLUMNS, _CKPT_DONE, checkpoints, VACUUM_COLUMNS, autovacuum, connections_per_minute, SESSION_COLUMNS, sessions, CANCEL_COLUMNS, _CANCEL, cancellations)  # noqa: F401

# ---- statements -------------------------------------------------------------------------------------------
_DURATION = (r"^(?P<head>duration: (?P<ms>\d+(?:\.\d+)?) ms(?:  (?P<verb>statement|execute|parse|bind|plan|"
             r"fastpath function call)(?: [^:\n]*)?: ?)?)")
_LOGGED = r"^(?P<head>(?:statement|execute(?: [^:\n]*)?): )"
STATEMENT_EVENT_COLUMNS = ["timestamp", "pid", "user", "database", "client", "application", "duration_ms", "via",
                           "query", "fingerprint"]


def statement_events(entries: pd.DataFrame) -> pd.DataFrame:
    """One row per statement the log timed: ``duration: ... statement|execute`` (log_min_duration_statement),
    a bare ``duration:`` (log_duration) paired with its process's last ``statement:`` line (log_statement),
    and auto_explain's ``duration: ... plan:`` (its ``Query Text``). Parse and bind steps are left out, as
    pgbadger does. ``query`` is normalised (``$1``), ``fingerprint`` joins it with pg_stat_statements."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=STATEMENT_EVENT_COLUMNS)
    dur = _of(entries, "duration")
    if not len(dur):
        return pd.DataFrame(columns=STATEMENT_EVENT_COLUMNS)
    msg = _arrow(dur["message"])
    st = pc.extract_regex(pc.utf8_slice_codeunits(msg, 0, 200), _DURATION)
    valid = np.asarray(st.is_valid())
    verb = np.asarray(_nonempty(st.field("verb"), st.is_valid()).to_numpy(zero_copy_only=False), dtype=object)
    ms = _num(st.field("ms"))
    head = np.asarray(pc.binary_length(st.field("head")), dtype=np.int64)
    rows, texts, skips, vias = [], [], [], []
    inline = np.isin(verb, ["statement", "execute", "fastpath function call"])
    if inline.any():
        rows.append(np.flatnonzero(inline))
        texts.append(pc.filter(msg, pa.array(inline)))
        skips.append(head[inline])
        vias.append(np.full(int(inline.sum()), "log_min_duration_statement", dtype=object))
    plan = verb == "plan"
    if plan.any():  # auto_explain: the plan's Query Text (text or JSON format)
        qt = pc.extract_regex(pc.filter(msg, pa.array(plan)),
                              r"(?:Query Text: (?P<a>[^\n]*)|\"Query Text\": \"(?P<b>(?:[^\"\\\\]|\\\\.)*)\")")
        a = _nonempty(qt.field("a"), qt.is_valid())
        rows.append(np.flatnonzero(plan))
        texts.append(pc.coalesce(a, _nonempty(qt.field("b"), qt.is_valid())))
        skips.append(np.zeros(int(plan.sum()), dtype=np.int64))
        vias.append(np.full(int(plan.sum()), "auto_explain", dtype=object))
    bare = valid & pd.isna(verb)
    if bare.any():  # log_duration: the statement is on its process's last 'statement:' line (log_statement)
        logged = _of(entries, "logged_statement")
        if len(logged):
            lmsg = _arrow(logged["message"])
            lst = pc.extract_regex(pc.utf8_slice_codeunits(lmsg, 0, 200), _LOGGED)
            pos = pd.Series(np.arange(len(logged), dtype=float), index=logged.index)
            both = pd.concat([pd.DataFrame({"pid": logged["pid"], "p": pos}),
                              pd.DataFrame({"pid": dur["pid"][bare], "p": np.nan, "d": True})])
            both = both.sort_index(kind="stable")
            both["p"] = both.groupby(both["pid"].fillna(-1))["p"].ffill()
            src = both.loc[both["d"].fillna(False).astype(bool), "p"].reindex(dur.index[bare]).to_numpy()
            ok = ~np.isnan(src)
            if ok.any():
                take = pa.array(src[ok].astype(np.int64))
                rows.append(np.flatnonzero(bare)[ok])
                texts.append(pc.take(lmsg, take))
                skips.append(np.asarray(pc.binary_length(pc.take(lst.field("head"), take)), dtype=np.int64))
                vias.append(np.full(int(ok.sum()), "log_duration", dtype=object))
    if not rows:
        return pd.DataFrame(columns=STATEMENT_EVENT_COLUMNS)
    row = np.concatenate(rows)
    norm = normalize.normalise(pa.concat_arrays([t.cast(pa.large_string()) for t in texts]), np.concatenate(skips))
    order = np.argsort(row, kind="stable")
    row = row[order]
    picked = dur.iloc[row]
    out = pd.DataFrame({"timestamp": picked["timestamp"].array, "pid": picked["pid"].array,
                        "user": picked["user"].array, "database": picked["database"].array,
                        "client": picked["client"].array, "application": picked["application"].array,
                        "duration_ms": ms[row], "via": pd.array(np.concatenate(vias)[order], dtype="str"),
                        "query": norm["query"].array.take(order), "fingerprint": norm["fingerprint"].array.take(order)})
    out["query"] = _bounded(out["query"])
    return out[STATEMENT_EVENT_COLUMNS]


STATEMENT_COLUMNS = ["fingerprint", "query", "calls", "total_ms", "mean_ms", "max_ms", "first_seen", "last_seen",
                     "users", "databases", "applications", "via"]


def statements(events: pd.DataFrame) -> pd.DataFrame:
    """Per fingerprint: calls, total, mean and max time (ms), first and last time, who ran it; most total time
    first. ``query`` is the first normalised text seen."""
    if events is None or not len(events):
        return pd.DataFrame(columns=STATEMENT_COLUMNS)
    g = events.groupby("fingerprint", sort=False)
    out = pd.DataFrame({
        "query": g["query"].first(), "calls": g.size(), "total_ms": g["duration_ms"].sum(),
        "mean_ms": g["duration_ms"].mean(), "max_ms": g["duration_ms"].max(),
        "first_seen": g["timestamp"].min(), "last_seen": g["timestamp"].max(),
        "users": _few_by(events, "fingerprint", "user"), "databases": _few_by(events, "fingerprint", "database"),
        "applications": _few_by(events, "fingerprint", "application"),
        "via": _few_by(events, "fingerprint", "via")}).reindex(g.size().index).rename_axis("fingerprint").reset_index()
    out = out.sort_values(["total_ms", "calls"], ascending=False, kind="stable")
    return out.reset_index(drop=True)[STATEMENT_COLUMNS]


def _few_by(frame: pd.DataFrame, key: str, column: str, n: int = 5) -> pd.Series:
    """Per ``key``: the ``n`` most frequent non-empty values of ``column``, comma-separated (more: ``+k``).
    Counted on integer codes (factorize), Python only per group of the result."""
    kc, keys = pd.factorize(frame[key])
    vc, values = pd.factorize(frame[column])
    ok = (kc >= 0) & (vc >= 0)
    if not ok.any():
        return pd.Series(dtype="str", index=pd.Index([], name=key))
    pair = kc[ok].astype(np.int64) * (len(values) + 1) + vc[ok]
    uniq, counts = np.unique(pair, return_counts=True)
    k, v = uniq // (len(values) + 1), uniq % (len(values) + 1)
    order = np.lexsort((-counts, k))
    k, v = k[order], v[order]
    rank = np.arange(len(k)) - np.searchsorted(k, k)
    shown = pd.DataFrame({"k": k[rank < n], "v": [str(x)[:64] for x in np.asarray(values)[v[rank < n]]]})
    text = shown.groupby("k", sort=False)["v"].agg(", ".join)
    total = pd.Series(k).value_counts()
    more = total.reindex(text.index) - n
    text = text.where(more <= 0, text + " +" + more.astype(str))
    text.index = pd.Index(np.asarray(keys)[text.index.to_numpy()], name=key)
    return text.astype("str")


def _few(values: pd.Series, n: int = 5) -> str:
    """The ``n`` most frequent non-empty values, comma-separated (more: ``+k``)."""
    counts = values.dropna().value_counts()
    shown = ", ".join(str(v)[:64] for v in counts.index[:n])
    return shown + (f" +{len(counts) - n}" if len(counts) > n else "")


def per_minute(events: pd.DataFrame, value: str | None = None, freq: str = "1min") -> pd.Series:
    """Events (or the sum of ``value``) per ``freq``."""
    if events is None or not len(events):
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    s = events.set_index("timestamp")
    return (s[value].resample(freq).sum() if value else s.iloc[:, 0].resample(freq).size()).astype(float)



# ---- errors ----------------------------------------------------------------------------------------------
ERROR_COLUMNS = ["severity", "sqlstate", "sqlstate_class", "inferred", "signature", "count", "first_seen",
                 "last_seen", "users", "databases", "example", "statement"]


def error_events(entries: pd.DataFrame) -> pd.DataFrame:
    """Entries of severity ERROR, FATAL, PANIC or WARNING with their SQLSTATE (the log's, else inferred from
    the message: ``inferred``) and signature (quoted names, numbers and literals masked)."""
    cols = ["timestamp", "pid", "user", "database", "client", "application", "severity", "sqlstate", "inferred",
            "sqlstate_class", "signature", "message", "statement"]
    if entries is None or not len(entries):
        return pd.DataFrame(columns=cols)
    err = entries[entries["severity"].isin(ERROR_LEVELS).to_numpy()]
    out = _who(err).copy()
    out["severity"] = err["severity"]
    first_line = pc.utf8_slice_codeunits(pc.replace_substring_regex(_arrow(err["message"]), r"\n[\s\S]*", "",
                                                                    max_replacements=1), 0, 400)
    code = err["sqlstate"].copy()
    missing = code.isna() | (code == "00000")
    inferred = pd.Series(pd.NA, index=err.index, dtype="str")
    if missing.any():
        sub = pc.filter(first_line, pa.array(missing.to_numpy()))
        guess = pa.nulls(len(sub), pa.string())
        for rx, c in reversed(sqlstate.INFERRED):
            hit = pc.fill_null(pc.match_substring_regex(sub, rx), False)
            guess = pc.if_else(hit, pa.scalar(c), guess)
        inferred[missing.to_numpy()] = _pd(guess).to_numpy()
    out["sqlstate"] = code.where(~missing, inferred)
    out["inferred"] = missing & inferred.notna()
    out["sqlstate_class"] = out["sqlstate"].map(sqlstate.class_of, na_action="ignore").astype("str")
    out["signature"] = _pd(signature(first_line), err.index)
    out["message"] = _bounded(err["message"])
    out["statement"] = _bounded(err["statement"])
    return out.reset_index(drop=True)[cols]


def signature(messages: pa.Array) -> pa.Array:
    """Messages with what varies masked: quoted names ``"..."``, literals ``'...'``, numbers ``...``."""
    m = pc.replace_substring_regex(messages, r'"[^"]*"', '"..."')
    m = pc.replace_substring_regex(m, r"'[^']*'", "'...'")
    return pc.replace_substring_regex(m, r"\b\d+(?:\.\d+)?\b", "...")


def errors(events: pd.DataFrame) -> pd.DataFrame:
    """Per severity, SQLSTATE and signature: count, first and last time, who, an example and its statement;
    most frequent first."""
    if events is None or not len(events):
        return pd.DataFrame(columns=ERROR_COLUMNS)
    keys = ["severity", "sqlstate", "sqlstate_class", "inferred", "signature"]
    ev = events.assign(sqlstate=events["sqlstate"].fillna(""), sqlstate_class=events["sqlstate_class"].fillna(""))
    g = ev.groupby(keys, sort=False, dropna=False)
    keyed = ev.assign(_k=g.ngroup())
    out = pd.DataFrame({"count": g.size(), "first_seen": g["timestamp"].min(), "last_seen": g["timestamp"].max(),
                        "users": _few_by(keyed, "_k", "user").reindex(range(g.ngroups)).to_numpy(),
                        "databases": _few_by(keyed, "_k", "database").reindex(range(g.ngroups)).to_numpy(),
                        "example": g["message"].first(), "statement": g["statement"].first()}).reset_index()
    for c in ("sqlstate", "sqlstate_class"):
        out[c] = out[c].replace("", pd.NA)
    return out.sort_values(["count", "first_seen"], ascending=[False, True]).reset_index(drop=True)[ERROR_COLUMNS]


def by_class(events: pd.DataFrame) -> pd.DataFrame:
    """Errors per SQLSTATE class and severity (unknown class: ``unknown``)."""
    if events is None or not len(events):
        return pd.DataFrame(columns=["sqlstate_class", "severity", "count", "first_seen"])
    ev = events.assign(sqlstate_class=events["sqlstate_class"].fillna("unknown"))
    g = ev.groupby(["sqlstate_class", "severity"])
    return (pd.DataFrame({"count": g.size(), "first_seen": g["timestamp"].min()}).reset_index()
            .sort_values("count", ascending=False).reset_index(drop=True))


# ---- all of it ------------------------------------------------------------------------------------------------------
def summary_counts(entries: pd.DataFrame, frames: dict | None = None) -> dict:
    """The counts pgbadger also reports (the comparison's keys), from :func:`analyse`'s frames."""
    fr = frames or analyse(entries)
    st, ck = fr["statement_events"], fr["checkpoints"]
    done = ck[ck["event"] == "complete"] if len(ck) else ck
    lv = entries["severity"].value_counts() if len(entries) else pd.Series(dtype=int)
    conn = fr["connections_per_minute"]
    return {
        "entries": int(len(entries)),
        "queries": int(len(st)), "queries_total_ms": float(st["duration_ms"].sum()) if len(st) else 0.0,
        "errors_ERROR": int(lv.get("ERROR", 0)), "errors_FATAL": int(lv.get("FATAL", 0)),
        "errors_PANIC": int(lv.get("PANIC", 0)), "errors_WARNING": int(lv.get("WARNING", 0)),
        "connections": int(conn["authorized"].sum()) if len(conn) else 0,
        "sessions": int(len(fr["sessions"])),
        "session_total_s": float(fr["sessions"]["session_s"].sum()) if len(fr["sessions"]) else 0.0,
        "checkpoints": int(len(done)), "checkpoint_write_s": float(done["write_s"].sum()) if len(done) else 0.0,
        "checkpoint_warnings": int((ck["event"] == "too_frequent").sum()) if len(ck) else 0,
        "temp_files": int(len(fr["temp_files"])),
        "temp_bytes": int(fr["temp_files"]["size_bytes"].sum()) if len(fr["temp_files"]) else 0,
        "lock_waits_acquired": int((fr["lock_waits"]["state"] == "acquired").sum()) if len(fr["lock_waits"]) else 0,
        "lock_waits_waiting": int((fr["lock_waits"]["state"] == "waiting").sum()) if len(fr["lock_waits"]) else 0,
        "deadlocks": int(len(fr["deadlocks"])),
        "autovacuum": int((fr["autovacuum"]["kind"] == "vacuum").sum()) if len(fr["autovacuum"]) else 0,
        "autoanalyze": int((fr["autovacuum"]["kind"] == "analyze").sum()) if len(fr["autovacuum"]) else 0,
        "auth_failures": int(len(fr["auth_failures"])),
        "cancellations": int(len(fr["cancellations"])),
    }


def analyse(entries: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every frame of this module from one read of the log."""
    if "kind" not in entries:
        entries = entries.assign(kind=kinds(entries))
    ev = statement_events(entries)
    errs = error_events(entries)
    auth = auth_failures(entries)
    return {"statement_events": ev, "statements": statements(ev), "error_events": errs, "errors": errors(errs),
            "auth_failures": auth, "lock_waits": lock_waits(entries),
            "deadlocks": deadlocks(entries), "temp_files": temp_files(entries), "checkpoints": checkpoints(entries),
            "autovacuum": autovacuum(entries), "connections_per_minute": connections_per_minute(entries, auth=auth),
            "sessions": sessions(entries), "cancellations": cancellations(entries)}
