"""The helpers behind labs 05 and 06: the xp switch, kernel source on the host, stream-order checks."""

import numpy as np
import pytest

from techday import cudasrc
from techday.streamcheck import StreamTrace
from techday.xp import STRICT, StrictArray, get_array_module, get_xp


class _Lab:
    def __init__(self, on_gpu):
        self.on_gpu = on_gpu


def test_get_xp_is_numpy_off_the_gpu_tier():
    assert get_xp(_Lab(False)) is np
    assert get_array_module(np.ones(2), 3.0) is np


def test_strict_arrays_refuse_numpy_but_work_with_xp():
    a = STRICT.asarray(np.arange(6.0).reshape(2, 3))
    assert isinstance(a, StrictArray) and get_array_module(a) is STRICT
    with pytest.raises(TypeError):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.exp(a)
    with pytest.raises(TypeError):
        np.sum(a)
    b = STRICT.exp(a - a.max(axis=1, keepdims=True))
    s = b / b.sum(axis=1, keepdims=True)
    assert isinstance(s, StrictArray) and s.shape == (2, 3)
    np.testing.assert_allclose(s.get().sum(axis=1), [1.0, 1.0])
    assert isinstance(2.0 * a + np.float64(1), StrictArray)


def test_run_elementwise_matches_numpy_and_checks_raw_indices():
    x = np.arange(10, dtype=np.float32)
    y = cudasrc.run_elementwise("raw T x, T w0, T w1", "T y", "y = w0 * x[i] + w1 * x[i + 1];",
                                x, np.float32(2), np.float32(-1), np.empty(9, np.float32))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, 2 * x[:-1] - x[1:])
    with pytest.raises(IndexError, match="reads outside x"):
        cudasrc.run_elementwise("raw T x", "T y", "y = x[i + 1]", x, np.empty(10, np.float32))
    z = cudasrc.run_elementwise("T x, T a", "T z", "z = fmaxf(a * x, 1.5f)", x, np.float32(0.5))
    np.testing.assert_array_equal(z, np.maximum(0.5 * x, 1.5))
    with pytest.raises(cudasrc.ElementwiseError):
        cudasrc.run_elementwise("T x", "T y", "y = x > 0 ? x : 0", x)


def test_run_elementwise_reads_local_variables_as_c_declares_them():
    """An operation may declare locals (valid C that NVRTC compiles): typed by a placeholder or a C type."""
    x = np.arange(10, dtype=np.float32)
    op = "T acc = w0 * x[i]; acc += w1 * x[i + 1]; acc += w2 * x[i + 2]; y = acc;"
    y = cudasrc.run_elementwise("raw T x, T w0, T w1, T w2", "T y", op, x, np.float32(1), np.float32(2),
                                np.float32(3), np.empty(8, np.float32))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x[:-2] + 2 * x[1:-1] + 3 * x[2:])
    k = cudasrc.run_elementwise("T x", "T y", "const int k = x * 2.5; y = k", np.array([1.0, 2.0, -3.0]))
    np.testing.assert_array_equal(k, [2.0, 5.0, -7.0])  # an int local truncates toward zero, as in C
    for bad in ("foo a = x; y = a", "T a = x; T a = x; y = a", "a = x; y = a", "T x = 1; y = x"):
        with pytest.raises(cudasrc.ElementwiseError):
            cudasrc.run_elementwise("T x", "T y", bad, np.ones(3))


def test_elementwise_source_compiles_with_nvrtc_when_installed():
    ok, why = cudasrc.nvrtc_status()
    if not ok:
        pytest.skip(f"NVRTC is not installed here: {why}")
    src = cudasrc.elementwise_source("raw T x, T w", "T y", "y = w * x[i]", "scale", {"x": np.float64})
    assert cudasrc.ptx_entries(cudasrc.compile_ptx(src, "scale.cu")) == ["scale"]
    bad = cudasrc.elementwise_source("T x", "T y", "y = x +", "bad", {"x": np.float32})
    with pytest.raises(cudasrc.CompileError, match="error"):
        cudasrc.compile_ptx(bad, "bad.cu")


class _FakeDev:
    """A device array as the simulator has it: a NumPy array in ``_ary``."""

    def __init__(self, ary):
        self._ary = ary
        self.size = ary.size

    def copy_to_host(self, ary=None, stream=0):
        ary[...] = self._ary
        return ary

    def __getitem__(self, key):
        return _FakeDev(self._ary[key])


class _FakeStream:
    def synchronize(self):
        pass


class _FakeCuda:
    def stream(self):
        return _FakeStream()

    def to_device(self, ary, stream=0, copy=True, to=None):
        return _FakeDev(np.array(ary))

    def device_array(self, n, dtype, stream=0):
        return _FakeDev(np.empty(n, dtype))

    def pinned_array(self, n, dtype):
        return np.empty(n, dtype)

    def synchronize(self):
        pass


class _FakeKernel:
    def __getitem__(self, config):
        return lambda x, out: out._ary.__setitem__(Ellipsis, 2 * x._ary)


def _pipeline(cuda, kernel, x, copy_back_on_first, sync):
    out = cuda.pinned_array(x.size, x.dtype)
    streams = [cuda.stream(), cuda.stream()]
    for k, (a, b) in enumerate(((0, 3), (3, x.size))):
        s = streams[k]
        d_x = cuda.to_device(x[a:b], stream=s)
        d_y = cuda.device_array(b - a, x.dtype, stream=s)
        kernel[1, 32, s](d_x, d_y)
        d_y.copy_to_host(out[a:b], stream=streams[0] if copy_back_on_first else s)
    if sync:
        for s in streams:
            s.synchronize()
    return out


@pytest.mark.parametrize("copy_back_on_first, sync, problems", [
    (False, True, 0),      # each chunk on its own stream, synchronised: ordered
    (True, True, 1),       # chunk 1 copied back on stream 0 while its kernel runs on stream 1
    (False, False, 2),     # nothing synchronised: both copies may not be done
])
def test_stream_trace_finds_races_and_missing_synchronisation(copy_back_on_first, sync, problems):
    trace = StreamTrace(_FakeCuda())
    ns = {"cuda": trace.real_cuda, "k": _FakeKernel()}
    with trace.patch(ns, kernels={"k": (1,)}):
        out = _pipeline(ns["cuda"], ns["k"], np.arange(7.0), copy_back_on_first, sync)
    assert ns["cuda"] is trace.real_cuda
    np.testing.assert_array_equal(out, 2 * np.arange(7.0))
    assert trace.is_pinned(out) and trace.streams_used("kernel") == {1, 2}
    assert len(trace.problems(read_on_host=[out])) == problems, trace.problems(read_on_host=[out])


def test_default_stream_work_orders_everything():
    trace = StreamTrace(_FakeCuda())
    cuda = trace.cuda
    x = np.arange(4.0)
    s = cuda.stream()
    d = cuda.to_device(x, stream=s)
    out = np.empty(4)
    d.copy_to_host(out)            # default stream: waits for s, and the host waits for the copy
    assert trace.problems(read_on_host=[out]) == []
