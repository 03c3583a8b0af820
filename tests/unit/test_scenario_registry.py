"""Which scenarios a sandbox plays, and which incident it then stands for."""

import pytest

from forensics.errors import SandboxError
from forensics_sandbox import scenarios
from forensics_sandbox.scenarios import Played


def test_all_plays_every_scenario_pool_exhaustion_first():
    names = scenarios.resolve("all")
    assert names[0] == "pool-exhaustion"
    assert set(names) == set(scenarios.names()) - set(scenarios.STANDALONE) and len(names) >= 9
    assert scenarios.focus("all") is None


def test_a_standalone_scenario_plays_alone():
    assert "volume" in scenarios.STANDALONE and "volume" not in scenarios.resolve("all")
    assert scenarios.resolve("volume") == ["volume"] and scenarios.focus("volume") == "volume"
    with pytest.raises(SandboxError, match="played alone"):
        scenarios.resolve("volume,cache-redis")


def test_a_single_scenario_plays_on_the_primary_platform_and_is_the_focus():
    assert scenarios.resolve("cache-redis") == ["pool-exhaustion", "cache-redis"]
    assert scenarios.focus("cache-redis") == "cache-redis"
    assert scenarios.resolve("pool-exhaustion") == ["pool-exhaustion"]
    assert scenarios.focus("ecs-deploy,security") is None
    with pytest.raises(SandboxError, match="no sandbox scenario named 'nope'"):
        scenarios.resolve("nope")


def test_combine_focuses_the_incident_and_merges_resources():
    base = Played({"onset": 1}, {"incident": "A", "window": {}}, {"ecs": {"cluster": "c", "services": ["api"]}})
    other = Played({"x": 2}, {"incident": "B", "window": {}}, {"ecs": {"cluster": "c", "services": ["worker"]},
                                                               "elasticache": {"replication_group": "r"}})
    combined = scenarios.combine([("pool-exhaustion", base), ("cache-redis", other)], focus="cache-redis")
    assert combined.incident["incident"] == "B"
    assert combined.incident["notebooks"] == ["cache-redis", "overview"]
    assert combined.resources["ecs"]["services"] == ["api", "worker"]
    assert combined.truth["onset"] == 1 and combined.truth["scenarios"]["cache-redis"] == {"x": 2}
    pool = scenarios.combine([("pool-exhaustion", base)], focus="pool-exhaustion")
    assert pool.incident["notebooks"] == ["db-connections", "api-errors", "overview"]
    with pytest.raises(SandboxError, match="disagree"):
        scenarios.combine([("a", base), ("b", Played({}, {}, {"ecs": {"cluster": "other"}}))])
