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

MAX_TEXT = 2000
ERROR_LEVELS = ("ERROR", "FATAL", "PANIC", "WARNING")
_STR = {pa.string(): pd.StringDtype("pyarrow", na_value=np.nan)}


def _arrow(s: pd.Series) -> pa.Array:
    a = pa.array(s, type=pa.string(), from_pandas=True)
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _pd(a, index=None) -> pd.Series:
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    s = a.cast(pa.string()).to_pandas(types_mapper=_STR.get)
    if index is not None:
        s.index = index
    return s


def _bounded(s: pd.Series, limit: int = MAX_TEXT) -> pd.Series:
    return _pd(pc.utf8_slice_codeunits(_arrow(s), 0, limit), s.index)


def _nonempty(a: pa.Array, valid=None) -> pa.Array:
    """Arrow's extract_regex gives '' for a group that took no part (and for a row that did not match)."""
    keep = pc.not_equal(a, "")
    if valid is not None:
        keep = pc.and_(keep, valid)
    return pc.if_else(keep, a, pa.scalar(None, a.type))


def _num(a: pa.Array) -> np.ndarray:
    a = _nonempty(a)
    return np.asarray(pc.cast(a, pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=float)


#: the kinds of entry, by how the message starts (PostgreSQL's own English words), first match wins
KINDS = (("duration", ("duration: ",)), ("logged_statement", ("statement: ", "execute ")),
         ("conn_received", ("connection received: ",)), ("conn_authorized", ("connection authorized: ",)),
         ("disconnection", ("disconnection: ",)),
         ("ckpt_start", ("checkpoint starting: ", "restartpoint starting: ")),
         ("ckpt_done", ("checkpoint complete: ", "restartpoint complete: ")),
         ("ckpt_warn", ("checkpoints are occurring too frequently",)), ("temp_file", ("temporary file: ",)),
         ("autovacuum", ("automatic vacuum of table ", "automatic aggressive vacuum", "automatic analyze of table ")),
         ("lock", ("process ",)), ("deadlock", ("deadlock detected",)),
         ("cancel", ("canceling ", "terminating connection due to ")),
         ("conn_refused", ("sorry, too many clients", "remaining connection slots are reserved",
                           "too many connections for")))


def kinds(entries: pd.DataFrame) -> np.ndarray:
    """Each entry's kind (:data:`KINDS`; ``""`` for the rest), from its message's first 48 characters. The
    frame's own ``kind`` column when it has one (:func:`analyse` adds it once)."""
    if "kind" in entries:
        return entries["kind"].to_numpy(dtype=object)
    head = pc.utf8_slice_codeunits(_arrow(entries["message"]), 0, 48)
    out = np.full(len(entries), "", dtype=object)
    for kind, prefixes in reversed(KINDS):
        for p in prefixes:
            hit = np.asarray(pc.fill_null(pc.starts_with(head, p), False))
            out[hit] = kind
    return out


def _of(entries: pd.DataFrame, *wanted: str) -> pd.DataFrame:
    return entries[np.isin(kinds(entries), wanted)]


def _starts(entries: pd.DataFrame, *prefixes: str) -> np.ndarray:
    msg = _arrow(entries["message"])
    mask = np.zeros(len(entries), dtype=bool)
    for p in prefixes:
        mask |= np.asarray(pc.fill_null(pc.starts_with(msg, p), False))
    return mask


def _fields(entries: pd.DataFrame, rx: str, limit: int = 400) -> pd.DataFrame:
    """Named groups of ``rx`` (RE2) on each message's first ``limit`` characters (NaN where it fails)."""
    st = pc.extract_regex(pc.utf8_slice_codeunits(_arrow(entries["message"]), 0, limit), rx)
    valid = st.is_valid()
    return pd.DataFrame({f.name: _pd(_nonempty(st.field(i), valid), entries.index) for i, f in enumerate(st.type)},
                        index=entries.index)


def _who(entries: pd.DataFrame) -> pd.DataFrame:
    return entries[["timestamp", "pid", "user", "database", "client", "application"]]


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
