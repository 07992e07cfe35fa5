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
from techday.grading.sandbox import Limits, SandboxUnavailable, check_sandbox, host_user, runs_as_own_uid
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
    if not runs_as_own_uid(limits, gpu=False):
        # No uid to give (not root), or none that can run the sandbox: every sandbox runs as one user, and the run's
        # first lines say so.
        assert host_user(limits, gpu=False).startswith("shared: "), host_user(limits, gpu=False)
        pytest.skip(f"the grader cannot give a sandbox a uid of its own here: {host_user(limits, gpu=False)}")
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


# Each budget the kernel keeps per host user, spent in one sandbox (the hog, run as host uid A) and then asked for in a
# second sandbox, once as the same host uid A (every sandbox as one user: what the host's nobody was) and once as
# another uid B. Without the CPU tier's seccomp filter (the GPU tier's sandbox, where inotify, message queues and keys
# are not refused). Each hog stops at its bound (the count in range()), and waits at most 30 s.
BUDGETS = {
    # name: (what spends one unit, printing nothing; bound)
    "inotify instances": ("assert libc.inotify_init1(0) >= 0, ctypes.get_errno()", 1000),
    "message queue bytes": ("attr = (ctypes.c_long * 8)(0, 10, 8192, 0)\n"
                            "assert libc.mq_open(f'/q{k}'.encode(), 0o102, 0o600, attr) >= 0, ctypes.get_errno()", 200),
    "keys": ("assert libc.syscall(248, b'user', f'k{k}'.encode(), b'x' * 64, 64, -2) >= 0, ctypes.get_errno()", 1000),
    "pipe buffers": ("r, w = os.pipe(); keep.append((r, w))\nfcntl.fcntl(w, 1031, 1 << 20)", 400),
    "descriptors in flight": ("socket.send_fds(a, [b'x'], [a.fileno()] * 250)", 40),
}
PRELUDE = """\
import ctypes, fcntl, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = socket.socketpair()
keep = []
def spend(n):
    for k in range(n):
        try:
{step}
        except (AssertionError, OSError) as exc:
            return k, exc
    return n, None
"""
HOG_BUDGET = PRELUDE + "print('spent', *spend({bound}), flush=True)\nsys.stdin.read()\n"
PROBE_BUDGET = PRELUDE + "got, error = spend(1)\nprint('granted' if got else f'refused {{error}}', flush=True)\n"


@pytest.mark.parametrize("budget", BUDGETS)
def test_a_host_uid_of_its_own_splits_the_budget(budget):
    """What a uid per sandbox splits: the budget spent by one sandbox is refused to a second sandbox of the same host
    uid, and granted to one of another. Wrong answer caught: a budget named as split that the kernel keeps for the
    whole machine (or per namespace, or per process: then the same uid is granted too)."""
    import shutil
    import subprocess
    import sys
    import tempfile
    import textwrap

    from techday.grading import hostuids
    from techday.grading.sandbox import nobody_sandbox_problem, rlimits, sandbox_command, sandbox_env

    try:
        bwrap = check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    if os.geteuid() != 0 or nobody_sandbox_problem(False):
        pytest.skip(f"only root can run a sandbox as a host uid of its choosing ({nobody_sandbox_problem(False)})")
    step, bound = BUDGETS[budget]
    step = textwrap.indent(step, " " * 12)
    hosts = [hostuids.allocate(), hostuids.allocate()]
    limits = Limits(max_descriptors=1024)

    made: list[str] = []

    def start(code: str, host) -> subprocess.Popen:
        made.append(tempfile.mkdtemp(prefix="techday-budget-"))  # where the uid reaches it (tmp_path is root's, 0700)
        work = Path(made[-1])
        os.chown(work, *host.ids)
        argv = sandbox_command(bwrap, work, sandbox_env({}), gpu=False) + [sys.executable, "-c", code]
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={"PATH": "/usr/bin:/bin"},
                                preexec_fn=rlimits(limits, True, None, host.ids))

    hog = start(HOG_BUDGET.format(step=step, bound=bound), hosts[0])
    try:
        spent = hog.stdout.readline().strip()
        assert spent.startswith("spent") and "None" not in spent.split()[2:3], (spent, hog.stdout.read())
        got = {}
        for name, host in (("same uid", hosts[0]), ("another uid", hosts[1])):
            probe = start(PROBE_BUDGET.format(step=step), host)
            got[name] = probe.communicate(timeout=60)[0].strip()
    finally:
        hog.communicate("", timeout=30)
        for host in hosts:
            host.release()
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"{budget}: the hog {spent}; a second sandbox of the same uid: {got['same uid']}; of another uid: "
          f"{got['another uid']}")
    assert got["same uid"].startswith("refused"), got  # the budget is the host user's: spent for both
    assert got["another uid"] == "granted", got        # a uid of its own: its own budget
