"""Every lab's tests fail wrong-but-plausible solutions (tests/wrong_solutions/<lab>.py) and pass right
answers written another way (tests/right_solutions/<lab>.py, whose other checks are in
test_right_solutions.py)."""

from dataclasses import replace

import pytest

from techday.course.syllabus import load_course
from techday.validate.variants import (
    WrongSolution,
    check_wrong_solution,
    check_wrong_solutions,
    read_wrong_solutions,
)
from tests.conftest import FIXTURE_COURSE, ROOT
from tests.grading.test_right_solutions import CASES as RIGHTS

pytestmark = [pytest.mark.grading, pytest.mark.slow]

COURSE = load_course(ROOT)
WRONG = ROOT / "tests" / "wrong_solutions"
CASES = [(lab, wrong) for lab in COURSE.labs if (WRONG / f"{lab}.py").is_file()
         for wrong in read_wrong_solutions(WRONG / f"{lab}.py")]


def test_two_wrong_solutions_of_one_name_are_refused(tmp_path):
    """Caught: a second wrong solution named like an earlier one, whose outcome the first's would hide
    (results are keyed by name)."""
    from techday.course.labsrc import LabSourceError

    path = tmp_path / "lab.py"
    path.write_text('# %% wrong="same" cell="a" fails=["a_tests"]\nx = 1\n\n'
                    '# %% wrong="same" cell="b" fails=["b_tests"]\nx = 2\n', encoding="utf-8")
    with pytest.raises(LabSourceError, match="'same' is already named at line 1"):
        read_wrong_solutions(path)


def test_every_lab_keeps_wrong_solutions():
    for lab in COURSE.labs:
        assert len([w for name, w in CASES if name == lab]) >= 2, f"{lab}: keep at least two wrong solutions"


@pytest.mark.parametrize("lab", sorted({lab for lab, _ in CASES} | {lab for lab, _ in RIGHTS}))
def test_wrong_solutions_are_caught_and_right_answers_pass(lab):
    """Every wrong solution of the lab fails the tests it names, and every right answer written
    another way passes the tests it names (a test that failed one would rest a certificate on writing
    the course's own solution). Both halves in forks of one kernel's run of the lab's solution where
    that settles them, alone otherwise (techday/validate/variants.py): one run of the lab, not two."""
    wrongs = [w for name, w in CASES if name == lab]
    rights = [replace(r, name=f"right-answer/{r.name}") for name, r in RIGHTS if name == lab]
    results = check_wrong_solutions(COURSE.lab_source(lab), lab, wrongs + rights)
    wrong_results, right_results = results[:len(wrongs)], results[len(wrongs):]
    forked = sum(r.how == "forked" for r in results)
    print(f"{lab}: {len(wrongs)} wrong solutions, {len(rights)} right answers, {forked} settled in forks of "
          f"one kernel, {len(results) - forked} alone")
    problems = [f"{r.wrong.name}: {r.error}" for r in results if r.error]
    problems += [f"{r.wrong.name} passes {[c for c in r.wrong.fails if c not in r.failed_cells]}"
                 for r in wrong_results if not r.error and not r.caught]
    problems += [f"{r.wrong.name} fails {cell}: {r.failed_cells[cell][-400:]}"
                 for r in right_results if not r.error for cell in r.wrong.fails if cell in r.failed_cells]
    assert not problems, f"{lab}: " + "; ".join(problems)


KEYED = [(lab, wrong) for lab, wrong in CASES if "keyed_on_published" in wrong.name
         or wrong.name in {"memorises_the_published_sets", "serving_keyed_on_published_sets"}]


@pytest.mark.parametrize("lab", sorted({lab for lab, _ in KEYED}))
def test_answers_keyed_on_published_inputs_fail_a_fresh_draw(lab, monkeypatch):
    """Caught: an answer keyed on the published inputs that also knew the default draw (1207, published:
    `techday validate` and the test above run under it), answering the default draw's cases from a table
    too. Every keyed wrong solution of the lab fails the tests it names under a fresh draw, as the grader
    draws one per hand-in (printed, to repeat it with $TECHDAY_DRAW)."""
    import secrets

    from techday import draw

    seed = secrets.randbelow(2 ** draw.SEED_BITS - 1)
    seed += seed >= draw.DEFAULT  # never the default
    print(f"{lab}: draw {seed}")
    monkeypatch.setenv(draw.ENV, str(seed))
    wrongs = [w for name, w in KEYED if name == lab]
    results = check_wrong_solutions(COURSE.lab_source(lab), lab, wrongs)
    problems = [f"{r.wrong.name}: {r.error}" for r in results if r.error]
    problems += [f"{r.wrong.name} passes {[c for c in r.wrong.fails if c not in r.failed_cells]} under draw {seed}"
                 for r in results if not r.error and not r.caught]
    assert not problems, f"{lab}: " + "; ".join(problems)


def test_a_right_answer_is_not_reported_as_caught():
    """The check itself can fail: a correct rewrite of the fixture's solution passes its tests."""
    source = FIXTURE_COURSE / "labs" / "ok-lab" / "ok-lab.py"
    right = WrongSolution("actually_right", "double", ["double_tests"], "def double(x):\n    return x + x", 1)
    assert not check_wrong_solution(source, "ok-lab", right).caught
    wrong = WrongSolution("squares", "double", ["double_tests"], "def double(x):\n    return x * x", 1)
    assert check_wrong_solution(source, "ok-lab", wrong).caught  # 2*2 == 2**2, but the hidden -7 is not


def test_forks_settle_as_a_notebook_run_from_the_top_would():
    """In forks of one kernel: a plainly wrong answer is caught; a right rewrite is not; an answer that
    leaves out the definition is caught by its NameError (the fork starts from the state before the
    cell, where the right definition was never made), all three without a kernel of their own."""
    source = FIXTURE_COURSE / "labs" / "ok-lab" / "ok-lab.py"
    cases = [WrongSolution("squares", "double", ["double_tests"], "def double(x):\n    return x * x", 1),
             WrongSolution("actually_right", "double", ["double_tests"], "def double(x):\n    return x + x", 1),
             WrongSolution("forgot_it", "double", ["double_tests"], "pass", 1)]
    squares, right, forgot = check_wrong_solutions(source, "ok-lab", cases)
    assert squares.caught and squares.how == "forked"
    assert not right.caught and right.how == "forked"
    assert forgot.caught and forgot.how == "forked" and "NameError" in forgot.failed_cells["double_tests"]


def test_files_left_by_a_fork_send_its_cell_alone(tmp_path):
    """Forks share the disk: a wrong solution that leaves a file which fails right code (here a marker
    the test refuses) fails the cell's control fork, and that cell's wrong solutions run alone, where
    no file of another run exists. The marker's wrong solution is still caught alone; the one after
    it, right but for the file, is not counted as caught."""
    lab_dir = tmp_path / "labs" / "ok-lab"
    lab_dir.mkdir(parents=True)
    text = (FIXTURE_COURSE / "labs" / "ok-lab" / "ok-lab.py").read_text(encoding="utf-8")
    guard = "import os\nassert not os.path.exists('left-behind'), 'a file left by another run'\n"
    marker = "assert double(2) == 4\n"
    assert marker in text
    lab_dir.joinpath("ok-lab.py").write_text(text.replace(marker, guard + marker, 1), encoding="utf-8")
    cases = [WrongSolution("leaves_a_file", "double", ["double_tests"],
                           "open('left-behind', 'w').close()\ndef double(x):\n    return x * x", 1),
             WrongSolution("right_after_it", "double", ["double_tests"], "def double(x):\n    return x + x", 1)]
    leaves, right = check_wrong_solutions(lab_dir / "ok-lab.py", "ok-lab", cases)
    assert leaves.caught and leaves.how == "alone"
    assert not right.caught and right.how == "alone"
