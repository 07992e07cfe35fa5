"""What a benchmark is: kernels, their implementations, the plan of sizes, checking and timing.

A kernel family (``benchmarks/<family>.py``) defines ``kernels(plan)``, which returns
:class:`Kernel` objects. A kernel owns its seeded inputs, its NumPy reference, the bytes and FLOPs
one call moves and computes (the formula sits beside the kernel), and its implementations
(:class:`Impl`). An implementation's ``make(inputs)`` allocates its outputs **poisoned** (NaN, or -1
for integers, through :func:`poison` or :func:`techday.bench.kit.device_poison`, which register the
buffer with the harness) and returns ``(run, fetch)``: ``run()`` is the timed call, ``fetch()``
copies the result to the host. The harness checks ``fetch()`` against the reference after the first
``run()`` (which is also the JIT warm-up); a wrong implementation is reported as wrong and never
timed. Then, so that a kernel cannot compute once and skip its work on later calls, the registered
outputs are poisoned again before each of :data:`AUDIT_REPS` **audit repetitions** spread among the
timed ones, the last after them (timed the same way, never part of the figure), and the whole output
is checked once more after the last. A kernel that skips its work while its outputs already hold a result (one
that looks for the poison, or remembers it computed) does the work only in the audit repetitions:
they take longer than its timed ones, and the harness says it is wrong (:data:`AUDIT_FACTOR`).

Timing follows nvbench, BabelStream, ``triton.testing.do_bench`` and ``cupyx.profiler.benchmark``:
warm-up outside the timed region until the clocks settle, CUDA events on the device (the legacy
default stream, which Numba, CuPy and PyTorch all launch on by default), the GPU kept busy by a
short sleeping kernel while the host enqueues the start event, the call and the stop event (so host
dispatch time never falls between the events), a **read-only** L2 flush before each repetition of a
"cold" kernel (a flush that wrote would leave dirty lines to drain during the timed kernel), K
back-to-back calls between one pair of events for a warm kernel, ``perf_counter`` on the CPU, many
repetitions, the median, the best and the spread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..measure import Timing, rtol_for
from .schema import AUDIT_FACTOR, AUDIT_REPS, DEVICE_MAX_REPS, HOST_MAX_REPS, MAX_WARM_CALLS  # noqa: F401

IMPL_ORDER = ("numba-cuda", "cupy", "torch", "numba-cpu", "numpy")
CHUNK = 2**16  # outputs are compared whole, this many elements at a time (in cache, bounded temporaries)
# The repetitions the harness takes are the results file's contract (techday.bench.schema): at most
# HOST_MAX_REPS with perf_counter and DEVICE_MAX_REPS with CUDA events (time_host's and time_device's
# ``hi``), at most MAX_WARM_CALLS back-to-back calls, and AUDIT_REPS audit repetitions after the timed
# ones, each with the outputs poisoned before it (timed the same way, never part of the figure; the
# last one's output is checked). A kernel whose fastest audit repetition took more than AUDIT_FACTOR
# times its timed median did less work when its outputs were already written.


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
    threads_per_sm: int = 2048  # the device's max resident threads per SM (1536 on cc 8.6 / 8.9)

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
        """Awkward small sizes for a correctness check of Numba CUDA kernels in the simulator, each past
        one block's worth of work in every dimension: 1,237 elements is past 4 blocks of 256 threads and
        past the 2 x 256 threads of a simulator grid-stride loop (a kernel wrong only past 1,000
        elements is caught); 2-D sizes (45 x 50, matrix products 67 x 73 x 29) are past one 32 x 8
        block, one 32 x 32 transpose tile and one 64 x 64 x 16 matmul tile in each dimension."""
        return cls("cpu", True, n=1237, side=45, mm=67, mm_cpu=67, hist_n=3001, sweep=(1, 3),
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


_made: list | None = None  # outputs registered while an implementation's make() runs


def poison_value(dtype):
    return np.nan if np.dtype(dtype).kind == "f" else -1


def poison(shape, dtype, xp=np, register: bool = True):
    """An output buffer that a kernel must overwrite: NaN for floats, -1 for integers. The buffer is
    registered with the harness, which poisons it again before the last timed repetition."""
    dtype = np.dtype(dtype)
    out = xp.full(shape, poison_value(dtype), dtype=dtype)
    if register:
        register_output(out)
    return out


def register_output(buf) -> None:
    """Mark ``buf`` (NumPy, CuPy, Numba device array or torch tensor) as an output to re-poison."""
    if _made is not None:
        _made.append(buf)


class outputs:
    """``with outputs() as made: run, fetch = impl.make(inputs)``: collects the registered outputs."""

    def __enter__(self) -> list:
        global _made
        self._outer, _made = _made, []
        return _made

    def __exit__(self, *exc) -> None:
        global _made
        _made = self._outer


def repoison(buffers) -> int:
    """Fill every buffer with poison again (outside any timed region); returns how many were filled."""
    done = 0
    for buf in buffers:
        if hasattr(buf, "fill_"):  # a torch tensor (bfloat16 has no NumPy dtype)
            buf.fill_(float("nan") if buf.is_floating_point() else -1)
            done += 1
            continue
        value = poison_value(buf.dtype)
        if hasattr(buf, "copy_to_device"):  # a Numba device array
            buf.copy_to_device(np.full(buf.shape, value, dtype=buf.dtype))
        elif isinstance(buf, np.ndarray) and not buf.flags.writeable:
            continue
        else:  # NumPy or CuPy
            buf.fill(value)
        done += 1
    return done


def check(kernel: Kernel, got, expected) -> tuple[bool, float, str]:
    """Compare ``got`` with the reference: (ok, error, message)."""
    if expected is None:
        return True, 0.0, "nothing to compare (no output)"
    got = np.asarray(got)
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        return False, math.inf, f"shape {got.shape}, expected {expected.shape}"
    rtol = kernel.rtol if kernel.rtol is not None else rtol_for(kernel.dtype, normwise=kernel.check == "normwise")
    finite = np.isfinite(got).all() if got.dtype.kind == "f" else (got != -1).all() if got.dtype.kind == "i" else True
    if not finite:
        bad = int((~np.isfinite(got)).sum()) if got.dtype.kind == "f" else int((got == -1).sum())
        return False, math.inf, f"{bad} of {got.size} values are NaN or infinite (poisoned output not written?)"
    if kernel.check == "elementwise" and got.size > CHUNK:
        return _check_chunked(got, expected, rtol)
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


def _check_chunked(got, expected, rtol) -> tuple[bool, float, str]:
    """The elementwise check over every element of a large output, a chunk at a time: one wrong
    element anywhere is found (a fixed sample could be learned and dodged). Chunks small enough to stay
    in cache and ufuncs writing into four reused buffers keep it to about two passes over memory (a
    62.9 M-element float64 output: 2.3 s with a temporary per step, 0.26 s so, on a 2-core CPU)."""
    g, e = got.reshape(-1), expected.reshape(-1)
    step = min(CHUNK, max(1, g.size))
    diff, scale, limit, conv = (np.empty(step) for _ in range(4))
    wrong = np.empty(step, dtype=bool)
    top = 0.0
    for i in range(0, e.size, step):
        ee = e[i:i + step]
        top = max(top, float(np.abs(ee, out=scale[:ee.size], casting="unsafe").max()))
    atol = rtol * 1e-2 * top
    floor = atol or 1e-300
    worst, bad, first = 0.0, 0, None
    for i in range(0, g.size, step):
        k = min(step, g.size - i)
        gg, ee = g[i:i + k], e[i:i + k]
        if gg.dtype != np.float64:
            np.copyto(conv[:k], gg, casting="unsafe")
            gg = conv[:k]
        d = np.subtract(gg, ee, out=diff[:k], casting="unsafe")
        np.abs(d, out=d)
        sc = np.abs(ee, out=scale[:k], casting="unsafe")
        lim = np.multiply(sc, rtol, out=limit[:k])
        lim += atol
        w = np.greater(d, lim, out=wrong[:k])
        if w.any():
            bad += int(w.sum())
            if first is None:
                j = int(np.flatnonzero(w)[0])
                first = (i + j, g[i + j].astype(np.float64), e[i + j].astype(np.float64))
        np.maximum(sc, floor, out=sc)
        np.divide(d, sc, out=d)
        worst = max(worst, float(d.max()))
    if not bad:
        return True, worst, f"max relative error {worst:.2e} (bound {rtol:.0e}), every element compared"
    idx = np.unravel_index(first[0], got.shape)
    return False, worst, (f"{bad} of {g.size} values differ (bound {rtol:.0e}); first at "
                          f"{tuple(int(i) for i in idx)}: got {first[1]!r}, expected {first[2]!r}")


# ---------------------------------------------------------------------------------------------
# Timing


@dataclass
class Sample(Timing):
    """Seconds per call (the core of :class:`techday.measure.Timing`: median, best, spread, as the labs
    report theirs), with how they were taken."""

    what: str = ""
    seconds: list[float] = field(default_factory=list)
    label: str = ""
    clock: str = "perf_counter"
    calls: int = 1  # back-to-back calls between one pair of events (or perf_counter readings)
    uncovered: int = 0  # repetitions whose enqueueing outlasted the busy kernel (see Busy.cover)
    audit: list[float] = field(default_factory=list)  # the audit repetitions' seconds (see AUDIT_REPS)

    def to_dict(self) -> dict:
        """The summary and every repetition it comes from, in the order they were timed: ``samples``
        (the timed repetitions: the figure's median, fastest and spread are theirs) and ``audit``
        (the repetitions after them with freshly poisoned outputs). A reader recomputes the summary
        from the samples; a summary with nothing behind it is not a measurement."""
        return {"median": self.median, "min": self.best, "max": max(self.seconds),
                "spread": self.spread, "reps": len(self.seconds), "clock": self.clock, "calls": self.calls,
                "samples": list(self.seconds), "audit": list(self.audit)}


def _reps(estimate: float, budget: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, budget / max(estimate, 1e-9))))


def time_host(run, *, budget: float, lo: int = 5, hi: int = HOST_MAX_REPS, sync=None, calls: int = 1,
              before_last=None, warmup: float = 0.0, audit=None, audits: int = 0) -> Sample:
    """``perf_counter`` around each call (after a synchronize when ``sync`` is given). ``before_last``
    runs before the last repetition, outside the timed region. Among the timed repetitions
    (:func:`audit_points`), ``audits`` audit repetitions, timed the same way, each after ``audit()``
    (the harness re-poisons the outputs there), in ``Sample.audit``: never part of the figure."""
    t0 = time.perf_counter()
    run()
    if sync:
        sync()
    estimate = time.perf_counter() - t0
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:  # warm-up until caches, page tables and clocks settle
        run()
    if sync:
        sync()

    def one(before=None) -> float:
        if before is not None:
            before()
            if sync:
                sync()
        t0 = time.perf_counter()
        run()
        if sync:
            sync()
        return (time.perf_counter() - t0) / calls

    reps = _reps(estimate, budget, lo, hi)
    out, checked = [], []
    after = audit_points(reps, audits)
    for i in range(reps):
        out.append(one(before_last if i == reps - 1 else None))
        checked += [one(audit) for _ in range(after.count(i + 1))]
    return Sample(seconds=out, clock="perf_counter", audit=checked)


def audit_points(reps: int, audits: int) -> list[int]:
    """After which timed repetition (1 to ``reps``) each audit repetition runs: spread over the loop, the
    last after the last timed one (whose output the harness checks). Spread, not back to back: on a
    loaded CPU a parallel kernel's times come in spells (0.1 ms a call, then 30 to 50 ms while a thread
    waits for a core), and three audits in a row could all fall in one."""
    return [max(1, round(reps * (j + 1) / audits)) for j in range(audits)]


class L2Flush:
    """Reads a buffer twice the size of the L2 cache, so the next kernel starts cold.

    The flush only reads (it writes one word only if the buffer's sum is impossible), so it leaves no
    dirty lines behind to be written back while the timed kernel runs; the previous repetition's
    dirty output lines are evicted, and written back, during the flush, outside the timed region."""

    def __init__(self, l2_bytes: int):
        from numba import cuda

        self.buf = cuda.to_device(np.zeros(max(2 * l2_bytes, 2**20) // 4, dtype=np.int32))
        self.out = cuda.to_device(np.zeros(1, dtype=np.int64))
        self.kernel = _flush_kernel()

    def __call__(self):
        n = self.buf.shape[0]
        self.kernel[(n + 255) // 256, 256](self.buf, self.out)


def _flush_kernel():
    from .devkernels import flush

    return flush


class Busy:
    """A one-thread kernel that sleeps for ``us`` microseconds on the device. Enqueued just before the
    start event, it keeps the GPU busy while the host enqueues the start event, the timed call and the
    stop event, so the GPU runs them back to back and host dispatch time stays outside the events
    (nvbench's blocking kernel, without the host flag)."""

    MAX_US = 50_000

    def __init__(self, us: int = 200):
        import warnings

        self.n = self.floor = max(1, int(us))
        with warnings.catch_warnings():  # one thread on purpose: numba-cuda's low-occupancy warning says otherwise
            warnings.simplefilter("ignore")
            self.launch = _sleep_kernel()[1, 1]  # configured once, outside every timed loop

    def __call__(self):
        self.launch(self.n)

    def cover(self, enqueue_s: float) -> None:
        """Sleep long enough to cover ``enqueue_s`` of host time (three times it, as the hardware may
        sleep less than asked), at least the floor and at most 50 ms: a Python launch path of tens of
        microseconds a call, K calls between the events, must not leave the GPU idle inside them."""
        self.n = int(min(self.MAX_US, max(self.floor, math.ceil(round(3 * enqueue_s * 1e6, 3)))))

    def covers(self, enqueue_s: float) -> bool:
        return enqueue_s * 1e6 <= self.n


def _sleep_kernel():
    from .devkernels import sleep

    return sleep


WARM_KERNEL_SPAN = 1e-3  # a warm kernel is called back to back until one event pair spans 1 ms


def time_device(run, *, budget: float, lo: int = 10, hi: int = DEVICE_MAX_REPS, flush=None, calls: int = 1,
                before_last=None, busy=None, warmup: float = 0.05, audit=None, audits: int = 0) -> Sample:
    """CUDA events recorded on the default stream; per repetition: the read-only L2 flush (cold
    kernels), the busy kernel, the start event, the call (K back-to-back calls for a warm kernel), the
    stop event. Warm-up runs for ``warmup`` seconds and until three calls in a row agree within 2 %
    (at most ten times ``warmup``), so clocks have ramped up. Among the timed repetitions
    (:func:`audit_points`), ``audits`` audit repetitions, each the same steps after ``audit()`` (outputs
    re-poisoned; before the flush, so the poison's dirty lines drain there, outside the events), in
    ``Sample.audit``: never part of the figure."""
    from numba import cuda

    cuda.synchronize()
    start, stop = cuda.event(), cuda.event()
    t0 = time.perf_counter()
    recent: list[float] = []
    enqueue = math.inf
    while True:  # warm-up: at least `warmup` seconds, then until three calls in a row agree within 2 %
        t_enqueue = time.perf_counter()
        start.record()
        run()
        stop.record()
        enqueue = min(enqueue, time.perf_counter() - t_enqueue)  # host time to enqueue one call
        stop.synchronize()
        recent = (recent + [start.elapsed_time(stop)])[-3:]
        elapsed = time.perf_counter() - t0
        settled = len(recent) == 3 and max(recent) <= 1.02 * min(recent)
        if elapsed >= warmup and (settled or elapsed >= 10 * warmup):
            break
    estimate = recent[-1] / 1e3
    k = 1 if flush is not None else max(1, min(MAX_WARM_CALLS, math.ceil(WARM_KERNEL_SPAN / max(estimate, 1e-7))))
    if busy is not None:
        busy.cover(k * enqueue)
    uncovered = 0

    def one(before=None) -> float:
        nonlocal uncovered
        if before is not None:
            before()
        if flush is not None:
            flush()
        if busy is not None:
            busy()
        t_enqueue = time.perf_counter()
        start.record()
        for _ in range(k):
            run()
        stop.record()
        if busy is not None and not busy.covers(time.perf_counter() - t_enqueue):
            uncovered += 1  # the host took longer than the busy kernel slept: host time may be inside
        stop.synchronize()
        return start.elapsed_time(stop) / 1e3 / calls / k

    reps = _reps(estimate * k, budget, lo, hi)
    out, checked = [], []
    after = audit_points(reps, audits)
    timed_uncovered = 0
    for i in range(reps):
        before = uncovered
        out.append(one(before_last if i == reps - 1 else None))
        timed_uncovered += uncovered - before
        checked += [one(audit) for _ in range(after.count(i + 1))]
    sample = Sample(seconds=out, clock="cuda-event", audit=checked)
    sample.calls = k
    sample.uncovered = timed_uncovered
    return sample
