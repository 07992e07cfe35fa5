"""The harness: checking with poisoned outputs, limits from device attributes, the plan, the families."""

import math

import numpy as np
import pytest

from techday.bench import families
from techday.bench.core import Impl, Kernel, Plan, check, poison
from techday.bench.limits import TENSOR_TFLOPS, device_limits, limit_for
from techday.gpuspecs import SPECS, by_name
from techday.tier import GpuInfo


def _kernel(**kw):
    base = dict(family="t", name="k", dtype="float32", size="n", bytes=8, flops=2, inputs=dict, reference=None, impls=[])
    return Kernel(**{**base, **kw})


def test_poisoned_output_that_was_never_written_fails():
    k = _kernel()
    out = poison(10, np.float32)
    out[:9] = 1.0
    ok, err, message = check(k, out, np.ones(10))
    assert not ok and math.isinf(err) and "NaN" in message


def test_elementwise_bound_per_dtype_and_normwise_check():
    k = _kernel(dtype="float32")
    ref = np.linspace(1, 2, 100)
    assert check(k, (ref * (1 + 2e-6)).astype(np.float32), ref)[0]
    ok, _, message = check(k, ref * (1 + 1e-3), ref)
    assert not ok and "first at (0,)" in message
    assert not check(_kernel(dtype="int32"), np.array([1, 2, 4]), np.array([1, 2, 3]))[0]
    k = _kernel(dtype="float16", check="normwise")
    assert check(k, ref * 1.001, ref)[0] and not check(k, ref * 1.1, ref)[0]


def _gpu(spec, **kw):
    return GpuInfo(0, kw.get("name", "NVIDIA H100 80GB HBM3"), spec.cc, spec.memory_gb * 2**30, spec.sm_count,
                   kw.get("clock", spec.clock_khz), spec.memory_clock_khz, spec.bus_width_bits, spec.l2_mib * 2**20,
                   1024, 2048, 32, 232448, True, 1)


def test_limits_from_attributes_match_the_published_row():
    spec = by_name("H100 SXM5")
    lim = device_limits(_gpu(spec))
    assert lim["dram_gbs"] == pytest.approx(3352, rel=0.01) and lim["fp32_gflops"] == pytest.approx(66900, rel=0.01)
    assert lim["published"]["name"] == "H100 SXM5" and lim["bf16_gflops"] == pytest.approx(989400)
    assert lim["notes"] == []
    capped = device_limits(_gpu(spec, clock=spec.clock_khz // 2))
    # NVIDIA quotes the H100 SXM5's 989.4 TFLOP/s at 1830 MHz, not the 1980 MHz boost clock: a device held
    # at 990 MHz has 990/1830 of it (scaling from 1980 would give half, and overstate every fraction).
    assert capped["bf16_gflops"] == pytest.approx(989400 * 990 / 1830) and "clocks may be capped" in capped["notes"][0]
    assert device_limits(None)["dram_gbs"] is None
    unknown = device_limits(_gpu(spec, name="NVIDIA Mystery 9000"))
    assert unknown["published"] is None and unknown["bf16_gflops"] is None and unknown["dram_gbs"] > 0


def test_tensor_table_extends_gpuspecs_rows():
    names = {s.name for s in SPECS}
    assert set(TENSOR_TFLOPS) <= names
    for name, peaks in TENSOR_TFLOPS.items():
        assert all(v >= by_name(name).fp32_tflops for v in peaks.values()), name  # GeForce TF32 = FP32


def test_roofline_limit_is_the_roof_at_the_intensity():
    lim = {"dram_gbs": 1000.0, "fp32_gflops": 20000.0}
    assert limit_for(lim, "roofline", 2.0) == 2000.0 and limit_for(lim, "roofline", 100.0) == 20000.0
    assert limit_for(lim, None) is None and limit_for({}, "roofline", 1.0) is None


def test_gpu_plan_sizes_are_several_times_the_l2():
    plan = Plan.for_device("gpu", True, l2_bytes=50 * 2**20, sm_count=132)
    assert plan.n * 8 >= 4 * 50 * 2**20 and plan.side**2 * 4 >= 4 * 50 * 2**20
    big = Plan.for_device("gpu", True, l2_bytes=256 * 2**20, sm_count=160)
    assert big.n * 8 >= 8 * 256 * 2**20


def test_every_family_loads_and_has_cpu_or_gpu_implementations(tmp_path):
    import subprocess
    import sys

    # In a fresh process with the simulator on, as the CPU tier runs them (Numba CUDA must not be
    # imported before the tier is chosen).
    code = ("import os; os.environ['NUMBA_ENABLE_CUDASIM']='1'\n"
            "from techday.bench import families\nfrom techday.bench.core import Plan\n"
            "plan = Plan.simulator()\n"
            "for f in families.FAMILIES:\n"
            "    ks = families.load(f).kernels(plan)\n"
            "    assert ks, f\n"
            "    for k in ks:\n"
            "        assert k.impls and all(i.device in ('gpu', 'cpu') for i in k.impls), k.key\n"
            "        assert k.metric in ('gbs', 'gflops', 'us'), k.key\n"
            "    print(f, len(ks), sorted({i.name for k in ks for i in k.impls}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "stream 5" in out.stdout and "numba-cpu" in out.stdout


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown benchmark family"):
        families.select(["stream,nope"])
    assert families.select(["matmul", "stream"]) == ["stream", "matmul"]


def test_a_wrong_implementation_is_reported_and_not_timed(monkeypatch):
    from techday.bench import runner

    def wrong(inp):
        out = poison(4, np.float64)

        def run():
            out[:3] = inp["a"][:3]  # forgets the last element

        return run, lambda: out

    def right(inp):
        out = poison(4, np.float64)
        return (lambda: np.copyto(out, inp["a"])), (lambda: out)

    k = _kernel(dtype="float64", bytes=64, flops=0, inputs=lambda: {"a": np.arange(4.0)},
                reference=lambda inp: inp["a"].copy(), impls=[Impl("numpy", "cpu", wrong)])
    data = runner._lazy_data(k)
    rec = runner._run_one(None, k, k.impls[0], "cpu", None, {}, 0.01, None, None, {}, False, False, {}, data)
    assert rec["status"] == "wrong" and "not timed" in rec["reason"] and "seconds" not in rec
    k.impls = [Impl("numpy", "cpu", right)]
    rec = runner._run_one(None, k, k.impls[0], "cpu", None, {}, 0.01, None, None, {}, False, False, {}, data)
    assert rec["status"] == "ok" and rec["seconds"]["reps"] >= 3 and rec["fraction"] is None and rec["label"] == "CPU"


def test_spread_is_the_same_rule_for_labs_and_benchmarks():
    from techday.bench.core import Sample
    from techday.labtools import Timing, relative_spread

    few = [1.0, 1.2]  # two runs that disagree by 20 %: never reported as 0 % spread
    many = [1.0, 1.0, 1.1, 1.2, 1.4, 2.0]
    assert relative_spread(few) == pytest.approx(0.2 / 1.1)
    assert relative_spread([]) == 0.0 and relative_spread([1.0]) == 0.0
    for xs in (few, many):
        assert Sample(seconds=xs).spread == Timing("t", xs, "CPU").spread == relative_spread(xs) > 0


def test_labs_and_benchmarks_hold_results_to_one_table_of_bounds():
    """One timing type and one table of error bounds (techday/measure.py) for both. Wrong answers
    caught: a float64 result computed in float32 (both refuse it), an error three times the dtype's
    bound passing, or an error of a third of it failing, in the labs' check, and a copy of the table
    drifting apart in either place."""
    from techday import labtools, measure
    from techday.bench import core

    assert labtools.Timing is measure.Timing and issubclass(core.Sample, measure.Timing)
    assert labtools.relative_spread is measure.relative_spread
    rng = np.random.default_rng(0)
    exact = rng.random(4096) * 3.0 + 1.0
    in_float32 = exact.astype(np.float32).astype(np.float64)
    with pytest.raises(AssertionError, match="elements differ"):
        labtools.assert_close(in_float32, exact)
    ok, err, _ = check(_kernel(dtype="float64"), in_float32, exact)
    assert not ok and 1e-12 < err < 1e-6
    # The same dtype, the same bound, whichever side asks.
    for dtype in ("float64", "float32", "float16"):
        assert measure.rtol_for(np.dtype(dtype)) == measure.RTOL[dtype]
        with pytest.raises(AssertionError):
            labtools.assert_close(exact.astype(dtype) * (1 + 3 * measure.RTOL[dtype]), exact.astype(dtype))
        labtools.assert_close(exact.astype(dtype) * (1 + 0.3 * measure.RTOL[dtype]), exact.astype(dtype))
    # A float64 sum of many terms in another order is held to the normwise bound, and passes.
    terms = rng.random((1024, 1024))
    by_rows = terms.sum(axis=1).sum()
    in_order = np.float64(0.0)
    for x in terms.ravel()[:200_000]:
        in_order += x
    in_order += terms.ravel()[200_000:].sum()
    ok, err, _ = check(_kernel(dtype="float64", check="normwise"), np.array([in_order]), np.array([by_rows]))
    assert ok and err <= measure.NORMWISE_RTOL["float64"]
    assert measure.rtol_for("tf32", normwise=True) == 5e-3 and measure.rtol_for(np.int32) == 0.0
