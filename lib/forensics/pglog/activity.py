"""What the server itself did, from PostgreSQL's log entries: refused sign-ins, lock waits and deadlocks,
temporary files, checkpoints, autovacuum, connections and sessions, cancellations (frames as in
:mod:`.extract`, which re-exports them)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import normalize, sqlstate  # noqa: F401
from .frames import (MAX_TEXT, ERROR_LEVELS, _STR, _arrow, _pd, _bounded, _nonempty, _num, KINDS, kinds, _of, _starts, _fields, _who)  # noqa: F401

# ---- authentication failures ----------------------------------------------------------------------------
AUTH_COLUMNS = ["timestamp", "pid", "user", "database", "client", "method", "reason", "message"]
_AUTH = (r"^(?:(?P<method>[A-Za-z0-9-]+) authentication failed for user \"(?P<who>[^\"]*)\"|"
         r"(?P<nohba>no pg_hba\.conf entry for)|(?P<reject>pg_hba\.conf rejects connection)|"
         r"(?P<norole>role \"[^\"]*\" does not exist)|(?P<nologin>role \"[^\"]*\" is not permitted to log in)|"
         r"(?P<mismatch>provided user name \([^)]*\) and authenticated user name \([^)]*\) do not match)|"
         r"(?P<nopass>password authentication failed)|(?P<cert>certificate authentication failed))")
#: method keyword of a pg_hba.conf line (the DETAIL's "Connection matched ... line N: \"host all all x md5\"")
_HBA_METHOD = (r"Connection matched (?:pg_hba\.conf|file \"[^\"]*\") line \d+: \"[^\"]*?\b(?P<m>trust|reject|"
               r"scram-sha-256|md5|password|gss|sspi|ident|peer|ldap|radius|cert|pam|bsd)\b[^\"]*\"")


def auth_failures(entries: pd.DataFrame) -> pd.DataFrame:
    """Refused sign-ins of every method: ``method`` is the one the server names (password, md5, scram-sha-256
    from the DETAIL's pg_hba.conf line; peer, ident, PAM, LDAP, RADIUS, cert, GSSAPI, SSPI, BSD from the
    message), ``reason`` what refused it (``failed``, ``no_hba_entry``, ``hba_reject``, ``no_role``,
    ``no_login``, ``user_map``)."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=AUTH_COLUMNS)
    cand = entries[entries["severity"].isin(["FATAL"]).to_numpy()]  # a refused sign-in ends the backend
    f = _fields(cand, _AUTH, 300)
    hit = f.notna().any(axis=1).to_numpy()
    if not hit.any():
        return pd.DataFrame(columns=AUTH_COLUMNS)
    ent, f = cand[hit], f[hit]
    reason = np.select([f["method"].notna().to_numpy(), f["nohba"].notna().to_numpy(), f["reject"].notna().to_numpy(),
                        f["norole"].notna().to_numpy(), f["nologin"].notna().to_numpy(),
                        f["mismatch"].notna().to_numpy()],
                       ["failed", "no_hba_entry", "hba_reject", "no_role", "no_login", "user_map"], "failed")
    method = f["method"].str.lower()
    detail = ent["detail"]
    if detail.notna().any():
        st = pc.extract_regex(pc.fill_null(_arrow(detail), ""), _HBA_METHOD)
        hba = _nonempty(st.field("m"), st.is_valid())
        from_hba = _pd(hba, ent.index)
        method = method.where(~(method.isna() | (method == "password")) | from_hba.isna(), from_hba)
    out = _who(ent).copy()
    out["method"] = method.astype("str")
    out["reason"] = reason
    out["message"] = _bounded(ent["message"], 300)
    return out.reset_index(drop=True)[AUTH_COLUMNS]


# ---- locks ------------------------------------------------------------------------------------------------
LOCK_COLUMNS = ["timestamp", "pid", "user", "database", "state", "mode", "object", "waited_ms", "holders",
                "wait_queue", "statement"]
_LOCK = (r"^process (?P<p>\d+) (?P<state>still waiting|acquired|avoided deadlock|detected deadlock while waiting)"
         r"(?: for| by rearranging queue order)? ?(?P<mode>\w+)? ?(?:on )?(?P<object>.*?) "
         r"after (?P<ms>\d+(?:\.\d+)?) ms")


def lock_waits(entries: pd.DataFrame) -> pd.DataFrame:
    """log_lock_waits reports: ``state`` still waiting / acquired / detected deadlock, the lock's mode and
    object, how long (ms), the holders and wait queue (DETAIL) and the waiting statement."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=LOCK_COLUMNS)
    cand = _of(entries, "lock")
    f = _fields(cand, _LOCK, 400)
    hit = f["state"].notna().to_numpy()
    ent, f = cand[hit], f[hit]
    out = ent[["timestamp", "pid", "user", "database"]].copy()
    out["state"] = f["state"].str.replace(" ", "_").str.replace("still_waiting", "waiting")
    out["mode"], out["object"] = f["mode"], _bounded(f["object"], 200)
    out["waited_ms"] = pd.to_numeric(f["ms"]).astype(float)
    det = pc.fill_null(_arrow(ent["detail"]), "")
    d = pc.extract_regex(det, r"Process(?:es)? holding the lock: (?P<h>[\d, ]+)\.(?: Wait queue: (?P<q>[\d, ]+)\.)?")
    out["holders"] = _pd(_nonempty(d.field("h"), d.is_valid()), ent.index)
    out["wait_queue"] = _pd(_nonempty(d.field("q"), d.is_valid()), ent.index)
    out["statement"] = _bounded(ent["statement"])
    return out.reset_index(drop=True)[LOCK_COLUMNS]


def lock_summary(waits: pd.DataFrame) -> pd.DataFrame:
    """Per lock mode and state: count, total and max wait, first time."""
    if waits is None or not len(waits):
        return pd.DataFrame(columns=["mode", "state", "count", "total_ms", "max_ms", "first_seen"])
    g = waits.groupby(["mode", "state"], dropna=False)
    return (pd.DataFrame({"count": g.size(), "total_ms": g["waited_ms"].sum(), "max_ms": g["waited_ms"].max(),
                          "first_seen": g["timestamp"].min()}).reset_index().sort_values("count", ascending=False)
            .reset_index(drop=True))


DEADLOCK_COLUMNS = ["timestamp", "pid", "user", "database", "processes", "statement_1", "statement_2", "statement",
                    "detail"]


def deadlocks(entries: pd.DataFrame) -> pd.DataFrame:
    """``deadlock detected``: the processes, both statements (the DETAIL's ``Process N: ...`` parts, whole
    with log_error_verbosity default) and the statement of the victim."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=DEADLOCK_COLUMNS)
    ent = _of(entries, "deadlock")
    ent = ent[ent["severity"].isin(["ERROR", "FATAL"]).to_numpy()]
    rows = []
    for _, r in ent.iterrows():  # a handful per incident: the DETAIL's structure is easier read per entry
        detail = str(r["detail"]) if pd.notna(r["detail"]) else ""
        parts = re.split(r"(?m)^\s*Process (\d+): ", detail)
        stmts = {parts[i]: " ".join(parts[i + 1].split())[:MAX_TEXT] for i in range(1, len(parts) - 1, 2)}
        procs = re.findall(r"Process (\d+) waits for", detail)
        rows.append({"timestamp": r["timestamp"], "pid": r["pid"], "user": r["user"], "database": r["database"],
                     "processes": ", ".join(dict.fromkeys(procs)),
                     "statement_1": next(iter(stmts.values()), None),
                     "statement_2": list(stmts.values())[1] if len(stmts) > 1 else None,
                     "statement": str(r["statement"])[:MAX_TEXT] if pd.notna(r["statement"]) else None,
                     "detail": detail[:MAX_TEXT] or None})
    return pd.DataFrame(rows, columns=DEADLOCK_COLUMNS)


# ---- temporary files ---------------------------------------------------------------------------------------
TEMP_COLUMNS = ["timestamp", "pid", "user", "database", "size_bytes", "path", "query", "fingerprint"]


def temp_files(entries: pd.DataFrame) -> pd.DataFrame:
    """``temporary file: path "...", size N`` (log_temp_files) with the statement that wrote it."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=TEMP_COLUMNS)
    cand = _of(entries, "temp_file")
    f = _fields(cand, r"^temporary file: path \"(?P<path>[^\"]*)\", size (?P<size>\d+)")
    ok = f["size"].notna().to_numpy()
    ent, f = cand[ok], f[ok]
    out = ent[["timestamp", "pid", "user", "database"]].copy()
    out["size_bytes"] = pd.to_numeric(f["size"]).astype("int64")
    out["path"] = _bounded(f["path"], 300)
    norm = normalize.normalise(_arrow(ent["statement"]))
    out["query"] = _bounded(pd.Series(norm["query"].to_numpy(), index=ent.index, dtype="str"))
    out["fingerprint"] = norm["fingerprint"].to_numpy()
    return out.reset_index(drop=True)[TEMP_COLUMNS]


# ---- checkpoints ----------------------------------------------------------------------------------------------
CHECKPOINT_COLUMNS = ["timestamp", "event", "kind", "reason", "buffers", "wal_added", "wal_removed", "wal_recycled",
                      "write_s", "sync_s", "total_s", "distance_kb", "estimate_kb", "apart_s"]
_CKPT_DONE = (r"^(?P<kind>checkpoint|restartpoint) complete: wrote (?P<buffers>\d+) buffers \([^)]*\)[^;]*(?:; "
              r"(?P<added>\d+) (?:WAL|transaction log) file\(s\) added, (?P<removed>\d+) removed, "
              r"(?P<recycled>\d+) recycled)?[;,]? ?write=(?P<write>[\d.]+) s, sync=(?P<sync>[\d.]+) s, "
              r"total=(?P<total>[\d.]+) s(?:.*?distance=(?P<distance>\d+) kB, estimate=(?P<estimate>\d+) kB)?")


def checkpoints(entries: pd.DataFrame) -> pd.DataFrame:
    """Checkpoints and restartpoints completed (buffers written, WAL files, write/sync/total seconds, distance;
    ``reason`` from the ``starting:`` line before), and ``checkpoints are occurring too frequently`` warnings
    (``event`` too_frequent, ``apart_s``)."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=CHECKPOINT_COLUMNS)
    start = _of(entries, "ckpt_start")
    done = _of(entries, "ckpt_done")
    warn = _of(entries, "ckpt_warn")
    f = _fields(done, _CKPT_DONE, 600)
    out = pd.DataFrame({"timestamp": done["timestamp"], "event": "complete", "kind": f["kind"]})
    for col, key in (("buffers", "buffers"), ("wal_added", "added"), ("wal_removed", "removed"),
                     ("wal_recycled", "recycled"), ("write_s", "write"), ("sync_s", "sync"), ("total_s", "total"),
                     ("distance_kb", "distance"), ("estimate_kb", "estimate")):
        out[col] = pd.to_numeric(f[key]).astype(float)
    if len(start):
        reasons = _fields(start, r"^(?:checkpoint|restartpoint) starting: (?P<r>[^\n]*)")["r"]
        s = pd.DataFrame({"timestamp": start["timestamp"], "reason": reasons}).sort_values("timestamp")
        out = pd.merge_asof(out.sort_values("timestamp"), s, on="timestamp", direction="backward")
    else:
        out["reason"] = pd.NA
    w = _fields(warn, r"\((?P<apart>\d+) seconds? apart\)")
    warns = pd.DataFrame({"timestamp": warn["timestamp"], "event": "too_frequent",
                          "apart_s": pd.to_numeric(w["apart"]).astype(float)})
    both = pd.concat([x for x in (out, warns) if len(x)]) if len(out) or len(warns) else out
    return both.sort_values("timestamp", kind="stable").reset_index(drop=True).reindex(columns=CHECKPOINT_COLUMNS)


# ---- autovacuum ---------------------------------------------------------------------------------------------------
VACUUM_COLUMNS = ["timestamp", "kind", "table", "elapsed_s", "tuples_removed", "pages_removed", "message"]


def autovacuum(entries: pd.DataFrame) -> pd.DataFrame:
    """``automatic vacuum|analyze of table "db.schema.table"`` runs (log_autovacuum_min_duration) with their
    elapsed time and what vacuum removed."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=VACUUM_COLUMNS)
    ent = _of(entries, "autovacuum")
    f = _fields(ent, r"^automatic (?:aggressive )?(?P<kind>vacuum|analyze)(?: to prevent wraparound)? of table "
                     r"\"(?P<table>[^\"]*)\"")
    msg = _arrow(ent["message"])
    el = pc.extract_regex(msg, r"elapsed: (?P<e>[\d.]+) s")
    tup = pc.extract_regex(msg, r"tuples: (?P<t>\d+) removed")
    pag = pc.extract_regex(msg, r"pages: (?P<p>\d+) removed")
    out = pd.DataFrame({"timestamp": ent["timestamp"], "kind": f["kind"], "table": _bounded(f["table"], 300)})
    out["elapsed_s"] = _num(_nonempty(el.field("e"), el.is_valid()))
    out["tuples_removed"] = _num(_nonempty(tup.field("t"), tup.is_valid()))
    out["pages_removed"] = _num(_nonempty(pag.field("p"), pag.is_valid()))
    out["message"] = _bounded(ent["message"], 600)
    return out.reset_index(drop=True)[VACUUM_COLUMNS]


# ---- connections and sessions ------------------------------------------------------------------------------------
def connections_per_minute(entries: pd.DataFrame, freq: str = "1min", auth: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per minute: connections received, authorized, disconnections, refused (FATAL at sign-in)."""
    cols = ["minute", "received", "authorized", "disconnections", "refused"]
    if entries is None or not len(entries):
        return pd.DataFrame(columns=cols)
    kind = kinds(entries)
    wanted = {"received": kind == "conn_received", "authorized": kind == "conn_authorized",
              "disconnections": kind == "disconnection"}
    auth = auth_failures(entries) if auth is None else auth
    fatal_conn = (kind == "conn_refused") & (entries["severity"] == "FATAL").to_numpy()
    frames = [pd.DataFrame({"timestamp": entries["timestamp"][m], "kind": k}) for k, m in wanted.items()]
    frames.append(pd.DataFrame({"timestamp": pd.concat([entries["timestamp"][fatal_conn], auth["timestamp"]]),
                                "kind": "refused"}))
    ev = pd.concat(frames)
    # an empty part (no sign-in failure) has no dtype of its own: concatenated, the times would be objects
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    ev = ev[ev["timestamp"].notna()]
    if not len(ev):
        return pd.DataFrame(columns=cols)
    wide = ev.groupby([pd.Grouper(key="timestamp", freq=freq), "kind"]).size().unstack("kind", fill_value=0)
    wide = wide.reindex(columns=cols[1:], fill_value=0).asfreq(freq, fill_value=0)
    return wide.rename_axis("minute").reset_index()[cols]


SESSION_COLUMNS = ["timestamp", "pid", "user", "database", "client", "session_s"]


def sessions(entries: pd.DataFrame) -> pd.DataFrame:
    """``disconnection: session time: H:MM:SS.fff user=... database=... host=...`` (log_disconnections):
    the session's end and length in seconds."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=SESSION_COLUMNS)
    ent = _of(entries, "disconnection")
    f = _fields(ent, r"^disconnection: session time: (?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+) user=(?P<u>\S*) "
                     r"database=(?P<d>\S*) host=(?P<host>\S*)")
    out = ent[["timestamp", "pid"]].copy()
    out["user"] = ent["user"].fillna(f["u"])
    out["database"] = ent["database"].fillna(f["d"])
    out["client"] = ent["client"].fillna(f["host"])
    out["session_s"] = (pd.to_numeric(f["h"]) * 3600 + pd.to_numeric(f["m"]) * 60 + pd.to_numeric(f["s"])).astype(float)
    return out.reset_index(drop=True)[SESSION_COLUMNS]


# ---- cancellations -------------------------------------------------------------------------------------------------
CANCEL_COLUMNS = ["timestamp", "pid", "user", "database", "severity", "reason", "statement"]
_CANCEL = (r"^(?:canceling statement due to (?P<a>user request|statement timeout|lock timeout|conflict with recovery)"
           r"|terminating connection due to (?P<b>administrator command|idle-in-transaction timeout|idle-session "
           r"timeout|transaction timeout|conflict with recovery)|canceling (?P<c>autovacuum) task)")


def cancellations(entries: pd.DataFrame) -> pd.DataFrame:
    """Statements cancelled or sessions terminated: user request (pg_cancel_backend, a client's cancel),
    statement/lock/idle timeouts, administrator command (pg_terminate_backend), recovery conflicts, autovacuum
    cancelled by a lock request; with the statement."""
    if entries is None or not len(entries):
        return pd.DataFrame(columns=CANCEL_COLUMNS)
    cand = _of(entries, "cancel")
    f = _fields(cand, _CANCEL)
    reason = f["a"].fillna(f["b"]).fillna(f["c"])
    ok = reason.notna().to_numpy()
    out = cand[["timestamp", "pid", "user", "database", "severity"]][ok].copy()
    out["reason"] = reason[ok].str.replace(" ", "_").str.replace("-", "_")
    out["statement"] = _bounded(cand["statement"][ok])
    return out.reset_index(drop=True)[CANCEL_COLUMNS]
