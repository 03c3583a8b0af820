"""Scenario "db-health": storage running out, a lagging replica, and a schema behind the code.

The story: since a bulk export job started writing into ``report_exports`` the primary
``scr-production-postgres`` loses free storage steadily (about 6 GiB an hour: it will be full a few
hours after the window). At T0+30 min the read replica ``scr-production-postgres-replica`` falls behind
(ReplicaLag climbs to several minutes while it replays the export's WAL, then recovers by T0+45);
RDS says so in its events (low storage, replication lag, replication resumed). The release deployed
earlier expects alembic head ``HEAD`` (whose migration adds ``uncollectible`` to the ``invoice_status``
enum and ``chargeback`` to ``payment_kind``), but the migration failed on the full disk's statement
timeout: the database is still at ``CURRENT`` and both enum types miss those values.

Metrics not put by pool-exhaustion (FreeStorageSpace) on the primary; ReplicaLag on the replica.
The primary is created only if missing (pool-exhaustion creates it when both play).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg

from .. import moto_ext as ext
from .played import Played, register
from .common import MIGRATIONS_APP, MIN, RDS_INSTANCE, incident_fields, put_metrics, timeline

SEED = 20261127
PRIMARY = RDS_INSTANCE
REPLICA = "scr-production-postgres-replica"
CURRENT, HEAD = "9a3f0c1d5b72", "e41b7c9d2f10"
ENUMS_IN_DB = {"invoice_status": ["draft", "open", "paid", "void"], "payment_kind": ["card", "sepa", "refund"]}
ENUMS_EXPECTED = {"invoice_status": ["draft", "open", "paid", "void", "uncollectible"],
                  "payment_kind": ["card", "sepa", "refund", "chargeback"]}
GIB = 2**30
FREE_START_GIB, RATE_GIB_PER_H = 31.0, 6.0
LAG_PEAK_S = 412.0


class Plan:
    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        rng = np.random.default_rng(seed)
        self.minutes = m = pd.date_range(t["start"], t["end"], freq="min", inclusive="left")
        n = len(m)
        hours = ((m - m[0]) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
        self.free_gib = FREE_START_GIB - RATE_GIB_PER_H * hours + rng.normal(0, 0.05, n)
        self.lag_start = t["deploy"] + pd.Timedelta(minutes=30)
        self.lag_end = t["deploy"] + pd.Timedelta(minutes=45)
        lag = np.abs(rng.normal(0.4, 0.2, n))
        span = (m >= self.lag_start) & (m < self.lag_end)
        k = ((m[span] - self.lag_start) / MIN).to_numpy(dtype=float)
        peak_at = 9.0
        lag[span] = np.where(k <= peak_at, LAG_PEAK_S * k / peak_at, LAG_PEAK_S * (1 - (k - peak_at) / 6.0))
        lag[span] = np.maximum(lag[span], 1.0)
        self.peak_at = self.lag_start + pd.Timedelta(minutes=peak_at)
        lag[m == self.peak_at] = LAG_PEAK_S
        self.lag = np.round(lag, 2)
        free_pct = lambda gib: round(100 * gib / 200)  # noqa: E731 - 200 GiB allocated
        low = t["deploy"] + pd.Timedelta(minutes=12, seconds=7)
        i_low = int(np.searchsorted(m, low))
        self.events = [
            (PRIMARY, low, f"The free storage capacity for DB Instance {PRIMARY} is low at "
             f"{free_pct(self.free_gib[i_low])}% of the provisioned storage [Provisioned Storage: 200.00 GB, "
             f"Free Storage: {self.free_gib[i_low]:.2f} GB]. You may want to increase the provisioned storage "
             "to address this issue.", ["low storage"]),
            (REPLICA, self.lag_start + pd.Timedelta(minutes=5, seconds=31), "Replication for the Read Replica "
             "has fallen behind: replication lag exceeded 300 seconds.", ["read replica"]),
            (REPLICA, self.lag_end + pd.Timedelta(seconds=44), "Replication for the Read Replica resumed.",
             ["read replica"]),
        ]


def _ensure_instances(sb) -> None:
    rds = sb.client("rds")
    have = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    if PRIMARY not in have:
        rds.create_db_instance(DBInstanceIdentifier=PRIMARY, DBInstanceClass="db.t4g.medium", Engine="postgres",
                               EngineVersion="15.7", AllocatedStorage=200, StorageType="gp3", DBName="app",
                               MasterUsername="scr_admin", MasterUserPassword="sandbox-not-a-secret")  # noqa: S106
    rds.create_db_instance_read_replica(DBInstanceIdentifier=REPLICA, SourceDBInstanceIdentifier=PRIMARY,
                                        DBInstanceClass="db.t4g.medium")


def load_aws(sb, plan: Plan) -> None:
    _ensure_instances(sb)
    backend = sb.backend("rds")
    for ident, ts, msg, cats in plan.events:
        ext.add_rds_event(backend, ident, msg, cats, ts)
    cw = sb.client("cloudwatch")
    items = []
    for i, ts in enumerate(plan.minutes):
        when = ts.to_pydatetime()
        items += [{"MetricName": "FreeStorageSpace", "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": PRIMARY}],
                   "Timestamp": when, "Value": float(plan.free_gib[i] * GIB), "Unit": "Bytes"},
                  {"MetricName": "ReplicaLag", "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": REPLICA}],
                   "Timestamp": when, "Value": float(plan.lag[i]), "Unit": "Seconds"}]
    put_metrics(cw, "AWS/RDS", items)


def load_pg(cluster) -> None:
    with psycopg.connect(cluster.dsn("app", application_name=MIGRATIONS_APP), autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL, "
                     "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
        conn.execute("INSERT INTO alembic_version VALUES (%s)", (CURRENT,))
        for typ, values in ENUMS_IN_DB.items():
            conn.execute(f"CREATE TYPE {typ} AS ENUM ({', '.join(repr(v) for v in values)})")


@register("db-health")
def play(sb) -> Played:
    plan = Plan(sb.now)
    load_aws(sb, plan)
    load_pg(sb.cluster)
    t = plan.t
    hours_left = (plan.free_gib[-1]) / RATE_GIB_PER_H
    truth = {"scenario": "db-health", "primary": PRIMARY, "replica": REPLICA,
             "storage_hours_to_full": float(hours_left), "rate_gib_per_hour": -RATE_GIB_PER_H,
             "replica_lag_peak_s": LAG_PEAK_S, "replica_lag_peak_at": plan.peak_at,
             "alembic_current": CURRENT, "alembic_head": HEAD,
             "enum_missing": {k: [v for v in ENUMS_EXPECTED[k] if v not in ENUMS_IN_DB[k]] for k in ENUMS_EXPECTED},
             "rds_event_messages": [m for _, _, m, _ in plan.events]}
    incident = incident_fields("SANDBOX-DB-HEALTH", "Primary storage falling, replica lag, migration failed", "P2", t)
    resources = {"rds": {"instance": PRIMARY, "replica": REPLICA},
                 "schema": {"expected_alembic_head": HEAD, "enums": ENUMS_EXPECTED}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan", "PRIMARY", "REPLICA", "HEAD", "CURRENT"]
