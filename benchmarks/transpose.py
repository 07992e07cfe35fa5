"""Transpose of a float32 matrix: naive, shared-memory tiles, and padded shared-memory tiles.

Bytes: ``2 * rows * cols * 4`` (every element read once and written once); no FLOPs. The naive
kernel reads rows (coalesced) and writes columns (a 32-thread warp writes 32 different lines). The
tiled kernels stage a 32 x 32 tile in shared memory so that both the read and the write are
coalesced (NVIDIA's "An Efficient Matrix Transpose in CUDA C/C++"); without padding, the column
reads from shared memory hit one bank 32 times, and a tile of 32 x 33 spreads them over all 32
banks. Target on an H100: the padded kernel at 80 % or more of STREAM copy.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32, njit, prange

from techday.bench.core import Impl, Kernel, poison
from techday.bench.kit import cupy, cupy_poison, device_poison

TILE = 32
ROWS = 8  # a block is 32 x 8 threads; each thread moves TILE / ROWS = 4 elements
assert TILE == 4 * ROWS  # the tiled kernels load their four elements by name
PADDED = TILE + 1  # a module constant: shared-array shapes must be compile-time constants


@cuda.jit
def transpose_naive(a, out):
    col, row = cuda.grid(2)
    if row < a.shape[0] and col < a.shape[1]:
        out[col, row] = a[row, col]


@cuda.jit
def transpose_shared(a, out):
    tile = cuda.shared.array((TILE, TILE), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    x = cuda.blockIdx.x * TILE + tx
    y = cuda.blockIdx.y * TILE + ty
    # The thread's four loads first, each guarded and none waiting for another, then the shared
    # stores: with a store to the tile after each load, the loads ran one at a time (4 bytes in
    # flight a thread; the padded kernel reached 48 % of an H200's bandwidth that way).
    inside, rows = x < a.shape[1], a.shape[0]
    v0 = a[y, x] if inside and y < rows else float32(0)
    v1 = a[y + ROWS, x] if inside and y + ROWS < rows else float32(0)
    v2 = a[y + 2 * ROWS, x] if inside and y + 2 * ROWS < rows else float32(0)
    v3 = a[y + 3 * ROWS, x] if inside and y + 3 * ROWS < rows else float32(0)
    tile[ty, tx] = v0
    tile[ty + ROWS, tx] = v1
    tile[ty + 2 * ROWS, tx] = v2
    tile[ty + 3 * ROWS, tx] = v3
    cuda.syncthreads()
    x = cuda.blockIdx.y * TILE + tx
    y = cuda.blockIdx.x * TILE + ty
    for k in range(0, TILE, ROWS):
        if x < out.shape[1] and y + k < out.shape[0]:
            out[y + k, x] = tile[tx, ty + k]


@cuda.jit
def transpose_padded(a, out):
    tile = cuda.shared.array((TILE, PADDED), float32)  # one spare column: no bank conflicts
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    x = cuda.blockIdx.x * TILE + tx
    y = cuda.blockIdx.y * TILE + ty
    # The four loads first, then the shared stores, as in transpose_shared.
    inside, rows = x < a.shape[1], a.shape[0]
    v0 = a[y, x] if inside and y < rows else float32(0)
    v1 = a[y + ROWS, x] if inside and y + ROWS < rows else float32(0)
    v2 = a[y + 2 * ROWS, x] if inside and y + 2 * ROWS < rows else float32(0)
    v3 = a[y + 3 * ROWS, x] if inside and y + 3 * ROWS < rows else float32(0)
    tile[ty, tx] = v0
    tile[ty + ROWS, tx] = v1
    tile[ty + 2 * ROWS, tx] = v2
    tile[ty + 3 * ROWS, tx] = v3
    cuda.syncthreads()
    x = cuda.blockIdx.y * TILE + tx
    y = cuda.blockIdx.x * TILE + ty
    for k in range(0, TILE, ROWS):
        if x < out.shape[1] and y + k < out.shape[0]:
            out[y + k, x] = tile[tx, ty + k]


@njit(parallel=True, cache=True)
def transpose_cpu(a, out):
    rows, cols = a.shape
    for bi in prange((rows + TILE - 1) // TILE):  # 32 x 32 blocks: both sides stay in cache
        for bj in range(0, cols, TILE):
            for i in range(bi * TILE, min(bi * TILE + TILE, rows)):
                for j in range(bj, min(bj + TILE, cols)):
                    out[j, i] = a[i, j]


def _shape(plan):
    return (45, 50) if plan.tiny else (plan.side, plan.side + plan.side // 8 + 3)  # not square, not a multiple of 32


def kernels(plan):
    rows, cols = _shape(plan)

    def inputs():
        return {"a": np.random.default_rng(3).random((rows, cols), dtype=np.float32)}

    def reference(inp):
        return inp["a"].T.copy()

    def numba_cuda(kernel, block, grid_of):
        def make(inp):
            d_a = cuda.to_device(inp["a"])
            d_out = device_poison((cols, rows), np.float32)
            blocks = grid_of(rows, cols)

            def run():
                kernel[blocks, block](d_a, d_out)

            return run, d_out.copy_to_host

        return make

    def tiles(r, c):
        return (c + TILE - 1) // TILE, (r + TILE - 1) // TILE

    def naive_grid(r, c):
        return (c + TILE - 1) // TILE, (r + ROWS - 1) // ROWS

    def cupy_impl(inp):
        d_a = cupy().asarray(inp["a"])
        d_out = cupy_poison((cols, rows), np.float32)

        def run():
            d_out[...] = d_a.T  # CuPy's strided copy kernel

        return run, d_out.get

    def numba_cpu(inp):
        out = poison((cols, rows), np.float32)
        return (lambda: transpose_cpu(inp["a"], out)), (lambda: out)

    def numpy_impl(inp):
        out = poison((cols, rows), np.float32)
        return (lambda: np.copyto(out, inp["a"].T)), (lambda: out)

    size = f"{rows}x{cols}"
    nbytes = 2 * rows * cols * 4
    common = dict(dtype="float32", size=size, bytes=nbytes, flops=0, inputs=inputs, reference=reference, rtol=0.0)
    return [
        Kernel("transpose", "naive", impls=[Impl("numba-cuda", "gpu", numba_cuda(transpose_naive, (TILE, ROWS), naive_grid)),
                                            Impl("cupy", "gpu", cupy_impl, ("cupy",), note="out[...] = a.T"),
                                            Impl("numba-cpu", "cpu", numba_cpu, note="32 x 32 blocks"),
                                            Impl("numpy", "cpu", numpy_impl, note="np.copyto(out, a.T)")], **common),
        Kernel("transpose", "shared", impls=[Impl("numba-cuda", "gpu", numba_cuda(transpose_shared, (TILE, ROWS), tiles))],
               **common),
        Kernel("transpose", "padded", impls=[Impl("numba-cuda", "gpu", numba_cuda(transpose_padded, (TILE, ROWS), tiles))],
               **common),
    ]
