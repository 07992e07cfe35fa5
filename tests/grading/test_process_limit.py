"""A fork loop in a trainee's cell stops at the sandbox's process limit (techday.grading.sandbox.process_limit):
the grading host never sees more of the sandbox's processes and threads than the limit, and the cell
gets the error. The loop is bounded on its own too (2000 tries, 20 s; every child exits after 5 s), so
a broken limit cannot load the machine that runs this test."""

import json
import os
import re
import threading
import time

import psutil
import pytest

from techday.grading.config import grade_env
from techday.grading.executor import run_notebook
from techday.grading.sandbox import Limits, SandboxUnavailable, check_sandbox, process_limit
from tests.grading.conftest import notebook_of, run_sandboxed

pytestmark = [pytest.mark.grading]

FORK_LOOP = """\
import os, time
children, error = [], None
deadline = time.monotonic() + 20
for attempt in range(2000):
    if time.monotonic() > deadline:
        break
    try:
        pid = os.fork()
    except OSError as exc:
        error = exc
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    children.append(pid)
print('forked', len(children))
if error:
    raise error
"""
LIMIT = 64


_notebook = notebook_of


def _grader_own(proc) -> bool:
    """The grader's socket meter (techday.grading.sockmeter): a process of the grader's, outside the sandbox."""
    return "techday.grading.sockmeter" in " ".join(proc.cmdline())


class TaskCounter:
    """Samples, from the host, the processes and threads below this test process (the sandbox's)."""

    def __init__(self):
        self.peak, self.samples, self.stop = 0, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        me = psutil.Process()
        while not self.stop.is_set():
            tasks = 0
            for proc in me.children(recursive=True):
                try:  # started by this test: a process an earlier test in this worker left is not counted
                    if proc.create_time() >= self.started - 1 and not _grader_own(proc):
                        tasks += proc.num_threads()
                except psutil.Error:
                    continue
            self.peak, self.samples = max(self.peak, tasks), self.samples + 1
            time.sleep(0.05)

    def __enter__(self):
        self.started = time.time()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


@pytest.mark.parametrize("tier", ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def test_a_fork_loop_stops_at_the_process_limit(tmp_path, tier):
    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    limits = Limits(cell_timeout_s=60, notebook_timeout_s=120, max_processes=LIMIT)
    gpu = tier == "gpu"
    how = process_limit(limits, gpu=gpu)
    if how.how == "none":
        pytest.skip(f"no process limit can be set on this host: {how.text}")
    work = tmp_path / ".sandbox"
    work.mkdir()
    report: dict = {}
    with TaskCounter() as host:
        # the next cell reaps the children (zombies count until then), then the kernel goes on
        cells = [FORK_LOOP, "for pid in children:\n    os.waitpid(pid, 0)\nprint('after')"]
        if gpu:  # and the GPU is still there, whatever limits the processes
            cells.append("from techday.tier import probe_gpus\nprint('gpus', len(probe_gpus()[0]))")
        result = run_notebook(_notebook(cells), work, limits, grade_env(tier, "ci"),
                              sandbox=True, gpu=gpu, report=report)
    assert result is not None, report
    loop, after = result["cells"][:2]
    errors = [o for o in loop["outputs"] if o["output_type"] == "error"]
    printed = "".join(o.get("text", "") for o in loop["outputs"] if o.get("name") == "stdout")
    print(f"{how.text}: the host saw at most {host.peak} tasks in {host.samples} samples; the cell printed "
          f"{printed.strip()!r} and raised {[e['ename'] for e in errors]}")
    assert errors and errors[0]["ename"] == "BlockingIOError", json.dumps(loop)[:2000]  # EAGAIN from fork()
    forked = int(re.search(r"forked (\d+)", printed).group(1))  # (Python 3.12 also warns of fork on stderr)
    assert 0 < forked < LIMIT, printed  # stopped by the limit, long before the loop's own 2000
    assert host.samples > 10
    # Everything in the sandbox counts (bwrap's two processes, the executor, the kernel, their threads);
    # with RLIMIT_NPROC the outer bwrap process is outside the sandbox's user namespace: one more.
    assert host.peak <= LIMIT + (1 if how.how in ("rlimit", "nobody") else 0), host.peak
    assert "after" in "".join(o.get("text", "") for o in after["outputs"])  # the kernel lived on
    if gpu:
        seen = "".join(o.get("text", "") for o in result["cells"][2]["outputs"])
        assert "gpus 0" not in seen and "gpus" in seen, seen


SIMULATOR_BLOCK = """\
import numpy as np
from numba import cuda

@cuda.jit
def add_one(a):
    i = cuda.grid(1)
    cuda.syncthreads()  # every thread of the block alive at once
    if i < a.size:
        a[i] += 1

d = cuda.to_device(np.zeros(2048))
add_one[2, 1024](d)
print('sum', d.copy_to_host().sum())
"""


def test_a_1024_thread_simulator_block_fits_the_cpu_tiers_limits(tmp_path):
    """Numba's CUDA simulator runs a block's 1024 threads as Python threads: within the process limit,
    and within RLIMIT_AS also on a many-core host, where glibc would reserve up to 8 malloc arenas of 64 MB
    per core (the environment asks for 128 here, as a 16-core host gets by default; the sandbox caps it)."""
    env = {**grade_env("cpu", "ci"), "MALLOC_ARENA_MAX": "128"}
    result, report = run_sandboxed([SIMULATOR_BLOCK], tmp_path, Limits(cell_timeout_s=120, notebook_timeout_s=180),
                                   env)
    assert result is not None, report
    outputs = result["cells"][0]["outputs"]
    assert [o.get("text") for o in outputs] == ["sum 2048.0\n"], json.dumps(outputs)[:2000]


# A process that leaves the notebook's tree and ignores SIGTERM: double-forked into a session of its own, named
# so that the host can find it, alive for at most 40 s.
STRAY = """\
import ctypes, os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ctypes.CDLL(None).prctl(15, b"techday-stray", 0, 0, 0)
        t = time.monotonic()
        while time.monotonic() - t < 40:
            time.sleep(0.1)
        os._exit(0)
    os._exit(0)
os.wait()
time.sleep(1)
print("left behind", flush=True)
"""


def _assert_left_behind_and_gone(result, name: str) -> None:
    """The notebook's first cell left a process named ``name`` behind, and none is running on the host now."""
    assert "left behind" in "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    time.sleep(0.5)
    strays = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == name]
    assert not strays, f"still running after the notebook: {strays}"


def test_no_process_outlives_its_notebook(tmp_path):
    """Wrong answer caught: a process a cell double-forked into a session of its own, ignoring SIGTERM, still running
    on the grading host after the notebook ended (it could read or rewrite the next submission's files)."""
    result, report = run_sandboxed([STRAY], tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120))
    assert result is not None, report
    _assert_left_behind_and_gone(result, "techday-stray")


def test_a_sandbox_that_root_starts_is_not_the_hosts_root(tmp_path):
    """Wrong answers caught: the sandbox's processes running as the host's uid 0 under a pids cgroup (bwrap maps the
    sandbox's uid to the caller's), where every check by uid alone took them for root: /proc/sys's files, root's
    0600 files in the folders bound in, root's per-user kernel counts; and two sandboxes graded at once running as one
    host uid (the host's nobody), each able to spend the per-user kernel budgets of the other
    (tests/grading/test_sandbox_uids.py)."""
    import os

    from techday.grading.sandbox import disables_userns, nobody_sandbox_problem, sizes_tmpfs

    try:
        bwrap = check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    # The grader's own probes of bwrap run as root, once per process: made before the sampling starts.
    disables_userns(bwrap), sizes_tmpfs(bwrap)
    limits = Limits(cell_timeout_s=60, notebook_timeout_s=120)
    how = process_limit(limits, gpu=False).how
    if os.geteuid() != 0 or how not in ("cgroup", "nobody") or nobody_sandbox_problem(False):
        pytest.skip(f"the grader is not root, or the sandbox cannot run as an unprivileged host user here ({how}: "
                    f"{nobody_sandbox_problem(False)})")
    uids: dict[int, set[int]] = {}  # a sandbox (the pid of its top process): the uids seen below it
    seen: dict[int, tuple] = {}  # a uid: the first process seen with it (what the assertion shows)
    stop = threading.Event()

    def sample():
        me = psutil.Process()
        mine = me.cmdline()
        while not stop.is_set():
            for top in me.children():
                try:
                    tree = [top, *top.children(recursive=True)]
                except psutil.Error:
                    continue
                for proc in tree:
                    try:
                        # not a fork of this process before its exec (and its setuid), nor the grader's socket meter,
                        # nor a process that has exited and waits to be reaped (a zombie: no command line left, so a
                        # meter of the grader's that just ended read as a root process of the sandbox's on a loaded
                        # machine)
                        cmdline = proc.cmdline()
                        if cmdline and cmdline != mine and not _grader_own(proc) \
                                and proc.status() != psutil.STATUS_ZOMBIE:
                            for uid in set(proc.uids()) - uids.get(top.pid, set()):
                                seen.setdefault(uid, (proc.pid, proc.name(), cmdline[:4]))
                            uids.setdefault(top.pid, set()).update(proc.uids())
                    except psutil.Error:
                        continue
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    results: dict = {}

    def grade(name: str):
        work = tmp_path / name / ".sandbox"
        work.mkdir(parents=True)
        report: dict = {}
        results[name] = (run_notebook(_notebook(["import time\ntime.sleep(3)\nprint('done')"]), work, limits,
                                      grade_env("cpu", "ci"), sandbox=True, gpu=False, report=report), report)

    both = [threading.Thread(target=grade, args=(name,)) for name in ("one", "two")]
    try:
        for t in both:
            t.start()
        for t in both:
            t.join(150)
    finally:
        stop.set()
        sampler.join(5)
    for result, report in results.values():
        assert result is not None, report
    print(how, uids)
    assert len(uids) == 2 and all(uids.values()), (uids, seen)
    assert not any(0 in u for u in uids.values()), seen
    first, second = uids.values()
    assert not first & second, (uids, seen)  # two sandboxes at once never share a host uid


def test_the_sandbox_runs_below_the_grader_in_the_schedulers_order(tmp_path):
    """Wrong answer caught: a notebook at the grader's own priority, whose threads on every core starve the readings
    the grader takes from outside it (memory, sockets, files) and its socket meter (killed or starved past its
    answer's time, the meter's sockets go unread until a new one starts)."""
    from techday.grading.sandbox import SANDBOX_NICE

    result, report = run_sandboxed(["import os\nprint('nice', os.nice(0))"], tmp_path,
                                   Limits(cell_timeout_s=60, notebook_timeout_s=120))
    assert result is not None, report
    printed = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    assert f"nice {min(19, os.nice(0) + SANDBOX_NICE)}" in printed, printed


# CPU: a notebook's processes, each in a session of its own (setsid: with the kernel's autogroups, each session is one
# entity of the scheduler, as much as a whole other sandbox), busy for 10 s; beside it, a second notebook graded at the
# same time measures the share of a core it gets in 6 s of that. Bounded: 8 processes, 10 s.
HOG = """\
import os, time
pids = []
for k in range(8):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        t = time.monotonic()
        while time.monotonic() - t < 10:
            pass
        os._exit(0)
    pids.append(pid)
t = time.monotonic()
for p in pids:
    os.waitpid(p, 0)
used = os.times()
print("hog", round((used.children_user + used.children_system) / (time.monotonic() - t), 2))
"""
VICTIM = """\
import time
time.sleep(2)
t0, c0 = time.monotonic(), time.process_time()
while time.monotonic() - t0 < 6:
    pass
print("victim", round((time.process_time() - c0) / (time.monotonic() - t0), 2))
"""


def test_a_notebook_gets_no_more_of_the_cpu_than_one_graded_beside_it(tmp_path):
    """Wrong answer caught: a notebook whose 8 processes, each in a session of its own, took 7 times the CPU of a
    notebook graded beside it (the kernel's autogroups make each session one entity of the scheduler, and the
    sandbox's niceness counts only within its own): the neighbour's cells ran past their limits, its tests scored 0."""
    from techday.grading.sandbox import cpu_share

    limits = Limits(cell_timeout_s=60, notebook_timeout_s=120, max_processes=LIMIT)
    how = cpu_share(limits, gpu=False)
    if not how.startswith("cpu weight"):
        pytest.skip(f"no CPU share per sandbox on this host: {how}")
    printed: dict = {}

    def grade(name: str, cell: str):
        work = tmp_path / name / ".sandbox"
        work.mkdir(parents=True)
        report: dict = {}
        result = run_notebook(_notebook([cell]), work, limits, grade_env("cpu", "ci"), sandbox=True, gpu=False,
                              report=report)
        assert result is not None, report
        printed[name] = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])

    both = [threading.Thread(target=grade, args=("hog", HOG)), threading.Thread(target=grade, args=("victim", VICTIM))]
    for t in both:
        t.start()
    for t in both:
        t.join(180)
    hog = float(re.search(r"hog ([\d.]+)", printed["hog"]).group(1))
    victim = float(re.search(r"victim ([\d.]+)", printed["victim"]).group(1))
    print(f"{how}: the hog's 8 sessions used {hog} cores, the notebook beside it {victim}")
    # Fair: the two notebooks share the cores alike (the one beside it wants one core); other work on a shared CI
    # machine slows both.
    assert victim >= 0.5 * min(hog, 1.0), (hog, victim)


# Processes that try harder to outlive the notebook: one stopped (SIGSTOP), one stopped under a tracer of its own
# (ptrace), and one below a child subreaper of the cell's (PR_SET_CHILD_SUBREAPER), each in a session of its own where
# it can be, each named so that the host can find it (a name of their own: the test above may run beside this one,
# its stray alive while its notebook runs) and alive for at most 40 s.
STRAYS = """\
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
def live(name, stop=False, traced=False):
    libc.prctl(15, name, 0, 0, 0)  # PR_SET_NAME
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if traced:
        libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME: the parent is its tracer
    if stop:
        os.kill(os.getpid(), signal.SIGSTOP)
    t = time.monotonic()
    while time.monotonic() - t < 40:
        time.sleep(0.1)
    os._exit(0)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        live(b"techday-strays", stop=True)
    os._exit(0)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        live(b"techday-strays", stop=True, traced=True)
    live(b"techday-strays")
if os.fork() == 0:
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    if os.fork() == 0:
        live(b"techday-strays")
    live(b"techday-strays")
time.sleep(2)
print("left behind", flush=True)
"""


def test_no_stopped_traced_or_reaped_process_outlives_its_notebook(tmp_path):
    """Wrong answer caught: a process of the notebook's still on the grading host after it ended: stopped (SIGSTOP
    ignores every signal but SIGKILL and SIGCONT), stopped under a tracer, or below a subreaper of the cell's own.
    Started from a child process (the referee refuses ctypes in the kernel)."""
    cell = f"""\
import subprocess, sys, time
open("strays.py", "w").write({STRAYS!r})
subprocess.Popen([sys.executable, "strays.py"])
time.sleep(4)
print("done")
"""
    result, report = run_sandboxed([cell], tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120,
                                                          max_processes=LIMIT))
    assert result is not None, report
    _assert_left_behind_and_gone(result, "techday-strays")


def test_a_kernel_that_kills_its_executor_is_named_the_cause(tmp_path):
    """Wrong answer caught: a notebook whose code killed the executor (the same user inside the sandbox may signal it)
    recorded as "the executor ended (exit 137) without a result", a note that reads as the grader's own failure and
    invites a regrade, where the notebook itself did it. Every test still scores 0 (no result comes back)."""
    result, report = run_sandboxed(["import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", "print('later')"],
                                   tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120))
    print(report)
    assert result is None
    assert "killed by signal 9" in report["problem"] and "the notebook's code" in report["problem"], report
