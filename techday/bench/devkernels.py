"""The harness's own device kernels: the read-only L2 flush and the busy (sleeping) kernel.

Imported only once the tier is chosen (it imports Numba's CUDA target), by :mod:`techday.bench.core`.
Defined at module level, so the CUDA simulator runs them too.
"""

from numba import cuda


@cuda.jit
def flush(buf, out):
    """Reads every element of ``buf``; writes ``out`` only if an element is -123456789, which never
    happens (the buffer holds zeros): a read-only pass that leaves no dirty lines in L2."""
    i = cuda.grid(1)
    if i < buf.shape[0] and buf[i] == -123456789:
        out[0] = i


@cuda.jit
def sleep(n):
    """One thread sleeps ``n`` times about 1 us (the hardware sleeps between 0 and 2x the request)."""
    for _ in range(n):
        cuda.nanosleep(1000)
