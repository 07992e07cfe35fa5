"""The report side of a GPU run (table, targets, HTML, roofline), exercised with a fixture document.

The document is a fixture ("fixture": true), not a measurement: it stands in for a GPU run on a
machine without a GPU.
"""

import json
from pathlib import Path

import pytest
from rich.console import Console

from techday.bench.report import html_report, roofline_png, table, targets
from tests.conftest import ROOT

H100 = json.loads((ROOT / "tests" / "fixtures" / "bench" / "gpu-h100-good.json").read_text())


def test_targets_are_evaluated_for_a_gpu_run_only():
    rows = {t["target"]: t for t in targets(H100)}
    triad = rows["numba-cuda triad >= 88% of DRAM"]
    assert triad["measured"] == H100["results"][0]["fraction"] and triad["met"] is (triad["measured"] >= 0.88)
    assert rows["--quick under 30 s"]["met"] is True  # 28 s in the fixture
    cpu = json.loads((ROOT / "benchmarks" / "results" / "cpu-tier-quick-2core-ci.json").read_text())
    assert targets(cpu) == []


def test_table_and_html_for_a_gpu_run():
    console = Console(record=True, width=140)
    console.print(table(H100))
    text = console.export_text()
    assert "stream.triad [numba-cuda]" in text and "88%" in text and "DRAM 3352 GB/s" in text
    page = html_report(H100, roofline_png([H100]))
    assert "GPU tier: NVIDIA H100 80GB HBM3" in page and "<h2>Targets</h2>" in page
    assert "data:image/png;base64," in page and "CPU figure" not in page


def test_committed_cpu_run_says_it_is_cpu():
    """benchmarks/results/ holds no GPU figures from this machine: its run is labelled CPU throughout."""
    for path in (ROOT / "benchmarks" / "results").glob("*.json"):
        doc = json.loads(path.read_text())
        if doc["tier"] == "cpu":
            assert "not a GPU figure" in doc["label"] and doc["environment"]["gpu"] is None, path.name
            assert all(r.get("label") in (None, "CPU") and r.get("fraction") is None for r in doc["results"]), path.name


def test_the_cpu_roofline_has_a_measured_roof_and_an_empty_run_still_draws():
    # Wrong answers caught: a CPU-tier roofline with no roof at all; a run with no FLOP figures (only
    # transfers, say) crashing the report on a log scale with nothing on it.
    from techday.bench.report import measured_cpu_roof, roofline_png

    def ok(family, kernel, value, metric="gbs"):
        return {"family": family, "kernel": kernel, "status": "ok", "device": "cpu", "metric": metric, "value": value}

    doc = {"tier": "cpu", "limits": {}, "environment": {"device": "CPU"},
           "results": [ok("stream", "triad", 12.0), ok("stream", "triad", 15.5), ok("stream", "copy", 40.0),
                       ok("matmul", "fp32", 90.0, "gflops"), {"family": "stream", "kernel": "triad", "status": "wrong",
                                                              "device": "cpu", "value": 999.0}]}
    assert measured_cpu_roof(doc) == {"gbs": 15.5, "gflops": 90.0}
    assert measured_cpu_roof({"results": []}) == {"gbs": None, "gflops": None}
    assert roofline_png([{**doc, "results": []}])[:4] == b"\x89PNG"


def test_committed_gpu_runs_are_admitted_with_recomputed_figures():
    """Every GPU run under benchmarks/results/ (measured on a real device) validates, names its GPU, and
    is admitted by the leaderboard, whose recomputed fractions agree with the file's own. Wrong answers
    caught: a GPU table row that disagrees with a real device (the H200's L2 was 50 MiB in the table,
    60 MiB on the device, and the board refused the real run); a committed figure that does not recompute."""
    from techday.bench.leaderboard import build_leaderboard
    from techday.bench.schema import validate

    docs = {p: json.loads(p.read_text()) for p in sorted((ROOT / "benchmarks" / "results").rglob("*.json"))}
    runs = [p for p, doc in docs.items() if doc.get("schema") == "techday.bench/1" and doc["tier"] == "gpu"]
    assert runs, "no GPU run is committed under benchmarks/results/"
    board = build_leaderboard(runs)
    assert board.rejected_lines() == []
    for p in runs:
        assert validate(docs[p]) == [] and docs[p]["environment"]["gpu"]["name"], p.name
    ranked = [row for rows in board.rankings("gpu").values() for row in rows]
    assert {row["file"] for row in ranked} == {str(p) for p in runs}
    for row in ranked:
        own = [r for r in docs[Path(row["file"])]["results"] if r["status"] == "ok" and r.get("impl") == row["impl"]
               and abs(r["value"] - row["value"]) < 1e-9 * max(1.0, abs(r["value"]))]
        assert own, row
        if own[0].get("fraction") is not None:
            assert row["fraction"] == pytest.approx(own[0]["fraction"], rel=1e-6), row
