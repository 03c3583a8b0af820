"""``sandbox up`` / ``down`` / ``status``: a sandbox in a detached background process.

    up(state_dir, params_dir)   starts ``python -m forensics_sandbox.daemon serve ...``, waits until it
                                has written ``state_dir/state.json`` and returns that state
    status(state_dir)           the state, with ``running`` true or false
    summary(state)              the public view of a state (``forensics sandbox status --json``)
    down(state_dir)             SIGTERM, wait, clean up; True if a sandbox was running

The child logs to ``state_dir/sandbox.log`` (its stdout and stderr), holds an exclusive ``flock`` on
``state_dir/daemon.lock`` for its whole life (so a second one refuses to start, and a crashed one
leaves no stale lock), writes its pid to ``state_dir/daemon.pid`` at once and ``state.json`` when the
scenario is in place, and writes the parameter files to ``params_dir/environments/sandbox.yaml`` and
``params_dir/incidents/sandbox.yaml`` (not for the empty sandbox, ``scenario=None``, which has no incident).
On SIGTERM or SIGINT it stops the sandbox and removes its state files (the parameter files stay, naming
endpoints that are then closed).

Two files outlive a run and make an environment written for the sandbox keep working after a restart:
``state_dir/ports.json`` (the AWS, PostgreSQL and audit ports: ``--port-base N`` sets them to N, N+1,
N+2; otherwise free ports are picked once, then kept) and, while it runs, ``state_dir/audit.token``
(mode 0600: the audit server's bearer token, readable by the user who started the sandbox; the
environment names the file as ``audit.token_file``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from forensics.errors import SandboxError

log = logging.getLogger("forensics_sandbox.daemon")

STATE = "state.json"
PIDFILE = "daemon.pid"
LOCKFILE = "daemon.lock"
LOGFILE = "sandbox.log"
PORTS = "ports.json"
TOKEN_FILE = "audit.token"
#: the services of ``ports.json``, in the order ``--port-base N`` numbers them (N, N+1, N+2)
PORT_NAMES = ("aws", "postgres", "audit")


def env_path(params_dir: Path) -> Path:
    return Path(params_dir).absolute() / "environments" / "sandbox.yaml"


def incident_path(params_dir: Path) -> Path:
    return Path(params_dir).absolute() / "incidents" / "sandbox.yaml"


# ---- process helpers ----------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child of ours is reaped and counts as gone)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _is_daemon(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)  # no /proc: trust the pid
    return b"forensics_sandbox.daemon" in cmdline and b"serve" in cmdline


def _lock_held(state_dir: Path) -> bool:
    """Is the daemon lock held by some process? (probes with a non-blocking flock)"""
    path = Path(state_dir) / LOCKFILE
    if not path.exists():
        return False
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_pid(state_dir: Path) -> int | None:
    try:
        return int((Path(state_dir) / PIDFILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _log_tail(state_dir: Path, lines: int = 15) -> str:
    try:
        text = (Path(state_dir) / LOGFILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# ---- public API ---------------------------------------------------------------------------------------
def status(state_dir: Path) -> dict:
    """``{"running": bool, "starting": bool, ...state.json}``; ``stale`` when files of a dead one remain."""
    state_dir = Path(state_dir)
    state = _read_json(state_dir / STATE) or {}
    pid = state.get("pid") or _read_pid(state_dir)
    running = bool(pid) and _alive(pid) and _is_daemon(pid)
    held = _lock_held(state_dir)
    out = dict(state)
    out["running"] = running and bool(state)
    out["starting"] = (running or held) and not state
    if pid:
        out["pid"] = pid
    out["stale"] = not (running or held) and (bool(state) or (state_dir / PIDFILE).exists())
    out["state_dir"] = str(state_dir.absolute())
    out["log"] = str(state_dir.absolute() / LOGFILE)
    return out


#: what ``forensics sandbox status --json`` prints, in this order (null when unknown or not running)
SUMMARY_KEYS = ("running", "starting", "stale", "pid", "scenario", "aws_endpoint_url", "region", "account_id",
                "postgres_dsn", "postgres_admin_dsn", "audit_base_url", "audit_token_env", "audit_token_file",
                "ports", "env_path", "incident_path", "window", "started_at", "log", "state_dir")


def summary(state: dict) -> dict:
    """The public view of :func:`status`: stable key names, no planted truth (it is for tests)."""
    aliases = {"aws_endpoint_url": "endpoint_url", "postgres_dsn": "dsn"}
    return {k: state.get(k, state.get(aliases.get(k, k))) for k in SUMMARY_KEYS}


# ---- ports kept in the state folder ----------------------------------------------------------------------
def kept_ports(state_dir: Path) -> dict[str, int] | None:
    """The ports of ``state_dir/ports.json`` (None when there are none yet)."""
    data = _read_json(Path(state_dir) / PORTS)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in PORT_NAMES):
        return None
    return {k: data[k] for k in PORT_NAMES}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def choose_ports(state_dir: Path, port_base: int | None = None) -> dict[str, int]:
    """``--port-base N``: N, N+1, N+2; else the kept ones; else free ones. Checked free, then kept in
    ``state_dir/ports.json`` (so the next ``up`` uses them too). SandboxError naming a port in use."""
    state_dir = Path(state_dir)
    if port_base is not None:
        ports, why = {k: port_base + i for i, k in enumerate(PORT_NAMES)}, f"--port-base {port_base}"
    else:
        ports, why = kept_ports(state_dir), f"kept in {state_dir / PORTS}"
        if ports is None:
            ports, why = dict(zip(PORT_NAMES, _free_ports(len(PORT_NAMES)))), "free"
    busy = [f"{k} {p}" for k, p in ports.items() if not _port_free(p)]
    if busy:
        raise SandboxError(f"port(s) {', '.join(busy)} ({why}) in use on 127.0.0.1: stop what holds them, or "
                           "choose others with `forensics sandbox up --port-base N` (N, N+1, N+2)")
    _write_json(state_dir / PORTS, ports)
    return ports


def _write_token(state_dir: Path, token: str) -> Path:
    """The audit token in ``state_dir/audit.token``, mode 0600 from its creation (never readable by others)."""
    path = Path(state_dir) / TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


def up(state_dir: Path, params_dir: Path, scenario: str | None = "pool-exhaustion", timeout: float = 300,
       port_base: int | None = None) -> dict:
    """Start a sandbox in a detached process; return its state once it is ready. ``scenario`` is a
    name, several joined by commas, ``all``, or None for the empty sandbox. Ports: see :func:`choose_ports`."""
    from .scenarios import resolve

    if scenario is not None:
        resolve(scenario)  # an unknown name fails here, not in the child
    state_dir, params_dir = Path(state_dir).absolute(), Path(params_dir).absolute()
    state_dir.mkdir(parents=True, exist_ok=True)
    current = status(state_dir)
    if current["running"] or current["starting"]:
        where = f" at {current['endpoint_url']}" if current.get("endpoint_url") else ""
        raise SandboxError(f"a sandbox is already running (pid {current.get('pid')}{where}, state in {state_dir}); "
                           "stop it first with `forensics sandbox down`")
    if current["stale"] and current.get("pg_workdir"):
        _stop_cluster(current)  # a killed daemon's cluster
    _cleanup(state_dir)
    choose_ports(state_dir, port_base)
    logfile = open(state_dir / LOGFILE, "ab")
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "forensics_sandbox.daemon", "serve", "--state-dir", str(state_dir),
             "--params-dir", str(params_dir), *(["--scenario", scenario] if scenario else ["--empty"])],
            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
            close_fds=True,
        )
    finally:
        logfile.close()
    deadline = time.monotonic() + timeout
    try:
        while True:
            state = _read_json(state_dir / STATE)
            if state and state.get("pid") == child.pid:
                state["running"] = True
                return state
            code = child.poll()
            if code is not None:
                raise SandboxError(f"the sandbox process exited with code {code} before it was ready; "
                                   f"its log ({state_dir / LOGFILE}) ends with:\n{_log_tail(state_dir)}")
            if time.monotonic() > deadline:
                raise SandboxError(f"the sandbox was not ready after {timeout:.0f} s; "
                                   f"its log ({state_dir / LOGFILE}) ends with:\n{_log_tail(state_dir)}")
            time.sleep(0.1)
    except BaseException:
        # Not ready (or interrupted: Ctrl-C, SIGTERM): a detached child must not outlive us unseen.
        if child.poll() is None:
            _terminate(child.pid, 10)
        raise


def down(state_dir: Path, timeout: float = 30) -> bool:
    """Stop the sandbox of ``state_dir``: SIGTERM, wait, SIGKILL if need be, then remove what it left.
    True if one was running."""
    state_dir = Path(state_dir).absolute()
    state = _read_json(state_dir / STATE) or {}
    pid = state.get("pid") or _read_pid(state_dir)
    was_running = bool(pid) and _alive(pid) and _is_daemon(pid)
    clean = was_running and _terminate(pid, timeout)
    if was_running and not clean:
        log.warning("sandbox pid %s did not stop within %.0f s: killed", pid, timeout)
    if not clean and state.get("pg_workdir"):
        _stop_cluster(state)  # a killed or crashed daemon leaves its cluster running
    if pid and _alive(pid):
        raise SandboxError(f"the sandbox process {pid} is still alive")
    _cleanup(state_dir)
    return was_running


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. True if it ended on SIGTERM."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.05)
    return False


def _stop_cluster(state: dict) -> None:
    """The cluster of a daemon that could not stop it (killed, crashed): pg_ctl stop and remove."""
    from .pg_cluster import PostgresCluster

    workdir = Path(state["pg_workdir"])
    if not (workdir / "data").exists():
        return
    with contextlib.suppress(Exception):
        PostgresCluster(workdir).stop()
    if state.get("pg_own_workdir"):
        shutil.rmtree(workdir, ignore_errors=True)


def _cleanup(state_dir: Path) -> None:
    """What a stopped sandbox leaves: nothing but its log and its kept ports."""
    for name in (STATE, PIDFILE, TOKEN_FILE):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()


# ---- the child ----------------------------------------------------------------------------------------
def serve(state_dir: Path, params_dir: Path, scenario: str | None = "pool-exhaustion") -> int:
    """Run a sandbox until SIGTERM/SIGINT. Exit code 0 on a clean stop, 3 if one already runs here."""
    import pandas as pd

    from .sandbox import Sandbox

    state_dir, params_dir = Path(state_dir).absolute(), Path(params_dir).absolute()
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = open(state_dir / LOCKFILE, "a+")  # held (and the flock with it) until this process ends
    for _ in range(60):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.05)  # status() probes the lock for an instant
    else:
        log.error("another sandbox holds %s: not starting a second one", state_dir / LOCKFILE)
        return 3
    (state_dir / PIDFILE).write_text(f"{os.getpid()}\n")

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    from .scenarios.data_integrity import TOKEN_ENV

    # the audit server's token: the caller's $FORENSICS_SANDBOX_AUDIT_TOKEN, else a random one; this process
    # hands it to the servers through that variable, its user reads it from the 0600 file
    os.environ[TOKEN_ENV] = os.environ.get(TOKEN_ENV) or secrets.token_hex(24)
    token_file = _write_token(state_dir, os.environ[TOKEN_ENV])
    ports = kept_ports(state_dir)
    sb = Sandbox(state_dir / "work", scenario=scenario, ports=ports, audit_token_file=token_file)
    started = time.monotonic()
    log.info("starting sandbox (scenario %s, pid %s)", scenario or "none: empty", os.getpid())
    try:
        sb.start()
        env_file = incident_file = None
        if not sb.empty:
            env_file, incident_file = env_path(params_dir), incident_path(params_dir)
            sb.write_params(env_file, incident_file)
        cluster = sb.cluster
        truth = {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in sb.truth.items()}
        audit = sb.environment.get("audit") or {}
        state = {
            "pid": os.getpid(), "scenario": scenario, "endpoint_url": sb.endpoint_url,
            "dsn": cluster.dsn("forensics"), "postgres_admin_dsn": cluster.dsn("postgres"),
            "audit_base_url": audit.get("base_url"), "audit_token_env": audit.get("token_env"),
            "audit_token_file": str(token_file) if audit.get("base_url") else None, "ports": ports,
            "env_path": env_file and str(env_file), "incident_path": incident_file and str(incident_file),
            "started_at": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": sb.region, "account_id": sb.account_id,
            "window": None if sb.empty else sb.incident["window"],
            "log": str(state_dir / LOGFILE), "pg_workdir": str(cluster.workdir),
            "pg_own_workdir": bool(getattr(cluster, "_own_workdir", False)), "truth": truth,
        }
        _write_json(state_dir / STATE, state)
        log.info("sandbox ready in %.1f s: moto %s, postgres %s; parameters %s",
                 time.monotonic() - started, sb.endpoint_url, state["dsn"], incident_file or "none (empty)")
        while not stop.wait(0.2):
            pass
    except BaseException:
        log.exception("sandbox failed")
        with contextlib.suppress(Exception):
            sb.stop()
        _cleanup(state_dir)
        raise
    sb.stop()
    _cleanup(state_dir)
    log.info("sandbox stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forensics_sandbox.daemon")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "up", "down", "status"):
        p = sub.add_parser(name)
        p.add_argument("--state-dir", type=Path, required=True)
        if name in ("serve", "up"):
            p.add_argument("--params-dir", type=Path, required=True)
            which = p.add_mutually_exclusive_group()
            which.add_argument("--scenario", default="pool-exhaustion")
            which.add_argument("--empty", action="store_true", help="no scenario: the servers only")
        if name == "up":
            p.add_argument("--port-base", type=int, default=None, help="ports N, N+1, N+2 (kept)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        if args.command == "serve":
            return serve(args.state_dir, args.params_dir, None if args.empty else args.scenario)
        if args.command == "up":
            print(json.dumps(up(args.state_dir, args.params_dir, None if args.empty else args.scenario,
                                port_base=args.port_base), indent=2, default=str))
        elif args.command == "down":
            print("stopped" if down(args.state_dir) else "no sandbox was running")
        else:
            print(json.dumps(status(args.state_dir), indent=2, default=str))
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
