"""Helpers the labs share: checking results against a reference, and timing honestly.

Checks come before timings (a wrong kernel is never timed), and every timing carries the tier it was
taken on. Introduced in lab 01 (first kernels); the benchmark suite uses the same rules.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np


def assert_close(actual, expected, what: str = "result", rtol: float | None = None, atol: float = 0.0) -> None:
    """Fail with an ``AssertionError`` that says what differed, where, and by how much.

    ``rtol`` defaults to a bound suited to the dtype (float16: 1e-2, float32: 1e-5, float64: 1e-12).
    Shapes must match exactly; NaNs in ``actual`` where ``expected`` has numbers always fail, which is
    why tests fill outputs with NaN ("poison") before a kernel writes them.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} differs from the expected {expected.shape}")
    if rtol is None:
        kind = np.result_type(actual.dtype, expected.dtype)
        rtol = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-5}.get(np.dtype(kind), 1e-12)
        if not np.issubdtype(kind, np.floating):
            rtol = 0.0
    if actual.size == 0:
        return
    a = actual.astype(np.float64, copy=False) if actual.dtype.kind in "fiub" else actual
    e = expected.astype(np.float64, copy=False) if expected.dtype.kind in "fiub" else expected
    ok = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=False)
    if not ok.all():
        bad = np.flatnonzero(~ok.ravel())
        first = np.unravel_index(bad[0], actual.shape)
        raise AssertionError(
            f"{what}: {bad.size} of {actual.size} elements differ (rtol={rtol:g}, atol={atol:g}); "
            f"first at index {tuple(int(i) for i in first)}: got {actual[first]!r}, expected {expected[first]!r}"
        )


def relative_spread(seconds: list[float]) -> float:
    """How much repeated timings disagree, relative to their median: the interquartile range from 4
    samples on, the whole range below that (never 0 just because there were few runs)."""
    if not seconds:
        return 0.0
    mid = statistics.median(seconds)
    if not mid:
        return 0.0
    if len(seconds) < 4:
        return (max(seconds) - min(seconds)) / mid
    q = statistics.quantiles(seconds, n=4)
    return (q[2] - q[0]) / mid


@dataclass
class Timing:
    """Repeated measurements of one thing, in seconds, with the tier they were taken on."""

    what: str
    seconds: list[float]
    label: str

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0.05 = 5 % spread); see :func:`relative_spread`."""
        return relative_spread(self.seconds)

    def rate(self, amount: float) -> float:
        """``amount`` per second at the median time (bytes -> B/s, flops -> FLOP/s)."""
        return amount / self.median

    def __str__(self) -> str:
        return (f"{self.what}: median {self.median * 1e3:.3f} ms over {len(self.seconds)} runs "
                f"(spread {self.spread:.0%}) [{self.label}]")


def time_cpu(fn, *args, repeat: int = 7, warmup: int = 1, what: str = "", label: str = "CPU") -> Timing:
    """Time a host function with ``perf_counter``: warm-up calls (JIT compiles there) are not timed."""
    for _ in range(warmup):
        fn(*args)
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        seconds.append(time.perf_counter() - t0)
    return Timing(what or getattr(fn, "__name__", "call"), seconds, label)


def time_cuda(fn, *args, repeat: int = 20, warmup: int = 2, what: str = "", label: str = "GPU") -> Timing:
    """Time GPU work with CUDA events around each call (the device's clock, not the host's).

    GPU tier only: the simulator's events return -1 ms, so there this raises instead of lying.
    """
    from numba import config, cuda

    if config.ENABLE_CUDASIM:
        raise RuntimeError("CUDA events do not time anything in the simulator; use time_cpu and label it CPU")
    for _ in range(warmup):
        fn(*args)
    cuda.synchronize()
    seconds = []
    for _ in range(repeat):
        start, stop = cuda.event(), cuda.event()
        start.record()
        fn(*args)
        stop.record()
        stop.synchronize()
        seconds.append(cuda.event_elapsed_time(start, stop) / 1e3)
    return Timing(what or getattr(fn, "__name__", "kernel"), seconds, label)
