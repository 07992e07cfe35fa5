"""Attacks on the leaderboard that keep every figure consistent with the plan and the limits, and aim at
what the board decides from them: whose figure it is, and whether it can be believed. Each test names
the wrong answer it catches.
"""

import copy
import io
import json

from techday.bench.counts import kernel_table, plan_for
from techday.bench.leaderboard import build_leaderboard
from tests.unit.test_bench_hostile import _jitter, _submit, base, find, h200_base, new_id, retime

LAB = "08-measure-your-gpu"


def _console(board) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=250, highlight=False)
    for t in board.tables():
        console.print(t)
    return console.file.getvalue()


def _ok(doc):
    return [r for r in doc["results"] if r["status"] == "ok"]


def _swap_implementations(doc):
    """Every kernel timed by both Numba CUDA and CuPy, each figure handed in under the other's name (the
    same counts, the same clock, the same limit: every check of one figure still holds); the rest dropped."""
    by_kernel = {}
    for r in _ok(doc):
        by_kernel.setdefault((r["family"], r["kernel"]), {})[r["impl"]] = r
    kept = []
    for impls in by_kernel.values():
        if "numba-cuda" in impls and "cupy" in impls:
            impls["numba-cuda"]["impl"], impls["cupy"]["impl"] = "cupy", "numba-cuda"
            kept += [impls["numba-cuda"], impls["cupy"]]
    doc["results"] = kept
    return doc


# Kernels of one family that count the same bytes: a figure of one is a believable figure of the other.
_ROTATE = {"stream.copy": "stream.scale", "stream.scale": "stream.copy", "stream.add": "stream.triad",
           "stream.triad": "stream.add", "transpose.naive": "transpose.shared",
           "transpose.shared": "transpose.padded", "transpose.padded": "transpose.naive"}


def _rotate_kernels(doc):
    """Figures moved to another kernel of equal bytes, their counts rewritten from the plan: each one
    is a well-formed figure of the kernel it now names."""
    g = doc["environment"]["gpu"]
    table = kernel_table(plan_for("gpu", doc["mode"], g["l2_bytes"], g["sm_count"]))
    out = []
    for r in _ok(doc):
        to = _ROTATE.get(f"{r['family']}.{r['kernel']}")
        if to is None or r["impl"] not in table[to]["impls"]:
            continue
        r["family"], r["kernel"] = to.split(".")
        for name in ("bytes", "flops", "dtype", "limit_key", "metric"):
            if name in r:
                r[name] = table[to][name]
        out.append(r)
    doc["results"] = out
    return doc


def _relabelled_copy(tmp_path, relabel):
    course = tmp_path / "course"
    zoe = _jitter(new_id(h200_base(), "1"), 11)
    _submit(course, "zoe", "results.json", zoe)
    # Named to sort after zoe, so that zoe's run is the one merged first and the copy is the one judged.
    _submit(course, "zz-mallory", "results.json", relabel(new_id(copy.deepcopy(zoe), "2")))
    return build_leaderboard([course])


def test_a_copy_with_its_implementations_swapped_is_left_out(tmp_path):
    # Wrong answer caught: zoe's figures handed in with the Numba CUDA and CuPy labels of each kernel
    # swapped (a replay was matched figure by figure under the same kernel and implementation, and a
    # near-duplicate compared the figures of one name): mallory ranked 1, tied with zoe on every kernel
    # both timed, with nothing said.
    board = _relabelled_copy(tmp_path, _swap_implementations)
    assert [r.who for r in board.runs] == ["zoe"], board.rejected_lines()
    reason = next(r.reason for r in board.rejected if "zz-mallory" in str(r.path))
    assert "replayed figures" in reason, reason
    assert board.runs[0].disputed, "zoe's rows name the copy"


def test_a_copy_with_its_figures_moved_to_kernels_of_equal_counts_is_left_out(tmp_path):
    # Wrong answer caught: zoe's add figure handed in as a triad, her copy as a scale, her naive
    # transpose as a shared one (each kernel of one family counts the same bytes, so every figure was
    # well formed): mallory ranked beside zoe with zoe's measurements, unsaid.
    board = _relabelled_copy(tmp_path, _rotate_kernels)
    assert [r.who for r in board.runs] == ["zoe"], board.rejected_lines()
    assert "replayed figures" in next(r.reason for r in board.rejected if "zz-mallory" in str(r.path))


def test_the_kit_run_with_its_implementations_swapped_is_a_copy_of_the_kit_run(tmp_path):
    # Wrong answer caught: the kit's own H200 run (every student has it) with its labels swapped,
    # ranked as a participant's H200 run.
    course = tmp_path / "course"
    _submit(course, "mallory", "results.json", _swap_implementations(new_id(h200_base(), "3")))
    board = build_leaderboard([course])
    assert board.runs == [], [r.who for r in board.runs]
    assert "a copy of the course kit's own run" in board.rejected[0].reason, board.rejected[0].reason


def test_two_honest_runs_of_one_model_are_not_taken_for_relabelled_copies(tmp_path):
    # The other way: two runs, each figure timed on its own, are both ranked.
    course = tmp_path / "course"
    _submit(course, "zoe", "results.json", _jitter(new_id(h200_base(), "1"), 11))
    _submit(course, "bob", "results.json", _jitter(new_id(h200_base(), "2"), 12))
    board = build_leaderboard([course])
    assert sorted(r.who for r in board.runs) == ["bob", "zoe"], board.rejected_lines()


# ---------------------------------------------------------------------------------------------
# A figure above its physical limit: under the 105 % the board refuses, but no device reaches it.


def test_a_figure_above_the_physical_limit_is_marked_on_every_output(tmp_path):
    # Wrong answer caught: a triad invented at 103 % of the H100's DRAM bandwidth (the refusal is at
    # 105 %, headroom for rounding) ranked first, above every honest figure, marked nothing: no memory
    # moves more bytes than its clock and bus allow.
    course = tmp_path / "course"
    honest = _jitter(new_id(base(), "1"), 3)
    _submit(course, "zoe", "results.json", honest)
    liar = _jitter(new_id(base(), "2"), 4)
    r = retime(find(liar, "stream.triad", "numba-cuda"), 1.03 * 3352.3)
    r["seconds"]["min"] = r["seconds"]["median"] * 0.999
    r["best"] = r["value"] / 0.999
    _submit(course, "mallory", "results.json", liar)
    board = build_leaderboard([course])
    assert len(board.runs) == 2, board.rejected_lines()
    rows = {row["who"]: row for row in board.rankings("gpu")["stream.triad"]}
    assert rows["mallory"]["rank"] == 1  # the figure is the file's word; the mark says it cannot be
    assert rows["mallory"]["above_limit"] and not rows["zoe"]["above_limit"]
    assert "(above limit)" in _console(board)
    assert "(above limit)" in board.html(b"")
    assert board.to_dict()["rankings"]["gpu"]["stream.triad"][0]["above_limit"] is True
    best = board.per_model("gpu")["H100 SXM5"]["stream.triad"]
    assert best["best_above_limit"] is True


def test_a_host_copy_above_the_host_link_is_marked(tmp_path):
    # Wrong answer caught: a pinned host-to-device copy at 104 % of the H200's PCIe 5.0 x16 link (63
    # GB/s one way) ranked without a word.
    course = tmp_path / "course"
    doc = _jitter(new_id(h200_base(), "4"), 5)
    r = retime(find(doc, "transfer.h2d-pinned", "numba-cuda"), 65.0)
    r["seconds"]["min"] = r["seconds"]["median"]
    _submit(course, "mallory", "results.json", doc)
    board = build_leaderboard([course])
    assert len(board.runs) == 1, board.rejected_lines()
    row = board.rankings("gpu")["transfer.h2d-pinned"][0]
    assert row["above_limit"] is True
    assert board.rankings("gpu")["stream.triad"][0]["above_limit"] is False
