"""Making the CUDA simulator show the bugs a GPU shows.

The simulator runs every CUDA thread as a Python thread. Python switches threads only every few
milliseconds (``sys.getswitchinterval()``, 5 ms by default), so a simulated thread usually runs its
whole kernel body before the next one starts. That exposes a missing ``cuda.syncthreads()`` (a thread
reads shared memory before the others wrote it) but hides races: an unsynchronised ``a[i] += 1`` on a
global array almost never loses an update, where a GPU, running thousands of threads at once, loses
many. :func:`expose_races` makes Python switch threads every microsecond, so such read-modify-write
updates collide in the simulator too. On a GPU it changes nothing. Introduced in lab 03 (atomics and
reductions)::

    with expose_races():
        histogram_kernel[4, 64](d_values, d_hist)   # a plain += loses counts here as on a GPU
"""

from __future__ import annotations

import sys
import threading
import traceback
from contextlib import contextmanager

_ALLOC_LOCK = threading.Lock()


def simulator_on() -> bool:
    """True when Numba's CUDA simulator is active (the CPU tier)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def atomic_shared_arrays() -> bool:
    """Fix a race in the simulator itself: make ``cuda.shared.array`` allocate once per block.

    numba-cuda's simulator (``FakeCUDAShared.array``) looks an allocation up by the caller's line and
    stores a new one if there is none, without a lock. When Python switches threads between the two,
    two threads of one block each get their own "shared" array and the other threads never see what
    they wrote: a correct privatised histogram loses counts. At Python's default 5 ms switch interval
    this is rare; with :func:`expose_races` (1 us) it happened in about 1 in 8 launches of 64 threads.
    This installs the same method with the look-up and store under one lock (once; True when it is
    in place). Nothing changes on a GPU."""
    if not simulator_on():
        return False
    import numpy as np
    from numba.core import types
    from numba.np import numpy_support
    from numba.cuda.simulator import kernelapi

    cls = kernelapi.FakeCUDAShared
    if getattr(cls.array, "_techday_atomic", False):
        return True
    probe = cls(0)
    if not all(hasattr(probe, a) for a in ("_allocations", "_dynshared_size", "_dynshared")):
        return False  # a simulator unlike the one this was written for: leave it alone

    def array(self, shape, dtype, alignment=None):
        if alignment is not None:
            raise RuntimeError("Array alignment is not supported in cudasim")
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        if shape == 0:  # dynamic shared memory: one buffer for all
            count = self._dynshared_size // dtype.itemsize
            return np.frombuffer(self._dynshared.data, dtype=dtype, count=count)
        # As the simulator does, an allocation is known by the caller's file and line; this frame
        # is the method itself, so the caller is one up.
        caller = tuple(traceback.extract_stack(sys._getframe())[-2][0:2])
        with _ALLOC_LOCK:
            res = self._allocations.get(caller)
            if res is None:
                res = self._allocations[caller] = np.empty(shape, dtype)
        return res

    array._techday_atomic = True
    cls.array = array
    return True


@contextmanager
def expose_races(interval: float = 1e-6):
    """In the simulator, switch Python threads every ``interval`` seconds inside the block; elsewhere
    do nothing. Correct kernels (atomics, barriers) give the same result either way."""
    if not simulator_on():
        yield
        return
    atomic_shared_arrays()  # else the simulator's own race would show, not the kernel's
    old = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def quicker_barriers(interval: float = 5e-4) -> float:
    """In the simulator, let Python switch threads every ``interval`` seconds (default 0.5 ms) for
    the rest of the session, and return the old interval; elsewhere do nothing.

    The simulator's block manager polls its threads in a loop until all of them wait at
    ``cuda.syncthreads()``; with Python's default 5 ms switch interval each barrier of a block costs
    milliseconds per thread. A shorter interval makes kernels with many barriers (tiled transposes,
    tiled matrix products) several times faster, and still runs each thread far enough that a
    missing barrier shows. Introduced in lab 04 (the memory subsystem)."""
    old = sys.getswitchinterval()
    if simulator_on():
        atomic_shared_arrays()
        sys.setswitchinterval(interval)
    return old
