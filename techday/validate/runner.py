"""``techday run``: execute labs headless with papermill, several at a time, each with a time limit.

Every lab runs in its own worker process (and so its own kernel), so a lab that hangs, raises or
kills its kernel cannot take the others with it. Papermill saves the notebook after every cell, so
whatever ran before a failure is kept in ``build/run/<lab>/<lab>.ipynb``.

Outputs: one progress line per lab, a final table, ``build/run/summary.json`` (schema
``techday.run/1``) and ``build/run/junit.xml`` for CI.

Ctrl-C starts no further lab, stops the running ones (their whole process trees), and still writes the
table, the summary and JUnit: finished labs as they ended, stopped ones ``interrupted``, the rest
``not started``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from .. import atomicfile
from ..fastimport import skip_iri_grammar

if __name__ == "__main__":  # a helper process: before nbformat arrives with the imports below
    skip_iri_grammar()

from ..course.build import build_sources
from ..course.layout import notebook, notebook_name
from ..course.syllabus import Course
from ..localkernel import LIBRARY_SOCKET_ROOM, short_folder
from ..proctree import kill_tree, tree_memory
from ..tier import TierInfo

SCHEMA = "techday.run/1"
STARTUP_GRACE_S = 30  # kernel start and imports, on top of the lab's own limit
MEMORY_CHECK_S = 0.5  # how often a running lab's memory is read


@dataclass
class LabResult:
    lab: str
    tier: str
    scale: str
    status: str  # passed | failed | timeout | crashed | error | interrupted | not started
    seconds: float = 0.0
    reason: str = ""
    failing_cell: str = ""
    notebook: str = ""
    memory_mb: int | None = None  # the most host memory the lab's processes held together (see run_lab)

    @property
    def ok(self) -> bool:
        return self.status == "passed"


@dataclass
class RunSummary:
    schema: str
    started: str
    scale: str
    tier: dict
    labs: list[LabResult] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.labs) and all(r.ok for r in self.labs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d


# ---------------------------------------------------------------------------------------------
# The worker: one lab, one process, one kernel.


def _worker(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m techday.validate.runner")
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--tier", required=True)
    ap.add_argument("--scale", required=True)
    ap.add_argument("--cell-timeout", type=int, required=True)
    args = ap.parse_args(argv)

    import papermill as pm

    from techday.localkernel import PatientKernelManager

    result = {"status": "passed", "reason": ""}
    try:
        pm.execute_notebook(
            args.input, args.output,
            parameters={"tier": args.tier, "scale": args.scale},
            kernel_name="python3", progress_bar=False, log_output=False,
            request_save_on_cell_execute=True, execution_timeout=args.cell_timeout,
            cwd=str(Path(args.output).parent), kernel_manager_class=PatientKernelManager,
        )
    except pm.PapermillExecutionError as exc:
        result = {"status": "failed", "reason": f"{exc.ename}: {exc.evalue}".strip()}
    except Exception as exc:  # the kernel died, a cell timed out, the notebook was unreadable...
        name = type(exc).__name__
        status = "crashed" if "DeadKernel" in name else "timeout" if "Timeout" in name else "failed"
        result = {"status": status, "reason": f"{name}: {exc}".strip().splitlines()[0]}
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    return 0


# ---------------------------------------------------------------------------------------------
# The parent: schedule workers, enforce the wall clock, read what they left.


def _kill_tree(proc: subprocess.Popen) -> None:
    kill_tree(proc.pid, grace_s=5, exited=lambda: proc.poll() is not None)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def failing_cell(notebook: Path, refs_by_id: dict) -> str:
    """Name the cell where execution stopped: the one papermill marked as raising; otherwise (a
    timeout, a dead kernel, a worker that was stopped) the last cell that started. '' if none."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    skip = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in nb.get("cells", []) if not skip & set(c.get("metadata", {}).get("tags", []))]
    meta = [c.get("metadata", {}).get("papermill", {}) for c in cells]
    marked = [c for c, m in zip(cells, meta) if m.get("exception")]
    started = [c for c, m in zip(cells, meta) if m.get("start_time")]
    cell = marked[0] if marked else started[-1] if started else None
    if cell is None:
        return ""
    ref = refs_by_id.get(cell.get("id"))
    return ref.describe() if ref else f"cell id {cell.get('id')!r}"


class Stop:
    """Ctrl-C, shared by the scheduler and the labs it runs: once set, no lab starts and every
    running worker's process tree is killed."""

    def __init__(self):
        self.event = threading.Event()
        self.by = "Ctrl-C"  # or the signal that stopped the command (SIGTERM, SIGHUP: techday/cli/main.py)
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def started(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)
        if self.is_set():  # Ctrl-C came between the check and the start
            _kill_tree(proc)

    def ended(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def set(self) -> None:
        self.event.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _kill_tree(proc)


def run_one(course: Course, lab: str, src: Path, out_dir: Path, tier: str, scale: str, timeout: int,
            refs_by_id: dict, lang: str | None = None, stop: Stop | None = None) -> LabResult:
    work = out_dir / lab
    work.mkdir(parents=True, exist_ok=True)
    out_nb = work / notebook_name(lab)
    result_file = work / "result.json"
    for stale in (out_nb, result_file):
        stale.unlink(missing_ok=True)
    # The lab's own temporary folder: whatever it leaves there after its kernel has exited is reported
    # (on a shared server every trainee's run would leave it in the one /tmp). On a short path: libraries
    # bind Unix sockets below it (a DataLoader worker under build/ of a deep checkout could not hand a
    # batch back, and lab 13 waited for it until its limit).
    stale = work / "tmp"  # where it was before
    shutil.rmtree(stale, ignore_errors=True)
    short = short_folder(f"techday-{lab[:24]}-", LIBRARY_SOCKET_ROOM)
    tmp = Path(short) if short else stale
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TECHDAY_TIER": tier, "TECHDAY_SCALE": scale, "PYTHONUNBUFFERED": "1",
           "MPLBACKEND": "Agg", "TECHDAY_ROOT": str(course.root), "TECHDAY_LANG": lang or course.default_language,
           "TMPDIR": str(tmp)}
    if tier == "cpu":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    cmd = [sys.executable, "-m", "techday.validate.runner", "--input", str(src), "--output", str(out_nb),
           "--result", str(result_file), "--tier", tier, "--scale", scale, "--cell-timeout", str(timeout)]
    t0 = time.monotonic()
    log = open(work / "worker.log", "w", encoding="utf-8")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if stop:
        stop.started(proc)
    # The most memory the lab's processes (worker, kernel, whatever the kernel starts) held together, read
    # every MEMORY_CHECK_S as the grader reads a sandbox's (proctree.tree_memory, resident pages from
    # /proc/PID/status: pages a fork shares count in each process, so this is an upper bound): what a
    # trainee's server and the grading sandbox's memory_mb must hold for this lab, on this tier.
    peak = 0
    try:
        deadline = time.monotonic() + timeout + STARTUP_GRACE_S
        while True:
            try:
                proc.wait(timeout=max(0.0, min(MEMORY_CHECK_S, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
            peak = max(peak, tree_memory(proc.pid))
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        timed_out = True
    finally:
        log.close()
        if stop:
            stop.ended(proc)
    seconds = time.monotonic() - t0
    res = LabResult(lab=lab, tier=tier, scale=scale, status="passed", seconds=round(seconds, 2),
                    notebook=str(out_nb), memory_mb=peak // 2**20 if peak else None)
    if stop and stop.is_set() and not result_file.is_file():
        res.status, res.reason = "interrupted", f"stopped by {stop.by}"
    elif timed_out:
        res.status, res.reason = "timeout", f"no result after the lab's limit of {timeout} s"
    else:
        try:
            data = json.loads(result_file.read_text(encoding="utf-8"))
            res.status, res.reason = data["status"], data["reason"]
        except (OSError, ValueError, KeyError):
            tail = (work / "worker.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            res.status = "crashed"
            res.reason = f"worker exited with code {proc.returncode}" + (f": {tail[0]}" if tail else "")
    if not res.ok:
        res.failing_cell = failing_cell(out_nb, refs_by_id)
    elif left := left_behind(tmp):
        res.status = "failed"
        res.reason = (f"left {len(left)} file(s) in its temporary folder after its kernel exited (remove them "
                      f"when done: tempfile.TemporaryDirectory, lab.scratch): " + ", ".join(left[:5])
                      + (" ..." if len(left) > 5 else ""))
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def kept_by_libraries() -> dict[str, str]:
    """What libraries keep in the temporary folder under one fixed name, rewritten rather than added to
    on every run (so nothing piles up): the only names :func:`left_behind` lets stay."""
    return {f"torchinductor_{_user()}": "PyTorch's compile cache for this user, made when torch is imported",
            ".ses": "ONNX Runtime's session id, one small file"}


def left_behind(tmp: Path) -> list[str]:
    """The names left directly in ``tmp`` (sorted), but for :func:`kept_by_libraries`."""
    allowed = kept_by_libraries()
    try:
        return sorted(p.name for p in tmp.iterdir() if p.name not in allowed)
    except OSError:
        return []


def run_labs(course: Course, labs: list[str], info: TierInfo, scale: str, jobs: int, timeout: int | None,
             out_dir: Path, report=print, lang: str | None = None) -> RunSummary:
    """Run ``labs`` (names the course has: the command line refuses others before anything runs).
    Never raises for a lab's own failure; the summary says what happened to each."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = RunSummary(schema=SCHEMA, started=started, scale=scale, tier=info.to_dict())
    results: list[LabResult] = []
    lock = threading.Lock()
    total = len(labs)

    def done(res: LabResult) -> None:
        with lock:
            results.append(res)
            where = f" at {res.failing_cell}" if res.failing_cell else ""
            why = f": {res.reason}{where}" if not res.ok else ""
            report(f"[{len(results)}/{total}] {res.lab:<28} {res.tier:<4} {res.status:<8} {res.seconds:7.1f}s{why}")

    lang = course.language(lang)
    built = build_sources(course, labs, out_dir, lang)
    for lab, message in built.errors.items():
        done(LabResult(lab=lab, tier=info.tier, scale=scale, status="error", reason=f"source does not build: {message}"))

    stop = Stop()

    def not_started(lab: str) -> LabResult:
        return LabResult(lab=lab, tier=info.tier, scale=scale, status="not started", reason=f"{stop.by} came first")

    def task(lab: str) -> LabResult:
        if stop.is_set():
            return not_started(lab)
        src = notebook(out_dir, "source", lab)
        refs = built.refs[lab]
        limit = timeout or course.labs[lab].timeout(scale)
        try:
            return run_one(course, lab, src, out_dir, info.tier, scale, limit, {r.cell_id: r for r in refs}, lang,
                           stop)
        except Exception as exc:  # a bug here must not stop the other labs
            return LabResult(lab=lab, tier=info.tier, scale=scale, status="error", reason=f"runner: {exc!r}")

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    futures = {pool.submit(task, lab): lab for lab in built.built}
    try:
        for fut in as_completed(futures):
            done(fut.result())
    except KeyboardInterrupt as exc:
        summary.interrupted = True
        stop.by = str(exc) or stop.by  # "SIGTERM" when `kill` or `docker stop` stopped the run
        report("interrupted: no further lab starts; stopping the running ones")
        stop.set()
        for fut, lab in futures.items():
            if fut.cancel():
                done(not_started(lab))
        finished = {r.lab for r in results}
        for fut, lab in futures.items():
            if not fut.cancelled() and lab not in finished:
                done(fut.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    order = {name: i for i, name in enumerate(course.labs)}
    summary.labs = sorted(results, key=lambda r: order.get(r.lab, len(order)))
    summary.seconds = round(time.monotonic() - t0, 2)
    atomicfile.write_text(out_dir / "summary.json", json.dumps(summary.to_dict(), indent=2) + "\n")
    atomicfile.write_text(out_dir / "junit.xml", junit_xml(summary))
    return summary


def junit_xml(summary: RunSummary) -> str:
    failures = sum(1 for r in summary.labs if r.status in ("failed", "timeout"))
    errors = sum(1 for r in summary.labs if r.status in ("crashed", "error", "interrupted"))
    skipped = sum(1 for r in summary.labs if r.status == "not started")
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             f'<testsuite name="techday-labs" tests="{len(summary.labs)}" failures="{failures}" '
             f'errors="{errors}" skipped="{skipped}" time="{summary.seconds}" timestamp={quoteattr(summary.started)}>']
    for r in summary.labs:
        name = quoteattr(f"{r.lab}[{r.tier},{r.scale}]")
        lines.append(f'  <testcase classname="labs" name={name} time="{r.seconds}">')
        if r.status == "not started":
            lines.append(f'    <skipped message={quoteattr(r.reason)}/>')
        elif not r.ok:
            tag = "failure" if r.status in ("failed", "timeout") else "error"
            msg = f"{r.status}: {r.reason}" + (f" at {r.failing_cell}" if r.failing_cell else "")
            lines.append(f'    <{tag} type="{r.status}" message={quoteattr(msg)}>{escape(r.notebook)}</{tag}>')
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
