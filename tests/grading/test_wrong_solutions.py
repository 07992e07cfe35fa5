"""Every lab's tests fail wrong-but-plausible solutions (tests/wrong_solutions/<lab>.py)."""

import pytest

from techday.course import load_course
from techday.variants import WrongSolution, check_wrong_solution, read_wrong_solutions
from tests.conftest import FIXTURE_COURSE, ROOT

pytestmark = [pytest.mark.grading, pytest.mark.slow]

COURSE = load_course(ROOT)
WRONG = ROOT / "tests" / "wrong_solutions"
CASES = [(lab, wrong) for lab in COURSE.labs if (WRONG / f"{lab}.py").is_file()
         for wrong in read_wrong_solutions(WRONG / f"{lab}.py")]


def test_every_lab_keeps_wrong_solutions():
    for lab in COURSE.labs:
        assert len([w for name, w in CASES if name == lab]) >= 2, f"{lab}: keep at least two wrong solutions"


@pytest.mark.parametrize("lab, wrong", CASES, ids=[f"{lab}:{w.name}" for lab, w in CASES])
def test_wrong_solution_is_caught(lab, wrong):
    result = check_wrong_solution(COURSE.lab_source(lab), lab, wrong)
    assert not result.error, result.error
    missed = [cell for cell in wrong.fails if cell not in result.failed_cells]
    assert not missed, f"{lab}: wrong solution {wrong.name!r} passes {missed}"


def test_a_right_answer_is_not_reported_as_caught():
    """The check itself can fail: a correct rewrite of the fixture's solution passes its tests."""
    source = FIXTURE_COURSE / "labs" / "ok-lab" / "ok-lab.py"
    right = WrongSolution("actually_right", "double", ["double_tests"], "def double(x):\n    return x + x", 1)
    assert not check_wrong_solution(source, "ok-lab", right).caught
    wrong = WrongSolution("squares", "double", ["double_tests"], "def double(x):\n    return x * x", 1)
    assert check_wrong_solution(source, "ok-lab", wrong).caught  # 2*2 == 2**2, but the hidden -7 is not
