"""What a benchmark is: kernels, their implementations, the plan of sizes, checking and timing.

A kernel family (``benchmarks/<family>.py``) defines ``kernels(plan)``, which returns
:class:`Kernel` objects. A kernel owns its seeded inputs, its NumPy reference, the bytes and FLOPs
one call moves and computes (the formula sits beside the kernel), and its implementations
(:class:`Impl`). An implementation's ``make(inputs)`` allocates its outputs **poisoned** (NaN, or -1
for integers) and returns ``(run, fetch)``: ``run()`` is the timed call, ``fetch()`` copies the
result to the host. The harness checks ``fetch()`` against the reference after the first ``run()``
(which is also the JIT warm-up); a wrong implementation is reported as wrong and never timed.

Timing follows ``triton.testing.do_bench`` and ``cupyx.profiler.benchmark``: warm-up outside the
timed region, CUDA events on the device (the legacy default stream, which Numba, CuPy and PyTorch
all launch on by default), ``perf_counter`` on the CPU, many repetitions, the median and the
spread, and the L2 cache flushed before each repetition of a "cold" kernel.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..labtools import relative_spread

# Relative error bounds per dtype: elementwise results are checked with np.isclose(rtol), reductions
# and matrix products with the normwise error ||got - ref|| / ||ref||, which suits sums of many terms.
RTOL = {"float64": 1e-10, "float32": 1e-5, "tf32": 5e-3, "float16": 1e-2, "bfloat16": 2e-2,
        "int32": 0.0, "int64": 0.0, "uint8": 0.0}

IMPL_ORDER = ("numba-cuda", "cupy", "torch", "numba-cpu", "numpy")
SAMPLE_ABOVE = 2**22  # outputs larger than this (elements) are compared on a sample, scanned whole for poison


@dataclass
class Plan:
    """The sizes a run uses. ``n`` (1-D elements) and ``side`` (2-D) are chosen several times
    larger than the L2 cache on a GPU; ``tiny`` is the size for checking Numba CUDA kernels in the
    simulator (never timed)."""

    tier: str
    quick: bool
    n: int
    side: int
    mm: int
    mm_cpu: int
    hist_n: int
    sweep: tuple[int, ...]
    transfer_bytes: int
    l2_bytes: int = 0
    sm_count: int = 0
    tiny: bool = False

    @classmethod
    def for_device(cls, tier: str, quick: bool, l2_bytes: int = 0, sm_count: int = 0, ci: bool = False) -> Plan:
        """Sizes for this device. ``ci`` (lab 08 at ``--scale ci``): on the CPU tier, arrays of a few MiB
        so the lab runs in seconds; on a GPU the quick sizes."""
        if ci and tier == "cpu":
            return cls(tier, True, n=2**20, side=512, mm=192, mm_cpu=192, hist_n=2**20, sweep=(1, 4, 32),
                       transfer_bytes=0)
        if tier == "gpu":
            # 2**25 doubles (256 MiB per array) is BabelStream's default; at least 8 x L2 either way.
            n = max(2**25 if quick else 2**26, 8 * l2_bytes // 8)
            side = 8192 if quick else 16384
            return cls(tier, quick, n=n, side=side, mm=4096 if quick else 8192, mm_cpu=512,
                       hist_n=2**26 if quick else 2**28,
                       sweep=(1, 4, 16, 64, 256) if quick else (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                       transfer_bytes=(64 if quick else 256) * 2**20, l2_bytes=l2_bytes, sm_count=sm_count)
        # CPU tier: arrays well past a typical L2 (and past most L3s at full size), runs in seconds.
        return cls(tier, quick, n=2**23 if quick else 2**25, side=2048 if quick else 4096,
                   mm=256, mm_cpu=256 if quick else 512, hist_n=2**23 if quick else 2**25,
                   sweep=(1, 4, 32) if quick else (1, 2, 4, 8, 16, 32, 64, 128),
                   transfer_bytes=0)

    @classmethod
    def simulator(cls) -> Plan:
        """Awkward small sizes for a correctness check of Numba CUDA kernels in the simulator."""
        return cls("cpu", True, n=300, side=45, mm=37, mm_cpu=37, hist_n=3001, sweep=(1, 3),
                   transfer_bytes=0, tiny=True)


@dataclass
class Impl:
    """One implementation of a kernel. ``device`` is where it runs: ``gpu`` or ``cpu``."""

    name: str
    device: str
    make: Callable[[dict], tuple[Callable[[], object], Callable[[], object]]]
    requires: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Kernel:
    """One thing to measure. ``metric`` is the figure of merit: ``gbs`` (GB/s, memory-bound),
    ``gflops`` (GFLOP/s, compute-bound) or ``us`` (microseconds per call, lower is better).
    ``limit`` names the device limit the figure is compared with (see :mod:`techday.bench.limits`)."""

    family: str
    name: str
    dtype: str
    size: str
    bytes: int
    flops: int
    inputs: Callable[[], dict]
    reference: Callable[[dict], object] | None
    impls: list[Impl]
    metric: str = "gbs"
    limit: str | None = "dram_gbs"
    rtol: float | None = None
    check: str = "elementwise"  # or "normwise"
    cold: bool = True
    timer: str = "device"  # "host": perf_counter around run() plus a synchronize (launch latency)
    calls_per_run: int = 1
    note: str = ""
    # Check only part of the output (e.g. sampled rows of a large matrix product): the reference
    # then describes view(output) only.
    view: Callable[[object], object] | None = None

    @property
    def key(self) -> str:
        return f"{self.family}.{self.name}"

    @property
    def intensity(self) -> float | None:
        """Arithmetic intensity in FLOP per byte of DRAM traffic."""
        return self.flops / self.bytes if self.bytes and self.flops else None


# ---------------------------------------------------------------------------------------------
# Checking


def poison(shape, dtype, xp=np):
    """An output buffer that a kernel must overwrite: NaN for floats, -1 for integers."""
    dtype = np.dtype(dtype)
    return xp.full(shape, np.nan if dtype.kind == "f" else -1, dtype=dtype)


def check(kernel: Kernel, got, expected) -> tuple[bool, float, str]:
    """Compare ``got`` with the reference: (ok, error, message)."""
    if expected is None:
        return True, 0.0, "nothing to compare (no output)"
    got = np.asarray(got)
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        return False, math.inf, f"shape {got.shape}, expected {expected.shape}"
    rtol = kernel.rtol if kernel.rtol is not None else RTOL.get(kernel.dtype, 1e-5)
    finite = np.isfinite(got).all() if got.dtype.kind == "f" else (got != -1).all() if got.dtype.kind == "i" else True
    if not finite:
        bad = int((~np.isfinite(got)).sum()) if got.dtype.kind == "f" else int((got == -1).sum())
        return False, math.inf, f"{bad} of {got.size} values are NaN or infinite (poisoned output not written?)"
    if kernel.check == "elementwise" and got.size > SAMPLE_ABOVE:
        # Every element was scanned for poison above; values are compared on a fixed sample: the first
        # and last 64 Ki elements and an even stride through the rest (a few seconds saved per check).
        idx = np.unique(np.r_[np.arange(65536), np.arange(got.size - 65536, got.size),
                              np.linspace(0, got.size - 1, 2**20).astype(np.int64)])
        got, expected = got.reshape(-1)[idx], expected.reshape(-1)[idx]
    g = got.astype(np.float64, copy=False)
    e = expected.astype(np.float64, copy=False)
    if kernel.check == "normwise":
        denom = float(np.linalg.norm(e.ravel())) or 1.0
        err = float(np.linalg.norm((g - e).ravel())) / denom
        return err <= rtol, err, f"normwise relative error {err:.2e} (bound {rtol:.0e})"
    diff = np.abs(g - e)
    scale = np.abs(e)
    atol = rtol * 1e-2 * (float(scale.max()) if scale.size else 0.0)  # values near zero: relative to the largest
    bad = diff > rtol * scale + atol
    err = float(np.max(diff / np.maximum(scale, atol or 1e-300))) if g.size else 0.0
    if not bad.any():
        return True, err, f"max relative error {err:.2e} (bound {rtol:.0e})"
    idx = np.unravel_index(int(np.flatnonzero(bad)[0]), g.shape)
    return False, err, (f"{int(bad.sum())} of {g.size} values differ (bound {rtol:.0e}); first at "
                        f"{tuple(int(i) for i in idx)}: got {g[idx]!r}, expected {e[idx]!r}")


# ---------------------------------------------------------------------------------------------
# Timing


@dataclass
class Sample:
    """Seconds per call, with how they were taken."""

    seconds: list[float] = field(default_factory=list)
    clock: str = "perf_counter"

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Interquartile range over the median (0.02 = 2 %); the labs report theirs the same way."""
        return relative_spread(self.seconds)

    def to_dict(self) -> dict:
        return {"median": self.median, "min": min(self.seconds), "max": max(self.seconds),
                "spread": self.spread, "reps": len(self.seconds), "clock": self.clock}


def _reps(estimate: float, budget: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, budget / max(estimate, 1e-9))))


def time_host(run, *, budget: float, lo: int = 5, hi: int = 100, sync=None, calls: int = 1) -> Sample:
    """``perf_counter`` around each call (after a synchronize when ``sync`` is given)."""
    t0 = time.perf_counter()
    run()
    if sync:
        sync()
    estimate = time.perf_counter() - t0
    out = []
    for _ in range(_reps(estimate, budget, lo, hi)):
        t0 = time.perf_counter()
        run()
        if sync:
            sync()
        out.append((time.perf_counter() - t0) / calls)
    return Sample(out, "perf_counter")


class L2Flush:
    """Writes a buffer twice the size of the L2 cache, so the next kernel starts cold."""

    def __init__(self, l2_bytes: int):
        from numba import cuda

        self.buf = cuda.device_array(max(2 * l2_bytes, 2**20) // 4, dtype=np.int32)
        self.kernel = _flush_kernel()

    def __call__(self):
        n = self.buf.shape[0]
        self.kernel[(n + 255) // 256, 256](self.buf)


def _flush_kernel():
    from numba import cuda

    @cuda.jit
    def flush(buf):
        i = cuda.grid(1)
        if i < buf.shape[0]:
            buf[i] = i

    return flush


def time_device(run, *, budget: float, lo: int = 10, hi: int = 200, flush=None, calls: int = 1) -> Sample:
    """CUDA events recorded on the default stream around each call; the L2 flush (if any) runs
    before the start event."""
    from numba import cuda

    cuda.synchronize()
    start, stop = cuda.event(), cuda.event()
    start.record()
    run()
    stop.record()
    stop.synchronize()
    estimate = cuda.event_elapsed_time(start, stop) / 1e3
    out = []
    for _ in range(_reps(estimate, budget, lo, hi)):
        if flush is not None:
            flush()
        start.record()
        run()
        stop.record()
        stop.synchronize()
        out.append(cuda.event_elapsed_time(start, stop) / 1e3 / calls)
    return Sample(out, "cuda-event")
