"""What the batch processes of `forensics run` (the runner and its notebook workers) import without.

nbformat (through papermill and nbconvert) imports jsonschema, and jsonschema imports every format checker
it can find. One of them, ``rfc3987_syntax`` (the ``iri`` formats, installed by jupyter-events'
``jsonschema[format-nongpl]``), compiles about 35 Earley parsers when imported: 1.8-2.4 s of CPU per
process on this project's 2-core machine, in each worker and again in the runner's finish
(python-jsonschema/jsonschema#1428, jupyter-server/jupyter_server#1559). Neither the notebook schema nor
anything else here validates an ``iri``, so these processes import jsonschema without that checker.
A user's own kernels, JupyterLab and other programs are not touched. (requirements.txt pins jsonschema 4.23,
which does not install that checker, so `make`'s venv, papermill and JupyterLab start without it too; this
stays for a venv where pip chose a newer jsonschema, as when the wheel is installed on its own.)
"""

from __future__ import annotations

import sys

#: the module jsonschema imports for its ``iri`` / ``iri-reference`` format checkers
SLOW_FORMAT_CHECKER = "rfc3987_syntax"


def without_iri_format_checker() -> None:
    """Make ``import rfc3987_syntax`` fail in this process (jsonschema then registers no ``iri`` checker), when
    jsonschema's format checkers are not imported yet; after that, it changes nothing."""
    if "jsonschema._format" not in sys.modules:
        sys.modules.setdefault(SLOW_FORMAT_CHECKER, None)
