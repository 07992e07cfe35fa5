#!/usr/bin/env python3
"""One prepared GPU run: everything the course can only learn on a GPU, in one go, in about 8 minutes.

For a bare GPU machine (an H100 or H200 with PyTorch, Numba, numba-cuda and CuPy, no Jupyter packages,
no network) and a checkout with a folder of wheels inside it (ignored by git, carried with the run)::

    python3 benchmarks/gpu_run.py --fetch-wheels       # here, with the registry: .gpu-wheels/ (<= 62 MB)
    python3 benchmarks/gpu_run.py                      # there: wheels from .gpu-wheels/ (or --wheels DIR)
    python3 benchmarks/gpu_run.py --rehearse --no-install   # the same steps on the CPU tier, here

Grading in the sandbox is a second call of its own (nbgrader does not fit beside these wheels):
``--fetch-wheels --set grading`` here, ``--grading`` there (benchmarks/gpu_grade.py).

The device tool carries the folder: ``run(command="python3 benchmarks/gpu_run.py", carry=[".gpu-wheels"])``
(the working tree and what it carries must stay under 64 MiB together, hence the cap).

Steps, each with its own time limit inside the 480 s budget, each recorded with its status and seconds:

1. ``preflight``: a GPU (``nvidia-smi -L``) and the wheels folder; without either, one line and exit 2.
2. ``install``: a virtual environment that sees the machine's packages (``--system-site-packages``)
   gets the core set (papermill, nbformat, jupytext, ipykernel, rich, pytest, NumPy 2.4.6: NumPy 2.5
   stops numba-cuda 0.30 compiling kernels) from the wheels with ``--no-index``, which must install;
   then each optional package (matplotlib, scikit-image, ...) that the machine lacks and the wheels
   hold, one by one: a missing one is recorded, and the labs that need it fail on their own.
3. ``environment``: device, driver, CUDA and package versions, the checkout's commit.
4. ``labs-ci``: ``techday run --tier gpu --scale ci`` for every lab.
5. ``gpu-tests``: ``pytest tests/gpu``.
6. ``bench``: ``techday bench --quick --tier gpu`` (results.json, report.html).
7. ``calibrate``: lab 07's speed bar, measured on this GPU (``techday.assessment.calibrate``).
8. ``labs-full``: the CUDA labs at ``--scale full``, as many as the time left allows.

Everything goes to ``build/gpu-run/<stamp>/`` and one archive ``build/gpu-run/<stamp>.tar.gz`` with
``summary.json`` (steps, seconds, device, versions, commit, and the last commit that touched the
benchmark timing code, so a reader knows which timing fixes the results include). Exit 0 when every
step passed, 1 when a step failed (later steps still run), 2 when the machine lacks a piece.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 480
# What the bare GPU machine lacks, installed from the wheels folder (their dependencies come from
# there too). NumPy is pinned: numba-cuda 0.30 fails with NumPy 2.5. aiohttp is named because papermill
# needs it on Python 3.12 by a marker that ``pip download --python-version`` does not follow.
CORE = ["numpy==2.4.6", "papermill", "aiohttp", "nbformat", "nbclient", "jupytext", "ipykernel", "rich", "pytest", "pytest-xdist",
        "packaging"]
# In the order they are fetched while room is left under --max-mb (the labs that need each say so).
OPTIONAL = ["matplotlib", "scikit-learn", "scikit-image", "onnx", "onnxscript", "onnxruntime"]
PACKAGES = CORE + OPTIONAL
WHEELS = ROOT / ".gpu-wheels"
# The device machine's Python and platform (an x86-64 Linux with CPython 3.12).
TARGET = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", "--platform",
          "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
          "--platform", "any"]
STEPS = ("labs-ci", "gpu-tests", "bench", "calibrate", "labs-full")
GPU_TESTS = "doctor_reports_the_device or copy_bandwidth_and_speed_bar"
CUDA_LABS = ["01-numba-first-steps", "02-kernels-and-threads", "03-atomics-and-reductions", "04-memory-subsystem",
             "05-cupy-interop", "06-streams-concurrency", "07-accelerated-assessment", "08-measure-your-gpu"]
CALIBRATE = r"""
import os, runpy, sys
os.environ.setdefault("TECHDAY_TIER", sys.argv[1]); os.environ.setdefault("TECHDAY_SCALE", "ci")
ns = runpy.run_path(sys.argv[2], run_name="__main__")
from techday.assessment import calibrate
print(calibrate(ns["equalize_device"], ns["speed_buffers"]))
"""


# Device, versions, and which code `numba.cuda` is: with numba-cuda installed, numba's built-in CUDA
# target in its place means every kernel figure would describe the wrong compiler (exit 3).
ENVIRONMENT = r"""
import json, sys
import numba.cuda
from techday.tier import detect
from techday.bench.env import versions
info = detect("auto")
v = versions()
print(json.dumps({"tier": info.to_dict(), "versions": v, "python": sys.version}))
if v["numba_cuda"] and v["cuda_target"] != "numba-cuda":
    sys.exit(f"numba-cuda {v['numba_cuda']} is installed but numba.cuda is {v['cuda_target']} "
             f"({sys.modules['numba.cuda'].__file__}): its start-up hook did not run")
"""


class Missing(SystemExit):
    """A piece the machine lacks: one line, exit 2."""


def _grading():
    """benchmarks/gpu_grade.py, beside this file (the grading check: a second device call)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_grade", Path(__file__).resolve().parent / "gpu_grade.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--grading" in argv:  # the grading check, its own options (gpu_grade.py)
        argv.remove("--grading")
        return _grading().main(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", default=None,
                    help="folder of wheels to install from (default: .gpu-wheels in the checkout; with --set "
                         "grading, .gpu-wheels-grading)")
    ap.add_argument("--fetch-wheels", action="store_true",
                    help="download the wheels for the GPU machine into --wheels (needs the registry), then stop")
    ap.add_argument("--set", choices=("core", "grading"), default="core",
                    help="with --fetch-wheels: the run's set (core, default) or the grading check's (grading: "
                         "nbgrader slimmed and what grading imports, for `--grading`)")
    ap.add_argument("--python-version", default="3.12",
                    help="with --fetch-wheels --set grading: the Python the wheels are for (default 3.12, the "
                         "lent machine's; a rehearsal here may need its own)")
    ap.add_argument("--grading", action="store_true",
                    help="the grading check instead of the run (see benchmarks/gpu_grade.py; --grading --help)")
    ap.add_argument("--max-mb", type=float, default=62, help="cap on the fetched wheels (default 62 MB: the tree and its carried paths travel under 64 MiB)")
    ap.add_argument("--rehearse", action="store_true", help="run every step on the CPU tier (no GPU needed)")
    ap.add_argument("--no-install", action="store_true", help="use this Python as it is (no venv, no wheels)")
    ap.add_argument("--labs", help="comma-separated labs for the labs-ci step (default: every lab), for a rerun "
                                   "of what an earlier run found")
    ap.add_argument("--skip", default="", help=f"comma-separated steps to leave out ({', '.join(STEPS)})")
    ap.add_argument("--budget", type=int, default=BUDGET_S, help="seconds for the whole run (default 480)")
    ap.add_argument("--out", help="output folder (default: build/gpu-run/<stamp>)")
    args = ap.parse_args(argv)
    if args.fetch_wheels and args.set == "grading":
        return _grading().fetch(Path(args.wheels or _grading().WHEELS), args.python_version)
    args.wheels = args.wheels or os.environ.get("TECHDAY_WHEELS", str(WHEELS))
    if args.fetch_wheels:
        return fetch_wheels(Path(args.wheels), args.max_mb)
    t0 = time.monotonic()
    tier = "cpu" if args.rehearse else "gpu"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out).resolve() if args.out else ROOT / "build" / "gpu-run" / stamp
    steps: list[dict] = []
    summary = {"schema": "techday.gpu-run/1", "started": stamp, "tier": tier, "budget_s": args.budget,
               "rehearsal": args.rehearse, "steps": steps}

    def left() -> float:
        return args.budget - (time.monotonic() - t0)

    # A longer --budget (a CPU-tier rehearsal) stretches every step's limit; a shorter one only ends sooner.
    scale = max(1.0, args.budget / BUDGET_S)

    def step(name: str, cmd: list[str], limit: float, env: dict | None = None) -> dict:
        limit = max(1, min(limit * scale, left()))
        log = out / f"{name}.log"
        t = time.monotonic()
        rec = {"step": name, "command": " ".join(cmd), "limit_s": round(limit)}
        try:
            with open(log, "w", encoding="utf-8") as fh:
                proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=fh,
                                      stderr=subprocess.STDOUT, timeout=limit, start_new_session=True)
            rec["status"] = "passed" if proc.returncode == 0 else "failed"
            rec["exit"] = proc.returncode
        except subprocess.TimeoutExpired:
            rec["status"] = "timeout"
        rec["seconds"] = round(time.monotonic() - t, 1)
        tail = [x for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()][-1:]
        rec["last_line"] = tail[0][:300] if tail else ""
        steps.append(rec)
        print(f"{name:<12} {rec['status']:<8} {rec['seconds']:6.1f} s  {rec['last_line'][:120]}", flush=True)
        return rec

    # 1. preflight: one line and exit 2 for a missing piece.
    if not args.rehearse and (why := _grading().no_gpu()):
        print(f"gpu_run: {why}")
        return 2
    wheels = Path(args.wheels)
    if not args.no_install and not (wheels.is_dir() and any(wheels.glob("*.whl"))):
        print(f"gpu_run: no wheels: {wheels} holds no .whl files (carry them beside the checkout or pass --wheels)")
        return 2
    out.mkdir(parents=True, exist_ok=True)

    # 2. install into a venv that sees the machine's PyTorch, Numba, numba-cuda and CuPy.
    python = sys.executable
    if not args.no_install:
        venv = ROOT / "build" / "gpu-run" / "venv"
        if venv_python_differs(venv):  # a venv left by another interpreter: its packages would not import
            shutil.rmtree(venv)
        rec = step("venv", [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], 60)
        python = str(venv / "bin" / "python")
        # The machine's python3 may itself be a venv (its PyTorch lives there, not in the base
        # interpreter's site-packages, which is all --system-site-packages shows): a .pth file adds this
        # interpreter's package folders after the new venv's own, so the pinned wheels still come first.
        # site.addsitedir, not a bare path line: their own .pth files must run too (numba-cuda's hook
        # that makes `numba.cuda` numba-cuda; without it numba's older built-in CUDA target loads).
        parent = [p for p in site.getsitepackages() if Path(p).is_dir()]
        child = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                               capture_output=True, text=True).stdout.strip()
        if child and parent:
            (Path(child) / "_techday_machine.pth").write_text(machine_pth(parent), encoding="utf-8")
        pip = [python, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), "--disable-pip-version-check"]
        rec = step("install", [*pip, *CORE], 150)
        if rec["status"] != "passed":
            print(f"gpu_run: the wheels in {wheels} do not install: {rec['last_line']}")
            return finish(out, summary, 2, t0)
        summary["optional"] = {}
        for name in OPTIONAL:
            present = subprocess.run([python, "-c", f"import importlib.metadata as m; m.version({name!r})"],
                                     capture_output=True).returncode == 0
            if present:
                summary["optional"][name] = "present"
                continue
            got = subprocess.run([*pip, CORE[0], name], capture_output=True, text=True,
                                 timeout=max(1, min(120, left())))
            summary["optional"][name] = "installed" if got.returncode == 0 else "missing"
        print(f"{'optional':<12} {summary['optional']}", flush=True)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TECHDAY_BUILD": str(out / "build")}
    techday = [python, "-m", "techday"]

    # 3. environment.
    rec = step("environment", [python, "-c", ENVIRONMENT], 60, env)
    if rec["status"] != "passed":
        print(f"gpu_run: the environment is not the course's: {rec['last_line']}")
        return finish(out, summary, 2, t0)
    if shutil.which("nvidia-smi"):
        step("nvidia-smi", ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,"
                            "clocks.max.mem,mig.mode.current", "--format=csv"], 20)
    summary["commit"] = _git("rev-parse", "HEAD")
    summary["changed"] = _git("status", "--porcelain", "--untracked-files=no").splitlines()  # edits past it
    summary["bench_code_commit"] = _git("log", "-1", "--format=%h %cs %s", "--", "techday/bench", "benchmarks")

    # 4-8. the run.
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    unknown = skip - set(STEPS)
    if unknown:
        print(f"gpu_run: no step named {', '.join(sorted(unknown))} (steps: {', '.join(STEPS)})")
        return finish(out, summary, 2, t0)

    def skipped(name: str, why: str) -> None:
        steps.append({"step": name, "status": "skipped", "seconds": 0, "last_line": why})
        print(f"{name:<12} skipped: {why}", flush=True)

    jobs = "4" if (os.cpu_count() or 2) >= 8 else "2"  # labs share the one GPU; the CPUs start kernels
    labs = [x.strip() for x in (args.labs or "").split(",") if x.strip()]
    if "labs-ci" in skip:
        skipped("labs-ci", "--skip")
    else:
        step("labs-ci", [*techday, "run", *labs, "--tier", tier, "--scale", "ci", "--jobs", jobs, "--out",
                         str(out / "labs-ci")], 220, env)
    # The GPU tests that no other step repeats: the quick suite is the bench step, every lab at full scale
    # is labs-full (the CUDA labs, as time allows), grading in the sandbox is the `--grading` call.
    if "gpu-tests" in skip:
        skipped("gpu-tests", "--skip")
    else:
        step("gpu-tests", [python, "-m", "pytest", "tests/gpu", "-p", "no:cacheprovider", "-n", "0", "-q", "-k",
                           GPU_TESTS, f"--junitxml={out / 'gpu-tests.xml'}"], 90, env)
    if "bench" in skip:
        skipped("bench", "--skip")
    else:
        step("bench", [*techday, "bench", "--quick", "--tier", tier, "--no-progress", "--out", str(out / "bench")],
             120, env)
    lab07 = ROOT / "labs" / "07-accelerated-assessment" / "07-accelerated-assessment.py"
    if "calibrate" in skip:
        skipped("calibrate", "--skip")
    else:
        rec = step("calibrate", [python, "-c", CALIBRATE, tier, str(lab07)], 60, {**env, "MPLBACKEND": "Agg"})
        if args.rehearse and rec["status"] == "failed" and "GPU tier only" in rec["last_line"]:
            # Lab 07 ran and calibrate was reached; only the GPU can measure.
            rec["status"] = "rehearsed"
    if "labs-full" in skip:
        skipped("labs-full", "--skip")
    elif left() > 60 and not args.rehearse:
        step("labs-full", [*techday, "run", *CUDA_LABS, "--tier", tier, "--scale", "full", "--jobs", "1",
                           "--timeout", str(int(left() - 20)), "--out", str(out / "labs-full")], left() - 10, env)
    else:
        skipped("labs-full", "rehearsal: full scale is for the GPU" if args.rehearse else f"only {left():.0f} s left")
    failed = any(s["status"] not in ("passed", "skipped", "rehearsed") for s in steps)
    return finish(out, summary, 1 if failed else 0, t0)


def _git(*args) -> str:
    proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def machine_pth(folders: list[str]) -> str:
    """A .pth line that adds ``folders`` with site.addsitedir (so their own .pth files run). No
    comprehension: site runs the line with exec() inside a function, where a comprehension (before
    Python 3.12) cannot see the ``site`` the line imported."""
    return f"import site; list(map(site.addsitedir, {folders!r}))\n"


def venv_python_differs(venv: Path) -> bool:
    """Whether ``venv`` exists and its interpreter is another Python version than this one (asked of
    the interpreter itself: ``venv`` over an old folder rewrites pyvenv.cfg but keeps its links)."""
    python = venv / "bin" / "python"
    if not venv.exists():
        return False
    try:
        out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return True
    return out != [str(sys.version_info.major), str(sys.version_info.minor)]


def fetch_wheels(folder: Path, max_mb: float) -> int:
    """The core set, then each optional package while the folder stays under ``max_mb``."""
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", *TARGET, "-d", str(folder)]

    def size_mb() -> float:
        return sum(p.stat().st_size for p in folder.glob("*.whl")) / 1e6

    got = subprocess.run([*pip, *CORE], capture_output=True, text=True)
    if got.returncode != 0:
        print(f"gpu_run: cannot fetch the core wheels: {(got.stderr or got.stdout).strip().splitlines()[-1:]}")
        return 2
    kept = []
    for name in OPTIONAL:
        before = {p.name for p in folder.glob("*.whl")}
        got = subprocess.run([*pip, CORE[0], name], capture_output=True, text=True)  # with the NumPy pin
        added = [folder / n for n in {p.name for p in folder.glob("*.whl")} - before]
        if got.returncode != 0 or size_mb() > max_mb:
            for p in added:
                p.unlink()
            print(f"gpu_run: {name} left out ({'does not fetch' if got.returncode else f'over {max_mb:g} MB'})")
            continue
        kept.append(name)
    print(f"gpu_run: {len(list(folder.glob('*.whl')))} wheels, {size_mb():.1f} MB in {folder}; optional kept: "
          f"{', '.join(kept) or 'none'}")
    return 0


def finish(out: Path, summary: dict, code: int, t0: float | None = None) -> int:
    summary["seconds"] = round(time.monotonic() - t0, 1) if t0 else None
    summary["exit"] = code
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    archive = out.with_suffix(".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(out, arcname=out.name, filter=lambda ti: None if "/build/" in ti.name and "/run/" not in ti.name
                and ti.name.endswith((".so", ".whl")) else ti)
    print(f"gpu_run: {'ok' if code == 0 else 'FAILED'} in {summary['seconds']} s; results: {archive}")
    return code


if __name__ == "__main__":
    sys.exit(main())
