"""Matrix multiply: a tiled shared-memory Numba kernel against cuBLAS, in FP32, TF32, FP16 and BF16.

FLOPs: ``2 * M * N * K`` (one multiply and one add per term); bytes: ``(M*K + K*N + M*N) * itemsize``,
the least traffic possible, which gives the intensity plotted on the roofline (about ``n / 3`` FLOP
per 4-byte element for a square FP32 product: compute-bound for any ``n`` worth timing).

- ``fp32``: the Numba kernel (64 x 64 tiles of C per block of 16 x 16 threads, 16-wide K slices in
  shared memory, a 4 x 4 block of C in registers per thread) and cuBLAS through ``cupy.matmul``;
  on the CPU tier ``numpy.matmul`` (BLAS) and a Numba parallel loop. Target on an H100: the Numba
  kernel at 25 % or more of cuBLAS FP32.
- ``tf32`` and ``bf16``: cuBLAS through PyTorch (``torch.matmul``; CuPy has no bfloat16 dtype, and
  its TF32 switch is a process-wide environment variable). ``fp16``: cuBLAS through CuPy.
  Compared with the dense tensor-core peak (FP32 accumulate). Target: BF16 at 80 % or more.

Large products are checked on sampled rows (first, last and a spread in between) against a float64
product of the same (rounded) inputs, with a normwise bound per precision.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32, njit, prange

from techday.bench.core import Impl, Kernel, poison, register_output
from techday.bench.kit import cupy, cupy_poison, device_poison

BM = BN = 64  # a block computes a 64 x 64 tile of C ...
BK = 16  # ... stepping through K 16 columns at a time
T = 16  # with 16 x 16 threads; each thread owns a 4 x 4 block of C, strided by 16
R = BM // T  # 4


@cuda.jit
def matmul_tiled(A, B, C):
    As = cuda.shared.array((BM, BK), float32)
    Bs = cuda.shared.array((BK, BN), float32)
    acc = cuda.local.array((R, R), float32)
    b_reg = cuda.local.array(R, float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    tid = ty * T + tx
    row0 = cuda.blockIdx.y * BM
    col0 = cuda.blockIdx.x * BN
    M, K = A.shape
    N = B.shape[1]
    for i in range(R):
        for j in range(R):
            acc[i, j] = 0.0
    for k0 in range(0, K, BK):
        for load in range(BM * BK // (T * T)):  # 4 elements of the A tile and 4 of the B tile per thread
            e = tid + load * T * T
            r, c = e // BK, e % BK
            As[r, c] = A[row0 + r, k0 + c] if row0 + r < M and k0 + c < K else float32(0.0)
            r, c = e // BN, e % BN
            Bs[r, c] = B[k0 + r, col0 + c] if k0 + r < K and col0 + c < N else float32(0.0)
        cuda.syncthreads()
        for k in range(BK):
            for j in range(R):
                b_reg[j] = Bs[k, tx + T * j]
            for i in range(R):
                a = As[ty + T * i, k]
                for j in range(R):
                    acc[i, j] += a * b_reg[j]
        cuda.syncthreads()
    for i in range(R):
        for j in range(R):
            r, c = row0 + ty + T * i, col0 + tx + T * j
            if r < M and c < N:
                C[r, c] = acc[i, j]


@njit(parallel=True, fastmath=True, cache=True)
def matmul_cpu(A, B, C):
    M, K = A.shape
    N = B.shape[1]
    for i in prange(M):
        for j in range(N):
            C[i, j] = 0.0
        for k in range(K):
            a = A[i, k]
            for j in range(N):  # i-k-j order: the inner loop streams a row of B and of C
                C[i, j] += a * B[k, j]


def _round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded (to nearest even) to the 8-bit mantissa of bfloat16, kept as float32."""
    bits = x.astype(np.float32).view(np.uint32)
    bits = (bits + np.uint32(0x7FFF) + ((bits >> 16) & 1)) & np.uint32(0xFFFF0000)
    return bits.view(np.float32)


# precision: (dtype label, limit, normwise bound, impls)
PRECISIONS = {
    "fp32": ("float32", "fp32_gflops", 1e-4),
    "tf32": ("tf32", "tf32_gflops", 5e-3),
    "fp16": ("float16", "fp16_gflops", 1e-2),
    "bf16": ("bfloat16", "bf16_gflops", 2e-2),
}


def _dims(plan):
    if plan.tiny:
        return 67, 73, 29  # M, N, K: none a multiple of the tile, M and N past one 64 x 64 tile, K past 16
    n = plan.mm if plan.tier == "gpu" else plan.mm_cpu
    return n, n, n


def kernels(plan):
    M, N, K = _dims(plan)
    rows = np.unique(np.r_[0, M - 1, np.linspace(0, M - 1, min(M, 64)).astype(int)])

    def make_inputs(precision):
        def inputs():
            rng = np.random.default_rng(6)
            a = rng.uniform(-1, 1, (M, K)).astype(np.float32)
            b = rng.uniform(-1, 1, (K, N)).astype(np.float32)
            if precision == "fp16":
                a, b = a.astype(np.float16), b.astype(np.float16)
            elif precision == "bf16":
                a, b = _round_bf16(a), _round_bf16(b)
            return {"a": a, "b": b}

        return inputs

    def reference(inp):
        return inp["a"][rows].astype(np.float64) @ inp["b"].astype(np.float64)

    def view(c):
        return np.asarray(c)[rows]

    def numba_tiled(inp):
        d_a, d_b = cuda.to_device(inp["a"]), cuda.to_device(inp["b"])
        d_c = device_poison((M, N), np.float32)
        blocks = ((N + BN - 1) // BN, (M + BM - 1) // BM)
        return (lambda: matmul_tiled[blocks, (T, T)](d_a, d_b, d_c)), d_c.copy_to_host

    def cupy_matmul(inp):
        cp = cupy()
        d_a, d_b = cp.asarray(inp["a"]), cp.asarray(inp["b"])
        d_c = cupy_poison((M, N), inp["a"].dtype)
        return (lambda: cp.matmul(d_a, d_b, out=d_c)), d_c.get

    def torch_matmul(precision):
        def make(inp):
            import torch

            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            d_a = torch.from_numpy(inp["a"]).to("cuda", dtype)
            d_b = torch.from_numpy(inp["b"]).to("cuda", dtype)
            d_c = torch.full((M, N), float("nan"), device="cuda", dtype=dtype)
            register_output(d_c)
            if precision == "tf32":
                # Set once, here, outside the timed call, with the current API (PyTorch 2.9+:
                # fp32_precision; older releases: allow_tf32). FP32 matmuls after this one run in TF32
                # too until a caller sets it back; the suite's other FP32 products go through CuPy.
                if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
                    torch.backends.cuda.matmul.fp32_precision = "tf32"
                else:
                    torch.backends.cuda.matmul.allow_tf32 = True

            def run():
                torch.matmul(d_a, d_b, out=d_c)

            return run, lambda: d_c.float().cpu().numpy()

        return make

    def numba_cpu(inp):
        c = poison((M, N), np.float32)
        return (lambda: matmul_cpu(inp["a"], inp["b"], c)), (lambda: c)

    def numpy_impl(inp):
        c = poison((M, N), np.float32)
        return (lambda: np.matmul(inp["a"], inp["b"], out=c)), (lambda: c)

    impls = {
        "fp32": [Impl("numba-cuda", "gpu", numba_tiled, note="64x64 tiles, 4x4 per thread"),
                 Impl("cupy", "gpu", cupy_matmul, ("cupy",), note="cuBLAS SGEMM")],
        "tf32": [Impl("torch", "gpu", torch_matmul("tf32"), ("torch",), note="cuBLAS, allow_tf32")],
        "fp16": [Impl("cupy", "gpu", cupy_matmul, ("cupy",), note="cuBLAS, FP32 accumulate")],
        "bf16": [Impl("torch", "gpu", torch_matmul("bf16"), ("torch",), note="cuBLAS; CuPy has no bfloat16")],
    }
    if plan.tier == "cpu":
        impls["fp32"] += [Impl("numba-cpu", "cpu", numba_cpu, note="i-k-j loops, prange over rows"),
                          Impl("numpy", "cpu", numpy_impl, note="BLAS")]
    out = []
    for precision, (dtype, limit, bound) in PRECISIONS.items():
        itemsize = 4 if precision in ("fp32", "tf32") else 2
        out.append(Kernel("matmul", precision, dtype, f"{M}x{N}x{K}", bytes=(M * K + K * N + M * N) * itemsize,
                          flops=2 * M * N * K, inputs=make_inputs(precision), reference=reference,
                          impls=impls[precision], metric="gflops", limit=limit, rtol=bound, check="normwise",
                          cold=False, view=view))
    return out
