"""Check the order of work on CUDA streams, on the GPU and in the simulator alike.

Work on different streams may run in any order, so a stream bug (a copy back on another stream than
the kernel that wrote the data, a result read before its stream was synchronised) gives a wrong answer
only sometimes on a GPU, and never in Numba's CUDA simulator, which runs everything at once, in order.
A :class:`StreamTrace` records what a function asks for instead (copies, kernels, synchronisations,
events, each with its stream and the memory it reads and writes) and checks the order with vector
clocks, the way a race detector does: two operations that touch the same memory, at least one of
them writing, must be ordered by the rules of CUDA streams:

- operations on one stream run in issue order;
- an operation on the legacy default stream (``stream=0``, the default of every call) waits for all
  earlier work on the other (blocking) streams, and later work on them waits for it; copies on it
  block the host until they are done;
- ``stream.synchronize()``, ``event.synchronize()`` and ``cuda.synchronize()`` make the host wait;
- ``event.record(s1)`` then ``event.wait(s2)`` makes later work on ``s2`` wait for ``s1``'s work so far.

Usage, in a test (the function under test finds ``cuda`` and its kernel as globals)::

    trace = StreamTrace(cuda)
    with trace.patch(globals(), kernels={"scale_kernel": (1,)}):   # argument 1 is written
        out = pipeline(x, 4)
    problems = trace.problems(read_on_host=[out])

Introduced in lab 06 (streams and concurrency).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from .i18n import msg

LEGACY = 0  # the id of the legacy default stream


def _extent(obj) -> tuple[str, int, int] | None:
    """(memory kind, first byte, one past the last byte) of a host or device array."""
    if isinstance(obj, _DeviceProxy):
        obj = obj._real
    if isinstance(obj, np.ndarray):
        kind, arr = "host", obj
    elif hasattr(obj, "_ary") and isinstance(getattr(obj, "_ary"), np.ndarray):  # simulator device array
        kind, arr = "device", obj._ary
    elif hasattr(obj, "__cuda_array_interface__"):
        cai = obj.__cuda_array_interface__
        start = cai["data"][0]
        shape, strides = cai["shape"], cai.get("strides")
        itemsize = np.dtype(cai["typestr"]).itemsize
        if not shape or 0 in shape:
            return ("device", start, start)
        strides = strides or tuple(int(np.prod(shape[k + 1:])) * itemsize for k in range(len(shape)))
        lo = start + sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
        hi = start + sum(max(0, (n - 1) * s) for n, s in zip(shape, strides)) + itemsize
        return ("device", lo, hi)
    else:
        return None
    if arr.size == 0:
        start = arr.__array_interface__["data"][0]
        return (kind, start, start)
    lo, hi = np.byte_bounds(arr) if hasattr(np, "byte_bounds") else np.lib.array_utils.byte_bounds(arr)
    return (kind, lo, hi)


def _overlap(a, b) -> bool:
    return a is not None and b is not None and a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def _join(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if out.get(k, -1) < v:
            out[k] = v
    return out


@dataclass
class Op:
    """One recorded operation: a copy or a kernel launch, on a stream, in issue order."""

    index: int
    kind: str            # "h2d", "d2h", "kernel"
    stream: int
    what: str
    reads: list = field(default_factory=list)    # extents
    writes: list = field(default_factory=list)
    deps: dict = field(default_factory=dict)     # stream id -> last op index this op waits for

    def describe(self) -> str:
        where = msg("techday.stream_default", "the default stream") if self.stream == LEGACY else \
            msg("techday.stream_n", "stream {n}", n=self.stream)
        return msg("techday.stream_op", "#{index} {what} on {where}", index=self.index, what=self.what, where=where)


class StreamTrace:
    """Records stream work through stand-ins for ``numba.cuda``, its streams, events, device arrays
    and kernels, and finds unordered conflicting operations (see the module docstring)."""

    def __init__(self, cuda):
        self.real_cuda = cuda
        self.ops: list[Op] = []
        self.streams: dict[int, object] = {}
        self.stream_clock: dict[int, dict] = {}
        self.legacy_clock: dict = {}     # what every blocking stream waits for (legacy-stream work)
        self.host_clock: dict = {}       # what the host knows to be complete
        self.pinned: list = []           # extents of host memory allocated pinned
        self.namespace: dict | None = None
        self._alive: list = []
        self.cuda = _CudaProxy(self)

    # --- recording ---------------------------------------------------------------------------
    def stream_id(self, stream) -> int:
        if stream is None or (isinstance(stream, int) and stream == 0):
            return LEGACY
        if isinstance(stream, _StreamProxy):
            return stream._id
        raise TypeError(msg("techday.stream_not_made_here",
                            "pass a stream made by cuda.stream() in this function, not {stream!r}", stream=stream))

    def record(self, kind, stream, what, reads=(), writes=(), blocking_host=False) -> Op:
        sid = self.stream_id(stream)
        index = len(self.ops) + 1
        # Keep every array alive while tracing: freed memory reused by a later array would look like
        # a conflict (CUDA itself waits for the device before it frees memory).
        self._alive.extend(list(reads) + list(writes))
        if sid == LEGACY:
            deps = _join(self.host_clock, self.legacy_clock)
            for clock in self.stream_clock.values():
                deps = _join(deps, clock)
        else:
            deps = _join(_join(self.stream_clock.get(sid, {}), self.host_clock), self.legacy_clock)
        op = Op(index, kind, sid, what, [e for e in map(_extent, reads) if e],
                [e for e in map(_extent, writes) if e], deps)
        self.ops.append(op)
        done = _join(deps, {sid: index})
        self.stream_clock[sid] = _join(self.stream_clock.get(sid, {}), done)
        if sid == LEGACY:
            self.legacy_clock = _join(self.legacy_clock, done)
        if blocking_host:
            self.host_clock = _join(self.host_clock, done)
        return op

    def sync_stream(self, sid: int) -> None:
        self.host_clock = _join(self.host_clock, self.stream_clock.get(sid, {}))

    def sync_all(self) -> None:
        for clock in list(self.stream_clock.values()) + [self.legacy_clock]:
            self.host_clock = _join(self.host_clock, clock)

    def kernel(self, kernel, writes=(-1,), name: str | None = None):
        """A stand-in for ``kernel`` that records each launch; ``writes``: the indices of the
        arguments it writes (the others are read)."""
        return _KernelSpy(self, kernel, tuple(writes), name or getattr(kernel, "__name__", "kernel"))

    @contextlib.contextmanager
    def patch(self, namespace: dict, kernels: dict[str, tuple[int, ...]]):
        """Swap ``cuda`` and the named kernels in ``namespace`` (a notebook's globals) for recording
        stand-ins while the block runs, and put the real ones back afterwards."""
        saved = {name: namespace[name] for name in ["cuda", *kernels]}
        self.namespace = namespace
        try:
            namespace["cuda"] = self.cuda
            for name, writes in kernels.items():
                namespace[name] = self.kernel(saved[name], writes, name)
            yield self
        finally:
            namespace.update(saved)
            self.namespace = None

    # --- checking ----------------------------------------------------------------------------
    @staticmethod
    def ordered(a: Op, b: Op) -> bool:
        """True when ``a`` (issued before ``b``) is complete before ``b`` starts."""
        return b.deps.get(a.stream, -1) >= a.index

    def races(self) -> list[str]:
        found = []
        for j, b in enumerate(self.ops):
            for a in self.ops[:j]:
                if self.ordered(a, b):
                    continue
                conflict = any(_overlap(w, x) for w in a.writes for x in b.reads + b.writes) or \
                    any(_overlap(w, x) for w in b.writes for x in a.reads)
                if conflict:
                    found.append(msg("techday.stream_race",
                                     "{later} may run before {earlier} is done (same memory, and nothing orders them: "
                                     "use one stream for both, or an event)", later=b.describe(), earlier=a.describe()))
        return found

    def unsynchronised_reads(self, arrays) -> list[str]:
        found = []
        for arr in arrays:
            ext = _extent(arr)
            for op in self.ops:
                if any(_overlap(w, ext) for w in op.writes) and self.host_clock.get(op.stream, -1) < op.index:
                    found.append(msg("techday.stream_unsynchronised_read",
                                     "the host reads the result before {op} is done: synchronise that stream "
                                     "(stream.synchronize()) before using the result", op=op.describe()))
        return found

    def problems(self, read_on_host=()) -> list[str]:
        """Every race, and every read of ``read_on_host`` arrays not yet synchronised."""
        return self.races() + self.unsynchronised_reads(read_on_host)

    def is_pinned(self, arr) -> bool:
        """True when ``arr`` lies in host memory allocated with ``cuda.pinned_array`` here."""
        ext = _extent(arr)
        return ext is not None and any(p[1] <= ext[1] and ext[2] <= p[2] for p in self.pinned)

    def streams_used(self, kind: str | None = None) -> set[int]:
        return {op.stream for op in self.ops if kind is None or op.kind == kind}

    def summary(self) -> str:
        return "\n".join(op.describe() for op in self.ops)


def _real(obj):
    if isinstance(obj, (_DeviceProxy, _StreamProxy, _EventProxy)):
        return obj._real
    if isinstance(obj, (list, tuple)):
        return type(obj)(_real(o) for o in obj)
    return obj


class _StreamProxy:
    def __init__(self, trace: StreamTrace, real, sid: int):
        self._trace, self._real, self._id = trace, real, sid

    def synchronize(self):
        self._real.synchronize()
        self._trace.sync_stream(self._id)

    @contextlib.contextmanager
    def auto_synchronize(self):
        with self._real.auto_synchronize():
            yield self
        self._trace.sync_stream(self._id)

    def __getattr__(self, name):
        return getattr(self._real, name)


class _EventProxy:
    def __init__(self, trace: StreamTrace, real):
        self._trace, self._real, self._clock = trace, real, {}

    def record(self, stream=0):
        sid = self._trace.stream_id(stream)
        self._real.record(_real(stream))
        self._clock = dict(self._trace.stream_clock.get(sid, {}))
        if sid == LEGACY:
            self._clock = _join(self._clock, self._trace.legacy_clock)

    def synchronize(self):
        self._real.synchronize()
        self._trace.host_clock = _join(self._trace.host_clock, self._clock)

    def wait(self, stream=0):
        sid = self._trace.stream_id(stream)
        self._real.wait(_real(stream))
        self._trace.stream_clock[sid] = _join(self._trace.stream_clock.get(sid, {}), self._clock)

    def elapsed_time(self, other):
        return self._real.elapsed_time(_real(other))

    def __getattr__(self, name):
        return getattr(self._real, name)


class _DeviceProxy:
    def __init__(self, trace: StreamTrace, real):
        self._trace, self._real = trace, real

    def copy_to_host(self, ary=None, stream=0):
        out = self._real.copy_to_host(ary, stream=_real(stream))
        self._trace.record("d2h", stream, msg("techday.stream_d2h", "copy_to_host of {n:,} elements", n=self._real.size), reads=[self._real],
                           writes=[out], blocking_host=self._trace.stream_id(stream) == LEGACY)
        return out

    def copy_to_device(self, ary, stream=0):
        self._real.copy_to_device(_real(ary), stream=_real(stream))
        self._trace.record("h2d", stream, msg("techday.stream_h2d", "copy_to_device of {n:,} elements", n=self._real.size), reads=[ary],
                           writes=[self._real], blocking_host=self._trace.stream_id(stream) == LEGACY)

    def __getitem__(self, key):
        return _DeviceProxy(self._trace, self._real[key])

    def __setitem__(self, key, value):
        self._real[key] = _real(value)

    def __len__(self):
        return len(self._real)

    def __getattr__(self, name):
        return getattr(self._real, name)


class _KernelSpy:
    def __init__(self, trace: StreamTrace, kernel, writes, name):
        self._trace, self._kernel, self._writes, self._name = trace, kernel, writes, name

    def __getitem__(self, config):
        config = config if isinstance(config, tuple) else (config,)
        stream = config[2] if len(config) > 2 else 0
        launch = self._kernel[_real(config)]

        def run(*args):
            real_args = [_real(a) for a in args]
            n = len(args)
            writes = {w % n for w in self._writes} if n else set()
            devs = [(k, a) for k, a in enumerate(real_args) if _extent(a) is not None]
            ns = self._trace.namespace
            swapped = ns is not None and ns.get("cuda") is self._trace.cuda
            if swapped:  # the simulator runs kernels with their globals: give them the real module
                ns["cuda"] = self._trace.real_cuda
            try:
                launch(*real_args)
            finally:
                if swapped:
                    ns["cuda"] = self._trace.cuda
            self._trace.record("kernel", stream, f"{self._name}[{config[0]}, {config[1]}]",
                               reads=[a for k, a in devs if k not in writes],
                               writes=[a for k, a in devs if k in writes])
        return run

    def __getattr__(self, name):
        return getattr(self._kernel, name)


class _CudaProxy:
    """Stands in for the ``numba.cuda`` module: records, then calls the real one."""

    def __init__(self, trace: StreamTrace):
        self._trace = trace

    def stream(self):
        sid = len(self._trace.streams) + 1
        proxy = _StreamProxy(self._trace, self._trace.real_cuda.stream(), sid)
        self._trace.streams[sid] = proxy
        return proxy

    def default_stream(self):
        return 0

    legacy_default_stream = default_stream

    def event(self, *args, **kwargs):
        return _EventProxy(self._trace, self._trace.real_cuda.event(*args, **kwargs))

    def synchronize(self):
        self._trace.real_cuda.synchronize()
        self._trace.sync_all()

    def to_device(self, ary, stream=0, copy=True, to=None):
        real = self._trace.real_cuda.to_device(ary, stream=_real(stream), copy=copy, to=_real(to))
        if copy:
            self._trace.record("h2d", stream, msg("techday.stream_to_device", "to_device of {n:,} elements", n=np.size(ary)), reads=[ary],
                               writes=[real], blocking_host=self._trace.stream_id(stream) == LEGACY)
        return _DeviceProxy(self._trace, real) if to is None else to

    def _pinned(self, arr):
        self._trace.pinned.append(_extent(arr))
        return arr

    def pinned_array(self, *args, **kwargs):
        return self._pinned(self._trace.real_cuda.pinned_array(*args, **kwargs))

    def pinned_array_like(self, ary):
        return self._pinned(self._trace.real_cuda.pinned_array_like(ary))

    def __getattr__(self, name):
        value = getattr(self._trace.real_cuda, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            result = value(*_real(args), **{k: _real(v) for k, v in kwargs.items()})
            return _DeviceProxy(self._trace, result) if _extent(result) is not None and \
                _extent(result)[0] == "device" else result
        return call
