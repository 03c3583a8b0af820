"""worker.redact_notebook: an executed notebook is scrubbed of the secrets its outputs printed, figures left as
they are; one cut short by a failed last save (a full disk) is scrubbed as text instead of failing the worker."""

import json

import nbformat

from forensics import worker

SECRET = "Zq8-vTr4nP-2kLm9x"
LINE = f"connect postgresql://app:{SECRET}@db.internal:5432/app failed\n"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _executed(path):
    cell = nbformat.v4.new_code_cell("print(dsn)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=LINE),
                    nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": LINE})]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)


def test_outputs_are_scrubbed_and_figures_kept(tmp_path):
    path = tmp_path / "nb.ipynb"
    _executed(path)
    worker.redact_notebook(path)
    text = path.read_text()
    assert SECRET not in text and "[REDACTED:url-password:" in text
    outputs = json.loads(text)["cells"][0]["outputs"]
    assert outputs[1]["data"]["image/png"] == PNG


def test_a_notebook_cut_short_is_scrubbed_as_text(tmp_path):
    path = tmp_path / "nb.ipynb"
    _executed(path)
    cut = path.read_text()[:-40]  # the last save stopped half-way
    path.write_text(cut)
    worker.redact_notebook(path)
    text = path.read_text()
    assert SECRET not in text and "[REDACTED:url-password:" in text
    assert len(text) >= len(cut) - len(SECRET)


def test_an_empty_notebook_file_is_left_empty(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text("")
    worker.redact_notebook(path)
    assert path.read_text() == ""
