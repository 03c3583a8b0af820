"""Sandbox scenarios: name -> play function.

A play function takes the started :class:`~forensics.sandbox.sandbox.Sandbox` (its moto server via
``sb.client(service)`` / ``sb.backend(service)``, its PostgreSQL cluster ``sb.cluster``, its clock
``sb.now``) and returns a :class:`Played`: what it planted (``truth``), the incident it stands for,
the names of the AWS resources (the environment file's sections) and the live workloads the sandbox
stops on ``stop()``. A new scenario is one module here, registered with ``@register("name")``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ...errors import SandboxError

if TYPE_CHECKING:  # pragma: no cover
    from ..sandbox import Sandbox


@dataclass
class Played:
    """What a scenario planted and what the sandbox hands out for it."""

    truth: dict[str, Any]
    #: incident fields: incident, title, severity, window {start, end} (ISO-8601 ending in Z)
    incident: dict[str, Any]
    #: environment sections other than name/aws/postgres: alb, ecs, rds, logs
    resources: dict[str, Any]
    #: objects with ``stop()``, stopped (in reverse order) by ``Sandbox.stop()``
    workloads: list[Any] = field(default_factory=list)


PlayFunction = Callable[["Sandbox"], Played]
SCENARIOS: dict[str, PlayFunction] = {}
#: modules that register scenarios when imported
_MODULES = ("pool_exhaustion",)
_loaded = False


def register(name: str) -> Callable[[PlayFunction], PlayFunction]:
    def deco(fn: PlayFunction) -> PlayFunction:
        if name in SCENARIOS and SCENARIOS[name] is not fn:
            raise ValueError(f"scenario {name!r} is registered twice")
        SCENARIOS[name] = fn
        return fn

    return deco


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            importlib.import_module(f"{__name__}.{module}")
        _loaded = True


def names() -> list[str]:
    _load()
    return sorted(SCENARIOS)


def get(name: str) -> PlayFunction:
    _load()
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SandboxError(f"no sandbox scenario named {name!r} (known: {', '.join(names())})") from None
