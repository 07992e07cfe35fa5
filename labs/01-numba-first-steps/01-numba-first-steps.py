# %% [markdown] key="cuda-python-numba-first"
# # 01 CUDA Python with Numba: first steps
#
# In one hour you go from a slow Python loop to your first CUDA kernel, checked against NumPy.
#
# ## You will learn
# - what just-in-time (JIT) compilation is, and why the first call of an `@njit` function is slow;
# - how to write your own NumPy ufuncs with `@vectorize`, for the CPU, for all CPU cores, and for the GPU;
# - how data moves between the host (CPU memory) and the device (GPU memory), and what that costs;
# - how to write, launch and check a CUDA kernel with `@cuda.jit`: thread indices, the bounds check,
#   the grid-stride loop and the launch configuration `kernel[blocks, threads](...)`.
#
# **How this lab works**: read, run the examples, then solve the four exercises.
# In each exercise cell, delete `raise NotImplementedError()` and write your code.
# The cell after it runs the tests; do not edit test cells.
# The grader also runs hidden tests, on sizes and dtypes you do not see here.
#
# Points: exercise 1: 3, exercise 2: 3, exercise 3: 4, exercise 4: 4 (14 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# The code cell below chooses the **tier** and prints it. On a machine without a GPU it switches
# on Numba's CUDA **simulator**, which runs your kernels in Python threads: results are checked
# exactly as on a GPU, but timings mean nothing there. That switch must happen before Numba is
# imported, so always run this cell first.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("01.title", "01 CUDA Python with Numba: first steps"))

# %% nbgrader="locked" id="imports"
import math
import time
import warnings

import numpy as np
import numba
from numba import cuda, njit, vectorize

from techday.labtools import assert_close, time_cpu

from techday.i18n import msg

print(msg("01.banner_gpu", "numba {numba} | NumPy {numpy} | kernels run on the GPU", numba=numba.__version__,
          numpy=np.__version__) if lab.on_gpu else
      msg("01.banner_simulator", "numba {numba} | NumPy {numpy} | kernels run in the CUDA simulator (CPU tier)",
          numba=numba.__version__, numpy=np.__version__))

# %% [markdown] key="njit-compile-python-function"
# ## 1. `@njit`: compile a Python function for the CPU
#
# Python runs your code one bytecode at a time and checks every type on every step, so a loop over
# ten million numbers takes seconds. **Numba** is a just-in-time (JIT) compiler: the first time you
# call a function decorated with `@njit`, Numba looks at the *types* of the arguments (say, a 1-D
# `float64` array), translates the function to machine code through LLVM, caches that code, and runs
# it. Later calls with the same types skip straight to the machine code.
#
# - First call = compile + run (slow).
# - Second call = run only (fast).
# - A call with new types (say, `float32` instead of `float64`) compiles a new version.
#
# `njit` means "no Python objects allowed": the whole function must compile, or Numba raises an
# error that says which line it could not type. That is the mode the GPU needs too.
#
# Timings in this section are **CPU** timings on every tier: `@njit` code runs on the CPU.

# %%
def sum_of_squares(x):
    """Plain Python: a loop, one element at a time."""
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * x[i]
    return total


sum_of_squares_jit = njit(sum_of_squares)  # the same function, compiled by Numba on first call

n = lab.size(full=10_000_000, ci=200_000, cpu=10_000_000)
x = np.random.default_rng(0).random(n)

t0 = time.perf_counter()
first = sum_of_squares_jit(x)  # compiles for (float64[::1],), then runs
t_first = time.perf_counter() - t0
t0 = time.perf_counter()
second = sum_of_squares_jit(x)  # runs the cached machine code
t_second = time.perf_counter() - t0

assert_close(first, np.sum(x * x), "sum_of_squares_jit", rtol=1e-9)
print(f"n = {n:,}")
print(msg("01.first_call_time", "first call  (compile + run): {ms:9.1f} ms  [CPU]", ms=t_first * 1e3))
print(msg("01.second_call_time", "second call (run only)     : {ms:9.1f} ms  [CPU]", ms=t_second * 1e3))
print(msg("01.compiled_versions_so_far", "compiled versions so far: {signatures}", signatures=sum_of_squares_jit.signatures))

# %% [markdown] key="note"
# Now time it properly: `time_cpu` makes one warm-up call (compilation happens there, outside the
# timed region), repeats, and reports the median. We check before we time, always.
# The pure-Python loop gets a smaller array so this cell stays quick; we compare time *per element*.

# %%
from techday.i18n import msg

n_py = lab.size(full=1_000_000, ci=100_000, cpu=1_000_000)
x_py = x[:n_py]
assert_close(sum_of_squares(x_py), np.sum(x_py * x_py), msg("01.pure_python_sum_squares", "pure Python sum_of_squares"), rtol=1e-9)

t_py = time_cpu(sum_of_squares, x_py, repeat=3, what=msg("01.what_python_loop", "pure Python loop, n={n:,}", n=n_py), label="CPU")
t_jit = time_cpu(sum_of_squares_jit, x, what=msg("01.what_njit_loop", "@njit loop, n={n:,}", n=n), label="CPU")
t_np = time_cpu(lambda v: np.sum(v * v), x, what=msg("01.what_numpy_sum", "NumPy np.sum(x * x), n={n:,}", n=n), label="CPU")
for t, size in ((t_py, n_py), (t_jit, n), (t_np, n)):
    print(msg("01.ns_per_element", "{timing}  ->  {ns:7.2f} ns per element", timing=t, ns=t.median / size * 1e9))
print(msg("01.njit_about_t_py", "@njit is about {t_py_median_n_py_t_jit_median:,.0f}x faster than the Python loop per element.", t_py_median_n_py_t_jit_median=(t_py.median / n_py) / (t_jit.median / n)))

# %% [markdown] key="numerically-stable-mean-variance"
# The compiled loop runs at the speed of compiled code, while the NumPy expression `np.sum(x * x)`
# first builds a temporary array `x * x`, then reads it again to sum it. Numba shines where NumPy
# needs several passes or temporary arrays, or cannot express the algorithm at all, such as a loop
# in which each step depends on the one before. That is your first exercise.
#
# ## Exercise 1: a numerically stable mean and variance with `@njit` (3 points)
#
# Write `mean_var(x)` that returns the tuple `(mean, variance)` of a 1-D array in **one pass** over
# the data, with **Welford's** update. Start with `count = 0`, `mean = 0.0`, `m2 = 0.0`; then for
# each value `v`:
#
# ```
# count += 1
# delta = v - mean
# mean += delta / count
# m2   += delta * (v - mean)     # uses the *updated* mean
# ```
#
# and at the end the (population) variance is `m2 / count`, the same as `np.var(x)`.
#
# Why not the textbook formula $\overline{x^2} - \bar{x}^2$? For data far from zero (here
# $10^8 \pm 1$) the two terms are both about $10^{16}$ and almost equal: their difference loses
# every significant digit (catastrophic cancellation). The tests use exactly such data.
# You may assume `x` has at least one element.
#
# One pass means one loop that reads `x[0]`, `x[1]`, ... in order and never goes back, as if the data
# arrived as a stream. The grader checks that: it also calls
# the Python version of your function (`mean_var.py_func`) on data that can be read only that way, so
# `x.mean()`, `np.var(x)` or a second loop over `x` fail there.

# %% nbgrader="solution" id="mean_var"
@njit
def mean_var(x):
    """Return (mean, population variance) of the 1-D array x, in one pass (Welford)."""
    ### BEGIN SOLUTION
    count = 0
    mean = 0.0
    m2 = 0.0
    for i in range(x.shape[0]):
        v = x[i]
        count += 1
        delta = v - mean
        mean += delta / count
        m2 += delta * (v - mean)
    return mean, m2 / count
    ### END SOLUTION

# %% nbgrader="tests" id="mean_var_tests" points=3
"""mean_var is compiled with @njit and matches NumPy's mean and variance on 10_007 float64 values
around 1e8 (a naive sum-of-squares formula loses every digit there); hidden: float32, tiny and odd sizes,
and one pass: mean_var.py_func on data that can only be read front to back, one element at a time; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from techday.labtools import assert_close
from techday.i18n import msg

assert hasattr(mean_var, "py_func"), msg("01.mean_var_compiled_njit", "mean_var must be compiled with @njit (keep the decorator)")
rng = np.random.default_rng(2024)
x = 1e8 + rng.standard_normal(10_007)
result = mean_var(x)
assert isinstance(result, tuple) and len(result) == 2, msg("01.mean_var_return_mean", "mean_var must return (mean, variance), got {result!r}", result=result)
m, v = result
assert_close(m, x.mean(), msg("01.mean_e8", "mean of 1e8 + N(0, 1), n=10_007"), rtol=1e-12)
assert_close(v, x.var(), msg("01.variance_e8_one_pass", "variance of 1e8 + N(0, 1), n=10_007 (one pass, Welford's update?)"), rtol=1e-6)
### BEGIN HIDDEN TESTS
for n_h, offset in ((1, 5.0), (2, -3.0), (3, 0.0), (1_001, 1e9), (7_919, -2.5e7)):
    xh = offset + np.random.default_rng(n_h).standard_normal(n_h) * 3.0
    mh, vh = mean_var(xh)
    assert_close(mh, xh.mean(), msg("01.hidden_mean_h_offset", "hidden: mean, n={n_h}, offset={offset:g}", n_h=n_h, offset=offset), rtol=1e-12, atol=1e-12)
    assert_close(vh, xh.var(), msg("01.hidden_variance_h_offset", "hidden: variance, n={n_h}, offset={offset:g}", n_h=n_h, offset=offset), rtol=1e-6, atol=1e-12)
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("01.mean_var_tests")
for n_h, offset in ((int(rd.integers(1, 5)), round(float(rd.uniform(-10, 10)), 3)),
                    (int(rd.integers(500, 8_000)), float(rd.choice([1e9, -2.5e7, 1e4])) * float(rd.integers(1, 4)))):
    xh = offset + rd.standard_normal(n_h) * 3.0
    mh, vh = mean_var(xh)
    assert_close(mh, xh.mean(), msg("01.hidden_mean_h_offset", "hidden: mean, n={n_h}, offset={offset:g}", n_h=n_h, offset=offset), rtol=1e-12, atol=1e-12)
    assert_close(vh, xh.var(), msg("01.hidden_variance_h_offset", "hidden: variance, n={n_h}, offset={offset:g}", n_h=n_h, offset=offset), rtol=1e-6, atol=1e-12)
xf = (1000.0 + np.random.default_rng(7).standard_normal(4_099)).astype(np.float32)
mf, vf = mean_var(xf)
ref = xf.astype(np.float64)
assert_close(mf, ref.mean(), msg("01.hidden_mean_float32_input", "hidden: mean of float32 input"), rtol=1e-6)
assert_close(vf, ref.var(), msg("01.hidden_variance_float32_input", "hidden: variance of float32 input"), rtol=1e-3)


class FrontToBack:
    """A 1-D array that can be read only as a stream: x[i] one element at a time, i never going back."""

    def __init__(self, values):
        self._values, self.shape, self.size, self.ndim, self.dtype = values, values.shape, values.size, 1, values.dtype
        self.last = -1

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise AssertionError(msg("01.hidden_mean_var_read_2", "hidden: mean_var read x[{i!r}]: read one element at a time, x[i], in one pass", i=i))
        i = int(i) + (self.size if i < 0 else 0)
        if not 0 <= i < self.size:
            raise IndexError(msg("01.index_i_out_bounds", "index {i} is out of bounds for a stream of {self_size} values", i=i, self_size=self.size))
        if i < self.last:
            raise AssertionError(msg("01.hidden_mean_var_read_3", "hidden: mean_var read x[{i}] after x[{self_last}]: that is a second pass over the data; update count, mean and m2 as each value arrives (Welford)", i=i, self_last=self.last))
        self.last = i
        return self._values[i]

    def __iter__(self):
        for i in range(self.size):
            yield self[i]

    def __array__(self, *args, **kwargs):
        raise AssertionError(msg("01.hidden_mean_var_turned", "hidden: mean_var turned x into an array (np.mean, np.var, np.asarray ...): compute the mean and variance yourself, in one pass over x[i] (Welford)"))

    def __getattr__(self, name):
        raise AssertionError(msg("01.hidden_mean_var_used", "hidden: mean_var used x.{name}: compute the mean and variance yourself, in one pass over x[i] (Welford)", name=name))


for n_h, offset in ((1, 3.0), (2_003, 1e8)):
    xs = offset + np.random.default_rng(n_h + 1).standard_normal(n_h)
    stream = FrontToBack(xs)
    ms, vs = mean_var.py_func(stream)
    assert stream.last == n_h - 1, msg("01.hidden_mean_var_read", "hidden: mean_var read x only up to x[{stream_last}] of {n_h} values", stream_last=stream.last, n_h=n_h)
    assert_close(ms, xs.mean(), msg("01.hidden_one_pass_mean", "hidden: one pass, mean, n={n_h}", n_h=n_h), rtol=1e-12, atol=1e-12)
    assert_close(vs, xs.var(), msg("01.hidden_one_pass_variance", "hidden: one pass, variance, n={n_h}", n_h=n_h), rtol=1e-6, atol=1e-12)
### END HIDDEN TESTS
print(msg("01.mean_var_all_visible", "mean_var: all visible tests passed."))

# %% [markdown] key="ufuncs-scalar-function-applied"
# ## 2. Ufuncs: one scalar function, applied to whole arrays, on CPU or GPU
#
# NumPy's `np.add`, `np.exp` and friends are **ufuncs** (universal functions): a function of
# scalars that NumPy applies element by element, with broadcasting, `out=` and dtype handling for
# free. With `numba.vectorize` you write the **scalar** function and Numba builds the ufunc. You give
# a **signature list**, one entry per dtype loop, as `"return_type(arg_types)"`:
#
# ```python
# @vectorize(["float32(float32, float32)", "float64(float64, float64)"])   # target="cpu"
# ```
#
# The `target` picks where the loop runs:
# - `"cpu"` (the default): one CPU core;
# - `"parallel"`: all CPU cores (multi-threaded);
# - `"cuda"`: the GPU. Numba compiles a CUDA kernel and launches one thread per element.
#
# Below, the same scalar function `bump` (a 2-D Gaussian bump) goes to every target.

# %%
INV_2PI = 1.0 / (2.0 * math.pi)
BUMP_SIGNATURES = ["float32(float32, float32)", "float64(float64, float64)"]


def bump(x, y):
    """A smooth 2-D bump exp(-(x^2 + y^2) / 2) / (2 pi), for one pair of scalars."""
    return math.exp(-0.5 * (x * x + y * y)) * INV_2PI


bump_cpu = vectorize(BUMP_SIGNATURES)(bump)  # same as writing @vectorize(...) above `def bump`
bump_par = vectorize(BUMP_SIGNATURES, target="parallel")(bump)

# Broadcasting works as with any ufunc: a (3, 1) column and a (4,) row give a (3, 4) grid.
gx = np.linspace(-1, 1, 3, dtype=np.float32).reshape(3, 1)
gy = np.linspace(-1, 1, 4, dtype=np.float32)
grid = bump_cpu(gx, gy)
print(msg("01.grid_dtype_loops", "grid: {shape} {dtype} | dtype loops: {loops}", shape=grid.shape, dtype=grid.dtype,
          loops=bump_cpu.types))


def bump_numpy(x, y):
    return np.exp(-0.5 * (x * x + y * y)) * INV_2PI


n_u = lab.size(full=10_000_000, ci=200_000, cpu=10_000_000)
rng = np.random.default_rng(1)
ux = rng.standard_normal(n_u).astype(np.float32)
uy = rng.standard_normal(n_u).astype(np.float32)
reference = bump_numpy(ux.astype(np.float64), uy.astype(np.float64))
assert_close(bump_cpu(ux, uy), reference, "bump_cpu", rtol=1e-5)
assert_close(bump_par(ux, uy), reference, "bump_par", rtol=1e-5)

for fn, what in ((bump_numpy, msg("01.what_numpy_expression", "NumPy expression")),
                 (bump_cpu, "@vectorize target='cpu'"),
                 (bump_par, msg("01.what_vectorize_parallel", "@vectorize target='parallel' ({threads} threads)",
                                threads=numba.get_num_threads()))):
    print(time_cpu(fn, ux, uy, what=f"{what}, n={n_u:,} float32", label="CPU"))

# %% [markdown] key="same-ufunc-gpu"
# Read these CPU timings with care: NumPy's own `exp` uses SIMD instructions, and the float
# literals in `bump` (`0.5`, `INV_2PI`) make Numba compute in `float64`, so a one-core `@vectorize`
# loop need not beat the NumPy expression. `target="parallel"` pays off with many cores and large
# arrays. The bigger payoff of writing the scalar function once: it also runs on the GPU.
#
# ### The same ufunc on the GPU (GPU only)
#
# `@vectorize(..., target="cuda")` turns the scalar function into a CUDA kernel. Called with NumPy
# arrays, a CUDA ufunc copies every input to the GPU, runs, and copies the result back, **on every
# call**. Called with device arrays (section 3), it leaves the result on the GPU. Watch the
# difference in the timings: for a cheap function like `bump`, the copies cost far more than the
# arithmetic.
#
# The CUDA simulator has no CUDA ufuncs, so on the CPU tier this cell explains and skips (we do
# not even decorate with `target="cuda"` there).

# %%
from techday.i18n import msg

if lab.gpu_only(msg("01.gpu_only_cuda_ufuncs", "CUDA ufuncs (@vectorize target='cuda')")):
    from techday.labtools import time_cuda

    bump_gpu = vectorize(BUMP_SIGNATURES, target="cuda")(bump)
    assert_close(bump_gpu(ux, uy), reference, msg("01.bump_gpu_host_arrays", "bump_gpu on host arrays"), rtol=1e-5)
    d_ux, d_uy = cuda.to_device(ux), cuda.to_device(uy)
    d_bump = cuda.device_array_like(d_ux)
    bump_gpu(d_ux, d_uy, out=d_bump)
    assert_close(d_bump.copy_to_host(), reference, msg("01.bump_gpu_device_arrays", "bump_gpu on device arrays"), rtol=1e-5)

    t_host = time_cuda(bump_gpu, ux, uy, what=msg("01.what_ufunc_host", "CUDA ufunc, NumPy arrays in (copies included)"),
                       label=lab.timing_label())
    t_dev = time_cuda(lambda: bump_gpu(d_ux, d_uy, out=d_bump), what=msg("01.what_ufunc_device", "CUDA ufunc, device arrays in"),
                      label=lab.timing_label())
    print(t_host)
    print(t_dev)
    # Bytes the kernel itself touches: two float32 inputs read, one float32 output written.
    gbps = 3 * n_u * ux.itemsize / t_dev.median / 1e9
    print(msg("01.device_only_ufunc_rate", "device-only ufunc: 3 * n * 4 B / {ms:.3f} ms = {gbps:.0f} GB/s",
              ms=t_dev.median * 1e3, gbps=gbps))
    print(msg("01.copies_make_call_t", "the copies make the call {t_host_median_t_dev_median:.0f}x slower", t_host_median_t_dev_median=t_host.median / t_dev.median))

# %% [markdown] key="own-ufunc-vectorize"
# ## Exercise 2: your own ufunc with `@vectorize` (3 points)
#
# The **Huber loss** of a residual $r$ with threshold $\delta > 0$ is quadratic near zero and
# linear far away (robust to outliers):
#
# $$\text{huber}(r, \delta) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\
# \delta\,(|r| - \tfrac12 \delta) & \text{otherwise} \end{cases}$$
#
# Write `huber` as a CPU ufunc with `@vectorize` and a **signature list** with a `float32` loop and
# a `float64` loop, so that `float32` inputs give a `float32` result. Write
# the scalar version with an `if`: that is the point of a ufunc (NumPy would need `np.where`, which
# computes both branches for every element). `abs(r)` works on scalars in Numba.
#
# The tests call it on `float32` arrays, with a scalar `delta`, and with broadcasting
# (`(3, 1)` against `(4,)`).

# %% nbgrader="solution" id="huber"
# Define `huber` here: @vectorize([...signatures...]) above `def huber(r, delta):`.
### BEGIN SOLUTION
@vectorize(["float32(float32, float32)", "float64(float64, float64)"])
def huber(r, delta):
    a = abs(r)
    if a <= delta:
        return 0.5 * r * r
    return delta * (a - 0.5 * delta)
### END SOLUTION

# %% nbgrader="tests" id="huber_tests" points=3
"""huber is a ufunc built with @vectorize: float32 in gives float32 out, it matches a NumPy reference
on 10_007 values with a scalar delta, and it broadcasts (3, 1) against (4,); hidden: float64 and
array-valued delta, values exactly at the threshold, 2-D inputs; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from techday.labtools import assert_close
from techday.i18n import msg


def huber_reference(r, delta):
    r, delta = np.asarray(r, np.float64), np.asarray(delta, np.float64)
    return np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))


assert hasattr(huber, "nin") and hasattr(huber, "types"), \
    msg("01.huber_ufunc_made_vectorize", "huber must be a ufunc made with @vectorize, not a {type_huber_name}", type_huber_name=type(huber).__name__)
assert huber.nin == 2, msg("01.huber_takes_two_inputs", "huber takes two inputs (r, delta), it has {huber_nin}", huber_nin=huber.nin)
r32 = (3.0 * np.random.default_rng(11).standard_normal(10_007)).astype(np.float32)
out32 = huber(r32, np.float32(1.5))
assert out32.dtype == np.float32, \
    msg("01.float32_inputs_gave_out32", "float32 inputs gave {out32_dtype}: give huber a 'float32(float32, float32)' signature", out32_dtype=out32.dtype)
assert_close(out32, huber_reference(r32, 1.5), msg("01.huber_r_float32_values", "huber(r, 1.5) on 10_007 float32 values"), rtol=1e-5, atol=1e-7)
col = np.array([[-4.0], [0.25], [2.0]], np.float32)
row = np.array([0.5, 1.0, 2.0, 3.0], np.float32)
grid_out = huber(col, row)
assert grid_out.shape == (3, 4), msg("01.huber_should_broadcast_grid", "huber((3, 1), (4,)) should broadcast to (3, 4), got {grid_out_shape}", grid_out_shape=grid_out.shape)
assert_close(grid_out, huber_reference(col, row), msg("01.huber_broadcast", "huber broadcast (3, 1) x (4,)"), rtol=1e-5)
### BEGIN HIDDEN TESTS
r64 = 5.0 * np.random.default_rng(12).standard_normal(1_003)
d64 = np.abs(np.random.default_rng(13).standard_normal(1_003)) + 0.1
out64 = huber(r64, d64)
assert out64.dtype == np.float64, msg("01.hidden_float64_inputs_gave", "hidden: float64 inputs gave {out64_dtype}", out64_dtype=out64.dtype)
assert_close(out64, huber_reference(r64, d64), msg("01.hidden_float64_array_delta", "hidden: float64, array delta"), rtol=1e-12)
edge = np.array([-2.0, -1.0, -0.0, 0.0, 1.0, 2.0, 1e30, -1e30], np.float64)
assert_close(huber(edge, 1.0), huber_reference(edge, 1.0), msg("01.hidden_threshold_extreme_values", "hidden: threshold and extreme values"), rtol=1e-12)
m2 = np.random.default_rng(14).standard_normal((37, 29)).astype(np.float32)
o2 = huber(m2, np.float32(0.7))
assert o2.dtype == np.float32 and o2.shape == (37, 29), msg("01.hidden_d_float32_input", "hidden: 2-D float32 input")
assert_close(o2, huber_reference(m2, np.float32(0.7)), msg("01.hidden_d_float32", "hidden: 2-D float32"), rtol=1e-5, atol=1e-7)
# Drawn at every grading (techday.draw): the arrays above are published with the course.
import techday.draw

rd = techday.draw.rng("01.huber_tests")
n_d = int(rd.integers(1, 3_000))
r_d = float(rd.uniform(0.5, 10)) * rd.standard_normal(n_d)
d_d = np.abs(rd.standard_normal(n_d)) + 0.1
out_d = huber(r_d, d_d)
assert out_d.dtype == np.float64, msg("01.hidden_float64_inputs_gave", "hidden: float64 inputs gave {out64_dtype}", out64_dtype=out_d.dtype)
assert_close(out_d, huber_reference(r_d, d_d), msg("01.hidden_float64_array_delta", "hidden: float64, array delta"), rtol=1e-12)
### END HIDDEN TESTS
print(msg("01.huber_all_visible_tests", "huber: all visible tests passed."))

# %% [markdown] key="host-device-memory-moving"
# ## 3. Host and device memory: moving data costs time
#
# The CPU (the **host**) and the GPU (the **device**) have separate memories. A discrete GPU's
# own memory moves one to several terabytes per second *inside* the GPU, but data crosses between
# host and device over PCIe (or NVLink-C2C on Grace Hopper), one to two orders of magnitude slower.
# Lab 00 compared these costs; here you learn the calls that move real arrays.
# Rule of thumb: **move data to the device once, compute many times there, copy back only what
# you need**.
#
# Numba's tools:
#
# | call | what it does |
# | --- | --- |
# | `d = cuda.to_device(h)` | allocate on the device and copy host array `h` there (H2D) |
# | `d = cuda.device_array(n, dtype=np.float32)` | allocate on the device, no copy (contents undefined) |
# | `d = cuda.device_array_like(a)` | the same, with `a`'s shape and dtype |
# | `h = d.copy_to_host()` | copy back into a new NumPy array (D2H) |
# | `d.copy_to_host(h)` / `d.copy_to_device(h)` | copy into existing arrays, no allocation |
#
# A device array is **not** a NumPy array: it has `.shape`, `.dtype` and `.size`, and you can slice
# it, but arithmetic on it happens in kernels, not in NumPy. If you pass a NumPy array straight to
# a kernel, Numba copies it to the device and back again on *every* launch, even if the kernel only
# reads it.

# %%
from techday.i18n import msg

n_t = lab.size(full=2**26, ci=2**20)  # 2**26 float32 = 256 MiB, much larger than any L2 cache
h_x = np.arange(n_t, dtype=np.float32)

d_x = cuda.to_device(h_x)                           # H2D copy
d_y = cuda.device_array(n_t, dtype=np.float32)      # allocation only
d_z = cuda.device_array_like(d_x)                   # allocation only
d_y.copy_to_device(d_x)                             # device -> device copy
h_back = d_y.copy_to_host()                         # D2H copy into a new host array
h_head = d_x[:5].copy_to_host()                     # a slice: copy back only what you need

assert type(h_back) is np.ndarray and np.array_equal(h_back, h_x), msg("01.round_trip_host_device", "round trip host -> device -> host changed the data")
assert np.array_equal(h_head, h_x[:5])
print(msg("01.device_array_is", "d_x is a {type_name} (not a NumPy array): shape {shape}, dtype {dtype}, {mib:.0f} MiB",
          type_name=type(d_x).__name__, shape=d_x.shape, dtype=d_x.dtype, mib=d_x.nbytes / 2**20))
print(msg("01.round_trip_host_device_2", "round trip host -> device -> device -> host: data unchanged"))

# %% [markdown] key="fast-copies"
# ### How fast are the copies? (GPU only)
#
# On a GPU we time each copy with **CUDA events**: markers the GPU stamps with its own clock when it
# reaches them in its queue. `techday.labtools.time_cuda` warms up, records an event before and
# after each call, repeats, and reports the median. Rate = bytes moved / seconds.
#
# Events measure the GPU's time between the two markers, and that includes any time the GPU sits
# idle waiting for the host to hand it the next piece of work. A large copy or a long kernel keeps
# the GPU busy, so the figure is the device's own time; for short operations, the Python and launch
# overhead between the markers shows up in the measurement. Events do not remove host overhead;
# they only leave it out when the GPU never has to wait for the host.
#
# Two kinds of host memory: ordinary (**pageable**) memory must first be staged by the driver
# through a pinned buffer; **pinned** (page-locked) memory from `cuda.pinned_array` can be read by
# the GPU's copy engine directly, so copies are faster. A device-to-device copy stays in HBM.
#
# The simulator's events always return -1 ms, so on the CPU tier there is nothing honest to time.

# %%
from techday.i18n import msg

if lab.gpu_only(msg("01.gpu_only_copy_timing", "timing host<->device copies with CUDA events")):
    from techday.labtools import time_cuda

    label = lab.timing_label()
    nbytes = h_x.nbytes
    h_out = np.empty_like(h_x)
    h_pinned = cuda.pinned_array(n_t, dtype=np.float32)
    h_pinned[:] = h_x
    copies = [
        (msg("01.what_h2d_pageable", "H2D pageable"), d_x.copy_to_device, h_x, 1),
        (msg("01.what_d2h_pageable", "D2H pageable"), d_x.copy_to_host, h_out, 1),
        (msg("01.what_h2d_pinned", "H2D pinned  "), d_x.copy_to_device, h_pinned, 1),
        (msg("01.what_d2h_pinned", "D2H pinned  "), d_x.copy_to_host, h_pinned, 1),
        (msg("01.what_d2d", "D2D (in HBM)"), d_y.copy_to_device, d_x, 2),  # reads and writes device memory: 2x the bytes
    ]
    for what, fn, arg, passes in copies:
        t = time_cuda(fn, arg, what=what, label=label)
        gbps = passes * nbytes / t.median / 1e9  # bytes moved / seconds
        print(f"{t}  ->  {passes} x {nbytes / 2**20:.0f} MiB / {t.median * 1e3:.3f} ms = {gbps:7.1f} GB/s")
    g = lab.gpu
    peak = 2 * g.memory_clock_rate_khz * 1e3 * g.global_memory_bus_width_bits / 8 / 1e9  # DDR: 2 per clock
    if peak > 0:
        print(msg("01.device_memory_peak", "device memory peak (2 x clock x bus width): {peak:.0f} GB/s", peak=peak))
else:
    print(msg("01.gpu_expect_pinned_copies", "On a GPU, expect pinned copies near the link's limit (PCIe 4.0 x16: about 25 GB/s, PCIe 5.0 x16: about 50 GB/s), pageable ones slower, and device-to-device copies around a terabyte per second or more."))

# %% [markdown] key="first-cuda-kernel"
# ## 4. Your first CUDA kernel
#
# A **kernel** is a function that runs on the GPU, once per thread, in thousands of threads at once.
# Threads are grouped in **blocks**, and the blocks form the **grid**. You choose both sizes when
# you launch:
#
# ```python
# kernel[blocks_per_grid, threads_per_block](arg1, arg2, ...)
# ```
#
# Inside the kernel each thread asks who it is. For a 1-D launch,
# `cuda.grid(1)` = `cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x`, a number from 0 to
# `blocks * threads - 1`. The usual pattern is one thread per element, with enough blocks to cover
# `n`: `blocks = ceil(n / threads)`. The last block usually has spare threads past the end of the
# array, so every kernel needs a **bounds check**.
#
# Kernels cannot return a value: they write into an output array you pass in. Threads per block:
# CUDA accepts any number from 1 to 1024, but the hardware runs threads in *warps* of 32, so a block
# whose size is not a multiple of 32 leaves lanes of its last warp idle. Use a multiple of 32,
# usually 128 to 512; 256 is a good default.
#
# We fill outputs with NaN ("poison") before a launch, so that any element the kernel forgot to
# write shows up as NaN in the check.

# %%
from techday.i18n import msg


@cuda.jit
def double_kernel(x, out):
    i = cuda.grid(1)         # this thread's global index
    if i < x.shape[0]:       # bounds check: the last block has spare threads
        out[i] = 2.0 * x[i]


n_k = lab.size(full=10_000_003, ci=2_000)
threads = 256
blocks = math.ceil(n_k / threads)                   # enough blocks to cover every element
h_k = np.random.default_rng(3).random(n_k).astype(np.float32)
d_k = cuda.to_device(h_k)
d_k_out = cuda.to_device(np.full(n_k, np.nan, np.float32))   # poisoned output
double_kernel[blocks, threads](d_k, d_k_out)
assert_close(d_k_out.copy_to_host(), 2 * h_k, "double_kernel")
print(msg("01.k_blocks_blocks_threads", "n = {n_k:,}: {blocks} blocks x {threads} threads = {blocks_threads:,} threads, {blocks_threads_n_k} of them idle in the last block", n_k=n_k, blocks=blocks, threads=threads, blocks_threads=blocks * threads, blocks_threads_n_k=blocks * threads - n_k))

# %% [markdown] key="note-2"
# Without the bounds check, the spare threads read and write past the end of the arrays. On a real
# GPU that is undefined behaviour: it may corrupt other data, crash later, or seem to work. The
# simulator checks every index, so there we can show the error safely.

# %%
from techday.i18n import msg


@cuda.jit
def double_kernel_unchecked(x, out):
    i = cuda.grid(1)
    out[i] = 2.0 * x[i]      # no bounds check: a bug


if lab.simulator:
    try:
        double_kernel_unchecked[blocks, threads](d_k, d_k_out)
        raise AssertionError(msg("01.expected_indexerror_simulator", "expected an IndexError from the simulator"))
    except IndexError as err:
        print(msg("01.simulator_caught_out_bounds", "The simulator caught the out-of-bounds access:"), str(err).splitlines()[0][:120])
else:
    print(msg("01.launched_real_gpu_out", "Not launched: on a real GPU an out-of-bounds access is undefined behaviour, and the simulator (CPU tier) is the place to see it caught."))

# %% [markdown] key="grid-stride-loop"
# ### The grid-stride loop
#
# One thread per element ties the grid size to `n`. A **grid-stride loop** frees you from that:
# each thread starts at its global index and jumps ahead by the total number of threads in the
# grid, `cuda.gridsize(1)` (= `blocks * threads`), until it passes the end:
#
# ```python
# start = cuda.grid(1)
# stride = cuda.gridsize(1)
# for i in range(start, x.shape[0], stride):
#     out[i] = ...
# ```
#
# The `range` stops at `x.shape[0]`, so the bounds check is built in. The same kernel is now right
# for any grid: one block or ten thousand. On a GPU, a grid of a few dozen blocks per
# multiprocessor (SM) keeps every SM busy, and reusing threads saves the cost of starting new ones.
# In the simulator, each CUDA thread is a Python thread, so there we keep the grid tiny.
#
# Numba warns when a grid has fewer than 128 blocks ("GPU under-utilization"): good advice for
# real work, but in this lab we launch small grids on purpose, so we silence that one warning.

# %% nbgrader="locked" id="launch_config"
warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under-utilization")

THREADS_PER_BLOCK = 256
# At most this many blocks for a grid-stride kernel: 32 per SM on a GPU, 4 in the simulator.
MAX_BLOCKS = 32 * max(lab.gpu.multiprocessor_count, 1) if lab.on_gpu else 4
print(f"THREADS_PER_BLOCK = {THREADS_PER_BLOCK}, MAX_BLOCKS = {MAX_BLOCKS}")


# %%
from techday.i18n import msg


@cuda.jit
def scale_kernel(x, factor, out):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        out[i] = factor * x[i]


@cuda.jit
def add_scalar_kernel(x, shift, out):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        out[i] = x[i] + shift


blocks_gs = min(math.ceil(n_k / THREADS_PER_BLOCK), MAX_BLOCKS)
d_k_out = cuda.to_device(np.full(n_k, np.nan, np.float32))
scale_kernel[blocks_gs, THREADS_PER_BLOCK](d_k, np.float32(3.0), d_k_out)
assert_close(d_k_out.copy_to_host(), 3 * h_k, "scale_kernel")
print(msg("01.grid_stride_blocks_gs", "grid-stride: {blocks_gs} blocks x {threads_per_block} threads covered n = {n_k:,} (about {math_ceil_n_k_blocks_gs_thread} elements per thread)", blocks_gs=blocks_gs, threads_per_block=THREADS_PER_BLOCK, n_k=n_k, math_ceil_n_k_blocks_gs_thread=math.ceil(n_k / (blocks_gs * THREADS_PER_BLOCK))))

# Keep data on the device across kernels: one copy in, two kernels, one copy out.
d_tmp = cuda.device_array_like(d_k)
d_res = cuda.device_array_like(d_k)
scale_kernel[blocks_gs, THREADS_PER_BLOCK](d_k, np.float32(2.0), d_tmp)
add_scalar_kernel[blocks_gs, THREADS_PER_BLOCK](d_tmp, np.float32(1.0), d_res)
assert_close(d_res.copy_to_host(), 2 * h_k + 1, msg("01.two_kernels_device_data", "2 * x + 1 with two kernels on device data"))
print(msg("01.computed_two_kernels_intermediate", "2 * x + 1 computed by two kernels; the intermediate never left the device"))

# %% [markdown] key="note-3"
# On a GPU, compare three ways to compute `2 * x + 1` with these two kernels: copying back to the
# host between the kernels, copying in and out once, and data that already lives on the device.

# %%
from techday.i18n import msg

if lab.gpu_only(msg("01.gpu_only_round_trips", "timing round trips against device-resident data")):
    from techday.labtools import time_cuda

    label = lab.timing_label()
    launch = (blocks_gs, THREADS_PER_BLOCK)

    def round_trips():
        tmp = cuda.device_array_like(h_k)
        scale_kernel[launch](cuda.to_device(h_k), np.float32(2.0), tmp)
        h_tmp = tmp.copy_to_host()          # back to the host for no reason ...
        out = cuda.device_array_like(h_k)
        add_scalar_kernel[launch](cuda.to_device(h_tmp), np.float32(1.0), out)   # ... and out again
        return out.copy_to_host()

    def copy_once():
        d_in = cuda.to_device(h_k)
        scale_kernel[launch](d_in, np.float32(2.0), d_tmp)
        add_scalar_kernel[launch](d_tmp, np.float32(1.0), d_res)
        return d_res.copy_to_host()

    def resident():
        scale_kernel[launch](d_k, np.float32(2.0), d_tmp)
        add_scalar_kernel[launch](d_tmp, np.float32(1.0), d_res)

    assert_close(round_trips(), 2 * h_k + 1, "round_trips")
    assert_close(copy_once(), 2 * h_k + 1, "copy_once")
    times = [time_cuda(fn, what=what, label=label) for fn, what in
             ((round_trips, msg("01.what_round_trips", "4 copies + 2 kernels")),
              (copy_once, msg("01.what_copy_once", "2 copies + 2 kernels")),
              (resident, msg("01.what_resident", "2 kernels only")))]
    for t in times:
        print(msg("01.x_kernels_alone", "{timing}  ({ratio:5.1f}x the kernels alone)", timing=t,
                  ratio=t.median / times[-1].median))

# %% [markdown] key="saxpy-kernel-grid-stride"
# ## Exercise 3: a SAXPY kernel with a grid-stride loop (4 points)
#
# SAXPY ("single-precision a times x plus y") is the "hello world" of GPU computing:
# `out[i] = a * x[i] + y[i]` for every `i`.
#
# Write the body of `saxpy_kernel(a, x, y, out)` with a **grid-stride loop** (`cuda.grid(1)` and
# `cuda.gridsize(1)`), like `scale_kernel` above. The tests launch it with a deliberately small
# grid, 2 blocks of 32 threads for 5,001 elements: only a real grid-stride loop writes every
# element. Other tests launch more threads than there are elements. Write only to `out`, each
# element exactly once: like BLAS's SAXPY, which updates `y` in place, your kernel must also be
# right when called as `saxpy_kernel(a, x, y, y)`.

# %% nbgrader="solution" id="saxpy_kernel"
@cuda.jit
def saxpy_kernel(a, x, y, out):
    """out[i] = a * x[i] + y[i] for every i, with a grid-stride loop."""
    ### BEGIN SOLUTION
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        out[i] = a * x[i] + y[i]
    ### END SOLUTION

# %% nbgrader="tests" id="saxpy_kernel_tests" points=4
"""saxpy_kernel is a @cuda.jit kernel and writes a*x + y into every element of a NaN-poisoned output: on
5_001 float32 values with only 2 blocks x 32 threads (grid-stride loop), and with spare threads (bounds
check); hidden: float64, n smaller than one block, n = 1, inputs left unchanged, in place (out is y); and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from numba import cuda
from techday.labtools import assert_close, assert_cuda_kernel
from techday.i18n import msg

assert_cuda_kernel(saxpy_kernel, "saxpy_kernel")


def run_saxpy_kernel(a, x, y, blocks, threads):
    """Launch on copies of x and y; out is the head of a NaN-poisoned buffer with a spare tail."""
    n, pad = x.shape[0], 64
    d_buf = cuda.to_device(np.full(n + pad, np.nan, x.dtype))  # poison: unwritten elements stay NaN
    d_x, d_y = cuda.to_device(x), cuda.to_device(y)
    saxpy_kernel[blocks, threads](a, d_x, d_y, d_buf[:n])
    buf = d_buf.copy_to_host()
    # A real GPU does not check indices; the tail past out's end shows a write out of bounds.
    assert np.isnan(buf[n:]).all(), msg("01.saxpy_kernel_wrote_past", "saxpy_kernel wrote past the end of out (n={n}): check the loop bound", n=n)
    return buf[:n], d_x.copy_to_host(), d_y.copy_to_host()


rng = np.random.default_rng(5)
x = rng.random(5_001, dtype=np.float32)
y = 1.0 + rng.random(5_001, dtype=np.float32)
a = np.float32(2.5)
expected = 2.5 * x.astype(np.float64) + y
out, _, _ = run_saxpy_kernel(a, x, y, 2, 32)
missing = int(np.isnan(out).sum())
assert missing == 0, (msg("01.missing_out_size_elements", "{missing} of {out_size} elements were never written by 2 x 32 threads: each thread must loop over i = cuda.grid(1), +cuda.gridsize(1), ... up to x.shape[0]", missing=missing, out_size=out.size))
assert_close(out, expected, msg("01.saxpy_kernel_blocks_threads", "saxpy_kernel, n=5_001, 2 blocks x 32 threads"), rtol=1e-5)
x_small, y_small = x[:1_000].copy(), y[:1_000].copy()
out, _, _ = run_saxpy_kernel(a, x_small, y_small, 4, 256)  # 1_024 threads for 1_000 elements
assert_close(out, expected[:1_000], msg("01.saxpy_kernel_blocks_threads_2", "saxpy_kernel, n=1_000, 4 blocks x 256 threads (spare threads)"), rtol=1e-5)
### BEGIN HIDDEN TESTS
for n_h, blocks_h, threads_h in ((37, 1, 64), (1, 3, 32), (2_999, 5, 64), (777, 2, 128)):
    rh = np.random.default_rng(n_h)
    xh, yh = rh.random(n_h), 1.0 + rh.random(n_h)
    ah = -0.75
    oh, xh_after, yh_after = run_saxpy_kernel(ah, xh, yh, blocks_h, threads_h)
    assert oh.dtype == np.float64
    assert_close(oh, ah * xh + yh, msg("01.hidden_float64_h_blocks", "hidden: float64, n={n_h}, {blocks_h} x {threads_h} threads", n_h=n_h, blocks_h=blocks_h, threads_h=threads_h), rtol=1e-12)
    assert np.array_equal(xh_after, xh) and np.array_equal(yh_after, yh), msg("01.hidden_saxpy_kernel_changed", "hidden: saxpy_kernel changed x or y")
# Drawn at every grading (techday.draw): the launches above are published with the course.
import techday.draw

rd = techday.draw.rng("01.saxpy_kernel_tests")
n_h, blocks_h, threads_h = int(rd.integers(1, 3_000)), int(rd.integers(1, 6)), int(rd.choice([32, 64, 128]))
xh, yh, ah = rd.random(n_h), 1.0 + rd.random(n_h), float(rd.uniform(-2, 2))
oh, xh_after, yh_after = run_saxpy_kernel(ah, xh, yh, blocks_h, threads_h)
assert_close(oh, ah * xh + yh, msg("01.hidden_float64_h_blocks", "hidden: float64, n={n_h}, {blocks_h} x {threads_h} threads", n_h=n_h, blocks_h=blocks_h, threads_h=threads_h), rtol=1e-12)
assert np.array_equal(xh_after, xh) and np.array_equal(yh_after, yh), msg("01.hidden_saxpy_kernel_changed", "hidden: saxpy_kernel changed x or y")
xi, yi = x[:777].copy(), y[:777].copy()
d_yi = cuda.to_device(yi)
saxpy_kernel[4, 32](a, cuda.to_device(xi), d_yi, d_yi)  # BLAS style: y <- a * x + y
assert_close(d_yi.copy_to_host(), expected[:777], msg("01.hidden_place_out_y", "hidden: in place, out is y (each element updated once?)"), rtol=1e-5)
### END HIDDEN TESTS
print(msg("01.saxpy_kernel_all_visible", "saxpy_kernel: all visible tests passed."))

# %% [markdown] key="host-function-saxpy"
# ## Exercise 4: the host function `saxpy(a, x, y)` (4 points)
#
# A kernel alone is not a tool anyone can call. Write `saxpy(a, x, y)` that takes NumPy arrays and
# returns a **host NumPy array** (not a device array) with `a * x + y`, in the dtype of `x`:
#
# 1. copy `x` and `y` to the device (`cuda.to_device`) and allocate the output there
#    (`cuda.device_array_like`);
# 2. choose a launch configuration: `THREADS_PER_BLOCK` threads per block and enough blocks to
#    cover `n`, but at most `MAX_BLOCKS` (your grid-stride loop does the rest), and at least 1;
# 3. launch `saxpy_kernel`, passing `a` in `x`'s dtype (`x.dtype.type(a)`): a Python float is
#    `float64`, and `float64` arithmetic is much slower than `float32` on many GPUs;
# 4. copy the result back with `copy_to_host()` and return it.
#
# Pass **device arrays** to the kernel: given NumPy arrays, Numba would copy each of them to the
# device and back again on every launch. The tests check that too, and the grader's hidden tests
# check the launch itself: one launch, the number of blocks and threads of step 2, `a` in `x`'s
# dtype, and that the array you return is what the kernel wrote.

# %% nbgrader="solution" id="saxpy"
def saxpy(a, x, y):
    """Return a * x + y as a host NumPy array of x's dtype, computed on the GPU by saxpy_kernel."""
    ### BEGIN SOLUTION
    d_x = cuda.to_device(x)
    d_y = cuda.to_device(y)
    d_out = cuda.device_array_like(d_x)
    blocks = max(1, min(math.ceil(x.shape[0] / THREADS_PER_BLOCK), MAX_BLOCKS))
    saxpy_kernel[blocks, THREADS_PER_BLOCK](x.dtype.type(a), d_x, d_y, d_out)
    return d_out.copy_to_host()
    ### END SOLUTION

# %% nbgrader="tests" id="saxpy_tests" points=4
"""saxpy(a, x, y) launches saxpy_kernel on device arrays and returns a host NumPy array of x's dtype
and shape equal to a*x + y, on an awkward size (1_000_003 on a GPU, 3_001 in the simulator or at
scale ci); hidden: one launch of THREADS_PER_BLOCK threads and max(1, min(ceil(n / THREADS_PER_BLOCK),
MAX_BLOCKS)) blocks, a in x's dtype, the result is what the kernel wrote into its NaN-poisoned output;
float64, n = 1, n smaller than one block, inputs left unchanged; and sizes, types and a drawn afresh at
every grading (techday.draw)."""
import numpy as np
from techday.labtools import assert_close, watch_kernels
from techday.i18n import msg


def spy_on_saxpy(a, x, y):
    """Call saxpy with saxpy_kernel watched: every launch is recorded, its output (argument 3) poisoned first."""
    with watch_kernels(globals(), {"saxpy_kernel": (3,)}) as watch:
        out = saxpy(a, x, y)
    return out, watch["saxpy_kernel"].launches


n = lab.size(full=1_000_003, ci=3_001)
rng = np.random.default_rng(9)
x = rng.random(n, dtype=np.float32)
y = 1.0 + rng.random(n, dtype=np.float32)
out, launches = spy_on_saxpy(2.0, x, y)
assert launches, msg("01.saxpy_launch_saxpy_kernel", "saxpy must launch saxpy_kernel[blocks, threads](...)")
host_args = launches[0].host_args
assert not host_args, (msg("01.saxpy_kernel_numpy_arrays", "saxpy_kernel got NumPy arrays as arguments {host_args}: copy them with cuda.to_device and allocate the output with cuda.device_array_like, or Numba copies them back and forth", host_args=host_args))
assert isinstance(out, np.ndarray), \
    msg("01.saxpy_returned_type_out", "saxpy returned a {type_out_name}: copy the result back to the host with .copy_to_host()", type_out_name=type(out).__name__)
assert out.dtype == x.dtype, msg("01.saxpy_returned_out_dtype", "saxpy returned {out_dtype} for {x_dtype} inputs", out_dtype=out.dtype, x_dtype=x.dtype)
assert out.shape == x.shape, msg("01.saxpy_returned_shape_out", "saxpy returned shape {out_shape}, expected {x_shape}", out_shape=out.shape, x_shape=x.shape)
assert_close(out, 2.0 * x.astype(np.float64) + y, msg("01.saxpy_y_float32", "saxpy(2.0, x, y), n={n:,} float32", n=n), rtol=1e-5)
### BEGIN HIDDEN TESTS


def check_saxpy_launch(out, launches, x, what):
    """One launch, configured as taught, whose output is every element of what saxpy returned."""
    n_x = x.shape[0]
    assert len(launches) == 1, msg("01.what_saxpy_launch_saxpy", "{what}: saxpy must launch saxpy_kernel once, it launched it {len_launches} times", what=what, len_launches=len(launches))
    launch = launches[0]
    assert not launch.host_args, msg("01.what_saxpy_kernel_numpy", "{what}: saxpy_kernel got NumPy arrays as arguments {launch_host_args}", what=what, launch_host_args=launch.host_args)
    assert launch.threads == THREADS_PER_BLOCK, \
        msg("01.what_launched_launch_threads", "{what}: launched {launch_threads} threads per block, not THREADS_PER_BLOCK = {threads_per_block}", what=what, launch_threads=launch.threads, threads_per_block=THREADS_PER_BLOCK)
    assert 1 <= launch.blocks <= MAX_BLOCKS, msg("01.what_launched_launch_blocks", "{what}: launched {launch_blocks} blocks: at least 1, at most MAX_BLOCKS", what=what, launch_blocks=launch.blocks)
    assert launch.blocks * launch.threads >= n_x or launch.blocks == MAX_BLOCKS, \
        (msg("01.what_launch_blocks_blocks", "{what}: {launch_blocks} blocks x {launch_threads} threads do not cover n = {n_x}: use enough blocks, ceil(n / THREADS_PER_BLOCK), up to MAX_BLOCKS", what=what, launch_blocks=launch.blocks, launch_threads=launch.threads, n_x=n_x))
    blocks_want = max(1, min(-(-n_x // THREADS_PER_BLOCK), MAX_BLOCKS))
    assert launch.blocks == blocks_want, (msg("01.what_launched_launch_blocks_2", "{what}: launched {launch_blocks} blocks for n = {n_x}, expected {blocks_want} = max(1, min(ceil(n / THREADS_PER_BLOCK), MAX_BLOCKS))", what=what, launch_blocks=launch.blocks, n_x=n_x, blocks_want=blocks_want))
    a_dtype = np.asarray(launch.args[0]).dtype
    assert a_dtype == x.dtype, msg("01.what_was_passed_as", "{what}: a was passed as {a_dtype}; pass it in x's dtype, x.dtype.type(a)", what=what, a_dtype=a_dtype)
    written = launch.written[3]
    assert written.shape == x.shape, (msg("01.what_saxpy_kernel_wrote", "{what}: saxpy_kernel wrote an output of shape {written_shape} for x of shape {x_shape}: launch it on all of x and y", what=what, written_shape=written.shape, x_shape=x.shape))
    unwritten = launch.unwritten.get(3, 0)
    assert unwritten == 0, msg("01.what_saxpy_kernel_left", "{what}: saxpy_kernel left {unwritten} of {n_x} elements of its output unwritten", what=what, unwritten=unwritten, n_x=n_x)
    assert np.array_equal(out, written), (msg("01.what_saxpy_returned_something", "{what}: saxpy returned something else than saxpy_kernel wrote: return the kernel's output, copied back with copy_to_host(), not a host result", what=what))


check_saxpy_launch(out, launches, x, f"hidden: n={n:,} float32")
for n_h in (1, 100, 2_503):
    rh = np.random.default_rng(100 + n_h)
    xh, yh = rh.random(n_h), 1.0 + rh.random(n_h)
    xh0, yh0 = xh.copy(), yh.copy()
    oh, lh = spy_on_saxpy(-0.5, xh, yh)
    assert lh, msg("01.hidden_saxpy_did_launch", "hidden: saxpy did not launch saxpy_kernel")
    assert isinstance(oh, np.ndarray) and oh.dtype == np.float64 and oh.shape == (n_h,), \
        msg("01.hidden_float64_h_type", "hidden: float64 n={n_h}: got {type_oh_name} {getattr_oh_dtype_none} {getattr_oh_shape_none}", n_h=n_h, type_oh_name=type(oh).__name__, getattr_oh_dtype_none=getattr(oh, 'dtype', None), getattr_oh_shape_none=getattr(oh, 'shape', None))
    assert_close(oh, -0.5 * xh0 + yh0, msg("01.hidden_saxpy_float64_h", "hidden: saxpy float64, n={n_h}", n_h=n_h), rtol=1e-12)
    assert np.array_equal(xh, xh0) and np.array_equal(yh, yh0), msg("01.hidden_saxpy_changed_or", "hidden: saxpy changed x or y")
    check_saxpy_launch(oh, lh, xh0, f"hidden: float64, n={n_h}")
x3 = np.random.default_rng(3).random(1_237, dtype=np.float32)
o3, l3 = spy_on_saxpy(np.float32(0.0), x3, x3)
assert o3.dtype == np.float32 and o3 is not x3, msg("01.hidden_saxpy_return_new", "hidden: saxpy must return a new array")
assert_close(o3, x3, msg("01.hidden_saxpy", "hidden: saxpy(0, x, x) == x"), rtol=1e-7)
check_saxpy_launch(o3, l3, x3, "hidden: saxpy(0, x, x)")
# Drawn at every grading (techday.draw): the sizes above are published with the course. A size within one
# block, one of 2 to 4 blocks that leaves the last block part-filled, and one of more than 4 blocks (past
# MAX_BLOCKS on the CPU tier), each float32 or float64 with a drawn a; the expected launch is the rule
# above and the expected values a * x + y.
import techday.draw

rd = techday.draw.rng("01.saxpy_tests")
for lo_d, hi_d in ((2, THREADS_PER_BLOCK), (THREADS_PER_BLOCK + 1, 4 * THREADS_PER_BLOCK), (4 * THREADS_PER_BLOCK + 1, 3_000)):
    n_d = int(rd.integers(lo_d, hi_d))
    if n_d % THREADS_PER_BLOCK == 0:
        n_d += 1
    dtype_d = (np.float32, np.float64)[int(rd.integers(0, 2))]
    xd, yd, ad = rd.random(n_d).astype(dtype_d), (1.0 + rd.random(n_d)).astype(dtype_d), float(rd.uniform(-2, 2))
    xd0, yd0 = xd.copy(), yd.copy()
    od, ld = spy_on_saxpy(ad, xd, yd)
    what_d = msg("01.drawn_saxpy", "hidden: saxpy {dtype}, n={n}, a={a:.4g}", dtype=np.dtype(dtype_d).name, n=n_d, a=ad)
    assert ld, msg("01.hidden_saxpy_did_launch", "hidden: saxpy did not launch saxpy_kernel")
    assert isinstance(od, np.ndarray) and od.dtype == xd.dtype and od.shape == (n_d,), msg(
        "01.drawn_saxpy_returned", "{what}: got {type_name} {dtype} {shape}", what=what_d, type_name=type(od).__name__,
        dtype=getattr(od, "dtype", None), shape=getattr(od, "shape", None))
    # a may be negative: a * x + y can cancel to near 0, so the tolerance is the type's, scaled to the
    # terms (|a| x + y <= |a| + 2), not to the result.
    tol_d = 1e-5 if dtype_d is np.float32 else 1e-12
    assert_close(od, xd0.dtype.type(ad) * xd0.astype(np.float64) + yd0, what_d, rtol=tol_d, atol=tol_d * (abs(ad) + 2))
    assert np.array_equal(xd, xd0) and np.array_equal(yd, yd0), msg("01.hidden_saxpy_changed_or", "hidden: saxpy changed x or y")
    check_saxpy_launch(od, ld, xd0, what_d)
### END HIDDEN TESTS
print(msg("01.saxpy_all_visible_tests", "saxpy: all visible tests passed."))

# %% [markdown] key="check-then-time"
# ### Check, then time (GPU only)
#
# With the kernel checked, time it on device-resident data and report the **effective bandwidth**:
# SAXPY reads `x` and `y` and writes `out`, so it moves `3 * n * itemsize` bytes and does almost no
# arithmetic. Its speed is set by memory, and we compare it with the memory's peak. Then time your
# whole `saxpy`, copies included.

# %%
from techday.i18n import msg

if lab.gpu_only(msg("01.gpu_only_saxpy_timing", "timing saxpy_kernel and saxpy with CUDA events")):
    from techday.labtools import time_cuda

    label = lab.timing_label()
    n_s = lab.size(full=2**25 + 3, ci=2**20 + 3)  # 3 arrays of 128 MiB at full scale: far beyond L2
    rng = np.random.default_rng(0)
    h_sx, h_sy = rng.random(n_s, dtype=np.float32), rng.random(n_s, dtype=np.float32)
    d_sx, d_sy = cuda.to_device(h_sx), cuda.to_device(h_sy)
    d_sout = cuda.device_array_like(d_sx)
    blocks_s = min(math.ceil(n_s / THREADS_PER_BLOCK), MAX_BLOCKS)
    a32 = np.float32(2.0)

    saxpy_kernel[blocks_s, THREADS_PER_BLOCK](a32, d_sx, d_sy, d_sout)
    assert_close(d_sout.copy_to_host(), 2.0 * h_sx.astype(np.float64) + h_sy, msg("01.saxpy_kernel_before_timing", "saxpy_kernel before timing"), rtol=1e-5)

    t_k = time_cuda(lambda: saxpy_kernel[blocks_s, THREADS_PER_BLOCK](a32, d_sx, d_sy, d_sout),
                    what=f"saxpy_kernel, n={n_s:,}, {blocks_s} x {THREADS_PER_BLOCK}", label=label)
    gbps = 3 * n_s * h_sx.itemsize / t_k.median / 1e9  # read x, read y, write out
    g = lab.gpu
    peak = 2 * g.memory_clock_rate_khz * 1e3 * g.global_memory_bus_width_bits / 8 / 1e9
    print(t_k)
    of_peak = msg("01.of_peak", " = {frac:.0%} of the {peak:.0f} GB/s peak", frac=gbps / peak, peak=peak) if peak > 0 \
        else msg("01.peak_unknown", " (peak unknown)")
    print(f"  3 * n * 4 B / {t_k.median * 1e3:.3f} ms = {gbps:.0f} GB/s{of_peak}")

    t_all = time_cuda(saxpy, a32, h_sx, h_sy, what=msg("01.what_saxpy_with_copies", "saxpy() incl. 2 copies in, 1 copy out"), label=label)
    print(t_all)
    print(msg("01.copies_make_saxpy_t", "  the copies make SAXPY {t_all_median_t_k_median:.0f}x slower than the kernel alone", t_all_median_t_k_median=t_all.median / t_k.median))

# %% [markdown] key="summary"
# ## Summary
#
# - `@njit` compiles a Python function to machine code on its first call, once per argument type:
#   time the second call, never the first.
# - `@vectorize` turns a scalar function into a ufunc with broadcasting; the signature list fixes
#   the dtype loops. `target="parallel"` uses every CPU core, `target="cuda"` the GPU.
# - Host and device memories are separate. `cuda.to_device`, `cuda.device_array(_like)` and
#   `copy_to_host` move data explicitly; copies over PCIe are far slower than the GPU's own memory,
#   so keep data on the device across kernels.
# - A CUDA kernel runs once per thread: `cuda.grid(1)` says which element, a bounds check guards the
#   spare threads, and a grid-stride loop with `cuda.gridsize(1)` makes a kernel right for any grid.
# - Check against NumPy on awkward sizes with a poisoned output, then time with CUDA events and
#   report a rate (GB/s) next to its formula. Remember that an event timing includes any time the
#   GPU spent waiting for the host.
#
# ## Going further
#
# - Numba CUDA documentation: kernels, memory management and the simulator,
#   https://nvidia.github.io/numba-cuda/ ; `@njit` options (`parallel=True` with `prange`,
#   `cache=True`, `fastmath=True`): https://numba.readthedocs.io/
# - Streams and asynchronous copies (`cuda.stream()`, `to_device(..., stream=s)`) let copies overlap
#   with kernels; pinned memory is what makes that possible.
# - `cuda.gridsize(2)` and `cuda.grid(2)` for images and matrices; device functions
#   (`@cuda.jit(device=True)`) to share code between kernels.
# - Next labs: shared memory and reductions, and measuring against the memory roofline.
