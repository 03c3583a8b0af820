"""The sandbox's Logs Insights engine (sandbox/insights.py): AWS's documented query examples (the
"CloudWatch Logs Insights language query syntax" pages and their sample queries) run over small event
sets whose answers are worked out by hand here, the GetQueryResults result shape, and one
MalformedQueryError naming the culprit for every piece of syntax the engine does not run."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from forensics_sandbox import insights
from forensics_sandbox.insights import MalformedQueryError

T0 = 1_767_225_600_000  # 2026-01-01 00:00:00.000 UTC, epoch ms
TS_TEXT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def frame(events, group="/app/api", account="123456789012"):
    """``events``: [(ms after T0, message[, stream])]."""
    return insights.events_frame([T0 + e[0] for e in events], [e[1] for e in events],
                                 [e[2] if len(e) > 2 else "web-1" for e in events], group, account_id=account)


def run(query, events, **kw):
    return insights.execute(query, frame(events), **kw)


def rows(result):
    """Rows as {field: value} (the order of fields is checked separately)."""
    return [{f["field"]: f["value"] for f in row} for row in result.rows]


def strip_ptr(result):
    return [{k: v for k, v in r.items() if k != "@ptr"} for r in rows(result)]


# ---- documented examples: parse -------------------------------------------------------------------
LATENCY = [(0, "user=alice, method:GET, latency := 10"), (1000, "user=alice, method:GET, latency := 30"),
           (2000, "user=bob, method:GET, latency := 7"), (3000, "user=alice, method:POST, latency := 100"),
           (4000, "something else entirely")]


def test_doc_parse_glob_then_stats_avg_by_two_fields():
    q = ('parse @message "user=*, method:*, latency := *" as @user,\n'
         '    @method, @latency | stats avg(@latency) by @method, @user')
    got = rows(run(q, LATENCY))
    # ascending by the by-fields; the unparsed event groups under absent fields (left out of its row)
    assert got == [{"@method": "GET", "@user": "alice", "avg(@latency)": "20"},
                   {"@method": "GET", "@user": "bob", "avg(@latency)": "7"},
                   {"@method": "POST", "@user": "alice", "avg(@latency)": "100"},
                   {}]


def test_doc_parse_log_stream_four_parts_count_by_env_service():
    events = [(0, "a", "prod/api/i-1/0"), (1, "b", "prod/api/i-2/1"), (2, "c", "prod/worker/i-3/0"),
              (3, "d", "dev/api/i-4/0")]
    q = 'parse @logStream "*/*/*/*" as env, service, instance, shard | stats count(*) by env, service'
    assert rows(run(q, events)) == [{"env": "dev", "service": "api", "count(*)": "1"},
                                    {"env": "prod", "service": "api", "count(*)": "2"},
                                    {"env": "prod", "service": "worker", "count(*)": "1"}]


def test_doc_chained_parse_and_display():
    events = [(0, "GET url=/api/v2/users/42 200"), (1000, "GET url=/health 200")]
    q = 'parse @message "url=* " as url\n| parse url "/api/*/users/*" as apiVersion, userId\n| display apiVersion, userId'
    result = run(q, events)
    assert strip_ptr(result) == [{}, {"apiVersion": "v2", "userId": "42"}]  # newest first
    assert result.fields == ["apiVersion", "userId"]


def test_doc_parse_regex_named_groups_eni():
    events = [(0, "2 123456789010 eni-1235b8ca123456789 172.31.16.139 ACCEPT OK"), (1, "no interface here")]
    result = run("parse @message /(?<NetworkInterface>eni-.*?) / | display NetworkInterface, @message", events)
    assert strip_ptr(result) == [{"@message": "no interface here"},
                                 {"NetworkInterface": "eni-1235b8ca123456789", "@message": events[0][1]}]


def test_parse_regex_stats_by_named_groups():
    q = ("parse @message /user=(?<user2>.*?), method:(?<method2>.*?), latency := (?<latency2>\\d+)/ "
         "| stats avg(latency2) by method2, user2")
    assert rows(run(q, LATENCY))[:3] == [{"method2": "GET", "user2": "alice", "avg(latency2)": "20"},
                                         {"method2": "GET", "user2": "bob", "avg(latency2)": "7"},
                                         {"method2": "POST", "user2": "alice", "avg(latency2)": "100"}]


def test_parse_glob_trailing_star_takes_the_rest_and_unmatched_events_stay():
    events = [(0, "ERROR db: connection refused by host"), (1, "INFO fine")]
    result = run('parse @message "ERROR *: *" as part, reason', events)
    assert strip_ptr(result)[1]["reason"] == "connection refused by host"
    assert "reason" not in strip_ptr(result)[0] and len(result.rows) == 2


# ---- documented examples: stats, bin, filter, sample queries --------------------------------------
def test_doc_stats_count_by_field_and_bin_1h():
    hour = 3_600_000
    events = [(0, "A example.com"), (10, "AAAA example.com"), (20, "A other.com"), (hour + 5, "A x.com")]
    q = 'parse @message "* *" as queryType, name | stats count(*) by queryType, bin(1h)'
    assert rows(run(q, events)) == [
        {"queryType": "A", "bin(1h)": "2026-01-01 00:00:00.000", "count(*)": "2"},
        {"queryType": "A", "bin(1h)": "2026-01-01 01:00:00.000", "count(*)": "1"},
        {"queryType": "AAAA", "bin(1h)": "2026-01-01 00:00:00.000", "count(*)": "1"}]


def test_sample_exceptions_per_hour_sorted():
    hour = 3_600_000
    events = [(0, "java.lang.Exception: x"), (1, "ok"), (hour, "Exception a"), (hour + 1, "Exception b"),
              (2 * hour, "RuntimeException")]
    q = "filter @message like /Exception/\n    | stats count(*) as exceptionCount by bin(1h)\n    | sort exceptionCount desc"
    result = run(q, events)
    assert rows(result) == [{"bin(1h)": "2026-01-01 01:00:00.000", "exceptionCount": "2"},
                            {"bin(1h)": "2026-01-01 00:00:00.000", "exceptionCount": "1"},
                            {"bin(1h)": "2026-01-01 02:00:00.000", "exceptionCount": "1"}]
    assert result.records_matched == 4 and result.records_scanned == 5


def test_sample_25_most_recent_events():
    events = [(i * 1000, f"event {i}") for i in range(40)]
    result = run("fields @timestamp, @message | sort @timestamp desc | limit 25", events)
    got = strip_ptr(result)
    assert len(got) == 25 and got[0] == {"@timestamp": "2026-01-01 00:00:39.000", "@message": "event 39"}
    assert got[-1]["@message"] == "event 15"
    assert result.fields == ["@timestamp", "@message"]


FLOW = ["2 123456789010 eni-1 10.0.0.1 10.0.0.9 443 49152 6 10 5000 1620140761 1620140821 ACCEPT OK",
        "2 123456789010 eni-1 10.0.0.2 10.0.0.9 443 49153 6 10 700 1620140761 1620140821 REJECT OK",
        "2 123456789010 eni-1 10.0.0.1 10.0.0.9 443 49154 6 10 2500 1620140761 1620140821 ACCEPT OK",
        "2 123456789010 eni-1 10.0.0.2 10.0.0.8 22 49155 6 1 40 1620140761 1620140821 REJECT OK",
        "2 123456789010 eni-1 10.0.0.3 10.0.0.8 22 49156 6 1 40 1620140761 1620140821 REJECT OK"]
FLOW_PARSE = ('parse @message "* * * * * * * * * * * * * *" as version, accountId, interfaceId, srcAddr, dstAddr, '
              "srcPort, dstPort, protocol, packets, bytes, start, end, action, logStatus")


def test_sample_vpc_top_byte_transfers():
    q = FLOW_PARSE + " | stats sum(bytes) as bytesTransferred by srcAddr, dstAddr | sort bytesTransferred desc | limit 10"
    assert rows(run(q, [(i, m) for i, m in enumerate(FLOW)])) == [
        {"srcAddr": "10.0.0.1", "dstAddr": "10.0.0.9", "bytesTransferred": "7500"},
        {"srcAddr": "10.0.0.2", "dstAddr": "10.0.0.9", "bytesTransferred": "700"},
        {"srcAddr": "10.0.0.2", "dstAddr": "10.0.0.8", "bytesTransferred": "40"},
        {"srcAddr": "10.0.0.3", "dstAddr": "10.0.0.8", "bytesTransferred": "40"}]


def test_sample_vpc_rejections_by_source():
    q = FLOW_PARSE + ' | filter action="REJECT" | stats count(*) as numRejections by srcAddr | sort numRejections desc'
    assert rows(run(q, [(i, m) for i, m in enumerate(FLOW)])) == [
        {"srcAddr": "10.0.0.2", "numRejections": "2"}, {"srcAddr": "10.0.0.3", "numRejections": "1"}]


def test_stats_functions_on_parsed_numbers():
    events = [(i * 1000, f"latency={v}") for i, v in enumerate([5, 1, 4, 2, 3, 10, 8, 7, 6, 9])]
    q = ('parse @message "latency=*" as latency | stats count(*), count(latency), count_distinct(latency), '
         "sum(latency), avg(latency), min(latency), max(latency), pct(latency, 50), percentile(latency, 90), "
         "pct(latency, 99) as p99, stddev(latency)")
    got = rows(run(q, events))[0]
    assert got == {"count(*)": "10", "count(latency)": "10", "count_distinct(latency)": "10", "sum(latency)": "55",
                   "avg(latency)": "5.5", "min(latency)": "1", "max(latency)": "10", "pct(latency, 50)": "5",
                   "percentile(latency, 90)": "9", "p99": "10", "stddev(latency)": got["stddev(latency)"]}
    assert float(got["stddev(latency)"]) == pytest.approx(3.0276503540974917)


def test_count_field_counts_present_values_only_and_pct_by_bin():
    events = [(0, "t=1"), (1, "t=3"), (2, "no value"), (60_000, "t=100"), (60_001, "t=200")]
    q = 'parse @message "t=*" as t | stats count(t) as n, pct(t, 50) as p50 by bin(1m)'
    assert rows(run(q, events)) == [{"bin(1m)": "2026-01-01 00:00:00.000", "n": "2", "p50": "1"},
                                    {"bin(1m)": "2026-01-01 00:01:00.000", "n": "2", "p50": "100"}]


@pytest.mark.parametrize("period, first, second", [
    ("30s", "2026-01-01 00:00:00.000", "2026-01-01 00:00:30.000"),
    ("5m", "2026-01-01 00:00:00.000", "2026-01-01 00:05:00.000"),
    ("5min", "2026-01-01 00:00:00.000", "2026-01-01 00:05:00.000"),
    ("2mins", "2026-01-01 00:00:00.000", "2026-01-01 00:06:00.000"),
    ("1hr", "2026-01-01 00:00:00.000", None),
    ("1d", "2026-01-01 00:00:00.000", None),
    ("100ms", "2026-01-01 00:00:00.000", "2026-01-01 00:00:00.100"),
    ("1mo", "2026-01-01 00:00:00.000", None),
])
def test_bin_units(period, first, second):
    offsets = {"30s": 30_000, "5m": 300_000, "5min": 300_000, "2mins": 360_000, "100ms": 150}
    events = [(0, "a"), (offsets.get(period, 60_000), "b")]
    got = [r[f"bin({period})"] for r in rows(run(f"stats count(*) by bin({period})", events))]
    assert got == [first] + ([second] if second else [])
    assert all(TS_TEXT.match(v) for v in got)


# ---- filter -------------------------------------------------------------------------------------
FILTER_EVENTS = [(0, "ERROR QueuePool limit reached status=500"), (1, "error lower case status=404"),
                 (2, "INFO ok status=200"), (3, "WARN slow status=200"), (4, "java.lang.Exception: boom status=503")]


@pytest.mark.parametrize("condition, expected", [
    ("@message like /Exception/", [4]),
    ("@message like /(?i)error/", [0, 1]),
    ("@message like 'ERROR'", [0]),
    ('@message like "QueuePool limit"', [0]),
    ("@message not like /ERROR|Exception/", [1, 2, 3]),
    ("@message =~ /^INFO|^WARN/", [2, 3]),
    ("not (@message like /ok/)", [0, 1, 3, 4]),
    ("status >= 500", [0, 4]),
    ("status < 300 and @message like /WARN/", [3]),
    ("status = 404 or status = 503", [1, 4]),
    ("status != 200", [0, 1, 4]),
    ("status in [404, 503]", [1, 4]),
    ("status not in [200, 500]", [1, 4]),
    ('level in ["ERROR", "WARN"]', [0, 3]),
    ("ispresent(level) and not isempty(level)", [0, 1, 2, 3]),
    ("strlen(@message) > 25", [0, 1, 4]),
    ("strcontains(@message, 'slow')", [3]),
    ("toupper(level) = 'ERROR'", [0, 1]),
])
def test_filter_operators(condition, expected):
    q = f'parse @message /^(?<level>[A-Za-z]+) / | parse @message "status=*" as status | filter {condition}'
    got = sorted(int(r["@ptr"]) for r in rows(run(q, FILTER_EVENTS)))
    assert got == expected


def test_operator_precedence_and_over_or():
    events = [(0, "a"), (1, "b"), (2, "c")]
    q = "filter @message = 'a' or @message = 'b' and @message = 'c'"
    assert [r["@message"] for r in strip_ptr(run(q, events))] == ["a"]


def test_missing_fields_compare_false():
    events = [(0, "x=5"), (1, "nothing")]
    assert len(run('parse @message "x=*" as x | filter x != 3', events).rows) == 1
    assert len(run('parse @message "x=*" as x | filter x < 10', events).rows) == 1


# ---- fields, functions, sort, dedup, display ------------------------------------------------------
def test_fields_expressions_aliases_and_string_functions():
    events = [(0, "  Hello World  ")]
    q = ("fields strlen(@message) as n, toupper(trim(@message)) as up, tolower(@message) as low, "
         "substr(trim(@message), 0, 5) as head, concat('<', trim(@message), '>') as tagged, "
         "replace(@message, 'World', 'There') as swapped, coalesce(missing, 'default') as c, "
         "isempty(missing) as empty, ltrim(@message) as l, rtrim(@message) as r, strlen(@message) * 2 + 1 as calc")
    got = strip_ptr(run(q, events))[0]
    assert got == {"n": "15", "up": "HELLO WORLD", "low": "  hello world  ", "head": "Hello",
                   "tagged": "<Hello World>", "swapped": "  Hello There  ", "c": "default", "empty": "true",
                   "l": "Hello World  ", "r": "  Hello World", "calc": "31"}


def test_fields_without_alias_are_named_by_their_text():
    result = run("fields @timestamp, strlen(@message)", [(0, "abc")])
    assert result.fields == ["@timestamp", "strlen(@message)"] and strip_ptr(result)[0]["strlen(@message)"] == "3"


def test_sort_several_keys_numbers_as_numbers():
    events = [(0, "svc=b n=10"), (1, "svc=a n=9"), (2, "svc=a n=100"), (3, "svc=b n=2")]
    q = 'parse @message "svc=* n=*" as svc, n | sort svc asc, n desc | display svc, n'
    assert strip_ptr(run(q, events)) == [{"svc": "a", "n": "100"}, {"svc": "a", "n": "9"},
                                         {"svc": "b", "n": "10"}, {"svc": "b", "n": "2"}]


def test_doc_dedup_keeps_the_first_per_server_after_sort():
    events = [(0, "s1 low"), (1, "s2 high"), (2, "s1 high"), (3, "s3 low"), (4, "s2 low")]
    q = 'parse @message "* *" as server, severity | fields @timestamp, server, severity | sort @timestamp desc | dedup server'
    got = strip_ptr(run(q, events))
    assert [(r["server"], r["severity"]) for r in got] == [("s2", "low"), ("s3", "low"), ("s1", "high")]


def test_display_after_stats_selects_columns():
    result = run("stats count(*) as n, max(strlen(@message)) as longest by @logStream | display n",
                 [(0, "ab", "s1"), (1, "abcd", "s2"), (2, "x", "s2")])
    assert rows(result) == [{"n": "1"}, {"n": "2"}]


def test_display_before_stats_does_not_hide_the_aggregates():
    assert rows(run("display @message | stats count(*) as n", [(0, "a"), (1, "b")])) == [{"n": "2"}]


def test_two_stats_commands():
    events = [(m * 60_000 + i, "e") for m, k in enumerate([3, 1, 2]) for i in range(k)]
    q = "stats count(*) as perMinute by bin(1m) | stats max(perMinute) as peak, avg(perMinute) as mean"
    assert rows(run(q, events)) == [{"peak": "3", "mean": "2"}]


def test_json_messages_fields_are_discovered():
    events = [(0, '{"level": "error", "http": {"status": 502}, "tags": ["a", "b"]}'),
              (1, '{"level": "info", "http": {"status": 200}}'), (2, "plain text")]
    q = 'filter level = "error" or http.status >= 500 | fields level, http.status, tags.1'
    assert strip_ptr(run(q, events)) == [{"level": "error", "http.status": "502", "tags.1": "b"}]


def test_comments_and_regex_holding_pipes_hashes_and_slashes():
    events = [(0, "GET /api/a#frag 500"), (1, "POST /api/b 200"), (2, "GET /health 200")]
    q = ("# errors by path\n"
         "filter @message like /\\/api\\/[a-z]#?|ERROR/  # regex with | and #\n"
         "| parse @message \"* * *\" as verb, path, status   # three parts\n"
         "| stats count(*) by verb")
    assert rows(run(q, events)) == [{"verb": "GET", "count(*)": "1"}, {"verb": "POST", "count(*)": "1"}]


# ---- result shape -------------------------------------------------------------------------------
def test_result_shape_for_events():
    events = [(0, "first", "s1"), (1500, "second é", "s2")]
    result = run("limit 10", events)
    assert result.fields == ["@timestamp", "@message", "@logStream", "@log", "@ingestionTime"]
    first = result.rows[0]  # newest first when the query does not sort
    assert [f["field"] for f in first] == result.fields + ["@ptr"]
    assert all(isinstance(f["value"], str) for row in result.rows for f in row)
    got = rows(result)[0]
    assert got["@timestamp"] == "2026-01-01 00:00:01.500" and got["@message"] == "second é"
    assert got["@logStream"] == "s2" and got["@log"] == "123456789012:/app/api"
    assert result.statistics == {"recordsMatched": 2.0, "recordsScanned": 2.0,
                                 "bytesScanned": float(len("first".encode()) + len("second é".encode()))}


def test_aggregate_rows_have_no_ptr_and_only_strings():
    result = run("stats count(*), avg(strlen(@message)) by @logStream", [(0, "ab", "s1"), (1, "abc", "s1")])
    assert result.rows == [[{"field": "@logStream", "value": "s1"}, {"field": "count(*)", "value": "2"},
                            {"field": "avg(strlen(@message))", "value": "2.5"}]]


def test_default_limit_is_1000_and_start_query_limit_and_limit_command_apply():
    events = [(i, f"e{i}") for i in range(1500)]
    assert len(run("fields @message", events).rows) == insights.DEFAULT_LIMIT
    assert len(run("fields @message", events, limit=1200).rows) == 1200
    assert len(run("fields @message | limit 1300", events).rows) == 1300
    result = run("fields @message | limit 3", events, limit=1200)
    assert [r["@message"] for r in strip_ptr(result)] == ["e1499", "e1498", "e1497"]
    assert result.records_matched == 1500


def test_stats_over_nothing_is_no_rows():
    result = run("filter @message like /nothing/ | stats count(*) by bin(1m)", [(0, "a")])
    assert result.rows == [] and result.records_matched == 0 and result.records_scanned == 1


def test_empty_frame():
    result = insights.execute("fields @message", frame([]))
    assert result.rows == [] and result.statistics["recordsScanned"] == 0


def test_caller_frame_is_not_modified():
    df = frame([(0, "a=1")])
    columns = list(df.columns)
    insights.execute('parse @message "a=*" as a | fields a', df)
    assert list(df.columns) == columns


def test_regex_named_group_syntax_is_translated():
    assert insights._to_python_regex("(?<name>x)(?<=a)(?<!b)") == "(?P<name>x)(?<=a)(?<!b)"


# ---- unsupported syntax: an error naming it, never dropped ------------------------------------------
@pytest.mark.parametrize("command", ["unnest", "lookup", "join", "pattern", "anomaly", "diff", "unmask",
                                     "filterIndex", "SOURCE", "fieldIndex"])
def test_unsupported_commands_are_named(command):
    with pytest.raises(MalformedQueryError, match=f"unsupported command '{command}'"):
        insights.parse(f"fields @message | {command} @message")


@pytest.mark.parametrize("query, message", [
    ("frobnicate @message", "unknown command 'frobnicate'"),
    ("fields earliest(@timestamp)", r"unsupported function earliest\(\)"),
    ("stats latest(@message)", r"unsupported function latest\(\)"),
    ("fields jsonParse(@message) as j", r"unsupported function jsonParse\(\)"),
    ("parse logfmt", "parse mode 'logfmt' is not supported"),
    ("parse @message csv", "parse mode 'csv' is not supported"),
    ("parse @message /(?<a>x)/ multi", "'multi' after a parse regex is not supported"),
    ('parse @message "a=* b=*" as a', "2 '\\*' but 1 names"),
    ('parse @message "a=*"', "needs 'as'"),
    ("parse @message /a=(\\d+)/", "needs named groups"),
    ("stats @message", "stats takes aggregate functions"),
    ("stats count(*) + 1", "stats takes aggregate functions"),
    ("filter count(*) > 1", r"aggregate function count\(\) is only allowed as a stats item"),
    ("fields avg(x)", r"aggregate function avg\(\) is only allowed"),
    ("stats count(*), count(*)", "duplicate output field 'count\\(\\*\\)'"),
    ("stats sum(*)", r"'\*' is only allowed in count\(\*\)"),
    ("stats pct(x, 150)", "percentile from 0 to 100"),
    ("stats pct(x)", "2..2 arguments"),
    ("limit 0", "limit takes a whole number from 1 to 10000"),
    ("limit 10001", "limit takes a whole number"),
    ("limit 1.5", "limit takes a whole number"),
    ("stats count(*) by bin(5parsecs)", "unknown time unit 'parsecs'"),
    ("stats count(*) by bin(@timestamp)", r"bin\(\) takes a time period"),
    ("fields strlen(5m)", "a time period is only allowed in bin"),
    ("filter @message like /unterminated", "unterminated regular expression"),
    ("filter @message like 5", "like takes a \"string\" or a /regex/"),
    ("filter @message like /(/", "invalid regular expression"),
    ("filter @message =~ 'text'", "=~ takes a /regex/"),
    ("filter x in 5", "in takes a list"),
    ("filter x in [a]", "a list holds literals only"),
    ("filter x not 5", "filter: unexpected input at 'not'"),
    ("fields @message | | limit 1", "empty command before '\\|'"),
    ("", "the query is empty"),
    ("   # only a comment", "the query is empty"),
    ("fields", "fields: missing arguments"),
    ("fields @message @log", "unexpected input"),
    ("sort @timestamp sideways", "unexpected input"),
    ("display strlen(@message)", r"display: unexpected input at '\('"),
    ("dedup 5", "dedup takes field names"),
    ("fields a as 5", "expected a name after 'as'"),
    ("fields substr(@message)", r"substr\(\) takes 2..3 arguments"),
    ("filter @message like 'a' ; limit 1", "unexpected character ';'"),
    ("fields /regex/", "fields: expected a field or a value at '/'"),
    ("filter @message = /x/", "filter: a /regex/ is only allowed after like or =~"),
    ("fields strlen(/x/) as n", "fields: a /regex/ is only allowed after like"),
])
def test_malformed_queries_name_the_culprit(query, message):
    with pytest.raises(MalformedQueryError, match=message):
        insights.execute(query, frame([(0, "x")]))


def test_malformed_error_locates_the_command():
    with pytest.raises(MalformedQueryError) as err:
        insights.parse("fields @message | pattern @message")
    assert (err.value.start, err.value.end) == (18, 25)


def test_api_limit_out_of_range():
    with pytest.raises(MalformedQueryError, match="limit must be from 1 to 10000"):
        insights.execute("fields @message", frame([(0, "x")]), limit=10_001)


def test_parse_returns_an_ast():
    q = insights.parse("filter @message like /E/ | stats count(*) as n by bin(5m) | sort n desc | limit 3")
    assert [c.name for c in q.commands] == ["filter", "stats", "sort", "limit"]
    stats = q.commands[1]
    assert stats.aggregates[0][1] == "n" and stats.by[0][1] == "bin(5m)"
    assert isinstance(stats.by[0][0], insights.Call) and stats.by[0][0].args[0] == insights.Duration("5m", 5.0, "m")
    assert q.commands[3] == insights.Limit("limit", 3)


def test_timestamps_in_frame_are_utc_ms():
    df = frame([(1, "a")])
    assert df["@timestamp"].iloc[0] == pd.Timestamp(T0 + 1, unit="ms")
