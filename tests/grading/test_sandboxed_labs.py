"""Every real lab grades in the production path: a perfect trainee's notebook, autograded by
`techday grade autograde` inside the sandbox, earns full marks.

`techday grade selftest` proves each lab's tests with nbgrader's own executor; this proves that nothing
the sandbox takes away (the repository, the network, host names, memory) is something a lab needs.
It caught three such needs: simulator threads reserving more memory than the limit, a lab reading the
syllabus and benchmark families, and torchrun's rendezvous on "localhost". The four labs of the cheat
corpus are proven by tests/grading/test_cheats.py, which grades their honest solution the same way."""

import pytest

from techday.course.syllabus import load_course
from tests.conftest import ROOT, grade_solution
from tests.grading.test_cheats import REAL_LABS

pytestmark = [pytest.mark.grading, pytest.mark.slow]

# The labs of the cheat corpus are proven there: their honest solution is graded by the same command in
# the sandbox, with the referee and the syllabus' per-cell limits, and must earn exactly full marks
# (tests/grading/test_cheats.py), so grading it a second time here would prove nothing more.
LABS = [lab for lab in load_course(ROOT).labs if lab not in REAL_LABS]


def test_every_lab_is_proven_in_the_sandbox_here_or_with_the_cheats():
    assert set(LABS) | set(REAL_LABS) == set(load_course(ROOT).labs) and not set(LABS) & set(REAL_LABS)


@pytest.mark.parametrize("lab", LABS)
def test_solution_earns_full_marks_in_the_sandbox(lab, bwrap, tmp_path):
    """Beside it the untouched release, as a trainee who answered nothing hands it in: 0 points and
    ``graded``, never ``flagged`` (an unanswered exercise's ``raise NotImplementedError`` reaches the
    notebook through libraries the referee watches: Numba's compiled code, a DataLoader's workers)."""
    report, sub, row, _ = grade_solution(lab, tmp_path, unfinished="unfinished-trainee")
    assert report["sandbox"] is True
    assert sub["status"] == "graded", sub
    assert float(row["score"]) == float(row["max_score"]) > 0, (row, sub)
    (left,) = [s for s in report["submissions"] if s["student"] == "unfinished-trainee"]
    assert left["status"] == "graded" and left["score"] == 0, left
