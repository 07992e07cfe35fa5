# %% [markdown] key="gpu-environment-tour"
# # 00 GPU and environment tour
#
# Before writing a kernel, find out what you are running on and how fast it can possibly go.
# Two numbers from the driver give the memory bandwidth, three give the peak arithmetic rate, and
# their ratio tells you, before you write a line of CUDA, whether a kernel will wait on memory or
# on arithmetic.
#
# ## You will learn
# - which tier this notebook runs on (GPU, or CPU with Numba's CUDA simulator), and why
# - how to read a GPU's properties: SMs, clocks, memory bus, L2 cache, memory size
# - how theoretical memory bandwidth and peak FP32 FLOP/s follow from those properties
# - arithmetic intensity and the roofline: is a kernel memory-bound or compute-bound?
# - what a host→device copy costs next to a read from device memory, and why pinned memory helps
#
# **How to work:** run the cells in order. In each exercise, replace
# `raise NotImplementedError()` with your code, run the cell, then run the test cell below it.
# A test cell that finishes without an error means the visible checks pass; the grader runs more.

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %%
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("00.title", "00 GPU and environment tour"))

# %% [markdown] key="notebook-run"
# ## 1. Where does this notebook run?
#
# `techday.setup` asked the NVIDIA driver for CUDA devices *before* Numba was imported, and chose
# a **tier**:
#
# - **gpu**: a CUDA device is visible. Kernels run on it; timings are GPU figures.
# - **cpu**: no usable device (or you asked for `tier="cpu"`). Numba kernels run in the CUDA
#   *simulator* (`NUMBA_ENABLE_CUDASIM=1`, which must be set before Numba is imported: that is why
#   the setup cell comes first). Results are still checked, but timings are CPU figures and are
#   never compared with a GPU's.
#
# `lab.tier`, `lab.info.reason` and `lab.gpu` tell every later cell where it runs.

# %%
import importlib.metadata
import os
import platform

from techday.i18n import msg

print(msg("00.env_tier", "tier: {tier}   (simulator: {simulator})", tier=lab.tier, simulator=lab.simulator))
print(msg("00.env_why", "why:  {reason}", reason=lab.info.reason))
print(msg("00.env_gpu", "GPU:  {gpu}", gpu=lab.gpu.name if lab.gpu else msg("00.env_no_gpu", "none (CPU tier)")))
print(msg("00.env_host", "host: {cores} CPU cores, {machine}, Python {python}", cores=lab.info.cpu_count,
          machine=platform.machine(), python=platform.python_version()))
if lab.on_gpu:
    print(msg("00.env_driver", "driver {driver} | CUDA driver API {api} | CUDA runtime {runtime}",
              driver=lab.info.driver_version, api=lab.info.cuda_driver_api,
              runtime=lab.info.cuda_runtime or msg("00.env_runtime_not_found", "not found")))

print(msg("00.env_packages", "\npackages:"))
# CuPy comes as one wheel per CUDA major (cupy-cuda13x in the CUDA 13 set, cupy-cuda12x in the CUDA 12 set).
installed = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
cupy_wheels = [d for d in ("cupy-cuda13x", "cupy-cuda12x", "cupy") if d in installed] or ["cupy-cuda13x"]
for package in ("numpy", "numba", "numba-cuda", "torch", *cupy_wheels):
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = msg("00.env_not_installed", "not installed")
    print(f"  {package:14s} {version}")

from numba import cuda  # safe now: the tier (and the simulator switch) is already decided

print(msg("00.numba_view", "\nNumba's view (NUMBA_ENABLE_CUDASIM={cudasim}; on the CPU tier it lists one SIMULATOR device):",
          cudasim=os.environ.get('NUMBA_ENABLE_CUDASIM', '0')))
cuda.detect()

# %% [markdown] key="device-properties"
# ## 2. The device's properties
#
# The CUDA driver describes a device with a few dozen attributes. The ones that set the speed limits:
#
# | attribute | what it is |
# |---|---|
# | compute capability (cc) | the architecture generation: 7.0 Volta, 8.0 A100, 8.9 Ada, 9.0 Hopper |
# | SMs (`multiprocessor_count`) | streaming multiprocessors: the GPU's "cores"; each runs many warps of 32 threads |
# | SM clock (`clock_rate`, kHz) | the maximum (boost) clock of the SMs |
# | memory clock (`memory_clock_rate`, kHz) | the clock of device memory (HBM or GDDR) |
# | memory bus width (bits) | how many bits move per transfer between the GPU and its memory |
# | L2 cache | the last cache before device memory; arrays smaller than it do not measure memory |
# | total memory | what your arrays must fit in |
#
# On the GPU tier these come from your device. On the CPU tier there is no device, so we use a
# row of `techday.gpuspecs` (published specs of common GPUs) as the worked example, and say so.

# %%
from types import SimpleNamespace

from techday import gpuspecs
from techday.i18n import msg

if lab.on_gpu:
    g = lab.gpu
    published = gpuspecs.lookup(g.name)  # None when the table does not know this GPU (or a MIG slice)
    dev = SimpleNamespace(
        name=g.name, source=msg("00.source_this_gpu", "this machine's GPU, as the CUDA driver reports it"),
        cc=g.compute_capability, sm_count=g.multiprocessor_count, clock_khz=g.clock_rate_khz,
        memory_clock_khz=g.memory_clock_rate_khz, bus_width_bits=g.global_memory_bus_width_bits,
        l2_bytes=g.l2_cache_bytes, memory=f"{g.memory_gib:.1f} GiB")
    if published and not (dev.clock_khz and dev.memory_clock_khz):
        # Some drivers report 0 for clocks (e.g. under virtualization): fall back to the table.
        print(msg("00.no_driver_clocks", "the driver reports no clock rates: using the published {name} clocks",
                  name=published.name))
        dev.clock_khz = dev.clock_khz or published.clock_khz
        dev.memory_clock_khz = dev.memory_clock_khz or published.memory_clock_khz
else:
    published = gpuspecs.by_name("H100 SXM5")
    dev = SimpleNamespace(
        name=f"NVIDIA {published.name}",
        source=msg("00.source_published", "published specs from techday.gpuspecs: a worked example, this machine has no GPU"),
        cc=published.cc, sm_count=published.sm_count, clock_khz=published.clock_khz,
        memory_clock_khz=published.memory_clock_khz, bus_width_bits=published.bus_width_bits,
        l2_bytes=published.l2_mib * 2**20, memory=f"{published.memory_gb} GB {published.memory_type}")

print(msg("00.dev_used", "Device used below: {name}", name=dev.name))
print(msg("00.dev_source", "  source:                {source}", source=dev.source))
print(msg("00.dev_cc", "  compute capability:    {major}.{minor}", major=dev.cc[0], minor=dev.cc[1]))
print(msg("00.dev_sms", "  SMs:                   {sms}", sms=dev.sm_count))
print(msg("00.dev_sm_clock", "  SM clock (boost):      {mhz:.0f} MHz   (driver: clock_rate = {khz} kHz)",
          mhz=dev.clock_khz / 1e3, khz=dev.clock_khz))
print(msg("00.dev_mem_clock", "  memory clock:          {mhz:.0f} MHz   (driver: memory_clock_rate = {khz} kHz)",
          mhz=dev.memory_clock_khz / 1e3, khz=dev.memory_clock_khz))
print(msg("00.dev_bus", "  memory bus width:      {bits} bits", bits=dev.bus_width_bits))
print(msg("00.dev_l2", "  L2 cache:              {mib:.1f} MiB", mib=dev.l2_bytes / 2**20))
print(msg("00.dev_memory", "  device memory:         {memory}", memory=dev.memory))
if lab.on_gpu:
    print(msg("00.dev_warp", "  warp size:             {warp} threads", warp=g.warp_size))
    print(msg("00.dev_threads_sm", "  max threads per SM:    {threads}", threads=g.max_threads_per_multiprocessor))
    print(msg("00.dev_threads_block", "  max threads per block: {threads}", threads=g.max_threads_per_block))
    print(msg("00.dev_shared", "  shared memory / block: {kib:.0f} KiB (opt-in maximum)",
              kib=g.max_shared_memory_per_block_optin / 1024))
    print(msg("00.dev_ecc", "  ECC:                   {ecc}",
              ecc=msg("00.dev_ecc_on", "on") if g.ecc_enabled else msg("00.dev_ecc_off", "off")))
    print(msg("00.dev_table_row", "  table row:             {row}",
              row=published.name if published else msg("00.dev_not_in_gpuspecs", "not in techday.gpuspecs")))

# %% [markdown] key="note"
# For comparison, some GPUs you may meet in data centres and on desks (published figures):

# %%
from techday.i18n import msg

print(msg("00.spec_table_header", "GPU                cc  SMs  boost  mem clk   bus   GB/s  FP32 TF  L2 MiB"))
for name in ("H100 SXM5", "H200 SXM", "A100 40GB SXM", "L40S", "L4", "T4", "RTX 4090", "RTX 3090"):
    s = gpuspecs.by_name(name)
    print(f"{s.name:16s} {s.cc[0]}.{s.cc[1]:<2d} {s.sm_count:4d} {s.boost_clock_mhz:6d} {s.memory_clock_mhz:8d} "
          f"{s.bus_width_bits:5d} {s.bandwidth_gbs:6.0f} {s.fp32_tflops:8.1f} {s.l2_mib:7d}")

# %% [markdown] key="memory-bandwidth-numbers"
# ## 3. Memory bandwidth from two numbers
#
# Device memory is **double data rate**: each pin moves two bits per memory clock (one on the rising
# edge, one on the falling edge, as the driver counts the clock). A bus of `bus_width_bits` pins
# therefore moves
#
# $$\text{bandwidth [bytes/s]} = 2 \times \text{memory clock [Hz]} \times \frac{\text{bus width [bits]}}{8}$$
#
# This holds for HBM and GDDR6 as the driver reports the clock (GDDR6X reports a clock for which the
# same formula gives the published figure). Mind the units: the driver gives kHz; 8 bits make a byte;
# bandwidth is quoted in **GB/s = 10⁹ bytes/s**, not GiB/s (2³⁰).
#
# ## Exercise 1: theoretical memory bandwidth
#
# Write `theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits)`: the memory clock in kHz as
# the driver reports it, the bus width in bits; return GB/s as a float.

# %% nbgrader="solution" id="bandwidth"
def theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits):
    """Theoretical memory bandwidth in GB/s (10^9 bytes/s) from the driver's memory clock (kHz)
    and the memory bus width (bits), for double-data-rate memory."""
    ### BEGIN SOLUTION
    memory_clock_hz = memory_clock_khz * 1e3
    return 2 * memory_clock_hz * bus_width_bits / 8 / 1e9
    ### END SOLUTION

# %% nbgrader="tests" id="bandwidth_tests" points=2
"""theoretical_bandwidth_gbs: 2 x memory clock x bus width / 8, in GB/s (10^9 bytes/s), from kHz and bits; hidden: by hand,
an odd clock, every row of techday.gpuspecs, and cases drawn afresh at every grading (techday.draw)."""
from techday.labtools import assert_close
from techday.i18n import msg

# H100 SXM5 as the driver reports it: 2 619 000 kHz on a 5120-bit bus.
assert_close(theoretical_bandwidth_gbs(2_619_000, 5120), 3352.32, what=msg("00.h100_sxm5_bandwidth_gb", "H100 SXM5 bandwidth (GB/s)"), rtol=1e-6)
# T4: 5 001 000 kHz on a 256-bit bus.
assert_close(theoretical_bandwidth_gbs(5_001_000, 256), 320.064, what=msg("00.t4_bandwidth_gb_s", "T4 bandwidth (GB/s)"), rtol=1e-6)
### BEGIN HIDDEN TESTS
from techday import gpuspecs as _specs

# By hand: 1 GHz double data rate on a 64-bit bus moves 2e9 x 8 bytes/s = 16 GB/s.
assert_close(theoretical_bandwidth_gbs(1_000_000, 64), 16.0, what=msg("00.ghz_bit_gb_s", "1 GHz x 64 bit (GB/s)"), rtol=1e-9)
# An odd clock on a narrow bus: nothing may be rounded to an integer on the way.
assert_close(theoretical_bandwidth_gbs(1_234_567, 96), 29.629608, what=msg("00.khz_bit_gb_s", "1 234 567 kHz x 96 bit (GB/s)"), rtol=1e-9)
# Every GPU in the table lands within 2 % of its published bandwidth.
for _s in _specs.SPECS:
    _got = theoretical_bandwidth_gbs(_s.memory_clock_mhz * 1000, _s.bus_width_bits)
    assert abs(_got / _s.bandwidth_gbs - 1) <= 0.02, (
        msg("00.s_name_f_gb", "{s_name}: got {got:.1f} GB/s, published {s_bandwidth_gbs} GB/s", s_name=_s.name, got=_got, s_bandwidth_gbs=_s.bandwidth_gbs))
# Drawn at every grading (techday.draw): the clocks and buses above, and the table, are published with the course.
import techday.draw

_rd = techday.draw.rng("00.bandwidth_tests")
for _clk, _bits in zip(_rd.integers(100_000, 12_000_001, size=4), _rd.integers(16, 8_193, size=4)):
    _clk, _bits = int(_clk), int(_bits)
    assert_close(theoretical_bandwidth_gbs(_clk, _bits), 2 * (_clk * 1e3) * _bits / 8 / 1e9, rtol=1e-9,
                 what=msg("00.drawn_bandwidth", "hidden: {khz:,} kHz x {bits} bit (GB/s)", khz=_clk, bits=_bits))
### END HIDDEN TESTS

# %% [markdown] key="note-2"
# Now on the device above, next to the published figure:

# %%
from techday.i18n import msg

bandwidth_gbs = theoretical_bandwidth_gbs(dev.memory_clock_khz, dev.bus_width_bits)
# bandwidth = 2 * memory_clock_hz * bus_width_bits / 8 / 1e9
print(msg("00.bandwidth_theoretical", "{name}: 2 x {mhz:.0f} MHz x {bits} bit / 8 = {gbs:.0f} GB/s theoretical",
          name=dev.name, mhz=dev.memory_clock_khz / 1e3, bits=dev.bus_width_bits, gbs=bandwidth_gbs))
if published:
    print(msg("00.bandwidth_published", "published ({name}): {gbs:.0f} GB/s ({diff:+.1%})",
              name=published.name, gbs=published.bandwidth_gbs, diff=bandwidth_gbs / published.bandwidth_gbs - 1))
print(msg("00.real_kernel_reaches_about", "A real kernel reaches about 80-90 % of this on HBM; lab 01 and the benchmarks measure it."))

# %% [markdown] key="peak-fp32-arithmetic"
# ## 4. Peak FP32 arithmetic
#
# Each SM has a fixed number of FP32 lanes ("CUDA cores") that depends on the compute capability:
# 64 on V100 (7.0) and A100 (8.0), 128 on Ada (8.9) and Hopper (9.0). `techday.gpuspecs.cores_per_sm`
# holds the table. Each lane can finish one **fused multiply-add** `a * b + c` per clock, and an FMA
# counts as **2 FLOPs**:
#
# $$\text{peak FP32 [FLOP/s]} = \text{SMs} \times \text{lanes per SM} \times 2 \times \text{SM clock [Hz]}$$
#
# Quote it in **TFLOP/s = 10¹² FLOP/s**. (Tensor cores reach far more for matrix products in lower
# precision; this is the plain FP32 rate that ordinary kernels use.)
#
# ## Exercise 2: peak FP32 rate
#
# Write `peak_fp32_tflops(sm_count, cores_per_sm, clock_khz)`: return TFLOP/s as a float.

# %% nbgrader="solution" id="peak_fp32"
def peak_fp32_tflops(sm_count, cores_per_sm, clock_khz):
    """Peak FP32 rate in TFLOP/s (10^12 FLOP/s): every FP32 lane of every SM finishes one fused
    multiply-add (2 FLOPs) per clock; the clock is in kHz, as the driver reports it."""
    ### BEGIN SOLUTION
    clock_hz = clock_khz * 1e3
    return sm_count * cores_per_sm * 2 * clock_hz / 1e12
    ### END SOLUTION

# %% nbgrader="tests" id="peak_fp32_tests" points=2
"""peak_fp32_tflops: SMs x FP32 lanes x 2 FLOP per FMA x clock, in TFLOP/s (10^12 FLOP/s), from kHz; hidden: by hand,
T4, A100, every row of techday.gpuspecs, and cases drawn afresh at every grading (techday.draw)."""
from techday.labtools import assert_close
from techday.i18n import msg

# H100 SXM5: 132 SMs x 128 lanes x 2 x 1.98 GHz.
assert_close(peak_fp32_tflops(132, 128, 1_980_000), 66.90816, what=msg("00.h100_sxm5_peak_fp32", "H100 SXM5 peak FP32 (TFLOP/s)"), rtol=1e-6)
### BEGIN HIDDEN TESTS
from techday import gpuspecs as _specs

# By hand: one lane at 1 GHz does 2e9 FLOP/s = 0.002 TFLOP/s.
assert_close(peak_fp32_tflops(1, 1, 1_000_000), 0.002, what=msg("00.one_lane_ghz_tflop", "one lane at 1 GHz (TFLOP/s)"), rtol=1e-9)
# T4 (cc 7.5, 64 lanes per SM) and A100 (cc 8.0, 64 lanes per SM).
assert_close(peak_fp32_tflops(40, 64, 1_590_000), 8.1408, what=msg("00.t4_peak_fp32_tflop", "T4 peak FP32 (TFLOP/s)"), rtol=1e-6)
assert_close(peak_fp32_tflops(108, 64, 1_410_000), 19.49184, what=msg("00.a100_peak_fp32_tflop", "A100 peak FP32 (TFLOP/s)"), rtol=1e-6)
# Every GPU in the table lands within 3 % of its published FP32 rate.
for _s in _specs.SPECS:
    _got = peak_fp32_tflops(_s.sm_count, _specs.cores_per_sm(*_s.cc), _s.boost_clock_mhz * 1000)
    assert abs(_got / _s.fp32_tflops - 1) <= 0.03, msg("00.s_name_f_tflop", "{s_name}: got {got:.2f} TFLOP/s, published {s_fp32_tflops}", s_name=_s.name, got=_got, s_fp32_tflops=_s.fp32_tflops)
# Drawn at every grading (techday.draw): the devices above, and the table, are published with the course.
import techday.draw

_rd = techday.draw.rng("00.peak_fp32_tests")
for _ in range(4):
    _sms, _lanes, _clk = int(_rd.integers(1, 257)), int(_rd.integers(1, 257)), int(_rd.integers(300_000, 3_000_001))
    assert_close(peak_fp32_tflops(_sms, _lanes, _clk), _sms * _lanes * 2 * (_clk * 1e3) / 1e12, rtol=1e-9,
                 what=msg("00.drawn_peak", "hidden: {sms} SMs x {lanes} lanes at {khz:,} kHz (TFLOP/s)", sms=_sms, lanes=_lanes,
                          khz=_clk))
### END HIDDEN TESTS

# %%
try:
    lanes = gpuspecs.cores_per_sm(*dev.cc)
except ValueError as exc:  # a compute capability newer than the table
    lanes = 128
    print(msg("00.lanes_assumed", "{error}; assuming {lanes}", error=exc, lanes=lanes))
peak_tflops = peak_fp32_tflops(dev.sm_count, lanes, dev.clock_khz)
# peak = sm_count * lanes * 2 (FLOP per FMA) * clock_hz / 1e12
print(msg("00.peak_theoretical", "{name}: {sms} SMs x {lanes} lanes x 2 x {ghz:.3f} GHz = {tflops:.1f} TFLOP/s FP32",
          name=dev.name, sms=dev.sm_count, lanes=lanes, ghz=dev.clock_khz / 1e6, tflops=peak_tflops))
if published:
    print(msg("00.peak_published", "published ({name}): {tflops} TFLOP/s ({diff:+.1%})",
              name=published.name, tflops=published.fp32_tflops, diff=peak_tflops / published.fp32_tflops - 1))

# %% [markdown] key="arithmetic-intensity-roofline"
# ## 5. Arithmetic intensity and the roofline
#
# A kernel does some FLOPs and moves some bytes to or from device memory. Its **arithmetic
# intensity** is the ratio:
#
# $$I = \frac{\text{FLOPs}}{\text{bytes moved}} \quad [\text{FLOP/byte}]$$
#
# Memory can feed at most `I × bandwidth` FLOP/s, and the SMs can do at most the peak, so the
# **roofline** model says
#
# $$\text{attainable} = \min(\text{peak},\; I \times \text{bandwidth})$$
#
# The two roofs meet at the **ridge point** `I = peak / bandwidth` (about 20 FLOP/byte on an H100).
# Left of it a kernel is *memory-bound*: a faster GPU core does not help, moving fewer bytes does.
# Right of it, it is *compute-bound*.
#
# Examples, in float32 (4 bytes): `c = a + b` does 1 FLOP per element and moves 12 bytes (read a,
# read b, write c): I = 1/12. SAXPY `y = a*x + y` does 2 FLOPs per 12 bytes. An `n × n` matrix
# product does `2n³` FLOPs; if each matrix crosses memory once it moves `3 × 4n²` bytes: I = n/6.
#
# ## Exercise 3: arithmetic intensity and the roofline
#
# Write `arithmetic_intensity(flops, bytes_moved)` (FLOP/byte, a float) and
# `attainable_gflops(intensity, peak_gflops, bandwidth_gbs)` (GFLOP/s): note that GB/s × FLOP/byte
# is GFLOP/s.

# %% nbgrader="solution" id="roofline"
def arithmetic_intensity(flops, bytes_moved):
    """FLOPs done per byte moved to or from device memory (FLOP/byte), as a float."""
    ### BEGIN SOLUTION
    return flops / bytes_moved
    ### END SOLUTION


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    """The roofline: the highest rate (GFLOP/s) a kernel of this arithmetic intensity (FLOP/byte)
    can reach on a device with this peak (GFLOP/s) and memory bandwidth (GB/s)."""
    ### BEGIN SOLUTION
    return min(peak_gflops, intensity * bandwidth_gbs)
    ### END SOLUTION

# %% nbgrader="tests" id="intensity_tests" points=1
"""arithmetic_intensity: FLOPs divided by bytes moved, as a float (not an integer division, not inverted); hidden:
vector add, a matrix product, no FLOPs, and cases drawn afresh at every grading (techday.draw)."""
from techday.labtools import assert_close
from techday.i18n import msg

_n = 1_000_003  # SAXPY on _n float32 elements: 2 FLOPs and 12 bytes per element
assert_close(arithmetic_intensity(2 * _n, 12 * _n), 1 / 6, what=msg("00.saxpy_intensity_flop_byte", "SAXPY intensity (FLOP/byte)"), rtol=1e-12)
### BEGIN HIDDEN TESTS
# Vector add, one element: 1 FLOP per 12 bytes is 0.083, not 0.
assert_close(arithmetic_intensity(1, 12), 1 / 12, what=msg("00.vector_add_intensity_flop", "vector add intensity (FLOP/byte)"), rtol=1e-12)
# Matrix product, n = 4097, each float32 matrix moved once: 2n^3 / (3 * 4 n^2) = n / 6.
_m = 4097
assert_close(arithmetic_intensity(2 * _m**3, 3 * 4 * _m**2), _m / 6, what=msg("00.matmul_intensity_flop_byte", "matmul intensity (FLOP/byte)"), rtol=1e-12)
assert_close(arithmetic_intensity(0, 8), 0.0, what=msg("00.no_flops", "no FLOPs"), atol=0.0)
# Drawn at every grading (techday.draw): the kernels above are published with the course. One intensity below
# 1 FLOP/byte (an integer division gives 0), one above.
import techday.draw

_rd = techday.draw.rng("00.intensity_tests")
_bytes = [int(b) for b in _rd.integers(4, 10**12, size=2)]
for _flops, _b in ((int(_rd.integers(1, _bytes[0])), _bytes[0]), (int(_rd.integers(_bytes[1] + 1, 300 * _bytes[1])), _bytes[1])):
    assert_close(arithmetic_intensity(_flops, _b), _flops / _b, rtol=1e-12,
                 what=msg("00.drawn_intensity", "hidden: {flops:,} FLOPs over {nbytes:,} bytes (FLOP/byte)", flops=_flops, nbytes=_b))
### END HIDDEN TESTS

# %% nbgrader="tests" id="roofline_tests" points=2
"""attainable_gflops: min(peak, intensity x bandwidth) in GFLOP/s, on both sides of the ridge point; hidden: T4 at,
below and above its ridge, A100, never above a roof, and devices and intensities drawn afresh at every grading
(techday.draw)."""
from techday.labtools import assert_close
from techday.i18n import msg

# H100 SXM5: peak 66 900 GFLOP/s, 3352 GB/s; the ridge is at 66 900 / 3352 = 20 FLOP/byte.
assert_close(attainable_gflops(0.25, 66_900, 3352), 838.0, what=msg("00.memory_bound_point_i", "memory-bound point, I = 0.25 (GFLOP/s)"), rtol=1e-9)
assert_close(attainable_gflops(100, 66_900, 3352), 66_900, what=msg("00.compute_bound_point_i", "compute-bound point, I = 100 (GFLOP/s)"), rtol=1e-9)
### BEGIN HIDDEN TESTS
# T4: peak 8100 GFLOP/s, 320 GB/s, ridge at 25.3125 FLOP/byte.
assert_close(attainable_gflops(8100 / 320, 8100, 320), 8100.0, what=msg("00.t4_ridge_point", "T4 at the ridge point"), rtol=1e-9)
assert_close(attainable_gflops(25.0, 8100, 320), 8000.0, what=msg("00.t4_just_below_ridge", "T4 just below the ridge"), rtol=1e-9)
assert_close(attainable_gflops(25.5, 8100, 320), 8100.0, what=msg("00.t4_just_above_ridge", "T4 just above the ridge"), rtol=1e-9)
# A100, vector add (I = 1/12): far below the ridge, bandwidth decides.
assert_close(attainable_gflops(1 / 12, 19_500, 1555), 1555 / 12, what=msg("00.a100_vector_add", "A100 vector add"), rtol=1e-9)
# Never above either roof.
for _i in (0.01, 0.3, 7.0, 19.9, 20.1, 333.0):
    _a = attainable_gflops(_i, 66_900, 3352)
    assert _a <= 66_900 * (1 + 1e-12) and _a <= _i * 3352 * (1 + 1e-12), msg("00.i_i_above_roof", "I = {i}: {a} is above a roof", i=_i, a=_a)
# Drawn at every grading (techday.draw): the devices and intensities above are published with the course. A
# device, then one intensity on each side of its ridge point (1.5 to 20 times below, 1.5 to 20 times above).
import techday.draw

_rd = techday.draw.rng("00.roofline_tests")
for _ in range(2):
    _peak, _bw = float(_rd.uniform(500, 150_000)), float(_rd.uniform(50, 8_000))
    for _i in (_peak / _bw / float(_rd.uniform(1.5, 20)), _peak / _bw * float(_rd.uniform(1.5, 20))):
        assert_close(attainable_gflops(_i, _peak, _bw), min(_peak, _i * _bw), rtol=1e-9,
                     what=msg("00.drawn_roofline", "hidden: I = {i:.4g} FLOP/byte, peak {peak:,.0f} GFLOP/s, {bw:,.0f} GB/s",
                              i=_i, peak=_peak, bw=_bw))
### END HIDDEN TESTS

# %% [markdown] key="note-3"
# Where do common kernels sit on the roofline of the device above?

# %%
peak_gflops = peak_tflops * 1e3
ridge = peak_gflops / bandwidth_gbs  # FLOP/byte where the two roofs meet
m = 4096
from techday.i18n import msg, pad  # pad: a column's width as the screen shows Korean (two columns a syllable)

kernels = [  # (name, FLOPs, bytes moved), float32 = 4 bytes
    (msg("00.kernel_sum", "sum reduction  s += a[i]"), 1, 4),
    (msg("00.kernel_vector_add", "vector add     c = a + b"), 1, 12),
    ("SAXPY          y = a*x + y", 2, 12),
    (msg("00.kernel_dot", "dot product    s += a[i]*b[i]"), 2, 8),
    (msg("00.kernel_matmul", "matmul {m}x{m} (ideal reuse)", m=m), 2 * m**3, 3 * 4 * m**2),
]

print(msg("00.roofline_device", "{name}: peak {peak:,.0f} GFLOP/s, {bw:,.0f} GB/s, ridge at {ridge:.1f} FLOP/byte\n",
          name=dev.name, peak=peak_gflops, bw=bandwidth_gbs, ridge=ridge))
print(msg("00.roofline_header", "kernel                                FLOP/byte  attainable GFLOP/s  of peak  bound"))
points = []
for name, flops, nbytes in kernels:
    intensity = arithmetic_intensity(flops, nbytes)  # FLOPs / bytes
    attainable = attainable_gflops(intensity, peak_gflops, bandwidth_gbs)  # min(peak, I * BW)
    points.append((name, intensity, attainable))
    bound = msg("00.bound_memory", "memory") if intensity < ridge else msg("00.bound_compute", "compute")
    print(f"{pad(name, 36)} {intensity:10.3f} {attainable:19,.0f} {attainable / peak_gflops:8.1%}  {bound}")

# %%
from techday.i18n import msg

try:
    import matplotlib

    matplotlib.use("Agg")  # draw off-screen; the picture is shown below as an image
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
    print(msg("00.matplotlib_installed_table_above", "matplotlib is not installed: the table above is the roofline."))

if plt is not None:
    import io

    import numpy as np
    from IPython.display import Image, display

    xs = np.logspace(-2, 3.5, 200)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.loglog(xs, [attainable_gflops(x, peak_gflops, bandwidth_gbs) for x in xs], color="black", label=msg("00.plot_roofline", "roofline"))
    ax.axvline(ridge, color="gray", linestyle=":", label=msg("00.plot_ridge", "ridge {ridge:.1f} FLOP/byte", ridge=ridge))
    for (name, intensity, attainable), marker in zip(points, "osD^v"):
        ax.plot(intensity, attainable, marker, label=name.split("  ")[0])
    ax.set_xlabel(msg("00.plot_xlabel", "arithmetic intensity (FLOP/byte)"))
    ax.set_ylabel(msg("00.plot_ylabel", "attainable GFLOP/s"))
    ax.set_title(msg("00.plot_title", "FP32 roofline, {name} (theoretical)", name=dev.name))
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    display(Image(buf.getvalue()))

# %% [markdown] key="host-memory-device-memory"
# ## 6. Host memory and device memory
#
# The CPU's memory (the **host**) and the GPU's memory (the **device**) are separate. Data crosses
# between them over a link that is far narrower than the GPU's own memory:
#
# | path | typical bandwidth, one direction |
# |---|---|
# | PCIe 4.0 x16 | 32 GB/s on paper, about 25 GB/s in practice |
# | PCIe 5.0 x16 | 64 GB/s on paper, about 50 GB/s in practice |
# | NVLink-C2C (GH200, CPU↔GPU) | 450 GB/s |
# | HBM3 on an H100 SXM5 (GPU↔its memory) | 3352 GB/s |
#
# So the rule of CUDA work: **copy once, compute many times on the device, copy the result back.**
#
# Ordinary NumPy arrays live in *pageable* host memory, which the operating system may move. The
# GPU's copy engine can only read memory that stays put, so the driver first copies a pageable array
# into a *pinned* (page-locked) staging buffer. An array allocated pinned (`cuda.pinned_array`)
# skips that step: the copy is faster, and it can overlap with kernels.
#
# ## Exercise 4: copy time
#
# Write `copy_time_ms(nbytes, bandwidth_gbs)`: how long moving `nbytes` bytes takes at
# `bandwidth_gbs` GB/s (10⁹ bytes/s), in **milliseconds**. Careful: 1 GiB is 2³⁰ bytes.

# %% nbgrader="solution" id="copy_time"
def copy_time_ms(nbytes, bandwidth_gbs):
    """Milliseconds to move ``nbytes`` bytes at ``bandwidth_gbs`` GB/s (10^9 bytes/s)."""
    ### BEGIN SOLUTION
    seconds = nbytes / (bandwidth_gbs * 1e9)
    return seconds * 1e3
    ### END SOLUTION

# %% nbgrader="tests" id="copy_time_tests" points=2
"""copy_time_ms: bytes / (GB/s x 10^9), in milliseconds; 1 GiB is 2^30 bytes and 1 GB/s is 10^9 bytes/s; hidden: 1 GB
at 1 GB/s, an awkward size and rate, nothing, the ratios, and cases drawn afresh at every grading (techday.draw)."""
from techday.labtools import assert_close
from techday.i18n import msg

GiB = 2**30
# 1 GiB over PCIe 4.0 x16 at about 25 GB/s, then read once from an H100's HBM at 3352 GB/s.
assert_close(copy_time_ms(GiB, 25), 42.94967296, what=msg("00.gib_gb_s_ms", "1 GiB at 25 GB/s (ms)"), rtol=1e-9)
assert_close(copy_time_ms(GiB, 3352), 0.3203287064, what=msg("00.gib_gb_s_ms_2", "1 GiB at 3352 GB/s (ms)"), rtol=1e-9)
### BEGIN HIDDEN TESTS
# 1 GB at 1 GB/s is one second.
assert_close(copy_time_ms(10**9, 1), 1000.0, what=msg("00.gb_gb_s_ms", "1 GB at 1 GB/s (ms)"), rtol=1e-12)
# An awkward size and rate.
assert_close(copy_time_ms(123_456_789, 12.3), 123_456_789 / 12.3e9 * 1e3, what=msg("00.b_gb_s_ms", "123 456 789 B at 12.3 GB/s (ms)"),
             rtol=1e-9)
assert_close(copy_time_ms(0, 25), 0.0, what=msg("00.nothing_copy", "nothing to copy"), atol=0.0)
# Twice the bytes take twice as long; twice the bandwidth half as long.
assert_close(copy_time_ms(6 * GiB, 50) / copy_time_ms(3 * GiB, 50), 2.0, what=msg("00.time_grows_size", "time grows with size"), rtol=1e-9)
assert_close(copy_time_ms(3 * GiB, 100) / copy_time_ms(3 * GiB, 50), 0.5, what=msg("00.time_shrinks_bandwidth", "time shrinks with bandwidth"),
             rtol=1e-9)
# Drawn at every grading (techday.draw): the sizes and rates above are published with the course.
import techday.draw

_rd = techday.draw.rng("00.copy_time_tests")
for _ in range(3):
    _nb, _gbs = int(_rd.integers(1, 2**42)), float(_rd.uniform(0.5, 5_000))
    assert_close(copy_time_ms(_nb, _gbs), _nb / (_gbs * 1e9) * 1e3, rtol=1e-9,
                 what=msg("00.drawn_copy_time", "hidden: {nbytes:,} bytes at {gbs:.3f} GB/s (ms)", nbytes=_nb, gbs=_gbs))
### END HIDDEN TESTS

# %% [markdown] key="note-4"
# What does that mean for one gigabyte of data?

# %%
from techday.i18n import msg, pad

GiB = 2**30
print(msg("00.moving_gib", "Moving 1 GiB ({nbytes:,} bytes):", nbytes=GiB))
for path, gbs in [("PCIe 4.0 x16 (~25 GB/s)", 25), ("PCIe 5.0 x16 (~50 GB/s)", 50),
                  ("NVLink-C2C, GH200 (450 GB/s)", 450),
                  (msg("00.moving_device_memory", "device memory, {name} (theoretical)", name=dev.name), bandwidth_gbs)]:
    print(f"  {pad(path, 52)} {copy_time_ms(GiB, gbs):8.2f} ms")  # ms = bytes / (GB/s * 1e9) * 1e3
ratio = copy_time_ms(GiB, 25) / copy_time_ms(GiB, bandwidth_gbs)
print(msg("00.one_trip_over_pcie", "\nOne trip over PCIe 4.0 costs as much time as reading the array {ratio:.0f} times from device memory.", ratio=ratio))
print(msg("00.kernel_that_reads_its", "A kernel that reads its input only once is rarely worth a round trip over PCIe: keep data on the GPU."))

# %% [markdown] key="measuring-copies"
# ### Measuring copies
#
# Timing follows the course's rules: check the result first, warm up outside the timed region, repeat,
# report the median, and label the tier. The host copy is a **CPU** figure on every tier: it measures
# the machine's RAM, not a GPU. On the GPU tier, CUDA events (the device's own clock) time a
# host→device copy from pageable and from pinned memory, and a device→device copy.

# %%
import numpy as np

from techday.labtools import time_cpu
from techday.i18n import msg

n = lab.size(full=64_000_003, ci=12_000_007, cpu=32_000_011)  # float32 elements, not a power of two
src = np.arange(n, dtype=np.float32)
dst = np.empty_like(src)
nbytes = src.nbytes
np.copyto(dst, src)
assert np.array_equal(dst, src), msg("00.host_copy_destination_differs", "host copy: the destination differs from the source")

t_host = time_cpu(np.copyto, dst, src, repeat=5, warmup=1, what=msg("00.host_memcpy", "host memcpy of {mb:.0f} MB", mb=nbytes / 1e6),
                  label=msg("00.host_memcpy_label", "CPU (host RAM, not a GPU figure)"))
print(t_host)
# rate = bytes copied per second; traffic = 2x that (each byte is read once and written once)
print(msg("00.host_copy_rate", "  copy rate {rate:.1f} GB/s = nbytes / t;  memory traffic {traffic:.1f} GB/s = 2 * nbytes / t",
          rate=nbytes / t_host.median / 1e9, traffic=2 * nbytes / t_host.median / 1e9))
print(msg("00.host_copy_over_pcie", "  the same bytes over PCIe 4.0 at ~25 GB/s would take about {ms:.1f} ms",
          ms=copy_time_ms(nbytes, 25)))

# %%
from techday.i18n import msg

if lab.gpu_only(msg("00.gpu_only_h2d_copies", "host-to-device copy, pageable vs pinned memory, timed with CUDA events")):
    from techday.labtools import time_cuda

    label = lab.timing_label()
    host_pageable = src  # an ordinary NumPy array
    host_pinned = cuda.pinned_array(n, dtype=np.float32)  # page-locked host memory
    host_pinned[:] = src
    d_a = cuda.device_array(n, dtype=np.float32)
    d_b = cuda.device_array(n, dtype=np.float32)

    # Check before timing: each copy must deliver the data.
    d_a.copy_to_device(host_pageable)
    assert np.array_equal(d_a.copy_to_host(), src), msg("00.pageable_host_device_copy", "pageable host-to-device copy delivered different data")
    d_a.copy_to_device(host_pinned)
    assert np.array_equal(d_a.copy_to_host(), src), msg("00.pinned_host_device_copy", "pinned host-to-device copy delivered different data")
    d_b.copy_to_device(d_a)
    assert np.array_equal(d_b.copy_to_host(), src), msg("00.device_device_copy_delivered", "device-to-device copy delivered different data")

    t_pageable = time_cuda(d_a.copy_to_device, host_pageable, repeat=10, what=msg("00.h2d_pageable", "H2D from pageable memory"), label=label)
    t_pinned = time_cuda(d_a.copy_to_device, host_pinned, repeat=10, what=msg("00.h2d_pinned", "H2D from pinned memory"), label=label)
    t_d2d = time_cuda(d_b.copy_to_device, d_a, repeat=10, what=msg("00.d2d_copy", "device-to-device copy"), label=label)

    for t in (t_pageable, t_pinned):
        print(t)
        print(msg("00.h2d_rate", "  {gbs:.1f} GB/s = nbytes / t  (each byte crosses the bus once)", gbs=nbytes / t.median / 1e9))
    print(msg("00.pinned_faster", "pinned is {ratio:.1f}x faster than pageable", ratio=t_pageable.median / t_pinned.median))
    print(t_d2d)
    d2d_gbs = 2 * nbytes / t_d2d.median / 1e9  # each byte is read once and written once in device memory
    print(msg("00.d2d_rate", "  {gbs:.0f} GB/s = 2 * nbytes / t, {frac:.0%} of the theoretical {peak:.0f} GB/s", gbs=d2d_gbs,
              frac=d2d_gbs / bandwidth_gbs, peak=bandwidth_gbs))
    print(msg("00.device_memory_faster", "device memory is {ratio:.0f}x faster than the host link",
              ratio=d2d_gbs / (nbytes / t_pinned.median / 1e9)))
    del d_a, d_b, host_pinned

# %% [markdown] key="summary"
# ## Summary
#
# - Every lab says which tier it runs on; only GPU-tier timings are GPU figures.
# - Bandwidth = 2 × memory clock × bus width / 8 (double data rate; GB/s = 10⁹ bytes/s).
# - Peak FP32 = SMs × FP32 lanes per SM × 2 (FMA) × clock.
# - Arithmetic intensity (FLOP/byte) against the ridge point `peak / bandwidth` tells whether a kernel
#   is memory-bound or compute-bound; most simple kernels (add, SAXPY, reductions) are memory-bound.
# - Host↔device copies cross PCIe or NVLink at a small fraction of device-memory bandwidth: copy once,
#   keep data on the GPU, and use pinned memory for the copies you must make.
#
# ## Going further
#
# - S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model for
#   multicore architectures", Communications of the ACM 52(4), 2009.
# - CUDA C++ Programming Guide: "Compute Capabilities" and the arithmetic instruction throughput table
#   (the source of FP32 lanes per SM).
# - CUDA C++ Best Practices Guide: "Theoretical Bandwidth Calculation" and "Pinned Memory".
# - On a GPU machine: `nvidia-smi -q -d CLOCK` shows the clocks the driver reports; `deviceQuery`
#   and `bandwidthTest` from NVIDIA's cuda-samples, and BabelStream, measure what this lab computed.
# - `techday.gpuspecs` holds the table used here; the benchmark suite quotes its results against it.
# - Next: lab 01 writes your first kernels with Numba and measures how close they come to this roofline.
