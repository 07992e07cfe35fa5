"""Small helpers the kernel families share (``benchmarks/*.py``): inputs, launch shapes, devices.

Nothing here imports Numba's CUDA target or CuPy at import time: the harness chooses the tier (and
switches the simulator on) before any family is loaded.
"""

from __future__ import annotations

import numpy as np

from .core import poison, register_output

TPB = 256  # threads per block for 1-D kernels: a multiple of the warp size, a good default


def pattern(n: int, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Deterministic, varied values in [0.1, 1.1) without a random generator (fast at 2**26): a period
    of 1,021 values (a prime), shifted by ``seed``, so a kernel that reads a neighbour's element gives a
    different answer."""
    period = ((np.arange(1021, dtype=np.int64) * (2 * seed + 3) + 7 * seed) % 1021 / 1021.0 + 0.1).astype(dtype)
    return np.tile(period, n // 1021 + 1)[:n].copy()


def grid(n: int, tpb: int = TPB) -> tuple[int, int]:
    """One thread per element: ``ceil(n / tpb)`` blocks of ``tpb`` threads."""
    return max(1, (n + tpb - 1) // tpb), tpb


def reduction_blocks(plan) -> int:
    """Blocks for a grid-stride reduction: as many 256-thread blocks as every SM holds at once, from the
    device's resident-thread limit (2048 per SM on cc 7.0 / 8.0 / 9.0: 8 blocks; 1536 on cc 8.6 / 8.9:
    6 blocks, where a fixed 8 would leave a partial second wave)."""
    per_sm = max(1, getattr(plan, "threads_per_sm", 2048) // TPB)
    return per_sm * plan.sm_count if plan.sm_count else 2


def resident_blocks(kernel, args, plan, tpb: int = TPB) -> int:
    """Blocks for a grid-stride Numba CUDA kernel: one full wave, from the CUDA occupancy API for this
    kernel as compiled for the types of ``args`` (its registers and shared memory count, which the
    resident-thread estimate of :func:`reduction_blocks` ignores) times the SM count. Where that API
    is not there (the simulator, a kernel that does not compile here), the estimate. The compilation
    happens here, outside any timed region, and the first timed launch finds it cached."""
    from numba import config

    if not config.ENABLE_CUDASIM:
        try:
            compiled = kernel.compile(tuple(kernel.typeof_pyval(a) for a in args))
            blocks = int(compiled.max_cooperative_grid_blocks(tpb))
            if blocks > 0:
                return blocks
        except Exception:  # no occupancy API here: fall back to the estimate, which every device has
            pass
    return reduction_blocks(plan)


def device_poison(shape, dtype):
    """A Numba device array filled with NaN (or -1): a kernel that skips elements shows."""
    from numba import cuda

    out = cuda.to_device(poison(shape, dtype, register=False))
    register_output(out)
    return out


def cupy():
    import cupy as cp

    return cp


def cupy_poison(shape, dtype):
    return poison(shape, dtype, xp=cupy())


def to_host(x):
    """A device array (Numba, CuPy or PyTorch) or a host value as a NumPy array."""
    if hasattr(x, "copy_to_host"):
        return x.copy_to_host()
    if hasattr(x, "get"):
        return x.get()
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy() if str(x.dtype) == "torch.bfloat16" else x.detach().cpu().numpy()
    return np.asarray(x)
