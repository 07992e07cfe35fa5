"""techday.labtools' kernel checks: a @cuda.jit kernel is told from a Python stand-in, and a watched
kernel records each launch with its grid, its block and what it wrote into NaN-poisoned outputs.

The simulator half runs kernels; the GPU half needs no GPU (a dispatcher is made lazily) and checks
only that numba-cuda's real dispatcher counts as a kernel and a device function does not."""

import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

SIM_SCRIPT = textwrap.dedent('''
    import numpy as np
    from numba import cuda
    from techday.labtools import KernelWatch, assert_cuda_kernel, is_cuda_kernel, same_memory, watch_kernels

    @cuda.jit
    def scale(x, out):
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            out[i] = 2.0 * x[i]

    @cuda.jit
    def scale_no_stride(x, out):            # one element per thread: small grids leave elements unwritten
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = 2.0 * x[i]

    @cuda.jit(device=True)
    def twice(v):
        return 2.0 * v

    class HostScale:                        # indexes and calls like a kernel, computes with NumPy
        def __getitem__(self, config):
            def run(x, out):
                out.copy_to_device(2.0 * x.copy_to_host())
            return run

    assert is_cuda_kernel(scale) and is_cuda_kernel(scale_no_stride)
    for fake in (twice, HostScale(), lambda x, out: None, scale.py_func if hasattr(scale, "py_func") else len):
        assert not is_cuda_kernel(fake), fake
    try:
        assert_cuda_kernel(HostScale(), "scale")
    except AssertionError as err:
        assert "scale must be a CUDA kernel made with @cuda.jit" in str(err) and "HostScale" in str(err), err
    else:
        raise SystemExit("a host stand-in passed assert_cuda_kernel")
    try:
        KernelWatch(twice, "twice")
    except AssertionError as err:
        assert "device function" in str(err), err
    else:
        raise SystemExit("a device function was watched as a kernel")

    ns = {"scale": scale, "scale_no_stride": scale_no_stride}
    x = np.arange(1_000, dtype=np.float64)
    d_x = cuda.to_device(x)
    d_out = cuda.device_array_like(d_x)
    with watch_kernels(ns, {"scale": (1,), "scale_no_stride": (-1,)}) as watch:
        ns["scale"][2, 64](d_x, d_out)                    # grid-stride: all of it
        ns["scale_no_stride"][(2,), (32,)](d_x, d_out)    # 64 threads for 1,000 elements
        ns["scale"][1, 32, cuda.stream()](d_x, d_x)       # in place: not poisoned, still recorded
        ns["scale"][1, 32](x[:10], np.zeros(10))          # host arrays are recorded as such
    assert ns["scale"] is scale and ns["scale_no_stride"] is scale_no_stride, "the real kernels are put back"
    first, in_place, host = watch["scale"].launches
    (short,) = watch["scale_no_stride"].launches
    assert (first.blocks, first.threads, first.unwritten) == (2, 64, {1: 0}), first
    assert np.array_equal(first.written[1], 2 * x)
    assert (short.blocks, short.threads, short.unwritten[1]) == (2, 32, 1_000 - 64), short
    assert in_place.unwritten == {} and np.array_equal(in_place.written[1], 2 * x), in_place
    assert len(in_place.config) == 3 and in_place.device_args == [0, 1] and in_place.host_args == []
    assert host.host_args == [0, 1] and host.device_args == []
    assert same_memory(d_x, d_x[:]) and not same_memory(d_x, d_x[:10]) and not same_memory(d_x, d_out)

    try:                                                  # a name that is not a kernel fails at once
        with watch_kernels({"scale": HostScale()}, {"scale": (1,)}):
            raise SystemExit("entered the block with a host stand-in")
    except AssertionError as err:
        assert "HostScale" in str(err)
    try:
        with watch_kernels({}, {"scale": (1,)}):
            pass
    except AssertionError as err:
        assert "scale is not defined" in str(err)
    ns = {"scale": scale}
    try:                                                  # an error in the block still restores the kernel
        with watch_kernels(ns, {"scale": (1,)}):
            raise KeyError("boom")
    except KeyError:
        pass
    assert ns["scale"] is scale
    print("sim ok")
''')

GPU_CLASS_SCRIPT = textwrap.dedent('''
    from numba import config, cuda
    from techday.labtools import is_cuda_kernel

    assert not config.ENABLE_CUDASIM
    @cuda.jit
    def kernel(x):
        pass

    @cuda.jit(device=True)
    def device_function(x):
        return x

    assert is_cuda_kernel(kernel), type(kernel)
    assert not is_cuda_kernel(device_function) and not is_cuda_kernel(kernel.py_func)
    print("dispatcher ok")
''')


def _run(script: str, sim: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT)
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)


def test_watched_kernels_in_the_simulator():
    out = _run(SIM_SCRIPT, sim=True)
    assert out.returncode == 0 and "sim ok" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]


def test_numba_cuda_dispatcher_is_a_kernel_without_a_gpu():
    out = _run(GPU_CLASS_SCRIPT, sim=False)
    assert out.returncode == 0 and "dispatcher ok" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
