"""CloudWatch source against the sandbox's moto server: metrics put with boto3, read back through
``get_metric_data``. (Percentile behaviour is covered with the Stubber in tests/unit: the sandbox may
teach moto percentiles process-wide, so moto's own HTTP 500 is not a stable fact here.)"""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest

from forensics._aws import client_config
from forensics.errors import SourceError
from forensics_sandbox.pg_cluster import free_port
from forensics.sources import TS_DTYPE
from forensics.sources import cloudwatch as cw
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox


@pytest.fixture
def window():
    end = pd.Timestamp.now(tz="UTC").floor("10min") - pd.Timedelta(minutes=10)  # aligned to 300 s too
    return IncidentWindow(end - pd.Timedelta(minutes=30), end)


def _put(moto_server, namespace, metric, dims, points, unit=None):
    client = moto_server.client("cloudwatch")
    data = []
    for ts, value in points:
        d = {"MetricName": metric, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
             "Timestamp": ts.to_pydatetime(), "Value": float(value)}
        if unit:
            d["Unit"] = unit
        data.append(d)
    for i in range(0, len(data), 500):
        client.put_metric_data(Namespace=namespace, MetricData=data[i:i + 500])


def test_rds_set_reads_back_values_stats_units_in_utc(moto_server, aws_env, window):
    db = f"db-{uuid.uuid4().hex[:8]}"
    dims = {"DBInstanceIdentifier": db}
    minutes = [window.start + pd.Timedelta(minutes=m) for m in range(30)]
    # two samples a minute: Maximum must pick the larger, Average the mean
    _put(moto_server, "AWS/RDS", "DatabaseConnections", dims,
         [(t, 10 + m) for m, t in enumerate(minutes)] + [(t + pd.Timedelta(seconds=30), 100 + m)
                                                         for m, t in enumerate(minutes)])
    _put(moto_server, "AWS/RDS", "CPUUtilization", dims,
         [(t, 20) for t in minutes] + [(t + pd.Timedelta(seconds=30), 40) for t in minutes])
    df = cw.get_metric_data(cw.rds_queries(db), window, aws=aws_env)

    assert df.attrs["period"] == 60 and df.attrs["calls"] == 1
    assert str(df["timestamp"].dtype) == TS_DTYPE
    conns = df[df["id"] == "db_connections"]
    assert conns["timestamp"].tolist() == minutes
    assert conns["value"].tolist() == [100.0 + m for m in range(30)]
    assert set(conns["unit"]) == {"Count"} and set(conns["stat"]) == {"Maximum"}
    cpu = df[df["id"] == "db_cpu"]
    assert cpu["value"].tolist() == [30.0] * 30 and set(cpu["unit"]) == {"Percent"}
    # series with no data are simply absent; ids keep query order
    assert list(dict.fromkeys(df["id"])) == ["db_connections", "db_cpu"]
    w = cw.wide(df)
    assert list(w.columns) == ["db_connections", "db_cpu"] and len(w) == 30


def test_period_aggregates_and_aligns(moto_server, aws_env, window):
    ns = f"Forensics/IT/{uuid.uuid4().hex[:8]}"
    _put(moto_server, ns, "Jobs", {"Queue": "q"},
         [(window.start + pd.Timedelta(minutes=m), 1) for m in range(30)])
    q = [cw.MetricQuery("jobs", ns, "Jobs", {"Queue": "q"}, "Sum")]
    df = cw.get_metric_data(q, window, 300, aws=aws_env)
    assert df["value"].tolist() == [5.0] * 6
    assert all(ts.minute % 5 == 0 and ts.second == 0 for ts in df["timestamp"])

    shifted = IncidentWindow(window.start + pd.Timedelta(minutes=2), window.end)  # unaligned start
    df2 = cw.get_metric_data(q, shifted, 300, aws=aws_env)
    assert df2["timestamp"].iloc[0] == window.start  # the bucket that contains the window start
    assert df2["value"].tolist() == [5.0] * 6


def test_alb_counts_without_percentiles(moto_server, aws_env, window):
    lb = f"app/alb-{uuid.uuid4().hex[:6]}/50dc6c495c0c9188"
    dims = {"LoadBalancer": lb}
    ts = [window.start + pd.Timedelta(minutes=m) for m in range(10)]
    _put(moto_server, "AWS/ApplicationELB", "RequestCount", dims, [(t, 100) for t in ts], "Count")
    _put(moto_server, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims,
         [(t, 7) for t in ts[5:]], "Count")
    _put(moto_server, "AWS/ApplicationELB", "TargetResponseTime", dims, [(t, 0.5) for t in ts], "Seconds")
    plain, pct = cw.split_percentiles(cw.alb_queries(lb))
    assert [q.stat for q in pct] == ["p50", "p95", "p99"]
    w = cw.wide(cw.get_metric_data(plain, window, aws=aws_env))
    assert w["requests"].sum() == 1000.0
    assert w["target_5xx"].dropna().index.tolist() == ts[5:]
    assert (w["latency_avg"] == 0.5).all()


def test_no_data_is_an_empty_frame_with_the_contract(aws_env, window):
    q = cw.rds_queries(f"absent-{uuid.uuid4().hex[:8]}")
    df = cw.get_metric_data(q, window, aws=aws_env)
    assert df.empty and list(df.columns) == ["timestamp", "id", "label", "value", "stat", "unit"]
    assert str(df["timestamp"].dtype) == TS_DTYPE and df["value"].dtype == "float64"


def test_unreachable_endpoint_is_a_quick_source_error(window):
    aws = {"region": "eu-west-1", "profile": None, "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="unreachable") as err:
        cw.get_metric_data(cw.rds_queries("db1"), window, aws=aws,
                           config=client_config(connect_timeout=1, read_timeout=2, max_attempts=1))
    assert time.monotonic() - t0 < 5
    assert err.value.source == "cloudwatch" and err.value.__cause__ is not None
