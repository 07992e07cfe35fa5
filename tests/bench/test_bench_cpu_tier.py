"""`techday bench --quick` on the CPU tier: every figure is a CPU figure, the simulator is never timed.

Timings are recorded in the results file (and printed here), never asserted: speed targets belong in
the benchmark, not in a timed test.
"""

import json

import pytest

from techday.bench.schema import validate
from tests.conftest import techday

pytestmark = [pytest.mark.slow]


def test_quick_suite_on_the_cpu_tier(tmp_path):
    out = techday("bench", "--quick", "--tier", "cpu", "--no-progress", "--out", str(tmp_path), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert validate(doc) == [] and doc["tier"] == "cpu" and doc["mode"] == "quick"
    assert "not a GPU figure" in doc["label"] and "TIER: CPU" in out.stdout
    by = {(r["family"], r["kernel"], r["impl"]): r for r in doc["results"]}
    timed = [r for r in doc["results"] if r["status"] == "ok"]
    # Only CPU implementations were timed, each labelled CPU, with no fraction of a GPU limit.
    assert timed and all(r["device"] == "cpu" and r["label"] == "CPU" and r["fraction"] is None for r in timed)
    # Numba CUDA kernels were checked in the simulator (correct at a tiny size) and not timed.
    sim = [r for r in doc["results"] if r["impl"] == "numba-cuda"]
    assert sim and all(r["status"] == "checked" and "seconds" not in r for r in sim), [r["reason"] for r in sim]
    # CuPy and PyTorch GPU code is skipped with the reason.
    assert all(r["status"] == "skipped" and "needs a GPU" in r["reason"] for r in doc["results"] if r["impl"] == "cupy")
    for family in ("stream", "reduction", "transpose", "stencil", "histogram", "matmul", "roofline"):
        assert any(r["family"] == family and r["status"] == "ok" for r in timed), family
    triad_numba, triad_numpy = by[("stream", "triad", "numba-cpu")], by[("stream", "triad", "numpy")]
    print(f"\nCPU tier quick suite: {doc['seconds']:.1f} s; triad numba-cpu {triad_numba['value']:.2f} GB/s, "
          f"numpy {triad_numpy['value']:.2f} GB/s (recorded, not asserted)")
    # Every timed figure was checked again after timing, carries its best beside its median, and the
    # machine's load was recorded.
    assert all("checked after the last" in r["recheck"] and r["best"] >= r["value"] for r in timed if r["metric"] != "us")
    # Every timed figure carries the repetitions behind it and its audit repetitions (schema version 2):
    # validate() above recomputed each summary from them and found nothing no run of the harness gives.
    assert doc["schema"] == "techday.bench/2"
    assert all(len(r["seconds"]["samples"]) == r["seconds"]["reps"] and len(r["seconds"]["audit"]) == 3 for r in timed)
    assert doc["environment"]["load"]["cpu_count"] >= 1
    # What the runner writes, the leaderboard accepts: it recomputes every figure and agrees (catches the
    # schema, the plan or the counts drifting apart between the two).
    from techday.bench.leaderboard import build_leaderboard

    board = build_leaderboard([tmp_path / "results.json"])
    assert board.rejected == [] and len(board.runs) == 1, board.rejected_lines()
    page = (tmp_path / "report.html").read_text()
    assert "CPU tier: every figure on this page is a CPU figure" in page and "data:image/png;base64," in page
    assert (tmp_path / "roofline.png").read_bytes()[:4] == b"\x89PNG"


def test_family_selection_and_unknown_family(tmp_path):
    out = techday("bench", "--quick", "--tier", "cpu", "--family", "nope", "--out", str(tmp_path))
    assert out.returncode == 2 and "unknown benchmark family" in out.stderr


def test_c_stream_comparison_runs_and_labels_cpu_figures():
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine: the C STREAM comparison needs one")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "c_stream.py"), "--n", "200003", "--rounds", "1",
                          "--reps", "2"], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CPU figures, not GPU figures" in out.stdout and "triad: numba / C = " in out.stdout
