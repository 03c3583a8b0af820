"""Shared fixtures: real servers on loopback, started once per test session.

- ``pg_cluster``: a throwaway PostgreSQL cluster with pg_stat_statements preloaded.
- ``moto_server``: an in-process moto server; ``aws_env`` is the matching environment ``aws`` section.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
os.environ.setdefault("MPLBACKEND", "Agg")
# Never reach a real AWS account from the tests, whatever the machine has configured.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def pg_cluster():
    from forensics.sandbox.pg_cluster import PostgresCluster

    # Its own folder under /tmp: as root the cluster runs as `postgres`, who cannot enter pytest's
    # root-only temporary folders.
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def moto_server():
    from forensics.sandbox.moto_server import MotoServer

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


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """The whole sandbox (moto + PostgreSQL + the pool-exhaustion scenario's live workload), once per
    session: ``sandbox.environment``, ``sandbox.incident``, ``sandbox.truth``, ``sandbox.write_params``.
    Its AWS data lives in its own moto account, so it does not mix with ``moto_server``'s."""
    from forensics.sandbox.sandbox import Sandbox

    box = Sandbox(tmp_path_factory.mktemp("sandbox")).start()
    yield box
    box.stop()
