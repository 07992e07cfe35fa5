"""How a kernel touches global memory, seen in the CUDA simulator: the tests of a lab can then check
*how* a kernel works (are a warp's loads and stores coalesced?), not only what it computes.

The simulator runs every CUDA thread as a Python thread and every read or write of a device array
inside a kernel goes through one Python method. :func:`trace_global` wraps those methods for the
arrays it is given and records, per access, the block, the thread's linear index in its block (which
sets its warp: 32 consecutive indices, x fastest, as on the GPU), the thread's own count of accesses
so far to that array (the "instruction": the k-th store of every thread of a warp is one request),
and the byte offset from the array's start. A GPU serves a warp's request in 32-byte sectors;
:meth:`MemoryTrace.sectors` counts the sectors each request touches and the fewest it could touch
(its bytes, packed), offsets taken from the array's start as if it were allocated at a 256-byte
boundary, as ``cudaMalloc`` allocates. Introduced in lab 04 (coalescing)::

    with trace_global(d_out) as trace:
        transpose[grid, block](d_a, d_out)
    used, fewest = trace.sectors(d_out, "store")   # 2.0 = twice the sectors a coalesced store needs

Shared memory is traced the same way by :func:`trace_shared` (labs 03 and 04): the simulator keeps a
shared array as a plain NumPy array, so inside the block every ``cuda.shared.array`` a kernel
allocates is handed out as a NumPy view that records its element reads and writes. A GPU serves a
warp's shared-memory request from 32 banks of 4-byte words; threads that touch *different* words of
one bank are served one after another (a bank conflict), the same word is broadcast.
:meth:`SharedTrace.bank_conflicts` counts the passes ("wavefronts") each request needs against the
fewest its bytes need, and :meth:`SharedTrace.per_thread` how many accesses each thread made (the
shape of a reduction: a tree gives each thread a handful, one thread summing the array alone gives it
all of them)::

    with trace_shared() as shared:
        transpose[grid, block](d_a, d_out)
    passes, requests = shared.bank_conflicts("load")   # 32.0: every load of an unpadded 32 x 32 column

What neither sees: caches (a sector read twice counts twice); accesses through slices (``a[0:n] = 0``
is one NumPy call, not per-element accesses; it is not recorded); atomics are seen as the load and
store the simulator makes of them, not as one atomic operation; and warps that diverge (the k-th
access of a thread that skipped a branch is grouped with the k-th of one that took it; the course's
tests use kernels without such branches around the accesses they check, or shapes where every
thread takes the same path). On the GPU tier there is nothing to trace: both raise
:class:`TraceUnavailable`, and a test says the check runs on the CPU tier.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

SECTOR = 32  # bytes a GPU moves per sector of a memory request
WARP = 32
BANKS, BANK_BYTES = 32, 4  # shared memory: 32 banks of 4-byte words, one word per bank per pass


class TraceUnavailable(RuntimeError):
    """Not in the simulator: on a GPU a kernel's accesses are not Python calls."""


def _base(ary: np.ndarray) -> int:
    return ary.__array_interface__["data"][0]


def _host_array(device_array) -> np.ndarray:
    ary = getattr(device_array, "_ary", None)
    if ary is None:
        raise TypeError(f"not a simulator device array: {type(device_array).__name__}")
    return ary


@dataclass
class MemoryTrace:
    """The accesses recorded: ``records[(array, op)]`` is a list of (block, thread, seq, offset, nbytes)."""

    names: dict[int, str] = field(default_factory=dict)
    records: dict = field(default_factory=lambda: defaultdict(list))

    def _key(self, device_array) -> int:
        return _base(_host_array(device_array))

    def count(self, device_array, op: str) -> int:
        """How many accesses of kind ``op`` ("load" or "store") the kernel made to ``device_array``."""
        return len(self.records[(self._key(device_array), op)])

    def per_thread(self, device_array, op: str) -> Counter:
        """{(block, thread): accesses of kind ``op`` to ``device_array``}: who did the work."""
        return Counter((block, thread) for block, thread, *_ in self.records[(self._key(device_array), op)])

    def warps(self, device_array, op: str) -> dict[tuple, list[int]]:
        """{(block, warp): the element indices (flat, from the array's start) its threads accessed with
        ``op``}: which data each warp touched, so which side of a branch its threads took (lab 02)."""
        out: dict[tuple, list[int]] = defaultdict(list)
        for block, thread, _seq, offset, nbytes in self.records[(self._key(device_array), op)]:
            out[(block, thread // WARP)].append(offset // nbytes)
        return dict(out)

    def sectors(self, device_array, op: str) -> tuple[float, int]:
        """(sectors used / fewest possible, requests) over every warp request of kind ``op`` to
        ``device_array``: 1.0 is perfectly coalesced; a warp of 32 float32 stores scattered over 32
        sectors gives 8.0. (0.0, 0) when there was no such access."""
        requests: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
        for block, thread, seq, offset, nbytes in self.records[(self._key(device_array), op)]:
            requests[(block, thread // WARP, seq)].append((offset, nbytes))
        used = fewest = 0
        for accesses in requests.values():
            touched = set()
            for offset, nbytes in accesses:
                touched.update(range(offset // SECTOR, (offset + nbytes - 1) // SECTOR + 1))
            used += len(touched)
            fewest += -(-sum(n for _, n in accesses) // SECTOR)
        return (used / fewest if fewest else 0.0), len(requests)


def _offset(ary: np.ndarray, idx) -> int | None:
    """The byte offset of element ``idx`` of ``ary`` from its start; None for anything but integers."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    if len(idx) != ary.ndim:
        return None
    offset = 0
    for i, n, stride in zip(idx, ary.shape, ary.strides):
        try:
            i = int(i)
        except (TypeError, ValueError):
            return None
        if i < 0:
            i += n
        offset += i * stride
    return offset


class _Recorder:
    """The access log both traces keep: for each simulated thread, its k-th access of a kind to an array
    (its "instruction"), the byte offset and the element size, under ``key`` (an array or a site)."""

    def __init__(self, records):
        from numba.cuda.simulator.kernel import BlockThread

        self.records, self.thread_type = records, BlockThread
        self.lock = threading.Lock()
        self.counters = threading.local()

    def __call__(self, key, ary: np.ndarray, idx, op: str) -> None:
        me = threading.current_thread()
        if not isinstance(me, self.thread_type):
            return
        offset = _offset(ary, idx)
        if offset is None:
            return
        seen = self.counters.__dict__.setdefault("seq", {})
        seq = seen.get((key, op), 0)
        seen[(key, op)] = seq + 1
        with self.lock:
            self.records[(key, op)].append((tuple(me.blockIdx), me.thread_id, seq, offset, ary.itemsize))


@contextmanager
def trace_global(*device_arrays):
    """Record every load and store that kernels launched inside the block make to ``device_arrays``
    (simulator device arrays: ``cuda.to_device(...)`` on the CPU tier). Yields a :class:`MemoryTrace`."""
    from numba import config

    if not config.ENABLE_CUDASIM:
        raise TraceUnavailable("memory accesses are traced in the CUDA simulator only (the CPU tier)")
    from numba.cuda.simulator.cudadrv.devicearray import FakeWithinKernelCUDAArray as Arr

    trace = MemoryTrace()
    watched = {_base(_host_array(d)) for d in device_arrays}
    record = _Recorder(trace.records)
    old_get, old_set = Arr.__dict__["__getitem__"], Arr.__dict__["__setitem__"]

    def note(self, idx, op):
        ary = self.__dict__["_item"]._ary
        base = _base(ary)
        if base in watched:
            record(base, ary, idx, op)

    def getitem(self, idx):
        note(self, idx, "load")
        return old_get(self, idx)

    def setitem(self, idx, val):
        note(self, idx, "store")
        return old_set(self, idx, val)

    Arr.__getitem__, Arr.__setitem__ = getitem, setitem
    try:
        yield trace
    finally:
        Arr.__getitem__, Arr.__setitem__ = old_get, old_set


@dataclass
class SharedTrace:
    """Shared-memory accesses: ``records[(site, op)]`` is a list of (block, thread, seq, offset, nbytes);
    ``sites[site]`` the (shape, dtype) allocated there. A site is the kernel source line of the
    ``cuda.shared.array`` call ("file:line"); ``site=None`` in the methods means every shared array."""

    sites: dict[str, tuple] = field(default_factory=dict)
    records: dict = field(default_factory=lambda: defaultdict(list))

    def _rows(self, op: str, site: str | None):
        for (s, o), rows in self.records.items():
            if o == op and (site is None or s == site):
                for row in rows:
                    yield s, row

    def count(self, op: str, site: str | None = None) -> int:
        """How many shared-memory accesses of kind ``op`` ("load" or "store") the kernels made."""
        return sum(1 for _ in self._rows(op, site))

    def per_thread(self, op: str, site: str | None = None) -> Counter:
        """{(block, thread): shared accesses of kind ``op``}: a tree reduction spreads them, a serial
        sum gives one thread almost all of them."""
        return Counter((block, thread) for _, (block, thread, *_rest) in self._rows(op, site))

    def bank_conflicts(self, op: str, site: str | None = None) -> tuple[float, int]:
        """(passes needed / fewest possible, requests) over every warp request of kind ``op``: 1.0 has
        no bank conflict; 32 threads reading one column of an unpadded 32 x 32 float32 tile give 32.0.
        A request needs, per bank, one pass for each distinct 4-byte word it touches there (one word
        read by many threads is broadcast), the most over the banks; it could do with its distinct
        words / 32. (0.0, 0) when there was no such access."""
        requests: dict[tuple, set] = defaultdict(set)
        for site, (block, thread, seq, offset, nbytes) in self._rows(op, site):
            words = requests[(site, block, thread // WARP, seq)]
            words.update(range(offset // BANK_BYTES, (offset + nbytes - 1) // BANK_BYTES + 1))
        passes = fewest = 0
        for words in requests.values():
            per_bank = Counter(w % BANKS for w in words)
            passes += max(per_bank.values())
            fewest += -(-len(words) // BANKS)
        return (passes / fewest if fewest else 0.0), len(requests)


@contextmanager
def trace_shared():
    """Record every load and store to the shared arrays of kernels launched inside the block (the
    simulator: the CPU tier). Yields a :class:`SharedTrace`."""
    from numba import config

    if not config.ENABLE_CUDASIM:
        raise TraceUnavailable("memory accesses are traced in the CUDA simulator only (the CPU tier)")
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    trace = SharedTrace()
    record = _Recorder(trace.records)
    lock = threading.Lock()

    class Traced(np.ndarray):
        """A view of one shared array that records integer-indexed element accesses."""

        def _note(self, idx, op):
            site = getattr(self, "_site", None)  # None on slices of it: not recorded
            if site is not None:
                record(site, self, idx, op)

        def __getitem__(self, idx):
            self._note(idx, "load")
            got = np.ndarray.__getitem__(self, idx)
            return got.view(np.ndarray) if isinstance(got, np.ndarray) else got

        def __setitem__(self, idx, val):
            self._note(idx, "store")
            np.ndarray.__setitem__(self, idx, val)

    old_array = FakeCUDAShared.__dict__["array"]

    def array(self, shape, dtype, alignment=None):
        if shape == 0:  # dynamic shared memory: one buffer, no allocation site
            return old_array(self, shape, dtype, alignment)
        frame = sys._getframe(1)
        site = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        with lock:  # every thread of the block asks; exactly one array per site and launch
            allocations = self.__dict__.setdefault("_techday_traced", {})
            if site not in allocations:
                plain = old_array(self, shape, dtype, alignment)  # the simulator's checks of shape and dtype
                view = np.empty_like(plain).view(Traced)  # uninitialised, as the simulator leaves it
                view._site = site
                allocations[site] = view
                trace.sites[site] = (view.shape, str(view.dtype))
            return allocations[site]

    FakeCUDAShared.array = array
    try:
        yield trace
    finally:
        FakeCUDAShared.array = old_array
