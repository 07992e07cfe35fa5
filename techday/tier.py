"""Tier detection: which machine is this lab or benchmark running on?

Two tiers, one rule: every result says where it was produced.

- ``gpu``: a CUDA device is visible through the NVIDIA driver. Numba kernels, CuPy and PyTorch
  run on it; this is the only tier whose timings are GPU figures.
- ``cpu``: no usable CUDA device (or ``cpu`` was asked for). Numba's CUDA simulator is switched on
  *before* Numba is imported, array code uses NumPy, PyTorch runs on the CPU. Results are checked;
  timings are CPU or simulator figures and are labelled so.

Detection talks to the driver library (``libcuda``) through :mod:`ctypes`, so it never imports Numba,
CuPy or PyTorch: importing Numba first would fix the simulator switch too early.
Introduced in lab 00 (the GPU tour); every lab calls :func:`techday.setup` in its first code cell.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field

TIERS = ("gpu", "cpu")
TIER_CHOICES = ("auto",) + TIERS

# CUdevice_attribute values from cuda.h (stable across CUDA 11, 12 and 13).
_ATTR = {
    "clock_rate_khz": 13,
    "multiprocessor_count": 16,
    "memory_clock_rate_khz": 36,
    "global_memory_bus_width_bits": 37,
    "l2_cache_bytes": 38,
    "max_threads_per_multiprocessor": 39,
    "compute_capability_major": 75,
    "compute_capability_minor": 76,
    "max_shared_memory_per_block_optin": 97,
    "warp_size": 10,
    "max_threads_per_block": 1,
    "pci_bus_id": 33,
    "pci_device_id": 34,
    "ecc_enabled": 32,
}


class TierError(RuntimeError):
    """The requested tier cannot be provided on this machine (for example ``gpu`` without a GPU)."""


@dataclass
class GpuInfo:
    """One CUDA device as the driver reports it."""

    index: int
    name: str
    compute_capability: tuple[int, int]
    total_memory_bytes: int
    multiprocessor_count: int
    clock_rate_khz: int
    memory_clock_rate_khz: int
    global_memory_bus_width_bits: int
    l2_cache_bytes: int
    max_threads_per_block: int
    max_threads_per_multiprocessor: int
    warp_size: int
    max_shared_memory_per_block_optin: int
    ecc_enabled: bool
    pci_bus_id: int
    uuid: str = ""

    @property
    def cc(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    @property
    def memory_gib(self) -> float:
        return self.total_memory_bytes / 2**30

    def fingerprint(self) -> str:
        """A short hash that identifies this physical device (UUID when the driver gives one)."""
        basis = self.uuid or f"{self.name}|{self.cc}|{self.total_memory_bytes}|{self.pci_bus_id}"
        return hashlib.sha256(basis.encode()).hexdigest()[:12]


@dataclass
class TierInfo:
    """What :func:`detect` found, and the tier chosen from it."""

    tier: str
    requested: str
    reason: str
    simulator: bool
    gpus: list[GpuInfo] = field(default_factory=list)
    driver_version: str | None = None
    cuda_driver_api: str | None = None
    cuda_runtime: str | None = None
    host: str = field(default_factory=platform.node)
    cpu: str = field(default_factory=lambda: platform.processor() or platform.machine())
    cpu_count: int = field(default_factory=lambda: os.cpu_count() or 1)
    python: str = field(default_factory=lambda: platform.python_version())

    @property
    def gpu(self) -> GpuInfo | None:
        """The device the lab uses (the first visible one), or ``None`` on the CPU tier."""
        return self.gpus[0] if self.tier == "gpu" and self.gpus else None

    def to_dict(self) -> dict:
        d = asdict(self)
        for g, gd in zip(self.gpus, d["gpus"]):
            gd["compute_capability"] = g.cc
            gd["fingerprint"] = g.fingerprint()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _version_str(v: int) -> str:
    """CUDA encodes versions as 1000*major + 10*minor (12040 is 12.4)."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def _load_libcuda():
    names = ["libcuda.so.1", "libcuda.so", "nvcuda.dll"]
    found = ctypes.util.find_library("cuda")
    if found:
        names.insert(0, found)
    errors = []
    for name in names:
        try:
            return ctypes.CDLL(name), None
        except OSError as exc:
            errors.append(str(exc))
    from .i18n import msg

    return None, msg("techday.reason_no_libcuda",
                     "the NVIDIA driver library (libcuda) was not found: no NVIDIA driver on this machine")


def _load_cudart():
    """The CUDA runtime the Python packages would use: wheel-installed first, then the system's."""
    candidates = []
    for base in sys.path:
        candidates += sorted(glob.glob(os.path.join(base, "nvidia", "cuda_runtime", "lib", "libcudart.so*")))
        candidates += sorted(glob.glob(os.path.join(base, "nvidia", "cu*", "lib", "libcudart.so*")))
    for prefix in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"):
        if prefix:
            candidates += sorted(glob.glob(os.path.join(prefix, "lib64", "libcudart.so*")))
    for name in candidates + ["libcudart.so"]:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def probe_gpus() -> tuple[list[GpuInfo], dict, str | None]:
    """Ask the driver for every visible device. Returns (gpus, versions, reason-if-none)."""
    versions: dict = {"driver_version": None, "cuda_driver_api": None, "cuda_runtime": None}
    lib, why = _load_libcuda()
    if lib is None:
        return [], versions, why
    rc = lib.cuInit(0)
    if rc != 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        from .i18n import msg

        return [], versions, msg("techday.reason_cuinit_failed",
                                 "the NVIDIA driver is present but cuInit failed with error {rc}{hint}", rc=rc, hint=hint)
    v = ctypes.c_int()
    if lib.cuDriverGetVersion(ctypes.byref(v)) == 0:
        versions["cuda_driver_api"] = _version_str(v.value)
    versions["driver_version"] = _nvidia_driver_version()
    cudart = _load_cudart()
    if cudart is not None:
        rv = ctypes.c_int()
        try:
            if cudart.cudaRuntimeGetVersion(ctypes.byref(rv)) == 0:
                versions["cuda_runtime"] = _version_str(rv.value)
        except AttributeError:
            pass
    n = ctypes.c_int()
    if lib.cuDeviceGetCount(ctypes.byref(n)) != 0 or n.value == 0:
        from .i18n import msg

        return [], versions, msg("techday.reason_no_device", "the NVIDIA driver reports no CUDA device")
    gpus = []
    for i in range(n.value):
        dev = ctypes.c_int()
        if lib.cuDeviceGet(ctypes.byref(dev), i) != 0:
            continue
        name = ctypes.create_string_buffer(256)
        lib.cuDeviceGetName(name, 256, dev)
        mem = ctypes.c_size_t()
        total = getattr(lib, "cuDeviceTotalMem_v2", None) or lib.cuDeviceTotalMem
        total(ctypes.byref(mem), dev)
        attrs = {}
        for key, code in _ATTR.items():
            val = ctypes.c_int()
            attrs[key] = val.value if lib.cuDeviceGetAttribute(ctypes.byref(val), code, dev) == 0 else 0
        uuid = ""
        raw = ctypes.create_string_buffer(16)
        get_uuid = getattr(lib, "cuDeviceGetUuid_v2", None) or getattr(lib, "cuDeviceGetUuid", None)
        if get_uuid is not None and get_uuid(raw, dev) == 0:
            uuid = raw.raw.hex()
        gpus.append(
            GpuInfo(
                index=i,
                name=name.value.decode(errors="replace"),
                compute_capability=(attrs["compute_capability_major"], attrs["compute_capability_minor"]),
                total_memory_bytes=mem.value,
                multiprocessor_count=attrs["multiprocessor_count"],
                clock_rate_khz=attrs["clock_rate_khz"],
                memory_clock_rate_khz=attrs["memory_clock_rate_khz"],
                global_memory_bus_width_bits=attrs["global_memory_bus_width_bits"],
                l2_cache_bytes=attrs["l2_cache_bytes"],
                max_threads_per_block=attrs["max_threads_per_block"],
                max_threads_per_multiprocessor=attrs["max_threads_per_multiprocessor"],
                warp_size=attrs["warp_size"],
                max_shared_memory_per_block_optin=attrs["max_shared_memory_per_block_optin"],
                ecc_enabled=bool(attrs["ecc_enabled"]),
                pci_bus_id=attrs["pci_bus_id"],
                uuid=uuid,
            )
        )
    return gpus, versions, None


def _nvidia_driver_version() -> str | None:
    try:
        with open("/proc/driver/nvidia/version") as f:
            text = f.read()
    except OSError:
        return None
    for word in text.split():
        parts = word.split(".")
        if len(parts) >= 2 and all(p.isdigit() for p in parts):
            return word
    return None


def detect(requested: str = "auto") -> TierInfo:
    """Choose the tier. ``auto`` takes the GPU when there is one; ``cpu`` always works;
    ``gpu`` raises :class:`TierError` with the reason when no device is usable."""
    from .i18n import msg

    if requested not in TIER_CHOICES:
        raise TierError(msg("techday.unknown_tier", "unknown tier {tier!r}: choose one of {choices}",
                            tier=requested, choices=", ".join(TIER_CHOICES)))
    gpus, versions, why = probe_gpus()
    if requested == "gpu" and not gpus:
        raise TierError(msg("techday.gpu_tier_unavailable", "tier 'gpu' was requested but {why}", why=why))
    if gpus and requested != "cpu":
        return TierInfo(tier="gpu", requested=requested, simulator=False, gpus=gpus,
                        reason=msg("techday.reason_device_found", "CUDA device found: {name}", name=gpus[0].name),
                        **versions)
    reason = msg("techday.reason_cpu_requested", "tier 'cpu' was requested") if requested == "cpu" else why
    return TierInfo(tier="cpu", requested=requested, simulator=True, gpus=gpus, reason=reason, **versions)


def enable_simulator() -> None:
    """Switch Numba's CUDA target to the simulator. Must happen before ``numba.cuda`` is imported."""
    loaded = "numba.cuda" in sys.modules or "numba_cuda" in sys.modules
    if loaded and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        from .i18n import msg

        raise TierError(msg(
            "techday.simulator_too_late",
            "numba.cuda was imported before the tier was chosen, so the CUDA simulator cannot be switched on. "
            "Restart the kernel and run the setup cell first."))
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"


def figure_label(gpu_name: str | None, cpu_what: str = "CPU/simulator") -> str:
    """How every timing and benchmark figure is labelled, in one place: ``GPU (<name>)`` for a figure
    measured on that GPU, else ``<cpu_what> (not a GPU figure)``. Not translated: records store it and
    must read the same in every language."""
    return f"GPU ({gpu_name})" if gpu_name else f"{cpu_what} (not a GPU figure)"


_NOT_A_GPU_FIGURE = " (not a GPU figure)"
_CPU_THREADS = re.compile(r"CPU, (\d+) threads?")  # techday.dltrain.device_label's CPU figures


def shown_label(label: str) -> str:
    """A :func:`figure_label` as a trainee reads it, in the language of this run: records keep the
    English label, a printed timing says "not a GPU figure" in the trainee's language."""
    from .i18n import msg

    if label.endswith(_NOT_A_GPU_FIGURE):
        what = label[:-len(_NOT_A_GPU_FIGURE)]
        threads = _CPU_THREADS.fullmatch(what)
        if what == "CPU/simulator":  # figure_label's own default
            what = msg("techday.cpu_simulator", "CPU/simulator")
        elif threads:
            what = msg("techday.cpu_threads", "CPU, {n} thread(s)", n=int(threads.group(1)))
        return msg("techday.not_a_gpu_figure", "{what} (not a GPU figure)", what=what)
    return label


def banner(info: TierInfo, scale: str | None = None, title: str | None = None) -> str:
    """The text every lab and the CLI print: one glance says where this runs."""
    from .i18n import msg

    # "TIER: GPU" / "TIER: CPU" read the same in every language: the runner, the grader and the tests
    # look for them in a lab's first output.
    rule = "=" * 72
    head = f"Tech Day GPU Lab{' | ' + title if title else ''}"
    lines = [rule, head]
    if info.tier == "gpu":
        g = info.gpu
        lines += [
            "TIER: GPU  " + msg("techday.banner_gpu", "({name}, compute capability {cc}, {gib:.1f} GiB, {sms} SMs)",
                                name=g.name, cc=g.cc, gib=g.memory_gib, sms=g.multiprocessor_count),
            msg("techday.banner_versions", "driver {driver} | CUDA driver API {api} | CUDA runtime {runtime}",
                driver=info.driver_version or "?", api=info.cuda_driver_api or "?",
                runtime=info.cuda_runtime or msg("techday.banner_not_found", "not found")),
            msg("techday.banner_gpu_figures", "Timings from this tier are GPU figures."),
        ]
    else:
        lines += [
            "TIER: CPU  " + msg("techday.banner_cpu", "(Numba CUDA simulator for kernels, NumPy for arrays, PyTorch on CPU)"),
            msg("techday.banner_why", "why: {reason}", reason=info.reason),
            msg("techday.banner_cpu_figures",
                "Results are checked; timings here are CPU/simulator figures, never GPU figures."),
        ]
    if scale:
        lines.append(msg("techday.banner_scale", "scale: {scale}", scale=scale))
    lines.append(rule)
    return "\n".join(lines)
