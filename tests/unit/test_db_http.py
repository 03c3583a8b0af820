import pandas as pd

from forensics.analysis import db, http

T = pd.date_range("2026-11-23T09:00:00Z", periods=4, freq="1min")


def activity(rows):
    base = {"pid": 0, "backend_type": "client backend", "application_name": "", "state": "idle",
            "query": "", "query_age_s": 0.0}
    return pd.DataFrame([base | r | {"pid": i + 100} for i, r in enumerate(rows)])


def test_top_holder_ignores_our_own_session_and_breaks_ties_by_idle_in_transaction():
    act = activity([
        {"application_name": "forensics"}, {"application_name": "forensics"}, {"application_name": "forensics"},
        {"application_name": "api", "state": "idle in transaction"}, {"application_name": "api"},
        {"application_name": "worker"}, {"application_name": "worker"},
        {"application_name": "", "backend_type": "autovacuum launcher"},
    ])
    assert db.top_holder(act) == "api"
    assert db.count_by(db.client_sessions(act), "application_name") == {"api": 2, "worker": 2}
    assert db.top_holder(activity([])) is None


def test_slow_statements_merge_statistics_and_running_queries():
    stmts = pd.DataFrame({"queryid": [1, 2, 3], "query": ["SELECT sum(amount) FROM orders WHERE note LIKE $1",
                                                          "SELECT 1", "SELECT * FROM pg_stat_activity"],
                          "calls": [10, 1000, 5], "mean_exec_time": [450.0, 0.1, 300.0],
                          "total_exec_time": [4500.0, 100.0, 1500.0]})
    act = activity([{"application_name": "reports", "state": "active", "query_age_s": 0.6,
                     "query": "SELECT sum(amount) FROM orders WHERE note LIKE '%refund%'"},
                    {"application_name": "batch", "state": "active", "query_age_s": 42.0,
                     "query": "UPDATE big SET x = 1"}])
    slow = db.slow_statements(stmts, act, min_mean_ms=100)
    assert slow["query"].tolist() == ["SELECT sum(amount) FROM orders WHERE note LIKE $1", "UPDATE big SET x = 1"]
    assert slow["source"].iloc[1].startswith("running now (42.0 s")


def test_limits_and_metric_series():
    settings = pd.DataFrame([{"max_connections": 40, "superuser_reserved_connections": 3}])
    assert db.limits(settings) == {"max_connections": 40, "superuser_reserved_connections": 3,
                                   "usable_connections": 37}
    m = pd.DataFrame({"timestamp": T, "id": ["db_connections"] * 4, "value": [10, 20, 40, 40.0]})
    s = db.metric_series(m, "db_connections")
    assert s.max() == 40 and str(s.index.tz) == "UTC"
    assert db.metric_series(m, "nope").empty


def test_alb_frame_computes_error_rate_and_fills_missing_counts():
    long = pd.DataFrame({
        "timestamp": list(T) * 2 + [T[2]],
        "id": ["requests"] * 4 + ["target_5xx"] * 4 + ["elb_5xx"],
        "value": [1000, 1000, 1000, 0, 1, 0, 200, 0, 50],
    })
    f = http.alb_frame(long)
    assert f["error_rate"].round(3).tolist()[:3] == [0.001, 0.0, 0.25]
    assert pd.isna(f["error_rate"].iloc[3])  # no requests: rate unknown, not 0 and not inf
    assert http.impact(f, start=T[2]) == {"requests": 1000, "failed_requests": 250, "failed_share": 0.25}
    assert http.alb_frame(long.iloc[0:0]).empty
