"""An arithmetic-intensity sweep that traces the roofline (after mixbench).

Each element of a float32 vector is read once, put through a chain of ``k`` fused multiply-adds
(``v = v * a + b``), and written once: 8 bytes and ``2 k`` FLOPs per element, an intensity of
``k / 4`` FLOP per byte. Small ``k``: the kernel waits for memory and its GFLOP/s grow with
``k`` along the slanted roof, ``intensity x DRAM bandwidth``. Past the ridge point
(``fp32 peak / bandwidth``, about 20 FLOP/byte on an H100) it is compute-bound and flattens under
the FP32 peak. Each result's limit is the roof at its intensity, ``min(peak, intensity x bandwidth)``.

With ``a = b = 0.5`` every chain converges to 1 without overflow, and the compiler cannot fold it
(``a`` and ``b`` are arguments). On the GPU ``k`` is a compile-time constant (one kernel per ``k``,
unrolled into FMAs with no counter between them: ``tests/unit/test_bench_ptx.py`` checks the PTX); on
the CPU a block of 1,024 elements stays in L1 while the chain runs over it, so the inner loop
vectorises.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, int32, njit, prange

from techday.bench.core import Impl, Kernel, poison
from techday.bench.kit import cupy, cupy_poison, device_poison, grid, pattern

A = np.float32(0.5)
B = np.float32(0.5)
_GPU = {}


# Elements per GPU thread. With one float32 per thread a warp has only 128 bytes of loads in flight
# and the memory-bound end of the sweep reads low: on an H200 fma-1 reached 55 % (numba-cuda) and 35 %
# (CuPy) of the bandwidth, where STREAM's triad, 16 bytes a thread, reached 90 %. Four elements a thread
# (16 bytes, loads issued together, each load instruction still coalesced across the warp) also give
# the compute-bound end four independent chains to interleave.
ELEMS = 4


def fma_kernel(k: int):
    """The GPU kernel for a chain of ``k`` FMAs (``k`` is a constant to the compiler) on ``ELEMS`` elements
    a thread: thread ``i`` of ``T`` takes elements ``i, i + T, i + 2T, i + 3T``."""
    if k not in _GPU:

        @cuda.jit
        def fma_chain(x, y, a, b):
            i = cuda.grid(1)
            t = cuda.gridsize(1)
            n = x.shape[0]
            # Every load first (a lane past the end keeps a harmless value), then the chains.
            v0 = x[i] if i < n else a
            v1 = x[i + t] if i + t < n else a
            v2 = x[i + 2 * t] if i + 2 * t < n else a
            v3 = x[i + 3 * t] if i + 3 * t < n else a
            # A 32-bit counter in a while loop: the compiler unrolls it into FMAs and nothing else.
            # ``for _ in range(k)`` compiles, past k = 64, to a partly unrolled loop that tests and
            # decrements a 64-bit counter after every FMA: on an H200, fma-256 ran at 11 % of the
            # FP32 peak that way (5 integer instructions per FFMA in the SASS).
            j = int32(0)
            while j < int32(k):
                v0 = v0 * a + b
                v1 = v1 * a + b
                v2 = v2 * a + b
                v3 = v3 * a + b
                j += int32(1)
            if i < n:
                y[i] = v0
            if i + t < n:
                y[i + t] = v1
            if i + 2 * t < n:
                y[i + 2 * t] = v2
            if i + 3 * t < n:
                y[i + 3 * t] = v3

        _GPU[k] = fma_chain
    return _GPU[k]


def fma_source(k: int) -> str:
    """The CuPy kernel: the same shape as :func:`fma_kernel` (``ELEMS`` elements a thread, the chain
    unrolled), compiled by NVRTC."""
    lanes = range(ELEMS)
    loads = "\n".join(f"    float v{e} = i + {e} * t < n ? x[i + {e} * t] : a;" for e in lanes)
    chain = " ".join(f"v{e} = fmaf(v{e}, a, b);" for e in lanes)
    stores = "\n".join(f"    if (i + {e} * t < n) y[i + {e} * t] = v{e};" for e in lanes)
    return (f'extern "C" __global__ void techday_fma_{k}(const float* __restrict__ x, float* __restrict__ y,\n'
            f"                                          float a, float b, long long n) {{\n"
            f"    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
            f"    long long t = (long long)gridDim.x * blockDim.x;\n"
            f"{loads}\n"
            f"#pragma unroll\n"
            f"    for (int j = 0; j < {k}; ++j) {{ {chain} }}\n"
            f"{stores}\n"
            f"}}\n")


@njit(parallel=True, fastmath=True, cache=True)
def fma_cpu(x, y, a, b, k):
    block = 1024
    for blk in prange((x.shape[0] + block - 1) // block):
        lo = blk * block
        hi = min(lo + block, x.shape[0])
        yb = y[lo:hi]  # a view: with it the inner loop vectorises
        yb[:] = x[lo:hi]
        for _ in range(k):
            for i in range(yb.shape[0]):
                yb[i] = yb[i] * a + b


def kernels(plan):
    # float32: on a GPU twice STREAM's element count (the same bytes); on the CPU tier STREAM's count.
    n = plan.n if plan.tiny else (2 * plan.n if plan.tier == "gpu" else plan.n)

    def inputs():
        return {"x": pattern(n, 9, np.float32)}

    def reference_for(k):
        def reference(inp):
            # k steps of v -> v / 2 + 1 / 2, in closed form: v_k = x / 2**k + (1 - 1 / 2**k).
            return inp["x"].astype(np.float64) * 0.5**k + (1.0 - 0.5**k)

        return reference

    def numba_cuda(k):
        def make(inp):
            d_x = cuda.to_device(inp["x"])
            d_y = device_poison(n, np.float32)
            kernel = fma_kernel(k)
            cfg = grid(-(-n // ELEMS))
            return (lambda: kernel[cfg](d_x, d_y, A, B)), d_y.copy_to_host

        return make

    def cupy_impl(k):
        def make(inp):
            cp = cupy()
            kernel = cp.RawKernel(fma_source(k), f"techday_fma_{k}")
            d_x = cp.asarray(inp["x"])
            d_y = cupy_poison(n, np.float32)
            blocks, tpb = grid(-(-n // ELEMS))
            return (lambda: kernel((blocks,), (tpb,), (d_x, d_y, A, B, np.int64(n)))), d_y.get

        return make

    def numba_cpu(k):
        def make(inp):
            y = poison(n, np.float32)
            return (lambda: fma_cpu(inp["x"], y, A, B, k)), (lambda: y)

        return make

    return [Kernel("roofline", f"fma-{k}", "float32", f"n={n:,}, k={k}", bytes=8 * n, flops=2 * k * n, inputs=inputs,
                   reference=reference_for(k), metric="gflops", limit="roofline",
                   impls=[Impl("numba-cuda", "gpu", numba_cuda(k)), Impl("cupy", "gpu", cupy_impl(k), ("cupy",)),
                          Impl("numba-cpu", "cpu", numba_cpu(k))])
            for k in plan.sweep]
