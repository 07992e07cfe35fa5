"""The sandboxed executor, seen from nbgrader: :class:`SandboxExecute` takes the place of nbgrader's
``Execute`` in the Autograde pipeline and sends the notebook (test cells restored) over a pipe into
the sandbox (:mod:`techday.grading.sandbox`), where :mod:`techday.grading.sandbox_exec` runs it.

Only outputs, execution counts and the executor's events come back; sources and nbgrader metadata
(what ``SaveAutoGrades`` trusts) stay nbgrader's restored copies, outside the sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Dict, Integer, Unicode

from ..proctree import kill_tree
from .sandbox import Limits, cgroup_prefix, check_sandbox, rlimits, sandbox_command, sandbox_env


class SandboxExecute(NbGraderPreprocessor):
    """Runs the notebook in ``techday.grading.sandbox`` instead of in this process's kernel.

    Only outputs and execution counts come back from the sandbox; sources and nbgrader metadata
    (what SaveAutoGrades trusts) stay the ones nbgrader restored outside it."""

    cell_timeout = Integer(120, help="seconds per cell").tag(config=True)
    notebook_timeout = Integer(600, help="seconds for the whole notebook; the sandbox is killed after").tag(config=True)
    memory_mb = Integer(4096, help="address-space limit of everything in the sandbox (CPU tier)").tag(config=True)
    output_bytes = Integer(1_000_000, help="output kept per cell").tag(config=True)
    sandbox = Bool(True, help="False: no isolation (trusted work only)").tag(config=True)
    gpu = Bool(False, help="bind the NVIDIA devices into the sandbox").tag(config=True)
    env = Dict({}, help="extra environment for the notebook (tier, scale)").tag(config=True)
    report_path = Unicode("", help="where to write what happened (JSON)").tag(config=True)
    referee = Bool(True, help="run test and locked cells through the in-kernel referee "
                              "(techday.grading.referee); False only for measurements").tag(config=True)

    def preprocess(self, nb, resources):
        import nbformat

        t0 = time.monotonic()
        limits = Limits(cell_timeout_s=self.cell_timeout, notebook_timeout_s=self.notebook_timeout,
                        memory_mb=self.memory_mb, output_bytes=self.output_bytes)
        report = {"sandbox": self.sandbox, "events": [], "problem": ""}
        work = Path(resources.get("metadata", {}).get("path") or ".").resolve() / ".sandbox"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        job = {"notebook": nb, "course_cells": course_cells(nb, resources), "referee": self.referee}
        result = run_notebook(json.dumps(job), work, limits, self.env, self.sandbox, self.gpu, report)
        shutil.rmtree(work, ignore_errors=True)
        code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        if result and result.get("grader_error"):
            report["grader_error"] = report["problem"] = result.get("problem", "")
            result = None
        cells = (result or {}).get("cells")
        if cells is not None and len(cells) == len(nb.cells) and all(
                (cells[i] is not None) for i in code_cells):
            for i in code_cells:
                nb.cells[i].outputs = [nbformat.from_dict(o) for o in cells[i].get("outputs", [])]
                nb.cells[i].execution_count = cells[i].get("execution_count")
            report["events"] = result.get("events", [])
            report["problem"] = result.get("problem", "")
            if result.get("language_info"):
                nb.metadata["language_info"] = result["language_info"]
        else:
            why = report["problem"] or "the sandbox returned no result"
            for i in code_cells:
                nb.cells[i].outputs = [nbformat.from_dict({"output_type": "error", "ename": "NotGraded",
                                                           "evalue": why, "traceback": [f"NotGraded: {why}"]})]
        report["seconds"] = round(time.monotonic() - t0, 2)
        if self.report_path:
            Path(self.report_path).write_text(json.dumps(report), encoding="utf-8")
        return nb, resources


def course_cells(nb, resources: dict) -> list[dict]:
    """The notebook's test and locked cells as nbgrader's gradebook knows them (the trusted sources,
    hidden tests included): only these are run by the referee. A cell that merely carries nbgrader
    metadata (a trainee can write any metadata) but is not in the gradebook is the trainee's."""
    from nbgrader.api import Gradebook, MissingEntry

    info = resources.get("nbgrader", {})
    if not info.get("db_url"):
        return []
    trusted = {}
    with Gradebook(info["db_url"]) as gb:
        try:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
        except MissingEntry:
            return []
        graded = {c.name for c in notebook.grade_cells}
        solutions = {c.name for c in notebook.solution_cells}
        for c in notebook.source_cells:
            if c.cell_type == "code" and c.locked and c.name not in solutions:
                trusted[c.name] = ("test" if c.name in graded else "locked", c.source)
    out, seen = [], set()
    for index, cell in enumerate(nb.cells):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and gid in trusted and gid not in seen and cell.source == trusted[gid][1]:
            seen.add(gid)
            out.append({"index": index, "key": gid, "kind": trusted[gid][0], "source": trusted[gid][1]})
    return out


def run_notebook(payload: str, work: Path, limits: Limits, env: dict, sandbox: bool, gpu: bool,
                 report: dict) -> dict | None:
    """Execute ``payload`` (notebook JSON) in the sandbox; the executor's result, or None (and
    ``report['problem']`` says why)."""
    r, w = os.pipe()
    executor = [sys.executable, "-m", "techday.grading.sandbox_exec", "--result-fd", str(w),
                "--cell-timeout", str(limits.cell_timeout_s), "--output-bytes", str(limits.output_bytes)]
    senv = sandbox_env(env)
    if sandbox:
        argv = sandbox_command(check_sandbox(), work, senv, gpu) + executor
        if gpu:  # no RLIMIT_AS with CUDA: a cgroup memory limit where systemd runs (untested without a GPU)
            argv = cgroup_prefix(limits) + argv
        popen_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        cwd = None
    else:
        argv = executor
        popen_env = {**senv, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                     "HOME": str(work), "MPLCONFIGDIR": str(work / "mpl"), "NUMBA_CACHE_DIR": str(work / "numba"),
                     "IPYTHONDIR": str(work / "ipython"), "JUPYTER_RUNTIME_DIR": str(work / "jupyter")}
        cwd = str(work)
    log = open(work.parent / "sandbox.log", "wb")
    chunks: list[bytes] = []
    cap = 256 * 1024 * 1024

    def reader():
        total = 0
        with os.fdopen(r, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                total += len(b)
                if total <= cap:
                    chunks.append(b)

    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, pass_fds=(w,),
                                preexec_fn=rlimits(limits, gpu), start_new_session=True, env=popen_env, cwd=cwd)
    except OSError as exc:
        os.close(w)
        os.close(r)
        log.close()
        report["problem"] = f"could not start the sandbox: {exc}"
        return None
    os.close(w)
    t = threading.Thread(target=reader, daemon=True)
    t.start()

    def feed():
        try:
            proc.stdin.write(payload.encode())
            proc.stdin.close()
        except OSError:
            pass

    threading.Thread(target=feed, daemon=True).start()
    try:
        proc.wait(timeout=limits.notebook_timeout_s)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.wait()
        report["problem"] = f"the notebook ran past its limit of {limits.notebook_timeout_s} s and was stopped"
        report["events"] = [{"event": "notebook-timeout", "seconds": limits.notebook_timeout_s}]
        t.join(5)
        log.close()
        return None
    kill_tree(proc.pid)
    t.join(30)
    log.close()
    data = b"".join(chunks)
    if not data:
        tail = (work.parent / "sandbox.log").read_bytes()[-600:].decode("utf-8", "replace").strip()
        report["problem"] = f"the executor ended (exit {proc.returncode}) without a result: {tail[-300:]}"
        return None
    try:
        return json.loads(data)
    except ValueError:
        report["problem"] = "the executor's result was not readable"
        return None

