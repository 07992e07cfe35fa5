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
from contextlib import contextmanager


def simulator_on() -> bool:
    """True when Numba's CUDA simulator is active (the CPU tier)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


@contextmanager
def expose_races(interval: float = 1e-6):
    """In the simulator, switch Python threads every ``interval`` seconds inside the block; elsewhere
    do nothing. Correct kernels (atomics, barriers) give the same result either way."""
    if not simulator_on():
        yield
        return
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
        sys.setswitchinterval(interval)
    return old
