"""What a notebook holds: the incident, its window and environment, and where evidence goes.

    inc = forensics.open_incident(incident_file, record_dir=record_dir, replay_from=replay_from,
                                  notebook="api-errors")
    alb = pull.alb_metrics(inc)          # = inc.pull("alb_metrics"): declared in forensics.captures,
                                         # captured once, served to every notebook of the record
    sampling = inc.sampling("app_error_sample")   # the sample's plan (slices, onset guess), by name
    trail = inc.optional("cloudtrail_events")     # None when the environment has no cloudtrail section
    inc.finding("onset", onset, needs=["alb_metrics"])
    inc.figure(fig, "error-rate")
    inc.sources()                        # which sources answered, which failed and why

Interactively (JupyterLab) ``record_dir`` is None: nothing is written to a record (the prefetch hands its
frames over in a private folder, removed with the session). Under ``forensics run`` the runner passes the
record folder.

Opening a live incident starts pulling every capture the notebook declares in a process of its own
(:mod:`forensics.prefetch_process`, with the runner's plan machinery, :mod:`forensics.prefetch`), while the
first cells run; a cell that asks for a capture waits for that one only, and a one-line progress display says
what has arrived. A re-run cell is
served from memory; ``inc.refresh("name")`` (or ``inc.refresh()``: all of them) pulls again. No prefetch
in a replay, under ``forensics run`` (the runner pulled the plan), or with ``FORENSICS_PREFETCH=0``.

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

from . import contracts, defaults, heartbeats
from . import window as windows
from .capture import CaptureMeta, CaptureStore, json_safe
from .params import PARAMS_DIR, Incident, load_incident, load_resolved
from .sources.call import Call

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
        self._reading = threading.local()  # the captures each capture being fetched reads (per thread)
        self._ahead = threading.local()    # set in the prefetch's threads: a pull no cell asked for yet
        self.prefetch = None               # the running prefetch (a PrefetchProcess, or a threads' Prefetch)
        self._display = None               # its progress line in a kernel (an IPython display handle)

    # -- lifetime ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop prefetching and close the database connection (if one was opened). The session stays
        readable."""
        if self.prefetch is not None:
            self.prefetch.close()
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

    # The windows derived from the incident's, with the environment's settings (their arithmetic: forensics.window).
    @property
    def context_window(self):
        """The window with :data:`CONTEXT` before it: metrics and logs are pulled over this so the
        baseline before the incident is visible (and the shaded incident window stands out)."""
        return windows.context(self.incident.window, CONTEXT)

    @property
    def baseline_window(self):
        """The ``cloudtrail.baseline_hours`` before the window: what "known" principals, addresses and
        clients means (CloudTrail and ALB access logs)."""
        hours = int((self.env.get("cloudtrail") or {}).get("baseline_hours") or defaults.CLOUDTRAIL_BASELINE_HOURS)
        return windows.baseline(self.window, hours)

    @property
    def baseline_days_window(self):
        """The ``cloudtrail.baseline_days`` (default 14) before the window: each actor's usual APIs, networks
        and denials (forensics.detection.behaviour)."""
        days = int((self.env.get("cloudtrail") or {}).get("baseline_days") or defaults.CLOUDTRAIL_BASELINE_DAYS)
        return windows.baseline_days(self.window, days)

    @property
    def backup_window(self):
        """``backups.lookback_hours`` up to the window's end, never shorter than the context window."""
        hours = int((self.env.get("backups") or {}).get("lookback_hours") or defaults.BACKUP_LOOKBACK_HOURS)
        return windows.lookback(self.window, hours, self.context_window)

    @property
    def heartbeats(self) -> list:
        """The environment's ``jobs.heartbeats``, validated."""
        return heartbeats.heartbeats(self.env.get("jobs"))

    @property
    def heartbeat_window(self):
        """The window with, before it, the context or two overdue spans of the slowest job."""
        return windows.heartbeat_span(self.window, CONTEXT, heartbeats.longest_overdue(self.heartbeats))

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
        """The capture ``name`` declared in :mod:`forensics.captures`: from this record if already pulled
        (by the runner's plan or another notebook), else from the replayed record, else pulled now: the
        capture builds one call, which is run and recorded. ``params`` override the capture's declared
        defaults (e.g. ``wait_s``). A capture whose environment sections are absent fails with a one-line
        reason; its findings become unknown."""
        from . import captures

        cap = captures.get(name)
        stack = getattr(self._reading, "stack", None)
        if stack:
            stack[-1].add(name)
        asked = not getattr(self._ahead, "on", False) and not stack  # a cell asks (not a prefetch, not an input)
        ahead = self.prefetch if asked and not self.store.has(name) else None
        if ahead is not None:
            self._show(waiting=name)
        try:
            if ahead is None:
                return self._capture_declared(cap, name, params, asked)
            with ahead.cell_waits():  # no background pull starts while a cell waits
                return self._capture_declared(cap, name, params, asked)
        finally:
            if asked:
                self._show()

    def _capture_declared(self, cap, name: str, params: dict, asked: bool) -> pd.DataFrame:
        from . import captures

        frame = self.capture(name, self._derived(cap, captures.call_for(cap, self, params)), source=cap.source,
                            call=cap.api, columns=list(cap.columns or ()), volatile=cap.volatile, query=cap.query)
        if asked:  # the inputs it read (perhaps in a prefetch thread) are this notebook's too
            for dep in _inputs(cap):
                meta = self.store.meta(dep)
                if meta is not None:
                    self.captures.setdefault(dep, meta)
        return frame

    def _pull_ahead(self, name: str) -> None:
        """Pull ``name`` for the prefetch: into the store, not yet the notebook's (until a cell asks)."""
        self._ahead.on = True
        try:
            self.pull(name)
        finally:
            self._ahead.on = False

    def start_prefetch(self, names=None):
        """Start pulling ``names`` (default: every capture this notebook declares) in the background, volatile
        first, within each API's rate: in a process of its own (:mod:`forensics.prefetch_process`), or in this
        process's threads for captures declared at run time or with ``FORENSICS_PREFETCH=threads``. A running
        prefetch is replaced. Returns it (None when there is nothing to pull)."""
        from . import captures, prefetch, prefetch_process

        names = prefetch.declared(self.notebook) if names is None else tuple(names)
        names = [n for n in names if n not in prefetch.planned_in(self.record_dir)]
        planned, _ = captures.plan(names, self.env)
        planned = [c for c in planned if not self.store.has(c.name)]
        if self.prefetch is not None:
            self.prefetch.close()
        elsewhere = (prefetch_process.available() and not prefetch.in_threads()
                     and all(c.name in captures.PACKAGED for c in planned))
        kind = prefetch_process.PrefetchProcess if elsewhere else prefetch.Prefetch
        self.prefetch = kind(self, planned, order=names).start() if planned else None
        if self.prefetch is not None and _in_kernel():
            self._display_start()
        return self.prefetch

    def refresh(self, name: str | None = None):
        """Pull ``name`` again (a re-run cell is served the frame it had): its frame now. With no name, every
        capture this session holds or declares is dropped and pulled again in the background (the cells then
        ask for them as usual). In a replay the record serves them again (no source is contacted)."""
        if name is not None:
            self.store.forget(name)
            self.captures.pop(name, None)
            return self.pull(name)
        from . import prefetch

        names = list(dict.fromkeys([*self.captures, *(self.prefetch.names if self.prefetch else ()),
                                    *prefetch.declared(self.notebook)]))
        if self.prefetch is not None:
            self.prefetch.cancel()
            self.prefetch.wait()
        for n in names:
            self.store.forget(n)
        self.captures.clear()
        if not self.replaying and prefetch.enabled():
            self.start_prefetch(names)
        return None

    # -- the progress line ----------------------------------------------------------------------------
    def _display_start(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import Pretty, display

            self._display = display(Pretty(self.prefetch.line()), display_id=True)
            shell = get_ipython()

            def after_cell(*_):
                self._show()
                if self.prefetch is None or self.prefetch.done:
                    shell.events.unregister("post_run_cell", after_cell)

            shell.events.register("post_run_cell", after_cell)
        except Exception:  # noqa: BLE001 - a display is a convenience, never a failure
            self._display = None

    def _show(self, waiting: str | None = None) -> None:
        """Update the progress line (from the main thread, when a cell asks or ends)."""
        if self._display is None or self.prefetch is None:
            return
        try:
            from IPython.display import Pretty

            self._display.update(Pretty(self.prefetch.line(waiting)))
        except Exception:  # noqa: BLE001
            pass

    def _meta(self, name: str) -> CaptureMeta | None:
        return self.captures.get(name) or self.store.meta(name)

    def _derived(self, cap, build: Callable[[], Call]) -> Callable[[], Call]:
        """``build`` with its inputs watched: if a capture it read (building or running its call) failed, it
        fails too: a frame derived from nothing is unknown, not empty (an access-log listing that failed is
        not "no endpoint failing"). A capture that handles an input's failure itself names it in
        ``tolerates`` (a sample that only takes the rate as a hint)."""
        reads: set[str] = set()

        def watched(fn):
            stack = self._reading.__dict__.setdefault("stack", [])
            stack.append(reads)
            try:
                return fn()
            finally:
                stack.pop()

        def check() -> None:
            failed = [n for n in sorted(reads - set(cap.tolerates)) if self._meta(n) and self._meta(n).error]
            if failed:
                raise LookupError(f"its input {failed[0]} failed: {self._meta(failed[0]).error}")

        def built() -> Call:
            made = watched(build)
            check()

            def run():
                frame = watched(made.run)
                check()
                return frame

            return Call(made.api, made.args, run)

        return built

    def capture(self, name: str, build: Callable[[], Call], *, source: str, call: str,
                columns: list[str] | None = None, volatile: bool = False, query: str | None = None) -> pd.DataFrame:
        """The frame ``name``, pulled (when it must be) by running the :class:`Call` that ``build()`` makes."""
        frame, meta = self.store.get(name, build, source=source, call=call, columns=columns,
                                     volatile=volatile, query=query)
        if not getattr(self._ahead, "on", False):
            self.captures[name] = meta
        if meta.error:
            frame.attrs["capture_error"] = meta.error
        return frame

    def optional(self, name: str, **params) -> pd.DataFrame | None:
        """The capture ``name`` when the environment configures its sources, else None (nothing pulled, nothing
        unknown): a source that adds to what a notebook answers without being what it is about (CloudTrail's
        changes, for api-errors' suspected change). The catalogue reads these apart: a notebook does not run
        for its optional captures alone. Its findings name it in ``needs`` only when it was pulled."""
        from . import captures

        if captures.get(name).missing_sections(self.env):
            return None
        return self.pull(name, **params)

    def sampling(self, name: str):
        """The sampling plan of the bounded sample ``name`` (``<base>_sample``) as recorded with it (pulled
        first if this notebook has not): a :class:`~forensics.sampling.SamplingPlan`."""
        from .sampling import SamplingPlan

        if name not in self.captures:
            self.pull(name)
        return SamplingPlan(self._meta(name).args.get("sampling"))  # a prefetch thread's reading is in the store

    def failed(self, *names: str) -> list[str]:
        """Which of these captures failed (all of this notebook's when no name is given)."""
        names = names or tuple(self.captures)
        return [n for n in names if self._meta(n) is not None and self._meta(n).error]

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
        from . import captures

        for n in needs:
            captures.get(n)
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
        """Save a chart into the record (figures/<notebook>--<name>.png) and show it.

        In a kernel the figure is displayed here and None returned: a figure saved is a figure shown, also
        when it is not the cell's last expression (a loop, a second chart in the cell), and shown once.
        Outside a kernel the figure is returned."""
        from . import charts

        kernel = _in_kernel()
        image = charts.png(fig) if kernel or self.record_dir is not None else None  # rendered once, for both
        if self.record_dir is not None:
            d = self.record_dir / contracts.FIGURES_DIR
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{self.notebook}--{name}.png").write_bytes(image)
        if kernel:
            from IPython.display import display

            display({"image/png": image, "text/plain": repr(fig)}, raw=True)
            return None
        return fig

    def banner(self) -> str:
        i = self.incident
        mode = "replay of " + str(self.store.replay_from) if self.replaying else (
            f"recording to {self.record_dir}" if self.record_dir else "interactive (nothing written)")
        return (f"{i.incident} [{i.severity}] {i.title}\nwindow   {i.window}\n"
                f"env      {self.env.get('name')} ({self.aws.get('region')})\nmode     {mode}")

    def __repr__(self) -> str:
        return self.banner()


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _inputs(cap) -> list[str]:
    """The captures ``cap`` reads, transitively (its declared ``after``)."""
    from . import captures

    out: list[str] = []
    for dep in cap.after:
        out += [dep, *_inputs(captures.get(dep))]
    return list(dict.fromkeys(out))


def open_incident(incident_file: str | os.PathLike | None = None, *, record_dir=None, replay_from=None,
                  notebook: str = "notebook", window_start: str | None = None,
                  window_end: str | None = None, prefetch: bool | None = None) -> IncidentSession:
    """Open the incident a notebook works on.

    ``incident_file`` is an incident YAML (or a record's resolved params.yaml); None means
    ``$FORENSICS_INCIDENT`` or params/incidents/sandbox.yaml (written by `forensics sandbox up`).
    ``window_start``/``window_end`` narrow or move the window interactively.
    ``prefetch`` (default: on, unless ``$FORENSICS_PREFETCH=0``) starts pulling every capture the notebook
    declares in the background (a process of its own; ``$FORENSICS_PREFETCH=threads``: this process's
    threads); never in a replay, never what the runner plans in this record.
    """
    path = resolve_incident_file(incident_file)
    if not path.exists() and incident_file is None:
        raise FileNotFoundError(
            f"{path} does not exist: start the sandbox with `forensics sandbox up`, or set incident_file "
            "to an incident YAML in params/incidents/")
    incident = load_resolved(path) if _is_resolved(path) else load_incident(path, check_retention=False)
    if window_start or window_end:
        from dataclasses import replace

        incident = replace(incident, window=windows.IncidentWindow(window_start or incident.window.start,
                                                                  window_end or incident.window.end))
    store = CaptureStore(record_dir=record_dir, replay_from=replay_from, notebook=notebook)
    session = IncidentSession(incident, store, notebook)
    if replay_from is None:
        from . import prefetch as ahead

        if ahead.enabled() if prefetch is None else prefetch:
            session.start_prefetch()
    return session


def _is_resolved(path: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except Exception:  # noqa: BLE001 - load_incident reports it properly
        return False
    return isinstance(data, dict) and isinstance(data.get("environment"), dict)
