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

Races are found by :func:`check_races` (lab 03): every element access of device and shared arrays
with its thread, the barriers the thread had passed and whether an atomic made it; two accesses to one
element by two threads that nothing orders, one a plain write, are a race, whether or not the
simulator's order of threads changed the result::

    with check_races() as races:
        histogram[4, 64](d_values, d_hist)
    assert not races, races.first()

What neither trace sees: caches (a sector read twice counts twice); accesses through slices (``a[0:n] = 0``
is one NumPy call, not per-element accesses; it is not recorded); atomics are seen as the load and
store the simulator makes of them, not as one atomic operation; and warps that diverge (the k-th
access of a thread that skipped a branch is grouped with the k-th of one that took it; the course's
tests use kernels without such branches around the accesses they check, or shapes where every
thread takes the same path). On the GPU tier there is nothing to trace: both raise
:class:`TraceUnavailable`, and a test says the check runs on the CPU tier.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .simlimits import new_static_shared

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

    from .i18n import msg

    if not config.ENABLE_CUDASIM:
        raise TraceUnavailable(msg("techday.trace_simulator_only",
                                   "memory accesses are traced in the CUDA simulator only (the CPU tier)"))
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

    from .i18n import msg

    if not config.ENABLE_CUDASIM:
        raise TraceUnavailable(msg("techday.trace_simulator_only",
                                   "memory accesses are traced in the CUDA simulator only (the CPU tier)"))
    from numba.core import types
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from numba.np import numpy_support

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
        while frame.f_back is not None and frame.f_code.co_filename == __file__:
            frame = frame.f_back  # check_races' allocation between the kernel and this one
        site = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        with lock:  # every thread of the block asks; exactly one array per site and launch
            allocations = self.__dict__.setdefault("_techday_traced", {})
            if site not in allocations:
                # Not through the method this replaces: another wrapper there (atomic_shared_arrays, after
                # quicker_barriers) knows an array by its caller's line, this function's for every array.
                if isinstance(dtype, types.Type):
                    dtype = numpy_support.as_dtype(dtype)
                if alignment is not None:
                    raise RuntimeError("Array alignment is not supported in cudasim")
                view = new_static_shared(self, shape, dtype).view(Traced)  # as a plain launch makes it
                view._site = site
                allocations[site] = view
                trace.sites[site] = (view.shape, str(view.dtype))
            return allocations[site]

    array._techday_atomic = True  # one allocation per site under a lock: atomic_shared_arrays keeps it
    FakeCUDAShared.array = array
    try:
        yield trace
    finally:
        FakeCUDAShared.array = old_array


# --- Races: accesses that no barrier and no atomic orders -------------------------------------------

_MAX_WALK = 8  # frames looked at above an access, to find the atomic or the kernel line behind it


@dataclass(frozen=True)
class Access:
    """One element access seen by :func:`check_races`: the thread (block, linear index in its block),
    the barriers it had passed (its epoch), ``op`` ("load" or "store"), whether a ``cuda.atomic``
    operation made it, the value stored (plain stores only) and the kernel source line."""

    block: tuple
    thread: int
    epoch: int
    op: str
    atomic: bool
    value: object
    line: tuple  # (file, line number) of the kernel or device function code that made the access


@dataclass(frozen=True)
class Hazard:
    """Two accesses to one element, by two threads, that nothing orders, at least one of them a write
    that is not atomic (or an atomic against a plain access)."""

    space: str  # "global" or "shared"
    array: str  # "int64 array of 16" (global) or the shared array's allocation site
    index: tuple
    first: Access
    second: Access

    @property
    def kind(self) -> str:
        """"write-write", "read-write" or "atomic-plain"."""
        a, b = self.first, self.second
        if a.atomic or b.atomic:
            return "atomic-plain"
        return "write-write" if a.op == b.op == "store" else "read-write"

    def describe(self) -> str:
        """One sentence for a trainee (the course's language): where, who, which lines, and why."""
        from .i18n import msg

        def who(a: Access) -> str:
            op = (msg("techday.race_op_atomic", "atomic") if a.atomic else
                  msg("techday.race_op_store", "store") if a.op == "store" else msg("techday.race_op_load", "load"))
            return msg("techday.race_who", "thread {thread} of block {block} ({op}, line {line}: {code})",
                       thread=a.thread, block=_dims(a.block), op=op, line=a.line[1], code=_code(a.line) or "?")

        index = ", ".join(str(i) for i in self.index)
        if self.first.block != self.second.block:
            why = msg("techday.race_blocks", "threads of two blocks, which no barrier orders: use cuda.atomic.*, "
                      "or let each element belong to one block")
        else:
            why = msg("techday.race_epoch", "between the same two barriers: a cuda.syncthreads() is missing "
                      "between them, or the update must be atomic")
        space = (msg("techday.race_space_shared", "shared memory") if self.space == "shared"
                 else msg("techday.race_space_global", "global memory"))
        return msg("techday.race_hazard", "data race in {space}, {array}, element [{index}]: {first} and {second}, "
                   "{why}", space=space, array=self.array, index=index, first=who(self.first),
                   second=who(self.second), why=why)


@dataclass(frozen=True)
class Divergence:
    """Two threads of one block that did not pass the same barriers: ``count`` barriers each, ``line``
    the (file, line) of the first barrier where they part (None where a thread had no more)."""

    block: tuple
    first: int
    second: int
    count: tuple[int, int]
    line: tuple

    def describe(self) -> str:
        """One sentence for a trainee (the course's language)."""
        from .i18n import msg

        def at(line) -> str:
            if line is None:
                return msg("techday.barrier_none", "no barrier")
            return msg("techday.barrier_at", "line {line}: {code}", line=line[1], code=_code(line) or "?")

        return msg("techday.barrier_divergence", "barriers in divergent code, block {block}: thread {first} passed "
                   "{first_count} barrier(s) and thread {second} {second_count}; where they part, thread {first} "
                   "reaches {first_at} and thread {second} {second_at}. Every thread of a block must reach the "
                   "same cuda.syncthreads() calls: no barrier inside an if that only some threads take, no return "
                   "before a barrier", block=_dims(self.block), first=self.first, second=self.second,
                   first_count=self.count[0], second_count=self.count[1], first_at=at(self.line[0]),
                   second_at=at(self.line[1]))


@dataclass
class RaceReport:
    """What :func:`check_races` saw: ``hazards`` (one per element that has one, in order of the
    elements' first access), ``barriers`` (one :class:`Divergence` per block whose threads did not
    pass the same barriers: then the barriers order nothing, and the hazards of that block may be
    more or fewer than listed), ``accesses`` and ``launches`` counted."""

    hazards: list[Hazard] = field(default_factory=list)
    barriers: list[Divergence] = field(default_factory=list)
    accesses: int = 0
    launches: int = 0

    def __bool__(self) -> bool:  # a report is "truthy" when there is a race or a divergent barrier
        return bool(self.hazards or self.barriers)

    def first(self) -> str:
        """The first problem, described (a divergent barrier first); empty when there is none."""
        if self.barriers:
            return self.barriers[0].describe()
        return self.hazards[0].describe() if self.hazards else ""


def _dims(block: tuple) -> str:
    dims = tuple(block)
    while len(dims) > 1 and dims[-1] == 0:
        dims = dims[:-1]
    return str(dims[0]) if len(dims) == 1 else "(" + ", ".join(str(d) for d in dims) + ")"


def _code(line: tuple) -> str:
    import linecache

    text = linecache.getline(line[0], line[1]).strip()
    text = text.split("  #")[0].rstrip()  # the code, not its comment
    return text[:80] + ("..." if len(text) > 80 else "")


def _where(space: str, ary: np.ndarray, offset: int, site) -> tuple[str, tuple]:
    """(the array described, the element's index in it): a global array by its dtype and shape (the
    array a view was taken from), a shared one by its allocation site."""
    base = ary.base if space == "global" and isinstance(ary.base, np.ndarray) else ary
    flat = (_base(ary) + offset - _base(base)) // ary.itemsize
    index = np.unravel_index(flat, base.shape) if 0 <= flat < base.size and base.flags.c_contiguous else (flat,)
    from .i18n import msg

    if space == "global":
        label = msg("techday.race_global_array", "{dtype} array of shape {shape}", dtype=ary.dtype.name,
                    shape=tuple(base.shape))
    else:
        label = msg("techday.race_shared_array", "shared array of line {line} ({code})", line=site[1], code=_code(site))
    return label, tuple(int(i) for i in index)


def _offsets(ary: np.ndarray, idx) -> list[int] | None:
    """The byte offsets from ``ary``'s start of the elements ``ary[idx]`` names (one for an integer
    index, every covered element for a slice, ``...`` or an index array); None if NumPy refuses it."""
    one = _offset(ary, idx)
    if one is not None:
        return [one]
    fields = getattr(ary.dtype, "fields", None)
    if isinstance(idx, str) and fields and idx in fields and np.ndim(ary) == 0:
        return [fields[idx][1]]  # a field of one record (``a[i].x``): its offset in the record
    if isinstance(ary, np.void):
        return None
    try:
        flat = np.arange(ary.size).reshape(ary.shape)[idx]
    except (IndexError, TypeError, ValueError):
        return None
    where = np.unravel_index(np.ravel(flat), ary.shape)
    return [int(o) for o in sum((i * s for i, s in zip(where, ary.strides)), np.zeros(np.size(flat), np.int64))]


def _value(val):
    """A stored value, comparable and hashable (a NumPy scalar as its Python value; anything else by repr)."""
    item = getattr(val, "item", None)
    if item is not None:
        try:
            val = item()
        except (TypeError, ValueError):
            return repr(val)
    try:
        hash(val)
    except TypeError:
        return repr(val)
    if isinstance(val, float) and val != val:
        return "nan"  # every NaN one value: two NaN objects are never equal
    return val


class _Side:
    """The accesses of one group (a block between two barriers, or a whole block) to one element: the
    first of each kind per thread, and the values stored."""

    __slots__ = ("stores", "loads", "atomics", "values")

    def __init__(self):
        self.stores: dict[tuple, Access] = {}
        self.loads: dict[tuple, Access] = {}
        self.atomics: dict[tuple, Access] = {}
        self.values: set = set()

    def add(self, who: tuple, a: Access) -> None:
        if a.atomic:
            self.atomics.setdefault(who, a)
        elif a.op == "store":
            self.stores.setdefault(who, a)
            self.values.add(a.value)
        else:
            self.loads.setdefault(who, a)


def _other(found: dict, me: tuple) -> Access | None:
    """An access in ``found`` by a thread other than ``me`` (looks at two at most)."""
    for who, a in found.items():
        if who != me:
            return a
    return None


def _conflict(x: _Side, y: _Side) -> tuple[Access, Access] | None:
    """Two accesses, one from each side and by two threads, that race; None if none does. Plain stores
    of one and the same value by every writer are not counted (a flag many threads set to 1)."""
    one_value = len(x.values | y.values) <= 1
    for me, w in x.stores.items():
        other = (_other(y.loads, me) or _other(y.atomics, me)
                 or (None if one_value else _other(y.stores, me)))
        if other is not None:
            return w, other
    for me, w in y.stores.items():
        other = _other(x.loads, me) or _other(x.atomics, me)
        if other is not None:
            return w, other
    for me, a in x.atomics.items():
        other = _other(y.loads, me)
        if other is not None:
            return a, other
    for me, a in y.atomics.items():
        other = _other(x.loads, me)
        if other is not None:
            return a, other
    return None


def _find_race(accesses: list[Access]) -> tuple[Access, Access] | None:
    """The first pair of accesses to one element that nothing orders: two threads of one block between
    the same two barriers, or two threads of two blocks (one launch; no barrier orders blocks)."""
    if not any(a.op == "store" or a.atomic for a in accesses):
        return None
    if len({(a.block, a.thread) for a in accesses}) < 2:
        return None
    groups: dict[tuple, _Side] = defaultdict(_Side)
    blocks: dict[tuple, _Side] = defaultdict(_Side)
    for a in accesses:
        who = (a.block, a.thread)
        groups[(a.block, a.epoch)].add(who, a)
        blocks[a.block].add(who, a)
    for side in groups.values():
        found = _conflict(side, side)
        if found:
            return found
    sides = list(blocks.values())
    for i, x in enumerate(sides):
        if not (x.stores or x.atomics):
            continue
        for y in sides:
            if y is not x:
                found = _conflict(x, y)
                if found:
                    return found
    return None


def _divergent_barriers(passed: list) -> list[Divergence]:
    """Per block of each launch that called a barrier: the first two threads whose barriers differ in
    number or place (a thread that called none counts as none)."""
    by_block: dict[tuple, dict[int, list]] = {}
    sizes: dict[tuple, int] = {}
    for context, block, thread, line in passed:
        key = (id(context), block)
        by_block.setdefault(key, {}).setdefault(thread, []).append(line)
        dim = getattr(context, "blockDim", None)
        sizes[key] = int(dim.x * dim.y * dim.z) if dim is not None else 0
    found = []
    for key, threads in by_block.items():
        seqs = [threads.get(t, []) for t in range(max(sizes[key], max(threads) + 1))]
        ref = max(range(len(seqs)), key=lambda t: len(seqs[t]))  # a thread that passed the most
        for t, seq in enumerate(seqs):
            if seq != seqs[ref]:
                k = next(i for i in range(len(seqs[ref])) if i >= len(seq) or seq[i] != seqs[ref][i])
                lines = (seqs[ref][k], seq[k] if k < len(seq) else None)
                found.append(Divergence(key[1], ref, t, (len(seqs[ref]), len(seq)), lines))
                break
    return found


@contextmanager
def check_races():
    """Find the data races of the kernels launched inside the block, whatever order the simulator ran
    their threads in: every element access to a device array or a shared array is recorded with its
    thread, the barriers that thread had passed and whether an atomic made it; at the end, two
    accesses to one element by two threads race when at least one writes, they are not both atomic,
    and nothing orders them (not the same block on two sides of a ``cuda.syncthreads()``; blocks are
    never ordered within a launch). Yields a :class:`RaceReport`, filled when the block ends. The
    CPU tier's answer to ``compute-sanitizer --tool racecheck``, for global memory too; a race is
    found whether or not it changed the result this time. Introduced in lab 03::

        with check_races() as races:
            histogram[4, 64](d_values, d_hist)
        assert not races, races.first()

    Seen: element accesses however the kernel reaches the element (an index tuple, a negative index, a
    row ``a[i]`` then ``row[j]``, ``a.T``, ``a.reshape(...)``, a slice of a shared array, a record's
    field ``a[i].x``, a device function, host arrays and ``cuda.to_device`` ones alike), static and
    dynamic shared memory (``cuda.shared.array(0, ...)``: one buffer, so its arrays alias), every
    ``cuda.atomic`` operation, ``cuda.syncthreads_count/and/or`` as barriers. Elements are known by
    their address within one launch: two launches are never compared.

    What it does not see: ``cuda.local.array``, ``cuda.const.array_like`` and arrays taken from module
    globals (private to a thread, or constants on a GPU); ``cuda.threadfence``, cooperative-group grid
    syncs or locks built of atomics as orderings (a kernel relying on them is reported); a store of one
    same value by every writer is not counted (a flag set to 1, NaN included); a whole record stored at
    once (``a[i] = rec``) is one access at its first field's address; kernels launched in another
    thread. Nested in :func:`trace_shared` or in another check, the inner one hands out the shared
    arrays and alone sees their accesses."""
    from numba import config

    from .i18n import msg

    if not config.ENABLE_CUDASIM:
        raise TraceUnavailable(msg("techday.races_simulator_only",
                                   "races are checked in the CUDA simulator only (the CPU tier)"))
    import numba.cuda.simulator.kernel as sim_kernel
    from numba.core import types
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as Arr
    from numba.cuda.simulator.kernel import BlockThread
    from numba.cuda.simulator.kernelapi import FakeCUDAAtomic, FakeCUDAShared
    from numba.np import numpy_support

    report = RaceReport()
    atomic_code = {f.__code__ for f in vars(FakeCUDAAtomic).values() if callable(f) and hasattr(f, "__code__")}
    skip_files = {__file__, sim_kernel.__file__, sys.modules[Arr.__module__].__file__,
                  sys.modules[FakeCUDAAtomic.__module__].__file__}
    numpy_dir = str(Path(np.__file__).parent) + os.sep  # NumPy's Python code between a kernel and a checked array
    simtools = sys.modules.get("techday.simtools")
    if simtools is not None:
        skip_files.add(simtools.__file__)
    log: list = []  # one row per access; list.append holds the GIL, so threads need no lock of ours

    roles: dict = {}  # code object -> what it is to the walk below: 0 passed over, 1 an atomic, 2 the kernel's

    def role(code) -> int:
        found = roles.get(code)
        if found is None:
            found = roles[code] = (1 if code in atomic_code else 0 if code.co_filename in skip_files
                                   or code.co_filename.startswith(numpy_dir) else 2)
        return found

    def note(space: str, ary: np.ndarray, idx, op: str, val, where, depth: int = 2) -> None:
        me = threading.current_thread()
        if not isinstance(me, BlockThread):
            return
        offsets = _offsets(ary, idx)
        if not offsets:
            return
        atomic, line = False, ("?", 0)
        frame = sys._getframe(depth)
        for _ in range(_MAX_WALK):
            if frame is None:
                break
            kind = role(frame.f_code)
            if kind == 1:
                atomic = True
            elif kind == 2:
                line = (frame.f_code.co_filename, frame.f_lineno)
                break
            frame = frame.f_back
        if op == "store" and not atomic:  # an array stored element by element: values unknown here
            val = _value(val) if len(offsets) == 1 or np.ndim(val) == 0 else object()
        mine = me.__dict__
        block = mine.get("_techday_block")
        if block is None:
            block = mine["_techday_block"] = tuple(me.blockIdx)
        access = Access(block, me.thread_id, mine.get("_techday_epoch", 0), op, atomic,
                        val if op == "store" and not atomic else None, line)
        context = sim_kernel._kernel_context
        for offset in offsets:
            log.append((context, space, where, ary, offset, access))

    # The simulator's device array (``FakeCUDAArray``), not the kernel's wrapper of it: every route to an
    # element ends there (``a[i]``, a row ``a[i][j]``, ``a.reshape(n)[j]``, a record's field ``a[i].x``).
    old_get, old_set = Arr.__dict__["__getitem__"], Arr.__dict__["__setitem__"]

    def getitem(self, idx):
        got = old_get(self, idx)
        if not isinstance(got, (Arr, np.ndarray, np.void)):  # a view or a record: seen when its elements are
            note("global", self._ary, idx, "load", None, None)
        return got

    def setitem(self, idx, val):
        note("global", self._ary, idx, "store", val, None)
        return old_set(self, idx, val)

    def whole(arrays, op: str, val=None) -> list:
        """Record every element of the checked arrays among ``arrays`` as read (or written), and return
        them as plain arrays: what NumPy computes from a shared array reads all of it."""
        plain = []
        for a in arrays:
            if isinstance(a, Checked):
                if a._site is not None:
                    note("shared", a, Ellipsis, op, val, a._site, depth=3)
                a = a.view(np.ndarray)
            plain.append(a)
        return plain

    class Checked(np.ndarray):
        """A shared array whose element accesses are recorded: by index, by slice (a view stays
        checked), through NumPy's functions and by iteration (every element read)."""

        _site = None

        def __array_finalize__(self, obj):
            self._site = getattr(obj, "_site", None)

        def __getitem__(self, idx):
            got = np.ndarray.__getitem__(self, idx)
            if not isinstance(got, np.ndarray):
                if self._site is not None:
                    note("shared", self, idx, "load", None, self._site)
                return got
            if np.may_share_memory(got.view(np.ndarray), self.view(np.ndarray)):
                return got  # a view: still checked, its elements seen when they are read
            if self._site is not None:  # a copy (an index array): every element read now
                note("shared", self, idx, "load", None, self._site)
            return got.view(np.ndarray)

        def __setitem__(self, idx, val):
            if self._site is not None:
                note("shared", self, idx, "store", val, self._site)
            np.ndarray.__setitem__(self, idx, val)

        def __iter__(self):
            return iter(whole([self], "load")[0])

        def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
            inputs = whole(inputs, "load")
            if out is not None:
                out = tuple(whole(out, "store", object()))
            got = getattr(ufunc, method)(*inputs, **kwargs) if out is None else getattr(ufunc, method)(
                *inputs, out=out, **kwargs)
            return got

        def __array_function__(self, func, types, args, kwargs):
            args = whole(args, "load")
            kwargs = dict(zip(kwargs, whole(kwargs.values(), "load")))
            return func(*args, **kwargs)

    old_array = FakeCUDAShared.__dict__["array"]
    shared_lock = threading.Lock()
    mine = f"_techday_checked_{id(report)}"  # this check's arrays: a check nested in another has its own

    def array(self, shape, dtype, alignment=None):
        # Allocated here, as the simulator does, not through the method this replaces: that one may be
        # another wrapper (``atomic_shared_arrays``, ``trace_shared``) that knows an array by *its*
        # caller's line, which would be this function's for every array of the kernel.
        if alignment is not None:
            raise RuntimeError("Array alignment is not supported in cudasim")
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_code.co_filename in skip_files:
            frame = frame.f_back  # a wrapper of ours between the kernel and this allocation
        site = (frame.f_code.co_filename, frame.f_lineno)
        if shape == 0:  # dynamic shared memory: one buffer for every such array of the launch, checked
            count = self._dynshared_size // np.dtype(dtype).itemsize
            view = np.frombuffer(self._dynshared.data, dtype=dtype, count=count).view(Checked)
            view._site = site
            return view
        with shared_lock:
            allocations = self.__dict__.setdefault(mine, {})
            if site not in allocations:
                view = new_static_shared(self, shape, dtype).view(Checked)  # as a plain launch makes it
                view._site = site
                allocations[site] = view
            return allocations[site]

    array._techday_atomic = True  # one allocation per site under a lock: atomic_shared_arrays keeps it

    old_sync = BlockThread.__dict__["syncthreads"]
    passed: list = []  # (launch context, block, thread, barrier line), in each thread's order

    def syncthreads(self):
        self.__dict__["_techday_epoch"] = self.__dict__.get("_techday_epoch", 0) + 1
        line, frame = ("?", 0), sys._getframe(1)
        for _ in range(_MAX_WALK):
            if frame is None:
                break
            if frame.f_code.co_filename not in skip_files:
                line = (frame.f_code.co_filename, frame.f_lineno)
                break
            frame = frame.f_back
        passed.append((sim_kernel._kernel_context, tuple(self.blockIdx), self.thread_id, line))
        return old_sync(self)

    Arr.__getitem__, Arr.__setitem__ = getitem, setitem
    FakeCUDAShared.array = array
    BlockThread.syncthreads = syncthreads
    try:
        yield report
    finally:
        Arr.__getitem__, Arr.__setitem__ = old_get, old_set
        FakeCUDAShared.array = old_array
        BlockThread.syncthreads = old_sync
    records: dict[tuple, list[Access]] = {}
    names: dict[tuple, tuple] = {}  # location -> (space, array, offset, site): described if it races
    launches: dict[int, int] = {}  # the launch contexts are kept alive in the log, so ids stay theirs
    bases: dict[int, int] = {}  # so are the arrays; their addresses, asked once each (NumPy builds a dict)
    for context, space, where, ary, offset, access in log:
        launch = launches.setdefault(id(context), len(launches))
        base = bases.get(id(ary))
        if base is None:
            base = bases[id(ary)] = _base(ary)
        address = base + offset
        # An element is its address in the launch (every array recorded is kept alive until the end, so
        # no address is reused): two arrays over one memory, dynamic shared arrays, views, are one element.
        loc = (launch, space, access.block if space == "shared" else None, address)
        rows = records.get(loc)
        if rows is None:
            rows = records[loc] = []
            names[loc] = (space, ary, offset, where)
        rows.append(access)
    report.accesses, report.launches = len(log), len(launches)
    report.barriers = _divergent_barriers(passed)
    for loc, rows in records.items():
        found = _find_race(rows)
        if found:
            space, ary, offset, where = names[loc]
            report.hazards.append(Hazard(space, *_where(space, ary, offset, where), *found))
