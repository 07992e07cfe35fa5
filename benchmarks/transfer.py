"""Host-device transfers: pageable and pinned host memory, both directions, and device to device.

Bytes: the buffer's size for host-device copies (they cross the PCIe or NVLink-C2C link once; no
device limit is derived for the link, so they carry no fraction), twice the size for a
device-to-device copy (it reads and writes DRAM, as STREAM copy counts it). Pinned (page-locked)
host memory lets the GPU's copy engines read it directly; pageable memory goes through a staging
buffer and usually reaches less (nvbandwidth measures the same pairs). GPU tier only.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from techday.bench.core import Impl, Kernel, poison, register_output
from techday.bench.kit import device_poison, pattern


def kernels(plan):
    nbytes = 4096 if plan.tiny else (plan.transfer_bytes or 64 * 2**20)
    n = nbytes // 4

    def inputs():
        return {"h": pattern(n, 8, np.float32)}

    def reference(inp):
        return inp["h"]

    def pinned_copy(h):
        p = cuda.pinned_array(h.shape, h.dtype)
        p[:] = h
        return p

    # Pinned copies are enqueued asynchronously on the default stream, so the host returns at once and
    # the copy runs between the events like a kernel; a pageable copy is synchronous by nature (the
    # driver stages it through a pinned buffer), which is what it measures.
    def h2d(pinned):
        def make(inp):
            h = pinned_copy(inp["h"]) if pinned else inp["h"]
            d = device_poison(n, np.float32)
            stream = cuda.default_stream() if pinned else 0
            return (lambda: d.copy_to_device(h, stream=stream)), d.copy_to_host

        return make

    def d2h(pinned):
        def make(inp):
            d = cuda.to_device(inp["h"])
            h = pinned_copy(poison(n, np.float32, register=False)) if pinned else poison(n, np.float32, register=False)
            register_output(h)
            stream = cuda.default_stream() if pinned else 0
            return (lambda: d.copy_to_host(h, stream=stream)), (lambda: np.array(h))

        return make

    def d2d(inp):
        src = cuda.to_device(inp["h"])
        dst = device_poison(n, np.float32)
        # Enqueued on the default stream like the pinned copies (cuMemcpyDtoDAsync), so the host never
        # waits inside the events, whatever the driver does for the plain call. The plain call gave
        # 732 GB/s, 15 % of an H200's bandwidth, for 64 MiB; why is not known yet (the next GPU run says
        # whether this was it).
        stream = cuda.default_stream()
        return (lambda: dst.copy_to_device(src, stream=stream)), dst.copy_to_host

    size = f"{nbytes / 2**20:.0f} MiB"
    common = dict(dtype="float32", size=size, flops=0, inputs=inputs, reference=reference, rtol=0.0, cold=False)
    return [
        Kernel("transfer", "h2d-pageable", bytes=nbytes, limit=None, impls=[Impl("numba-cuda", "gpu", h2d(False))],
               **common),
        Kernel("transfer", "h2d-pinned", bytes=nbytes, limit=None, impls=[Impl("numba-cuda", "gpu", h2d(True))],
               **common),
        Kernel("transfer", "d2h-pageable", bytes=nbytes, limit=None, impls=[Impl("numba-cuda", "gpu", d2h(False))],
               **common),
        Kernel("transfer", "d2h-pinned", bytes=nbytes, limit=None, impls=[Impl("numba-cuda", "gpu", d2h(True))],
               **common),
        Kernel("transfer", "d2d", bytes=2 * nbytes, impls=[Impl("numba-cuda", "gpu", d2d, note="read + write counted")],
               **common),
    ]
