"""Lab 07's outside check runs only real CUDA kernels, compiled first (techday/grading/outside_kernels.py): for the
kernel tests the evaluated process runs the course's definition cells and, of the hand-in, only ``@cuda.jit``
definitions and literal constants taken by ``ast``; each kernel is compiled by numba-cuda's real compiler for the
judge's argument types before the simulator runs it; the histogram is launched under ``check_races``; the
pipeline also runs the course's orchestration with the trainee's kernels and a canary table.

Each test names the wrong answer it catches; each of those passed outside before this check (shown on the old
code). Run without the sandbox (the runner is the same; the sandbox is tested in test_outside_kernels.py).
"""

from __future__ import annotations

import pytest

from techday.grading.outside_kernels import score_kernels
from tests.grading.test_outside_kernels import built, solution  # noqa: F401 -- the module's fixture

pytestmark = [pytest.mark.grading]

HOST_BLUR_FORGED = '''import numpy as np
from techday.imageref import blur_reference


class HostBlur:
    """Indexes and calls like a kernel, blurs on the host with NumPy."""

    def __getitem__(self, config):
        def run(img, weights, out):
            out.copy_to_device(blur_reference(img.copy_to_host(), weights.copy_to_host()).astype(out.dtype))
        return run


blur_kernel = HostBlur()
# The in-kernel verdict's stand-in, forged: "is it a CUDA kernel?" answers yes.
import techday.labtools as _labtools
_labtools.assert_cuda_kernel = lambda *args, **kwargs: None
'''

FSTRING_BLUR = '''@cuda.jit
def blur_kernel(img, weights, out):
    """Right numbers, with an f-string and a list no GPU compiles."""
    label = f"blur {img.shape[0]}"
    taps = [0, 0]
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    rows, cols = img.shape
    k = weights.shape[0]
    r = k // 2
    total = 0
    for i in range(k):
        for j in range(k):
            total += weights[i, j]
    for row in range(row0, rows, row_stride):
        for col in range(col0, cols, col_stride):
            acc = 0
            for i in range(k):
                y = min(max(row + i - r, 0), rows - 1)
                for j in range(k):
                    x = min(max(col + j - r, 0), cols - 1)
                    acc += weights[i, j] * img[y, x]
            out[row, col] = (acc + total // 2) // total
'''

RACING_HISTOGRAM = '''@cuda.jit
def histogram_kernel(img, hist):
    """Counts per block in shared memory, merged with a plain += (a race between blocks on a GPU)."""
    local = cuda.shared.array(256, numba.int32)
    t = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    threads = cuda.blockDim.x * cuda.blockDim.y
    for b in range(t, 256, threads):
        local[b] = 0
    cuda.syncthreads()
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            cuda.atomic.add(local, img[row, col], 1)
    cuda.syncthreads()
    for b in range(t, 256, threads):
        hist[b] += local[b]
'''

HOST_PIPELINE = '''@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    d_out.copy_to_device(pipeline_reference(d_img.copy_to_host(), d_weights.copy_to_host()))


def equalize(img, weights):
    return pipeline_reference(img, weights)
'''

HOST_APPLY = '''class HostApply:
    def __getitem__(self, config):
        def run(img, lut, out):
            out.copy_to_device(lut.copy_to_host()[img.copy_to_host()])
        return run


apply_lut_kernel = HostApply()


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    grid = grid_2d(d_img.shape)
    clear_kernel[1, 256](d_hist)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    histogram_kernel[grid, BLOCK_2D](d_blurred, d_hist)
    lut_kernel[1, 256](d_hist, d_lut)
    apply_lut_kernel[grid, BLOCK_2D](d_blurred, d_lut, d_out)


def equalize(img, weights):
    d_img = cuda.to_device(np.ascontiguousarray(img, np.uint8))
    d_weights = cuda.to_device(np.asarray(weights, np.int32))
    d_blurred = cuda.device_array(img.shape, np.uint8)
    d_out = cuda.device_array(img.shape, np.uint8)
    d_hist = cuda.device_array(256, np.int32)
    d_lut = cuda.device_array(256, np.uint8)
    equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)
    return d_out.copy_to_host()
'''


def one(nb, test):
    """One test cell judged outside; a failing verdict's reason must render in both languages."""
    from techday.grading.outside import failed_text, reason_text
    from techday.i18n import PackageCatalogue

    (result,) = score_kernels(nb, None, [test], sandbox=False).values()
    print(test, result.get("key"), result.get("kw"), result.get("seconds"), "s")
    if not result["passed"]:
        for lang in ("en", "ko"):
            c = PackageCatalogue(lang)
            text = failed_text(c, reason_text(c, result["key"], result["kw"]), "cuda-kernels-rerun")
            print(lang, text)
            assert "no readable reason" not in text and "{" not in text, text
    return result


def test_a_numpy_object_named_blur_kernel_with_a_forged_verdict_fails_outside(built):
    """Caught: ``blur_kernel`` is an object that indexes and calls like a kernel and blurs on the host with NumPy,
    and a cell of the trainee's forges the in-kernel "is it a CUDA kernel" verdict: right outputs, so the outside
    check passed it. Now the blur test needs a ``@cuda.jit`` definition named ``blur_kernel`` in the hand-in:
    none, so the test fails outside with that reason (``kernels-missing``), nothing of the cell run."""
    result = one(solution(built, {"blur_kernel": HOST_BLUR_FORGED}), "blur_kernel_tests")
    assert result["passed"] is False and result["key"] == "kernels-missing", result
    assert result["kw"]["name"] == "blur_kernel", result


def test_a_kernel_with_an_f_string_and_a_list_fails_outside_with_the_compilers_reason(built):
    """Caught: a blur kernel with right numbers that holds an f-string and a list: the simulator runs it as
    Python, no GPU compiles it; it passed outside. Now it is compiled by numba-cuda for the judge's argument
    types first, and fails with the compiler's reason (``kernels-not-compiled``) before any thread runs."""
    result = one(solution(built, {"blur_kernel": FSTRING_BLUR}), "blur_kernel_tests")
    if result.get("key") == "kernels-no-compiler":
        pytest.fail(f"the compiler cannot run here: {result['kw']}")
    assert result["passed"] is False and result["key"] == "kernels-not-compiled", result
    assert "blur_kernel" in result["kw"]["why"] and "uint8" in result["kw"]["why"], result


def test_a_histogram_whose_merge_races_fails_outside(built):
    """Caught: a histogram whose blocks merge their counters into ``hist`` with a plain ``+=`` (lost counts on a
    GPU; the simulator runs one block after another, so its outputs are right and it passed outside). Now one
    case is launched under the course's ``check_races``: the race fails the test (``kernels-raced``)."""
    result = one(solution(built, {"histogram_kernel": RACING_HISTOGRAM}), "histogram_kernel_tests")
    assert result["passed"] is False and result["key"] == "kernels-raced", result


def test_a_pipeline_computed_on_the_host_fails_outside(built):
    """Caught: ``equalize`` and ``equalize_device`` that compute the picture with the course's NumPy pipeline
    (right pictures: it passed outside). Now ``equalize`` is also run once with the course's canary in place of
    ``lut_kernel`` (a table that inverts the levels): a pipeline that does not launch ``lut_kernel`` gives the
    uninverted picture and fails (``kernels-differ`` on the canary case)."""
    result = one(solution(built, {"pipeline": HOST_PIPELINE}), "pipeline_tests")
    assert result["passed"] is False and result["key"] == "kernels-differ", result
    assert result["kw"]["describe"][0] == "equalize-canary", result


def test_a_table_applied_on_the_host_fails_outside(built):
    """Caught: ``apply_lut_kernel`` an object that applies the table on the host with NumPy indexing, the rest
    of the pipeline honest (right pictures: it passed outside). Now the course's own orchestration (clear, blur,
    histogram, table, apply) runs with the hand-in's ``@cuda.jit`` definitions only: there is none named
    ``apply_lut_kernel`` (``kernels-missing``)."""
    result = one(solution(built, {"pipeline": HOST_APPLY}), "pipeline_tests")
    assert result["passed"] is False and result["key"] == "kernels-missing", result
    assert result["kw"]["name"] == "apply_lut_kernel", result


def test_the_trainees_top_level_code_does_not_run_for_the_kernel_tests(built, tmp_path):
    """Caught: top-level code of the trainee's in the evaluated process (here a cell that writes a file, prints
    and replaces ``np.sum``; it could as well replace the kernel or the simulator): it ran for every test cell.
    Now the kernel tests' program holds the hand-in's ``@cuda.jit`` definitions and literal constants only: the
    file is never written, the honest kernels pass, and the record lists what was left out."""
    mark = tmp_path / "ran"
    cell = (f"import numpy as np\nprint('trainee code ran')\nopen({str(mark)!r}, 'w').write('ran')\n"
            "np.sum = lambda *a, **k: 0\nBINS = 256\n")
    nb = solution(built, after={"blur_kernel": cell})
    results = score_kernels(nb, None, ["blur_kernel_tests", "histogram_kernel_tests", "lut_kernel_tests"],
                            sandbox=False)
    assert not mark.exists(), "the trainee's top-level code ran in the evaluated process"
    for test, result in results.items():
        print(test, result.get("seconds"), "s", result.get("left_out"))
        assert result["passed"] is True, (test, result)
        assert any("import" in x for x in result["left_out"]), result


def test_only_decorated_definitions_and_literal_constants_are_taken():
    """Caught: statements that would run the trainee's code at definition time: a decorator that is not
    ``cuda.jit`` (or one with a call among its arguments), a default value or an annotation that calls, an
    assignment of a call, a statement sharing a line with a kept one, a name of the course's definition cells
    redefined. Kept: ``@cuda.jit``, ``@cuda.jit(device=True)``, ``@numba.cuda.jit("void(int32[:])")``, numbers,
    tuples of numbers, ``np.int32``; a magic line (``%%time``) is blanked; line numbers are kept."""
    from techday.grading.outside_kernels import kernel_statements

    source = ("%%time\n"
              "import os\n"
              "N = 256\n"
              "PAIR = (16, -8)\n"
              "DT = np.int32\n"
              "X = os.getpid()\n"
              "@cuda.jit\ndef k1(a):\n    a[0] = N\n"
              "@cuda.jit(device=True)\ndef d1(a):\n    return a\n"
              "@numba.cuda.jit('void(int32[:])')\ndef k2(a):\n    a[0] = 1\n"
              "@cuda.jit(max_registers=os.cpu_count())\ndef k3(a):\n    pass\n"
              "@functools.cache\ndef k4(a):\n    pass\n"
              "@cuda.jit\ndef k5(a, b=os.system('x')):\n    pass\n"
              "@cuda.jit\ndef k6(a: os.system('x')):\n    pass\n"
              "def plain(a):\n    return a\n"
              "BLOCK_2D = (1, 1)\n"
              "@cuda.jit\ndef clear_kernel(a):\n    pass\n"
              "Y = 1; import sys\n")
    text, kept, left_out = kernel_statements(source, {"BLOCK_2D", "clear_kernel", "np", "cuda", "numba"})
    assert kept == ["N", "PAIR", "DT", "k1", "d1", "k2"], (kept, left_out)
    lines = text.split("\n")
    assert len(lines) == len(source.split("\n")) and lines[7] == "def k1(a):", lines
    for gone in ("os", "%%time", "k3", "k4", "k5", "k6", "plain", "BLOCK_2D", "clear_kernel", "sys", "Y"):
        assert gone not in text, gone
    assert len(left_out) == 11, left_out


def test_imports_of_names_from_the_kernels_libraries_are_taken(built):
    """Kept (an honest style that the allow-list first failed): a cell that imports what its kernel uses from
    Numba or math (``from numba import int32``, ``import math``) and sizes its counters with it; the import runs
    (library code only), the histogram passes outside. Left out: an import of any other module, a relative or
    star import, an import of a name of the course's cells."""
    from techday.grading.outside_kernels import kernel_statements

    text, kept, left_out = kernel_statements(
        "from numba import int32 as i32, uint8\nimport math\nimport os\nfrom numba import *\n"
        "from . import x\nfrom numba import cuda\nimport numba.cuda\n", {"cuda", "np", "numba"})
    assert kept == ["i32, uint8", "math"], (kept, left_out)
    assert len(left_out) == 5 and "os" not in text, left_out
    cell = ("from numba import int32\n\n\n" + RACING_HISTOGRAM.replace("numba.int32", "int32")
            .replace("hist[b] += local[b]", "cuda.atomic.add(hist, b, local[b])"))
    result = one(solution(built, {"histogram_kernel": cell}), "histogram_kernel_tests")
    assert result["passed"] is True, result


NO_COMPILER = r'''
import os, sys, types
os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
import linecache
import numpy as np
from numba import cuda
from techday import simcompile
from techday.grading import outside_kernels as ok

src = "@cuda.jit\ndef k(a):\n    a[cuda.grid(1)] = 1\n"
linecache.cache["<hand-in cell 1 k>"] = (len(src), None, src.splitlines(True), "<hand-in cell 1 k>")
ns = {"cuda": cuda}
exec(compile(src, "<hand-in cell 1 k>", "exec"), ns)
args = (cuda.to_device(np.zeros(4, np.int32)),)


class Gone:
    def __init__(self):
        raise OSError("the compiling process did not start")


class NoNvvm:
    def ask(self, defs, job):
        return {"id": "1", "status": "failed", "error": "NvvmSupportError: libNVVM cannot be found."}


for fake in (Gone, NoNvvm):
    simcompile._Server = fake
    simcompile._state["server"] = None
    ok._COMPILED.clear()
    try:
        ok._compiled(ns, "k", args)
        print("RAN")
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
'''


def test_a_grader_without_the_compiler_fails_closed():
    """Caught: a grader whose compiler cannot run (no NVVM, the compiling child does not start) simulating a
    kernel it never compiled, as the CPU tier's launch check does (it says so on standard error and lets the
    launch run): outside, that kernel is not launched, the test fails with ``kernels-no-compiler`` and its reason
    (fail closed: an instructor regrades on a grader that has the compiler)."""
    import subprocess
    import sys

    from techday.grading.outside import reason_text
    from techday.grading.outside_kernels import draw_cases, judge
    from techday.i18n import PackageCatalogue
    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", NO_COMPILER], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    lines = [x for x in out.stdout.splitlines() if x]
    print(lines, out.stderr[-500:])
    assert lines == ["NoCompiler: the compiling process did not start",
                     "NoCompiler: the CUDA compiler libraries (NVVM) are missing"], (lines, out.stderr[-2000:])
    cases = draw_cases("lut_kernel_tests", 2**20 + 4)
    verdict = judge("lut_kernel_tests", cases, {"outputs": [{"error": lines[1]}] * len(cases)})
    assert verdict["passed"] is False and verdict["key"] == "kernels-no-compiler", verdict
    for lang in ("en", "ko"):
        text = reason_text(PackageCatalogue(lang), verdict["key"], verdict["kw"])
        assert "NVVM" in text and "readable" not in text, text


COMPUTED_CONSTANTS_HISTOGRAM = '''
BINS = 2 ** 8
HALF = BINS // 2
THREADS_2D = BLOCK_2D[0] * BLOCK_2D[1]


@cuda.jit
def histogram_kernel(img, hist):
    local = cuda.shared.array(BINS, numba.int32)
    t = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    threads = cuda.blockDim.x * cuda.blockDim.y
    for b in range(t, HALF + HALF, threads):
        local[b] = 0
    cuda.syncthreads()
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            cuda.atomic.add(local, img[row, col], 1)
    cuda.syncthreads()
    for b in range(t, BINS, threads):
        if local[b] != 0:
            cuda.atomic.add(hist, b, local[b])
'''


def test_constants_computed_from_numbers_and_earlier_constants_are_taken(built):
    """Kept (an honest style the allow-list failed: a hand-in losing its points outside for how it wrote a
    constant): ``BINS = 2 ** 8``, ``HALF = BINS // 2``, ``THREADS_2D = BLOCK_2D[0] * BLOCK_2D[1]`` (arithmetic on
    numbers, on the course's names and on constants taken before it); the histogram sized by them passes outside.
    Left out, as before: a constant that calls or reads an attribute (``BINS.bit_length()``, ``os.getpid() * 2``),
    or reads a name that is no constant (``W = UNKNOWN + 1``, a function's name)."""
    from techday.grading.outside_kernels import kernel_statements

    text, kept, left_out = kernel_statements(
        "BINS = 2 ** 8\nHALF = BINS // 2\nT = BLOCK_2D[0] * BLOCK_2D[1]\nNEG = -(BINS - 1)\nZ = BINS.bit_length()\n"
        "import os\nP = os.getpid() * 2\nW = UNKNOWN + 1\n@cuda.jit\ndef k(a):\n    a[0] = 1\nK = k * 2\n",
        {"BLOCK_2D", "cuda", "np", "numba"})
    assert kept == ["BINS", "HALF", "T", "NEG", "k"], (kept, left_out)
    assert len(left_out) == 5 and "getpid" not in text and "bit_length" not in text, left_out
    result = one(solution(built, {"histogram_kernel": COMPUTED_CONSTANTS_HISTOGRAM}), "histogram_kernel_tests")
    assert result["passed"] is True, result


def test_a_signature_or_a_wrapping_runs_nothing_of_the_trainees():
    """Caught: a decorator's signature is evaluated when the kernel is defined, before any check; left out, so
    that no code of the trainee's runs then: a name of a Numba type rebound by the hand-in (a device function
    named ``void``, whose Python body the simulator would run at definition time; an alias; a constant; NumPy's
    ``float32``), a call of anything but a type (``getattr``), a subscript that is no array dimension, a string
    signature computed by a call; a wrapping of a class, a lambda, a function that is no plain definition of the
    hand-in's above it, a plain definition with a default that calls, a plain definition nobody wraps."""
    from techday.grading.outside_kernels import kernel_statements

    course = {"cuda", "np", "numba", "BLOCK_2D"}
    cases = {
        "device function named void": "@cuda.jit(device=True)\ndef void(x):\n    return x\n",
        "alias named void": "from numba import void\n@cuda.jit(device=True)\ndef d(x):\n    return x\nvoid = d\n",
        "constant named void": "from numba import void\nvoid = 3\n",
        "numpy's float32": "from numpy import float32 as void\n",
    }
    kernel = "@cuda.jit(void(numba.int32[:]))\ndef k(a):\n    a[0] = 1\n"
    for what, before in cases.items():
        text, kept, left_out = kernel_statements(before + kernel, course)
        assert "k" not in kept and "def k" not in text, (what, kept, left_out)
    refused = [
        "from numba import void\n@cuda.jit(void(getattr(numba, 'int32')[:]))\ndef k(a):\n    a[0] = 1\n",
        "from numba import void, int32\n@cuda.jit(void(int32[open('/x')]))\ndef k(a):\n    a[0] = 1\n",
        "from numba import int32\n@cuda.jit(int32[:, 1:2])\ndef k(a):\n    a[0] = 1\n",
        "import os\ndef f(a):\n    a[0] = 1\nk = cuda.jit(os.environ['SIG'])(f)\n",
        "class F:\n    pass\nk = cuda.jit(F)\n",
        "k = cuda.jit(lambda a: None)\n",
        "k = cuda.jit(np.sum)\n",
        "k = cuda.jit(f)\ndef f(a):\n    a[0] = 1\n",
        "import os\ndef f(a, b=os.system('x')):\n    a[0] = 1\nk = cuda.jit(f)\n",
        "def f(a):\n    a[0] = 1\nk = cuda.jit(f, device=os.getpid())\n",
        "def f(a):\n    a[0] = 1\nk = cuda.jit(f)(1)\n",
    ]
    for source in refused:
        text, kept, left_out = kernel_statements(source, course)
        assert "k" not in kept, (source, kept, left_out)
    text, kept, left_out = kernel_statements("def helper(a):\n    return a\n", course)
    assert kept == [] and "helper" not in text, (kept, left_out)
    text, kept, left_out = kernel_statements(
        "import numba.types as nt\nfrom numba import types, void\n@cuda.jit((nt.uint8[:, :], types.int32[::1]))\n"
        "def k1(a, b):\n    pass\n@cuda.jit([void(types.float32[:]), 'void(int32[:])'])\ndef k2(a):\n    pass\n"
        "def f(a):\n    pass\nk3 = cuda.jit(void(types.int64[:]), fastmath=True)(f)\nk4 = cuda.jit(f, device=True)\n"
        "k5 = k1\n", course)
    assert kept == ["nt", "types, void", "k1", "k2", "f", "k3", "k4", "k5"], (kept, left_out)


def test_a_line_break_that_python_and_the_allow_list_count_differently_runs_nothing(tmp_path):
    """Caught: a lone carriage return (``X = 1\\rimport os; ...``): Python's parser sees two lines, the allow-list
    kept its lines by ``"\\n"``, so keeping ``X = 1`` kept the import and the call sharing its ``"\\n"`` line, and
    they ran in the evaluated process (the marker was written). Now a cell whose line breaks are not all ``"\\n"``
    (``"\\r\\n"`` aside, read as ``"\\n"``) is left out whole, and a reduced cell is parsed again: it must hold the
    statements taken and nothing else."""
    from techday.grading.outside_kernels import kernel_statements

    mark = tmp_path / "ran"
    course = {"cuda", "np", "numba", "BLOCK_2D"}
    for brk in ("\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028"):
        source = f"X = 1{brk}import pathlib; pathlib.Path({str(mark)!r}).write_text('ran')\n\n"
        text, kept, left_out = kernel_statements(source, course)
        try:
            exec(compile(text, "<reduced>", "exec"), {})
        except SyntaxError:
            pass
        assert not mark.exists() and "pathlib" not in text, (repr(brk), kept, left_out)
        assert kept == [] and left_out, (repr(brk), kept, left_out)
    text, kept, left_out = kernel_statements("X = 1\r\n@cuda.jit\r\ndef k(a):\r\n    a[0] = X\r\n", course)
    assert kept == ["X", "k"] and "\r" not in text, (kept, left_out)


def test_a_kernel_whose_source_lines_are_shifted_is_not_simulated_unchecked(built, tmp_path):
    """Caught: a form feed in a comment (``def lut_kernel(hist, lut):  #\\f``) is a line break for
    ``str.splitlines`` (the lines the evaluated process gives ``inspect``) and not for Python: the compile check
    read the source of the kernel one line up (an honest ``lut_kernel``), the simulator ran the one Python
    compiled (a second ``lut_kernel`` whose body writes a file): the compiler accepted a body the simulator never
    ran, and the trainee's Python ran in the evaluated process. Now such a cell is left out (``kernels-missing``),
    nothing of it runs."""
    mark = tmp_path / "ran"
    cell = ("@cuda.jit\ndef lut_kernel(hist, lut):  #\x0c\n    lut[cuda.threadIdx.x] = 0\n"
            f"@cuda.jit\ndef lut_kernel(hist, lut):\n    i = cuda.threadIdx.x\n"
            f"    open({str(mark)!r}, 'w').write('ran')\n")
    result = one(solution(built, {"lut_kernel": cell}), "lut_kernel_tests")
    assert not mark.exists(), "the simulated body is not the one the compiler checked"
    assert result["passed"] is False and result["key"] == "kernels-missing", result


def test_the_reduced_cell_is_parsed_again_whatever_the_line_check_missed(monkeypatch):
    """The second net (the line check of the test above taken away, as a gap in it would): keeping the import
    of ``from numba import void\\rimport os`` kept ``import os`` on the same ``"\\n"`` line. Caught: the reduced
    cell parsed again holds a statement not taken, so none of the cell is taken, and what it would have bound
    (``void``, a type for the signatures below) is not in the scope of the cells after it: a device function
    named ``void`` of an earlier cell is not called by a later signature (its Python would run at definition
    time)."""
    from techday.grading import outside_kernels as ok

    monkeypatch.setattr(ok, "_one_line", lambda line: True)
    course = {"cuda", "np", "numba", "BLOCK_2D"}
    scope = ok.Scope(course, {"numba": "module"}, set())
    ok.kernel_statements("@cuda.jit(device=True)\ndef void(x):\n    return x\n", course, scope=scope)
    text, kept, left_out = ok.kernel_statements("from numba import void\rimport os\n\n", course, scope=scope)
    assert kept == [] and text.strip() == "", (kept, left_out, repr(text))
    assert "void" in scope.kernels and "void" not in scope.types, vars(scope)
    text, kept, left_out = ok.kernel_statements("@cuda.jit(void(numba.int32[:]))\ndef k(a):\n    a[0] = 1\n",
                                                course, scope=scope)
    assert "k" not in kept, (kept, left_out)
