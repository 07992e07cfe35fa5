"""techday kernels: edits that pass in the CUDA simulator but break real compilation are caught.

One small course (two labs, no benchmark families) is recorded and compiled once for the module: lab
98 holds one correct kernel and one kernel per breaking edit, each launched on the CPU tier, where
every one of them runs; lab 99 defines a kernel and never launches it. Each test then checks that
the step names its kernel, the lab cell and the source line, and that the correct kernel still
compiled.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from techday.ptxreport import find_ptxas
from techday.validate import kernels
from tests.conftest import validated

ROOT = Path(__file__).resolve().parents[2]

LAB = textwrap.dedent('''\
    # %% tags=["parameters"]
    tier = None
    scale = None

    # %% nbgrader="locked" id="setup"
    import techday
    lab = techday.setup(tier=tier, scale=scale, quiet=True)
    import numpy as np
    from numba import cuda, float32

    # %% nbgrader="locked" id="good"
    @cuda.jit
    def good(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = 2 * x[i]

    # %% nbgrader="locked" id="python_object"
    def helper(v):
        return v + 1

    @cuda.jit
    def calls_python(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = helper(x[i])

    # %% nbgrader="locked" id="unify"
    @cuda.jit
    def bad_unify(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            v = (1.0, 2.0) if x[i] > 0 else 3.0
            out[i] = 1.0

    # %% nbgrader="locked" id="shared"
    BIG = 20_000

    @cuda.jit
    def too_much_shared(x, out):
        buf = cuda.shared.array(BIG, float32)
        i = cuda.grid(1)
        if i < x.shape[0]:
            buf[cuda.threadIdx.x] = x[i]
            out[i] = buf[cuda.threadIdx.x]

    # %% nbgrader="locked" id="threads"
    SIDE = lab.per_tier("SIDE", gpu=64, cpu=4)

    @cuda.jit
    def square_block(x, out):
        c, r = cuda.grid(2)
        if r < x.shape[0] and c < x.shape[1]:
            out[r, c] = x[r, c]

    @cuda.jit
    def sized_shared(x, out):
        tile = cuda.shared.array((SIDE, SIDE), float32)
        c, r = cuda.grid(2)
        if r < x.shape[0] and c < x.shape[1]:
            tile[cuda.threadIdx.y, cuda.threadIdx.x] = x[r, c]
            out[r, c] = tile[cuda.threadIdx.y, cuda.threadIdx.x]

    # %% nbgrader="locked" id="launch"
    x = np.arange(8, dtype=np.float32)
    out = np.zeros_like(x)
    for kernel in (good, calls_python, bad_unify, too_much_shared):
        kernel[2, 4](x, out)
    m = np.ones((SIDE, SIDE), np.float32)
    square_block[(1, 1), (SIDE, SIDE)](m, np.zeros_like(m))
    sized_shared[(1, 1), (SIDE, 2)](m, np.zeros_like(m))

    # %% nbgrader="locked" id="generator"
    from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_next, xoroshiro128p_uniform_float32
    from techday.simtools import quiet_generator

    @cuda.jit
    def draws(states, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            xoroshiro128p_next(states, i)
            out[i] = xoroshiro128p_uniform_float32(states, i)

    with quiet_generator():  # the simulator's state creation swaps generator functions meanwhile
        draws[2, 4](create_xoroshiro128p_states(8, seed=1), np.zeros(8, np.float32))
''')

SILENT_LAB = textwrap.dedent('''\
    # %% nbgrader="locked" id="setup"
    import techday
    lab = techday.setup(quiet=True)
    from numba import cuda

    # %% nbgrader="locked" id="never"
    @cuda.jit
    def never_launched(x):
        x[0] = 1
''')


def _course(tmp: Path) -> Path:
    root = tmp / "course"
    for name, text in (("98-breaks", LAB), ("99-silent", SILENT_LAB)):
        (root / "labs" / name).mkdir(parents=True)
        (root / "labs" / name / f"{name}.py").write_text(text, encoding="utf-8")
    (root / "benchmarks").mkdir()
    (root / "course").mkdir()
    return root


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    if not find_ptxas()[0]:
        pytest.skip(f"no ptxas to assemble with: {find_ptxas()[1]}")
    root = _course(tmp_path_factory.mktemp("kernels"))
    rep = kernels.run(root, root / "build" / "kernels", jobs=2, labs=["98-breaks", "99-silent"], families=[],
                      report=print)
    assert not rep.tool_missing, rep.tool_missing
    return root, rep


def _problem(rep, kernel: str) -> str:
    found = [p for p in rep.problems if f":{kernel} " in p]
    assert found, f"no problem reported for {kernel}: {rep.problems}"
    return found[0]


def _row(rep, kernel: str, variant: str = "cpu"):
    (row,) = [r for r in rep.rows if r.kernel.endswith(f":{kernel}") and r.variant.startswith(variant)]
    return row


def test_a_correct_kernel_compiles_for_both_architectures(checked):
    _, rep = checked
    row = _row(rep, "good")
    assert row.status == "ok" and not row.problems
    assert row.signature == "void(float32[::1], float32[::1])"
    regs = [int(r) for r in row.registers.split("/")]
    assert len(regs) == 2 and all(0 < r <= 255 for r in regs), row.registers


def test_a_kernel_launched_while_the_generator_is_swapped_compiles(checked):
    """Caught: a kernel launched inside techday.simtools.quiet_generator, whose generator functions
    the module held as plain Python meanwhile, recorded as reading a Python function (it failed
    to compile: 'Cannot determine Numba type of CPUDispatcher')."""
    _, rep = checked
    assert _row(rep, "draws").status == "ok", [p for p in rep.problems if ":draws " in p]


def test_a_call_to_a_python_function_is_caught(checked):
    root, rep = checked
    msg = _problem(rep, "calls_python")
    assert "does not compile" in msg and "helper" in msg
    assert "labs/98-breaks/98-breaks.py cell 4 'python_object' line" in msg
    line = int(msg.split("line ")[1].split(":")[0])
    assert "helper(x[i])" in kernels.source_line(root, "labs/98-breaks/98-breaks.py", line)


def test_a_variable_that_cannot_unify_is_caught(checked):
    _, rep = checked
    msg = _problem(rep, "bad_unify")
    assert "does not compile" in msg and "unify" in msg.lower(), msg
    assert "cell 5 'unify'" in msg


def test_too_much_shared_memory_is_caught(checked):
    _, rep = checked
    msg = _problem(rep, "too_much_shared")
    assert "cell 6 'shared'" in msg
    assert "shared" in msg and ("80000 B shared memory per block > 49152" in msg or "too much shared data" in msg), msg


def test_too_many_threads_at_the_gpu_tier_value_is_caught(checked):
    _, rep = checked
    row = _row(rep, "square_block")  # 4 x 4 threads in the simulator, (SIDE, SIDE) = 64 x 64 on a GPU
    assert row.status == "FAILED"
    assert not any("block (4, 4, 1)" in p for p in row.problems), row.problems
    assert any("[gpu tier, sm_90] launched with block (64, 64, 1)" in p and "4096 threads per block > 1024" in p
               and "cell 7 'threads'" in p for p in row.problems), row.problems


def test_a_constant_declared_per_tier_is_compiled_with_both_values(checked):
    _, rep = checked
    cpu, gpu = _row(rep, "sized_shared", "cpu"), _row(rep, "sized_shared", "gpu")
    assert cpu.status == gpu.status == "ok", cpu.problems + gpu.problems
    assert gpu.variant == "gpu (SIDE=64)"
    assert cpu.shared == "64/64" and gpu.shared == "16384/16384"  # SIDE x SIDE float32


def test_a_lab_whose_recorder_sees_no_launch_is_named(checked):
    _, rep = checked
    assert any(p.startswith("lab 99-silent: the recorder saw no kernel launch") for p in rep.problems), rep.problems


def test_a_kernel_neither_launched_nor_listed_fails_coverage(checked):
    root, _ = checked
    defs, launches = kernels.load_records(sorted((root / "build" / "kernels").glob("lab-*.jsonl")))
    missing = kernels.coverage(kernels.scan(root), defs, launches, [], root)
    assert [m.split(" ")[0] for m in missing] == ["never_launched"], missing
    assert "labs/99-silent/99-silent.py cell 2 'never' line" in missing[0]
    listed = [kernels.Listed("labs/99-silent/99-silent.py", "never_launched", ["void(int64[::1])"], "test")]
    assert kernels.coverage(kernels.scan(root), defs, launches, listed, root) == []


def test_the_report_counts_what_it_checked(checked):
    root, _ = checked
    data = json.loads((root / "build" / "kernels" / "kernels.json").read_text(encoding="utf-8"))
    assert data["ok"] is False
    assert data["recorded_kernels"] == 7  # good, the three that do not compile, square_block, sized_shared, draws
    assert data["failed"] == 4  # the four breaking edits
    assert data["compiled"]["8.0"] == data["compiled"]["9.0"] == 5  # good, draws, square_block, sized_shared at 2 tiers


def test_a_missing_ptxas_is_one_line_and_exit_2(monkeypatch, capsys):
    from techday import ptxreport
    from techday.cli.main import main

    monkeypatch.setattr(ptxreport, "find_ptxas", lambda: (None, "ptxas not found; looked in PATH"))
    code = main(["--root", str(ROOT), "kernels", "--out", str(ROOT / "build" / "kernels-test")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["techday kernels: ptxas is missing: ptxas not found; looked in PATH"]
    shutil.rmtree(ROOT / "build" / "kernels-test", ignore_errors=True)


@pytest.mark.slow
def test_every_course_kernel_is_launched_or_listed():
    """The whole course (labs and benchmark families, about a minute and a half on 2 cores); on a tree
    `techday validate` has just checked (CI), its report."""
    pytest.importorskip("numba")
    if not find_ptxas()[0]:
        pytest.skip(f"no ptxas to assemble with: {find_ptxas()[1]}")
    done = validated("kernels")
    if done is None:
        rep = kernels.run(ROOT, ROOT / "build" / "kernels-coverage", jobs=2, report=print).to_dict()
    else:
        rep = json.loads((done / "kernels.json").read_text(encoding="utf-8"))
    assert rep["not_covered"] == [], rep["not_covered"]
    assert rep["ok"] and not rep["problems"] and not rep["tool_missing"], rep["problems"]
    assert rep["compiled"]["8.0"] == rep["compiled"]["9.0"] == len(rep["rows"]) > 0



def test_a_structured_dtype_argument_is_recorded_as_text_the_compile_step_reads_back():
    """Catches the recorder writing a Record's own text (``Record(s0[type=uint64;offset=0],...)``), which
    no compile step can read: lab 03's generator states failed `techday kernels` that way. The text
    evaluates, with NumPy's dtype and Numba's from_dtype, to the very type Numba gives the array."""
    import numpy as np
    from numba import typeof, types
    from numba.np.numpy_support import from_dtype

    from techday.kernelrec import type_string

    states = np.zeros(8, dtype=np.dtype([("s0", np.uint64), ("s1", np.uint64)], align=True))
    text = type_string(states)
    assert not text.startswith("Record(")
    assert eval(text, {"from_dtype": from_dtype, "dtype": np.dtype}, vars(types)) == typeof(states)
    assert type_string(np.zeros((3, 4), np.float32)) == "float32[:, ::1]"  # plain arrays keep their short text


def test_a_named_lab_without_a_source_or_that_does_not_parse_is_a_problem_not_a_pass(tmp_path):
    # Wrong answers caught: `techday kernels LAB` with labs/LAB/LAB.py gone reported "kernels recorded: 0"
    # and exit 0, as for a lab with no kernel; a lab source with a syntax error whose kernel is listed
    # as GPU-only ended in a SyntaxError traceback while planning the compile jobs.
    if not find_ptxas()[0]:
        pytest.skip(f"no ptxas to assemble with: {find_ptxas()[1]}")
    root = _course(tmp_path)
    (root / "labs" / "99-silent" / "99-silent.py").unlink()
    rep = kernels.run(root, root / "build" / "kernels", jobs=1, labs=["99-silent"], families=[], report=print)
    assert "labs/99-silent/99-silent.py: lab source not found" in rep.problems and not rep.ok
    (root / "labs" / "98-breaks" / "98-breaks.py").write_text("x = (\n", encoding="utf-8")
    (root / "course" / "gpu_only_kernels.toml").write_text(
        '[[kernel]]\nfile = "labs/98-breaks/98-breaks.py"\nname = "gone"\nsignatures = ["(float32[:],)"]\n'
        'why = "test"\n', encoding="utf-8")
    rep = kernels.run(root, root / "build" / "kernels", jobs=1, families=[], report=print)
    assert any("98-breaks" in p for p in rep.problems) and not rep.ok, rep.problems


def test_an_unknown_lab_or_family_name_is_refused_before_anything_runs(capsys, tmp_path):
    from techday.cli.main import main

    assert main(["--root", str(ROOT), "kernels", "no-such-lab", "--out", str(tmp_path / "k")]) == 2
    assert "unknown lab 'no-such-lab'" in capsys.readouterr().err
    assert main(["--root", str(ROOT), "kernels", "--bench", "stream,no-such", "--out", str(tmp_path / "k")]) == 2
    assert "unknown benchmark family no-such" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()


def test_a_gpu_only_list_not_in_utf8_is_named(tmp_path):
    # Wrong answer caught: course/gpu_only_kernels.toml saved in another encoding ended `techday kernels`
    # in a UnicodeDecodeError traceback (only a TOML syntax error was caught).
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "gpu_only_kernels.toml").write_bytes('[[kernel]]\nwhy = "한"\n'.encode("cp949"))
    with pytest.raises(kernels.KernelsError, match="gpu_only_kernels.toml"):
        kernels.load_gpu_only(tmp_path)
