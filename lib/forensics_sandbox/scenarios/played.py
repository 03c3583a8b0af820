"""What a scenario returns (:class:`Played`) and how it makes itself known (:func:`register`).

Its own module so that the scenario modules and the package that loads them both import it, and
neither imports the other (the package imports the scenario modules by name when first asked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


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


#: a scenario: the started sandbox (:class:`forensics_sandbox.sandbox.Sandbox`) -> what it planted
PlayFunction = Callable[[Any], Played]
#: name -> play function, filled by :func:`register` as the scenario modules are imported
SCENARIOS: dict[str, PlayFunction] = {}


def register(name: str) -> Callable[[PlayFunction], PlayFunction]:
    def deco(fn: PlayFunction) -> PlayFunction:
        if name in SCENARIOS and SCENARIOS[name] is not fn:
            raise ValueError(f"scenario {name!r} is registered twice")
        SCENARIOS[name] = fn
        return fn

    return deco
