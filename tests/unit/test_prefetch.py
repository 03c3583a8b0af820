"""The interactive prefetch (forensics.prefetch, IncidentSession.start_prefetch/refresh): each declared capture
pulled once, in background threads; a cell waits only for the capture it asks for; refresh pulls again; a
replay contacts no source. The sources are real HTTP on loopback: a small server that counts the requests per
path and answers each path after its own delay."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from forensics import captures, prefetch
from forensics.capture import CaptureStore
from forensics.captures.core import CAPTURES, LIVE, LOGS, Capture, declare
from forensics.params import Incident
from forensics.session import IncidentSession
from forensics.sources.call import Call
from forensics.window import IncidentWindow

DELAYS = {"fast": 0.05, "slow": 1.5, "live": 0.05, "derived": 0.05}
COLUMNS = {"path": "str", "n": "int64"}


@pytest.fixture
def source():
    """A loopback HTTP source: GET /<path> answers after DELAYS[path]; ``hits`` counts requests per path."""
    hits: Counter = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = self.path.strip("/")
            with lock:
                hits[path] += 1
                n = hits[path]
            time.sleep(DELAYS.get(path, 0))
            body = json.dumps({"path": path, "n": n}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield url, hits
    server.shutdown()
    server.server_close()


def _get(url: str) -> pd.DataFrame:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return pd.DataFrame([json.loads(resp.read())])


@pytest.fixture
def declared(source):
    """Four captures of the loopback source, declared for the test and removed after it."""
    url, hits = source

    def call(path):
        return lambda inc: Call(None, {"url": f"{url}/{path}"}, lambda: _get(f"{url}/{path}"))

    def derived_call(inc):
        base = inc.pull("test_pf_fast")
        inc.sampling("test_pf_fast")  # reads its input's recorded args, also in a prefetch thread
        return Call(None, {"url": f"{url}/derived", "from": int(base["n"].iloc[0]) if len(base) else None}, lambda: _get(f"{url}/derived"))

    names = []
    for name, path, vol, after in [("test_pf_live", "live", LIVE, ()), ("test_pf_fast", "fast", LOGS, ()),
                                   ("test_pf_slow", "slow", LOGS, ()), ("test_pf_derived", "derived", LOGS, None)]:
        build = derived_call if after is None else call(path)
        declare(Capture(name, "test", f"GET /{path}", build, (), COLUMNS, vol,
                        after=("test_pf_fast",) if after is None else (), doc="a test capture"))
        names.append(name)
    yield names, hits
    for n in names:
        CAPTURES.pop(n, None)


def _session(tmp_path=None, replay_from=None) -> IncidentSession:
    window = IncidentWindow("2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z")
    store = CaptureStore(tmp_path, replay_from=replay_from, notebook="t")
    return IncidentSession(Incident("INC-1", "t", "P3", window, {"name": "test"}), store, "t")


def test_the_prefetch_pulls_each_declared_capture_once_and_the_cells_are_served(declared):
    names, hits = declared
    inc = _session()
    ahead = inc.start_prefetch(names)
    assert [c.name for c in ahead.planned][0] == "test_pf_live"  # volatile first
    assert ahead.wait(20)
    assert not ahead.errors and not [n for n in names if inc.store.meta(n).error]
    assert dict(hits) == {"live": 1, "fast": 1, "slow": 1, "derived": 1}
    assert inc.captures == {}  # nothing is the notebook's until a cell asks
    for n in names:  # the cells, and a re-run of them: served from memory
        assert len(inc.pull(n)) == 1
        inc.pull(n)
    assert dict(hits) == {"live": 1, "fast": 1, "slow": 1, "derived": 1}
    assert set(inc.captures) == set(names)
    assert "captures 4/4 in" in ahead.line()


def test_a_cell_waits_only_for_the_capture_it_asks_for(declared):
    names, hits = declared
    inc = _session()
    ahead = inc.start_prefetch(names)
    t0 = time.perf_counter()
    inc.pull("test_pf_fast")
    inc.pull("test_pf_derived")
    waited = time.perf_counter() - t0
    assert waited < DELAYS["slow"] * 0.7, f"the cell waited {waited:.2f} s: it waited for the slow capture"
    assert not ahead.done and "waiting for" in ahead.line("test_pf_slow")
    inc.pull("test_pf_slow")
    ahead.wait(20)
    assert dict(hits) == {"live": 1, "fast": 1, "slow": 1, "derived": 1}  # asked and prefetched: once


def test_the_rest_come_in_the_order_the_cells_ask_and_an_input_before_its_reader(declared):
    names, _ = declared
    planned = captures.plan(names, {})[0]
    asked = ["test_pf_slow", "test_pf_derived", "test_pf_live"]  # a notebook asking in this order
    order = [c.name for c in prefetch.in_cell_order(planned, asked)]
    assert order == ["test_pf_slow", "test_pf_fast", "test_pf_derived", "test_pf_live"]
    # a capture no cell names keeps its place, after those that are
    assert [c.name for c in prefetch.in_cell_order(planned, ["test_pf_slow"])][0] == "test_pf_slow"


def test_no_background_pull_starts_while_a_cell_waits(declared):
    names, hits = declared
    inc = _session()
    ahead = prefetch.Prefetch(inc, captures.plan(names, {})[0], threads=1, order=names)
    with ahead.cell_waits():  # a cell is pulling: the prefetch holds back
        ahead.start()
        time.sleep(0.5)
        assert sum(hits.values()) == 0 and not ahead.arrived
    assert ahead.wait(20) and sorted(ahead.arrived) == sorted(names)
    assert dict(hits) == {"live": 1, "fast": 1, "slow": 1, "derived": 1}


def test_a_cancelled_prefetch_held_back_by_a_cell_ends(declared):
    names, hits = declared
    inc = _session()
    ahead = prefetch.Prefetch(inc, captures.plan(names, {})[0], threads=1, order=names)
    with ahead.cell_waits():
        ahead.start()
        time.sleep(0.2)
        ahead.cancel()
        assert ahead.wait(5), "a cancelled prefetch waiting for its turn must end"
    assert sum(hits.values()) == 0


def test_refresh_pulls_again(declared):
    names, hits = declared
    inc = _session()
    inc.start_prefetch(names).wait(20)
    assert inc.pull("test_pf_fast")["n"].iloc[0] == 1
    assert inc.refresh("test_pf_fast")["n"].iloc[0] == 2
    assert inc.pull("test_pf_fast")["n"].iloc[0] == 2 and hits["fast"] == 2
    inc.refresh()  # everything the session holds, again, in the background
    inc.prefetch.wait(20)
    assert dict(hits) == {"live": 2, "fast": 3, "slow": 2, "derived": 2}


def test_a_failed_input_fails_the_derived_capture_pulled_ahead(declared, source):
    names, hits = declared
    url, _ = source
    inc = _session()
    CAPTURES["test_pf_fast"] = Capture("test_pf_fast", "test", "GET /fast",
                                       lambda inc: Call(None, {}, lambda: _get("http://127.0.0.1:1/closed")),
                                       (), COLUMNS, LOGS, doc="a test capture")
    inc.start_prefetch(["test_pf_derived"]).wait(20)
    derived = inc.pull("test_pf_derived")
    assert "its input test_pf_fast failed" in inc.captures["test_pf_derived"].error
    assert inc.captures["test_pf_fast"].error and len(derived) == 0  # the input is the notebook's too
    assert inc.finding("x", 1, needs=["test_pf_fast"]) is None


def test_in_a_record_the_runner_plan_is_not_pulled_again(declared, tmp_path):
    names, hits = declared
    runner_session = _session(tmp_path)
    volatile = prefetch.pull_volatile(runner_session, captures.plan(names, {})[0])
    assert [c.name for c in volatile] == ["test_pf_live"]
    assert prefetch.planned_in(tmp_path) == set(names)
    nb = _session(tmp_path)
    assert nb.start_prefetch(names) is None  # the runner pulls them
    nb.pull("test_pf_live")
    assert hits["live"] == 1  # served from the record


def test_a_replay_contacts_no_source(declared, tmp_path):
    names, hits = declared
    rec = _session(tmp_path / "rec")
    rec.start_prefetch(names).wait(20)
    from forensics.capture import collect_sidecars

    (tmp_path / "rec" / "manifest.json").write_text(json.dumps({"captures": collect_sidecars(tmp_path / "rec")}))
    before = dict(hits)
    replay = _session(tmp_path / "out", replay_from=tmp_path / "rec")
    for n in names:
        assert len(replay.pull(n)) == 1
    replay.refresh("test_pf_slow")
    assert dict(hits) == before


def test_open_incident_prefetches_unless_turned_off(monkeypatch):
    monkeypatch.setenv(prefetch.ENV, "0")
    assert not prefetch.enabled()
    monkeypatch.setenv(prefetch.ENV, "1")
    assert prefetch.enabled()
    assert "alb_metrics" in prefetch.declared("api-errors")
    assert prefetch.declared("not-a-notebook") == ()
