"""The environment recorded with every run: where the figures were measured, and with what."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import platform
import sys


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def versions(load_cuda: bool = False) -> dict:
    """Installed versions, read from package metadata, and which CUDA target ``numba.cuda`` is (see
    :func:`cuda_target`: imported here only with ``load_cuda``; else None until something imported it)."""
    cupy = next((v for d in ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy") if (v := _version(d))), None)
    return {"python": platform.python_version(), "numpy": _version("numpy"), "numba": _version("numba"),
            "numba_cuda": _version("numba-cuda"), "cupy": cupy, "torch": _version("torch"),
            "techday": _version("techday-gpu-lab"), "cuda_target": cuda_target(load=load_cuda)}


def cuda_target(load: bool = False) -> str | None:
    """Which code ``numba.cuda`` is (once imported, or imported here with ``load``): ``numba-cuda`` (the
    package the course installs) or numba's own older, deprecated CUDA target, which a Python that skips
    numba-cuda's start-up hook (a ``.pth`` file) gets even with numba-cuda installed; kernels compile and
    run differently there (an H200 run so failed a lab that numba-cuda passes)."""
    mod = sys.modules.get("numba.cuda")
    if mod is None and load:
        try:
            import numba.cuda as mod
        except Exception:  # a broken CUDA install: the run says so elsewhere
            return None
    if mod is None:
        return None
    return "numba-cuda" if "numba_cuda" in (getattr(mod, "__file__", None) or "") else "numba built-in"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(info) -> dict:
    """The environment of a :class:`~techday.tier.TierInfo`: tier, GPU, driver, runtime, versions."""
    gpu = info.gpu
    env = {
        "tier": info.tier,
        "simulator": info.simulator,
        "driver_version": info.driver_version,
        "cuda_driver_api": info.cuda_driver_api,
        "cuda_runtime": info.cuda_runtime,
        "host": hashlib.sha256(info.host.encode()).hexdigest()[:12],  # identifies, does not name, the machine
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count() or 1,
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions(load_cuda=True),
        "gpu": None,
    }
    if gpu is not None:
        env["gpu"] = {
            "name": gpu.name, "cc": gpu.cc, "memory_bytes": gpu.total_memory_bytes,
            "sm_count": gpu.multiprocessor_count, "clock_mhz": gpu.clock_rate_khz / 1e3,
            "memory_clock_mhz": gpu.memory_clock_rate_khz / 1e3,
            "bus_width_bits": gpu.global_memory_bus_width_bits, "l2_bytes": gpu.l2_cache_bytes,
            "ecc": gpu.ecc_enabled, "fingerprint": gpu.fingerprint(),
        }
        env["device"] = gpu.name
        env["device_hash"] = gpu.fingerprint()
    else:
        env["device"] = f"CPU: {env['cpu']} ({env['cpu_count']} cores)"
        env["device_hash"] = hashlib.sha256(f"{info.host}|{env['cpu']}|{env['cpu_count']}".encode()).hexdigest()[:12]
    return env
