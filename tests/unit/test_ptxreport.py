"""The resource report of techday.ptxreport: PTX from numba-cuda and ptxas -v, without a GPU."""

import os

import pytest

from techday import ptxreport

LOG = """ptxas info    : 8 bytes gmem, 8 bytes cmem[4]
ptxas info    : Compiling entry function '_Z1k' for 'sm_80'
ptxas info    : Function properties for _Z1k
    16 bytes stack frame, 12 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 4224 bytes smem, 496 bytes cmem[0]
"""

KERNELS = '''
from numba import cuda, float32

@cuda.jit(device=True)
def twice(v):
    return 2 * v

@cuda.jit
def padded(a, out):
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    x, y = cuda.grid(2)
    tile[cuda.threadIdx.y, cuda.threadIdx.x] = a[y, x]
    cuda.syncthreads()
    out[y, x] = twice(tile[cuda.threadIdx.x, cuda.threadIdx.y])
'''


def test_parse_ptxas_log():
    assert ptxreport.parse_ptxas(LOG) == {"registers": 40, "shared_bytes": 4224, "spill_stores": 12,
                                          "spill_loads": 8, "stack_bytes": 16}


def test_ptx_shared_bytes_sums_declarations():
    ptx = ".visible .shared .align 4 .b8 _cudapy_smem_38[4224];\n\t.shared .align 8 .b8 other[64];\n"
    assert ptxreport.ptx_shared_bytes(ptx) == 4288


def test_find_ptxas_names_a_path_or_a_reason(monkeypatch):
    path, how = ptxreport.find_ptxas()
    assert how
    assert path is None or os.access(path, os.X_OK)
    monkeypatch.setenv("PTXAS", "/nonexistent/ptxas")
    path2, how2 = ptxreport.find_ptxas()
    assert path2 != "/nonexistent/ptxas" and (path2 or "not executable" in how2)


def test_report_of_a_kernel_calling_a_device_function(tmp_path, monkeypatch):
    """Compiled in a child process with the simulator off, so it works with or without a GPU."""
    src = tmp_path / "kern.py"
    src.write_text(KERNELS.replace("TILE_PAD", "17").replace("TILE", "16"))
    import importlib.util

    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", os.environ.get("NUMBA_ENABLE_CUDASIM", "0"))
    spec = importlib.util.spec_from_file_location("kern", src)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # numba-cuda without a usable simulator/driver import here
        pytest.skip(f"cannot define a kernel in this process: {exc}")
    reports = ptxreport.resource_reports({"padded": (mod.padded, "void(float32[:, ::1], float32[:, ::1])")},
                                         extra_source="@cuda.jit(device=True)\ndef twice(v):\n    return 2 * v\n")
    rep = reports["padded"]
    assert rep.shared_bytes_ptx == 16 * 17 * 4
    if ptxreport.find_ptxas()[0]:
        assert rep.shared_bytes == 16 * 17 * 4 and rep.registers > 0 and rep.spill_stores == 0
    else:
        assert rep.registers is None


def test_expose_races_restores_the_switch_interval():
    import sys

    from techday.simtools import expose_races, simulator_on

    before = sys.getswitchinterval()
    with expose_races(1e-5):
        inside = sys.getswitchinterval()
    assert sys.getswitchinterval() == before
    assert inside == (pytest.approx(1e-5) if simulator_on() else before)


def test_a_missing_toolkit_is_told_apart_from_a_wrong_kernel():
    assert ptxreport.toolkit_missing("numba.cuda.cudadrv.error.NvvmSupportError: libNVVM is not available")
    assert ptxreport.toolkit_missing("FileNotFoundError: /x/nvvm/libdevice/libdevice.10.bc not found")
    assert not ptxreport.toolkit_missing("numba.core.errors.TypingError: No implementation of function shared.array")
    assert issubclass(ptxreport.ToolkitMissing, ptxreport.PtxError)


def test_ptxas_of_the_cuda13_wheel_is_found(tmp_path):
    """The image's cuda13 set brings ptxas in CUDA 13's nvidia-cuda-nvcc wheel, at nvidia/cu13/bin
    (not nvidia/cuda_nvcc/bin as in CUDA 12's): catches a lookup that only knows the CUDA 12 layout,
    and one that takes a ptxas that is not executable."""
    ptxas = tmp_path / "nvidia" / "cu13" / "bin" / "ptxas"
    ptxas.parent.mkdir(parents=True)
    ptxas.write_text("#!/bin/sh\n")
    assert ptxreport.ptxas_in_cuda13_wheels([str(tmp_path / "nvidia")]) is None
    ptxas.chmod(0o755)
    assert ptxreport.ptxas_in_cuda13_wheels([str(tmp_path / "elsewhere"), str(tmp_path / "nvidia")]) == str(ptxas)


def test_how_ptxas_was_found_or_missed_is_said_in_the_runs_language(monkeypatch):
    """Lab 04 prints ``ptxas: <path> (<how>)``, or why it is missing. Wrong answer caught: "the nvidia-cuda-nvcc-cu12
    wheel" and "ptxas not found; looked in ..." in English in the Korean notebook (before this test); and the
    English changed by the keys (it is what `techday kernels` and the English notebook say)."""
    import sys

    from techday.i18n import _HANGUL

    monkeypatch.setenv("PTXAS", "/nonexistent/ptxas")
    for var in ("CUDA_HOME", "CUDA_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(sys.modules, "nvidia", None)  # neither toolkit wheel importable: every place is tried
    monkeypatch.setitem(sys.modules, "nvidia.cuda_nvcc", None)
    monkeypatch.setenv("TECHDAY_LANG", "en")
    assert ptxreport.find_ptxas() == (None, "ptxas not found; looked in $PTXAS=/nonexistent/ptxas (not executable), "
                                            "the nvidia-cuda-nvcc-cu12 wheel (not installed: pip install -e '.[test]'), "
                                            "the nvidia-cuda-nvcc wheel of CUDA 13 (not installed), PATH")
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    path, how = ptxreport.find_ptxas()
    assert path is None and _HANGUL.search(how) and "not found" not in how and "wheel" not in how, how
    assert "/nonexistent/ptxas" in how and "pip install -e '.[test]'" in how, "the facts stay as they are"


def test_the_ptxas_of_the_toolkit_wheel_is_named_in_the_runs_language(monkeypatch):
    from techday.i18n import _HANGUL

    monkeypatch.delenv("PTXAS", raising=False)
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    path, how = ptxreport.find_ptxas()
    if path is None or "nvidia" not in path:
        pytest.skip(f"no ptxas from NVIDIA's toolkit wheels here ({path}, {how})")
    assert _HANGUL.search(how) and "wheel" not in how, how


def test_the_korean_report_names_spills_as_lab_04_does(monkeypatch):
    """One rendering per concept: lab 04's Korean text tells the trainee to find `spill stores` and `spill loads` in
    the report (ptxas' own words) and prints its squeezed kernel's line with them. Wrong answer caught: the report
    itself saying 스필 저장 / 스필 로드 in the same notebook (before this test)."""
    import tomllib

    from tests.conftest import ROOT

    monkeypatch.setenv("TECHDAY_LANG", "ko")
    rep = ptxreport.ResourceReport("k", (8, 0), 0, registers=30, shared_bytes=0, spill_stores=48, spill_loads=44,
                                   stack_bytes=40)
    lab = tomllib.loads((ROOT / "labs" / "04-memory-subsystem" / "04-memory-subsystem.ko.toml").read_text("utf-8"))
    assert "spill stores {stores} B" in lab["messages"]["naive_as_compiled"]["text"]
    assert "spill stores 48 B" in str(rep) and "spill loads 44 B" in str(rep), str(rep)
