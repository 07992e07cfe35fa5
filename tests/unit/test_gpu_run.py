"""benchmarks/gpu_run.py stops with one line and exit 2 on a machine without a GPU or without the wheels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_run.py"


def _run(*args, path: str, tmp_path: Path):
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), *args], capture_output=True,
                          text=True, timeout=60, env={"PATH": path, "HOME": str(tmp_path)})


def test_no_gpu_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = _run(path=str(empty), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines() == [
        "gpu_run: no GPU: nvidia-smi is not on PATH (run with --rehearse to rehearse on the CPU tier)"]
    assert not (tmp_path / "out").exists()


def test_no_wheels_is_one_line_and_exit_2(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "README").write_text("no wheels here")
    proc = _run("--rehearse", "--wheels", str(wheels), path="/usr/bin:/bin", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines() == [
        f"gpu_run: no wheels: {wheels} holds no .whl files (carry them beside the checkout or pass --wheels)"]
