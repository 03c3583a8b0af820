"""CloudWatch: percentile statistics in ``GetMetricData`` and a served ``DescribeAlarmHistory``.

- ``GetMetricData`` with ``pNN`` / ``pNN.N`` (moto answers HTTP 500): computed from the raw samples by
  nearest rank;
- ``DescribeAlarmHistory`` (moto: not implemented) serves the state changes planted by
  :func:`add_alarm_history`: ``StartDate``/``EndDate``, ``HistoryItemType``, ``AlarmName``,
  ``AlarmTypes``, ``ScanBy``, paged by ``MaxRecords``/``NextToken``.
"""

from __future__ import annotations

import json
import math
import re

from .paging import paginate
from .patching import patch_once, serve
from .times import aware, epoch_utc

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


# ---- percentiles --------------------------------------------------------------------------------------
def percentile(values, p: float):
    """Nearest-rank percentile of ``values`` (``None`` when there are none)."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(data)))
    return data[min(rank, len(data)) - 1]


def install_percentiles() -> None:
    from moto.cloudwatch.models import Statistics

    def make(original):
        def get_statistics_for_type(self, stat: str):
            m = _PERCENTILE.match(stat or "")
            if m:
                return percentile(self.metric_single_values_list, float(m.group(1)))
            return original(self, stat)

        return get_statistics_for_type

    patch_once(Statistics, "get_statistics_for_type", make)


# ---- alarm history ------------------------------------------------------------------------------------
def install_alarm_history() -> None:
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def describe_alarm_history(self):
        params = self._get_params()
        return ActionResult(alarm_history_page(
            list(getattr(self.cloudwatch_backend, "forensics_alarm_history", [])),
            alarm_name=params.get("AlarmName"), alarm_types=params.get("AlarmTypes"),
            history_item_type=params.get("HistoryItemType"), start_date=params.get("StartDate"),
            end_date=params.get("EndDate"), max_records=params.get("MaxRecords"),
            next_token=params.get("NextToken"), scan_by=params.get("ScanBy")))

    serve(CloudWatchResponse, "describe_alarm_history", describe_alarm_history)


def alarm_history_page(items: list[dict], *, alarm_name=None, alarm_types=None, history_item_type=None,
                       start_date=None, end_date=None, max_records=None, next_token=None, scan_by=None) -> dict:
    """One ``DescribeAlarmHistory`` page of ``items`` (AlarmHistoryItem dicts), as CloudWatch serves it:
    metric alarms only unless ``AlarmTypes`` says otherwise, ``StartDate`` <= Timestamp <= ``EndDate``,
    newest first unless ``ScanBy=TimestampAscending``, ``MaxRecords`` 1..100 (default 100)."""
    from moto.cloudwatch.exceptions import InvalidParameterValue

    size = int(max_records or 100)
    if not 1 <= size <= 100:
        raise InvalidParameterValue("MaxRecords must be between 1 and 100.")
    if scan_by not in (None, "TimestampDescending", "TimestampAscending"):
        raise InvalidParameterValue(f"Invalid ScanBy {scan_by!r}.")
    types = set(alarm_types or ["MetricAlarm"])
    start, end = epoch_utc(start_date), epoch_utc(end_date)
    selected = [i for i in items
                if (alarm_name is None or i["AlarmName"] == alarm_name) and i["AlarmType"] in types
                and (history_item_type is None or i["HistoryItemType"] == history_item_type)
                and (start is None or i["Timestamp"] >= start) and (end is None or i["Timestamp"] <= end)]
    selected.sort(key=lambda i: (i["Timestamp"], i["AlarmName"]), reverse=scan_by != "TimestampAscending")
    return paginate(selected, "AlarmHistoryItems", size, next_token)


def add_alarm_history(cloudwatch_backend, alarm_name: str, old_state: str, new_state: str, date, *,
                      reason: str, reason_data: dict | None = None, alarm_type: str = "MetricAlarm") -> dict:
    """A ``StateUpdate`` history item ``DescribeAlarmHistory`` returns (shaped as CloudWatch writes it).
    When the alarm exists (``put_metric_alarm``) and this is its latest change, ``describe_alarms``
    shows the same state, reason and time."""
    when = aware(date)
    item = {"AlarmName": alarm_name, "AlarmType": alarm_type, "Timestamp": when, "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {old_state} to {new_state}",
            "HistoryData": json.dumps({
                "version": "1.0",
                "oldState": {"stateValue": old_state},
                "newState": {"stateValue": new_state, "stateReason": reason,
                             **({"stateReasonData": reason_data} if reason_data else {})}})}
    cloudwatch_backend.__dict__.setdefault("forensics_alarm_history", []).append(item)
    alarm = getattr(cloudwatch_backend, "alarms", {}).get(alarm_name)
    if alarm is not None and (getattr(alarm, "forensics_state_at", None) is None or alarm.forensics_state_at <= when):
        alarm.forensics_state_at = when
        alarm.state_value = new_state
        alarm.state_reason = reason
        alarm.state_reason_data = json.dumps(reason_data or {})
        alarm.state_updated_timestamp = when
    return item
