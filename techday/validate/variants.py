"""Wrong-but-plausible solutions: proof that a lab's tests can fail.

The grading contract shows that the empty release scores zero. That is not enough: a test that only
checks "something was returned" passes an off-by-one kernel. So each lab keeps a few *wrong*
solutions, written the way a trainee might get it wrong, in ``tests/wrong_solutions/<lab>.py``::

    # %% wrong="no_grid_stride" cell="saxpy_kernel" fails=["saxpy_kernel_tests"]
    @cuda.jit
    def saxpy_kernel(a, x, y, out):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = a * x[i] + y[i]

Each one replaces solution cell ``cell`` of the solution notebook (all other solutions stay right),
the notebook is executed in a fresh kernel with errors allowed, exactly as nbgrader's autograde
executes it, and every test cell named in ``fails`` must raise. Hidden tests are included.

A lab's wrong solutions are checked in one kernel first (:func:`check_wrong_solutions`): the kernel
runs the solution notebook from the top, and where a wrong solution's cell comes, it forks
(:mod:`techday.validate.forkcell`), once per wrong solution of that cell: the copy runs the wrong source and the cells after it up to its
last test cell, exactly as the notebook with that one cell replaced would run them, reports which test
cells raised and exits; the kernel goes on with the right cell. Each wrong solution thus runs once,
from the very state the right cells before it leave, and nothing of another wrong solution's kernel
state can reach it. Two controls guard what a fork does not isolate. After a cell's wrong solutions,
one more fork runs that cell's right source over the same range: a test failed there (by files the
wrong solutions left on the shared disk, or by the fork's quiet output) sends that cell's wrong
solutions alone. And the kernel's own run goes on after each cell's forks with the right cells: the
solution must pass every test there, or nothing is settled in this kernel.

A wrong solution not settled in the shared kernel (the fork could not be made, as where CUDA is in
use; it died or ran past its time; the solution failed a test in the kernel's run) is run alone, as above: that result is
the verdict.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import proctree
from ..fastimport import skip_iri_grammar
from ..proctree import child_env

if __name__ == "__main__":  # a helper process: before nbformat arrives with the imports below
    skip_iri_grammar()

from ..course.labsrc import LabSourceError, read_lab, strip_solution_markers
from ..course.layout import notebook_name


@dataclass
class WrongSolution:
    name: str
    cell: str
    fails: list[str]
    source: str
    line: int


@dataclass
class VariantResult:
    wrong: WrongSolution
    failed_cells: dict[str, str]  # grade_id -> error of every graded cell that raised
    error: str = ""
    how: str = "alone"            # "alone": its own kernel; "forked": settled in a fork of the lab's shared kernel

    @property
    def caught(self) -> bool:
        return not self.error and all(cell in self.failed_cells for cell in self.wrong.fails)


def read_wrong_solutions(path: Path, kind: str = "wrong") -> list[WrongSolution]:
    """The entries of ``tests/wrong_solutions/<lab>.py`` (``kind="wrong"``: ``wrong=`` and ``fails=``), or
    of ``tests/right_solutions/<lab>.py`` (``kind="right"``: ``right=`` and ``passes=``, read into the same
    fields: the test cells named must all pass)."""
    import jupytext

    name_key, cells_key = ("wrong", "fails") if kind == "wrong" else ("right", "passes")
    what = "a wrong solution" if kind == "wrong" else "a right solution"
    text = path.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="py:percent")
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith("# %%")]
    nb.cells = nb.cells[len(nb.cells) - len(lines):]
    out = []
    for cell, line in zip(nb.cells, lines):
        meta = cell.metadata
        if not {name_key, "cell", cells_key} <= set(meta):
            raise LabSourceError(f"{path}: line {line}: {what} needs {name_key}=, cell= and {cells_key}=[...]")
        fails = meta[cells_key] if isinstance(meta[cells_key], list) else [meta[cells_key]]
        twin = next((w for w in out if w.name == meta[name_key]), None)
        if twin is not None:  # results are keyed by name: a second one would hide the first's outcome
            raise LabSourceError(f"{path}: line {line}: {what} {meta[name_key]!r} is already named at line "
                                 f"{twin.line}: give each its own name")
        out.append(WrongSolution(meta[name_key], meta["cell"], fails, cell.source, line))
    return out


def read_right_solutions(path: Path) -> list[WrongSolution]:
    """Right answers written another way than the lab's solution (``tests/right_solutions/<lab>.py``)::

        # %% right="grads_set_to_none" cell="sgd_step" passes=["sgd_step_tests"]

    A test that fails one of them rejects a right answer: a trainee's certificate would rest on writing
    the course's own solution, not on solving the exercise. Checked by :func:`check_wrong_solutions`
    like a wrong solution; the cells in ``passes`` must then raise nothing."""
    return read_wrong_solutions(path, kind="right")


def variant_notebook(lab_source: Path, lab: str, wrong: WrongSolution) -> dict:
    """The lab as a perfect trainee would hand it in, but with one solution replaced by ``wrong``."""
    nb, _ = read_lab(lab_source, lab)
    ids = {c.id: c for c in nb.cells}
    target = ids.get(wrong.cell)
    if target is None or not target.metadata.get("nbgrader", {}).get("solution"):
        raise LabSourceError(f"wrong solution {wrong.name!r}: {wrong.cell!r} is not a solution cell of {lab}")
    for name in wrong.fails:
        if name not in ids or not ids[name].metadata.get("nbgrader", {}).get("grade"):
            raise LabSourceError(f"wrong solution {wrong.name!r}: {name!r} is not a test cell of {lab}")
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = wrong.source if cell is target else strip_solution_markers(cell.source)
    # Nothing after the last test cell in question can change its outcome: stop there.
    last = max(i for i, c in enumerate(nb.cells) if c.id in wrong.fails)
    nb.cells = nb.cells[: last + 1]
    return nb


def solution_cells(lab_source: Path, lab: str) -> dict:
    """The lab as a perfect trainee hands it in (every solution right, markers removed)."""
    nb, _ = read_lab(lab_source, lab)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = strip_solution_markers(cell.source)
    return nb


def check_wrong_solutions(lab_source: Path, lab: str, wrongs: list[WrongSolution], tier: str = "cpu",
                          scale: str = "ci", timeout: int = 300) -> list[VariantResult]:
    """Every wrong solution of one lab: in forks of one kernel where that settles it, else alone."""
    import nbformat

    from ..course.labsrc import write_notebook

    settled: dict[str, dict] = {}
    if wrongs:
        nb = solution_cells(lab_source, lab)
        index = {c.id: i for i, c in enumerate(nb.cells)}
        plans = []
        for wrong in wrongs:
            variant_notebook(lab_source, lab, wrong)  # names a wrong cell or test id as a LabSourceError
            plans.append({"name": wrong.name, "start": index[wrong.cell], "source": wrong.source,
                          "end": max(index[f] for f in wrong.fails), "fails": wrong.fails})
        with tempfile.TemporaryDirectory(prefix="techday-wrong-") as tmp:
            nb_path, plan, result = Path(tmp) / notebook_name(lab), Path(tmp) / "plan.json", Path(tmp) / "result.json"
            write_notebook(nbformat.from_dict(nb), nb_path)
            plan.write_text(json.dumps(plans), encoding="utf-8")
            try:
                proctree.run([sys.executable, "-m", "techday.validate.variants", "--forked", str(plan), str(nb_path),
                              str(result), "--timeout", str(timeout)], timeout * (2 + 2 * len(wrongs)) + 120,
                             env=child_env(tier, scale))
            except subprocess.TimeoutExpired:
                pass  # nothing is settled: the solution's own run never finished; all run alone
            if result.is_file():
                settled = json.loads(result.read_text(encoding="utf-8"))
    out = []
    for wrong in wrongs:
        got = settled.get(wrong.name) or {}
        if "failed" in got and not got.get("error"):
            out.append(VariantResult(wrong, got["failed"], how="forked"))
        else:
            out.append(check_wrong_solution(lab_source, lab, wrong, tier, scale, timeout))
    return out


def _run_cells(client, cells: list, start: int, end: int) -> dict[str, str]:
    """Execute cells ``start..end`` (fresh copies of ``cells``); {grade_id: error} of graded cells.
    nbclient stores each executed cell back into its notebook, so ``cells`` is a copy taken before
    anything ran."""
    import copy

    failed = {}
    for i in range(start, end + 1):
        cell = copy.deepcopy(cells[i])
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        client.execute_cell(cell, i)
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    failed[meta["grade_id"]] = f"{out.get('ename')}: {out.get('evalue')}"[:300]
                    break
    return failed


def _fork(client, folder: Path, n: int, start: int, end: int, source: str, timeout: int) -> dict:
    """One fork of the kernel (techday.validate.forkcell) running cells start..end with ``source`` at
    ``start``: {"failed": {...}} or {"error": why}."""
    import nbformat

    result = folder / f"fork-{n}.json"
    args = (str(folder / "cells.json"), start, end, source, str(result), timeout)
    call = f"__import__('techday.validate.forkcell', fromlist=['run']).run(*{args!r})"
    cell = nbformat.v4.new_code_cell(call)
    client.execute_cell(cell, start, store_history=False)
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        return {"error": f"{errors[0].get('ename')}: {errors[0].get('evalue')}"[:300]}
    if not result.is_file():
        return {"error": "the fork left no result"}
    return json.loads(result.read_text(encoding="utf-8"))


def _forked(argv: list[str]) -> int:
    """Worker: the solution notebook from the top in one kernel; at each planned wrong solution's cell,
    one fork per wrong solution and one control fork (the right source), then the right cell and on.
    Writes {name: {"failed": ...}} or {name: {"error": ...}}; nothing when the solution fails a test
    in this run."""
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("notebook")
    ap.add_argument("result")
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args(argv)
    import copy

    import nbformat
    from nbclient import NotebookClient

    from techday.localkernel import PatientKernelManager

    plans = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    nb = nbformat.read(args.notebook, as_version=4)
    folder = Path(args.notebook).parent
    cells = copy.deepcopy(nb.cells)
    (folder / "cells.json").write_text(json.dumps([
        {"code": c.cell_type == "code", "source": c.source,
         "grade_id": c.metadata.get("nbgrader", {}).get("grade_id") if c.metadata.get("nbgrader", {}).get("grade") else None}
        for c in cells]), encoding="utf-8")
    groups: dict[int, list[dict]] = {}
    for plan in plans:
        groups.setdefault(plan["start"], []).append(plan)
    client = NotebookClient(nb, timeout=args.timeout * 2 + 30, kernel_name="python3", allow_errors=True,
                            kernel_manager_class=PatientKernelManager,
                            resources={"metadata": {"path": str(folder)}})
    out: dict[str, dict] = {}
    forks = 0
    with client.setup_kernel():
        client.timeout = args.timeout
        pos = 0
        for start in sorted(groups):
            if _run_cells(client, cells, pos, start - 1):
                return 0  # the solution itself fails: nothing is settled here
            pos = start
            client.timeout = args.timeout * 2 + 30
            got = {}
            for plan in groups[start]:
                got[plan["name"]] = _fork(client, folder, forks, start, plan["end"], plan["source"], args.timeout * 2)
                forks += 1
            # The control: the right source in a fork too, after the wrong ones. A test it fails (the
            # fork's quiet output, files the wrong solutions left) sends this cell's wrong solutions alone.
            end = max(plan["end"] for plan in groups[start])
            control = _fork(client, folder, forks, start, end, cells[start].source, args.timeout * 2)
            forks += 1
            client.timeout = args.timeout
            if control.get("failed") == {}:
                out.update(got)
            else:
                out.update({name: {"error": f"the control fork failed: {control}"[:300]} for name in got})
        if _run_cells(client, cells, pos, len(cells) - 1):
            return 0
    Path(args.result).write_text(json.dumps(out), encoding="utf-8")
    return 0


def _execute(argv: list[str]) -> int:
    """Worker: execute a notebook with errors allowed; write {grade_id: error} for graded cells."""
    ap = argparse.ArgumentParser()
    ap.add_argument("notebook")
    ap.add_argument("result")
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args(argv)
    import nbformat
    from nbclient import NotebookClient

    from techday.localkernel import PatientKernelManager

    nb = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3", allow_errors=True,
                            kernel_manager_class=PatientKernelManager,
                            resources={"metadata": {"path": str(Path(args.notebook).parent)}})
    client.execute()
    failed = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                failed[meta["grade_id"]] = f"{out.get('ename')}: {out.get('evalue')}"[:300]
                break
    Path(args.result).write_text(json.dumps(failed), encoding="utf-8")
    return 0


def check_wrong_solution(lab_source: Path, lab: str, wrong: WrongSolution, tier: str = "cpu", scale: str = "ci",
                         timeout: int = 300) -> VariantResult:
    """Execute the lab with ``wrong`` in place, in its own process and kernel."""
    import nbformat

    from ..course.labsrc import write_notebook

    with tempfile.TemporaryDirectory(prefix="techday-wrong-") as tmp:
        nb_path = Path(tmp) / notebook_name(lab)
        result = Path(tmp) / "result.json"
        nb = variant_notebook(lab_source, lab, wrong)
        # The parameters cell keeps None: the kernel takes tier and scale from the environment.
        write_notebook(nbformat.from_dict(nb), nb_path)
        try:
            proc = proctree.run([sys.executable, "-m", "techday.validate.variants", str(nb_path), str(result),
                                 "--timeout", str(timeout)], timeout * 2 + 60, env=child_env(tier, scale))
        except subprocess.TimeoutExpired:
            return VariantResult(wrong, {}, error=f"no end within {timeout * 2 + 60} s")
        if proc.returncode != 0 or not result.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            return VariantResult(wrong, {}, error=tail[0])
        return VariantResult(wrong, json.loads(result.read_text(encoding="utf-8")))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--forked"]:
        sys.exit(_forked(sys.argv[2:]))
    sys.exit(_execute(sys.argv[1:]))
