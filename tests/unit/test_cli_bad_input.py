"""Bad input to the ``techday`` command: one line naming the file, exit 2, no traceback
(CONTRIBUTING.md, Package: "Bad input gets a clear error that names the file ... and loses nothing");
and SIGTERM or SIGHUP stop a command as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import ROOT, ctrl_c_works, techday

SYLLABUS = (ROOT / "course" / "syllabus.toml").read_text(encoding="utf-8")
COURSE_TABLE = SYLLABUS[SYLLABUS.index("[course]"):].split("\n[", 1)[0]


def _without_course_table(extra: str) -> str:
    return extra + "\n" + SYLLABUS.replace(COURSE_TABLE, "")


# (what the file holds, what the one line must say). Each was a Python traceback and exit 1, or
# (empty) a build of nothing that printed its course root and exit 0 as if it had worked.
BROKEN = {
    "saved as Latin-1": ('title = "caf\xe9"\n'.encode("latin-1"), "not UTF-8 text"),
    "empty (cut off)": (b"", "no [labs.<lab>] table"),
    "course not a table": (_without_course_table("course = 3").encode(), "course must be a table"),
    "languages a string": (_without_course_table('[course]\nlanguages = "en"').encode(),
                           "it must be a list of language codes"),
    "translated a number": (_without_course_table("[course]\ntranslated = 5").encode(),
                            "it must be a table of lab lists"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_syllabus_is_one_line_naming_it(case, tmp_path):
    data, says = BROKEN[case]
    root = tmp_path / "코스 root"
    (root / "course").mkdir(parents=True)
    (root / "course" / "syllabus.toml").write_bytes(data)
    out = techday("--root", str(root), "list", timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert "syllabus.toml" in out.stderr and says in out.stderr, out.stderr


def test_the_committed_syllabus_still_loads():
    # The other side of the checks above: the course as shipped is not refused.
    out = techday("list", timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_a_command_as_ctrl_c_does(sig, tmp_path):
    # Wrong answer caught: `kill`, `docker stop`, `timeout` or a closed SSH session killed `techday run`
    # where it stood: no summary written, exit -15, and the labs' workers and kernels (each in a
    # session of its own) left running. Now the command's Ctrl-C path runs: exit 130, "interrupted".
    code = textwrap.dedent("""
        import sys, time
        from techday.cli import course, main
        def slow(args):
            try:
                print("ready", flush=True)  # inside: the signal may come before print returns
                time.sleep(60)
            finally:
                print("cleaned up", flush=True)
            return 0
        course.cmd_list = slow
        sys.exit(main.main(["list"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=ctrl_c_works)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    out, errs = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, errs)
    assert "cleaned up" in out and f"interrupted ({sig.name})" in errs, (out, errs)
    assert "Traceback" not in errs


def test_a_signal_ignored_on_purpose_stays_ignored():
    # Wrong answer caught: `nohup techday validate &` (SIGHUP ignored) stopped when the SSH session closed,
    # once SIGHUP was made to stop a command as Ctrl-C does.
    from techday.cli.main import stop_signals_interrupt

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_the_signal_handlers_before_are_put_back():
    # Wrong answer caught: the command line called in-process (a test, a notebook) leaving SIGTERM
    # turned into KeyboardInterrupt for the rest of that process.
    from techday.cli.main import stop_signals_interrupt

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(KeyboardInterrupt):
        with stop_signals_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):  # the handler runs between bytecodes, at once
                time.sleep(0.01)
            raise AssertionError("SIGTERM did not interrupt")
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_full_disk_is_one_line_naming_the_file_that_is_left_as_it_was(tmp_path):
    # Wrong answer caught: a full disk while `techday bench leaderboard` (or any command) wrote its
    # output ended in a traceback whose last line, "OSError: [Errno 27] File too large" (or 28, "No space
    # left on device"), named no file; now one line names the file, exit 1.
    target = tmp_path / "결과 results.json"
    target.write_text('{"old": true}\n', encoding="utf-8")
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from techday import atomicfile
        from techday.cli import course, main
        course.cmd_list = lambda args: atomicfile.write_text({str(target)!r}, "x" * 100_000) and 0
        sys.exit(main.main(["list"]))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert f"{target}: File too large" in out.stderr, out.stderr
    assert target.read_text(encoding="utf-8") == '{"old": true}\n'


@pytest.mark.parametrize("command", ["check", "autograde"])
def test_a_released_notebook_cut_off_by_a_stopped_build_is_named(command, fixture_course, tmp_path):
    # Wrong answer caught: `techday build` stopped while nbgrader wrote release/<lab>/<lab>.ipynb (its
    # writes are not atomic); `techday grade check` and `autograde` then ended in a JSONDecodeError
    # traceback. Now one line names the notebook and says to build it again, exit 2.
    root = tmp_path / "course root"
    release = root / "release" / "grade-lab" / "grade-lab.ipynb"
    release.parent.mkdir(parents=True)
    release.write_text('{"cells": [{"cell_type": "markdown", "source": "cut', encoding="utf-8")
    (root / "gradebook.db").write_bytes(b"")
    extra = ["--no-sandbox", "--workers", "1"] if command == "autograde" else []
    out = techday("--root", str(fixture_course), "grade", command, "grade-lab", "--course-root", str(root), *extra,
                  env={"TECHDAY_BUILD": str(tmp_path / "build")}, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert f"{release} is not a notebook" in out.stderr and "techday build grade-lab" in out.stderr, out.stderr


@pytest.mark.parametrize("raised, line", [
    ('PermissionError(13, "Permission denied", "/srv/results 결과/report.html")',
     "error: /srv/results 결과/report.html: Permission denied"),
    ('OSError(30, "Read-only file system", "/mnt/ro/summary.json")', "error: /mnt/ro/summary.json: Read-only file system"),
    ('PermissionError(1, "Operation not permitted")', None),  # no file: os.kill on a stranger's pid, a bug
])
def test_a_folder_that_cannot_be_written_is_one_line_but_a_bug_keeps_its_traceback(raised, line):
    # Wrong answer caught: "PermissionError: [Errno 13]" at the end of a traceback for an output folder
    # the user cannot write; the other side: an error of the code itself must keep its traceback.
    code = textwrap.dedent(f"""
        import sys
        from techday.cli import course, main
        def fails(args):
            raise {raised}
        course.cmd_list = fails
        sys.exit(main.main(["list"]))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if line is None:
        assert "Traceback" in out.stderr and out.returncode == 1, out.stderr
    else:
        assert out.returncode == 1 and "Traceback" not in out.stderr and line in out.stderr, out.stderr
