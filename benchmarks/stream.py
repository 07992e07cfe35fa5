"""STREAM: copy, scale, add, triad and dot on float64 vectors, counted as BabelStream counts them.

=======  ====================  ==========================  ============
kernel   operation             bytes per element (float64) FLOPs/elem
=======  ====================  ==========================  ============
copy     c[i] = a[i]           2 x 8 (read a, write c)      0
scale    b[i] = s * c[i]       2 x 8                        1
add      c[i] = a[i] + b[i]    3 x 8                        1
triad    a[i] = b[i] + s*c[i]  3 x 8                        2
dot      sum(a[i] * b[i])      2 x 8                        2
=======  ====================  ==========================  ============

Write-allocate traffic is not counted (BabelStream's convention), so a CPU that reads a line before
writing it shows less than it moves. Every kernel streams arrays several times larger than the L2
cache, so the figure is DRAM bandwidth: on an H100 the target is 88 % or more of the theoretical
``2 * memory_clock * bus_width / 8`` for triad, on par with BabelStream in CUDA C.

Implementations: Numba CUDA (one element per thread, 256 threads per block), CuPy (an
``ElementwiseKernel`` per operation, one pass, no temporaries; ``cupy.dot`` for dot), Numba
parallel on the CPU (``prange``, one pass) and NumPy. NumPy's triad is written the natural way,
``a[:] = b + s * c``, which makes a temporary for ``s * c`` and one for the sum: that is why the
Numba parallel triad beats it.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import cuda, njit, prange

from techday.bench.core import Impl, Kernel, poison
from techday.bench.families import load
from techday.bench.kit import (TPB, cupy, cupy_poison, device_poison, grid, pattern, reduction_blocks,
                               resident_blocks)

SCALAR = 0.4


@cuda.jit
def copy_gpu(a, c):
    i = cuda.grid(1)
    if i < c.shape[0]:
        c[i] = a[i]


@cuda.jit
def scale_gpu(c, s, b):
    i = cuda.grid(1)
    if i < b.shape[0]:
        b[i] = s * c[i]


@cuda.jit
def add_gpu(a, b, c):
    i = cuda.grid(1)
    if i < c.shape[0]:
        c[i] = a[i] + b[i]


@cuda.jit
def triad_gpu(b, c, s, a):
    i = cuda.grid(1)
    if i < a.shape[0]:
        a[i] = b[i] + s * c[i]


@njit(parallel=True, cache=True)
def copy_cpu(a, c):
    for i in prange(c.shape[0]):
        c[i] = a[i]


@njit(parallel=True, cache=True)
def scale_cpu(c, s, b):
    for i in prange(b.shape[0]):
        b[i] = s * c[i]


@njit(parallel=True, cache=True)
def add_cpu(a, b, c):
    for i in prange(c.shape[0]):
        c[i] = a[i] + b[i]


@njit(parallel=True, cache=True)
def triad_cpu(b, c, s, a):
    for i in prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


@njit(parallel=True, fastmath=True, cache=True)
def dot_cpu(a, b):
    acc = 0.0
    for i in prange(a.shape[0]):
        acc += a[i] * b[i]
    return acc


def _numpy_copy(a, c):
    np.copyto(c, a)


def _numpy_scale(c, s, b):
    np.multiply(c, s, out=b)


def _numpy_add(a, b, c):
    np.add(a, b, out=c)


def _numpy_triad(b, c, s, a):
    a[:] = b + s * c  # the natural NumPy expression: temporaries for s * c and for the sum


# name: (arguments in order, output, bytes per element / 8, FLOPs per element, GPU, CPU, NumPy, CuPy body)
OPS = {
    "copy": (("a",), "c", 2, 0, copy_gpu, copy_cpu, _numpy_copy, ("T a", "T c", "c = a")),
    "scale": (("c", "s"), "b", 2, 1, scale_gpu, scale_cpu, _numpy_scale, ("T c, T s", "T b", "b = s * c")),
    "add": (("a", "b"), "c", 3, 1, add_gpu, add_cpu, _numpy_add, ("T a, T b", "T c", "c = a + b")),
    "triad": (("b", "c", "s"), "a", 3, 2, triad_gpu, triad_cpu, _numpy_triad, ("T b, T c, T s", "T a", "a = b + s * c")),
}
_CUPY_KERNELS = {}


def _cupy_dot():
    """Two reductions: ``x * y`` summed along each row of a (blocks, n / blocks) view, one block per row,
    then the row sums summed. A ReductionKernel that reduces straight to one value runs in one block
    (19 GB/s measured on an H200 at n = 62.9 M, 0.4 % of the bandwidth)."""
    if "dot" not in _CUPY_KERNELS:
        cp = cupy()
        _CUPY_KERNELS["dot"] = cp.ReductionKernel("T x, T y", "T z", "x * y", "a + b", "z = a", "0",
                                                  "techday_stream_dot")
        _CUPY_KERNELS["sum"] = cp.ReductionKernel("T x", "T z", "x", "a + b", "z = a", "0", "techday_stream_sum")
    return _CUPY_KERNELS["dot"], _CUPY_KERNELS["sum"]


def _cupy_kernel(name):
    if name not in _CUPY_KERNELS:
        params, out, body = OPS[name][7]
        _CUPY_KERNELS[name] = cupy().ElementwiseKernel(params, out, body, f"techday_stream_{name}")
    return _CUPY_KERNELS[name]


@functools.lru_cache(maxsize=1)
def _arrays(n):
    """The three input arrays, made once and shared by the five kernels (no kernel writes its inputs)."""
    a, b, c = pattern(n, 1), pattern(n, 2), pattern(n, 3)
    for x in (a, b, c):
        x.flags.writeable = False
    return a, b, c


def _inputs(n):
    def make():
        a, b, c = _arrays(n)
        return {"a": a, "b": b, "c": c, "s": np.float64(SCALAR)}

    return make


def _elementwise(name, n):
    args, out, words, flops, gpu, cpu, host, _ = OPS[name]

    def reference(inp):
        x = {k: np.asarray(v, np.float64) for k, v in inp.items()}
        return {"copy": lambda: x["a"].copy(), "scale": lambda: x["s"] * x["c"], "add": lambda: x["a"] + x["b"],
                "triad": lambda: x["b"] + x["s"] * x["c"]}[name]()

    def numba_cuda(inp):
        dev = {k: (cuda.to_device(v) if k != "s" else v) for k, v in inp.items() if k in args}
        d_out = device_poison(n, np.float64)
        call = [dev[k] for k in args] + [d_out]
        cfg = grid(n)

        def run():
            gpu[cfg](*call)

        return run, d_out.copy_to_host

    def cupy_impl(inp):
        cp = cupy()
        kernel = _cupy_kernel(name)
        call = [cp.asarray(inp[k]) if k != "s" else inp[k] for k in args]
        d_out = cupy_poison(n, np.float64)

        def run():
            kernel(*call, d_out)

        return run, d_out.get

    def numba_cpu(inp):
        call = [inp[k] for k in args]
        out_arr = poison(n, np.float64)

        def run():
            cpu(*call, out_arr)

        return run, lambda: out_arr

    def numpy_impl(inp):
        call = [inp[k] for k in args]
        out_arr = poison(n, np.float64)

        def run():
            host(*call, out_arr)

        return run, lambda: out_arr

    return Kernel("stream", name, "float64", f"n={n:,}", bytes=words * 8 * n, flops=flops * n, inputs=_inputs(n),
                  reference=reference,
                  impls=[Impl("numba-cuda", "gpu", numba_cuda), Impl("cupy", "gpu", cupy_impl, ("cupy",)),
                         Impl("numba-cpu", "cpu", numba_cpu), Impl("numpy", "cpu", numpy_impl)])


def _dot(n, plan):
    red = load("reduction")

    def reference(inp):
        return np.array([np.dot(inp["a"].astype(np.float64), inp["b"].astype(np.float64))])

    def numba_cuda(inp):
        d_a, d_b = cuda.to_device(inp["a"]), cuda.to_device(inp["b"])
        blocks = resident_blocks(red.block_partials, (d_a, d_b, d_a), plan)  # the types of (a, b, partial)
        d_partial = device_poison(blocks, np.float64)
        d_out = device_poison(1, np.float64)

        def run():
            red.block_partials[blocks, TPB](d_a, d_b, d_partial)
            red.finish[1, TPB](d_partial, d_out)

        return run, d_out.copy_to_host

    def cupy_impl(inp):
        cp = cupy()
        d_a, d_b = cp.asarray(inp["a"]), cp.asarray(inp["b"])
        d_out = cupy_poison(1, np.float64)
        out0 = d_out.reshape(())  # a 0-d view of the output: the reduction writes it directly
        dot, total = _cupy_dot()
        rows = reduction_blocks(plan)
        m = n // rows
        views = [(d_a[: rows * m].reshape(rows, m), d_b[: rows * m].reshape(rows, m))]
        if n > rows * m:  # the tail past the last whole row: one more row of its own
            views.append((d_a[rows * m:].reshape(1, -1), d_b[rows * m:].reshape(1, -1)))
        d_partial = cupy_poison(rows + 1, np.float64)[: rows + len(views) - 1]
        parts = [d_partial[:rows], d_partial[rows:]]

        def run():
            # One pass reading a and b (16 bytes per element, as credited): cupy.dot on 1-D arrays may
            # form the product a * b in memory and sum it, moving twice the bytes.
            for (x, y), part in zip(views, parts):
                dot(x, y, axis=1, out=part)
            total(d_partial, out=out0)

        return run, d_out.get

    def numba_cpu(inp):
        a, b = inp["a"], inp["b"]
        out = poison(1, np.float64)

        def run():
            out[0] = dot_cpu(a, b)

        return run, lambda: out

    def numpy_impl(inp):
        a, b = inp["a"], inp["b"]
        out = poison(1, np.float64)

        def run():
            out[0] = np.dot(a, b)

        return run, lambda: out

    return Kernel("stream", "dot", "float64", f"n={n:,}", bytes=2 * 8 * n, flops=2 * n, inputs=_inputs(n),
                  reference=reference, check="normwise", rtol=1e-9,
                  impls=[Impl("numba-cuda", "gpu", numba_cuda), Impl("cupy", "gpu", cupy_impl, ("cupy",)),
                         Impl("numba-cpu", "cpu", numba_cpu), Impl("numpy", "cpu", numpy_impl)])


def kernels(plan):
    return [_elementwise(name, plan.n) for name in OPS] + [_dot(plan.n, plan)]
