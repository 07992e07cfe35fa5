"""The speed bar of the accelerated track's assessment (lab 07), per GPU model.

``course/assessment_thresholds.toml`` holds a time limit in milliseconds for the assessment's speed
workload (one image of a fixed shape, blurred, histogram-equalised, on the device) for each GPU
model of :mod:`techday.gpuspecs`, and the rule those limits come from::

    limit_ms = slack * pixels * bytes_per_pixel / bandwidth + launches * launch_overhead_ms

``bytes_per_pixel * pixels`` is the least memory traffic of the pipeline, so the first term is
``slack`` times the time that traffic takes at the device's memory bandwidth. A GPU the table does
not name gets the same rule with a bandwidth the caller supplies: measured in the notebook with a
copy kernel (:func:`measure_copy_bandwidth_gbs`), or computed from the clock and bus width the
driver reports (:func:`theoretical_bandwidth_gbs`).

Usage (the lab does this in its speed test)::

    limits = load_thresholds()
    bar = limits.limit_for(lab.gpu.name, bandwidth_gbs=measure_copy_bandwidth_gbs())
    assert median_ms <= bar.limit_ms, bar.describe()

Recalibrating: the table's rows are computed from published bandwidths, not measured. On a GPU,
:func:`calibrate` times the notebook's reference pipeline and a copy kernel and returns the row to
paste into the file (``source = "measured"``); ``python -m techday.assessment --table`` prints the
computed rows again after a change of the rule.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ThresholdError", "Rule", "Bar", "Thresholds", "load_thresholds", "default_path",
           "theoretical_bandwidth_gbs", "computed_rows", "measure_copy_bandwidth_gbs", "calibrate"]

SOURCES = ("computed", "measured")


class ThresholdError(ValueError):
    """The thresholds file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class Rule:
    """How a limit follows from a bandwidth (see the module docstring)."""

    shape: tuple[int, int]
    bytes_per_pixel: float
    slack: float
    launches: int
    launch_overhead_ms: float
    measured_slack: float

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    def traffic_ms(self, bandwidth_gbs: float) -> float:
        """Time the pipeline's least memory traffic takes at ``bandwidth_gbs`` (10^9 B/s), in ms."""
        return self.pixels * self.bytes_per_pixel / (bandwidth_gbs * 1e9) * 1e3

    def limit_ms(self, bandwidth_gbs: float) -> float:
        if not bandwidth_gbs > 0:
            raise ValueError(f"a bandwidth must be positive, not {bandwidth_gbs!r}")
        return round(self.slack * self.traffic_ms(bandwidth_gbs) + self.launches * self.launch_overhead_ms, 2)


@dataclass(frozen=True)
class Bar:
    """The limit that applies to one device, and where it came from."""

    limit_ms: float
    gpu: str
    source: str  # "computed", "measured" (table rows) or "fallback" (rule at a given bandwidth)
    note: str

    def describe(self) -> str:
        return f"speed bar {self.limit_ms:.2f} ms for {self.gpu} ({self.source}: {self.note})"


@dataclass(frozen=True)
class Entry:
    limit_ms: float
    source: str
    bandwidth_gbs: float | None
    note: str


@dataclass
class Thresholds:
    path: Path
    rule: Rule
    gpus: dict[str, Entry]

    def entry_for(self, gpu_name: str) -> tuple[str, Entry] | None:
        """The table row for a driver name (``"NVIDIA H100 80GB HBM3"``) or a table name, or ``None``."""
        from .gpuspecs import lookup

        for key, entry in self.gpus.items():
            if key.lower() == gpu_name.strip().lower():
                return key, entry
        spec = lookup(gpu_name)
        if spec is not None and spec.name in self.gpus:
            return spec.name, self.gpus[spec.name]
        return None

    def limit_for(self, gpu_name: str, bandwidth_gbs: float | None = None) -> Bar:
        """The speed bar for ``gpu_name``: its table row, else the rule at ``bandwidth_gbs``.

        Raises ``ValueError`` when the GPU is not in the table and no bandwidth was given.
        """
        found = self.entry_for(gpu_name)
        if found is not None:
            key, entry = found
            return Bar(entry.limit_ms, key, entry.source, entry.note or f"table row {key!r} of {self.path.name}")
        if bandwidth_gbs is None:
            raise ValueError(f"{gpu_name!r} is not in {self.path}; give its memory bandwidth for the fallback rule")
        limit = self.rule.limit_ms(bandwidth_gbs)
        return Bar(limit, gpu_name, "fallback",
                   f"not in {self.path.name}; rule at {bandwidth_gbs:.0f} GB/s: {self.rule.slack:g} x "
                   f"{self.rule.traffic_ms(bandwidth_gbs):.3f} ms + {self.rule.launches} x "
                   f"{self.rule.launch_overhead_ms:g} ms")


def default_path() -> Path:
    from .course.syllabus import find_root

    return find_root() / "course" / "assessment_thresholds.toml"


def _number(table: dict, key: str, where: str, path: Path, integer: bool = False) -> float:
    value = table.get(key)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ThresholdError(f"{path}: {where}.{key} must be {kind}, not {value!r}")
    return value


def load_thresholds(path: Path | str | None = None) -> Thresholds:
    """Read and check the thresholds file. Any problem raises :class:`ThresholdError` naming it."""
    path = Path(path) if path is not None else default_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThresholdError(f"{path}: {exc}") from None
    rule_t, gpus_t = data.get("rule"), data.get("gpus")
    if not isinstance(rule_t, dict) or not isinstance(gpus_t, dict) or not gpus_t:
        raise ThresholdError(f"{path}: needs a [rule] table and a non-empty [gpus] table")
    shape = rule_t.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise ThresholdError(f"{path}: rule.shape must be [rows, cols] of positive integers, not {shape!r}")
    rule = Rule(shape=(shape[0], shape[1]),
                bytes_per_pixel=_number(rule_t, "bytes_per_pixel", "rule", path),
                slack=_number(rule_t, "slack", "rule", path),
                launches=int(_number(rule_t, "launches", "rule", path, integer=True)),
                launch_overhead_ms=_number(rule_t, "launch_overhead_ms", "rule", path),
                measured_slack=_number(rule_t, "measured_slack", "rule", path))
    gpus = {}
    for name, row in gpus_t.items():
        where = f'gpus."{name}"'
        if not isinstance(row, dict):
            raise ThresholdError(f"{path}: {where} must be a table such as {{ limit_ms = 1.5, source = \"computed\" }}")
        source = row.get("source")
        if source not in SOURCES:
            raise ThresholdError(f"{path}: {where}.source must be one of {', '.join(SOURCES)}, not {source!r}")
        bandwidth = _number(row, "bandwidth_gbs", where, path) if "bandwidth_gbs" in row else None
        if source == "computed" and bandwidth is None:
            raise ThresholdError(f"{path}: {where}: a computed row states the bandwidth_gbs it was computed from")
        gpus[name] = Entry(limit_ms=_number(row, "limit_ms", where, path), source=source,
                           bandwidth_gbs=bandwidth, note=str(row.get("note", "")))
    return Thresholds(path=path, rule=rule, gpus=gpus)


def theoretical_bandwidth_gbs(gpu) -> float:
    """``2 * memory_clock * bus_width / 8`` from what the driver reports (a :class:`techday.tier.GpuInfo`),
    in GB/s: the formula :mod:`techday.gpuspecs` checks every published row against."""
    from .gpuspecs import dram_gbs

    return dram_gbs(gpu.memory_clock_rate_khz, gpu.global_memory_bus_width_bits)


def computed_rows(rule: Rule) -> dict[str, dict]:
    """The table as the rule computes it from the published bandwidths of :mod:`techday.gpuspecs`."""
    from .gpuspecs import SPECS

    return {s.name: {"limit_ms": rule.limit_ms(s.bandwidth_gbs), "bandwidth_gbs": s.bandwidth_gbs,
                     "source": "computed"} for s in SPECS}


def measure_copy_bandwidth_gbs(nbytes: int = 1 << 28, repeat: int = 10) -> float:
    """GPU only: device-to-device copy bandwidth in GB/s (read + write), median of ``repeat`` runs
    of a Numba copy kernel on ``nbytes`` (default 256 MiB, beyond any L2 cache), timed with events."""
    import numpy as np
    from numba import config, cuda

    from .labtools import time_cuda

    if config.ENABLE_CUDASIM:
        from .i18n import msg

        raise RuntimeError(msg("techday.bandwidth_gpu_only",
                               "the simulator has no memory bandwidth to measure: GPU tier only"))

    @cuda.jit
    def copy_kernel(src, dst):
        for i in range(cuda.grid(1), src.shape[0], cuda.gridsize(1)):
            dst[i] = src[i]

    n = nbytes // 4
    src = cuda.to_device(np.ones(n, np.float32))
    dst = cuda.device_array_like(src)
    blocks = 32 * cuda.get_current_device().MULTIPROCESSOR_COUNT
    t = time_cuda(lambda: copy_kernel[blocks, 256](src, dst), repeat=repeat, what="copy kernel")
    return 2 * n * 4 / t.median / 1e9


def calibrate(pipeline, make_buffers, thresholds: Thresholds | None = None, repeat: int = 20) -> str:
    """GPU only: measure this device and return its ``[gpus]`` row, to paste into the thresholds file.

    ``pipeline(*buffers)`` is the reference (solution) pipeline on device buffers, and
    ``make_buffers(shape)`` allocates them for the rule's shape (the solution notebook defines both).
    The row's limit is ``measured_slack`` times the reference's median time, and never below the
    fallback rule at the measured copy bandwidth::

        from techday.assessment import calibrate
        print(calibrate(equalize_device, speed_buffers))   # in the solution notebook, on the GPU
    """
    from numba import cuda

    from .labtools import time_cuda

    thresholds = thresholds or load_thresholds()
    rule = thresholds.rule
    bandwidth = measure_copy_bandwidth_gbs()
    buffers = make_buffers(rule.shape)
    t = time_cuda(pipeline, *buffers, repeat=repeat, what="reference pipeline")
    median_ms = t.median * 1e3
    limit = round(max(rule.measured_slack * median_ms, rule.limit_ms(bandwidth)), 2)
    name = cuda.get_current_device().name
    name = name.decode() if isinstance(name, bytes) else name
    return (f'"{name}" = {{ limit_ms = {limit}, bandwidth_gbs = {bandwidth:.0f}, source = "measured", '
            f'note = "reference {median_ms:.3f} ms (median of {repeat}), copy {bandwidth:.0f} GB/s" }}')


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m techday.assessment",
                                 description="Print the assessment's speed bars as the rule computes them.")
    ap.add_argument("--table", action="store_true", help="print the [gpus] rows computed from gpuspecs")
    ap.add_argument("--file", default=None, help="thresholds file (default: course/assessment_thresholds.toml)")
    args = ap.parse_args(argv)
    limits = load_thresholds(args.file)
    if args.table:
        for name, row in computed_rows(limits.rule).items():
            print(f'"{name}" = {{ limit_ms = {row["limit_ms"]}, bandwidth_gbs = {row["bandwidth_gbs"]:g}, '
                  f'source = "computed" }}')
    else:
        for name, entry in limits.gpus.items():
            print(f"{name:16s} {entry.limit_ms:8.2f} ms  ({entry.source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
