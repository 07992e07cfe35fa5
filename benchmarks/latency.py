"""Launch latency: the host's cost of launching an (almost) empty kernel, Numba vs CuPy vs PyTorch.

Each timed call launches the kernel ``LAUNCHES`` times back to back and then synchronises, timed
with ``perf_counter`` on the host: the figure is microseconds per launch, lower is better. The GPU
finishes an empty kernel faster than the host can launch the next, so this measures the launch path
of each library (argument handling, the driver call), which is what small kernels pay. PyTorch has
no empty kernel: it fills a one-element tensor, the smallest kernel it launches. GPU tier only.
"""

from __future__ import annotations

import warnings

from numba import cuda

from techday.bench.core import Impl, Kernel

LAUNCHES = 200


@cuda.jit
def empty(x):
    pass


def kernels(plan):
    def numba_cuda(inp):
        d = cuda.device_array(1, dtype="float32")
        # Configured once, outside the loop: numba-cuda checks occupancy (and warns about a 1-thread
        # grid) when a launch is configured, which would otherwise happen inside every timed launch.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            launch = empty[1, 1]

        def run():
            for _ in range(LAUNCHES):
                launch(d)

        return run, lambda: None

    def cupy_impl(inp):
        import cupy as cp

        kernel = cp.RawKernel(r'extern "C" __global__ void empty(float* x) {}', "empty")
        d = cp.zeros(1, dtype=cp.float32)

        def run():
            for _ in range(LAUNCHES):
                kernel((1,), (1,), (d,))

        return run, lambda: None

    def torch_impl(inp):
        import torch

        t = torch.zeros(1, device="cuda")

        def run():
            for _ in range(LAUNCHES):
                t.zero_()

        return run, lambda: None

    return [Kernel("latency", "empty-launch", "-", f"{LAUNCHES} launches, then synchronize", bytes=0, flops=0,
                   inputs=lambda: {}, reference=None, metric="us", limit=None, cold=False, timer="host",
                   calls_per_run=LAUNCHES,
                   impls=[Impl("numba-cuda", "gpu", numba_cuda), Impl("cupy", "gpu", cupy_impl, ("cupy",)),
                          Impl("torch", "gpu", torch_impl, ("torch",), note="fill of one element")])]
