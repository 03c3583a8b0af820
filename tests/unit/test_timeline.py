from __future__ import annotations

import pandas as pd
import pytest

from forensics import contracts
from forensics.analysis import timeline as tl
from forensics.analysis.onset import find_onsets

T = pd.Timestamp("2026-05-30T09:00:00Z")


def events(rows, extra=False):
    frame = pd.DataFrame(rows, columns=["timestamp", "source", "resource", "kind", "message"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    if extra:
        frame["task_definition"] = "api:42"
    return frame


DEPLOYS = events(
    [
        (T - pd.Timedelta("3h"), "ecs", "prod/api", "deployment", "api:41 (ACTIVE)"),
        (T, "ecs", "prod/api", "deployment", "api:42 (PRIMARY)"),
    ],
    extra=True,
)
SERVICE = events(
    [
        (T + pd.Timedelta("1min"), "ecs", "prod/api", "service-event", "has started 2 tasks"),
        (T + pd.Timedelta("4min"), "ecs", "prod/api", "service-event", "registered 2 targets"),
        (T + pd.Timedelta("9min"), "ecs", "prod/api", "task-stopped", "Essential container exited"),
    ]
)


def test_merge_sorts_dedupes_keeps_contract_columns():
    merged = tl.merge(SERVICE, DEPLOYS, DEPLOYS, None, tl.empty())
    assert list(merged.columns) == tl.COLUMNS
    assert len(merged) == 5  # the repeated deployments frame is deduplicated
    assert merged["timestamp"].is_monotonic_increasing
    assert str(merged["timestamp"].dtype) == contracts.TS_DTYPE  # one dtype for every event frame
    assert merged.iloc[0]["message"] == "api:41 (ACTIVE)"


def test_merge_naive_and_offset_timestamps_become_utc():
    a = events([("2026-05-30T11:00:00+02:00", "rds", "db-1", "rds-event", "failover")])
    b = events([(pd.Timestamp("2026-05-30T08:59:00"), "x", "y", "alarm", "z")])
    merged = tl.merge(a, b)
    assert merged["timestamp"].tolist() == [T - pd.Timedelta("1min"), T]


def test_merge_accepts_onsets_and_alarm_history():
    idx = pd.date_range(T - pd.Timedelta("2h"), periods=180, freq="1min")
    s = pd.Series(1.0, index=idx)
    s.iloc[::2] = 1.1
    s.iloc[125:] = 50.0
    onsets = find_onsets(s)
    alarms = pd.DataFrame(
        {
            "AlarmName": ["api-5xx"],
            "Timestamp": [T + pd.Timedelta("7min")],
            "HistoryItemType": ["StateUpdate"],
            "HistorySummary": ["Alarm updated from OK to ALARM"],
        }
    )
    alarms = alarms.rename(columns={"Timestamp": "timestamp"})
    merged = tl.merge(DEPLOYS, onsets, alarms)
    kinds = merged["kind"].tolist()
    assert "onset" in kinds and "alarm-stateupdate" in kinds
    onset_row = merged[merged["kind"] == "onset"].iloc[0]
    assert onset_row["timestamp"] == idx[125]
    assert "50" in onset_row["message"]
    alarm_row = merged[merged["kind"] == "alarm-stateupdate"].iloc[0]
    assert alarm_row["resource"] == "api-5xx" and alarm_row["source"] == "cloudwatch"


def test_onsets_as_events_source_and_resource():
    onsets = pd.DataFrame(
        {"start": [T], "end": [T + pd.Timedelta("5min")], "score": [12.0], "peak": [0.2], "baseline": [0.001]}
    )
    ev = tl.onsets_as_events(onsets, source="alb", resource="app/prod")
    assert ev.iloc[0][["source", "resource", "kind"]].tolist() == ["alb", "app/prod", "onset"]
    assert "2026-05-30T09:05:00Z" in ev.iloc[0]["message"]
    assert tl.onsets_as_events(onsets.iloc[:0], "alb", "x").empty


def test_change_before_prefers_deployment_over_later_events():
    changes = tl.merge(DEPLOYS, SERVICE)
    onset = T + pd.Timedelta("5min")
    row = tl.change_before(changes, onset)
    assert row["kind"] == "deployment" and row["message"] == "api:42 (PRIMARY)"
    d = tl.describe(row)
    assert d == {
        "time": "2026-05-30T09:00:00Z",
        "source": "ecs",
        "resource": "prod/api",
        "kind": "deployment",
        "message": "api:42 (PRIMARY)",
    }
    # Without deployments in the lookback: the latest service event before the onset, never after.
    row = tl.change_before(changes, onset, kinds=("service-event",))
    assert row["message"] == "registered 2 targets"
    assert tl.change_before(changes, onset, lookback="2min", kinds=("deployment",)) is None
    assert tl.change_before(changes, T - pd.Timedelta("4h")) is None
    assert tl.describe(None) is None


def test_change_before_slack_admits_event_inside_the_onset_period():
    changes = tl.merge(events([(T + pd.Timedelta("20s"), "ecs", "prod/api", "deployment", "api:43")]))
    assert tl.change_before(changes, T) is None
    assert tl.change_before(changes, T, slack="60s")["message"] == "api:43"


def test_merge_rejects_frames_without_timestamp():
    with pytest.raises(ValueError):
        tl.merge(pd.DataFrame({"when": [T]}))
