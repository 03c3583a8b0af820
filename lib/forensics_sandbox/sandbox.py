"""The sandbox: a moto server and a PostgreSQL cluster on loopback, playing one scenario.

    sb = Sandbox(workdir).start()       # or: with Sandbox(workdir) as sb: ...
    sb.environment, sb.incident         # parameters as the notebooks take them
    sb.write_params(env_path, incident_path)
    sb.truth                            # what the scenario planted (for tests)
    sb.stop()

``Sandbox(workdir, scenario=None)`` is the *empty* sandbox: the same servers (moto with the project's
extensions, PostgreSQL, the audit server on an empty ``audit_events`` table) and nothing played, for
a user who loads their own exported data; it has no incident and writes no parameter files.

Each sandbox's AWS data lives in its own moto account (:attr:`Sandbox.account_id`): in-process moto
servers share their backends, so without that, two sandboxes - or a sandbox and a test's own moto
server - in one process would see each other's data. Reach the in-process backends through
:meth:`Sandbox.backend`, not ``MotoServer.backend`` (that one is the default account).
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
from concurrent.futures import Future
from pathlib import Path

import pandas as pd

from forensics import params as params_mod
from forensics.window import to_utc
from . import moto_ext as ext
from . import scenarios as scenario_registry

#: the first sandbox of a process gets this account id, the next ones the following numbers
ACCOUNT_BASE = 481516234200
_accounts = itertools.count()
_accounts_lock = threading.Lock()


def _next_account_id() -> str:
    with _accounts_lock:
        return str(ACCOUNT_BASE + next(_accounts))


class Sandbox:
    def __init__(self, workdir: str | os.PathLike, scenario: str | None = "pool-exhaustion",
                 now: pd.Timestamp | None = None, region: str = "eu-west-1", max_connections: int = 40,
                 ports: dict[str, int] | None = None, audit_token_file: str | os.PathLike | None = None):
        self.workdir = Path(workdir)
        #: fixed ports ``{"aws": n, "postgres": n, "audit": n}`` (the background sandbox's); absent: free ones
        self.ports = dict(ports or {})
        #: the file holding the audit server's token, named in the environment (``audit.token_file``)
        self.audit_token_file = str(Path(audit_token_file).absolute()) if audit_token_file else None
        self.scenario = scenario
        self.now = to_utc(now, "sandbox now") if now is not None else pd.Timestamp.now(tz="UTC")
        self.region = region
        self.max_connections = max_connections
        self.account_id = _next_account_id()
        self.moto = None
        self._cluster_future: Future | None = None
        self._cluster_obj = None
        self._played = None
        self._env_ref: str = "sandbox"
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "Sandbox":
        """Start moto and the cluster (in parallel), then play the scenario; returns when every planted
        thing is in place. On failure everything started so far is stopped again."""
        if self._played is not None:
            return self
        from .moto_server import MotoServer
        from .pg_cluster import PostgresCluster

        # "all", "a,b" or one name; an unknown name is a SandboxError before anything starts
        plays = [] if self.empty else [(name, scenario_registry.get(name))
                                       for name in scenario_registry.resolve(self.scenario)]
        self._stopped = False
        self.workdir.mkdir(parents=True, exist_ok=True)
        cluster = PostgresCluster(_cluster_dir(self.workdir / "pg"), max_connections=self.max_connections,
                                  port=self.ports.get("postgres"))
        self._cluster_future = Future()

        def start_cluster():
            try:
                cluster.start()
                self._cluster_future.set_result(cluster)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the cluster
                self._cluster_future.set_exception(exc)

        self._cluster_obj = cluster
        atexit.register(self.stop)  # an interpreter that exits without stop() leaves no cluster behind
        threading.Thread(target=start_cluster, name="sandbox-pg-start", daemon=True).start()
        try:
            ext.install()
            self.moto = MotoServer(self.region, port=self.ports.get("aws", 0)).start()
            ext.isolate_account(self.moto, self.account_id)
            if self.empty:
                self._played = _play_empty(self)
            played = []
            try:
                for name, play in plays:
                    played.append((name, play(self)))
            finally:  # a scenario that failed half-way still has its earlier workloads stopped
                if played:
                    self._played = scenario_registry.combine(played, scenario_registry.focus(self.scenario))
            self.cluster  # noqa: B018 - a scenario without a workload still needs the cluster up
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def cluster(self):
        """The PostgreSQL cluster (waits for it while it is starting)."""
        if self._cluster_future is None:
            return None
        return self._cluster_future.result()

    def stop(self) -> None:
        """Stop the workload, the cluster and the moto server; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        errors = []
        played, self._played = self._played, None
        for workload in reversed(played.workloads if played else []):
            try:
                workload.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                errors.append(exc)
        if self._cluster_future is not None:
            try:
                self._cluster_future.exception()  # wait until its start has ended, either way
                self._cluster_obj.stop()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        if self.moto is not None:
            try:
                if self.moto.endpoint_url is not None:
                    self.moto.stop()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                ext.close_server(self.moto)
                ext.drop_account(self.account_id)
        self._last_truth = played.truth if played else getattr(self, "_last_truth", None)
        if errors:
            raise errors[0]

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def audit_port(self) -> int:
        """The port the audit server listens on (0: a free one)."""
        return self.ports.get("audit", 0)

    @property
    def running(self) -> bool:
        return self._played is not None

    @property
    def empty(self) -> bool:
        """Started with no scenario (``scenario=None``)."""
        return self.scenario is None

    # -- AWS --------------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        self._require_moto()
        return self.moto.endpoint_url

    def client(self, service: str):
        """A plain boto3 client on the sandbox's moto server (for loading data; not read-only)."""
        self._require_moto()
        return self.moto.client(service)

    def backend(self, service: str):
        """The in-process moto backend of ``service`` holding this sandbox's data."""
        return ext.backend(service, self.account_id, self.region)

    def _require_moto(self) -> None:
        if self.moto is None or self.moto.endpoint_url is None:
            raise RuntimeError("the sandbox is not started")

    # -- what others read -------------------------------------------------------------------------
    @property
    def played(self):
        if self._played is None:
            raise RuntimeError("the sandbox is not started")
        return self._played

    @property
    def environment(self) -> dict:
        p = self.played
        env = {
            "name": "sandbox",
            "aws": {"region": self.region, "profile": None, "endpoint_url": self.moto.endpoint_url},
            **{k: v for k, v in p.resources.items() if k not in ("name", "aws", "postgres")},
            "postgres": {"dsn": self.cluster.dsn("forensics"), "dsn_env": None},
        }
        if self.audit_token_file and "audit" in env:
            env["audit"] = {**env["audit"], "token_file": self.audit_token_file}
        return env

    @property
    def incident(self) -> dict:
        if self.empty:
            raise RuntimeError("the empty sandbox has no incident: write your own incident file")
        inc = self.played.incident
        out = {"incident": inc["incident"], "title": inc["title"], "severity": inc["severity"],
               "environment": self._env_ref, "window": dict(inc["window"])}
        if inc.get("notebooks"):
            out["notebooks"] = list(inc["notebooks"])
        return out

    @property
    def truth(self) -> dict:
        return dict(self.played.truth)

    def truth_for(self, scenario: str) -> dict:
        """What one of the scenarios played in this sandbox planted."""
        return dict(self.played.truth["scenarios"][scenario])

    def write_params(self, env_path: str | os.PathLike, incident_path: str | os.PathLike) -> None:
        """Write the environment and the incident YAML; the incident names the environment file by its
        absolute path. Both load with ``forensics.params.load_incident(incident_path)``."""
        if self.empty:
            raise RuntimeError("the empty sandbox has no scenario to describe: write your own parameter files")
        env_path, incident_path = Path(env_path).absolute(), Path(incident_path).absolute()
        env_path.parent.mkdir(parents=True, exist_ok=True)
        incident_path.parent.mkdir(parents=True, exist_ok=True)
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        header = (f"# Generated by the forensics sandbox (scenario {self.scenario}) at {stamp}.\n"
                  "# Its servers live on loopback only while the sandbox runs.\n")
        _write(env_path, header + params_mod.dump(self.environment))
        self._env_ref = str(env_path)
        _write(incident_path, header + params_mod.dump(self.incident))

    @staticmethod
    def scenarios() -> list[str]:
        return scenario_registry.names()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sandbox {self.scenario or 'empty'} {state} account={self.account_id} workdir={self.workdir}>"


def _play_empty(sb: Sandbox):
    """The empty sandbox's one workload: the audit server over an empty ``audit_events`` table (token from
    ``$FORENSICS_SANDBOX_AUDIT_TOKEN``, random when unset, as for the data-integrity scenario)."""
    import secrets

    import psycopg

    from .audit_server import TABLE_SQL, AuditServer
    from .scenarios.played import Played
    from .scenarios.data_integrity import TOKEN_ENV

    os.environ[TOKEN_ENV] = os.environ.get(TOKEN_ENV) or secrets.token_hex(24)
    dsn = sb.cluster.dsn("app", application_name="scr-api-audit")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLE_SQL)
    server = AuditServer(dsn, os.environ[TOKEN_ENV], port=sb.audit_port).start()
    resources = {"audit": {"base_url": server.base_url, "token_env": TOKEN_ENV, "tenants": []}}
    return Played(truth={}, incident={}, resources=resources, workloads=[server])


def _cluster_dir(wanted: Path) -> Path | None:
    """``wanted``, unless the cluster's OS user could not reach it.

    As root the cluster runs as ``postgres``, which must traverse every parent folder; pytest's and
    mkdtemp's folders are 0700. Then ``None``: the cluster makes (and removes) its own folder in the
    system temp dir.
    """
    if os.geteuid() != 0:
        return wanted
    for parent in wanted.absolute().parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            return None
    return wanted


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
