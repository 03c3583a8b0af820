"""cloudwatch.alarm_history without a server: request shape, paging, HistoryData parsing, frame contract
(botocore Stubber on a real read-only client, which validates every request against the service model)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from botocore.stub import Stubber

from forensics import _aws
from forensics.errors import SourceError
from forensics.sources import TS_DTYPE
from forensics.sources import cloudwatch as cw
from forensics.window import IncidentWindow

OFFLINE = {"region": "eu-west-1", "profile": None, "endpoint_url": "http://127.0.0.1:9"}
WINDOW = IncidentWindow("2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z")
UTC = dt.timezone.utc


def _item(name, minute, old="OK", new="ALARM", data=True):
    item = {"AlarmName": name, "AlarmType": "MetricAlarm", "Timestamp": dt.datetime(2026, 11, 23, 10, minute, tzinfo=UTC),
            "HistoryItemType": "StateUpdate", "HistorySummary": f"Alarm updated from {old} to {new}"}
    if data is True:
        item["HistoryData"] = json.dumps({"version": "1.0", "oldState": {"stateValue": old},
                                          "newState": {"stateValue": new, "stateReason": "Threshold Crossed"}})
    elif data is not None:
        item["HistoryData"] = data
    return item


def _expected(**extra):
    return {"HistoryItemType": "StateUpdate", "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
            "StartDate": WINDOW.start.to_pydatetime(), "EndDate": WINDOW.end.to_pydatetime(),
            "ScanBy": "TimestampAscending", **extra}


def test_pages_are_followed_and_the_frame_is_the_change_event_contract():
    client = _aws.client("cloudwatch", OFFLINE)
    with Stubber(client) as stub:
        stub.add_response("describe_alarm_history",
                          {"AlarmHistoryItems": [_item("b-db", 7), _item("a-5xx", 6)], "NextToken": "t1"}, _expected())
        stub.add_response("describe_alarm_history",
                          {"AlarmHistoryItems": [_item("a-5xx", 40, "ALARM", "OK"), _item("c", 41, data="not json"),
                                                 _item("d", 42, data=None)]},
                          _expected(NextToken="t1"))
        df = cw.alarm_history(WINDOW, client=client)
        stub.assert_no_pending_responses()
    assert list(df.columns) == list(cw.ALARM_HISTORY_COLUMNS)
    assert str(df["timestamp"].dtype) == TS_DTYPE
    assert df["alarm_name"].tolist() == ["a-5xx", "b-db", "a-5xx", "c", "d"]
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-11-23T10:06:00Z")
    assert df["resource"].tolist() == df["alarm_name"].tolist()
    assert set(df["source"]) == {"cloudwatch"} and set(df["kind"]) == {"alarm"}
    assert df["message"].iloc[2] == "Alarm updated from ALARM to OK"
    assert df["new_state"].tolist()[:3] == ["ALARM", "ALARM", "OK"]
    assert df["new_state"].iloc[3:].isna().all()  # unparsable or absent HistoryData


def test_one_call_per_named_alarm_and_items_outside_the_window_dropped():
    client = _aws.client("cloudwatch", OFFLINE)
    late = dict(_item("a-5xx", 0), Timestamp=dt.datetime(2026, 11, 23, 11, 0, tzinfo=UTC))  # end is exclusive
    with Stubber(client) as stub:
        stub.add_response("describe_alarm_history", {"AlarmHistoryItems": [_item("a-5xx", 6), late]},
                          _expected(AlarmName="a-5xx"))
        stub.add_response("describe_alarm_history", {"AlarmHistoryItems": []}, _expected(AlarmName="b-db"))
        df = cw.alarm_history(WINDOW, client=client, alarm_names=["a-5xx", "b-db"])
        stub.assert_no_pending_responses()
    assert df["alarm_name"].tolist() == ["a-5xx"]


def test_nothing_is_an_empty_frame_with_the_columns_and_errors_are_source_errors():
    client = _aws.client("cloudwatch", OFFLINE)
    with Stubber(client) as stub:
        stub.add_response("describe_alarm_history", {"AlarmHistoryItems": []}, _expected())
        empty = cw.alarm_history(WINDOW, client=client)
        stub.add_client_error("describe_alarm_history", "AccessDenied", "not allowed", 403)
        with pytest.raises(SourceError, match="DescribeAlarmHistory failed: AccessDenied"):
            cw.alarm_history(WINDOW, client=client)
    assert empty.empty and list(empty.columns) == list(cw.ALARM_HISTORY_COLUMNS)
    assert str(empty["timestamp"].dtype) == TS_DTYPE


def test_the_call_is_recorded_as_json():
    d = cw.alarm_history_call(WINDOW, ["a-5xx"]).args
    assert json.loads(json.dumps(d))["args"]["StartDate"] == "2026-11-23T10:00:00Z"
    assert d["args"]["AlarmNames"] == ["a-5xx"] and d["api"] == "cloudwatch:DescribeAlarmHistory"
