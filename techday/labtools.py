"""Helpers the labs share: checking results against a reference, and timing honestly.

Checks come before timings (a wrong kernel is never timed), and every timing carries the tier it was
taken on. Introduced in lab 01 (first kernels); the benchmark suite uses the same rules.

Tests of kernel exercises also check that a kernel did the work, on the GPU and in the simulator
alike: :func:`is_cuda_kernel` tells a ``@cuda.jit`` kernel from a Python stand-in, and
:func:`watch_kernels` swaps a notebook's kernels for :class:`KernelWatch` recorders while a host
function runs, so that a test sees every launch (its grid, its block, its arguments) and what the
kernel wrote into its outputs, which were filled with NaN ("poison") just before the launch::

    with watch_kernels(globals(), {"saxpy_kernel": (3,)}) as watch:   # argument 3 is the output
        out = saxpy(2.0, x, y)
    (launch,) = watch["saxpy_kernel"].launches
    assert launch.unwritten[3] == 0 and np.array_equal(out, launch.written[3])
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .i18n import msg
from .measure import Timing, relative_spread, rtol_for  # noqa: F401  (lab-facing names)


# NumPy's kinds of numbers: booleans, signed and unsigned integers, floats, complex numbers.
NUMERIC_KINDS = "biufc"


def _kind_of(array) -> str:
    if array.dtype.kind == "O" and array.size:
        return f"{type(array.flat[0]).__name__} objects"
    return f"{array.dtype.name} values"


def assert_close(actual, expected, what: str = "result", rtol: float | None = None, atol: float = 0.0) -> None:
    """Fail with an ``AssertionError`` that says what differed, where, and by how much.

    ``rtol`` defaults to the dtype's elementwise bound in :data:`techday.measure.RTOL` (float16: 1e-2,
    float32: 1e-5, float64: 1e-12), the one the benchmark suite holds its kernels to.
    Shapes must match exactly; NaNs in ``actual`` where ``expected`` has numbers always fail, which is
    why tests fill outputs with NaN ("poison") before a kernel writes them.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    # Numbers are compared as numbers: an object array (a Python object NumPy could not convert) would
    # be compared with the object's own operators, and an object can make those say anything.
    if actual.dtype.kind not in NUMERIC_KINDS and expected.dtype.kind in NUMERIC_KINDS:
        raise AssertionError(msg("techday.close_not_numbers",
                                 "{what}: got {kind}, not numbers (expected {expected_kind} values)",
                                 what=what, kind=_kind_of(actual), expected_kind=expected.dtype.name))
    if actual.shape != expected.shape:
        raise AssertionError(msg("techday.close_shape", "{what}: shape {actual} differs from the expected {expected}",
                                 what=what, actual=actual.shape, expected=expected.shape))
    if rtol is None:
        kind = np.result_type(actual.dtype, expected.dtype)
        rtol = rtol_for(kind) if np.issubdtype(kind, np.floating) else 0.0
    if actual.size == 0:
        return
    a = actual.astype(np.float64, copy=False) if actual.dtype.kind in "fiub" else actual
    e = expected.astype(np.float64, copy=False) if expected.dtype.kind in "fiub" else expected
    ok = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=False)
    if not ok.all():
        bad = np.flatnonzero(~ok.ravel())
        first = np.unravel_index(bad[0], actual.shape)
        raise AssertionError(msg(
            "techday.close_differ",
            "{what}: {bad} of {total} elements differ (rtol={rtol:g}, atol={atol:g}); "
            "first at index {index}: got {got}, expected {expected}",
            what=what, bad=bad.size, total=actual.size, rtol=rtol, atol=atol,
            index=tuple(int(i) for i in first), got=repr(actual[first]), expected=repr(expected[first])))


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
        raise RuntimeError(msg("techday.events_in_simulator",
                               "CUDA events do not time anything in the simulator; use time_cpu and label it CPU"))
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


def is_cuda_kernel(obj) -> bool:
    """True for a kernel made with ``@cuda.jit``: numba-cuda's dispatcher on a GPU, the simulator's
    ``FakeCUDAKernel`` on the CPU tier; False for a device function (``device=True``), a Python
    function, or an object of another class that can be indexed and called like a kernel."""
    from numba import config

    if config.ENABLE_CUDASIM:
        from numba.cuda.simulator.kernel import FakeCUDAKernel as kernel_class

        device = bool(getattr(obj, "_device", False))
    else:
        from numba.cuda.dispatcher import CUDADispatcher as kernel_class

        device = bool(getattr(obj, "targetoptions", {}).get("device", False))
    return isinstance(obj, kernel_class) and type(obj).__module__.startswith("numba") and not device


def _kind(obj) -> str:
    kind = type(obj).__name__
    if getattr(obj, "_device", False) or getattr(obj, "targetoptions", {}).get("device", False):
        return msg("techday.kind_device_function",
                   "a {kind} (a device function: a kernel needs @cuda.jit without device=True)", kind=kind)
    return msg("techday.kind_other", "a {kind}", kind=kind)


def assert_cuda_kernel(obj, name: str) -> None:
    """Fail with a message that names ``name`` unless ``obj`` is a ``@cuda.jit`` kernel (see
    :func:`is_cuda_kernel`): a host function that computes the answer with NumPy is not one."""
    if not is_cuda_kernel(obj):
        raise AssertionError(msg("techday.not_a_kernel",
                                 "{name} must be a CUDA kernel made with @cuda.jit, so that the GPU does the work; "
                                 "it is {kind}", name=name, kind=_kind(obj)))


def same_memory(a, b) -> bool:
    """True when the arrays ``a`` and ``b`` (host or device, GPU or simulator) cover exactly the same
    memory: the same array, or two views of it with the same extent."""
    from .streamcheck import _extent

    ea, eb = _extent(a), _extent(b)
    return ea is not None and ea == eb


def _threads_in(dim) -> int:
    """Threads (or blocks) in a launch dimension: an int or a tuple (or list) of up to three ints."""
    if isinstance(dim, (tuple, list)):
        total = 1
        for d in dim:
            total *= int(d)
        return total
    return int(dim)


def _is_array(obj) -> bool:
    return isinstance(obj, np.ndarray) or (hasattr(obj, "copy_to_host") and hasattr(obj, "shape"))


def _is_device_array(obj) -> bool:
    return not isinstance(obj, np.ndarray) and _is_array(obj)


def _to_host(arr, stream) -> np.ndarray:
    if isinstance(arr, np.ndarray):
        return arr.copy()
    host = arr.copy_to_host(stream=stream) if stream else arr.copy_to_host()
    if stream:
        stream.synchronize()
    return host


@dataclass
class Launch:
    """One launch of a watched kernel: how it was launched, with what, and what it wrote."""

    config: tuple                 # as written between the brackets: (grid, block[, stream[, shared]])
    args: tuple                   # the arguments, as passed
    blocks: int                   # blocks in the grid (the product of its dimensions)
    threads: int                  # threads per block (the product of its dimensions)
    written: dict = field(default_factory=dict)    # output argument index -> host copy after the launch
    unwritten: dict = field(default_factory=dict)  # output argument index -> elements still NaN (poisoned)
    #                                                 after the launch; only float outputs that are not
    #                                                 also an input are poisoned

    @property
    def device_args(self) -> list[int]:
        """Indices of the arguments that are device arrays."""
        return [k for k, a in enumerate(self.args) if _is_device_array(a)]

    @property
    def host_args(self) -> list[int]:
        """Indices of the arguments that are NumPy arrays (Numba copies those in and out on every launch)."""
        return [k for k, a in enumerate(self.args) if isinstance(a, np.ndarray)]


class KernelWatch:
    """Stands in for a CUDA kernel during a test: launches the real kernel and records each launch.

    ``writes`` names the arguments the kernel overwrites (indices, negative ones from the end). Before
    each launch a float output is filled with NaN (on the launch's stream), unless it shares memory
    with another argument (an in-place update reads it); after the launch a host copy of every output
    is kept, with the count of elements still NaN: elements the kernel never wrote. Outputs the
    kernel adds to (a histogram) belong in ``writes`` only to be copied, with ``poison=False``.
    Raises ``AssertionError`` if ``kernel`` is not a ``@cuda.jit`` kernel."""

    def __init__(self, kernel, name: str = "kernel", writes=(), poison: bool = True):
        assert_cuda_kernel(kernel, name)
        self.kernel, self.name, self.writes, self.poison = kernel, name, tuple(writes), poison
        self.launches: list[Launch] = []

    def __getitem__(self, config):
        launch = self.kernel[config]
        cfg = config if isinstance(config, tuple) else (config,)
        stream = cfg[2] if len(cfg) > 2 else 0

        def run(*args):
            from .streamcheck import _extent, _overlap

            outs = sorted({w % len(args) for w in self.writes}) if args else []
            poisoned = set()
            for k in outs:
                arr = args[k]
                if not (self.poison and _is_array(arr) and np.dtype(arr.dtype).kind == "f"):
                    continue
                ext = _extent(arr)
                if any(_overlap(ext, _extent(a)) for j, a in enumerate(args) if j != k and _is_array(a)):
                    continue  # in place: the kernel reads what it overwrites
                if isinstance(arr, np.ndarray):
                    arr[...] = np.nan
                elif arr.is_c_contiguous():
                    fill = np.full(arr.shape, np.nan, arr.dtype)
                    arr.copy_to_device(fill, stream=stream) if stream else arr.copy_to_device(fill)
                    if stream:
                        stream.synchronize()
                else:
                    continue
                poisoned.add(k)
            result = launch(*args)
            written = {k: _to_host(args[k], stream) for k in outs if _is_array(args[k])}
            unwritten = {k: int(np.count_nonzero(np.isnan(written[k]))) for k in poisoned}
            self.launches.append(Launch(cfg, args, _threads_in(cfg[0]), _threads_in(cfg[1]) if len(cfg) > 1 else 0,
                                        written, unwritten))
            return result
        return run

    def __getattr__(self, name):
        return getattr(self.kernel, name)


@contextmanager
def watch_kernels(namespace: dict, kernels: dict, poison: bool = True):
    """Swap the kernels named in ``kernels`` (name -> indices of the arguments they write) in
    ``namespace`` (a notebook's globals) for :class:`KernelWatch` recorders while the block runs;
    yields {name: watch}, and puts the real kernels back afterwards. A name that is not a
    ``@cuda.jit`` kernel fails at once, with a message that says so."""
    missing = [name for name in kernels if name not in namespace]
    if missing:
        raise AssertionError(msg("techday.not_defined", "{names} is not defined: run the cell that defines it",
                                 names=", ".join(missing)))
    saved = {name: namespace[name] for name in kernels}
    watches = {name: KernelWatch(saved[name], name, writes, poison) for name, writes in kernels.items()}
    try:
        namespace.update(watches)
        yield watches
    finally:
        namespace.update(saved)
