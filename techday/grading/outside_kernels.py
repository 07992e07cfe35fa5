"""Lab 07's kernels scored from outside the trainee's kernel: the grader runs the hand-in's code again, in a
process of its own, on cases it draws after the notebook ran, and compares the results with the course's NumPy
references itself (:mod:`techday.imageref`).

Lab 07's four correctness tests (``blur_kernel_tests``, ``histogram_kernel_tests``, ``lut_kernel_tests``,
``pipeline_tests``) run in the trainee's kernel, where an answer that writes raw memory can forge any verdict
(grading/README.md, "What the grade still trusts"). Nothing the kernel wrote is trusted here:

1. **The program** (:func:`program_cells`) is made from the notebook as graded (nbgrader restored its locked
   cells): the release's locked definition cells the answers need (:data:`DEFINITION_CELLS`: ``setup``,
   ``imports``, ``launch_settings``), their source the gradebook's (else the course's lab source), then, in
   notebook order, the hand-in's solution cells and the cells the trainee added; never the test cells, the
   other locked cells (``speed_helpers``) nor the release's own plain cells (the parameters, the demo and the
   plot: slow, and not the trainee's). A ``tier = "cpu"`` line stands in for the parameters cell. A test cell's
   cases run on the cells above it only, as in the notebook.
2. **Kernels only** (:func:`kernels_program`): for the kernel tests (and the pipeline's orchestration), each
   hand-in cell is reduced by ``ast``, never run, to an allow-list (:func:`kernel_statements`): top-level
   ``@cuda.jit`` definitions whose decorator takes a signature (a string or Numba's type objects,
   :func:`_type_expr`) and literal options, with literal defaults and no annotations (device functions
   included), plain definitions the hand-in wraps (``k = cuda.jit(f)``) and those wrappings, aliases of kernels
   taken, imports of names from the kernels' libraries, and ``NAME = constant`` (numbers, tuples of numbers,
   ``np.<dtype>``, arithmetic on constants); every other line is blank. No import, call or other statement of the trainee's runs. A kernel a test launches that is no such
   definition fails it before any process starts (``kernels-missing``).
3. **Compiled before simulated** (:func:`_compiled`): in the evaluated process, each kernel (and the device
   functions it calls) is compiled by numba-cuda's real compiler (cc 8.0) for the case's argument types in
   :mod:`techday.simcompile`'s child without the simulator, in the same sandbox, before any thread runs: a
   refusal fails the test with the compiler's reason (``kernels-not-compiled``); a compiler that cannot run
   fails it too (``kernels-no-compiler``: fail closed, never simulated unchecked). A body that compiles uses only
   CUDA Python, so simulating it in the harness is safe. One histogram case runs under ``check_races``
   (``kernels-raced``).
4. **The pipeline**: ``equalize`` (host code by nature) runs on the whole program as before, plus once with the
   course's canary table kernel in place of ``lut_kernel`` (a pipeline computed on the host gives the uninverted
   picture); the course's orchestration (clear, blur, histogram, table, apply) runs in a second process on the
   kernels-only program with the hand-in's four kernels, compiled first.
5. **The evaluated process** (:func:`evaluate_main`, one per test cell and program) runs that program in Numba's
   CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, the CPU tier, whatever tier graded the notebook), in the
   grading sandbox with the limits of :func:`techday.grading.outside.run_scorer` (own host uid where root
   grades, no network, time, memory, processes), then launches the kernels and calls the functions on the
   inputs the judge wrote and answers with the output arrays only (raw bytes with their dtype and shape).
6. **The judge** (:func:`score_kernels`, in the grader) draws the cases (:func:`draw_cases`) from a seed of
   ``secrets`` after the kernel is gone, keeps the expected outputs to itself, parses the answer strictly
   (the dtype and shape it expects, the exact byte count, one array per case: never unpickled) and decides
   each test cell.

Not covered (grading/README.md, "lab 07's kernels, run again"): the speed test and everything else of the lab
stay in the kernel; ``equalize`` runs the trainee's whole program, which can tell the canary apart; a compiled
kernel that reaches memory through an address (``numba.carray`` over a pointer) acts on the evaluated process's
memory in the simulator; the race check is one launch; ``ptxas`` is not run; the simulator is not a GPU (an
answer right in the simulator and wrong on a GPU passes; one that needs a GPU fails); the pipeline's program
slower than :data:`EVAL_TIMEOUT_S` fails the check (a trainee cell stops after :data:`CELL_TIMEOUT_S`); a regrade
draws new cases (the seed is recorded, not replayed); where no host uid can be had the process runs as the
grader's user (:func:`run_scorer`).
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

LAB = "07-accelerated-assessment"
DEFINITION_CELLS = ("setup", "imports", "launch_settings")  # locked cells whose names the answers use
TESTS = {"blur_kernel_tests": "blur", "histogram_kernel_tests": "histogram", "lut_kernel_tests": "lut",
         "pipeline_tests": "pipeline"}
PRELUDE = 'tier = "cpu"  # the grader\'s: the parameters cell\nscale = "ci"\n'

EVAL_TIMEOUT_S = 45      # one test cell's process: the program and its cases (an honest answer: 2 to 5 s here)
CELL_TIMEOUT_S = 8       # one cell of the hand-in's, in that process: an experiment left in a cell stops there
EVAL_MEMORY_MB = 2048    # RLIMIT_AS: the simulator runs a block's threads as Python threads (2 MB stacks each)
EVAL_PROCESSES = 320     # where root grades: a block of 256 simulated threads, the interpreter, bwrap's two, margin
DTYPES = ("uint8", "int16", "int32")
RACE_CASE = 1            # the histogram case launched under check_races (the noise picture, 2 blocks)
MODES = {"equalize": "full", "equalize_device": "full", "equalize_canary": "full"}  # else "kernels"  # every output array the judge asks for is one of these

# --- the program ---------------------------------------------------------------------------------------------


def release_cells(lab: str = LAB) -> dict | None:
    """What the course's lab source says of its code cells: ``plain``, the ids its build gives the plain cells
    (parameters, demo, plot); ``course``, the grade ids of its locked and test cells; ``definitions``, the
    definition cells' sources. None where the lab source is not at hand."""
    from ..course.labsrc import read_lab
    from ..course.syllabus import load_course

    try:
        nb, _ = read_lab(load_course(None).lab_source(lab), lab)
    except Exception:  # noqa: BLE001 -- a grader without the course's sources: the build's id pattern instead
        return None
    code = [c for c in nb.cells if c.cell_type == "code"]
    course = {c.metadata["nbgrader"]["grade_id"]: c.source for c in code
              if c.metadata.get("nbgrader", {}).get("locked") and not c.metadata["nbgrader"].get("solution")}
    return {"plain": {c.id for c in code if not c.metadata.get("nbgrader")}, "course": set(course),
            "definitions": {k: v for k, v in course.items() if k in DEFINITION_CELLS}}


def program_cells(nb, course: list[dict] | None, lab: str = LAB) -> list[dict]:
    """What the evaluated process runs, in order: ``{"key", "origin", "source", "index"}``, ``origin`` ``grader`` (the
    prelude), ``release`` (a definition cell, the course's source) or ``hand-in`` (a solution cell or a cell the
    trainee added, as handed in). ``course`` is :func:`techday.grading.executor.course_cells`' list (the
    gradebook's test and locked cells found in ``nb``); without one (no gradebook), the course's lab source says
    which cells are the course's and gives the definitions' sources. ``index``: the cell's place in ``nb`` (-1
    for the prelude and a definition cell the notebook lacks), so that a test cell's cases run on what the cells
    above it defined, as in the notebook (:func:`test_positions`)."""
    trusted = {c["index"]: c for c in course or []}
    release = release_cells(lab) or {"plain": None, "course": set(), "definitions": {}}
    pattern = re.compile(rf"^{re.escape(re.sub(r'[^A-Za-z0-9_-]', '-', lab)[:50])}-\d{{3}}$")
    sources = dict(release["definitions"])
    sources.update({c["key"]: c["source"] for c in course or [] if c.get("kind") == "locked"})
    cells = [{"key": "prelude", "origin": "grader", "source": PRELUDE, "index": -1}]
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        key = trusted[index]["key"] if index in trusted else gid if not trusted and gid in release["course"] else None
        if key is not None:  # the course's cell: a definition runs as the course wrote it, the rest not at all
            if key in DEFINITION_CELLS and key not in seen and key in sources:
                seen.add(key)
                cells.append({"key": key, "origin": "release", "source": sources[key], "index": index})
            continue
        cid = str(cell.get("id") or "")
        if (cid in release["plain"]) if release["plain"] is not None else bool(pattern.match(cid)):
            continue  # the release's parameters, demo or plot cell
        source = cell.source
        cells.append({"key": str(gid or cid or f"cell {index + 1}")[:80], "origin": "hand-in",
                      "source": "".join(source) if isinstance(source, list) else str(source), "index": index})
    # A definition cell the notebook lacks runs first, in the release's order (nbgrader restores deleted ones).
    front = [{"key": k, "origin": "release", "source": sources[k], "index": -1} for k in DEFINITION_CELLS
             if k not in seen and k in sources]
    return cells[:1] + front + cells[1:]


def test_positions(nb, course: list[dict] | None) -> dict[str, int]:
    """Where each of :data:`TESTS` sits in ``nb``: the gradebook's cell (``course``), else the first cell of that
    grade id; a test cell that is not there sits after every cell."""
    found = {c["key"]: c["index"] for c in course or [] if c["key"] in TESTS and c.get("kind") == "test"}
    if not course:
        for index, cell in enumerate(nb.cells):
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell.cell_type == "code" and gid in TESTS:
                found.setdefault(gid, index)
    return {test: found.get(test, len(nb.cells)) for test in TESTS}


# --- what of the hand-in runs for the kernel tests: @cuda.jit definitions and literal constants, by ast ---------

# The kernels each test launches (``pipeline_tests``: the course's orchestration with the hand-in's kernels).
KERNELS = {"blur_kernel_tests": ("blur_kernel",), "histogram_kernel_tests": ("histogram_kernel",),
           "lut_kernel_tests": ("lut_kernel",),
           "pipeline_tests": ("blur_kernel", "histogram_kernel", "lut_kernel", "apply_lut_kernel")}
JIT_DECORATORS = ("cuda.jit", "numba.cuda.jit")
JIT_OPTIONS = ("device", "fastmath", "inline", "opt", "lineinfo", "max_registers", "cache", "debug")
DTYPE_NAMES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64",
               "intp", "uintp", "bool_")
DTYPE_MODULES = ("np", "numpy", "numba")
# Modules a cell may import names from for its kernels (``from numba import int32``, ``from math import sqrt``):
# library code only, already imported by the course's cells; nothing of the trainee's runs.
IMPORT_MODULES = ("math", "numpy", "numba", "numba.cuda", "numba.types")


def _literal(node, strings: bool = False) -> bool:
    """A number, a boolean, a tuple of them (nested), or a string where ``strings``; nothing evaluated."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False

    def plain(v):
        if isinstance(v, tuple):
            return len(v) <= 64 and all(plain(x) for x in v)
        return isinstance(v, (bool, int, float)) or (strings and isinstance(v, str) and len(v) <= 400)
    return plain(value)


_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Div, ast.Mod, ast.Pow, ast.LShift, ast.RShift,
               ast.BitAnd, ast.BitOr, ast.BitXor)


def _arithmetic(node, names, depth: int = 0) -> bool:
    """Arithmetic on numbers and on ``names`` (constants bound before it: the course's, the hand-in's), a name's
    item at a literal index included (``BLOCK_2D[0] * BLOCK_2D[1]``, ``BINS = 2 ** 8``, ``HALF = RADIUS // 2``):
    no call, no attribute but a dtype name. Run in the evaluated process, under its limits."""
    if depth > 32:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Subscript):
        return isinstance(node.value, ast.Name) and node.value.id in names and _literal(node.slice)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)) and _arithmetic(node.operand, names, depth + 1)
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, _ARITHMETIC) and _arithmetic(node.left, names, depth + 1) and \
            _arithmetic(node.right, names, depth + 1)
    if isinstance(node, ast.Tuple):
        return len(node.elts) <= 64 and all(_arithmetic(e, names, depth + 1) for e in node.elts)
    return False


def _constant(node, names=frozenset()) -> bool:
    """A literal constant (numbers, tuples of numbers), a dtype name ``np.int32`` / ``numba.int64``, or arithmetic
    on numbers and on the constants ``names`` (:func:`_arithmetic`)."""
    if _literal(node):
        return True
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in DTYPE_MODULES
            and node.attr in DTYPE_NAMES) or _arithmetic(node, names)


# Numba's type names, for a signature written with objects (``@cuda.jit(void(uint8[:, :], int32[::1]))``): each
# must be bound by an import from :data:`TYPE_MODULES` (``from numba import void``) or read from such a module
# (``numba.float32``, ``types.int64``), and never rebound by the hand-in after, so that a signature's calls and
# subscripts reach Numba's type objects only: nothing of the trainee's runs when the decorator is evaluated.
TYPE_NAMES = frozenset(
    "void none boolean bool_ b1 byte uint8 u1 uint16 u2 uint32 u4 uint64 u8 int8 i1 int16 i2 int32 i4 int64 i8 intp "
    "uintp intc uintc float16 f2 float32 f4 float64 f8 double complex64 c8 complex128 c16".split())
TYPE_MODULES = ("numba", "numba.types", "numba.core.types")


class Scope:
    """What the hand-in's statements taken so far (and the course's cells) bind, for the statements after them:
    ``constants`` (names a constant's arithmetic may read), ``types`` (name -> ``"type"`` for a Numba type,
    ``"module"`` for numba or its types module), ``kernels`` (names bound to a ``@cuda.jit`` definition, a wrapped
    function or an alias of one), ``plain`` (undecorated definitions taken because the hand-in wraps them:
    ``wrapped``, found by :func:`wrapped_functions` before)."""

    def __init__(self, constants=(), types=None, wrapped=()):
        self.constants = set(constants)
        self.types = dict(types or {})
        self.kernels: set[str] = set()
        self.plain: set[str] = set()
        self.wrapped = set(wrapped)
        self.pending: list = []  # what the statement judged last binds, if it is taken (_why_not)

    def take(self) -> None:
        for name, kind, types in self.pending:
            self.bind(name, kind, types)
        self.pending = []

    def bind(self, name: str, kind: str, types: dict | None = None) -> None:
        """``name`` bound by a statement taken: ``kind`` one of constant, kernel, plain, import."""
        for table in (self.constants, self.kernels, self.plain):
            table.discard(name)
        self.types.pop(name, None)
        if kind == "constant":
            self.constants.add(name)
        elif kind == "kernel":
            self.kernels.add(name)
        elif kind == "plain":
            self.plain.add(name)
        elif types and name in types:
            self.types[name] = types[name]


def import_types(stmt) -> dict[str, str]:
    """What an import binds that :data:`TYPE_NAMES` signatures may use: ``{name: "type" | "module"}``."""
    found = {}
    if isinstance(stmt, ast.ImportFrom) and not stmt.level and stmt.module in TYPE_MODULES:
        for a in stmt.names:
            if a.name in TYPE_NAMES:
                found[a.asname or a.name] = "type"
            elif stmt.module == "numba" and a.name == "types":
                found[a.asname or a.name] = "module"
    elif isinstance(stmt, ast.Import):
        for a in stmt.names:
            if a.name in TYPE_MODULES and (a.asname or "." not in a.name):
                found[a.asname or a.name] = "module"
    return found


def _type_ref(node, types: dict) -> bool:
    """A Numba type by a name an import bound to one, or read from a module bound to numba or its types module
    (``numba.float32``, ``numba.types.int64``, ``types.uint8``)."""
    if isinstance(node, ast.Name):
        return types.get(node.id) == "type"
    if not isinstance(node, ast.Attribute) or node.attr not in TYPE_NAMES:
        return False
    inner = node.value
    while isinstance(inner, ast.Attribute) and inner.attr in ("types", "core"):
        inner = inner.value
    return isinstance(inner, ast.Name) and types.get(inner.id) == "module"


def _whole_slice(node) -> bool:
    """``:`` or ``::1`` (an array type's dimension, contiguous or not)."""
    return isinstance(node, ast.Slice) and node.lower is None and node.upper is None and (
        node.step is None or (isinstance(node.step, ast.Constant) and node.step.value == 1
                              and type(node.step.value) is int))


def _type_expr(node, types: dict, depth: int = 0) -> bool:
    """A signature written with Numba's types: a string, a type (:func:`_type_ref`), an array type
    (``uint8[:, ::1]``), a signature (``void(uint8[:, :], int32[:])``, ``float32(float32)``), or a tuple or list
    of these. Its calls and subscripts reach Numba's type objects only."""
    if depth > 16:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and len(node.value) <= 400
    if _type_ref(node, types):
        return True
    if isinstance(node, ast.Subscript):
        dims = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return _type_ref(node.value, types) and 1 <= len(dims) <= 8 and all(_whole_slice(d) for d in dims)
    if isinstance(node, ast.Call):
        return _type_ref(node.func, types) and not node.keywords and len(node.args) <= 64 and \
            all(_type_expr(a, types, depth + 1) for a in node.args)
    if isinstance(node, (ast.Tuple, ast.List)):
        return len(node.elts) <= 64 and all(_type_expr(e, types, depth + 1) for e in node.elts)
    return False


def _jit_call(node, types=None) -> bool:
    """``cuda.jit`` or ``numba.cuda.jit`` called with a signature (a string, or Numba's types: :func:`_type_expr`)
    and the options of :data:`JIT_OPTIONS` (literals)."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Attribute, ast.Name)) or \
            ast.unparse(node.func) not in JIT_DECORATORS:
        return False
    return len(node.args) <= 1 and all(_literal(a, strings=True) or _type_expr(a, types or {}) for a in node.args) \
        and all(kw.arg in JIT_OPTIONS and _literal(kw.value) for kw in node.keywords)


def _jit_decorator(node, types=None) -> bool:
    """``@cuda.jit`` or ``@numba.cuda.jit``, bare or called with a signature and literal options
    (:func:`_jit_call`)."""
    if isinstance(node, ast.Call):
        return _jit_call(node, types)
    return isinstance(node, (ast.Attribute, ast.Name)) and ast.unparse(node) in JIT_DECORATORS


def _wrapped_name(value) -> str | None:
    """The function ``f`` of ``cuda.jit(f)``, ``cuda.jit(f, device=True)`` or ``cuda.jit(<signature>)(f)``
    (the wrapping's form only: its arguments are checked by :func:`_why_not`)."""
    if not isinstance(value, ast.Call):
        return None
    if isinstance(value.func, ast.Call):  # cuda.jit(...)(f)
        if len(value.args) == 1 and not value.keywords and isinstance(value.args[0], ast.Name):
            return value.args[0].id
        return None
    if isinstance(value.func, (ast.Attribute, ast.Name)) and ast.unparse(value.func) in JIT_DECORATORS and \
            value.args and isinstance(value.args[0], ast.Name):
        return value.args[0].id
    return None


def wrapped_functions(sources) -> set[str]:
    """The names the hand-in's cells wrap with ``cuda.jit`` (``k = cuda.jit(f)``): their plain definitions are
    taken (:func:`_why_not`)."""
    names = set()
    for source in sources:
        try:
            tree = ast.parse(_no_magics(source))
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign):
                name = _wrapped_name(stmt.value)
                if name is not None:
                    names.add(name)
    return names


def _plain_def_problem(stmt) -> str | None:
    a = stmt.args
    if stmt.returns is not None or any(x.annotation is not None for x in
                                       a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x):
        return f"def {stmt.name}: annotations"
    if not all(_literal(d) for d in a.defaults + [d for d in a.kw_defaults if d is not None]):
        return f"def {stmt.name}: a default value that is not a literal"
    return None


def _why_not(stmt, bound: set[str], scope: Scope) -> tuple[str | None, str]:
    """(the name the statement binds, '') when it is taken; else (None, why not). ``scope``: what the statements
    taken before bind (:class:`Scope`; its ``constants`` are the names a constant's arithmetic may read: the
    course's, and the hand-in's constants taken before it): what a statement taken binds is left in
    ``scope.pending`` for :meth:`Scope.take` (a statement left out after all binds nothing: it never runs)."""
    scope.pending = []
    kind, types = "constant", None
    if isinstance(stmt, ast.FunctionDef):
        if not stmt.decorator_list:
            if stmt.name not in scope.wrapped:
                return None, f"def {stmt.name}: neither decorated with @cuda.jit nor wrapped (k = cuda.jit({stmt.name}))"
            kind = "plain"
        elif not all(_jit_decorator(d, scope.types) for d in stmt.decorator_list):
            return None, f"def {stmt.name}: not decorated with @cuda.jit (a signature and literal options only)"
        else:
            kind = "kernel"
        problem = _plain_def_problem(stmt)
        if problem:
            return None, problem
        name = stmt.name
    elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and not isinstance(stmt, ast.AugAssign):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name) or stmt.value is None or \
                isinstance(stmt, ast.AnnAssign):
            return None, "an assignment that is not NAME = constant"
        name, value = targets[0].id, stmt.value
        wrapped = _wrapped_name(value)
        if wrapped is not None:
            jit = value.func if isinstance(value.func, ast.Call) else \
                ast.Call(func=value.func, args=value.args[1:], keywords=value.keywords)
            if wrapped not in scope.plain:
                return None, f"{name} = cuda.jit({wrapped}): {wrapped} is no plain definition of the hand-in's above it"
            if not _jit_call(jit, scope.types):
                return None, f"{name} = cuda.jit(...): a signature and literal options only"
            kind = "kernel"
        elif isinstance(value, ast.Name) and value.id in scope.kernels:
            kind = "kernel"  # an alias of a kernel taken: lut_kernel = my_table_kernel
        elif not _constant(value, scope.constants):
            return None, f"{name} = ...: not a constant (numbers, arithmetic on constants)"
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        module = stmt.module if isinstance(stmt, ast.ImportFrom) else None
        names = [(a.asname or a.name) for a in stmt.names]
        if isinstance(stmt, ast.ImportFrom) and (stmt.level or module not in IMPORT_MODULES or "*" in names):
            return None, f"from {module or '.'} import ...: not one of {', '.join(IMPORT_MODULES)}"
        if isinstance(stmt, ast.Import) and any(a.name not in IMPORT_MODULES or (a.asname is None and "." in a.name)
                                                for a in stmt.names):
            return None, "import statement: not one of " + ", ".join(IMPORT_MODULES)
        taken = [n for n in names if n not in bound]
        if len(taken) != len(names):
            return None, f"import of {', '.join(n for n in names if n in bound)}: a name of the course's definition cells"
        scope.pending = [(n, "import", import_types(stmt)) for n in taken]
        return ", ".join(taken), ""
    else:
        return None, f"{type(stmt).__name__.lower()} statement"
    if name in bound:
        return None, f"{name}: a name of the course's definition cells"
    scope.pending = [(name, kind, types)]
    return name, ""


def _no_magics(source: str) -> str:
    """The cell with its IPython lines (``%%time``, ``%timeit``, ``!cmd``) blanked, line numbers kept."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def kernel_statements(source: str, bound, scope: Scope | None = None) -> tuple[str, list[str], list[str]]:
    """What of a hand-in cell runs for the kernel tests, taken by ``ast`` (never run): ``(text, kept names, left
    out)``. ``text`` has the cell's lines of its top-level ``@cuda.jit`` definitions (:func:`_jit_decorator`:
    device functions included; a signature of strings or Numba's types; no annotation, literal defaults only), of
    the plain definitions the hand-in wraps (``k = cuda.jit(f)``, ``k = cuda.jit(<signature>)(f)``) and those
    wrappings, of aliases of kernels taken (``lut_kernel = my_table``), of its constants (:func:`_constant`) and of
    its imports of names from :data:`IMPORT_MODULES`, every other line blank, so that a line number is the cell's.
    A statement sharing a line with another, or binding a name of the course's definition cells (``bound``), is
    left out; so is all of a cell that does not parse. ``scope`` (:class:`Scope`) carries what the cells before
    bound (:func:`kernels_program`); without it, the cell alone."""
    bound = set(bound)
    if scope is None:
        scope = Scope(bound, {"numba": "module"} if "numba" in bound else {}, wrapped_functions([source]))
    text = _no_magics(source.replace("\r\n", "\n"))
    lines = text.split("\n")
    if not all(_one_line(line) for line in lines):
        # Python, the "\n" lines kept here and str.splitlines (the lines inspect gives the compile check) must see
        # the same lines: a lone "\r" is a line break for Python, a form feed or U+2028 one for splitlines only.
        return "\n".join("" for _ in lines), [], ["the cell has a line break other than \\n (\\r, \\f, U+2028...)"]
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        return "\n".join("" for _ in lines), [], [f"the cell does not parse ({type(exc).__name__})"]
    spans = []
    for stmt in tree.body:
        first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
        spans.append((first, stmt.end_lineno or stmt.lineno))
    keep = [False] * len(lines)
    kept, left_out = [], []
    before = (set(scope.constants), dict(scope.types), set(scope.kernels), set(scope.plain))
    for i, stmt in enumerate(tree.body):
        first, last = spans[i]
        name, why = _why_not(stmt, bound, scope)
        shared = any(j != i and not (spans[j][1] < first or spans[j][0] > last) for j in range(len(spans)))
        if name is not None and shared:
            name, why = None, f"{name}: shares a line with another statement"
        if name is None:
            left_out.append(f"line {stmt.lineno}: {why}")
            continue
        scope.take()
        kept.append(name)
        for n in range(first - 1, last):
            keep[n] = True
    reduced = "\n".join(line if keep[n] else "" for n, line in enumerate(lines))
    taken = [stmt for i, stmt in enumerate(tree.body) if keep[spans[i][0] - 1]]
    try:  # recomputed, not trusted: the reduced cell holds the statements taken, and nothing else
        again = ast.parse(reduced).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        again = None
    if again is None or [ast.dump(x) for x in again] != [ast.dump(x) for x in taken]:
        # nothing of the cell runs, so nothing it would bind is in the scope of the cells after it
        scope.constants, scope.types, scope.kernels, scope.plain = before
        return "\n".join("" for _ in lines), [], left_out + ["the cell's statements taken do not parse alone"]
    return reduced, kept, left_out


def _one_line(line: str) -> bool:
    """No line break in ``line`` for Python nor for ``str.splitlines`` (an allow-list: a character appended
    must stay on the same line)."""
    return (line + "x").splitlines() == [line + "x"]


def course_names(sources) -> tuple[set[str], dict[str, str]]:
    """What the course's definition cells (and the prelude) bind at their top level, and of those the Numba types
    and modules a signature may use (:func:`import_types`)."""
    names: set[str] = set()
    types: dict[str, str] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
                types.update(import_types(node))
            else:
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                        names.add(sub.id)
    return names, types


def kernels_program(cells: list[dict]) -> tuple[list[dict], dict[str, int], list[str]]:
    """``cells`` (:func:`program_cells`) as the kernel tests run them: the grader's and the course's cells as they
    are, each hand-in cell reduced to :func:`kernel_statements`. Returns (cells, {kernel name: index of the cell
    that defines it last}, left out: one line per statement not run). Each reduced cell keeps ``kernels``: the
    names bound to a kernel once it has run (:func:`jit_names`)."""
    bound, types = course_names(c["source"] for c in cells if c["origin"] != "hand-in")
    # what a constant's arithmetic may read: the course's names, then the hand-in's constants
    scope = Scope(bound, types, wrapped_functions(c["source"] for c in cells if c["origin"] == "hand-in"))
    out, defined, left_out = [], {}, []
    for cell in cells:
        if cell["origin"] != "hand-in":
            out.append(cell)
            continue
        text, kept, dropped = kernel_statements(cell["source"], bound, scope=scope)
        left_out += [f"{cell['key']}, {d}" for d in dropped]
        for name in kept:
            defined[name] = cell["index"]
        out.append({**cell, "source": text, "kept": kept, "kernels": sorted(scope.kernels)})
    return out, defined, left_out


def jit_names(cells: list[dict]) -> set[str]:
    """The names bound to a kernel (a ``@cuda.jit`` definition, a wrapped plain definition or an alias of either)
    once :func:`kernels_program`'s hand-in cells have run."""
    names: set[str] = set()
    for cell in cells:
        if cell["origin"] == "hand-in":
            names = set(cell.get("kernels", ()))
    return names


# --- the cases -------------------------------------------------------------------------------------------------

def draw_seed() -> int:
    from .outside import SEED_FLOOR

    return SEED_FLOOR + secrets.randbelow(2**62)


def _picture(rng, shape):
    from ..imageref import SAMPLES, sample_image

    name = str(rng.choice(SAMPLES))
    origin = (int(rng.integers(0, 400)), int(rng.integers(0, 400)))
    return sample_image(name, shape, origin=origin), ["sample", {"name": name, "rows": shape[0], "cols": shape[1],
                                                                 "row": origin[0], "col": origin[1]}]


def _picture_text(c, spec) -> str:
    kind, f = spec
    if kind == "noise":
        return c.msg("techday.outside_picture_noise", "random grey levels {rows}x{cols}", **f)
    if kind == "constant":
        return c.msg("techday.outside_picture_constant", "a constant picture of {level}, {rows}x{cols}", **f)
    return c.msg("techday.outside_picture_sample", "{name} {rows}x{cols} from ({row}, {col})", **f)


# What a case is, in the room's language (the record keeps the English): kind -> text.
CASE_TEXTS = {
    "blur": lambda c, f: c.msg("techday.outside_case_blur", "{picture}, {k}x{k} weights, grid {grid}, block {block}, "
                               "out {dtype}", **f),
    "histogram": lambda c, f: c.msg("techday.outside_case_histogram", "{picture}, grid {grid}, block {block}", **f),
    "histogram-added": lambda c, f: c.msg("techday.outside_case_histogram_added", "{picture}, grid {grid}, block "
                                          "{block}, added to counts that are not zero", **f),
    "lut-blurred": lambda c, f: c.msg("techday.outside_case_lut_blurred", "the histogram of {picture} blurred 5x5",
                                      **f),
    "lut-one": lambda c, f: c.msg("techday.outside_case_lut_one", "one grey level ({level})", **f),
    "lut-two": lambda c, f: c.msg("techday.outside_case_lut_two", "two grey levels ({low} and {high})", **f),
    "lut-band": lambda c, f: c.msg("techday.outside_case_lut_band", "grey levels {low} to {high} only", **f),
    "lut-big": lambda c, f: c.msg("techday.outside_case_lut_big", "counts of {pixels} pixels (64-bit arithmetic)",
                                  **f),
    "equalize": lambda c, f: c.msg("techday.outside_case_equalize", "equalize, {picture}, {k}x{k}", **f),
    "equalize-canary": lambda c, f: c.msg("techday.outside_case_equalize_canary", "equalize, {picture}, {k}x{k}, "
                                          "with the course's table that inverts the levels in place of lut_kernel",
                                          **f),
    "orchestrate": lambda c, f: c.msg("techday.outside_case_orchestrate", "the course's pipeline (clear, blur, "
                                      "histogram, table, apply) with your kernels, {picture}, {k}x{k}", **f),
    "equalize-device": lambda c, f: c.msg("techday.outside_case_equalize_device", "equalize_device called twice on "
                                          "used buffers, {picture}", **f),
}


def case_text(catalogue, describe) -> str:
    """A case's ``describe`` (``[kind, fields]``, a picture among the fields as ``[kind, fields]``) in words."""
    kind, fields = describe
    fields = dict(fields)
    if "picture" in fields:
        fields["picture"] = _picture_text(catalogue, fields["picture"])
    return CASE_TEXTS[kind](catalogue, fields)


def _case(kind: str, describe: list, inputs: dict, args: dict, dtype: str, shape, expected) -> dict:
    from ..i18n import SOURCE_LANGUAGE, PackageCatalogue

    return {"kind": kind, "describe": describe, "what": case_text(PackageCatalogue(SOURCE_LANGUAGE), describe),
            "inputs": inputs, "args": args, "dtype": dtype, "shape": tuple(shape), "expected": expected}


def _weights(rng, k):
    import numpy as np

    w = rng.integers(0, 10, (k, k)).astype(np.int32)
    w[k // 2, k // 2] += 1  # a positive sum
    return w


def _covering(shape, block):
    """The grid that covers ``shape`` (rows, cols) with ``block`` (x: columns, y: rows)."""
    return (-(-shape[1] // block[0]), -(-shape[0] // block[1]))


def draw_cases(test: str, seed: int) -> list[dict]:
    """The cases of one test cell, drawn from ``seed``: each ``{"kind", "what", "inputs": {name: array},
    "args": {...}, "dtype", "shape", "expected"}``. Shapes pass one block in every dimension, one case launches a
    grid of several blocks per side, one a grid smaller than the picture (grid-stride loops needed); inputs of
    the kinds the lab's tests use. ``expected`` (the course's reference) never leaves the grader."""
    import numpy as np

    from ..imageref import (binomial_weights, blur_reference, equalization_lut_reference, histogram_reference,
                            pipeline_reference)

    rng = np.random.default_rng([seed, list(TESTS).index(test)])
    cases: list[dict] = []
    if test == "blur_kernel_tests":
        for shape, k, block, grid, dtype in (
                ((int(rng.integers(17, 30)), int(rng.integers(17, 30))), 5, (8, 8), None, "int16"),  # 3+ blocks a side
                ((int(rng.integers(17, 30)), int(rng.integers(17, 30))), 3, (8, 4), (2, 1), "uint8"),  # grid-stride
                ((int(rng.integers(2, 5)), int(rng.integers(2, 5))), 7, (4, 4), (1, 1), "int16"),  # under the kernel
                ((1, int(rng.integers(20, 50))), 5, (16, 2), (1, 1), "uint8"),
                ((int(rng.integers(17, 33)), int(rng.integers(17, 33))), 5, (16, 16), (1, 1), "uint8")):
            img, picture = _picture(rng, shape)
            w = _weights(rng, k) if len(cases) < 3 else binomial_weights(k)
            grid = grid or _covering(shape, block)
            cases.append(_case("blur", ["blur", {"picture": picture, "k": k, "grid": grid, "block": block,
                                                 "dtype": dtype}],
                               {"img": img, "weights": w}, {"grid": grid, "block": block, "dtype": dtype}, dtype,
                               shape, blur_reference(img, w)))
    elif test == "histogram_kernel_tests":
        noise_shape = (int(rng.integers(17, 30)), int(rng.integers(17, 30)))
        flat_shape, level = (int(rng.integers(17, 30)), int(rng.integers(17, 30))), int(rng.integers(256))
        pictures = [_picture(rng, (int(rng.integers(17, 40)), int(rng.integers(17, 40)))),
                    (rng.integers(0, 256, noise_shape).astype(np.uint8),
                     ["noise", {"rows": noise_shape[0], "cols": noise_shape[1]}]),
                    _picture(rng, (1, int(rng.integers(20, 90)))),
                    (np.full(flat_shape, level, np.uint8),
                     ["constant", {"level": level, "rows": flat_shape[0], "cols": flat_shape[1]}]),
                    _picture(rng, (int(rng.integers(2, 6)), int(rng.integers(2, 8))))]
        launches = [((8, 8), None), ((8, 4), (2, 1)), ((32, 1), (1, 1)), ((16, 16), (2, 2)), ((16, 8), (2, 2))]
        for (img, picture), (block, grid) in zip(pictures, launches):
            grid = grid or _covering(img.shape, block)
            start = rng.integers(0, 1000, 256).astype(np.int32) if len(cases) % 2 else np.zeros(256, np.int32)
            kind = "histogram-added" if start.any() else "histogram"
            # The noise case (2 blocks, grid-stride) is launched under the course's check_races: a race between
            # blocks or threads fails it, whatever order the simulator ran them in (RACE_CASE).
            args = {"grid": grid, "block": block, "race": len(cases) == RACE_CASE}
            cases.append(_case("histogram", [kind, {"picture": picture, "grid": grid, "block": block}],
                               {"img": img, "hist": start}, args, "int32", (256,), start + histogram_reference(img)))
    elif test == "lut_kernel_tests":
        img, picture = _picture(rng, (int(rng.integers(17, 40)), int(rng.integers(17, 40))))
        hists = [(histogram_reference(blur_reference(img, binomial_weights(5))), ["lut-blurred", {"picture": picture}])]
        one = np.zeros(256, np.int64)
        level = int(rng.integers(256))
        one[level] = int(rng.integers(1, 100_000))
        hists.append((one, ["lut-one", {"level": level}]))
        two = np.zeros(256, np.int64)
        pair = sorted(int(v) for v in rng.choice(256, 2, replace=False))
        two[pair] = rng.integers(1, 5_000, 2)
        hists.append((two, ["lut-two", {"low": pair[0], "high": pair[1]}]))
        low, high = sorted(int(v) for v in rng.choice(256, 2, replace=False))
        middle = np.zeros(256, np.int64)
        middle[low:high + 1] = rng.integers(0, 50, high + 1 - low)
        middle[low] = int(rng.integers(1, 50))
        hists.append((middle, ["lut-band", {"low": low, "high": high}]))
        big = rng.integers(0, 400_000, 256)
        big[:int(rng.integers(0, 40))] = 0
        hists.append((big, ["lut-big", {"pixels": int(big.sum())}]))
        for hist, describe in hists:
            cases.append(_case("lut", describe, {"hist": hist.astype(np.int32)}, {}, "uint8", (256,),
                               equalization_lut_reference(hist)))
    elif test == "pipeline_tests":
        for shape, k in (((int(rng.integers(17, 40)), int(rng.integers(17, 40))), int(rng.choice([3, 5, 7]))),
                         ((int(rng.integers(1, 3)), int(rng.integers(30, 80))), int(rng.choice([3, 5, 7])))):
            img, picture = _picture(rng, shape)
            w = binomial_weights(k)
            cases.append(_case("equalize", ["equalize", {"picture": picture, "k": k}], {"img": img, "weights": w}, {},
                               "uint8", shape, pipeline_reference(img, w)))
        shape, level = (int(rng.integers(17, 30)), int(rng.integers(17, 30))), int(rng.integers(256))
        img = np.full(shape, level, np.uint8)
        picture = ["constant", {"level": level, "rows": shape[0], "cols": shape[1]}]
        cases.append(_case("equalize", ["equalize", {"picture": picture, "k": 5}],
                           {"img": img, "weights": binomial_weights(5)}, {}, "uint8", shape,
                           pipeline_reference(img, binomial_weights(5))))
        img, picture = _picture(rng, (int(rng.integers(17, 30)), int(rng.integers(17, 30))))
        cases.append(_case("equalize_device", ["equalize-device", {"picture": picture}],
                           {"img": img, "weights": binomial_weights(5),
                            "hist": rng.integers(1, 1000, 256).astype(np.int32)},
                           {"calls": 2}, "uint8", img.shape, pipeline_reference(img, binomial_weights(5))))
        # equalize with the course's canary in place of lut_kernel (a table that inverts the levels): a pipeline
        # that launches the hand-in's lut_kernel gives the inverted picture, one computed on the host does not.
        img, picture = _picture(rng, (int(rng.integers(17, 30)), int(rng.integers(17, 30))))
        k = int(rng.choice([3, 5]))
        cases.append(_case("equalize_canary", ["equalize-canary", {"picture": picture, "k": k}],
                           {"img": img, "weights": binomial_weights(k)}, {}, "uint8", img.shape,
                           255 - pipeline_reference(img, binomial_weights(k))))
        # The course's orchestration (clear, blur, histogram, table, apply) with the hand-in's kernels only, in
        # the kernels-only program (mode "kernels"): apply_lut_kernel included.
        for shape in ((int(rng.integers(17, 40)), int(rng.integers(17, 40))), (int(rng.integers(1, 4)),
                                                                              int(rng.integers(20, 60)))):
            img, picture = _picture(rng, shape)
            k = int(rng.choice([3, 5, 7]))
            cases.append(_case("orchestrate", ["orchestrate", {"picture": picture, "k": k}],
                               {"img": img, "weights": _weights(rng, k),
                                "hist": rng.integers(1, 1000, 256).astype(np.int32)},
                               {}, "uint8", shape, None))
            cases[-1]["expected"] = pipeline_reference(img, cases[-1]["inputs"]["weights"])
    else:
        raise ValueError(f"no cases for {test!r}")
    return cases


# --- the evaluated process (run in the sandbox: nothing here is trusted by the judge) --------------------------

class NotCompiled(Exception):
    """A kernel the real compiler refuses (or that is no ``@cuda.jit`` kernel): not simulated."""


class NoCompiler(Exception):
    """The real compiler cannot run here: the kernel is not simulated unchecked (fail closed)."""


class Raced(Exception):
    """The course's check_races found a race in the launch."""


_COMPILED: dict = {}  # (id(kernel), signature) -> (kernel, "ok" | "refused" | "cannot", text)


def _compile_verdict(kernel, signature: str, name: str) -> tuple[str, str]:
    """numba-cuda's real compiler on ``kernel`` (and the device functions it calls) for ``signature``, cc 8.0, in a
    child without the simulator (:mod:`techday.simcompile`'s, in this sandbox): ``("ok" | "refused" | "cannot",
    why)``. Unlike the CPU tier's launch check, what cannot be checked is never let through."""
    from .. import kernelrec, simcompile
    from ..ptxreport import toolkit_missing

    defs: dict = {}
    try:
        def_id = kernelrec.definition(kernel, defs, literal=True)
    except Exception as exc:  # noqa: BLE001
        return "refused", f"{name}: its definition cannot be read ({type(exc).__name__})"
    if not defs[def_id]["source"]:
        return "refused", f"{name}: its source cannot be read"
    if not simcompile._carried(def_id, defs, set()):
        return "refused", f"{name}: it reads a global that is no number, tuple, dtype, module or CUDA function"
    state = simcompile._state
    if state["server"] is None:
        try:
            state["server"] = simcompile._Server()
        except OSError as exc:
            return "cannot", str(exc)
    try:
        got = state["server"].ask(defs, {"def": def_id, "signature": signature, "variant": "cpu"})
    except (OSError, ValueError):
        got = None
    if got is None:
        return "cannot", "the compiling process did not answer"
    if got["status"] == "ok":
        return "ok", ""
    if toolkit_missing(got["error"]):
        return "cannot", "the CUDA compiler libraries (NVVM) are missing"
    where = f" (line {got['line']} of its cell)" if isinstance(got.get("line"), int) else ""
    return "refused", f"{name}, arguments {signature}: {simcompile.reason(got['error'])}{where}"[:400]


def _compiled(ns: dict, name: str, args) -> object:
    """``ns[name]`` once it is a ``@cuda.jit`` kernel that the real compiler accepts for ``args``' types; else
    :class:`NotCompiled` or :class:`NoCompiler`, before any of its threads runs."""
    from .. import kernelrec, simcompile

    kernel = ns.get(name)
    if type(kernel).__name__ != "FakeCUDAKernel" or kernel.__dict__.get("_device", True):
        raise NotCompiled(f"{name} is not a @cuda.jit kernel of the hand-in")
    signature = f"void({', '.join(kernelrec.type_string(a) for a in args)})"
    known = _COMPILED.get((id(kernel), signature))
    if known is None or known[0] is not kernel:
        known = (kernel, *_compile_verdict(kernel, signature, name))
        _COMPILED[(id(kernel), signature)] = known
    _, status, why = known
    if status == "refused":
        raise NotCompiled(why)
    if status != "ok":
        raise NoCompiler(why)
    simcompile._state["results"][(id(kernel), signature)] = (kernel, "")  # the launch's own check: done
    return kernel


def _launch(ns: dict, name: str, grid, block, *args, compile_first: bool = True) -> None:
    kernel = _compiled(ns, name, args) if compile_first else ns[name]
    kernel[tuple(grid), tuple(block)](*args)


CANARY_LUT = """
@cuda.jit
def canary_lut_kernel(hist, lut):
    counts = cuda.shared.array(256, numba.int64)
    v = cuda.threadIdx.x
    counts[v] = hist[v]
    cuda.syncthreads()
    n = 0
    cdf = 0
    cdf_min = 0
    for b in range(256):
        c = counts[b]
        n += c
        if b <= v:
            cdf += c
        if cdf_min == 0:
            cdf_min = c
    span = n - cdf_min
    level = v if span == 0 else min(max(((cdf - cdf_min) * 255 + span // 2) // span, 0), 255)
    lut[v] = 255 - level
"""


def _canary_lut():
    """The course's table kernel that inverts the levels: ``255 - lut[v]`` (the pipeline test's canary). Defined
    at the top level of a namespace of its own: the simulator swaps a kernel's global ``cuda`` for its own."""
    import numba
    from numba import cuda

    ns = {"cuda": cuda, "numba": numba, "__name__": "techday_canary"}
    exec(compile(CANARY_LUT, "<the course's canary table>", "exec"), ns)
    return ns["canary_lut_kernel"]


def _run_case(ns: dict, case: dict, arrays) -> "object":
    import numpy as np
    from numba import cuda

    def named(name):
        if name not in ns:
            raise NameError(f"{name} is not defined once the notebook's cells ran")
        return ns[name]

    kind, args = case["kind"], case["args"]
    first = case.get("mode", "kernels") == "kernels"  # the kernels-only program: each kernel compiled first
    inputs = {name: arrays[key] for name, key in case["inputs"].items()}
    if kind == "blur":
        img = inputs["img"]
        d_out = cuda.to_device(np.full(img.shape, -1 if args["dtype"] != "uint8" else 0, args["dtype"]))
        _launch(ns, "blur_kernel", args["grid"], args["block"], cuda.to_device(img),
                cuda.to_device(inputs["weights"]), d_out, compile_first=first)
        return d_out.copy_to_host()
    if kind == "histogram":
        d_hist, d_img = cuda.to_device(inputs["hist"]), cuda.to_device(inputs["img"])
        if args.get("race"):
            from ..simtrace import check_races

            kernel = _compiled(ns, "histogram_kernel", (d_img, d_hist)) if first else named("histogram_kernel")
            with check_races() as races:
                kernel[tuple(args["grid"]), tuple(args["block"])](d_img, d_hist)
            if races:
                raise Raced(str(races.first())[:300])
        else:
            _launch(ns, "histogram_kernel", args["grid"], args["block"], d_img, d_hist, compile_first=first)
        return d_hist.copy_to_host()
    if kind == "lut":
        d_lut = cuda.to_device(np.full(256, 7, np.uint8))
        _launch(ns, "lut_kernel", (1,), (256,), cuda.to_device(inputs["hist"]), d_lut, compile_first=first)
        return d_lut.copy_to_host()
    if kind == "orchestrate":
        # The course's equalize_device (the lab's reference orchestration), the hand-in's four kernels.
        img = inputs["img"]
        d_img, d_weights = cuda.to_device(img), cuda.to_device(inputs["weights"])
        d_blurred, d_out = cuda.device_array(img.shape, np.uint8), cuda.device_array(img.shape, np.uint8)
        d_hist, d_lut = cuda.to_device(inputs["hist"]), cuda.to_device(np.full(256, 7, np.uint8))
        grid, block = ns["grid_2d"](img.shape), ns["BLOCK_2D"]
        ns["clear_kernel"][1, 256](d_hist)
        _launch(ns, "blur_kernel", grid, block, d_img, d_weights, d_blurred)
        _launch(ns, "histogram_kernel", grid, block, d_blurred, d_hist)
        _launch(ns, "lut_kernel", (1,), (256,), d_hist, d_lut)
        _launch(ns, "apply_lut_kernel", grid, block, d_blurred, d_lut, d_out)
        return d_out.copy_to_host()
    if kind == "equalize":
        return named("equalize")(inputs["img"].copy(), inputs["weights"].copy())
    if kind == "equalize_canary":
        had, saved = "lut_kernel" in ns, ns.get("lut_kernel")
        ns["lut_kernel"] = _canary_lut()
        try:
            return named("equalize")(inputs["img"].copy(), inputs["weights"].copy())
        finally:
            if had:
                ns["lut_kernel"] = saved
    if kind == "equalize_device":
        img = inputs["img"]
        bufs = [cuda.to_device(img), cuda.to_device(inputs["weights"]), cuda.device_array(img.shape, np.uint8),
                cuda.to_device(inputs["hist"]), cuda.device_array(256, np.uint8), cuda.device_array(img.shape, np.uint8)]
        for _ in range(int(args["calls"])):
            named("equalize_device")(*bufs)
        return bufs[-1].copy_to_host()
    raise ValueError(kind)


def _encode(value) -> dict:
    import numpy as np

    if not isinstance(value, np.ndarray):
        return {"error": f"returned {type(value).__name__}, not a NumPy array"}
    value = np.ascontiguousarray(value)
    return {"dtype": value.dtype.name, "shape": list(value.shape),
            "data": base64.b64encode(value.tobytes()).decode("ascii")}


def evaluate_main(argv=None) -> int:
    """``python -m techday.grading.outside_kernels --folder F``: run ``F/program.json``'s cells in one namespace
    (an error in a cell is recorded and the next cell runs, as in a notebook), then each case of
    ``F/cases.json`` on ``F/inputs.npz``; one line ``RESULT {json}`` on the standard output it had when it
    started (the program's own prints go to the standard error)."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", required=True)
    args = ap.parse_args(argv)
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before anything imports Numba (the judge sets it too)
    os.environ["TECHDAY_TIER"] = "cpu"
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import numpy as np

    folder = Path(args.folder)
    cells = json.loads((folder / "program.json").read_text(encoding="utf-8"))
    cases = json.loads((folder / "cases.json").read_text(encoding="utf-8"))
    arrays = dict(np.load(folder / "inputs.npz", allow_pickle=False))
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        transform = TransformerManager().transform_cell
    except Exception:  # noqa: BLE001 -- without IPython a magic is a SyntaxError of its cell
        def transform(source):
            return source
    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    errors = []

    def too_long(signum, frame):
        raise TimeoutError(f"the cell ran past {CELL_TIMEOUT_S} s (the grader runs it again to define your functions)")

    class Shell:
        """``get_ipython()`` for the program: a cell magic that times or captures Python runs its body (``%%time``
        atop an answer cell); any other magic, line magic or shell line does nothing."""

        def run_cell_magic(self, name, line, body):
            if name in ("time", "timeit", "capture", "prun"):
                exec(compile(transform(body), "<cell magic>", "exec"), ns)

        def run_line_magic(self, *args, **kwargs):
            return None

        system = getoutput = run_line_magic

    shell = Shell()
    ns["get_ipython"] = lambda: shell
    import signal

    signal.signal(signal.SIGALRM, too_long)
    import linecache

    for cell in cells:
        # The cell's source where inspect finds it: the compile check rebuilds a kernel from its own lines.
        filename = f"<{cell['origin']} cell {cell.get('index', -1)} {cell['key']}>"
        cell["filename"] = filename
        lines = cell["source"].splitlines(True)
        for name in (filename, os.path.abspath(filename)):
            linecache.cache[name] = (len(cell["source"]), None, lines, name)
        try:
            # For the trainee's sake only (the judge's limit is the process's): a cell of the hand-in that goes on
            # computing (an experiment on a big picture) stops after CELL_TIMEOUT_S, what it defined before kept.
            signal.setitimer(signal.ITIMER_REAL, CELL_TIMEOUT_S if cell["origin"] == "hand-in" else 0)
            source = cell["source"] if cell.get("kept") is not None else transform(cell["source"])
            exec(compile(source, filename, "exec"), ns)
        except BaseException as exc:  # noqa: BLE001 -- a cell's error (even SystemExit) ends that cell only
            errors.append({"cell": cell["key"], "error": f"{type(exc).__name__}: {exc}"[:300]})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    outputs = []
    for case in cases:
        try:
            outputs.append(_encode(_run_case(ns, case, arrays)))
        except BaseException as exc:  # noqa: BLE001
            outputs.append({"error": f"{type(exc).__name__}: {str(exc).strip()[:400]}"})
    answer.write("RESULT " + json.dumps({"outputs": outputs, "cells": errors}) + "\n")
    answer.flush()
    os._exit(0)  # the simulator's threads, a cell's own: nothing of the program's runs after the answer


# --- the judge (in the grader) ----------------------------------------------------------------------------------

class Unusable(Exception):
    pass


def parse_output(out, case: dict):
    """The array ``out`` stands for, if it is the case's dtype and shape exactly, else :class:`Unusable` (or a
    string: the error the evaluated process reported for the case)."""
    import numpy as np

    if not isinstance(out, dict):
        raise Unusable("an answer that is not an array")
    if "error" in out and set(out) == {"error"}:
        return str(out["error"])[:400]
    if set(out) != {"dtype", "shape", "data"}:
        raise Unusable("an answer with other fields than dtype, shape and data")
    dtype, shape, data = out["dtype"], out["shape"], out["data"]
    want_shape = list(case["shape"])
    if not isinstance(dtype, str) or dtype != case["dtype"] or dtype not in DTYPES:
        raise Unusable(f"an array of dtype {str(dtype)[:20]}, expected {case['dtype']}")
    if not isinstance(shape, list) or shape != want_shape or not all(type(v) is int for v in shape):
        raise Unusable(f"an array of shape {str(shape)[:40]}, expected {tuple(want_shape)}")
    if not isinstance(data, str):
        raise Unusable("an array without data")
    size = int(np.prod(want_shape)) * np.dtype(dtype).itemsize
    if len(data) > 4 * (size // 3 + 2):
        raise Unusable("an array with more bytes than its shape holds")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise Unusable("an array whose data is not base64") from None
    if len(raw) != size:
        raise Unusable(f"an array of {len(raw)} bytes, expected {size}")
    return np.frombuffer(raw, dtype=dtype).reshape(want_shape)


ERROR_KEYS = {"NotCompiled": "kernels-not-compiled", "NoCompiler": "kernels-no-compiler", "Raced": "kernels-raced"}


def judge(test: str, cases: list[dict], answer: dict) -> dict:
    """The verdict on one test cell's cases: ``{"passed": True}`` or ``{"passed": False, "key", "kw"}``."""
    import numpy as np

    outs = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(outs, list) or len(outs) != len(cases):
        n = len(outs) if isinstance(outs, list) else 0
        return {"passed": False, "key": "kernels-answer",
                "kw": {"test": test, "why": f"{n} arrays for {len(cases)} cases"}}
    for i, (out, case) in enumerate(zip(outs, cases)):
        where = {"test": test, "case": i + 1, "cases": len(cases), "what": case["what"], "describe": case["describe"]}
        try:
            got = parse_output(out, case)
        except Unusable as exc:
            return {"passed": False, "key": "kernels-answer", "kw": {"test": test, "why": f"case {i + 1}: {exc}"}}
        if isinstance(got, str):
            kind, _, why = got.partition(": ")
            if kind in ERROR_KEYS:  # the kernels-only program's own refusals (a hand-in's code can only fail them)
                return {"passed": False, "key": ERROR_KEYS[kind], "kw": {**where, "why": why}}
            return {"passed": False, "key": "kernels-raised", "kw": {**where, "error": got}}
        want = np.asarray(case["expected"]).astype(np.int64)
        bad = np.argwhere(got.astype(np.int64) != want)
        if bad.size:
            at = tuple(int(v) for v in bad[0])
            return {"passed": False, "key": "kernels-differ",
                    "kw": {**where, "bad": len(bad), "size": int(want.size), "at": str(at),
                           "got": int(got.astype(np.int64)[at]), "want": int(want[at])}}
    return {"passed": True}


def _evaluated_program(where: str) -> list[str]:
    """The evaluated process's command, run in ``where`` (its working folder as it sees it)."""
    return [sys.executable, "-m", "techday.grading.outside_kernels", "--folder", where]


EVAL_ENV = {"NUMBA_ENABLE_CUDASIM": "1", "TECHDAY_TIER": "cpu", "TECHDAY_SCALE": "ci", "NUMBA_NUM_THREADS": "1",
            "MPLBACKEND": "Agg"}


def _evaluate(cells: list[dict], cases: list[dict], sandbox: bool, timeout_s: float, memory_mb: int,
              avoid_uids) -> tuple[dict, dict]:
    """One evaluated process on ``cells`` and ``cases``: (its answer or refusal, {"seconds", "user"})."""
    import numpy as np

    from .outside import run_scorer

    folder = Path(tempfile.mkdtemp(prefix="techday-outside07-"))  # 0700: opened to the process by run_scorer
    try:
        (folder / "program.json").write_text(json.dumps(cells), encoding="utf-8")
        spec, arrays = [], {}
        for i, case in enumerate(cases):
            names = {}
            for name, value in case["inputs"].items():
                names[name] = f"c{i}_{name}"
                arrays[names[name]] = np.ascontiguousarray(value)
            spec.append({"kind": case["kind"], "inputs": names, "args": case["args"],
                         "mode": MODES.get(case["kind"], "kernels")})
        (folder / "cases.json").write_text(json.dumps(spec), encoding="utf-8")
        np.savez(folder / "inputs.npz", **arrays)
        t0 = time.monotonic()
        answer = run_scorer(folder, sandbox, timeout_s, memory_mb, avoid_uids=avoid_uids,
                            program=_evaluated_program, processes=EVAL_PROCESSES, env=EVAL_ENV)
        seconds = round(time.monotonic() - t0, 2)
        user = answer.pop("ran_as", None) if isinstance(answer, dict) else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return answer, {"seconds": seconds, "user": user}


def _verdict(test: str, cases: list[dict], answer) -> tuple[dict, list]:
    if isinstance(answer, dict) and "refused" in answer:
        key = {"time": "kernels-time", "memory": "kernels-memory"}.get(str(answer["refused"]), "stopped")
        kw = answer.get("kw") or {}
        if key == "stopped" and str(answer["refused"]) != "stopped":
            kw = {"why": f"refused: {str(answer['refused'])[:60]}"}
        return {"passed": False, "key": key, "kw": kw}, []
    errors = answer.get("cells") if isinstance(answer, dict) else None
    return judge(test, cases, answer), [str(e)[:300] for e in errors[:8]] if isinstance(errors, list) else []


def score_kernels(nb, course: list[dict] | None, tests, sandbox: bool = True, seed: int | None = None,
                  timeout_s: float = EVAL_TIMEOUT_S, memory_mb: int = EVAL_MEMORY_MB, avoid_uids=()) -> dict:
    """Lab 07's test cells ``tests`` (those the kernel passed) judged outside the kernel: ``{test: result}``,
    each ``{"passed", "key", "kw", "seed", "cases", "seconds", "user", "program", "simulator", "compiled",
    "left_out"}``. The kernel tests run the kernels-only program (:func:`kernels_program`: the hand-in's
    ``@cuda.jit`` definitions and literal constants), each kernel compiled by the real compiler before it is
    simulated; the pipeline test runs the whole program for ``equalize`` (and the canary) and the kernels-only
    program for the course's orchestration. One evaluated process per program and test cell
    (:func:`techday.grading.outside.run_scorer`: a hang or a crash fails that cell only), on cases drawn from
    ``seed`` (fresh from ``secrets`` unless given: a regrade that repeats a record)."""
    seed = draw_seed() if seed is None else int(seed)
    every = program_cells(nb, course)
    where = test_positions(nb, course)
    results = {}
    for test in tests:
        # The cells above the test cell, as in the notebook: a later cell's redefinition (an experiment after the
        # test) is not what the kernel's test ran.
        cells = [c for c in every if c["index"] < where[test]]
        kernel_cells, _, left_out = kernels_program(cells)
        cases = draw_cases(test, seed)
        by_mode = {"full": [c for c in cases if MODES.get(c["kind"], "kernels") == "full"],
                   "kernels": [c for c in cases if MODES.get(c["kind"], "kernels") == "kernels"]}
        record: dict = {"seed": seed, "cases": [c["what"] for c in cases], "program": [], "seconds": 0.0,
                        "user": None, "left_out": left_out[:20],
                        "simulator": "Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), whatever the grading tier",
                        "compiled": f"numba-cuda's compiler, cc {'.'.join(map(str, (8, 0)))}, before the simulator: "
                                    f"{', '.join(KERNELS[test])}"}
        verdict: dict = {"passed": True}
        missing = [n for n in KERNELS[test] if n not in jit_names(kernel_cells)]
        if missing and by_mode["kernels"]:
            verdict = {"passed": False, "key": "kernels-missing", "kw": {"test": test, "name": missing[0]}}
        for mode in ("full", "kernels"):
            if not by_mode[mode] or not verdict["passed"]:
                continue
            program = kernel_cells if mode == "kernels" else cells
            record["program"] += [f"{c['origin']}:{c['key']}" + (" (kernels only)" if "kept" in c else "")
                                  for c in program]
            answer, ran = _evaluate(program, by_mode[mode], sandbox, timeout_s, memory_mb, avoid_uids)
            record["seconds"] = round(record["seconds"] + ran["seconds"], 2)
            record["user"] = record["user"] or ran["user"]
            verdict, errors = _verdict(test, by_mode[mode], answer)
            if verdict.get("kw", {}).get("cases") is not None:  # the case's place among all of the cell's
                verdict["kw"]["case"] = cases.index(by_mode[mode][verdict["kw"]["case"] - 1]) + 1
                verdict["kw"]["cases"] = len(cases)
            if errors:
                record.setdefault("cell_errors", []).extend(errors)
        results[test] = {**record, **verdict}
    return results


if __name__ == "__main__":
    sys.exit(evaluate_main())
