"""Lab sources: jupytext percent text with a short nbgrader markup, turned into notebooks.

A lab is ``labs/<lab>/<lab>.py``. Cells start with ``# %%`` (code) or ``# %% [markdown]`` (prose),
as in Triton's tutorials. A cell that takes part in grading says so on its marker line::

    # %% nbgrader="solution" id="saxpy"            the trainee's answer; code between
                                                    ### BEGIN SOLUTION / ### END SOLUTION is removed
    # %% nbgrader="tests" id="saxpy_tests" points=2  autograder tests (locked); lines between
                                                    ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS
                                                    are only seen by the grader
    # %% nbgrader="locked" id="setup"              read-only for the trainee
    # %% tags=["parameters"]                       papermill parameters (tier, scale)
    # %% [markdown] key="intro"                    prose; the key names the cell's translations
                                                    (``labs/<lab>/<lab>.<lang>.toml``, see
                                                    :mod:`techday.i18n`)

Why jupytext text rather than ``.ipynb`` sources: diffs are reviewable, no outputs can sneak in,
and the same file runs as a plain Python script. The markup is ours (short, checked at build time)
and is expanded into nbgrader's own cell metadata, so nbgrader sees ordinary notebooks.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .. import atomicfile

KINDS = ("solution", "tests", "locked")
SCHEMA_VERSION = 3
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MARKER_RE = re.compile(r"^# %%(.*)$")
# jupytext bookkeeping that must not reach the notebooks.
_JUPYTEXT_KEYS = {"lines_to_next_cell", "lines_to_end_of_cell_marker", "cell_marker", "title"}


class LabSourceError(ValueError):
    """A lab source that cannot be built. The message names the file, cell and line."""


@dataclass(frozen=True)
class CellRef:
    """Where a notebook cell came from: its index in the notebook, its id, its source line."""

    index: int
    cell_id: str
    line: int
    kind: str | None
    key: str | None = None  # a markdown cell's translation key (``key="..."`` on its marker line)

    def describe(self) -> str:
        what = f" {self.kind}" if self.kind else ""
        return f"cell {self.index + 1} '{self.cell_id}'{what} (line {self.line})"


def _marker_lines(text: str) -> list[int]:
    """1-based line numbers of the ``# %%`` markers, in order (one per cell jupytext makes)."""
    return [i for i, line in enumerate(text.splitlines(), 1) if _MARKER_RE.match(line)]


def _check_python(source: str, where: str, first_line: int) -> None:
    """Compile a code cell (IPython magics transformed first) so syntax errors surface at build."""
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(source)
    try:
        ast.parse(code)
    except SyntaxError as exc:
        raise LabSourceError(f"{where}: Python syntax error at line {first_line + (exc.lineno or 1)}: {exc.msg}") from None


def read_lab(path: Path, lab: str | None = None) -> tuple[nbformat.NotebookNode, list[CellRef]]:
    """Parse and check a lab source; return the notebook (nbgrader metadata filled in) and where
    each cell came from. Raises :class:`LabSourceError` naming the cell on any problem.

    Long (about 110 lines) because it is one pass over the cells in which each check raises with the
    cell's own line, and the checks share the pass's state (grade ids and markdown keys seen so far)."""
    import jupytext

    path = Path(path)
    lab = lab or path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabSourceError(f"{path}: cannot read lab source: {exc}") from None
    try:
        nb = jupytext.reads(text, fmt="py:percent")
    except Exception as exc:  # jupytext raises several types for malformed metadata
        raise LabSourceError(f"{path}: not a jupytext percent file: {exc}") from None
    markers = _marker_lines(text)
    if not markers or not nb.cells:
        raise LabSourceError(f"{path}: no '# %%' cells found")
    # jupytext turns text before the first marker into a cell of its own.
    offset = len(nb.cells) - len(markers)
    if offset > 0 and any(c.source.strip() for c in nb.cells[:offset]):
        raise LabSourceError(f"{path}: line 1: text before the first '# %%' marker")
    nb.cells = nb.cells[offset:]

    refs: list[CellRef] = []
    seen: dict[str, CellRef] = {}
    seen_keys: dict[str, CellRef] = {}
    has_params = False
    for index, (cell, line) in enumerate(zip(nb.cells, markers)):
        meta = {k: v for k, v in cell.metadata.items() if k not in _JUPYTEXT_KEYS}
        kind = meta.pop("nbgrader", None)
        grade_id = meta.pop("id", None)
        points = meta.pop("points", None)
        key = meta.pop("key", None)
        where_base = f"{path}: cell {index + 1} (line {line})"
        if kind is not None and kind not in KINDS:
            raise LabSourceError(f"{where_base}: unknown nbgrader kind {kind!r}; use one of {', '.join(KINDS)}")
        if kind is not None and grade_id is None:
            raise LabSourceError(f"{where_base}: nbgrader={kind!r} cell needs id=\"...\"")
        if grade_id is not None and (not isinstance(grade_id, str) or not _ID_RE.match(grade_id)):
            raise LabSourceError(f"{where_base}: id {grade_id!r} must be 1-64 letters, digits, '_' or '-'")
        cell_id = grade_id or f"{re.sub(r'[^A-Za-z0-9_-]', '-', lab)[:50]}-{index:03d}"
        ref = CellRef(index=index, cell_id=cell_id, line=line, kind=kind, key=key)
        where = f"{path}: {ref.describe()}"
        if key is not None:
            if cell.cell_type != "markdown":
                raise LabSourceError(f"{where}: key=\"...\" is only for markdown cells")
            if not isinstance(key, str) or not _ID_RE.match(key):
                raise LabSourceError(f"{where}: key {key!r} must be 1-64 letters, digits, '_' or '-'")
            if key in seen_keys:
                raise LabSourceError(f"{where}: duplicate markdown key {key!r} (first used by {seen_keys[key].describe()})")
            seen_keys[key] = ref
        if grade_id is not None:
            if grade_id in seen:
                raise LabSourceError(f"{where}: duplicate grade id {grade_id!r} (first used by {seen[grade_id].describe()})")
            seen[grade_id] = ref
        if kind == "tests":
            if points is None:
                raise LabSourceError(f"{where}: test cell has no points=N")
            if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
                raise LabSourceError(f"{where}: points must be a positive number, not {points!r}")
            if cell.cell_type != "code":
                raise LabSourceError(f"{where}: test cells must be code cells")
            first = cell.source.lstrip()
            if not (first.startswith('"""') or first.startswith("'''")):
                raise LabSourceError(f"{where}: a test cell opens with a docstring saying what it checks")
        elif points is not None:
            raise LabSourceError(f"{where}: points=N is only for nbgrader=\"tests\" cells")
        if kind == "solution":
            if cell.cell_type != "code":
                raise LabSourceError(f"{where}: solution cells must be code cells")
            if BEGIN_SOLUTION not in cell.source or END_SOLUTION not in cell.source:
                raise LabSourceError(f"{where}: solution cell needs '{BEGIN_SOLUTION}' and '{END_SOLUTION}'")
        for begin, end in ((BEGIN_SOLUTION, END_SOLUTION), (BEGIN_HIDDEN, END_HIDDEN)):
            if cell.source.count(begin) != cell.source.count(end):
                raise LabSourceError(f"{where}: unbalanced '{begin}' / '{end}'")
        if BEGIN_SOLUTION in cell.source and kind != "solution":
            raise LabSourceError(f"{where}: '{BEGIN_SOLUTION}' outside a nbgrader=\"solution\" cell")
        if BEGIN_HIDDEN in cell.source and kind != "tests":
            raise LabSourceError(f"{where}: hidden tests outside a nbgrader=\"tests\" cell")
        if cell.cell_type == "code":
            _check_python(cell.source, where, line)
            if "parameters" in meta.get("tags", []):
                has_params = True
        if kind is not None:
            meta["nbgrader"] = {
                "grade": kind == "tests",
                "grade_id": grade_id,
                "locked": kind in ("tests", "locked"),
                "schema_version": SCHEMA_VERSION,
                "solution": kind == "solution",
                "task": False,
            }
            if kind == "tests":
                meta["nbgrader"]["points"] = points
        cell.metadata = nbformat.from_dict(meta)
        cell.id = cell_id
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        refs.append(ref)
    if not has_params:
        raise LabSourceError(f"{path}: no papermill parameters cell (# %% tags=[\"parameters\"]) with tier and scale")
    if not any(r.kind == "tests" for r in refs):
        raise LabSourceError(f"{path}: no nbgrader=\"tests\" cell: a lab is graded")
    nb.metadata = nbformat.from_dict({
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "techday": {"lab": lab},
    })
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb, refs


def hidden_test_count(nb: nbformat.NotebookNode) -> int:
    return sum(c.source.count(BEGIN_HIDDEN) for c in nb.cells)


def strip_solution_markers(source: str) -> str:
    """What a perfect trainee would have typed: the solution with nbgrader's delimiters removed."""
    keep = [line for line in source.splitlines() if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)]
    return "\n".join(keep)


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    """Canonical form: nbformat 4.5, sorted keys, one-space indent, trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomicfile.write_text(path, canonical_json(nb))


def canonical_json(nb: nbformat.NotebookNode) -> str:
    import json

    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
