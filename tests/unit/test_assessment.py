"""techday.assessment: the speed bars of the track assessment (lab 07) and the rule they follow;
techday.imageref: the NumPy references its tests compare kernels with."""

import contextlib
import io
from types import SimpleNamespace

import numpy as np
import pytest

from techday.assessment import (
    Rule,
    ThresholdError,
    _main,
    computed_rows,
    load_thresholds,
    theoretical_bandwidth_gbs,
)
from techday.gpuspecs import SPECS, by_name
from techday.imageref import (
    binomial_weights,
    blur_reference,
    equalization_lut_reference,
    histogram_reference,
    pipeline_reference,
    sample_image,
)
from tests.conftest import ROOT

THRESHOLDS = ROOT / "course" / "assessment_thresholds.toml"
REQUIRED = ["H100 SXM5", "H100 PCIe", "H200 SXM", "A100 40GB SXM", "A100 80GB SXM", "L4", "L40S", "A10", "T4",
            "V100 SXM2", "RTX 4090", "RTX 3090", "RTX A6000"]
GOOD = """
[rule]
shape = [100, 200]
bytes_per_pixel = 5
slack = 10
launches = 2
launch_overhead_ms = 0.5
measured_slack = 4
[gpus]
"T4" = { limit_ms = 3.0, bandwidth_gbs = 320, source = "computed" }
"""


@pytest.fixture(scope="module")
def limits():
    return load_thresholds(THRESHOLDS)


def test_every_required_gpu_has_a_row(limits):
    assert set(REQUIRED) <= set(limits.gpus)
    assert set(limits.gpus) == {s.name for s in SPECS}, "one row per GPU of techday.gpuspecs"


def test_computed_rows_follow_the_rule_and_the_published_bandwidth(limits):
    expected = computed_rows(limits.rule)
    for name, entry in limits.gpus.items():
        if entry.source != "computed":
            continue
        assert entry.bandwidth_gbs == by_name(name).bandwidth_gbs, f"{name}: bandwidth differs from gpuspecs"
        assert entry.limit_ms == pytest.approx(expected[name]["limit_ms"], abs=0.006), (
            f"{name}: {entry.limit_ms} ms, the rule gives {expected[name]['limit_ms']} ms: "
            "run `python -m techday.assessment --table` and paste the rows")


def test_the_file_says_its_limits_are_computed_and_states_the_rule():
    text = THRESHOLDS.read_text(encoding="utf-8")
    # Wrong answer caught: a table that claims measured limits, or hides which GPU set the slack.
    assert "COMPUTED FROM ONE MEASUREMENT" in text and "H200 (2026-12-04" in text and "1.955 ms" in text
    assert "limit_ms = slack * pixels * bytes_per_pixel / bandwidth + launches * launch_overhead_ms" in text
    assert "Recalibrate" in text and "calibrate(" in text


def test_rule_arithmetic():
    rule = Rule((1000, 2000), 5, 50, 5, 0.1, 4)
    # 2e6 px * 5 B = 1e7 B at 1000 GB/s = 0.01 ms; x 50 = 0.5 ms; + 5 x 0.1 ms
    assert rule.traffic_ms(1000) == pytest.approx(0.01)
    assert rule.limit_ms(1000) == pytest.approx(1.0)
    assert rule.limit_ms(2000) < rule.limit_ms(1000)
    with pytest.raises(ValueError):
        rule.limit_ms(0)


@pytest.mark.parametrize("driver_name, row", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM5"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H200", "H200 SXM"),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB SXM"),
    ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
    ("Tesla T4", "T4"),
    ("Tesla V100-SXM2-32GB", "V100 SXM2"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"),
    ("NVIDIA A10", "A10"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("NVIDIA GeForce RTX 3090", "RTX 3090"),
    ("NVIDIA RTX A6000", "RTX A6000"),
    ("rtx 4090", "RTX 4090"),
])
def test_known_gpu_gets_its_row(limits, driver_name, row):
    bar = limits.limit_for(driver_name, bandwidth_gbs=1.0)  # a bandwidth is ignored when the table knows the GPU
    assert bar.gpu == row and bar.limit_ms == limits.gpus[row].limit_ms and bar.source == "computed"
    assert row in bar.describe()


@pytest.mark.parametrize("driver_name", ["NVIDIA GeForce RTX 5090", "NVIDIA A100-SXM4-40GB MIG 1g.5gb",
                                         "NVIDIA GeForce RTX 4090 D", "NVIDIA B200"])
def test_unknown_gpu_falls_back_to_the_rule(limits, driver_name):
    bar = limits.limit_for(driver_name, bandwidth_gbs=1792)
    assert bar.source == "fallback" and bar.limit_ms == limits.rule.limit_ms(1792)
    assert "1792 GB/s" in bar.describe()
    with pytest.raises(ValueError, match="bandwidth"):
        limits.limit_for(driver_name)


def test_fallback_from_driver_clock_and_bus_width_matches_gpuspecs():
    spec = by_name("H100 SXM5")
    gpu = SimpleNamespace(memory_clock_rate_khz=spec.memory_clock_khz, global_memory_bus_width_bits=spec.bus_width_bits)
    assert theoretical_bandwidth_gbs(gpu) == pytest.approx(spec.derived_bandwidth_gbs)


def test_a_measured_row_is_accepted(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(GOOD + '"NVIDIA X1" = { limit_ms = 0.75, source = "measured", note = "reference 0.19 ms" }\n')
    bar = load_thresholds(path).limit_for("nvidia x1")
    assert bar.limit_ms == 0.75 and bar.source == "measured" and "0.19" in bar.note


@pytest.mark.parametrize("text, complaint", [
    ("[rule\nshape = 1", "t.toml"),
    ("", "[rule]"),
    (GOOD.replace("shape = [100, 200]", "shape = [100]"), "rule.shape"),
    (GOOD.replace("slack = 10", "slack = -10"), "rule.slack"),
    (GOOD.replace("launches = 2", "launches = 2.5"), "rule.launches"),
    (GOOD.replace("limit_ms = 3.0", "limit_ms = \"fast\""), 'gpus."T4".limit_ms'),
    (GOOD.replace('source = "computed"', 'source = "guessed"'), 'gpus."T4".source'),
    (GOOD.replace(", bandwidth_gbs = 320", ""), "bandwidth_gbs"),
    (GOOD.replace('"T4" = {', '"T4" = 3.0 #'), 'gpus."T4"'),
])
def test_malformed_file_names_the_file_and_the_problem(tmp_path, text, complaint):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ThresholdError) as err:
        load_thresholds(path)
    assert str(path) in str(err.value) and complaint in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ThresholdError, match="nope.toml"):
        load_thresholds(tmp_path / "nope.toml")


def test_table_command_prints_the_rows_of_the_file(limits):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert _main(["--table", "--file", str(THRESHOLDS)]) == 0
    text = THRESHOLDS.read_text(encoding="utf-8")
    for line in out.getvalue().splitlines():
        assert line in text, f"the file lacks the computed row {line}"


# techday.imageref

def test_binomial_weights():
    assert binomial_weights(3).tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    assert binomial_weights(5).sum() == 256 and binomial_weights(5).dtype == np.int32
    with pytest.raises(ValueError):
        binomial_weights(4)


def test_sample_image_is_offline_and_tiles_to_any_shape():
    cam = sample_image("camera")
    assert cam.shape == (512, 512) and cam.dtype == np.uint8
    big = sample_image("camera", (700, 1100), origin=(3, 5))
    assert big.shape == (700, 1100) and big.flags.c_contiguous
    assert np.array_equal(big[:509, :507], cam[3:, 5:]) and np.array_equal(big[509:, :507][:3], cam[:3, 5:])
    with pytest.raises(ValueError):
        sample_image("astronaut")


def test_blur_reference_agrees_with_scipy_nearest_mode():
    from scipy import ndimage

    img = sample_image("coins", (37, 53), origin=(100, 100))
    for w in (binomial_weights(3), binomial_weights(5), np.array([[0, 1, 0], [2, 4, 1], [0, 3, 5]])):
        acc = ndimage.correlate(img.astype(np.int64), w.astype(np.int64), mode="nearest")
        total = int(w.sum())
        assert np.array_equal(blur_reference(img, w), (acc + total // 2) // total)
    assert np.array_equal(blur_reference(np.full((3, 4), 9, np.uint8), binomial_weights(7)), np.full((3, 4), 9))


def test_equalization_lut_reference():
    one = np.zeros(256, np.int64)
    one[40] = 5
    assert np.array_equal(equalization_lut_reference(one), np.arange(256))
    hist = histogram_reference(sample_image("camera"))
    lut = equalization_lut_reference(hist)
    present = np.flatnonzero(hist)
    assert lut[present[0]] == 0 and lut[255] == 255 and (np.diff(lut.astype(int)) >= 0).all()
    with pytest.raises(ValueError):
        equalization_lut_reference(np.zeros(256))


def test_pipeline_reference_spreads_the_levels():
    img = sample_image("moon")
    out = pipeline_reference(img, binomial_weights(5))
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert out.min() == 0 and out.max() == 255 and out.std() > img.std()


PTX_PROBE = r"""
import os, sys
os.environ.pop("NUMBA_ENABLE_CUDASIM", None)
import numba
from numba import cuda, types
from numba.cuda import compile_ptx
from techday.course.labsrc import read_lab, strip_solution_markers

nb, _ = read_lab(sys.argv[1])
ns = {"cuda": cuda, "numba": numba}
for cell in nb.cells:
    if cell.id in ("blur_kernel", "histogram_kernel", "lut_kernel", "pipeline"):
        # Undecorated Python functions: compile_ptx compiles them for a GPU, no device needed.
        exec(strip_solution_markers(cell.source).replace("@cuda.jit\n", ""), ns)
u8, i16, i32 = (types.Array(t, 2, "C") for t in (types.uint8, types.int16, types.int32))
h32, l8 = types.Array(types.int32, 1, "C"), types.Array(types.uint8, 1, "C")
for name, sig in [("blur_kernel", (u8, i32, u8)), ("blur_kernel", (u8, i32, i16)), ("histogram_kernel", (u8, h32)),
                  ("lut_kernel", (h32, l8)), ("apply_lut_kernel", (u8, l8, u8))]:
    for cc in ((7, 5), (9, 0)):
        compile_ptx(ns[name], sig, cc=cc)
print("compiled")
"""


@pytest.mark.slow
def test_assessment_solution_kernels_compile_for_a_real_gpu():
    """The simulator runs Python; this checks that lab 07's solution kernels also type-check and compile
    to PTX for sm_75 and sm_90 (NVVM from the CUDA 12 wheels, no GPU needed)."""
    import os
    import subprocess
    import sys

    lab = ROOT / "labs" / "07-accelerated-assessment" / "07-accelerated-assessment.py"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", PTX_PROBE, str(lab)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "compiled" in out.stdout, out.stderr[-3000:]
