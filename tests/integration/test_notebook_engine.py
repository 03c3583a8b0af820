"""forensics.notebook_engine: papermill's engine saving the executed notebook at most every SAVE_EVERY_S while
cells run, always at the end, and a notebook whose kernel dies keeps the outputs of the cells before."""

import json
import textwrap
from datetime import timedelta

import nbformat

from forensics import notebook_engine, worker


def _nb(*cells: str):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["papermill"] = {}
    for c in nb.cells:
        c.metadata["papermill"] = {}
    return nb


def test_cells_in_quick_succession_are_not_saved_but_the_end_always_is(tmp_path):
    out = tmp_path / "out.ipynb"
    man = notebook_engine.ThrottledSaves(_nb("1", "2", "3"), output_path=str(out), progress_bar=False)
    man.notebook_start()
    for i, cell in enumerate(man.nb.cells):
        man.cell_start(cell, i)
        man.cell_complete(cell, i)
    assert not out.exists(), "saved within SAVE_EVERY_S of the start"
    man.notebook_complete()
    saved = json.loads(out.read_text())
    assert [c["metadata"]["papermill"]["status"] for c in saved["cells"]] == ["completed"] * 3


def test_a_cell_ending_save_every_s_after_the_last_save_is_saved(tmp_path):
    out = tmp_path / "out.ipynb"
    man = notebook_engine.ThrottledSaves(_nb("1", "2"), output_path=str(out), progress_bar=False)
    man.notebook_start()
    man.cell_start(man.nb.cells[0], 0)
    man.last_save_time -= timedelta(seconds=notebook_engine.SAVE_EVERY_S)
    man.cell_complete(man.nb.cells[0], 0)
    saved = json.loads(out.read_text())
    assert [c["metadata"]["papermill"].get("status") for c in saved["cells"]] == ["completed", "pending"]


def test_a_notebook_whose_kernel_dies_keeps_the_cells_before(tmp_path):
    (tmp_path / "notebooks").mkdir()
    src = tmp_path / "dies.ipynb"
    nbformat.write(_nb("print('first')", "print('second')", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
                       "print('never')"), src)
    try:
        run = worker.run_notebook(str(src), str(tmp_path), "dies", {})
    finally:
        worker._stop_kept()
    assert run.status == "failed" and "DeadKernel" in run.error, run.error
    saved = json.loads((tmp_path / run.notebook).read_text())
    printed = ["".join(o.get("text", "")) for c in saved["cells"] for o in c.get("outputs", [])]
    assert printed[:2] == ["first\n", "second\n"] and "never\n" not in printed
