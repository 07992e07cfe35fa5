"""Start the kit's helper processes faster: leave out imports they do not need.

Grading and headless runs start a Python process per notebook (the sandboxed executor, the nbgrader
workers and command line, papermill's runner, the wrong-solution checks), and every ``techday``
command that reads a lab is a process of its own. Each imports nbformat, and with it jsonschema;
this keeps the slowest part of that out (about a second of CPU a process).
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


def alembic_head_in_process() -> None:
    """Let nbgrader read its gradebook schema's revision in this process instead of starting ``alembic``.

    When nbgrader creates a gradebook (every build, every self-test root) it runs the ``alembic heads``
    program to learn the newest revision of its own migrations and stamps the new database with it:
    a second Python that imports SQLAlchemy and Alembic, about 2 s a call, and one that must be on
    ``PATH``. :class:`alembic.script.ScriptDirectory` on nbgrader's own migrations folder
    (``nbgrader.dbutil.ALEMBIC_DIR``, the folder that program is pointed at) gives the same head in
    a few milliseconds. The patch is nbgrader's ``get_alembic_version``, in this process only."""
    import nbgrader.api

    if getattr(nbgrader.api.get_alembic_version, "__techday__", False):
        return

    def get_alembic_version() -> str:
        from alembic.script import ScriptDirectory
        from nbgrader.dbutil import ALEMBIC_DIR

        return ScriptDirectory(ALEMBIC_DIR).get_current_head()

    get_alembic_version.__techday__ = True
    nbgrader.api.get_alembic_version = get_alembic_version
