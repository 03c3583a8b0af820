"""Notebooks are committed thin and clean: no outputs, one `parameters` cell papermill can fill,
catalogue metadata, and the same three parameters everywhere (the runner injects them)."""

import json

import pytest

from forensics.notebooks import NOTEBOOK_DIR, catalogue

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PARAMETERS = {"incident_file = None", "record_dir = None", "replay_from = None"}


def test_the_catalogue_has_every_incident_class():
    assert set(catalogue()) == {"api-errors", "db-connections", "ecs-deploy", "slow-queries", "db-health",
                                "cache-redis", "queue-backlog", "ai-cost", "data-integrity", "security",
                                "scheduled-jobs", "auth-failures", "backups", "certificates", "integrations", "overview"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_and_parameterised(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip the outputs"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assigned = {line.split("#")[0].strip() for line in "".join(tagged[0]["source"]).splitlines() if line.strip()}
    assert assigned == PARAMETERS
    meta = nb["metadata"]["forensics"]
    assert meta["title"] and meta["serves"]
    assert "captures" not in meta and "sources" not in meta, "read from the cells (forensics.notebooks), not kept"
    assert f'notebook="{path.stem}"' in "".join("".join(c["source"]) for c in code)
