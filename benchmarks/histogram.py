"""Histogram of bytes into 256 bins with atomics: global atomics vs a histogram per block.

Bytes: ``n`` (each input byte read once; the 256 counters are noise); no FLOPs. With global atomics
every one of ``n`` increments goes to one of 256 addresses in DRAM/L2, and threads that hit the same
bin wait for each other. Privatised: each block counts into its own 256 counters in shared memory
(fast atomics, contention only inside the block), then adds them to the global histogram once.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, int32, njit, prange

from techday.bench.core import Impl, Kernel, poison
from techday.bench.kit import TPB, cupy, cupy_poison, device_poison, resident_blocks

BINS = 256


@cuda.jit
def zero(hist):
    i = cuda.grid(1)
    if i < hist.shape[0]:
        hist[i] = 0


@cuda.jit
def hist_global(x, hist):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(hist, x[i], 1)


@cuda.jit
def hist_shared(x, hist):
    local = cuda.shared.array(BINS, int32)
    for b in range(cuda.threadIdx.x, BINS, cuda.blockDim.x):
        local[b] = 0
    cuda.syncthreads()
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(local, x[i], 1)
    cuda.syncthreads()
    for b in range(cuda.threadIdx.x, BINS, cuda.blockDim.x):
        cuda.atomic.add(hist, b, local[b])


@njit(parallel=True, cache=True)
def hist_cpu(x, hist):
    chunks = 64  # a private histogram per chunk, summed at the end
    local = np.zeros((chunks, BINS), np.int64)
    step = (x.shape[0] + chunks - 1) // chunks
    for c in prange(chunks):
        for i in range(c * step, min((c + 1) * step, x.shape[0])):
            local[c, x[i]] += 1
    for b in range(BINS):
        total = 0
        for c in range(chunks):
            total += local[c, b]
        hist[b] = total


# The CuPy histogram (in, out, operation, name): one atomic add per element on global counters.
CUPY_SPEC = ("uint8 x", "raw int32 hist", "atomicAdd(&hist[x], 1)", "techday_hist_global")


def kernels(plan):
    n = plan.hist_n

    def inputs():
        return {"x": np.random.default_rng(5).integers(0, BINS, n, dtype=np.uint8)}

    def reference(inp):
        return np.bincount(inp["x"], minlength=BINS)

    def numba_cuda(kernel):
        def make(inp):
            d_x = cuda.to_device(inp["x"])
            d_hist = device_poison(BINS, np.int32)
            blocks = resident_blocks(kernel, (d_x, d_hist), plan)

            def run():
                zero[1, BINS](d_hist)
                kernel[blocks, TPB](d_x, d_hist)

            return run, d_hist.copy_to_host

        return make

    def cupy_impl(inp):
        # One pass of global atomics, like the Numba kernel. cupy.bincount would add a pass for the
        # maximum, a host sync to size its output, a pass to zero it and a copy, inside the timed region.
        cp = cupy()
        d_x = cp.asarray(inp["x"])
        d_hist = cupy_poison(BINS, np.int32)
        count = cp.ElementwiseKernel(*CUPY_SPEC)

        def run():
            d_hist.fill(0)
            count(d_x, d_hist)

        return run, d_hist.get

    def numba_cpu(inp):
        out = poison(BINS, np.int64)
        return (lambda: hist_cpu(inp["x"], out)), (lambda: out)

    def numpy_impl(inp):
        out = poison(BINS, np.int64)

        def run():
            out[:] = np.bincount(inp["x"], minlength=BINS)

        return run, lambda: out

    common = dict(dtype="uint8", size=f"n={n:,}, {BINS} bins", bytes=n, flops=0, inputs=inputs, reference=reference,
                  rtol=0.0)
    return [
        Kernel("histogram", "global", impls=[Impl("numba-cuda", "gpu", numba_cuda(hist_global),
                                                  note="cuda.atomic.add on global counters"),
                                             Impl("cupy", "gpu", cupy_impl, ("cupy",), note="ElementwiseKernel, global atomics"),
                                             Impl("numba-cpu", "cpu", numba_cpu, note="a private histogram per chunk"),
                                             Impl("numpy", "cpu", numpy_impl, note="np.bincount")], **common),
        Kernel("histogram", "shared", impls=[Impl("numba-cuda", "gpu", numba_cuda(hist_shared),
                                                  note="a histogram per block in shared memory")], **common),
    ]
