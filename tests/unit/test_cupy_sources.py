"""Every CuPy kernel source of the course is found and compiled by NVRTC for sm_80 and sm_90, and a
broken or unfindable source is named with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from techday import cudasrc
from techday.validate import cupysources

ROOT = Path(__file__).resolve().parents[2]


def _nvrtc():
    try:
        cudasrc.compile_cubin('extern "C" __global__ void k() {}', "probe.cu", "sm_80")
    except cudasrc.NvrtcUnavailable as exc:
        pytest.skip(f"NVRTC is not installed here: {exc}")


def test_every_cupy_kernel_source_of_the_course_compiles(tmp_path):
    _nvrtc()
    sites, problems = cupysources.find_all(ROOT, tmp_path)
    assert problems == []
    kinds = {s.kind for s in sites}
    assert {"RawKernel", "ElementwiseKernel", "ReductionKernel"} <= kinds, kinds
    assert {s.file.split("/")[0] for s in sites} >= {"labs", "benchmarks"}
    # Kernels made in a loop or with an f-string get their values from the benchmark run.
    assert any(f["how"] == "benchmark run" for s in sites for f in s.found)
    results = cupysources.compile_all(sites)
    failed = [cupysources.failure_line(r) for r in results if not r.ok]
    assert failed == []
    for site in sites:
        archs = {r.arch for r in results if r.site is site}
        assert archs == set(cupysources.ARCHS), f"{site.file}:{site.line} compiled for {archs}"


BROKEN = textwrap.dedent('''\
    import cupy
    GOOD = r\'\'\'extern "C" __global__ void ok(float* x) { x[threadIdx.x] = 1.0f; }\'\'\'
    TYPO = ("T x", "T y", "y = x * 2 +")

    def run(n):
        ok = cupy.RawKernel(GOOD, "ok")
        bad = cupy.ElementwiseKernel(*TYPO, "typo")
        red = cupy.ReductionKernel("T x", "T y", "x", "a + b", "y = a", "0", "plain")
        lost = cupy.RawKernel(make_source(n), "lost")
''')


def test_a_broken_source_and_an_unfindable_one_are_named(tmp_path):
    _nvrtc()
    lab = tmp_path / "labs" / "98-cupy" / "98-cupy.py"
    lab.parent.mkdir(parents=True)
    lab.write_text(BROKEN, encoding="utf-8")
    sites = cupysources.call_sites(tmp_path)
    assert [(s.kind, s.line) for s in sorted(sites, key=lambda s: s.line)] == [
        ("RawKernel", 6), ("ElementwiseKernel", 7), ("ReductionKernel", 8), ("RawKernel", 9)]
    lost = next(s for s in sites if s.line == 9)
    assert lost.found == [] and "make_source(n)" in lost.why_unresolved
    results = cupysources.compile_all(sites)
    bad = [cupysources.failure_line(r) for r in results if not r.ok]
    assert len(bad) == 4  # typo[float32] and typo[float64], each for sm_80 and sm_90
    assert all(line.startswith("ElementwiseKernel typo[float") and "labs/98-cupy/98-cupy.py line 7" in line
               and "error" in line for line in bad), bad
    assert {r.label for r in results if r.ok} == {"ok", "plain[float32]", "plain[float64]"}


def test_compiling_leaves_the_interpreters_shared_bytes_alone():
    """Wrong answer caught: NVRTC's log written into ``b" " * log_size`` (for an empty log, one byte:
    CPython's shared ``b" "``), which turned every ``b" "`` of the process into ``b"\\x00"`` and broke
    PyTorch's checkpoint loader in the same process. Run apart, so a failure corrupts nothing else."""
    import subprocess
    import sys

    _nvrtc()
    code = ("from techday import cudasrc\n"
            "cudasrc.compile_ptx('extern \"C\" __global__ void k() {}', 'empty_log.cu', 'compute_80')\n"
            "bad = [i for i in range(256) if bytes([i])[0] != i]\n"
            "print('corrupted', bad) if bad else print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stdout + out.stderr[-2000:]
