"""A `forensics run` worker keeps one kernel for its notebooks (forensics.kernels): the second notebook starts in
the state a new kernel has (nothing the first defined, changed or silenced), a failed notebook is never followed in
its kernel, and no kernel outlives its worker. Real kernels, real papermill, through worker.run_notebook."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from forensics import worker


def _notebook(path: Path, *cells: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return str(path)


def _outputs(record: Path, name: str) -> list[str]:
    """The lines the notebook printed."""
    nb = json.loads((record / "notebooks" / f"{name}.ipynb").read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])
                   if o.get("name") == "stdout").splitlines()


def _counts(record: Path, name: str) -> list:
    nb = json.loads((record / "notebooks" / f"{name}.ipynb").read_text())
    return [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture()
def record(tmp_path):
    (tmp_path / "notebooks").mkdir()
    yield tmp_path
    worker._stop_kept()


MESS = """
import os, sys, warnings, pandas as pd, matplotlib
secret_of_the_first = 42
os.environ["FIRST_NOTEBOOK"] = "1"
sys.path.insert(0, "/nonexistent-first")
os.makedirs("elsewhere", exist_ok=True); os.chdir("elsewhere")
warnings.simplefilter("ignore")
pd.set_option("display.max_rows", 3); pd.set_option("display.max_colwidth", 10)
matplotlib.rcParams["lines.linewidth"] = 9.0
print(os.getpid())
"""

CHECK = """
import os, sys, warnings, pandas as pd, matplotlib
print(os.getpid())
print("secret_of_the_first" in dir(), os.environ.get("FIRST_NOTEBOOK"), "/nonexistent-first" in sys.path,
      os.path.basename(os.getcwd()), pd.get_option("display.max_rows"), pd.get_option("display.max_colwidth"),
      matplotlib.rcParams["lines.linewidth"])
with warnings.catch_warnings(record=True) as seen:
    warnings.warn("still shown", UserWarning)
print(len(seen))
"""


def test_the_next_notebook_starts_as_in_a_new_kernel(record):
    first = worker.run_notebook(_notebook(record / "a.ipynb", MESS, "print(1)"), str(record), "first", {})
    second = worker.run_notebook(_notebook(record / "b.ipynb", CHECK, "pass"), str(record), "second", {})
    assert (first.status, second.status) == ("ok", "ok"), (first.error, second.error)
    pid_a, pid_b = _outputs(record, "first")[0].strip(), _outputs(record, "second")[0].strip()
    assert pid_a == pid_b, "the second notebook ran in a new kernel: nothing was kept"
    assert _outputs(record, "second")[1].split() == ["False", "None", "False", record.name, "60", "None", "1.5"]
    assert _outputs(record, "second")[2].strip() == "1"
    assert _counts(record, "second") == [1, 2]  # a new session: counts start again


def test_a_failed_notebook_is_followed_by_a_new_kernel_and_none_is_left(record):
    pid = "import os; print(os.getpid())"
    failed = worker.run_notebook(_notebook(record / "a.ipynb", pid, "raise RuntimeError('boom')"), str(record),
                                 "first", {})
    after = worker.run_notebook(_notebook(record / "b.ipynb", pid), str(record), "second", {})
    assert failed.status == "failed" and "RuntimeError: boom" in failed.error
    assert after.status == "ok"
    old, new = int(_outputs(record, "first")[0]), int(_outputs(record, "second")[0])
    assert old != new
    assert not _running(old)
    worker._stop_kept()
    assert not _running(new), "the kept kernel outlived its worker's clean-up"


def test_a_dead_kernel_is_replaced(record):
    pid = "import os; print(os.getpid())"
    worker.run_notebook(_notebook(record / "a.ipynb", pid), str(record), "first", {})
    os.kill(int(_outputs(record, "first")[0]), 9)
    after = worker.run_notebook(_notebook(record / "b.ipynb", pid), str(record), "second", {})
    assert after.status == "ok", after.error
    assert _outputs(record, "second")[0] != _outputs(record, "first")[0]


def test_a_worker_process_ends_its_kernel_when_it_exits(tmp_path):
    """The runner's pool ends its workers at the end of a run; their kept kernels end with them."""
    (tmp_path / "notebooks").mkdir()
    nb = _notebook(tmp_path / "a.ipynb", "import os; print(os.getpid())")
    code = textwrap.dedent(f"""
        from forensics import worker
        with worker.pool(1) as (workers, _):
            print(workers.submit(worker.run_notebook, {nb!r}, {str(tmp_path)!r}, "only", {{}}).result().status)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip().endswith("ok"), out.stderr[-2000:]
    kernel = int(_outputs(tmp_path, "only")[0])
    assert not _running(kernel), "a kernel outlived the worker that kept it"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_kept_kernel_listens_on_its_own_unix_sockets_not_tcp_ports(tmp_path):
    """Two workers starting kernels at once raced for TCP ports (a kernel died with "Address already in use");
    a kept kernel's sockets are files in a folder of its own, removed when it stops."""
    from pathlib import Path

    from forensics import kernels

    km = kernels.start(str(tmp_path), [])
    try:
        assert km.transport == "ipc" and kernels.alive(km)
        folder = Path(km.sockets)
        kc = km.blocking_client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)  # the kernel answers over the sockets in its folder
        kc.stop_channels()
        assert km.ip.startswith(str(folder)) and km.connection_file == str(folder / "connection.json")
        assert len(list(folder.iterdir())) == 6  # five sockets and the connection file
    finally:
        kernels.stop(km)
    assert not folder.exists()
