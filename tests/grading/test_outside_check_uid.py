"""Lab 17's scorer (techday/grading/outside.py) as a host uid of its own, where root grades: the process that serves
a trainee's ONNX file in ONNX Runtime is held to a handful of processes and threads (RLIMIT_NPROC, which does not
bind the host's root), spends no one else's per-user kernel budgets, and never runs as the uid the notebook it judges
ran as, nor as another scorer's.

Each test names the attack it catches. Bounded: a scorer stand-in starts at most 64 threads and 64 processes (each
child exits after 5 s, the whole within 20 s), under a pids cgroup of the test's own where one can be made; each
scorer at most 60 s."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.grading.test_outside_check import graded, honest_onnx, identity_nodes, model_bytes, sandbox_here, \
    writes  # noqa: F401  (honest_onnx: the fixture)
from tests.grading.test_process_limit import TaskCounter

pytestmark = [pytest.mark.grading]


def own_uid_or_skip() -> None:
    """Skip, saying why, where the scorer cannot have a host uid of its own here (not root, or no unprivileged uid
    can run the sandbox)."""
    from techday.grading.outside import scorer_uid_problem

    if not sandbox_here():
        pytest.skip("the sandbox cannot run here: the scorer runs without it, as the grader's own user")
    problem = scorer_uid_problem(True)
    if problem is not None:
        print(f"no host uid for the scorer here: {problem} (ls -ld /root: {oct(os.stat('/root').st_mode)})")
        pytest.skip(f"no host uid for the scorer here: {problem}")


class ScorerProcesses:
    """Samples, from the host, the uids of the scorer's processes (bwrap's and the interpreter's: their command
    lines name the scorer or the stand-in's marker)."""

    def __init__(self, marker: str = "techday.grading.outside"):
        self.marker, self.uids, self.stop = marker, set(), threading.Event()
        self.by_pid: dict[tuple[int, str], set[int]] = {}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        me = psutil.Process()
        while not self.stop.is_set():
            for proc in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if any(self.marker in part for part in proc.cmdline()):
                        self.uids.update(proc.uids())
                        self.by_pid.setdefault((proc.pid, proc.name()), set()).update(proc.uids())
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


def test_the_scorer_of_an_honest_model_runs_as_a_host_uid_of_its_own(tmp_path, honest_onnx):
    """Attack: past a flaw in ONNX Runtime, a trainee's file runs code in the scorer's process, which ran as the
    host's root (in a user namespace): no process limit of its own (RLIMIT_NPROC does not bind uid 0) and root's
    per-user budgets shared with every root process of the host; or as the uid the notebook had just run as, where
    anything the notebook left of that uid would meet its own scorer. Now: a uid of the sandbox range, neither 0
    nor the notebook's, seen from the host on every process of the scorer, and the honest model still passes
    (through the executor, as a room is graded)."""
    from techday.grading.sandbox import Limits, host_user, runs_as_own_uid

    own_uid_or_skip()
    with ScorerProcesses() as seen:
        cell, report = graded(tmp_path, writes(honest_onnx))
    (record,) = report["outside_checks"]
    print(record.get("user"), "notebook's host uid:", report.get("host_uid"), "seen:", seen.uids)
    assert record["passed"] is True, record
    user = record["user"]
    assert user["own"] is True and user["uid"] not in (0, None), user
    if runs_as_own_uid(Limits(), gpu=False):  # the notebook's sandbox had one too (not under a systemd scope)
        assert report.get("host_uid") not in (None, 0) and user["uid"] != report["host_uid"], (user, report)
    else:
        print(f"the notebook's sandbox ran as root here ({host_user(Limits(), gpu=False)}): the scorer's uid is 0's "
              "alone to differ from")
        assert "host_uid" not in report, report
    assert seen.uids == {user["uid"]}, seen.uids  # every process of the scorer, bwrap's included, as that uid
    assert f"host uid {user['uid']}" in user["text"] and user["max_processes"] > 0, user


def test_where_no_uid_can_be_had_the_scorer_runs_as_before_and_says_so(monkeypatch):
    """Kept: where no unprivileged uid can run the sandbox (the Python install in a folder other users cannot
    enter), or the grader is not root, the scorer runs as before, and the record says which user it ran as and
    why. Wrong answer caught: a record that says nothing of the user (a grading that ran the scorer as root reads
    as one that did not)."""
    from techday.grading import sandbox
    from techday.grading.outside import score_served_classifier

    if not sandbox_here():
        pytest.skip("the sandbox cannot run here: the scorer runs without it")
    monkeypatch.setattr(sandbox, "nobody_sandbox_problem", lambda gpu=False: "/root is closed to other users")
    result = score_served_classifier(model_bytes(*identity_nodes()), sandbox=True, timeout_s=60)
    print(result["user"])
    assert "accuracies" in result, result  # served, as before (the identity model is below the bar)
    assert result["user"]["own"] is False and result["user"]["uid"] == os.geteuid(), result["user"]
    expected = "/root is closed to other users" if os.geteuid() == 0 else "not root"
    assert expected in result["user"]["text"], result["user"]
    unsandboxed = score_served_classifier(model_bytes(*identity_nodes()), sandbox=False, timeout_s=60)["user"]
    assert unsandboxed["own"] is False and "--no-sandbox" in unsandboxed["text"], unsandboxed


THREADS_AND_FORKS = """\
import json, os, threading, time
t0 = time.monotonic()
stop = threading.Event()
threads, thread_error = [], None
for _ in range(64):
    if time.monotonic() - t0 > 20:
        break
    t = threading.Thread(target=stop.wait, args=(20,), daemon=True)
    try:
        t.start()
    except RuntimeError as exc:
        thread_error = str(exc)
        break
    threads.append(t)
time.sleep(1)  # all of them at once, for the host to see
stop.set()
for t in threads:
    t.join(5)
time.sleep(0.5)  # the threads' tasks gone from the kernel's count
children, fork_error = [], None
for _ in range(64):
    if time.monotonic() - t0 > 20:
        break
    try:
        pid = os.fork()
    except OSError as exc:
        fork_error = exc.strerror
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    children.append(pid)
time.sleep(1)
print('RESULT ' + json.dumps({"threads": len(threads), "thread_error": thread_error, "forks": len(children),
                              "fork_error": fork_error}), flush=True)
"""


@contextlib.contextmanager
def scorer_folder():
    """A scorer's folder as score_served_classifier makes it (under the system's temporary folder, 0700: tmp_path's
    parents are closed to the scorer's uid), with stand-in files."""
    folder = Path(tempfile.mkdtemp(prefix="techday-outside-test-"))
    try:
        (folder / "model.onnx").write_bytes(b"model")
        (folder / "images.npy").write_bytes(b"images")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def pids_guard(monkeypatch, limit: int = 100):
    """The test's own pids limit on the scorer's tree, where a cgroup can be made: whatever the code under test does,
    at most ``limit`` tasks (above what the assertions allow, so that it never decides them)."""
    from techday.grading import sandbox

    parent = sandbox.pids_cgroup_parent()
    if parent is None:
        print("no pids cgroup here: the stand-in's own bounds (64 threads, 64 processes, 20 s) hold it")
        yield
        return
    guard = sandbox.PidsCgroup(parent, limit)
    real = sandbox.rlimits
    monkeypatch.setattr(sandbox, "rlimits", lambda limits, gpu, cgroup=None, user=None, argv=None:
                        real(limits, gpu, cgroup or guard, user, argv=argv))
    try:
        yield
    finally:
        guard.remove()


def test_a_scorer_that_starts_many_threads_or_processes_stops_at_its_limit(monkeypatch):
    """Attack: past a flaw in ONNX Runtime, the scorer's process starts threads and processes without end (a fork
    bomb in the grader's own process, as root: no limit bound it). The stand-in, run in the scorer's place and
    sandbox, starts up to 64 of each: now it gets EAGAIN past ``SCORER_PROCESSES`` tasks of its uid (bwrap's
    included), and the host never sees more of them."""
    from techday.grading import outside

    own_uid_or_skip()
    monkeypatch.setattr(outside, "_scorer_program", lambda where: [sys.executable, "-c", THREADS_AND_FORKS])
    with scorer_folder() as folder, pids_guard(monkeypatch), TaskCounter() as host:
        answer = outside.run_scorer(folder, sandbox=True, timeout_s=60)
    print(answer, f"the host saw at most {host.peak} tasks in {host.samples} samples")
    limit = outside.SCORER_PROCESSES
    assert answer["ran_as"]["own"] is True and answer["ran_as"]["max_processes"] == limit, answer
    assert "threads" in answer, answer
    assert 0 < answer["threads"] < limit and answer["thread_error"], answer  # stopped by the limit, not the loop
    assert 0 < answer["forks"] < limit and answer["fork_error"], answer
    assert host.samples > 10 and 3 <= host.peak <= limit, host.peak


UID_AND_WAIT = """\
import json, time
start = time.time()
time.sleep(3)
print('RESULT ' + json.dumps({"start": start, "end": time.time()}), flush=True)
"""


def test_two_scorers_at_once_never_share_a_uid(monkeypatch):
    """Attack: two gradings scored at once (the pool's workers) as one host user, so that one scorer, past a flaw
    in the runtime, spends the other's per-user budgets and its RLIMIT_NPROC (one process limit for both), or
    signals it. Two stand-ins, run at the same time in the scorer's place and sandbox: the host sees each one's
    interpreter as the uid the grader recorded for it, never the other's, never 0."""
    from techday.grading import outside

    own_uid_or_skip()
    monkeypatch.setattr(outside, "_scorer_program", lambda where: [sys.executable, "-c", UID_AND_WAIT])
    answers: list[dict] = []

    def score():
        with scorer_folder() as folder:
            answers.append(outside.run_scorer(folder, sandbox=True, timeout_s=60))

    workers = [threading.Thread(target=score) for _ in range(2)]
    with ScorerProcesses(marker="time.sleep(3)") as seen:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(90)
    print(json.dumps(answers), "seen from the host:", seen.by_pid)
    assert len(answers) == 2 and all("start" in a for a in answers), answers
    assert max(a["start"] for a in answers) < min(a["end"] for a in answers), answers  # at once
    recorded = [a["ran_as"]["uid"] for a in answers]
    assert len(set(recorded)) == 2 and 0 not in recorded and None not in recorded, answers
    interpreters = {pid: uids for (pid, name), uids in seen.by_pid.items() if name.startswith("python")}
    assert len(interpreters) == 2 and all(len(uids) == 1 for uids in interpreters.values()), seen.by_pid
    assert {next(iter(uids)) for uids in interpreters.values()} == set(recorded), (seen.by_pid, recorded)


def test_with_every_uid_held_the_scorer_is_refused_not_run_as_root(monkeypatch, tmp_path):
    """Attack: every uid of the range held or lingering (many gradings at once, or processes a uid left): a scorer
    that then fell back to the host's root would serve the file with no process limit again. It is a refusal
    (the test scores 0, flagged, with the reason), as a notebook with no uid is not graded; nothing is started."""
    from techday.grading import hostuids, outside

    own_uid_or_skip()  # probed with the default range, as the grader did at its start
    lo = 2_000_060_000
    monkeypatch.setenv(hostuids.ENV, f"{lo}-{lo + 1}")
    monkeypatch.setattr(hostuids, "LOCKS", tmp_path / "locks")
    monkeypatch.setattr(hostuids, "_CHECKED", {})
    ran = "print('RESULT {\"ran\": true}')"
    monkeypatch.setattr(outside, "_scorer_program", lambda where: [sys.executable, "-c", ran])
    held = [hostuids.allocate(), hostuids.allocate()]
    try:
        with scorer_folder() as folder:
            answer = outside.run_scorer(folder, sandbox=True, timeout_s=30)
    finally:
        for host in held:
            host.release()
    print(answer)
    assert answer["refused"] == "stopped" and "no host uid for the scorer" in answer["kw"]["why"], answer
    assert answer["ran_as"]["own"] is False and answer["ran_as"]["uid"] is None, answer
    assert "ran" not in answer, answer  # the stand-in never started
