"""A gradebook deleted by mistake and made again by `techday build`: `autograde` grades again what
state.json recorded as graded but the new gradebook has no score of, instead of skipping it as
"already graded before" (exit 0, an empty gradebook, every grade lost)."""

import json
import sqlite3

import pytest

from tests.conftest import techday
from tests.fixtures.submissions.scenarios import LAB, honest_copies, write

pytestmark = [pytest.mark.grading]


def _in_gradebook(db) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return {s for (s,) in con.execute("SELECT student_id FROM submitted_assignment")}


def test_a_new_gradebook_gets_the_recorded_grades_again(fixture_course):
    assert techday("--root", str(fixture_course), "build", LAB).returncode == 0
    root = fixture_course / "build" / "course"
    release = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    write(root, honest_copies(release, 1))
    argv = ("--root", str(fixture_course), "grade", "autograde", LAB, "--tier", "cpu", "--scale", "ci", "--workers",
            "1", "--no-sandbox")
    first = techday(*argv, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert _in_gradebook(root / "gradebook.db") == {"trainee-000"}

    (root / "gradebook.db").unlink()
    assert techday("--root", str(fixture_course), "build", LAB).returncode == 0
    assert _in_gradebook(root / "gradebook.db") == set()
    again = techday(*argv, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "have no score in" in again.stdout and "graded again: trainee-000" in again.stdout, again.stdout[-2000:]
    assert _in_gradebook(root / "gradebook.db") == {"trainee-000"}
    third = techday(*argv, timeout=300)  # and then, as before, nothing is graded twice
    assert "1 already graded before" in third.stdout and "graded again" not in third.stdout, third.stdout[-2000:]
