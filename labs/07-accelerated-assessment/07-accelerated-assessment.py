# %% [markdown] key="track-assessment-image-pipeline"
# # 07 Track assessment: an image pipeline with CUDA kernels
#
# This notebook assesses the accelerated-computing track, in the spirit of the assessment that ends
# NVIDIA DLI's "Fundamentals of Accelerated Computing with CUDA Python". You write a small, real
# pipeline as Numba CUDA kernels: **blur** a grey picture, then **equalise its histogram** so that
# its grey levels spread over the whole range 0..255. It uses everything the track taught: 2-D grids
# and grid-stride loops (lab 02), atomics and a histogram privatised in shared memory (lab 03), and
# memory that stays on the device between kernels (lab 04).
#
# ## You will show
# - a 2-D **stencil** kernel with border handling: a 5 x 5 blur that reads the nearest edge pixel where
#   the stencil leaves the image;
# - a **histogram** kernel with atomic additions, privatised in shared memory, free of races;
# - the **equalisation lookup table** from the cumulative histogram, including the case of an image
#   with a single grey level;
# - a **pipeline** that keeps the data on the device from the first kernel to the last, and is fast
#   enough on a GPU.
#
# ## How it is graded
# Five graded cells, 18 points: blur 4, histogram 3, table 3, pipeline 4, speed 4. Every result is
# compared pixel by pixel with a NumPy reference (`techday.imageref`): integer weights make the blur
# exact, so the comparison is `==`, not "close". Hidden tests use other pictures and shapes that are
# not multiples of any block size, other kernel sizes, launch configurations you did not try, and a
# picture of one grey level. The track's pass rule (`course/syllabus.toml`) asks for at least 80 % of
# this assessment's points.
#
# **The speed test** times your pipeline on the device, on a 4001 x 5999 picture, with CUDA events
# (they measure the GPU's time between two points of the stream, including the gaps in which the GPU
# waits for Python to launch the next kernel), and compares the median with a limit for your GPU
# model from `course/assessment_thresholds.toml` (a GPU the table does not name gets a limit from its measured
# memory bandwidth). On the **CPU tier** there is no GPU to time: Numba's CUDA simulator runs each
# CUDA thread as a Python thread, thousands of times slower than a GPU. There the speed cell still
# checks that the timed function gives the right picture on every call and that a timing record,
# labelled with the tier, was made, and it prints that the speed bar is applied on the GPU tier only.
#
# **How to work**: in each exercise cell, delete `raise NotImplementedError()` and write your code.
# Run the test cell below it; do not edit test cells. You may add cells of your own to experiment.

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# Run this cell first: it chooses the tier and, without a GPU, switches on Numba's CUDA simulator
# before Numba is imported.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("07.title", "07 Track assessment: an image pipeline"))

# %% nbgrader="locked" id="imports"
import math
import warnings

import numpy as np
import numba
from numba import cuda

from techday.imageref import (binomial_weights, blur_reference, equalization_lut_reference, histogram_reference,
                              pipeline_reference, sample_image)
from techday.i18n import msg
from techday.labtools import time_cpu

# Small grids are launched on purpose in the tests (and always in the simulator).
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")

print(msg("07.banner_gpu", "numba {numba} | NumPy {numpy} | kernels run on the GPU", numba=numba.__version__,
          numpy=np.__version__) if lab.on_gpu else
      msg("07.banner_simulator", "numba {numba} | NumPy {numpy} | kernels run in the CUDA simulator (CPU tier)",
          numba=numba.__version__, numpy=np.__version__))

# %% [markdown] key="launch-settings"
# ## The launch settings
#
# Every 2-D kernel of the pipeline runs with blocks of 16 x 16 threads, `x` along the **columns**
# (the contiguous axis) and `y` along the rows, as in lab 02. `grid_2d(shape)` covers an image of
# `shape = (rows, cols)` with such blocks, but caps each side of the grid: at 64 blocks on a GPU
# (4,096 blocks of 256 threads, several per SM), at 1 in the simulator (one block of 256 Python
# threads; a choice of this lab, to keep the simulator quick, not a CUDA rule). So **your kernels
# must use grid-stride loops in both directions**; the tests also launch them with other grids and
# blocks.
# `clear_kernel(a)` writes zeros into a 1-D device array: your pipeline needs it in exercise 4.

# %% nbgrader="locked" id="launch_settings"
BLOCK_2D = (16, 16)                       # (x: columns, y: rows), 256 threads
MAX_SIDE = 64 if lab.on_gpu else 1        # blocks per side of the grid, at most


def grid_2d(shape, block=BLOCK_2D, max_side=None):
    """Blocks (x, y) that cover an image of shape (rows, cols), each side capped at max_side."""
    max_side = MAX_SIDE if max_side is None else max_side
    rows, cols = shape
    return (max(1, min(-(-cols // block[0]), max_side)), max(1, min(-(-rows // block[1]), max_side)))


@cuda.jit
def clear_kernel(a):
    """a[:] = 0 for a 1-D device array, on the device (grid-stride loop)."""
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        a[i] = 0


print(msg("07.grid_for_512", "BLOCK_2D = {block}, MAX_SIDE = {max_side}; a 512 x 512 picture gets grid {grid}", block=BLOCK_2D,
          max_side=MAX_SIDE, grid=grid_2d((512, 512))))

# %% [markdown] key="picture-reference"
# ## The picture and the reference
#
# The picture is `skimage.data.camera()`, a 512 x 512 grey photograph that ships inside scikit-image
# (nothing is downloaded). In the simulator we work on a small crop of it. `techday.imageref` holds
# the NumPy version of every step; your kernels must give exactly the same numbers. Read it: it is
# the specification.
#
# 1. **Blur** with integer weights `w` (an odd `k x k` array; the 5 x 5 binomial kernel
#    `[1, 4, 6, 4, 1]` x `[1, 4, 6, 4, 1]`, sum 256, approximates a Gaussian):
#
#    `out[r, c] = (sum over i, j of w[i, j] * img[clamp(r + i - k//2), clamp(c + j - k//2)] + total // 2) // total`
#
#    where `total = w.sum()` and `clamp` keeps a row in `0 .. rows-1` and a column in
#    `0 .. cols-1`: outside the picture, the stencil reads the **nearest edge pixel**
#    (clamp-to-edge, `np.pad(mode="edge")`). Adding `total // 2` before the integer division rounds.
# 2. **Histogram**: `hist[v]` = the number of pixels of grey level `v`, 256 bins.
# 3. **Lookup table**: with `cdf` the running sum of `hist`, `n` the number of pixels, and `cdf_min`
#    the value of `cdf` at the darkest level that occurs, `span = n - cdf_min` and
#
#    `lut[v] = ((cdf[v] - cdf_min) * 255 + span // 2) // span`, clipped to 0..255.
#
#    If `span == 0` (every pixel has the same level) there is nothing to stretch: `lut[v] = v`.
# 4. **Lookup**: `out[r, c] = lut[blurred[r, c]]`, the histogram being that of the *blurred* picture.

# %%
WEIGHTS = binomial_weights(5)
rows_demo, cols_demo = (512, 512) if lab.on_gpu else (45, 61)
picture = sample_image("camera", (rows_demo, cols_demo), origin=(0, 0) if lab.on_gpu else (190, 200))
expected_picture = pipeline_reference(picture, WEIGHTS)
print(msg("07.weights_sum", "weights (sum {total}):", total=int(WEIGHTS.sum())))
print(WEIGHTS)
print(msg("07.picture_levels", "picture {shape} {dtype}: grey levels {low}..{high}, {distinct} distinct", shape=picture.shape,
          dtype=picture.dtype, low=picture.min(), high=picture.max(), distinct=np.count_nonzero(histogram_reference(picture))))
print(msg("07.reference_levels", "after blur + equalisation (reference): levels {low}..{high}, std {std_before:.1f} -> {std_after:.1f}",
          low=expected_picture.min(), high=expected_picture.max(), std_before=picture.std(), std_after=expected_picture.std()))
t_ref = time_cpu(pipeline_reference, picture, WEIGHTS, repeat=3, what=msg("07.what_reference", "NumPy reference pipeline"),
                 label=msg("07.label_reference", "CPU (NumPy), not a GPU figure"))
print(t_ref)

# %% [markdown] key="blur-kernel"
# ## Exercise 1: the blur kernel (4 points)
#
# Write `blur_kernel(img, weights, out)`: `img` is a 2-D `uint8` device array, `weights` a square
# `int32` array of odd size `k`, `out` a 2-D integer array of the same shape as `img`. Write the
# blurred value of every pixel into `out`, as specified above, with 2-D grid-stride loops.
#
# - Border handling is the point of the exercise: clamp each row index into `0 .. rows-1` and each
#   column index into `0 .. cols-1` (`min(max(y, 0), rows - 1)`). Numba's simulator raises
#   `IndexError` for a read outside the picture; on a GPU such a read is not checked: it may silently
#   return other data or stop the kernel with an illegal-address error.
# - `weights[i, j]` multiplies the pixel `i - k//2` rows down and `j - k//2` columns right. Hidden
#   tests use weights that are not symmetric, kernels of size 3 and 7, and pictures smaller than
#   the kernel.
# - Compute `total` from `weights` inside the kernel (a loop over `k * k` values), and add in
#   integers: `uint8 * int32` sums are exact.

# %% nbgrader="solution" id="blur_kernel"
@cuda.jit
def blur_kernel(img, weights, out):
    """out[r, c] = rounded weighted sum of the clamped k x k neighbourhood of img[r, c]."""
    ### BEGIN SOLUTION
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    rows, cols = img.shape
    k = weights.shape[0]
    r = k // 2
    total = 0
    for i in range(k):
        for j in range(k):
            total += weights[i, j]
    for row in range(row0, rows, row_stride):
        for col in range(col0, cols, col_stride):
            acc = 0
            for i in range(k):
                y = min(max(row + i - r, 0), rows - 1)
                for j in range(k):
                    x = min(max(col + j - r, 0), cols - 1)
                    acc += weights[i, j] * img[y, x]
            out[row, col] = (acc + total // 2) // total
    ### END SOLUTION

# %% nbgrader="tests" id="blur_kernel_tests" points=4
"""blur_kernel is a @cuda.jit kernel and equals blur_reference (clamp-to-edge, rounded) on a 45 x 61 crop
of camera() with the 5 x 5 binomial weights, 2 x 2 blocks of 16 x 16 threads (grid-stride loops), and
leaves img unchanged; hidden: other pictures, odd shapes, 1 x n and n x 1, a picture smaller than the
kernel, 3 x 3 and 7 x 7 kernels, weights that are not symmetric, a constant picture, an int16 output
poisoned with -1, and cases drawn afresh at every grading (techday.draw: pictures, shapes, origins, weights,
grids and blocks in the same ranges, one row and one column among them)."""
import numpy as np
from numba import cuda
from techday.i18n import msg
from techday.imageref import binomial_weights, blur_reference, sample_image
from techday.labtools import assert_cuda_kernel


def run_blur(img, weights, grid, block, out_dtype=np.uint8):
    d_img = cuda.to_device(img)
    poison = -1 if np.dtype(out_dtype).kind == "i" else 0
    d_out = cuda.to_device(np.full(img.shape, poison, out_dtype))
    blur_kernel[grid, block](d_img, cuda.to_device(np.asarray(weights, np.int32)), d_out)
    assert np.array_equal(d_img.copy_to_host(), img), msg("07.blur_changed_input",
                                                          "blur_kernel changed its input img: write only into out")
    return d_out.copy_to_host()


def check_blur(img, weights, grid, block, what, out_dtype=np.uint8):
    got = run_blur(img, weights, grid, block, out_dtype)
    want = blur_reference(img, weights)
    bad = np.argwhere(got != want)
    if bad.size:
        r, c = (int(v) for v in bad[0])
        rows, cols = img.shape
        k = np.asarray(weights).shape[0]
        fields = dict(what=what, bad=len(bad), size=img.size, r=r, c=c, got=got[r, c], want=want[r, c])
        if min(r, c, rows - 1 - r, cols - 1 - c) < k // 2:
            raise AssertionError(msg("07.blur_differ_edge", "{what}: {bad} of {size} pixels differ; first at (row {r}, "
                                     "col {c}) (within k//2 of the edge: check the clamping): got {got}, expected {want}",
                                     **fields))
        raise AssertionError(msg("07.blur_differ", "{what}: {bad} of {size} pixels differ; first at (row {r}, col {c}): "
                                 "got {got}, expected {want}", **fields))


assert_cuda_kernel(blur_kernel, "blur_kernel")
img_v = sample_image("camera", (45, 61), origin=(190, 200))
check_blur(img_v, binomial_weights(5), (2, 2), (16, 16),
           msg("07.blur_what_visible", "blur_kernel, camera 45 x 61, 5 x 5, grid (2, 2)"))
### BEGIN HIDDEN TESTS
asym = np.array([[0, 1, 0], [2, 4, 1], [0, 3, 5]], np.int32)  # weights[i, j] is not weights[j, i]
for name_h, shape_h, origin_h, weights_h, grid_h, block_h, dtype_h in (
    ("coins", (23, 37), (100, 150), binomial_weights(3), (1, 1), (8, 8), np.uint8),
    ("moon", (19, 26), (250, 250), binomial_weights(7), (3, 2), (8, 4), np.int16),
    ("page", (31, 17), (40, 60), asym, (2, 3), (4, 8), np.int16),
    ("camera", (1, 50), (300, 0), binomial_weights(5), (2, 1), (32, 2), np.uint8),
    ("camera", (50, 1), (0, 300), binomial_weights(5), (1, 2), (2, 32), np.uint8),
    ("text", (2, 3), (80, 80), binomial_weights(5), (1, 1), (4, 4), np.int16),
    ("camera", (61, 45), (190, 200), binomial_weights(5), (2, 2), (16, 16), np.uint8),
):
    img_h = sample_image(name_h, shape_h, origin=origin_h)
    check_blur(img_h, weights_h, grid_h, block_h,
               msg("07.blur_what_hidden", "hidden: {name} {shape}, {k} x {k} weights, grid {grid}, block {block}, "
                   "out {dtype}", name=name_h, shape=shape_h, k=weights_h.shape[0], grid=grid_h, block=block_h,
                   dtype=np.dtype(dtype_h).name), dtype_h)
check_blur(np.full((21, 34), 77, np.uint8), binomial_weights(5), (2, 2), (8, 8),
           msg("07.blur_what_constant", "hidden: constant picture of 77"))
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw
from techday.imageref import SAMPLES

rng_d = techday.draw.rng("07.blur_kernel_tests")
for shape_d in ((1, int(rng_d.integers(2, 60))), (int(rng_d.integers(2, 60)), 1),
                (int(rng_d.integers(1, 4)), int(rng_d.integers(1, 4))),
                (int(rng_d.integers(5, 40)), int(rng_d.integers(5, 40)))):
    name_d, k_d = str(rng_d.choice(SAMPLES)), int(rng_d.choice([3, 5, 7]))
    weights_d = rng_d.integers(0, 10, (k_d, k_d)).astype(np.int32)
    weights_d[k_d // 2, k_d // 2] += 1
    grid_d = (int(rng_d.integers(1, 4)), int(rng_d.integers(1, 4)))
    block_d = [(16, 16), (8, 8), (32, 2), (2, 32), (8, 4), (4, 8)][int(rng_d.integers(6))]
    dtype_d = (np.uint8, np.int16)[int(rng_d.integers(2))]
    img_d = sample_image(name_d, shape_d, origin=(int(rng_d.integers(0, 400)), int(rng_d.integers(0, 400))))
    check_blur(img_d, weights_d, grid_d, block_d,
               msg("07.blur_what_hidden", "hidden: {name} {shape}, {k} x {k} weights, grid {grid}, block {block}, "
                   "out {dtype}", name=name_d, shape=shape_d, k=k_d, grid=grid_d, block=block_d,
                   dtype=np.dtype(dtype_d).name), dtype_d)
### END HIDDEN TESTS
print(msg("07.blur_all_visible", "blur_kernel: all visible tests passed."))

# %% [markdown] key="histogram-kernel"
# ## Exercise 2: the histogram kernel (3 points)
#
# Write `histogram_kernel(img, hist)`: **add** to `hist` (an `int32` device array of 256 zeros when
# the tests call it) the number of pixels of each grey level of the 2-D `uint8` array `img`.
#
# Many threads update the same bins at once, so the additions must be **atomic**
# (`cuda.atomic.add(array, index, value)`, lab 03). On a GPU, 256 global counters under the atomics
# of a whole grid become a queue; do what lab 03 did: each block counts into its own 256 counters in
# **shared memory** (`cuda.shared.array(256, numba.int32)`), then adds them to `hist` once.
#
# - Zero the shared counters first, with all threads of the block, however many they are (tests use
#   blocks of 32 threads too); wait (`cuda.syncthreads()`) before counting, and again before the
#   block adds its counters to `hist`. A missing barrier is a race: some counts are lost.
# - Use 2-D grid-stride loops over the pixels.
# - On the CPU tier the hidden tests also run the kernel under `check_races()` (lab 03): a race fails
#   them even when the counts came out right that time (the simulator runs one block after another).

# %% nbgrader="solution" id="histogram_kernel"
@cuda.jit
def histogram_kernel(img, hist):
    """hist[v] += number of pixels of img equal to v, for v in 0..255."""
    ### BEGIN SOLUTION
    local = cuda.shared.array(256, numba.int32)
    t = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    threads = cuda.blockDim.x * cuda.blockDim.y
    for b in range(t, 256, threads):
        local[b] = 0
    cuda.syncthreads()
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            cuda.atomic.add(local, img[row, col], 1)
    cuda.syncthreads()
    for b in range(t, 256, threads):
        if local[b] != 0:
            cuda.atomic.add(hist, b, local[b])
    ### END SOLUTION

# %% nbgrader="tests" id="histogram_kernel_tests" points=3
"""histogram_kernel is a @cuda.jit kernel, counts the grey levels of a 45 x 61 crop of camera() exactly
like np.bincount with 2 x 2 blocks of 16 x 16 threads, and adds to hist rather than overwriting it;
hidden: other pictures and shapes, blocks of 32 and of 384 threads, more threads than pixels, a constant
picture, a picture that uses every grey level, and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.i18n import msg
from techday.imageref import histogram_reference, sample_image
from techday.labtools import assert_cuda_kernel


def run_histogram(img, grid, block, start=None):
    start = np.zeros(256, np.int32) if start is None else start
    d_hist = cuda.to_device(start.astype(np.int32))
    histogram_kernel[grid, block](cuda.to_device(img), d_hist)
    return d_hist.copy_to_host()


def check_histogram(img, grid, block, what):
    got = run_histogram(img, grid, block)
    want = histogram_reference(img)
    counted = int(got.astype(np.int64).sum())
    assert counted >= img.size, msg(
        "07.hist_lost", "{what}: counted {counted} of {size} pixels (counts were lost: an addition that is not "
        "atomic, a missing cuda.syncthreads(), or threads that do not cover every pixel: a grid-stride loop?)",
        what=what, counted=counted, size=img.size)
    assert counted == img.size, msg(
        "07.hist_extra", "{what}: counted {counted} of {size} pixels (counters not zeroed, or pixels counted twice)",
        what=what, counted=counted, size=img.size)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, msg("07.hist_bins_differ", "{what}: {bad} bins differ; first bin {bin}: got {got}, expected {want}",
                              what=what, bad=bad.size, bin=bad[0] if bad.size else -1,
                              got=got[bad[0]] if bad.size else None, want=want[bad[0]] if bad.size else None)


assert_cuda_kernel(histogram_kernel, "histogram_kernel")
img_v = sample_image("camera", (45, 61), origin=(190, 200))
check_histogram(img_v, (2, 2), (16, 16),
                msg("07.hist_what_visible", "histogram_kernel, camera 45 x 61, grid (2, 2), block (16, 16)"))
again = run_histogram(img_v, (2, 2), (16, 16), start=np.full(256, 5, np.int32))
assert np.array_equal(again, histogram_reference(img_v) + 5), msg("07.hist_must_add",
                                                                  "histogram_kernel must add to hist, not overwrite it")
### BEGIN HIDDEN TESTS
for name_h, shape_h, origin_h, grid_h, block_h in (
    ("coins", (37, 23), (120, 30), (3, 1), (32, 8)),
    ("moon", (29, 41), (200, 260), (2, 2), (8, 4)),       # 32 threads a block: zero 256 counters in a loop
    ("brick", (33, 64), (10, 10), (1, 1), (32, 12)),       # 384 threads a block: more threads than bins
    ("gravel", (5, 7), (0, 0), (3, 2), (8, 8)),            # more threads than pixels
    ("camera", (1, 77), (400, 100), (3, 1), (16, 2)),
):
    check_histogram(sample_image(name_h, shape_h, origin=origin_h), grid_h, block_h,
                    msg("07.hist_what_hidden", "hidden: {name} {shape}, grid {grid}, block {block}",
                        name=name_h, shape=shape_h, grid=grid_h, block=block_h))
check_histogram(np.full((26, 39), 200, np.uint8), (2, 2), (16, 16), msg("07.hist_what_constant",
                                                                        "hidden: constant picture of 200"))
ramp = (np.arange(24 * 32) % 256).astype(np.uint8).reshape(24, 32)
check_histogram(ramp, (2, 1), (16, 16), msg("07.hist_what_every_level", "hidden: every grey level"))
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw
from techday.imageref import SAMPLES

rng_d = techday.draw.rng("07.histogram_kernel_tests")
for shape_d, grid_d, block_d in (((1, int(rng_d.integers(2, 90))), (int(rng_d.integers(1, 4)), 1), (32, 1)),
                                 ((int(rng_d.integers(1, 6)), int(rng_d.integers(1, 8))), (2, 2), (16, 8)),
                                 ((int(rng_d.integers(10, 40)), int(rng_d.integers(10, 40))),
                                  (int(rng_d.integers(1, 4)), int(rng_d.integers(1, 4))),
                                  [(8, 4), (16, 16), (32, 12), (4, 8)][int(rng_d.integers(4))])):
    name_d = str(rng_d.choice(SAMPLES))
    check_histogram(sample_image(name_d, shape_d, origin=(int(rng_d.integers(0, 400)), int(rng_d.integers(0, 400)))),
                    grid_d, block_d, msg("07.hist_what_hidden", "hidden: {name} {shape}, grid {grid}, block {block}",
                                         name=name_d, shape=shape_d, grid=grid_d, block=block_d))
noise_d = rng_d.integers(0, 256, (int(rng_d.integers(8, 30)), int(rng_d.integers(8, 30)))).astype(np.uint8)
check_histogram(noise_d, (2, 2), (8, 8), msg("07.hist_what_noise", "hidden: random grey levels {shape}, grid (2, 2), "
                                             "block (8, 8)", shape=noise_d.shape))
# Races, whatever order the threads ran in (CPU tier: every access of the simulator checked). The
# simulator runs one block after another, so a plain hist[b] += local[b] never loses a count there, nor
# does a plain local[v] += 1 often; on a GPU both do.
if lab.on_gpu:
    print(msg("07.hist_race_cpu_only", "hidden: the race check follows the simulator's memory accesses, on the CPU "
              "tier only"))
else:
    from techday.simtrace import check_races

    img_r = sample_image("coins", (23, 29), origin=(60, 60))
    with check_races() as races_r:
        got_r = run_histogram(img_r, (2, 2), (8, 8))
    assert not races_r, msg("07.hist_race", "hidden: histogram_kernel, race-checked on a 23 x 29 picture, grid "
                            "(2, 2), block (8, 8): {race}", race=races_r.first())
    assert np.array_equal(got_r, histogram_reference(img_r)), msg(
        "07.hist_race_checked_wrong", "hidden: histogram_kernel, race-checked: wrong result")
### END HIDDEN TESTS
print(msg("07.hist_all_visible", "histogram_kernel: all visible tests passed."))

# %% [markdown] key="equalisation-lookup-table"
# ## Exercise 3: the equalisation lookup table (3 points)
#
# Write `lut_kernel(hist, lut)`, launched as `lut_kernel[1, 256](hist, lut)`: one block, thread `v`
# computes `lut[v]` (a `uint8` array of 256) from the 256 counts of `hist` (`int32`), as specified
# above. Each thread needs `n` (the sum of all counts), `cdf[v]` (the sum of the counts of levels
# `0..v`, **including** `v`) and `cdf_min` (the count of the darkest level that occurs, the first
# non-zero bin).
#
# - Copy `hist` into a shared array first and wait: 256 threads reading shared memory are cheap.
# - Counts reach tens of millions at the speed test's size, and `(cdf - cdf_min) * 255` would
#   overflow 32 bits: compute in 64-bit integers (for example a `numba.int64` shared array).
# - A picture of one grey level has `span = n - cdf_min = 0`: then `lut[v] = v`.

# %% nbgrader="solution" id="lut_kernel"
@cuda.jit
def lut_kernel(hist, lut):
    """lut[v] for v = cuda.threadIdx.x: the equalisation table of the 256-bin histogram hist."""
    ### BEGIN SOLUTION
    counts = cuda.shared.array(256, numba.int64)
    v = cuda.threadIdx.x
    counts[v] = hist[v]
    cuda.syncthreads()
    n = 0
    cdf = 0
    cdf_min = 0
    for b in range(256):
        c = counts[b]
        n += c
        if b <= v:
            cdf += c
        if cdf_min == 0:
            cdf_min = c
    span = n - cdf_min
    if span == 0:
        lut[v] = v
    else:
        level = ((cdf - cdf_min) * 255 + span // 2) // span
        lut[v] = min(max(level, 0), 255)
    ### END SOLUTION

# %% nbgrader="tests" id="lut_kernel_tests" points=3
"""lut_kernel is a @cuda.jit kernel, and lut_kernel[1, 256] gives equalization_lut_reference's table for
the histogram of a blurred 45 x 61 crop of camera(); hidden: one grey level (identity), two levels, empty
bins at both ends, the extremes 0 and 255 only, counts of a 4001 x 5999 picture (64-bit arithmetic), the
uniform histogram, and histograms drawn afresh at every grading (techday.draw) of each of these kinds."""
import numpy as np
from numba import cuda
from techday.i18n import msg
from techday.imageref import binomial_weights, blur_reference, equalization_lut_reference, histogram_reference, sample_image
from techday.labtools import assert_cuda_kernel


def check_lut(hist, what):
    d_lut = cuda.to_device(np.full(256, 7, np.uint8))
    lut_kernel[1, 256](cuda.to_device(np.asarray(hist, np.int32)), d_lut)
    got = d_lut.copy_to_host()
    want = equalization_lut_reference(hist)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, msg("07.lut_differ", "{what}: {bad} of 256 entries differ; first lut[{v}] = {got}, expected "
                              "{want} (cdf includes level v itself; subtract cdf_min; round with span // 2)",
                              what=what, bad=bad.size, v=bad[0] if bad.size else -1,
                              got=got[bad[0]] if bad.size else None, want=want[bad[0]] if bad.size else None)


assert_cuda_kernel(lut_kernel, "lut_kernel")
blurred_v = blur_reference(sample_image("camera", (45, 61), origin=(190, 200)), binomial_weights(5))
check_lut(histogram_reference(blurred_v), msg("07.lut_what_visible", "lut_kernel, histogram of a blurred camera crop"))
### BEGIN HIDDEN TESTS
one = np.zeros(256, np.int64)
one[77] = 1_000
check_lut(one, msg("07.lut_what_one", "hidden: one grey level (lut must be the identity)"))
two = np.zeros(256, np.int64)
two[[40, 41]] = [3, 1_000]
check_lut(two, msg("07.lut_what_two", "hidden: two neighbouring levels"))
ends = np.zeros(256, np.int64)
ends[[0, 255]] = [10, 30]
check_lut(ends, msg("07.lut_what_ends", "hidden: levels 0 and 255 only"))
rng_h = np.random.default_rng(7)
middle = np.zeros(256, np.int64)
middle[30:200] = rng_h.integers(0, 50, 170)
middle[30] = 5
check_lut(middle, msg("07.lut_what_middle", "hidden: empty bins below 30 and above 199"))
big = histogram_reference(sample_image("camera", (4001, 5999)))
check_lut(big, msg("07.lut_what_big", "hidden: counts of a 4001 x 5999 picture (use 64-bit integers)"))
check_lut(np.full(256, 3, np.int64), msg("07.lut_what_uniform", "hidden: uniform histogram"))
# Drawn at every grading (techday.draw): the histograms above are published with the course.
import techday.draw

rng_d = techday.draw.rng("07.lut_kernel_tests")
one_d = np.zeros(256, np.int64)
one_d[int(rng_d.integers(256))] = int(rng_d.integers(1, 100_000))
check_lut(one_d, msg("07.lut_what_one", "hidden: one grey level (lut must be the identity)"))
two_d = np.zeros(256, np.int64)
two_d[rng_d.choice(256, 2, replace=False)] = rng_d.integers(1, 5_000, 2)
levels_d = tuple(int(v) for v in np.flatnonzero(two_d))
check_lut(two_d, msg("07.lut_what_two_drawn", "hidden: two grey levels, {levels}", levels=levels_d))
low_d, high_d = sorted(int(v) for v in rng_d.choice(256, 2, replace=False))
middle_d = np.zeros(256, np.int64)
middle_d[low_d:high_d + 1] = rng_d.integers(0, 50, high_d + 1 - low_d)
middle_d[low_d] = int(rng_d.integers(1, 50))
check_lut(middle_d, msg("07.lut_what_middle_drawn", "hidden: empty bins below {low} and above {high}", low=low_d,
                        high=high_d))
big_d = rng_d.integers(0, 400_000, 256)  # tens of millions of pixels: (cdf - cdf_min) * 255 passes 2**31
big_d[:int(rng_d.integers(0, 40))] = 0
check_lut(big_d, msg("07.lut_what_big_drawn", "hidden: counts of {pixels} pixels (use 64-bit integers)",
                     pixels=int(big_d.sum())))
### END HIDDEN TESTS
print(msg("07.lut_all_visible", "lut_kernel: all visible tests passed."))

# %% [markdown] key="pipeline-device"
# ## Exercise 4: the pipeline on the device (4 points)
#
# Put it together. Write
#
# - `apply_lut_kernel(img, lut, out)`: `out[r, c] = lut[img[r, c]]`, 2-D grid-stride loops;
# - `equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)`: the whole pipeline on
#   **device arrays** that the caller allocated: blur `d_img` into `d_blurred`, count its histogram
#   into `d_hist` (which holds the previous call's counts: clear it first, on the device), build
#   `d_lut`, and write the equalised picture into `d_out`. No copies to or from the host in here: the
#   speed test calls it many times in a row on the same buffers and times it with CUDA events;
# - `equalize(img, weights)`: the host version, for a NumPy `uint8` picture: copy it and the
#   weights to the device, allocate the other buffers (`d_hist`: 256 `int32`, `d_lut`: 256 `uint8`,
#   `d_blurred` and `d_out`: `uint8` like the picture), call `equalize_device`, and return the
#   result as a NumPy `uint8` array of the picture's shape.
#
# Launch the 2-D kernels with `grid_2d(shape)` and `BLOCK_2D`, and `lut_kernel` with `[1, 256]`.
# To clear `d_hist`, launch `clear_kernel[1, 256](d_hist)` (defined with the launch settings above).
# The grader checks that every step ran as its kernel, on the previous step's output, and that the
# picture you return is what `apply_lut_kernel` wrote.

# %% nbgrader="solution" id="pipeline"
@cuda.jit
def apply_lut_kernel(img, lut, out):
    """out[r, c] = lut[img[r, c]]"""
    ### BEGIN SOLUTION
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]
    ### END SOLUTION


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    """Blur d_img, equalise the blurred picture's histogram, write it into d_out: all on the device."""
    ### BEGIN SOLUTION
    grid = grid_2d(d_img.shape)
    clear_kernel[1, 256](d_hist)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    histogram_kernel[grid, BLOCK_2D](d_blurred, d_hist)
    lut_kernel[1, 256](d_hist, d_lut)
    apply_lut_kernel[grid, BLOCK_2D](d_blurred, d_lut, d_out)
    ### END SOLUTION


def equalize(img, weights):
    """Host in, host out: the blurred, equalised uint8 picture."""
    ### BEGIN SOLUTION
    d_img = cuda.to_device(np.ascontiguousarray(img, np.uint8))
    d_weights = cuda.to_device(np.asarray(weights, np.int32))
    d_blurred = cuda.device_array(img.shape, np.uint8)
    d_out = cuda.device_array(img.shape, np.uint8)
    d_hist = cuda.device_array(256, np.int32)
    d_lut = cuda.device_array(256, np.uint8)
    equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)
    return d_out.copy_to_host()
    ### END SOLUTION

# %% nbgrader="tests" id="pipeline_tests" points=4
"""equalize returns a NumPy uint8 array equal to pipeline_reference (blur, then equalise the blurred
picture) for the demo picture (a crop of camera() on the CPU tier, all of it on a GPU), and leaves its
input unchanged; apply_lut_kernel and the kernels of exercises 1 to 3 are @cuda.jit kernels; hidden:
other pictures, shapes that are not multiples of 16, 1 x n, a constant picture, a second call of
equalize_device on used buffers, on a GPU a 1000 x 1500 picture, and the kernels did the work: blur,
histogram, table and lookup each launched on the previous one's output, over the whole picture, and the
result is what apply_lut_kernel wrote."""
import numpy as np
from numba import cuda
from techday.i18n import msg
from techday.imageref import binomial_weights, pipeline_reference, sample_image
from techday.labtools import same_memory, watch_kernels

# The pipeline's kernels, with the argument each one writes.
PIPELINE_KERNELS = {"blur_kernel": (2,), "histogram_kernel": (1,), "lut_kernel": (1,), "apply_lut_kernel": (2,)}


def check_pipeline_launches(watch, shape, out, what):
    """Each step ran as its kernel, on the previous step's output, over the whole picture; out is the last one's."""
    for name in PIPELINE_KERNELS:
        assert watch[name].launches, msg("07.pipe_never_launched", "{what}: {name} was never launched: every step runs "
                                         "on the device, as its kernel", what=what, name=name)
    blur, hist, lut, lookup = (watch[name].launches[-1] for name in PIPELINE_KERNELS)
    assert tuple(blur.args[0].shape) == tuple(shape), msg(
        "07.pipe_blur_shape", "{what}: blur_kernel read a picture of shape {got}, not the whole {want} picture",
        what=what, got=tuple(blur.args[0].shape), want=tuple(shape))
    assert same_memory(hist.args[0], blur.args[2]), msg("07.pipe_hist_input",
                                                        "{what}: histogram_kernel must count the picture blur_kernel wrote",
                                                        what=what)
    counted = int(hist.written[1].astype(np.int64).sum())
    assert counted == int(np.prod(shape)), msg(
        "07.pipe_hist_counts", "{what}: after histogram_kernel, d_hist holds {counted} counts for {pixels} pixels: "
        "clear it on the device, then count every pixel", what=what, counted=counted, pixels=int(np.prod(shape)))
    assert same_memory(lut.args[0], hist.args[1]), msg("07.pipe_lut_input",
                                                       "{what}: lut_kernel must read the histogram histogram_kernel counted",
                                                       what=what)
    assert same_memory(lookup.args[0], blur.args[2]) and same_memory(lookup.args[1], lut.args[1]), msg(
        "07.pipe_lookup_input", "{what}: apply_lut_kernel must look the blurred picture up in the table lut_kernel wrote",
        what=what)
    written = lookup.written[2]
    assert written.shape == tuple(shape) and np.array_equal(out, written), msg(
        "07.pipe_result_not_kernel", "{what}: the result is not what apply_lut_kernel wrote: keep the kernels' output, "
        "do not compute it on the host", what=what)


def check_equalize(img, weights, what):
    before = img.copy()
    with watch_kernels(globals(), PIPELINE_KERNELS) as watch:
        got = equalize(img, weights)
    assert isinstance(got, np.ndarray), msg("07.pipe_not_numpy", "{what}: equalize must return a NumPy array "
                                            "(copy_to_host), not {type}", what=what, type=type(got))
    assert got.shape == img.shape and got.dtype == np.uint8, msg(
        "07.pipe_dtype_shape", "{what}: expected uint8 {shape}, got {dtype} {got_shape}",
        what=what, shape=img.shape, dtype=got.dtype, got_shape=got.shape)
    assert np.array_equal(img, before), msg("07.pipe_changed_input", "{what}: equalize changed its input", what=what)
    want = pipeline_reference(img, weights)
    bad = np.argwhere(got != want)
    assert bad.size == 0, msg("07.pipe_differ", "{what}: {bad} of {size} pixels differ; first at {at}: got {got}, "
                              "expected {want}", what=what, bad=len(bad), size=img.size,
                              at=tuple(int(v) for v in bad[0]), got=got[tuple(bad[0])], want=want[tuple(bad[0])])
    return watch, got


watch_v, got_v = check_equalize(picture, WEIGHTS, msg("07.pipe_what_visible", "equalize, camera {shape}",
                                                      shape=picture.shape))
### BEGIN HIDDEN TESTS
check_pipeline_launches(watch_v, picture.shape, got_v, msg("07.pipe_what_hidden_camera", "hidden: equalize, camera {shape}",
                                                           shape=picture.shape))
for name_h, shape_h, origin_h, k_h in (("coins", (33, 47), (120, 160), 5), ("moon", (1, 90), (256, 0), 3),
                                       ("clock", (40, 29), (100, 200), 7)):
    what_h = msg("07.pipe_what_hidden", "hidden: {name} {shape}, {k} x {k}", name=name_h, shape=shape_h, k=k_h)
    watch_h, got_h = check_equalize(sample_image(name_h, shape_h, origin=origin_h), binomial_weights(k_h), what_h)
    check_pipeline_launches(watch_h, shape_h, got_h, what_h)
check_equalize(np.full((23, 35), 123, np.uint8), binomial_weights(5),
               msg("07.pipe_what_constant", "hidden: constant picture of 123"))
# Drawn at every grading (techday.draw): the pictures above are published with the course.
import techday.draw
from techday.imageref import SAMPLES

rng_d = techday.draw.rng("07.pipeline_tests")
for shape_d in ((int(rng_d.integers(1, 3)), int(rng_d.integers(30, 80))),
                (int(rng_d.integers(10, 40)), int(rng_d.integers(10, 40)))):
    name_d, k_d = str(rng_d.choice(SAMPLES)), int(rng_d.choice([3, 5, 7]))
    what_d = msg("07.pipe_what_hidden", "hidden: {name} {shape}, {k} x {k}", name=name_d, shape=shape_d, k=k_d)
    img_d = sample_image(name_d, shape_d, origin=(int(rng_d.integers(0, 400)), int(rng_d.integers(0, 400))))
    watch_d, got_d = check_equalize(img_d, binomial_weights(k_d), what_d)
    check_pipeline_launches(watch_d, shape_d, got_d, what_d)
if lab.on_gpu:
    check_equalize(sample_image("gravel", (1000, 1500)), binomial_weights(5),
                   msg("07.pipe_what_gravel", "hidden: gravel 1000 x 1500"))
img_h = sample_image("coins", (27, 38), origin=(50, 50))
bufs_h = [cuda.to_device(img_h), cuda.to_device(binomial_weights(5)), cuda.device_array(img_h.shape, np.uint8),
          cuda.to_device(np.full(256, 99, np.int32)), cuda.device_array(256, np.uint8),
          cuda.device_array(img_h.shape, np.uint8)]
for call in (1, 2):
    with watch_kernels(globals(), PIPELINE_KERNELS) as watch_h:
        equalize_device(*bufs_h)
    got_h = bufs_h[-1].copy_to_host()
    assert np.array_equal(got_h, pipeline_reference(img_h, binomial_weights(5))), msg(
        "07.pipe_old_counts", "hidden: equalize_device, call {call} on buffers whose d_hist held old counts: "
        "clear d_hist on the device first", call=call)
    check_pipeline_launches(watch_h, img_h.shape, got_h, msg("07.pipe_what_call", "hidden: equalize_device, call {call}",
                                                             call=call))
    assert same_memory(watch_h["apply_lut_kernel"].launches[-1].args[2], bufs_h[-1]), msg(
        "07.pipe_write_d_out", "hidden: equalize_device, call {call}: apply_lut_kernel must write into d_out", call=call)
### END HIDDEN TESTS
print(msg("07.pipe_all_visible", "equalize: all visible tests passed."))

# %% [markdown] key="note"
# What the pipeline does to the picture: the blur softens it, the equalisation spreads the grey
# levels over the whole range. On the right, the cumulative histogram of the result ("after") comes
# close to a straight line from 0 to 1: each level holds about the same share of the pixels, where
# the original ("before") climbs in steep steps at its crowded levels.

# %%
import matplotlib.pyplot as plt

result = equalize(picture, WEIGHTS)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
axes[0].imshow(picture, cmap="gray", vmin=0, vmax=255)
axes[0].set_title(msg("07.plot_camera", "camera {shape}", shape=picture.shape))
axes[1].imshow(result, cmap="gray", vmin=0, vmax=255)
axes[1].set_title(msg("07.plot_equalised", "blurred + equalised"))
axes[2].plot(np.cumsum(histogram_reference(picture)) / picture.size, label=msg("07.plot_before", "before"))
axes[2].plot(np.cumsum(histogram_reference(result)) / result.size, label=msg("07.plot_after", "after"))
axes[2].set_title(msg("07.plot_cumulative", "cumulative histogram"))
axes[2].legend()
for ax in axes[:2]:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown] key="speed-test"
# ## The speed test (4 points)
#
# The last graded cell times `equalize_device` on buffers that stay on the device, so no copy between
# host and device is timed. Kernel launches are asynchronous: each returns to Python before its
# kernel has run, and CUDA events time the span on the GPU between two recorded points. That span
# includes Numba's launch path whenever the GPU runs out of work and waits for Python to launch the
# next kernel, which is why the limit below allows time for each launch. `speed_buffers` below makes
# those buffers for a picture; the cell warms up first (the first calls compile your kernels), then takes the median.
#
# - **On a GPU** the hidden part times a 4001 x 5999 picture with CUDA events (20 calls) and compares
#   the median with the limit for your GPU model in `course/assessment_thresholds.toml`. The limits
#   follow one rule, written in that file: 300 times the time the pipeline's least memory traffic
#   (5 bytes a pixel) takes at the GPU's memory bandwidth, plus 0.1 ms a launch. The slack of 300 comes
#   from the one GPU the reference solution has been timed on, an H200, where the histogram's atomics
#   and not memory traffic bound it: there the bar is about 4 times the reference. The rule is meant
#   to let any pipeline pass that stays on the device and launches grid-stride kernels over the
#   whole picture (with the histogram privatised in shared memory, as in exercise 2), and to stop
#   copies to the host inside `equalize_device`, NumPy on the host, or launches of a handful of
#   threads. The limits are computed from published bandwidths and that one measurement, not yet
#   measured on every model;
#   the file says how an instructor recalibrates them. A GPU that the table does not name gets the
#   same rule at the bandwidth this cell measures with a copy kernel.
# - **On the CPU tier** a timing measures the simulator, not your kernels, so no speed bar can be
#   judged. The cell still runs the timed function several times on the same buffers and checks the
#   picture after the last call (so `d_hist` must be cleared on every call), makes the timing record
#   with the tier's label ("CPU/simulator (not a GPU figure)"), and prints that the speed bar is
#   applied on the GPU tier only. Graded on a GPU, the same cell also applies the bar.

# %% nbgrader="locked" id="speed_helpers"
def speed_buffers(img_or_shape, weights=None):
    """Device buffers for equalize_device: (d_img, d_weights, d_blurred, d_hist, d_lut, d_out).
    Give a picture, or a shape (rows, cols) for camera() tiled to that shape."""
    img = sample_image("camera", tuple(img_or_shape)) if np.ndim(img_or_shape) == 1 else img_or_shape
    weights = binomial_weights(5) if weights is None else weights
    return (cuda.to_device(img), cuda.to_device(np.asarray(weights, np.int32)), cuda.device_array(img.shape, np.uint8),
            cuda.device_array(256, np.int32), cuda.device_array(256, np.uint8), cuda.device_array(img.shape, np.uint8))


def time_pipeline(buffers, what):
    """Median time of equalize_device on buffers: CUDA events on a GPU, the host clock on the CPU tier."""
    if lab.on_gpu:
        from techday.labtools import time_cuda
        return time_cuda(equalize_device, *buffers, repeat=20, warmup=3, what=what, label=lab.timing_label())
    return time_cpu(equalize_device, *buffers, repeat=1, warmup=1, what=what, label=lab.timing_label())


def speed_record(timing, shape, bar=None):
    """What the speed test reports: the tier, the label, the median, and the bar if one applied."""
    return {"lab": "07-accelerated-assessment", "tier": lab.tier, "label": timing.label, "shape": list(shape),
            "calls": len(timing.seconds), "median_ms": round(timing.median * 1e3, 4),
            "limit_ms": None if bar is None else bar.limit_ms,
            "bar": bar.describe() if bar is not None else "applied by the hidden test" if lab.on_gpu else "not applied (CPU tier)"}

# %% nbgrader="tests" id="speed_tests" points=4
"""equalize_device, timed on device buffers (CUDA events on a GPU, the host clock on the CPU tier),
still gives pipeline_reference's picture after every timed call, and a timing record labelled with the
tier is made; hidden: one untimed call whose work the kernels did (as in the pipeline tests); GPU tier: the median at 4001 x 5999 is within the limit for this GPU in
course/assessment_thresholds.toml (its table row, else the rule at the measured bandwidth); CPU tier:
the same checks on another picture, and a printed note that the speed bar is applied on GPU only."""
import json
import numpy as np
from techday.i18n import msg
from techday.imageref import binomial_weights, pipeline_reference, sample_image

shape_s = (2048, 2048) if lab.on_gpu else (40, 52)
img_s = sample_image("camera", shape_s, origin=(0, 0) if lab.on_gpu else (300, 150))
buffers_s = speed_buffers(img_s)
timing_s = time_pipeline(buffers_s, f"equalize_device {shape_s[0]} x {shape_s[1]}")
out_s = buffers_s[-1].copy_to_host()
assert np.array_equal(out_s, pipeline_reference(img_s, binomial_weights(5))), msg(
    "07.speed_wrong_after_calls", "equalize_device gave a wrong picture after {calls} calls on the same buffers "
    "(is d_hist cleared on the device at every call?)", calls=len(timing_s.seconds) + 1)
record_s = speed_record(timing_s, shape_s)
assert record_s["tier"] == lab.tier and record_s["label"] == lab.timing_label() and record_s["median_ms"] > 0
print(timing_s)
print(json.dumps(record_s))
### BEGIN HIDDEN TESTS
# The timed function does its work in kernels: one call, watched and not timed, on a small picture.
from techday.labtools import watch_kernels

img_k = sample_image("coins", (21, 30), origin=(60, 90))
buffers_k = speed_buffers(img_k)
with watch_kernels(globals(), PIPELINE_KERNELS) as watch_k:
    equalize_device(*buffers_k)
out_k = buffers_k[-1].copy_to_host()
assert np.array_equal(out_k, pipeline_reference(img_k, binomial_weights(5))), msg(
    "07.speed_wrong_coins", "hidden: equalize_device gave a wrong coins 21 x 30 picture")
check_pipeline_launches(watch_k, img_k.shape, out_k, msg("07.speed_what_timed", "hidden: the timed equalize_device"))
if lab.on_gpu:
    from techday.assessment import load_thresholds, measure_copy_bandwidth_gbs, theoretical_bandwidth_gbs

    limits_h = load_thresholds()
    shape_h = limits_h.rule.shape
    bandwidth_h = None
    if limits_h.entry_for(lab.gpu.name) is None:
        try:
            bandwidth_h = measure_copy_bandwidth_gbs()
        except Exception as exc:  # a failed measurement falls back to the driver's clock and bus width
            print(msg("07.speed_bandwidth_not_measured", "copy bandwidth not measured ({exc}); using the theoretical "
                      "figure", exc=exc))
            bandwidth_h = theoretical_bandwidth_gbs(lab.gpu)
    bar_h = limits_h.limit_for(lab.gpu.name, bandwidth_gbs=bandwidth_h)
    img_h = sample_image("camera", shape_h)
    buffers_h = speed_buffers(img_h)
    timing_h = time_pipeline(buffers_h, f"equalize_device {shape_h[0]} x {shape_h[1]}")
    assert np.array_equal(buffers_h[-1].copy_to_host(), pipeline_reference(img_h, binomial_weights(5))), msg(
        "07.speed_wrong_after_timed", "hidden: equalize_device gave a wrong {shape} picture after the timed calls",
        shape=shape_h)
    record_h = speed_record(timing_h, shape_h, bar_h)
    print(timing_h)
    print(json.dumps(record_h))
    assert timing_h.median * 1e3 <= bar_h.limit_ms, msg(
        "07.speed_over_bar", "hidden: equalize_device takes {ms:.3f} ms (median) at {rows} x {cols}, over the {bar}",
        ms=timing_h.median * 1e3, rows=shape_h[0], cols=shape_h[1], bar=bar_h.describe())
else:
    img_h = sample_image("coins", (31, 43), origin=(150, 200))
    buffers_h = speed_buffers(img_h, binomial_weights(3))
    timing_h = time_pipeline(buffers_h, "equalize_device 31 x 43, 3 x 3")
    assert np.array_equal(buffers_h[-1].copy_to_host(), pipeline_reference(img_h, binomial_weights(3))), msg(
        "07.speed_wrong_two_calls", "hidden: equalize_device gave a wrong coins 31 x 43 picture after two calls on the "
        "same buffers")
    record_h = speed_record(timing_h, (31, 43))
    assert record_h["tier"] == "cpu" and "not a GPU figure" in record_h["label"]
    print(json.dumps(record_h))
    print(msg("07.speed_bar_gpu_only_hidden", "Speed bar: applied on the GPU tier only; on the CPU tier this cell "
              "checks correctness and the record."))
### END HIDDEN TESTS
if not lab.on_gpu:
    print(msg("07.speed_bar_gpu_only", "[GPU only] the speed bar (course/assessment_thresholds.toml) is applied on "
              "the GPU tier only: this timing is a CPU/simulator figure and says nothing about GPU speed."))

# %% [markdown] key="summary"
# ## Summary
#
# - A stencil reads neighbours: decide what happens at the border (here clamp-to-edge) and keep
#   every index inside the array; integer weights make a blur exact and testable with `==`.
# - A histogram is many threads updating few counters: atomics make it right, counters privatised in
#   shared memory make it fast, and `cuda.syncthreads()` before and after counting keeps it right.
# - Histogram equalisation maps each level through the normalised cumulative histogram; a picture of
#   one level is the case that divides by zero if you forget it.
# - A pipeline keeps its data on the device between kernels and clears its scratch buffers itself;
#   only then does timing it with CUDA events measure the device's work (plus any gaps in which the
#   GPU waits for the next launch from Python).
# - The speed bar comes from a stated rule (memory traffic at the device's bandwidth, with slack),
#   per GPU model; on the CPU tier correctness is graded and speed is not.
#
# ## Going further
#
# - A 5 x 5 binomial blur is *separable*: a 1 x 5 pass then a 5 x 1 pass do 10 multiplications a
#   pixel instead of 25; keep the first pass's sums unrounded (16-bit) so that the result stays
#   exact. Tile the picture in shared memory (lab 04) so each block reads each pixel once.
# - `cv2.equalizeHist` and `skimage.exposure.equalize_hist` use slightly different formulas
#   (skimage returns floats in 0..1); CLAHE (`skimage.exposure.equalize_adapthist`) equalises
#   tiles separately.
# - CuPy's `cupyx.scipy.ndimage.convolve` and `cupy.histogram` give a one-line GPU baseline to compare
#   your kernels with (lab 05).
# - Nsight Systems (`nsys profile python ...`) shows the five launches of the pipeline and the gaps
#   between them; CUDA Graphs replay a recorded sequence of launches and remove most of the launch
#   cost.
