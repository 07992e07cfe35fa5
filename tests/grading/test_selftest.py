"""The grading contract with the real nbgrader: solution full marks, release zero, CSV exported."""

import csv
import json

import pytest

from techday.course.syllabus import load_course
from tests.conftest import ROOT, techday, validated

pytestmark = [pytest.mark.grading, pytest.mark.slow]


def test_every_lab_keeps_the_contract(tmp_path):
    """Every lab of the course; on a tree `techday validate` has just checked (CI), its outputs."""
    done = validated("grade selftest")
    if done is None:
        out = techday("grade", "selftest", "--tier", "cpu", "--scale", "ci", env={"TECHDAY_BUILD": str(tmp_path)})
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        done = tmp_path / "selftest"
    report = json.loads((done / "selftest.json").read_text())
    assert report["ok"] and len(report["labs"]) >= 2
    assert sorted(lab["lab"] for lab in report["labs"]) == sorted(load_course(ROOT).labs)
    with open(done / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for lab in report["labs"]:
        assert lab["hidden_tests"] > 0
        for cell in lab["cells"]:
            assert cell["solution_score"] == cell["max_score"] > 0, cell
            assert cell["release_score"] == 0, cell
        mine = {r["student_id"]: r for r in rows if r["assignment"] == lab["lab"]}
        assert float(mine["selftest-solution"]["score"]) == float(mine["selftest-solution"]["max_score"]) > 0
        assert float(mine["selftest-release"]["score"]) == 0


def test_a_test_that_cannot_fail_breaks_the_contract(fixture_course):
    out = techday("--root", str(fixture_course), "grade", "selftest", "ok-lab", "weak-lab", "--tier", "cpu")
    assert out.returncode == 1
    assert "weak-lab" in out.stderr and "'weak_tests'" in out.stderr and "cannot fail" in out.stderr
    report = json.loads((fixture_course / "build" / "selftest" / "selftest.json").read_text())
    by_lab = {lab["lab"]: lab for lab in report["labs"]}
    assert by_lab["ok-lab"]["ok"] and not by_lab["weak-lab"]["ok"]
    # The weak lab's real test still behaves: full marks for the solution, zero for the release.
    answer = next(c for c in by_lab["weak-lab"]["cells"] if c["grade_id"] == "answer_tests")
    assert (answer["solution_score"], answer["release_score"]) == (1.0, 0.0)


def test_the_contract_is_proven_under_the_per_cell_limit_a_room_is_graded_with(fixture_course):
    """Caught: a solution whose cell needs more time than a trainee's cell gets when the room is graded
    (the self-test once ran every cell under the longest lab's whole-notebook limit)."""
    syllabus = fixture_course / "course" / "syllabus.toml"
    syllabus.write_text(syllabus.read_text().replace(
        '[labs.ok-lab]\ntitle = "Passes"\ntrack = "t"\nminutes = 1\ntimeout_s = { ci = 60, full = 60 }',
        '[labs.ok-lab]\ntitle = "Passes"\ntrack = "t"\nminutes = 1\ntimeout_s = { ci = 60, full = 60 }\n'
        'cell_timeout_s = { ci = 2, full = 2 }'))
    source = fixture_course / "labs" / "ok-lab" / "ok-lab.py"
    source.write_text(source.read_text().replace("    return 2 * x\n", "    import time; time.sleep(4)\n    return 2 * x\n"))
    out = techday("--root", str(fixture_course), "grade", "selftest", "ok-lab", "--tier", "cpu")
    assert out.returncode == 1, out.stdout[-2000:]
    report = json.loads((fixture_course / "build" / "selftest" / "selftest.json").read_text())
    (lab,) = report["labs"]
    assert not lab["ok"], "a 4-second solution cell under a 2-second cell limit must break the contract"
