"""The limits a measured figure is compared with: computed from the device, checked against the table.

DRAM bandwidth and the FP32 rate come from the device attributes the driver reports
(:class:`techday.tier.GpuInfo`), with the two formulas of :mod:`techday.gpuspecs`::

    dram_gbs    = 2 * memory_clock_hz * bus_width_bits / 8 / 1e9
    fp32_tflops = sm_count * cores_per_sm(cc) * 2 * clock_hz / 1e12

and are cross-checked with the published row of :mod:`techday.gpuspecs` when the device's name
matches one. Dense tensor-core peaks cannot be derived from attributes alone (the FLOPs per clock
differ between data-centre and GeForce parts of one architecture), so they come from the published
figures below, keyed by the rows of :data:`techday.gpuspecs.SPECS`. On the CPU tier there is no
device limit: figures carry no fraction.
"""

from __future__ import annotations

import math
import re

from techday.gpuspecs import GpuSpec, dram_gbs, fp32_tflops, lookup

# Dense (not 2:4 sparse) tensor-core peaks in TFLOP/s, FP32 accumulate, from NVIDIA's datasheets and
# architecture whitepapers (a datasheet "with sparsity" figure is halved). GeForce parts run FP16/BF16
# with FP32 accumulate at half their FP16-accumulate rate; that is what cuBLAS uses by default.
# Parts without TF32 or BF16 units (Volta, Turing) have no entry for them.
TENSOR_TFLOPS: dict[str, dict[str, float]] = {
    "H100 SXM5": {"tf32": 494.7, "fp16": 989.4, "bf16": 989.4},
    "H100 PCIe": {"tf32": 378.0, "fp16": 756.0, "bf16": 756.0},
    "H100 NVL": {"tf32": 417.5, "fp16": 835.5, "bf16": 835.5},
    "H200 SXM": {"tf32": 494.7, "fp16": 989.4, "bf16": 989.4},
    "H200 NVL": {"tf32": 417.5, "fp16": 835.5, "bf16": 835.5},
    "A100 40GB SXM": {"tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
    "A100 40GB PCIe": {"tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
    "A100 80GB SXM": {"tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
    "A100 80GB PCIe": {"tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
    "A30": {"tf32": 82.0, "fp16": 165.0, "bf16": 165.0},
    "A10": {"tf32": 62.5, "fp16": 125.0, "bf16": 125.0},
    "L4": {"tf32": 60.0, "fp16": 121.0, "bf16": 121.0},
    "L40S": {"tf32": 183.0, "fp16": 362.0, "bf16": 362.0},
    "T4": {"fp16": 65.0},
    "V100 SXM2": {"fp16": 125.0},
    "V100 PCIe": {"fp16": 112.0},
    "RTX 4090": {"tf32": 82.6, "fp16": 165.2, "bf16": 165.2},
    "RTX 3090": {"tf32": 35.6, "fp16": 71.0, "bf16": 71.0},
    "RTX A6000": {"tf32": 77.4, "fp16": 154.8, "bf16": 154.8},
}

# The SM clock (MHz) at which NVIDIA's datasheet quotes a row's tensor-core peak, where it is not the
# row's boost clock. H100 SXM5 / H200 SXM: 989.4 TFLOP/s = 132 SMs x 4096 dense FP16 FLOP/clock x 1830 MHz;
# H100 PCIe: 756 TFLOP/s = 114 x 4096 x 1620 MHz. Scaling those peaks from the 1980 MHz boost clock would
# lower every limit by 8 % and overstate every fraction. Rows not listed quote the peak at the boost clock.
TENSOR_CLOCK_MHZ: dict[str, float] = {"H100 SXM5": 1830.0, "H200 SXM": 1830.0, "H100 PCIe": 1620.0}

# The host link of each row, in GB/s per direction: PCIe x16 at 8, 16 or 32 GT/s with 128b/130b
# coding (15.75, 31.5, 63.0). A host-to-device or device-to-host copy crosses it once, so no such
# figure can exceed it (an H200 SXM measured 52.8 and 54.1 GB/s pinned). The leaderboard bounds
# transfer figures with it; the DRAM bandwidth, 75 times more on an H200, bounds nothing there.
_GEN3, _GEN4, _GEN5 = 15.75, 31.5, 63.0
HOST_LINK_GBS: dict[str, float] = {
    "H100 SXM5": _GEN5, "H100 PCIe": _GEN5, "H100 NVL": _GEN5, "H200 SXM": _GEN5, "H200 NVL": _GEN5,
    "A100 40GB SXM": _GEN4, "A100 40GB PCIe": _GEN4, "A100 80GB SXM": _GEN4, "A100 80GB PCIe": _GEN4,
    "A30": _GEN4, "A10": _GEN4, "L4": _GEN4, "L40S": _GEN4, "T4": _GEN3, "V100 SXM2": _GEN3, "V100 PCIe": _GEN3,
    "RTX 4090": _GEN4, "RTX 3090": _GEN4, "RTX A6000": _GEN4,
}

# The GPUs that can be cut into MIG slices, with their compute slices (an A30 has 4, the others 7),
# and the most memory eighths a slice of g compute slices can own (NVIDIA's MIG user guide: on a
# 7-slice part 1g.5gb/1g.10gb, 2g.10gb, 3g.20gb, 4g.20gb and 7g.40gb on an A100 40GB, the same shares
# of 80, 94 and 141 GB on H100 and H200; on an A30 1g.6gb, 2g.12gb and 4g.24gb). Any other profile is
# not a MIG slice a driver reports.
MIG_SLICES: dict[str, int] = {
    "A100 40GB SXM": 7, "A100 40GB PCIe": 7, "A100 80GB SXM": 7, "A100 80GB PCIe": 7, "A30": 4,
    "H100 SXM5": 7, "H100 PCIe": 7, "H100 NVL": 7, "H200 SXM": 7, "H200 NVL": 7,
}
MIG_MAX_EIGHTHS: dict[int, dict[int, int]] = {7: {1: 2, 2: 2, 3: 4, 4: 4, 7: 8}, 4: {1: 2, 2: 4, 4: 8}}
# A slice holds about its share of the SMs, the larger of its compute share and its memory share
# (an H100 1g.10gb: 16 of 132 SMs; its 3g.40gb: 60, a little more than 3/7); more than this many
# times that share is not a slice of that size.
MIG_SM_SLACK = 1.15


def mig_problems(name: str, sm_count: int, spec: GpuSpec) -> list[str]:
    """Why a MIG device name and SM count are not a slice of ``spec`` (empty when they can be)."""
    prof = mig_profile(name)
    if prof is None:
        return []
    g, mem_gb = prof
    slices = MIG_SLICES.get(spec.name)
    if slices is None:
        return [f"the {spec.name} has no MIG mode"]
    most = MIG_MAX_EIGHTHS[slices].get(g)
    if most is None:
        return [f"no MIG profile of the {spec.name} has {g} compute slices"]
    problems = []
    eighths = 8 * mem_gb / spec.memory_gb
    if eighths > most + 0.25:
        problems.append(f"a {g}g slice of the {spec.name} owns at most {most} eighths of its memory, "
                        f"not {mem_gb} GB")
    share = max(g / slices, min(eighths, most) / 8)
    top = min(spec.sm_count, math.ceil(MIG_SM_SLACK * share * spec.sm_count))
    if sm_count > top:
        problems.append(f"a {g}g slice of the {spec.name} has at most {top} SMs, not {sm_count}")
    return problems


# A MIG slice ("NVIDIA A100-SXM4-40GB MIG 3g.20gb"): g compute slices of 7, and memory in eighths.
_MIG = re.compile(r"\bMIG\s+(\d+)g\.(\d+)gb\b", re.IGNORECASE)


def mig_profile(name: str) -> tuple[int, int] | None:
    """``(compute slices, memory GB)`` of a MIG device name, or None for a whole GPU."""
    m = _MIG.search(name or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def parent_spec(name: str) -> GpuSpec | None:
    """The published row of a device, or of the whole GPU a MIG slice is cut from."""
    if mig_profile(name):
        return lookup(_MIG.sub("", name).strip())
    return lookup(name)


def mig_shares(name: str, spec: GpuSpec | None) -> tuple[float, float] | None:
    """``(memory share, compute share)`` of a MIG slice: its memory slices of 8 (each owns an eighth
    of the memory controllers, so an eighth of the bandwidth) and its compute slices of 7."""
    prof = mig_profile(name)
    if prof is None:
        return None
    g, mem_gb = prof
    total = spec.memory_gb if spec else None
    eighths = max(1, min(8, round(8 * mem_gb / total))) if total else 8
    return eighths / 8, max(1, min(7, g)) / 7


# How far the attribute-derived limit may differ from the published one before the run says so.
AGREEMENT = 0.05


def device_limits(gpu) -> dict:
    """Limits of a :class:`~techday.tier.GpuInfo`, in GB/s and GFLOP/s, with the published row.

    Returns ``{"source", "dram_gbs", "fp32_gflops", "tf32_gflops", "fp16_gflops", "bf16_gflops",
    "published": {...} | None, "notes": [...]}``.
    """
    if gpu is None:
        return {"source": "none: CPU tier (no device limits; figures carry no fraction)", "dram_gbs": None,
                "fp32_gflops": None, "tf32_gflops": None, "fp16_gflops": None, "bf16_gflops": None,
                "published": None, "notes": []}
    notes = []
    bw = dram_gbs(gpu.memory_clock_rate_khz, gpu.global_memory_bus_width_bits) or None
    try:
        fp32 = fp32_tflops(gpu.multiprocessor_count, tuple(gpu.compute_capability), gpu.clock_rate_khz) * 1e3 or None
    except ValueError as exc:
        fp32 = None
        notes.append(str(exc))
    spec: GpuSpec | None = parent_spec(gpu.name)
    shares = mig_shares(gpu.name, spec)
    mem_share, sm_share = shares if shares else (1.0, 1.0)
    if shares and spec and gpu.multiprocessor_count:
        sm_share = min(1.0, gpu.multiprocessor_count / spec.sm_count)
    published = None
    limits = {"source": "device attributes", "dram_gbs": bw, "fp32_gflops": fp32,
              "tf32_gflops": None, "fp16_gflops": None, "bf16_gflops": None}
    if spec is not None:
        tensor = TENSOR_TFLOPS.get(spec.name, {})
        published = {"name": spec.name, "dram_gbs": spec.bandwidth_gbs, "fp32_gflops": spec.fp32_tflops * 1e3,
                     **{f"{k}_gflops": v * 1e3 for k, v in tensor.items()}}
        for key in ("dram_gbs", "fp32_gflops"):
            mine, theirs = limits[key], published[key]
            if mine is None:
                limits[key] = theirs
                notes.append(f"{key}: the device reported nothing usable; using the published {theirs:.0f}")
            elif abs(mine / theirs - 1) > AGREEMENT:
                notes.append(f"{key}: device attributes give {mine:.0f}, published {spec.name} {theirs:.0f} "
                             f"({mine / theirs - 1:+.0%}); clocks may be capped, or the part differs")
        tensor_clock_khz = TENSOR_CLOCK_MHZ.get(spec.name, spec.boost_clock_mhz) * 1e3
        for k in ("tf32", "fp16", "bf16"):
            if f"{k}_gflops" in published:
                # Scale the published tensor peak by the clock the device reports, relative to the clock
                # the datasheet quotes it at (a capped clock lowers it; a higher boost does not raise it).
                ratio = gpu.clock_rate_khz / tensor_clock_khz if gpu.clock_rate_khz else 1.0
                limits[f"{k}_gflops"] = published[f"{k}_gflops"] * min(ratio, 1.0) * sm_share
    else:
        notes.append(f"{gpu.name!r} is not in techday.gpuspecs: limits from device attributes only, "
                     "no tensor-core peak")
    if shares:
        # The driver reports the whole GPU's memory clock and bus width to a MIG slice; the slice owns
        # only its eighths of the memory controllers, so only that share of the bandwidth.
        if limits["dram_gbs"]:
            limits["dram_gbs"] *= mem_share
        notes.append(f"MIG slice: {mem_share:.3g} of the GPU's DRAM bandwidth, {sm_share:.3g} of its SMs")
        limits["mig"] = {"memory_share": mem_share, "sm_share": sm_share}
    limits["published"] = published
    limits["notes"] = notes
    return limits


def limit_for(limits: dict, key: str | None, intensity: float | None = None) -> float | None:
    """The limit a figure is compared with: a named limit, or ``roofline``, the roof at the kernel's
    intensity, ``min(fp32 peak, intensity x DRAM bandwidth)`` (in GFLOP/s)."""
    if not key or not isinstance(limits, dict):
        return None
    if key == "roofline":
        peak, bw = limits.get("fp32_gflops"), limits.get("dram_gbs")
        if not peak or not bw or not intensity:
            return None
        return min(peak, intensity * bw)
    value = limits.get(key)
    return value if isinstance(value, (int, float)) and value > 0 else None
