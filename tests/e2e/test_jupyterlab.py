"""JupyterLab as it is used during an incident: the server started against the sandbox, a notebook
opened and run cell by cell through the server's REST and websocket kernel API (what the browser
does), with its default parameters, and nothing written to disk.

The notebook's default ``incident_file = None`` means ``$FORENSICS_INCIDENT``: the server's
environment names the session sandbox's incident (conftest.py), as a user's shell would after
``forensics sandbox up``."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


class Lab:
    """A JupyterLab server on 127.0.0.1 with a token, spoken to over HTTP and websocket."""

    def __init__(self, root: Path, home: Path):
        from forensics_sandbox.pg_cluster import free_port

        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / "config"),
               "JUPYTER_DATA_DIR": str(home / "data"), "IPYTHONDIR": str(home / "ipython"), "HOME": str(home)}
        self.log = open(home / "lab.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"JupyterLab did not start; see {home / 'lab.log'}") from None
                time.sleep(0.3)

    def api(self, method: str, path: str, body: dict | None = None):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


class KernelChannel:
    """The kernel's websocket (/api/kernels/<id>/channels), Jupyter messaging protocol 5.3 in JSON."""

    def __init__(self, lab: Lab, kernel_id: str):
        import websocket

        self.session = uuid.uuid4().hex
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels?session_id={self.session}",
            header=[f"Authorization: token {lab.token}"], timeout=300)

    def execute(self, code: str) -> tuple[dict, list[dict]]:
        """Run ``code``; return its execute_reply content and its iopub outputs."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": self.session, "msg_type": "execute_request",
                       "version": "5.3", "date": pd.Timestamp.now(tz="UTC").isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        reply, outputs, idle = None, [], False
        while reply is None or not idle:
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if msg["channel"] == "shell" and kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status":
                idle = msg["content"]["execution_state"] == "idle"
            elif kind in ("stream", "execute_result", "display_data", "error"):
                outputs.append({"type": kind, **msg["content"]})
        return reply, outputs

    def close(self) -> None:
        self.ws.close()


def test_api_errors_in_jupyterlab_with_default_parameters(sandbox_params, sandbox, tmp_path):
    before = _tree(NOTEBOOKS)
    lab = Lab(NOTEBOOKS, tmp_path)
    try:
        # what the browser does when the notebook is opened: read it, start a session (and its kernel)
        model = lab.api("GET", "/api/contents/api-errors.ipynb?content=1")
        cells = [c for c in model["content"]["cells"] if c["cell_type"] == "code"]
        assert "incident_file = None" in cells[0]["source"]  # the default parameters, left as they are
        sess = lab.api("POST", "/api/sessions", {"path": "api-errors.ipynb", "type": "notebook",
                                                 "name": "api-errors.ipynb", "kernel": {"name": "python3"}})
        kernel = KernelChannel(lab, sess["kernel"]["id"])
        try:
            results = []
            for cell in cells:  # "Run all cells"
                reply, outputs = kernel.execute(cell["source"])
                assert reply["status"] == "ok", (cell["source"][:200], reply.get("ename"), reply.get("evalue"))
                results.append(outputs)
            # the last cell displays the findings
            shown = [o for o in results[-1] if o["type"] == "execute_result"]
            assert shown and "'onset'" in shown[0]["data"]["text/plain"]
            _, outputs = kernel.execute("import json; print(json.dumps(inc.findings, default=str))")
            findings = json.loads("".join(o["text"] for o in outputs if o["type"] == "stream"))
            _, outputs = kernel.execute("print(inc.record_dir)")
            assert outputs[0]["text"].strip() == "None"  # interactive: no record
        finally:
            kernel.close()
        lab.api("DELETE", f"/api/sessions/{sess['id']}")
    finally:
        lab.stop()
    truth = sandbox.truth
    assert abs(pd.Timestamp(findings["onset"]) - truth["onset"]) <= pd.Timedelta(minutes=2)
    assert findings["suspected_change"]["kind"] == "deployment"
    assert any("QueuePool limit" in s for s in findings["top_error_signatures"][:3])
    # nothing written beside the notebooks: no outputs saved, no checkpoints, no record
    assert _tree(NOTEBOOKS) == before
