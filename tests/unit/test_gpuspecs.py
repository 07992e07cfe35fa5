"""techday.gpuspecs: every row obeys the two formulas, and driver names find the right row."""

import pytest

from techday.gpuspecs import SPECS, by_name, cores_per_sm, lookup

REQUIRED = ["H100 SXM5", "H100 PCIe", "H200 SXM", "A100 40GB SXM", "A100 80GB SXM", "L4", "L40S", "T4",
            "V100 SXM2", "RTX 4090", "RTX 3090", "RTX A6000"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_bandwidth_follows_from_memory_clock_and_bus_width(spec):
    derived = 2 * spec.memory_clock_mhz * 1e6 * spec.bus_width_bits / 8 / 1e9
    assert derived == pytest.approx(spec.derived_bandwidth_gbs)
    assert abs(derived / spec.bandwidth_gbs - 1) <= 0.02, (
        f"{spec.name}: 2 x {spec.memory_clock_mhz} MHz x {spec.bus_width_bits} bit / 8 = {derived:.0f} GB/s, "
        f"published {spec.bandwidth_gbs} GB/s")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_fp32_peak_follows_from_sms_lanes_and_clock(spec):
    derived = spec.sm_count * cores_per_sm(*spec.cc) * 2 * spec.boost_clock_mhz * 1e6 / 1e12
    assert derived == pytest.approx(spec.derived_fp32_tflops)
    assert abs(derived / spec.fp32_tflops - 1) <= 0.03, (
        f"{spec.name}: {spec.sm_count} SMs x {cores_per_sm(*spec.cc)} x 2 x {spec.boost_clock_mhz} MHz = "
        f"{derived:.1f} TFLOP/s, published {spec.fp32_tflops}")


def test_anchor_rows_hold_the_published_numbers():
    h100 = by_name("H100 SXM5")
    assert (h100.sm_count, h100.boost_clock_mhz, h100.memory_clock_mhz, h100.bus_width_bits) == (132, 1980, 2619, 5120)
    assert (h100.bandwidth_gbs, h100.fp32_tflops, h100.cc) == (3352, 66.9, (9, 0))
    a100 = by_name("A100 40GB SXM")
    assert (a100.sm_count, a100.boost_clock_mhz, a100.memory_clock_mhz, a100.bus_width_bits) == (108, 1410, 1215, 5120)
    assert (a100.bandwidth_gbs, a100.fp32_tflops) == (1555, 19.5)
    t4 = by_name("T4")
    assert (t4.sm_count, t4.boost_clock_mhz, t4.memory_clock_mhz, t4.bus_width_bits) == (40, 1590, 5001, 256)
    assert (t4.bandwidth_gbs, t4.fp32_tflops) == (320, 8.1)
    assert h100.memory_clock_khz == 2_619_000 and h100.clock_khz == 1_980_000


def test_table_covers_the_common_gpus_once_each():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names))
    for name in REQUIRED:
        by_name(name)
    with pytest.raises(KeyError, match="no GPU named"):
        by_name("H300")


@pytest.mark.parametrize("cc, lanes", [
    ((3, 5), 192), ((5, 2), 128), ((6, 0), 64), ((6, 1), 128), ((6, 2), 128), ((7, 0), 64), ((7, 5), 64),
    ((8, 0), 64), ((8, 6), 128), ((8, 7), 128), ((8, 9), 128), ((9, 0), 128), ((10, 0), 128), ((12, 0), 128),
])
def test_cores_per_sm(cc, lanes):
    assert cores_per_sm(*cc) == lanes


@pytest.mark.parametrize("cc", [(2, 0), (8, 8), (11, 0)])
def test_cores_per_sm_refuses_to_guess(cc):
    with pytest.raises(ValueError, match="not known"):
        cores_per_sm(*cc)


@pytest.mark.parametrize("driver_name, row", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM5"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"),
    ("NVIDIA H200 NVL", "H200 NVL"),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB SXM"),
    ("NVIDIA A100-PCIE-40GB", "A100 40GB PCIe"),
    ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"),
    ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"),
    ("NVIDIA A30", "A30"),
    ("NVIDIA A10", "A10"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"),
    ("Tesla T4", "T4"),
    ("Tesla V100-SXM2-16GB", "V100 SXM2"),
    ("Tesla V100-SXM2-32GB", "V100 SXM2"),
    ("Tesla V100-PCIE-32GB", "V100 PCIe"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("NVIDIA GeForce RTX 3090", "RTX 3090"),
    ("NVIDIA RTX A6000", "RTX A6000"),
    # Table names and loose spellings.
    ("H100 SXM5", "H100 SXM5"),
    ("h100", "H100 SXM5"),
    ("a100 80gb pcie", "A100 80GB PCIe"),
    ("rtx-4090", "RTX 4090"),
])
def test_lookup_matches_driver_names(driver_name, row):
    spec = lookup(driver_name)
    assert spec is not None and spec.name == row, f"{driver_name!r} -> {spec and spec.name}, expected {row}"


@pytest.mark.parametrize("driver_name", [
    "NVIDIA GeForce RTX 4090 D",           # 114 SMs, not 128
    "NVIDIA GeForce RTX 3090 Ti",
    "NVIDIA GeForce RTX 4060 Laptop GPU",
    "NVIDIA H100 80GB HBM3 MIG 1g.10gb",   # a MIG slice has a fraction of the SMs
    "NVIDIA GH200 480GB",
    "NVIDIA L40",
    "NVIDIA A10G",
    "Tesla V100S-PCIE-32GB",
    "NVIDIA RTX 6000 Ada Generation",
    "NVIDIA A100-PCIE-24GB",
    "",
    "SIMULATOR",
])
def test_lookup_does_not_guess(driver_name):
    assert lookup(driver_name) is None


def test_ridge_point():
    t4 = by_name("T4")
    assert t4.ridge_flop_per_byte == pytest.approx(8.1e12 / 320e9)
