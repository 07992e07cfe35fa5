"""Regrading keeps people's work: manual scores and comments entered in the formgrader survive a merge of
new automatic scores, a gradebook locked by the formgrader is waited for (nothing lost), and a file
rejected for its name is graded once renamed. nbgrader's own gradebook API; no kernel starts."""

import json
import shutil
import threading
import time
import warnings

import nbformat
import pytest

from techday.grading.checks import collect
from techday.grading.gradebook import GradebookLocked, merge_scores
from techday.grading.state import State

LAB = "lab"


def _gb(db):
    """nbgrader's Gradebook, without the SQLAlchemy notes nbgrader's own API causes (as in production)."""
    from nbgrader.api import Gradebook

    from techday.fastimport import alembic_head_in_process

    alembic_head_in_process()  # the schema revision read here, not from an `alembic` found on PATH

    warnings.filterwarnings("ignore", module="sqlalchemy")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    return Gradebook(f"sqlite:///{db}", "course")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A course gradebook with one submission: a written answer graded by hand, and an autograded test
    (made once: nbgrader's schema takes seconds to create)."""
    db = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with _gb(db) as gb:
        gb.add_assignment(LAB)
        gb.add_notebook(LAB, LAB)
        gb.add_grade_cell("answer", LAB, LAB, max_score=2, cell_type="markdown")
        gb.add_solution_cell("answer", LAB, LAB)
        gb.add_grade_cell("tests", LAB, LAB, max_score=3, cell_type="code")
        gb.add_student("kim")
        gb.add_submission(LAB, "kim")
    return db


@pytest.fixture
def gradebook(template, tmp_path):
    db = tmp_path / "gradebook.db"
    shutil.copyfile(template, db)
    return db


def _by_hand(db, cell, score, comment=None):
    """What the formgrader writes when an instructor grades a cell."""
    with _gb(db) as gb:
        grade = gb.find_grade(cell, LAB, LAB, "kim")
        grade.manual_score, grade.needs_manual_grade = score, False
        if comment:
            gb.find_comment(cell, LAB, LAB, "kim").manual_comment = comment
        gb.db.commit()


def _grades(db) -> dict:
    with _gb(db) as gb:
        nb = gb.find_submission_notebook(LAB, LAB, "kim")
        grades = {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in nb.grades}
        grades["comment"] = gb.find_comment("answer", LAB, LAB, "kim").manual_comment
        grades["score"] = float(gb.find_submission(LAB, "kim").score)
    return grades


AUTO = {"notebooks": {LAB: {"answer": (None, 2.0, True), "tests": (3.0, 3.0, False),
                            "__comments__": {"answer": None}}}, "timestamp": None}
SOURCES = {LAB: {"answer": "Shared memory is per block.", "tests": "assert f(2) == 4"}}


def test_manual_scores_and_comments_survive_a_regrade(gradebook):
    merge_scores(gradebook, "course", LAB, "kim", AUTO, SOURCES, SOURCES)
    _by_hand(gradebook, "answer", 1.5, "good, but what of registers?")
    _by_hand(gradebook, "tests", 2.0)  # an instructor's override of an automatic score
    # The same notebook graded again (--retry-failed, a state file kept aside): nothing changes.
    score, maximum, notes = merge_scores(gradebook, "course", LAB, "kim", AUTO, SOURCES, SOURCES)
    assert _grades(gradebook) == {"answer": (None, 1.5, False), "tests": (3.0, 2.0, False),
                                  "comment": "good, but what of registers?", "score": 3.5}
    assert (score, maximum, notes) == (3.5, 5.0, [])


def test_a_changed_answer_clears_its_manual_score_and_says_so(gradebook):
    merge_scores(gradebook, "course", LAB, "kim", AUTO, SOURCES, SOURCES)
    _by_hand(gradebook, "answer", 1.5, "good")
    _by_hand(gradebook, "tests", 2.0)
    changed = {LAB: {**SOURCES[LAB], "answer": "Shared memory is per block; registers per thread."}}
    score, _, notes = merge_scores(gradebook, "course", LAB, "kim", AUTO, SOURCES, changed)
    grades = _grades(gradebook)
    assert grades["answer"] == (None, None, True)  # graded an answer that is gone: to grade again
    assert grades["tests"] == (3.0, 2.0, True)     # the test cell is the same: kept, to review
    assert grades["comment"] == "good" and score == 2.0
    assert any("manual score 1.5 of 'answer' cleared" in n for n in notes), notes
    assert any("manual score 2 of 'tests' kept (the submission changed)" in n for n in notes), notes


def _instructor_holds_the_lock(db, seconds: float, started: threading.Event):
    """The formgrader saving a manual score in a transaction that takes ``seconds``."""
    with _gb(db) as gb:
        gb.find_grade("answer", LAB, LAB, "kim").manual_score = 1.0
        gb.db.flush()  # the write lock is taken here and held until the commit
        started.set()
        time.sleep(seconds)
        gb.db.commit()


def test_a_gradebook_locked_by_the_formgrader_is_waited_for(gradebook):
    started, said = threading.Event(), []
    writer = threading.Thread(target=_instructor_holds_the_lock, args=(gradebook, 3.0, started))
    writer.start()
    assert started.wait(30)
    t0 = time.monotonic()
    score, _, _ = merge_scores(gradebook, "course", LAB, "kim", AUTO, SOURCES, SOURCES, report=said.append,
                               wait_s=60, busy_timeout_s=0.2)
    writer.join()
    assert time.monotonic() - t0 >= 2.0  # it did wait for the instructor's write
    assert said and all("the gradebook is locked by another program" in s and "kim" in s for s in said), said
    grades = _grades(gradebook)
    assert grades["answer"][1] == 1.0 and grades["tests"][0] == 3.0  # both writes are in
    assert score == 4.0


def test_a_gradebook_that_stays_locked_fails_the_merge_cleanly(gradebook):
    started = threading.Event()
    writer = threading.Thread(target=_instructor_holds_the_lock, args=(gradebook, 4.0, started))
    writer.start()
    assert started.wait(30)
    with pytest.raises(GradebookLocked, match="stayed locked .* --retry-failed"):
        merge_scores(gradebook, "course", LAB, "kim", AUTO, SOURCES, SOURCES, wait_s=1, busy_timeout_s=0.2)
    writer.join()
    grades = _grades(gradebook)
    assert grades["answer"][1] == 1.0 and grades["tests"][0] is None  # the instructor's write only


def _release() -> dict:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("raise NotImplementedError()")
    cell.metadata["nbgrader"] = {"grade_id": "ans", "solution": True, "grade": False, "locked": False,
                                 "schema_version": 3}
    nb.cells.append(cell)
    return json.loads(nbformat.writes(nb))


def test_a_file_rejected_for_its_name_is_graded_once_renamed(tmp_path):
    root, release = tmp_path / "course", _release()
    folder = root / "submitted" / "lee" / LAB
    folder.mkdir(parents=True)
    (folder / "my-lab.ipynb").write_text(json.dumps(release), encoding="utf-8")
    state = State(tmp_path / "state.json", LAB)
    (sub,) = collect(root, LAB, release)
    assert sub.status == "rejected" and "rename it to grade it" in sub.notes[0]
    state.record(sub)
    (again,) = collect(root, LAB, release)
    assert state.done(again) is not None  # still wrong: not checked twice, not graded

    (folder / "my-lab.ipynb").rename(folder / f"{LAB}.ipynb")  # fixed as the status line says
    (fixed,) = collect(root, LAB, release)
    assert fixed.gradable and fixed.sha256 == sub.sha256
    assert state.done(fixed) is None, "the rejection of the old name blocks the renamed file"
    assert state.retire({fixed.key}) == [sub.key]  # the old name's entry is no longer the trainee's
    saved = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
    assert sub.key in saved["superseded"] and not saved["submissions"]


def test_an_old_rejected_entry_never_blocks_a_gradable_file(tmp_path):
    """Also a rejection recorded under the same key (a state file of an earlier version, another release)."""
    root, release = tmp_path / "course", _release()
    folder = root / "submitted" / "lee" / LAB
    folder.mkdir(parents=True)
    (folder / f"{LAB}.ipynb").write_text(json.dumps(release), encoding="utf-8")
    (sub,) = collect(root, LAB, release)
    state = State(tmp_path / "state.json", LAB)
    state.data["submissions"][sub.key] = {"status": "rejected", "notes": ["wrong notebook name"]}
    assert state.done(sub) is None
