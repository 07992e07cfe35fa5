# %% [markdown] key="streams-concurrency"
# # 06 Streams and concurrency
#
# Until now every lab did one thing at a time: copy the input to the GPU, run a kernel, copy the
# result back, and wait. Meanwhile most of the GPU sat idle: while data crosses the PCIe bus the
# multiprocessors have nothing to do, and while a kernel runs the bus is quiet. A GPU has separate
# **copy engines** and can copy in, compute and copy out at the same time, if you give it independent
# work on several **streams**. This lab builds such a pipeline, checks that it is right (the hard
# part), measures it honestly, and shows how to look at it in a profiler timeline.
#
# ## You will learn
# - why host memory must be **pinned** (page-locked) for fast, asynchronous copies: `cuda.pinned_array`;
# - CUDA **streams**: queues of work that run in order inside a stream and may run concurrently
#   across streams; asynchronous copies with `stream=`, launches on a stream;
# - to split work into chunks and overlap copies with compute on several streams, without races;
# - **events**: time stamps on a stream, for timing and for ordering one stream after another;
# - to mark code with **NVTX** ranges and read the timeline of Nsight Systems.
#
# **How this lab works**: read, run the examples, then solve the three exercises.
# In each exercise cell, delete `raise NotImplementedError()` and write your code.
# The cell after it runs the tests; do not edit test cells.
# The grader also runs hidden tests, on sizes you do not see here.
#
# Points: exercise 1: 2, exercise 2: 4, exercise 3: 3 (9 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# The code cell below chooses the **tier** and prints it. On the CPU tier Numba's CUDA simulator
# accepts every stream call (streams, pinned arrays, events, asynchronous copies), but it does each
# piece of work at once, in the order it is asked for: nothing overlaps, nothing races, and events
# measure nothing. This lab therefore also checks the *order* of your stream work with a recorder
# that applies CUDA's rules. Run this cell first.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("06.title", "06 Streams and concurrency"))

# %% nbgrader="locked" id="imports"
import contextlib
import math
import time
import warnings

import numpy as np
from numba import cuda

from techday.i18n import msg
from techday.labtools import assert_close, time_cpu
from techday.streamcheck import StreamTrace

warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")

try:
    import nvtx
    NVTX_WHY = ""
except ImportError:  # the ranges are only marks for a profiler: the code runs the same without them
    nvtx = None
    NVTX_WHY = msg("06.nvtx_not_installed", "the nvtx package is not installed (pip install nvtx)")

if lab.on_gpu:
    where = msg("06.run_on_gpu", "kernels and streams run on the GPU")
else:
    where = msg("06.run_in_simulator", "kernels and streams run in the CUDA simulator (CPU tier): "
                "everything happens at once and in order, so the timings below are not GPU figures")
print(where + ("" if nvtx else msg("06.nvtx_ranges_off", " | NVTX ranges off: {why}", why=NVTX_WHY)))

# %% [markdown] key="pinned-memory"
# ## 1. Pinned memory
#
# An ordinary NumPy array lives in **pageable** memory: the operating system may move its pages or
# swap them out. The GPU's copy engine reads host memory directly (DMA) and needs pages that stay
# put, so a copy from pageable memory goes in two steps: the driver copies into a hidden pinned
# staging buffer, then the engine copies that to the device, and the call does not return before the
# driver has staged all of the data, even when it is given a stream. From **pinned**
# (page-locked) memory the engine copies in one step, at the bus's full speed, and the copy can be
# **asynchronous**: the call only queues it and returns.
#
# ```python
# h = cuda.pinned_array(n, dtype=np.float32)      # allocate pinned host memory
# with cuda.pinned(existing_array):               # or pin an existing array for a while
#     d = cuda.to_device(existing_array, stream=s)
# ```
#
# Pinned memory is a scarce resource of the operating system: allocate it once and reuse it, do not
# pin gigabytes. On the GPU tier the cell below measures
# both kinds of copy; the simulator has no bus, and its `pinned_array` is an ordinary NumPy array.

# %%
n_copy = lab.size(full=2**25, ci=2**14)   # 128 MiB of float32 at full scale
h_pageable = np.random.default_rng(0).random(n_copy, dtype=np.float32)
h_pinned = cuda.pinned_array(n_copy, dtype=np.float32)
h_pinned[:] = h_pageable
if lab.gpu_only(msg("06.gpu_only_bandwidth", "measuring host-to-device bandwidth from pageable and from pinned memory")):
    d_copy = cuda.device_array(n_copy, np.float32)
    for what, host in ((msg("06.what_h2d_pageable", "host -> device from pageable memory"), h_pageable),
                       (msg("06.what_h2d_pinned", "host -> device from pinned memory"), h_pinned)):
        t = time_cpu(lambda h: (d_copy.copy_to_device(h), cuda.synchronize()), host, repeat=5,
                     what=what, label=lab.timing_label() + msg("06.label_host_clock", ", host clock"))
        print(msg("06.h2d_rate", "{timing}  ->  {gbs:.1f} GB/s  (n * 4 B / time)", timing=t, gbs=host.nbytes / t.median / 1e9))
else:
    print(msg("06.pinned_array_here", "pinned_array here: {kind} of {nbytes:,} bytes. "
              "On a PCIe 4.0 x16 GPU, expect about 25 GB/s from pinned memory and often half that from pageable memory.",
              kind=f"{type(h_pinned).__module__}.{type(h_pinned).__name__}", nbytes=h_pinned.nbytes))

# %% [markdown] key="streams"
# ## 2. Streams
#
# A **stream** is a queue of GPU work. The rules, which the rest of this lab relies on:
#
# 1. work in **one** stream runs in the order it was queued, each piece after the previous one ends;
# 2. work in **different** streams may run in any order, or at the same time;
# 3. every call without a stream uses the **default stream** (`stream=0`, the legacy default
#    stream), which waits for all other streams and makes them wait for it: it serialises everything;
# 4. kernel launches are **asynchronous**, always, with or without a stream: the call queues the
#    kernel and returns. Copies are asynchronous when they are given a stream and the host memory is
#    pinned. Either way the host must wait, `stream.synchronize()`, before it reads the result.
#
# ```python
# s = cuda.stream()
# d_x = cuda.to_device(h_x, stream=s)          # queue the copy in
# kernel[blocks, threads, s](d_x, d_y)         # the stream is the third launch parameter
# d_y.copy_to_host(h_y, stream=s)              # queue the copy out (h_y pinned)
# s.synchronize()                              # wait: only now is h_y complete
# ```
#
# With one stream this is still sequential. With the input in **chunks** and one stream per chunk,
# chunk 2 can be copied in while chunk 1 is computed and chunk 0 copied out: a pipeline. In a
# timeline (time runs to the right):
#
# ```
# one stream:   [ H2D 0 1 2 3 ][ kernel 0 1 2 3 ][ D2H 0 1 2 3 ]
# four streams: [H2D 0][K 0 ][D2H 0]
#                      [H2D 1][K 1 ][D2H 1]
#                             [H2D 2][K 2 ][D2H 2]
#                                    [H2D 3][K 3 ][D2H 3]      -> about half the time here
# ```
#
# The kernel of this lab transforms every element, `y = sqrt(x) * 2 + 1`; it is a grid-stride loop
# (lab 02), so any grid covers any chunk.

# %% nbgrader="locked" id="transform_kernel"
@cuda.jit
def transform_kernel(x, out):
    """out[i] = sqrt(x[i]) * 2 + 1 for every element, grid-stride loop."""
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = math.sqrt(x[i]) * 2 + 1


def transform_reference(x):
    return np.sqrt(np.asarray(x, np.float64)) * 2 + 1


THREADS = 128
BLOCKS = 32 * lab.gpu.multiprocessor_count if lab.on_gpu else 4   # the simulator: small grids
print(msg("06.launch_configuration", "transform_kernel launches {blocks} blocks x {threads} threads per chunk",
          blocks=BLOCKS, threads=THREADS))

# %% [markdown] key="stream-bugs-lab-finds"
# ### Stream bugs, and how this lab finds them
#
# A stream bug is a **race**: two pieces of work that touch the same memory, with nothing to order
# them. On a GPU it gives a wrong answer sometimes, depending on timing; in the simulator never,
# because the simulator does everything at once, in order. So on every tier the tests also run your
# code through `techday.streamcheck.StreamTrace`, which records each copy, launch and
# synchronisation with its stream and memory, and checks them against the rules above. Here it
# checks three versions of one chunk's work: the copy back on the kernel's stream; on another stream
# that first waits for an event recorded after the kernel; and on another stream with nothing to
# order it. The first two give right values on every tier, every run, so the cell asserts them. The
# third is a race: the simulator gives right values, a GPU may copy `d_y` back before the kernel has
# written it, so the cell only reports what it got.

# %%
def one_chunk(h_x, copy_back):
    """One chunk's work; copy_back: "same stream", "event" (another stream, ordered) or "unordered"."""
    streams = [cuda.stream(), cuda.stream()]
    h_y = cuda.pinned_array(h_x.shape, h_x.dtype)
    d_x = cuda.to_device(h_x, stream=streams[0])
    d_y = cuda.device_array_like(d_x, stream=streams[0])
    transform_kernel[BLOCKS, THREADS, streams[0]](d_x, d_y)
    copy_stream = streams[0] if copy_back == "same stream" else streams[1]
    if copy_back == "event":
        kernel_done = cuda.event()
        kernel_done.record(streams[0])       # marks the end of the work queued on stream 0 so far
        kernel_done.wait(copy_stream)        # later work on the copy stream waits for it
    d_y.copy_to_host(h_y, stream=copy_stream)
    copy_stream.synchronize()                # the host waits for the copy: only now is h_y complete
    return h_y


h_demo = np.random.default_rng(1).random(1_000)
for copy_back, what in (("same stream", msg("06.copy_back_same_stream", "copy back on the kernel's stream")),
                        ("event", msg("06.copy_back_after_event", "copy back on another stream, after an event")),
                        ("unordered", msg("06.copy_back_unordered", "copy back on another stream, unordered"))):
    trace = StreamTrace(cuda)
    with trace.patch(globals(), kernels={"transform_kernel": (1,)}):   # argument 1 is written
        h_out = one_chunk(h_demo, copy_back)
    problems = trace.problems(read_on_host=[h_out])
    assert bool(problems) == (copy_back == "unordered"), problems
    if not problems:
        assert_close(h_out, transform_reference(h_demo), what)    # ordered: right on every tier
    right = np.allclose(h_out, transform_reference(h_demo))
    order = msg("06.order_ok", "order OK") if not problems else msg("06.order_not_guaranteed", "order NOT guaranteed")
    values = msg("06.values_right", "values right") if right else msg("06.values_wrong", "values WRONG")
    race = msg("06.race_this_time", " this time (a race: on a GPU any run may differ)") if problems else ""
    print(f"{what}: {order}; {values}{race}")
    for p in problems:
        print("   ", p)
print(msg("06.recorded_work", "recorded work of the last run:\n{summary}", summary=trace.summary()))

# %% [markdown] key="split-n-elements-into"
# ## Exercise 1: split `n` elements into chunks (2 points)
#
# Write `chunk_bounds(n, chunks)` that splits the indices `0 ... n - 1` into contiguous chunks and
# returns a list of `(start, stop)` pairs, in order, such that:
#
# 1. the chunks cover every index exactly once: the first starts at 0, each starts where the
#    previous stopped, the last stops at `n`;
# 2. there are `min(chunks, n)` chunks (no empty ones; `n = 0` gives `[]`), as equal as possible:
#    sizes differ by at most 1, the larger ones first. `chunk_bounds(10, 3)` is
#    `[(0, 4), (4, 7), (7, 10)]`;
# 3. `chunks < 1` raises `ValueError`.
#
# Use integers only (`divmod`). The classic bug drops the last `n % chunks` elements.

# %% nbgrader="solution" id="chunk_bounds"
def chunk_bounds(n, chunks):
    """[(start, stop), ...]: min(chunks, n) contiguous, near-equal chunks covering range(n)."""
    ### BEGIN SOLUTION
    if chunks < 1:
        raise ValueError(f"chunks must be at least 1, not {chunks}")
    count = min(chunks, n)
    if count == 0:
        return []
    base, extra = divmod(n, count)
    bounds, start = [], 0
    for k in range(count):
        stop = start + base + (1 if k < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds
    ### END SOLUTION

# %% nbgrader="tests" id="chunk_bounds_tests" points=2
"""chunk_bounds covers range(n) with min(chunks, n) contiguous chunks whose sizes differ by at most one,
larger first, for n = 10, 12, 2, 0 and 1_000_003, and raises ValueError for chunks = 0; hidden: n beyond
2**53, one chunk, more chunks than elements, negative chunks; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg


def check_chunks(n, chunks, got):
    assert isinstance(got, list), msg("06.chunks_not_list", "chunk_bounds({n}, {chunks}) must return a list, not {kind}",
                                   n=n, chunks=chunks, kind=type(got).__name__)
    assert len(got) == min(chunks, n), msg("06.chunks_count", "chunk_bounds({n}, {chunks}) gave {count} chunks, expected {want}",
                                         n=n, chunks=chunks, count=len(got), want=min(chunks, n))
    start = 0
    for a, b in got:
        assert a == start, msg("06.chunk_start", "chunk_bounds({n}, {chunks}): a chunk starts at {a}, expected {start}: {head}",
                                 n=n, chunks=chunks, a=a, start=start, head=got[:5])
        assert b > a, msg("06.chunk_empty", "chunk_bounds({n}, {chunks}): empty chunk ({a}, {b})", n=n, chunks=chunks, a=a, b=b)
        assert all(int(v) == v and not isinstance(v, float) for v in (a, b)), msg("06.chunk_not_integers", "({a!r}, {b!r}) are not integers", a=a, b=b)
        start = b
    assert start == n, msg("06.chunks_drop_elements", "chunk_bounds({n}, {chunks}) stops at {start}, not n = {n}: elements dropped",
                                  n=n, chunks=chunks, start=start)
    sizes = [b - a for a, b in got]
    if sizes:
        assert max(sizes) - min(sizes) <= 1, msg("06.chunk_sizes_differ", "chunk_bounds({n}, {chunks}): sizes {sizes} differ by more than 1",
                                                     n=n, chunks=chunks, sizes=sizes[:8])
        assert sizes == sorted(sizes, reverse=True), msg("06.chunks_larger_first", "chunk_bounds({n}, {chunks}): put the larger chunks first",
                                                          n=n, chunks=chunks)


assert chunk_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)], msg("06.chunks_10_3", "chunk_bounds(10, 3) gave {got}", got=chunk_bounds(10, 3))
for n_c, c_c in ((12, 4), (2, 5), (0, 3), (1_000_003, 8), (7, 7)):
    check_chunks(n_c, c_c, chunk_bounds(n_c, c_c))
try:
    chunk_bounds(10, 0)
except ValueError:
    pass
else:
    raise AssertionError(msg("06.chunks_zero_must_raise", "chunk_bounds(10, 0) must raise ValueError"))
### BEGIN HIDDEN TESTS
for n_c, c_c in ((2**60 + 7, 3), (1, 1), (5, 1), (3, 1_000), (4_099, 64), (65, 64), (63, 64)):
    check_chunks(n_c, c_c, chunk_bounds(n_c, c_c))
# Drawn at every grading (techday.draw): the sizes above are published with the course.
import techday.draw

rd = techday.draw.rng("06.chunk_bounds_tests")
for n_c, c_c in ((int(rd.integers(1, 100)), int(rd.integers(1, 130))), (int(rd.integers(100, 10**6)), int(rd.integers(1, 100))),
                 (int(rd.integers(2**53, 2**62)), int(rd.integers(2, 20)))):
    check_chunks(n_c, c_c, chunk_bounds(n_c, c_c))
n_big = 2**60 + 7  # 2**60 + 7 = 3 * base + 2: sizes base + 1, base + 1, base
assert chunk_bounds(n_big, 3)[-1] == (n_big - n_big // 3, n_big), msg("06.hidden_chunks_beyond_2_53", "hidden: integer arithmetic beyond 2**53")
for bad in (-1, -8):
    try:
        chunk_bounds(10, bad)
    except ValueError:
        continue
    raise AssertionError(msg("06.hidden_chunks_negative_must_raise", "hidden: chunk_bounds(10, {bad}) must raise ValueError", bad=bad))
### END HIDDEN TESTS
print(msg("06.chunk_bounds_passed", "chunk_bounds: all visible tests passed."))

# %% [markdown] key="pipeline-over-several-streams"
# ## Exercise 2: a pipeline over several streams (4 points)
#
# Write `pipeline(x, n_streams)` that returns `transform(x)` (that is `sqrt(x) * 2 + 1`, element by
# element) for a 1-D host array `x`, computed in chunks that overlap on the GPU:
#
# 1. allocate the output as **pinned** host memory of `x`'s shape and dtype (`cuda.pinned_array`);
# 2. make `n_streams` streams and split `x` with `chunk_bounds(x.size, n_streams)`: chunk `k` goes
#    to stream `k`;
# 3. for each chunk, all on **its** stream: copy the chunk in (`cuda.to_device(..., stream=s)`),
#    allocate its output on the device, launch `transform_kernel[BLOCKS, THREADS, s]`, and copy the
#    result into its slice of the pinned output (`d.copy_to_host(out[a:b], stream=s)`);
# 4. only after queueing all chunks, synchronise every stream, then return the pinned output.
#
# The tests check the values on sizes that do not divide evenly, and run your function through
# `StreamTrace`: every copy and launch must be on a stream you created (not the default stream,
# which would serialise them), each chunk's work ordered on its own stream, and every stream
# synchronised before the result is used.

# %% nbgrader="solution" id="pipeline"
def pipeline(x, n_streams):
    """transform(x) in chunks, chunk k copied in, computed and copied out on stream k; pinned output."""
    ### BEGIN SOLUTION
    out = cuda.pinned_array(x.shape, dtype=x.dtype)
    streams = [cuda.stream() for _ in range(n_streams)]
    for (a, b), s in zip(chunk_bounds(x.size, n_streams), streams):
        d_x = cuda.to_device(x[a:b], stream=s)
        d_y = cuda.device_array(b - a, dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS, s](d_x, d_y)
        d_y.copy_to_host(out[a:b], stream=s)
    for s in streams:
        s.synchronize()
    return out
    ### END SOLUTION

# %% nbgrader="tests" id="pipeline_tests" points=4
"""pipeline returns sqrt(x) * 2 + 1 in pinned memory for 10_001 float64 values on 4 streams and 1_000
float32 values on 3 streams, with every copy and launch on its chunk's own stream, one launch per chunk,
every stream synchronised before the result is read, and x unchanged; hidden: n = 7 on 3 streams, 2
values on 4 streams, 1 stream, 5_003 values on 8 streams, and the result is what transform_kernel
wrote: its launches fill NaN-poisoned outputs that add up to all n values, and nothing else; and sizes,
stream counts and types drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.i18n import msg
from techday.labtools import assert_close, watch_kernels
from techday.streamcheck import LEGACY, StreamTrace


def run_pipeline(n, n_streams, dtype, seed):
    x = np.random.default_rng(seed).random(n).astype(dtype) * 100
    x0 = x.copy()
    trace = StreamTrace(cuda)
    with watch_kernels(globals(), {"transform_kernel": (1,)}) as watch, \
            trace.patch(globals(), kernels={"transform_kernel": (1,)}):
        out = pipeline(x, n_streams)
    what = msg("06.pipeline_what", "pipeline(n={n:,} {dtype}, {streams} streams)", n=n, dtype=np.dtype(dtype).name, streams=n_streams)
    assert isinstance(out, np.ndarray), msg("06.pipeline_not_array", "{what} returned {kind}, not a host NumPy array", what=what, kind=type(out).__name__)
    assert out.shape == x.shape and out.dtype == x.dtype, msg("06.pipeline_shape_dtype", "{what} returned {shape} {dtype}", what=what, shape=out.shape, dtype=out.dtype)
    assert np.array_equal(x, x0), msg("06.pipeline_changed_x", "{what} changed x", what=what)
    assert trace.is_pinned(out), msg("06.pipeline_not_pinned", "{what}: return the pinned array from cuda.pinned_array (asynchronous copies need it)", what=what)
    launches = [op for op in trace.ops if op.kind == "kernel"]
    chunks = min(n_streams, n)
    assert len(launches) == chunks, msg("06.pipeline_launch_count", "{what}: {count} launches of transform_kernel, expected one per chunk ({chunks})",
                                           what=what, count=len(launches), chunks=chunks)
    on_default = [op.describe() for op in trace.ops if op.stream == LEGACY]
    assert not on_default, msg("06.pipeline_default_stream", "{what}: work on the default stream serialises every stream: {ops}",
                               what=what, ops=on_default[:3])
    assert len(trace.streams_used("kernel")) == chunks, \
        msg("06.pipeline_kernel_streams", "{what}: the chunks' kernels ran on {used} streams, expected {chunks}, one each",
            what=what, used=len(trace.streams_used("kernel")), chunks=chunks)
    problems = trace.problems(read_on_host=[out])
    assert not problems, msg("06.pipeline_order_not_guaranteed", "{what}: the order of the stream work is not guaranteed:\n  {problems}",
                             what=what, problems="\n  ".join(problems[:4]))
    tol = dict(rtol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    assert_close(out, transform_reference(x0), what, **tol)
    return what, out, watch["transform_kernel"].launches


runs = [run_pipeline(10_001, 4, np.float64, 1), run_pipeline(1_000, 3, np.float32, 2)]
### BEGIN HIDDEN TESTS


def check_from_kernel(what, out, launches):
    """The kernel wrote every element of its outputs, they hold n values in all, and out is made of them."""
    unwritten = sum(launch.unwritten.get(1, 0) for launch in launches)
    assert unwritten == 0, msg("06.hidden_pipeline_unwritten", "hidden: {what}: transform_kernel left {unwritten} elements of its outputs unwritten",
                               what=what, unwritten=unwritten)
    written = np.concatenate([launch.written[1].ravel() for launch in launches]) if launches else np.zeros(0)
    assert written.size == out.size, msg("06.hidden_pipeline_written_count", "hidden: {what}: transform_kernel's launches wrote {written} values for "
                                      "{n} elements: launch it on every chunk, all of it", what=what, written=written.size, n=out.size)
    assert np.array_equal(np.sort(out), np.sort(written.astype(out.dtype))), msg(
        "06.hidden_pipeline_not_from_kernel", "hidden: {what}: the result is not what transform_kernel wrote: copy each "
        "chunk's kernel output into the pinned result (copy_to_host), do not compute it on the host", what=what)


for what_v, out_v, launches_v in runs:
    check_from_kernel(what_v, out_v, launches_v)
for n_h, s_h, dt_h in ((7, 3, np.float64), (2, 4, np.float32), (4_099, 1, np.float64), (5_003, 8, np.float32)):
    check_from_kernel(*run_pipeline(n_h, s_h, dt_h, n_h))
# Drawn at every grading (techday.draw): the sizes and stream counts above are published with the course.
# 2 to 8 streams over a size that does not divide evenly, and more streams than values; float32 or float64.
import techday.draw

rd = techday.draw.rng("06.pipeline_tests")
s_d = int(rd.integers(2, 9))
n_d = int(rd.integers(s_d + 1, 6_000))
if n_d % s_d == 0:
    n_d += 1
for n_d, s_d in ((n_d, s_d), (int(rd.integers(2, 4)), int(rd.integers(4, 9)))):
    check_from_kernel(*run_pipeline(n_d, s_d, (np.float32, np.float64)[int(rd.integers(0, 2))], int(rd.integers(0, 2**31))))
### END HIDDEN TESTS
print(msg("06.pipeline_passed", "pipeline: all visible tests passed."))

# %% [markdown] key="events-timing-ordering"
# ## 3. Events: timing and ordering
#
# An **event** is a marker in a stream. `event.record(s)` queues it; when the GPU reaches it, it
# takes a time stamp with the GPU's own clock. Then:
#
# - `stop.synchronize()` makes the host wait until the GPU has passed `stop`;
# - `start.elapsed_time(stop)` is the time between the GPU reaching the two events, in
#   milliseconds, on the device's clock (lab 02's `time_cuda`). It leaves out host delays only while
#   the GPU has queued work to do: if the GPU runs out of work between the events and waits for the
#   host (Python between the launches, a launch that takes longer than the kernel before it), that
#   wait is counted too. Events around one short kernel on an idle GPU therefore measure its launch
#   overhead as well (the cell below first queues one untimed launch, so that the GPU is busy while
#   the host queues the timed one);
# - `event.wait(s2)` makes all later work on stream `s2` wait until the event is reached, which
#   orders one stream after another without stopping the host:
#
# ```python
# ready = cuda.event()
# kernel_a[blocks, threads, s1](d_a)
# ready.record(s1)
# ready.wait(s2)                      # s2 waits for kernel_a, the host does not
# kernel_b[blocks, threads, s2](d_a, d_b)
# ```
#
# In Numba's simulator (a quirk of the simulator, not a CUDA rule) events exist but measure nothing:
# `elapsed_time` returns -1 ms. A timing shown on the CPU tier must come from the host's clock and
# say so.

# %%
start, stop = cuda.event(), cuda.event()
d_ev = cuda.to_device(np.random.default_rng(2).random(lab.size(full=2**24, ci=2_000)))
d_ev_out = cuda.device_array_like(d_ev)
transform_kernel[BLOCKS, THREADS](d_ev, d_ev_out)   # keeps the GPU busy while the host queues what is timed
start.record()
transform_kernel[BLOCKS, THREADS](d_ev, d_ev_out)
stop.record()
stop.synchronize()
ms = start.elapsed_time(stop)
if lab.on_gpu:
    from techday.tier import shown_label  # the record's English label, in this run's language
    print(msg("06.event_timing", "transform_kernel on {n:,} values: {ms:.3f} ms [{label}, CUDA events] = "
              "{rate:.0f} GB/s (2 * n * 8 B / time)", n=d_ev.size, ms=ms, label=shown_label(lab.timing_label()),
              rate=2 * d_ev.nbytes / (ms / 1e3) / 1e9))
else:
    print(msg("06.event_in_simulator", "start.elapsed_time(stop) in the simulator: {ms} ms. Not a time: events measure "
              "nothing here.", ms=ms))

# %% [markdown] key="measurement-that-says-was"
# ## Exercise 3: a measurement that says where it was taken (3 points)
#
# Write `measure(fn, repeat=5, warmup=1)` that calls `fn()` `warmup` times untimed, then `repeat`
# times timed, and returns a dict:
#
# | key | value |
# | --- | --- |
# | `"tier"` | `lab.tier` |
# | `"clock"` | `"cuda-events"` on the GPU tier, `"host"` on the CPU tier |
# | `"median_ms"` | the median of the `repeat` times, in milliseconds (a float) |
# | `"runs"` | `repeat` |
# | `"label"` | `lab.timing_label()`: it says "not a GPU figure" on the CPU tier |
#
# On the GPU tier time each call with two events recorded on the default stream around it
# (`stop.synchronize()`, then `start.elapsed_time(stop)`); on the CPU tier with `time.perf_counter()`
# around it. The events time from the moment the GPU reaches `start`: if it is idle then, the time
# includes launching `fn`'s work from Python, so for work shorter than its launch the figure is the
# launch, not the kernel (queue several launches in `fn` to time a short kernel). Use the median, not
# the mean: one slow run (another process, a page fault) would move a mean far away.

# %% nbgrader="solution" id="measure"
def measure(fn, repeat=5, warmup=1):
    """Median time of fn() over repeat calls after warmup calls, in a record that names tier and clock."""
    ### BEGIN SOLUTION
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if lab.on_gpu:
            start, stop = cuda.event(), cuda.event()
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return {"tier": lab.tier, "clock": "cuda-events" if lab.on_gpu else "host",
            "median_ms": float(np.median(times)), "runs": repeat, "label": lab.timing_label()}
    ### END SOLUTION

# %% nbgrader="tests" id="measure_tests" points=3
"""measure returns tier, clock, median_ms, runs and label; on the CPU tier it times with the host clock
(a 20 ms sleep measures about 20 ms, never -1), labels the figure as not a GPU figure, skips warm-up
calls and takes the median; on a GPU it uses CUDA events; hidden: other repeat and warm-up counts, an
outlier run."""
from techday.i18n import msg
import time
import numpy as np
from numba import cuda
from techday.labtools import time_cpu


class Calls:
    """A function that sleeps the given milliseconds on successive calls and counts them."""

    def __init__(self, *ms):
        self.ms, self.count = list(ms), 0

    def __call__(self):
        time.sleep(self.ms[min(self.count, len(self.ms) - 1)] / 1e3)
        self.count += 1


def check_record(rec, repeat):
    assert isinstance(rec, dict), msg("06.measure_not_dict", "measure must return a dict, not {kind}", kind=type(rec).__name__)
    missing = {"tier", "clock", "median_ms", "runs", "label"} - set(rec)
    assert not missing, msg("06.measure_record_lacks", "measure's record lacks {missing}", missing=sorted(missing))
    assert rec["tier"] == lab.tier, msg("06.measure_tier", "tier {got!r}, this run is on {tier!r}", got=rec["tier"], tier=lab.tier)
    assert rec["label"] == lab.timing_label(), msg("06.measure_label", "label {got!r}: use lab.timing_label()", got=rec["label"])
    assert rec["clock"] == ("cuda-events" if lab.on_gpu else "host"), msg("06.measure_clock", "clock {got!r} on the {tier} tier",
                                                                                    got=rec["clock"], tier=lab.tier)
    assert rec["runs"] == repeat, msg("06.measure_runs", "runs {got!r}, expected {repeat}", got=rec["runs"], repeat=repeat)
    assert isinstance(rec["median_ms"], float) and rec["median_ms"] > 0, \
        msg("06.measure_positive_float", "median_ms {got!r}: a time is a positive float (the simulator's events give -1)",
            got=rec["median_ms"])


if lab.on_gpu:
    d_m = cuda.to_device(np.random.default_rng(3).random(2**22))
    d_m_out = cuda.device_array_like(d_m)
    launch = lambda: transform_kernel[BLOCKS, THREADS](d_m, d_m_out)   # noqa: E731
    rec = measure(launch, repeat=5)
    check_record(rec, 5)
    host = time_cpu(lambda: (launch(), cuda.synchronize()), repeat=5)
    assert rec["median_ms"] <= host.median * 1e3 * 1.5 + 0.05, msg("06.measure_events_exceed_host", "event times cannot exceed the host's time by much")
else:
    fn = Calls(20)
    rec = measure(fn, repeat=3, warmup=1)
    check_record(rec, 3)
    assert fn.count == 4, msg("06.measure_call_count", "fn was called {count} times for warmup=1, repeat=3", count=fn.count)
    assert 18 <= rec["median_ms"] < 80, msg("06.measure_sleep_ms", "a 20 ms sleep measured {ms:.2f} ms: time in milliseconds",
                                              ms=rec["median_ms"])
    assert "not a GPU figure" in rec["label"], msg("06.measure_label_not_gpu", "label {got!r} must say that the figure is not a GPU figure: use lab.timing_label()", got=rec["label"])
    fn = Calls(300, 10, 10, 10)
    rec = measure(fn, repeat=3, warmup=1)
    assert rec["median_ms"] < 100, msg("06.measure_warmup_timed", "{ms:.1f} ms: the 300 ms warm-up call must not be timed", ms=rec["median_ms"])
### BEGIN HIDDEN TESTS
if lab.on_gpu:
    rec = measure(launch, repeat=7, warmup=2)
    check_record(rec, 7)
else:
    fn = Calls(5, 10, 10, 400, 10, 10)        # one outlier among five timed runs: the mean is about 90 ms
    rec = measure(fn, repeat=5, warmup=1)
    check_record(rec, 5)
    assert fn.count == 6, msg("06.hidden_measure_call_count", "hidden: fn was called {count} times for warmup=1, repeat=5", count=fn.count)
    assert rec["median_ms"] < 50, msg("06.hidden_measure_median", "hidden: {ms:.1f} ms: report the median, not the mean", ms=rec["median_ms"])
    fn = Calls(200, 200, 15)
    rec = measure(fn, repeat=2, warmup=2)
    check_record(rec, 2)
    assert rec["median_ms"] < 100, msg("06.hidden_measure_warmups_untimed", "hidden: both warm-up calls must be untimed")
### END HIDDEN TESTS
print(msg("06.measure_passed", "measure: all visible tests passed."))

# %% [markdown] key="overlap"
# ## 4. Does it overlap?
#
# Your `pipeline` allocates its pinned output and its device buffers on every call. Allocation is
# slow and can synchronise the device (pinning memory costs far more than copying it), so timing
# `pipeline` would mostly time allocations and hide the overlap. A production pipeline allocates
# once and reuses: `make_pipeline` below does exactly what your `pipeline` does, chunk by chunk on
# its own stream, but creates the streams, the pinned output and the device buffers once, outside
# the timed region; the timed call only queues copies and launches and waits.
#
# On a GPU, the cell runs it with 1, 2, 4 and 8 streams and reports the rate
# `2 * n * itemsize / time` (copy in plus copy out). With one stream nothing overlaps. With more,
# copies in one direction overlap kernels and copies in the other direction (GPUs with two copy
# engines do host-to-device and device-to-host at once), up to the point where the bus is the
# limit. Too many small chunks cost more in launches and copy set-up than they gain.

# %%
n_pipe = lab.size(full=2**25, ci=4_001)
x_pipe = cuda.pinned_array(n_pipe, np.float32)
x_pipe[:] = np.random.default_rng(4).random(n_pipe, dtype=np.float32)
assert_close(pipeline(x_pipe, 4), transform_reference(x_pipe), msg("06.pipeline_before_timing", "pipeline before timing"), rtol=1e-6)


def make_pipeline(n, dtype, n_streams):
    """Your pipeline's steps, with streams, pinned output and device buffers allocated once: run(x) only queues and waits."""
    bounds = chunk_bounds(n, n_streams)
    streams = [cuda.stream() for _ in bounds]
    out = cuda.pinned_array(n, dtype=dtype)
    d_xs = [cuda.device_array(b - a, dtype=dtype) for a, b in bounds]
    d_ys = [cuda.device_array(b - a, dtype=dtype) for a, b in bounds]

    def run(x):
        for (a, b), s, d_x, d_y in zip(bounds, streams, d_xs, d_ys):
            d_x.copy_to_device(x[a:b], stream=s)
            transform_kernel[BLOCKS, THREADS, s](d_x, d_y)
            d_y.copy_to_host(out[a:b], stream=s)
        for s in streams:
            s.synchronize()
        return out
    return run


assert_close(make_pipeline(n_pipe, x_pipe.dtype, 4)(x_pipe), transform_reference(x_pipe),
             msg("06.reusing_pipeline_before_timing", "pipeline with buffers allocated once, before timing"), rtol=1e-6)
if lab.gpu_only(msg("06.gpu_only_timing_pipeline", "timing the pipeline with 1 to 8 streams")):
    for streams_t in (1, 2, 4, 8):
        run_t = make_pipeline(n_pipe, x_pipe.dtype, streams_t)   # allocated here, outside the timed calls
        t = time_cpu(run_t, x_pipe, repeat=5,
                     what=msg("06.what_pipeline_streams", "pipeline, {streams} stream(s), buffers reused", streams=streams_t),
                     label=lab.timing_label() + msg("06.label_host_clock_pipeline",
                                                    ", host clock around a synchronised pipeline"))
        print(f"{t}  ->  {2 * x_pipe.nbytes / t.median / 1e9:.1f} GB/s")
else:
    print(msg("06.not_timed_cpu_tier", "Not timed on the CPU tier: the simulator runs the chunks one after another, so more streams change "
          "nothing but the bookkeeping. On a GPU expect the rate to rise from 1 to 2 to 4 streams, then level off."))

# %% [markdown] key="seeing-nvtx-nsight-systems"
# ## 5. Seeing it: NVTX and Nsight Systems
#
# **Nsight Systems** (`nsys`) records a timeline of everything: the host's threads, CUDA API calls,
# each copy and kernel on each stream. **NVTX** ranges add your own labels to it: a range opened with
# `nvtx.annotate("chunk 3")` around some code becomes a named bar on the host thread's row. The
# `nvtx` package is a no-op when no profiler listens, so ranges can stay in the code. Profile a script
# (not a notebook) with:
#
# ```bash
# nsys profile -t cuda,nvtx -o pipeline --force-overwrite true python pipeline.py
# nsys stats pipeline.nsys-rep          # tables: kernel and copy times, NVTX ranges
# nsys-ui pipeline.nsys-rep             # the timeline, on a machine with a display
# ```
#
# How to read the timeline:
#
# - Rows, top to bottom: the **NVTX** row of your Python thread (your ranges, `pipeline` with its
#   `chunk 0` ... `chunk 3`), the **CUDA API** row (`cuMemcpyHtoDAsync`, `cuLaunchKernel`,
#   `cuStreamSynchronize`: short calls, then one long wait at the synchronise), and under
#   **CUDA HW**, one row per stream, each with its copies (`Memcpy HtoD`, `Memcpy DtoH`, usually
#   green and pink) and kernels (`transform_kernel`, blue).
# - **Overlap** shows as a staircase: stream 2's copy in lies under stream 1's kernel, which lies
#   under stream 0's copy out. Bars that never overlap vertically mean serialised work: look for a call
#   on the default stream, or pageable memory (then the copy row says `Pageable` and the API call
#   lasts as long as the copy).
# - Gaps between bars on the GPU rows are time the GPU waited for the host: launches too small, or
#   Python work between them. The NVTX row tells you which part of your code that was.
#
# The cell below runs the pipeline inside NVTX ranges: under `nsys` they appear as described; here
# they cost next to nothing.

# %%
def pipeline_with_ranges(x, n_streams):
    """The pipeline, with an NVTX range around the whole call (one bar in the timeline)."""
    rng_ctx = nvtx.annotate(f"pipeline {n_streams} streams", color="green") if nvtx else contextlib.nullcontext()
    with rng_ctx:
        return pipeline(x, n_streams)


if nvtx is None:
    print(msg("06.nvtx_off_no_ranges", "[NVTX off] {why}: the pipeline runs without ranges", why=NVTX_WHY))
t_nvtx = time_cpu(pipeline_with_ranges, x_pipe, 4, repeat=lab.size(full=5, ci=2), warmup=1,
                  what=msg("06.what_pipeline_nvtx", "pipeline inside an NVTX range"), label=lab.timing_label())
assert_close(pipeline_with_ranges(x_pipe, 4), transform_reference(x_pipe),
             msg("06.pipeline_in_nvtx_ranges", "pipeline inside NVTX ranges"), rtol=1e-6)
print(t_nvtx)
print(msg("06.profile_it", "Profile it: save the pipeline as pipeline.py and run\n"
          "  nsys profile -t cuda,nvtx -o pipeline --force-overwrite true python pipeline.py"))

# %% [markdown] key="summary"
# ## Summary
#
# - Copies are asynchronous and run at full speed only from **pinned** host memory
#   (`cuda.pinned_array`); allocate it once and reuse it.
# - A **stream** runs its work in order; different streams may overlap. Everything without a stream goes
#   to the default stream and serialises the rest. Queue copy in, kernel and copy out of a chunk on one
#   stream, chunks on different streams, and synchronise before reading the result.
# - Split work with integer arithmetic so that no element is dropped: `divmod(n, chunks)`.
# - A race between streams hides on a quiet GPU and always in the simulator: check the order, not only
#   the values.
# - **Events** time GPU work with the GPU's clock and order streams (`event.wait(stream)`); they
#   count the time the GPU waits for the host between them; in the simulator they return -1: label
#   host timings as such.
# - Allocate pinned and device buffers once, outside the timed region, and reuse them.
# - NVTX ranges name your code in Nsight Systems' timeline; overlap looks like a staircase across the
#   stream rows.
#
# ## Going further
#
# - Numba CUDA: streams, events, pinned and mapped memory, https://nvidia.github.io/numba-cuda/
# - CUDA C++ Best Practices Guide, "Asynchronous and Overlapping Transfers with Computation".
# - `cuda.mapped_array` (zero-copy host memory the kernel reads over the bus) and unified memory
#   (`cuda.managed_array`), for data touched once.
# - CUDA Graphs capture a whole stream of work and replay it with one launch, for pipelines of many
#   small kernels.
# - Nsight Systems user guide: the NVTX, CUDA and OS runtime rows, and `nsys stats` reports.
# - Next: the track assessment.
