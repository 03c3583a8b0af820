"""The interactive prefetch against the moto server, through the loopback proxy that counts AWS requests:
``open_incident`` pulls the notebook's declared captures in the background with as many requests as the cells
would make one after another (each capture once), the cells then make none, ``refresh`` makes them again, and a
replay of the record makes none at all."""

from __future__ import annotations

import json
import textwrap
import uuid

import pandas as pd
import pytest

import forensics
from forensics import captures
from forensics.capture import collect_sidecars
from forensics.prefetch import declared

from tests.loopback_proxy import LoopbackProxy

pytestmark = pytest.mark.sandbox

NOTEBOOK = "auth-failures"  # with only a logs section, its plan is two FilterLogEvents captures


@pytest.fixture(scope="module")
def incident(moto_server, tmp_path_factory):
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=5)
    group = f"/app/pf-{uuid.uuid4().hex[:8]}"
    client = moto_server.client("logs")
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="web-1")
    ms = int((end - pd.Timedelta(minutes=30)).timestamp() * 1000)
    client.put_log_events(logGroupName=group, logStreamName="web-1", logEvents=[
        {"timestamp": ms + i * 1000, "message": f"WARN login failed for user u{i} from 10.0.0.{i}"} for i in range(20)])
    proxy = LoopbackProxy(moto_server.endpoint_url).start()
    d = tmp_path_factory.mktemp("prefetch")
    (d / "env.yaml").write_text(textwrap.dedent(f"""\
        name: prefetch-test
        aws: {{region: {moto_server.region}, profile: null, endpoint_url: "{proxy.endpoint_url}"}}
        logs: {{app: ["{group}"]}}
    """))
    (d / "i.yaml").write_text(textwrap.dedent(f"""\
        incident: INC-PF
        title: prefetch
        severity: P3
        environment: {d / 'env.yaml'}
        window: {{start: "{(end - pd.Timedelta(hours=1)).isoformat()}", end: "{end.isoformat()}"}}
    """))
    yield d / "i.yaml", proxy
    proxy.stop()


def test_the_prefetch_pulls_each_capture_once_and_a_replay_contacts_nothing(incident, tmp_path):
    path, proxy = incident
    # the cells one after another, no prefetch: what each capture costs in requests
    before = proxy.requests
    plain = forensics.open_incident(path, notebook=NOTEBOOK, prefetch=False)
    assert plain.prefetch is None
    names = [c.name for c in captures.plan(declared(NOTEBOOK), plain.env)[0]]
    assert names, "the notebook's plan is empty in this environment"
    for n in names:
        plain.pull(n)
    sequential = proxy.requests - before
    assert sequential >= len(names)

    # open_incident prefetches the same captures in the background: the same requests, each capture once
    before = proxy.requests
    inc = forensics.open_incident(path, notebook=NOTEBOOK, record_dir=tmp_path / "rec")
    assert inc.prefetch is not None and sorted(inc.prefetch.names) == sorted(names)
    assert inc.prefetch.wait(60) and not inc.prefetch.errors
    assert proxy.requests - before == sequential
    assert not [n for n in names if inc.store.meta(n).error], inc.prefetch.line()
    # the cells (and their re-runs) make no request
    before = proxy.requests
    for _ in range(2):
        for n in names:
            inc.pull(n)
    assert proxy.requests == before
    # an explicit refresh does
    inc.refresh(names[0])
    assert proxy.requests > before

    # a replay of the record: no prefetch, no request
    rec = tmp_path / "rec"
    (rec / "manifest.json").write_text(json.dumps({"captures": collect_sidecars(rec)}))
    before = proxy.requests
    replay = forensics.open_incident(path, notebook=NOTEBOOK, replay_from=rec, record_dir=tmp_path / "out")
    assert replay.prefetch is None
    for n in names:
        replay.pull(n)
    assert all(replay.captures[n].replayed_from for n in names)
    replay.refresh()
    assert proxy.requests == before


def test_under_forensics_run_the_plan_is_pulled_once(incident, tmp_path):
    """The runner pulls the plan; the notebook's open_incident sees it in the record and prefetches nothing:
    the run makes the requests of one pull per capture."""
    import os
    import subprocess
    import sys

    import nbformat

    path, proxy = incident
    names = [c.name for c in captures.plan(declared(NOTEBOOK), forensics.open_incident(
        path, prefetch=False).env)[0]]
    before = proxy.requests
    once = forensics.open_incident(path, prefetch=False)
    for n in names:
        once.pull(n)
    one_pull_each = proxy.requests - before

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("incident_file = None\nrecord_dir = None\nreplay_from = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import forensics\ninc = forensics.open_incident(incident_file, record_dir=record_dir, "
        "replay_from=replay_from, notebook='pf')\nassert inc.prefetch is None, 'the runner pulled the plan'\n"
        + "".join(f"inc.pull({n!r})\n" for n in names)
        + "inc.finding('n', len(inc.captures), needs=[])")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "pf.ipynb")
    before = proxy.requests
    proc = subprocess.run([sys.executable, "-m", "forensics.cli", "run", str(path), "--out", "ev", "--jobs", "1",
                           "--skip-preflight"], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "FORENSICS_NOTEBOOK_DIR": str(nbdir)})
    assert "plan     2 captures for 1 notebook" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "FAILED" not in proc.stdout, proc.stdout + proc.stderr
    assert proxy.requests - before == one_pull_each + 1  # and the runner's STS GetCallerIdentity
