"""Lab 06's one-chunk demo, run on a fake GPU that takes the worst schedule CUDA allows.

Numba's simulator runs stream work at once and in order, so a stream race never shows there. The fake
below does what a GPU may do: a copy or kernel on one stream sees another stream's result only when an
event or a host synchronisation orders it after that work (else it sees NaN, the memory before the
write), and a copy back lands in host memory only when the host synchronises the copy's stream.
"""

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from techday.course.labsrc import read_lab
from techday.i18n import msg
from techday.labtools import assert_close
from techday.streamcheck import StreamTrace

LAB = Path(__file__).resolve().parents[2] / "labs" / "06-streams-concurrency" / "06-streams-concurrency.py"


class _Stream:
    def __init__(self, gpu, sid):
        self.gpu, self.id = gpu, sid
        self.waits = {}          # stream id -> last op index on it that work here waits for
        self.pending = []        # copies back not yet in host memory: (host array, values)

    def synchronize(self):
        self.gpu.log.append(("sync", self.id))
        for host, values in self.pending:
            host[...] = values
        self.pending = []
        done = {**self.waits, self.id: self.gpu.last.get(self.id, -1)}
        for sid, index in done.items():
            self.gpu.host_done[sid] = max(self.gpu.host_done.get(sid, -1), index)


class _Event:
    def __init__(self, gpu):
        self.gpu, self.mark = gpu, {}

    def record(self, stream=0):
        self.gpu.log.append(("record", stream.id))
        self.mark = {**stream.waits, stream.id: self.gpu.last.get(stream.id, -1)}

    def wait(self, stream=0):
        self.gpu.log.append(("wait", stream.id))
        for sid, index in self.mark.items():
            stream.waits[sid] = max(stream.waits.get(sid, -1), index)


class _Dev:
    def __init__(self, gpu, ary, writer=None):
        self.gpu, self._ary, self.writer = gpu, ary, writer
        self.size, self.shape, self.dtype = ary.size, ary.shape, ary.dtype

    def copy_to_host(self, ary=None, stream=0):
        values = self._ary.copy() if self.gpu.visible(self.writer, stream) else np.full_like(self._ary, np.nan)
        self.gpu.op("d2h", stream)
        stream.pending.append((ary, values))
        return ary


class WorstCaseGPU:
    """Stands in for numba.cuda (the calls the demo makes), with the latest legal completion order."""

    def __init__(self):
        self.log, self.last, self.host_done, self.count, self.streams = [], {}, {}, 0, 0

    def op(self, kind, stream):
        self.count += 1
        self.last[stream.id] = self.count
        self.log.append((kind, stream.id))
        return (stream.id, self.count)

    def visible(self, writer, stream):
        if writer is None or writer[0] == stream.id:
            return True
        sid, index = writer
        return stream.waits.get(sid, -1) >= index or self.host_done.get(sid, -1) >= index

    def stream(self):
        self.streams += 1
        return _Stream(self, self.streams)

    def event(self):
        return _Event(self)

    def pinned_array(self, shape, dtype):
        return np.full(shape, np.nan, dtype)

    def to_device(self, ary, stream=0, copy=True, to=None):
        return _Dev(self, np.array(ary), writer=self.op("h2d", stream))

    def device_array_like(self, ary, stream=0):
        return _Dev(self, np.full_like(ary._ary, np.nan))


class _Transform:
    """transform_kernel on the fake GPU: out = sqrt(x) * 2 + 1, reading x as this stream may see it."""

    def __getitem__(self, config):
        stream = config[2]

        def run(x, out):
            gpu = x.gpu
            seen = x._ary if gpu.visible(x.writer, stream) else np.full_like(x._ary, np.nan)
            out._ary[...] = np.sqrt(seen) * 2 + 1
            out.writer = gpu.op("kernel", stream)
        return run


def _reference(x):
    return np.sqrt(np.asarray(x, np.float64)) * 2 + 1


def _demo_cell() -> str:
    nb, _ = read_lab(LAB)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "def one_chunk(" in c.source]
    assert len(cells) == 1, "lab 06 should have one cell defining one_chunk"
    return cells[0]


def _namespace():
    return {"cuda": WorstCaseGPU(), "transform_kernel": _Transform(), "BLOCKS": 4, "THREADS": 128,
            "np": np, "math": math, "StreamTrace": StreamTrace, "assert_close": assert_close,
            "transform_reference": _reference, "msg": msg}


def test_the_demo_cell_asserts_only_what_is_ordered(capsys):
    """Catches the demo asserting the values of a copy back queued on another stream with nothing to
    order it after the kernel: on this fake (as on a GPU) that copy reads d_y before the kernel wrote it,
    and the cell raised AssertionError."""
    exec(compile(_demo_cell(), str(LAB), "exec"), _namespace())
    out = capsys.readouterr().out
    assert "copy back on the kernel's stream: order OK; values right" in out
    assert "copy back on another stream, after an event: order OK; values right" in out
    # the fake really takes the racy schedule, so the test above could fail
    assert "copy back on another stream, unordered: order NOT guaranteed; values WRONG" in out


def _one_chunk():
    ns = _namespace()
    tree = ast.parse(_demo_cell())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "one_chunk")
    exec(compile(ast.Module([fn], []), str(LAB), "exec"), ns)
    return ns


@pytest.mark.parametrize("copy_back", ["same stream", "event"])
def test_one_chunk_reads_after_synchronising_the_copy_stream(copy_back):
    """The copy back comes after the kernel on its stream (or after a wait on an event recorded after
    the kernel), and the host reads h_y only after synchronising the stream the copy was queued on.
    Catches: the event recorded or waited for after the copy, no event, synchronising the kernel's
    stream instead of the copy's, and returning before any synchronisation."""
    ns = _one_chunk()
    x = np.random.default_rng(3).random(50)
    out = ns["one_chunk"](x, copy_back)
    assert_close(out, _reference(x), copy_back)
    log = ns["cuda"].log
    copy = next(i for i, (kind, _) in enumerate(log) if kind == "d2h")
    kernel = next(i for i, (kind, _) in enumerate(log) if kind == "kernel")
    copy_stream, kernel_stream = log[copy][1], log[kernel][1]
    assert kernel < copy
    assert ("sync", copy_stream) in log[copy + 1:], f"the copy's stream is not synchronised after the copy: {log}"
    if copy_stream != kernel_stream:
        record = log.index(("record", kernel_stream))
        wait = log.index(("wait", copy_stream))
        assert kernel < record < wait < copy, f"the copy is not ordered after the kernel by an event: {log}"


def _wrong_orders(cuda):
    """Wrong versions of one_chunk, each of which the fake must get wrong values from."""
    def run(order):
        s0, s1 = cuda.stream(), cuda.stream()
        h_x = np.arange(1.0, 9.0)
        h_y = cuda.pinned_array(h_x.shape, h_x.dtype)
        d_x = cuda.to_device(h_x, stream=s0)
        d_y = cuda.device_array_like(d_x, stream=s0)
        _Transform()[1, 32, s0](d_x, d_y)
        event = cuda.event()
        if order == "wait after the copy":
            d_y.copy_to_host(h_y, stream=s1)
            event.record(s0)
            event.wait(s1)
            s1.synchronize()
        elif order == "sync the kernel's stream, not the copy's":
            d_y.copy_to_host(h_y, stream=s0)
            s1.synchronize()
        elif order == "read before the synchronize":
            d_y.copy_to_host(h_y, stream=s0)
            h_read = h_y.copy()
            s0.synchronize()
            return h_read
        return h_y
    return run


@pytest.mark.parametrize("order", ["wait after the copy", "sync the kernel's stream, not the copy's",
                                   "read before the synchronize"])
def test_the_fake_gpu_gets_wrong_orders_wrong(order):
    out = _wrong_orders(WorstCaseGPU())(order)
    assert np.isnan(out).all(), f"{order}: the fake GPU must expose this race, got {out}"
