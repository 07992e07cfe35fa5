"""The range of sandbox uids and how a uid is handed out (techday.grading.hostuids): never an account's, never one
another sandbox holds, never one with a process left. Bounded: one child process, alive at most 30 s."""

import os
import subprocess
import time

import pytest

from techday.grading import hostuids, sandbox


@pytest.fixture
def uids(tmp_path, monkeypatch):
    """A range of 4 uids no account has, its locks in a folder of the test's own."""
    lo = 2_000_050_000
    monkeypatch.setenv(hostuids.ENV, f"{lo}-{lo + 3}")
    locks = tmp_path / "locks"
    monkeypatch.setattr(hostuids, "LOCKS", locks)
    monkeypatch.setattr(hostuids, "_CHECKED", {})
    return lo


def test_a_range_that_holds_an_account_or_a_subordinate_range_is_refused(monkeypatch, tmp_path):
    """Wrong answer caught: a configured range that holds root, nobody, an account's uid or a group's gid, or overlaps
    another tool's subordinate uids: a trainee's code would run as that account (and read its files)."""
    monkeypatch.setattr(hostuids, "_CHECKED", {})
    monkeypatch.setattr(hostuids, "_accounts", lambda: ({0: "root", 1000: "kim", 65534: "nobody"},
                                                        {0: "root", 3000: "staff"}))
    subuid = tmp_path / "subuid"
    subuid.write_text("kim:100000:65536\n", encoding="utf-8")
    monkeypatch.setattr(hostuids, "SUBID_FILES", (subuid,))
    for text, named in [("0-10", "not a range"), ("900-1100", r"uid 1000 \(kim\)"), ("65000-66000", "uid 65534"),
                        ("2990-3010", r"gid 3000 \(staff\)"), ("150000-150010", "kim's 100000-165535"),
                        ("5-2", "not a range"), ("abc", "not a range of uids"), ("1-70000", "not a range")]:
        monkeypatch.setenv(hostuids.ENV, text)
        with pytest.raises(hostuids.UidRangeError, match=named):
            hostuids.uid_range()
    monkeypatch.setenv(hostuids.ENV, "2000-2999")
    assert hostuids.uid_range() == (2000, 2999)
    assert issubclass(hostuids.UidRangeError, sandbox.SandboxUnavailable)  # grading stops, as without a sandbox


def test_the_default_range_holds_no_account_of_this_host(monkeypatch):
    """Wrong answer caught: a default range that overlaps this host's accounts or subordinate ranges (grading would
    stop here, or run as someone)."""
    monkeypatch.delenv(hostuids.ENV, raising=False)
    monkeypatch.setattr(hostuids, "_CHECKED", {})
    assert hostuids.uid_range() == hostuids.DEFAULT_RANGE


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands out uids (and can run a process as one)")
def test_two_sandboxes_at_once_never_share_a_uid_and_a_lingering_one_is_skipped(uids):
    """Wrong answers caught: two sandboxes running at once given one uid (a second grader, or a second worker of the
    pool, sees nothing of the first's in its own memory: the lock is on a file); a uid handed out again while a process
    of the last sandbox that had it still runs (it would share that process's budgets, and could signal it)."""
    first = hostuids.allocate()
    second = hostuids.allocate()
    assert first.uid == uids and second.uid == uids + 1 and first.gid == first.uid
    first.release()
    # A process of the released uid that lingers: the uid is not handed out while it runs.
    child = subprocess.Popen(["sleep", "30"],
                             preexec_fn=lambda: (os.setgroups([]), os.setresgid(uids, uids, uids),
                                                 os.setresuid(uids, uids, uids)))
    try:
        deadline = time.monotonic() + 10
        while uids not in hostuids.ids_in_use() and time.monotonic() < deadline:
            time.sleep(0.05)
        third = hostuids.allocate()
        assert third.uid == uids + 2, third  # not uids (lingering), not uids + 1 (held)
        # Released, the holder kills what is left of its uid: here nothing (the lingering process is uids's).
        assert third.release() == []
        second.release()
    finally:
        child.kill()
        child.wait()
    again = hostuids.allocate()
    assert again.uid == uids, again  # nothing of it left: handed out again
    again.release()
    # Every uid held: refused, saying so.
    held = [hostuids.allocate() for _ in range(4)]
    with pytest.raises(sandbox.SandboxUnavailable, match="no free sandbox uid"):
        hostuids.allocate()
    for h in held:
        h.release()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands out uids")
def test_the_scorer_never_gets_the_uid_its_notebook_ran_as(uids):
    """Wrong answer caught: the outside check's scorer handed the uid the notebook it judges has just let go (the
    lowest free one, where nothing of it lingers as a process or a key), so that anything else the notebook left of
    that uid would meet its own scorer (techday.grading.outside.run_scorer passes the notebook's uid to avoid)."""
    notebook = hostuids.allocate()
    assert notebook.uid == uids
    notebook.release()
    scorer = hostuids.allocate(avoid=[notebook.uid, None])
    try:
        assert scorer.uid == uids + 1, scorer
    finally:
        scorer.release()
    held = [hostuids.allocate(avoid=[uids + 2]) for _ in range(3)]  # the three others: the range is then spent
    try:
        assert sorted(h.uid for h in held) == [uids, uids + 1, uids + 3]
        with pytest.raises(sandbox.SandboxUnavailable, match="no free sandbox uid"):
            hostuids.allocate(avoid=[uids + 2])
    finally:
        for h in held:
            h.release()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands out uids")
def test_the_lock_folder_must_be_roots_and_closed(uids):
    """Wrong answer caught: locks kept in a folder another user made or can write (they could hold every uid, or
    remove a lock file and have one uid handed out twice)."""
    hostuids.LOCKS.mkdir(mode=0o777)
    os.chmod(hostuids.LOCKS, 0o777)
    with pytest.raises(hostuids.UidRangeError, match="not a folder of root's closed to others"):
        hostuids.allocate()


def test_the_run_says_when_per_user_budgets_are_shared(monkeypatch):
    """Wrong answer caught: a grader that is not root (no uid to give: every sandbox runs as the grader's uid) whose
    run's first lines do not say that the kernel's per-user budgets are shared by every sandbox."""
    limits = sandbox.Limits()
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sandbox, "_kernel", lambda: (6, 1))
    text = sandbox.host_user(limits, gpu=False)
    assert text.startswith("shared: the grader is not root") and "pipe buffers" in text, text
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sandbox, "cgroup_prefix", lambda *a, **k: [])
    monkeypatch.setattr(sandbox, "pids_cgroup_parent", lambda: None)
    monkeypatch.setattr(sandbox, "nobody_sandbox_problem", lambda gpu=False: None)
    monkeypatch.setattr(hostuids, "uid_range", lambda: (7_000, 7_009))
    assert sandbox.host_user(limits, gpu=False).startswith("a host uid of its own for each sandbox running at a "
                                                            "time, from 7000-7009")
    monkeypatch.setattr(sandbox, "nobody_sandbox_problem", lambda gpu=False: "Permission denied")
    text = sandbox.host_user(limits, gpu=False)
    assert text.startswith("shared: the grader is root and its sandboxes run as the host's root") \
        and "Permission denied" in text, text


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands out uids (a grader not root never reads the range)")
def test_root_refuses_to_grade_with_a_range_that_holds_an_account(monkeypatch):
    """Wrong answer caught: a range that holds an account's uid (here root's) read only where a uid is handed out, or
    a failed hand-out taken as "no unprivileged uid can run the sandbox here", so that grading went on with every
    sandbox as the host's root: the check that every grading run makes first refuses it."""
    try:
        sandbox.check_sandbox()
    except sandbox.SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    monkeypatch.setattr(hostuids, "_CHECKED", {})
    monkeypatch.setenv(hostuids.ENV, "0-100")
    with pytest.raises(hostuids.UidRangeError, match="not a range"):
        sandbox.check_sandbox()
    monkeypatch.setenv(hostuids.ENV, "1-100")
    users, _ = hostuids._accounts()
    if not any(1 <= u <= 100 for u in users):
        pytest.skip("no account of this host has a uid from 1 to 100")
    with pytest.raises(hostuids.UidRangeError, match="a sandbox would run as someone's uid"):
        sandbox.check_sandbox()


def test_a_probe_made_while_every_uid_is_held_is_not_remembered(uids, monkeypatch):
    """Wrong answer caught: the probe of whether an unprivileged uid can run the sandbox, made while every uid of the
    range was held by sandboxes running at that moment, was remembered as this host's answer ("no free sandbox uid"),
    and every later sandbox of that grader process ran as the host's root. Now it is not remembered and not a reason
    for root: the sandbox asks for its own uid when it starts and is refused while none is free."""
    if os.geteuid() != 0:
        print("skipped: only root hands out uids")
        pytest.skip("only root hands out uids")
    monkeypatch.setattr(sandbox, "_NOBODY_OK", {})
    held = [hostuids.allocate() for _ in range(4)]
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="no free sandbox uid"):
            hostuids.allocate()
        assert sandbox.nobody_sandbox_problem(gpu=False) is None
        assert False not in sandbox._NOBODY_OK, sandbox._NOBODY_OK
    finally:
        for h in held:
            h.release()
    # with uids free again, the probe is made (and remembered) as before
    calls = []
    monkeypatch.setattr(sandbox, "check_sandbox", lambda: calls.append(1) or (_ for _ in ()).throw(
        sandbox.SandboxUnavailable("no bwrap in this test")))
    assert "no bwrap in this test" in sandbox.nobody_sandbox_problem(gpu=False)
    assert calls and sandbox._NOBODY_OK[False]
