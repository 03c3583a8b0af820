"""Shared fixtures for tests/ and for nbval on notebooks/: real servers on loopback, started once.

- ``pg_cluster``: a throwaway PostgreSQL cluster with pg_stat_statements preloaded.
- ``moto_server``: an in-process moto server; ``aws_env`` is the matching environment ``aws`` section.
"""

from __future__ import annotations

import os
import signal
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
SHARED = REPO.parent / "shared"
os.environ.setdefault("MPLBACKEND", "Agg")
# Never reach a real AWS account from the tests, whatever the machine has configured.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def pytest_report_header(config):
    """The CLI reaches the sandbox through the ``forensics.plugins`` entry point of the installed metadata: an
    install older than that entry point (pyproject.toml changed, `make` not run since) has no sandbox
    commands. Say so at the top rather than in every failing CLI test."""
    from importlib.metadata import entry_points

    if not entry_points(group="forensics.plugins", name="sandbox"):
        return ("WARNING: no forensics.plugins entry point installed: `forensics sandbox|demo` will say "
                "'not installed'; reinstall the package (make, or .venv/bin/pip install -e .)")
    return None


@pytest.fixture(scope="session")
def pg_cluster():
    from forensics_sandbox.pg_cluster import PostgresCluster

    # Its own folder under /tmp: as root the cluster runs as `postgres`, who cannot enter pytest's
    # root-only temporary folders.
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def moto_server():
    from forensics_sandbox.moto_server import MotoServer

    server = MotoServer(region="eu-west-1").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def aws_env(moto_server):
    return {"region": moto_server.region, "profile": None, "endpoint_url": moto_server.endpoint_url}


@pytest.fixture(scope="session")
def shared_data():
    path = SHARED / "data" / "real"
    if not path.exists():
        pytest.skip("shared/data/real is not beside this checkout")
    return path


_SANDBOX = None


_MAIN_PID = os.getpid()


def _terminate(signum, frame):
    """A CI timeout or `kill` sends SIGTERM, which would skip atexit and pytest_sessionfinish and leave
    the sandbox's PostgreSQL running: stop the sandbox, then die of the signal.

    It used to raise SystemExit(143) instead: raised inside whichever test was running, pytest took it
    for that test's failure and went on (issue 23: `notebooks/queue-backlog.ipynb::Cell 2 - pytest plugin
    exception: 143` was the session being terminated while nbval waited on that cell). A process forked
    from pytest (a ProcessPoolExecutor worker) inherits this handler: it only dies, it stops nothing."""
    if os.getpid() == _MAIN_PID:
        try:
            pytest_sessionfinish(None, 128 + signum)
        finally:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


signal.signal(signal.SIGTERM, _terminate)


def _sandbox():
    """One sandbox per test session, shared by the `sandbox` fixture and the notebooks run by nbval
    (nbval's cells are not fixture-aware items, so they reach it through a hook)."""
    global _SANDBOX
    if _SANDBOX is None:
        from forensics_sandbox.sandbox import Sandbox

        _SANDBOX = Sandbox(Path(tempfile.mkdtemp(prefix="forensics-test-sandbox-")), scenario="all").start()
    return _SANDBOX


def pytest_sessionfinish(session, exitstatus):
    global _SANDBOX
    sandbox, _SANDBOX = _SANDBOX, None  # once, whether the session ends or SIGTERM ends it
    if sandbox is not None:
        sandbox.stop()
        shutil.rmtree(sandbox.workdir, ignore_errors=True)
    shutil.rmtree(_PARAMS_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def sandbox():
    """The whole sandbox (moto + PostgreSQL + the pool-exhaustion scenario's live workload), once per
    session: ``sandbox.environment``, ``sandbox.incident``, ``sandbox.truth``, ``sandbox.write_params``.
    Its AWS data lives in its own moto account, so it does not mix with ``moto_server``'s."""
    return _sandbox()


#: nbval starts a notebook's kernel before any fixture runs, so the incident file the notebooks
#: default to ($FORENSICS_INCIDENT) is named here, at import, and written by `sandbox_params`.
_PARAMS_DIR = Path(tempfile.mkdtemp(prefix="forensics-test-params-"))
os.environ["FORENSICS_INCIDENT"] = str(_PARAMS_DIR / "sandbox-incident.yaml")
# The sandbox's audit endpoints take a bearer token from this variable (data-integrity scenario); set
# here, at import, so nbval's kernels (started before any fixture) inherit it too.
os.environ.setdefault("FORENSICS_SANDBOX_AUDIT_TOKEN", __import__("secrets").token_hex(24))


def _write_sandbox_params() -> dict:
    env, incident = _PARAMS_DIR / "sandbox-env.yaml", Path(os.environ["FORENSICS_INCIDENT"])
    if not incident.exists():
        _sandbox().write_params(env, incident)
    return {"environment": env, "incident": incident}


@pytest.fixture(scope="session")
def sandbox_params(sandbox):
    """The sandbox's environment and incident YAML files, as `forensics sandbox up` writes them."""
    return _write_sandbox_params()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if str(item.fspath).endswith(".ipynb"):
        _write_sandbox_params()


#: The test files that read the session's catalogue record. `make test` runs the suite in two processes
#: (pytest-xdist); these run in one of them, the one whose sandbox wrote the record (its truth is that
#: sandbox's). Collection refuses a reader missing from this list.
RECORD_READERS = frozenset({
    "tests/e2e/test_catalogue_backups_certificates.py", "tests/e2e/test_catalogue_cache_queue_ai.py",
    "tests/e2e/test_catalogue_ecs_db.py", "tests/e2e/test_catalogue_integrity_security.py",
    "tests/e2e/test_catalogue_jobs_auth.py", "tests/e2e/test_figures.py", "tests/e2e/test_outside_cloudwatch.py",
    "tests/e2e/test_page_at_3am.py", "tests/e2e/test_record_in_browser.py", "tests/e2e/test_record_reader.py",
    "tests/e2e/test_run_record.py",
})


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.sandbox)
        path = _test_file(item.nodeid)
        if "catalogue_record" in getattr(item, "fixturenames", ()) and path not in RECORD_READERS:
            raise pytest.UsageError(f"{path} reads the catalogue record: add it to RECORD_READERS in conftest.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """A file's tests run in one worker (a notebook's cells share one kernel; a module's fixtures are built
    once), and the record's readers all in one. pytest-xdist's own `--dist loadgroup` would say this with
    marks, but it does not group under pytest 9 (pytest-xdist issue 1386)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = _test_file(nodeid)
            return "the catalogue record's readers" if path in RECORD_READERS else path

    return ByFile(config, log)


@pytest.fixture(scope="session")
def catalogue_record(sandbox_params, tmp_path_factory):
    """One `forensics run` of every notebook over the session sandbox, as a user runs it (a
    subprocess); the end-to-end tests of every notebook read their findings from this record."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("evidence")
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "run", str(sandbox_params["incident"]),
                           "--out", str(out), "--jobs", "2"], capture_output=True, text=True)
    # no timeout of its own: the runner bounds every cell (defaults.CELL_TIMEOUT_S), and a fixed bound on
    # the whole run failed on a loaded machine (issue 23)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_dir() and path.parent.parent == out
    return path
