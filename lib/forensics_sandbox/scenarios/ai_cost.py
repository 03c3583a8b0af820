"""Scenario "ai-cost": the primary LLM provider rate-limits, the gateway falls back to an expensive model.

The story: the LLM gateway serves tenants' AI tasks with ``gpt-4o-mini`` (openai). From T0+15 min
openai answers ``429 rate_limit_exceeded`` for most calls; the gateway logs
``openai.RateLimitError`` and ``falling back to claude-3-opus`` and the call is served by anthropic's
``claude-3-opus`` — about a hundred times the cost per call (sometimes
``anthropic.APIStatusError: overloaded`` as well). ``ai_task_logs`` records every provider attempt
(failed ones at zero cost); ``ai_budgets`` holds each organisation's monthly budget, and three
organisations end the window above 90 % of theirs (one above 100 %: enforcement did not stop it).

Budgets are set from the month-to-date spend actually loaded, so which organisations are over 90 %
does not depend on the day of the month the sandbox runs.
"""

from __future__ import annotations

import random

import pandas as pd
import psycopg

from .played import Played, register
from .common import API_LOG_GROUP, API_STREAM_PREFIX, MIGRATIONS_APP, MIN, app_log_line, epoch_ms, hex_id, \
    incident_fields, put_logs, timeline

SEED = 20261126
LOG_GROUP = API_LOG_GROUP
STREAM = f"{API_STREAM_PREFIX}/e4a90c6b2f8d4173a5c0b9e7d1f36a28"
PRIMARY_MODEL, PRIMARY_PROVIDER = "gpt-4o-mini", "openai"
FALLBACK_MODEL, FALLBACK_PROVIDER = "claude-3-opus", "anthropic"
#: USD per million tokens (prompt, completion)
PRICES = {PRIMARY_MODEL: (0.15, 0.60), FALLBACK_MODEL: (15.0, 75.0)}
ORGS = [(101, "Northwind Traders"), (102, "Acme Analytics"), (103, "Globex Legal"), (104, "Initech Support"),
        (105, "Umbrella Health"), (106, "Hooli Docs"), (107, "Stark Logistics"), (108, "Wayne Media")]
#: target month-to-date share of budget at the window end, per org
SHARES = {101: 1.08, 102: 0.95, 103: 0.91, 104: 0.74, 105: 0.58, 106: 0.41, 107: 0.27, 108: 0.12}
WEIGHTS = {101: 5, 102: 4, 103: 3, 104: 3, 105: 2, 106: 2, 107: 1, 108: 1}
FALLBACK_SHARE = 0.85
RATE_LIMIT = ("openai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o-mini "
              "in organization org-scr on tokens per min (TPM)', 'type': 'tokens', 'code': 'rate_limit_exceeded'}}")
OVERLOADED = ("anthropic.APIStatusError: overloaded - {'type': 'error', 'error': {'type': 'overloaded_error', "
              "'message': 'Overloaded'}}")


def cost(model: str, prompt: int, completion: int) -> float:
    p, c = PRICES[model]
    return round((prompt * p + completion * c) / 1e6, 6)


class Plan:
    def __init__(self, now: pd.Timestamp, seed: int = SEED):
        self.t = t = timeline(now)
        self.shift = t["deploy"] + pd.Timedelta(minutes=15)
        r = self.r = random.Random(seed)
        orgs = [o for o, _ in ORGS]
        weights = [WEIGHTS[o] for o in orgs]
        rows, log = [], []
        minute = t["start"]
        while minute < t["end"]:
            for _ in range(r.randint(6, 9)):
                ts = minute + pd.Timedelta(milliseconds=r.randrange(60_000))
                org = r.choices(orgs, weights)[0]
                prompt, completion = r.randint(1200, 4200), r.randint(150, 900)
                if ts >= self.shift and r.random() < FALLBACK_SHARE:
                    rows.append((org, PRIMARY_MODEL, PRIMARY_PROVIDER, prompt, 0, 0.0, "error", ts))
                    log.append((ts, "WARNING", f"provider openai failed for org {org} ({RATE_LIMIT}); "
                                               f"falling back to {FALLBACK_MODEL}"))
                    served = ts + pd.Timedelta(milliseconds=r.randrange(800, 4000))
                    if r.random() < 0.04:
                        log.append((served, "ERROR", f"fallback provider anthropic failed for org {org}: {OVERLOADED}"))
                        rows.append((org, FALLBACK_MODEL, FALLBACK_PROVIDER, prompt, 0, 0.0, "error", served))
                        continue
                    rows.append((org, FALLBACK_MODEL, FALLBACK_PROVIDER, prompt, completion,
                                 cost(FALLBACK_MODEL, prompt, completion), "success", served))
                else:
                    rows.append((org, PRIMARY_MODEL, PRIMARY_PROVIDER, prompt, completion,
                                 cost(PRIMARY_MODEL, prompt, completion), "success", ts))
            minute += MIN
        self.rows = [x for x in rows if x[7] < t["end"]]
        self.log_lines = self._format(sorted(x for x in log if x[0] < t["end"]))

    def _format(self, lines) -> list[tuple[int, str]]:
        out = []
        for ts, level, text in lines:
            ms = epoch_ms(ts)
            out.append((ms, app_log_line(ms, level, "scr.ai.gateway", hex_id(self.r, 12), text)))
        return out

    def spend_per_hour(self) -> dict[str, float]:
        """USD per hour before and after the shift (from the planted rows)."""
        before = [x[5] for x in self.rows if x[7] < self.shift and x[7] >= self.t["start"]]
        after = [x[5] for x in self.rows if x[7] >= self.shift]
        hb = (self.shift - self.t["start"]) / pd.Timedelta(hours=1)
        ha = (self.t["end"] - self.shift) / pd.Timedelta(hours=1)
        return {"before": sum(before) / hb, "after": sum(after) / ha}


def load(sb, plan: Plan) -> dict:
    t = plan.t
    put_logs(sb.client("logs"), LOG_GROUP, {STREAM: plan.log_lines})
    with psycopg.connect(sb.cluster.dsn("app", application_name=MIGRATIONS_APP), autocommit=True) as conn:
        conn.execute("CREATE TABLE organizations (id integer PRIMARY KEY, name text NOT NULL, plan text NOT NULL)")
        conn.execute("""
            CREATE TABLE ai_budgets (org_id integer PRIMARY KEY REFERENCES organizations (id),
                                     monthly_budget_usd numeric(12, 2) NOT NULL,
                                     alert_threshold numeric(4, 2) NOT NULL DEFAULT 0.90)""")
        conn.execute("""
            CREATE TABLE ai_task_logs (id bigserial PRIMARY KEY, org_id integer NOT NULL, model text NOT NULL,
                                       provider text NOT NULL, prompt_tokens integer NOT NULL,
                                       completion_tokens integer NOT NULL, cost_usd numeric(12, 6) NOT NULL,
                                       status text NOT NULL, created_at timestamptz NOT NULL)""")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO organizations (id, name, plan) VALUES (%s, %s, %s)",
                            [(o, n, "enterprise" if o < 104 else "business") for o, n in ORGS])
        # Earlier this month: about one call every 10 minutes per organisation, on the primary model.
        month_start = t["end"].floor("D") - pd.Timedelta(days=t["end"].day - 1)
        conn.execute("""
            INSERT INTO ai_task_logs (org_id, model, provider, prompt_tokens, completion_tokens, cost_usd, status,
                                      created_at)
            SELECT o.id, %(model)s, %(provider)s, p, c, round((p * %(pp)s::numeric + c * %(cp)s::numeric) / 1000000, 6), 'success', ts
            FROM organizations o
            CROSS JOIN generate_series(%(from)s::timestamptz, %(to)s::timestamptz - interval '1 minute',
                                       interval '10 minutes') ts
            CROSS JOIN LATERAL (SELECT 1200 + (abs(hashtext(o.id::text || ts::text)) %% 3000) AS p,
                                       150 + (abs(hashtext(ts::text || o.id::text)) %% 750) AS c) x
            """,
                     {"model": PRIMARY_MODEL, "provider": PRIMARY_PROVIDER, "pp": PRICES[PRIMARY_MODEL][0],
                      "cp": PRICES[PRIMARY_MODEL][1], "from": month_start.to_pydatetime(),
                      "to": max(month_start, t["start"]).to_pydatetime()})
        with conn.cursor() as cur, cur.copy("COPY ai_task_logs (org_id, model, provider, prompt_tokens, "
                                            "completion_tokens, cost_usd, status, created_at) FROM STDIN") as copy:
            for row in plan.rows:
                copy.write_row((*row[:7], row[7].to_pydatetime()))
        conn.execute("CREATE INDEX ai_task_logs_created_at_idx ON ai_task_logs (created_at)")
        spend = dict(conn.execute(
            "SELECT org_id, sum(cost_usd)::float8 FROM ai_task_logs WHERE created_at >= %s AND created_at < %s "
            "GROUP BY 1", (month_start.to_pydatetime(), t["end"].to_pydatetime())).fetchall())
        budgets = {o: round(max(spend.get(o, 0.0) / SHARES[o], 1.0), 2) for o, _ in ORGS}
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO ai_budgets (org_id, monthly_budget_usd) VALUES (%s, %s)", list(budgets.items()))
        conn.execute("ANALYZE ai_task_logs")
    shares = {o: spend.get(o, 0.0) / budgets[o] for o, _ in ORGS}
    return {"spend": spend, "budgets": budgets, "shares": shares}


@register("ai-cost")
def play(sb) -> Played:
    plan = Plan(sb.now)
    loaded = load(sb, plan)
    t = plan.t
    names = dict(ORGS)
    over = sorted((o for o, s in loaded["shares"].items() if s >= 0.9), key=lambda o: -loaded["shares"][o])
    rates = plan.spend_per_hour()
    truth = {
        "scenario": "ai-cost", "shift_time": plan.shift, "from_model": PRIMARY_MODEL, "to_model": FALLBACK_MODEL,
        "spend_per_hour_before": rates["before"], "spend_per_hour_after": rates["after"],
        "orgs_over_90pct": [names[o] for o in over], "org_ids_over_90pct": [str(o) for o in over],
        "orgs_over_100pct": [names[o] for o in over if loaded["shares"][o] >= 1.0],
        "fallback_log_lines": sum("falling back to" in m for _, m in plan.log_lines),
        "logs_table": "ai_task_logs", "budgets_table": "ai_budgets",
    }
    incident = incident_fields("SANDBOX-AI-COST", "LLM spend spike: fallback to claude-3-opus", "P2", t)
    resources = {"ai": {"logs_table": "ai_task_logs", "budgets_table": "ai_budgets",
                        "organizations_table": "organizations"},
                 "logs": {"app": [LOG_GROUP]}}
    return Played(truth=truth, incident=incident, resources=resources)


__all__ = ["play", "Plan"]
