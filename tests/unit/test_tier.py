"""Tier detection: the CPU tier on a machine without a driver, the GPU tier from driver facts."""

import json
import subprocess
import sys

import pytest

from techday import tier as tiermod
from techday.lab import resolve
from techday.tier import GpuInfo, TierError, banner, detect


def _fake_gpu(**kw):
    base = dict(index=0, name="NVIDIA H100 80GB HBM3", compute_capability=(9, 0), total_memory_bytes=85_520_809_984,
                multiprocessor_count=132, clock_rate_khz=1_980_000, memory_clock_rate_khz=2_619_000,
                global_memory_bus_width_bits=5120, l2_cache_bytes=52_428_800, max_threads_per_block=1024,
                max_threads_per_multiprocessor=2048, warp_size=32, max_shared_memory_per_block_optin=232_448,
                ecc_enabled=True, pci_bus_id=25, uuid="0f" * 16)
    base.update(kw)
    return GpuInfo(**base)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(tiermod, "probe_gpus", lambda: ([], {"driver_version": None, "cuda_driver_api": None,
                                                              "cuda_runtime": None}, "no driver (test)"))


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(tiermod, "probe_gpus", lambda: ([_fake_gpu()], {"driver_version": "580.1",
                                                                        "cuda_driver_api": "13.0", "cuda_runtime": "12.9"}, None))


def test_auto_without_gpu_is_cpu_with_reason(no_gpu):
    info = detect("auto")
    assert (info.tier, info.simulator, info.reason) == ("cpu", True, "no driver (test)")
    assert info.gpu is None


def test_gpu_requested_without_gpu_fails_with_reason(no_gpu):
    with pytest.raises(TierError, match="no driver"):
        detect("gpu")


def test_unknown_tier_is_rejected():
    with pytest.raises(TierError, match="unknown tier"):
        detect("tpu")


def test_auto_with_gpu_is_gpu(one_gpu):
    info = detect("auto")
    assert info.tier == "gpu" and not info.simulator and info.gpu.cc == "9.0"
    text = banner(info, scale="full")
    assert "TIER: GPU" in text and "H100" in text and "12.9" in text and "scale: full" in text


def test_cpu_requested_on_gpu_machine_uses_simulator(one_gpu):
    info = detect("cpu")
    assert info.tier == "cpu" and info.simulator and info.gpu is None
    assert "never GPU figures" in banner(info)


def test_record_is_json_with_fingerprint(one_gpu):
    d = json.loads(detect("auto").to_json())
    gpu = d["gpus"][0]
    assert gpu["compute_capability"] == "9.0"
    assert len(gpu["fingerprint"]) == 12
    assert _fake_gpu(uuid="aa" * 16).fingerprint() != _fake_gpu().fingerprint()


def test_cuda_version_decoding():
    assert tiermod._version_str(12040) == "12.4"
    assert tiermod._version_str(13000) == "13.0"


def test_resolve_reads_environment(monkeypatch):
    monkeypatch.setenv("TECHDAY_TIER", "cpu")
    monkeypatch.setenv("TECHDAY_SCALE", "ci")
    assert resolve(None, None) == ("cpu", "ci")
    assert resolve("gpu", "full") == ("gpu", "full")
    with pytest.raises(ValueError, match="unknown scale"):
        resolve(None, "huge")


def _py(code: str, **env):
    import os

    e = {k: v for k, v in os.environ.items() if not k.startswith(("TECHDAY_", "NUMBA_ENABLE_CUDASIM"))}
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e)


def test_setup_switches_simulator_on_before_numba_loads():
    """In a fresh interpreter on the CPU tier: setup() sets the switch without importing Numba,
    and the numba.cuda imported afterwards is the simulator."""
    code = ("import sys, techday; lab = techday.setup(tier='cpu', scale='ci'); "
            "assert 'numba' not in sys.modules; from numba import config; print('SIM', config.ENABLE_CUDASIM)")
    out = _py(code)
    assert out.returncode == 0, out.stderr
    assert "TIER: CPU" in out.stdout and "SIM 1" in out.stdout


def test_setup_refuses_when_numba_cuda_was_imported_first():
    out = _py("from numba import cuda; import techday; techday.setup(tier='cpu')")
    assert out.returncode != 0
    assert "Restart the kernel" in out.stderr


def test_real_machine_detection_matches_doctor_json():
    """detect() on this machine and `techday doctor --json` agree (whatever the machine is)."""
    from tests.conftest import techday

    out = techday("doctor", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tier"] == detect("auto").tier
