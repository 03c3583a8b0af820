from __future__ import annotations

import random

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forensics.analysis.signatures import TOP_COLUMNS, assign, mask, mask_many, top

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
        # host:port with a host name, mm:ss and "<1 sec" durations, syslog/ctime dates.
        ("chrome.exe - proxy.example.edu.hk:5070 open", "chrome.exe - <*> open"),
        ("connect to db-1.internal:5432 failed", "connect to <*> failed"),
        ("lifetime 00:02", "lifetime <*>"),
        ("lifetime <1 sec", "lifetime <*>"),
        ("connection from 10.1.2.3 () at Sun Jul 24 02:38:22 2005", "connection from <*> () at <*>"),
        ("last run Jun 11 03:04:05", "last run <*>"),
        # A host name holding an address is a variable as a whole; the field name stays.
        ("rhost=ec2-52-80-34-196.cn-north-1.compute.amazonaws.com.cn", "rhost=<*>"),
        ("for customer-187-141-143-180-sta.example.com.mx [187.141.143.180]", "for <*> [<*>]"),
        ("dial fe80::1ff:fe23:4567:890a timed out", "dial <*> timed out"),
        ("sent 1190 bytes (1.16 KB)", "sent <*> (<*>)"),
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


def test_first_token_with_few_values_is_kept():
    # Formerly "the first token is never generalised", a rule settled on the five dev systems; it
    # split every Proxifier-like line by program name. Now the first token is a slot like any other.
    msgs = pd.Series([f"{k} set to {i}" for k in ["tickTime", "maxSessionTimeout", "minSessionTimeout"] for i in (1, 2)])
    assert assign(msgs).nunique() == 3


def _proxy_lines(seed: int) -> pd.DataFrame:
    """Proxifier-like lines: a program name first, host:port tokens, four events (regression)."""
    rnd = random.Random(seed)
    programs = ["chrome.exe"] * 20 + ["firefox.exe"] * 5 + ["Dropbox.exe", "QQ.exe", "git.exe", "svchost.exe"]
    dests = ["www.example.com:443", "183.62.156.108:22", "api.example.org:443", "mail.example.net:80"]
    rows = []
    for _ in range(400):
        p, d, r = rnd.choice(programs), rnd.choice(dests), rnd.random()
        if r < 0.4:
            rows.append((f"{p} - {d} open through proxy proxy.example.edu.hk:5070 HTTPS", "open"))
        elif r < 0.5:
            rows.append((f"{p} - {d} open through proxy proxy.example.edu.hk:5070 SOCKS5", "socks"))
        elif r < 0.9:
            life = rnd.choice(["<1 sec", "00:01", "00:12", "01:02:03"])
            a, b = rnd.randrange(50000), rnd.randrange(50000)
            rows.append((f"{p} - {d} close, {a} bytes sent, {b} bytes received, lifetime {life}", "close"))
        else:
            rows.append((f"{p} - {d} error : Could not connect through proxy proxy.example.edu.hk:5070", "error"))
    return pd.DataFrame(rows, columns=["message", "event"])


def test_host_port_heavy_messages_group_by_event():
    frame = _proxy_lines(1)
    sig = assign(frame["message"])
    # Exactly one signature per event, and each event in one signature.
    assert pd.crosstab(sig, frame["event"]).astype(bool).sum(axis=0).eq(1).all()
    assert sig.nunique() == frame["event"].nunique()
    assert "<*> - <*> open through proxy <*> HTTPS" in set(sig)


def test_free_text_syslog_lines():
    users = ["root", "news", "cyrus", "test", "guest", "admin", "oracle"]
    msgs = [f"session opened for user {u} by (uid=0)" for u in users] * 3
    msgs += [f"connection from 10.0.{i}.7 () at Sun Jul {10 + i} 02:38:{10 + i} 2005" for i in range(8)]
    # One-off kernel lines of the same length stay one signature each.
    singles = ["Memory: 125312k/129720k available", "Console: colour VGA+ 80x25", "Checking 'hlt' instruction"]
    msgs += singles + ["cupsd startup succeeded", "syslogd startup succeeded"]
    sig = assign(pd.Series(msgs))
    assert sig.iloc[:21].nunique() == 1 and sig.iloc[0] == "session opened for user <*> by (uid=<*>)"
    assert sig.iloc[21:29].nunique() == 1 and sig.iloc[21] == "connection from <*> () at <*>"
    assert sig.iloc[29:32].nunique() == 3
    # Two services, once each: too few values to call the slot a variable.
    assert sig.iloc[32:].nunique() == 2


def test_partly_masked_slot_is_a_variable():
    # OpenSSH regression: rDNS names with and without an address in them, in the same slot.
    msgs = ["reverse mapping checking getaddrinfo for ns.example.com [1.2.3.4] failed"] * 2
    msgs += [f"reverse mapping checking getaddrinfo for h-1-2-3-{i}.example.net [1.2.3.{i}] failed" for i in range(3)]
    assert assign(pd.Series(msgs)).nunique() == 1


def test_order_independent_on_mixed_batch():
    frame = _proxy_lines(2)
    msgs = pd.concat([frame["message"], pd.Series([f"Invalid user u{i} from 10.0.0.{i}" for i in range(9)])])
    msgs = msgs.reset_index(drop=True)
    a = assign(msgs)
    for seed in (1, 2, 3):
        b = assign(msgs.sample(frac=1.0, random_state=seed))
        assert a.equals(b.loc[a.index])


@pytest.mark.parametrize(
    "line",
    [
        "ssh2 login from 10.0.0.1 port 22",
        "IPv4 address 0x1f on x86_64 node-7",
        "GET /api%2Fv1/items?id=42 took 12ms",
        "status code 502 after 3 retries at 2026-05-30T09:05:00Z",
        "i=1ea29;b=771 Exception: 1001E|Critical",
    ],
)
def test_mask_many_equals_mask_for_every_digit_variant(line):
    rnd = random.Random(line)
    variants = [line] + ["".join(rnd.choice("0123456789") if c.isdigit() else c for c in line) for _ in range(30)]
    assert mask_many(variants) == [mask(v) for v in variants]


@pytest.mark.parametrize(
    "line",
    [
        # Digits left beside a variable: whether a token repeats the one before depends on them.
        "k1=/a k1=/b k2=/c x86_64 done",
        "blk_1 b2:<*> b2:<*> 50% of 3 ٣ é12",
    ],
)
def test_mask_many_when_repeated_tokens_differ_by_digits(line):
    rnd = random.Random(line)
    variants = [line] + ["".join(rnd.choice("12") if c in "0123456789" else c for c in line) for _ in range(30)]
    variants += [line.replace("2", "1"), line.replace("1", "2")]  # neighbours equal, then not
    masked = mask_many(variants)
    assert masked == [mask(v) for v in variants]
    assert len(set(masked)) > 1  # some variants drop the repeated token, some keep it


# Pieces that the masks cut on, so random texts cross their borders (digits, separators, units).
_PIECES = [
    "k1=", "/a", "/b1", " ", "  ", "\t", "blk_", "-", "12", "3", "0x1f", ":", "::", ".", "a", "B", "ssh2", "x86_64",
    "<*>", "<", ">", "*", "'", '"', "=", "@", "ex.com", "%", "1.5", "ms", " s", "Jun", " 11 ", "2024-01-02", "T",
    "10:11:12", "é", "٣", "(", ")", "[", "]", "{", "}", ",", ";", "req-", "ab12cd34ef", "deadbeef0", "http://h/1",
    "db-1.int:5432", "fe80::1",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), min_size=1, max_size=25),
    digits=st.lists(st.lists(st.sampled_from("0123456789"), min_size=40, max_size=40), min_size=1, max_size=4),
)
def test_mask_many_equals_mask_on_random_texts(pieces, digits):
    """Masking once per digit shape is exact: the same as ``mask`` of each text, whatever the digits."""
    line = "".join(pieces)
    variants = [line]
    for fresh in digits:
        it = iter(fresh * (len(line) // 40 + 1))
        variants.append("".join(next(it) if c in "0123456789" else c for c in line))
    assert mask_many(variants) == [mask(v) for v in variants]


def test_assign_takes_any_input_kind():
    msgs = ["retry 3 of 5", "retry 4 of 5", None, 7, "retry 1 of 5"]
    from_list = assign(msgs)
    assert str(from_list.dtype) == "string" and from_list.name == "signature"
    assert from_list.tolist() == ["retry <*> of <*>"] * 2 + [pd.NA, "<*>", "retry <*> of <*>"]
    indexed = pd.Series(msgs, index=list("abcde"), dtype=object)
    assert assign(indexed).reset_index(drop=True).equals(from_list)
    assert assign(pd.Series(msgs[:2] + msgs[4:], dtype="category")).tolist() == ["retry <*> of <*>"] * 3
    assert assign(pd.Series([], dtype=object)).empty and assign([None]).isna().all()


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
