"""Feedback in the hand-in's language through the real nbgrader: `nbgrader generate_feedback` in the course
root `techday build` writes, and the formgrader's Generate Feedback (nbgrader's API, which names the template
"feedback" itself), give a Korean hand-in a Korean page and an English one nbgrader's English, in one room
(techday/grading/feedback.py). The hand-ins are made as autograde leaves them (no sandbox needed)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from tests.conftest import techday
from tests.fixtures.submissions.scenarios import LAB
from tests.unit.test_feedback_ko import english_words

pytestmark = [pytest.mark.grading, pytest.mark.slow]


def graded(root, student: str, lang: str) -> None:
    """``student``'s hand-in of LAB in ``lang``, autograded: the visible mean test failed with its message."""
    from nbgrader.api import Gradebook

    from techday.fastimport import alembic_head_in_process

    nb = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    nb = copy.deepcopy(nb)
    nb["metadata"].setdefault("techday", {})["lang"] = lang
    count = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        count += 1
        cell["execution_count"] = count
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "mean_tests":
            cell["outputs"] = [{"output_type": "error", "ename": "AssertionError", "evalue": "mean is 0.0",
                                "traceback": ["AssertionError    Traceback (most recent call last)",
                                              f"Cell In[{count}], line 2", "AssertionError: mean is 0.0"]}]
    folder = root / "autograded" / student / LAB
    folder.mkdir(parents=True)
    (folder / f"{LAB}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    alembic_head_in_process()
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}", "fixture") as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes inside nbgrader's own API
        gb.update_or_create_student(student)
        gb.add_submission(LAB, student)


def page(root, student: str) -> str:
    return (root / "feedback" / student / LAB / f"{LAB}.html").read_text(encoding="utf-8")


@pytest.fixture
def room(fixture_course, monkeypatch):
    out = techday("--root", str(fixture_course), "build", LAB)
    assert out.returncode == 0, out.stdout + out.stderr
    root = fixture_course / "build" / "course"
    graded(root, "kim", "ko")
    graded(root, "lee", "en")
    monkeypatch.delenv("TECHDAY_LANG", raising=False)  # the room's language is the syllabus' default (English)
    return root


def _check(root) -> None:
    ko, en = page(root, "kim"), page(root, "lee")
    assert set(english_words(ko)) <= {LAB}, sorted(set(english_words(ko)))
    assert "(점수: 0.0 / 5.0)" in ko and "참가자의 답안" in ko and "실패" not in en
    assert "(Score: 0.0 / 5.0)" in en and "Student's answer" in en and "점수" not in en


def test_plain_nbgrader_gives_each_hand_in_its_own_language(room):
    out = subprocess.run([sys.executable, "-m", "techday.nbgrader_cli", "generate_feedback", LAB], cwd=room,
                         capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    _check(room)


def test_the_formgraders_generate_feedback_uses_the_courses_template(room):
    script = textwrap.dedent(f"""
        import json
        from nbgrader.apps import NbGrader
        from nbgrader.apps.api import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        app = NbGrader()
        app.load_cwd_config = True
        app.load_config_file()
        api = NbGraderAPI(CourseDirectory(parent=app), parent=app)
        print(json.dumps([api.generate_feedback({LAB!r}, s)["success"] for s in ("kim", "lee")]))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=room, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and json.loads(out.stdout.splitlines()[-1]) == [True, True], out.stdout + out.stderr
    _check(room)
