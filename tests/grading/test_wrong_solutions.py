"""Every lab's tests fail wrong-but-plausible solutions (tests/wrong_solutions/<lab>.py)."""

import pytest

from techday.course.syllabus import load_course
from techday.validate.variants import (
    WrongSolution,
    check_wrong_solution,
    check_wrong_solutions,
    read_wrong_solutions,
)
from tests.conftest import FIXTURE_COURSE, ROOT

pytestmark = [pytest.mark.grading, pytest.mark.slow]

COURSE = load_course(ROOT)
WRONG = ROOT / "tests" / "wrong_solutions"
CASES = [(lab, wrong) for lab in COURSE.labs if (WRONG / f"{lab}.py").is_file()
         for wrong in read_wrong_solutions(WRONG / f"{lab}.py")]


def test_every_lab_keeps_wrong_solutions():
    for lab in COURSE.labs:
        assert len([w for name, w in CASES if name == lab]) >= 2, f"{lab}: keep at least two wrong solutions"


@pytest.mark.parametrize("lab", sorted({lab for lab, _ in CASES}))
def test_wrong_solutions_are_caught(lab):
    """Every wrong solution of the lab fails the tests it names (together in one kernel where that
    settles it, alone otherwise: techday/validate/variants.py)."""
    wrongs = [w for name, w in CASES if name == lab]
    results = check_wrong_solutions(COURSE.lab_source(lab), lab, wrongs)
    together = sum(r.how == "together" for r in results)
    print(f"{lab}: {len(results)} wrong solutions, {together} settled in one kernel, {len(results) - together} alone")
    problems = [f"{r.wrong.name}: {r.error}" for r in results if r.error]
    problems += [f"{r.wrong.name} passes {[c for c in r.wrong.fails if c not in r.failed_cells]}"
                 for r in results if not r.error and not r.caught]
    assert not problems, f"{lab}: " + "; ".join(problems)


def test_a_right_answer_is_not_reported_as_caught():
    """The check itself can fail: a correct rewrite of the fixture's solution passes its tests."""
    source = FIXTURE_COURSE / "labs" / "ok-lab" / "ok-lab.py"
    right = WrongSolution("actually_right", "double", ["double_tests"], "def double(x):\n    return x + x", 1)
    assert not check_wrong_solution(source, "ok-lab", right).caught
    wrong = WrongSolution("squares", "double", ["double_tests"], "def double(x):\n    return x * x", 1)
    assert check_wrong_solution(source, "ok-lab", wrong).caught  # 2*2 == 2**2, but the hidden -7 is not


def test_together_settles_only_what_its_control_proves():
    """In one kernel: a plainly wrong answer is settled there; a right rewrite is never counted as
    caught; an answer that leaves out the definition passes in the shared kernel (the earlier right
    run defined it), so it is run alone, where its NameError catches it."""
    source = FIXTURE_COURSE / "labs" / "ok-lab" / "ok-lab.py"
    cases = [WrongSolution("squares", "double", ["double_tests"], "def double(x):\n    return x * x", 1),
             WrongSolution("actually_right", "double", ["double_tests"], "def double(x):\n    return x + x", 1),
             WrongSolution("forgot_it", "double", ["double_tests"], "pass", 1)]
    squares, right, forgot = check_wrong_solutions(source, "ok-lab", cases)
    assert squares.caught and squares.how == "together"
    assert not right.caught and right.how == "alone"
    assert forgot.caught and forgot.how == "alone" and "NameError" in forgot.failed_cells["double_tests"]
