"""The application's CRM integration tables (runbook 001 §3h): its sync log over the window, its connections,
and which columns each has (a column the application lacks is unknown, not an error)."""

from __future__ import annotations

from .core import postgres_query

#: default table names when the environment's integrations section names none
SYNC_LOGS_TABLE = "crm_sync_logs"
CONNECTIONS_TABLE = "crm_connections"


def sync_logs_table(inc) -> str:
    return (inc.env.get("integrations") or {}).get("sync_logs_table") or SYNC_LOGS_TABLE


def connections_table(inc) -> str:
    return (inc.env.get("integrations") or {}).get("connections_table") or CONNECTIONS_TABLE


postgres_query("crm_table_columns", "crm_table_columns",
               lambda inc: {"sync_logs_table": sync_logs_table(inc), "connections_table": connections_table(inc)},
               needs=("postgres", "integrations"))
postgres_query("crm_sync_logs", "crm_sync_logs",
               lambda inc: {"table": sync_logs_table(inc), "start": inc.context_window.start,
                            "end": inc.context_window.end},
               needs=("postgres", "integrations"))
postgres_query("crm_connections", "crm_connections", lambda inc: {"table": connections_table(inc)},
               needs=("postgres", "integrations"))
