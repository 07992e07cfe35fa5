"""techday.simtrace: the sectors a warp's loads and stores touch, traced in the simulator. Wrong answers
caught: a transpose whose warps store down a column (correct result, twice the sectors with the CPU
tier's 8 x 8 tiles, eight times on a GPU's 32 x 32) passing as coalesced; a row-wise copy counted as
anything but perfectly coalesced; the methods left patched after the block; a trace on the GPU tier."""

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

SCRIPT = textwrap.dedent('''
    import json
    import numpy as np
    from numba import cuda, float32
    from numba.cuda.simulator.cudadrv.devicearray import FakeWithinKernelCUDAArray as Arr
    from techday.simtrace import trace_global

    T, TP = 8, 9

    @cuda.jit
    def tiled(a, out):
        tile = cuda.shared.array((T, TP), float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row, col = cuda.blockIdx.y * T + ty, cuda.blockIdx.x * T + tx
        tile[ty, tx] = a[row, col]
        cuda.syncthreads()
        out[cuda.blockIdx.x * T + ty, cuda.blockIdx.y * T + tx] = tile[tx, ty]

    @cuda.jit
    def down_a_column(a, out):
        col, row = cuda.grid(2)
        out[col, row] = a[row, col]

    @cuda.jit
    def copy(a, out):
        col, row = cuda.grid(2)
        out[row, col] = a[row, col]

    before = (Arr.__dict__["__getitem__"], Arr.__dict__["__setitem__"])
    a = np.arange(64 * 48, dtype=np.float32).reshape(64, 48)
    got = {}
    for kernel, shape in ((tiled, (48, 64)), (down_a_column, (48, 64)), (copy, (64, 48))):
        d_a, d_out = cuda.to_device(a), cuda.to_device(np.zeros(shape, np.float32))
        with trace_global(d_a, d_out) as trace:
            kernel[(6, 8), (T, T)](d_a, d_out)
        want = a.T if shape == (48, 64) else a
        assert np.array_equal(d_out.copy_to_host(), want), kernel.__name__
        got[kernel.__name__] = {"store": trace.sectors(d_out, "store"), "load": trace.sectors(d_a, "load"),
                                "stores": trace.count(d_out, "store"), "loads_of_out": trace.count(d_out, "load")}
    got["restored"] = (Arr.__dict__["__getitem__"], Arr.__dict__["__setitem__"]) == before
    print(json.dumps(got))
''')


def test_sectors_per_warp_request_tell_a_coalesced_store_from_a_strided_one():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    requests = 64 * 48 // 32  # one store per thread, 32 threads a warp
    assert got["copy"]["store"] == [1.0, requests] and got["copy"]["load"] == [1.0, requests]
    assert got["tiled"]["store"] == [1.0, requests] and got["tiled"]["load"] == [1.0, requests]
    assert got["down_a_column"]["store"] == [2.0, requests] and got["down_a_column"]["load"] == [1.0, requests]
    assert got["tiled"]["stores"] == 64 * 48 and got["tiled"]["loads_of_out"] == 0
    assert got["restored"] is True


def test_there_is_nothing_to_trace_outside_the_simulator():
    script = ("from techday.simtrace import trace_global, TraceUnavailable\n"
              "try:\n    trace_global().__enter__()\nexcept TraceUnavailable as e:\n    print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "refused: memory accesses are traced in the CUDA simulator only" in out.stdout, out.stdout + out.stderr
