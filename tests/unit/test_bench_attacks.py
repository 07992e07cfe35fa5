"""Attacks on the leaderboard that keep every figure consistent with the plan and the limits, and aim at
what the board decides from them: whose figure it is, and whether it can be believed. Each test names
the wrong answer it catches.
"""

import copy
import json

from techday.bench.counts import kernel_table, plan_for
from techday.bench.leaderboard import build_leaderboard
from tests.unit.test_bench_board_attacks import _console
from tests.unit.test_bench_hostile import _jitter, _submit, base, find, h200_base, new_id, resample, retime

LAB = "08-measure-your-gpu"


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
    resample(r)
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
    r["best"] = r["value"]
    resample(r)
    _submit(course, "mallory", "results.json", doc)
    board = build_leaderboard([course])
    assert len(board.runs) == 1, board.rejected_lines()
    row = board.rankings("gpu")["transfer.h2d-pinned"][0]
    assert row["above_limit"] is True
    assert board.rankings("gpu")["stream.triad"][0]["above_limit"] is False


# ---------------------------------------------------------------------------------------------
# Work: a room of runs built to fall outside the copy index.


def _anchorless_room(tmp_path, n):
    """``n`` participants' H200 runs, each with its own noise, without three of the four anchor figures
    (a run holding fewer than two was compared in full with every run merged)."""
    from techday.bench.leaderboard import ANCHORS

    room = tmp_path / "room"
    for i in range(n):
        doc = _jitter(h200_base(), 1000 + i, rel=0.05)
        doc["run_id"] = f"{i + 1:032x}"
        doc["results"] = [r for r in doc["results"]
                          if f"{r['family']}.{r['kernel']} {r['impl']}" not in ANCHORS["gpu"][1:]]
        (room / f"p{i:03d}").mkdir(parents=True)
        (room / f"p{i:03d}" / "results.json").write_text(json.dumps(doc))
    return room


def test_runs_without_anchor_figures_are_not_compared_with_every_run(tmp_path):
    # Wrong answer caught: a room of runs each holding one anchor figure (the other three left out:
    # 41 figures each, all well formed) was compared pair by pair: 2,000 such files made 1,999,000 full
    # comparisons, 189 s here (a room of 2,000 honest runs: 14 s). A nudged copy of one is still found.
    import time

    n = 60
    room = _anchorless_room(tmp_path, n)
    copied = json.loads((room / "p007" / "results.json").read_text())
    copied["run_id"] = "f" * 32
    for r in copied["results"]:
        if r["status"] == "ok":
            retime(r, r["value"] * 1.003 if r["metric"] != "us" else r["value"] / 1.003)
    (room / "zz-copier").mkdir()
    (room / "zz-copier" / "results.json").write_text(json.dumps(copied))
    t0 = time.perf_counter()
    board = build_leaderboard([room])
    print(f"\n{n + 1} anchorless runs: {board.comparisons} full comparisons, {time.perf_counter() - t0:.1f} s")
    assert len(board.runs) == n, board.rejected_lines()
    assert [r.path.parent.name for r in board.rejected] == ["zz-copier"]
    assert "near-duplicate" in board.rejected[0].reason and "p007" in board.rejected[0].reason
    assert board.comparisons < n * (n + 1) / 2 / 10, board.comparisons


# ---------------------------------------------------------------------------------------------
# Work: what a file costs to read before it can be refused.


def test_a_file_of_a_million_numbers_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    # Wrong answer caught: 2 MiB of "1,1,1,..." in a list (within the size and depth caps) was parsed
    # whole, one Python call per number, before the schema refused it: 1.1 s a file here, so 2,000 such
    # files about 36 minutes (a valid 2 MiB file of notes: 0.15 s). Strings, empty objects and
    # arrays cost the same way (0.3 to 0.6 s).
    import time

    from techday.bench import schema

    def no_parse(*a, **k):
        raise AssertionError("parsed")

    cap = schema.MAX_FILE_BYTES - 100
    files = {"numbers": b'{"notes": [' + b"1," * (cap // 2 - 10) + b"1]}",
             "objects": b'{"notes": [' + b"{}," * (cap // 3 - 10) + b"1]}",
             "strings": b'{"notes": [' + b'"",' * (cap // 3 - 10) + b"1]}"}
    for name, raw in files.items():
        (tmp_path / f"{name}.json").write_bytes(raw)
    monkeypatch.setattr(schema.json, "loads", no_parse)
    for name in files:
        t0 = time.perf_counter()
        try:
            schema.read_document(tmp_path / f"{name}.json")
        except schema.ReadError as exc:
            assert "values, above the cap" in str(exc) or "strings, above the cap" in str(exc), str(exc)
        else:
            raise AssertionError(f"{name} was read")
        print(f"\n{name}: refused in {time.perf_counter() - t0:.3f} s")


def test_the_largest_valid_file_is_under_the_cap_of_values(tmp_path):
    # The other way: a results file with every result the schema allows, each with every field and a
    # full list of warnings, is still read (the cap must not refuse what the schema accepts).
    from techday.bench import schema

    doc = base()
    r = dict(find(doc, "stream.triad", "numba-cuda"))
    r["warnings"] = ["w"] * schema.MAX_LIST
    r["wall"] = {"setup": 1.0, "check": 1.0, "timing": 1.0, "total": 3.0}
    doc["results"] = [dict(r) for _ in range(schema.MAX_RESULTS)]
    doc["notes"] = ["n"] * schema.MAX_LIST
    doc["warnings"] = ["w"] * schema.MAX_LIST
    raw = json.dumps(doc).encode()
    assert len(raw) < schema.MAX_FILE_BYTES
    assert schema.parse(raw)["results"][-1]["warnings"][-1] == "w"


# ---------------------------------------------------------------------------------------------
# Paths a shell expands: named on the command line, but chosen by the participants.


def _others_links(monkeypatch):
    """Every link in the test's folders made by another user than the board's (the board's users are
    taken to be one uid no file here has)."""
    from techday.bench import leaderboard

    monkeypatch.setattr(leaderboard, "_board_users", lambda: {987654}, raising=False)


def test_a_link_a_shell_glob_names_is_not_followed_to_a_file_the_participant_cannot_read(tmp_path, monkeypatch):
    # Wrong answer caught: `techday bench leaderboard submitted/*/08-measure-your-gpu/results.json`
    # (a shell glob: every participant's file named on the command line) followed mallory's
    # results.json, a link to the instructor's own run in a folder only the instructor reads; the board,
    # running as the instructor, read it and ranked and published it as mallory's. Her lab folder made
    # a link there did the same.
    private = tmp_path / "instructor" / "private"
    private.mkdir(parents=True)
    (private / "results.json").write_text(json.dumps(_jitter(new_id(h200_base(), "1"), 21)))
    course = tmp_path / "course"
    _submit(course, "zoe", "results.json", _jitter(new_id(base(), "2"), 22))
    mine = course / "submitted" / "mallory" / LAB
    mine.mkdir(parents=True)
    (mine / "results.json").symlink_to(private / "results.json")
    (course / "submitted" / "eve").mkdir()
    (course / "submitted" / "eve" / LAB).symlink_to(private)
    _others_links(monkeypatch)
    named = sorted(course.glob(f"submitted/*/{LAB}/results.json"))  # what the shell hands the board
    assert len(named) == 3
    board = build_leaderboard(named)
    assert [r.path.parts[-3] for r in board.runs] == ["zoe"], [str(r.path) for r in board.runs]
    reasons = {r.path.parts[-3]: r.reason for r in board.rejected}
    assert "symbolic link" in reasons["mallory"] and "symbolic link" in reasons["eve"], reasons


def test_a_fixture_a_shell_glob_names_is_not_ranked(tmp_path, monkeypatch):
    # Wrong answer caught: a participant's file saying "fixture": true is never ranked from a room's
    # folders, but the same file named by a shell glob was "named on the command line" and ranked.
    course = tmp_path / "course"
    doc = _jitter(new_id(base(), "3"), 23)
    doc["fixture"] = True
    _submit(course, "mallory", "results.json", doc)
    _others_links(monkeypatch)
    board = build_leaderboard(sorted(course.glob(f"submitted/*/{LAB}/results.json")))
    assert board.runs == []
    assert "fixture" in board.rejected[0].reason


def test_a_link_or_a_fixture_the_instructor_names_is_still_read(tmp_path):
    # The other way: a link the board's own user made, and a fixture file it owns, named on the
    # command line, are the instructor's choice.
    from tests.unit.test_bench_hostile import FIX

    link = tmp_path / "latest.json"
    link.symlink_to(FIX / "gpu-h100-good.json")
    own = tmp_path / "fixture.json"
    own.write_text((FIX / "gpu-a100-good.json").read_text())
    board = build_leaderboard([link, own])
    assert sorted(r.path.name for r in board.runs) == ["fixture.json", "latest.json"], board.rejected_lines()


def test_files_directly_in_a_folder_given_are_held_only_up_to_the_cap_of_files_read(tmp_path, monkeypatch):
    # Wrong answer caught: files directly in a folder given are each their own participant, so the cap of
    # files kept per participant never applied to them: 200,000 empty "*.json" in a shared folder were
    # listed, held and sorted whole before the cap of 2,000 files read (17.7 s and 230 MB here); a
    # million, about a gigabyte. Past the first files read in path order, none could ever be read.
    from techday.bench import leaderboard

    monkeypatch.setattr(leaderboard, "MAX_FILES", 5)
    room = tmp_path / "room"
    room.mkdir()
    for i in range(50):
        (room / f"{i:03d}.json").write_bytes(b"")
    (room / "zoe").mkdir()
    (room / "zoe" / "r.json").write_text(json.dumps(_jitter(new_id(base(), "1"), 3)))
    found, missing = leaderboard.discover([room], LAB)
    assert len(found) <= 5 + 1, len(found)  # the first files in path order, and zoe's
    assert any("45 more files directly in this folder" in r.reason for r in missing), [r.reason for r in missing]
    board = build_leaderboard([room])
    assert [f"{i:03d}.json" for i in range(5)] == [r.path.name for r in board.rejected if r.path.name[0] == "0"]
    lines = "\n".join(board.rejected_lines())
    assert "45 more files directly in this folder" in lines and "reads at most 5 files" in lines, lines


def test_a_file_of_a_million_strings_is_refused_before_its_strings_are_scanned(tmp_path, monkeypatch):
    # Wrong answer caught: 2 MiB of '"","",...' was refused only after the scan that skips string
    # contents (one regular-expression match per string, 700,000 of them): 0.36 s a file here, so 2,000
    # such files 12 minutes. Its quotes alone say it holds more strings than any results file can.
    import time

    from techday.bench import schema

    class NoScan:
        def sub(self, *a, **k):
            raise AssertionError("scanned")

    raw = b'{"notes": [' + b'"",' * (schema.MAX_FILE_BYTES // 3 - 10) + b"1]}"
    (tmp_path / "strings.json").write_bytes(raw)
    monkeypatch.setattr(schema, "_STRINGS", NoScan())
    t0 = time.perf_counter()
    try:
        schema.read_document(tmp_path / "strings.json")
    except schema.ReadError as exc:
        assert "strings, above the cap" in str(exc), str(exc)
    else:
        raise AssertionError("read")
    print(f"\nrefused in {time.perf_counter() - t0:.3f} s")


def _swap_keeping_all(doc):
    """As :func:`_swap_implementations`, every other figure kept."""
    rest = [r for r in _ok(doc) if not any(o is not r and (o["family"], o["kernel"]) == (r["family"], r["kernel"])
                                           and {o["impl"], r["impl"]} == {"numba-cuda", "cupy"} for o in _ok(doc))]
    _swap_implementations(doc)["results"] += rest
    return doc


def _nudge(doc, factor=1.002):
    """Every time moved by one small factor (no recorded time kept), every figure made to agree."""
    for r in _ok(doc):
        retime(r, r["value"] * factor if r["metric"] != "us" else r["value"] / factor)
    return doc


def test_a_copy_with_its_implementations_swapped_and_its_times_nudged_is_left_out(tmp_path):
    # Wrong answer caught: zoe's run with each kernel's Numba CUDA and CuPy labels swapped and every time
    # moved by 0.2 % (no recorded time kept, so no replay; a near-duplicate was compared name by name,
    # and under swapped names the figures differ by the gap between the implementations): ranked, a
    # whisker above zoe on every kernel, nothing said.
    board = _relabelled_copy(tmp_path, lambda d: _nudge(_swap_keeping_all(d)))
    assert [r.who for r in board.runs] == ["zoe"], board.rejected_lines()
    reason = next(r.reason for r in board.rejected if "zz-mallory" in str(r.path))
    assert "relabelled" in reason, reason


def test_the_kit_run_relabelled_and_nudged_is_a_copy_of_the_kit_run(tmp_path):
    course = tmp_path / "course"
    _submit(course, "mallory", "results.json", _nudge(_swap_keeping_all(new_id(h200_base(), "5")), 0.997))
    board = build_leaderboard([course])
    assert board.runs == [], [r.who for r in board.runs]
    assert "a copy of the course kit's own run: relabelled" in board.rejected[0].reason, board.rejected[0].reason


def test_a_launch_faster_than_any_launch_is_marked(tmp_path):
    # Wrong answer caught: an empty-kernel launch invented at 1 us (refused only under 0.5 us; C++
    # launches back to back take about 2 us, the kit's H200 runs 6.7 us from CuPy, 24.5 from Numba)
    # ranked first in latency with nothing said.
    course = tmp_path / "course"
    doc = _jitter(new_id(h200_base(), "6"), 7)
    r = retime(find(doc, "latency.empty-launch", "cupy"), 1.0)
    r["seconds"]["min"] = r["seconds"]["median"] * 0.99
    r["best"] = r["value"] * 0.99
    resample(r)
    _submit(course, "mallory", "results.json", doc)
    _submit(course, "zoe", "results.json", _jitter(new_id(h200_base(), "7"), 8))
    board = build_leaderboard([course])
    assert len(board.runs) == 2, board.rejected_lines()
    rows = {row["who"]: row for row in board.rankings("gpu")["latency.empty-launch"]}
    assert rows["mallory"]["rank"] == 1 and rows["mallory"]["above_limit"] is True
    assert rows["zoe"]["above_limit"] is False
