from __future__ import annotations

import pandas as pd
import pytest

from forensics.analysis.signatures import TOP_COLUMNS, assign, mask, top

QUEUEPOOL = (
    "sqlalchemy.exc.TimeoutError: QueuePool limit of size {a} overflow {b} reached, "
    "connection timed out, timeout {t} (Background on this error at: https://sqlalche.me/e/20/3o7r)"
)


def test_queuepool_signature():
    msgs = pd.Series([QUEUEPOOL.format(a=5, b=10, t="30.00"), QUEUEPOOL.format(a=20, b=0, t="10.00")])
    sig = assign(msgs)
    assert sig.nunique() == 1
    assert sig.iloc[0].startswith(
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size <*> overflow <*> reached, "
        "connection timed out, timeout <*>"
    )


@pytest.mark.parametrize(
    "message, expected",
    [
        ("request 7f3e2a1c-1b2c-4d5e-8f90-0123456789ab failed", "request <*> failed"),
        ("connect to 10.0.3.17:5432 refused", "connect to <*> refused"),
        ("peer 2001:db8::1 reset", "peer <*> reset"),
        ("session 0x14ed93111f20005 expired", "session <*> expired"),
        ("commit a489c868f0c37da93b76227c91bb03908ac0e742 deployed", "commit <*> deployed"),
        ("open /var/lib/app/data/x.db: permission denied", "open <*>: permission denied"),
        ('relation "users" does not exist', 'relation "<*>" does not exist'),
        ("lock on 'orders' timed out", "lock on '<*>' timed out"),
        ("query took 1532ms", "query took <*>"),
        ("query took 1.5 s", "query took <*>"),
        ("disk 93% full", "disk <*> full"),
        ("task i-0abc123 stopped, req-9f8e7d6c", "task i-<*> stopped, req-<*>"),
        ("at 2026-05-30T09:05:00Z retry 3", "at <*> retry <*>"),
        ("GET https://api.example.com/v1/x?id=3 returned 502", "GET <*> returned <*>"),
        ("mail to ops@example.com bounced", "mail to <*> bounced"),
        ("ask 10.0.0.1:50010 to delete blk_1 blk_-2 blk_3", "ask <*> to delete blk_<*>"),
        ("ssh2 login ok", "ssh2 login ok"),
    ],
)
def test_mask(message, expected):
    assert mask(message) == expected


def test_variable_words_generalised_but_enums_kept():
    users = ["alice", "bob", "carol", "dave", "erin", "frank"]
    msgs = [f"Invalid user {u} from 10.0.0.{i}" for i, u in enumerate(users)]
    # Few values, each frequent: different events, kept apart.
    msgs += ["VM Started (Lifecycle Event)"] * 5 + ["VM Paused (Lifecycle Event)"] * 5
    msgs += ["VM Stopped (Lifecycle Event)"] * 5
    sig = assign(pd.Series(msgs))
    assert sig.iloc[: len(users)].nunique() == 1
    assert sig.iloc[0] == "Invalid user <*> from <*>"
    assert sig.iloc[len(users) :].nunique() == 3


def test_field_name_kept_when_value_varies():
    msgs = pd.Series([f"auth failure; rhost=h{i}.example.net user={u}" for i, u in enumerate("abcdef")])
    sig = assign(msgs)
    assert sig.nunique() == 1
    assert sig.iloc[0] == "auth failure; rhost=<*> user=<*>"


def test_first_token_never_generalised():
    msgs = pd.Series(
        [f"{k} set to {i}" for i, k in enumerate(["tickTime", "maxSession", "a", "b", "c", "d"])]
    )
    assert assign(msgs).nunique() == 6


def test_deterministic_and_order_independent():
    msgs = pd.Series([f"Failed password for {u} from 1.2.3.{i} port {i}" for i, u in enumerate("uvwxyzab")])
    msgs = pd.concat([msgs, pd.Series(["other message", None])], ignore_index=True)
    a = assign(msgs)
    shuffled = msgs.sample(frac=1.0, random_state=3)
    b = assign(shuffled)
    assert a.equals(b.loc[a.index])
    assert a.index.equals(msgs.index)
    assert pd.isna(a.iloc[-1])


def test_top_counts_first_last_example():
    ts = pd.date_range("2026-05-30T09:00:00Z", periods=6, freq="1min")
    msgs = pd.Series(
        [
            "timeout after 30s on 10.0.0.1",
            'relation "users" does not exist',
            "timeout after 31s on 10.0.0.2",
            "timeout after 32s on 10.0.0.3",
            'relation "orders" does not exist',
            "unique",
        ]
    )
    out = top(msgs, ts, n=2)
    assert list(out.columns) == TOP_COLUMNS
    assert len(out) == 2
    first = out.iloc[0]
    assert first["signature"] == "timeout after <*> on <*>"
    assert first["count"] == 3
    assert first["first_seen"] == ts[0] and first["last_seen"] == ts[3]
    assert first["example"] == "timeout after 30s on 10.0.0.1"
    assert out.iloc[1]["count"] == 2
    assert str(out["first_seen"].dtype).endswith("UTC]")


def test_top_uses_datetime_index_and_handles_empty():
    ts = pd.date_range("2026-05-30T09:00:00Z", periods=2, freq="1min")
    out = top(pd.Series(["a 1", "a 2"], index=ts))
    assert out.iloc[0]["count"] == 2 and out.iloc[0]["last_seen"] == ts[1]
    empty = top(pd.Series([], dtype="string"), pd.Series([], dtype="datetime64[ns, UTC]"))
    assert empty.empty and list(empty.columns) == TOP_COLUMNS
