"""On the CPU tier, refuse the kernel launches a GPU refuses.

Numba's CUDA simulator runs a block of 2,048 threads, a grid of any shape, and a kernel that declares
160 KB of shared memory; every CUDA GPU refuses all three (at most 1,024 threads per block, 1,024 x
1,024 x 64 along x, y and z; at most 2**31 - 1 x 65,535 x 65,535 blocks; at most 48 KiB of static
shared memory per block). So a launch configuration or a kernel that cannot run on any GPU passed on
the CPU tier, in a lab and in the grader. :func:`install` (called by ``techday.setup`` on the CPU
tier) makes the simulator check each launch against those limits and fail it with the reason, as a
GPU would fail it: before any thread starts for the block and grid, at the shared array that goes
past 48 KiB for shared memory.

Not while ``techday kernels`` records the labs' launches (``$TECHDAY_KERNEL_LOG``): that step checks
every recorded launch against the limits of the GPUs it compiles for, and reports each one, so a lab it
records must run on past one. It patches the simulator when ``numba.cuda.simulator.kernel`` is
imported (a lab imports ``numba.cuda`` after its setup cell), so a lab that never uses Numba pays nothing.
A kernel defined in the notebook is also compiled by the real compiler before its launch
(:mod:`techday.simcompile`): one the compiler refuses is refused as a GPU refuses it. And memory a GPU
leaves uninitialised is poisoned (:func:`poison`: ``cuda.device_array``, local arrays, static and
dynamic shared memory), where NumPy's ``empty`` and the simulator's zeroed buffers often handed out
zeros. Not checked: registers per thread (the simulator runs no compiled code; ``techday kernels`` compiles
the course's kernels and checks them), dynamic shared memory (``cuda.shared.array(0, ...)`` sized at
launch: a GPU allows more than 48 KiB there with an opt-in), and limits of a particular GPU below these
(the smallest of every CUDA GPU since compute capability 2.0).
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from pathlib import Path

MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK = (1024, 1024, 64)
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_STATIC_SHARED = 48 * 1024
_MODULE = "numba.cuda.simulator.kernel"
_ALLOC_LOCK = threading.Lock()


class LaunchRefused(RuntimeError):
    """A launch no CUDA GPU would run; the message says which limit and how far past it."""


def check_launch(grid: tuple, block: tuple) -> None:
    """Raise :class:`LaunchRefused` for a grid or block (x, y, z) past a GPU's limits."""
    from .i18n import msg

    threads = block[0] * block[1] * block[2]
    if threads > MAX_THREADS_PER_BLOCK or any(b > m for b, m in zip(block, MAX_BLOCK)):
        raise LaunchRefused(msg(
            "techday.launch_block", "a block of {block} = {threads} threads: a GPU runs at most 1024 threads per "
            "block (at most 1024 x 1024 x 64 along x, y and z) and refuses this launch; the CPU tier refuses it "
            "too", block=" x ".join(str(b) for b in block), threads=threads))
    if any(g > m for g, m in zip(grid, MAX_GRID)):
        raise LaunchRefused(msg(
            "techday.launch_grid", "a grid of {grid} blocks: a GPU allows at most 2147483647 x 65535 x 65535 "
            "and refuses this launch; the CPU tier refuses it too", grid=" x ".join(str(g) for g in grid)))


def _shared_refused(total: int) -> LaunchRefused:
    from .i18n import msg

    return LaunchRefused(msg(
        "techday.launch_shared", "the kernel declares {total} bytes of shared memory per block: a GPU allows at "
        "most 49152 (48 KiB) of cuda.shared.array and refuses to compile or launch it; the CPU tier refuses it "
        "too", total=total))


def note_static_shared(shared, nbytes: int) -> None:
    """Count ``nbytes`` more of ``cuda.shared.array`` in the launch whose shared memory ``shared`` is (the
    simulator's per-launch ``FakeCUDAShared``); raise :class:`LaunchRefused` past 48 KiB. Every
    allocator of the course's (this module's, and ``techday.simtrace``'s checked arrays) calls it once
    per array and launch."""
    total = shared.__dict__.get("_techday_shared_bytes", 0) + nbytes
    shared.__dict__["_techday_shared_bytes"] = total
    if total > MAX_STATIC_SHARED:
        raise _shared_refused(total)


def new_static_shared(shared, shape, dtype):
    """A new ``cuda.shared.array`` of a launch whose shared memory ``shared`` is: counted against the
    48 KiB (:func:`note_static_shared`) and poisoned (:func:`poison`). Every allocator of the course's
    (this module's, and ``techday.simtrace``'s traced and checked arrays) makes its arrays here."""
    import numpy as np

    made = np.empty(shape, dtype)
    note_static_shared(shared, made.nbytes)
    poison(made)
    return made


def _patch(kernel_module) -> None:
    from numba.cuda.simulator import kernelapi
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    types, numpy_support = kernelapi.types, kernelapi.numpy_support  # the names the simulator's array uses

    if getattr(kernel_module.FakeCUDAKernel.__call__, "_techday_limits", False):
        return
    original_call = kernel_module.FakeCUDAKernel.__call__
    normalize = kernel_module.normalize_kernel_dimensions

    def __call__(self, *args):
        if not self._device and not kernel_module._kernel_context:
            grid, block = normalize(self.grid_dim, self.block_dim)
            check_launch(tuple(grid), tuple(block))
            if getattr(self.fn, "__module__", None) == "__main__":  # a notebook's kernel: compiled for a GPU
                from .simcompile import check as compiles_for_a_gpu

                compiles_for_a_gpu(self, args)
        return original_call(self, *args)

    __call__._techday_limits = True
    original_array = FakeCUDAShared.__dict__["array"]
    own = {__file__, str(Path(__file__).with_name("simtrace.py")), str(Path(__file__).with_name("simtools.py"))}

    def array(self, shape, dtype, alignment=None):
        # As the simulator's own (numba-cuda 0.30), which keys each array by the line that asked for
        # it (here found above this package's frames), with the look-up and the store under one lock
        # (``techday.simtools.atomic_shared_arrays`` keeps this one), and the GPU's limit on the total.
        if shape == 0 or alignment is not None:  # dynamic shared memory; or the simulator's refusal
            return original_array(self, shape, dtype, alignment)
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename in own:
            frame = frame.f_back
        caller = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("?", 0)
        with _ALLOC_LOCK:
            got = self._allocations.get(caller)
            if got is None:
                got = self._allocations[caller] = new_static_shared(self, shape, dtype)
        return got

    array._techday_atomic = True  # allocates once per site under a lock, as atomic_shared_arrays' does

    kernel_module.FakeCUDAKernel.__call__ = __call__
    FakeCUDAShared.array = array
    _patch_uninitialised(kernelapi)


def poison(ary) -> None:
    """Fill memory that a GPU leaves uninitialised with what no right kernel reads unnoticed: NaN for
    floats, -1 (the largest value when unsigned) for integers, True for booleans. NumPy's ``empty``
    often hands out zeros (fresh pages), which made a kernel that never zeroed its counters, or added
    into an output nobody cleared, right here."""
    import numpy as np

    kind = ary.dtype.kind
    if not ary.size or kind not in "fcbiu":  # a record's fields are left as they are
        return
    ary.fill(np.nan if kind in "fc" else True if kind == "b" else -1 if kind == "i" else np.iinfo(ary.dtype).max)


def _patch_uninitialised(kernelapi) -> None:
    """What a GPU does not initialise, poisoned: ``cuda.device_array`` (and ``device_array_like``),
    ``cuda.local.array``, and the dynamic shared memory of a launch (the simulator zeroes it). Static
    shared arrays are poisoned where the allocator above makes them."""
    import numpy as np
    from numba.cuda.simulator.cudadrv import devicearray

    original_device_array = devicearray.device_array

    def device_array(*args, **kwargs):
        made = original_device_array(*args, **kwargs)
        poison(made._ary)
        return made

    devicearray.device_array = device_array
    original_local = kernelapi.FakeCUDALocal.array

    def local_array(self, shape, dtype, alignment=None):
        made = original_local(self, shape, dtype, alignment)
        poison(made)
        return made

    kernelapi.FakeCUDALocal.array = local_array
    original_init = kernelapi.FakeCUDAShared.__init__

    def shared_init(self, dynshared_size):
        original_init(self, dynshared_size)
        self._dynshared.fill(np.int8(-1))

    kernelapi.FakeCUDAShared.__init__ = shared_init


class _Finder(importlib.abc.MetaPathFinder):
    """Patches the simulator's kernel module right after it is imported, then steps aside."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _MODULE:
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader_exec = spec.loader.exec_module

        def exec_module(module):
            loader_exec(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Check every simulated launch from now on (now if the simulator is loaded, else when it is)."""
    if _MODULE in sys.modules:
        _patch(sys.modules[_MODULE])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
