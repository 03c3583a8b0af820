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
        {"timestamp": ms + i * 1000, "message": f"WARN POST /login 401 Unauthorized user=u{i} ip=10.0.0.{i}"} for i in range(20)])
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


def test_the_prefetch_runs_in_a_process_of_its_own_and_hands_frames_over(incident, tmp_path):
    """The notebook's captures are pulled by a forked child (another pid, another session, so the kernel's
    interrupts are not its), into a private folder the kernel reads; closing the session removes it."""
    import os

    from forensics.prefetch_process import PrefetchProcess

    path, proxy = incident
    inc = forensics.open_incident(path, notebook=NOTEBOOK)
    ahead = inc.prefetch
    assert isinstance(ahead, PrefetchProcess)
    assert ahead.pid not in (None, os.getpid())
    import time

    deadline = time.monotonic() + 10  # the child calls setsid first thing after the fork
    while os.getsid(ahead.pid) == os.getsid(0) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.getsid(ahead.pid) == ahead.pid  # a session of its own: the kernel's interrupts are not its
    folder = ahead.control
    assert folder.is_dir() and (folder.stat().st_mode & 0o777) == 0o700
    assert ahead.wait(60) and not ahead.errors, ahead.line()
    assert sorted(ahead.arrived) == sorted(ahead.names)
    assert ahead.line().startswith(f"captures {len(ahead.names)}/{len(ahead.names)} in ")
    before = proxy.requests
    frames = {n: inc.pull(n) for n in ahead.names}
    assert proxy.requests == before  # read from the child's folder, not pulled again
    assert not [n for n in frames if inc.captures[n].error] and len(frames["app_auth_logs"]) == 20
    plain = forensics.open_incident(path, notebook=NOTEBOOK, prefetch=False)
    for n, frame in frames.items():  # the frame handed over is the frame a cell pulling it itself gets
        pd.testing.assert_frame_equal(frame, plain.pull(n))
    assert all(inc.captures[n].file is None for n in ahead.names)  # no record: no file to point at
    inc.close()
    assert not folder.exists()
    assert inc.pull(ahead.names[0]) is frames[ahead.names[0]]  # the session stays readable
    assert not folder.exists()


def test_a_killed_kernel_leaves_no_prefetch_behind(incident, tmp_path):
    """The kernel dies (SIGKILL: no exit handler runs) while its prefetch is pulling: the child sees its parent
    gone, removes the private folder and exits."""
    import os
    import subprocess
    import sys
    import time

    path, _ = incident
    code = textwrap.dedent(f"""
        import os, sys, forensics
        inc = forensics.open_incident({str(path)!r}, notebook={NOTEBOOK!r})
        print(inc.prefetch.pid, inc.prefetch.control, flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    pid, folder = proc.stdout.split()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (os.path.exists(folder) or _alive(int(pid))):
        time.sleep(0.1)
    assert not os.path.exists(folder)
    assert not _alive(int(pid))


def _alive(pid: int) -> bool:
    import psutil

    try:  # a zombie waiting for init to reap it has ended
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_in_a_record_the_child_writes_the_record(incident, tmp_path):
    """A session that writes a record (record_dir set outside `forensics run`): the child pulls into the record
    itself, so the frames and sidecars are the record's; the private folder holds only the child's log."""
    path, _ = incident
    inc = forensics.open_incident(path, notebook=NOTEBOOK, record_dir=tmp_path / "rec")
    ahead = inc.prefetch
    assert ahead.store_dir == tmp_path / "rec" and inc.store.shared_dir is None
    assert ahead.wait(60) and not ahead.errors
    for n in ahead.names:
        assert (tmp_path / "rec" / ".captures" / f"{n}.json").exists()
        assert inc.pull(n) is not None and inc.captures[n].file == f"data/{n}.parquet"
    inc.close()
    assert not ahead.control.exists()


def test_captures_declared_at_run_time_are_prefetched_in_threads(incident, monkeypatch):
    """A capture declared in the kernel (a notebook's own, a test's) exists only there: threads, as before;
    FORENSICS_PREFETCH=threads asks for threads for every capture."""
    from forensics.captures.core import CAPTURES, LOGS, Capture, declare
    from forensics.prefetch import Prefetch
    from forensics.sources.call import Call

    path, _ = incident
    declare(Capture("test_pf_local", "test", "local", lambda inc: Call(None, {}, lambda: pd.DataFrame({"x": [1]})),
                    (), {"x": "int64"}, LOGS, doc="declared at run time"))
    try:
        inc = forensics.open_incident(path, notebook=NOTEBOOK, prefetch=False)
        assert isinstance(inc.start_prefetch(["test_pf_local"]), Prefetch)
        assert inc.prefetch.wait(20) and len(inc.pull("test_pf_local")) == 1
        inc.close()
    finally:
        CAPTURES.pop("test_pf_local", None)
    monkeypatch.setenv("FORENSICS_PREFETCH", "threads")
    inc = forensics.open_incident(path, notebook=NOTEBOOK)
    assert isinstance(inc.prefetch, Prefetch)
    assert inc.prefetch.wait(60)
    inc.close()


def test_a_new_prefetch_removes_the_folders_of_kernels_that_are_gone(incident, tmp_path):
    import os
    import tempfile
    from pathlib import Path

    from forensics.prefetch_process import PREFIX

    gone = _a_dead_pid()
    stale = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{gone}-"))
    mine = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    path, _ = incident
    inc = forensics.open_incident(path, notebook=NOTEBOOK)
    try:
        assert not stale.exists()
        assert mine.exists()  # this process is alive: its folders are its own business
    finally:
        inc.close()
        mine.rmdir()


def _a_dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
