"""What a lab's tests and locked cells read comes from the course's cells or the trainee's answers, never
from a plain cell a trainee may rewrite.

The referee sets a test's names, and a locked cell's, as the course's cells left them (by name and,
for plain data, by content: techday/grading/referee.py). A name bound only by a plain (unlocked) cell
is not the course's: the trainee's notebook decides it. Lab 12's accuracy bar trained the trainee's
model on ``target_train`` and measured it on ``target_test``, both bound by a plain cell: a cell that
relabelled them in place (``target_test.y.zero_()``, ``target_train.y.fill_(1)``) took the bar's 4 points
with a constant model and no answer, ``graded``. Such a data cell is locked now; this test keeps every
lab that way."""

from __future__ import annotations

import builtins
import symtable

import pytest

from techday.course.labsrc import read_lab
from techday.course.syllabus import load_course
from tests.conftest import ROOT

# Plain-cell names a test reads where the rest of the same test cell (its hidden part, which all of its
# points need) re-derives what the name stands for, so rewriting the plain cell earns nothing. Each was
# read, not graded: a new entry needs the same reading.
ALLOWED = {
    # the visible checks run on the camera pixels; the hidden ones on sizes of their own
    ("03-atomics-and-reductions", "histogram_atomic_tests"): {"pixels"},
    ("03-atomics-and-reductions", "histogram_shared_tests"): {"pixels"},
    # the demo picture and its weights; the hidden pipeline checks use other pictures and weights
    ("07-accelerated-assessment", "pipeline_tests"): {"WEIGHTS", "picture"},
    # the visible run's results; the hidden part launches torchrun again with its own arguments
    ("14-dl-multi-gpu", "ddp_tests"): {"N_DDP", "ddp_results"},
    # the trainee's own session, handed to the trainee's own check_parity, which must catch the drift
    ("15-dl-deployment", "check_parity_tests"): {"session"},
}


def _scopes(table):
    for child in table.get_children():
        yield child
        yield from _scopes(child)


def _binds_and_reads(source: str, name: str) -> tuple[set, set]:
    """(names the cell binds at its top level, names it or its functions read from the notebook)."""
    top = symtable.symtable(source, name, "exec")
    binds = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    reads = {s.get_name() for s in top.get_symbols() if s.is_referenced() and s.get_name() not in binds}
    for table in _scopes(top):
        reads |= {s.get_name() for s in table.get_symbols()
                  if s.is_global() and s.is_referenced() and not s.is_declared_global()}
    return binds, reads


def _cells(lab: str) -> list[tuple[str, str, set, set]]:
    nb, _ = read_lab(ROOT / "labs" / lab / f"{lab}.py", lab)
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        md = cell.metadata.get("nbgrader", {})
        kind = ("tests" if md.get("grade") and not md.get("solution") else "solution" if md.get("solution")
                else "locked" if md.get("locked") else
                "parameters" if "parameters" in cell.metadata.get("tags", []) else "plain")
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        binds, reads = _binds_and_reads(source, md.get("grade_id", "plain"))
        out.append((kind, md.get("grade_id", ""), binds, reads))
    return out


@pytest.mark.parametrize("lab", load_course(ROOT).labs)
def test_tests_and_locked_cells_read_no_name_only_a_plain_cell_binds(lab):
    cells = _cells(lab)
    course = set(dir(builtins))
    for kind, _, binds, _ in cells:
        if kind != "plain":
            course |= binds
    plain = set().union(*(binds for kind, _, binds, _ in cells if kind == "plain"))
    found = {}
    for kind, gid, _, reads in cells:
        if kind in ("tests", "locked"):
            bad = {n for n in reads if n in plain and n not in course} - ALLOWED.get((lab, gid), set())
            if bad:
                found[gid] = sorted(bad)
    assert not found, (f"{lab}: these course cells read names only a plain cell binds (a trainee's notebook "
                       f"decides them): {found}; lock the cell that binds them")
