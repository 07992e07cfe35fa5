# %% [markdown] key="memory-subsystem-coalescing-shared"
# # 04 The memory subsystem: coalescing, shared memory, tiling
#
# Most kernels you will write are limited by memory, not arithmetic: a GPU can do dozens of
# floating-point operations in the time it takes to fetch one value from global memory. This lab
# is about feeding the GPU: how a warp's memory accesses are combined (coalescing), how 2-D blocks
# and shared-memory **tiles** turn bad access patterns into good ones, how shared memory's **banks**
# can serialise a warp, and how tiling makes a matrix product reuse every value it loads. It ends
# by reading what the compiler says a kernel costs: registers, shared memory and spills.
#
# ## You will learn
# - the memory hierarchy (registers, shared memory and L1, L2, global memory) and what a **coalesced**
#   access is: the 32 threads of a warp reading neighbouring addresses, in as few 32-byte sectors as
#   possible; strided access measured against it;
# - 2-D grids and blocks that cover a matrix with **tiles**;
# - a matrix **transpose** three ways: naive, through a shared-memory tile, and with the tile
#   **padded** by one column to remove shared-memory **bank conflicts**;
# - a **tiled matrix multiply** that loads each value once per tile instead of once per product;
# - reading the **resource report** of a kernel (registers per thread, shared memory per block,
#   spills) from `compile_ptx` and `ptxas -v`, on any machine, and what it means for occupancy.
#
# **How this lab works**: read, run the examples, then solve the three exercises.
# In each exercise cell, delete `raise NotImplementedError()` and write your code.
# The cell after it runs the tests; do not edit test cells.
# The grader also runs hidden tests, on shapes you do not see here: not square, not multiples of
# the tile.
#
# Points: exercise 1: 2, exercise 2: 4, exercise 3: 5 (11 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# As in every lab, the code cell below chooses the **tier** and prints it. Without a GPU the kernels
# run in Numba's CUDA **simulator**: results are checked as on a GPU, but the simulator has no
# caches, sectors or banks, so nothing about memory speed can be measured there. Run this cell first.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("04.title", "04 The memory subsystem"))

# %% nbgrader="locked" id="imports"
import math
import warnings

import numpy as np
import numba
from numba import cuda, float32

from techday.labtools import assert_close
from techday.simtools import quicker_barriers

# Numba warns when a grid has fewer than 128 blocks; this lab launches small grids on purpose.
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")
quicker_barriers()  # simulator only: its cuda.syncthreads() polls Python threads; switch them more often

from techday.i18n import msg

print(msg("04.banner_gpu", "numba {numba} | NumPy {numpy} | kernels run on the GPU", numba=numba.__version__,
          numpy=np.__version__) if lab.on_gpu else
      msg("04.banner_simulator", "numba {numba} | NumPy {numpy} | kernels run in the CUDA simulator (CPU tier)",
          numba=numba.__version__, numpy=np.__version__))

# %% [markdown] key="memory-hierarchy"
# ## 1. The memory hierarchy
#
# | memory | where | size (H100 SXM, for scale) | who sees it | latency |
# | --- | --- | --- | --- | --- |
# | registers | in each SM | 64 K x 32-bit per SM, up to 255 per thread | one thread | ~1 cycle |
# | shared memory / L1 | in each SM | up to 228 KiB per SM (shared and L1 split it) | one block | ~30 cycles |
# | L2 cache | on chip | 50 MiB | all SMs | ~200 cycles |
# | global memory (HBM) | off chip | 80 GiB at ~3.35 TB/s | all threads, and the host | ~500 cycles |
#
# Global memory is read and written in **32-byte sectors**. When the 32 threads of a warp load one
# 4-byte `float32` each, the hardware collects the addresses and fetches the sectors that hold them.
# If thread `k` reads element `i + k`, the warp's 128 bytes sit in 4 sectors: every byte fetched is
# used. That is a **coalesced** access. If thread `k` reads element `i + 8 * k`, every
# thread needs its own sector: 32 sectors, 1,024 bytes fetched for 128 used.
#
# Rule: make `threadIdx.x`, the fastest-varying thread index, walk along the **last**, contiguous
# axis of a C-ordered NumPy array (lab 02 mapped `x` to columns for this reason).
#
# ## 2. Coalesced against strided, measured
#
# `copy_strided` below copies `n` values; thread `i` writes `dst[i]` (coalesced) and reads
# `src[(i * stride) % n]`: with `stride = 1` neighbouring threads read neighbouring values, with
# `stride = 32` each reads 128 bytes away from its neighbour. (`n` is odd and the strides are powers of
# two, so `(i * stride) % n` visits every element exactly once.) The sector arithmetic first, then, on a
# GPU, the measurement. With a stride of 2 the reads fetch twice the bytes they use but the writes stay
# coalesced: 3 units of traffic (2 read, 1 written) for the 2 of stride 1, so expect about two thirds of
# its bandwidth, not half. From a stride of 8 on, every thread's read fetches a sector of its own, 8 times
# what it uses.
#
# `time_cuda` records a CUDA event, launches the kernel and records a second event. Events measure on
# the GPU's clock, but they do not exclude the host: the GPU reaches the first event, then waits while
# Python and Numba launch the kernel, and that wait is counted. With copies of 2 x 128 MiB (about 0.1 ms on
# an H100) the launch overhead, some microseconds, is small; on short kernels it dominates. Lab 08's
# harness keeps it out.

# %%
from techday.i18n import msg


@cuda.jit
def copy_strided(src, dst, stride):
    i = cuda.grid(1)
    n = dst.shape[0]
    if i < n:
        dst[i] = src[(i * stride) % n]   # the read is strided, the write is coalesced


print(msg("04.warp_reading_header", "one warp reading 32 float32 values, 4 bytes each:"))
print(msg("04.stride_table_header", " stride | sectors of 32 B | bytes fetched | bytes used | efficiency"))
for stride in (1, 2, 4, 8, 16, 32):
    span = 32 * stride * 4                     # bytes between the warp's first and last value, roughly
    sectors = min(32, math.ceil(span / 32))    # each value needs its sector; at most one sector per thread
    print(f" {stride:6d} | {sectors:15d} | {sectors * 32:13d} | {128:10d} | {128 / (sectors * 32):9.0%}")

n_c = lab.size(full=2**25 + 1, ci=1_025)       # odd n: (i * stride) % n is a permutation
h_src = np.arange(n_c, dtype=np.float32)
d_src = cuda.to_device(h_src)
d_dst = cuda.device_array_like(d_src)
threads_c = 256
blocks_c = math.ceil(n_c / threads_c)
for stride in (1, 32):                          # the same code path on every tier: check first
    copy_strided[blocks_c, threads_c](d_src, d_dst, stride)
    assert np.array_equal(d_dst.copy_to_host(), h_src[(np.arange(n_c) * stride) % n_c]), \
        msg("04.copy_strided_wrong", "copy_strided stride {stride}", stride=stride)
print(msg("04.copy_strided_checked", "copy_strided checked for strides 1 and 32 on n = {n:,}", n=n_c))

if lab.gpu_only(msg("04.gpu_only_strided", "measuring coalesced and strided copies with CUDA events")):
    from techday.labtools import time_cuda

    nbytes = 2 * n_c * 4                        # read n floats, write n floats
    base = None
    for stride in (1, 2, 4, 8, 16, 32):
        t = time_cuda(lambda: copy_strided[blocks_c, threads_c](d_src, d_dst, stride), repeat=10,
                      what=msg("04.what_copy_strided", "copy_strided, stride {stride:2d}, n={n:,}", stride=stride, n=n_c),
                      label=lab.timing_label())
        gbps = nbytes / t.median / 1e9
        base = base or gbps
        print(msg("04.strided_rate", "{t}  ->  {gbps:7.1f} GB/s ({ratio:4.0%} of stride 1)", t=t, gbps=gbps,
                  ratio=gbps / base))
else:
    print(msg("04.strided_not_timed", "Not timed: the simulator has no sectors or caches, and its times are Python "
              "threads, not GPU figures. On a GPU, expect stride 2 at about two thirds of the bandwidth of stride 1 "
              "(its reads fetch twice the bytes they use, its writes stay coalesced), and strides of 8 or more at "
              "about a fifth of it or less (every read fetches a 32-byte sector for 4 bytes used)."))

# %% [markdown] key="tiles-d-grids-blocks"
# ## 3. Tiles: 2-D grids and blocks
#
# Matrix kernels in this lab use square **tiles** of `TILE x TILE` elements: a block of
# `(TILE, TILE)` threads handles one tile, `threadIdx.x` along the tile's columns, `threadIdx.y`
# along its rows, and the grid has one block per tile. On a GPU `TILE = 32`: a tile row is one warp,
# 128 bytes of `float32`, and a block has 32 x 32 = 1,024 threads, the maximum. The simulator runs a
# Python thread per CUDA thread, so there we use 8 x 8 tiles; the code is the same.

# %% nbgrader="locked" id="tile_constants"
from techday.i18n import msg

# lab.per_tier(name, gpu=..., cpu=...) is the GPU value on the GPU tier and the CPU value in the simulator;
# `techday kernels` compiles the kernels that read it with both values.
TILE = lab.per_tier("TILE", gpu=32, cpu=8)              # tile side; threads per block: TILE x TILE
TILE_PAD = lab.per_tier("TILE_PAD", gpu=33, cpu=9)      # TILE + 1: a padded tile row (section 5)
TILE_ROWS = lab.per_tier("TILE_ROWS", gpu=8, cpu=2)     # rows of threads in a block of exercise 2
assert TILE_PAD == TILE + 1                             # shared array shapes need constants
assert TILE % TILE_ROWS == 0
print(msg("04.tile_constants", "TILE = {tile}, TILE_PAD = {tile_pad}: blocks of {tile} x {tile} = {threads} threads",
          tile=TILE, tile_pad=TILE_PAD, threads=TILE * TILE))

# %% [markdown] key="tile-grid"
# ## Exercise 1: `tile_grid` (2 points)
#
# Write `tile_grid(shape)` that returns the grid `(blocks_x, blocks_y)` of tiles covering a matrix
# of `shape = (rows, cols)`: `x` counts tiles along the **columns**, `y` along the **rows**, and a
# partial tile at the edge still needs its block, so each is a ceiling, in **integer** arithmetic
# (lab 02). Launch a tile kernel with `kernel[tile_grid(a.shape), (TILE, TILE)](...)`.
# Return plain integers.

# %% nbgrader="solution" id="tile_grid"
def tile_grid(shape):
    """(blocks_x, blocks_y): TILE x TILE tiles covering a (rows, cols) matrix, x along columns."""
    ### BEGIN SOLUTION
    rows, cols = shape
    return (cols + TILE - 1) // TILE, (rows + TILE - 1) // TILE
    ### END SOLUTION

# %% nbgrader="tests" id="tile_grid_tests" points=2
"""tile_grid returns (ceil(cols / TILE), ceil(rows / TILE)) as integers for a 37 x 53 matrix and for
exact multiples of TILE; hidden: 1 x 1, one row, one column, one past a multiple, huge shapes; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg


def expected_grid(rows, cols):
    return -(-cols // TILE), -(-rows // TILE)


for shape in ((37, 53), (2 * TILE, 3 * TILE), (TILE, 1)):
    got = tile_grid(shape)
    assert isinstance(got, tuple) and len(got) == 2, \
        msg("04.tile_grid_not_pair", "tile_grid{shape} must return (blocks_x, blocks_y), got {got!r}", shape=shape, got=got)
    assert got == expected_grid(*shape), msg("04.tile_grid_wrong", "tile_grid({shape}) = {got}, expected {want} "
                                             "(x along the columns, y along the rows, each a ceiling)",
                                             shape=shape, got=got, want=expected_grid(*shape))
    assert all(int(v) == v and not isinstance(v, (float, bool)) for v in got), \
        msg("04.tile_grid_not_integers", "tile_grid{shape}: {got!r} are not integers", shape=shape, got=got)
### BEGIN HIDDEN TESTS
for shape_h in ((1, 1), (1, 1_000), (1_000, 1), (TILE + 1, 2 * TILE + 1), (3 * TILE - 1, TILE - 1),
                (2**40 + 1, 7), (5, 2**53 + 1)):
    got_h = tile_grid(shape_h)
    assert got_h == expected_grid(*shape_h), msg("04.hidden_tile_grid_wrong", "hidden: tile_grid({shape}) = {got}, expected {want}",
                                                 shape=shape_h, got=got_h, want=expected_grid(*shape_h))
    assert all(int(v) == v and not isinstance(v, (float, bool)) for v in got_h), \
        msg("04.hidden_not_integers", "hidden: {got!r} are not integers", got=got_h)
# Drawn at every grading (techday.draw): the shapes above are published with the course.
import techday.draw

rd = techday.draw.rng("04.tile_grid_tests")
for shape_h in ((int(rd.integers(1, 5 * TILE)), int(rd.integers(1, 5 * TILE))),
                (int(rd.integers(2**53, 2**62)), int(rd.integers(1, 10**6)))):
    got_h = tile_grid(shape_h)
    assert got_h == expected_grid(*shape_h), msg("04.hidden_tile_grid_wrong", "hidden: tile_grid({shape}) = {got}, expected {want}",
                                                 shape=shape_h, got=got_h, want=expected_grid(*shape_h))
    assert all(int(v) == v and not isinstance(v, (float, bool)) for v in got_h), \
        msg("04.hidden_not_integers", "hidden: {got!r} are not integers", got=got_h)
### END HIDDEN TESTS
print(msg("04.tile_grid_all_visible", "tile_grid: all visible tests passed."))

# %% [markdown] key="naive-transpose"
# ## 4. The naive transpose
#
# `out[c, r] = a[r, c]`: with `x` along `a`'s columns, a warp reads 32 neighbours in a row of `a`
# (coalesced) and writes them down a **column** of `out`, each 4 bytes in a different row, a
# different sector: the write is strided by the row length. Reading along columns instead would
# just move the problem to the reads. One of the two sides of a transpose is always strided, unless
# the data takes a detour.

# %%
from techday.i18n import msg


@cuda.jit
def transpose_naive(a, out):
    col, row = cuda.grid(2)
    if row < a.shape[0] and col < a.shape[1]:
        out[col, row] = a[row, col]    # coalesced read, strided write


def grid_for(shape):
    """The tile grid of a (rows, cols) matrix (the answer to exercise 1, for the examples)."""
    return -(-shape[1] // TILE), -(-shape[0] // TILE)


h_t = np.random.default_rng(4).standard_normal((37, 53)).astype(np.float32)
d_t_out = cuda.to_device(np.full((53, 37), np.nan, np.float32))
transpose_naive[grid_for(h_t.shape), (TILE, TILE)](cuda.to_device(h_t), d_t_out)
assert_close(d_t_out.copy_to_host(), h_t.T, "transpose_naive, 37 x 53", rtol=0)
print(msg("04.transpose_naive_grid", "transpose_naive: 37 x 53 -> 53 x 37 with a {grid} grid of {tile} x {tile} blocks",
          grid=grid_for(h_t.shape), tile=TILE))

# %% [markdown] key="through-shared-memory-bank"
# ## 5. Through shared memory, and bank conflicts
#
# The detour: a block reads a tile of `a` row by row (coalesced) into a shared array, waits at a
# barrier, then writes the **transposed** tile to `out`, again row by row (coalesced). The
# transposition happens inside shared memory, where the access pattern costs little... almost.
#
# ```
#  a (rows x cols)                 out (cols x rows)
#  block (bx, by) reads tile  ──►  block (bx, by) writes tile at rows bx*TILE.., cols by*TILE..
#  tile[ty, tx] = a[by*TILE+ty, bx*TILE+tx]     out[bx*TILE+ty, by*TILE+tx] = tile[tx, ty]
# ```
#
# **Banks**. Shared memory is split into 32 **banks**, 4 bytes wide: word `w` lives in bank
# `w % 32`. A warp's 32 accesses are served in one step if they fall in 32 different banks (threads
# reading the same word share it: a broadcast); `k` different words in one bank take `k` steps: a
# `k`-way **bank conflict**. The write phase reads `tile[tx, ty]`: the 32 threads of a warp (same
# `ty`, `tx` = 0..31) read a **column** of the tile, words `tx * 32 + ty`, all in bank `ty`: a 32-way
# conflict, the warp's read serialised.
#
# **Padding** fixes it: declare the tile `TILE x (TILE + 1)`. Word `tx * 33 + ty` is in bank
# `(tx + ty) % 32`: 32 different banks. One unused column, `TILE * 4` bytes, and no conflict.

# %%
from techday.i18n import msg


def banks_of_column(width, warp=32, banks=32):
    """The banks a warp touches when its threads read column 0 of a float32 tile with rows of `width` words."""
    return sorted({(tx * width) % banks for tx in range(warp)})


for width in (32, 33):
    touched = banks_of_column(width)
    print(msg("04.banks_touched", "tile rows of {width} words: a warp reading one column touches {banks:2d} bank(s) "
              "-> {ways}-way conflict", width=width, banks=len(touched), ways=32 // len(touched))
          + (msg("04.banks_no_conflict", " (none)") if len(touched) == 32 else ""))


@cuda.jit
def transpose_shared(a, out):
    tile = cuda.shared.array((TILE, TILE), float32)   # not padded: 32-way bank conflicts on a GPU
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    if row < a.shape[0] and col < a.shape[1]:
        tile[ty, tx] = a[row, col]                     # coalesced read of a tile row
    cuda.syncthreads()                                 # the whole tile is in before anyone reads it
    out_row = cuda.blockIdx.x * TILE + ty              # the block's tile, transposed: x and y swap
    out_col = cuda.blockIdx.y * TILE + tx
    if out_row < out.shape[0] and out_col < out.shape[1]:
        out[out_row, out_col] = tile[tx, ty]           # coalesced write; reads a column of the tile


d_t_out = cuda.to_device(np.full((53, 37), np.nan, np.float32))
transpose_shared[grid_for(h_t.shape), (TILE, TILE)](cuda.to_device(h_t), d_t_out)
assert_close(d_t_out.copy_to_host(), h_t.T, "transpose_shared, 37 x 53", rtol=0)
print(msg("04.transpose_shared_correct", "transpose_shared: correct on 37 x 53"))

# %% [markdown] key="transpose-padded"
# ## Exercise 2: `transpose_padded`, a quarter of the threads (4 points)
#
# `transpose_shared` gives every element of a tile its own thread: `TILE x TILE` threads a block,
# 1,024 on a GPU, the most a block may have, each doing one load and one store. The fastest
# transposes use a quarter of that: a block of `TILE x TILE_ROWS` threads (`TILE_ROWS = 8` on a GPU,
# 2 in the simulator) still moves a whole `TILE x TILE` tile, so each thread moves
# `TILE // TILE_ROWS` elements of it, and its loads are in flight together. Smaller blocks also
# leave the SM room for more of them at once.
#
# Write `transpose_padded(a, out)`, launched as
# `transpose_padded[tile_grid(a.shape), (TILE, TILE_ROWS)](a, out)`. `a` is `rows x cols`
# `float32`, `out` is `cols x rows`. It must
#
# - stage the block's tile in a **padded** shared array, `cuda.shared.array((TILE, TILE_PAD), float32)`.
#   Write `TILE_PAD`, not `TILE + 1`: on a GPU the shape must be a constant, and Numba does not fold
#   `TILE + 1` (the GPU would not compile it, and the CPU tier refuses it too, with `KernelNotCompiled`);
# - cover all `TILE` rows of the tile with `TILE_ROWS` rows of threads: thread row `ty` takes tile
#   rows `ty`, `ty + TILE_ROWS`, `ty + 2 * TILE_ROWS`, ..., on the way in and on the way out;
# - keep `threadIdx.x` along a **row** of the matrix it touches, in `a` and in `out`: every load
#   and every store coalesced;
# - load only inside `a` and store only inside `out` (the matrices are not multiples of `TILE`, and
#   the two checks use different shapes), with every thread reaching the one barrier between.
#
# Work out on paper which tile element a thread loads and which it stores, for `TILE = 4`,
# `TILE_ROWS = 2`, before you write the loops.
#
# The tests compare with `a.T` on shapes that are not multiples of `TILE`, and compile the kernel to
# PTX to check that its shared memory is one padded tile, `TILE * TILE_PAD * 4` bytes. On the CPU tier
# the hidden tests also trace the kernel (`techday.simtrace`): its warps' loads and stores must be
# coalesced, and with the GPU's block of 32 x 8 threads its reads of the tile free of bank conflicts.

# %% nbgrader="solution" id="transpose_padded"
@cuda.jit
def transpose_padded(a, out):
    """out = a.T through a TILE x TILE_PAD shared tile, blocks of TILE x TILE_ROWS threads."""
    ### BEGIN SOLUTION
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    first_row = cuda.blockIdx.y * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_row + j < a.shape[0] and col < a.shape[1]:
            tile[j, tx] = a[first_row + j, col]
    cuda.syncthreads()
    out_col = cuda.blockIdx.y * TILE + tx
    first_out_row = cuda.blockIdx.x * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_out_row + j < out.shape[0] and out_col < out.shape[1]:
            out[first_out_row + j, out_col] = tile[tx, j]
    ### END SOLUTION

# %% nbgrader="tests" id="transpose_padded_tests" points=4
"""transpose_padded is a @cuda.jit kernel that, launched with blocks of TILE x TILE_ROWS threads, equals a.T
on a NaN-poisoned 37 x 53 float32 output, leaves a unchanged, and its PTX declares one padded tile of
TILE * TILE_PAD * 4 bytes of shared memory; hidden: 1 x 1, exact multiples of TILE, one row, one column,
TILE + 1 x TILE - 1, tall and wide shapes, and on the CPU tier (traced in the simulator) coalesced loads
and stores, and no bank conflicts reading the tile with the GPU's 32 x 8 block; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.labtools import assert_close, assert_cuda_kernel
from techday.ptxreport import ToolkitMissing, resource_reports
from techday.i18n import msg


def run_transpose(kernel, a):
    rows, cols = a.shape
    d_a = cuda.to_device(a)
    d_out = cuda.to_device(np.full((cols, rows), np.nan, np.float32))
    kernel[(-(-cols // TILE), -(-rows // TILE)), (TILE, TILE_ROWS)](d_a, d_out)
    assert np.array_equal(d_a.copy_to_host(), a), msg("04.input_changed", "the kernel changed its input a")
    return d_out.copy_to_host()


def check_transpose(kernel, shape, what):
    a = np.random.default_rng(shape[0] * 1_000 + shape[1]).standard_normal(shape).astype(np.float32)
    got = run_transpose(kernel, a)
    missing = int(np.isnan(got).sum())
    assert missing == 0, msg("04.out_never_written_rows", "{what}: {missing} of {size} elements of out were never "
                             "written. A block has TILE_ROWS = {rows} rows of threads for a tile of TILE = {tile} "
                             "rows: each thread covers rows ty, ty + TILE_ROWS, ... of the tile", what=what,
                             missing=missing, size=got.size, rows=TILE_ROWS, tile=TILE)
    assert_close(got, a.T, msg("04.transpose_of", "{what}: transpose of {rows} x {cols}", what=what, rows=shape[0],
                               cols=shape[1]), rtol=0)


assert_cuda_kernel(transpose_padded, "transpose_padded")
check_transpose(transpose_padded, (37, 53), "transpose_padded")
try:
    shared_bytes = resource_reports({"transpose_padded": (transpose_padded, "void(float32[:, ::1], float32[:, ::1])")},
                                    constants={"TILE": TILE, "TILE_PAD": TILE_PAD, "TILE_ROWS": TILE_ROWS},
                                    use_ptxas=False)["transpose_padded"].shared_bytes_ptx
except ToolkitMissing as missing:
    print(msg("04.padding_check_skipped", "[skipped] the padding check compiles the kernel to PTX, which needs the CUDA "
              "compiler libraries: {missing}", missing=missing))
else:
    assert shared_bytes == TILE * TILE_PAD * 4, msg(
        "04.padded_shared_bytes", "transpose_padded declares {shared_bytes} bytes of shared memory; one padded tile of "
        "TILE x TILE_PAD float32 is {padded} (an unpadded one {unpadded}): cuda.shared.array((TILE, TILE_PAD), float32)",
        shared_bytes=shared_bytes, padded=TILE * TILE_PAD * 4, unpadded=TILE * TILE * 4)
### BEGIN HIDDEN TESTS
for shape_h in ((1, 1), (2 * TILE, 3 * TILE), (1, 3 * TILE + 5), (3 * TILE + 5, 1), (TILE + 1, TILE - 1),
                (70, 9), (9, 70)):
    check_transpose(transpose_padded, shape_h, "hidden: transpose_padded")
# Drawn at every grading (techday.draw): the shapes above are published with the course.
import techday.draw

rd = techday.draw.rng("04.transpose_padded_tests")
for shape_h in ((1, int(rd.integers(2, 4 * TILE))), (int(rd.integers(2, 4 * TILE)), int(rd.integers(2, 4 * TILE)))):
    check_transpose(transpose_padded, shape_h, "hidden: transpose_padded")
# How the kernel touches global memory (CPU tier: the simulator's accesses, traced): on a shape of whole
# tiles, a warp's loads of a and stores to out each fill 32-byte sectors as a coalesced access does.
if lab.on_gpu:
    print(msg("04.hidden_coalescing_cpu_only", "hidden: the coalescing check traces memory accesses in the "
              "simulator, on the CPU tier only"))
else:
    from techday.simtrace import trace_global

    a_c = np.random.default_rng(404).standard_normal((8 * TILE, 6 * TILE)).astype(np.float32)
    d_a_c, d_out_c = cuda.to_device(a_c), cuda.to_device(np.full(a_c.shape[::-1], np.nan, np.float32))
    with trace_global(d_a_c, d_out_c) as trace_c:
        transpose_padded[(6, 8), (TILE, TILE_ROWS)](d_a_c, d_out_c)
    assert np.array_equal(d_out_c.copy_to_host(), a_c.T), msg("04.hidden_traced_wrong", "hidden: transpose_padded, "
                                                               "traced on {rows} x {cols}: wrong result", rows=8 * TILE,
                                                               cols=6 * TILE)
    stores_c, _ = trace_c.sectors(d_out_c, "store")
    loads_c, _ = trace_c.sectors(d_a_c, "load")
    assert stores_c <= 1.25, msg(
        "04.hidden_stores_not_coalesced", "hidden: transpose_padded's stores to out touch {ratio:.1f} times the "
        "32-byte sectors a coalesced store needs: the threads of a warp write down a column of out. Write "
        "out[out_row, out_col] with out_col following threadIdx.x, from the tile read across", ratio=stores_c)
    assert loads_c <= 1.25, msg(
        "04.hidden_loads_not_coalesced", "hidden: transpose_padded's loads of a touch {ratio:.1f} times the 32-byte "
        "sectors a coalesced load needs: read a[row, col] with col following threadIdx.x", ratio=loads_c)
    # Bank conflicts are a matter of 32 banks against a 32-wide tile: the traced launch uses the GPU's
    # constants (one 32 x 32 tile, a block of 32 x 8 threads). The simulator reads TILE, TILE_PAD and
    # TILE_ROWS when the kernel runs, so they are set for this launch and put back after it.
    from techday.simtrace import trace_shared

    tile_constants_c = (TILE, TILE_PAD, TILE_ROWS)
    TILE, TILE_PAD, TILE_ROWS = 32, 33, 8
    try:
        a_b = np.random.default_rng(405).standard_normal((32, 32)).astype(np.float32)
        d_out_b = cuda.to_device(np.full((32, 32), np.nan, np.float32))
        with trace_shared() as shared_b:
            transpose_padded[(1, 1), (32, 8)](cuda.to_device(a_b), d_out_b)
    finally:
        TILE, TILE_PAD, TILE_ROWS = tile_constants_c
    assert np.array_equal(d_out_b.copy_to_host(), a_b.T), msg(
        "04.hidden_gpu_tile_wrong", "hidden: transpose_padded with the GPU's TILE = 32, TILE_ROWS = 8 (a 32 x 32 "
        "matrix, one block of 32 x 8 threads): wrong result")
    passes_b = max(shared_b.bank_conflicts("load")[0], shared_b.bank_conflicts("store")[0])
    assert passes_b <= 1.0, msg(
        "04.hidden_bank_conflicts", "hidden: transpose_padded's accesses to its tile take {passes:.1f} times the "
        "passes a conflict-free access needs, with the GPU's 32 x 32 tile: the threads of a warp read words in the same bank. "
        "Pad the tile, cuda.shared.array((TILE, TILE_PAD), float32), and index it tile[row, column]", passes=passes_b)
    # Races, whatever order the threads ran in (every access of the simulator checked): a block reads the
    # tile only after all of its threads wrote their part of it.
    from techday.simtrace import check_races

    a_r = np.random.default_rng(406).standard_normal((2 * TILE + 3, TILE + 5)).astype(np.float32)
    with check_races() as races_r:
        got_r = run_transpose(transpose_padded, a_r)
    assert not races_r, msg("04.hidden_race_transpose", "hidden: transpose_padded, race-checked on {rows} x {cols}: "
                            "{race}", rows=a_r.shape[0], cols=a_r.shape[1], race=races_r.first())
    assert np.array_equal(got_r, a_r.T), msg("04.hidden_race_checked_wrong", "hidden: {kernel}, race-checked: wrong "
                                             "result", kernel="transpose_padded")
### END HIDDEN TESTS
print(msg("04.transpose_padded_all_visible", "transpose_padded: all visible tests passed."))

# %% [markdown] key="three-transposes-measured"
# ### Three transposes, measured (GPU only)
#
# A transpose reads and writes every element once, `2 * rows * cols * 4` bytes; a plain copy of
# the same matrix is the ceiling. On a GPU, expect the naive transpose well below the copy (strided
# writes), the shared-memory one better, and the padded one close to the copy. (Timed with CUDA events
# around each launch, as in section 2: the launch overhead is inside, small at this size.)

# %%
@cuda.jit
def copy_2d(a, out):
    col, row = cuda.grid(2)
    if row < a.shape[0] and col < a.shape[1]:
        out[row, col] = a[row, col]


from techday.i18n import msg
if lab.gpu_only(msg("04.gpu_only_transposes", "timing the naive, shared and padded transposes with CUDA events")):
    from techday.labtools import time_cuda

    side = lab.size(full=8_192, ci=2_048)
    h_big = np.random.default_rng(5).standard_normal((side, side + 7)).astype(np.float32)
    d_big = cuda.to_device(h_big)
    d_big_t = cuda.device_array((side + 7, side), np.float32)
    d_big_c = cuda.device_array_like(d_big)
    nbytes = 2 * h_big.size * 4
    grid_big = grid_for(h_big.shape)
    for kernel, d_out, block in ((copy_2d, d_big_c, (TILE, TILE)), (transpose_naive, d_big_t, (TILE, TILE)),
                                 (transpose_shared, d_big_t, (TILE, TILE)), (transpose_padded, d_big_t, (TILE, TILE_ROWS))):
        kernel[grid_big, block](d_big, d_out)
        want = h_big if kernel is copy_2d else h_big.T
        assert np.array_equal(d_out.copy_to_host(), want), kernel.__name__
        t = time_cuda(lambda: kernel[grid_big, block](d_big, d_out), repeat=10,
                      what=f"{kernel.__name__:17s} {side} x {side + 7}", label=lab.timing_label())
        print(f"{t}  ->  {nbytes / t.median / 1e9:7.1f} GB/s")
else:
    print(msg("04.transposes_not_timed", "Not timed on the CPU tier: the simulator has no banks or sectors. The kernels above were checked."))

# %% [markdown] key="tiled-matrix-multiply"
# ## 6. A tiled matrix multiply
#
# `C = A @ B` with `A` of `M x K` and `B` of `K x N`: `C[r, c] = sum_k A[r, k] * B[k, c]`. The naive
# kernel below gives each thread one `C[r, c]` and reads a row of `A` and a column of `B` from global
# memory: `2 K` loads for `2 K` flops. Every `A[r, k]` is loaded by all `N` threads of its row of `C`.
#
# **Tiling**: a block computes a `TILE x TILE` tile of `C`. It walks along `K` one tile at a
# time: the block's threads load one `TILE x TILE` tile of `A` and one of `B` into shared memory
# (each thread one element of each, coalesced), wait, then each thread does `TILE` multiply-adds from
# shared memory, and waits again before the next tiles overwrite these. Global loads drop by a
# factor of `TILE`: each loaded value is used `TILE` times.
#
# ```
# for t in range(ceil(K / TILE)):
#     sa[ty, tx] = A[row, t*TILE + tx]   or 0.0 outside A     # load  (coalesced)
#     sb[ty, tx] = B[t*TILE + ty, col]   or 0.0 outside B
#     cuda.syncthreads()                                        # 1. tiles complete
#     for k in range(TILE): acc += sa[ty, k] * sb[k, tx]        # compute from shared memory
#     cuda.syncthreads()                                        # 2. everyone done before the next load
# C[row, col] = acc   if inside C
# ```
#
# The zeros outside `A` and `B` make the partial tiles at the edges add nothing, so the inner loop
# needs no bounds check. Both barriers are needed: without the first, a thread reads tile entries
# nobody loaded yet; without the second, a fast thread loads the **next** tile over values a slow
# thread still needs.

# %%
from techday.i18n import msg


@cuda.jit
def matmul_naive(a, b, c):
    col, row = cuda.grid(2)
    if row < c.shape[0] and col < c.shape[1]:
        acc = float32(0.0)
        for k in range(a.shape[1]):
            acc += a[row, k] * b[k, col]   # 2 global loads per multiply-add
        c[row, col] = acc


h_ma = np.random.default_rng(6).standard_normal((20, 13)).astype(np.float32)
h_mb = np.random.default_rng(7).standard_normal((13, 11)).astype(np.float32)
d_mc = cuda.to_device(np.full((20, 11), np.nan, np.float32))
matmul_naive[grid_for((20, 11)), (TILE, TILE)](cuda.to_device(h_ma), cuda.to_device(h_mb), d_mc)
assert_close(d_mc.copy_to_host(), h_ma.astype(np.float64) @ h_mb, "matmul_naive", rtol=1e-5, atol=1e-5)
print(msg("04.matmul_naive_correct", "matmul_naive: correct on (20 x 13) @ (13 x 11)"))

# %% [markdown] key="matmul-tiled"
# ## Exercise 3: `matmul_tiled` (5 points)
#
# Write `matmul_tiled(a, b, c)`: `c = a @ b` for `float32` matrices of any compatible shapes, with
# the tiled algorithm above, launched as `matmul_tiled[tile_grid(c.shape), (TILE, TILE)](a, b, c)`:
#
# - two shared tiles, **each on its own line** (a quirk of Numba's simulator, not a CUDA rule: there two
#   `cuda.shared.array` calls on one line share one buffer):
#   `sa = cuda.shared.array((TILE, TILE), float32)` and the same for `sb`;
# - `row = blockIdx.y * TILE + ty`, `col = blockIdx.x * TILE + tx`; accumulate in
#   `acc = float32(0.0)` (a `float32` literal keeps the arithmetic in `float32`);
# - the loop over `ceil(K / TILE)` tiles, loading zeros outside `a` and `b`, with both barriers;
# - store `acc` only if `(row, col)` is inside `c`. Every thread, inside `c` or not, takes part in
#   loading and in the barriers.
#
# The tests use shapes that are not multiples of `TILE`, including `K` smaller than a tile, and a
# NaN-poisoned `c`.

# %% nbgrader="solution" id="matmul_tiled"
@cuda.jit
def matmul_tiled(a, b, c):
    """c = a @ b with TILE x TILE shared-memory tiles of a and b."""
    ### BEGIN SOLUTION
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    acc = float32(0.0)
    for t in range((a.shape[1] + TILE - 1) // TILE):
        k_a = t * TILE + tx  # the column of a this thread loads
        k_b = t * TILE + ty  # the row of b this thread loads
        if row < a.shape[0] and k_a < a.shape[1]:
            sa[ty, tx] = a[row, k_a]
        else:
            sa[ty, tx] = float32(0.0)
        if k_b < b.shape[0] and col < b.shape[1]:
            sb[ty, tx] = b[k_b, col]
        else:
            sb[ty, tx] = float32(0.0)
        cuda.syncthreads()
        for k in range(TILE):
            acc += sa[ty, k] * sb[k, tx]
        cuda.syncthreads()
    if row < c.shape[0] and col < c.shape[1]:
        c[row, col] = acc
    ### END SOLUTION

# %% nbgrader="tests" id="matmul_tiled_tests" points=5
"""matmul_tiled is a @cuda.jit kernel and equals a @ b (float64 reference, float32 tolerance) for
(23 x 37) @ (37 x 19) on a NaN-poisoned c, inputs unchanged; hidden: 1 x 1 x 1, exact multiples of
TILE, K smaller than a tile, one row, one column, (17 x 41) @ (41 x 3); and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.labtools import assert_close, assert_cuda_kernel
from techday.i18n import msg


def check_matmul(kernel, m, k, n, what, seed=0):
    rng = np.random.default_rng(seed + 100 * m + 10 * k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    d_a, d_b = cuda.to_device(a), cuda.to_device(b)
    d_c = cuda.to_device(np.full((m, n), np.nan, np.float32))
    kernel[(-(-n // TILE), -(-m // TILE)), (TILE, TILE)](d_a, d_b, d_c)
    c = d_c.copy_to_host()
    assert np.array_equal(d_a.copy_to_host(), a) and np.array_equal(d_b.copy_to_host(), b), \
        msg("04.a_or_b_changed", "{what}: a or b changed", what=what)
    missing = int(np.isnan(c).sum())
    assert missing == 0, msg("04.c_never_written", "{what}: {missing} of {size} elements of c were never written",
                             what=what, missing=missing, size=c.size)
    assert c.dtype == np.float32
    assert_close(c, a.astype(np.float64) @ b, f"{what}: ({m} x {k}) @ ({k} x {n})", rtol=1e-4, atol=1e-4)


assert_cuda_kernel(matmul_tiled, "matmul_tiled")
check_matmul(matmul_tiled, 23, 37, 19, "matmul_tiled")
### BEGIN HIDDEN TESTS
for m_h, k_h, n_h in ((1, 1, 1), (2 * TILE, TILE, 2 * TILE), (5, 3, 17), (1, 2 * TILE + 3, 9), (9, 20, 1),
                      (17, 41, 3)):
    check_matmul(matmul_tiled, m_h, k_h, n_h, "hidden: matmul_tiled", seed=7)
# Drawn at every grading (techday.draw): the sizes above are published with the course.
import techday.draw

rd = techday.draw.rng("04.matmul_tiled_tests")
check_matmul(matmul_tiled, int(rd.integers(1, 3 * TILE)), int(rd.integers(1, 3 * TILE)), int(rd.integers(1, 3 * TILE)),
             "hidden: matmul_tiled", seed=int(rd.integers(1 << 30)))
# Races, whatever order the threads ran in (CPU tier: every access of the simulator checked): the tiles are
# read only after every thread loaded its part, and overwritten only after every thread used them.
if lab.on_gpu:
    print(msg("04.hidden_race_cpu_only", "hidden: the race check follows the simulator's memory accesses, on the "
              "CPU tier only"))
else:
    from techday.simtrace import check_races

    with check_races() as races_m:
        check_matmul(matmul_tiled, TILE + 3, 2 * TILE + 1, TILE - 1, "hidden: matmul_tiled, race-checked", seed=8)
    assert not races_m, msg("04.hidden_race_matmul", "hidden: matmul_tiled, race-checked on ({m} x {k}) @ ({k} x "
                            "{n}): {race}", m=TILE + 3, k=2 * TILE + 1, n=TILE - 1, race=races_m.first())
### END HIDDEN TESTS
print(msg("04.matmul_tiled_all_visible", "matmul_tiled: all visible tests passed."))

# %% [markdown] key="naive-against-tiled-measured"
# ### Naive against tiled, measured (GPU only)
#
# A matrix product does `2 * M * N * K` floating-point operations: multiply and add. We report
# GFLOP/s. For reference, cuBLAS (through CuPy, lab 05) reaches a large fraction of the GPU's peak;
# a simple tiled kernel gets a few times more than the naive one, far from cuBLAS.

# %%
from techday.i18n import msg
if lab.gpu_only(msg("04.gpu_only_matmul", "timing the naive and tiled matrix products with CUDA events")):
    from techday.labtools import time_cuda

    m_t = lab.size(full=2_048, ci=512)
    a_t = np.random.default_rng(8).standard_normal((m_t, m_t + 3)).astype(np.float32)
    b_t = np.random.default_rng(9).standard_normal((m_t + 3, m_t - 5)).astype(np.float32)
    d_at, d_bt = cuda.to_device(a_t), cuda.to_device(b_t)
    d_ct = cuda.device_array((m_t, m_t - 5), np.float32)
    flops = 2 * a_t.shape[0] * a_t.shape[1] * b_t.shape[1]
    grid_t = grid_for(d_ct.shape)
    for kernel in (matmul_naive, matmul_tiled):
        kernel[grid_t, (TILE, TILE)](d_at, d_bt, d_ct)
        # float32 sums of 2,000 products: rounding errors reach ~1e-3 where the result is near 0
        assert_close(d_ct.copy_to_host(), a_t.astype(np.float64) @ b_t, kernel.__name__, rtol=1e-3, atol=1e-2)
        t = time_cuda(lambda: kernel[grid_t, (TILE, TILE)](d_at, d_bt, d_ct), repeat=5,
                      what=f"{kernel.__name__:13s} ({m_t} x {m_t + 3}) @ ({m_t + 3} x {m_t - 5})", label=lab.timing_label())
        print(f"{t}  ->  {flops / t.median / 1e9:8.1f} GFLOP/s")
else:
    print(msg("04.matmul_not_timed", "Not timed on the CPU tier. The kernels were checked above."))

# %% [markdown] key="resource-report-registers-shared"
# ## 7. The resource report: registers, shared memory, spills
#
# How many blocks fit on an SM at once, and so the **occupancy** (the SM's resident warps over the most
# it can hold, lab 02), depends on what each thread and block needs: **registers** per thread (the SM
# has 64 K), **shared memory** per block, and the threads themselves (at most 2,048 per SM on an A100
# or H100). A kernel that needs more registers
# than the compiler allows **spills** them to local memory, which lives in global memory (cached in L1
# and L2, but far slower than a register).
#
# The compiler tells you. numba-cuda compiles a kernel to PTX (a portable assembly) with
# `compile_ptx`, and NVIDIA's `ptxas` turns PTX into machine code for one architecture, and with
# `-v` prints what it used. Neither needs a GPU: `techday.ptxreport` compiles the kernels' source in
# a separate process (the simulator cannot compile) and runs the `ptxas` of the
# `nvidia-cuda-nvcc-cu12` wheel (or of a CUDA toolkit). We report the workshop's 32 x 32 tiles, for
# this GPU's architecture, or for an A100 (`sm_80`) without a GPU:
#
# ```
# ptxas info : Used 24 registers, used 1 barriers, 4224 bytes smem, 496 bytes cmem[0]
#     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
# ```

# %%
from techday.ptxreport import ToolkitMissing, find_ptxas, parse_ptxas, ptxas_verbose, resource_reports
from techday.i18n import msg

ptxas_path, ptxas_how = find_ptxas()
print(f"ptxas: {ptxas_path} ({ptxas_how})" if ptxas_path else msg(
    "04.ptxas_missing", "[ptxas missing] {how}: only the PTX's shared-memory declarations are shown; registers and "
    "spills need ptxas (pip install -e '.[test]').", how=ptxas_how))
cc = tuple(lab.gpu.compute_capability) if lab.on_gpu else (8, 0)
sig2 = "void(float32[:, ::1], float32[:, ::1])"
sig3 = "void(float32[:, ::1], float32[:, ::1], float32[:, ::1])"
report_kernels = {"transpose_naive": (transpose_naive, sig2), "transpose_shared": (transpose_shared, sig2),
                  "transpose_padded": (transpose_padded, sig2), "matmul_naive": (matmul_naive, sig3),
                  "matmul_tiled": (matmul_tiled, sig3)}
try:
    reports = resource_reports(report_kernels, constants={"TILE": 32, "TILE_PAD": 33, "TILE_ROWS": 8}, cc=cc,
                               use_ptxas=bool(ptxas_path))
except ToolkitMissing as missing:
    reports = {}
    print(msg("04.resource_report_skipped", "[skipped] resource report: {missing}", missing=missing))
for rep in reports.values():
    print(rep)
if reports:  # the examples' tiles, as declared: 32 x 32 float32 = 4,096 bytes; none in the naive kernels
    assert reports["transpose_shared"].shared_bytes_ptx == 32 * 32 * 4
    assert reports["transpose_naive"].shared_bytes_ptx == reports["matmul_naive"].shared_bytes_ptx == 0

# %% [markdown] key="note"
# **Reading it**. On an SM with 65,536 registers, 2,048 thread slots and 164 KiB of shared memory
# (an A100; an H100 has 228 KiB), the resident blocks per SM are the smallest of three limits. The
# cell below computes them from the report, with this GPU's own limits on the GPU tier. With 2 blocks
# of 1,024 threads the SM is full (100 % occupancy); a kernel needing more than 32 registers per
# thread fits only one. `transpose_padded`'s blocks of 32 x 8 = 256 threads fit up to eight.
#
# To see **spills**, ask `ptxas` for fewer registers than a kernel wants (`-maxrregcount`, the
# same as `@cuda.jit(max_registers=...)`): the values that no longer fit go to local memory,
# `spill stores` and `spill loads` in the report. Below, `matmul_naive` is squeezed from its 30 or so
# registers to 24. That cannot raise its occupancy: with 32 registers or fewer per thread it already
# fits two blocks of 1,024 threads, a full SM (the table above shows it), so the spills are pure cost:
# every spilled value now makes a trip to memory. A register cap pays off only for a kernel whose
# register count is what limits its blocks per SM, and even then only if the extra warps hide more
# latency than the spills add.

# %%
from techday.i18n import msg


def sm_limits():
    """(registers, thread slots, shared bytes, shared bytes reserved per block) of one SM: this GPU's own
    attributes on the GPU tier, an A100's (sm_80) on the CPU tier, which the report above targets."""
    if lab.on_gpu:
        dev = cuda.get_current_device()
        try:
            return (dev.MAX_REGISTERS_PER_MULTIPROCESSOR, dev.MAX_THREADS_PER_MULTIPROCESSOR,
                    dev.MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, dev.RESERVED_SHARED_MEMORY_PER_BLOCK), lab.gpu.name
        except AttributeError as missing:  # an older driver binding without one of the attributes
            print(msg("04.sm_attributes_missing", "[A100 limits] this driver binding lacks an SM attribute: {missing}",
                      missing=missing))
    return (65_536, 2_048, 164 * 1024, 1024), "A100"


def blocks_per_sm(registers, shared_bytes, threads_per_block, limits):
    """Resident blocks per SM: the smallest of the register, thread and shared-memory limits (each block
    also takes the shared memory the system reserves per block)."""
    sm_registers, sm_threads, sm_shared, reserved = limits
    by_regs = sm_registers // max(registers * threads_per_block, 1)
    by_threads = sm_threads // threads_per_block
    by_shared = sm_shared // (shared_bytes + reserved) if shared_bytes else by_threads
    return min(by_regs, by_threads, by_shared), by_regs, by_threads, by_shared


if ptxas_path and reports:
    limits, limits_of = sm_limits()
    block_threads = {"transpose_padded": 32 * 8}  # its blocks are TILE x TILE_ROWS; the others TILE x TILE
    print(msg("04.blocks_per_sm_header_of", "resident blocks per SM ({of} limits: {registers:,} registers, {threads:,} "
              "threads, {shared:,} B of shared memory): the smallest of three", of=limits_of, registers=limits[0],
              threads=limits[1], shared=limits[2]))
    for name, rep in reports.items():
        threads_b = block_threads.get(name, 1_024)
        resident, by_regs, by_threads, by_shared = blocks_per_sm(rep.registers, rep.shared_bytes, threads_b, limits)
        print(msg("04.blocks_per_sm_row_threads", "  {name:17s} {registers:3d} regs, {shared:5d} B smem, {threads:4d} "
                  "threads -> {resident} block(s), {occupancy:.0%} occupancy (limits: {by_regs} by registers, "
                  "{by_threads} by threads, {by_shared} by shared memory)", name=name, registers=rep.registers,
                  shared=rep.shared_bytes, threads=threads_b, resident=resident,
                  occupancy=resident * threads_b / limits[1], by_regs=by_regs, by_threads=by_threads,
                  by_shared=by_shared))
    naive = reports["matmul_naive"]
    squeezed = parse_ptxas(ptxas_verbose(naive.ptx, cc, ptxas_path, options=("-maxrregcount=24",)))
    print(msg("04.naive_as_compiled", "matmul_naive as compiled: {registers} registers, spill stores {stores} B, "
              "spill loads {loads} B", registers=naive.registers, stores=naive.spill_stores, loads=naive.spill_loads))
    print(msg("04.naive_squeezed", "matmul_naive with -maxrregcount=24: {registers} registers, spill stores {stores} B, "
              "spill loads {loads} B, stack {stack} B", registers=squeezed["registers"], stores=squeezed["spill_stores"],
              loads=squeezed["spill_loads"], stack=squeezed["stack_bytes"]))
else:
    print(msg("04.occupancy_skipped", "[skipped] the occupancy limits need the register counts from ptxas and the report above."))

# %% [markdown] key="summary"
# ## Summary
#
# - Global memory moves 32-byte sectors. A warp reading 32 neighbouring `float32` values uses every
#   byte it fetches (coalesced); a stride of 8 or more fetches a sector per thread. Map `threadIdx.x`
#   to the last, contiguous axis.
# - Tiles: blocks of `(TILE, TILE)` threads, a grid of `(ceil(cols / TILE), ceil(rows / TILE))`
#   blocks, `x` along columns; check every access against its own matrix's shape.
# - A transpose through a shared-memory tile makes both the read and the write coalesced; padding the
#   tile to `TILE + 1` columns spreads a column over the 32 banks and removes the bank conflicts.
# - Tiling a matrix product loads every value once per tile instead of once per product; two barriers
#   per step, zeros outside the matrices for the edge tiles.
# - `compile_ptx` plus `ptxas -v` report registers, shared memory and spills on any machine; together
#   with the SM's limits they give the occupancy.
#
# ## Going further
#
# - Mark Harris, "An Efficient Matrix Transpose in CUDA C/C++" and "Using Shared Memory in CUDA
#   C/C++" (NVIDIA Technical Blog): the same transposes, with 32 x 8 blocks that do 4 elements per
#   thread.
# - CUDA C++ Best Practices Guide: "Coalesced Access to Global Memory" and "Shared Memory" (banks).
# - Nsight Compute (`ncu`) measures sectors per request, bank conflicts and achieved occupancy of a
#   real run: `ncu --section MemoryWorkloadAnalysis python script.py`.
# - Register blocking (each thread computing 4 x 4 or 8 x 8 outputs) and tensor cores are the next
#   steps of a fast matrix product; cuBLAS and CUTLASS do both.
# - Next: lab 05, CuPy and interoperability.
