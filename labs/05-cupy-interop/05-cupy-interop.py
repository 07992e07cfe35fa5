# %% [markdown] key="cupy-interoperability"
# # 05 CuPy and interoperability
#
# Labs 01 to 04 wrote every kernel by hand. Most GPU code is not written that way: it is NumPy-style
# array code that a library runs on the GPU. **CuPy** copies NumPy's interface, function by function,
# and runs it on the device. This lab shows how far array code goes, how CuPy lets you drop down to
# your own CUDA C when it is not enough, and how CuPy, Numba and PyTorch hand each other GPU arrays
# without copying a byte.
#
# ## You will learn
# - to write array code once for NumPy and CuPy, with one `xp` switch and `get_array_module`;
# - what **kernel fusion** is and what `cupy.fuse` saves;
# - to write your own kernels as CUDA C source: `ElementwiseKernel`, `ReductionKernel`, `RawKernel`,
#   and how NVRTC, the runtime compiler, checks that source on any machine;
# - zero-copy exchange of device arrays: Numba and CuPy through `__cuda_array_interface__`, PyTorch
#   through **DLPack**.
#
# **How this lab works**: read, run the examples, then solve the three exercises.
# In each exercise cell, delete `raise NotImplementedError()` and write your code.
# The cell after it runs the tests; do not edit test cells.
# The grader also runs hidden tests, on sizes, shapes and dtypes you do not see here.
#
# Without a GPU (the CPU tier) the array code runs on NumPy, kernel source is still compiled by NVRTC,
# and the cells that need a device say why they are skipped.
#
# Points: exercise 1: 3, exercise 2: 4, exercise 3: 3 (10 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# The code cell below chooses the **tier** and prints it. Always run it first.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("05.title", "05 CuPy and interoperability"))

# %% nbgrader="locked" id="imports"
import time

import numpy as np
import torch

from techday import cudasrc
from techday.i18n import msg
from techday.labtools import assert_close, time_cpu
from techday.xp import get_array_module, get_xp, strict_namespace

xp = get_xp(lab)  # cupy on the GPU tier, numpy on the CPU tier: the one switch of this lab
NVRTC_OK, NVRTC_WHY = cudasrc.nvrtc_status()
# The architecture NVRTC compiles for: this GPU's, or a common data-centre one (A100) on the CPU tier.
ARCH = f"compute_{lab.gpu.compute_capability[0]}{lab.gpu.compute_capability[1]}" if lab.on_gpu else "compute_80"
TORCH_DEVICE = "cuda" if lab.on_gpu and torch.cuda.is_available() else "cpu"

print(msg("05.versions", "xp is {xp} {xp_version} | torch {torch_version} on {device}", xp=xp.__name__,
          xp_version=xp.__version__, torch_version=torch.__version__, device=TORCH_DEVICE) + " | "
      + (msg("05.nvrtc_ok", "{nvrtc} compiles kernel source for {arch}", nvrtc=NVRTC_WHY, arch=ARCH) if NVRTC_OK
         else msg("05.nvrtc_missing", "no NVRTC here: {why}", why=NVRTC_WHY)))
if lab.on_gpu and TORCH_DEVICE == "cpu":
    print(msg("05.torch_no_cuda", "PyTorch here has no CUDA support: the PyTorch parts of this lab exchange host arrays instead."))

# %% [markdown] key="numpy-code-gpu"
# ## 1. NumPy code on the GPU
#
# `cupy.arange`, `cupy.sqrt`, `x.sum()`, slicing, broadcasting: CuPy has the names and the rules
# of NumPy, and each call launches one or more kernels on the device. An array lives where it was
# made: a `cupy.ndarray` in GPU memory, a `numpy.ndarray` in host memory. Moving data is explicit:
#
# ```python
# d = cupy.asarray(h)        # host -> device (a copy over PCIe or NVLink)
# h = d.get()                # device -> host (or cupy.asnumpy(d))
# np.asarray(d)              # TypeError: CuPy never copies to the host behind your back
# ```
#
# So one switch is enough to run the same code on both: this lab calls it `xp`. `techday.xp.get_xp(lab)` returns `cupy` on the GPU tier and
# `numpy` on the CPU tier, and never imports CuPy there. Below, the same lines compute the
# distance of ten million random points from the origin (100,000 at the `ci` scale), on whichever
# `xp` this machine has.
#
# The GPU tier then times that line with `cupyx.profiler.benchmark`, which records a CUDA event
# before and after each call. The time between two events is everything the GPU's queue went
# through, idle gaps included: while the GPU waits for Python to launch the next of the three
# kernels, the clock runs. For short kernels, that launch overhead is part of the figure.

# %%
n_points = lab.size(full=10_000_000, ci=100_000)
rng = xp.random.default_rng(0)
pts = rng.random((n_points, 2), dtype=xp.float32)
dist = xp.sqrt((pts ** 2).sum(axis=1))
inside = int((dist <= 1.0).sum())          # int(...) copies one number back to the host
pi_estimate = 4 * inside / n_points
print(msg("05.pi_estimate", "{n:,} points on {xp}: pi ~ {pi:.4f} ({kind})", n=n_points, xp=xp.__name__,
          pi=pi_estimate, kind=f"{type(dist).__module__}.{type(dist).__name__}"))
assert abs(pi_estimate - np.pi) < 0.05, msg("05.quarter_circle", "a quarter circle covers pi/4 of the unit square")

if lab.gpu_only(msg("05.gpu_only_timing", "timing the same array code with CuPy and NumPy")):
    import cupyx.profiler

    h_pts = pts.get()
    t_cp = cupyx.profiler.benchmark(lambda p: xp.sqrt((p ** 2).sum(axis=1)), (pts,), n_repeat=20, n_warmup=3)
    gpu_ms = float(np.median(t_cp.gpu_times)) * 1e3
    t_np = time_cpu(lambda p: np.sqrt((p ** 2).sum(axis=1)), h_pts, repeat=5, what="NumPy", label="CPU")
    from techday.tier import shown_label  # the record's English label, in this run's language
    print(msg("05.cupy_median", "CuPy: median {ms:.3f} ms [{label}, CUDA events]", ms=gpu_ms,
              label=shown_label(lab.timing_label())))
    print(t_np)
    print(msg("05.both_read", "  both read {mb:.0f} MB: CuPy {cupy_gbs:.0f} GB/s, NumPy {numpy_gbs:.1f} GB/s",
              mb=h_pts.nbytes / 1e6, cupy_gbs=h_pts.nbytes / (gpu_ms / 1e3) / 1e9, numpy_gbs=h_pts.nbytes / t_np.median / 1e9))

# %% [markdown] key="code-both-get-array"
# ## 2. Code for both: `get_array_module`
#
# A library function does not know which array it will get. CuPy's answer is
# `cupy.get_array_module(x)`: the module that owns `x`. Write the body with `xp.` functions and
# array methods, and it runs on the host for NumPy input and on the device for CuPy input, with no
# copy in between. `techday.xp.get_array_module` does the same and works where CuPy is not installed.
#
# ```python
# def standardise(x):
#     xp = get_array_module(x)
#     return (x - x.mean(axis=0)) / xp.maximum(x.std(axis=0), 1e-12)
# ```
#
# The classic mistake is a stray `np.`: `np.asarray(x)` on a CuPy array raises `TypeError`, and
# `np.zeros(...)` makes a host array that then cannot meet a device array. (Some `np.` calls do work
# on a CuPy array: CuPy implements NumPy's dispatch protocols, so `np.exp(d)` runs CuPy's `exp`. Do
# not rely on it: it covers only what CuPy implements, and never functions that take no array.) To
# catch a stray `np.` on the CPU tier, the tests also call your function with a **strict** stand-in
# for a device array: NumPy underneath, but it refuses every NumPy function outright, stricter than
# CuPy.

# %%
def standardise(x):
    xp = get_array_module(x)
    return (x - x.mean(axis=0)) / xp.maximum(x.std(axis=0), 1e-12)


strict = strict_namespace()
h_demo = np.random.default_rng(1).normal(3.0, 2.0, (500, 3))
s_demo = strict.asarray(h_demo)                       # a "device" array on any machine
z = standardise(s_demo)
print(msg("05.standardised", "{kind}: column means {means}, stds {stds}", kind=type(z).__name__,
          means=np.round(z.get().mean(axis=0), 12), stds=np.round(z.get().std(axis=0), 12)))
try:
    np.exp(s_demo)
except TypeError as err:
    print(msg("05.np_exp_raises", "np.exp on it raises {error}, as np.asarray does on a CuPy array: write xp.exp",
              error=type(err).__name__))

# %% [markdown] key="softmax-numpy-cupy"
# ## Exercise 1: a softmax for NumPy and CuPy (3 points)
#
# Write `softmax(x, axis=-1)` that returns `exp(x) / sum(exp(x))` along `axis`, for an array of
# any number of dimensions, as an array of the same kind, shape and dtype as `x`:
#
# 1. get `xp` from the input with `get_array_module(x)`, and use only `xp.` functions and array
#    methods (the tests pass NumPy arrays, strict stand-ins, and CuPy arrays on a GPU);
# 2. subtract the maximum along `axis` first (`keepdims=True` keeps the axis for broadcasting):
#    `exp(1000.0)` overflows to `inf`, while softmax(x) = softmax(x - max(x)) exactly;
# 3. the tests use non-square shapes, `axis=0` and `float32` too.

# %% nbgrader="solution" id="softmax"
def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along axis, computed stably, with x's own array module."""
    ### BEGIN SOLUTION
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
    ### END SOLUTION

# %% nbgrader="tests" id="softmax_tests" points=3
"""softmax matches a float64 reference on a 37 x 53 NumPy array along the last axis, keeps the shape
and the dtype, does not overflow on values near 1000, and works on a strict device-like array (no np.
calls); hidden: axis=0 and 3-D input, float32, one column, CuPy arrays on a GPU; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from techday.i18n import msg
from techday.labtools import assert_close
from techday.xp import StrictArray, get_xp, strict_namespace


def softmax_reference(x, axis=-1):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


strict = strict_namespace()
rng = np.random.default_rng(5)
x = rng.normal(0.0, 3.0, (37, 53))
got = softmax(x)
assert isinstance(got, np.ndarray), msg("05.softmax_not_numpy", "softmax returned {kind} for a NumPy array", kind=type(got).__name__)
assert got.shape == x.shape and got.dtype == x.dtype, msg("05.softmax_shape", "softmax returned {shape} {dtype} for {want_shape} {want_dtype}",
                                                          shape=got.shape, dtype=got.dtype, want_shape=x.shape, want_dtype=x.dtype)
assert_close(got.sum(axis=-1), np.ones(37), msg("05.softmax_rows_sum", "softmax rows must sum to 1 (axis=-1)"), rtol=1e-12)
assert_close(got, softmax_reference(x), msg("05.softmax_37x53", "softmax of a 37 x 53 array along axis -1"), rtol=1e-12)
big = np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1000.5]])
assert_close(softmax(big), softmax_reference(big), msg("05.softmax_big", "softmax of values near +-1000 (subtract the maximum first)"), rtol=1e-12)
try:
    got_s = softmax(strict.asarray(x))
except TypeError as err:
    raise AssertionError(msg("05.softmax_called_numpy", "softmax called NumPy on a device-like array ({error}): use "
                             "xp = get_array_module(x) and xp.* functions or array methods, never np.*", error=err)) from None
assert isinstance(got_s, StrictArray), msg("05.softmax_strict_kind", "softmax returned {kind} for a device-like array, not an array of its kind",
                                           kind=type(got_s).__name__)
assert_close(got_s.get(), softmax_reference(x), msg("05.softmax_strict", "softmax of a device-like array"), rtol=1e-12)
### BEGIN HIDDEN TESTS
for shape_h, axis_h, dtype_h in (((53, 37), 0, np.float64), ((4, 7, 9), 1, np.float32), ((4, 7, 9), -1, np.float64),
                                 ((101, 1), -1, np.float32), ((1, 1), 0, np.float64)):
    xh = np.random.default_rng(len(shape_h)).normal(0.0, 4.0, shape_h).astype(dtype_h)
    tol = 1e-5 if dtype_h == np.float32 else 1e-12
    for module in (np, strict) + ((get_xp(lab),) if lab.on_gpu else ()):
        arr = module.asarray(xh)
        gh = softmax(arr, axis=axis_h)
        assert type(gh) is type(arr), msg("05.hidden_softmax_kind", "hidden: softmax returned {kind} for {want}",
                                          kind=type(gh).__name__, want=type(arr).__name__)
        host = gh.get() if hasattr(gh, "get") else gh
        assert host.shape == shape_h and host.dtype == dtype_h, msg("05.hidden_softmax_shape", "hidden: {shape} {dtype} for {want_shape} {want_dtype}",
                                                                    shape=host.shape, dtype=host.dtype, want_shape=shape_h, want_dtype=np.dtype(dtype_h))
        assert_close(host, softmax_reference(xh, axis_h), msg("05.hidden_softmax", "hidden: softmax {shape} axis={axis} {dtype} on {kind}",
                                                              shape=shape_h, axis=axis_h, dtype=np.dtype(dtype_h).name, kind=type(arr).__name__),
                     rtol=tol, atol=1e-7 if dtype_h == np.float32 else 0)
# Drawn at every grading (techday.draw): the arrays above are published with the course.
import techday.draw

rd = techday.draw.rng("05.softmax_tests")
shape_d = tuple(int(v) for v in rd.integers(1, 40, int(rd.integers(1, 4))))
axis_d, dtype_d = int(rd.integers(-len(shape_d), len(shape_d))), (np.float32, np.float64)[int(rd.integers(2))]
xh = rd.normal(float(rd.uniform(-20, 20)), float(rd.uniform(0.1, 6)), shape_d).astype(dtype_d)
tol = 1e-5 if dtype_d == np.float32 else 1e-12
for module in (np, strict) + ((get_xp(lab),) if lab.on_gpu else ()):
    arr = module.asarray(xh)
    host = softmax(arr, axis=axis_d)
    host = host.get() if hasattr(host, "get") else host
    assert host.shape == shape_d and host.dtype == dtype_d, msg("05.hidden_softmax_shape", "hidden: {shape} {dtype} for {want_shape} {want_dtype}",
                                                                shape=host.shape, dtype=host.dtype, want_shape=shape_d, want_dtype=np.dtype(dtype_d))
    assert_close(host, softmax_reference(xh, axis_d), msg("05.hidden_softmax", "hidden: softmax {shape} axis={axis} {dtype} on {kind}",
                                                          shape=shape_d, axis=axis_d, dtype=np.dtype(dtype_d).name, kind=type(arr).__name__),
                 rtol=tol, atol=1e-7 if dtype_d == np.float32 else 0)
hot = np.array([[710.0, 0.0], [0.0, 710.0]], np.float64)   # exp(710) overflows float64
assert_close(softmax(hot, axis=0), softmax_reference(hot, 0), msg("05.hidden_softmax_overflow", "hidden: softmax near the float64 overflow, axis=0"), rtol=1e-12)
### END HIDDEN TESTS
print(msg("05.softmax_passed", "softmax: all visible tests passed."))

# %% [markdown] key="kernel-fusion"
# ## 3. Kernel fusion
#
# `xp.sqrt((p ** 2).sum(axis=1))` is three kernels on a GPU: square, sum, root. Each reads its
# input from device memory and writes its output back, and for simple arithmetic that memory
# traffic, not the arithmetic, sets the speed. **Fusion** makes one kernel of the whole expression:
# each element is read once, every step happens in registers, one result is written.
#
# ```python
# @cupy.fuse()
# def gaussian(x, mu, sigma):
#     return cupy.exp(-0.5 * ((x - mu) / sigma) ** 2)
# ```
#
# Unfused, `gaussian` is five kernels (subtract, divide, square, multiply, exp: each a separate
# pass over memory) and four temporary arrays; fused, one kernel. `cupy.fuse` traces the function on
# its first call with new dtypes and compiles the fused kernel with NVRTC (lab 02's JIT rule: warm
# up before timing). Reductions at the end (`.sum()`) can be fused too. A fused function also
# accepts NumPy arrays, and then simply runs the Python code.
#
# The timing below counts five launches for the unfused version and one for the fused one: with
# CUDA events, the gaps while the GPU waits for the next launch from Python are part of the time.

# %%
def gaussian(x, mu, sigma):
    return xp.exp(-0.5 * ((x - mu) / sigma) ** 2)


n_fuse = lab.size(full=2**24 + 3, ci=10_001)
x_fuse = xp.linspace(-4.0, 4.0, n_fuse, dtype=xp.float32)
g_plain = gaussian(x_fuse, xp.float32(0.5), xp.float32(1.5))
if lab.gpu_only(msg("05.gpu_only_fuse", "cupy.fuse: one fused kernel against five unfused ones, timed with CUDA events")):
    import cupy
    import cupyx.profiler

    gaussian_fused = cupy.fuse()(gaussian)
    g_fused = gaussian_fused(x_fuse, xp.float32(0.5), xp.float32(1.5))
    assert_close(g_fused.get(), g_plain.get(), msg("05.fused_vs_unfused", "fused against unfused gaussian"), rtol=1e-5, atol=1e-7)
    nbytes = 2 * x_fuse.nbytes  # read x, write the result: the least any version must move
    from techday.tier import shown_label  # the record's English label, in this run's language
    for what, fn in (("unfused", gaussian), ("cupy.fuse", gaussian_fused)):
        res = cupyx.profiler.benchmark(fn, (x_fuse, xp.float32(0.5), xp.float32(1.5)), n_repeat=20, n_warmup=3)
        ms = float(np.median(res.gpu_times)) * 1e3
        print(msg("05.fuse_timing", "{what:10s}: median {ms:.3f} ms [{label}] = {gbs:.0f} GB/s of useful traffic (2 * n * 4 B / time)",
                  what=what, ms=ms, label=shown_label(lab.timing_label()), gbs=nbytes / (ms / 1e3) / 1e9))
else:
    print(msg("05.fuse_cpu", "On the CPU tier `gaussian` ran on NumPy ({n:,} values), one temporary array per operation. "
              "On a GPU the five unfused kernels move about five times the data of the one fused kernel, which is why "
              "cupy.fuse is several times faster there for large arrays.", n=n_fuse))

# %% [markdown] key="own-elementwise-kernel-elementwisekernel"
# ## 4. Your own elementwise kernel: `ElementwiseKernel`
#
# When no chain of library calls does what you need, CuPy compiles CUDA C that you write. The
# simplest kind says what happens to **one element**, and CuPy writes the loop around it:
#
# ```python
# axpb = cupy.ElementwiseKernel(
#     "T x, T a, T b",        # inputs: type and name; T is a type placeholder, bound by the arguments
#     "T y",                  # outputs
#     "y = a * x + b",        # C code for element i: x means x[i], y means y[i]
#     "axpb")                 # the kernel's name
# y = axpb(x, cupy.float32(2), cupy.float32(1))   # the output is allocated for you
# ```
#
# - **Type placeholders** (`T`) make one kernel work for every dtype: CuPy compiles one version per
#   combination it meets. A fixed type (`float32 a`) works too.
# - A `raw` parameter (`"raw T x"`) is not indexed for you: the code sees the whole array, indexes
#   it itself (`x[i + 1]`), and may ask its length with `x.size()`. `i` is the element's index and
#   `_ind.size()` the number of elements the kernel loops over (the broadcast shape of the arguments
#   that are not `raw`, the output included).
# - The operation is C: `;` between statements, `1.0f` for a float literal, `expf`, `fmaxf` from
#   CUDA's math library.
#
# CuPy compiles the kernel with **NVRTC**, NVIDIA's runtime compiler, at its first call. NVRTC is a
# library that needs no GPU, so here it checks kernel source on every tier: `techday.cudasrc` writes
# the CUDA C kernel that an `ElementwiseKernel` stands for and compiles it to PTX, the GPU's virtual
# assembly. On the CPU tier, `cudasrc.run_elementwise`, this course's stand-in for the GPU, then
# evaluates the same operation with NumPy and checks every `raw` index. The stand-in understands
# only C that is also Python expression syntax (no `?:`): a limit of the course's tool, not of CuPy.
# The index check is its addition too: a GPU does not check indices, and a read past the end of an
# array returns whatever lies there, silently (or, far enough out, stops the program with an
# illegal-address error).

# %%
AXPB = ("T x, T a, T b", "T y", "y = a * x + b")
x_e = np.linspace(-1.0, 1.0, 1_001, dtype=np.float32)
source = cudasrc.elementwise_source(*AXPB, "axpb", {"x": np.float32})
print(msg("05.kernel_stands_for", "The kernel that ElementwiseKernel(*AXPB) stands for:") + "\n")
print('extern "C"' + source.split('extern "C"')[1])
if NVRTC_OK:
    ptx = cudasrc.compile_ptx(source, "axpb.cu", arch=ARCH)
    fma = [line.strip() for line in ptx.splitlines() if line.strip().startswith("fma.")]
    print(msg("05.nvrtc_axpb", "NVRTC: {lines} lines of PTX, kernels {kernels}; a * x + b became one fused multiply-add: {fma}",
              lines=len(ptx.splitlines()), kernels=cudasrc.ptx_entries(ptx), fma=fma[0] if fma else "(no fma)"))
    try:
        cudasrc.compile_ptx(cudasrc.elementwise_source("T x, T a, T b", "T y", "y = a * x + b c", "typo",
                                                       {"x": np.float32}), "typo.cu", arch=ARCH)
    except cudasrc.CompileError as err:
        print(msg("05.typo", "A typo in the operation, as NVRTC reports it: {error}",
                  error=next(l for l in err.log.splitlines() if "error" in l)))
else:
    print(msg("05.nvrtc_missing_skip", "[NVRTC missing] compiling kernel source skipped: {why}", why=NVRTC_WHY))

a_e, b_e = np.float32(2.0), np.float32(1.0)
if lab.on_gpu:
    import cupy

    axpb = cupy.ElementwiseKernel(*AXPB, "axpb")
    y_e = axpb(cupy.asarray(x_e), a_e, b_e).get()
else:
    y_e = cudasrc.run_elementwise(*AXPB, x_e, a_e, b_e)
assert_close(y_e, 2 * x_e + 1, "axpb", rtol=1e-6)
print(msg("05.axpb_gpu", "axpb ran on the GPU (CuPy): y == 2 x + 1 for {n:,} values", n=x_e.size) if lab.on_gpu
      else msg("05.axpb_host", "axpb ran on the host (NumPy, the CPU tier): y == 2 x + 1 for {n:,} values", n=x_e.size))

# %% [markdown] key="tap-filter-as-elementwisekernel"
# ## Exercise 2: a 3-tap filter as an `ElementwiseKernel` (4 points)
#
# A 3-tap filter replaces every element by a weighted sum of itself and its next two
# neighbours. For an input `x` of `n` elements and weights `w0, w1, w2` it gives `n - 2` outputs
#
# ```
# y[i] = w0 * x[i] + w1 * x[i + 1] + w2 * x[i + 2]        for i = 0 ... n - 3
# ```
#
# (NumPy's `np.correlate(x, [w0, w1, w2], mode="valid")`). The parameters are given below:
# `x` is `raw`, because element `i` of the output reads three elements of the input, and the
# output `y` has `n - 2` elements, so `i` runs over the outputs. Write the **operation**, the C
# code for one element, as the string `FILTER3_OPERATION`.
#
# The tests compile it with NVRTC (the GPU tier: with CuPy itself), run it on the GPU or, on the
# CPU tier, with `cudasrc.run_elementwise`, and compare with NumPy on awkward lengths, in `float32`
# and `float64`, with weights that tell `w0` from `w2`. Every read must stay inside `x`.

# %% nbgrader="locked" id="filter3_params"
FILTER3_IN = "raw T x, T w0, T w1, T w2"
FILTER3_OUT = "T y"

# %% nbgrader="solution" id="filter3_operation"
# FILTER3_OPERATION = "y = ..."   C code for one output element: y means y[i], x is raw (index it yourself)
### BEGIN SOLUTION
FILTER3_OPERATION = "y = w0 * x[i] + w1 * x[i + 1] + w2 * x[i + 2]"
### END SOLUTION

# %% nbgrader="tests" id="filter3_tests" points=4
"""FILTER3_OPERATION compiles with NVRTC (with CuPy on a GPU) and gives np.correlate(x, [w0, w1, w2],
'valid') on 1_001 float32 values with asymmetric weights, never reading outside x; hidden: float64,
n = 3 (one output), n = 4_099, other weights; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from techday import cudasrc
from techday.i18n import msg
from techday.labtools import assert_close

assert isinstance(FILTER3_OPERATION, str) and FILTER3_OPERATION.strip(), msg("05.filter3_string", "FILTER3_OPERATION must be a string of C code")


def filter3(x, w0, w1, w2):
    """Run the trainee's ElementwiseKernel: with CuPy on the GPU tier, with NumPy on the CPU tier."""
    cast = x.dtype.type
    w = (cast(w0), cast(w1), cast(w2))
    if lab.on_gpu:
        import cupy

        kernel = cupy.ElementwiseKernel(FILTER3_IN, FILTER3_OUT, FILTER3_OPERATION, "filter3")
        d_y = cupy.full(x.size - 2, cupy.nan, x.dtype)
        kernel(cupy.asarray(x), *w, d_y)
        return d_y.get()
    if NVRTC_OK:
        src = cudasrc.elementwise_source(FILTER3_IN, FILTER3_OUT, FILTER3_OPERATION, "filter3", {"x": x.dtype})
        try:
            cudasrc.compile_ptx(src, "filter3.cu", arch=ARCH)
        except cudasrc.CompileError as err:
            raise AssertionError(msg("05.filter3_rejected", "NVRTC rejects FILTER3_OPERATION, as CuPy would on a GPU:\n{log}",
                                     log=err.log)) from None
    else:
        print(msg("05.filter3_no_nvrtc", "[NVRTC missing] FILTER3_OPERATION not compiled: {why}", why=NVRTC_WHY))
    return cudasrc.run_elementwise(FILTER3_IN, FILTER3_OUT, FILTER3_OPERATION, x, *w, np.full(x.size - 2, np.nan, x.dtype))


def filter3_reference(x, w0, w1, w2):
    return np.correlate(np.asarray(x, np.float64), [w0, w1, w2], mode="valid")


x = np.random.default_rng(8).normal(0.0, 1.0, 1_001).astype(np.float32)
y = filter3(x, 0.25, 0.5, -1.0)
assert y.shape == (999,) and y.dtype == np.float32, msg("05.filter3_shape", "filter3 gave {shape} {dtype}, expected (999,) float32",
                                                        shape=y.shape, dtype=y.dtype)
assert_close(y, filter3_reference(x, 0.25, 0.5, -1.0), msg("05.filter3_values", "3-tap filter, 1_001 float32 values, w = (0.25, 0.5, -1)"),
             rtol=1e-5, atol=1e-6)
### BEGIN HIDDEN TESTS
for n_h, dtype_h, w_h in ((4_099, np.float64, (1.0, -2.0, 3.0)), (3, np.float32, (2.0, 0.0, -0.5)),
                          (4, np.float64, (0.0, 0.0, 1.0)), (5_003, np.float32, (-1.5, 0.25, 0.0))):
    xh = np.random.default_rng(n_h).normal(0.0, 2.0, n_h).astype(dtype_h)
    yh = filter3(xh, *w_h)
    assert yh.shape == (n_h - 2,) and yh.dtype == dtype_h, msg("05.hidden_filter3_shape", "hidden: {shape} {dtype} for n={n} {want_dtype}",
                                                               shape=yh.shape, dtype=yh.dtype, n=n_h, want_dtype=np.dtype(dtype_h))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype_h == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert_close(yh, filter3_reference(xh, *w_h), msg("05.hidden_filter3", "hidden: 3-tap filter n={n} {dtype} w={w}",
                                                      n=n_h, dtype=np.dtype(dtype_h).name, w=w_h), **tol)
# Drawn at every grading (techday.draw): the arrays above are published with the course.
import techday.draw

rd = techday.draw.rng("05.filter3_tests")
n_h, dtype_h = int(rd.integers(3, 6_000)), (np.float32, np.float64)[int(rd.integers(2))]
w_h = tuple(round(float(v), 2) for v in rd.uniform(-3, 3, 3))
xh = rd.normal(0.0, 2.0, n_h).astype(dtype_h)
yh = filter3(xh, *w_h)
assert yh.shape == (n_h - 2,) and yh.dtype == dtype_h, msg("05.hidden_filter3_shape", "hidden: {shape} {dtype} for n={n} {want_dtype}",
                                                           shape=yh.shape, dtype=yh.dtype, n=n_h, want_dtype=np.dtype(dtype_h))
tol = dict(rtol=1e-5, atol=1e-5) if dtype_h == np.float32 else dict(rtol=1e-12, atol=1e-12)
assert_close(yh, filter3_reference(xh, *w_h), msg("05.hidden_filter3", "hidden: 3-tap filter n={n} {dtype} w={w}",
                                                  n=n_h, dtype=np.dtype(dtype_h).name, w=w_h), **tol)
### END HIDDEN TESTS
print(msg("05.filter3_passed", "FILTER3_OPERATION: all visible tests passed."))

# %% [markdown] key="reductions-raw-kernels"
# ## 5. Reductions and raw kernels
#
# A **`ReductionKernel`** folds many elements into one, in four parts (lab 03 wrote the tree by
# hand; CuPy writes it for you):
#
# ```python
# l2norm = cupy.ReductionKernel(
#     "T x", "T y",
#     "x * x",          # map: what each element contributes
#     "a + b",          # reduce: how two partial results combine (associative, commutative)
#     "y = sqrt(a)",    # post-map: applied to the final result
#     "0",              # identity: the starting value of the fold
#     "l2norm")
# l2norm(x)               # or l2norm(x, axis=1) along an axis
# ```
#
# A **`RawKernel`** is a whole CUDA C kernel: you write the signature, the indexing and the loop,
# as in a Numba kernel, and launch it with `kernel((blocks,), (threads,), (arguments, ...))`.
# Scalars must be passed with the exact C type (`np.float32(a)` for a `float`, `np.int64(n)` for a
# `long long`), because CuPy cannot see the C signature. The kernel below is a grid-stride SAXPY.
# NVRTC compiles it on every tier; the GPU tier also runs it.

# %%
SAXPY_SOURCE = r'''
extern "C" __global__ void saxpy(const float a, const float* __restrict__ x, const float* __restrict__ y,
                                 float* __restrict__ out, const long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        out[i] = a * x[i] + y[i];
    }
}
'''
if NVRTC_OK:
    ptx = cudasrc.compile_ptx(SAXPY_SOURCE, "saxpy.cu", arch=ARCH)
    body = [line.strip().split()[0] for line in ptx.splitlines() if line.strip()[:3] in ("ld.", "st.", "fma")]
    count = {op: body.count(op) for op in ("ld.global.nc.f32", "fma.rn.f32", "st.global.f32")}
    print(msg("05.saxpy_ptx", "NVRTC compiled saxpy for {arch}: kernels {kernels}; in the PTX: {count}",
              arch=ARCH, kernels=cudasrc.ptx_entries(ptx), count=count))
    print(msg("05.saxpy_explained", "  two loads, one fused multiply-add and one store per element; the loop body appears "
              "{copies} times because the compiler unrolled the loop, and the loads are non-coherent (.nc): they may use "
              "the read-only data cache, which const __restrict__ allows", copies=count["fma.rn.f32"]))
else:
    print(msg("05.saxpy_no_nvrtc", "[NVRTC missing] compiling SAXPY_SOURCE skipped: {why}", why=NVRTC_WHY))

x_r = np.random.default_rng(9).random(100_003, dtype=np.float32)
y_r = np.random.default_rng(10).random(100_003, dtype=np.float32)
if lab.gpu_only(msg("05.gpu_only_raw", "running the RawKernel and a ReductionKernel with CuPy")):
    import cupy

    saxpy = cupy.RawKernel(SAXPY_SOURCE, "saxpy")
    d_x, d_y = cupy.asarray(x_r), cupy.asarray(y_r)
    d_out = cupy.empty_like(d_x)
    saxpy((4 * lab.gpu.multiprocessor_count,), (256,), (np.float32(2.0), d_x, d_y, d_out, np.int64(x_r.size)))
    assert_close(d_out.get(), 2 * x_r.astype(np.float64) + y_r, msg("05.raw_saxpy", "RawKernel saxpy"), rtol=1e-6)
    l2norm = cupy.ReductionKernel("T x", "T y", "x * x", "a + b", "y = sqrt(a)", "0", "l2norm")
    assert_close(float(l2norm(d_x)), np.linalg.norm(x_r.astype(np.float64)), msg("05.reduction_l2norm", "ReductionKernel l2norm"), rtol=1e-5)
    print(msg("05.raw_agree", "RawKernel saxpy and ReductionKernel l2norm agree with NumPy"))
else:
    print(msg("05.raw_host", "The same on the host: saxpy is 2 * x + y, l2norm is sqrt(sum(x * x)) = {norm:.4f}",
              norm=np.sqrt((x_r.astype(np.float64) ** 2).sum())))

# %% [markdown] key="handing-arrays-over-without"
# ## 6. Handing arrays over without copies
#
# A GPU array is a pointer, a shape, strides and a dtype. Two protocols let libraries hand each
# other that description, so both see **the same memory** (zero-copy):
#
# - **`__cuda_array_interface__`** (CUDA Array Interface): a dict with `data` (pointer, read-only
#   flag), `shape`, `strides`, `typestr` and `stream`, the device twin of NumPy's
#   `__array_interface__`. Numba, CuPy, PyTorch and cuDF read it: `cupy.asarray(numba_array)`
#   and `numba.cuda.as_cuda_array(cupy_array)` wrap the other's memory.
# - **DLPack**: a C struct plus the methods `x.__dlpack__()` and `x.__dlpack_device__()`; the
#   importer is `from_dlpack` in every library (`torch.from_dlpack`, `cupy.from_dlpack`,
#   `np.from_dlpack`). It also works for host memory, so here it runs on every tier.
#
# Zero-copy means a change through one name shows through the other, and the memory lives as long
# as either holds it. It also means the streams must agree: work queued by one library on its
# stream must be finished before the other reads (the `stream` key does that for
# `__cuda_array_interface__`, the `stream` argument of `__dlpack__` for DLPack; lab 06 is about
# streams).

# %%
h_cai = np.arange(6, dtype=np.float32).reshape(2, 3)
print(msg("05.array_interface", "NumPy's __array_interface__:"), {k: h_cai.__array_interface__[k] for k in ("shape", "strides", "typestr")})
if lab.gpu_only(msg("05.gpu_only_cai", "zero-copy exchange between CuPy and Numba through __cuda_array_interface__")):
    import cupy
    from numba import cuda

    d_cp = cupy.asarray(h_cai)
    d_nb = cuda.as_cuda_array(d_cp)                 # a Numba view of CuPy's memory
    back = cupy.asarray(d_nb)                       # and a CuPy view of that
    ptrs = {d_cp.__cuda_array_interface__["data"][0], d_nb.__cuda_array_interface__["data"][0],
            back.__cuda_array_interface__["data"][0]}
    assert len(ptrs) == 1, msg("05.one_allocation", "all three names share one allocation")
    d_cp[0, 0] = 42.0
    cupy.cuda.get_current_stream().synchronize()
    print(msg("05.one_pointer", "one pointer for CuPy, Numba and CuPy again: {ptr} | d_nb[0, 0] after writing 42 via CuPy: {value}",
              ptr=hex(ptrs.pop()), value=d_nb[0:1, 0:1].copy_to_host()[0, 0]))

t_dl = torch.from_dlpack(h_cai)                    # a tensor over NumPy's memory (host on every tier)
t_dl.mul_(10)                                      # in place: the NumPy array changes too
print(msg("05.after_mul", "after t.mul_(10) through DLPack: {values} | shares memory: {shared}",
          values=h_cai.ravel().tolist(), shared=t_dl.data_ptr() == h_cai.__array_interface__["data"][0]))
assert h_cai[1, 2] == 50.0

# %% [markdown] key="pytorch-function-xp-array"
# ## Exercise 3: a PyTorch function on an `xp` array, without copies (3 points)
#
# Write `apply_torch(fn, x)` that runs a PyTorch function `fn` (a tensor in, a tensor out) on an
# array `x` of any `xp` kind and returns the result as an array of `x`'s kind: a NumPy array for a
# NumPy input, a CuPy array (on the GPU) for a CuPy input. Use **DLPack** both ways, so that
# nothing is copied: the tensor `fn` gets shares `x`'s memory (an in-place `fn` changes `x`), and the
# array you return shares the memory of the tensor `fn` returned. Get `xp` from `x`.

# %% nbgrader="solution" id="apply_torch"
def apply_torch(fn, x):
    """fn(tensor) on x's memory, returned as an array of x's kind; DLPack both ways, no copies."""
    ### BEGIN SOLUTION
    xp = get_array_module(x)
    return xp.from_dlpack(fn(torch.from_dlpack(x)))
    ### END SOLUTION

# %% nbgrader="tests" id="apply_torch_tests" points=3
"""apply_torch gives torch.sin of 1_001 float32 values as an array of x's kind and dtype, hands fn a
tensor on x's device that shares x's memory (an in-place fn changes x), and returns an array that shares
the memory of fn's result; hidden: int64, a 2-D transposed view, a strided slice, CuPy arrays on a GPU, an
array that only speaks DLPack; and shapes, types, views and functions drawn afresh at every grading
(techday.draw)."""
import numpy as np
import torch
from techday.i18n import msg
from techday.labtools import assert_close


def data_ptr(a):
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0]
    return a.__cuda_array_interface__["data"][0]


def to_host(a):
    return a if isinstance(a, np.ndarray) else a.get()


modules = [np] + ([xp] if lab.on_gpu and TORCH_DEVICE == "cuda" else [])
for mod in modules:
    x_host = np.random.default_rng(12).normal(0.0, 1.0, 1_001).astype(np.float32)
    x = mod.asarray(x_host)
    seen = {}

    def sin_and_look(t):
        seen["device"], seen["ptr"] = t.device.type, t.data_ptr()
        return torch.sin(t)

    y = apply_torch(sin_and_look, x)
    assert type(y) is type(x), msg("05.apply_kind", "apply_torch returned a {kind} for a {want}: convert back with xp.from_dlpack",
                                   kind=type(y).__name__, want=type(x).__name__)
    assert y.dtype == x.dtype and y.shape == x.shape, msg("05.apply_shape", "apply_torch returned {shape} {dtype} for {want_shape} {want_dtype}",
                                                          shape=y.shape, dtype=y.dtype, want_shape=x.shape, want_dtype=x.dtype)
    assert_close(to_host(y), np.sin(x_host.astype(np.float64)), msg("05.apply_sin", "apply_torch(torch.sin, x) on {module}", module=mod.__name__),
                 rtol=1e-6, atol=1e-7)
    want_device = "cpu" if mod is np else "cuda"
    assert seen["device"] == want_device, msg("05.apply_device", "fn got a tensor on {got}, x lives on {want}", got=seen["device"], want=want_device)
    assert seen["ptr"] == data_ptr(x), msg("05.apply_copy_in", "fn got a copy of x, not x's memory: use torch.from_dlpack(x)")
    x_before = np.array(to_host(x))
    apply_torch(lambda t: t.mul_(2.0), x)
    assert_close(to_host(x), 2 * x_before, msg("05.apply_inplace", "an in-place fn must change x (zero-copy in)"), rtol=0)
    same = apply_torch(lambda t: t, x)
    assert data_ptr(same) == data_ptr(x), msg("05.apply_copy_out", "the result must share the memory of fn's tensor (zero-copy out): xp.from_dlpack")
### BEGIN HIDDEN TESTS
for mod in modules:
    base = np.arange(60, dtype=np.int64).reshape(6, 10)
    for view_h, what in ((base.T, msg("05.hidden_transposed", "transposed int64 view")),
                         (base[:, ::3], msg("05.hidden_strided", "strided int64 slice"))):
        xh = mod.asarray(view_h) if mod is not np else view_h
        yh = apply_torch(lambda t: t * 3 + 1, xh)
        assert type(yh) is type(xh) and yh.dtype == np.int64, msg("05.hidden_apply_kind", "hidden: {what}: {kind} {dtype}",
                                                                  what=what, kind=type(yh).__name__, dtype=yh.dtype)
        assert np.array_equal(to_host(yh), to_host(xh) * 3 + 1), msg("05.hidden_apply_values", "hidden: {what}: wrong values", what=what)
        ident = apply_torch(lambda t: t, xh)
        assert data_ptr(ident) == data_ptr(xh) and ident.strides == xh.strides, msg("05.hidden_apply_copied", "hidden: {what}: copied", what=what)
    xf = mod.asarray(np.linspace(-2, 2, 7, dtype=np.float64))
    apply_torch(lambda t: t.clamp_(min=0.0), xf)
    assert (to_host(xf) >= 0).all(), msg("05.hidden_clamp", "hidden: in-place clamp on float64 did not reach x")


class DLPackOnly:
    """Host memory seen only through DLPack, as another array library (or CuPy, on a GPU) hands it over:
    torch.from_dlpack takes it without a copy, torch.from_numpy does not take it at all."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


host_h = np.linspace(-1.0, 1.0, 11, dtype=np.float32)
try:
    apply_torch(lambda t: t.abs_(), DLPackOnly(host_h))
except TypeError as err:
    raise AssertionError(msg("05.hidden_apply_dlpack_only", "hidden: an array that only speaks DLPack was refused ({error}): "
                             "hand x to PyTorch with torch.from_dlpack(x), which takes a CuPy array as well as a NumPy one",
                             error=err)) from None
assert (host_h >= 0).all(), msg("05.hidden_apply_dlpack_inplace", "hidden: an in-place fn on an array that only speaks DLPack did not reach it")
# Drawn at every grading (techday.draw): the shapes, types and views above are published with the course.
# A matrix of drawn shape and type (float32, float64, int32 or int64), seen transposed and through a
# slice of drawn step; fn multiplies and adds drawn whole numbers (exact in every type). Expected: the
# values NumPy computes, the same memory and strides out as in, and an in-place fn reaching x.
import techday.draw

rd = techday.draw.rng("05.apply_torch_tests")
for mod in modules:
    dtype_d = (np.float32, np.float64, np.int32, np.int64)[int(rd.integers(0, 4))]
    base_d = rd.integers(-50, 50, size=(int(rd.integers(2, 40)), int(rd.integers(2, 40)))).astype(dtype_d)
    step_d, mul_d, add_d = int(rd.integers(2, 5)), int(rd.integers(2, 9)), int(rd.integers(-9, 10))
    for view_d in (base_d.T, base_d[:, ::step_d]):
        xd = mod.asarray(view_d) if mod is not np else view_d
        what_d = msg("05.drawn_what", "drawn {dtype} {shape}, strides {strides}", dtype=np.dtype(dtype_d).name,
                     shape=tuple(xd.shape), strides=tuple(xd.strides))
        yd = apply_torch(lambda t: t * mul_d + add_d, xd)
        assert type(yd) is type(xd) and yd.dtype == xd.dtype and yd.shape == xd.shape, msg(
            "05.hidden_apply_kind", "hidden: {what}: {kind} {dtype}", what=what_d, kind=type(yd).__name__, dtype=yd.dtype)
        assert np.array_equal(to_host(yd), to_host(xd) * mul_d + add_d), msg("05.hidden_apply_values", "hidden: {what}: wrong values",
                                                                             what=what_d)
        ident = apply_torch(lambda t: t, xd)
        assert data_ptr(ident) == data_ptr(xd) and ident.strides == xd.strides, msg("05.hidden_apply_copied", "hidden: {what}: copied",
                                                                                    what=what_d)
        before_d = np.array(to_host(xd))
        apply_torch(lambda t: t.neg_(), xd)
        assert np.array_equal(to_host(xd), -before_d), msg("05.drawn_inplace", "hidden: {what}: an in-place fn did not reach x",
                                                           what=what_d)
### END HIDDEN TESTS
print(msg("05.apply_passed", "apply_torch: all visible tests passed."))

# %% [markdown] key="summary"
# ## Summary
#
# - CuPy is NumPy on the device. Write array code against `xp`: `get_xp(lab)` for a whole program,
#   `get_array_module(x)` inside a function, and only `xp.` functions and array methods in its body.
#   Data moves only when you say so: `cupy.asarray(h)`, `d.get()`.
# - Every unfused operation is a kernel and a round trip through device memory: `cupy.fuse` makes one
#   kernel of an elementwise expression (and a final reduction).
# - Custom kernels are CUDA C: `ElementwiseKernel` (one element; `raw` for free indexing),
#   `ReductionKernel` (map, reduce, post-map, identity), `RawKernel` (all of it). CuPy compiles them
#   with NVRTC at the first call; NVRTC needs no GPU, so source can be checked anywhere. A GPU does not
#   check indices: every `raw` read must stay inside the array.
# - `__cuda_array_interface__` (Numba, CuPy, PyTorch) and DLPack (`from_dlpack` everywhere) hand over
#   memory, not copies: changes show on both sides.
#
# ## Going further
#
# - CuPy user guide: basics, kernels, interoperability, https://docs.cupy.dev/en/stable/user_guide/
# - `cupyx.jit.rawkernel` writes raw kernels in Python syntax, much like Numba.
# - `cupyx.profiler.benchmark` times GPU code with CUDA events (used above); `cupy.cuda.compiler` holds
#   CuPy's NVRTC front end, `cupy.RawModule` loads several kernels and `name_expressions` instantiates
#   C++ templates.
# - The Python Array API standard (`x.__array_namespace__()`) is the cross-library successor of
#   `get_array_module`; `array-api-compat` wraps NumPy, CuPy and PyTorch behind it.
# - Next: lab 06, streams and concurrency: overlapping copies with kernels.
