"""Captures of the security notebook beyond the window's trail (declared with the registry's API).

``cloudtrail_baseline_days``: the trail's records of the ``cloudtrail.baseline_days`` (default 14) before
the window, from the trail's bucket: what each actor usually does (APIs, networks, denials, breadth), the
baseline of :mod:`forensics.detection.behaviour`. Days, not hours: a weekly job or an on-call engineer
must not look new. Only with ``cloudtrail.bucket`` (LookupEvents at 2 calls/s cannot serve days of a
busy account); without it the notebook falls back to ``cloudtrail_baseline`` (hours). The record's JSON
(``detail``) is dropped from the baseline: signals read only who, where, what and whether it failed.
"""

from __future__ import annotations

import pandas as pd

from . import registry
from .registry import LOGS, Capture, declare

#: default ``cloudtrail.baseline_days``
BASELINE_DAYS = 14


def baseline_days(inc) -> int:
    return int((inc.env.get("cloudtrail") or {}).get("baseline_days") or BASELINE_DAYS)


def _baseline_window(inc):
    from .window import IncidentWindow

    return IncidentWindow(inc.window.start - pd.Timedelta(days=baseline_days(inc)), inc.window.start)


def _pull(inc) -> pd.DataFrame:
    from .sources import cloudtrail_s3

    df = cloudtrail_s3.trail_events(inc.env["cloudtrail"], _baseline_window(inc), aws=inc.aws)
    attrs = dict(df.attrs)
    df = df.drop(columns=[c for c in ("detail",) if c in df.columns])
    df.attrs.update(attrs)
    return df


def _describe(inc) -> dict:
    from .sources import cloudtrail_s3

    return {"api": "s3:ListObjectsV2+GetObject", "baseline_days": baseline_days(inc),
            **cloudtrail_s3.call_description(inc.env["cloudtrail"], _baseline_window(inc))}


def _columns():
    from .sources.cloudtrail import RECORD_COLUMNS

    return {k: v for k, v in RECORD_COLUMNS.items() if k != "detail"}


declare(Capture("cloudtrail_baseline_days", "cloudtrail", "cloudtrail:s3 trail (baseline days)", _pull, _describe,
                ("cloudtrail.bucket",), _columns(), LOGS,
                doc="The trail's records of the cloudtrail.baseline_days (default 14) before the window, from "
                    "its bucket: the behaviour baseline (each actor's usual APIs, networks, denials)."))

del registry
