"""What the referee keeps out of reach of a trainee's code (techday/grading/referee.py): a test's source
while the test runs, the kernel's own memory, and the frames of code compiled from a string.

A trainee's function called by a test runs in the test's own interpreter. It cannot read the test's
frame (a tripwire), but a library can find the line that called it without one: ``warnings.warn`` with
a ``stacklevel`` records the caller's file name and line (CPython walks the frames in C, no audit
event), and ``warnings.formatwarning`` quotes that line from ``linecache``. Had the referee put the
test's source there before running it, an answer could read a hidden test's expected value off the
line that calls it. Each case runs in a fresh interpreter: an audit hook cannot be removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DRIVER = r'''
import json, os, sys, tempfile
sys.path[0] = ""  # the working folder first, as in a kernel (not the driver's own folder)
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
folder = tempfile.mkdtemp()
config, records = os.path.join(folder, "referee.json"), os.path.join(folder, "records.log")
reader = open(records, "a+")  # read as the executor does, through a descriptor opened before the referee
cells = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {
    "hidden": {"kind": "test", "source": "x = 2\nassert answer(x) == 42.5  # hidden: the expected value\n"},
    "visible": {"kind": "test", "source": "assert answer(1) == 7.0\n"}}
json.dump({"key": "00" * 32, "records": records, "cells": cells,
           **json.loads(os.environ.get("REFEREE_CONFIG_EXTRA", "{}"))}, open(config, "w"))
assert shell.run_cell(f"import techday.grading.referee as _r; _r.install({config!r}); del _r").success
for key, spec in cells.items():  # the course's own cells first, as a lab's setup runs before any answer
    if spec["kind"] == "locked" and not spec.get("late"):
        assert shell.run_cell(f'__import__("sys").audit("techday.referee.run", {key!r})').success
mine = shell.run_cell(sys.argv[1])
out = {"cell": "ok" if mine.success else f"{type(mine.error_in_exec).__name__}: {mine.error_in_exec}"}
for key, spec in cells.items():  # a locked cell after the trainee's (lab 11's accuracy bar, after the answers)
    if spec["kind"] == "locked" and spec.get("late"):
        result = shell.run_cell(f'__import__("sys").audit("techday.referee.run", {key!r})')
        out[key] = "ok" if result.success else type(result.error_in_exec).__name__
for key in [k for k, spec in cells.items() if spec["kind"] == "test"]:
    result = shell.run_cell(f'__import__("sys").audit("techday.referee.run", {key!r})')
    out[key] = "passed" if result.success else type(result.error_in_exec).__name__
    if cells[key].get("then"):  # a trainee's cell run after this test
        out[key + " then"] = "ok" if shell.run_cell(cells[key]["then"]).success else "failed"
import linecache
out["quoted after a failure"] = linecache.getline("<course cell visible>", 1).strip()
reader.seek(0)
out["records"] = reader.read()
print(json.dumps(out))
'''

# The answer reads the line that called it, through the warnings machinery, and returns the number the
# test compares with: no work at all.
ORACLE = r'''
import re
import warnings

def answer(x):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.warn("where am I", stacklevel=2)
    where = seen[0]
    line = warnings.formatwarning("", UserWarning, where.filename, where.lineno)
    return float(re.search(r"== ([0-9.]+)", line).group(1))
'''


def _run(cell: str, tests: dict | None = None, cwd: Path = ROOT, env: dict | None = None, timeout: int = 120) -> dict:
    """The cell run in a fresh interpreter after the referee (and the course cells of ``tests``), in
    ``cwd`` (on ``sys.path`` first, as a kernel's working folder is); what each test did, and the records.
    ``timeout`` bounds a driver that hangs; it is not a speed target."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    extra = [json.dumps(tests)] if tests else []
    # The driver runs from a file, as a kernel's own code does: code run by ``-c`` is compiled from a
    # string, which the referee counts as a notebook's.
    with tempfile.TemporaryDirectory(prefix="referee-driver-") as folder:
        driver = Path(folder) / "driver.py"
        driver.write_text(DRIVER)
        out = subprocess.run([sys.executable, str(driver), cell, *extra], capture_output=True, text=True, env=env,
                             timeout=timeout, cwd=cwd)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_answer_cannot_read_the_test_that_calls_it():
    got = _run(ORACLE)
    assert got["hidden"] != "passed", got
    assert got["visible"] != "passed", got


def test_a_failed_test_still_shows_its_lines_in_the_traceback():
    got = _run("def answer(x):\n    return 0.0\n")
    assert got["hidden"] == got["visible"] == "AssertionError", got
    assert got["quoted after a failure"] == "assert answer(1) == 7.0", got


def test_the_kernel_cannot_open_its_own_memory():
    """/proc/self/mem would give the referee's key (then forged records pass every test) or let the
    kernel rewrite itself; the grading sandbox's kernel found the key there in a few seconds."""
    got = _run("f = open('/proc/self/mem', 'rb')\n")
    assert got["cell"].startswith("RuntimeError") and "memory" in got["cell"], got
    got = _run("import pathlib\np = pathlib.Path('/tmp/alias-of-mem')\np.unlink(missing_ok=True)\n"
               "p.symlink_to('/proc/self/mem')\nf = open(p, 'rb')\n")
    assert got["cell"].startswith("RuntimeError") and "memory" in got["cell"], got


def test_the_kernel_cannot_read_its_own_memory_map():
    """Wrong answer caught: a lab 10 cell that solved nothing found the referee's compiled tests by
    reading /proc/self/maps, then rewrote them through NumPy's view of an array interface that a
    learning-rate scheduler took from a dict (``load_state_dict``): 15 of 15, ``graded``, no note. Every
    raw-memory cheat so far read the map first; PyTorch's own read as it is imported stays its own."""
    for cell in ("import pathlib\nm = pathlib.Path('/proc/self/maps').read_text()\n",
                 "f = open('/proc/self/task/' + str(__import__('threading').get_native_id()) + '/smaps')\n",
                 "import pathlib\nregions = list(pathlib.Path('/proc/self/map_files').iterdir())\n"):
        got = _run(cell)
        assert got["cell"].startswith("RuntimeError") and "memory map" in got["cell"], (cell, got)
    got = _run("import torch\nx = torch.ones(2)\n")
    assert got["cell"] == "ok" and "tripwire" not in got["records"], got


def test_the_kernel_cannot_open_the_graders_record_file():
    """Wrong answer caught: a "done" record appended to the record file by the kernel's own code (with
    the key read from its memory, such a line passes the executor's check). The file is found by
    listing the folder or through /proc/self/fd; the referee writes through a descriptor of its own."""
    find = ("import pathlib\n"
            "fds = [p for p in pathlib.Path('/proc/self/fd').iterdir() if p.resolve().name == 'records.log']\n"
            "folder = fds[-1].resolve().parent\n")
    got = _run(find + "listed = list(folder.iterdir())\n")
    assert got["cell"].startswith("RuntimeError") and "record file" in got["cell"], got
    got = _run(find + "f = (folder / 'records.log').open('a')\n")
    assert got["cell"].startswith("RuntimeError") and "record file" in got["cell"], got
    got = _run(find + "f = fds[-1].open('a')\n")
    assert got["cell"].startswith("RuntimeError") and "record file" in got["cell"], got
    assert "opening the grader's record file" in got["records"], got


def test_code_compiled_from_a_string_counts_as_the_notebooks():
    """A string handed to a library that evaluates it (typing's forward references) runs with the
    library's frame below it; its own requests are still the notebook's."""
    cell = ("import typing\n"
            "C = typing.NamedTuple('C', [('x', \"__import__('sys')._getframe(0) and int\")])\n"
            "typing.get_type_hints(C)\n")
    got = _run(cell)
    # Refused twice over: the string is not a type expression (below), and its frame request is the
    # notebook's.
    assert got["cell"].startswith("RuntimeError") and "not a type expression" in got["cell"], got
    assert "tripwire" in got["records"], got


# A string built at run time, so no review reads it, handed to a library that evaluates it as a type.
BUILT = "''.join(chr(c) for c in {codes})"


def _built(text: str) -> str:
    return BUILT.format(codes=[ord(c) for c in text])


def test_a_string_a_library_evaluates_as_a_type_must_be_one():
    """Numba evaluates a signature string with the builtins at hand, and its types namespace holds
    ``np`` and ``ctypes``; typing compiles a forward reference. A string built at run time reached
    NumPy's raw memory (no audit event) and read the referee's key: what they compile is now an
    allow-list of type syntax. Wrong answers caught: a call of a builtin, a module of Numba's types
    namespace, a dunder attribute, a call in a forward reference."""
    for text in ("exec('x = 1') or float32(float32)", "np.lib.stride_tricks.as_strided(np.zeros(1), (1,), (0,))",
                 "ctypes", "float32.__class__"):
        cell = f"from numba.core import sigutils\nsigutils.normalize_signature({_built(text)})\n"
        got = _run(cell)
        assert got["cell"].startswith("RuntimeError") and "not a type expression" in got["cell"], (text, got)
    cell = ("import typing\n"
            f"C = typing.NamedTuple('C', [('x', {_built('typing.List[print(1)]')})])\n")
    got = _run(cell)
    assert got["cell"].startswith("RuntimeError") and "not a type expression" in got["cell"], got


def test_type_strings_of_the_course_and_its_libraries_still_evaluate():
    """Wrong answer caught the other way: the allow-list refusing a real signature or annotation (every
    signature form the labs use, Numba's CUDA target's own, typing's usual forward references)."""
    cell = ("from numba.core import sigutils\n"
            "from numba.cuda.core import sigutils as cuda_sigutils\n"
            "for sig in ['void(float32[::1], float32[:, ::1])', 'float32(float32, float32)', "
            "'float64(float64, float64)', 'void(Array(float32, 1, \"C\"), int64)', 'UniTuple(float32, 2)()']:\n"
            "    sigutils.normalize_signature(sig)\n"
            "    cuda_sigutils.normalize_signature(sig)\n"
            "import typing\n"
            "import numpy as np\n"
            "C = typing.NamedTuple('C', [('a', 'typing.Optional[typing.List[int]]'), ('b', 'int | None'), "
            "('c', 'typing.Tuple[int, ...]'), ('d', 'np.ndarray'), ('e', 'typing.Literal[\"x\", 1]')])\n"
            "typing.get_type_hints(C)\n")
    got = _run(cell)
    assert got["cell"] == "ok", got
    assert "tripwire" not in got["records"], got


def test_a_callable_object_swapped_into_numpy_is_a_change():
    """NumPy's functions are dispatcher objects, not Python functions: a callable instance put in place
    of ``np.isclose`` (every element close) made ``assert_close(1.0, 2.0)`` pass; the review took the
    loop variable that set it for the cell's own."""
    tests = {"setup": {"kind": "locked", "source": "import numpy as np\nfrom techday.labtools import assert_close\n"},
             "close": {"kind": "test", "source": "assert_close(1.0, 2.0, 'one and two')\n"}}
    cell = ("class Yes:\n    def __call__(self, *args, **kwargs):\n        return np.ones(1, bool)\n"
            "for m in [np]:\n    m.isclose = Yes()\n")
    got = _run(cell, tests)
    assert got["close"] == "GraderCheck" and "numpy.isclose" in got["records"], got


# Found by attacking the grader with lab 10 and lab 01 submissions that solve nothing: each took points
# and ended ``graded`` before the referee ran tests in a namespace of their own.
NAMESPACE_TESTS = {
    "setup": {"kind": "locked", "source": "BAR = 0.9\ndef score():\n    return 0.5\n"},
    "bar": {"kind": "test", "source": "assert score() >= BAR, 'below the bar'\n"},
    "magnitude": {"kind": "test", "source": "assert abs(answer(-2.0)) == 2.0\n"},
    "reference": {"kind": "test", "source": "def reference_answer(x):\n    return x\nexpected = 42.0\n"
                                             "assert answer(expected) == reference_answer(expected)\n"},
    "later": {"kind": "test", "source": "assert answer(1.0) == reference_answer(1.0)\n"},
}


def test_a_locked_cells_value_is_the_courses_in_every_test():
    """A cell that rebinds a plain value a locked cell bound (lab 10's accuracy ``BAR = 0.0``) passed
    the bar test with an untrained model (4 points). Wrong answer caught: the rebound value."""
    got = _run("BAR = 0.0\ndef answer(x):\n    return 0.0\n", NAMESPACE_TESTS)
    assert got["bar"] == "AssertionError" and " restored bar BAR " in got["records"], got
    honest = _run("def answer(x):\n    return x\n", NAMESPACE_TESTS)
    assert "restored" not in honest["records"], honest


def test_a_builtin_a_test_calls_is_the_builtin():
    """Tests ran in the notebook's namespace, where a cell's ``def abs`` hides the builtin (lab 10's
    evaluate test: 2 points for an answer computing nothing). Wrong answer caught: ``abs`` returning 2."""
    got = _run("def abs(v):\n    return 2.0\ndef answer(x):\n    return 0.0\n", NAMESPACE_TESTS)
    assert got["magnitude"] == "AssertionError", got
    honest = _run("def answer(x):\n    return x\n", NAMESPACE_TESTS)
    assert honest["magnitude"] == honest["reference"] == honest["later"] == "passed", honest


def test_a_tests_own_names_are_out_of_the_notebook_between_tests():
    """What a test binds (its expected values, a reference function, a helper a later test calls) is
    not left in the notebook's namespace: a cell between two tests that puts its own value under a
    name the first test bound and the second reads changed the second test. Wrong answer caught: a
    later test's reference replaced by the answer itself. (An answer that reads a test's name while
    that test calls it is the review's: the test runs in the notebook's namespace, where its spies
    must reach the answer.)"""
    between = {**NAMESPACE_TESTS, "reference": {**NAMESPACE_TESTS["reference"],
                                                "then": "reference_answer = answer\nprint(expected)\n"}}
    got = _run("def answer(x):\n    return 0.0 if x == 1.0 else x\n", between)
    assert got["reference"] == "passed" and got["later"] == "AssertionError", got
    assert got["reference then"] == "failed", "the test's expected value is not left for a later cell to read"
    got = _run("def answer(x):\n    return x\n", NAMESPACE_TESTS)
    assert got["reference"] == got["later"] == "passed", got


def test_a_name_added_to_a_course_module_is_a_change():
    """A name added to a module its functions look up first: ``isinstance`` set on ``techday.labtools``
    made every check there say yes (lab 01: a host object passed as a CUDA kernel, 4 points). Only
    names already there were compared. Wrong answers caught: a builtin's name added to a course module,
    a cell's function added to NumPy, a method hidden by an attribute of a course object."""
    tests = {"setup": {"kind": "locked", "source": "import numpy as np\nimport techday.labtools\n"
                                                    "from techday.labtools import assert_close\n"},
             "close": {"kind": "test", "source": "assert_close(1.0, 2.0, 'one and two')\n"}}
    for cell, what in (("def yes(*a):\n    return True\nfor m in [techday.labtools]:\n    m.isinstance = yes\n",
                        "techday.labtools.isinstance (added)"),
                       ("def near(*a, **k):\n    return True\nfor m in [np]:\n    m.near = near\n",
                        "numpy.near (added)")):
        got = _run(cell, tests)
        assert got["close"] == "GraderCheck" and what in got["records"], (cell, got)
    honest = _run("import numpy.linalg\nx = np.linalg.norm(np.ones(3))\n", tests)
    assert honest["close"] == "AssertionError" and "changed" not in honest["records"], honest


def test_a_locked_helper_a_test_calls_reads_the_courses_names_and_the_builtins():
    """A function a locked cell defines looks its names up in the notebook's namespace when a test calls
    it (lab 10's accuracy bar reads ``train`` and ``BAR_EPOCHS``): the names the test's own source reads
    were set for the test, the helper's were not. Wrong answers caught: the helper's limit rebound, and
    the builtin it calls shadowed by a cell."""
    tests = {"setup": {"kind": "locked", "source": "LIMIT = 3.0\ndef within(v):\n    return abs(v) <= LIMIT\n"},
             "helper": {"kind": "test", "source": "assert within(answer(-5.0))\n"}}
    for cell in ("LIMIT = 99.0\ndef answer(x):\n    return x\n", "def abs(v):\n    return 0.0\ndef answer(x):\n    return x\n"):
        got = _run(cell, tests)
        assert got["helper"] == "AssertionError", (cell, got)
    assert _run("def answer(x):\n    return x / 2\n", tests)["helper"] == "passed"


def test_a_helper_an_earlier_test_defined_reads_the_builtins():
    """A function a test defines and a later test calls (lab 07's ``check_pipeline_launches``) reads its
    names from the notebook's namespace too. Wrong answer caught: a cell's ``abs`` in that helper."""
    tests = {"setup": {"kind": "locked", "source": "X = 1\n"},
             "t2": {"kind": "test", "source": "def near(a, b):\n    return abs(a - b) < 1e-9\nassert near(3.0, 3.0)\n"},
             "t3": {"kind": "test", "source": "assert near(answer(), 3.0)\n"}}
    got = _run("def abs(v):\n    return 0.0\ndef answer():\n    return 0.0\n", tests)
    assert got["t2"] == "passed" and got["t3"] == "AssertionError", got
    assert _run("def answer():\n    return 3.0\n", tests)["t3"] == "passed"


# The course's data, changed in place: a locked cell's array, dict or list keeps its name (rebinding is
# seen) while a cell rewrites what it holds. Lab 11's held-out labels zeroed by ``data.test.y.zero_()``
# made a constant model "accurate": 4 points for a submission that solved nothing, ``graded``.
DATA_TESTS = {
    "setup": {"kind": "locked", "source": "import numpy as np\nimport torch\nfrom dataclasses import dataclass\n"
                                          "from techday.dl import Split\n"
                                          "LABELS = np.array([3, 1, 4, 1, 5])\nEXPECTED = {'total': 14}\n"
                                          "ROWS = [1.0, 2.0]\nheld_out = Split(torch.ones(5, 1, 8, 8), torch.tensor([3, 1, 4, 1, 5]))\n"
                                          "model = torch.nn.Linear(2, 1)\nX = torch.ones(4, 2)\n"
                                          "import techday\nlab = techday.setup(tier='cpu', scale='ci')\n"
                                          "def truth():\n    return LABELS\n"},
    "bar": {"kind": "locked", "late": True,
            "source": "lab.scratch('t-')\nscore = float((predict(held_out.x) == held_out.y).float().mean())\n"},
    "labels_tests": {"kind": "test", "source": "assert (answer() == truth()).all()\n"},
    "expected_tests": {"kind": "test", "source": "assert total() == EXPECTED['total']\n"},
    "rows_tests": {"kind": "test", "source": "assert row_sum() == sum(ROWS)\n"},
    "bar_tests": {"kind": "test", "source": "assert score >= 0.9\n"},
    "model_tests": {"kind": "test", "source": "assert float(model(X).abs().sum()) == 0.0\n"},
}
LAZY = ("def answer():\n    return np.zeros(5, int)\ndef total():\n    return 0\ndef row_sum():\n    return 0.0\n"
        "def predict(x):\n    return torch.zeros(len(x), dtype=torch.long)\n")
HONEST = ("def answer():\n    return np.array([3, 1, 4, 1, 5])\ndef total():\n    return 14\ndef row_sum():\n    return 3.0\n"
          "def predict(x):\n    return torch.tensor([3, 1, 4, 1, 5])\n"
          "with torch.no_grad():\n    model.weight.zero_()\n    model.bias.zero_()\n")


def test_the_course_data_a_course_cell_reads_is_as_the_course_left_it():
    """A cell that changes a locked cell's data in place (an array zeroed, an expected value in a dict,
    a list emptied, a dataclass's tensor of labels zeroed before the locked cell that measures the
    accuracy bar) no longer lowers what the answers must match: the data is put back before every course
    cell, and the status line says so. Wrong answers caught: zeros matching zeroed labels, 0 matching
    a zeroed expected total and an emptied list, an accuracy measured against zeroed labels."""
    cheat = LAZY + ("LABELS[:] = 0\nEXPECTED['total'] = 0\nROWS.clear()\nheld_out.y.zero_()\n"
                    "with torch.no_grad():\n    model.weight.zero_()\n    model.bias.zero_()\n")
    got = _run(cheat, DATA_TESTS)
    assert got["labels_tests"] == got["expected_tests"] == got["rows_tests"] == "AssertionError", got
    assert got["bar"] == "ok" and got["bar_tests"] == "AssertionError", got
    for what in ("reset bar LABELS, held_out.y", "reset expected_tests EXPECTED", "reset rows_tests ROWS"):
        assert what in got["records"], (what, got)
    # Honest work: the same cells with the right answers, and a course model trained in place.
    honest = _run(HONEST, DATA_TESTS)
    assert all(honest[k] == "passed" for k in DATA_TESTS if k.endswith("_tests")) and honest["bar"] == "ok", honest
    assert "reset" not in honest["records"] and "changed" not in honest["records"], honest


def test_course_data_changed_while_a_course_cell_runs_does_not_count():
    """The same change made by the answer a course cell calls (lab 11's ``make_cnn`` zeroing the held-out
    labels while the locked accuracy cell trains it), or rebinding the data before that cell. Wrong
    answers caught: a test and a locked cell's accuracy computed from labels zeroed meanwhile, and from
    a rebound split."""
    during = LAZY.replace("def answer():\n", "def answer():\n    LABELS[:] = 0\n").replace(
        "def predict(x):\n", "def predict(x):\n    held_out.y.zero_()\n")
    got = _run(during, DATA_TESTS)
    assert got["labels_tests"] == "GraderCheck" and "changed labels_tests during: the course's data LABELS" in got["records"], got
    assert got["bar"] == "GraderCheck" and got["bar_tests"] == "NameError", got
    reshaped = LAZY + "held_out.y.resize_(1)\nheld_out.y.zero_()\n"
    got = _run(reshaped, DATA_TESTS)
    assert got["bar"] == "GraderCheck" and "held_out.y (not restorable)" in got["records"], got
    rebound = LAZY + "held_out = Split(torch.ones(5, 1, 8, 8), torch.zeros(5, dtype=torch.long))\n"
    got = _run(rebound, DATA_TESTS)
    assert got["bar"] == "ok" and got["bar_tests"] == "AssertionError" and " restored bar held_out " in got["records"], got


# A library's class changed by a cell. Setting a class's attribute raises no audit event (only its special
# ones do), and the review follows a name only as far as the syntax shows: ``for T in [torch.Tensor]``
# (or a function's parameter) hid ``torch.Tensor.sum`` replaced by a cell, and lab 11's accuracy bar
# counted every prediction right: 4/13, ``graded``, no note (tests/grading/test_lab_data_routes.py).
PATCH_EQ = "    T.__eq__ = lambda self, other: torch.ones(self.shape, dtype=torch.bool)\n"


def test_a_library_class_patched_by_a_cell_does_not_count():
    """Wrong answers caught: a constant model made "accurate" by ``Tensor.__eq__`` answering True (a
    cell's lambda, or a partial of a cell's function), set before the locked accuracy cell, or by the
    answer that cell calls and taken away by a cell before the test that reads the accuracy (the locked
    cell is checked too). Not caught at run time (grading/README.md, "Patches made through a library's
    own code"): the library's own ``__le__`` put in its place."""
    partial = ("    import functools\n    T.__eq__ = functools.partial(lambda self, other, to: torch.full(self.shape, to), "
               "to=True)\n")
    for patch in (PATCH_EQ, partial):
        got = _run(LAZY + "for T in [torch.Tensor]:\n" + patch, DATA_TESTS)
        assert got["bar"] == got["bar_tests"] == "GraderCheck", (patch, got)
        assert "changed bar before: torch.Tensor.__eq__" in got["records"], got
    inside = LAZY.replace("def predict(x):\n", "def predict(x):\n    for T in [torch.Tensor]:\n    " + PATCH_EQ)
    tests = {**DATA_TESTS, "labels_tests": {**DATA_TESTS["labels_tests"], "then": "del torch.Tensor.__eq__\n"}}
    got = _run(inside, tests)
    assert got["labels_tests then"] == "ok", got  # the patch is gone before the accuracy's test runs
    assert got["bar"] == "GraderCheck" and got["bar_tests"] == "NameError", got
    assert "changed bar during: torch.Tensor.__eq__" in got["records"], got
    # Honest work: a trainee's own class's attributes set, a parameter's flag set, a module trained in place.
    honest = _run(HONEST + "class Mine:\n    pass\nMine.limit = 3\nMine.twice = lambda self: 2\n"
                  "for p in model.parameters():\n    p.requires_grad = True\n", DATA_TESTS)
    assert all(honest[k] == "passed" for k in DATA_TESTS if k.endswith("_tests")) and honest["bar"] == "ok", honest
    assert "changed" not in honest["records"], honest


def test_the_class_of_an_object_cannot_be_swapped_by_a_cell():
    """Wrong answer caught: the course's labels given a subclass whose ``==`` is always true (the
    accuracy cell compares predictions with them). The swap is refused (an audited event); had it
    happened another way, the labels are not put back as the course left them and the cell does not count."""
    swap = LAZY + ("class Yes(torch.Tensor):\n    def __eq__(self, other):\n"
                   "        return torch.ones(self.shape, dtype=torch.bool)\nheld_out.y.__class__ = Yes\n")
    got = _run(swap, DATA_TESTS)
    assert got["cell"].startswith("RuntimeError") and "changing the class of a Tensor object" in got["records"], got
    assert got["bar_tests"] == "AssertionError", got


def test_the_copy_budget_comes_back_when_the_course_rebinds_a_name():
    """A locked cell that rebinds a large array gives its copy's bytes back: with a budget of 1,000 bytes,
    800 taken by ``BIG`` and then ``BIG`` rebound to 80 bytes, the 160 bytes of ``LABELS`` bound after
    it are watched. Wrong answer caught: the labels zeroed in a cell, unwatched when the old copy's
    bytes were still counted."""
    tests = {"setup": {"kind": "locked", "source": "import numpy as np\nBIG = np.zeros(100)\n"},
             "more": {"kind": "locked", "source": "BIG = np.zeros(10)\nLABELS = np.arange(1, 21)\n"
                                                  "def truth():\n    return LABELS\n"},
             "labels_tests": {"kind": "test", "source": "assert (answer() == truth()).all()\n"}}
    cheat = "LABELS[:] = 0\ndef answer():\n    return np.zeros(20, int)\n"
    got = _run(cheat, tests, env={"REFEREE_CONFIG_EXTRA": json.dumps({"data_copy_bytes": 1000})})
    assert got["labels_tests"] == "AssertionError" and "reset labels_tests LABELS" in got["records"], got


def test_a_name_a_failed_locked_cell_left_unbound_is_not_the_notebooks():
    """A locked cell that fails half-way (its ``acc0 = bar_accuracy(0)`` calls an answer that raises)
    binds nothing the course vouches for; a cell after it bound ``BAR = 0.0`` and ``acc0 = 1.0`` and lab
    10's bar test took them: 4 points with nothing trained. Such a name is unbound while a test runs
    (NameError, an ordinary failure), and the notebook's value is back afterwards. The other way: the
    same locked cell, with an answer that works, leaves its own values, whatever a later cell binds."""
    cells = {"bar": {"kind": "locked", "late": True, "source": "BAR = 0.9\nacc0 = answer()\n"},
             "first": {"kind": "test", "source": "pass\n", "then": "BAR = 0.0\nacc0 = 1.0\n"},
             "bar_tests": {"kind": "test", "source": "assert acc0 >= BAR\n",
                           "then": "assert acc0 == 1.0 and BAR == 0.0\n"}}
    got = _run("def answer():\n    raise NotImplementedError\n", cells)
    assert got["bar"] == "NotImplementedError" and got["bar_tests"] == "NameError", got
    assert got["bar_tests then"] == "ok", got
    got = _run("def answer():\n    return 0.5\n", cells)
    assert got["bar"] == "ok" and got["bar_tests"] == "AssertionError", got
