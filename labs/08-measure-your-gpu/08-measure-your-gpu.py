# %% [markdown] key="measure-gpu"
# # 08 Measure your GPU
#
# Every earlier lab timed one kernel at a time. This lab runs the course's benchmark suite, the same
# one `techday bench --quick` runs, on your machine: it checks each kernel against a NumPy reference,
# times it, and compares the figure with your device's own limits. Then you read your own numbers:
# how close did your GPU come to its memory bandwidth, which kernels are limited by memory and which
# by arithmetic, and which implementation won. Your results file is part of your submission; the
# instructor merges the room's files into one leaderboard.
#
# ## You will learn
# - how a benchmark counts: bytes and FLOPs per kernel, rates from the median time, and the
#   **fraction of the device's limit**;
# - why STREAM triad reaches what it reaches, and what the **roofline** says about a kernel;
# - **arithmetic intensity** (FLOPs per byte) and the **ridge point** that separates memory-bound from
#   compute-bound kernels;
# - how to read a results file (`techday.bench/2` JSON) with a few lines of Python.
#
# **How this lab works**: run the suite, read the explanations, then solve the three exercises. In
# each exercise cell, delete `raise NotImplementedError()` and write your code. Do not edit test
# cells. The grader computes the expected answers from **your** results file, and hidden tests
# use results files you have not seen.
#
# Points: exercise 1: 3, exercise 2: 3, exercise 3: 2 (8 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# The code cell below chooses the **tier** and prints it. On a machine without a GPU the suite times only
# its CPU implementations (Numba parallel and NumPy) and labels every figure CPU: those are never GPU
# figures.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("08.title", "08 Measure your GPU"))

# %% nbgrader="locked" id="imports"
import json
from pathlib import Path

from IPython.display import Image, display
from rich.console import Console

from techday.bench import run_suite, validate
from techday.bench.report import roofline_png, table
from techday.gpuspecs import by_name

RESULTS_FILE = Path("bench-results.json")  # saved next to this notebook: hand it in with it

# %% [markdown] key="run-suite"
# ## 1. Run the suite
#
# The cell below runs the quick suite through the package (`techday.bench.run_suite`). For every
# kernel and implementation it:
#
# 1. fills the output with NaN ("poison"), runs the kernel once (this also compiles it), and compares
#    the result with a NumPy reference; a wrong kernel is reported as wrong and **never timed**;
# 2. times many repetitions: CUDA events on a GPU (the device's clock), `perf_counter` on a CPU, with
#    the L2 cache flushed before each repetition of a memory-bound kernel and arrays several times
#    larger than L2, so the figure is DRAM bandwidth, not cache bandwidth. Events alone do not keep
#    the host out: when the GPU is idle, it reaches the start event and then waits while Python
#    launches the kernel, and that wait is counted. So the suite first queues a short sleeping
#    kernel that keeps the GPU busy while the host queues the start event, the call and the stop
#    event; the GPU then runs them back to back. (Launches are asynchronous: the host queues work
#    and moves on, and only a synchronisation, here on the stop event, waits for the GPU.)
# 3. reports the median and the spread, the rate, and the fraction of the device's limit.
#
# On a GPU this takes two to three minutes (an H200: 109 s from the terminal, 179 s in this notebook).
# At `scale="ci"` on a CPU it runs a few families at small sizes.

# %% nbgrader="locked" id="run_suite"
from techday.i18n import msg

if lab.scale == "ci" and not lab.on_gpu:
    families = ["stream", "reduction", "matmul", "roofline"]
    print(msg("08.ci_four_families", "scale ci on the CPU tier: four families at small sizes; Numba CUDA kernels are not run here"))
else:
    families = None  # every family of the quick suite
results = run_suite(tier=lab.tier, quick=True, families=families, progress=False, ci=lab.scale == "ci",
                    sim_check=not (lab.scale == "ci" and not lab.on_gpu))
RESULTS_FILE.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
assert validate(json.loads(RESULTS_FILE.read_text())) == [], msg("08.results_must_validate", "the results file must validate")
Console(width=110, force_jupyter=False).print(table(results))
print(msg("08.saved_hand_in", "saved {path} ({seconds:.0f} s): hand it in with this notebook", path=RESULTS_FILE.resolve(),
          seconds=results["seconds"]))

# %% [markdown] key="note"
# Each entry of `results["results"]` is a dictionary; for example the triad of the fastest implementation:
#
# ```python
# {"family": "stream", "kernel": "triad", "impl": "numba-cuda", "status": "ok", "device": "gpu",
#  "bytes": 805306368, "flops": 67108864, "seconds": {"median": 0.000268, "spread": 0.004, ...},
#  "metric": "gbs", "value": 3004.9, "limit_key": "dram_gbs", "limit": 3352.3, "fraction": 0.896}
# ```
#
# `results["limits"]` holds the device's limits, computed from what the driver reports
# (`2 * memory_clock * bus_width / 8` for DRAM, `SMs * FP32 lanes * 2 * clock` for FP32) and
# cross-checked with the published table in `techday.gpuspecs`. On the CPU tier there are no limits:
# `limit` and `fraction` are `None`.

# %%
from techday.i18n import msg


def show(family, kernel):
    for r in results["results"]:
        if r["family"] == family and r["kernel"] == kernel and r["status"] == "ok":
            frac = msg("08.of_the_limit", ", {fraction:.0%} of the limit", fraction=r["fraction"]) if r["fraction"] is not None else ""
            print(f"{family}.{kernel:6s} {r['impl']:11s} {r['value']:10.2f} {'GB/s' if r['metric'] == 'gbs' else 'GFLOP/s'}"
                  f" [{r['label']}]{frac}")


show("stream", "triad")
show("stream", "copy")
print(msg("08.limits", "limits: {limits}", limits={k: v for k, v in results["limits"].items() if isinstance(v, (int, float))}
          or msg("08.no_limits_cpu", "none (CPU tier)")))

# %% [markdown] key="triad-reaches-reaches"
# ### Why triad reaches what it reaches
#
# Triad, `a[i] = b[i] + s * c[i]`, reads two arrays and writes one: **3 x 8 bytes** per float64
# element, 2 FLOPs. At 0.08 FLOP per byte nothing but memory can limit it, so its GB/s is the best
# estimate of the bandwidth a real program gets. It never reaches 100 % of the theoretical figure:
#
# - the theoretical figure counts every clock of every pin; DRAM also spends time on refresh, on
#   turning the bus around between reads and writes, and on opening rows;
# - a GPU hides DRAM's latency (hundreds of nanoseconds) only with enough loads in flight, from
#   enough resident warps;
# - a CPU usually reads a cache line before writing it ("write allocate"), which STREAM's
#   convention does not count, and NumPy's triad makes temporaries (`s * c`, then the sum), moving
#   more bytes than it is credited for: that is why Numba's one-pass `prange` triad beats it on
#   arrays much larger than the caches, given idle cores.
#
# Well-tuned CUDA C reaches about 90 % on an H100 (BabelStream); the course's target for Numba and
# CuPy is 88 % or more.

# %% [markdown] key="rate-fraction-limit"
# ## Exercise 1: a rate and its fraction of the limit (3 points)
#
# Write `achieved_gbs(result)` that computes the rate of one result from its `bytes` and its median
# time, `result["seconds"]["median"]`, in **GB/s** (10**9 bytes per second, the unit of every
# datasheet), and `fraction_of_limit(doc, result)` that divides the result's `value` by its device
# limit, `doc["limits"][result["limit_key"]]`, and returns `None` when the document has no such limit
# (the CPU tier) or the result names none (`limit_key` is `None`).
# Use only what is in the file.

# %% nbgrader="solution" id="rates"
def achieved_gbs(result):
    """GB/s of one result: bytes / median seconds / 1e9."""
    ### BEGIN SOLUTION
    return result["bytes"] / result["seconds"]["median"] / 1e9
    ### END SOLUTION


def fraction_of_limit(doc, result):
    """result['value'] / the device limit it names, or None when there is none."""
    ### BEGIN SOLUTION
    key = result.get("limit_key")
    limit = doc["limits"].get(key) if key else None
    if not limit:
        return None
    return result["value"] / limit
    ### END SOLUTION

# %% nbgrader="tests" id="rates_tests" points=3
"""achieved_gbs matches every memory-bound result in your own results file (computed from its bytes and
median time); fraction_of_limit is None on the CPU tier and value / limit on a GPU; hidden: a GPU
fixture file (not a measurement) with limits, and a result that names no limit; and a fixture file and
results drawn afresh at every grading (techday.draw)."""
import json
import math
from pathlib import Path
from techday.i18n import msg

mine = json.loads(Path("bench-results.json").read_text())
memory_bound = [r for r in mine["results"] if r["status"] == "ok" and r["metric"] == "gbs"]
assert memory_bound, msg("08.no_memory_bound", "your results file has no timed memory-bound kernel")
for r in memory_bound:
    got = achieved_gbs(r)
    expected = r["bytes"] / r["seconds"]["median"] / 1e9
    assert math.isclose(got, expected, rel_tol=1e-9), msg(
        "08.gbs_wrong", "{family}.{kernel} {impl}: {got!r} GB/s, expected {want:.6g} (bytes / median seconds / 1e9)",
        family=r["family"], kernel=r["kernel"], impl=r["impl"], got=got, want=expected)
for r in memory_bound:
    got = fraction_of_limit(mine, r)
    if mine["tier"] == "cpu":
        assert got is None, msg("08.cpu_no_limit", "the CPU tier has no device limit: fraction_of_limit must return None, "
                                "not {got!r}", got=got)
    else:
        limit = mine["limits"].get(r["limit_key"]) if r["limit_key"] else None
        if limit:
            assert got is not None and math.isclose(got, r["value"] / limit, rel_tol=1e-9), msg(
                "08.fraction_wrong", "{family}.{kernel} {impl}: {got!r}, expected value / limit = {want:.6g}",
                family=r["family"], kernel=r["kernel"], impl=r["impl"], got=got, want=r["value"] / limit)
        else:
            assert got is None, msg("08.names_no_limit", "{family}.{kernel} names no device limit: expected None, got {got!r}",
                                    family=r["family"], kernel=r["kernel"], got=got)
### BEGIN HIDDEN TESTS
fixture = {"fixture": True, "tier": "gpu", "limits": {"dram_gbs": 3352.0, "fp32_gflops": 66900.0, "bf16_gflops": None},
           "results": []}
triad = {"family": "stream", "kernel": "triad", "bytes": 3 * 8 * 2**25, "seconds": {"median": 2.7e-4},
         "value": 2982.6, "limit_key": "dram_gbs", "metric": "gbs"}
assert math.isclose(achieved_gbs(triad), 3 * 8 * 2**25 / 2.7e-4 / 1e9, rel_tol=1e-9), msg("08.hidden_gb_not_gib", "hidden: GB/s, not GiB/s")
assert math.isclose(fraction_of_limit(fixture, triad), 2982.6 / 3352.0, rel_tol=1e-9)
mm = {"value": 50000.0, "limit_key": "fp32_gflops", "bytes": 1, "seconds": {"median": 1.0}}
assert math.isclose(fraction_of_limit(fixture, mm), 50000.0 / 66900.0, rel_tol=1e-9), \
    msg("08.hidden_use_limit_key", "hidden: use the result's limit_key")
assert fraction_of_limit(fixture, {"value": 5.0, "limit_key": None}) is None, msg("08.hidden_no_limit_key", "hidden: no limit_key, no fraction")
assert fraction_of_limit(fixture, {"value": 5.0, "limit_key": "bf16_gflops"}) is None, msg("08.hidden_limit_none", "hidden: a limit of None")
assert math.isclose(achieved_gbs({"bytes": 10**9, "seconds": {"median": 0.5, "min": 0.1}}), 2.0), \
    msg("08.hidden_use_median", "hidden: use the median time")
# Drawn at every grading (techday.draw): the fixture above is published with the course. A GPU file whose
# limits are drawn (one of them None), and results of drawn sizes and times that name each limit, a
# limit the file does not have, or none.
import techday.draw

rd = techday.draw.rng("08.rates_tests")
limits_d = {"dram_gbs": float(rd.uniform(100, 8_000)), "fp32_gflops": float(rd.uniform(1_000, 150_000)),
            "bf16_gflops": None if rd.integers(0, 2) else float(rd.uniform(10_000, 2_000_000))}
fixture_d = {"fixture": True, "tier": "gpu", "limits": limits_d, "results": []}
for key_d in ("dram_gbs", "fp32_gflops", "bf16_gflops", "fp64_gflops", None):
    r_d = {"family": "drawn", "kernel": str(key_d), "bytes": int(rd.integers(1, 2**36)), "flops": 0,
           "seconds": {"median": float(rd.uniform(1e-6, 2.0)), "min": float(rd.uniform(1e-7, 1e-6))},
           "value": float(rd.uniform(1, 200_000)), "limit_key": key_d, "metric": "gbs"}
    want_gbs = r_d["bytes"] / r_d["seconds"]["median"] / 1e9
    got_gbs = achieved_gbs(r_d)
    assert isinstance(got_gbs, (int, float)) and math.isclose(got_gbs, want_gbs, rel_tol=1e-9), msg(
        "08.drawn_gbs", "hidden: {nbytes:,} bytes in a median of {seconds:.3g} s: {got!r} GB/s, expected {want:.6g}",
        nbytes=r_d["bytes"], seconds=r_d["seconds"]["median"], got=got_gbs, want=want_gbs)
    limit_d = limits_d.get(key_d) if key_d else None
    want_frac = r_d["value"] / limit_d if limit_d else None
    got_frac = fraction_of_limit(fixture_d, r_d)
    ok = got_frac is None if want_frac is None else (got_frac is not None and math.isclose(got_frac, want_frac, rel_tol=1e-9))
    assert ok, msg("08.drawn_fraction", "hidden: value {value:.6g} against limit {key!r} = {limit!r}: {got!r}, expected {want!r}",
                   value=r_d["value"], key=key_d, limit=limit_d, got=got_frac, want=want_frac)
### END HIDDEN TESTS
print(msg("08.rates_all_visible", "achieved_gbs, fraction_of_limit: all visible tests passed."))

# %% [markdown] key="roofline"
# ## 2. The roofline
#
# A kernel that does `F` FLOPs while moving `B` bytes from DRAM has an **arithmetic intensity**
# `I = F / B` FLOP per byte. In time `t` it cannot beat either limit:
#
# `GFLOP/s <= min(peak GFLOP/s, I x bandwidth GB/s)`
#
# Drawn on log-log axes that is a roof: a slanted part (memory-bound: more intensity, more FLOP/s)
# meeting a flat part (compute-bound) at the **ridge point** `I* = peak / bandwidth`. For an H100 SXM
# in FP32, `66,900 / 3,352 = 20` FLOP per byte. Triad (0.08), a stencil (0.5) and a sum (0.125) sit
# far left of it: they can only go as fast as memory. A large matrix product (hundreds of FLOP per
# byte) sits right of it. The suite's sweep of FMA chains (`roofline.fma-k`: 8 bytes and `2k` FLOPs per
# element) traces the roof itself: its points climb the slant and flatten under the peak.

# %%
display(Image(data=roofline_png([results], title=msg("08.roofline_title", "Roofline: {label}", label=results["label"]))))

# %% [markdown] key="intensity-bound"
# ## Exercise 2: intensity and the bound (3 points)
#
# Write `intensity(result)`, the arithmetic intensity of a result in FLOP per byte from its `flops`
# and `bytes`, and `bound(intensity_value, peak_gflops, bandwidth_gbs)` that returns `"memory"` when
# the kernel sits left of the ridge point `peak_gflops / bandwidth_gbs` and `"compute"` otherwise
# (exactly at the ridge both limits meet: call it `"compute"`).

# %% nbgrader="solution" id="roofline"
def intensity(result):
    """FLOPs per byte of DRAM traffic."""
    ### BEGIN SOLUTION
    return result["flops"] / result["bytes"]
    ### END SOLUTION


def bound(intensity_value, peak_gflops, bandwidth_gbs):
    """'memory' left of the ridge point peak / bandwidth, else 'compute'."""
    ### BEGIN SOLUTION
    return "memory" if intensity_value < peak_gflops / bandwidth_gbs else "compute"
    ### END SOLUTION

# %% nbgrader="tests" id="roofline_tests" points=3
"""intensity matches every result with FLOPs in your results file; with the H100 SXM5 row of
techday.gpuspecs, triad is memory-bound and the FP32 matrix product compute-bound; hidden: the T4 and
A100 rows, a point exactly at the ridge, the sweep's intensities k / 4; and devices, intensities and
results drawn afresh at every grading (techday.draw)."""
import math

from techday.gpuspecs import by_name
from techday.i18n import msg

mine = json.loads(Path("bench-results.json").read_text())
with_flops = [r for r in mine["results"] if r.get("flops") and r.get("bytes")]
assert with_flops, msg("08.no_flops", "your results file has no kernel with FLOPs")
for r in with_flops:
    assert math.isclose(intensity(r), r["flops"] / r["bytes"], rel_tol=1e-12), msg(
        "08.intensity_wrong", "{family}.{kernel}: intensity {got!r} FLOP/byte, expected flops / bytes = {want!r}",
        family=r["family"], kernel=r["kernel"], got=intensity(r), want=r["flops"] / r["bytes"])
h100 = by_name("H100 SXM5")
triad_r = next(r for r in mine["results"] if (r["family"], r["kernel"]) == ("stream", "triad"))
mm_r = next(r for r in mine["results"] if (r["family"], r["kernel"]) == ("matmul", "fp32"))
assert bound(intensity(triad_r), h100.fp32_tflops * 1e3, h100.bandwidth_gbs) == "memory", msg("08.triad_h100", "triad on an H100")
assert bound(intensity(mm_r), h100.fp32_tflops * 1e3, h100.bandwidth_gbs) == "compute", \
    msg("08.matmul_h100", "FP32 matmul on an H100")
### BEGIN HIDDEN TESTS
t4, a100 = by_name("T4"), by_name("A100 40GB SXM")
ridge_t4 = t4.fp32_tflops * 1e3 / t4.bandwidth_gbs  # about 25 FLOP/byte
assert bound(ridge_t4 * 0.99, t4.fp32_tflops * 1e3, t4.bandwidth_gbs) == "memory"
assert bound(ridge_t4 * 1.01, t4.fp32_tflops * 1e3, t4.bandwidth_gbs) == "compute"
assert bound(4.0, 4000.0, 1000.0) == "compute", msg("08.hidden_at_ridge", "hidden: exactly at the ridge point is 'compute'")
assert bound(0.5, a100.fp32_tflops * 1e3, a100.bandwidth_gbs) == "memory", msg("08.hidden_stencil_a100", "hidden: a stencil on an A100")
assert bound(64.0, a100.fp32_tflops * 1e3, a100.bandwidth_gbs) == "compute"
for k in (1, 8, 128):
    assert math.isclose(intensity({"flops": 2 * k * 1000, "bytes": 8 * 1000}), k / 4), \
        msg("08.hidden_fma_intensity", "hidden: fma-{k} has k / 4", k=k)
# Drawn at every grading (techday.draw): the devices and intensities above are published with the course.
# Three devices whose ridges lie in three decades (0.25 to 4, 4 to 40, 40 to 400 FLOP/byte: no one fixed
# ridge classifies them all), each with a point 1.01 to 1.5 times below its ridge, one 1.01 to 1.5 times
# above it and one exactly on it (a ridge of quarters and a whole bandwidth: peak / bandwidth and
# intensity x bandwidth are exact).
import techday.draw

rd = techday.draw.rng("08.roofline_tests")
for low_d, high_d in ((1, 16), (16, 160), (160, 1_600)):
    bw_d, ridge_d = float(rd.integers(50, 8_001)), int(rd.integers(low_d, high_d)) / 4
    peak_d = ridge_d * bw_d
    for i_d in (ridge_d / float(rd.uniform(1.01, 1.5)), ridge_d * float(rd.uniform(1.01, 1.5)), ridge_d):
        want_d = "memory" if i_d < peak_d / bw_d else "compute"
        got_d = bound(i_d, peak_d, bw_d)
        assert got_d == want_d, msg("08.drawn_bound", "hidden: I = {i:.4g} FLOP/byte on a device of {peak:,.0f} GFLOP/s and "
                                    "{bw:,.0f} GB/s (ridge {ridge:.4g}): {got!r}, expected {want!r}",
                                    i=i_d, peak=peak_d, bw=bw_d, ridge=ridge_d, got=got_d, want=want_d)
for _ in range(3):
    r_d = {"flops": int(rd.integers(1, 2**40)), "bytes": int(rd.integers(1, 2**40))}
    assert math.isclose(intensity(r_d), r_d["flops"] / r_d["bytes"], rel_tol=1e-12), msg(
        "08.drawn_intensity", "hidden: {flops:,} FLOPs over {nbytes:,} bytes: {got!r} FLOP/byte, expected flops / bytes",
        flops=r_d["flops"], nbytes=r_d["bytes"], got=intensity(r_d))
### END HIDDEN TESTS
print(msg("08.roofline_all_visible", "intensity, bound: all visible tests passed."))

# %% [markdown] key="which-implementation-won"
# ## Exercise 3: which implementation won? (2 points)
#
# Write `best_implementation(doc, family, kernel)` that returns the `impl` name of the best result for
# that kernel among those with status `"ok"` (a wrong or skipped implementation has no figure, or one
# that must not count): the **highest** `value` for rates (`metric` `"gbs"` or `"gflops"`), the
# **lowest** for latencies (`metric` `"us"`). Return `None` when no implementation of the kernel was
# timed.

# %% nbgrader="solution" id="best"
def best_implementation(doc, family, kernel):
    """The impl with the best 'ok' figure for family.kernel, or None."""
    ### BEGIN SOLUTION
    ok = [r for r in doc["results"] if r["family"] == family and r["kernel"] == kernel and r["status"] == "ok"]
    if not ok:
        return None
    pick = min if ok[0]["metric"] == "us" else max
    return pick(ok, key=lambda r: r["value"])["impl"]
    ### END SOLUTION

# %% nbgrader="tests" id="best_tests" points=2
"""best_implementation agrees with your results file for triad and for every kernel timed in it; hidden:
a fixture file where a wrong implementation claims the largest figure, a latency (lower is better), a
rate in GFLOP/s (higher is better), and a kernel that was never timed; and a fixture file drawn afresh
at every grading (techday.draw)."""
from techday.i18n import msg

mine = json.loads(Path("bench-results.json").read_text())
timed = {(r["family"], r["kernel"]) for r in mine["results"] if r["status"] == "ok"}
assert ("stream", "triad") in timed, msg(
    "08.no_triad", "bench-results.json has no timed stream.triad: run the suite cell above again (it writes the file)")
for fam, ker in sorted(timed):
    rows = [r for r in mine["results"] if (r["family"], r["kernel"]) == (fam, ker) and r["status"] == "ok"]
    best = (min if rows[0]["metric"] == "us" else max)(rows, key=lambda r: r["value"])["impl"]
    got = best_implementation(mine, fam, ker)
    assert got == best, msg("08.best_wrong", "{family}.{kernel}: {got!r}, expected {want!r}", family=fam, kernel=ker, got=got,
                            want=best)
### BEGIN HIDDEN TESTS
fixture = {"fixture": True, "results": [
    {"family": "stream", "kernel": "triad", "impl": "numba-cuda", "status": "ok", "metric": "gbs", "value": 2900.0},
    {"family": "stream", "kernel": "triad", "impl": "cupy", "status": "ok", "metric": "gbs", "value": 2950.0},
    {"family": "stream", "kernel": "triad", "impl": "bogus", "status": "wrong", "metric": "gbs", "value": 9e9},
    {"family": "latency", "kernel": "empty-launch", "impl": "numba-cuda", "status": "ok", "metric": "us", "value": 9.5},
    {"family": "latency", "kernel": "empty-launch", "impl": "cupy", "status": "ok", "metric": "us", "value": 4.1},
    {"family": "latency", "kernel": "empty-launch", "impl": "torch", "status": "skipped", "metric": "us"},
    {"family": "matmul", "kernel": "bf16", "impl": "torch", "status": "skipped", "reason": "no GPU"},
    {"family": "matmul", "kernel": "fp32", "impl": "numpy", "status": "ok", "metric": "gflops", "value": 310.0},
    {"family": "matmul", "kernel": "fp32", "impl": "torch", "status": "ok", "metric": "gflops", "value": 45_000.0},
]}
assert best_implementation(fixture, "stream", "triad") == "cupy", msg("08.hidden_wrong_must_not_win", "hidden: a wrong implementation must not win")
assert best_implementation(fixture, "latency", "empty-launch") == "cupy", msg("08.hidden_lower_latency", "hidden: lower latency is better")
assert best_implementation(fixture, "matmul", "bf16") is None, msg("08.hidden_nothing_timed", "hidden: nothing timed, None")
assert best_implementation(fixture, "matmul", "fp32") == "torch", msg("08.hidden_higher_gflops", "hidden: a higher GFLOP/s is better")
# Drawn at every grading (techday.draw): the fixture above is published with the course. Five kernels of
# the suite (a rate in GB/s, one in GFLOP/s and a latency among them) with drawn implementations, figures
# and statuses (a wrong or skipped one may claim the best figure, and in the first kernel one does), in a
# drawn order, and three that were never timed; the expected winner is the rule above applied to the
# drawn rows.
import techday.draw

rd = techday.draw.rng("08.best_tests")
kernels_d = [("stream", "copy", "gbs"), ("stream", "triad", "gbs"), ("reduction", "sum", "gbs"),
             ("transpose", "padded", "gbs"), ("matmul", "fp32", "gflops"), ("matmul", "bf16", "gflops"),
             ("latency", "empty-launch", "us"), ("latency", "memcpy-small", "us")]
impls_d = ["numba-cuda", "cupy", "torch", "numpy", "numba-cpu", "triton"]
picks_d = [int(rd.integers(0, 4)), int(rd.integers(4, 6)), int(rd.integers(6, 8))]
picks_d += [int(k) for k in rd.permutation(len(kernels_d)) if int(k) not in picks_d][:2]
rows_d = []
for n_d, k in enumerate(rd.permutation(picks_d)):
    fam_d, ker_d, metric_d = kernels_d[int(k)]
    names_d = [impls_d[int(j)] for j in rd.permutation(len(impls_d))[:int(rd.integers(2, 6))]]
    for j, name_d in enumerate(names_d):
        status_d = "ok" if j == 0 or rd.random() < 0.7 else str(rd.choice(["wrong", "skipped"]))
        if n_d == 0 and j == len(names_d) - 1:
            status_d = str(rd.choice(["wrong", "skipped"]))
        value_d = float(rd.uniform(0.5, 10_000))
        if status_d != "ok" and (n_d == 0 or rd.integers(0, 2)):  # claims a figure better than any 'ok' one
            value_d = 1e-3 if metric_d == "us" else 1e9
        rows_d.append({"family": fam_d, "kernel": ker_d, "impl": name_d, "status": status_d, "metric": metric_d,
                       "value": value_d})
fixture_d = {"fixture": True, "results": [rows_d[int(i)] for i in rd.permutation(len(rows_d))]}
for fam_d, ker_d, _ in kernels_d:
    ok_d = [r for r in fixture_d["results"] if (r["family"], r["kernel"]) == (fam_d, ker_d) and r["status"] == "ok"]
    want_d = (min if ok_d[0]["metric"] == "us" else max)(ok_d, key=lambda r: r["value"])["impl"] if ok_d else None
    got_d = best_implementation(fixture_d, fam_d, ker_d)
    assert got_d == want_d, msg("08.drawn_best", "hidden: {family}.{kernel} among {rows}: {got!r}, expected {want!r}",
                                family=fam_d, kernel=ker_d, got=got_d, want=want_d,
                                rows=[(r["impl"], r["status"], round(r["value"], 3)) for r in fixture_d["results"]
                                      if (r["family"], r["kernel"]) == (fam_d, ker_d)])
### END HIDDEN TESTS
print(msg("08.best_all_visible", "best_implementation: all visible tests passed."))

# %% [markdown] key="questions-about-own-numbers"
# ## 3. Questions about your own numbers
#
# Answer for yourself, with the cell below to help (not graded):
#
# 1. What fraction of its DRAM limit did your triad reach? Which implementation won, and by how much?
#    On the CPU tier: did Numba's parallel triad beat NumPy's? Why can it (one pass, no temporaries),
#    and why may it not (arrays that fit in the cache, the start-up of its threads, cores busy with
#    other work)?
# 2. Where does the FP32 matrix product sit on your roofline, and what fraction of the FP32 peak did
#    cuBLAS reach? Why is the tiled Numba kernel slower, though both sit right of the ridge point,
#    where DRAM is not what limits them?
# 3. Which points sit far **below** their roof? Name one reason for each (atomics, latency, a poor
#    access pattern, launch overhead).

# %%
from techday.bench.report import UNITS  # "gbs" -> "GB/s"
from techday.i18n import msg
from techday.tier import shown_label  # the record's English label, as this run's language says it

for fam, ker in (("stream", "triad"), ("reduction", "sum"), ("matmul", "fp32"), ("transpose", "padded")):
    impl = best_implementation(results, fam, ker)
    if impl is None:
        continue
    r = next(x for x in results["results"] if (x["family"], x["kernel"], x["impl"]) == (fam, ker, impl))
    frac = fraction_of_limit(results, r)
    where = bound(intensity(r), *(by_name("H100 SXM5").fp32_tflops * 1e3, by_name("H100 SXM5").bandwidth_gbs)) \
        if r["flops"] else "memory"
    print(msg("08.best_line", "{family}.{kernel}: best {impl} at {value:.2f} {metric} [{label}]", family=fam, kernel=ker,
              impl=impl, value=r["value"], metric=UNITS.get(r["metric"], r["metric"]), label=shown_label(r["label"]))
          + (msg("08.of_the_limit", ", {fraction:.0%} of the limit", fraction=frac) if frac is not None
             else msg("08.no_device_limit", ", no device limit on this tier"))
          + msg("08.bound_on_h100", "; {where}-bound on an H100",
                where=msg("08.where_memory", "memory") if where == "memory" else msg("08.where_compute", "compute")))

# %% [markdown] key="summary"
# ## Summary
#
# - A benchmark is a count and a clock: bytes and FLOPs per call, the median of many timed
#   repetitions (warm-up and compilation outside), and the rate `amount / seconds / 1e9`.
# - A figure means most as a **fraction of the device's own limit**: DRAM bandwidth from the memory
#   clock and bus width, FP32 from SMs, lanes and clock. Triad reaching about 90 % is as good as it gets.
# - Arithmetic intensity (FLOP per byte) places a kernel on the roofline; left of the ridge point it is
#   memory-bound, and only fewer bytes make it faster; right of it, only better arithmetic does.
# - Check before you time: a wrong kernel's speed is no figure at all.
#
# ## Going further
#
# - `techday bench --quick` runs the same suite from a terminal and writes `results.json`,
#   `roofline.png` and `report.html`; without `--quick` it runs the full sizes.
# - Your instructor runs `techday bench leaderboard <course>/submitted` to rank the room's GPUs.
# - BabelStream (STREAM kernels in many models), mixbench (the roofline sweep), nvbandwidth (copies
#   between host and device), `triton.testing.do_bench` and `cupyx.profiler.benchmark` (timing).
# - Samuel Williams, Andrew Waterman and David Patterson, "Roofline: an insightful visual performance
#   model for multicore architectures", Communications of the ACM, 2009.
