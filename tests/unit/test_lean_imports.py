"""forensics.lean_imports: the runner's processes import nbformat without jsonschema's slow IRI checker, and
nbformat still validates; a process that imported jsonschema's checkers first is left as it is."""

import subprocess
import sys
import textwrap


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_nbformat_without_the_iri_checker_still_validates():
    out = _python("""
        import sys
        from forensics import lean_imports
        lean_imports.without_iri_format_checker()
        import nbformat, jsonschema
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
        nbformat.validate(nb)
        bad = nbformat.v4.new_notebook(); bad["cells"] = [{"cell_type": "nope"}]
        try:
            nbformat.validate(bad); print("accepted")
        except nbformat.ValidationError:
            print("refused")
        print(sys.modules.get("rfc3987_syntax"), "iri" in jsonschema.Draft7Validator.FORMAT_CHECKER.checkers)
    """)
    assert out.splitlines() == ["refused", "None False"]


def test_a_process_that_already_has_the_checkers_keeps_them():
    out = _python("""
        import importlib.util
        import jsonschema
        had = "iri" in jsonschema.Draft7Validator.FORMAT_CHECKER.checkers
        from forensics import lean_imports
        lean_imports.without_iri_format_checker()
        print(had, "iri" in jsonschema.Draft7Validator.FORMAT_CHECKER.checkers,
              importlib.util.find_spec("rfc3987_syntax") is not None)
    """)
    had, still, installed = out.split()
    assert had == still  # nothing removed from a process that loaded them
    assert had == installed  # the checker is there exactly when its module is installed
