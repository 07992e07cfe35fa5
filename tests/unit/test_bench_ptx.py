"""Every Numba CUDA kernel of the suite compiles for a real GPU (sm_80 and sm_90), without one.

The CPU tier only runs these kernels in the simulator, which accepts code a GPU compiler refuses
(a shared-array shape that is not a compile-time constant, for one). ``numba.cuda.compile_ptx``
with the CUDA 12 toolkit wheels compiles for a named architecture on any machine; ``ptxas -v``
then reports registers and spills. Runs in a fresh process with the simulator off.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CODE = r'''
from types import SimpleNamespace
import numba.cuda.dispatcher as dispatcher
from numba import cuda, types as t
from techday.bench.core import _flush_kernel, _sleep_kernel
from techday.bench.families import load
from techday.ptxreport import instruction_mix, loads_before_store

# Device functions called from a kernel ask the current device for its compute capability; there is
# no device here, so answer for the architecture being compiled.
CC = tuple(int(x) for x in "{cc}".split("."))
dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=CC)

f64, f32, i32, u8, f32_2 = t.float64[::1], t.float32[::1], t.int32[::1], t.uint8[::1], t.float32[:, ::1]
st, red, tr, sten, hist, mm, lat, roof = (load(f) for f in
    ("stream", "reduction", "transpose", "stencil", "histogram", "matmul", "latency", "roofline"))


fma_mix = []
cases = [
    (st.copy_gpu, (f64, f64)), (st.scale_gpu, (f64, t.float64, f64)), (st.add_gpu, (f64, f64, f64)),
    (st.triad_gpu, (f64, f64, t.float64, f64)), (red.block_partials, (f64, f64, f64)),
    (red.sum_partials, (f64, f64)), (red.finish, (f64, f64)), (tr.transpose_naive, (f32_2, f32_2)),
    (tr.transpose_shared, (f32_2, f32_2)), (tr.transpose_padded, (f32_2, f32_2)), (sten.stencil_gpu, (f32_2, f32_2)),
    (hist.zero, (i32,)), (hist.hist_global, (u8, i32)), (hist.hist_shared, (u8, i32)),
    (mm.matmul_tiled, (f32_2, f32_2, f32_2)), (lat.empty, (f32,)),
    (roof.fma_kernel(1), (f32, f32, t.float32, t.float32)), (roof.fma_kernel(64), (f32, f32, t.float32, t.float32)),
    (roof.fma_kernel(256), (f32, f32, t.float32, t.float32)), (_flush_kernel(), (i32, t.int64[::1])),
    (_sleep_kernel(), (t.int64,)),
]
for kernel, sig in cases:
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=CC)
    assert ".entry" in ptx, kernel.py_func.__name__
    if kernel is mm.matmul_tiled:
        assert "st.local" not in ptx, "the 4 x 4 accumulator must live in registers"
        open("{out}", "w").write(ptx)
    if kernel.py_func.__name__ == "fma_chain":
        fma_mix.append(instruction_mix(ptx))
    if kernel in (tr.transpose_shared, tr.transpose_padded):
        # Four loads in flight a thread: every load of the tile comes before its first shared store
        # (a store after each load made the loads wait for one another).
        loads, first_store = loads_before_store(ptx, "st.shared")
        assert len(loads) == 4 and max(loads) < first_store, f"{kernel.py_func.__name__}: loads {loads}, store {first_store}"
    if kernel is sten.stencil_gpu:
        # Four rows a thread: the column's 6 values and 8 side neighbours, each loaded once, all before
        # the first point is written (one point a thread reached 32 % of an H200's bandwidth).
        loads, first_store = loads_before_store(ptx, "st.global")
        assert len(loads) == 14 and max(loads) < first_store, f"stencil: loads {loads}, store {first_store}"
# The FMA chain is FMAs and nothing else: what is not an FMA stays about as it is at k = 1 (loads,
# stores, a loop counter: at most 32 more, where a counter per FMA adds 64 at k = 64). A counter tested after each FMA (what ``for _ in range(k)`` compiles to past k = 64)
# makes the kernel issue-bound on integer instructions, not on FP32 (11 % of an H200's FP32 peak at
# k = 256). Each thread loads its ELEMS elements (bytes in flight for the memory-bound end).
(f1, o1, l1), (f64_, o64, _), (f256, o256, l256) = fma_mix
assert f64_ >= 64 and f256 >= 64, fma_mix
assert o64 - o1 <= 32 and o256 - o1 <= 32, f"the chain's other instructions grow with k: {fma_mix}"
assert l1 == l256 == roof.ELEMS, f"global loads per thread: {fma_mix}"
print("compiled", len(cases))
'''


@pytest.mark.parametrize("cc", ["8.0", "9.0"])
def test_gpu_kernels_compile_for_real_architectures(cc, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "matmul.ptx"
    proc = subprocess.run([sys.executable, "-c", CODE.replace("{cc}", cc).replace("{out}", str(out))], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "compiled 21" in proc.stdout
    ptxas = next((p for p in (os.path.join(b, "nvidia", "cuda_nvcc", "bin", "ptxas") for b in sys.path)
                  if os.path.isfile(p)), None)
    if ptxas is None:
        print("ptxas not installed: registers not reported")
        return
    report = subprocess.run([ptxas, f"-arch=sm_{cc.replace('.', '')}", "-v", str(out), "-o", os.devnull],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert "0 bytes spill stores" in report.stderr, report.stderr
    print(report.stderr.strip().splitlines()[-2])


def test_the_cupy_fma_chain_is_fmas_and_each_thread_loads_its_elements():
    """The CuPy roofline kernel as NVRTC compiles it: what is not an FMA does not grow with the chain
    (an ElementwiseKernel's loop kept a counter per FMA and reached 46 % of an H200's FP32 peak), and
    each thread loads ``ELEMS`` elements (one float32 a thread reached 35 % of the bandwidth)."""
    from techday import cudasrc
    from techday.bench.families import load
    from techday.ptxreport import instruction_mix

    roof = load("roofline")
    try:
        mixes = {k: instruction_mix(cudasrc.compile_ptx(roof.fma_source(k), f"techday_fma_{k}.cu", "compute_90")) for k in (1, 256)}
    except cudasrc.NvrtcUnavailable as exc:
        pytest.skip(f"NVRTC is not installed here: {exc}")
    (f1, o1, l1), (f256, o256, l256) = mixes[1], mixes[256]
    assert (f1, f256) == (roof.ELEMS, 256 * roof.ELEMS), mixes
    assert o256 - o1 <= 32, mixes  # 1,020 FMAs more, a few set-up instructions more, none per FMA
    assert l1 == l256 == roof.ELEMS, mixes

