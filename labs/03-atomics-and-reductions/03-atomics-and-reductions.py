# %% [markdown] key="atomics-reductions"
# # 03 Atomics and reductions
#
# Lab 02 gave every thread its own element to write. Many useful kernels are the opposite: many
# threads, **one** result, or a few results that many threads update: a count, a histogram, a sum,
# a maximum. This lab shows the tools for that, from the simplest (atomic operations on global
# memory) to the fastest (a block's threads cooperating in shared memory, then a warp's threads
# exchanging registers).
#
# ## You will learn
# - why `a[i] += 1` from many threads loses updates, and how **atomic** operations
#   (`cuda.atomic.add`, `max`, `min`, ...) make a read-modify-write indivisible;
# - a **histogram** with global atomics, then **privatised** in **shared memory**
#   (`cuda.shared.array`), one private copy per block, merged at the end;
# - the **barrier** `cuda.syncthreads()`: when a block's threads must wait for each other, and what
#   goes wrong without it;
# - a **tree reduction** in shared memory, the two-pass sum over a whole array, and the
#   **warp-level** reduction with shuffles (GPU only: the simulator has no `cuda.shfl_*`);
# - how the result compares with `cuda.reduce` and NumPy, and why float sums differ in the last bits;
# - **random numbers on the GPU**: one xoroshiro128+ generator state per thread, and a Monte Carlo
#   estimate of pi whose error shrinks as `1 / sqrt(n)`.
#
# **How this lab works**: read, run the examples, then solve the five exercises.
# In each exercise cell, delete `raise NotImplementedError()` and write your code.
# The cell after it runs the tests; do not edit test cells.
# The grader also runs hidden tests, on sizes and launch configurations you do not see here.
#
# Points: exercise 1: 3, exercise 2: 4, exercise 3: 4, exercise 4: 3, exercise 5: 3 (17 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# As in every lab, the code cell below chooses the **tier** and prints it. Without a GPU the kernels
# run in Numba's CUDA **simulator**: results are checked as on a GPU, timings mean nothing there.
# Run this cell first.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("03.title", "03 Atomics and reductions"))

# %% nbgrader="locked" id="imports"
import math
import warnings

import numpy as np
import numba
from numba import cuda, float64, int32

from techday.labtools import assert_close, time_cpu
from techday.simtools import expose_races, quicker_barriers

# Numba warns when a grid has fewer than 128 blocks; this lab launches small grids on purpose.
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")
quicker_barriers()  # simulator only: its cuda.syncthreads() polls Python threads; switch them more often

from techday.i18n import msg

print(msg("03.banner_gpu", "numba {numba} | NumPy {numpy} | kernels run on the GPU", numba=numba.__version__,
          numpy=np.__version__) if lab.on_gpu else
      msg("03.banner_simulator", "numba {numba} | NumPy {numpy} | kernels run in the CUDA simulator (CPU tier)",
          numba=numba.__version__, numpy=np.__version__))

# %% [markdown] key="many-threads-counter-atomics"
# ## 1. Many threads, one counter: atomics
#
# Lab 02 showed the race: `counter[0] += 1` is three steps (read, add, write), and threads that
# read the same old value overwrite each other's updates. An **atomic** operation does the three
# steps as one indivisible step in the memory system: no other thread can come in between.
#
# ```python
# old = cuda.atomic.add(array, index, value)   # array[index] += value, returns the value before
# cuda.atomic.max(array, index, value)         # array[index] = max(array[index], value)
# cuda.atomic.min / sub / inc / dec / exch / compare_and_swap / and_ / or_ / xor
# ```
#
# `array` is a device array (global memory) or a shared array; `add`, `max` and `min` work on
# `int32`, `uint32`, `int64`, `uint64`, `float32` and `float64`. Atomics are correct but not free:
# when many threads hit the **same** address the hardware serialises them. Keep that in mind for
# the histogram below.
#
# **The race in the simulator.** The simulator runs each CUDA thread as a Python thread, and Python
# lets one thread run for 5 ms before switching, so a simulated thread usually finishes before the
# next starts and a race hides. `expose_races()` (from `techday.simtools`) makes Python switch
# threads every microsecond and lets the other threads run just before each store into a device
# array, so unsynchronised updates of device arrays collide as they do on a GPU, every time.
# The tests of this lab use it; on a GPU it does nothing. It cannot do the same for shared arrays,
# which the simulator keeps as plain NumPy arrays, nor between blocks, which it runs one after
# another.
#
# **Finding a race without waiting for it.** `check_races()` (from `techday.simtrace`) records, inside
# its block, every element access of device and shared arrays with the thread that made it, the
# barriers that thread had passed and whether an atomic made it. At the end it lists every element
# that two threads touched with nothing ordering them (not both atomic, at least one a write, not on
# two sides of one `cuda.syncthreads()` of the same block): a race, whether or not it changed the
# result this time. It also reports threads of one block that did not pass the same barriers (rule 2
# of section 3). It is the CPU tier's counterpart of `compute-sanitizer --tool racecheck` and
# `--tool synccheck` on a GPU, and the hidden tests of labs 03, 04 and 07 use it.

# %%
from techday.i18n import msg
@cuda.jit
def count_positive_naive(x, counter):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        if x[i] > 0:
            counter[0] += 1                      # read, add, write: updates get lost


@cuda.jit
def count_positive_atomic(x, counter):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        if x[i] > 0:
            cuda.atomic.add(counter, 0, 1)       # one indivisible read-add-write


@cuda.jit
def max_abs_atomic(x, result):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        cuda.atomic.max(result, 0, abs(x[i]))   # float max, also atomic


h_x = np.random.default_rng(3).standard_normal(2_001)
d_x = cuda.to_device(h_x)
expected_positive = int((h_x > 0).sum())
with expose_races():
    for kernel in (count_positive_naive, count_positive_atomic):
        d_counter = cuda.to_device(np.zeros(1, np.int64))
        kernel[4, 64](d_x, d_counter)
        got = int(d_counter.copy_to_host()[0])
        print(msg("03.positives_counted", "{name:22s}: {got:5d} positives counted, {expected} expected", name=kernel.__name__,
                  got=got, expected=expected_positive))
assert got == expected_positive, msg("03.atomic_count_exact", "the atomic count must be exact")
d_max = cuda.to_device(np.zeros(1))
max_abs_atomic[4, 64](d_x, d_max)
assert d_max.copy_to_host()[0] == np.abs(h_x).max()
print(f"max_abs_atomic        : {d_max.copy_to_host()[0]:.6f} = np.abs(x).max()")

# %%
from techday.i18n import msg
if lab.on_gpu:
    print(msg("03.race_check_cpu_only", "check_races follows the simulator's accesses, on the CPU tier; on a GPU, "
              "run compute-sanitizer --tool racecheck on a script instead."))
else:
    from techday.simtrace import check_races

    for kernel in (count_positive_naive, count_positive_atomic):
        with check_races() as races:
            kernel[2, 32](d_x, cuda.to_device(np.zeros(1, np.int64)))
        print(f"{kernel.__name__:22s}: " + msg("03.racing_elements", "{n} racing element(s)", n=len(races.hazards)))
        if races:
            print("   ", races.first())
    assert races.hazards == [], msg("03.atomic_count_no_race", "the atomic count has no race")

# %% [markdown] key="histogram-global-atomics"
# ## 2. A histogram with global atomics
#
# A **histogram** counts how often each value occurs: for an 8-bit grey image, 256 bins, one per
# grey level. On the CPU, `np.bincount(values, minlength=256)`. On the GPU every thread takes pixels
# (grid-stride loop) and adds 1 to the bin of each: many threads, few bins, so the adds must be
# atomic. Our picture is scikit-image's `camera` (512 x 512 grey levels), at full size on a GPU and
# at 1/8 resolution (64 x 64 = 4,096 pixels) in the simulator.

# %%
from skimage import data as skdata

camera = skdata.camera()                               # uint8, 512 x 512, ships with scikit-image
step = lab.size(full=1, ci=8)
pixels = np.ascontiguousarray(camera[::step, ::step]).ravel()
NBINS = 256
reference_hist = np.bincount(pixels, minlength=NBINS)
print(msg("03.camera_pixels", "camera: {shape} {dtype}; using {pixels:,} pixels (every {step}. row and column)",
          shape=camera.shape, dtype=camera.dtype, pixels=pixels.size, step=step))
print(msg("03.grey_levels_used", "grey levels used: {used} of {nbins}; the fullest bin holds {fullest:,} pixels (level {level}), "
          "{empty} bins are empty", used=np.count_nonzero(reference_hist), nbins=NBINS, fullest=reference_hist.max(),
          level=reference_hist.argmax(), empty=NBINS - np.count_nonzero(reference_hist)))

# %% [markdown] key="histogram-atomic"
# ## Exercise 1: `histogram_atomic` (3 points)
#
# Write the kernel `histogram_atomic(values, hist)`: for every element `v` of `values` add 1 to
# `hist[v]`, with `cuda.atomic.add`, in a **grid-stride loop** (any grid must count every element
# exactly once). `hist` has one bin per possible value and is zero when the kernel starts (the
# caller zeroes it); `values` holds integers from `0` to `hist.shape[0] - 1`. Do not assume 256
# bins, or a number of elements that is a multiple of the block.
#
# The tests launch 4 blocks of 64 threads on the 4,096 camera pixels, on a picture where every pixel
# has the same grey level (every thread hits one bin: a plain `+=` loses counts there), and with
# a 10-bin histogram.

# %% nbgrader="solution" id="histogram_atomic"
@cuda.jit
def histogram_atomic(values, hist):
    """hist[v] += 1 for every v in values, atomically, with a grid-stride loop."""
    ### BEGIN SOLUTION
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(hist, values[i], 1)
    ### END SOLUTION

# %% nbgrader="tests" id="histogram_atomic_tests" points=3
"""histogram_atomic is a @cuda.jit kernel and equals np.bincount on the 4,096 camera pixels with 4 x 64
threads, on a picture of one grey level (every thread hits the same bin: races show) and with 10 bins;
hidden: sizes that are not a multiple of the block, more threads than pixels, no pixels, one pixel,
int32 bins, 1 or 7 bins; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.labtools import assert_cuda_kernel
from techday.i18n import msg
from techday.simtools import expose_races


def run_histogram(kernel, values, nbins, blocks, threads, dtype=np.int64):
    d_hist = cuda.to_device(np.zeros(nbins, dtype))
    with expose_races():  # the simulator switches threads often, so lost updates show
        kernel[blocks, threads](cuda.to_device(values), d_hist)
    return d_hist.copy_to_host()


def check_histogram(kernel, values, nbins, blocks, threads, what, dtype=np.int64):
    got = run_histogram(kernel, values, nbins, blocks, threads, dtype)
    want = np.bincount(values, minlength=nbins)
    assert got.dtype == dtype
    if not np.array_equal(got, want):
        bad = np.flatnonzero(got != want)
        raise AssertionError(msg("03.what_bad_size_nbins", "{what}: {bad_size} of {nbins} bins are wrong; first bin {bad_0}: counted {got_bad_0}, expected {want_bad_0}; total counted {got_sum}, expected {values_size} ({blocks} blocks x {threads} threads)", what=what, bad_size=bad.size, nbins=nbins, bad_0=bad[0], got_bad_0=got[bad[0]], want_bad_0=want[bad[0]], got_sum=got.sum(), values_size=values.size, blocks=blocks, threads=threads))


assert_cuda_kernel(histogram_atomic, "histogram_atomic")
check_histogram(histogram_atomic, pixels, 256, 4, 64, msg("03.what_camera", "camera pixels, 256 bins"))
check_histogram(histogram_atomic, np.full(2_000, 200, np.uint8), 256, 4, 64,
                msg("03.what_one_level", "2,000 pixels all at grey level 200 (a plain += loses counts here)"))
check_histogram(histogram_atomic, np.arange(1_001, dtype=np.int32) % 10, 10, 2, 64,
                msg("03.what_ten_bins", "1,001 values, 10 bins"))
### BEGIN HIDDEN TESTS
rh = np.random.default_rng(303)
for vals_h, nb_h, bl_h, th_h, dt_h in (
    (rh.integers(0, 256, 3_001).astype(np.uint8), 256, 3, 96, np.int64),
    (rh.integers(0, 7, 777).astype(np.int64), 7, 1, 32, np.int32),
    (np.zeros(0, np.uint8), 256, 2, 64, np.int64),
    (np.array([255], np.uint8), 256, 1, 32, np.int64),
    (np.zeros(1_500, np.int32), 1, 4, 64, np.int32),
    (rh.integers(0, 256, 100).astype(np.uint8), 256, 8, 64, np.int64),
):
    check_histogram(histogram_atomic, vals_h, nb_h, bl_h, th_h,
                    msg("03.what_hidden_hist", "hidden: {n} values, {bins} bins, {blocks} x {threads} threads",
                        n=vals_h.size, bins=nb_h, blocks=bl_h, threads=th_h), dt_h)
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("03.histogram_atomic_tests")
for n_d, nb_d, bl_d, th_d in ((int(rd.integers(1, 60)), int(rd.integers(1, 257)), int(rd.integers(1, 4)), 64),
                              (int(rd.integers(500, 3_000)), int(rd.integers(2, 257)), int(rd.integers(1, 5)),
                               int(rd.choice([32, 64, 96])))):
    vals_d = rd.integers(0, nb_d, n_d).astype((np.uint8, np.int32, np.int64)[int(rd.integers(3))] if nb_d <= 256 else np.int64)
    check_histogram(histogram_atomic, vals_d, nb_d, bl_d, th_d,
                    msg("03.what_hidden_hist", "hidden: {n} values, {bins} bins, {blocks} x {threads} threads",
                        n=vals_d.size, bins=nb_d, blocks=bl_d, threads=th_d), (np.int64, np.int32)[int(rd.integers(2))])
# Races, whatever order the threads ran in (CPU tier: every access of the simulator checked; on a GPU a
# race loses counts by itself): two threads' updates of one bin must be atomic.
if lab.on_gpu:
    print(msg("03.hidden_race_cpu_only", "hidden: the race check follows the simulator's memory accesses, on the "
              "CPU tier only"))
else:
    from techday.simtrace import check_races

    vals_r = rh.integers(0, 16, 600).astype(np.int64)
    with check_races() as races_r:
        got_r = run_histogram(histogram_atomic, vals_r, 16, 2, 32)
    assert not races_r, msg("03.hidden_race_atomic", "hidden: histogram_atomic, race-checked on 600 values, 2 x 32 "
                            "threads: {race}", race=races_r.first())
    assert np.array_equal(got_r, np.bincount(vals_r, minlength=16)), msg(
        "03.hidden_race_checked_wrong", "hidden: {kernel}, race-checked: wrong result", kernel="histogram_atomic")
### END HIDDEN TESTS
print(msg("03.histogram_atomic_all_visible", "histogram_atomic: all visible tests passed."))

# %% [markdown] key="shared-memory-barrier"
# ## 3. Shared memory and the barrier
#
# Every block runs on one multiprocessor (SM), which has a small, fast on-chip memory: **shared
# memory** (up to 48 KiB per block by default, 100 to 228 KiB per SM on recent GPUs). A block's
# threads share it; other blocks cannot see it; it lives only as long as the block. It is about as
# fast as the L1 cache, much faster than global memory, and atomics on it are much cheaper.
#
# ```python
# local = cuda.shared.array(256, int32)        # one array per block; the shape is a constant
# ```
#
# - The shape must be known when the kernel is compiled: a number or a global constant, not an
#   argument.
# - It is **not initialised**: it holds whatever the previous block left there. Zero it yourself.
# - A quirk of Numba's simulator, not a CUDA rule: two `cuda.shared.array` calls on one source line
#   share one buffer there, so write one call per line.
#
# Threads of a block do not run in lock-step. Whenever a thread reads what **another** thread wrote
# in shared memory, all threads must first reach a **barrier**, `cuda.syncthreads()`: no thread of
# the block passes it until every thread of the block got there. Two rules:
#
# 1. a barrier between writing shared memory and reading what other threads wrote, and between
#    reading it and overwriting it;
# 2. every thread of the block must reach the same barriers: never put `cuda.syncthreads()` inside
#    an `if` that only some threads take (on a GPU that hangs or gives garbage).
#
# ### Privatisation
#
# With global atomics, every pixel of the image is an atomic on one of 256 global counters, and on
# a dark or bright image thousands of threads queue for the same few addresses. **Privatise**: each
# block counts into its own histogram in shared memory (cheap atomics, contention among a block's
# threads only), then adds its 256 counts to the global histogram: 256 global atomics per block
# instead of one per pixel.
#
# ## Exercise 2: `histogram_shared` (4 points)
#
# Write `histogram_shared(values, hist)`, the privatised histogram, for any number of bins
# `nbins = hist.shape[0]` up to `MAX_BINS = 256` (the shared array always has `MAX_BINS` entries;
# use the first `nbins`):
#
# 1. allocate `local = cuda.shared.array(MAX_BINS, int32)` and set `local[0:nbins]` to zero, the work
#    shared by the block's threads: thread `t` zeroes bins `t, t + blockDim.x, ...` (a block may have
#    fewer threads than bins);
# 2. barrier: every bin is zero before anyone counts;
# 3. grid-stride loop over `values`, `cuda.atomic.add(local, v, 1)`;
# 4. barrier: every count of the block is in before anyone reads it;
# 5. each thread adds its bins (the same split as in step 1) to `hist` with `cuda.atomic.add` (other
#    blocks add to `hist` at the same time).
#
# The tests check the counts on several grids, block sizes and numbers of bins. On the CPU tier the
# hidden tests also trace the kernel (`techday.simtrace`, as in lab 04): every value counted in the
# shared array, and `hist` updated at most once per bin and block.

# %% nbgrader="locked" id="max_bins"
MAX_BINS = 256  # entries of the shared histogram: a compile-time constant

# %% nbgrader="solution" id="histogram_shared"
@cuda.jit
def histogram_shared(values, hist):
    """Privatised histogram: count in a shared-memory copy per block, then add it to hist."""
    ### BEGIN SOLUTION
    local = cuda.shared.array(MAX_BINS, int32)
    nbins = hist.shape[0]
    tid = cuda.threadIdx.x
    for b in range(tid, nbins, cuda.blockDim.x):
        local[b] = 0
    cuda.syncthreads()
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(local, values[i], 1)
    cuda.syncthreads()
    for b in range(tid, nbins, cuda.blockDim.x):
        if local[b] != 0:  # empty bins need no global atomic
            cuda.atomic.add(hist, b, local[b])
    ### END SOLUTION

# %% nbgrader="tests" id="histogram_shared_tests" points=4
"""histogram_shared is a @cuda.jit kernel and equals np.bincount on the camera pixels with 4 x 64
threads (fewer threads than bins), on a one-grey-level picture and with 10 bins; hidden: 3 x 96 and
2 x 32 threads, 1 block, sizes not a multiple of the block, no values, 1 and 256 bins with few values
(empty bins), int32 bins; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from techday.labtools import assert_cuda_kernel
from techday.i18n import msg

assert_cuda_kernel(histogram_shared, "histogram_shared")
check_histogram(histogram_shared, pixels, 256, 4, 64,
                msg("03.what_shared_camera", "histogram_shared, camera pixels, 256 bins, 4 x 64 threads"))
check_histogram(histogram_shared, np.full(2_000, 17, np.uint8), 256, 4, 64,
                msg("03.what_shared_one_level", "histogram_shared, 2,000 pixels at grey level 17"))
check_histogram(histogram_shared, np.arange(1_001, dtype=np.int32) % 10, 10, 2, 64,
                msg("03.what_shared_ten_bins", "histogram_shared, 1,001 values, 10 bins"))
### BEGIN HIDDEN TESTS
rh = np.random.default_rng(404)
for vals_h, nb_h, bl_h, th_h, dt_h in (
    (rh.integers(0, 256, 3_001).astype(np.uint8), 256, 3, 96, np.int64),
    (rh.integers(0, 256, 2_049).astype(np.uint8), 256, 2, 32, np.int32),
    (rh.integers(0, 13, 999).astype(np.int64), 13, 1, 128, np.int64),
    (np.zeros(0, np.uint8), 256, 2, 64, np.int64),
    (np.zeros(1_000, np.int32), 1, 3, 64, np.int32),
    (rh.integers(250, 256, 50).astype(np.uint8), 256, 4, 32, np.int64),
):
    check_histogram(histogram_shared, vals_h, nb_h, bl_h, th_h,
                    msg("03.what_hidden_hist_shared", "hidden: histogram_shared, {n} values, {bins} bins, "
                        "{blocks} x {threads} threads", n=vals_h.size, bins=nb_h, blocks=bl_h, threads=th_h), dt_h)
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("03.histogram_shared_tests")
for n_d, nb_d, bl_d, th_d in ((int(rd.integers(1, 60)), int(rd.integers(1, 257)), int(rd.integers(1, 4)), 32),
                              (int(rd.integers(500, 3_000)), int(rd.integers(2, 257)), int(rd.integers(1, 5)),
                               int(rd.choice([32, 64, 128])))):
    vals_d = rd.integers(0, nb_d, n_d).astype((np.uint8, np.int32, np.int64)[int(rd.integers(3))])
    check_histogram(histogram_shared, vals_d, nb_d, bl_d, th_d,
                    msg("03.what_hidden_hist_shared", "hidden: histogram_shared, {n} values, {bins} bins, "
                        "{blocks} x {threads} threads", n=vals_d.size, bins=nb_d, blocks=bl_d, threads=th_d),
                    (np.int64, np.int32)[int(rd.integers(2))])
# Where the counting happens (CPU tier: the simulator's accesses, traced): privatised, every value is
# counted in shared memory and each block adds each bin to hist at most once.
if lab.on_gpu:
    print(msg("03.hidden_privatised_cpu_only", "hidden: the privatisation check traces memory accesses in the "
              "simulator, on the CPU tier only"))
else:
    from techday.simtrace import trace_global, trace_shared

    vals_p = rh.integers(0, 16, 3_000).astype(np.int64)
    d_vals_p, d_hist_p = cuda.to_device(vals_p), cuda.to_device(np.zeros(16, np.int64))
    with trace_global(d_hist_p) as global_p, trace_shared() as shared_p:
        histogram_shared[2, 64](d_vals_p, d_hist_p)
    assert np.array_equal(d_hist_p.copy_to_host(), np.bincount(vals_p, minlength=16)), msg(
        "03.hidden_traced_hist_wrong", "hidden: histogram_shared, traced on 3,000 values: wrong counts")
    updates_p = global_p.count(d_hist_p, "store")
    assert updates_p <= 16 * 2, msg(
        "03.hidden_not_privatised", "hidden: histogram_shared updated hist {updates} times for 3,000 values in 16 "
        "bins on 2 blocks; privatised, each block adds each of its bins once (at most {bound}): count with "
        "cuda.atomic.add(local, v, 1) in the shared array, then add local to hist after the barrier",
        updates=updates_p, bound=16 * 2)
    assert shared_p.count("store") >= vals_p.size, msg(
        "03.hidden_not_counted_in_shared", "hidden: histogram_shared wrote shared memory {stores} times for {n} "
        "values: count each value in the block's shared array", stores=shared_p.count("store"), n=vals_p.size)
    # Races, whatever order the threads ran in: the simulator runs one block after another, so a plain
    # hist[b] += local[b] never loses a count there, and a missing barrier may go unseen; checked here.
    from techday.simtrace import check_races

    with check_races() as races_p:
        got_p = run_histogram(histogram_shared, vals_p, 16, 2, 64)
    assert not races_p, msg("03.hidden_race_shared", "hidden: histogram_shared, race-checked on 3,000 values, "
                            "2 x 64 threads: {race}", race=races_p.first())
    assert np.array_equal(got_p, np.bincount(vals_p, minlength=16)), msg(
        "03.hidden_race_checked_wrong", "hidden: {kernel}, race-checked: wrong result", kernel="histogram_shared")
### END HIDDEN TESTS
print(msg("03.histogram_shared_all_visible", "histogram_shared: all visible tests passed."))

# %% [markdown] key="global-against-shared-atomics"
# ### Global against shared atomics, measured (GPU only)
#
# On a GPU we time both histograms with CUDA events on a large image (the camera picture repeated
# to 64 Mpixels) and on the worst case for contention, a picture of one grey level. The rate is
# pixels per second: one byte read per pixel, so bandwidth is `n / seconds` bytes per second. The
# simulator's events return -1 ms, so the CPU tier skips this cell.

# %%
from techday.i18n import msg
if lab.gpu_only(msg("03.gpu_only_histogram_timing", "timing the global and the shared-memory histograms with CUDA events")):
    from techday.labtools import time_cuda

    reps = lab.size(full=256, ci=16)
    big = np.tile(camera.ravel(), reps)
    flat = np.full_like(big, 200)
    blocks_h, threads_h = 32 * lab.gpu.multiprocessor_count, 256
    for name, img in (("camera", big), (msg("03.one_grey_level", "one grey level"), flat)):
        d_img = cuda.to_device(img)
        want = np.bincount(img, minlength=NBINS)
        for kernel in (histogram_atomic, histogram_shared):
            d_hist = cuda.to_device(np.zeros(NBINS, np.int64))
            kernel[blocks_h, threads_h](d_img, d_hist)
            assert np.array_equal(d_hist.copy_to_host(), want), msg("03.kernel_name_name", "{kernel_name} on {name}", kernel_name=kernel.__name__, name=name)
            t = time_cuda(lambda: kernel[blocks_h, threads_h](d_img, d_hist), repeat=10,
                          what=msg("03.what_histogram", "{kernel:17s} {name:15s} {mpixel:.0f} Mpixel",
                                    kernel=kernel.__name__, name=name, mpixel=img.size / 1e6),
                          label=lab.timing_label())
            print(f"{t}  ->  {img.size / t.median / 1e9:6.1f} Gpixel/s")
else:
    print(msg("03.gpu_expect_shared_memory", "On a GPU, expect the shared-memory histogram to be several times faster than the global one, and the gap to widen on the one-grey-level picture, where every global atomic hits one address."))

# %% [markdown] key="reductions-tree-shared-memory"
# ## 4. Reductions: a tree in shared memory
#
# A **reduction** combines many values into one with an associative operation: sum, maximum,
# minimum. One atomic add per element into one counter would serialise everything. A block does
# better by cooperating:
#
# 1. each thread adds up its share of the input (grid-stride loop) into a local variable, and
#    stores that partial sum in `cache[threadIdx.x]`, a shared array with one entry per thread;
# 2. **tree**: with `s = blockDim.x // 2`, threads `t < s` add `cache[t + s]` to `cache[t]`; halve
#    `s` and repeat until `s == 0`. After `log2(blockDim.x)` steps `cache[0]` holds the block's sum:
#
# ```
# s = 4:  c0+c4  c1+c5  c2+c6  c3+c7  .  .  .  .        (8 threads)
# s = 2:  c0+c4+c2+c6   c1+c5+c3+c7   .  .
# s = 1:  the sum of all eight, in cache[0]
# ```
#
# 3. thread 0 writes `cache[0]` to `partial[blockIdx.x]`.
#
# **The barriers**. Before the tree, all of the block's threads must have stored their
# partial sums (rule 1: thread 0 reads `cache[s]`, written by thread `s`). And in the tree, every
# step must finish before the next one reads its results, so `cuda.syncthreads()` comes after every
# step, **outside** the `if t < s` (rule 2: all threads reach it). The simulator runs one thread to
# its next barrier before starting the others, so a missing barrier shows there at once: thread 0
# reads cache entries that nobody has written yet.
#
# The block size must be a power of two for this halving, and the shared array's size a constant:
# we use `SUM_THREADS = 128` threads per block, and launch with exactly that many.

# %% nbgrader="locked" id="sum_threads"
SUM_THREADS = 128  # threads per block of block_sum_kernel: a power of two, the size of its shared cache

# %% [markdown] key="block-sum-kernel"
# ## Exercise 3: `block_sum_kernel` (4 points)
#
# Write `block_sum_kernel(x, partial)`: launched with `SUM_THREADS` threads per block, block `b`
# writes into `partial[b]` the sum of the elements its threads visit in a grid-stride loop, with the
# tree reduction above:
#
# - `cache = cuda.shared.array(SUM_THREADS, float64)`, accumulate in `float64` (start from `0.0`);
# - the grid-stride loop, then `cache[threadIdx.x] = acc`;
# - a barrier; the tree with a barrier after every step; thread 0 writes `partial[blockIdx.x]`.
#
# Together the blocks' partial sums add up to the sum of `x`. The tests check every block's partial
# sum on its own; on the CPU tier the hidden tests also trace the tree's shape: no thread reads the
# shared cache more than twice per level.

# %% nbgrader="solution" id="block_sum_kernel"
@cuda.jit
def block_sum_kernel(x, partial):
    """partial[blockIdx.x] = the sum of the elements this block's threads visit (tree reduction)."""
    ### BEGIN SOLUTION
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        acc += x[i]
    cache[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            cache[tid] += cache[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]
    ### END SOLUTION

# %% nbgrader="tests" id="block_sum_kernel_tests" points=4
"""block_sum_kernel is a @cuda.jit kernel that writes, for each of 4 blocks of SUM_THREADS threads, the
sum of exactly the elements its threads visit in a grid-stride loop, for 3,001 random float64 values (a
NaN-poisoned partial array); hidden: 1 and 7 blocks, one value, no values, fewer values than threads,
float32 input, integers whose sums are exact; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.labtools import assert_close, assert_cuda_kernel
from techday.i18n import msg


def expected_partials(x, blocks):
    """Block b's threads visit i with (i mod (blocks * SUM_THREADS)) // SUM_THREADS == b."""
    owner = (np.arange(x.size) % (blocks * SUM_THREADS)) // SUM_THREADS
    return np.array([x[owner == b].astype(np.float64).sum() for b in range(blocks)])


def run_block_sum(x, blocks):
    d_partial = cuda.to_device(np.full(blocks, np.nan))
    block_sum_kernel[blocks, SUM_THREADS](cuda.to_device(x), d_partial)
    return d_partial.copy_to_host()


def check_block_sum(x, blocks, what):
    got = run_block_sum(x, blocks)
    missing = int(np.isnan(got).sum())
    assert missing == 0, msg("03.what_missing_blocks_blocks", "{what}: {missing} of {blocks} blocks wrote no partial sum (thread 0 writes partial[blockIdx.x])", what=what, missing=missing, blocks=blocks)
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12  # float32 input may be added up in float32
    assert_close(got, expected_partials(x, blocks), msg("03.what_partial_sums_per", "{what}: partial sums per block", what=what), rtol=rtol, atol=1e-12)


assert_cuda_kernel(block_sum_kernel, "block_sum_kernel")
x_sum = np.random.default_rng(5).random(3_001)
check_block_sum(x_sum, 4, msg("03.what_sum_3001", "3,001 values, 4 blocks"))
### BEGIN HIDDEN TESTS
rh = np.random.default_rng(505)
check_block_sum(rh.random(1_000), 1, msg("03.what_hidden_1000", "hidden: 1,000 values, 1 block"))
check_block_sum(rh.standard_normal(2_500), 7, msg("03.what_hidden_2500", "hidden: 2,500 values, 7 blocks"))
check_block_sum(np.array([2.5]), 3, msg("03.what_hidden_one_3", "hidden: one value, 3 blocks"))
check_block_sum(np.zeros(0), 2, msg("03.what_hidden_none_2", "hidden: no values, 2 blocks"))
check_block_sum(rh.random(100), 2, msg("03.what_hidden_100", "hidden: 100 values, fewer than the threads"))
check_block_sum(rh.random(1_234).astype(np.float32), 3, msg("03.what_hidden_float32_input", "hidden: float32 input"))
check_block_sum(rh.integers(-1_000, 1_000, 999).astype(np.float64), 2, msg("03.what_hidden_integers", "hidden: integers"))
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("03.block_sum_kernel_tests")
for n_d, blocks_d in ((int(rd.integers(1, 300)), int(rd.integers(1, 5))), (int(rd.integers(300, 3_000)), int(rd.integers(1, 8)))):
    x_d = rd.standard_normal(n_d) * float(rd.choice([1.0, 1e3])) + float(rd.integers(-5, 6))
    check_block_sum(x_d, blocks_d, msg("03.what_hidden_drawn_sum", "hidden: {n} values, {blocks} blocks", n=n_d,
                                       blocks=blocks_d))
# How a block adds up (CPU tier: shared-memory accesses, traced): the tree gives each thread at most two
# loads per level; one thread adding the cache up alone loads every entry of it.
if lab.on_gpu:
    print(msg("03.hidden_tree_cpu_only", "hidden: the tree-shape check traces shared memory in the simulator, on "
              "the CPU tier only"))
else:
    from techday.simtrace import trace_shared

    x_t = rh.random(2 * SUM_THREADS)
    d_partial_t = cuda.to_device(np.full(2, np.nan))
    with trace_shared() as shared_t:
        block_sum_kernel[2, SUM_THREADS](cuda.to_device(x_t), d_partial_t)
    assert_close(d_partial_t.copy_to_host(), expected_partials(x_t, 2),
                 msg("03.hidden_traced_sum", "hidden: block_sum_kernel, traced: partial sums per block"), rtol=1e-12)
    levels_t = SUM_THREADS.bit_length() - 1
    most_t = max(shared_t.per_thread("load").values(), default=0)
    assert most_t <= 2 * levels_t + 2, msg(
        "03.hidden_not_a_tree", "hidden: block_sum_kernel: one thread read shared memory {most} times in its block; "
        "a tree reads at most {bound} (two per level, {levels} levels). Let threads t < s add cache[t + s] to "
        "cache[t], halving s, rather than one thread adding up the cache", most=most_t, bound=2 * levels_t + 2,
        levels=levels_t)
    # Races, whatever order the threads ran in: a barrier missing before the tree or after one of its
    # steps lets a thread read a cache entry another thread has not written yet (or overwrites it).
    from techday.simtrace import check_races

    with check_races() as races_t:
        got_t = run_block_sum(x_t, 2)
    assert not races_t, msg("03.hidden_race_block_sum", "hidden: block_sum_kernel, race-checked on {n} values, 2 "
                            "blocks: {race}", n=x_t.size, race=races_t.first())
    assert_close(got_t, expected_partials(x_t, 2), msg("03.hidden_race_checked_wrong", "hidden: {kernel}, "
                 "race-checked: wrong result", kernel="block_sum_kernel"), rtol=1e-12)
### END HIDDEN TESTS
print(msg("03.block_sum_kernel_all", "block_sum_kernel: all visible tests passed."))

# %% [markdown] key="gpu-sum-pass-sum"
# ## Exercise 4: `gpu_sum`, the two-pass sum (3 points)
#
# One launch leaves one partial sum per block. A second launch of the **same kernel** with **one**
# block sums the partials (at most a few thousand numbers: one block's grid-stride loop handles
# them). Write `gpu_sum(x)` that returns the sum of `x` as a Python `float`:
#
# 1. `x` is a NumPy array or already a device array: copy it to the device only if it is a NumPy
#    array (`isinstance(x, np.ndarray)`), and use a device array as it is;
# 2. first pass: `blocks = min(ceil(n / SUM_THREADS), MAX_SUM_BLOCKS)`, at least 1; launch
#    `block_sum_kernel[blocks, SUM_THREADS]` into a device array of `blocks` partial sums;
# 3. second pass: `block_sum_kernel[1, SUM_THREADS]` on the partials, into a device array of one;
# 4. copy that one number back and return it as a `float`.

# %% nbgrader="locked" id="max_sum_blocks"
MAX_SUM_BLOCKS = 32 * lab.gpu.multiprocessor_count if lab.on_gpu else 4
print(f"MAX_SUM_BLOCKS = {MAX_SUM_BLOCKS}")

# %% nbgrader="solution" id="gpu_sum"
def gpu_sum(x):
    """The sum of x (NumPy or device array) as a float: two launches of block_sum_kernel."""
    ### BEGIN SOLUTION
    d_x = cuda.to_device(x) if isinstance(x, np.ndarray) else x
    n = d_x.shape[0]
    blocks = max(1, min((n + SUM_THREADS - 1) // SUM_THREADS, MAX_SUM_BLOCKS))
    d_partial = cuda.device_array(blocks, np.float64)
    block_sum_kernel[blocks, SUM_THREADS](d_x, d_partial)
    d_total = cuda.device_array(1, np.float64)
    block_sum_kernel[1, SUM_THREADS](d_partial, d_total)
    return float(d_total.copy_to_host()[0])
    ### END SOLUTION

# %% nbgrader="tests" id="gpu_sum_tests" points=3
"""gpu_sum returns a float equal to math.fsum(x) for 3,001 values, launching block_sum_kernel twice:
at most MAX_SUM_BLOCKS blocks of SUM_THREADS threads, then one block; hidden: a device array input (no
copy of it), no values, one value, n = MAX_SUM_BLOCKS * SUM_THREADS + 1, float32 input, and the sum is
the kernel's: the first pass reads all of x into NaN-poisoned partials, the second sums those partials,
and gpu_sum returns the number the second pass wrote; and cases drawn afresh at every grading (techday.draw)."""
import math
import numpy as np
from numba import cuda
from techday.labtools import same_memory, watch_kernels
from techday.i18n import msg


def spy_gpu_sum(x):
    """Call gpu_sum with block_sum_kernel watched: every launch recorded, its output (argument 1) poisoned first."""
    with watch_kernels(globals(), {"block_sum_kernel": (1,)}) as watch:
        got = gpu_sum(x)
    return got, watch["block_sum_kernel"].launches


def check_gpu_sum(x, what):
    got, launches = spy_gpu_sum(x)
    host = x if isinstance(x, np.ndarray) else x.copy_to_host()
    want = math.fsum(np.asarray(host, np.float64))
    assert isinstance(got, float), msg("03.what_gpu_sum_returned", "{what}: gpu_sum returned {type_got_name}, not a float", what=what, type_got_name=type(got).__name__)
    assert len(launches) == 2, msg("03.what_launch_block_sum", "{what}: launch block_sum_kernel twice (partials, then one block), not {len_launches} times", what=what, len_launches=len(launches))
    first, second = launches
    assert first.threads == SUM_THREADS and second.threads == SUM_THREADS, msg("03.what_launch_sum_threads", "{what}: launch with SUM_THREADS threads per block", what=what)
    n = host.shape[0]
    blocks_want = max(1, min(-(-n // SUM_THREADS), MAX_SUM_BLOCKS))
    assert first.blocks == blocks_want, msg("03.what_first_pass_first", "{what}: first pass with {first_blocks} blocks, expected {blocks_want}", what=what, first_blocks=first.blocks, blocks_want=blocks_want)
    assert second.blocks == 1, msg("03.what_second_pass_sums", "{what}: the second pass sums the partials in one block, not {second_blocks}", what=what, second_blocks=second.blocks)
    assert not isinstance(first.args[0], np.ndarray), msg("03.what_pass_device_array", "{what}: pass a device array to the kernel, not a NumPy array", what=what)
    rel = 1e-5 if host.dtype == np.float32 else 1e-12
    assert math.isclose(got, want, rel_tol=rel, abs_tol=1e-9), msg("03.what_gpu_sum_r", "{what}: gpu_sum = {got!r}, expected {want!r}", what=what, got=got, want=want)
    return got, launches


got_v, launches_v = check_gpu_sum(np.random.default_rng(6).random(3_001), msg("03.what_gpu_sum_3001", "3,001 values"))
### BEGIN HIDDEN TESTS


def check_sum_from_kernel(got, launches, n, what):
    """The first pass reads all n values and writes every partial sum; the second pass reads those partials;
    gpu_sum returns exactly the number the second pass wrote."""
    first, second = launches
    assert tuple(first.args[0].shape) == (n,), (msg("03.what_first_pass_read", "{what}: the first pass read an array of shape {tuple_first_args_0_shape}, not all {n} values of x", what=what, tuple_first_args_0_shape=tuple(first.args[0].shape), n=n))
    partials = first.written[1]
    assert partials.shape == (first.blocks,), (msg("03.what_first_pass_wrote", "{what}: the first pass wrote {partials_shape_0} partial sums for {first_blocks} blocks: one per block", what=what, partials_shape_0=partials.shape[0], first_blocks=first.blocks))
    assert first.unwritten.get(1, 0) == 0, msg("03.what_first_unwritten_first", "{what}: {first_unwritten_1} of {first_blocks} partial sums were never written", what=what, first_unwritten_1=first.unwritten[1], first_blocks=first.blocks)
    assert same_memory(second.args[0], first.args[1]), msg("03.what_second_pass_sum", "{what}: the second pass must sum the first pass's partials", what=what)
    total = second.written[1]
    assert total.shape == (1,) and second.unwritten.get(1, 0) == 0, msg("03.what_second_pass_writes", "{what}: the second pass writes one number", what=what)
    assert got == float(total[0]), (msg("03.what_gpu_sum_returned_2", "{what}: gpu_sum returned {got!r}, the kernel's sum is {float_total_0!r}: return the number the second pass wrote, not a sum computed on the host", what=what, got=got, float_total_0=float(total[0])))


check_sum_from_kernel(got_v, launches_v, 3_001, msg("03.what_hidden_3001", "hidden: 3,001 values"))
rh = np.random.default_rng(606)
d_in = cuda.to_device(rh.standard_normal(2_000))
got_h, launches_h = check_gpu_sum(d_in, msg("03.what_hidden_device_array", "hidden: a device array"))
assert launches_h[0].args[0] is d_in, msg("03.hidden_device_array_passed", "hidden: a device array is passed to the kernel as it is, without a copy")
check_sum_from_kernel(got_h, launches_h, 2_000, msg("03.what_hidden_device_array_sum", "hidden: a device array"))
for x_h, what_h in ((np.zeros(0), msg("03.what_hidden_no_values", "hidden: no values")), (np.array([-4.25]), msg("03.what_hidden_one_value", "hidden: one value")),
                    (rh.random(MAX_SUM_BLOCKS * SUM_THREADS + 1), msg("03.what_hidden_one_more", "hidden: one more value than threads")),
                    (rh.random(777).astype(np.float32), msg("03.what_hidden_float32", "hidden: float32"))):
    got_h, launches_h = check_gpu_sum(x_h, what_h)
    check_sum_from_kernel(got_h, launches_h, x_h.size, what_h)
# Drawn at every grading (techday.draw): the arrays above are published with the course.
import techday.draw

rd = techday.draw.rng("03.gpu_sum_tests")
x_d = rd.standard_normal(int(rd.integers(1, 2 * MAX_SUM_BLOCKS * SUM_THREADS))) + float(rd.integers(-3, 4))
what_d = msg("03.what_hidden_drawn_gpu_sum", "hidden: {n} values", n=x_d.size)
got_d, launches_d = check_gpu_sum(x_d, what_d)
check_sum_from_kernel(got_d, launches_d, x_d.size, what_d)
### END HIDDEN TESTS
print(msg("03.gpu_sum_all_visible", "gpu_sum: all visible tests passed."))

# %% [markdown] key="warp-level-reduction-shuffles"
# ## 5. Warp-level reduction with shuffles (GPU only)
#
# The threads of a **warp** can read each other's registers directly, without shared memory or a
# block barrier: `cuda.shfl_down_sync(mask, value, delta)` returns `value` from the thread `delta`
# lanes further on. Five shuffles (`delta` = 16, 8, 4, 2, 1) sum a warp's 32 values into lane 0. A
# block then needs shared memory only for one value per warp, and one barrier instead of
# `log2(blockDim)`; the block's result goes to the total with one atomic add.
#
# **Why the mask.** Since Volta (compute capability 7.0), **independent thread scheduling** lets the
# threads of a warp run apart: after a branch, the hardware may execute some lanes while others wait,
# and nothing promises that they meet again on their own. A shuffle reads another lane's register,
# so that lane must be at the same shuffle at the same time. The `_sync` functions take a **mask**
# of the lanes that take part: each of them waits there until all lanes of the mask arrive, then they
# exchange values. `mask = 0xFFFFFFFF` names all 32 lanes, so every lane of the warp must reach the
# call (the block size must be a multiple of 32, and no lane may skip it in a branch). Code that
# relied on a warp running in lock-step, as pre-Volta examples did, is wrong on today's GPUs.
#
# The simulator has no `cuda.shfl_*` functions, so the kernel is defined here and launched on a GPU
# only.

# %%
from techday.i18n import msg
FULL_MASK = 0xFFFFFFFF
WARPS_MAX = 32  # 1,024 threads per block at most: 32 warps


@cuda.jit(device=True)
def warp_sum(value):
    """Sum of value over the 32 lanes of the warp, in lane 0."""
    delta = 16
    while delta > 0:
        value += cuda.shfl_down_sync(FULL_MASK, value, delta)
        delta //= 2
    return value


@cuda.jit
def sum_warp_shuffle(x, total):
    warp_sums = cuda.shared.array(WARPS_MAX, float64)
    lane = cuda.threadIdx.x % 32
    warp = cuda.threadIdx.x // 32
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        acc += x[i]
    acc = warp_sum(acc)                    # 1. each warp sums its lanes, no shared memory
    if lane == 0:
        warp_sums[warp] = acc
    cuda.syncthreads()                     # 2. one barrier: every warp's sum is stored
    if warp == 0:
        n_warps = cuda.blockDim.x // 32
        acc = warp_sums[lane] if lane < n_warps else 0.0
        acc = warp_sum(acc)                # 3. the first warp sums the warps' sums
        if lane == 0:
            cuda.atomic.add(total, 0, acc)  # 4. one atomic per block


if lab.gpu_only(msg("03.gpu_only_warp_shuffle", "warp-shuffle reduction (cuda.shfl_down_sync is missing from the simulator)")):
    x_w = np.random.default_rng(7).random(lab.size(full=10_000_019, ci=100_003))
    d_total = cuda.to_device(np.zeros(1))
    sum_warp_shuffle[MAX_SUM_BLOCKS, 256](cuda.to_device(x_w), d_total)
    got_w = float(d_total.copy_to_host()[0])
    assert math.isclose(got_w, math.fsum(x_w), rel_tol=1e-12), msg("03.warp_shuffle_sum_w", "warp-shuffle sum {got_w} != {math_fsum_x_w}", got_w=got_w, math_fsum_x_w=math.fsum(x_w))
    print(msg("03.warp_shuffle_result", "sum_warp_shuffle on {n:,} values: {got:.6f} (math.fsum: {exact:.6f})", n=x_w.size,
              got=got_w, exact=math.fsum(x_w)))
else:
    print(msg("03.kernel_above_compiles_gpu", "The kernel above compiles for a GPU; run the lab on one to see it work."))

# %% [markdown] key="compared-sum-cuda-reduce"
# ## 6. Compared: your sum, `cuda.reduce` and NumPy
#
# Numba ships a ready-made reduction: `cuda.reduce(binary_function)` builds a reduction kernel
# (tree and warp steps, two passes) from a binary function. All of them should agree with NumPy,
# **up to rounding**: a float sum depends on the order of the additions, and each of these adds in
# a different order. `math.fsum` gives the exactly rounded sum, the referee. We check first, then
# time: on a GPU with CUDA events (copies excluded: the input is already on the device); on the
# CPU tier only NumPy is timed, and that is a CPU figure.

# %%
from techday.i18n import msg, pad
sum_reduce = cuda.reduce(lambda a, b: a + b)

n_cmp = lab.size(full=16_000_057, ci=2_003)
h_cmp = np.random.default_rng(8).random(n_cmp)
d_cmp = cuda.to_device(h_cmp)
exact = math.fsum(h_cmp)
yours = msg("03.gpu_sum_yours", "gpu_sum (yours)")
results = {msg("03.fsum_exact", "math.fsum (exact)"): exact, "np.sum": float(np.sum(h_cmp)),
           yours: gpu_sum(d_cmp), "cuda.reduce": float(sum_reduce(d_cmp))}
for name, value in results.items():
    print(msg("03.relative_error", "{name} {value:.10f}   relative error {error:.1e}", name=pad(name, 22), value=value,
              error=abs(value - exact) / exact))
    assert math.isclose(value, exact, rel_tol=1e-10), msg("03.name_off_value_vs", "{name} is off: {value} vs {exact}", name=name, value=value, exact=exact)

if lab.on_gpu:
    from techday.labtools import time_cuda

    label = lab.timing_label()
    nbytes = n_cmp * h_cmp.itemsize
    for name, fn in ((yours, lambda: gpu_sum(d_cmp)), ("cuda.reduce", lambda: sum_reduce(d_cmp))):
        t = time_cuda(fn, repeat=10, what=f"{name}, n={n_cmp:,}", label=label)
        print(msg("03.gbs_read", "{timing}  ->  {gbs:.0f} GB/s read", timing=t, gbs=nbytes / t.median / 1e9))  # each value read once
    t_np = time_cpu(np.sum, h_cmp, what=msg("03.what_np_sum_host", "np.sum on the host, n={n:,}", n=n_cmp), label="CPU")
    print(f"{t_np}  ->  {nbytes / t_np.median / 1e9:.1f} GB/s")
    print(msg("03.both_gpu_timings_include", "Both GPU timings include copying one float back to the host, which synchronises."))
else:
    t_np = time_cpu(np.sum, h_cmp, what=f"np.sum, n={n_cmp:,}", label=lab.timing_label())
    print(t_np)
    print(msg("03.simulated_kernels_are_timed", "The simulated kernels are not timed: they run Python threads, and their times say nothing about a GPU."))

# %% [markdown] key="random-numbers-monte-carlo"
# ## 7. Random numbers on the GPU: Monte Carlo
#
# A **Monte Carlo** method estimates a number from many random samples: option prices, particle
# transport, the integral of a function nobody can integrate by hand. Every sample is independent,
# which suits a GPU, provided each thread has random numbers of its own.
#
# `numba.cuda.random` gives each thread a **generator state** of its own: 16 bytes of a
# xoroshiro128+ generator, one entry per thread in a device array.
#
# ```python
# from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float32
# states = create_xoroshiro128p_states(n_threads, seed=7)   # one state per thread, on the device
# x = xoroshiro128p_uniform_float32(states, i)               # in a kernel: uniform in [0, 1), advances states[i]
# ```
#
# The states are one long sequence cut into pieces `2**64` numbers apart, so no two threads ever draw
# the same numbers, and the same seed gives the same numbers on every run. The rule: **thread `i`
# draws only from `states[i]`** with its global index. Two threads sharing a state race on it
# (lab 02's race, on the 16 bytes of the state): both draw the same numbers or skip some, and the
# statistics go quietly wrong. Taking `cuda.threadIdx.x` as the index does that: thread 5 of every
# block shares state 5.
#
# **pi from darts.** A point `(x, y)` uniform in the unit square lands inside the quarter circle
# `x * x + y * y <= 1` with probability `pi / 4`. Throw `n` darts, count the hits `h`: `4 * h / n`
# estimates pi, with a standard error of about `1.6 / sqrt(n)`: a hundred times more darts for each
# extra digit.
#
# (In the simulator the generator's 64-bit arithmetic runs in NumPy, which warns on the wrap-around
# the generator is built on; `quiet_generator()` from `techday.simtools` hides those warnings around a
# launch and nothing else.)
#
# ## Exercise 5: `pi_darts_kernel` (3 points)
#
# Write `pi_darts_kernel(states, darts_per_thread, hits)`: thread `i` (its index in the grid) throws
# `darts_per_thread` darts, drawing `x` then `y` for each one from `states[i]` with
# `xoroshiro128p_uniform_float32`, and writes into `hits[i]` how many landed inside the quarter circle.
# Count in a local variable and write once. The grid may have more threads than `hits` has entries:
# those threads do nothing.
#
# The tests replay every thread's darts on the host from a copy of the states, so they check each
# thread's count and that each state was advanced by exactly its own thread's draws.

# %% nbgrader="locked" id="random_imports"
from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float32

from techday.simtools import quiet_generator

# %% nbgrader="solution" id="pi_darts_kernel"
@cuda.jit
def pi_darts_kernel(states, darts_per_thread, hits):
    """hits[i] = how many of thread i's darts, drawn from states[i], land in the quarter circle."""
    ### BEGIN SOLUTION
    i = cuda.grid(1)
    if i < hits.shape[0]:
        inside = 0
        for _ in range(darts_per_thread):
            x = xoroshiro128p_uniform_float32(states, i)
            y = xoroshiro128p_uniform_float32(states, i)
            if x * x + y * y <= 1.0:
                inside += 1
        hits[i] = inside
    ### END SOLUTION

# %% nbgrader="tests" id="pi_darts_kernel_tests" points=3
"""pi_darts_kernel is a @cuda.jit kernel; with 2 x 32 threads, 25 darts each and seed 7, every thread's count
equals a replay of its own darts on the host (x then y from states[i]), every state is advanced by exactly
its thread's draws, and the estimate of pi is within 5 standard errors; hidden: more threads than entries
of hits (the extra threads write nothing), one block of 96 threads with another seed, one dart a thread; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.labtools import assert_cuda_kernel
from techday.i18n import msg


def replay_darts(h_states, threads, darts):
    """(hits per thread, darts near the circle per thread) from a host copy of the states, advanced here."""
    hits_r, near_r = np.zeros(threads, np.int64), np.zeros(threads, np.int64)
    for t in range(threads):
        for _ in range(darts):
            x = xoroshiro128p_uniform_float32(h_states, t)
            y = xoroshiro128p_uniform_float32(h_states, t)
            r = float(x) * float(x) + float(y) * float(y)
            hits_r[t] += r <= 1.0
            near_r[t] += abs(r - 1.0) < 1e-5  # a GPU may round x * x + y * y differently (a fused multiply-add)
    return hits_r, near_r


def check_darts(blocks, threads, entries, darts, seed, what):
    n_states = blocks * threads
    with quiet_generator():
        d_states = create_xoroshiro128p_states(n_states, seed=seed)
        h_states = d_states.copy_to_host()
        d_hits = cuda.to_device(np.full(entries + 1, -1, np.int64))  # one guard entry past the end
        pi_darts_kernel[blocks, threads](d_states, darts, d_hits[:entries])
        want, near = replay_darts(h_states, entries, darts)
    got = d_hits.copy_to_host()
    assert got[entries] == -1, msg("03.darts_past_the_end", "{what}: a thread wrote past the end of hits", what=what)
    off = np.flatnonzero(np.abs(got[:entries] - want) > near)
    assert off.size == 0, msg(
        "03.darts_counts_differ", "{what}: {count} of {entries} threads counted differently from a replay of their "
        "own darts; first thread {first}: got {got}, replay {want}. Thread i draws x, then y, from states[i], "
        "with i = cuda.grid(1)", what=what, count=off.size, entries=entries, first=int(off[0]) if off.size else -1,
        got=int(got[off[0]]) if off.size else 0, want=int(want[off[0]]) if off.size else 0)
    advanced = d_states.copy_to_host()  # the replay advanced the host copy of the first `entries` states
    assert np.array_equal(advanced[:entries], h_states[:entries]), msg(
        "03.darts_states_not_advanced", "{what}: the generator states are not where {darts} darts of their own "
        "thread leave them: each thread draws 2 numbers per dart from its own state only", what=what, darts=darts)
    assert np.array_equal(advanced[entries:], h_states[entries:]), msg(
        "03.darts_extra_threads_drew", "{what}: threads past the end of hits drew numbers: they should do nothing",
        what=what)
    return got[:entries]


assert_cuda_kernel(pi_darts_kernel, "pi_darts_kernel")
counts = check_darts(2, 32, 64, 25, 7, msg("03.what_darts_visible", "2 x 32 threads, 25 darts each"))
n_darts = counts.size * 25
pi_hat = 4 * counts.sum() / n_darts
assert abs(pi_hat - np.pi) < 5 * 1.7 / np.sqrt(n_darts), msg(
    "03.darts_pi_far", "pi estimated as {pi_hat:.4f} from {n:,} darts: too far from pi", pi_hat=pi_hat, n=n_darts)
### BEGIN HIDDEN TESTS
check_darts(2, 32, 50, 10, 11, msg("03.what_hidden_darts_extra", "hidden: 2 x 32 threads for 50 entries of hits"))
check_darts(1, 96, 96, 8, 2026, msg("03.what_hidden_darts_block", "hidden: one block of 96 threads, seed 2026"))
check_darts(3, 32, 96, 1, 5, msg("03.what_hidden_darts_one", "hidden: one dart a thread"))
# Drawn at every grading (techday.draw): the launches above are published with the course.
import techday.draw

rd = techday.draw.rng("03.pi_darts_kernel_tests")
blocks_d, threads_d, darts_d, seed_d = int(rd.integers(1, 4)), int(rd.choice([32, 64])), int(rd.integers(1, 12)), int(rd.integers(1, 2**31))
entries_d = int(rd.integers(1, blocks_d * threads_d + 1))
check_darts(blocks_d, threads_d, entries_d, darts_d, seed_d,
            msg("03.what_hidden_drawn_darts", "hidden: {blocks} x {threads} threads for {entries} entries of hits, {darts} "
                "darts each, seed {seed}", blocks=blocks_d, threads=threads_d, entries=entries_d, darts=darts_d, seed=seed_d))
### END HIDDEN TESTS
print(msg("03.pi_darts_kernel_all_visible", "pi_darts_kernel: all visible tests passed."))

# %% [markdown] key="darts-error-shrinks"
# ### The error shrinks as 1 / sqrt(n)
#
# More darts, a better pi: each line below throws ten times more darts than the one before (the
# same kernel, more darts per thread) and prints the error against `math.pi` beside the standard error
# `1.64 / sqrt(n)`. On a GPU each launch is timed with CUDA events (the states stay on the device; each
# repeat draws new darts); the CPU tier runs the kernel in the simulator and does not time it.

# %%
from techday.i18n import msg
from techday.labtools import time_cuda

threads_mc = lab.size(full=256 * 1_024, ci=2 * 32)
blocks_mc = threads_mc // (256 if lab.on_gpu else 32)
with quiet_generator():
    d_states_mc = create_xoroshiro128p_states(threads_mc, seed=2026)
    d_hits_mc = cuda.device_array(threads_mc, np.int64)
    for darts_mc in lab.size(full=[4, 40, 400], ci=[1, 4, 16]):
        n_mc = threads_mc * darts_mc
        launch = lambda: pi_darts_kernel[blocks_mc, threads_mc // blocks_mc](d_states_mc, darts_mc, d_hits_mc)
        if lab.on_gpu:
            t_mc = time_cuda(launch, repeat=5, what=msg("03.what_darts", "{n:,} darts", n=n_mc), label=lab.timing_label())
            rate = msg("03.darts_rate_gpu", "{rate:.2f} G darts/s on the GPU", rate=n_mc / t_mc.median / 1e9)
        else:
            launch()
            rate = msg("03.darts_not_timed", "not timed (simulator)")
        pi_mc = 4 * int(d_hits_mc.copy_to_host().sum()) / n_mc
        print(msg("03.darts_error_line", "{n:>13,} darts: pi ~ {pi:.6f}, error {err:.1e}, standard error {se:.1e}; {rate}",
                  n=n_mc, pi=pi_mc, err=abs(pi_mc - math.pi), se=1.64 / math.sqrt(n_mc), rate=rate))
        assert abs(pi_mc - math.pi) < 6 * 1.64 / math.sqrt(n_mc), msg(
            "03.darts_pi_far", "pi estimated as {pi_hat:.4f} from {n:,} darts: too far from pi", pi_hat=pi_mc, n=n_mc)

# %% [markdown] key="summary"
# ## Summary
#
# - `a[i] += v` from many threads loses updates. `cuda.atomic.add(a, i, v)` (and `max`, `min`, ...)
#   is one indivisible read-modify-write, correct but serialised when threads hit one address.
# - Shared memory (`cuda.shared.array(CONSTANT, dtype)`) is a block's fast scratchpad: uninitialised,
#   private to the block, gone when it ends. Privatising a histogram there replaces one global atomic
#   per element with one per bin per block.
# - `cuda.syncthreads()` between writing shared memory and reading what others wrote, and between
#   reading and overwriting; every thread of the block must reach it.
# - Reductions: grid-stride partial sums per thread, a tree in shared memory per block, then a
#   second pass (or one atomic per block). Warp shuffles replace the last steps of the tree with
#   register exchanges (GPU only); their `_sync` mask names the lanes that must meet there, since a
#   warp's threads are scheduled independently (Volta and later).
# - A float sum depends on the order of the additions; compare with a tolerance, against an exact
#   reference such as `math.fsum`.
# - GPU random numbers: one generator state per thread (`create_xoroshiro128p_states(n, seed)`), and
#   thread `i` draws from `states[i]` only. A Monte Carlo estimate's error shrinks as `1 / sqrt(n)`.
#
# ## Going further
#
# - Mark Harris, "Optimizing Parallel Reduction in CUDA" (NVIDIA): seven versions of the tree, from
#   divergent to fully unrolled.
# - Numba CUDA: shared memory, atomics, `cuda.reduce` and warp intrinsics,
#   https://nvidia.github.io/numba-cuda/
# - `compute-sanitizer --tool racecheck python script.py` finds shared-memory races, and
#   `--tool synccheck` misplaced barriers, on a real GPU.
# - CUB's `BlockReduce` and `DeviceHistogram` (the CUDA C++ core libraries) do these jobs in
#   production code; CuPy's `cupy.sum` and `cupy.histogram` call them (lab 05).
# - Next: lab 04, the memory subsystem: coalescing, shared-memory tiles and bank conflicts.
