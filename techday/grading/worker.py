"""A long-lived nbgrader: ``techday grade autograde`` keeps one per worker and hands it one
submission's private course root at a time.

    python -m techday.grading.worker      # JSON lines: a job on stdin, its result on stdout

This process is the trusted part of grading, outside the sandbox, exactly as ``nbgrader autograde``
was: it runs nbgrader's own ``Autograde`` converter (``ClearOutput`` ... ``OverwriteCells`` ...
``SaveAutoGrades``) with the private root's ``nbgrader_config.py``, and that converter's
``SandboxExecute`` starts a fresh sandbox, executor and kernel for every submission. What it saves is
the start of nbgrader itself (Python, nbgrader, nbconvert, SQLAlchemy, traitlets: seconds of CPU per
submission); no trainee code ever runs in it, so sharing it between submissions shares nothing a
trainee can reach.

A job is ``{"root": PATH, "lab": ID, "student": ID}``; the answer is nbgrader's own
``capture_log`` dictionary (``success``, ``log``, ``error``). Anything else that writes to standard
output (a stray ``print`` in a preprocessor) goes to standard error, so the answers stay readable.

The same process also runs any nbgrader command line, for the course's own steps (a build's
``generate_assignment`` per lab, a self-test's ``autograde`` and ``export``; never a trainee's
submission): ``{"cwd": PATH, "argv": [...], "env": {...}}`` answers ``{"returncode", "output"}``
as ``nbgrader ARGV`` started in ``cwd`` would have ended and logged (:func:`command`). nbgrader's own
test suite runs its application this way, many times in one process.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from ..fastimport import alembic_head_in_process, skip_iri_grammar


def autograde(root: str, lab: str, student: str) -> dict:
    """``nbgrader autograde LAB --student STUDENT --force`` in the course root ``root``, in this process.

    Only ``root/nbgrader_config.py`` is read (it loads ``grading/nbgrader_config.py`` itself), not the
    grading user's ``~/.jupyter``: every submission is graded with the same settings."""
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = lab
    coursedir.student_id = student
    app = Autograde(coursedir=coursedir, config=config)
    app.force = True
    app.create_student = True
    return capture_log(app)


def command(cwd: str, argv: list[str], env: dict | None = None) -> dict:
    """``nbgrader ARGV`` in the folder ``cwd`` with ``env`` added to the environment, in this
    process: ``{"returncode": N, "output": LOG}``, the exit status and log the command line gives.

    As nbgrader's own tests run it: a fresh application, its log (and anything printed) captured,
    and afterwards the application reset and the folder, environment and ``sys.path`` put back."""
    import contextlib
    import io
    import logging

    from jupyter_core.application import NoStart
    from nbgrader.apps.nbgraderapp import NbGraderApp

    old_cwd, old_env, old_path = os.getcwd(), dict(os.environ), list(sys.path)
    buffer = io.StringIO()
    app = None
    try:
        os.chdir(cwd)
        os.environ.update(env or {})
        app = NbGraderApp.instance()
        with contextlib.redirect_stdout(buffer):
            try:
                app.initialize(argv)
                app.init_logging(logging.StreamHandler, [buffer], color=False, subapps=True)
                app.start()
                code = 0
            except NoStart:
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:  # as the command line would end: a traceback and exit status 1
        buffer.write(traceback.format_exc()[-4000:])
        code = 1
    finally:
        if app is not None:
            app.reset()
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        sys.path[:] = old_path
    return {"returncode": code, "output": buffer.getvalue()}


def warm() -> None:
    """Import what every job needs, before the first one arrives."""
    import nbgrader.converters  # noqa: F401
    import nbgrader.coursedir  # noqa: F401
    import nbgrader.utils  # noqa: F401
    from nbgrader.apps.nbgraderapp import NbGraderApp  # noqa: F401

    from . import executor  # noqa: F401  (SandboxExecute, named in the private config)


def main() -> int:
    skip_iri_grammar()
    alembic_head_in_process()  # a new gradebook's revision without starting the alembic program
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    warm()
    answers.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            if "argv" in job:
                result = command(job["cwd"], list(job["argv"]), job.get("env"))
            else:
                result = autograde(job["root"], job["lab"], job["student"])
        except (Exception, SystemExit):  # nbgrader's own failures end up here as its CLI's would
            result = {"success": False, "error": traceback.format_exc()[-4000:], "log": ""}
        answers.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
