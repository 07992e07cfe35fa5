"""Reduction: the sum of a large float64 vector.

Bytes: ``n * 8`` (every element read once); FLOPs: ``n`` additions. A memory-bound kernel: the
target on an H100 is 85 % or more of DRAM bandwidth, like BabelStream's dot.

The Numba CUDA version is the classic two-pass tree: each of a few thousand blocks accumulates a
grid-stride slice per thread, then halves the block's partial sums in shared memory
(``cuda.syncthreads()`` between the steps) and writes one partial per block; a second one-block
launch reduces the partials. :func:`block_partials` and :func:`finish` are shared with
``stream.dot``.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64, njit, prange

from techday.bench.core import Impl, Kernel, poison
from techday.bench.kit import TPB, cupy, cupy_poison, device_poison, pattern, resident_blocks


@cuda.jit(device=True)
def _tree(cache, acc):
    """Sum ``acc`` over the block through shared memory; thread 0 gets the total."""
    t = cuda.threadIdx.x
    cache[t] = acc
    cuda.syncthreads()
    s = TPB // 2
    while s > 0:
        if t < s:
            cache[t] += cache[t + s]
        cuda.syncthreads()
        s //= 2
    return cache[0]


@cuda.jit
def block_partials(a, b, partial):
    """partial[block] = sum of a[i] * b[i] over the block's grid-stride slice (b may be a)."""
    cache = cuda.shared.array(TPB, float64)
    acc = 0.0
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        acc += a[i] * b[i]
    total = _tree(cache, acc)
    if cuda.threadIdx.x == 0:
        partial[cuda.blockIdx.x] = total


@cuda.jit
def sum_partials(a, partial):
    """partial[block] = sum of a[i] over the block's grid-stride slice."""
    cache = cuda.shared.array(TPB, float64)
    acc = 0.0
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        acc += a[i]
    total = _tree(cache, acc)
    if cuda.threadIdx.x == 0:
        partial[cuda.blockIdx.x] = total


@cuda.jit
def finish(partial, out):
    """One block: out[0] = sum of the partials."""
    cache = cuda.shared.array(TPB, float64)
    acc = 0.0
    for i in range(cuda.threadIdx.x, partial.shape[0], TPB):
        acc += partial[i]
    total = _tree(cache, acc)
    if cuda.threadIdx.x == 0:
        out[0] = total


@njit(parallel=True, fastmath=True, cache=True)
def sum_cpu(a):
    acc = 0.0
    for i in prange(a.shape[0]):
        acc += a[i]
    return acc


def kernels(plan):
    n = plan.n

    def inputs():
        return {"a": pattern(n, seed=1)}

    def reference(inp):
        return np.array([np.sum(inp["a"], dtype=np.float64)])

    def numba_cuda(inp):
        d_a = cuda.to_device(inp["a"])
        blocks = resident_blocks(sum_partials, (d_a, d_a), plan)  # the types of (a, partial)
        d_partial = device_poison(blocks, np.float64)
        d_out = device_poison(1, np.float64)

        def run():
            sum_partials[blocks, TPB](d_a, d_partial)
            finish[1, TPB](d_partial, d_out)

        return run, d_out.copy_to_host

    def cupy_sum(inp):
        cp = cupy()
        d_a = cp.asarray(inp["a"])
        d_out = cupy_poison((), np.float64)

        def run():
            cp.sum(d_a, out=d_out)

        return run, lambda: d_out.get().reshape(1)

    def numba_cpu(inp):
        a = inp["a"]
        out = poison(1, np.float64)

        def run():
            out[0] = sum_cpu(a)

        return run, lambda: out

    def numpy_sum(inp):
        a = inp["a"]
        out = poison(1, np.float64)

        def run():
            out[0] = np.sum(a)

        return run, lambda: out

    return [Kernel("reduction", "sum", "float64", f"n={n:,}", bytes=8 * n, flops=n, inputs=inputs,
                   reference=reference, check="normwise", rtol=1e-9,
                   impls=[Impl("numba-cuda", "gpu", numba_cuda), Impl("cupy", "gpu", cupy_sum, ("cupy",)),
                          Impl("numba-cpu", "cpu", numba_cpu), Impl("numpy", "cpu", numpy_sum)])]
