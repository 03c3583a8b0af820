"""The application log's authentication lines: 401/403 access lines and auth error messages.

A FilterLogEvents selection (:data:`AUTH_PATTERN`) re-applied client-side by :data:`AUTH_REGEX` (the moto
sandbox ignores OR patterns; on real AWS the regex, a superset, removes nothing: see
:mod:`forensics.sources.logs`). What the lines mean is :mod:`forensics.analysis.auth`'s business.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .. import defaults
from ..window import IncidentWindow
from . import logs

#: CloudWatch filter syntax: 401/403 access lines and the usual auth error texts.
AUTH_PATTERN = ('?401 ?403 ?Unauthorized ?Forbidden ?ExpiredSignatureError ?InvalidSignatureError ?DecodeError '
                '?InvalidTokenError ?SECRET_KEY ?"Signature has expired" ?"Signature verification failed" '
                '?"Could not validate credentials" ?"Incorrect email or password" ?"invalid api key"')
#: The same selection as a Python regex (substring match: a superset of the terms).
AUTH_REGEX = (r"\b40[13]\b|Unauthorized|Forbidden|ExpiredSignatureError|InvalidSignatureError|DecodeError|"
              r"InvalidTokenError|SECRET_KEY|Signature has expired|Signature verification failed|"
              r"Could not validate credentials|Incorrect email or password|invalid api key")


def auth_call(groups: Iterable[str], window: IncidentWindow, *, aws: dict | None = None,
              max_events: int = defaults.LOG_MAX_EVENTS):
    """:func:`auth_lines` as one :class:`~forensics.sources.call.Call` (a FilterLogEvents call)."""
    return logs.filter_call(list(groups), window, AUTH_PATTERN, aws=aws, max_events=max_events,
                            client_regex=AUTH_REGEX)


def auth_lines(groups: Iterable[str], window: IncidentWindow, *, aws: dict | None = None,
               max_events: int = defaults.LOG_MAX_EVENTS, client=None) -> pd.DataFrame:
    """The authentication lines of ``groups`` in ``window`` (:data:`forensics.contracts.LOG_COLUMNS`)."""
    return logs.filter_log_events(list(groups), window, AUTH_PATTERN, aws=aws, max_events=max_events,
                                  client_regex=AUTH_REGEX, client=client)
