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

# Device functions called from a kernel ask the current device for its compute capability; there is
# no device here, so answer for the architecture being compiled.
CC = tuple(int(x) for x in "{cc}".split("."))
dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=CC)

f64, f32, i32, u8, f32_2 = t.float64[::1], t.float32[::1], t.int32[::1], t.uint8[::1], t.float32[:, ::1]
st, red, tr, sten, hist, mm, lat, roof = (load(f) for f in
    ("stream", "reduction", "transpose", "stencil", "histogram", "matmul", "latency", "roofline"))
cases = [
    (st.copy_gpu, (f64, f64)), (st.scale_gpu, (f64, t.float64, f64)), (st.add_gpu, (f64, f64, f64)),
    (st.triad_gpu, (f64, f64, t.float64, f64)), (red.block_partials, (f64, f64, f64)),
    (red.sum_partials, (f64, f64)), (red.finish, (f64, f64)), (tr.transpose_naive, (f32_2, f32_2)),
    (tr.transpose_shared, (f32_2, f32_2)), (tr.transpose_padded, (f32_2, f32_2)), (sten.stencil_gpu, (f32_2, f32_2)),
    (hist.zero, (i32,)), (hist.hist_global, (u8, i32)), (hist.hist_shared, (u8, i32)),
    (mm.matmul_tiled, (f32_2, f32_2, f32_2)), (lat.empty, (f32,)),
    (roof.fma_kernel(64), (f32, f32, t.float32, t.float32)), (roof.fma_kernel(256), (f32, f32, t.float32, t.float32)),
    (_flush_kernel(), (i32, t.int64[::1])),
    (_sleep_kernel(), (t.int64,)),
]
for kernel, sig in cases:
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=CC)
    assert ".entry" in ptx, kernel.py_func.__name__
    if kernel is mm.matmul_tiled:
        assert "st.local" not in ptx, "the 4 x 4 accumulator must live in registers"
        open("{out}", "w").write(ptx)
    if kernel.py_func.__name__ == "fma_chain":
        # The chain must be FMAs and nothing else: a loop counter tested after each FMA (what
        # ``for _ in range(k)`` compiles to past k = 64) makes the kernel issue-bound on integer
        # instructions, not on FP32 (11 % of an H200's FP32 peak at k = 256).
        body = [line.split()[0] for line in ptx.splitlines()
                if line.startswith("\t") and line.strip() and line.strip()[0] not in "/.{}$"]
        fmas = sum(op == "fma.rn.f32" for op in body)
        assert fmas >= 64 and len(body) - fmas <= 40, f"{fmas} FMAs among {len(body)} instructions"
        print("fma", fmas, "other", len(body) - fmas)
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
    assert "compiled 20" in proc.stdout
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
