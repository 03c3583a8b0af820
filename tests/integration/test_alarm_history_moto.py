"""CloudWatch DescribeAlarmHistory: the sandbox's in-process handler (moto lacks it), read through plain
boto3 and through forensics.sources.cloudwatch.alarm_history against a real moto server on loopback."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from forensics.errors import SourceError
from forensics_sandbox import moto_ext as ext
from forensics.sources import TS_DTYPE, cloudwatch
from forensics.window import IncidentWindow

pytestmark = pytest.mark.sandbox
T0 = pd.Timestamp("2026-11-23T10:00:00Z")
ALARM = "test-alarm-history-5xx"
OTHER = "test-alarm-history-latency"


@pytest.fixture(scope="module")
def history(moto_server):
    ext.install()
    cw = moto_server.client("cloudwatch")
    for name in (ALARM, OTHER):
        cw.put_metric_alarm(AlarmName=name, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
                            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=50.0,
                            ComparisonOperator="GreaterThanOrEqualToThreshold")
    backend = moto_server.backend("cloudwatch")
    backend.__dict__.pop("forensics_alarm_history", None)
    # 130 flaps of OTHER every 30 s from T0 (pages of 100), and ALARM: OK->ALARM at T0+6min, ALARM->OK at T0+50min
    for i in range(130):
        old, new = ("OK", "ALARM") if i % 2 == 0 else ("ALARM", "OK")
        ext.add_alarm_history(backend, OTHER, old, new, T0 + pd.Timedelta(seconds=30 * i), reason="flap")
    ext.add_alarm_history(backend, ALARM, "OK", "ALARM", T0 + pd.Timedelta(minutes=6),
                          reason="Threshold Crossed: 1 datapoint [312.0] was >= the threshold (50.0).")
    ext.add_alarm_history(backend, ALARM, "ALARM", "OK", T0 + pd.Timedelta(minutes=50), reason="back")
    ext.add_alarm_history(backend, "test-alarm-history-composite", "OK", "ALARM", T0 + pd.Timedelta(minutes=7),
                          reason="composite", alarm_type="CompositeAlarm")
    yield backend
    backend.__dict__.pop("forensics_alarm_history", None)
    cw.delete_alarms(AlarmNames=[ALARM, OTHER])


def test_boto3_filters_pages_and_orders(moto_server, history):
    cw = moto_server.client("cloudwatch")
    got = cw.describe_alarm_history(AlarmName=ALARM, HistoryItemType="StateUpdate")
    items = got["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == ["Alarm updated from ALARM to OK", "Alarm updated from OK to ALARM"]
    assert items[1]["Timestamp"] == (T0 + pd.Timedelta(minutes=6)).to_pydatetime()
    assert json.loads(items[1]["HistoryData"])["newState"]["stateValue"] == "ALARM"
    asc = cw.describe_alarm_history(AlarmName=ALARM, ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [i["Timestamp"] for i in asc] == sorted(i["Timestamp"] for i in items)
    window = {"StartDate": (T0 + pd.Timedelta(minutes=5)).to_pydatetime(),
              "EndDate": (T0 + pd.Timedelta(minutes=10)).to_pydatetime()}
    assert len(cw.describe_alarm_history(AlarmName=ALARM, **window)["AlarmHistoryItems"]) == 1
    assert cw.describe_alarm_history(AlarmName=ALARM, HistoryItemType="Action")["AlarmHistoryItems"] == []
    # metric alarms only unless AlarmTypes asks for composite ones
    assert not [i for i in cw.describe_alarm_history(**window)["AlarmHistoryItems"]
                if i["AlarmType"] == "CompositeAlarm"]
    composite = cw.describe_alarm_history(AlarmTypes=["CompositeAlarm"], **window)["AlarmHistoryItems"]
    assert [i["AlarmName"] for i in composite] == ["test-alarm-history-composite"]
    first = cw.describe_alarm_history(AlarmName=OTHER, MaxRecords=100)
    assert len(first["AlarmHistoryItems"]) == 100 and first["NextToken"]
    rest = cw.describe_alarm_history(AlarmName=OTHER, MaxRecords=100, NextToken=first["NextToken"])
    assert len(rest["AlarmHistoryItems"]) == 30 and "NextToken" not in rest
    with pytest.raises(ClientError):
        cw.describe_alarm_history(MaxRecords=101)


def test_describe_alarms_shows_the_latest_planted_state(moto_server, history):
    alarm = moto_server.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]
    assert alarm["StateValue"] == "OK" and alarm["StateReason"] == "back"
    assert alarm["StateUpdatedTimestamp"] == (T0 + pd.Timedelta(minutes=50)).to_pydatetime()


def test_source_frame_through_the_paginator(aws_env, history):
    window = IncidentWindow(T0, T0 + pd.Timedelta(hours=1))
    df = cloudwatch.alarm_history(window, aws=aws_env)
    assert list(df.columns)[:5] == ["timestamp", "source", "resource", "kind", "message"]
    assert str(df["timestamp"].dtype) == TS_DTYPE and df["timestamp"].is_monotonic_increasing
    assert len(df[df["alarm_name"] == OTHER]) == 120  # 0..119 every 30 s in [T0, T0+1h): more than one page
    mine = df[df["alarm_name"] == ALARM]
    assert mine["new_state"].tolist() == ["ALARM", "OK"]
    assert mine["timestamp"].iloc[0] == T0 + pd.Timedelta(minutes=6)
    assert set(df["kind"]) == {"alarm"} and set(df["source"]) == {"cloudwatch"}
    assert "test-alarm-history-composite" in set(df["alarm_name"])
    only = cloudwatch.alarm_history(window, aws=aws_env, alarm_names=[ALARM])
    assert only["message"].tolist() == ["Alarm updated from OK to ALARM", "Alarm updated from ALARM to OK"]
    empty = cloudwatch.alarm_history(IncidentWindow(T0 - pd.Timedelta(days=2), T0 - pd.Timedelta(days=1)),
                                     aws=aws_env)
    assert empty.empty and list(empty.columns) == list(cloudwatch.ALARM_HISTORY_COLUMNS)


def test_unreachable_endpoint_is_a_source_error():
    from botocore.config import Config

    aws = {"region": "eu-west-1", "profile": None, "endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(SourceError, match="DescribeAlarmHistory"):
        cloudwatch.alarm_history(IncidentWindow(T0, T0 + pd.Timedelta(hours=1)), aws=aws,
                                 config=Config(retries={"max_attempts": 1}, connect_timeout=1))
