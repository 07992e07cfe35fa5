"""Every real lab grades in the production path: a perfect trainee's notebook, autograded by
`techday grade autograde` inside the sandbox, earns full marks.

`techday grade selftest` proves each lab's tests with nbgrader's own executor; this proves that nothing
the sandbox takes away (the repository, the network, host names, memory) is something a lab needs.
It caught three such needs: simulator threads reserving more memory than the limit, a lab reading the
syllabus and benchmark families, and torchrun's rendezvous on "localhost"."""

import pytest

from techday.course.syllabus import load_course
from tests.conftest import ROOT, grade_solution

pytestmark = [pytest.mark.grading, pytest.mark.slow]

LABS = list(load_course(ROOT).labs)


@pytest.mark.parametrize("lab", LABS)
def test_solution_earns_full_marks_in_the_sandbox(lab, bwrap, tmp_path):
    report, sub, row, _ = grade_solution(lab, tmp_path)
    assert report["sandbox"] is True
    assert sub["status"] == "graded", sub
    assert float(row["score"]) == float(row["max_score"]) > 0, (row, sub)
