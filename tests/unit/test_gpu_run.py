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


def _gpu_run():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_run_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_machine_packages_line_runs_on_this_python(tmp_path):
    """The .pth line that shows the machine's packages to the run's venv adds the folder and runs that
    folder's own .pth files, on this Python too (a comprehension in it raised NameError before 3.12)."""
    site_dir, machine = tmp_path / "venv-site", tmp_path / "machine"
    (machine / "extra").mkdir(parents=True)
    site_dir.mkdir()
    (machine / "hook.pth").write_text(f"{machine / 'extra'}\n")
    (site_dir / "_techday_machine.pth").write_text(_gpu_run().machine_pth([str(machine)]))
    code = (f"import site, sys; site.addsitedir({str(site_dir)!r}); "
            f"print({str(machine)!r} in sys.path, {str(machine / 'extra')!r} in sys.path)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["True", "True"] and "Error" not in proc.stderr, proc.stderr


def test_a_venv_made_by_another_python_is_made_again(tmp_path):
    """A run venv left by another interpreter (its packages would not import) is recognised by asking
    its interpreter, not its pyvenv.cfg (which `venv` rewrites over an old folder)."""
    differs = _gpu_run().venv_python_differs
    assert differs(tmp_path / "none") is False
    same, other = tmp_path / "same" / "bin", tmp_path / "other" / "bin"
    same.mkdir(parents=True)
    other.mkdir(parents=True)
    (same / "python").symlink_to(sys.executable)
    (other / "python").write_text("#!/bin/sh\necho 3 99\n")
    (other / "python").chmod(0o755)
    (other.parent / "pyvenv.cfg").write_text(f"version = {sys.version_info.major}.{sys.version_info.minor}.0\n")
    assert differs(same.parent) is False
    assert differs(other.parent) is True
