"""benchmarks/gpu_run.py --grading (benchmarks/gpu_grade.py): one line and a non-zero exit for a machine
without a GPU, without the carried wheels, or without a working bwrap; the slimmed nbgrader wheel is
made the same way every time."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_run.py"


def _grade_module():
    spec = importlib.util.spec_from_file_location("gpu_grade_under_test", ROOT / "benchmarks" / "gpu_grade.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args, tmp_path: Path, path: str = "/usr/bin:/bin", env: dict | None = None):
    return subprocess.run([sys.executable, str(SCRIPT), "--grading", "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": path, "HOME": str(tmp_path), **(env or {})})


def test_no_gpu_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = _run(tmp_path=tmp_path, path=str(empty))
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines() == [
        "gpu_run --grading: no GPU: nvidia-smi is not on PATH (run with --rehearse to rehearse on the CPU tier)"]
    assert not (tmp_path / "out").exists()


def test_a_gpu_that_lists_none_is_one_line_and_exit_2(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    (fake / "nvidia-smi").chmod(0o755)
    proc = _run(tmp_path=tmp_path, path=f"{fake}:/usr/bin:/bin")
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines() == [
        "gpu_run --grading: no GPU: nvidia-smi -L lists none (No devices were found)"]


def test_no_carried_wheels_is_one_line_and_exit_2(tmp_path):
    wheels = tmp_path / "wheels"
    proc = _run("--rehearse", "--wheels", str(wheels), tmp_path=tmp_path)
    assert proc.returncode == 2
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("gpu_run --grading: REHEARSAL on the CPU tier")
    assert lines[1:] == [f"gpu_run --grading: no wheels: {wheels} holds no .whl files (fetch them with "
                         "--fetch-wheels --set grading, carry the folder)"]
    assert not (tmp_path / "out").exists()


def test_a_wheel_missing_from_the_carried_set_is_one_line_and_exit_2(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"x")
    listed = [{"file": "a-1.0-py3-none-any.whl", "bytes": 1}, {"file": "nbgrader-0.9.6-py3-none-any.whl", "bytes": 9}]
    (wheels / "grading-set.json").write_text(json.dumps({"wheels": listed}))
    proc = _run("--rehearse", "--wheels", str(wheels), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines()[1:] == [
        f"gpu_run --grading: missing carried wheels: 1 of 2 listed in {wheels / 'grading-set.json'} are not there "
        "(nbgrader-0.9.6-py3-none-any.whl)"]


def test_no_bwrap_says_so_in_one_line_and_exits_3(tmp_path):
    """Without a working bwrap the check says so once, records isolation none, and does not pass (exit 3),
    whatever the scores: the sandbox was the point of the call."""
    env = {"TECHDAY_BWRAP": "none", "PYTHONPATH": str(ROOT)}
    proc = _run("--rehearse", "--no-install", "--stop-after", "environment", tmp_path=tmp_path,
                path=os.path.dirname(sys.executable) + ":/usr/bin:/bin", env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    said = [line for line in proc.stdout.splitlines() if line.startswith("gpu_run --grading: no sandbox here")]
    assert len(said) == 1 and "exits 3" in said[0], proc.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["isolation"]["isolation"] == "none" and summary["tier"] == "cpu" and summary["rehearsal"]
    assert summary["exit"] == 3


def test_the_verdict_needs_the_sandbox_and_every_expectation():
    code = _grade_module().exit_code
    good = [{"lab": "02", "student": s, "ok": True} for s in ("reference", "released", "wrong")]
    assert code(good, sandboxed=True, steps_ok=True)[0] == 0
    assert code(good, sandboxed=False, steps_ok=True)[0] == 3
    assert code(good[:2] + [{**good[2], "ok": False}], sandboxed=True, steps_ok=True) == (
        1, "1 of 3 notebooks not graded as expected: 02/wrong")
    assert code(good, sandboxed=True, steps_ok=False)[0] == 1
    assert code([], sandboxed=True, steps_ok=True)[0] == 1


def test_judge_reads_each_trainee_as_it_should():
    judge = _grade_module().judge
    wrong = {"wrong": "w", "wrong_fails": ["a_tests"]}
    sub = {"status": "graded", "score": 5.0, "max_score": 5.0}
    assert judge("lab", {**sub, "student": "reference"}, wrong, {})[0]
    assert not judge("lab", {**sub, "student": "released"}, wrong, {})[0]
    assert judge("lab", {**sub, "score": 0.0, "student": "released"}, wrong, {})[0]
    assert judge("lab", {**sub, "score": 3.0, "student": "wrong"}, wrong, {"a_tests": 0.0})[0]
    assert not judge("lab", {**sub, "score": 3.0, "student": "wrong"}, wrong, {"a_tests": 1.0})[0]
    # On the GPU tier the reference's kernel must have seen the GPU.
    assert not judge("lab", {**sub, "student": "reference"}, wrong, {}, "gpu", "TIER: CPU  (simulator)")[0]
    assert judge("lab", {**sub, "student": "reference"}, wrong, {}, "gpu", "TIER: GPU  (NVIDIA H100)")[0]
    assert not judge("lab", {"status": "failed", "student": "reference", "notes": ["x"]}, wrong, {})[0]


def test_the_slimmed_nbgrader_wheel_is_the_same_every_time(tmp_path):
    """Same input, same bytes; the stripped paths are gone from the archive and from RECORD."""
    grade = _grade_module()
    src = tmp_path / "nbgrader-0.9.6-py3-none-any.whl"
    record = "nbgrader/__init__.py,sha256=x,1\nnbgrader/docs/source/big.png,sha256=y,2\n" \
             "nbgrader-0.9.6.dist-info/RECORD,,\n"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr(zipfile.ZipInfo("nbgrader/__init__.py", (2020, 1, 2, 3, 4, 6)), "x = 1\n")
        z.writestr(zipfile.ZipInfo("nbgrader/docs/source/big.png", (2020, 1, 2, 3, 4, 6)), b"\0" * 1000)
        z.writestr(zipfile.ZipInfo("nbgrader/tests/test_x.py", (2020, 1, 2, 3, 4, 6)), "")
        z.writestr(zipfile.ZipInfo("nbgrader-0.9.6.dist-info/RECORD", (2020, 1, 2, 3, 4, 6)), record)
    one, two = tmp_path / "one.whl", tmp_path / "two.whl"
    assert grade.slim_nbgrader(src, one) == {"kept": 2, "dropped": 2}
    grade.slim_nbgrader(src, two)
    assert one.read_bytes() == two.read_bytes()
    with zipfile.ZipFile(one) as z:
        assert z.namelist() == ["nbgrader/__init__.py", "nbgrader-0.9.6.dist-info/RECORD"]
        assert "docs" not in z.read("nbgrader-0.9.6.dist-info/RECORD").decode()
