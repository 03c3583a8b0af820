"""A throwaway PostgreSQL cluster on loopback with pg_stat_statements preloaded.

Uses the system's server binaries (``/usr/lib/postgresql/<v>/bin``, ``pg_config --bindir`` or
``$FORENSICS_PG_BIN``). initdb refuses to run as root, so as root the cluster runs as ``postgres``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from forensics.errors import SandboxError

INSTALL_HINT = ("install them with: sudo apt-get install postgresql postgresql-contrib "
                "(or set FORENSICS_PG_BIN to the folder holding initdb and pg_ctl)")


def find_pg_bin() -> Path:
    """The folder holding initdb/pg_ctl/postgres, newest version first."""
    env = os.environ.get("FORENSICS_PG_BIN")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                         reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                             check=True).stdout.strip())
        except (OSError, subprocess.CalledProcessError):
            pass
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise SandboxError(f"PostgreSQL server binaries not found; {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    """initdb + pg_ctl start on 127.0.0.1:<port> (``port``, else a free one); ``stop()`` removes everything.

    Roles: ``postgres`` (superuser, trust auth on loopback only), ``forensics`` (LOGIN,
    pg_read_all_stats + pg_read_all_data: what the forensic reader gets in production too).
    """

    def __init__(self, workdir: str | os.PathLike | None = None, max_connections: int = 40,
                 dbname: str = "app", port: int | None = None):
        self.bin = find_pg_bin()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="forensics-pg-"))
        self.datadir = self.workdir / "data"
        self.sockdir = self.workdir / "sock"
        self.max_connections = max_connections
        self.dbname = dbname
        self.port: int | None = None
        self._wanted_port = port  # None: a free one at start
        self._user = "postgres" if os.geteuid() == 0 else None

    # -- process control --------------------------------------------------------------------------
    def _run(self, *args: str, check=True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise SandboxError(f"{args[0]} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        return proc

    def start(self) -> "PostgresCluster":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        if self._user:
            try:
                pw = pwd.getpwnam(self._user)
            except KeyError:
                raise SandboxError("running as root but there is no 'postgres' user to run the cluster; "
                                   + INSTALL_HINT) from None
            for p in (self.workdir, self.sockdir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            os.chmod(self.workdir, 0o755)
        self._run("initdb", "--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                  "-D", str(self.datadir))
        self.port = self._wanted_port or free_port()
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "max_connections": str(self.max_connections),
            "superuser_reserved_connections": "3",
            "shared_preload_libraries": "'pg_stat_statements'",
            "compute_query_id": "on",
            "track_io_timing": "on",
            "pg_stat_statements.track": "all",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
        }
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write("\n# forensics sandbox\n")
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        proc = self._run("pg_ctl", "-w", "-t", "30", "-D", str(self.datadir), "-l",
                         str(self.workdir / "postgres.log"), "start", check=False)
        if proc.returncode != 0:
            log = (self.workdir / "postgres.log")
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise SandboxError(f"PostgreSQL did not start: {' | '.join(tail) or proc.stderr.strip()}")
        self._bootstrap()
        return self

    def stop(self) -> None:
        if self.datadir.exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop", check=False)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            shutil.rmtree(self.datadir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- connections ------------------------------------------------------------------------------
    def dsn(self, user: str = "postgres", dbname: str | None = None, application_name: str | None = None) -> str:
        parts = [f"host=127.0.0.1 port={self.port} dbname={dbname or self.dbname} user={user}"]
        if application_name:
            parts.append(f"application_name={application_name}")
        return " ".join(parts)

    def _bootstrap(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn(dbname="postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
            conn.execute("CREATE ROLE forensics LOGIN")
            conn.execute("GRANT pg_read_all_stats, pg_read_all_data TO forensics")
            conn.execute("CREATE ROLE app LOGIN")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("GRANT ALL ON SCHEMA public TO app")
