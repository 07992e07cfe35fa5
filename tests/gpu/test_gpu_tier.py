"""On a CUDA machine: the GPU tier is detected and every lab runs at full scale on it."""

import json

import pytest

from tests.conftest import techday

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_doctor_reports_the_device():
    out = techday("doctor", "--json", "--tier", "gpu")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    gpu = info["gpus"][0]
    assert info["tier"] == "gpu" and gpu["multiprocessor_count"] > 0 and gpu["memory_clock_rate_khz"] > 0


def test_labs_run_at_full_scale_on_the_gpu(tmp_path):
    out = techday("run", "--tier", "gpu", "--scale", "full", env={"TECHDAY_BUILD": str(tmp_path)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert all(lab["tier"] == "gpu" and lab["status"] == "passed" for lab in summary["labs"])
