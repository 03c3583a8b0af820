"""The sandbox against real servers: a moto server and a PostgreSQL cluster, read back through plain
boto3 and psycopg (no mocks). One Sandbox for the module; its last test stops it."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from forensics.errors import SandboxError
from forensics.params import load_incident
from forensics_sandbox import moto_ext as ext
from forensics_sandbox import daemon
from forensics_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

MIN = pd.Timedelta("1min")


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    box = Sandbox(tmp_path_factory.mktemp("sandbox"))
    t = time.monotonic()
    box.start()
    box.start_seconds = time.monotonic() - t
    yield box
    box.stop()


@pytest.fixture(scope="module")
def truth(sb):
    return sb.truth


@pytest.fixture()
def pg(sb):
    with psycopg.connect(sb.environment["postgres"]["dsn"], application_name="forensics-test",
                         autocommit=True) as conn:
        yield conn


# ---- CloudWatch ---------------------------------------------------------------------------------------
def _metric_data(sb, truth, queries):
    """{label: Series} from one GetMetricData call at Period 60 over the window."""
    cw = sb.client("cloudwatch")
    q = [{"Id": f"m{i}", "Label": label,
          "MetricStat": {"Metric": {"Namespace": ns, "MetricName": name, "Dimensions": dims}, "Period": 60,
                         "Stat": stat}}
         for i, (label, ns, name, dims, stat) in enumerate(queries)]
    out = {}
    kwargs = {"MetricDataQueries": q, "StartTime": truth["data_start"].to_pydatetime(),
              "EndTime": truth["window_end"].to_pydatetime()}
    while True:
        resp = cw.get_metric_data(**kwargs)
        for r in resp["MetricDataResults"]:
            s = pd.Series(r["Values"], index=pd.DatetimeIndex(r["Timestamps"]).tz_convert("UTC"), dtype=float)
            out[r["Label"]] = pd.concat([out.get(r["Label"], pd.Series(dtype=float)), s]).sort_index()
        if not resp.get("NextToken"):
            return out
        kwargs["NextToken"] = resp["NextToken"]


def test_the_environment_is_valid(sb, truth):
    # how long the start takes is measured, not asserted here (a busy machine is not a failure; the
    # guide keeps speed targets in tests/bench)
    assert sb.start_seconds > 0
    env = sb.environment
    assert env["name"] == "sandbox"
    assert env["aws"] == {"region": "eu-west-1", "profile": None, "endpoint_url": sb.endpoint_url}
    assert env["aws"]["endpoint_url"].startswith("http://127.0.0.1:")
    assert env["alb"]["load_balancer"] == "app/scr-production-alb/4361f80389f5693e"
    assert env["ecs"] == {"cluster": "scr-production", "services": ["scr-api-production"]}
    assert env["rds"] == {"instance": "scr-production-postgres"}
    assert env["postgres"]["dsn"] == sb.cluster.dsn("forensics") and "password" not in env["postgres"]["dsn"]
    assert env["logs"] == {"app": ["/ecs/scr-api-production"]}
    assert truth["onset"] == truth["deploy_time"] + pd.Timedelta("5min")
    assert truth["window_end"] - truth["window_start"] == pd.Timedelta("90min")
    assert truth["window_end"] - truth["data_start"] == pd.Timedelta("120min")


def test_alb_metrics_step_at_onset(sb, truth):
    lb = [{"Name": "LoadBalancer", "Value": sb.environment["alb"]["load_balancer"]}]
    ns = "AWS/ApplicationELB"
    m = _metric_data(sb, truth, [
        ("requests", ns, "RequestCount", lb, "Sum"),
        ("t5xx", ns, "HTTPCode_Target_5XX_Count", lb, "Sum"),
        ("e5xx", ns, "HTTPCode_ELB_5XX_Count", lb, "Sum"),
        ("lat_avg", ns, "TargetResponseTime", lb, "Average"),
        ("lat_max", ns, "TargetResponseTime", lb, "Maximum"),
        ("lat_p50", ns, "TargetResponseTime", lb, "p50"),
        ("lat_p99", ns, "TargetResponseTime", lb, "p99"),
    ])
    onset, deploy = truth["onset"], truth["deploy_time"]
    req = m["requests"]
    assert len(req) == 120 and (req.index.to_series().diff().dropna() == MIN).all()
    assert req.index[0] == truth["data_start"] and req.between(1000, 1500).all()

    t5 = m["t5xx"]
    assert (t5[t5.index < onset] <= 3).all() and (t5[t5.index >= onset] >= 150).all()
    assert t5.loc[onset] >= 150 and t5.get(onset - MIN, 0) <= 3
    assert len(t5[t5.index >= onset]) == 55
    e5 = m["e5xx"]
    assert e5.index.min() == onset and e5.between(10, 99).all()

    avg = m["lat_avg"]
    assert len(avg) == 120
    assert (avg[avg.index < deploy] < 0.2).all() and (avg[avg.index >= onset] > 2).all()
    p50, p99, mx = m["lat_p50"], m["lat_p99"], m["lat_max"]
    assert len(p99) == len(p50) == 120
    assert (p50 <= p99).all() and (p99 <= mx).all()
    assert (p99[p99.index >= onset].between(2, 10)).all() and (p99[p99.index < deploy] < 0.5).all()


def test_rds_and_ecs_metrics(sb, truth):
    rds = [{"Name": "DBInstanceIdentifier", "Value": "scr-production-postgres"}]
    ecs = [{"Name": "ClusterName", "Value": "scr-production"}, {"Name": "ServiceName", "Value": "scr-api-production"}]
    m = _metric_data(sb, truth, [
        ("conns", "AWS/RDS", "DatabaseConnections", rds, "Maximum"),
        ("rds_cpu", "AWS/RDS", "CPUUtilization", rds, "Average"),
        ("ecs_cpu", "AWS/ECS", "CPUUtilization", ecs, "Average"),
        ("ecs_mem", "AWS/ECS", "MemoryUtilization", ecs, "Average"),
    ])
    conns = m["conns"]
    assert len(conns) == 120
    assert conns[conns.index < truth["deploy_time"]].between(10, 14).all()
    assert (conns[conns.index >= truth["onset"]] == truth["max_connections"]).all()
    assert conns[conns.index < truth["onset"]].max() < truth["max_connections"]
    for key in ("rds_cpu", "ecs_cpu", "ecs_mem"):
        assert len(m[key]) == 120 and m[key].between(0, 100).all()


# ---- Logs ---------------------------------------------------------------------------------------------
def _filter(sb, pattern=None):
    logs = sb.client("logs")
    kwargs = {"logGroupName": "/ecs/scr-api-production"}
    if pattern:
        kwargs["filterPattern"] = pattern
    return [e for page in logs.get_paginator("filter_log_events").paginate(**kwargs) for e in page["events"]]


def test_log_errors_only_after_onset(sb, truth):
    onset_ms = truth["onset"].value // 1_000_000
    pool = _filter(sb, '"QueuePool limit"')
    assert len(pool) == truth["queuepool_error_events"] > 500
    assert min(e["timestamp"] for e in pool) >= onset_ms
    assert pd.Timestamp(min(e["timestamp"] for e in pool), unit="ms", tz="UTC") == truth["first_error_time"]
    baseline = _filter(sb, '"httpx.ReadTimeout"')
    assert any(e["timestamp"] < onset_ms for e in baseline) and any(e["timestamp"] >= onset_ms for e in baseline)
    everything = _filter(sb)
    assert len(everything) == truth["log_events"] and 3000 < len(everything) < 20000
    assert sum('HTTP/1.1" 500' in e["message"] for e in everything if e["timestamp"] < onset_ms) == 0
    assert sum('HTTP/1.1" 500' in e["message"] for e in everything) > 500


def test_log_streams_per_task(sb, truth):
    logs = sb.client("logs")
    streams = {s["logStreamName"]: s for s in logs.describe_log_streams(
        logGroupName="/ecs/scr-api-production")["logStreams"]}
    for task in truth["old_tasks"] + truth["new_tasks"]:
        assert f"ecs/scr-api/{task}" in streams
    deploy_ms = truth["deploy_time"].value // 1_000_000
    for task in truth["new_tasks"]:
        events = logs.get_log_events(logGroupName="/ecs/scr-api-production", logStreamName=f"ecs/scr-api/{task}",
                                     startFromHead=True, limit=5)["events"]
        assert events[0]["timestamp"] >= deploy_ms and "Started server process" in events[0]["message"]


# ---- ECS / RDS / ELB ----------------------------------------------------------------------------------
def test_ecs_deployments_and_events(sb, truth):
    ecs = sb.client("ecs")
    svc = ecs.describe_services(cluster="scr-production", services=["scr-api-production"])["services"][0]
    deps = {d["status"]: d for d in svc["deployments"]}
    primary, active = deps["PRIMARY"], deps["ACTIVE"]
    assert primary["id"] == truth["deployment_id"]
    assert primary["taskDefinition"] == truth["new_task_definition_arn"]
    assert primary["taskDefinition"].endswith(":42") and active["taskDefinition"].endswith(":41")
    assert pd.Timestamp(primary["createdAt"]) == truth["deploy_time"]
    assert primary["rolloutState"] == "IN_PROGRESS"
    assert pd.Timestamp(active["createdAt"]) < truth["deploy_time"] - pd.Timedelta(days=1)

    events = svc["events"]
    times = [pd.Timestamp(e["createdAt"]) for e in events]
    assert times == sorted(times, reverse=True)  # newest first, as ECS returns them
    in_window = [(pd.Timestamp(e["createdAt"]), e["message"]) for e in events
                 if truth["data_start"] <= pd.Timestamp(e["createdAt"]) < truth["window_end"]]
    assert any("has reached a steady state" in m and ts < truth["deploy_time"] for ts, m in in_window)
    assert any("has started 2 tasks" in m and truth["deploy_time"] <= ts < truth["onset"] for ts, m in in_window)
    assert any("has stopped 1 running tasks" in m for ts, m in in_window)
    assert any("is unhealthy in (target-group" in m and ts > truth["onset"] for ts, m in in_window)

    tds = {rev: ecs.describe_task_definition(taskDefinition=f"scr-api-production:{rev}")["taskDefinition"]
           for rev in (41, 42)}
    env = {rev: {e["name"]: e["value"] for e in td["containerDefinitions"][0]["environment"]}
           for rev, td in tds.items()}
    assert env[41]["WEBHOOK_DELIVERY"] == "queued" and env[42]["WEBHOOK_DELIVERY"] == "inline"


def test_rds_instance_and_events(sb, truth):
    rds = sb.client("rds")
    db = rds.describe_db_instances(DBInstanceIdentifier="scr-production-postgres")["DBInstances"][0]
    assert db["Engine"] == "postgres"
    assert pd.Timestamp(db["InstanceCreateTime"]) < truth["data_start"] - pd.Timedelta(days=300)
    events = rds.describe_events(SourceType="db-instance", SourceIdentifier="scr-production-postgres",
                                 StartTime=truth["data_start"].to_pydatetime(),
                                 EndTime=truth["window_end"].to_pydatetime())["Events"]
    assert [e["Message"] for e in events] == ["Backing up DB instance", "Finished DB instance backup"]
    assert all(truth["data_start"] <= pd.Timestamp(e["Date"]) <= truth["window_end"] for e in events)
    # without a time range, moto's behaviour is kept: the creation events, long ago, come back too
    assert any(e["Message"] == "DB instance created" for e in rds.describe_events()["Events"])


def test_alb_target_health(sb, truth):
    elb = sb.client("elbv2")
    lbs = elb.describe_load_balancers(Names=["scr-production-alb"])["LoadBalancers"]
    assert lbs[0]["LoadBalancerArn"].endswith("loadbalancer/" + sb.environment["alb"]["load_balancer"])
    health = elb.describe_target_health(TargetGroupArn=truth["target_group_arn"])["TargetHealthDescriptions"]
    states = sorted(h["TargetHealth"]["State"] for h in health)
    assert states == ["healthy", "healthy", "unhealthy"]
    sick = next(h for h in health if h["TargetHealth"]["State"] == "unhealthy")
    assert sick["TargetHealth"]["Reason"] == "Target.FailedHealthChecks"


def test_account_is_isolated(sb, truth):
    """The sandbox's data lives in its own moto account: a plain moto server in this process (default
    account) does not see it, and an isolated server sees only its own account."""
    from moto.backends import get_backend

    from forensics_sandbox.moto_server import ACCOUNT_ID, MotoServer

    assert sb.account_id != ACCOUNT_ID and f":{sb.account_id}:" in truth["new_task_definition_arn"]
    assert "/ecs/scr-api-production" in sb.backend("logs").groups
    other = MotoServer().start()
    try:
        probe_account = "999988887777"
        ext.isolate_account(other, probe_account)
        name = f"/probe/{uuid.uuid4()}"
        other.client("logs").create_log_group(logGroupName=name)
        assert name in get_backend("logs")[probe_account]["eu-west-1"].groups
        assert name not in get_backend("logs")[ACCOUNT_ID]["eu-west-1"].groups
        assert name not in sb.backend("logs").groups
    finally:
        other.stop()
        ext.close_server(other)
        ext.drop_account(probe_account)


# ---- PostgreSQL ---------------------------------------------------------------------------------------
ACTIVITY = """
SELECT pid, application_name, state, wait_event_type, query, pg_blocking_pids(pid) AS blockers
FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


def test_idle_in_transaction_and_top_holder(pg, truth):
    rows = pg.execute(ACTIVITY).fetchall()
    apps = pd.Series([r[1] for r in rows]).value_counts()
    assert apps.index[0] == truth["top_holder"] == "scr-api-production"
    assert len(rows) <= 28
    idle_tx = [r for r in rows if r[2] == "idle in transaction"]
    assert {r[1] for r in idle_tx} == {truth["idle_in_transaction_app"]}
    assert len(idle_tx) == truth["idle_in_transaction_count"] == 8
    assert apps["scr-worker"] >= 3


def test_lock_chain(pg, truth):
    rows = {r[0]: r for r in pg.execute(ACTIVITY).fetchall()}
    waiting = [r for r in rows.values() if r[3] == "Lock"]
    assert {r[1] for r in waiting} == {truth["blocked_app"]} and len(waiting) == 2
    first, second = (rows[p] for p in truth["blocked_pids"])
    assert first[5] == [truth["lock_holder_pid"]]
    holder = rows[truth["lock_holder_pid"]]
    assert holder[1] == truth["blocker_app"] and holder[2] == "idle in transaction"
    assert holder[4].startswith("UPDATE accounts")
    assert set(second[5]) & {truth["lock_holder_pid"], first[0]}  # queued behind the chain
    granted = pg.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = ANY(%s)",
                         (truth["blocked_pids"],)).fetchone()[0]
    assert granted >= 2


def test_slow_statement_active_and_top_by_mean(pg, truth):
    deadline = time.monotonic() + 5
    seen = False
    while time.monotonic() < deadline and not seen:
        seen = any(r[1] == "scr-reports" and r[2] == "active" and truth["slow_statement"] in r[4]
                   for r in pg.execute(ACTIVITY).fetchall())
        time.sleep(0.05)
    assert seen, "the slow statement was never seen active"
    top = pg.execute("SELECT query, calls, mean_exec_time::float8 FROM pg_stat_statements "
                     "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                     "ORDER BY mean_exec_time DESC LIMIT 3").fetchall()
    assert truth["slow_statement"] in top[0][0]
    assert top[0][1] >= 1 and top[0][2] >= 100
    assert top[1][2] < top[0][2] / 5


# ---- params -------------------------------------------------------------------------------------------
def test_write_params_load(sb, truth, tmp_path):
    env_path, inc_path = tmp_path / "environments" / "sandbox.yaml", tmp_path / "incidents" / "sandbox.yaml"
    sb.write_params(env_path, inc_path)
    inc = load_incident(inc_path)
    assert inc.incident == "SANDBOX-POOL-EXHAUSTION" and inc.severity == "P1"
    assert inc.window.start == truth["window_start"] and inc.window.end == truth["window_end"]
    assert inc.environment["aws"]["endpoint_url"] == sb.endpoint_url
    assert inc.environment["postgres"]["dsn"] == sb.cluster.dsn("forensics")
    assert sb.incident["environment"] == str(env_path.absolute())
    assert sb.incident["window"]["start"].endswith("Z") and sb.incident["window"]["end"].endswith("Z")


# ---- stop (last: it ends the module's sandbox) ----------------------------------------------------------
def _postgres_pids(datadir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "postgres" in cmd and str(datadir) in cmd:
                pids.append(int(proc.name))
    return pids


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (connections in TIME_WAIT may remain, as after any server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
            return True
        except OSError:
            return False


def test_stop_leaves_nothing(sb):
    datadir = sb.cluster.datadir
    pg_port = sb.cluster.port
    moto_port = int(sb.endpoint_url.rsplit(":", 1)[1])
    assert _postgres_pids(datadir)
    t = time.monotonic()
    sb.stop()
    assert time.monotonic() - t < 10
    assert _postgres_pids(datadir) == []
    assert _port_free(pg_port) and _port_free(moto_port)
    assert not datadir.exists()
    sb.stop()  # idempotent
    assert not sb.running


# ---- daemon -------------------------------------------------------------------------------------------
def test_daemon_up_status_down(tmp_path):
    state_dir, params_dir = tmp_path / "state", tmp_path / "params"
    assert daemon.status(state_dir)["running"] is False
    state = daemon.up(state_dir, params_dir)
    try:
        assert state["running"] and state["scenario"] == "pool-exhaustion"
        assert os.path.exists(state["env_path"]) and os.path.exists(state["incident_path"])
        assert state["env_path"] == str(params_dir / "environments" / "sandbox.yaml")
        assert daemon.status(state_dir)["running"] is True
        with pytest.raises(SandboxError, match="already running"):
            daemon.up(state_dir, params_dir)
        inc = load_incident(state["incident_path"])
        assert inc.environment["aws"]["endpoint_url"] == state["endpoint_url"]
        import boto3

        ecs = boto3.client("ecs", region_name="eu-west-1", endpoint_url=state["endpoint_url"],
                           aws_access_key_id="x", aws_secret_access_key="x")
        svc = ecs.describe_services(cluster="scr-production", services=["scr-api-production"])["services"][0]
        assert svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"
        with psycopg.connect(state["dsn"], autocommit=True) as conn:
            n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'").fetchone()[0]
            assert n == 8
        assert "sandbox ready" in (state_dir / "sandbox.log").read_text()
    finally:
        stopped = daemon.down(state_dir)
    assert stopped is True
    assert not daemon._alive(state["pid"])
    after = daemon.status(state_dir)
    assert after["running"] is False and after["stale"] is False and not (state_dir / "state.json").exists()
    assert _postgres_pids(Path(state["pg_workdir"]) / "data") == []
    assert _port_free(int(state["endpoint_url"].rsplit(":", 1)[1]))
    assert "sandbox stopped" in (state_dir / "sandbox.log").read_text()
    assert daemon.down(state_dir) is False


def test_daemon_reports_a_failed_start(tmp_path):
    with pytest.raises(SandboxError, match="no sandbox scenario named"):
        daemon.up(tmp_path / "state", tmp_path / "params", scenario="no-such-scenario")
