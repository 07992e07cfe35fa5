"""``techday grade selftest``: the grading contract, checked with the real nbgrader.

For every lab, two fake trainees submit:

- ``selftest-solution`` hands in the release notebook with every solution region filled in from the
  source (nbgrader's delimiters removed), as a perfect trainee would;
- ``selftest-release`` hands in the release notebook untouched.

nbgrader's own ``autograde`` grades both (hidden tests restored from its gradebook), and the contract
is read back from the gradebook: the solution earns full marks on every autograded cell, the release
earns zero on every one. ``nbgrader export`` writes the grades CSV. Each lab gets its own course root
(``build/selftest/<lab>/``, its own gradebook), so labs are graded side by side without sharing a
SQLite file; their CSVs are merged into ``build/selftest/grades.csv``. A lab that breaks the contract
fails the command, naming the cell and the error nbgrader recorded.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from .. import atomicfile
from ..course.build import build, nbgrader, nbgrader_error, nbgrader_workers
from ..course.labsrc import hidden_test_count, strip_solution_markers, write_notebook
from ..course.layout import notebook, read_built
from ..course.syllabus import Course

SOLUTION_STUDENT = "selftest-solution"
RELEASE_STUDENT = "selftest-release"


@dataclass
class CellGrade:
    grade_id: str
    max_score: float
    solution_score: float | None
    release_score: float | None
    solution_error: str = ""
    release_error: str = ""


@dataclass
class LabContract:
    lab: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    cells: list[CellGrade] = field(default_factory=list)
    hidden_tests: int = 0

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells)


def solution_notebook(source_nb: dict, release_nb: dict) -> dict:
    """The release notebook with each solution cell replaced by the source's solution."""
    solutions = {c["id"]: c["source"] for c in source_nb["cells"]
                 if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    out = json.loads(json.dumps(release_nb))
    for cell in out["cells"]:
        if cell.get("id") in solutions:
            src = solutions[cell["id"]]
            cell["source"] = strip_solution_markers("".join(src) if isinstance(src, list) else src)
    return out


def _cell_errors(notebook: Path) -> dict[str, str]:
    """grade_id -> the first error a graded cell raised in the autograded notebook."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    errors = {}
    for cell in nb.get("cells", []):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors[gid] = f"{out.get('ename')}: {out.get('evalue')}".strip()[:300]
                break
    return errors


def read_gradebook(root: Path, lab: str) -> dict[str, dict[str, float | None]]:
    """student -> {grade_id: auto_score} for the autograded cells of ``lab``, plus max scores."""
    from nbgrader.api import Gradebook, MissingEntry

    scores: dict[str, dict] = {"max": {}}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in (SOLUTION_STUDENT, RELEASE_STUDENT):
            scores[student] = {}
            try:
                sub = gb.find_submission_notebook(lab, lab, student)
            except MissingEntry:
                continue
            for grade in sub.grades:
                if grade.cell_type != "code" or not grade.max_score:
                    continue
                scores["max"][grade.name] = grade.max_score
                scores[student][grade.name] = grade.auto_score
    return scores


def check_contract(root: Path, lab: str) -> LabContract:
    scores = read_gradebook(root, lab)
    sol_err = _cell_errors(notebook(root, "autograded", lab, SOLUTION_STUDENT))
    rel_err = _cell_errors(notebook(root, "autograded", lab, RELEASE_STUDENT))
    contract = LabContract(lab=lab, ok=True)
    if not scores["max"]:
        contract.problems.append("no autograded cells found in the gradebook")
    for gid, max_score in scores["max"].items():
        cell = CellGrade(gid, max_score, scores[SOLUTION_STUDENT].get(gid), scores[RELEASE_STUDENT].get(gid),
                         sol_err.get(gid, ""), rel_err.get(gid, ""))
        contract.cells.append(cell)
        if cell.solution_score != max_score:
            why = f" ({cell.solution_error})" if cell.solution_error else ""
            contract.problems.append(f"'{gid}': the solution earned {cell.solution_score} of {max_score}{why}")
        if cell.release_score != 0:
            contract.problems.append(
                f"'{gid}': the untouched release earned {cell.release_score} of {max_score}: "
                "this test passes without the trainee's code, so it cannot fail")
    contract.ok = not contract.problems
    return contract


def _selftest_lab(course: Course, lab: str, root: Path, env: dict, scale: str,
                  lang: str | None = None, workers=None) -> tuple[LabContract, Path | None]:
    """One lab in its own course root (its own gradebook), so that labs can be graded side by side."""
    # nbgrader's own Execute: the course's solution and release only, no trainee's code (and no sandbox
    # needed where the course is checked)
    # Each cell under the per-cell limit a room is graded with (grading/config.py's lab_limits), so a
    # solution that only passes with more time than trainees get breaks the contract here.
    result = build(course, [lab], root=root, sandboxed=False, lang=lang,
                   cell_timeout=course.labs[lab].cell_timeout(scale), workers=workers)
    if lab in result.errors:
        return LabContract(lab=lab, ok=False, problems=[result.errors[lab]]), None
    source = read_built(root, "source", lab)
    release = read_built(root, "release", lab)
    write_notebook(nbformat.from_dict(solution_notebook(source, release)),
                   notebook(root, "submitted", lab, SOLUTION_STUDENT))
    write_notebook(nbformat.from_dict(release), notebook(root, "submitted", lab, RELEASE_STUDENT))
    limit = 2 * (course.labs[lab].timeout(scale) + 60)
    try:
        proc = nbgrader(root, "autograde", lab, "--create", "--force", env=env, timeout=limit, workers=workers)
    except Exception as exc:  # subprocess.TimeoutExpired and friends
        return LabContract(lab=lab, ok=False, problems=[f"nbgrader autograde: {exc}"]), None
    contract = check_contract(root, lab)
    contract.hidden_tests = hidden_test_count(nbformat.from_dict(source))
    if proc.returncode != 0:
        contract.problems.insert(0, f"nbgrader autograde exited {proc.returncode}: {nbgrader_error(proc)}")
    if contract.hidden_tests == 0:
        contract.problems.append("no hidden tests: the grader checks nothing the trainee has not seen")
    contract.ok = not contract.problems
    csv = root / "grades.csv"
    proc = nbgrader(root, "export", "--to", str(csv), workers=workers)
    if proc.returncode != 0 or not csv.is_file():
        contract.problems.append(f"nbgrader export failed: {nbgrader_error(proc)}")
        contract.ok = False
        csv = None
    return contract, csv


def selftest(course: Course, labs: list[str], tier: str, scale: str, root: Path | None = None,
             jobs: int = 1, report=print, lang: str | None = None) -> tuple[list[LabContract], Path | None]:
    """For each lab, a throw-away course root with two fake trainees, autograded by nbgrader and
    checked; ``jobs`` labs at a time, in ``lang`` (default: the syllabus' default language). Returns
    the contracts and the merged grades CSV."""
    lang = course.language(lang)
    root = root or course.build_dir / "selftest"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    env = {"TECHDAY_TIER": tier, "TECHDAY_SCALE": scale, "MPLBACKEND": "Agg", "TECHDAY_ROOT": str(course.root),
           "TECHDAY_LANG": lang}
    if tier == "cpu":
        env["NUMBA_ENABLE_CUDASIM"] = "1"

    def one(lab: str):
        report(f"autograding {lab} for {SOLUTION_STUDENT} and {RELEASE_STUDENT} ...")
        return _selftest_lab(course, lab, root / lab, env, scale, lang, workers)

    # One long-lived nbgrader per job runs every lab's generate_assignment, autograde and export.
    with nbgrader_workers(root / "logs", max(1, jobs), env) as workers, \
            ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = list(pool.map(one, labs))
    contracts = [contract for contract, _ in done]
    csvs = [csv for _, csv in done if csv is not None]
    merged = None
    if csvs:
        merged = root / "grades.csv"
        lines = [csvs[0].read_text(encoding="utf-8").splitlines()[0]]
        for csv in csvs:
            lines += csv.read_text(encoding="utf-8").splitlines()[1:]
        atomicfile.write_text(merged, "\n".join(lines) + "\n")
    atomicfile.write_text(
        root / "selftest.json", json.dumps({"schema": "techday.selftest/1", "tier": tier, "scale": scale,
                    "ok": bool(contracts) and all(c.ok for c in contracts),
                    "labs": [asdict(c) for c in contracts]}, indent=2) + "\n")
    return contracts, merged
