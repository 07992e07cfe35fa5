"""What the leaderboard trusts: only the kit it was installed with, and a file's figures, never its
place, its inode, its run id or its own claims about the machine.

Each test names the wrong answer the old board gave (the red-team review of the board).
"""

import json
import os
import shutil

import pytest

from techday.bench import counts, leaderboard
from techday.bench.leaderboard import build_leaderboard
from tests.conftest import ROOT

FIX = ROOT / "tests" / "fixtures" / "bench"
RESULTS = ROOT / "benchmarks" / "results"
H200_RUN = RESULTS / "h200-quick-2026-12-04.json"
CPU_RUN = RESULTS / "cpu-tier-quick-2core-ci.json"


def doc_of(path):
    return json.loads(path.read_text())


def student(doc, run_id=None):
    """A fixture handed in as a student's file: no fixture mark (a room never ranks fixtures)."""
    doc = dict(doc)
    doc.pop("fixture", None)
    if run_id:
        doc["run_id"] = run_id * 32
    return doc


def submit(course, who, name, doc):
    lab = course / "submitted" / who / "08-measure-your-gpu"
    lab.mkdir(parents=True, exist_ok=True)
    path = lab / name
    path.write_text(json.dumps(doc))
    return path


def retime_all(doc, seed, rel=0.02):
    """Each timed figure moved by its own noise (an honest second run), its recorded figures made to agree."""
    import random

    rng = random.Random(seed)
    for r in doc["results"]:
        if r.get("status") != "ok":
            continue
        f = 1 + rng.uniform(-rel, rel)
        for k in ("median", "min", "max"):
            r["seconds"][k] *= f
        amount = {"gbs": r["bytes"], "gflops": r["flops"]}.get(r["metric"])
        rate = (lambda t: amount / t / 1e9) if amount else (lambda t: t * 1e6)
        r["value"], r["best"] = rate(r["seconds"]["median"]), rate(r["seconds"]["min"])
        for k in ("fraction", "limit", "gbs", "gflops", "us"):
            r.pop(k, None)
    return doc


@pytest.fixture
def fresh_caches():
    """The board's caches (kernel tables, the kit's runs) emptied before and after: what a test's
    working directory would change must be computed under it."""
    counts._table.cache_clear()
    leaderboard.kit_runs.cache_clear()
    yield
    counts._table.cache_clear()
    leaderboard.kit_runs.cache_clear()


# ---------------------------------------------------------------------------------------------
# 1. The kit the board counts with is the installed one, never one found from the working directory.


def test_a_course_root_in_the_working_directory_changes_nothing_and_runs_nothing(tmp_path, monkeypatch,
                                                                                 fresh_caches):
    # Wrong answer caught: the board run from inside a student's folder holding course/syllabus.toml and
    # a benchmarks/ of its own imported that stream.py (the student's Python, run by the instructor) and
    # counted with it, and took its benchmarks/results/ for the kit's runs (so an honest run that the
    # folder also holds was refused as "a copy of the course kit's own run").
    fake = tmp_path / "mallory"
    (fake / "course").mkdir(parents=True)
    (fake / "course" / "syllabus.toml").write_text((ROOT / "course" / "syllabus.toml").read_text())
    shutil.copytree(ROOT / "benchmarks", fake / "benchmarks", ignore=shutil.ignore_patterns("results", "__pycache__"))
    ran = tmp_path / "ran"
    poison = f"import pathlib\npathlib.Path({str(ran)!r}).mkdir(exist_ok=True)\n"
    stream = fake / "benchmarks" / "stream.py"
    stream.write_text(poison + stream.read_text().replace("words * 8 * n", "words * 80 * n"))
    (fake / "techday").mkdir()  # a package shadowing the kit's, for a child that puts its cwd first
    (fake / "techday" / "__init__.py").write_text(poison)
    (fake / "benchmarks" / "results").mkdir()
    shutil.copy(FIX / "gpu-h100-good.json", fake / "benchmarks" / "results" / "mine.json")
    monkeypatch.chdir(fake)
    monkeypatch.delenv("TECHDAY_ROOT", raising=False)
    monkeypatch.setenv("TECHDAY_BENCHMARKS", str(fake / "benchmarks"))

    board = build_leaderboard([FIX / "gpu-h100-good.json"])

    assert not ran.exists(), "the board ran Python from the working directory's course"
    assert board.rejected == [], board.rejected_lines()
    assert [r["value"] for r in board.rankings("gpu")["stream.triad"]] == pytest.approx([2950.0])
    assert {k.path.parent for k in leaderboard.kit_runs()} <= {RESULTS.resolve(), (RESULTS / "h200-2026-12-04").resolve()}
