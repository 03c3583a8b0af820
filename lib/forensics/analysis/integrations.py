"""CRM sync errors (runbook 001 §3h): the application's ``crm_sync_logs`` (aggregated per minute by the
``crm_sync_logs`` capture) and ``crm_connections``, read as failures per provider, direction and
organisation, grouped by the runbook's error classes (data: ``lib/forensics/data/crm_errors.yaml``, first
match wins) with the first failure of each, and active connections that stopped syncing. Pure functions.

A column the application's table lacks is *unknown*: :func:`missing_columns` names it, and the findings
that need it say so instead of counting nulls as an answer."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pandas as pd

from .. import contracts
from ..window import iso

ERRORS_FILE = Path(__file__).resolve().parent.parent / "data" / "crm_errors.yaml"
#: the timeline's kind for a CRM error class's first failure
CRM_SYNC_FAILED = "crm-sync-failed"
OTHER = "other"
#: the columns the runbook's queries read, per table role of the ``crm_table_columns`` capture
EXPECTED_COLUMNS = {
    "sync_logs": ("provider", "direction", "org_id", "status", "error_message", "created_at"),
    "connections": ("provider", "org_id", "is_active", "last_synced_at"),
}
#: a message is shown at most this long (it is the application's text, possibly attacker-written)
MAX_MESSAGE = 200


@functools.cache
def error_classes_config(path: str | None = None) -> dict:
    """The data file, with its patterns compiled (case-insensitive)."""
    import yaml

    doc = yaml.safe_load(Path(path or ERRORS_FILE).read_text(encoding="utf-8"))
    classes = []
    for c in doc["classes"]:
        classes.append({**c, "providers": [p.lower() for p in c.get("providers") or []],
                        "regex": re.compile("|".join(f"(?:{p})" for p in c["patterns"]), re.IGNORECASE)})
    return {"failed_statuses": {s.lower() for s in doc.get("failed_statuses") or []},
            "stale_after": pd.Timedelta(minutes=float(doc.get("stale_after_minutes", 30))), "classes": classes}


def classify(message, provider=None, config: dict | None = None) -> str:
    """The error class of one failure's message (``other`` when none matches). A class bound to providers
    applies when the provider is one of them or unknown."""
    cfg = config or error_classes_config()
    text = "" if message is None or (isinstance(message, float) and pd.isna(message)) else str(message)
    prov = None if provider is None or (isinstance(provider, float) and pd.isna(provider)) else str(provider).lower()
    for c in cfg["classes"]:
        if c["providers"] and prov is not None and prov not in c["providers"]:
            continue
        if c["regex"].search(text):
            return c["id"]
    return OTHER


def missing_columns(columns: pd.DataFrame | None) -> dict[str, list[str]]:
    """Per table role, the expected columns the application's table lacks (every one when the table is
    absent: an empty ``crm_table_columns`` for that role)."""
    have: dict[str, set] = {}
    if columns is not None and len(columns):
        for role, group in columns.groupby("table_role"):
            have[str(role)] = set(group["column_name"].astype(str))
    return {role: [c for c in cols if c not in have.get(role, set())] for role, cols in EXPECTED_COLUMNS.items()}


def failures(sync_logs: pd.DataFrame, config: dict | None = None) -> pd.DataFrame:
    """The failed rows of the ``crm_sync_logs`` capture, with their ``error_class``. Failed: a status in
    the data file's ``failed_statuses``; when every status is null (the table has no status column), a
    row with an error message."""
    cfg = config or error_classes_config()
    cols = [*sync_logs.columns, "error_class"]
    if sync_logs is None or not len(sync_logs):
        return pd.DataFrame(columns=cols)
    status = sync_logs["status"]
    if status.notna().any():
        failed = status.astype("string").str.lower().isin(cfg["failed_statuses"]).fillna(False)
    else:
        failed = sync_logs["error_message"].notna()
    out = sync_logs[failed.astype(bool)].copy()
    out["error_class"] = [classify(m, p, cfg) for m, p in zip(out["error_message"], out["provider"])]
    return out.reset_index(drop=True)


def failures_by(failed: pd.DataFrame, keys=("provider", "direction", "org_id")) -> list[dict]:
    """Failures per provider, direction and organisation (an unknown column is ``null``), most first."""
    if failed is None or not len(failed):
        return []
    frame = failed.copy()
    for k in keys:
        frame[k] = frame[k].astype(object).where(frame[k].notna(), None)
    g = (frame.groupby(list(keys), dropna=False)
         .agg(failures=("syncs", "sum"), first_failure=("first_at", "min"), last_failure=("last_at", "max"))
         .reset_index().sort_values(["failures", "first_failure"], ascending=[False, True], kind="stable"))
    return [{**{k: (None if r[k] is None or (isinstance(r[k], float) and pd.isna(r[k])) else str(r[k])) for k in keys},
             "failures": int(r["failures"]), "first_failure": iso(r["first_failure"]),
             "last_failure": iso(r["last_failure"])} for _, r in g.iterrows()]


def by_class(failed: pd.DataFrame, config: dict | None = None) -> list[dict]:
    """One entry per error class with failures, earliest first failure first: the class, its label,
    cause and the runbook's fix, failures, first and last failure, the organisation and provider of the
    first failure, every organisation and provider affected, and an example message (bounded)."""
    cfg = config or error_classes_config()
    if failed is None or not len(failed):
        return []
    meta = {c["id"]: c for c in cfg["classes"]}
    out = []
    for cls, group in failed.groupby("error_class"):
        group = group.sort_values("first_at", kind="stable")
        first = group.iloc[0]
        c = meta.get(cls, {})
        out.append({
            "class": str(cls), "label": c.get("label", "unclassified failure"), "cause": c.get("cause"),
            "fix": c.get("fix"), "failures": int(group["syncs"].sum()),
            "first_failure": iso(first["first_at"]), "last_failure": iso(group["last_at"].max()),
            "first_org": _text(first["org_id"]), "first_provider": _text(first["provider"]),
            "orgs": sorted({_text(o) for o in group["org_id"] if _text(o) is not None}),
            "providers": sorted({_text(p) for p in group["provider"] if _text(p) is not None}),
            "example": (_text(first["error_message"]) or "")[:MAX_MESSAGE] or None,
        })
    return sorted(out, key=lambda r: (r["first_failure"] or "", r["class"]))


def failures_per_minute(failed: pd.DataFrame) -> pd.DataFrame:
    """Failures per minute, one column per error class (for a chart)."""
    if failed is None or not len(failed):
        return pd.DataFrame()
    frame = failed.assign(minute=pd.to_datetime(failed["minute"], utc=True))
    return frame.pivot_table(index="minute", columns="error_class", values="syncs", aggfunc="sum", fill_value=0)


def failure_share(sync_logs: pd.DataFrame, failed: pd.DataFrame) -> float | None:
    """Failed syncs over all syncs in the window (None with no syncs)."""
    total = float(sync_logs["syncs"].sum()) if sync_logs is not None and len(sync_logs) else 0.0
    return None if not total else float(failed["syncs"].sum()) / total if len(failed) else 0.0


def stale_connections(connections: pd.DataFrame, as_of: pd.Timestamp, stale_after: pd.Timedelta | None = None,
                      config: dict | None = None) -> list[dict] | None:
    """Active connections whose last sync is older than ``stale_after`` (data file default) at ``as_of``
    (the window's end), or that never synced; oldest first. None (unknown) when the table has no
    ``last_synced_at`` (every value null and no row that says it never synced is told apart)."""
    cfg = config or error_classes_config()
    stale_after = stale_after if stale_after is not None else cfg["stale_after"]
    if connections is None:
        return None
    if not len(connections):
        return []
    active = connections["is_active"].astype("string").str.lower()
    frame = connections[active.isna() | active.isin(["true", "t", "1"])].copy()
    last = pd.to_datetime(frame["last_synced_at"], utc=True, errors="coerce", format="ISO8601")
    frame["last"] = last
    cut = pd.Timestamp(as_of) - stale_after
    stale = frame[last.isna() | (last < cut)].sort_values("last", na_position="first", kind="stable")
    return [{"provider": _text(r["provider"]), "org_id": _text(r["org_id"]), "id": _text(r["id"]),
             "active": _text(r["is_active"]), "last_synced_at": iso(r["last"]) if pd.notna(r["last"]) else None,
             "hours_since_sync": (round((pd.Timestamp(as_of) - r["last"]) / pd.Timedelta(hours=1), 1)
                                  if pd.notna(r["last"]) else None)}
            for _, r in stale.iterrows()]


def change_events(classes: list[dict]) -> pd.DataFrame:
    """Each error class's first failure as a timeline event (kind :data:`CRM_SYNC_FAILED`)."""
    rows = [{"timestamp": pd.Timestamp(c["first_failure"]), "source": "crm_sync_logs",
             "resource": f"{c['first_provider'] or 'crm'} org {c['first_org'] or '?'}", "kind": CRM_SYNC_FAILED,
             "message": f"first CRM sync failure: {c['label']} ({c['failures']} in the window)"}
            for c in classes if c.get("first_failure")]
    frame = pd.DataFrame(rows, columns=list(contracts.EVENT_COLUMNS))
    if len(frame):
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    return str(value)


__all__ = ["CRM_SYNC_FAILED", "EXPECTED_COLUMNS", "by_class", "change_events", "classify", "error_classes_config",
           "failure_share", "failures", "failures_by", "failures_per_minute", "missing_columns", "stale_connections"]
