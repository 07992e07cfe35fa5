"""Every real lab grades in the production path: a perfect trainee's notebook, autograded by
`techday grade autograde` inside the sandbox, earns full marks.

`techday grade selftest` proves each lab's tests with nbgrader's own executor; this proves that nothing
the sandbox takes away (the repository, the network, host names, memory) is something a lab needs.
It caught three such needs: simulator threads reserving more memory than the limit, a lab reading the
syllabus and benchmark families, and torchrun's rendezvous on "localhost"."""

import csv
import json

import nbformat
import pytest

from techday.course import load_course
from techday.grading import solution_notebook
from techday.labsrc import write_notebook
from techday.sandbox import SandboxUnavailable, check_sandbox
from tests.conftest import ROOT, techday

pytestmark = [pytest.mark.grading, pytest.mark.slow]

LABS = list(load_course(ROOT).labs)


@pytest.fixture(scope="module")
def bwrap():
    try:
        return check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")


@pytest.mark.parametrize("lab", LABS)
def test_solution_earns_full_marks_in_the_sandbox(lab, bwrap, tmp_path):
    env = {"TECHDAY_BUILD": str(tmp_path)}
    out = techday("build", lab, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    root = tmp_path / "course"
    source = json.loads((root / "source" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    write_notebook(nbformat.from_dict(solution_notebook(source, release)),
                   root / "submitted" / "perfect-trainee" / lab / f"{lab}.ipynb")

    out = techday("grade", "autograde", lab, "--tier", "cpu", "--scale", "ci", "--workers", "1", env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "grading" / lab / "report.json").read_text(encoding="utf-8"))
    assert report["sandbox"] is True
    (sub,) = report["submissions"]
    assert sub["status"] == "graded", sub
    with open(tmp_path / "grading" / "grades.csv", newline="", encoding="utf-8") as f:
        (row,) = [r for r in csv.DictReader(f) if r["assignment"] == lab]
    assert float(row["score"]) == float(row["max_score"]) > 0, (row, sub)
