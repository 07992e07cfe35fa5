"""techday bench leaderboard: validates every file, leaves the bad ones out with a line, loses nothing else.

The GPU documents in tests/fixtures/bench are fixtures ("fixture": true), named after their scenario.
"""

import json
import shutil

import pytest

from techday.bench.leaderboard import build_leaderboard
from techday.bench.schema import validate
from tests.conftest import ROOT, techday

FIX = ROOT / "tests" / "fixtures" / "bench"
GOOD = ["gpu-h100-good.json", "gpu-h100-second-run.json", "gpu-a100-good.json"]
BAD = {
    "malformed.json": "malformed JSON",
    "schema-mismatch.json": "schema mismatch",
    "gpu-h100-triad-above-limit.json": "above 105%",
    "gpu-h100-duplicate-run-id.json": "duplicate run",
    "gpu-h100-duplicate-results.json": "duplicate run",
    "not-a-bench-file.json": "not a techday.bench results file",
}


def _as_handed_in(path):
    """A fixture copied into a room as a participant's file: without the fixture mark (a room's folders
    never rank a fixture). A file that is not a JSON object is left as it is."""
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        return
    if isinstance(doc, dict) and doc.pop("fixture", None) is not None:
        path.write_text(json.dumps(doc))


def _reasons(board):
    return {r.path.name: r.reason for r in board.rejected}


def test_fixture_gpu_documents_say_they_are_fixtures():
    for path in FIX.glob("gpu-*.json"):
        doc = json.loads(path.read_text())
        assert doc["fixture"] is True and "FIXTURE" in " ".join(doc["notes"]), path.name


def test_good_fixtures_validate_and_bad_ones_name_their_problem():
    for name in GOOD:
        assert validate(json.loads((FIX / name).read_text())) == [], name
    problems = validate(json.loads((FIX / "gpu-h100-triad-above-limit.json").read_text()))
    assert "stream.triad numba-cuda" in problems[0] and "107%" in problems[0] and "above 105%" in problems[0]


def test_folder_merge_leaves_out_each_bad_file_with_its_reason():
    # Duplicates are judged in path order: gpu-h100-duplicate-* sort before gpu-h100-good.json, so copy
    # the originals first into their own folder and the rest after them.
    board = build_leaderboard([FIX / name for name in GOOD] + [FIX / name for name in sorted(BAD)])
    reasons = _reasons(board)
    assert sorted(r.path.name for r in board.runs) == sorted(GOOD)
    assert set(reasons) == set(BAD)
    for name, words in BAD.items():
        assert words in reasons[name], (name, reasons[name])
    assert "gpu-h100-good.json" in reasons["gpu-h100-duplicate-run-id.json"]
    assert "line" in reasons["malformed.json"]


def test_rankings_and_per_model_best_and_median():
    board = build_leaderboard([FIX / name for name in GOOD])
    triad = board.rankings("gpu")["stream.triad"]
    # Figures are recomputed from the plan's bytes and the recorded times, not read from the file.
    assert [r["value"] for r in triad] == pytest.approx([2950.0, 2900.0, 1370.0]) and triad[0]["rank"] == 1
    assert triad[0]["impl"] == "numba-cuda"  # the run's best implementation
    latency = board.rankings("gpu")["latency.empty-launch"]
    assert [r["value"] for r in latency] == pytest.approx([4.1, 4.4, 5.2])  # microseconds: lower ranks first
    h100 = board.per_model("gpu")["H100 SXM5"]["stream.triad"]
    assert h100["runs"] == 2 and h100["best"] == pytest.approx(2950.0) and h100["median"] == pytest.approx(2925.0)
    assert board.per_model("gpu")["A100 40GB SXM"]["stream.triad"]["runs"] == 1
    assert board.rankings("cpu") == {}


def test_submitted_tree_takes_the_lab_files_and_names_the_students(tmp_path):
    course = tmp_path / "course"
    for student, name in (("alice", "gpu-h100-good.json"), ("bob", "gpu-a100-good.json"),
                          ("carol", "gpu-h100-duplicate-run-id.json"), ("dave", "malformed.json")):
        lab = course / "submitted" / student / "08-measure-your-gpu"
        lab.mkdir(parents=True)
        shutil.copy(FIX / name, lab / "bench-results.json")
        _as_handed_in(lab / "bench-results.json")
    (course / "submitted" / "erin" / "08-measure-your-gpu").mkdir(parents=True)  # handed in without the file
    (course / "submitted" / "alice" / "02-kernels-and-threads").mkdir(parents=True)
    shutil.copy(FIX / "gpu-h100-second-run.json", course / "submitted" / "alice" / "02-kernels-and-threads" / "x.json")
    board = build_leaderboard([course])
    assert sorted(r.who for r in board.runs) == ["alice", "bob"]
    lines = "\n".join(board.rejected_lines())
    assert "carol" in lines and "duplicate run" in lines
    assert "dave" in lines and "malformed JSON" in lines
    assert "erin submitted 08-measure-your-gpu without a results file" in lines


def test_cli_writes_outputs_and_reports_left_out_files(tmp_path):
    out = techday("bench", "leaderboard", str(FIX), "--out", str(tmp_path))
    assert out.returncode == 1, out.stderr  # some files were left out
    for name in BAD:
        assert name in out.stderr
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board["schema"] == "techday.leaderboard/1" and len(board["runs"]) == 3
    assert (tmp_path / "roofline.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "leaderboard.html").read_text()
    assert "data:image/png;base64," in page and "(fixture)" in page and "H100 SXM5" in page
