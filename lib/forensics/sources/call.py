"""A request to a source, built once: what runs and what the manifest records of it come from the same values.

A capture (:mod:`forensics.captures`) builds one :class:`Call` from the incident; the capture store runs
:attr:`Call.run` and writes :attr:`Call.args` into the capture's manifest entry. Because both are made in
the same place from the same arguments (the window included), the manifest cannot say one thing while
the source was asked another. The ``*_call`` functions of the source modules build them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import pandas as pd


@dataclass(frozen=True)
class Call:
    """``api`` (``logs:FilterLogEvents``, ``query:<name>``...; None: the capture's declared one), ``args``
    (JSON-able, recorded verbatim after redaction) and ``run`` (no argument: it closes over what ``args``
    says)."""

    api: str | None
    args: Mapping
    run: Callable[[], pd.DataFrame] = field(repr=False, compare=False)

    def recorded_as(self, *, api: str | None = None, before: Mapping | None = None,
                    after: Mapping | None = None) -> Call:
        """The same call recorded with another api name or more arguments (``before`` first, ``after`` last)."""
        return replace(self, api=api if api is not None else self.api,
                       args={**(before or {}), **self.args, **(after or {})})


def failing(api: str | None, args: Mapping, exc: BaseException) -> Call:
    """A call that cannot be made (a section the environment lacks): recorded with ``args``, raising ``exc``."""

    def run():
        raise exc

    return Call(api, args, run)
