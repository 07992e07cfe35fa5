"""Course cells a hand-in lost, put back before anything runs (nbgrader's ``OverwriteCells``, widened).

nbgrader 0.9's ``OverwriteCells.add_missing_cells`` adds back a deleted *graded* cell (a test, a manually
graded answer), and only those: a deleted *locked* cell stayed deleted, so the names it binds were the
notebook's for every test after it. A locked cell that binds the data and the expected value a test
reads (lab 02's ``two_kinds``, lab 10's ``data``) deleted, and the same names bound in the answer cell
(``samples = 18.5``, ``expected = 18.5``, an answer that returns its input) took the test's points with
nothing solved: ``flagged`` only for ``deleted locked cell``, which reads as harm the trainee did to
themselves, no review line (``tests/grading/test_restore_course_cells.py``). The referee sets a test's
names as the course's cells left them (:mod:`techday.grading.referee`), but a cell that never ran left
none.

:class:`RestoreCourseCells` adds back every locked cell of the gradebook that the hand-in lacks, as nbgrader
adds a graded one (its source after one comment line saying so; the executor's ``course_cells`` takes
it for the course's and the referee runs its own copy), and puts every added cell in the course's
order: after the nearest course cell before it that the hand-in holds, else before the nearest one
after it, else at the end. nbgrader put a deleted graded cell after the cell before it in the source
only when that cell was graded or an answer: where it was a locked cell (as lab 10's ``bar`` is before
``bar_tests``) nbgrader failed with ``KeyError`` and the hand-in was ``failed`` at every regrade; and it
put a deleted first course cell above everything, the parameters included (a setup cell put back there
would run without ``tier``).

What it does not cover: where a restored cell lands among the trainee's own cells (after the course
cell before it; a trainee's cell that reads its names and stood before it in the release then runs
first); a locked cell whose grade id the hand-in gave to another cell (nbgrader restores that cell's
source and type in place, wherever it stands: "The order of the cells" in grading/README.md).
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import OverwriteCells


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) else None


def place(order: list[str], cells: list, gid: str) -> int:
    """Where the course cell ``gid`` goes back into ``cells``: after the nearest cell before it in the
    course's ``order`` that ``cells`` holds, else before the nearest one after it, else at the end."""
    at: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = _grade_id(cell)
        if name is not None and name not in at:
            at[name] = index
    k = order.index(gid)
    before = [at[name] for name in order[:k] if name in at]
    if before:
        return max(before) + 1
    after = [at[name] for name in order[k + 1:] if name in at]
    return min(after) if after else len(cells)


class RestoreCourseCells(OverwriteCells):
    """nbgrader's ``OverwriteCells``; with ``add_missing_cells``, every deleted graded *and locked* cell is
    added back, each in the course's order (module docstring). And a cell's grading flags are the
    gradebook's before nbgrader compares checksums: nbgrader restores a course cell's ``locked`` flag and
    points, not ``grade`` or ``solution``, so a test cell handed in with ``grade`` off (or made an answer)
    failed the whole hand-in (``Inconsistent checksums``) at every regrade; and a cell the gradebook does not
    know loses its grading metadata (nbgrader kept its ``grade`` flag without a grade id, then failed with
    ``KeyError: 'grade_id'``): it is the trainee's own cell, as the checks' note says."""

    def preprocess(self, nb, resources):
        self._kinds = None
        return super().preprocess(nb, resources)

    def _course(self) -> tuple[set, set, set]:
        """(graded, answer, task) cell names of the notebook in the gradebook, read once per notebook."""
        if getattr(self, "_kinds", None) is None:
            source = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
            self._kinds = ({c.name for c in source.grade_cells}, {c.name for c in source.solution_cells},
                           {c.name for c in source.task_cells})
        return self._kinds

    def preprocess_cell(self, cell, resources, cell_index):
        from nbgrader.api import MissingEntry

        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            return cell, resources
        gid = _grade_id(cell)
        try:
            if gid is None:
                raise MissingEntry()
            self.gradebook.find_source_cell(gid, self.notebook_id, self.assignment_id)
        except MissingEntry:
            self.log.warning("Cell %r is not the course's: its grading metadata removed", gid)
            del cell.metadata["nbgrader"]
            return cell, resources
        graded, answers, tasks = self._course()
        meta["grade"], meta["solution"] = gid in graded, gid in answers
        if tasks or "task" in meta:
            meta["task"] = gid in tasks
        if meta["grade"] and not isinstance(meta.get("points"), (int, float)):
            meta["points"] = 0  # nbgrader sets the gradebook's points, and says so
        return super().preprocess_cell(cell, resources, cell_index)

    def missing_locked_cell(self, source_cell) -> NotebookNode:
        """A deleted locked cell as it goes back: the course's source after nbgrader's notice, its
        metadata as the release gave it (locked, not graded, no answer)."""
        notice = self.missing_cell_notification.format(cell_id=source_cell.name)
        cell = {"cell_type": source_cell.cell_type,
                "metadata": {"deletable": False, "editable": False,
                             "nbgrader": {"grade": False, "grade_id": source_cell.name, "locked": True,
                                          "checksum": source_cell.checksum, "solution": False,
                                          "schema_version": 3}},
                "source": notice + source_cell.source}
        if cell["cell_type"] == "code":
            cell.update(execution_count=None, outputs=[], source="# " + cell["source"])
        return MetadataValidator().upgrade_cell_metadata(NotebookNode(cell))

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = list(source_nb.source_cells)
        order = [cell.name for cell in source_cells]
        graded = {cell.name: cell.max_score for cell in source_nb.grade_cells}
        solutions = {cell.name for cell in source_nb.solution_cells}
        held = {_grade_id(cell) for cell in nb.cells} - {None}
        for source_cell in source_cells:
            name = source_cell.name
            if name in held:
                continue
            if name in graded:
                self.log.warning("Missing grade cell %s encountered, adding to notebook", name)
                cell = self.missing_cell_transform(source_cell, graded[name], is_solution=name in solutions)
            elif source_cell.locked and name not in solutions:
                self.log.warning("Missing locked cell %s encountered, adding to notebook", name)
                cell = self.missing_locked_cell(source_cell)
            else:  # an answer that is not graded (its tests are): the trainee's to leave out
                continue
            nb.cells.insert(place(order, nb.cells, name), cell)
            held.add(name)
        return nb, resources
