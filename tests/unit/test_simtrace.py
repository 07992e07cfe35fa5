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
    script = ("from techday.simtrace import trace_global, trace_shared, TraceUnavailable\n"
              "for trace in (trace_global, trace_shared):\n"
              "    try:\n        trace().__enter__()\n    except TraceUnavailable as e:\n        print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.count("refused: memory accesses are traced in the CUDA simulator only") == 2, out.stdout + out.stderr


SHARED_SCRIPT = textwrap.dedent('''
    import json
    import numpy as np
    from numba import cuda, float32, float64, int32
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from techday.simtrace import trace_global, trace_shared

    T, TP, N, BINS = 32, 33, 128, 16

    @cuda.jit
    def padded(a, out):
        tile = cuda.shared.array((T, TP), float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tile[ty, tx] = a[ty, tx]
        cuda.syncthreads()
        out[ty, tx] = tile[tx, ty]

    @cuda.jit
    def unpadded(a, out):
        tile = cuda.shared.array((T, T), float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tile[ty, tx] = a[ty, tx]
        cuda.syncthreads()
        out[ty, tx] = tile[tx, ty]

    @cuda.jit
    def tree(x, partial):
        cache = cuda.shared.array(N, float64)
        t = cuda.threadIdx.x
        cache[t] = x[cuda.grid(1)]
        cuda.syncthreads()
        s = cuda.blockDim.x // 2
        while s > 0:
            if t < s:
                cache[t] += cache[t + s]
            cuda.syncthreads()
            s //= 2
        if t == 0:
            partial[cuda.blockIdx.x] = cache[0]

    @cuda.jit
    def thread_zero_sums(x, partial):
        cache = cuda.shared.array(N, float64)
        t = cuda.threadIdx.x
        cache[t] = x[cuda.grid(1)]
        cuda.syncthreads()
        if t == 0:
            acc = 0.0
            for i in range(cuda.blockDim.x):
                acc += cache[i]
            partial[cuda.blockIdx.x] = acc

    @cuda.jit
    def hist_private(values, hist):
        local = cuda.shared.array(BINS, int32)
        t = cuda.threadIdx.x
        for b in range(t, BINS, cuda.blockDim.x):
            local[b] = 0
        cuda.syncthreads()
        for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
            cuda.atomic.add(local, values[i], 1)
        cuda.syncthreads()
        for b in range(t, BINS, cuda.blockDim.x):
            cuda.atomic.add(hist, b, local[b])

    @cuda.jit
    def hist_global(values, hist):
        for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
            cuda.atomic.add(hist, values[i], 1)

    before = FakeCUDAShared.__dict__["array"]
    got = {}
    a = np.arange(T * T, dtype=np.float32).reshape(T, T)
    for kernel in (padded, unpadded):
        d_out = cuda.to_device(np.zeros((T, T), np.float32))
        with trace_shared() as sh:
            kernel[1, (T, T)](cuda.to_device(a), d_out)
        assert np.array_equal(d_out.copy_to_host(), a.T), kernel.__name__
        got[kernel.__name__] = {"load": sh.bank_conflicts("load"), "store": sh.bank_conflicts("store"),
                                "sites": list(sh.sites.values())}
    x = np.random.default_rng(1).random(3 * N)
    for kernel in (tree, thread_zero_sums):
        d_p = cuda.to_device(np.zeros(3))
        with trace_shared() as sh:
            kernel[3, N](cuda.to_device(x), d_p)
        assert np.allclose(d_p.copy_to_host(), x.reshape(3, N).sum(1)), kernel.__name__
        got[kernel.__name__] = {"most": max(sh.per_thread("load").values()), "loads": sh.count("load")}
    v = np.random.default_rng(2).integers(0, BINS, 2_000).astype(np.int64)
    for kernel in (hist_private, hist_global):
        d_v, d_h = cuda.to_device(v), cuda.to_device(np.zeros(BINS, np.int64))
        with trace_global(d_h) as g, trace_shared() as sh:
            kernel[2, 64](d_v, d_h)
        assert np.array_equal(d_h.copy_to_host(), np.bincount(v, minlength=BINS)), kernel.__name__
        got[kernel.__name__] = {"global_stores": g.count(d_h, "store"), "shared_stores": sh.count("store")}
    got["restored"] = FakeCUDAShared.__dict__["array"] is before
    print(json.dumps(got))
''')


def test_shared_memory_trace_sees_bank_conflicts_tree_shape_and_privatisation():
    """Wrong answers caught: an unpadded 32 x 32 tile passing as conflict-free (its column reads are
    32-way conflicts, the padded tile's none); a block sum that thread 0 adds up alone passing as a tree
    (one thread makes every load, against 2 per level of the tree); a histogram counting with global
    atomics passing as privatised (one global update per value, against one per bin and block); and
    the simulator's allocator left patched after the block."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SHARED_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    warps = 32 * 32 // 32
    assert got["padded"]["load"] == [1.0, warps] and got["padded"]["store"] == [1.0, warps]
    assert got["unpadded"]["load"] == [32.0, warps] and got["unpadded"]["store"] == [1.0, warps]
    assert got["padded"]["sites"] == [[[32, 33], "float32"]]
    assert got["tree"]["most"] == 2 * 7 + 1          # thread 0: two loads per level of 7, then cache[0]
    assert got["thread_zero_sums"]["most"] == 128     # thread 0 reads the whole cache
    assert got["tree"]["loads"] == 3 * (2 * 127 + 1)  # 127 additions per block, two loads each
    assert got["hist_private"]["global_stores"] <= 2 * 16 and got["hist_private"]["shared_stores"] >= 2_000
    assert got["hist_global"]["global_stores"] == 2_000 and got["hist_global"]["shared_stores"] == 0
    assert got["restored"] is True
