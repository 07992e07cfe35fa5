"""A 2-D five-point stencil (one Jacobi step) on a float32 grid.

``out[i, j] = 0.25 * (a[i-1, j] + a[i+1, j] + a[i, j-1] + a[i, j+1])`` inside, ``out = a`` on the
border. Bytes: ``2 * rows * cols * 4`` (each element read once from DRAM and written once, the
neighbours coming from cache); FLOPs: 4 per inner point. Intensity 0.5 FLOP/byte: far below any
GPU's ridge point, so the figure of merit is GB/s against DRAM bandwidth.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32, njit, prange

from techday.bench.core import Impl, Kernel, poison
from techday.bench.kit import cupy, cupy_poison, device_poison

BLOCK = (32, 8)
# Output rows a thread computes (a block covers 32 columns x 32 rows). One point a thread brought only
# 4 new bytes from DRAM per thread and loaded each value five times: an H200 reached 32 % of its
# bandwidth that way. Four rows a thread: the column's six values are loaded once and shared between
# the four points, every load is issued before the first sum.
RPT = 4


@cuda.jit
def stencil_gpu(a, out):
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    i = (cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y) * RPT
    rows, cols = a.shape
    if j >= cols or i >= rows:
        return
    zero = float32(0)
    left, right = j > 0, j + 1 < cols
    # The column from row i - 1 to i + 4, then the left and right neighbours of rows i .. i + 3.
    up = a[i - 1, j] if i > 0 else zero
    c0 = a[i, j]
    c1 = a[i + 1, j] if i + 1 < rows else zero
    c2 = a[i + 2, j] if i + 2 < rows else zero
    c3 = a[i + 3, j] if i + 3 < rows else zero
    down = a[i + 4, j] if i + 4 < rows else zero
    l0 = a[i, j - 1] if left else zero
    l1 = a[i + 1, j - 1] if left and i + 1 < rows else zero
    l2 = a[i + 2, j - 1] if left and i + 2 < rows else zero
    l3 = a[i + 3, j - 1] if left and i + 3 < rows else zero
    r0 = a[i, j + 1] if right else zero
    r1 = a[i + 1, j + 1] if right and i + 1 < rows else zero
    r2 = a[i + 2, j + 1] if right and i + 2 < rows else zero
    r3 = a[i + 3, j + 1] if right and i + 3 < rows else zero
    edge = not (left and right)  # the first or last column: out = a
    quarter = float32(0.25)
    out[i, j] = c0 if edge or i == 0 or i == rows - 1 else quarter * (up + c1 + l0 + r0)
    if i + 1 < rows:
        out[i + 1, j] = c1 if edge or i + 1 == rows - 1 else quarter * (c0 + c2 + l1 + r1)
    if i + 2 < rows:
        out[i + 2, j] = c2 if edge or i + 2 == rows - 1 else quarter * (c1 + c3 + l2 + r2)
    if i + 3 < rows:
        out[i + 3, j] = c3 if edge or i + 3 == rows - 1 else quarter * (c2 + down + l3 + r3)


@njit(parallel=True, cache=True)
def stencil_cpu(a, out):
    rows, cols = a.shape
    out[0, :] = a[0, :]
    out[rows - 1, :] = a[rows - 1, :]
    for i in prange(1, rows - 1):
        out[i, 0] = a[i, 0]
        for j in range(1, cols - 1):
            out[i, j] = np.float32(0.25) * (a[i - 1, j] + a[i + 1, j] + a[i, j - 1] + a[i, j + 1])
        out[i, cols - 1] = a[i, cols - 1]


def _numpy(a, out):
    out[0, :], out[-1, :], out[:, 0], out[:, -1] = a[0, :], a[-1, :], a[:, 0], a[:, -1]
    out[1:-1, 1:-1] = np.float32(0.25) * (a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:])


_CUPY = []
# The CuPy kernel (in, out, operation, name); indexes with 32-bit integers (a 64-bit division per
# point costs more than the point's arithmetic), so rows * cols must stay below 2**31.
CUPY_SPEC = ("raw T a, int32 rows, int32 cols", "T out",
             """
             const int k = (int)i, r = k / cols, c = k - r * cols;
             if (r == 0 || c == 0 || r == rows - 1 || c == cols - 1) out = a[k];
             else out = (T)0.25 * (a[k - cols] + a[k + cols] + a[k - 1] + a[k + 1]);
             """, "techday_stencil5")


def _cupy_kernel():
    if not _CUPY:
        _CUPY.append(cupy().ElementwiseKernel(*CUPY_SPEC))
    return _CUPY[0]


def kernels(plan):
    rows, cols = (45, 50) if plan.tiny else (plan.side, plan.side + plan.side // 8 + 3)

    def inputs():
        return {"a": np.random.default_rng(4).random((rows, cols), dtype=np.float32)}

    def reference(inp):
        out = inp["a"].astype(np.float64)
        _numpy(inp["a"].astype(np.float64), out)
        return out

    def numba_cuda(inp):
        d_a = cuda.to_device(inp["a"])
        d_out = device_poison((rows, cols), np.float32)
        blocks = ((cols + BLOCK[0] - 1) // BLOCK[0], (rows + BLOCK[1] * RPT - 1) // (BLOCK[1] * RPT))
        return (lambda: stencil_gpu[blocks, BLOCK](d_a, d_out)), d_out.copy_to_host

    def cupy_impl(inp):
        assert rows * cols < 2**31, "the CuPy stencil indexes with 32-bit integers"
        d_a = cupy().asarray(inp["a"])
        d_out = cupy_poison((rows, cols), np.float32)
        kernel = _cupy_kernel()
        r32, c32 = np.int32(rows), np.int32(cols)
        return (lambda: kernel(d_a, r32, c32, d_out)), d_out.get

    def numba_cpu(inp):
        out = poison((rows, cols), np.float32)
        return (lambda: stencil_cpu(inp["a"], out)), (lambda: out)

    def numpy_impl(inp):
        out = poison((rows, cols), np.float32)
        return (lambda: _numpy(inp["a"], out)), (lambda: out)

    return [Kernel("stencil", "jacobi5", "float32", f"{rows}x{cols}", bytes=2 * rows * cols * 4,
                   flops=4 * (rows - 2) * (cols - 2), inputs=inputs, reference=reference,
                   impls=[Impl("numba-cuda", "gpu", numba_cuda),
                          Impl("cupy", "gpu", cupy_impl, ("cupy",), note="ElementwiseKernel over a raw array"),
                          Impl("numba-cpu", "cpu", numba_cpu),
                          Impl("numpy", "cpu", numpy_impl, note="slices: temporaries for every sum")])]
