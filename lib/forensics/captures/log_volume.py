"""Logs at volume, with Logs Insights: per-minute rates, bounded samples, exact counts.

Per log source three captures (:func:`log_volume`; the reading is :mod:`forensics.sources.log_volume`):
``<base>_per_minute`` (matching events per minute and log group), ``<base>_sample`` (the bounded sample:
slices over the whole window, denser around the onset's first guess, FilterLogEvents when Insights is
unavailable; its plan is :mod:`forensics.sampling`'s, recorded with it and read by name with
``inc.sampling("<base>_sample")``) and ``<base>_signature_counts`` (exact per-minute counts of the sample's
candidate signatures, one query). Ranking by change: :mod:`forensics.analysis.log_change`.

:func:`match_counts` declares exact counts by what a regex found (query ``log_match_counts``: per minute and
hit, with first and last event) or by task (``log_task_counts``): one Insights query each over the context
window, no FilterLogEvents fallback - when Insights is unavailable they fail and their findings are unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import pandas as pd

from .. import defaults, sampling
from ..analysis import ai, cache, pglog
from ..sources import log_volume as lv
from ..sources import logs
from ..sources import queues as queue_source
from ..sources.call import Call
from .core import LOGS, Capture, declare
from .logs import app_groups, rds_log_group, worker_groups


def _capture_failed(frame: pd.DataFrame, name: str) -> None:
    if frame.attrs.get("capture_error"):
        raise LookupError(f"{name} failed: {frame.attrs['capture_error']}")


def log_volume(base: str, needs: Iterable[str], groups: Callable, regex: str, pattern: str | None,
               doc: str = "") -> tuple[Capture, Capture, Capture]:
    """The three Insights captures of one log source; ``regex`` selects its events (Insights' ``like``),
    ``pattern`` the same for the FilterLogEvents fallback."""
    rate_name, sample_name, counts_name = f"{base}_per_minute", f"{base}_sample", f"{base}_signature_counts"

    def rate_call(inc) -> Call:
        return lv.per_minute_call(groups(inc), inc.context_window, regex, aws=inc.aws)

    def sample_call(inc, per_slice=defaults.LOG_SAMPLE_PER_SLICE) -> Call:
        rate = inc.pull(rate_name)
        plan = sampling.plan(None if rate.attrs.get("capture_error") else rate, rate_name, inc.window,
                             inc.context_window, per_slice=per_slice,
                             fallback={"api": logs.API, "filterPattern": pattern, "client_regex": regex,
                                       "max_events_per_slice": int(per_slice)})
        return lv.sample_call(groups(inc), inc.context_window, plan.slices, regex, pattern, per_slice=per_slice,
                              sampling=plan.as_args(), aws=inc.aws,
                              per_minute=None if rate.attrs.get("capture_error") else rate)

    def counts_call(inc) -> Call:
        sample = inc.pull(sample_name)
        _capture_failed(sample, sample_name)
        chosen = sampling.signature_plan(sample, inc.sampling(sample_name), inc.window.start)
        return lv.signature_counts_call(groups(inc), inc.context_window, regex, chosen, aws=inc.aws)

    what = doc or base.replace("_", " ")
    needs = tuple(needs)
    return (
        declare(Capture(rate_name, "logs", "query:log_events_per_minute", rate_call, needs,
                        lv.RATE_COLUMNS, LOGS, query="log_events_per_minute",
                        doc=f"{what}: matching events per minute and log group (Logs Insights).")),
        declare(Capture(sample_name, "logs", "query:log_sample_slice", sample_call, needs,
                        lv.SAMPLE_COLUMNS, LOGS, query="log_sample_slice",
                        params={"per_slice": defaults.LOG_SAMPLE_PER_SLICE}, after=(rate_name,),
                        tolerates=(rate_name,),
                        doc=f"{what}: a bounded sample spread over the window, denser around the onset "
                            "(Logs Insights per slice; FilterLogEvents when Insights is unavailable).")),
        declare(Capture(counts_name, "logs", "query:log_signature_counts", counts_call, needs,
                        lv.COUNT_COLUMNS, LOGS, query="log_signature_counts", after=(sample_name,),
                        doc=f"{what}: exact per-minute counts of the sample's top signatures (one Logs "
                            "Insights query).")),
    )


#: FilterLogEvents terms for the fallback (case-sensitive, so both spellings; the regex then decides).
REDIS_ERROR_PATTERN = "?transport ?redis ?Redis ?ConnectionResetError ?Connection ?READONLY ?LOADING"
PROVIDER_ERROR_PATTERN = "?openai ?OpenAI ?anthropic ?Anthropic ?falling ?Falling ?budget ?Budget"

log_volume("app_error", ["logs"], app_groups, logs.ERROR_REGEX, logs.ERROR_PATTERN, doc="Application errors")
log_volume("worker_failure", ["queues"], worker_groups, queue_source.TASK_FAILURE_REGEX,
           queue_source.TASK_FAILURE_PATTERN, doc="Worker task failures")
log_volume("pg_log", ["rds"], lambda inc: [rds_log_group(inc)], logs.PG_LOG_REGEX, logs.PG_LOG_PATTERN,
           doc="PostgreSQL's own log")
log_volume("redis_error", ["logs"], app_groups, "(?i)" + cache.REDIS_ERROR.pattern, REDIS_ERROR_PATTERN,
           doc="Redis client errors in the application logs")
log_volume("provider_error", ["logs"], app_groups, "(?i)" + ai.PROVIDER_ERROR.pattern, PROVIDER_ERROR_PATTERN,
           doc="LLM provider errors and fallbacks in the application logs")


# ---- exact counts by what a regex found -------------------------------------------------------------------
def match_counts(name: str, needs: Iterable[str], groups: Callable, extract: Callable[[], str] | str,
                 doc: str = "", query: str = "log_match_counts") -> Capture:
    columns = lv.MATCH_COLUMNS if query == "log_match_counts" else lv.TASK_COLUMNS

    def call(inc) -> Call:
        return lv.counts_call(query, groups(inc), inc.context_window, extract() if callable(extract) else extract,
                              aws=inc.aws)

    return declare(Capture(name, "logs", f"query:{query}", call, tuple(needs), columns, LOGS, query=query, doc=doc))


def _noncapturing(pattern: str) -> str:
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


def _hit(pattern: str) -> str:
    """``pattern``'s alternatives inside one ``(?<hit>...)`` group; its own groups made non-capturing."""
    return "(?<hit>" + _noncapturing(pattern) + ")"


def pglog_extract() -> str:
    """The patterns of forensics/data/pglog_patterns.yaml as one regex right after the severity (their ``^``),
    the text matched being what classifies the event (forensics.analysis.log_counts.categorized)."""
    alternatives = "|".join(p.pattern.lstrip("^") for c in pglog.CATEGORIES for p in c.patterns)
    return r"(?:LOG|ERROR|FATAL|PANIC|WARNING):\s+" + _hit(alternatives)


def pg_auth_client_extract() -> str:
    """The client address of each refused sign-in, from RDS's fixed prefix ``%t:%r:%u@%d:[%p]:``."""
    (auth,) = [c for c in pglog.CATEGORIES if c.name == "authentication_failure"]
    refused = "|".join(p.pattern.lstrip("^") for p in auth.patterns)
    return (r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? ?[A-Z]{0,5}:(?<hit>[^:(]*)(?:\(\d+\))?:[^:@]*@[^:]*:"
            r"\[\d+\]:(?:FATAL|ERROR|LOG):\s+(?:" + _noncapturing(refused) + ")")


#: Celery's task lines as forensics.analysis.queues.TASK_LINE reads them, in Logs Insights' syntax with one
#: outcome group and an exception group that is always present (empty when the line names none).
TASK_LINE_INSIGHTS = (r"Task (?<task>[\w.]+)\[(?<id>[0-9a-fA-F-]{8,})\] (?<outcome>raised unexpected|retry|failed)\b"
                      r":?\s*(?:Retry in \S+:\s*)?(?<exception>[A-Za-z_][\w.]*|)")

match_counts("redis_error_kinds", ["logs"], app_groups, lambda: "(?i)" + _hit(cache.REDIS_ERROR.pattern),
             doc="Redis client errors in the application logs by kind (the text matched: transport closed, "
                 "redis.exceptions.X...) per minute, with first and last event (Logs Insights).")
match_counts("pool_error_kinds", ["logs"], app_groups, lambda: _hit(r"QueuePool limit of size \d+ overflow \d+ reached"),
             doc="SQLAlchemy's connection-pool timeouts (QueuePool limit ... reached) in the application logs per "
                 "minute, with first and last event (Logs Insights: exact at any volume).")
match_counts("provider_error_kinds", ["logs"], app_groups, lambda: "(?i)" + _hit(ai.PROVIDER_ERROR.pattern),
             doc="LLM provider errors and fallbacks in the application logs by the text matched, per minute "
                 "(Logs Insights).")
match_counts("pg_log_category_counts", ["rds"], lambda inc: [rds_log_group(inc)], pglog_extract,
             doc="PostgreSQL's own log: events per minute by the pattern of forensics/data/pglog_patterns.yaml "
                 "they match, with first and last event (Logs Insights).")
match_counts("pg_auth_failure_clients", ["rds"], lambda inc: [rds_log_group(inc)], pg_auth_client_extract,
             doc="PostgreSQL's refused sign-ins per minute by client address (Logs Insights).")
match_counts("worker_task_counts", ["queues"], worker_groups, TASK_LINE_INSIGHTS, query="log_task_counts",
             doc="Worker task failures and retries by task, outcome and exception over the window (Logs Insights).")
