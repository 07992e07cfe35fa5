"""``techday grade check`` and ``techday grade autograde``: a room's submissions, checked, then graded
in parallel, each in its own sandbox, with nbgrader's own gradebook.

The data path, for one lab of an nbgrader course root (``build/course`` by default)::

    submitted/<student>/<lab>/<lab>.ipynb            never modified
        │ check (no code runs): JSON, nbformat, graded and locked cells, name, duplicates, tampering
        ▼
    build/grading/<lab>/work/<key>/                  a private course root for ONE submission:
        nbgrader_config.py, source/<lab>/, gradebook.db (a snapshot), submitted/<student>/<lab>/
        │ nbgrader's Autograde (trusted, outside the sandbox, in a long-lived worker process per
        │ grading worker: techday.grade_worker): ClearOutput, DeduplicateIds,
        │ OverwriteKernelspec, OverwriteCells (restores locked and test cells, hidden tests included,
        │ from the gradebook), CheckCellMetadata; then SandboxExecute in place of Execute:
        │   the notebook goes over a pipe into bwrap (techday.sandbox), runs there, outputs come back
        │ then LimitOutput, SaveAutoGrades (into the private gradebook), CheckCellMetadata
        ▼
    course root: autograded/<student>/<lab>/ and gradebook.db   (scores merged under a lock)
    build/grading/<lab>/state.json                     submission checksum -> status (resumable)

Each submission gets its own private course root, so N of them are graded side by side without
sharing a SQLite file; only the short merge into the real gradebook is serial. A submission whose
checksum is in the state file is not graded again; one that changed is.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from traitlets import Bool, Dict, Integer, Unicode

from nbgrader.preprocessors import NbGraderPreprocessor

from .proctree import kill_tree
from .sandbox import Limits, cgroup_prefix, check_sandbox, memory_limit, rlimits, sandbox_command, sandbox_env

STATE_SCHEMA = "techday.grading/1"
FINAL = ("graded", "flagged", "failed", "rejected")

# Names whose use in a trainee's cell is worth a human look: they reach into the kernel, the test
# machinery or the machine. The grade stands; the status says "flagged" and why.
SUSPECT_ATTRS = {"input_transformers_post", "input_transformers_cleanup", "ast_transformers", "showtraceback",
                 "run_cell", "run_cell_async", "set_custom_exc", "register", "settrace", "setprofile",
                 "do_execute", "_showtraceback", "excepthook", "displayhook"}
SUSPECT_NAMES = {"get_ipython", "__builtins__", "builtins", "ctypes", "socket", "urllib", "requests", "http",
                 "subprocess", "sys.settrace", "_exit", "gc", "signal"}


# ---------------------------------------------------------------------------------------------
# nbgrader side: the Execute preprocessor that runs the notebook in the sandbox


class SandboxExecute(NbGraderPreprocessor):
    """Runs the notebook in ``techday.sandbox`` instead of in this process's kernel.

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

    def preprocess(self, nb, resources):
        import nbformat

        t0 = time.monotonic()
        limits = Limits(cell_timeout_s=self.cell_timeout, notebook_timeout_s=self.notebook_timeout,
                        memory_mb=self.memory_mb, output_bytes=self.output_bytes)
        report = {"sandbox": self.sandbox, "events": [], "problem": ""}
        work = Path(resources.get("metadata", {}).get("path") or ".").resolve() / ".sandbox"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        result = run_notebook(nbformat.writes(nb), work, limits, self.env, self.sandbox, self.gpu, report)
        shutil.rmtree(work, ignore_errors=True)
        code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
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


def run_notebook(payload: str, work: Path, limits: Limits, env: dict, sandbox: bool, gpu: bool,
                 report: dict) -> dict | None:
    """Execute ``payload`` (notebook JSON) in the sandbox; the executor's result, or None (and
    ``report['problem']`` says why)."""
    r, w = os.pipe()
    executor = [sys.executable, "-m", "techday.sandbox_exec", "--result-fd", str(w),
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
        popen_env = {**senv, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
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


# ---------------------------------------------------------------------------------------------
# Checks before any code runs


@dataclass
class Submission:
    student: str
    lab: str
    path: str
    sha256: str = ""
    status: str = "pending"            # pending, graded, flagged, failed, rejected
    notes: list[str] = field(default_factory=list)
    gradable: bool = True
    score: float | None = None
    max_score: float | None = None
    seconds: float | None = None

    @property
    def key(self) -> str:
        return f"{self.student}/{self.sha256[:16]}"

    def line(self) -> str:
        score = f" {self.score:g}/{self.max_score:g}" if self.score is not None and self.max_score else ""
        notes = "; ".join(self.notes)
        return f"{self.status:<8} {self.student} {Path(self.path).name}{score}" + (f": {notes}" if notes else "")


def _release_cells(release_nb: dict) -> dict[str, dict]:
    cells = {}
    for cell in release_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            cells[meta["grade_id"]] = cell
    return cells


def _kind(meta: dict) -> str:
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("solution"):
        return "solution"
    if meta.get("locked"):
        return "locked"
    return "other"


def tamper_findings(nb, release_nb: dict) -> list[str]:
    """Static look at the cells a trainee could write: what reaches into the kernel or the tests."""
    release_locked = _release_cells(release_nb)
    released = {cell.get("id"): "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                for cell in release_nb["cells"] if cell.get("id")}
    imported = set()  # names the locked cells (setup, imports, tests) bring in
    for cell in release_nb["cells"]:
        if cell.get("cell_type") != "code" or not cell.get("metadata", {}).get("nbgrader", {}).get("locked"):
            continue
        try:
            tree = ast.parse("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
    findings = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if cell.cell_type != "code" or (gid in release_locked and _kind(meta) in ("test", "locked")):
            continue  # restored from the source by nbgrader anyway
        if cell.get("id") in released and cell.source == released[cell["id"]]:
            continue  # as released: the course wrote it, not the trainee
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        hits = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in SUSPECT_ATTRS:
                hits.add(f"uses {node.attr}")
            if isinstance(node, ast.Name) and node.id in SUSPECT_NAMES:
                hits.add(f"uses {node.id}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    if a.name.split(".")[0] in SUSPECT_NAMES:
                        hits.add(f"imports {a.name}")
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in SUSPECT_NAMES:
                    hits.add(f"imports {node.module}")
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    # rebinding what a locked cell imported, or patching an imported module
                    if isinstance(target, ast.Name) and target.id in imported:
                        hits.add(f"rebinds {target.id}")
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                            and target.value.id in imported:
                        hits.add(f"patches {target.value.id}.{target.attr}")
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in imported:
                hits.add(f"redefines {node.name}")
        if hits:
            where = f"'{gid}'" if gid else f"cell {index + 1}"
            findings.append(f"{where} {', '.join(sorted(hits))}")
    return findings


def check_notebook(path: Path, lab: str, release_nb: dict) -> tuple[list[str], bool, object]:
    """(notes, gradable, notebook) for one file. Nothing is executed."""
    import nbformat
    from nbgrader.utils import compute_checksum

    notes: list[str] = []
    raw = path.read_bytes()
    if not raw.strip():
        return ["empty file"], False, None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [f"not valid JSON ({str(exc)[:80]})"], False, None
    if not isinstance(data, dict) or "cells" not in data:
        return ["not a notebook (no cells)"], False, None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        missing_ids = sum(1 for c in data["cells"] if isinstance(c, dict) and not c.get("id"))
        if missing_ids:
            notes.append(f"{missing_ids} cell(s) without an id (ids added in the graded copy)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nb)
    except Exception as exc:
        return [f"not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})"], False, None
    release = _release_cells(release_nb)
    seen: dict[str, list] = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            seen.setdefault(gid, []).append(cell)
    for gid, rcell in release.items():
        rmeta = rcell["metadata"]["nbgrader"]
        kind = _kind(rmeta)
        found = seen.get(gid, [])
        if not found:
            if kind == "test":
                notes.append(f"deleted test cell '{gid}' (nbgrader adds it back)")
            elif kind == "solution":
                notes.append(f"deleted answer cell '{gid}' (its tests will fail)")
            else:
                notes.append(f"deleted locked cell '{gid}' (cannot be restored: later cells may fail)")
            continue
        if len(found) > 1:
            notes.append(f"copied cell '{gid}' ({len(found)} copies: the first is graded, the copies run as "
                         "plain cells)")
        cell = found[0]
        if cell.cell_type != rcell["cell_type"]:
            notes.append(f"retyped cell '{gid}' ({rcell['cell_type']} -> {cell.cell_type}; nbgrader restores it)")
        elif kind in ("test", "locked") and "checksum" in rmeta:
            if compute_checksum(cell) != rmeta["checksum"]:
                notes.append(f"edited {kind} cell '{gid}' (nbgrader restores it from the source)")
    for gid in seen:
        if gid not in release:
            notes.append(f"unknown graded cell '{gid}' (not in the release; ignored by nbgrader)")
    notes += [f"review: {f}" for f in tamper_findings(nb, release_nb)]
    return notes, True, nb


def _norm(student: str) -> str:
    return "".join(unicodedata.normalize("NFKC", student).casefold().split())


def import_folder(source: Path, root: Path, lab: str) -> list[str]:
    """Copy hand-ins from a plain folder into nbgrader's ``submitted/<student>/<lab>/``: either
    ``<student>.ipynb`` or ``<student>/<any name>.ipynb`` (an exchange inbound, a download). Names are
    kept, so a wrong notebook name is still caught by the checks; existing files are not overwritten.
    Returns one line per file."""
    lines = []
    items = [(p.stem, p) for p in sorted(source.glob("*.ipynb"))]
    items += [(d.name, p) for d in sorted(source.iterdir()) if d.is_dir() for p in sorted(d.glob("*.ipynb"))]
    for student, path in items:
        student = unicodedata.normalize("NFC", student).strip()
        dest = root / "submitted" / student / lab / (path.name if path.parent != source else f"{lab}.ipynb")
        if dest.exists():
            lines.append(f"kept     {student}: {dest.name} already collected")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
        lines.append(f"imported {student}: {path.name} -> {dest.relative_to(root)}")
    return lines


def collect(root: Path, lab: str, release_nb: dict) -> list[Submission]:
    """Every file under ``submitted/<student>/<lab>/``, checked; nothing runs."""
    subs: list[Submission] = []
    base = root / "submitted"
    students = sorted(p.name for p in base.iterdir() if (p / lab).is_dir()) if base.is_dir() else []
    for student in students:
        folder = base / student / lab
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".ipynb")
        if not files:
            subs.append(Submission(student, lab, str(folder), status="rejected", gradable=False,
                                   notes=["no notebook in the submission"]))
            continue
        for path in files:
            sub = Submission(student, lab, str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest())
            if path.name != f"{lab}.ipynb":
                others = [p.name for p in files if p.name == f"{lab}.ipynb"]
                why = (f"second notebook in the submission: only {lab}.ipynb is graded" if others else
                       f"wrong notebook name {path.name!r} (released as {lab}.ipynb): rename it to grade it")
                if not path.name.isascii():
                    why += " (non-ASCII file name)"
                sub.notes, sub.gradable = [why], False
            else:
                sub.notes, sub.gradable, _ = check_notebook(path, lab, release_nb)
                if not student.isascii():
                    sub.notes.append("non-ASCII trainee id (kept as is)")
            if not sub.gradable:
                sub.status = "rejected"
            subs.append(sub)
    # One trainee under two ids that differ only in case, spacing or Unicode form.
    by_norm: dict[str, list[Submission]] = {}
    for sub in subs:
        if sub.gradable:
            by_norm.setdefault(_norm(sub.student), []).append(sub)
    for group in by_norm.values():
        ids = sorted({s.student for s in group})
        if len(ids) > 1:
            for sub in group:
                sub.notes.append(f"same trainee as {[i for i in ids if i != sub.student]}? (ids differ only in "
                                 "case, spacing or Unicode form): both graded, keep one")
    return subs


# ---------------------------------------------------------------------------------------------
# State (resumable)


class State:
    def __init__(self, path: Path, lab: str):
        self.path = path
        self.lock = threading.Lock()
        self.data = {"schema": STATE_SCHEMA, "lab": lab, "submissions": {}}
        self.problem = ""
        if path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if not (isinstance(loaded, dict) and loaded.get("schema") == STATE_SCHEMA
                        and isinstance(loaded.get("submissions"), dict)):
                    raise ValueError(f"not a {STATE_SCHEMA} file")
                self.data = loaded
            except (ValueError, UnicodeDecodeError) as exc:
                # Never overwrite what we cannot read: keep it beside, start over (grading again
                # loses nothing: the gradebook is updated, not appended to).
                kept = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
                os.replace(path, kept)
                self.problem = (f"{path} was not readable ({str(exc)[:120]}); kept as {kept.name}: "
                                "every submission is graded again")

    def done(self, sub: Submission, retry_failed: bool = False) -> dict | None:
        entry = self.data["submissions"].get(sub.key)
        if entry and entry.get("status") in FINAL and not (retry_failed and entry["status"] == "failed"):
            return entry
        return None

    def record(self, sub: Submission) -> None:
        with self.lock:
            entry = asdict(sub)
            entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.data["submissions"][sub.key] = entry
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)


# ---------------------------------------------------------------------------------------------
# One submission


@dataclass
class GradeSettings:
    lab: str
    course_id: str
    repo_root: Path
    limits: Limits
    env: dict
    sandbox: bool = True
    gpu: bool = False
    keep_work: bool = False


def private_config(settings: GradeSettings, private: Path, report: Path) -> str:
    lim = settings.limits
    return (
        "# Generated by `techday grade autograde`: one submission's private course root.\n"
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(settings.repo_root / 'grading' / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(private)!r}\n"
        f"c.CourseDirectory.course_id = {settings.course_id!r}\n"
        "from nbgrader.preprocessors import IgnorePattern, LimitOutput, SaveAutoGrades, AssignLatePenalties, "
        "CheckCellMetadata\n"
        "from nbconvert.preprocessors import ClearMetadataPreprocessor\n"
        "from techday.autograde import SandboxExecute\n"
        "c.Autograde.autograde_preprocessors = [SandboxExecute, IgnorePattern, ClearMetadataPreprocessor, "
        "LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]\n"
        "c.OverwriteCells.add_missing_cells = True\n"
        f"c.SandboxExecute.cell_timeout = {lim.cell_timeout_s}\n"
        f"c.SandboxExecute.notebook_timeout = {lim.notebook_timeout_s}\n"
        f"c.SandboxExecute.memory_mb = {lim.memory_mb}\n"
        f"c.SandboxExecute.output_bytes = {lim.output_bytes}\n"
        f"c.SandboxExecute.sandbox = {settings.sandbox}\n"
        f"c.SandboxExecute.gpu = {settings.gpu}\n"
        f"c.SandboxExecute.env = {settings.env!r}\n"
        f"c.SandboxExecute.report_path = {str(report)!r}\n"
    )


def _snapshot(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite file that others may be writing."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def _read_scores(db: Path, lab: str, student: str) -> dict:
    """{notebook: {cell: (auto_score, max_score, needs_manual)}} and the submission timestamp."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        sub = gb.find_submission(lab, student)
        ts = sub.timestamp
        for nb in sub.notebooks:
            out[nb.name] = {g.name: (g.auto_score, g.max_score, g.needs_manual_grade) for g in nb.grades}
            out[nb.name]["__comments__"] = {c.name: c.auto_comment for c in nb.comments}
    return {"notebooks": out, "timestamp": ts}


def merge_scores(main_db: Path, course_id: str, lab: str, student: str, scores: dict) -> tuple[float, float]:
    """Write one submission's autograde results into the course gradebook."""
    import warnings

    from nbgrader.api import Gradebook

    total = maximum = 0.0
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{main_db}", course_id) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes inside nbgrader's own API
        gb.update_or_create_student(student)
        extra = {"timestamp": scores["timestamp"]} if scores["timestamp"] else {}
        sub = gb.update_or_create_submission(lab, student, **extra)
        for nb in sub.notebooks:
            mine = scores["notebooks"].get(nb.name, {})
            comments = mine.get("__comments__", {})
            for g in nb.grades:
                if g.name in mine:
                    g.auto_score, _, g.needs_manual_grade = mine[g.name]
                    g.manual_score = None
                total += g.auto_score or 0
                maximum += g.max_score or 0
            for c in nb.comments:
                if c.name in comments:
                    c.auto_comment = comments[c.name]
        gb.db.commit()
    return total, maximum


def _event_notes(report: dict) -> list[str]:
    notes = []
    for ev in report.get("events", []):
        cell = f"cell {ev['cell'] + 1}" if "cell" in ev else "notebook"
        notes.append({
            "cell-timeout": f"{cell} timed out after {ev.get('seconds')} s",
            "notebook-timeout": f"stopped after {ev.get('seconds')} s (whole notebook): every test scored 0",
            "kernel-died": f"kernel died in {cell} (os._exit, crash or memory limit): later cells scored 0",
            "output-truncated": f"{cell} printed too much: {ev.get('bytes')} bytes dropped",
            "memory-limit": f"{cell} hit the memory limit (MemoryError)",
            "kernel-stuck": f"{cell} ignored the interrupt after {ev.get('seconds')} s (timed out): the kernel "
                            "was stopped, later cells scored 0",
            "kernel-silent": f"the kernel stopped answering in {cell}: later cells scored 0",
        }.get(ev["event"], f"{cell}: {ev['event']}"))
    return notes


def graded_copy(path: Path) -> bytes:
    """The bytes nbgrader grades: the submission, with what nbgrader itself would trip on undone.

    A copied graded or locked cell keeps nbgrader's metadata, and nbgrader 0.9's DeduplicateIds then
    leaves a cell that OverwriteCells cannot read (KeyError 'grade_id'): the copies lose their grading
    metadata here, as DeduplicateIds intends (the first cell with an id is the graded one)."""
    raw = path.read_bytes()
    data = json.loads(raw.decode("utf-8"))
    seen, changed = set(), False
    for cell in data.get("cells", []):
        meta = cell.get("metadata", {})
        gid = meta.get("nbgrader", {}).get("grade_id")
        if gid and gid in seen:
            meta.pop("nbgrader")
            meta.pop("editable", None)
            meta.pop("deletable", None)
            changed = True
        elif gid:
            seen.add(gid)
    return json.dumps(data, ensure_ascii=False).encode("utf-8") if changed else raw


class NbgraderWorker:
    """One long-lived ``python -m techday.grade_worker``: nbgrader's Autograde, started once and
    reused for many submissions (each still gets its own sandbox, executor and kernel).

    A worker that dies or does not answer in time is killed, that submission is ``failed`` (and
    ``--retry-failed`` tries it again), and the next submission gets a new worker. Every
    ``max_jobs`` submissions the worker is replaced, so nothing accumulates in it."""

    def __init__(self, env: dict, log: Path, max_jobs: int = 100, argv: list[str] | None = None):
        self.env, self.log, self.max_jobs = env, log, max_jobs
        self.argv = argv or [sys.executable, "-m", "techday.grade_worker"]
        self.proc: subprocess.Popen | None = None
        self.jobs = 0
        self.lines: queue.Queue = queue.Queue()

    def _start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        err = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, env=self.env, start_new_session=True)
        err.close()
        self.jobs = 0
        self.lines = lines = queue.Queue()
        out = self.proc.stdout

        def read():
            with out:
                for raw in out:
                    lines.put(raw)
            lines.put(None)

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def _answer(self, timeout: float) -> dict:
        try:
            raw = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.close(kill=True)
            raise TimeoutError(f"no answer in {timeout:.0f} s") from None
        if raw is None:
            code = self.proc.wait() if self.proc else None
            self.close()
            raise RuntimeError(f"the nbgrader worker ended (exit {code}); see {self.log}")
        return json.loads(raw)

    def autograde(self, root: Path, lab: str, student: str, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None or self.jobs >= self.max_jobs:
            self.close()
            self._start()
            self._answer(120)  # {"ready": true}: imports done
        self.jobs += 1
        try:
            self.proc.stdin.write((json.dumps({"root": str(root), "lab": lab, "student": student}) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise RuntimeError(f"the nbgrader worker is gone ({exc}); see {self.log}") from None
        return self._answer(timeout)

    def close(self, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # a worker that reads to the end of its input exits by itself
        except OSError:
            kill = True
        if not kill:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill = True
        if kill:
            kill_tree(proc.pid)
            proc.wait()
        self.reader.join(5)


class WorkerPool:
    """N nbgrader workers for N grading threads: a thread takes one, grades, gives it back."""

    def __init__(self, n: int, env: dict, logs: Path):
        self.all = [NbgraderWorker(env, logs / f"nbgrader-worker-{i}.log") for i in range(n)]
        self.free: queue.Queue = queue.Queue()
        for w in self.all:
            self.free.put(w)

    def autograde(self, root: Path, lab: str, student: str, timeout: float) -> dict:
        worker = self.free.get()
        try:
            return worker.autograde(root, lab, student, timeout)
        finally:
            self.free.put(worker)

    def close(self) -> None:
        for w in self.all:
            w.close()

    def kill(self) -> None:
        """Stop every worker now, with the sandboxes they are running."""
        for w in self.all:
            w.close(kill=True)


def _log_error(result: dict) -> str:
    """The lines of nbgrader's captured log (or traceback) worth showing a person."""
    from .build import error_lines

    return error_lines(result.get("log", "") + "\n" + result.get("error", "")) or "no log"


def grade_one(sub: Submission, root: Path, work_root: Path, settings: GradeSettings, merge_lock: threading.Lock,
              template_db: Path, workers: WorkerPool) -> Submission:
    """Autograde one checked submission in a private course root; merge its scores into ``root``."""
    t0 = time.monotonic()
    lab, student = sub.lab, sub.student
    private = work_root / hashlib.sha256(sub.key.encode()).hexdigest()[:16]
    shutil.rmtree(private, ignore_errors=True)
    (private / "submitted" / student / lab).mkdir(parents=True)
    shutil.copytree(root / "source" / lab, private / "source" / lab)
    shutil.copy2(template_db, private / "gradebook.db")
    src_dir = Path(sub.path).parent
    dest = private / "submitted" / student / lab / f"{lab}.ipynb"
    dest.write_bytes(graded_copy(Path(sub.path)))
    if (src_dir / "timestamp.txt").is_file():
        shutil.copyfile(src_dir / "timestamp.txt", dest.parent / "timestamp.txt")
    report_path = private / "sandbox-report.json"
    (private / "nbgrader_config.py").write_text(private_config(settings, private, report_path), encoding="utf-8")
    try:
        result = workers.autograde(private, lab, student, timeout=settings.limits.notebook_timeout_s + 180)
    except (TimeoutError, RuntimeError, ValueError) as exc:
        sub.status, sub.notes = "failed", sub.notes + [f"nbgrader autograde did not finish: {exc}"[:300]]
        sub.seconds = round(time.monotonic() - t0, 1)
        return sub
    report = {}
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
    try:
        scores = _read_scores(private / "gradebook.db", lab, student)
        if not result.get("success") or not (private / "autograded" / student / lab / f"{lab}.ipynb").is_file():
            raise RuntimeError(f"nbgrader autograde failed: {_log_error(result)}")
    except Exception as exc:
        sub.status = "failed"
        sub.notes = sub.notes + [str(exc)[:300]]
        if report.get("problem"):
            sub.notes.append(report["problem"])
        sub.seconds = round(time.monotonic() - t0, 1)
        return sub
    with merge_lock:
        out = root / "autograded" / student / lab
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(private / "autograded" / student / lab, out)
        sub.score, sub.max_score = merge_scores(root / "gradebook.db", settings.course_id, lab, student, scores)
    notes = _event_notes(report)
    if report.get("problem") and not any("notebook" in n for n in notes):
        notes.append(report["problem"])
    if not report.get("sandbox", settings.sandbox):
        notes.append("graded WITHOUT the sandbox (--no-sandbox)")
    sub.notes = sub.notes + notes
    flagged = [n for n in sub.notes if not n.startswith(("non-ASCII", "graded WITHOUT"))] or not settings.sandbox
    sub.status = "flagged" if flagged else "graded"
    sub.seconds = round(time.monotonic() - t0, 1)
    if not settings.keep_work:
        shutil.rmtree(private, ignore_errors=True)
    return sub


# ---------------------------------------------------------------------------------------------
# A lab


@dataclass
class GradeRun:
    lab: str
    submissions: list[Submission]
    skipped: int
    csv: Path | None
    seconds: float
    state: Path
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for s in self.submissions if s.status == status)


def lab_limits(course, lab: str, scale: str, cell_timeout: int | None = None) -> Limits:
    spec = course.labs[lab]
    return Limits(cell_timeout_s=cell_timeout or spec.cell_timeout(scale), notebook_timeout_s=spec.timeout(scale),
                  memory_mb=spec.memory_mb)


def autograde(course, lab: str, root: Path, tier: str, scale: str, workers: int = 1, sandbox: bool = True,
              retry_failed: bool = False, out: Path | None = None, cell_timeout: int | None = None,
              progress=None, report=print) -> GradeRun:
    """Check, then grade every new submission of ``lab`` in ``root``, ``workers`` at a time."""
    from .build import nbgrader, nbgrader_error

    t0 = time.monotonic()
    out = out or course.build_dir / "grading"
    lab_out = out / lab
    if sandbox:
        check_sandbox()
    release_path = root / "release" / lab / f"{lab}.ipynb"
    if not release_path.is_file() or not (root / "gradebook.db").is_file():
        raise FileNotFoundError(f"{root}: no release or gradebook for {lab}: run `techday build {lab}` first")
    release_nb = json.loads(release_path.read_text(encoding="utf-8"))
    subs = collect(root, lab, release_nb)
    state = State(lab_out / "state.json", lab)
    if state.problem:
        report(state.problem)
    env = {"TECHDAY_TIER": tier, "TECHDAY_SCALE": scale, "MPLBACKEND": "Agg"}
    if tier == "cpu":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    settings = GradeSettings(lab=lab, course_id=course.id, repo_root=course.root,
                             limits=lab_limits(course, lab, scale, cell_timeout), env=env, sandbox=sandbox,
                             gpu=(tier == "gpu"))
    memory = memory_limit(settings.limits, settings.gpu, sandbox)
    report(f"memory limit per submission: {memory}")
    todo, skipped = [], 0
    for sub in subs:
        previous = state.done(sub, retry_failed) if sub.sha256 else None
        if previous:
            for k in ("status", "notes", "score", "max_score", "seconds"):
                setattr(sub, k, previous[k])
            skipped += 1
        elif not sub.gradable:
            state.record(sub)
        else:
            todo.append(sub)
    template = lab_out / "template-gradebook.db"
    if todo:
        _snapshot(root / "gradebook.db", template)
    work_root = lab_out / "work"
    lock = threading.Lock()
    if progress:
        progress.start(subs, todo)
    n = max(1, min(workers, len(todo)))
    env = {**os.environ, "PYTHONPATH": str(settings.repo_root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    nbgraders = WorkerPool(n, env, lab_out / "logs")
    checked = {id(sub): list(sub.notes) for sub in todo}
    recorded: set[int] = set()
    interrupted = False
    with contextlib.closing(nbgraders), ThreadPoolExecutor(max_workers=n) as pool:
        futures = {pool.submit(grade_one, sub, root, work_root, settings, lock, template, nbgraders): sub
                   for sub in todo}
        try:
            for fut in as_completed(futures):
                sub = futures[fut]
                try:
                    fut.result()
                except Exception as exc:  # a bug of ours: say so, keep grading the rest
                    sub.status, sub.notes = "failed", sub.notes + [f"grader error: {type(exc).__name__}: {exc}"[:300]]
                state.record(sub)
                recorded.add(id(sub))
                if progress:
                    progress.advance(sub)
                else:
                    report(sub.line())
        except KeyboardInterrupt:
            # Ctrl-C: nothing new starts, the running notebooks are stopped, and what was recorded
            # stays recorded; the same command later grades the rest.
            interrupted = True
            pool.shutdown(wait=False, cancel_futures=True)
            nbgraders.kill()
    for sub in todo:
        if id(sub) not in recorded:  # not graded (stopped in flight or never started): next run's work
            sub.status, sub.score, sub.max_score, sub.seconds = "pending", None, None, None
            sub.notes = checked[id(sub)] + ["interrupted before it was graded"]
    shutil.rmtree(work_root, ignore_errors=True)
    csv = None
    if not interrupted:
        csv = out / "grades.csv"
        proc = nbgrader(root, "export", "--to", str(csv))
        if proc.returncode != 0 or not csv.is_file():
            report(f"nbgrader export failed: {nbgrader_error(proc)}")
            csv = None
    run = GradeRun(lab, subs, skipped, csv, time.monotonic() - t0, state.path, interrupted)
    (lab_out / "report.json").write_text(json.dumps(
        {"schema": "techday.grade-run/1", "lab": lab, "tier": tier, "scale": scale, "workers": workers,
         "sandbox": sandbox, "memory_limit": memory, "seconds": round(run.seconds, 1), "skipped": skipped,
         "interrupted": interrupted,
         "submissions": [asdict(s) for s in subs]}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return run
