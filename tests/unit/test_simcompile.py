"""techday.simcompile: the CPU tier compiles a notebook's kernel by the real compiler before its launch.
Wrong answers caught (each ran in the simulator and passed its lab's tests before): a Python list, an
f-string, a plain Python function called from a kernel, a shared array sized at run time. Right ones
that stay: a plain kernel, a kernel calling a device function, a kernel reading a constant and a small
global array. A kernel whose globals cannot travel to the compiler (a large array) runs unchecked, and
a check that cannot run says so once and lets every launch run."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

SCRIPT = textwrap.dedent('''
    import json, sys, time
    import techday
    lab = techday.setup(tier="cpu", scale="ci", quiet=True)
    import numpy as np
    from numba import cuda, float64
    import techday.simcompile as simcompile
    if sys.argv[1:] == ["no-compiler"]:
        simcompile.START_TIMEOUT_S = 0  # the compiling process cannot start in time: the check is off
    if sys.argv[1:] == ["compiler-gone"]:  # the compiling process dies after its first answer
        @cuda.jit
        def first(x, out):
            out[0] = x[0]
        first[1, 1](np.zeros(1), np.zeros(1))
        simcompile._state["server"].proc.kill()
        simcompile._state["server"].proc.wait()
    SCALE = 2.0
    TABLE = np.arange(8.0)
    BIG = np.arange(10000.0)

    @cuda.jit
    def plain(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = x[i] * SCALE + TABLE[i % 8]

    @cuda.jit(device=True)
    def twice(v):
        return 2 * v

    @cuda.jit
    def with_device_function(x, out):
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            out[i] = twice(x[i])

    def helper(v):
        return v + 1

    @cuda.jit
    def calls_python(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = helper(x[i])

    @cuda.jit
    def uses_a_list(x, out):
        mine = []
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            mine.append(x[i])
        out[0] = len(mine)

    @cuda.jit
    def uses_a_string(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = x[int(f"{i}")]

    @cuda.jit
    def shared_sized_at_run_time(x, out):
        cache = cuda.shared.array(cuda.blockDim.x, float64)
        i = cuda.grid(1)
        cache[cuda.threadIdx.x] = x[i]
        out[i] = cache[cuda.threadIdx.x]

    @cuda.jit
    def big_global(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = BIG[i]

    @cuda.jit
    def big_global_and_a_list(x, out):
        mine = [BIG[0]]
        out[0] = mine[0]

    got = {}
    x, out = np.arange(64.0), np.zeros(64)
    for k in (plain, with_device_function, calls_python, uses_a_list, uses_a_string, shared_sized_at_run_time,
              big_global, big_global_and_a_list):
        start = time.perf_counter()
        try:
            k[2, 32](x, out)
            got[k.fn.__name__] = "ran"
        except Exception as e:
            got[k.fn.__name__] = f"{type(e).__name__}: {e}"
        got[k.fn.__name__ + " s"] = time.perf_counter() - start
    start = time.perf_counter()
    plain[2, 32](x, out)
    got["plain again s"] = time.perf_counter() - start
    try:
        uses_a_list[2, 32](x, out)
    except Exception as e:
        got["uses_a_list again"] = type(e).__name__
    got["out"] = out[:3].tolist()
    print(json.dumps(got))
''')


def _run(folder, *args, lang="en"):
    # A file, as a notebook's cell is one to linecache: the check reads a kernel's source from there
    # (a kernel without source, typed at ``python -c``, is not checked).
    script = folder / "kernels_of_main.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TECHDAY_LANG": lang}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env.pop("TECHDAY_KERNEL_LOG", None)
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("en"))


def test_kernels_a_gpu_compiles_run(english):
    got, _ = english
    for name in ("plain", "with_device_function"):
        assert got[name] == "ran", got[name]
    # the second launch of a checked kernel and signature costs no compile
    assert got["plain again s"] < 0.5, got["plain again s"]


@pytest.mark.parametrize("name, reason", [
    ("calls_python", "Untyped global name 'helper'"),
    ("uses_a_list", "Unknown attribute 'append'"),
    ("uses_a_string", "No implementation of function str"),
    ("shared_sized_at_run_time", "No implementation of function shared.array found for signature: array(int32"),
])
def test_kernels_no_gpu_compiles_are_refused_before_they_run(english, name, reason):
    got, _ = english
    assert got[name].startswith(f"KernelNotCompiled: {name}: a GPU cannot compile this kernel"), got[name]
    assert reason in got[name], got[name]
    assert "arguments void(float64[::1], float64[::1])" in got[name], got[name]
    assert got["uses_a_list again"] == "KernelNotCompiled"  # kept, not forgotten after the first refusal


def test_the_refusal_names_the_line(english):
    got, _ = english
    assert "(line 4 of uses_a_list: mine.append(x[i]))" in got["uses_a_list"], got["uses_a_list"]
    assert "(line 4 of calls_python: out[i] = helper(x[i]))" in got["calls_python"], got["calls_python"]


def test_a_kernel_whose_globals_cannot_travel_runs_unchecked(english):
    """A 10,000-element global array is not written into the records (the compiler would be shown a
    stand-in and refuse it): the kernel is let through, even one with a list (documented)."""
    got, _ = english
    assert got["big_global"] == "ran", got["big_global"]
    assert got["big_global_and_a_list"] == "ran", got["big_global_and_a_list"]


def test_in_korean(tmp_path):
    got, _ = _run(tmp_path, lang="ko")
    assert got["uses_a_list"].startswith("KernelNotCompiled: uses_a_list: GPU는 이 커널을 컴파일하지 못하므로"), \
        got["uses_a_list"]
    assert "uses_a_list의 4번째 줄: mine.append(x[i])" in got["uses_a_list"], got["uses_a_list"]


@pytest.mark.parametrize("how", ["no-compiler", "compiler-gone"])
def test_a_check_that_cannot_run_lets_every_launch_run_and_says_so_once(tmp_path, how):
    """The compiling process cannot start, or dies (its pipe broken): never the trainee's failure."""
    got, err = _run(tmp_path, how)
    for name in ("plain", "calls_python", "uses_a_list", "uses_a_string"):
        assert got[name] == "ran", got[name]
    assert err.count("kernels are not compiled on this CPU tier") == 1, err[-2000:]


def test_the_course_kernels_of_modules_are_left_to_techday_kernels(tmp_path):
    """Only a notebook's kernels (``__main__``) are compiled at launch: a module's kernel (the course's
    own are compiled by ``techday kernels``) runs as before, even one no GPU compiles."""
    (tmp_path / "modkernels.py").write_text(textwrap.dedent('''
        from numba import cuda

        @cuda.jit
        def module_list(out):
            mine = [1.0]
            out[0] = mine[0]
    '''))
    code = textwrap.dedent('''
        import techday
        techday.setup(tier="cpu", scale="ci", quiet=True)
        import numpy as np
        from modkernels import module_list
        out = np.zeros(1)
        module_list[1, 1](out)
        print(out[0])
    ''')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "1.0", proc.stderr[-2000:]


def test_a_notebook_kernel_that_launched_a_kernel_exits_at_once_and_leaves_no_child(tmp_path):
    """Caught: the compiling child was in the notebook kernel's process group; at shutdown ipykernel signals that
    group's processes and waits for none to be left without reaping them, so the child, killed, stayed as a zombie
    and every kernel that had launched a CUDA kernel on the CPU tier took 29 s to exit (labs 00-08 in each
    `techday run`; where the client waits 5 s, JupyterLab's restart and the grader's executor, it was killed
    before its exit handlers ran). Now: the shutdown takes under 5 s, and the child ends with the kernel. The kernel
    is started as the course's runs start it (the simulator and the tier in its environment: without them at its
    start, the old code exited at once here too)."""
    import time

    import psutil
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path),
                              env={**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_ENABLE_CUDASIM": "1", "TECHDAY_TIER": "cpu"})
    try:
        code = ("import techday\nlab = techday.setup(tier='cpu', scale='ci', quiet=True)\nimport numpy as np\n"
                "from numba import cuda\n@cuda.jit\ndef k(x):\n    x[cuda.grid(1)] = 1\n"
                "k[1, 4](np.zeros(4))\nimport techday.simcompile as s\nprint(s._state['server'].proc.pid)\n")
        out = []
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: out.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        child = psutil.Process(int("".join(out).split()[-1]))
        assert child.is_running()
        t0 = time.monotonic()
        kc.shutdown()
        while km.is_alive() and time.monotonic() - t0 < 40:
            time.sleep(0.1)
        took = time.monotonic() - t0
        print(f"the kernel exited {took:.1f} s after the shutdown request")
        assert took < 5, took
        try:
            child.wait(timeout=10)
        except psutil.NoSuchProcess:
            pass
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, child
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
        km.context.destroy(linger=0)
