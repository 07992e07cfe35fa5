"""Run test processes as other Unix users, as the hub runs each account's server (tests/hub).

Only root can switch users, and the other user must be able to read this checkout and its Python
environment: :func:`why_not` says when either is missing, so the tests that need it skip with that
reason printed instead of proving nothing.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from techday.hub.config import GRADER_GID, GRADER_UID, TRAINEE_GID, UID_FIRST

ROOT = Path(__file__).resolve().parent.parent
RUNAS = [sys.executable, "-m", "techday.hub.runas"]


def runas(uid: int, gid: int, *command: str, home: str | None = None) -> list[str]:
    """The command line that runs ``command`` as ``uid:gid`` (through the product's own ``techday.hub.runas``)."""
    return [*RUNAS, str(uid), str(gid), *(["--home", home] if home else []), "--", *command]


def child_env(**extra: str) -> dict:
    """An environment another user's Python can import this checkout with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "JUPYTER_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # nbgrader runs `alembic` from PATH when it opens a gradebook: this environment's tools come first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env.update(extra)
    return env


@functools.cache
def why_not() -> str | None:
    """Why processes cannot run as other users here, or None."""
    if os.geteuid() != 0:
        return f"switching Unix users needs root (this is uid {os.geteuid()})"
    probe = runas(UID_FIRST, TRAINEE_GID, sys.executable, "-c", "import techday.hub.exchange, nbgrader, jupyterhub")
    try:
        out = subprocess.run(probe, capture_output=True, text=True, timeout=120, env=child_env(),
                             cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return "importing techday as another user took over 2 minutes"
    if out.returncode != 0:
        closed = sorted({str(p) for path in (ROOT, Path(sys.executable).resolve(), Path(sys.prefix))
                         for p in (path, *path.parents) if p.is_dir() and not os.stat(p).st_mode & 0o001})
        return (f"uid {UID_FIRST} cannot run this Python or import this checkout"
                + (f" (not open to other users: {', '.join(closed)}; `chmod o+x` them, as .ci/run does)"
                   if closed else "")
                + f": {' '.join((out.stderr or out.stdout).strip().splitlines()[-1:])}")
    return None


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give ``path`` and everything under it to ``uid:gid`` (a course root to the grader user)."""
    for dirpath, _, files in os.walk(path):
        os.chown(dirpath, uid, gid)
        for f in files:
            os.chown(os.path.join(dirpath, f), uid, gid)


# What trainee B tries on trainee A's submission, told its path (as if it had leaked), from a process of
# its own (tests/hub/test_exchange_isolation.py) or a kernel of its own server (test_hub_integration.py).
# INBOUND, THEIRS, COURSE (the course's folder in the exchange) and NOTEBOOK are set before it runs;
# it prints {attempt: "done" or the error's name, "uid": B's uid} as JSON.
ATTACK = r"""
import json, os, shutil
done = {"uid": os.getuid()}
def attempt(name, fn):
    try:
        fn()
        done[name] = "done"
    except OSError as exc:
        done[name] = type(exc).__name__
attempt("list inbound", lambda: os.listdir(INBOUND))
attempt("read their notebook", lambda: open(os.path.join(THEIRS, NOTEBOOK)).read())
attempt("read their secret", lambda: open(os.path.join(THEIRS, "submission_secret.txt")).read())
attempt("overwrite their notebook", lambda: open(os.path.join(THEIRS, NOTEBOOK), "w").write("{}"))
attempt("add a file to theirs", lambda: open(os.path.join(THEIRS, "planted.txt"), "w").write("x"))
attempt("rename theirs", lambda: os.rename(THEIRS, THEIRS + "-moved"))
attempt("delete theirs", lambda: shutil.rmtree(THEIRS))
attempt("rename the course folder", lambda: os.rename(COURSE, COURSE + "-gone"))
print(json.dumps(done))
"""


def attack_code(inbound: Path, theirs: Path, course: Path, notebook: str) -> str:
    """:data:`ATTACK` with its four names set."""
    return (f"INBOUND, THEIRS, COURSE, NOTEBOOK = {str(inbound)!r}, {str(theirs)!r}, {str(course)!r}, {notebook!r}\n"
            + ATTACK)


def collect_by_name_config(folder: Path) -> Path:
    """A Jupyter config folder with the shipped nbgrader settings and nbgrader's own collect (by name):
    for tests where every process is one Unix user, so no entry is owned by its student's uid."""
    folder.mkdir()
    shipped = ROOT / "docker" / "etc-jupyter" / "nbgrader_config.py"
    (folder / "nbgrader_config.py").write_text(
        f"exec(compile(open({str(shipped)!r}).read(), {str(shipped)!r}, 'exec'))\n"
        'c.ExchangeFactory.collect = "nbgrader.exchange.default.ExchangeCollect"\n')
    return folder


def shared_dir(prefix: str) -> Path:
    """A fresh folder other users can pass through (pytest's tmp_path is closed to them: 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


__all__ = ["ATTACK", "GRADER_GID", "GRADER_UID", "TRAINEE_GID", "UID_FIRST", "attack_code", "child_env", "chown_tree",
           "collect_by_name_config",
           "runas", "shared_dir", "why_not"]
