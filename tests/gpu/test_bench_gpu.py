"""On a CUDA machine: the quick suite checks and times every GPU implementation against the device's limits.

Speed targets (triad at 88 % of DRAM bandwidth and so on) are benchmark targets, recorded in the
results file and the report, not asserted here; only what no correct run can break is asserted.
"""

import json

import pytest

from techday.bench.schema import validate
from tests.conftest import techday

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_quick_suite_on_the_gpu(tmp_path):
    out = techday("bench", "--quick", "--tier", "gpu", "--no-progress", "--out", str(tmp_path), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert validate(doc) == [] and doc["tier"] == "gpu" and doc["environment"]["gpu"]["fingerprint"]
    numba = [r for r in doc["results"] if r["impl"] == "numba-cuda"]
    assert numba and all(r["status"] == "ok" for r in numba), [(r["kernel"], r["reason"]) for r in numba]
    for r in doc["results"]:
        if r["status"] == "ok" and r.get("fraction") is not None:
            assert 0 < r["fraction"] <= 1.05, (r["family"], r["kernel"], r["impl"], r["fraction"])
        if r["status"] == "ok":
            assert r["seconds"]["clock"] in ("cuda-event", "perf_counter") and r["label"] == "GPU"
