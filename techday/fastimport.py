"""Start the kit's helper processes faster: leave out imports they do not need.

Grading and headless runs start a Python process per notebook (the sandboxed executor, the nbgrader
workers and command line, papermill's runner, the wrong-solution checks). Each imports nbformat,
and with it jsonschema; this keeps the slowest part of that out.
"""

from __future__ import annotations

import sys


def skip_iri_grammar() -> None:
    """Keep jsonschema from building the ``rfc3987_syntax`` IRI grammar when nbformat imports it.

    jsonschema's ``format-nongpl`` extra (which nbformat asks for) compiles some 35 Lark parsers at
    import time, 1.3 s of CPU on the CI machine, for the ``iri`` formats that no notebook schema uses
    (python-jsonschema/jsonschema#1428). Grading imports nbformat in two processes per submission;
    with the module marked absent, jsonschema simply has no ``iri`` checker."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)
