"""CloudTrail: the window's and the baseline's events (the trail's bucket, else LookupEvents), S3 data access."""

from __future__ import annotations

from .. import defaults
from ..sources import cloudtrail, cloudtrail_s3
from ..sources.call import Call
from .core import events
from .engines import engine_call


def _trail_call(inc, window) -> Call:
    """The trail's bucket when the environment names it (management and data events), else LookupEvents
    (management events of the last 90 days)."""
    ct = inc.env.get("cloudtrail") or {}
    if ct.get("bucket"):
        return cloudtrail_s3.trail_call(ct, window, aws=inc.aws)
    max_events = int(ct.get("max_events") or defaults.CLOUDTRAIL_MAX_EVENTS)
    return cloudtrail.lookup_call(window, aws=inc.aws, max_events=max_events)


events("cloudtrail_events", "cloudtrail:LookupEvents | s3 trail", ["cloudtrail"],
       lambda inc: _trail_call(inc, inc.window), cloudtrail.RECORD_COLUMNS, source="cloudtrail",
       doc="Every CloudTrail event in the window: management and data events from the trail's bucket, else "
           "LookupEvents.")
events("cloudtrail_baseline", "cloudtrail:LookupEvents | s3 trail", ["cloudtrail"],
       lambda inc: _trail_call(inc, inc.baseline_window), cloudtrail.RECORD_COLUMNS, source="cloudtrail",
       doc="CloudTrail events of the baseline hours before the window: what 'known' principals and source IPs "
           "means.")


def _baseline_days_call(inc) -> Call:
    """The trail's records of the baseline days, from its bucket, without the records' JSON (``detail``): the
    behaviour signals read only who, where, what and whether it failed."""
    ct = inc.env["cloudtrail"]
    window = inc.baseline_days_window
    made = cloudtrail_s3.trail_call(ct, window, aws=inc.aws)

    def run():
        df = made.run()
        attrs = dict(df.attrs)
        df = df.drop(columns=[c for c in ("detail",) if c in df.columns])
        df.attrs.update(attrs)
        return df

    days = int(ct.get("baseline_days") or defaults.CLOUDTRAIL_BASELINE_DAYS)
    return Call(made.api, {**made.args, "baseline_days": days}, run)


events("cloudtrail_baseline_days", "cloudtrail:s3 trail (baseline days)", ["cloudtrail.bucket"], _baseline_days_call,
       {k: v for k, v in cloudtrail.RECORD_COLUMNS.items() if k != "detail"}, source="cloudtrail",
       doc="The trail's records of the cloudtrail.baseline_days (default 14) before the window, from its bucket: "
           "the behaviour baseline (each actor's usual APIs, networks, denials). LookupEvents at 2 calls/s cannot "
           "serve days of a busy account: without a bucket the notebook falls back to cloudtrail_baseline (hours).")
engine_call("cloudtrail_data_access", "cloudtrail", "cloudtrail_data_access", ("cloudtrail.bucket",),
            table=("cloudtrail_table", "cloudtrail_logs"), reads=("cloudtrail_events", "cloudtrail_logs"),
            doc="S3 object calls (data events) per principal, bucket and action, with the busiest minute.")
