"""Sandbox scenarios: name -> play function.

A play function takes the started :class:`~forensics_sandbox.sandbox.Sandbox` (its moto server via
``sb.client(service)`` / ``sb.backend(service)``, its PostgreSQL cluster ``sb.cluster``, its clock
``sb.now``) and returns a :class:`Played`: what it planted (``truth``), the incident it stands for,
the names of the AWS resources (the environment file's sections) and the live workloads the sandbox
stops on ``stop()``. A new scenario is one module here, registered with ``@register("name")``.
"""

from __future__ import annotations

import importlib
from typing import Any

from forensics.errors import SandboxError

from .played import SCENARIOS, Played, PlayFunction, register

__all__ = ["SCENARIOS", "Played", "PlayFunction", "register", "resolve", "focus", "combine", "names", "get"]

#: modules that register scenarios when imported
_MODULES = ("pool_exhaustion", "cache_redis", "queue_backlog", "ai_cost", "data_integrity", "security",
            "ecs_deploy", "slow_queries", "db_health", "scheduled_jobs", "auth_failures", "backups", "certificates", "volume",
            "integrations")
_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            importlib.import_module(f"{__name__}.{module}")
        _loaded = True


#: Plays every scenario into one sandbox, the first one's incident standing for all of them.
ALL = "all"
PRIMARY = "pool-exhaustion"


#: The notebooks a scenario is there for (by default the notebook of the same name).
SERVES = {PRIMARY: ["db-connections", "api-errors"], "volume": ["api-errors"]}
#: Scenarios played alone (their own platform and incident): never in "all", never on top of the primary.
STANDALONE = ("volume",)


def resolve(spec: str) -> list[str]:
    """``"all"`` -> every scenario (pool-exhaustion first); ``"a,b"`` -> those.

    The primary scenario is the platform every other one runs on (the ALB, the API service, RDS and
    the app logs, and their incident): a scenario played on its own is played on top of it, so its
    environment is complete; the sandbox's incident is then that scenario's (see :func:`focus`)."""
    if spec == ALL:
        rest = [n for n in names() if n != PRIMARY and n not in STANDALONE]
        return [PRIMARY, *rest] if PRIMARY in names() else rest
    out = [n.strip() for n in spec.split(",") if n.strip()]
    for n in out:
        get(n)  # unknown name: SandboxError
    if not out:
        raise SandboxError("no scenario named")
    alone = [n for n in out if n in STANDALONE]
    if alone and len(out) > 1:
        raise SandboxError(f"scenario {alone[0]!r} is played alone, not with {', '.join(n for n in out if n != alone[0])}")
    if alone:
        return out
    if PRIMARY not in out:
        out.insert(0, PRIMARY)
    return out


def focus(spec: str) -> str | None:
    """The scenario whose incident the sandbox stands for: a single named one, else the primary."""
    names_ = [n.strip() for n in spec.split(",") if n.strip()] if spec != ALL else []
    return names_[0] if len(names_) == 1 else None


def combine(plays: list[tuple[str, Played]], focus: str | None = None) -> Played:
    """Several scenarios in one sandbox: the first one's incident and flat truth (or, with ``focus``,
    that scenario's incident, restricted to its notebooks and the overview); every scenario's truth
    under ``truth["scenarios"][name]``; resources deep-merged (lists united); all workloads."""
    first = plays[0][1]
    truth = dict(first.truth)
    incident = first.incident
    focused = dict(plays).get(focus) if focus else None
    if focused is not None:
        incident = {**focused.incident, "notebooks": [*SERVES.get(focus, [focus]), "overview"]}
    truth["scenarios"] = {name: p.truth for name, p in plays}
    resources: dict[str, Any] = {}
    for _, p in plays:
        resources = _merge(resources, p.resources)
    return Played(truth=truth, incident=incident, resources=resources,
                  workloads=[w for _, p in plays for w in p.workloads])


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    if isinstance(a, list) and isinstance(b, list):
        return a + [x for x in b if x not in a]
    if a != b:
        raise SandboxError(f"scenarios disagree on a resource: {a!r} vs {b!r}")
    return a


def names() -> list[str]:
    _load()
    return sorted(SCENARIOS)


def get(name: str) -> PlayFunction:
    _load()
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SandboxError(f"no sandbox scenario named {name!r} (known: {', '.join(names())})") from None
