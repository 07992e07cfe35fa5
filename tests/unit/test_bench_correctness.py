"""Correctness that cannot be skipped, and noise that is said out loud.

Each test names the wrong answer it catches. No GPU here: the GPU-only paths (CUDA events, the busy
kernel, the read-only flush) are exercised by tests/gpu; the checks below run on the CPU tier and in
the CUDA simulator, and nothing here is reported as a GPU figure.
"""

import subprocess
import sys

import numpy as np

from techday.bench import runner
from techday.bench.core import CHUNK, Impl, Kernel, Plan, check, poison, time_host
from techday.bench.kit import TPB, reduction_blocks


def _kernel(n, make, **kw):
    base = dict(family="t", name="k", dtype="float64", size=f"n={n}", bytes=16 * n, flops=0,
                inputs=lambda: {"a": np.arange(n, dtype=np.float64)}, reference=lambda inp: inp["a"].copy(),
                impls=[Impl("numpy", "cpu", make)])
    return Kernel(**{**base, **kw})


def _run(k, tier="cpu", limits=None, sync=None):
    return runner._run_one(None, k, k.impls[0], tier, None, limits or {}, 0.01, None, sync, {}, False, False, {},
                           runner._lazy_data(k))


def test_a_kernel_that_computes_once_and_returns_early_is_wrong_after_timing():
    # Wrong answer caught: "computed once, then timed doing nothing" ranked at 311,410 GB/s.
    def lazy(inp):
        out = poison(1000, np.float64)
        done = []

        def run():
            if not done:
                np.copyto(out, inp["a"])
                done.append(1)

        return run, lambda: out

    rec = _run(_kernel(1000, lazy))
    assert rec["status"] == "wrong" and "wrong after timing" in rec["reason"] and "NaN" in rec["reason"]


def test_an_honest_kernel_passes_the_check_after_timing_and_reports_best_and_median():
    def honest(inp):
        out = poison(1000, np.float64)
        return (lambda: np.copyto(out, inp["a"])), (lambda: out)

    rec = _run(_kernel(1000, honest))
    assert rec["status"] == "ok" and "poisoned before each of 3 audit repetitions" in rec["recheck"]
    assert rec["best"] >= rec["value"] > 0  # the fastest repetition's figure, beside the median's
    assert rec["seconds"]["reps"] >= runner.MIN_REPS["cpu"]


def _works_when_poisoned(n):
    """An implementation that does its work only when its output holds the poison (it looks at one
    element), and otherwise returns at once, its last result still in place."""
    def make(inp):
        out = poison(n, np.float64)

        def run():
            if np.isnan(out[0]):
                np.copyto(out, inp["a"])

        return run, lambda: out

    return make


def test_a_kernel_that_works_only_when_its_outputs_are_poisoned_is_wrong():
    # Wrong answer caught: a kernel that looks for the poison and skips its work when the output already
    # holds a result passed both checks (the first call and the last timed repetition were poisoned, so
    # it worked there) and was timed doing nothing in between: "ok" at 77,295 GB/s on this 2-core CPU
    # tier (a 2,000,000-element triad). The audit repetitions after the timed ones, each after a fresh
    # poisoning, take as long as the work; the timed median does not.
    n = 200_000
    rec = _run(_kernel(n, _works_when_poisoned(n)))
    assert rec["status"] == "wrong" and "audit repetition" in rec["reason"] and "in two rounds" in rec["reason"], rec
    assert len(rec["seconds"]["audit"]) == 3 and min(rec["seconds"]["audit"]) > 3 * rec["seconds"]["median"]


def test_a_slow_first_round_of_audits_is_timed_again_not_called_wrong(monkeypatch):
    # The other way: an honest kernel whose audit repetitions fell in a slow spell of a shared machine
    # (up to 2.65 times its median in ten honest runs on this 2-core CPU tier) is timed once more, and
    # its second round is what the file records.
    from techday.bench.core import Sample

    rounds = []
    real = runner.time_host

    def flaky(run, **kw):
        sample = real(run, **kw)
        rounds.append(sample)
        if len(rounds) == 1:
            sample.audit = [10 * sample.median] * len(sample.audit)
        return sample

    def honest(inp):
        out = poison(1000, np.float64)
        return (lambda: np.copyto(out, inp["a"])), (lambda: out)

    monkeypatch.setattr(runner, "time_host", flaky)
    rec = _run(_kernel(1000, honest))
    assert len(rounds) == 2 and isinstance(rounds[1], Sample)
    assert rec["status"] == "ok" and rec["seconds"]["samples"] == rounds[1].seconds
    assert any("timed twice" in w for w in rec["warnings"]), rec["warnings"]


def test_every_repetition_is_recorded_and_the_summary_is_theirs():
    # Wrong answer caught: a results file whose median, fastest and spread had nothing behind them (a
    # figure could be written by hand with no repetition ever timed). Each timed figure now records
    # its repetitions in order and its audit repetitions, and the summary is computed from them.
    import statistics

    from techday.bench.schema import AUDIT_REPS
    from techday.measure import relative_spread

    def honest(inp):
        out = poison(1000, np.float64)
        return (lambda: np.copyto(out, inp["a"])), (lambda: out)

    sec = _run(_kernel(1000, honest))["seconds"]
    xs = sec["samples"]
    assert len(xs) == sec["reps"] >= runner.MIN_REPS["cpu"] and len(sec["audit"]) == AUDIT_REPS
    assert (sec["median"], sec["min"], sec["max"], sec["spread"]) == (statistics.median(xs), min(xs), max(xs),
                                                                     relative_spread(xs))


def test_one_wrong_element_anywhere_in_a_large_output_is_found():
    # Wrong answer caught: one wrong element at an index a fixed sample never looked at reported "ok".
    n = 2 * CHUNK + 12345
    ref = np.linspace(1.0, 2.0, n)
    got = ref.copy()
    where = int(np.random.default_rng().integers(CHUNK, n))
    got[where] *= 1.001
    ok, _, message = check(_kernel(n, None, dtype="float64"), got, ref)
    assert not ok and f"first at ({where},)" in message and "1 of" in message


def test_a_figure_above_the_physical_limit_is_wrong_not_a_record():
    # Wrong answer caught: a broken timer (or check) printed as a record figure. The "GPU" here is a
    # host function with a fake limit of 1e-6 GB/s: only the flagging logic is under test.
    def honest(inp):
        out = poison(1000, np.float64)
        return (lambda: np.copyto(out, inp["a"])), (lambda: out)

    k = _kernel(1000, honest, timer="host")
    k.impls = [Impl("fake-gpu", "gpu", honest)]
    rec = _run(k, tier="gpu", limits={"dram_gbs": 1e-6}, sync=lambda: None)
    assert rec["status"] == "wrong" and "above the physical limit" in rec["reason"]


def test_poison_goes_back_in_before_the_last_timed_repetition_only():
    calls = []
    sample = time_host(lambda: calls.append("run"), budget=0.0, lo=4, hi=4, before_last=lambda: calls.append("poison"))
    # One estimate call, then 4 timed repetitions with the poison before the last one.
    assert calls == ["run", "run", "run", "run", "poison", "run"] and len(sample.seconds) == 4


def test_audit_repetitions_are_spread_among_the_timed_ones_each_after_a_poisoning():
    # Wrong answers caught: outputs poisoned only once, before the one repetition that was checked; and
    # three audits back to back after the loop, which on this loaded 2-core machine (a load of 12 to 15)
    # all fell in one slow spell of a parallel Numba kernel (30 to 50 ms a call, its median 0.1 ms),
    # twice in a row: two honest figures of ten honest runs were called wrong. Spread over the loop, each
    # after its own poisoning, the last after the last timed repetition; never part of the figure.
    from techday.bench.core import audit_points

    calls = []
    sample = time_host(lambda: calls.append("run"), budget=0.0, lo=6, hi=6, audit=lambda: calls.append("poison"),
                       audits=3)
    assert audit_points(6, 3) == [2, 4, 6]
    assert calls == ["run"] + ["run"] * 2 + ["poison", "run"] + ["run"] * 2 + ["poison", "run"] + ["run"] * 2 + [
        "poison", "run"]
    assert len(sample.seconds) == 6 and len(sample.audit) == 3 and sample.to_dict()["audit"] == sample.audit
    assert audit_points(10, 3) == [3, 7, 10] and audit_points(2, 3) == [1, 1, 2] and audit_points(200, 3)[-1] == 200


def test_the_simulator_plan_is_past_one_block_in_every_dimension():
    # Wrong answer caught: a kernel wrong only past 1,000 elements (or past its first block or tile)
    # reported "checked".
    plan = Plan.simulator()
    assert plan.n > 1000 and plan.n > 4 * TPB and plan.n > reduction_blocks(plan) * TPB
    assert plan.side > 32 and plan.mm > 64 and plan.hist_n > reduction_blocks(plan) * TPB


def test_a_cuda_kernel_wrong_past_1000_elements_is_caught_in_the_simulator():
    code = r"""
import os; os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
import types
import numpy as np
from numba import cuda
from techday.bench import runner
from techday.bench.core import Impl, Kernel, Plan
from techday.bench.kit import device_poison, grid

@cuda.jit
def copy_first_1000(a, c):
    i = cuda.grid(1)
    if i < c.shape[0] and i < 1000:
        c[i] = a[i]

def kernels(plan):
    n = plan.n
    def make(inp):
        d_a, d_c = cuda.to_device(inp["a"]), device_poison(n, np.float64)
        return (lambda: copy_first_1000[grid(n)](d_a, d_c)), d_c.copy_to_host
    return [Kernel("t", "copy", "float64", f"n={n}", 16 * n, 0, lambda: {"a": np.arange(n, dtype=np.float64)},
                   lambda inp: inp["a"].copy(), [Impl("numba-cuda", "gpu", make)])]

module = types.SimpleNamespace(__name__="t", kernels=kernels)
big = Plan.for_device("cpu", True)
k = kernels(big)[0]
rec = runner._simulator_check(module, k, k.impls[0], runner._base(k, k.impls[0]), {}, big)
print(rec["status"], rec["reason"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("wrong") and "wrong in the simulator at n=1237" in out.stdout, out.stdout


def test_reduction_grids_follow_the_resident_threads_per_sm():
    # Wrong answer caught: 8 blocks of 256 threads per SM on a cc 8.6 / 8.9 part, which holds 6.
    ada = Plan.for_device("gpu", True, l2_bytes=72 * 2**20, sm_count=128)
    assert reduction_blocks(ada) == 8 * 128
    ada.threads_per_sm = 1536
    assert reduction_blocks(ada) == 6 * 128


def test_grid_stride_grids_come_from_the_occupancy_api(monkeypatch):
    # Wrong answers caught: a grid that ignores what the occupancy API says for the compiled kernel (a
    # kernel whose registers or shared memory allow 3 blocks of 256 per SM, not 8), and a failing or
    # missing API (the simulator) that breaks the run instead of falling back to the estimate.
    from numba import config

    from techday.bench.kit import resident_blocks

    plan = Plan.for_device("gpu", True, l2_bytes=50 * 2**20, sm_count=132)
    asked = []

    class Compiled:
        def max_cooperative_grid_blocks(self, tpb):
            asked.append(tpb)
            return 3 * 132

    class Kernel:
        def typeof_pyval(self, value):
            return type(value).__name__

        def compile(self, sig):
            assert sig == ("ndarray", "ndarray")
            return Compiled()

    class Broken(Kernel):
        def compile(self, sig):
            raise RuntimeError("no CUDA context")

    monkeypatch.setattr(config, "ENABLE_CUDASIM", 0)
    args = (np.zeros(4), np.zeros(1))
    assert resident_blocks(Kernel(), args, plan) == 3 * 132 and asked == [TPB]
    assert resident_blocks(Broken(), args, plan) == reduction_blocks(plan) == 8 * 132
    monkeypatch.setattr(config, "ENABLE_CUDASIM", 1)
    assert resident_blocks(Kernel(), args, plan) == 8 * 132 and asked == [TPB], "the simulator has no occupancy API"


def test_load_and_spread_warnings():
    # Wrong answer caught: spreads of 26 % to 6,122 % printed as if they were figures to trust.
    assert "machine load 6.00 on 2 cores" in runner.load_warnings({"before": 5.0, "after": 6.0, "cpu_count": 2})[0]
    assert runner.load_warnings({"before": 0.2, "after": 0.3, "cpu_count": 2}) == []
    assert runner.load_warnings({"before": None, "after": None, "cpu_count": 2}) == []

    def jittery(inp):
        out = poison(1000, np.float64)
        state = {"i": 0}

        def run():
            state["i"] += 1
            if state["i"] % 2:
                sum(range(200_000))  # every other call is slow: a spread far above 10 %
            np.copyto(out, inp["a"])

        return run, lambda: out

    rec = _run(_kernel(1000, jittery))
    assert rec["status"] == "ok" and any("spread" in w and "noisy" in w for w in rec["warnings"])


def test_the_cupy_stencil_and_histogram_compile_and_the_stencil_divides_in_32_bits():
    # Wrong answer caught: a 64-bit integer division per stencil point (slow on every GPU), and CuPy
    # sources that only a GPU would have found not to compile. NVRTC compiles them here, without one.
    import ast

    import pytest

    from techday import cudasrc
    from techday.bench.families import benchmarks_dir

    def spec(family):  # read from the source: importing a family here would import Numba's CUDA target
        tree = ast.parse((benchmarks_dir() / f"{family}.py").read_text())
        node = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CUPY_SPEC")
        return ast.literal_eval(node.value)

    ok, why = cudasrc.nvrtc_status()
    if not ok:
        pytest.skip(f"NVRTC is not installed: {why}")
    stencil = spec("stencil")
    ptx = cudasrc.compile_ptx(cudasrc.elementwise_source(*stencil, {"a": np.float32, "out": np.float32}), "s.cu")
    assert "div.s32" in ptx and "div.s64" not in ptx and "rem.s64" not in ptx
    hist = spec("histogram")
    ptx = cudasrc.compile_ptx(cudasrc.elementwise_source(*hist, {}), "h.cu")
    assert "atom.global.add" in ptx or "red.global.add" in ptx


def test_the_busy_kernel_covers_the_hosts_enqueueing():
    # Wrong answer caught: a fixed 200 us sleep ahead of K back-to-back Python launches of ~30 us each
    # (numba-cuda's measured launch cost on an H200): the GPU idles inside the events and the host's
    # time is counted as the kernel's.
    from techday.bench.core import Busy

    busy = Busy.__new__(Busy)
    busy.n = busy.floor = 200
    busy.cover(100 * 30e-6)  # 100 calls of 30 us
    assert busy.n == 9000 and busy.covers(0.003) and not busy.covers(0.0095)
    busy.cover(0.0)
    assert busy.n == 200, "never below the floor"
    busy.cover(5.0)
    assert busy.n == Busy.MAX_US, "never a sleep of seconds"


def test_device_timing_mechanics_in_the_simulator():
    # Wrong answers caught: a flush that writes (dirty lines drain inside the next timed kernel), and the
    # poison placed anywhere but before the last timed group of calls. The simulator's events return
    # -1 ms, so only the mechanics are checked here, never a time; the sleeping kernel uses
    # cuda.nanosleep, which the simulator lacks (it is compiled for sm_80 and sm_90 in test_bench_ptx).
    code = r"""
import os; os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
import numpy as np
from numba import cuda
from techday.bench.core import _flush_kernel, time_device
buf = cuda.to_device(np.zeros(1000, dtype=np.int32)); out = cuda.to_device(np.full(1, 7, np.int64))
_flush_kernel()[4, 256](buf, out)
assert out.copy_to_host()[0] == 7 and not buf.copy_to_host().any(), "the flush wrote"
calls = []
s = time_device(lambda: calls.append("run"), budget=0.0, lo=3, hi=3, before_last=lambda: calls.append("poison"),
                warmup=0.0)
k = s.calls
assert k > 1 and len(s.seconds) == 3, (k, len(s.seconds))  # a warm kernel: K calls per event pair
assert calls[-k - 1] == "poison" and calls.count("poison") == 1, calls[-k - 2:]
# Audit repetitions among the timed ones (after the 2nd and the 4th of 4): each the same K calls, after
# its own poisoning.
calls.clear()
s3 = time_device(lambda: calls.append("run"), budget=0.0, lo=4, hi=4, audit=lambda: calls.append("poison"), audits=2,
                 warmup=0.0)
k3 = s3.calls
assert len(s3.seconds) == 4 and len(s3.audit) == 2, (len(s3.seconds), s3.audit)
group = ["run"] * k3
assert calls[-(6 * k3 + 2):] == group * 2 + ["poison"] + group + group * 2 + ["poison"] + group, calls[-6 * k3 - 4:]
# The busy kernel sleeps long enough to cover the host's enqueueing of all K calls (Busy.cover).
from techday.bench.core import Busy
class FakeBusy(Busy):
    def __init__(self):
        self.n = self.floor = 200
        self.launched = []
    def __call__(self):
        self.launched.append(self.n)
b = FakeBusy()
s2 = time_device(lambda: None, budget=0.0, lo=3, hi=3, busy=b, warmup=0.0)
assert len(b.launched) == 3 and s2.calls > 100, (b.launched, s2.calls)
assert 200 < b.launched[0] <= Busy.MAX_US and s2.uncovered <= 3, (b.launched, s2.calls, s2.uncovered)
print("ok", k)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr[-2000:]


def test_timed_copies_other_than_pageable_ones_are_enqueued_on_a_stream():
    # Wrong answer caught: a pinned or device-to-device copy made with the plain (stream 0) call, which
    # may hold the host until the copy ends, so the events would time Python too (the device-to-device
    # copy was such a call and read 15 % of an H200's bandwidth). Pageable copies stay synchronous: that
    # is what they measure. Run in the simulator, where only the stream argument is looked at.
    code = r"""
import os; os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
from numba.cuda.simulator.cudadrv import devicearray as d
from techday.bench.core import Plan
from techday.bench.families import load
seen = []
for name in ("copy_to_device", "copy_to_host"):
    def spy(self, *args, _f=getattr(d.FakeCUDAArray, name), **kw):
        seen.append(kw.get("stream", args[1] if len(args) > 1 else 0))
        return _f(self, *args, **kw)
    setattr(d.FakeCUDAArray, name, spy)
kernels = load("transfer").kernels(Plan.simulator())
for k in kernels:
    inp = k.inputs()
    run, result = k.impls[0].make(inp)
    del seen[:]
    run()
    enqueued = bool(seen) and all(s != 0 for s in seen)
    print(k.name, "stream" if enqueued else "plain", len(seen))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    modes = dict(line.split()[:2] for line in out.stdout.splitlines())
    assert modes == {"h2d-pageable": "plain", "h2d-pinned": "stream", "d2h-pageable": "plain",
                     "d2h-pinned": "stream", "d2d": "stream"}, out.stdout
