"""The grading draw (techday/draw.py, techday/grading/referee.py): the seed of the hidden tests' drawn
inputs reaches a course test cell's own code while the referee runs it, and nothing else: a notebook
cell that asks before the tests, an answer a test calls, or a test's helper called by an answer gets
nothing, and the refusal is recorded (the hand-in is flagged). Outside the grader the draw is the fixed
default, or ``$TECHDAY_DRAW``. Each case runs in a fresh interpreter: an audit hook cannot be removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.unit.test_referee_source import ROOT, _run

DRAW = 4_242_4242  # the executor's draw, as the referee's instructions hand it over
WITH_DRAW = {"REFEREE_CONFIG_EXTRA": json.dumps({"draw": DRAW})}

# A test that reads the draw, as lab 07's and 17's hidden parts do, through techday.draw's own functions.
READS = {"visible": {"kind": "test", "source": f"import techday.draw as d_t\nassert d_t.base() == {DRAW}\n"
                     "assert d_t.seed('x') == d_t.seed('x') != d_t.seed('y')\nassert d_t.rng('x').integers(9) >= 0\n",
                     "then": "import techday.draw\nseen_after = techday.draw.base()\n"}}


def test_a_test_cell_reads_the_draw_the_executor_handed_over():
    """Wrong answer caught: the old referee ignored the event, so every test drew the published
    default and an answer computed in advance for it passed."""
    got = _run("x = 1\n", tests=READS, env=WITH_DRAW)
    assert got["visible"] == "passed", got
    assert got["visible then"] == "failed", got  # a notebook cell after the test: refused
    assert "tripwire visible reading the grading draw" not in got["records"], got
    assert "tripwire - reading the grading draw outside the course's tests" in got["records"], got


def test_a_notebook_cell_cannot_read_the_draw_before_the_tests():
    """Wrong answer caught: an answer cell that reads the draw as the notebook runs, then computes the
    drawn hidden cases' results in advance (the old referee answered it the default)."""
    for cell in ("import techday.draw as d\nseen = d.base()\n",
                 "import techday.draw as d\nseen = d.rng('07.lut_kernel_tests').integers(1 << 30)\n",
                 "import sys\nbox = []\nsys.audit('techday.referee.draw', box)\nassert box\n"):
        got = _run(cell, tests=READS, env=WITH_DRAW)
        assert got["cell"].startswith("RuntimeError") and "grading draw" in got["cell"], (cell, got)
        assert "tripwire - reading the grading draw outside the course's tests" in got["records"], (cell, got)
        assert got["visible"] == "passed", (cell, got)  # the test itself still gets it


def test_an_answer_called_by_a_test_cannot_read_the_draw():
    """Wrong answers caught: an answer that asks for the draw while a test runs it, directly or through a
    helper an earlier test defined (its code is the course's, but the answer called it)."""
    tests = {"visible": {"kind": "test", "source": "import techday.draw as d_t\n"
                         "def drawn_case():\n    return d_t.rng('case').integers(100)\n"
                         "assert drawn_case() >= 0\n"},
             "hidden": {"kind": "test", "source": "assert answer(3) == 6\n"}}
    for cell in ("import techday.draw\ndef answer(x):\n    techday.draw.base()\n    return 2 * x\n",
                 "def answer(x):\n    drawn_case()\n    return 2 * x\n"):
        got = _run(cell, tests=tests, env=WITH_DRAW)
        assert got["cell"] == "ok" and got["visible"] == "passed", (cell, got)
        assert got["hidden"] == "RuntimeError", (cell, got)
        assert "tripwire hidden reading the grading draw outside the course's tests" in got["records"], (cell, got)


def test_without_a_draw_handed_over_the_tests_draw_the_default():
    """A referee with no draw in its instructions (a measurement) answers nothing: the default draw."""
    tests = {"visible": {"kind": "test", "source": "import techday.draw as d_t\nassert d_t.base() == d_t.DEFAULT\n"}}
    got = _run("x = 1\n", tests=tests)
    assert got["visible"] == "passed", got


def _outside(env: dict) -> list:
    code = "import json, techday.draw as d\nprint(json.dumps([d.base(), d.seed('a'), int(d.rng('a').integers(1 << 40))]))"
    env = {**{k: v for k, v in os.environ.items() if k != "TECHDAY_DRAW"}, "PYTHONPATH": str(ROOT), **env}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_outside_the_grader_the_draw_is_reproducible():
    """validate, papermill and a trainee's own run: the fixed default, the same in every process; a
    given ``$TECHDAY_DRAW`` draws other cases, again the same each time; a bad one is an error."""
    first, second = _outside({}), _outside({})
    from techday.draw import DEFAULT

    assert first == second and first[0] == DEFAULT
    given = _outside({"TECHDAY_DRAW": "77"})
    assert given == _outside({"TECHDAY_DRAW": "77"}) and given[0] == 77 and given[1:] != first[1:]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TECHDAY_DRAW": "-3"}
    bad = subprocess.run([sys.executable, "-c", "import techday.draw as d; d.base()"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert bad.returncode != 0 and "a draw is a whole number" in bad.stderr, bad.stderr[-500:]


def test_validate_hands_its_draw_to_the_labs_it_runs(monkeypatch):
    """`techday validate --draw`: a given seed, or a fresh one with ``random``, reaches the labs' kernels
    through ``$TECHDAY_DRAW`` while validate runs, and the environment is as it was after; without the
    flag the labs draw the default. Wrong answer caught: ``--draw random`` that drew once and for all."""
    from techday import draw
    from techday.cli.run import _draw_for

    monkeypatch.delenv(draw.ENV, raising=False)
    with _draw_for(None):
        assert draw.ENV not in os.environ and draw.base() == draw.DEFAULT
    with _draw_for("55"):
        assert draw.base() == 55
    seen = set()
    for _ in range(3):
        with _draw_for("random"):
            seen.add(draw.base())
    assert len(seen) == 3 and draw.DEFAULT not in seen, seen
    assert draw.ENV not in os.environ
    out = subprocess.run([sys.executable, "-m", "techday", "validate", "--draw", "-1", "--help"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60, cwd=ROOT)
    assert out.returncode == 2 and "a draw is a whole number" in out.stderr, out.stderr[-500:]


def test_the_file_that_handed_the_draw_over_is_gone_and_its_folder_closed():
    """Wrong answer caught: a cell that reads the referee's instructions (the draw beside the key) from the
    file the executor wrote: deleted before the first cell runs, and listing its folder (to find it, or
    what else is there) is refused and reported. The folder is found here as a cell would find it, through
    the record file's descriptor."""
    find = ("import pathlib\n"
            "fds = [p for p in pathlib.Path('/proc/self/fd').iterdir() if p.resolve().name == 'records.log']\n"
            "folder = fds[-1].resolve().parent\n")
    got = _run(find + "import os\nassert not os.path.exists(os.path.join(str(folder), 'referee.json'))\n"
               "seen = open(os.path.join(str(folder), 'referee.json')).read()\n", tests=READS, env=WITH_DRAW)
    assert got["cell"].startswith(("FileNotFoundError", "RuntimeError")), got
    got = _run(find + "listed = list(folder.iterdir())\n", tests=READS, env=WITH_DRAW)
    assert got["cell"].startswith("RuntimeError") and "record file" in got["cell"], got
    assert "tripwire - opening the grader's record file" in got["records"], got
    assert str(DRAW) not in got["records"] and got["visible"] == "passed", got
