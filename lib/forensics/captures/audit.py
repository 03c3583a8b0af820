"""The application's audit API: the tenants' audit events (or an export) and its verify-chain verdict."""

from __future__ import annotations

from .. import defaults
from ..sources import audit
from ..sources.call import Call, failing
from .core import TABLES, events


def _timeout(section: dict) -> float:
    return float(section.get("timeout_s") or defaults.AUDIT_TIMEOUT_S)


def _events_call(inc) -> Call:
    a = inc.env["audit"]
    if a.get("export_file"):
        return audit.export_call(a["export_file"], inc.window, a["tenants"])
    return audit.replay_call(a["base_url"], a["tenants"], inc.window, token_env=a["token_env"], timeout=_timeout(a),
                             token_file=a.get("token_file"))


def _verify_call(inc) -> Call:
    a = inc.env["audit"]
    if a.get("export_file"):
        return failing(None, {"file": a["export_file"], "asked": False},
                       LookupError("audit.export_file is set: the application's verify-chain is not asked"))
    return audit.verify_call(a["base_url"], a["tenants"], token_env=a["token_env"], timeout=_timeout(a),
                             token_file=a.get("token_file"))


events("audit_events", "GET /api/v1/tenants/{tenant}/audit-replay", ["audit"], _events_call,
       audit.COLUMNS, source="audit", volatility=TABLES,
       doc="The tenants' audit events in the window (the application's audit-replay, or an export). The bearer "
           "token comes from the variable named by audit.token_env; neither is recorded.")
events("audit_verify", "GET /api/v1/tenants/{tenant}/verify-chain", ["audit"], _verify_call,
       audit.VERIFY_COLUMNS, source="audit", volatility=TABLES,
       doc="The application's own verify-chain verdict per tenant.")
