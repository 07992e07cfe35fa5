"""Shared fixtures. Tests are split by what they need:

- tests/unit      fast, no kernels started
- tests/labs      papermill executes the real labs (marker ``labs``)
- tests/grading   the real nbgrader grades (marker ``grading``)
- marker ``gpu``  needs a CUDA device; skipped elsewhere with the reason printed
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from techday.tier import detect

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_COURSE = ROOT / "tests" / "fixtures" / "course"


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than this process may use cores. A part of each worker's time is
    spent waiting (the time-limit tests' sleeps, kernels and child processes starting, the hub's
    spawns) and an extra worker fills it: on a 2-core machine the whole suite took 1,099 s with two
    workers and 887 s with three, the cores 96 % busy (issue 17). Four were faster again (839 s
    against 868 s with three) but left so little CPU that one of thirty trainees in the hub's load
    test got a non-JSON answer to its kernel request (tests/hub/test_hub_load.py) in one of three
    clean runs: not a margin to trade for 30 s."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


# The longest tests of the grading and lab checks, measured on a clean clone (the 25 slowest in every
# run's log), in the order they should start: see pytest_collection_modifyitems. The hub's tests keep
# their place: started together they compete for one machine's spawns (the load test took 248 s
# instead of 83) and the integration module's tests build on each other.
LONGEST_FIRST = (
    "tests/grading/test_wrong_solutions.py::test_wrong_solutions_are_caught_and_right_answers_pass[14-dl-multi-gpu]",
    "tests/grading/test_wrong_solutions.py::test_wrong_solutions_are_caught_and_right_answers_pass[17-dl-assessment]",
    "tests/grading/test_adversarial.py::test_adversarial_batch",
    "tests/grading/test_cheats.py",
    "tests/grading/test_regrade.py",
    "tests/grading/test_wrong_solutions.py",
    "tests/grading/test_resume.py",
    "tests/labs/test_dl_assessment_bar.py",
    "tests/grading/test_sandboxed_labs.py",
)


def _start_rank(item) -> tuple[int, int]:
    for rank, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return 0, rank
    if item.nodeid.startswith("tests/hub/"):
        return 2, 0
    return (1, 0) if "slow" in item.keywords else (2, 0)


def pytest_collection_modifyitems(config, items):
    """The longest grading and lab tests first, then the other slow ones, then the rest (the hub's
    tests among them, in their order), each in collection order (a stable sort). Measured on a clean
    clone here: pytest 908 s -> 876 s; in collection order the deep-learning bar tests and the last
    wrong solutions started near the end. Then GPU tests are skipped without a GPU."""
    items.sort(key=_start_rank)
    info = detect("auto")
    if info.tier == "gpu":
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {info.reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fixture_course(tmp_path) -> Path:
    """A writable copy of the scenario course, with the real grading settings beside it."""
    root = tmp_path / "course-root"
    shutil.copytree(FIXTURE_COURSE, root)
    shutil.copytree(ROOT / "grading", root / "grading")
    return root


def validated(step: str, tier: str = "cpu", scale: str = "ci") -> Path | None:
    """The output folder of `techday validate`'s ``step`` when validate checked this very tree (every
    lab, this tier and scale; techday/validate/record.py) and the step passed; else None, and the test
    runs the check itself. Either way it says which, so a log shows where a result came from."""
    from techday.course.syllabus import load_course
    from techday.validate.record import reusable

    out, why = reusable(load_course(ROOT).build_dir, ROOT, step, tier=tier, scale=scale)
    print(f"{step}: {'reusing ' + str(out) + ': ' if out else 'running it here: '}{why}")
    return out


def ctrl_c_works() -> None:
    """``preexec_fn`` for a child a test sends Ctrl-C (SIGINT) to: SIGINT's default disposition, as a
    process started from a terminal has. A test run started in the background by a non-interactive
    shell inherits SIGINT ignored, and so would every child: Ctrl-C would then prove nothing."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def techday(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 900):
    """Run the real command line, as a person or CI would."""
    import os

    return subprocess.run([sys.executable, "-m", "techday", *args], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def build_lab(lab: str, build: Path) -> Path:
    """``build``/course holding ``lab`` as ``TECHDAY_BUILD=build techday build LAB`` makes it; returns
    that course root. Where `techday validate` built every lab of this very tree (``validated``), its
    lab folders and gradebook are copied and this root's nbgrader config written as the build writes
    it (every test that grades a real lab otherwise starts one build of its own); else the real
    command builds it here."""
    import shutil

    from techday.course.build import write_config
    from techday.course.syllabus import load_course

    root = build / "course"
    done = validated("build")
    if done is None:
        out = techday("build", lab, env={"TECHDAY_BUILD": str(build)})
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        return root
    for part in ("source", "release"):
        shutil.copytree(done / part / lab, root / part / lab)
    shutil.copy2(done / "gradebook.db", root / "gradebook.db")
    write_config(load_course(ROOT), root)
    return root


def grade_solution(lab: str, tmp_path: Path, tier: str = "cpu", student: str = "perfect-trainee",
                   unfinished: str | None = None):
    """Build ``lab`` (:func:`build_lab`), hand in its solution as ``student`` (and, where ``unfinished``
    names one, its untouched release as that student) and grade it with ``techday grade autograde``
    (sandboxed, 1 worker, ci scale) under ``tmp_path``. Returns (the run's report, the student's
    submission line, the grades CSV row, the autograded notebook's text)."""
    import csv
    import json

    import nbformat

    from techday.course.labsrc import write_notebook
    from techday.grading.contract import solution_notebook

    env = {"TECHDAY_BUILD": str(tmp_path)}
    root = build_lab(lab, tmp_path)
    source = json.loads((root / "source" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    write_notebook(nbformat.from_dict(solution_notebook(source, release)),
                   root / "submitted" / student / lab / f"{lab}.ipynb")
    if unfinished:
        (root / "submitted" / unfinished / lab).mkdir(parents=True)
        (root / "submitted" / unfinished / lab / f"{lab}.ipynb").write_text(json.dumps(release), encoding="utf-8")

    out = techday("grade", "autograde", lab, "--tier", tier, "--scale", "ci", "--workers", "1", env=env)
    print(out.stdout[-1500:])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "grading" / lab / "report.json").read_text(encoding="utf-8"))
    (sub,) = [s for s in report["submissions"] if s["student"] == student]
    with open(tmp_path / "grading" / "grades.csv", newline="", encoding="utf-8") as f:
        (row,) = [r for r in csv.DictReader(f) if r["assignment"] == lab and r["student_id"] == student]
    graded = (root / "autograded" / student / lab / f"{lab}.ipynb").read_text(encoding="utf-8")
    return report, sub, row, graded
