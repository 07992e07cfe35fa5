"""Two notebooks graded side by side, one spending a budget the kernel keeps per host user: the other still gets its
own share (techday.grading.hostuids: a host uid of its own for each sandbox where root grades).

Bounded: the hog makes at most 200 pipes and 8 messages of descriptors, and keeps it at most 60 s;
each notebook at most 64 processes and 180 s."""

import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from techday.grading.config import grade_env
from techday.grading.executor import run_notebook
from techday.grading.sandbox import Limits, SandboxUnavailable, check_sandbox, host_user, process_limit
from tests.grading.conftest import notebook_of

pytestmark = [pytest.mark.grading]

HOG_NAME = "techday-budget-hog"  # on the command line of the hog's child once its share is spent

# Two per-user budgets reachable on the CPU tier (its seccomp filter refuses inotify, message queues and keys):
# pipe buffers past fs.pipe-user-pages-soft (16,384 pages: 64 pipes of 1 MiB), after which the user's new pipes get
# 2 pages and growing one is refused; and descriptors in flight over Unix sockets (RLIMIT_NOFILE, 1,024, counted for
# the user), after which passing one more is refused with ETOOMANYREFS (multiprocessing's, and PyTorch's DataLoader's,
# way of sharing memory).
HOG = f"""\
import fcntl, os, socket, subprocess, sys
F_SETPIPE_SZ = 1031
held, refused = [], None
for k in range(200):
    r, w = os.pipe()
    held += [r, w]
    try:
        fcntl.fcntl(w, F_SETPIPE_SZ, 1 << 20)
    except OSError as exc:
        refused = exc.errno
        break
a, b = socket.socketpair()
sent, stopped = 0, None
for k in range(8):
    try:
        socket.send_fds(a, [b'x'], [r] * 250)
        sent += 250
    except OSError as exc:
        stopped = exc.errno
        break
print('hog', len(held) // 2, refused, sent, stopped, flush=True)
# Its share spent: a child whose command line the test finds, and stops, once the notebook beside it is graded.
marker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '{HOG_NAME}'])
marker.wait(70)
"""
VICTIM = """\
import fcntl, os, socket
r, w = os.pipe()
size = fcntl.fcntl(w, 1032)  # F_GETPIPE_SZ
try:
    grown = fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
except OSError as exc:
    grown = f'refused-{exc.errno}'
a, b = socket.socketpair()
try:
    socket.send_fds(a, [b'x'], [r])
    passed = 'passed'
except OSError as exc:
    passed = f'refused-{exc.errno}'
print('victim', size, grown, passed)
"""


def _hogs() -> list[psutil.Process]:
    """This test's hog, once it has spent its share (a process below this one, named so)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if HOG_NAME in proc.cmdline():
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_a_notebook_that_spends_a_per_user_budget_leaves_the_one_beside_it_its_own(tmp_path):
    """Wrong answer caught: every sandbox running as the host's one ``nobody``, so that a notebook that spent the pipe
    buffers and the descriptors in flight the kernel allows one user left the notebook graded beside it with pipes of
    8 kB that it could not grow (EPERM) and no descriptor to pass (ETOOMANYREFS: a DataLoader's workers fail)."""
    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    limits = Limits(cell_timeout_s=120, notebook_timeout_s=180, max_processes=64)
    how = process_limit(limits, gpu=False).how
    if os.geteuid() != 0 or how not in ("cgroup", "nobody"):
        # No uid to give: every sandbox runs as one user, and the run's first lines say so.
        assert "shared" in host_user(limits, gpu=False), host_user(limits, gpu=False)
        pytest.skip(f"the grader cannot give a sandbox a uid of its own here ({how}, euid {os.geteuid()}): "
                    f"{host_user(limits, gpu=False)}")
    soft = int(Path("/proc/sys/fs/pipe-user-pages-soft").read_text())
    if not 0 < soft <= 200 * 256 - 1024:
        pytest.skip(f"fs.pipe-user-pages-soft is {soft}: not spent by 200 pipes of 1 MiB")
    results: dict = {}

    def grade(name: str, cell: str):
        work = tmp_path / name / ".sandbox"
        work.mkdir(parents=True)
        report: dict = {}
        result = run_notebook(notebook_of([cell]), work, limits, grade_env("cpu", "ci"), sandbox=True, gpu=False,
                              report=report)
        results[name] = (result, report)

    hog = threading.Thread(target=grade, args=("hog", HOG))
    hog.start()
    deadline = time.monotonic() + 150
    while not _hogs() and hog.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert _hogs(), f"the hog never spent its share: {results.get('hog')}"
        grade("victim", VICTIM)  # while the hog holds its share
    finally:
        for proc in _hogs():
            proc.kill()
        hog.join(120)
    printed = {}
    for name, (result, report) in results.items():
        assert result is not None, (name, report)
        printed[name] = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    print(printed)
    # The hog did spend them: its last pipe could not grow (EPERM), its last descriptors could not be passed.
    _, pipes, refused, sent, stopped = printed["hog"].split()
    assert refused == "1" and stopped == "109", printed["hog"]
    assert printed["victim"].split() == ["victim", "65536", "1048576", "passed"], printed
