"""Published specifications of common NVIDIA GPUs, and the two formulas that tie them together.

Introduced in lab 00 (the GPU tour), where a machine without a GPU uses a row of this table as its
worked example; the benchmark suite uses it to quote measured rates as a fraction of the peak.

Units follow what the CUDA driver reports (``cuDeviceGetAttribute``), converted from kHz to MHz:

- ``boost_clock_mhz``: the SM clock the driver reports as ``clock_rate`` (the maximum boost clock).
- ``memory_clock_mhz``: the driver's ``memory_clock_rate``. It counts one clock per two transfers,
  so a pin moves ``2 * memory_clock`` bits per second (double data rate).

Two formulas turn driver numbers into peaks; ``tests/unit/test_gpuspecs.py`` checks every row
against them:

- theoretical memory bandwidth, in bytes/s::

      2 (double data rate) * memory_clock_hz * bus_width_bits / 8

  This holds for HBM2/HBM2e/HBM3/HBM3e and GDDR6 as the driver reports the clock. GDDR6X (RTX 30
  and 40 series) signals four levels per clock (PAM4), but the driver reports a clock for which the
  same formula gives the published bandwidth (RTX 4090: 10501 MHz on 384 bits is 1008 GB/s).
- peak FP32 rate, in FLOP/s::

      sm_count * cores_per_sm(cc) * 2 (one FMA is two FLOPs) * boost_clock_hz

Every row agrees with its published bandwidth within 2 % and with its published FP32 rate within
3 %. Published figures come from NVIDIA's datasheets; where a datasheet rounds (H100 PCIe "2 TB/s")
the row keeps the figure that the clock gives and that GPU databases list (2039 GB/s). Memory clocks
match driver output (``nvidia-smi -q -d CLOCK``, nvbench's device summary) for H100 SXM5, H200, A100
40GB, A30, T4, V100 and RTX 4090. For the other rows they follow from the published per-pin data rate
the way drivers report it (L4: 12.5 Gb/s per pin, so 6250 MHz, reported as 6251) and from the enabled
bus width (H100 NVL and H200 enable 6016 of 6144 bits): check them against a real device when you
meet one. Checked on an H200 SXM (2026-12-04, driver 580.159.04): 132 SMs, 1980 / 3201 MHz, 6016 bits,
and 60 MiB of L2 (62,914,560 bytes; the table had said 50, the H100's, and the leaderboard refused the
real device as one whose attributes do not match its name).

A MIG slice, a "D", "Ti" or "Super" variant, or any name the table does not hold, is not matched:
:func:`lookup` returns ``None`` rather than another GPU's numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GpuSpec", "SPECS", "cores_per_sm", "lookup", "by_name"]


# FP32 lanes ("CUDA cores") per SM, by compute capability. Hopper (9.0) doubled the FP32 lanes of
# the A100 (8.0); Ampere consumer parts (8.6) and Ada (8.9) already had 128.
_CORES_BY_MAJOR = {3: 192, 5: 128, 7: 64, 10: 128, 12: 128}
_CORES_BY_CC = {(6, 0): 64, (6, 1): 128, (6, 2): 128, (8, 0): 64, (8, 6): 128, (8, 7): 128,
                (8, 9): 128, (9, 0): 128}


def dram_gbs(memory_clock_khz: float, bus_width_bits: int) -> float:
    """Theoretical DRAM bandwidth in GB/s (10^9 B/s) from the driver's memory clock (kHz, one clock per
    two transfers) and bus width: ``2 * memory_clock * bus_width / 8``. The one place this formula
    lives (the published rows, the benchmark limits and lab 07's speed bars all use it)."""
    return 2 * memory_clock_khz * 1e3 * bus_width_bits / 8 / 1e9


def fp32_tflops(sm_count: int, cc: tuple[int, int], clock_khz: float) -> float:
    """Theoretical FP32 peak in TFLOP/s: ``sm_count * cores_per_sm(cc) * 2 (an FMA) * clock``."""
    return sm_count * cores_per_sm(*cc) * 2 * clock_khz * 1e3 / 1e12


def cores_per_sm(cc_major: int, cc_minor: int) -> int:
    """FP32 lanes per streaming multiprocessor for compute capability ``cc_major.cc_minor``.

    3.x: 192, 5.x: 128, 6.0: 64, 6.1/6.2: 128, 7.x: 64, 8.0: 64, 8.6/8.7/8.9: 128, 9.0: 128,
    10.x and 12.x: 128. Raises ``ValueError`` for a compute capability not in that list, rather than
    guess. (Source: CUDA C++ Programming Guide, "Arithmetic Instructions" throughput table.)
    """
    if (cc_major, cc_minor) in _CORES_BY_CC:
        return _CORES_BY_CC[(cc_major, cc_minor)]
    if cc_major in _CORES_BY_MAJOR:
        return _CORES_BY_MAJOR[cc_major]
    from .i18n import msg

    raise ValueError(msg("techday.lanes_unknown", "FP32 lanes per SM are not known for compute capability {cc}",
                         cc=f"{cc_major}.{cc_minor}"))


@dataclass(frozen=True)
class GpuSpec:
    """One GPU model: published figures plus what the CUDA driver reports for it.

    ``model``, ``form`` and ``memory_gb`` are what :func:`lookup` matches a driver name against
    (``form`` is ``"sxm"``, ``"pcie"``, ``"nvl"`` or ``""`` for a card with one form).
    """

    name: str
    cc: tuple[int, int]
    sm_count: int
    boost_clock_mhz: int
    memory_clock_mhz: int
    bus_width_bits: int
    bandwidth_gbs: float
    fp32_tflops: float
    memory_gb: int
    memory_type: str
    l2_mib: int
    model: str
    form: str = ""

    @property
    def cores_per_sm(self) -> int:
        return cores_per_sm(*self.cc)

    @property
    def clock_khz(self) -> int:
        """The SM clock in the driver's unit (``clock_rate``, kHz)."""
        return self.boost_clock_mhz * 1000

    @property
    def memory_clock_khz(self) -> int:
        """The memory clock in the driver's unit (``memory_clock_rate``, kHz)."""
        return self.memory_clock_mhz * 1000

    @property
    def derived_bandwidth_gbs(self) -> float:
        """:func:`dram_gbs` of this row's memory clock and bus width."""
        return dram_gbs(self.memory_clock_khz, self.bus_width_bits)

    @property
    def derived_fp32_tflops(self) -> float:
        """:func:`fp32_tflops` at this row's boost clock."""
        return fp32_tflops(self.sm_count, self.cc, self.boost_clock_mhz * 1000)

    @property
    def ridge_flop_per_byte(self) -> float:
        """Arithmetic intensity where the roofline turns from memory-bound to compute-bound."""
        return self.fp32_tflops * 1e3 / self.bandwidth_gbs


def _row(name, cc, sms, boost, mem_clock, bus, bw, fp32, mem_gb, mem_type, l2, model, form=""):
    return GpuSpec(name, cc, sms, boost, mem_clock, bus, bw, fp32, mem_gb, mem_type, l2, model, form)


# Order matters where a driver name is ambiguous: the first row of a model is its default
# (a bare "H100" is the SXM5 part). Columns: name, cc, SMs, boost MHz, memory clock MHz, bus bits,
# GB/s, FP32 TFLOP/s, memory GB, memory type, L2 MiB, model, form.
SPECS: tuple[GpuSpec, ...] = (
    # Hopper (data centre)
    _row("H100 SXM5", (9, 0), 132, 1980, 2619, 5120, 3352, 66.9, 80, "HBM3", 50, "h100", "sxm"),
    _row("H100 PCIe", (9, 0), 114, 1755, 1593, 5120, 2039, 51.2, 80, "HBM2e", 50, "h100", "pcie"),
    _row("H100 NVL", (9, 0), 132, 1785, 2619, 6016, 3900, 60.0, 94, "HBM3", 50, "h100", "nvl"),
    _row("H200 SXM", (9, 0), 132, 1980, 3201, 6016, 4800, 66.9, 141, "HBM3e", 60, "h200", "sxm"),
    _row("H200 NVL", (9, 0), 132, 1785, 3201, 6016, 4800, 60.0, 141, "HBM3e", 60, "h200", "nvl"),
    # Ampere (data centre)
    _row("A100 40GB SXM", (8, 0), 108, 1410, 1215, 5120, 1555, 19.5, 40, "HBM2", 40, "a100", "sxm"),
    _row("A100 40GB PCIe", (8, 0), 108, 1410, 1215, 5120, 1555, 19.5, 40, "HBM2", 40, "a100", "pcie"),
    _row("A100 80GB SXM", (8, 0), 108, 1410, 1593, 5120, 2039, 19.5, 80, "HBM2e", 40, "a100", "sxm"),
    _row("A100 80GB PCIe", (8, 0), 108, 1410, 1512, 5120, 1935, 19.5, 80, "HBM2e", 40, "a100", "pcie"),
    _row("A30", (8, 0), 56, 1440, 1215, 3072, 933, 10.3, 24, "HBM2", 24, "a30"),
    _row("A10", (8, 6), 72, 1695, 6251, 384, 600, 31.2, 24, "GDDR6", 6, "a10"),
    # Ada (data centre)
    _row("L4", (8, 9), 58, 2040, 6251, 192, 300, 30.3, 24, "GDDR6", 48, "l4"),
    _row("L40S", (8, 9), 142, 2520, 9001, 384, 864, 91.6, 48, "GDDR6", 96, "l40s"),
    # Turing and Volta (data centre)
    _row("T4", (7, 5), 40, 1590, 5001, 256, 320, 8.1, 16, "GDDR6", 4, "t4"),
    _row("V100 SXM2", (7, 0), 80, 1530, 877, 4096, 900, 15.7, 16, "HBM2", 6, "v100", "sxm"),
    _row("V100 PCIe", (7, 0), 80, 1380, 877, 4096, 900, 14.0, 16, "HBM2", 6, "v100", "pcie"),
    # Desktop and workstation
    _row("RTX 4090", (8, 9), 128, 2520, 10501, 384, 1008, 82.6, 24, "GDDR6X", 72, "4090"),
    _row("RTX 3090", (8, 6), 82, 1695, 9751, 384, 936, 35.6, 24, "GDDR6X", 6, "3090"),
    _row("RTX A6000", (8, 6), 84, 1800, 8001, 384, 768, 38.7, 48, "GDDR6", 6, "a6000"),
)

# Words in driver names that say nothing about which row it is.
_FILLER = {"nvidia", "tesla", "geforce", "quadro", "rtx", "hbm2", "hbm2e", "hbm3", "hbm3e", "gddr6", "gddr6x"}
_FORMS = {"sxm": "sxm", "sxm2": "sxm", "sxm4": "sxm", "sxm5": "sxm", "pcie": "pcie", "nvl": "nvl"}
_MODELS = {s.model for s in SPECS}


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]


def by_name(name: str) -> GpuSpec:
    """The row whose ``name`` is exactly ``name`` (case-insensitive); ``KeyError`` otherwise."""
    for spec in SPECS:
        if spec.name.lower() == name.lower():
            return spec
    raise KeyError(f"no GPU named {name!r} in techday.gpuspecs; known: {', '.join(s.name for s in SPECS)}")


def lookup(name: str) -> GpuSpec | None:
    """Match a driver name (``"NVIDIA H100 80GB HBM3"``, ``"Tesla T4"``, ``"NVIDIA A100-SXM4-40GB"``)
    or a table name (``"H100 SXM5"``, ``"a100 80gb pcie"``) to a row, or return ``None``.

    The name is split into words. Exactly one must be a model the table knows (``h100``, ``a100``,
    ``4090``, ...); form words (``sxm4``, ``pcie``, ``nvl``) and a memory size (``80gb``) narrow the
    choice; brand and memory-type words are ignored. Any other word (``mig``, ``ti``, ``d``,
    ``super``, ``laptop``, ``1g``) means a different part, so nothing is matched. When the name
    leaves a choice (``"NVIDIA H100 80GB HBM3"`` fits the SXM5 and the PCIe card), the first row of
    that model wins: the SXM part, which is what the driver names that way.
    """
    words = _tokens(name)
    model, form, memory_gb = None, None, None
    for word in words:
        if word in _FILLER:
            continue
        if word in _MODELS and model is None:
            model = word
        elif word in _FORMS and form is None:
            form = _FORMS[word]
        elif re.fullmatch(r"\d+gb", word) and memory_gb is None:
            memory_gb = int(word[:-2])
        else:
            return None
    if model is None:
        return None
    rows = [s for s in SPECS if s.model == model]
    if form is not None:
        rows = [s for s in rows if s.form in (form, "")]
    if memory_gb is not None:
        # V100 comes with 16 or 32 GB and is otherwise the same part.
        rows = [s for s in rows if s.memory_gb == memory_gb or (s.model == "v100" and memory_gb == 32)]
    return rows[0] if rows else None
