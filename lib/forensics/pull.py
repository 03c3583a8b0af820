"""What notebooks call: ``pull.<name>(inc)`` for every capture declared in :mod:`forensics.registry`.

``pull.alb_metrics(inc)`` is ``inc.pull("alb_metrics")``: the frame is recorded with its API call or
query, served to every other notebook of the record, and replayable. Nothing here declares a capture;
the registry does, once.
"""

from __future__ import annotations

import functools

import pandas as pd

from . import contracts, registry

METRIC_COLUMNS = list(contracts.METRIC_COLUMNS)
LOG_COLUMNS = list(contracts.LOG_COLUMNS)
EVENT_COLUMNS = list(contracts.EVENT_COLUMNS)

#: The captures the runner pulls before any notebook starts, most volatile first.
VOLATILE: list[str] = [c.name for c in sorted(registry.CAPTURES.values(), key=lambda c: c.volatility)
                       if c.volatile and not c.after]


def precapture(inc) -> None:
    """Pull every volatile capture now, most volatile first."""
    for name in VOLATILE:
        inc.pull(name)


def all_change_events(inc) -> pd.DataFrame:
    """Every change-event capture the environment has the section for, merged and sorted."""
    from .analysis import timeline

    caps = [registry.get(n) for n in registry.CHANGE_EVENT_CAPTURES]
    return timeline.merge(*[inc.pull(c.name) for c in caps if not c.missing_sections(inc.env)])


@functools.cache
def _puller(name: str):
    cap = registry.get(name)

    def pull(inc, **params) -> pd.DataFrame:
        return inc.pull(name, **params)

    pull.__name__ = pull.__qualname__ = name
    pull.__doc__ = cap.doc or f"The capture {name!r} ({cap.source}: {cap.api})."
    return pull


def __getattr__(name: str):
    if name in registry.CAPTURES:
        return _puller(name)
    raise AttributeError(f"module 'forensics.pull' has no capture {name!r} (declared in forensics.registry: "
                         f"{', '.join(sorted(registry.CAPTURES))})")


def __dir__():
    return sorted([*globals(), *registry.CAPTURES])
