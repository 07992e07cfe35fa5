# %% [markdown] key="custom-kernels-thread-hierarchy"
# # 02 Custom kernels and the thread hierarchy
#
# Lab 01 launched its first kernels. This lab is about *who* runs your code: thousands of threads,
# grouped in blocks, arranged in a grid. You will index in one and two dimensions, choose launch
# configurations on purpose, find two classic kernel bugs with the simulator, and end by moving a
# small neural-network layer to the GPU, the way NVIDIA's DLI course ends its first part.
#
# ## You will learn
# - the thread hierarchy: threads, blocks and the grid, and the built-in indices `cuda.threadIdx`,
#   `cuda.blockIdx`, `cuda.blockDim`, `cuda.gridDim`, with the shortcuts `cuda.grid` and
#   `cuda.gridsize`, in 1-D and 2-D;
# - how to choose a launch configuration: threads per block a multiple of the warp size (32),
#   enough blocks to fill every multiprocessor (SM), and why a grid-stride loop makes any grid right;
# - how to split a kernel into `@cuda.jit(device=True)` **device functions**;
# - how to find out-of-bounds accesses and race conditions with the CUDA simulator's checks;
# - why the first call of a kernel is slow (JIT compilation), and how to time kernels with CUDA events;
# - **warp divergence**: why threads of one warp on different sides of a branch cost both sides, and how
#   to arrange work so each warp takes one side.
#
# **How this lab works**: read, run the examples, then solve the five exercises.
# In each exercise cell, delete `raise NotImplementedError()` and write your code.
# The cell after it runs the tests; do not edit test cells.
# The grader also runs hidden tests, on sizes, shapes and dtypes you do not see here.
#
# Points: exercise 1: 3, exercise 2: 3, exercise 3: 4, exercise 4: 4, exercise 5: 2 (16 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# The code cell below chooses the **tier** and prints it. On a machine without a GPU it switches
# on Numba's CUDA **simulator**, which runs every CUDA thread as a Python thread: results are
# checked exactly as on a GPU, and indices are checked even more strictly, but timings mean nothing
# there. The switch must happen before Numba is imported, so always run this cell first.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("02.title", "02 Custom kernels and the thread hierarchy"))

# %% nbgrader="locked" id="imports"
import math
import time
import warnings

import numpy as np
import numba
from numba import cuda

from techday.labtools import assert_close

# Numba warns when a grid has fewer than 128 blocks ("GPU under-utilization"): good advice for real
# work, but this lab launches tiny grids on purpose, to show how they behave.
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")

from techday.i18n import msg

print(msg("02.banner_gpu", "numba {numba} | NumPy {numpy} | kernels run on the GPU", numba=numba.__version__,
          numpy=np.__version__) if lab.on_gpu else
      msg("02.banner_simulator", "numba {numba} | NumPy {numpy} | kernels run in the CUDA simulator (CPU tier)",
          numba=numba.__version__, numpy=np.__version__))

# %% [markdown] key="threads-blocks-grid"
# ## 1. Threads, blocks and the grid
#
# When you launch `kernel[blocks, threads](...)`, the GPU runs the kernel body once in every
# **thread**. Threads come in three levels:
#
# | level | what it is | how a thread asks (1-D) |
# | --- | --- | --- |
# | thread | one execution of the kernel body | `cuda.threadIdx.x`: 0 ... `blockDim.x - 1` |
# | block | up to 1,024 threads on **one** multiprocessor (SM), able to cooperate | `cuda.blockIdx.x`: 0 ... `gridDim.x - 1` |
# | grid | all the blocks of one launch | `cuda.blockDim.x` threads per block, `cuda.gridDim.x` blocks |
#
# A thread's **global index** is its block's first index plus its place in the block:
#
# ```python
# i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x    # the same as cuda.grid(1)
# total = cuda.gridDim.x * cuda.blockDim.x                      # the same as cuda.gridsize(1)
# ```
#
# The blocks run in any order, maybe at the same time, maybe one after another: a kernel must be
# right whatever the order.
#
# Below, a launch of 3 blocks of 4 threads for 10 elements: every thread writes down who it is.

# %%
from techday.i18n import msg


@cuda.jit
def whoami_kernel(block, thread, width, index):
    i = cuda.grid(1)
    if i < index.shape[0]:          # 12 threads, 10 elements: two threads have nothing to do
        block[i] = cuda.blockIdx.x
        thread[i] = cuda.threadIdx.x
        width[i] = cuda.blockDim.x
        index[i] = i


n_who = 10
d_who = [cuda.to_device(np.full(n_who, -1, np.int32)) for _ in range(4)]
whoami_kernel[3, 4](*d_who)
block_id, thread_id, block_dim, global_id = (d.copy_to_host() for d in d_who)
assert np.array_equal(global_id, block_id * block_dim + thread_id), msg("02.cuda_grid_blockidx_blockdim", "cuda.grid(1) is blockIdx * blockDim + threadIdx")
print(msg("02.row_element", "element       :"), " ".join(f"{i:2d}" for i in range(n_who)))
print("blockIdx.x    :", " ".join(f"{v:2d}" for v in block_id))
print("threadIdx.x   :", " ".join(f"{v:2d}" for v in thread_id))
print("cuda.grid(1)  :", " ".join(f"{v:2d}" for v in global_id))
print(msg("02.blocks_threads_threads_threads", "3 blocks x 4 threads = 12 threads; threads 10 and 11 (block 2) failed the bounds check and did nothing"))

# %% [markdown] key="dimensions-matrices-images"
# ## 2. Two dimensions: matrices and images
#
# Blocks and grids can also be 2-D (or 3-D), which suits matrices and images. Give tuples:
#
# ```python
# kernel[(blocks_x, blocks_y), (threads_x, threads_y)](...)
# col, row = cuda.grid(2)              # x = blockIdx.x * blockDim.x + threadIdx.x, y likewise
# col_stride, row_stride = cuda.gridsize(2)
# ```
#
# **Watch the order**. A NumPy array's shape is `(rows, cols)`, but CUDA's
# dimensions are `(x, y)`, and `x` is the one that varies fastest between neighbouring threads. We
# map `x` to **columns**, the last axis, the one that is contiguous in memory: then neighbouring
# threads touch neighbouring elements, which the memory system rewards (lab 04 shows by how much).
# So the grid's `x` covers `out.shape[1]` and its `y` covers `out.shape[0]`.
#
# Below, a 6 x 10 matrix covered by blocks of 4 x 3 threads (4 columns, 3 rows) in a 3 x 2 grid:
# every element gets the number of the block that wrote it, `blockIdx.y * gridDim.x + blockIdx.x`.

# %%
from techday.i18n import msg


@cuda.jit
def block_map_kernel(out):
    col, row = cuda.grid(2)
    if row < out.shape[0] and col < out.shape[1]:       # rows against shape[0], columns against shape[1]
        out[row, col] = cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x


d_map = cuda.to_device(np.full((6, 10), -1, np.int32))
block_map_kernel[(3, 2), (4, 3)](d_map)                  # grid: 3 x 2 blocks; block: 4 x 3 threads
block_map = d_map.copy_to_host()
assert (block_map >= 0).all(), msg("02.grid_blocks_covers_columns", "a 3 x 2 grid of 4 x 3 blocks covers 12 columns and 6 rows")
print(msg("02.which_block_wrote_each", "which block wrote each element of a 6 x 10 matrix:"))
print(block_map)
print(msg("02.grid_block_columns_rows", "grid (3, 2) x block (4, 3) = 12 columns x 6 rows of threads; the last 2 columns of threads are spare"))

# %% [markdown] key="d-kernel-grid-stride"
# The grid-stride loop of lab 01 works in 2-D too: each thread starts at its `(row, col)` and
# jumps by the grid's height and width, so a small grid covers any matrix:
#
# ```python
# col0, row0 = cuda.grid(2)
# col_stride, row_stride = cuda.gridsize(2)
# for row in range(row0, out.shape[0], row_stride):
#     for col in range(col0, out.shape[1], col_stride):
#         out[row, col] = ...
# ```
#
# ## Exercise 1: a 2-D kernel with grid-stride loops (3 points)
#
# Write `fill_index_2d(out)` that sets every element of the 2-D array `out` to its **row-major
# linear index**, `row * ncols + col` with `ncols = out.shape[1]`: that is the number of the element
# if you read the matrix line by line, as `np.arange(rows * cols).reshape(rows, cols)` does.
#
# Use **2-D grid-stride loops** as above: the tests launch small grids on awkward shapes such as
# 37 x 53 with 2 x 2 blocks of 16 x 8 threads, and also grids larger than the matrix. They also check
# that nothing is written outside `out`, and they use non-square shapes, so a swapped row and
# column shows. `out` may be float or integer: write the number, NumPy-style casting does the rest.

# %% nbgrader="solution" id="fill_index_2d"
@cuda.jit
def fill_index_2d(out):
    """out[row, col] = row * out.shape[1] + col for every element, with 2-D grid-stride loops."""
    ### BEGIN SOLUTION
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, out.shape[0], row_stride):
        for col in range(col0, out.shape[1], col_stride):
            out[row, col] = row * out.shape[1] + col
    ### END SOLUTION

# %% nbgrader="tests" id="fill_index_2d_tests" points=3
"""fill_index_2d is a @cuda.jit kernel and writes row * ncols + col into every element of a NaN-poisoned
37 x 53 matrix with a 2 x 2 grid of 16 x 8 threads (grid-stride loops), and of 13 x 29 with spare
threads, and never outside the matrix; hidden: 1 x 1, one row, one column, int64 and float32 outputs,
tall blocks; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.labtools import assert_close, assert_cuda_kernel
from techday.i18n import msg

assert_cuda_kernel(fill_index_2d, "fill_index_2d")


def run_fill_index_2d(shape, grid, block, dtype=np.float64):
    """Launch on a view into a larger poisoned buffer; the border catches writes outside out."""
    rows, cols = shape
    poison = np.nan if np.dtype(dtype).kind == "f" else -1
    side = rows + cols  # room for any swapped (row, col) pair
    d_buf = cuda.to_device(np.full((side, side), poison, dtype))
    fill_index_2d[grid, block](d_buf[:rows, :cols])
    buf = d_buf.copy_to_host()
    border = buf.copy()
    border[:rows, :cols] = poison
    outside = int(np.count_nonzero(~np.isnan(border))) if np.isnan(poison) else int(np.count_nonzero(border != poison))
    assert outside == 0, (msg("02.fill_index_d_wrote", "fill_index_2d wrote {outside} elements outside a {rows} x {cols} out (grid {grid}, block {block}): compare rows with out.shape[0] and columns with out.shape[1]", outside=outside, rows=rows, cols=cols, grid=grid, block=block))
    return buf[:rows, :cols]


def expected_index(rows, cols):
    return np.arange(rows * cols, dtype=np.float64).reshape(rows, cols)


out = run_fill_index_2d((37, 53), (2, 2), (16, 8))
missing = int(np.isnan(out).sum())
assert missing == 0, (msg("02.missing_out_size_elements", "{missing} of {out_size} elements of a 37 x 53 matrix were never written by a 2 x 2 grid of 16 x 8 threads: loop with strides cuda.gridsize(2) in both directions", missing=missing, out_size=out.size))
assert_close(out, expected_index(37, 53), msg("02.fill_index_d_grid", "fill_index_2d, 37 x 53, grid (2, 2), block (16, 8)"), rtol=0)
out = run_fill_index_2d((13, 29), (2, 2), (16, 8))  # 32 x 16 threads for 29 columns x 13 rows
assert_close(out, expected_index(13, 29), msg("02.fill_index_d_spare", "fill_index_2d, 13 x 29 with spare threads"), rtol=0)
### BEGIN HIDDEN TESTS
for shape_h, grid_h, block_h, dtype_h in (
    ((1, 1), (1, 1), (32, 1), np.float64),
    ((1, 300), (2, 1), (32, 4), np.float64),
    ((300, 1), (1, 2), (4, 32), np.float64),
    ((23, 61), (3, 2), (8, 8), np.int64),
    ((37, 53), (1, 3), (4, 16), np.float32),
    ((53, 37), (3, 1), (16, 4), np.float64),
):
    oh = run_fill_index_2d(shape_h, grid_h, block_h, dtype_h)
    assert oh.dtype == dtype_h
    assert_close(oh, expected_index(*shape_h), msg("02.hidden_shape_h_np", "hidden: {shape_h} {np_dtype_dtype_h_name}, grid {grid_h}, block {block_h}", shape_h=shape_h, np_dtype_dtype_h_name=np.dtype(dtype_h).name, grid_h=grid_h, block_h=block_h), rtol=0)
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("02.fill_index_2d_tests")
for shape_h in ((1, int(rd.integers(2, 400))), (int(rd.integers(2, 70)), int(rd.integers(2, 70)))):
    grid_h = (int(rd.integers(1, 4)), int(rd.integers(1, 4)))
    block_h = [(32, 1), (8, 8), (4, 16), (16, 4), (32, 4), (4, 32)][int(rd.integers(6))]
    dtype_h = (np.float64, np.float32, np.int64)[int(rd.integers(3))]
    oh = run_fill_index_2d(shape_h, grid_h, block_h, dtype_h)
    assert oh.dtype == dtype_h
    assert_close(oh, expected_index(*shape_h), msg("02.hidden_shape_h_np", "hidden: {shape_h} {np_dtype_dtype_h_name}, grid {grid_h}, block {block_h}", shape_h=shape_h, np_dtype_dtype_h_name=np.dtype(dtype_h).name, grid_h=grid_h, block_h=block_h), rtol=0)
### END HIDDEN TESTS
print(msg("02.fill_index_d_all", "fill_index_2d: all visible tests passed."))

# %% [markdown] key="bugs-simulator-catches"
# ## 3. Bugs the simulator catches
#
# Two bugs account for most wrong kernels. Neither raises an error on a real GPU: the kernel just
# gives a wrong answer, sometimes, or corrupts other data.
#
# ### Out-of-bounds access
#
# A GPU does not check indices. A thread that writes past the end of an array writes into whatever
# lies there. The simulator checks every index and raises `IndexError`, naming the thread (`tid`)
# and the block (`ctaid`, "cooperative thread array", CUDA's name for a block). Here is the classic
# 2-D slip: the bounds check compares the row with the number of **columns**. On a 37 x 53 matrix
# rows up to 52 pass that check.

# %%
from techday.i18n import msg


@cuda.jit
def fill_ones_swapped_check(out):
    col, row = cuda.grid(2)
    if row < out.shape[1] and col < out.shape[0]:   # BUG: rows against columns, columns against rows
        out[row, col] = 1.0


d_swapped = cuda.to_device(np.zeros((37, 53)))
if lab.simulator:
    try:
        fill_ones_swapped_check[(4, 4), (16, 16)](d_swapped)
        raise AssertionError(msg("02.expected_indexerror_simulator", "expected an IndexError from the simulator"))
    except IndexError as err:
        print(msg("02.simulator_caught_out_bounds", "The simulator caught the out-of-bounds access:"))
        print("   ", str(err).splitlines()[0][:160])
else:
    print(msg("02.launched_real_gpu_this", "Not launched: on a real GPU this kernel writes outside the array, which is undefined behaviour (it may corrupt other data, crash later, or seem to work). Run the lab with tier='cpu' to see the simulator catch it, or run a GPU program under NVIDIA's `compute-sanitizer`."))

# %% [markdown] key="race-conditions"
# ### Race conditions
#
# `out[0] += 1` looks like one step but is three: **read** `out[0]`, **add** 1, **write** it back.
# When many threads do it at the same time, several read the same old value, and all but one of
# their updates are lost. On a GPU, 64 threads that each "add 1" typically leave a count far below
# 64, and not the same count on every run.
#
# The simulator runs the threads as Python threads, which take turns, so a race that a GPU shows at
# once may hide there. To see the race on every tier, `count_split` below makes the interleaving
# explicit: every thread reads, then the block waits at a barrier (`cuda.syncthreads()`, "no thread
# goes on until all threads of the block got here"), then every thread writes its `old + 1`. The
# result is 1, on a GPU and in the simulator alike. The fix is an **atomic** operation, a
# read-add-write that the hardware does as one indivisible step (lab 03 is about atomics).

# %%
from techday.i18n import msg


@cuda.jit
def count_naive(counter):
    counter[0] += 1                  # read, add, write: three steps, and other threads in between


@cuda.jit
def count_split(counter):
    old = counter[0]                 # 1. every thread of the block reads ...
    cuda.syncthreads()               #    (the barrier: all reads happen before any write)
    counter[0] = old + 1             # 2. ... then every thread writes its own old + 1


@cuda.jit
def count_atomic(counter):
    cuda.atomic.add(counter, 0, 1)   # one indivisible read-add-write


threads_race = 64
results = {}
for kernel in (count_naive, count_split, count_atomic):
    d_count = cuda.to_device(np.zeros(1, np.int64))
    kernel[1, threads_race](d_count)
    results[kernel.__name__] = int(d_count.copy_to_host()[0])
    print(msg("02.race_count", "{name:12s}: {threads} threads each added 1 -> counter = {count}", name=kernel.__name__,
              threads=threads_race, count=results[kernel.__name__]))

assert results["count_split"] == 1, msg("02.every_thread_read_before", "every thread read 0 before any thread wrote: the count must be 1")
assert results["count_atomic"] == threads_race, msg("02.atomic_adds_are_never", "atomic adds are never lost")
if results["count_naive"] == threads_race:
    if lab.simulator:
        print(msg("02.race_hidden_simulator", "count_naive happened to be right here: the race is still there, "
                  "only hidden by the simulator's Python threads taking turns."))
    else:
        print(msg("02.race_hidden", "count_naive happened to be right here: the race is still there, only hidden."))

# %% [markdown] key="choosing-launch-configuration"
# ## 4. Choosing a launch configuration
#
# Two numbers, `kernel[blocks, threads_per_block]`, and a few rules of thumb:
#
# - **Threads per block: a multiple of 32.** CUDA accepts any block size from 1 to 1,024 threads;
#   a multiple of 32 is advice for speed, and this course's rule. The GPU schedules threads in
#   groups of 32, called **warps**: a block of 48 threads occupies two warps, one of them half
#   empty. 128 to 512 is the usual range, 256 a good default.
# - **A warp is not a lock-step unit.** Before Volta (compute capability 7.0) the 32 threads of a
#   warp shared one program counter and ran every instruction together. Since Volta, **independent
#   thread scheduling** gives each thread its own program counter: the threads of a warp usually
#   run together, but after a branch the hardware may interleave them, and it does not promise
#   that they meet again at any point. Code must not rely on warp-synchronous execution; that is
#   why the warp-level functions (`cuda.shfl_down_sync`, `cuda.syncwarp`, lab 03) take a `_sync`
#   **mask** naming the threads that must take part together, and why a block needs
#   `cuda.syncthreads()`.
# - **Enough blocks to fill the GPU.** Each multiprocessor (SM) holds a limited number of resident
#   threads at once (`max_threads_per_multiprocessor`: 2,048 on an A100 or H100, 1,536 on many
#   gaming GPUs). The fraction of those slots that are filled is the **occupancy**. A GPU hides
#   the long wait for memory by switching between resident warps, so it needs many of them: aim for
#   at least several times `SMs x threads per SM` threads in a grid, or a grid-stride loop over a
#   grid of a few dozen blocks per SM. Registers and shared memory per thread can lower the
#   occupancy (lab 04).
# - **Not more blocks than work.** One element per thread needs `ceil(n / threads_per_block)`
#   blocks; with a grid-stride loop you may cap that number, and each thread does several elements.
#
# The cell below prints this machine's numbers.

# %%
from techday.i18n import msg

if lab.on_gpu:
    g = lab.gpu
    resident = g.multiprocessor_count * g.max_threads_per_multiprocessor
    print(msg("02.gpu_resident", "{name}: {sms} SMs x {per_sm:,} threads per SM = {resident:,} threads resident at once",
              name=g.name, sms=g.multiprocessor_count, per_sm=g.max_threads_per_multiprocessor, resident=resident))
    print(msg("02.gpu_warp_block", "warp size {warp}, at most {max_block:,} threads per block", warp=g.warp_size,
              max_block=g.max_threads_per_block))
    for n_example in (10_000, 1_000_000, 100_000_000):
        blocks_example = math.ceil(n_example / 256)
        print(msg("02.gpu_blocks_needed", "n = {n:>11,}: one thread per element needs {blocks:>7,} blocks of 256 = "
                  "{ratio:8.2f} x the resident threads", n=n_example, blocks=blocks_example,
                  ratio=blocks_example * 256 / resident))
else:
    print(msg("02.cpu_tier_no_sms", "CPU tier: no SMs to fill. For scale, an H100 SXM has 132 SMs x 2,048 threads per SM = 270,336 threads resident at once; the simulator runs one block at a time, a Python thread per CUDA thread, so here we keep grids to a few thousand threads."))

# %% [markdown] key="choose-launch-configuration"
# ## Exercise 2: choose a launch configuration (3 points)
#
# Write `launch_config(n, threads_per_block, max_blocks)` that returns the tuple
# `(blocks, threads_per_block)` for a grid-stride kernel over `n` elements, so that you can write
# `kernel[launch_config(n, 256, 80)](...)`:
#
# 1. if `threads_per_block` is not a multiple of 32 between 32 and 1,024, raise `ValueError`. This is
#    the course's rule, not CUDA's: CUDA launches any block of 1 to 1,024 threads, but a block that
#    is not a whole number of warps wastes lanes, so this helper refuses it;
# 2. `blocks` is the number of blocks that covers `n` with one element per thread,
#    ceil(`n / threads_per_block`), but at most `max_blocks` (the grid-stride loop does the rest) and
#    at least 1 (a launch needs a block, even for `n = 0`).
#
# Use **integer** arithmetic for the ceiling: `(n + t - 1) // t` or `-(-n // t)`. `n / t` is a
# float, and a float holds integers exactly only up to 2**53.
# Return plain integers.

# %% nbgrader="solution" id="launch_config"
def launch_config(n, threads_per_block, max_blocks):
    """Return (blocks, threads_per_block) for a grid-stride kernel over n elements."""
    ### BEGIN SOLUTION
    if threads_per_block % 32 != 0 or not 32 <= threads_per_block <= 1024:
        raise ValueError(f"threads_per_block must be a multiple of 32 from 32 to 1024, not {threads_per_block}")
    blocks = (n + threads_per_block - 1) // threads_per_block
    return max(1, min(blocks, max_blocks)), threads_per_block
    ### END SOLUTION

# %% nbgrader="tests" id="launch_config_tests" points=3
"""launch_config returns (blocks, threads_per_block) as integers: enough blocks to cover n, capped at
max_blocks, at least 1, and raises ValueError for threads per block that are not a multiple of 32 in
[32, 1024]; hidden: n = 0, exact multiples, one past, n beyond 2**53, more invalid block sizes; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg

cases = [  # (n, threads_per_block, max_blocks) -> blocks
    ((1_000, 256, 4), 4),
    ((1_000, 256, 1_000), 4),
    ((1_000_000, 256, 80), 80),
    ((5, 64, 10), 1),
    ((4_099, 128, 1_000), 33),
]
for args, blocks in cases:
    got = launch_config(*args)
    assert isinstance(got, tuple) and len(got) == 2, msg("02.launch_config_args_return", "launch_config{args} must return (blocks, threads), got {got!r}", args=args, got=got)
    assert got == (blocks, args[1]), msg("02.launch_config_args_returned", "launch_config{args} returned {got}, expected {blocks_args_1}", args=args, got=got, blocks_args_1=(blocks, args[1]))
    assert all(int(v) == v and not isinstance(v, (float, bool)) for v in got), \
        msg("02.launch_config_args_r", "launch_config{args}: {got!r} are not integers", args=args, got=got)
try:
    launch_config(1_000, 100, 10)
except ValueError:
    pass
else:
    raise AssertionError(msg("02.launch_config_raise_valueerror", "launch_config(1_000, 100, 10) must raise ValueError: 100 is not a multiple of 32"))
### BEGIN HIDDEN TESTS
hidden_cases = [
    ((0, 256, 10), 1),
    ((1, 32, 10), 1),
    ((256, 256, 10), 1),
    ((257, 256, 10), 2),
    ((2_560, 256, 10), 10),
    ((2_561, 256, 10), 10),
    ((1_000_003, 1024, 2**31 - 1), 977),
    ((2**62 + 1, 1024, 2**62), 2**52 + 1),  # n / 1024 as a float rounds to 2**52 exactly
    ((10**20, 32, 2**31 - 1), 2**31 - 1),
]
# Drawn at every grading (techday.draw): the cases above are published with the course. The expected
# count is the exercise's rule in integers: ceil(n / threads), at least 1, at most max_blocks.
import techday.draw

rd = techday.draw.rng("02.launch_config_tests")
for n_d, max_d in ((int(rd.integers(0, 10_000)), int(rd.integers(1, 100))), (int(rd.integers(10_000, 10**7)), int(rd.integers(1, 2**31))),
                   (int(rd.integers(2**53, 2**62)), int(rd.integers(2**40, 2**62)))):
    threads_d = 32 * int(rd.integers(1, 33))
    hidden_cases.append(((n_d, threads_d, max_d), max(1, min(-(-n_d // threads_d), max_d))))
for args, blocks in hidden_cases:
    got = launch_config(*args)
    assert got == (blocks, args[1]), msg("02.hidden_launch_config_args", "hidden: launch_config{args} returned {got}, expected {blocks_args_1}", args=args, got=got, blocks_args_1=(blocks, args[1]))
    assert all(int(v) == v and not isinstance(v, (float, bool)) for v in got), msg("02.hidden_r_are_integers", "hidden: {got!r} are not integers", got=got)
for bad in (16, 48, 1056, 2048, 0, -32):
    try:
        launch_config(1_000, bad, 10)
    except ValueError:
        continue
    raise AssertionError(msg("02.hidden_launch_config_bad", "hidden: launch_config(1_000, {bad}, 10) must raise ValueError", bad=bad))
### END HIDDEN TESTS
print(msg("02.launch_config_all_visible", "launch_config: all visible tests passed."))

# %% [markdown] key="note"
# The rest of the lab launches with these settings: 256 threads per block, and at most 32 blocks
# per SM on a GPU (enough to fill it several times over), 4 blocks in the simulator.

# %% nbgrader="locked" id="launch_settings"
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 32 * max(lab.gpu.multiprocessor_count, 1) if lab.on_gpu else 4
print(f"THREADS_PER_BLOCK = {THREADS_PER_BLOCK}, MAX_BLOCKS = {MAX_BLOCKS}")

# %% [markdown] key="device-functions"
# ## 5. Device functions
#
# A kernel cannot return a value, but code called *from* a kernel can. Decorate it with
# `@cuda.jit(device=True)`: it becomes a **device function**, compiled for the GPU, callable from
# kernels and from other device functions (not from the host), and usually inlined by the compiler,
# so splitting a kernel into small named pieces costs nothing at run time.
#
# ```python
# @cuda.jit(device=True)
# def clamp(v, lo, hi):
#     return min(max(v, lo), hi)
# ```
#
# Inside device functions and kernels use the `math` module (`math.exp`, `math.tanh`,
# `math.sqrt`), not NumPy: `np.tanh` works on arrays on the host, `math.tanh` on one number in a
# thread. Mind the literal types too: with a `float32` value `v`, `v * 0.5` is computed in
# `float64`, which is much slower on many GPUs; a `float32` argument keeps it `float32`.
#
# A small example: clamp every element into `[lo, hi]`.

# %%
from techday.i18n import msg


@cuda.jit(device=True)
def clamp(v, lo, hi):
    """One number in, one number out: callable from kernels only."""
    return min(max(v, lo), hi)


@cuda.jit
def clamp_kernel(x, lo, hi, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = clamp(x[i], lo, hi)


h_c = np.random.default_rng(4).standard_normal(1_001).astype(np.float32)
d_c_out = cuda.to_device(np.full_like(h_c, np.nan))
clamp_kernel[2, 64](cuda.to_device(h_c), np.float32(-1.0), np.float32(1.0), d_c_out)
assert_close(d_c_out.copy_to_host(), np.clip(h_c, -1, 1), "clamp_kernel")
print(msg("02.clamp_kernel_matches_np", "clamp_kernel matches np.clip on 1,001 values with 2 blocks x 64 threads"))

# %% [markdown] key="neural-network-layer-as"
# ## Exercise 3: a neural-network layer as device functions and a kernel (4 points)
#
# One layer of a neural network, element by element, in three steps (as in DLI's assessment):
#
# 1. `normalise(v, mean, std)` returns `(v - mean) / std`;
# 2. `weigh(v, w, b)` returns `v * w + b` (a weight, then a bias);
# 3. `activate(v)` returns `tanh(v)` (use `math.tanh`).
#
# so that `out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b))`, in this order, with a
# weight `w[i]` per element and scalars `b`, `mean`, `std`. The NumPy version is
#
# ```python
# np.tanh(w * ((x - mean) / std) + b)
# ```
#
# Write the three **device functions** (`@cuda.jit(device=True)`) and the kernel
# `layer_kernel(x, w, b, mean, std, out)` that uses them in a **grid-stride loop**. The tests launch
# it with 2 blocks of 64 threads for 1,000 elements, in `float32` and `float64`, with outputs
# poisoned with NaN, and check each device function on its own too. Write only into `out`.

# %% nbgrader="solution" id="layer_kernel"
@cuda.jit(device=True)
def normalise(v, mean, std):
    """(v - mean) / std"""
    ### BEGIN SOLUTION
    return (v - mean) / std
    ### END SOLUTION


@cuda.jit(device=True)
def weigh(v, w, b):
    """v * w + b"""
    ### BEGIN SOLUTION
    return v * w + b
    ### END SOLUTION


@cuda.jit(device=True)
def activate(v):
    """tanh(v)"""
    ### BEGIN SOLUTION
    return math.tanh(v)
    ### END SOLUTION


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    """out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b)) for every i, grid-stride loop."""
    ### BEGIN SOLUTION
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b))
    ### END SOLUTION

# %% nbgrader="tests" id="layer_kernel_tests" points=4
"""normalise, weigh and activate are device functions that match NumPy one by one; layer_kernel is a
@cuda.jit kernel that fills a NaN-poisoned output with tanh(w * (x - mean) / std + b) on 1_000 float32
values with 2 blocks x 64 threads and never writes past its end; hidden: 4_099 values on 4 x 64
threads, float64, n = 1, spare threads, inputs left unchanged; and cases drawn afresh at every grading (techday.draw)."""
import math
import numpy as np
from numba import cuda
from techday.labtools import assert_close, assert_cuda_kernel
from techday.i18n import msg


def is_device_function(f):
    options = getattr(f, "targetoptions", None)   # numba-cuda's dispatcher on a GPU
    if options is not None:
        return bool(options.get("device"))
    return bool(getattr(f, "_device", False))     # the simulator's stand-in


def layer_reference(x, w, b, mean, std):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    return np.tanh(w * ((x - float(mean)) / float(std)) + float(b))


def layer_data(n, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (3.0 + 2.0 * rng.standard_normal(n)).astype(dtype)
    w = (0.8 * rng.standard_normal(n)).astype(dtype)
    return x, w


def run_layer_kernel(x, w, b, mean, std, blocks, threads):
    """Launch on copies; out is the head of a NaN-poisoned buffer with a spare tail."""
    n, pad = x.shape[0], 64
    d_buf = cuda.to_device(np.full(n + pad, np.nan, x.dtype))
    d_x, d_w = cuda.to_device(x), cuda.to_device(w)
    layer_kernel[blocks, threads](d_x, d_w, b, mean, std, d_buf[:n])
    buf = d_buf.copy_to_host()
    # A real GPU does not check indices; the tail past out's end shows a write out of bounds.
    assert np.isnan(buf[n:]).all(), msg("02.layer_kernel_wrote_past", "layer_kernel wrote past the end of out (n={n}): check the loop bound", n=n)
    return buf[:n], d_x.copy_to_host(), d_w.copy_to_host()


for name in ("normalise", "weigh", "activate"):
    assert is_device_function(globals()[name]), \
        msg("02.name_device_function_decorate", "{name} must be a device function: decorate it with @cuda.jit(device=True)", name=name)
assert not is_device_function(layer_kernel), msg("02.layer_kernel_kernel_decorate", "layer_kernel must be a kernel: decorate it with @cuda.jit")
assert_cuda_kernel(layer_kernel, "layer_kernel")


@cuda.jit
def probe_device_functions(v, out):
    i = cuda.grid(1)
    if i < v.shape[0]:
        out[0, i] = normalise(v[i], v[0], v[1])
        out[1, i] = weigh(v[i], v[2], v[3])
        out[2, i] = activate(v[i])


v = np.array([0.5, 2.0, -1.5, 0.25, 3.0, -7.0, 0.0, 1e-3, 20.0], np.float64)
d_probe = cuda.to_device(np.full((3, v.size), np.nan))
probe_device_functions[1, 32](cuda.to_device(v), d_probe)
probe = d_probe.copy_to_host()
assert_close(probe[0], (v - v[0]) / v[1], msg("02.normalise_v_mean_std", "normalise(v, mean=0.5, std=2.0)"), rtol=1e-12)
assert_close(probe[1], v * v[2] + v[3], msg("02.weigh_v_w_b", "weigh(v, w=-1.5, b=0.25)"), rtol=1e-12)
assert_close(probe[2], np.tanh(v), msg("02.activate_v_tanh_v", "activate(v) = tanh(v)"), rtol=1e-12, atol=1e-15)

x, w = layer_data(1_000, np.float32, 21)
b, mean, std = np.float32(0.1), np.float32(3.0), np.float32(2.0)
out, _, _ = run_layer_kernel(x, w, b, mean, std, 2, 64)
missing = int(np.isnan(out).sum())
assert missing == 0, (msg("02.missing_out_size_elements_2", "{missing} of {out_size} elements were never written by 2 x 64 threads: loop over i = cuda.grid(1), + cuda.gridsize(1), ... up to x.shape[0]", missing=missing, out_size=out.size))
assert out.dtype == np.float32
assert_close(out, layer_reference(x, w, b, mean, std), msg("02.layer_kernel_float32_threads", "layer_kernel, n=1_000 float32, 2 x 64 threads"),
             rtol=1e-5, atol=2e-6)
### BEGIN HIDDEN TESTS
for n_h, dtype_h, blocks_h, threads_h in ((4_099, np.float32, 4, 64), (4_099, np.float64, 4, 64),
                                          (1, np.float64, 1, 32), (37, np.float32, 2, 64), (333, np.float64, 3, 32)):
    xh, wh = layer_data(n_h, dtype_h, n_h)
    bh, mh, sh = dtype_h(-0.3), dtype_h(2.5), dtype_h(1.75)
    oh, xh_after, wh_after = run_layer_kernel(xh, wh, bh, mh, sh, blocks_h, threads_h)
    assert oh.dtype == dtype_h, msg("02.hidden_np_dtype_dtype", "hidden: {np_dtype_dtype_h_name} in, {oh_dtype} out", np_dtype_dtype_h_name=np.dtype(dtype_h).name, oh_dtype=oh.dtype)
    tol = dict(rtol=1e-5, atol=2e-6) if dtype_h == np.float32 else dict(rtol=1e-12, atol=1e-13)
    assert_close(oh, layer_reference(xh, wh, bh, mh, sh), msg("02.hidden_layer_kernel_h", "hidden: layer_kernel n={n_h} {np_dtype_dtype_h_name}, {blocks_h} x {threads_h} threads", n_h=n_h, np_dtype_dtype_h_name=np.dtype(dtype_h).name, blocks_h=blocks_h, threads_h=threads_h), **tol)
    assert np.array_equal(xh_after, xh) and np.array_equal(wh_after, wh), msg("02.hidden_layer_kernel_changed", "hidden: layer_kernel changed x or w")
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("02.layer_kernel_tests")
n_h, dtype_h = int(rd.integers(1, 3_000)), (np.float32, np.float64)[int(rd.integers(2))]
blocks_h, threads_h = int(rd.integers(1, 5)), int(rd.choice([32, 64, 128]))
xh, wh = layer_data(n_h, dtype_h, int(rd.integers(1 << 30)))
bh, mh, sh = (dtype_h(round(float(v), 2)) for v in (rd.uniform(-1, 1), rd.uniform(-3, 3), rd.uniform(0.5, 3)))
oh, xh_after, wh_after = run_layer_kernel(xh, wh, bh, mh, sh, blocks_h, threads_h)
assert oh.dtype == dtype_h, msg("02.hidden_np_dtype_dtype", "hidden: {np_dtype_dtype_h_name} in, {oh_dtype} out", np_dtype_dtype_h_name=np.dtype(dtype_h).name, oh_dtype=oh.dtype)
tol = dict(rtol=1e-5, atol=2e-6) if dtype_h == np.float32 else dict(rtol=1e-12, atol=1e-13)
assert_close(oh, layer_reference(xh, wh, bh, mh, sh), msg("02.hidden_layer_kernel_h", "hidden: layer_kernel n={n_h} {np_dtype_dtype_h_name}, {blocks_h} x {threads_h} threads", n_h=n_h, np_dtype_dtype_h_name=np.dtype(dtype_h).name, blocks_h=blocks_h, threads_h=threads_h), **tol)
assert np.array_equal(xh_after, xh) and np.array_equal(wh_after, wh), msg("02.hidden_layer_kernel_changed", "hidden: layer_kernel changed x or w")
vh = np.array([-1.0, 4.0, 0.5, -2.0, 9.0], np.float32)
d_probe32 = cuda.to_device(np.full((3, vh.size), np.nan, np.float32))
probe_device_functions[1, 32](cuda.to_device(vh), d_probe32)
probe32 = d_probe32.copy_to_host()
v64 = vh.astype(np.float64)
assert_close(probe32[0], (v64 + 1.0) / 4.0, msg("02.hidden_normalise_float32", "hidden: normalise float32"), rtol=1e-6)
assert_close(probe32[1], v64 * 0.5 - 2.0, msg("02.hidden_weigh_float32", "hidden: weigh float32"), rtol=1e-6)
assert_close(probe32[2], np.tanh(v64), msg("02.hidden_activate_float32", "hidden: activate float32"), rtol=1e-6, atol=1e-7)
### END HIDDEN TESTS
print(msg("02.layer_kernel_its_device", "layer_kernel and its device functions: all visible tests passed."))

# %% [markdown] key="host-function-layer-gpu"
# ## Exercise 4: the host function `layer_gpu` (4 points)
#
# Wrap the kernel in a function that anyone can call with NumPy arrays. Write
# `layer_gpu(x, w, b, mean, std)` that returns `tanh(w * (x - mean) / std + b)` as a **host NumPy
# array** of `x`'s dtype and shape:
#
# 1. copy `x` and `w` to the device and allocate the output there;
# 2. launch `layer_kernel` with `launch_config(n, THREADS_PER_BLOCK, MAX_BLOCKS)`;
# 3. pass `b`, `mean` and `std` in `x`'s dtype (`x.dtype.type(b)`), so that `float32` data is
#    computed in `float32`;
# 4. copy the result back and return it.
#
# Pass **device arrays** to the kernel (lab 01: NumPy arrays would be copied in and out on every
# launch). The tests check all of this, and that `x` and `w` are left unchanged; the grader also
# checks that the array you return is what the kernel wrote.

# %% nbgrader="solution" id="layer_gpu"
def layer_gpu(x, w, b, mean, std):
    """Return tanh(w * (x - mean) / std + b) as a host NumPy array of x's dtype, computed by layer_kernel."""
    ### BEGIN SOLUTION
    d_x = cuda.to_device(x)
    d_w = cuda.to_device(w)
    d_out = cuda.device_array_like(d_x)
    cast = x.dtype.type  # float32 data: float32 scalars, float32 arithmetic
    config = launch_config(x.shape[0], THREADS_PER_BLOCK, MAX_BLOCKS)
    layer_kernel[config](d_x, d_w, cast(b), cast(mean), cast(std), d_out)
    return d_out.copy_to_host()
    ### END SOLUTION

# %% nbgrader="tests" id="layer_gpu_tests" points=4
"""layer_gpu launches layer_kernel once, on device arrays, with THREADS_PER_BLOCK threads, at most
MAX_BLOCKS blocks and scalars in x's dtype, and returns a host NumPy array of x's dtype and shape equal
to tanh(w * (x - mean) / std + b) on 1_000 float32 values; hidden: 1_000_003 values on a GPU (4_099 in
the simulator), float64, n = 1, inputs left unchanged, and the result is what the kernel wrote into its
NaN-poisoned output, all of it, launched with launch_config's number of blocks."""
import numpy as np
from techday.labtools import assert_close, watch_kernels
from techday.i18n import msg


def spy_on_layer_gpu(x, w, b, mean, std):
    """Call layer_gpu with layer_kernel watched: every launch is recorded, its output (argument 5) poisoned first."""
    with watch_kernels(globals(), {"layer_kernel": (5,)}) as watch:
        out = layer_gpu(x, w, b, mean, std)
    return out, watch["layer_kernel"].launches


def check_launches(launches, x, what):
    assert len(launches) == 1, msg("02.what_layer_gpu_launch", "{what}: layer_gpu must launch layer_kernel once, it launched it {len_launches} times", what=what, len_launches=len(launches))
    launch = launches[0]
    assert len(launch.config) == 2, msg("02.what_launch_as_layer", "{what}: launch as layer_kernel[blocks, threads](...)", what=what)
    assert launch.threads == THREADS_PER_BLOCK, \
        msg("02.what_launched_launch_threads", "{what}: launched {launch_threads} threads per block, not THREADS_PER_BLOCK", what=what, launch_threads=launch.threads)
    assert 1 <= launch.blocks <= MAX_BLOCKS, \
        msg("02.what_launched_launch_blocks", "{what}: launched {launch_blocks} blocks; use launch_config(n, THREADS_PER_BLOCK, MAX_BLOCKS)", what=what, launch_blocks=launch.blocks)
    assert not launch.host_args, (msg("02.what_layer_kernel_numpy", "{what}: layer_kernel got NumPy arrays as arguments {launch_host_args}: copy them with cuda.to_device and allocate the output with cuda.device_array_like", what=what, launch_host_args=launch.host_args))
    wrong = [name for name, arg in zip(("b", "mean", "std"), launch.args[2:5]) if np.asarray(arg).dtype != x.dtype]
    assert not wrong, msg("02.what_pass_join_wrong", "{what}: pass {join_wrong} in x's dtype {x_dtype} (x.dtype.type(value))", what=what, join_wrong=', '.join(wrong), x_dtype=x.dtype)


def layer_reference(x, w, b, mean, std):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    return np.tanh(w * ((x - float(mean)) / float(std)) + float(b))


rng = np.random.default_rng(31)
x = (3.0 + 2.0 * rng.standard_normal(1_000)).astype(np.float32)
w = (0.8 * rng.standard_normal(1_000)).astype(np.float32)
out, launches = spy_on_layer_gpu(x, w, 0.1, 3.0, 2.0)
check_launches(launches, x, "n=1_000 float32")
assert isinstance(out, np.ndarray), \
    msg("02.layer_gpu_returned_type", "layer_gpu returned a {type_out_name}: copy the result back to the host with .copy_to_host()", type_out_name=type(out).__name__)
assert out.dtype == x.dtype, msg("02.layer_gpu_returned_out", "layer_gpu returned {out_dtype} for {x_dtype} inputs", out_dtype=out.dtype, x_dtype=x.dtype)
assert out.shape == x.shape, msg("02.layer_gpu_returned_shape", "layer_gpu returned shape {out_shape}, expected {x_shape}", out_shape=out.shape, x_shape=x.shape)
assert_close(out, layer_reference(x, w, 0.1, 3.0, 2.0), msg("02.layer_gpu_float32", "layer_gpu, n=1_000 float32"), rtol=1e-5, atol=2e-6)
### BEGIN HIDDEN TESTS


def check_from_kernel(out, launches, x, what):
    """The launch covers x (launch_config's blocks) and layer_gpu returns exactly what layer_kernel wrote."""
    launch = launches[0]
    blocks_want = max(1, min(-(-x.shape[0] // THREADS_PER_BLOCK), MAX_BLOCKS))
    try:  # exercise 2's own answer counts too: a wrong launch_config loses its points there, not twice
        blocks_yours = launch_config(x.shape[0], THREADS_PER_BLOCK, MAX_BLOCKS)[0]
    except Exception:
        blocks_yours = blocks_want
    assert launch.blocks in (blocks_want, blocks_yours), (
        msg("02.what_launched_launch_blocks_2", "{what}: launched {launch_blocks} blocks for n = {x_shape_0:,}, expected {blocks_want}: launch_config(n, THREADS_PER_BLOCK, MAX_BLOCKS)", what=what, launch_blocks=launch.blocks, x_shape_0=x.shape[0], blocks_want=blocks_want))
    written = launch.written[5]
    assert written.shape == x.shape, (msg("02.what_layer_kernel_wrote", "{what}: layer_kernel wrote an output of shape {written_shape} for x of shape {x_shape}: launch it on all of x and w", what=what, written_shape=written.shape, x_shape=x.shape))
    unwritten = launch.unwritten.get(5, 0)
    assert unwritten == 0, msg("02.what_layer_kernel_left", "{what}: layer_kernel left {unwritten} of {x_shape_0:,} elements of its output unwritten", what=what, unwritten=unwritten, x_shape_0=x.shape[0])
    assert np.array_equal(out, written), (msg("02.what_layer_gpu_returned", "{what}: layer_gpu returned something else than layer_kernel wrote: return the kernel's output, copied back with copy_to_host(), not a host result", what=what))


check_from_kernel(out, launches, x, "hidden: n=1_000 float32")
n_big = lab.size(full=1_000_003, ci=4_099)
for n_h, dtype_h in ((n_big, np.float32), (n_big, np.float64), (1, np.float32), (2_503, np.float64)):
    rh = np.random.default_rng(n_h)
    xh = (-1.0 + 5.0 * rh.standard_normal(n_h)).astype(dtype_h)
    wh = (0.5 * rh.standard_normal(n_h)).astype(dtype_h)
    xh0, wh0 = xh.copy(), wh.copy()
    what = f"hidden: n={n_h:,} {np.dtype(dtype_h).name}"
    oh, lh = spy_on_layer_gpu(xh, wh, -0.25, -1.0, 5.0)
    check_launches(lh, xh, what)
    assert isinstance(oh, np.ndarray) and oh.dtype == dtype_h and oh.shape == (n_h,), \
        msg("02.what_type_oh_name", "{what}: got {type_oh_name} {getattr_oh_dtype_none} {getattr_oh_shape_none}", what=what, type_oh_name=type(oh).__name__, getattr_oh_dtype_none=getattr(oh, 'dtype', None), getattr_oh_shape_none=getattr(oh, 'shape', None))
    tol = dict(rtol=1e-5, atol=2e-6) if dtype_h == np.float32 else dict(rtol=1e-12, atol=1e-13)
    assert_close(oh, layer_reference(xh0, wh0, -0.25, -1.0, 5.0), what, **tol)
    check_from_kernel(oh, lh, xh0, what)
    assert np.array_equal(xh, xh0) and np.array_equal(wh, wh0), msg("02.what_layer_gpu_changed", "{what}: layer_gpu changed x or w", what=what)
### END HIDDEN TESTS
print(msg("02.layer_gpu_all_visible", "layer_gpu: all visible tests passed."))

# %% [markdown] key="timing-first-call-slow"
# ## 6. Timing: why the first call is slow
#
# `@cuda.jit` compiles **lazily**: the first launch with a new combination of argument types
# compiles the kernel (Python to Numba IR to LLVM to PTX, then the driver turns PTX into machine
# code) and only then runs it. Later launches with the same types reuse the compiled code; a launch
# with new types, say `float64` instead of `float32`, compiles again. So: warm up before you time,
# and never report the first call.
#
# Launches are also **asynchronous**: `kernel[...](...)` returns as soon as the work is queued. To
# time a launch with the host's clock, wait with `cuda.synchronize()` before reading the clock.
#
# The kernel below is new, so it has not been compiled yet. On the CPU tier the simulator runs the
# kernel as Python threads, so the numbers measure Python, not a GPU; but the first launch with new
# argument types is compiled there too, by the same compiler, only to check that a GPU could run it
# (a kernel no GPU compiles is refused there as on a GPU).

# %%
from techday.i18n import msg


@cuda.jit
def square_plus_kernel(x, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = x[i] * x[i] + x[i]


n_j = lab.size(full=1_000_003, ci=2_000)
h_j = np.random.default_rng(6).random(n_j)
d_j = {np.float32: cuda.to_device(h_j.astype(np.float32)), np.float64: cuda.to_device(h_j)}
d_j_out = {dt: cuda.device_array_like(d) for dt, d in d_j.items()}
config_j = launch_config(n_j, THREADS_PER_BLOCK, MAX_BLOCKS)
from techday.tier import shown_label  # the record's English label, in this run's language
print(msg("02.first_call_launch", "n = {n:,}, launch {blocks} blocks x {threads} threads [{label}, host clock]", n=n_j,
          blocks=config_j[0], threads=config_j[1], label=shown_label(lab.timing_label())))
calls = [(msg("02.call_1_f32", "1st call, float32"), msg("02.compile_run", "compile + run"), np.float32),
         (msg("02.call_2_f32", "2nd call, float32"), msg("02.run_only", "run only"), np.float32),
         (msg("02.call_3_f32", "3rd call, float32"), msg("02.run_only", "run only"), np.float32),
         (msg("02.call_1_f64", "1st call, float64"), msg("02.compile_again", "compile again"), np.float64)]
for what, meaning, dt in calls:
    t0 = time.perf_counter()
    square_plus_kernel[config_j](d_j[dt], d_j_out[dt])
    cuda.synchronize()  # wait for the kernel to finish before reading the clock
    seconds = time.perf_counter() - t0
    print(f"  {what:18s} {seconds * 1e3:9.2f} ms" + (f"  ({meaning})" if lab.on_gpu else ""))
assert_close(d_j_out[np.float64].copy_to_host(), h_j * h_j + h_j, msg("02.square_plus_kernel_float64", "square_plus_kernel float64"))
assert_close(d_j_out[np.float32].copy_to_host(), h_j * h_j + h_j, msg("02.square_plus_kernel_float32", "square_plus_kernel float32"), rtol=1e-5)
if lab.on_gpu:
    print(msg("02.compiled_versions", "compiled versions: {signatures}", signatures=square_plus_kernel.signatures))
    # one per combination of argument types
else:
    print(msg("02.simulator_compiles_to_check", "The simulator runs Python threads, so these times measure Python, and they vary by more than the check compile of each new dtype adds to its first call (about 0.1 s): here the first call need not be the slowest. On a GPU the first call of each dtype takes a few hundred milliseconds longer than the next."))

# %% [markdown] key="timing-cuda-events-launch"
# ### Timing with CUDA events, and the launch configuration at work (GPU only)
#
# On a GPU, `time_cuda` records a CUDA **event** before and after each launch: time stamps the GPU
# takes with its own clock when it reaches them in its queue. It warms up first (the compile happens
# there), repeats, and reports the median. Events measure the GPU's time between the two stamps,
# including any time it sat idle waiting for the host to queue the launch: when a kernel is short
# next to Python's and the launch's overhead, that overhead is in the figure. A long kernel, or
# several launches queued back to back, keeps the GPU busy and the figure close to the kernel's own.
#
# The layer reads `x` and `w` and writes `out`: `3 * n * itemsize` bytes, and a few dozen
# arithmetic operations per element, so memory sets its speed. We report bandwidth in GB/s, then
# sweep the launch configuration: threads per block at a fixed cap, then the number of blocks.
# Watch what happens with too few blocks to fill the SMs. The simulator's events return -1 ms, so
# the CPU tier skips this cell.

# %%
from techday.i18n import msg

if lab.gpu_only(msg("02.gpu_only_layer_timing", "timing layer_kernel and layer_gpu with CUDA events, launch configuration sweep")):
    from techday.labtools import time_cuda

    label = lab.timing_label()
    sms = lab.gpu.multiprocessor_count
    n_t = lab.size(full=2**24 + 3, ci=2**20 + 3)  # at full scale 3 arrays of 64 MiB: beyond any L2 cache
    rng = np.random.default_rng(0)
    h_tx = (3.0 + 2.0 * rng.standard_normal(n_t)).astype(np.float32)
    h_tw = (0.8 * rng.standard_normal(n_t)).astype(np.float32)
    d_tx, d_tw = cuda.to_device(h_tx), cuda.to_device(h_tw)
    d_tout = cuda.device_array_like(d_tx)
    scalars = (np.float32(0.1), np.float32(3.0), np.float32(2.0))  # b, mean, std
    nbytes = 3 * n_t * h_tx.itemsize  # read x, read w, write out

    config_t = launch_config(n_t, THREADS_PER_BLOCK, MAX_BLOCKS)
    layer_kernel[config_t](d_tx, d_tw, *scalars, d_tout)
    assert_close(d_tout.copy_to_host(), np.tanh(h_tw * ((h_tx.astype(np.float64) - 3.0) / 2.0) + 0.1),
                 msg("02.layer_kernel_before_timing", "layer_kernel before timing"), rtol=1e-5, atol=2e-6)

    def time_layer(config, what):
        t = time_cuda(lambda: layer_kernel[config](d_tx, d_tw, *scalars, d_tout), repeat=10, what=what, label=label)
        return t, nbytes / t.median / 1e9

    t_k, gbps = time_layer(config_t, f"layer_kernel, n={n_t:,}, {config_t[0]} x {config_t[1]}")
    t_all = time_cuda(layer_gpu, h_tx, h_tw, 0.1, 3.0, 2.0, repeat=5, what=msg("02.what_layer_gpu_with_copies", "layer_gpu() incl. copies"), label=label)
    print(t_k)
    print(f"  3 * n * 4 B / {t_k.median * 1e3:.3f} ms = {gbps:.0f} GB/s")
    print(t_all)
    print(msg("02.copies_make_whole_call", "  the copies make the whole call {t_all_median_t_k_median:.0f}x slower than the kernel alone\n", t_all_median_t_k_median=t_all.median / t_k.median))

    print(msg("02.threads_per_block_most", "threads per block, at most {max_blocks} blocks (32 per SM):", max_blocks=MAX_BLOCKS))
    for tpb in (32, 64, 128, 256, 512, 1024):
        config = launch_config(n_t, tpb, MAX_BLOCKS)
        t, rate = time_layer(config, msg("02.what_blocks_threads", "{blocks:6d} blocks x {threads:4d} threads",
                                          blocks=config[0], threads=tpb))
        print(f"  {t}  ->  {rate:7.1f} GB/s")
    print(msg("02.number_blocks_threads_per", "number of blocks, {threads_per_block} threads each ({sms} SMs):", threads_per_block=THREADS_PER_BLOCK, sms=sms))
    for blocks in sorted({1, max(sms // 2, 1), sms, 4 * sms, 32 * sms, math.ceil(n_t / THREADS_PER_BLOCK)}):
        t, rate = time_layer((blocks, THREADS_PER_BLOCK), msg("02.what_blocks_threads", "{blocks:6d} blocks x {threads:4d} threads",
                                                                blocks=blocks, threads=THREADS_PER_BLOCK))
        print(f"  {t}  ->  {rate:7.1f} GB/s")
else:
    print(msg("02.gpu_expect_layer_kernel", "On a GPU, expect the layer kernel near the memory bandwidth once there are a few blocks per SM, and far below it with a handful of blocks or with 32-thread blocks."))

# %% [markdown] key="warps-branch-divergence"
# ## 7. Warps and branch divergence
#
# A block's threads run in **warps** of 32 that share one instruction stream. When the threads of one
# warp disagree at an `if`, the warp runs both sides, one after the other, each time with the threads
# that took that side and the others masked off: **divergence**. A branch on `i % 2` splits every warp
# in half, and every warp pays for both sides; the same two kinds of work split by warp (all 32
# threads of a warp on one side) cost each warp one side only. Divergence wastes time, never
# correctness: the results are the same.
#
# On the GPU tier the cell below times both arrangements of the same work. The simulator runs every
# thread on its own, so there is nothing to time on the CPU tier; there `techday.simtrace` shows the
# divergence instead: traced, a warp's stores say which elements its threads wrote, so which side of
# the branch each one took.

# %% nbgrader="locked" id="two_kinds"
from techday.i18n import msg


@cuda.jit(device=True)
def even_work(v):
    """The work an even-indexed element needs (a few multiply-adds)."""
    for _ in range(WORK_STEPS):
        v = v * 0.5 + 1.0
    return v


@cuda.jit(device=True)
def odd_work(v):
    """The other kind of work, for odd-indexed elements."""
    for _ in range(WORK_STEPS):
        v = v * 0.25 - 1.0
    return v


WORK_STEPS = lab.size(full=400, ci=4)


@cuda.jit
def by_parity(x, out):
    """One element per thread, in order: the threads of every warp take both sides of the branch."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        if i % 2 == 0:
            out[i] = even_work(x[i])
        else:
            out[i] = odd_work(x[i])


def expected_two_kinds(x):
    """even_work on even indices, odd_work on odd ones, on the host (float32, as the kernels compute)."""
    out = x.astype(np.float32).copy()
    for _ in range(WORK_STEPS):
        out[0::2] = out[0::2] * np.float32(0.5) + np.float32(1.0)
        out[1::2] = out[1::2] * np.float32(0.25) - np.float32(1.0)
    return out


h_k = np.random.default_rng(7).standard_normal(1_000).astype(np.float32)
d_k_out = cuda.to_device(np.full(1_000, np.nan, np.float32))
by_parity[4, 256](cuda.to_device(h_k), d_k_out)
assert_close(d_k_out.copy_to_host(), expected_two_kinds(h_k), msg("02.what_by_parity_1000", "by_parity, 1,000 elements"),
             rtol=1e-6)
print(msg("02.by_parity_correct", "by_parity: correct on 1,000 elements"))

# %% [markdown] key="warp-uniform"
# ## Exercise 5: one kind of work per warp (2 points)
#
# Write `by_kind(x, out)` that computes the same `out` as `by_parity` (`even_work` for every even
# index, `odd_work` for every odd one) but gives each thread an element such that the threads of a warp
# all do the same kind of work: the first `n_even = (n + 1) // 2` threads of the grid take the even
# elements in order, the next `n // 2` threads the odd ones. Only the warp that straddles the boundary
# may hold both kinds. Threads past `n` do nothing; the launch has at least `n` threads.
#
# Work out, for `n = 7`, which element threads 0 to 6 take, before you write it. The tests check the
# results; on the CPU tier the hidden tests also trace the kernel's stores, warp by warp.

# %% nbgrader="solution" id="by_kind"
@cuda.jit
def by_kind(x, out):
    """out as by_parity computes it, with the even elements on the first threads and the odd ones after."""
    ### BEGIN SOLUTION
    t = cuda.grid(1)
    n = x.shape[0]
    n_even = (n + 1) // 2
    if t < n_even:
        j = 2 * t
        out[j] = even_work(x[j])
    elif t < n:
        j = 2 * (t - n_even) + 1
        out[j] = odd_work(x[j])
    ### END SOLUTION

# %% nbgrader="tests" id="by_kind_tests" points=2
"""by_kind is a @cuda.jit kernel and equals by_parity's results (NaN-poisoned output) on 1,000 and 999 elements
with 4 x 256 threads; hidden: 1, 2 and 33 elements, more threads than elements, and on the CPU tier (traced
in the simulator) at most one warp whose threads write both even and odd elements."""
import numpy as np
from numba import cuda
from techday.labtools import assert_close, assert_cuda_kernel
from techday.i18n import msg


def check_by_kind(n, blocks, threads, what):
    h = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    d_out = cuda.to_device(np.full(n, np.nan, np.float32))
    by_kind[blocks, threads](cuda.to_device(h), d_out)
    got = d_out.copy_to_host()
    missing = int(np.isnan(got).sum())
    assert missing == 0, msg("02.by_kind_missing", "{what}: {missing} of {n} elements were never written", what=what,
                             missing=missing, n=n)
    assert_close(got, expected_two_kinds(h), msg("02.by_kind_values", "{what}: even_work on even indices, odd_work on "
                                                 "odd ones", what=what), rtol=1e-6)


assert_cuda_kernel(by_kind, "by_kind")
check_by_kind(1_000, 4, 256, msg("02.what_by_kind_1000", "1,000 elements, 4 x 256 threads"))
check_by_kind(999, 4, 256, msg("02.what_by_kind_999", "999 elements, 4 x 256 threads"))
### BEGIN HIDDEN TESTS
for n_h, blocks_h, threads_h in ((1, 1, 32), (2, 1, 32), (33, 2, 32), (100, 3, 64)):
    check_by_kind(n_h, blocks_h, threads_h, msg("02.what_hidden_by_kind", "hidden: {n} elements, {blocks} x {threads} "
                                                "threads", n=n_h, blocks=blocks_h, threads=threads_h))
if lab.on_gpu:
    print(msg("02.hidden_divergence_cpu_only", "hidden: the divergence check traces stores in the simulator, on the "
              "CPU tier only"))
else:
    from techday.simtrace import trace_global

    h_d = np.random.default_rng(11).standard_normal(256).astype(np.float32)
    d_out_d = cuda.to_device(np.full(256, np.nan, np.float32))
    with trace_global(d_out_d) as trace_d:
        by_kind[2, 128](cuda.to_device(h_d), d_out_d)
    kinds = {warp: {j % 2 for j in written} for warp, written in trace_d.warps(d_out_d, "store").items()}
    mixed = sum(len(k) > 1 for k in kinds.values())
    assert mixed <= 1, msg("02.hidden_divergent_warps", "hidden: by_kind, traced on 256 elements: {mixed} of {warps} "
                           "warps hold threads writing even and odd elements (both sides of the branch run in each "
                           "of them); give the first n_even threads the even elements, the rest the odd ones",
                           mixed=mixed, warps=len(kinds))
### END HIDDEN TESTS
print(msg("02.by_kind_all_visible", "by_kind: all visible tests passed."))

# %% [markdown] key="divergence-measured"
# ### Divergence, measured (GPU only)
#
# The same work, the same data, two arrangements: `by_parity` (both sides in every warp) and your
# `by_kind` (one side per warp). With `WORK_STEPS` multiply-adds per element the arithmetic dominates,
# so expect `by_parity` to take about twice as long. Timed with CUDA events, after a warm-up.

# %%
from techday.i18n import msg

if lab.gpu_only(msg("02.gpu_only_divergence", "timing by_parity against by_kind with CUDA events")):
    from techday.labtools import time_cuda

    n_dv = lab.size(full=2**24, ci=2**20)
    d_dv = cuda.to_device(np.random.default_rng(3).standard_normal(n_dv).astype(np.float32))
    d_dv_out = cuda.device_array_like(d_dv)
    blocks_dv = -(-n_dv // 256)
    times = {}
    for kernel in (by_parity, by_kind):
        kernel[blocks_dv, 256](d_dv, d_dv_out)
        assert_close(d_dv_out.copy_to_host()[:4096], expected_two_kinds(d_dv.copy_to_host()[:4096]), kernel.__name__,
                     rtol=1e-5)
        times[kernel.__name__] = time_cuda(lambda: kernel[blocks_dv, 256](d_dv, d_dv_out), repeat=10,
                                           what=f"{kernel.__name__:9s} n={n_dv:,}", label=lab.timing_label())
        print(times[kernel.__name__])
    print(msg("02.divergence_ratio", "by_parity / by_kind: {ratio:.2f} (divergent warps run both sides)",
              ratio=times["by_parity"].median / times["by_kind"].median))
else:
    print(msg("02.divergence_not_timed", "Not timed on the CPU tier: the simulator runs each thread alone, so a warp "
              "never waits for its other side. The traced check above is what the CPU tier can show."))

# %% [markdown] key="summary"
# ## Summary
#
# - A launch `kernel[blocks, threads]` runs the kernel in every thread; threads form blocks (at most
#   1,024 threads, on one SM), blocks form the grid. `cuda.grid(n)` is a thread's global index and
#   `cuda.gridsize(n)` the number of threads in the grid, in 1, 2 or 3 dimensions.
# - In 2-D, CUDA counts `(x, y)` and NumPy `(rows, cols)`: map `x` to columns and check each index
#   against its own axis. Grid-stride loops in both directions make a kernel right for any grid.
# - Threads per block: a multiple of the warp size, 32 (advice for speed; CUDA accepts 1 to 1,024);
#   256 is a good default. Since Volta a warp's threads are scheduled independently: never rely on
#   them running in lock-step. Blocks: enough to fill
#   every SM several times, capped when a grid-stride loop does the rest. Compute the ceiling with
#   integers.
# - `@cuda.jit(device=True)` functions return values, are called from kernels, and cost nothing.
# - The simulator raises `IndexError` where a GPU silently writes out of bounds. Unsynchronised
#   read-modify-write loses updates: use atomics (lab 03).
# - The first launch with new argument types compiles: warm up, then time with CUDA events, and
#   report a rate.
# - The 32 threads of a warp share one instruction stream: when they disagree at a branch, the warp
#   runs both sides. Arrange the work so that a warp's threads take the same side.
#
# ## Going further
#
# - Numba CUDA: kernels, thread indexing, device functions, the simulator and its limits,
#   https://nvidia.github.io/numba-cuda/
# - `compute-sanitizer` (in the CUDA toolkit) finds out-of-bounds accesses and races on a real GPU:
#   `compute-sanitizer --tool memcheck python script.py`, `--tool racecheck` for shared memory.
# - The CUDA occupancy calculator (Nsight Compute's "Occupancy" section) shows how registers and shared
#   memory per thread limit the number of resident blocks.
# - `@cuda.jit("void(float32[::1], ...)")` with an explicit signature compiles eagerly, at definition
#   time, and `cache=True` keeps the compiled code on disk between sessions.
# - Next: lab 03, atomics and reductions (many threads, one result), and lab 04, the memory subsystem.
