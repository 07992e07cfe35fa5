"""No lab's tests reject a right answer written another way than the course's solution
(tests/right_solutions/<lab>.py): the other half of "a test must be able to fail". Each lab's right
answers are checked in the same run of the lab as its wrong solutions:
test_wrong_solutions.py::test_wrong_solutions_are_caught_and_right_answers_pass."""

import pytest

from techday.course.syllabus import load_course
from techday.validate.variants import WrongSolution, check_wrong_solutions, read_right_solutions
from tests.conftest import FIXTURE_COURSE, ROOT

pytestmark = [pytest.mark.grading, pytest.mark.slow]

COURSE = load_course(ROOT)
RIGHT = ROOT / "tests" / "right_solutions"
CASES = [(lab, right) for lab in COURSE.labs if (RIGHT / f"{lab}.py").is_file()
         for right in read_right_solutions(RIGHT / f"{lab}.py")]


def test_every_file_names_a_lab_of_the_course():
    for path in RIGHT.glob("*.py"):
        assert path.stem in COURSE.labs, f"{path.name}: not a lab of the course"


def test_every_lab_keeps_right_answers():
    """Caught: a lab whose right-answers file is deleted or emptied (its tests would then be checked
    only against the course's own solution)."""
    for lab in COURSE.labs:
        assert any(name == lab for name, _ in CASES), f"{lab}: keep at least one right answer written another way"


def test_a_wrong_answer_fails_this_check():
    """The check itself can fail: on the fixture lab, an answer that squares where it should double is
    reported as failing its test cell (so a test that rejected a right answer would be seen)."""
    source = FIXTURE_COURSE / "labs" / "ok-lab" / "ok-lab.py"
    wrong = WrongSolution("squares", "double", ["double_tests"], "def double(x):\n    return x * x", 1)
    right = WrongSolution("adds", "double", ["double_tests"], "def double(x):\n    return x + x", 1)
    squares, adds = check_wrong_solutions(source, "ok-lab", [wrong, right])
    assert "double_tests" in squares.failed_cells
    assert not adds.failed_cells and not adds.error
