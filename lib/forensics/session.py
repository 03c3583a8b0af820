"""What a notebook holds: the incident, its window and environment, and where evidence goes.

    inc = forensics.open_incident(incident_file, record_dir=record_dir, replay_from=replay_from,
                                  notebook="api-errors")
    alb = pull.alb_metrics(inc)          # = inc.pull("alb_metrics"): declared in forensics.registry,
                                         # captured once, served to every notebook of the record
    inc.finding("onset", onset, needs=["alb_metrics"])
    inc.figure(fig, "error-rate")
    inc.sources()                        # which sources answered, which failed and why

Interactively (JupyterLab) ``record_dir`` is None: nothing is written, captures stay in memory.
Under ``forensics run`` the runner passes the record folder.

The session owns its read-only PostgreSQL connection: opened on first use (:meth:`IncidentSession.pg`),
closed by :meth:`IncidentSession.close` (``with`` closes it, a failed run included; a notebook's
session is closed when its kernel exits).
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import contracts, defaults
from .capture import CaptureMeta, CaptureStore, json_safe
from .params import PARAMS_DIR, Incident, load_incident, load_resolved

CONTEXT = defaults.CONTEXT
#: What `forensics sandbox up` writes, and so the default in JupyterLab.
DEFAULT_INCIDENT = PARAMS_DIR / "incidents" / "sandbox.yaml"


def resolve_incident_file(incident_file: str | os.PathLike | None) -> Path:
    if incident_file:
        return Path(incident_file)
    env = os.environ.get("FORENSICS_INCIDENT")
    return Path(env) if env else DEFAULT_INCIDENT


class _Connection:
    """The session's PostgreSQL connection, apart from the session so a finalizer can close it."""

    def __init__(self):
        self.conn = None
        self.lock = threading.Lock()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection is not news
                pass


class IncidentSession:
    def __init__(self, incident: Incident, store: CaptureStore, notebook: str):
        self.incident = incident
        self.store = store
        self.notebook = notebook
        self.captures: dict[str, CaptureMeta] = {}
        self.findings: dict[str, Any] = {}
        self.unknown: list[str] = []
        self._db = _Connection()
        self._closer = weakref.finalize(self, _Connection.close, self._db)

    # -- lifetime ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the database connection (if one was opened). The session stays readable."""
        self._closer()

    def __enter__(self) -> IncidentSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def pg(self):
        """The session's read-only PostgreSQL connection, opened on first use."""
        from .sources import postgres

        with self._db.lock:
            if self._db.conn is None or self._db.conn.closed:
                pg = self.env.get("postgres")
                if not pg:
                    raise LookupError("the environment has no postgres section")
                self._db.conn = postgres.connect(pg)
            return self._db.conn

    def pg_target(self) -> str:
        """Where the connection goes, as the manifest may say it (never a DSN: it can hold a password)."""
        pg = self.env.get("postgres") or {}
        if pg.get("dsn_env"):
            return f"${pg['dsn_env']}"
        return "dsn in environment" if pg.get("dsn") else "libpq defaults (PG*/PGSERVICE)"

    # -- what the notebook reads ------------------------------------------------------------------
    @property
    def window(self):
        return self.incident.window

    @property
    def context_window(self):
        """The window with :data:`CONTEXT` before it: metrics and logs are pulled over this so the
        baseline before the incident is visible (and the shaded incident window stands out)."""
        return self.incident.window.padded(before=CONTEXT)

    @property
    def baseline_window(self):
        """The ``cloudtrail.baseline_hours`` before the window: what "known" principals, addresses and
        clients means (CloudTrail and ALB access logs)."""
        from .window import IncidentWindow

        hours = int((self.env.get("cloudtrail") or {}).get("baseline_hours") or defaults.CLOUDTRAIL_BASELINE_HOURS)
        return IncidentWindow(self.window.start - pd.Timedelta(hours=hours), self.window.start)

    @property
    def env(self) -> dict:
        return self.incident.environment

    @property
    def aws(self) -> dict:
        return self.env.get("aws", {})

    @property
    def record_dir(self) -> Path | None:
        return self.store.record_dir

    @property
    def replaying(self) -> bool:
        return self.store.replay_from is not None

    # -- captures ---------------------------------------------------------------------------------
    def pull(self, name: str, **params) -> pd.DataFrame:
        """The capture ``name`` declared in :mod:`forensics.registry`: from this record if already pulled
        (by the runner's plan or another notebook), else from the replayed record, else pulled now.
        ``params`` override the capture's declared defaults (e.g. ``wait_s``). A capture whose
        environment sections are absent fails with a one-line reason; its findings become unknown."""
        from . import registry

        cap = registry.get(name)
        unknown = sorted(set(params) - set(cap.params))
        if unknown:
            raise TypeError(f"capture {name!r} takes no parameter {unknown[0]!r} "
                            f"(it takes: {', '.join(cap.params) or 'none'})")
        missing = cap.missing_sections(self.env)

        def fetch():
            if missing:
                raise LookupError(f"the environment has no {missing[0]} section")
            return cap.pull(self, **params)

        def args():
            return {"needs": f"section {missing[0]}"} if missing else cap.describe(self, **params)

        return self.capture(name, fetch, source=cap.source, call=cap.api, args=args,
                            columns=list(cap.columns or ()), volatile=cap.volatile, query=cap.query)

    def capture(self, name: str, fetch: Callable[[], pd.DataFrame], *, source: str, call: str,
                args: dict | Callable[[], dict] | None = None, columns: list[str] | None = None,
                volatile: bool = False, query: str | None = None) -> pd.DataFrame:
        frame, meta = self.store.get(name, fetch, source=source, call=call, args=args, columns=columns,
                                     volatile=volatile, query=query)
        self.captures[name] = meta
        if meta.error:
            frame.attrs["capture_error"] = meta.error
        return frame

    def failed(self, *names: str) -> list[str]:
        """Which of these captures failed (all of this notebook's when no name is given)."""
        names = names or tuple(self.captures)
        return [n for n in names if n in self.captures and self.captures[n].error]

    def sources(self) -> pd.DataFrame:
        """One row per capture: source, rows, duration and, for a failed one, why; ``partial`` when it
        answered but said some of it could not be read (objects, lines, a fallback taken)."""
        rows = [{"capture": m.name, "source": m.source,
                 "status": "FAILED" if m.error else ("partial" if m.problems else "ok"),
                 "rows": m.rows, "pulled_at": m.pulled_at, "duration_s": m.duration_s,
                 "engine": (m.reading or {}).get("engine", ""), "bytes_read": (m.reading or {}).get(
                     "bytes_scanned", (m.reading or {}).get("bytes_read")),
                 "error": m.error or m.problems} for m in self.captures.values()]
        return pd.DataFrame(rows, columns=["capture", "source", "status", "rows", "pulled_at", "duration_s", "engine",
                                           "bytes_read", "error"])

    # -- findings and figures ---------------------------------------------------------------------
    def finding(self, key: str, value: Any, needs: list[str] | tuple[str, ...] = ()) -> Any:
        """Record a headline finding. If a capture it ``needs`` failed, the finding is unknown
        (null, listed under ``unknown``) rather than wrong. A name in ``needs`` that no capture declares
        is a mistake in the notebook: KeyError, not a silently ignored string."""
        from . import registry

        for n in needs:
            registry.get(n)
        missing = self.failed(*needs) if needs else []
        if missing:
            value = None
            if key not in self.unknown:
                self.unknown.append(key)
        elif key in self.unknown:
            self.unknown.remove(key)
        self.findings[key] = json_safe(value)
        self._save_findings(missing)
        return value

    def _save_findings(self, missing=()) -> None:
        if self.record_dir is None:
            return
        d = self.record_dir / contracts.FINDINGS_SCRATCH_DIR
        d.mkdir(parents=True, exist_ok=True)
        body = {"findings": self.findings, "unknown": self.unknown,
                "failed_sources": {n: self.captures[n].error for n in self.failed()}}
        tmp = d / f"{self.notebook}.json.tmp"
        tmp.write_text(json.dumps(body, indent=1, default=str))
        os.replace(tmp, d / f"{self.notebook}.json")

    def figure(self, fig, name: str):
        """Save a chart into the record (figures/<notebook>--<name>.png) and return it for display."""
        if self.record_dir is not None:
            d = self.record_dir / contracts.FIGURES_DIR
            d.mkdir(parents=True, exist_ok=True)
            fig.savefig(d / f"{self.notebook}--{name}.png", dpi=110, bbox_inches="tight",
                        metadata={"Software": None})
        return fig

    def banner(self) -> str:
        i = self.incident
        mode = "replay of " + str(self.store.replay_from) if self.replaying else (
            f"recording to {self.record_dir}" if self.record_dir else "interactive (nothing written)")
        return (f"{i.incident} [{i.severity}] {i.title}\nwindow   {i.window}\n"
                f"env      {self.env.get('name')} ({self.aws.get('region')})\nmode     {mode}")

    def __repr__(self) -> str:
        return self.banner()


def open_incident(incident_file: str | os.PathLike | None = None, *, record_dir=None, replay_from=None,
                  notebook: str = "notebook", window_start: str | None = None,
                  window_end: str | None = None) -> IncidentSession:
    """Open the incident a notebook works on.

    ``incident_file`` is an incident YAML (or a record's resolved params.yaml); None means
    ``$FORENSICS_INCIDENT`` or params/incidents/sandbox.yaml (written by `forensics sandbox up`).
    ``window_start``/``window_end`` narrow or move the window interactively.
    """
    path = resolve_incident_file(incident_file)
    if not path.exists() and incident_file is None:
        raise FileNotFoundError(
            f"{path} does not exist: start the sandbox with `forensics sandbox up`, or set incident_file "
            "to an incident YAML in params/incidents/")
    incident = load_resolved(path) if _is_resolved(path) else load_incident(path, check_retention=False)
    if window_start or window_end:
        from dataclasses import replace

        from .window import IncidentWindow

        incident = replace(incident, window=IncidentWindow(window_start or incident.window.start,
                                                           window_end or incident.window.end))
    store = CaptureStore(record_dir=record_dir, replay_from=replay_from, notebook=notebook)
    return IncidentSession(incident, store, notebook)


def _is_resolved(path: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except Exception:  # noqa: BLE001 - load_incident reports it properly
        return False
    return isinstance(data, dict) and isinstance(data.get("environment"), dict)
