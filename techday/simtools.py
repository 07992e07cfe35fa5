"""Making the CUDA simulator show the bugs a GPU shows.

The simulator runs every CUDA thread as a Python thread. Python switches threads only every few
milliseconds (``sys.getswitchinterval()``, 5 ms by default), so a simulated thread usually runs its
whole kernel body before the next one starts. That exposes a missing ``cuda.syncthreads()`` (a thread
reads shared memory before the others wrote it) but hides races: an unsynchronised ``a[i] += 1`` on a
global array almost never loses an update, where a GPU, running thousands of threads at once, loses
many. :func:`expose_races` makes Python switch threads every microsecond and lets the other threads
run before each store into a device array, so such read-modify-write updates collide in the
simulator too, whatever the load on the host. On a GPU it changes nothing. Introduced in lab 03 (atomics and
reductions)::

    with expose_races():
        histogram_kernel[4, 64](d_values, d_hist)   # a plain += loses counts here as on a GPU
"""

from __future__ import annotations

import sys
import threading
import time
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


def _yielding_setitem(original, atomics_file: str):
    """A device array's element store that first lets other threads run (see :func:`expose_races`);
    not inside the simulator's atomics, which hold a lock there (yielding would only make the
    waiting threads queue longer)."""

    def __setitem__(self, idx, val):
        if sys._getframe(1).f_code.co_filename != atomics_file:
            time.sleep(0)  # releases the GIL: others read the old value before this thread writes
        return original(self, idx, val)

    __setitem__._techday_yields = True
    return __setitem__


@contextmanager
def expose_races(interval: float = 1e-6):
    """In the simulator, make unsynchronised updates of device arrays collide as on a GPU; elsewhere
    do nothing. Correct kernels (atomics, barriers) give the same result either way.

    Inside the block Python switches threads every ``interval`` seconds, and every store into a
    device array (global memory) inside a kernel first lets the other threads run. The switch
    interval alone left it to the host's scheduler: on a loaded machine a thread could run its
    whole ``hist[v] += 1`` loop without being interrupted, and a racy kernel sometimes counted
    right (about 1 launch in 40 with the CPU busy). With the yield between a thread's read and its
    write, the others read the same old value first, and the lost update happens whenever another
    thread is ready to run: nearly every launch (on a loaded 2-core machine, 2 launches of 10 of a
    32-thread increment once counted right: the yield found no other thread ready). Atomics stay correct: the simulator's ``cuda.atomic.*`` hold a lock
    around their read and write. Shared arrays are plain NumPy arrays in the simulator and are
    not affected."""
    if not simulator_on():
        yield
        return
    from numba.cuda.simulator import kernelapi
    from numba.cuda.simulator.cudadrv.devicearray import FakeWithinKernelCUDAArray as Arr

    atomic_shared_arrays()  # else the simulator's own race would show, not the kernel's
    old = sys.getswitchinterval()
    old_setitem = Arr.__dict__.get("__setitem__")
    patch = old_setitem is not None and not getattr(old_setitem, "_techday_yields", False)
    if patch:
        Arr.__setitem__ = _yielding_setitem(old_setitem, kernelapi.__file__)
    sys.setswitchinterval(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(old)
        if patch:
            Arr.__setitem__ = old_setitem


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


@contextmanager
def quiet_generator():
    """Inside the block, hide what the simulator says about ``numba.cuda.random``'s generator and
    nothing else; elsewhere do nothing.

    The simulator runs xoroshiro128p's 64-bit arithmetic with NumPy integers, which warn "overflow
    encountered in scalar ..." on the wrap-around the generator is built on, once per simulated thread;
    and creating the states falls back to Numba's object mode with a warning. Neither is the trainee's
    doing. The filters are scoped to the block (warning filters are shared by all threads, so the
    simulator's threads see them): an overflow in the trainee's own code elsewhere still warns.
    Introduced in lab 03 (random numbers on the GPU)."""
    import warnings

    if not simulator_on():
        yield
        return
    from numba.core.errors import NumbaWarning

    with warnings.catch_warnings(), _plain_generator():
        warnings.filterwarnings("ignore", message=r"overflow encountered in scalar", category=RuntimeWarning)
        warnings.filterwarnings("ignore", category=NumbaWarning, module=r"numba(_cuda)?\.")
        warnings.filterwarnings("ignore", category=NumbaWarning, message=r"\s*Compilation is falling back to object mode")
        yield


# numba.cuda.random's functions on the way from create_xoroshiro128p_states to the states.
_STATE_CREATION = ("init_xoroshiro128p_states_cpu", "init_xoroshiro128p_state", "xoroshiro128p_jump",
                   "xoroshiro128p_next", "rotl")


@contextmanager
def _plain_generator():
    """Inside the block, the functions that ``numba.cuda.random`` creates states with are their
    plain Python sources.

    In the simulator that module compiles its generator with Numba's CPU ``jit`` in object mode
    (``forceobj``): the same Python semantics, after a failed type inference and a compile of
    about 1.5 s of CPU the first time states are created (once per kernel: each graded submission
    and each run of lab 03 pays it). The plain functions compute the same states and draws
    (tests/unit/test_simtools.py compares them) without compiling. Names a notebook imported keep
    what they were; only the module's own look-ups, as ``create_xoroshiro128p_states`` makes them,
    see the plain functions. The draws a kernel makes (``xoroshiro128p_uniform_float32`` and the
    rest) are left alone, so a kernel's globals are still the module's own (``techday kernels``
    records them by module and name). Restored on the way out, also after an error."""
    from numba.cuda import random as generator

    swapped = {name: getattr(generator, name) for name in _STATE_CREATION
               if hasattr(getattr(generator, name, None), "py_func")}
    for name, f in swapped.items():
        setattr(generator, name, f.py_func)
    try:
        yield
    finally:
        for name, f in swapped.items():
            setattr(generator, name, f)
