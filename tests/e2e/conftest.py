"""The end-to-end tests read one record: the session's `forensics run` of every notebook."""

import json

import pytest


@pytest.fixture(scope="session")
def record(catalogue_record):
    return catalogue_record


@pytest.fixture(scope="session")
def findings(record):
    return json.loads((record / "findings.json").read_text())
