"""techday/fastimport.py: what the kit's processes leave out on the way in changes no answer.

Wrong answers caught: a gradebook stamped with another schema revision than nbgrader's own ``alembic
heads`` gives (a later ``nbgrader db upgrade`` would then migrate it wrongly or refuse it); a
``techday`` command that builds the IRI grammar again (a second of CPU for each of the few hundred
commands a build, a test run or a grading day starts)."""

import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_a_new_gradebook_gets_the_revision_the_alembic_program_gives(tmp_path):
    program = _python("import nbgrader.api as api; print(api.get_alembic_version())")  # starts `alembic heads`
    in_process = _python(f"""
        import sqlite3
        from techday.fastimport import alembic_head_in_process
        alembic_head_in_process()
        import nbgrader.api as api
        api.Gradebook("sqlite:///{tmp_path / 'gradebook.db'}").close()
        print(sqlite3.connect("{tmp_path / 'gradebook.db'}").execute("select version_num from alembic_version").fetchone()[0])
    """)
    assert len(program) == 12 and in_process == program, (program, in_process)


def test_a_techday_command_reads_notebooks_without_the_iri_grammar():
    got = _python("""
        import contextlib, io, sys
        from techday.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(["i18n", "report", "00-gpu-tour"])
        print(code, "nbformat" in sys.modules, sys.modules.get("rfc3987_syntax", "absent"))
    """)
    assert got == "0 True None", got  # nbformat was imported, and the grammar's module marked absent
