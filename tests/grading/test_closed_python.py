"""A Python install in a folder other users cannot enter (root's 0700 home holding a conda, a pyenv or a venv): where
root grades, each sandbox must still run as a host uid of its own (techday.grading.sandbox.closed_binds, _reveal).
Before, bwrap, started as that uid, could not reach the install ("Can't find source path ...: Permission denied"),
the probe failed and every sandbox on such a host ran as the host's root, its per-user budgets shared with every root
process.

Bounded: one probe sandbox (120 s at most), one notebook of one cell, one child interpreter (240 s)."""

import os
import shutil
import tempfile
import stat
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from techday.grading.sandbox import closed_binds

pytestmark = [pytest.mark.grading]


@pytest.fixture
def open_tmp():
    """A folder every user may pass through (pytest's own tmp_path is under a 0700 folder of the user's)."""
    folder = Path(tempfile.mkdtemp(prefix="techday-closed-python-"))
    os.chmod(folder, 0o755)
    yield folder
    os.chmod(folder, 0o755)
    for sub in folder.rglob("*"):
        if sub.is_dir() and not sub.is_symlink():
            os.chmod(sub, 0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _closed_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    closed = tmp_path / "closed"
    inner = closed / "home" / "venv"
    (inner / "lib").mkdir(parents=True)
    (closed / "home" / "secret.txt").write_text("not for the sandbox")
    (closed / "home" / "bin-of-its-own").mkdir()
    os.chmod(closed, 0o700)
    return closed, inner, closed / "home" / "secret.txt"


def test_the_plan_covers_the_closed_folder_and_binds_back_only_what_the_sandbox_binds(open_tmp):
    """Wrong answers caught: a plan that binds the closed folder itself back (every file in root's home readable to
    the sandbox's uid), one that takes a word of the sandboxed command for a bind (`--bind` after the command), one
    that reveals paths already open to everyone, and none at all for a closed install (the old code)."""
    closed, inner, secret = _closed_tree(open_tmp)
    open_dir = open_tmp / "open"
    open_dir.mkdir()
    argv = ["/usr/bin/bwrap", "--unshare-all", "--uid", "1000", "--ro-bind", str(inner), str(inner),
            "--ro-bind", str(open_dir), "/srv", "--setenv", "X", "--bind", "--chdir", "/grading",
            sys.executable, "-c", "pass", "--bind", str(secret), "/x"]
    plan = closed_binds(argv)
    assert plan is not None
    assert plan.covers == (str(closed),)
    assert plan.paths == ((str(inner), True),)
    # a scope's prefix before bwrap changes nothing
    assert closed_binds(["systemd-run", "--scope", "--", *argv]) == plan
    # nothing closed: nothing to do
    os.chmod(closed, 0o711)
    assert closed_binds(argv) is None


def _root_with_sandbox_uids() -> str | None:
    if os.geteuid() != 0:
        return "the grader is not root here: it has no host uid to give (the test needs root)"
    from techday.grading.sandbox import SandboxUnavailable, check_sandbox

    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        return f"no sandbox here: {exc}"
    return None


def test_a_python_install_in_a_closed_folder_still_runs_each_sandbox_as_its_own_uid(open_tmp):
    """A venv under a 0700 folder (as a conda or venv under root's home is): the sandbox probe runs as a host uid of
    its own and the run says so. Wrong answer caught: the old code, whose probe failed there (`Permission denied`)
    and ran every sandbox as the host's root (`shared: the grader is root ...`)."""
    why = _root_with_sandbox_uids()
    if why:
        print(f"skipped: {why}")
        pytest.skip(why)
    closed = open_tmp / "closed"
    closed.mkdir()
    venv = closed / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True, timeout=60).stdout.strip())
    # the packages of the Python running the tests, reached through the closed install (as a layered venv does)
    here = sysconfig.get_paths()["purelib"]
    (site / "techday-test-packages.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    os.chmod(closed, 0o700)
    probe = textwrap.dedent("""
        import os, sys
        from techday.grading.sandbox import Limits, host_user, nobody_sandbox_problem
        assert sys.prefix.startswith(sys.argv[1]), sys.prefix
        print("PROBLEM", repr(nobody_sandbox_problem()))
        print("HOST", host_user(Limits(), gpu=False))
        # a notebook graded there: the executor's sandbox as a host uid of its own, the cell run
        import json, tempfile, nbformat
        from pathlib import Path
        from techday.grading.config import grade_env
        from techday.grading.executor import run_notebook
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ran', 6 * 7)")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        work = Path(tempfile.mkdtemp(prefix="techday-closed-python-work-"))
        report = {}
        result = run_notebook(nbformat.writes(nb), work, Limits(), grade_env("cpu", "ci"), sandbox=True, gpu=False,
                              report=report)
        print("RAN", "ran 42" in json.dumps(result), report.get("host_uid"), report.get("problem"))
    """)
    # this checkout's techday, copied beside the closed folder: the sandbox binds no folder of packages that lies in
    # the package's checkout (its solutions), and where CI runs, the venv the tests use lies in the checkout
    checkout = open_tmp / "checkout"
    shutil.copytree(Path(__file__).resolve().parents[2] / "techday", checkout / "techday",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(checkout)
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", probe, str(closed)], capture_output=True, text=True,
                          timeout=240, env=env, cwd=str(open_tmp))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "PROBLEM None" in out, out
    assert "a host uid of its own" in out, out
    from techday.grading.hostuids import uid_range

    ran = next(line.split() for line in out.splitlines() if line.startswith("RAN "))
    assert ran[1] == "True", out
    lo, hi = uid_range()
    assert lo <= int(ran[2]) <= hi, out
    # the host's folder is as it was: closed, and not covered by anything outside that process
    assert stat.S_IMODE(os.stat(closed).st_mode) == 0o700
    with open("/proc/self/mountinfo") as f:
        assert str(closed) not in f.read()


def test_a_source_reached_through_a_link_into_a_closed_folder_is_revealed_at_its_real_path(open_tmp):
    """Wrong answer caught: the plan judged each source by the folders its words name, not by where it leads. A
    source that is a link in an open folder (a venv's `bin/python`, a course checkout linked into root's home), or
    has a link among its folders, pointing into a closed folder, got no plan at all: bwrap, as the sandbox's uid,
    follows the link into the closed folder and fails ("Permission denied"). Now the closed folder above where each
    source really leads is covered and that real path (a folder or a file) is bound back, nothing beside it."""
    closed, inner, secret = _closed_tree(open_tmp)
    (inner / "lib" / "tool.py").write_text("x = 1\n")
    os.chmod(closed, 0o755)
    links = open_tmp / "open"
    links.mkdir()
    (links / "venv").symlink_to(inner)                       # the source is a link
    (links / "home").symlink_to(closed / "home")             # a link among the source's folders
    os.chmod(closed, 0o700)
    argv = ["/usr/bin/bwrap", "--unshare-all", "--ro-bind", str(links / "venv"), "/a",
            "--ro-bind", str(links / "home" / "venv" / "lib" / "tool.py"), "/b", sys.executable, "-c", "pass"]
    plan = closed_binds(argv)
    assert plan is not None, "a source leading into a closed folder got no plan: bwrap cannot reach it"
    assert plan.covers == (str(closed),)
    assert plan.paths == ((str(inner), True),), "the real folder, with the file inside it coming along"
    only_file = ["/usr/bin/bwrap", "--unshare-all", "--ro-bind", str(links / "home" / "venv" / "lib" / "tool.py"),
                 "/b", sys.executable]
    assert closed_binds(only_file).paths == ((str(inner / "lib" / "tool.py"), False),)
    assert str(secret) not in repr(closed_binds(only_file))
