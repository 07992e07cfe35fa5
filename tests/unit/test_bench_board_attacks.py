"""Attacks on the leaderboard of classes its table did not name: who a row is (names that read alike),
what reaches the terminal and the page, ranks decided below what is shown, and a file changed between
the board's listing and its use. Each test names the wrong answer it catches.
"""

import io
import json
import os
import re

import pytest

from techday.bench import leaderboard
from techday.bench.leaderboard import build_leaderboard, inert
from tests.conftest import ROOT
from tests.unit.test_bench_hostile import _in_mode, _jitter, _submit, base, cpu_base, find, honest_bytes, new_id, retime

H200_RUN = ROOT / "benchmarks" / "results" / "h200-quick-2026-12-04.json"
FIX = ROOT / "tests" / "fixtures" / "bench"
LAB = "08-measure-your-gpu"


def _console(board) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=250, highlight=False)
    for t in board.tables():
        console.print(t)
    return console.file.getvalue()


def _who(board, key="stream.triad"):
    return [row["who"] for row in board.rankings("gpu")[key]]


# ---------------------------------------------------------------------------------------------
# Identity: one row must never read as another participant's.


def test_an_escaped_name_and_a_name_typed_as_its_escape_read_differently(tmp_path):
    # Wrong answer caught: the shown name was not one-to-one. A Cyrillic "аlice" is shown "\u0430lice";
    # a student whose folder is literally named "\u0430lice" (ASCII backslash, u, 0430) was shown the
    # same: two participants, one name on the board.
    course = tmp_path / "course"
    _submit(course, "\u0430lice", "r.json", new_id(base(), "1"))
    _submit(course, "\\u0430lice", "r.json", _jitter(new_id(base(), "2"), 5))
    board = build_leaderboard([course])
    assert len(board.runs) == 2, board.rejected_lines()
    who = _who(board)
    assert len(set(who)) == 2, who
    assert inert("\\") != inert("\\\\") and inert("\\u0430") != inert("\u0430")


@pytest.mark.parametrize("twin", ["zoe ", " zoe", "zo  e"])
def test_names_apart_only_by_spaces_read_differently_where_spaces_collapse(tmp_path, twin):
    # Wrong answer caught: "zoe " (or " zoe", "zo  e") shown as is: an HTML page collapses the spaces,
    # so the row read "zoe" beside zoe's own.
    course = tmp_path / "course"
    _submit(course, "zo e" if twin == "zo  e" else "zoe", "r.json", new_id(base(), "1"))
    _submit(course, twin, "r.json", _jitter(new_id(base(), "2"), 5))
    board = build_leaderboard([course])
    shown = [" ".join(w.split()) for w in _who(board)]  # what a browser draws
    assert len(set(shown)) == 2, shown


@pytest.mark.parametrize("twin", ["aIice", "a1ice", "Alice", "alice_", "ali\u0441e", "alic\u0065\u0301"])
def test_names_that_read_alike_are_marked_on_every_output(tmp_path, twin):
    # Wrong answer caught: "aIice" (capital i), "a1ice", "Alice", a Cyrillic "с" or a combining accent
    # beside alice, ranked as a second participant with nothing to tell the instructor that two rows
    # read alike (in a sans-serif font, "aIice" is "alice").
    course = tmp_path / "course"
    _submit(course, "alice", "r.json", new_id(base(), "1"))
    _submit(course, twin, "r.json", _jitter(new_id(base(), "2"), 5))
    _submit(course, "bob", "r.json", _jitter(new_id(base(), "3"), 6))
    board = build_leaderboard([course])
    rows = board.rankings("gpu")["stream.triad"]
    marked = {row["who"]: row["lookalike"] for row in rows}
    assert marked["bob"] == []
    assert [w for w, others in marked.items() if others] and all(marked[w] for w in marked if w != "bob"), marked
    assert "(look-alike)" in _console(board)
    assert "(look-alike)" in board.html(b"")
    assert all(r["lookalike"] is not None for r in board.to_dict()["rankings"]["gpu"]["stream.triad"])


def test_a_file_and_a_folder_of_one_name_are_two_participants_shown_apart(tmp_path):
    # Wrong answer caught: room/zoe.json (zoe's run) and room/zoe/run.json (another's) made two rows
    # both shown "zoe".
    room = tmp_path / "room"
    (room / "zoe").mkdir(parents=True)
    (room / "zoe.json").write_text(json.dumps(new_id(base(), "1")))
    (room / "zoe" / "run.json").write_text(json.dumps(_jitter(new_id(base(), "2"), 5)))
    board = build_leaderboard([room])
    assert len(board.runs) == 2
    who = _who(board)
    assert len(set(who)) == 2, who


# ---------------------------------------------------------------------------------------------
# Output: nothing of a stranger's reaches the terminal or the page but printable ASCII.

HOSTILE = ("\u200f", "\u200e", "\u061c", "\u2028", "\u2029", "\ufeff", "\u200b", "\u00ad", "\u0410", "\uff21",
           "\u0301")


def test_no_character_of_a_file_or_a_folder_reaches_the_terminal_or_the_page_but_printable_ascii(tmp_path):
    # Wrong answer caught: a CPU-tier run's device name (the schema refuses only C0/C1 controls and
    # the bidi overrides) reached the per-model table and the page as it was: a right-to-left mark,
    # a line separator, a zero-width space, a Cyrillic or full-width look-alike.
    junk = "".join(HOSTILE)
    doc = _jitter(new_id(cpu_base(), "6"), 2)
    doc["environment"]["cpu"] = f"AMD EPYC {junk}"
    doc["environment"]["device"] = f"CPU: AMD EPYC {junk} (2 cores)"  # as the harness names it
    doc["label"] = f"CPU: AMD EPYC {junk}, 2 cores (not a GPU figure)"  # and labels it
    doc["environment"]["host"] = junk
    doc["environment"]["os"] = junk
    doc["notes"] = [junk]
    course = tmp_path / "course"
    _submit(course, f"eve{junk}", f"r{junk}.json", doc)
    board = build_leaderboard([course])
    assert len(board.runs) == 1, board.rejected_lines()
    shown = _console(board) + board.html(b"") + "\n".join(board.rejected_lines())
    assert not [c for c in HOSTILE if c in shown]
    out = board.to_dict()
    for tier in ("gpu", "cpu"):
        for rows in out["rankings"][tier].values():
            for row in rows:
                for k in ("who", "device", "model", "impl"):
                    assert all(" " <= c <= "~" for c in row[k]), (k, row[k])
        assert all(" " <= c <= "~" for model in out["per_model"][tier] for c in model)


def test_a_mode_tag_is_printed_not_taken_for_markup(tmp_path):
    # Wrong answer caught: the console table's kernel column passed "stream.triad [full]" to rich as
    # markup: "[full]" was taken for a style and vanished, so the table of full runs (other sizes)
    # read as the quick suite's "stream.triad" (likewise a CPU-tier "[ci]" run, arrays in a cache).
    from techday.bench.counts import plan_for

    g = base()["environment"]["gpu"]
    full = _in_mode(new_id(base(), "9"), "full", plan_for("gpu", "full", g["l2_bytes"], g["sm_count"]), 0.7)
    (tmp_path / "full.json").write_text(json.dumps(_jitter(full, 3)))
    board = build_leaderboard([tmp_path / "full.json"])
    assert "stream.triad [full]" in board.rankings("gpu")
    assert "stream.triad [full]" in _console(board)


# ---------------------------------------------------------------------------------------------
# Ranking: a rank is never decided below what the board shows.


def _paste_figure(doc, src, key, impl, factor):
    """``doc``'s figure ``key``/``impl`` set to ``src``'s times by ``factor`` (one figure, not a copy)."""
    mine, theirs = find(doc, key, impl), find(src, key, impl)
    amount = mine["bytes"]
    return retime(mine, amount / (theirs["seconds"]["median"] * factor) / 1e9)


def test_a_rank_is_not_won_by_a_difference_the_board_does_not_show(tmp_path):
    # Wrong answer caught: mallory takes zoe's triad time and shaves it by one part in a billion: the
    # table shows both at the same GB/s, yet ranked mallory 1 and zoe 2 (and named mallory alone as
    # the model's best).
    course = tmp_path / "course"
    zoe = new_id(base(), "1")
    mallory = _jitter(new_id(base(), "2"), 5)
    _paste_figure(mallory, zoe, "stream.triad", "numba-cuda", 1 - 1e-9)
    _submit(course, "zoe", "r.json", zoe)
    _submit(course, "mallory", "r.json", mallory)
    board = build_leaderboard([course])
    assert len(board.runs) == 2, board.rejected_lines()
    rows = board.rankings("gpu")["stream.triad"]
    assert [f"{r['value']:,.1f}" for r in rows] == [f"{rows[0]['value']:,.1f}"] * 2
    assert [r["rank"] for r in rows] == [1, 1]
    (best,) = [kernels["stream.triad"] for kernels in board.per_model("gpu").values()]
    assert sorted(best["best_who"]) == ["mallory", "zoe"]


# ---------------------------------------------------------------------------------------------
# Time of check, time of use: the file judged is the file listed, where it was listed.


def _private_run(tmp_path):
    """A run the instructor keeps outside the room (not on the board): mallory cannot read it."""
    private = tmp_path / "instructor"
    private.mkdir()
    (private / "r.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    return private


def _after_listing(monkeypatch, swap):
    real = leaderboard.discover

    def discover(paths, lab):
        out = real(paths, lab)
        swap()
        return out

    monkeypatch.setattr(leaderboard, "discover", discover)


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(tmp_path, monkeypatch):
    # Wrong answer caught: mallory's results.json was a plain file when listed; she put a symbolic
    # link in its place before it was read, and the board followed it to a file she may not read
    # (the instructor's own run), ranked as hers.
    private = _private_run(tmp_path)
    course = tmp_path / "course"
    _submit(course, "mallory", "r.json", {"schema": "techday.bench/1"})
    mine = course / "submitted" / "mallory" / LAB / "r.json"

    def swap():
        mine.unlink()
        mine.symlink_to(private / "r.json")

    _after_listing(monkeypatch, swap)
    board = build_leaderboard([course])
    assert board.runs == [], [r.who for r in board.runs]
    assert "link" in board.rejected[0].reason


def test_a_folder_swapped_for_a_link_after_listing_is_not_followed(tmp_path, monkeypatch):
    # Wrong answer caught: the same through the lab folder: the file's own name is no link, a folder
    # above it became one.
    private = _private_run(tmp_path)
    course = tmp_path / "course"
    _submit(course, "mallory", "r.json", {"schema": "techday.bench/1"})
    lab = course / "submitted" / "mallory" / LAB

    def swap():
        lab.rename(lab.with_name("old"))
        lab.symlink_to(private)

    _after_listing(monkeypatch, swap)
    board = build_leaderboard([course])
    assert board.runs == [], [r.who for r in board.runs]
    assert "link" in board.rejected[0].reason


@pytest.mark.parametrize("where", ["kit", "fixtures"])
def test_where_a_file_lies_is_decided_when_it_is_listed(tmp_path, monkeypatch, where):
    # Wrong answer caught: after her file was read, mallory made her lab folder a link to the kit's
    # results/ (or its test fixtures); the board then asked where the path lay, found the kit's own
    # file (or a fixture) there, and ranked her copy of the kit's H200 run as the kit's file (or her
    # "fixture": true file as the kit's fixture).
    course = tmp_path / "course"
    if where == "kit":
        name, doc, target = H200_RUN.name, json.loads(H200_RUN.read_text()), H200_RUN.parent
        doc["run_id"] = "c" * 32
    else:
        name, doc, target = "gpu-h100-good.json", _jitter(new_id(base(), "7"), 9), FIX
        doc["fixture"] = True
    _submit(course, "mallory", name, doc)
    lab = course / "submitted" / "mallory" / LAB
    real = leaderboard.read_document

    def read_then_swap(path, *args, **kwargs):
        out = real(path, *args, **kwargs)
        if not lab.is_symlink():
            lab.rename(lab.with_name("old"))
            lab.symlink_to(target)
        return out

    monkeypatch.setattr(leaderboard, "read_document", read_then_swap)
    board = build_leaderboard([course])
    assert board.runs == [], [(r.who, r.path) for r in board.runs]
    assert re.search("kit's own run|fixture", board.rejected[0].reason), board.rejected[0].reason


# ---------------------------------------------------------------------------------------------
# The device a row names is the one the board judged.


def test_a_gpu_name_with_two_mig_profiles_is_refused(tmp_path):
    # Wrong answer caught: "NVIDIA H100 80GB HBM3 MIG 7g.80gb MIG 1g.10gb" was judged as the first
    # profile (a 7g slice: the whole GPU's SMs and bandwidth) and shown by the file's name, which ends
    # in "1g.10gb": a "1g slice" at a whole H100's figures, at the top of the room.
    from tests.unit.test_bench_hostile import as_mig

    doc = as_mig(base(), "NVIDIA H100 80GB HBM3 MIG 7g.80gb MIG 1g.10gb", 132, 2900.0, 50000.0, "4")
    (tmp_path / "two.json").write_text(json.dumps(doc))
    board = build_leaderboard([tmp_path / "two.json"])
    assert board.runs == [] and "MIG" in board.rejected[0].reason, board.rejected_lines()


def test_the_device_column_shows_the_row_judged_not_the_files_words(tmp_path):
    # Wrong answer caught: the rankings' device column showed the GPU name as the file wrote it, any
    # words the table's match ignores included ("GeForce RTX H100 80GB": a data-centre H100 dressed as
    # a GeForce card); the row the board judged the run by is what it shows.
    doc = new_id(base(), "5")
    doc["environment"]["gpu"]["name"] = doc["environment"]["device"] = "NVIDIA GeForce RTX H100 80GB HBM3"
    doc["label"] = "GPU (NVIDIA GeForce RTX H100 80GB HBM3)"  # as the harness labels it
    (tmp_path / "r.json").write_text(json.dumps(doc))
    board = build_leaderboard([tmp_path / "r.json"])
    assert len(board.runs) == 1, board.rejected_lines()
    model = board.runs[0].model
    shown = _console(board) + board.html(b"")
    assert "GeForce" not in shown and model in shown


# ---------------------------------------------------------------------------------------------
# Resources: under every cap, a participant's folder costs the board a bounded amount.


def test_a_participants_folder_of_many_files_is_not_held_whole(tmp_path):
    # Wrong answer caught: in a room's folders (not a submitted/ tree), every *.json below a
    # participant's folder was listed, held and sorted before the cap of files read applied: 200,000
    # empty files took 19.4 s and 155 MB at peak here (now 3.9 s, 36 MB).
    from techday.bench.leaderboard import MAX_FILES_PER_PARTICIPANT, discover

    deep = tmp_path / "room" / "mallory" / "a" / "b"
    deep.mkdir(parents=True)
    for i in range(3000):
        (deep / f"r{i:05d}.json").touch()
    (tmp_path / "room" / "mallory" / "a" / "r.json").touch()
    (tmp_path / "room" / "zoe").mkdir()
    (tmp_path / "room" / "zoe" / "r.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    found, _ = discover([tmp_path / "room"], LAB)
    mine = [f for f, who, *_ in found if who == "mallory"]
    assert len(mine) == MAX_FILES_PER_PARTICIPANT + 1  # the first few in path order, and one to say so
    assert mine[0].name == "r00000.json" and mine[-1].name == "r00008.json"
    board = build_leaderboard([tmp_path / "room"])
    assert [r.who for r in board.runs] == ["zoe"]
    assert "more than 8 results files" in board.rejected[-1].reason


def test_a_cpu_runs_count_is_shown_where_its_name_cannot_forge_it(tmp_path):
    # Wrong answer caught: a CPU-tier run's device was shown as the file's name followed by its count,
    # "CPU: AMD EPYC (2 cores) (64 cores)": a CPU named "AMD EPYC (2 cores)" claiming 64 CPUs (a
    # 12.8 TB/s per-CPU ceiling, so a 1.9 TB/s triad passed) read as a 2-core machine.
    doc = _jitter(new_id(cpu_base(), "8"), 4)
    env = doc["environment"]
    env.update(cpu="AMD EPYC (2 cores)", cpu_count=64)
    env["device"] = f"CPU: {env['cpu']} ({env['cpu_count']} cores)"  # as the harness names it
    doc["label"] = f"CPU: {env['cpu']}, {env['cpu_count']} cores (not a GPU figure)"  # and labels it
    retime(find(doc, "stream.triad", "numba-cpu"), 1900.0)
    (tmp_path / "r.json").write_text(json.dumps(doc))
    board = build_leaderboard([tmp_path / "r.json"])
    assert len(board.runs) == 1, board.rejected_lines()
    row = board.rankings("cpu")["stream.triad"][0]
    assert row["value"] == pytest.approx(1900.0) and row["model"].startswith("64 cores: "), row["model"]
    assert "64 cores: AMD EPYC (2 cores)" in _console(board) and "64 cores: AMD EPYC (2 cores)" in board.html(b"")


def test_a_files_own_words_never_name_its_participant(tmp_path):
    # Handled already (kept as coverage of the class): mallory's file with its host and device hash
    # copied from zoe's is ranked as mallory's, beside zoe's own row. Her file labelled as zoe's
    # ("GPU (NVIDIA H100 80GB HBM3) zoe") is left out: a label other than the harness's.
    course = tmp_path / "course"
    zoe = new_id(base(), "1")
    mallory = _jitter(new_id(base(), "2"), 5)
    mallory["environment"].update(host=zoe["environment"].get("host", "zoe"), device_hash="zoe")
    labelled = _jitter(new_id(base(), "3"), 6)
    labelled["label"] = "GPU (NVIDIA H100 80GB HBM3) zoe"
    _submit(course, "zoe", "r.json", zoe)
    _submit(course, "mallory", "zoe.json", mallory)
    _submit(course, "mallory", "zoe2.json", labelled)
    board = build_leaderboard([course])
    assert sorted(_who(board)) == ["mallory", "zoe"]
    assert not any(r["lookalike"] for r in board.rankings("gpu")["stream.triad"])
    assert [r.path.name for r in board.rejected] == ["zoe2.json"] and "is not the one the harness writes" in \
        board.rejected[0].reason


def test_a_participants_folders_the_board_cannot_list_take_two_lines_not_one_each(tmp_path, monkeypatch):
    # Wrong answer caught: every subfolder the search could not list had a line of its own: mallory's
    # 500 folders of mode 000 (a participant who is not the instructor may set them) printed 500 lines
    # and buried bob's one, the line that mattered. The listing's failure is simulated (tests may run
    # as root).
    real = os.scandir

    def locked(path):
        if os.path.basename(str(path)).startswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    room = tmp_path / "room"
    for i in range(500):
        (room / "mallory" / f"locked{i:03d}").mkdir(parents=True)
    (room / "bob" / "locked").mkdir(parents=True)
    (room / "zoe").mkdir()
    (room / "zoe" / "r.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    monkeypatch.setattr(os, "scandir", locked)
    board = build_leaderboard([room])
    assert [r.who for r in board.runs] == ["zoe"]
    lines = board.rejected_lines()
    assert len(lines) <= 4, lines[:6]
    assert any("bob" in line and "Permission denied" in line for line in lines)
    assert any("499 more folders" in line for line in lines), lines


def test_a_crowd_of_look_alikes_names_a_few_on_each_row(tmp_path):
    # Wrong answer caught (output size): every look-alike's rows named all the others; 2,000 names that
    # read alike (the board's cap of files) would write 2,000 x 2,000 names on every kernel's rows.
    from techday.bench.leaderboard import MAX_LOOKALIKES

    room = tmp_path / "room"
    names = ["alice", "Alice", "ALICE", "aIice", "a1ice", "alIce", "al1ce", "AIice"]
    for i, who in enumerate(names):
        (room / who).mkdir(parents=True)
        (room / who / "r.json").write_text(json.dumps(_jitter(new_id(base(), "0123456789abcdef"[i]), 20 + i)))
    board = build_leaderboard([room])
    assert len(board.runs) == len(names), board.rejected_lines()
    for run in board.runs:
        assert len(run.lookalike) == MAX_LOOKALIKES + 1
        assert run.lookalike[-1] == f"and {len(names) - 1 - MAX_LOOKALIKES} more"


def test_the_roofline_draws_a_bounded_number_of_roofs(tmp_path, monkeypatch):
    # Wrong answer caught: a CPU-tier run names its CPU in its own words, and the roofline drew a
    # measured roof and a legend entry for every name: 400 runs under 400 CPU names took 22.8 s here
    # and the legend covered the plot. The GPU's roof is drawn whatever the CPUs.
    import copy

    import matplotlib.axes

    from techday.bench.report import MAX_ROOFS, roofline_png

    board = build_leaderboard([ROOT / "benchmarks" / "results" / "cpu-tier-quick-2core-ci.json", H200_RUN])
    cpu, gpu = sorted(board.plot_docs(), key=lambda d: d["tier"])
    docs = [gpu]
    for i in range(40):
        d = copy.deepcopy(cpu)
        d["environment"]["cpu"] = f"CPU model {i}"
        docs.append(d)
    entries = []
    legend = matplotlib.axes.Axes.legend

    def counted(self, *args, **kwargs):
        entries.extend(self.get_legend_handles_labels()[1])
        return legend(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", counted)
    assert roofline_png(docs, tmp_path / "r.png")[:4] == b"\x89PNG"
    roofs = [e for e in entries if ": roof (" in e or ": measured roof (" in e]
    assert len(roofs) == MAX_ROOFS and any(e.startswith("H200") for e in roofs), entries
    assert "29 other devices (points only, no roof)" in entries


def test_a_name_cannot_wear_the_boards_own_marks(tmp_path):
    # Wrong answer caught: the marks were written after the name, in its cell: a folder named
    # "alice (disputed)" (any printable ASCII is shown as is) read as alice's row marked disputed, and
    # "mallory (fixture)" as a fixture. The marks now have a column no name reaches.
    room = tmp_path / "room"
    for i, who in enumerate(["alice (disputed)", "mallory (fixture)"]):
        (room / who).mkdir(parents=True)
        (room / who / "r.json").write_text(json.dumps(_jitter(new_id(base(), "12"[i]), 30 + i)))
    board = build_leaderboard([room])
    assert len(board.runs) == 2, board.rejected_lines()
    table = board.tables()[0]
    columns = {c.header: [str(cell) for cell in c._cells] for c in table.columns}
    assert "alice (disputed)" in columns["who"] and set(columns["marks"]) == {""}, columns["marks"]
    assert "<td>alice (disputed)</td><td></td>" in board.html(b"")


def test_a_name_is_printed_as_text_not_as_an_emoji_code(tmp_path, monkeypatch):
    # Wrong answer caught: rich turns ":o:" into an emoji even in text escaped with rich.markup.escape
    # (which escapes only brackets): a student folder named "b:o:b" was printed "b⭕b" (read as bob),
    # "zoe:white_check_mark:" with a check mark, in the tables and in the lines of files left out.
    import argparse

    from rich.console import Console

    from techday.cli import bench as cli

    course = tmp_path / "course"
    _submit(course, "b:o:b", "r.json", new_id(base(), "1"))
    _submit(course, "zoe:white_check_mark:", "r.json", {"schema": "techday.bench/1"})
    board = build_leaderboard([course])
    shown = _console(board)
    assert "b:o:b" in shown and "\u2b55" not in ascii(shown)
    out, err = (Console(file=io.StringIO(), width=250, highlight=False) for _ in range(2))
    monkeypatch.setattr(cli, "console", out)
    monkeypatch.setattr(cli, "err", err)
    cli.cmd_leaderboard(argparse.Namespace(paths=[str(course)], lab=LAB, out=str(tmp_path / "out")))
    printed = out.file.getvalue() + err.file.getvalue()
    assert "zoe:white_check_mark:" in printed and "b:o:b" in printed
    assert not [c for c in printed if c in "\u2b55\u2705"]


@pytest.mark.parametrize("layout", ["room", "submitted"])
def test_one_participants_links_do_not_hide_anothers(tmp_path, layout):
    # Wrong answer caught: the links met were named board-wide up to 50 lines, then only counted:
    # mallory's 60 links to the kit's H200 run took all 50 lines, and eve's one link (the line the
    # instructor needed) was a number in "10 more links".
    if layout == "room":
        mine, hers = tmp_path / "room" / "mallory", tmp_path / "room" / "eve"
        given = tmp_path / "room"
    else:
        mine, hers = (tmp_path / "course" / "submitted" / w / LAB for w in ("mallory", "eve"))
        given = tmp_path / "course"
    mine.mkdir(parents=True)
    hers.mkdir(parents=True)
    for i in range(60):
        (mine / f"r{i:02d}.json").symlink_to(H200_RUN)
    (hers / "r.json").symlink_to(H200_RUN)
    board = build_leaderboard([given])
    lines = board.rejected_lines()
    assert any(f"{hers}/r.json: a symbolic link" in line for line in lines), lines
    assert any("59 more symbolic links below this folder" in line for line in lines), lines
    assert len([line for line in lines if "symbolic link" in line]) == 3, lines


def test_one_participants_deep_folders_do_not_hide_anothers(tmp_path):
    # Wrong answer caught: only the first folder past the depth cap was named, board-wide: mallory's
    # folder 20 deep was named and eve's results, 9 deep, went unsaid.
    room = tmp_path / "room"
    deep_m = room / "mallory" / "/".join("d" * 20)
    deep_m.mkdir(parents=True)
    deep_e = room / "eve" / "/".join("abcdefghi")
    deep_e.mkdir(parents=True)
    (deep_e / "r.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    board = build_leaderboard([room])
    lines = [line for line in board.rejected_lines() if "nested more than" in line]
    assert len(lines) == 2 and any(f"{room / 'eve'}/" in line for line in lines), lines


def test_two_files_of_one_name_given_alone_are_told_apart_not_marked(tmp_path):
    # Wrong answer caught the other way: two results.json named on the command line (the usual way to
    # compare two people's runs) were both shown "results", and the look-alike mark is for different
    # names that read alike: they are shown with where they lie, and not marked.
    paths = []
    for i, who in enumerate(("alice", "bob")):
        (tmp_path / who).mkdir()
        paths.append(tmp_path / who / "results.json")
        paths[-1].write_text(json.dumps(_jitter(new_id(base(), "12"[i]), 40 + i)))
    board = build_leaderboard(paths)
    rows = board.rankings("gpu")["stream.triad"]
    assert sorted(r["who"] for r in rows) == sorted(f"results ({p})" for p in paths)
    assert all(r["lookalike"] == [] for r in rows)


def test_the_board_does_not_publish_a_run_id_one_could_paste(tmp_path):
    # Wrong answer caught: leaderboard.json listed every ranked run's run_id; once it was shared,
    # mallory pasted zoe's into a run of her own and zoe's rows were marked "disputed".
    course = tmp_path / "course"
    zoe = new_id(base(), "1")
    zoe["run_id"] = "0123456789abcdef" * 2
    _submit(course, "zoe", "r.json", zoe)
    board = build_leaderboard([course])
    paths = board.write(tmp_path / "out")
    published = paths["json"].read_text() + paths["html"].read_text() + _console(board)
    assert zoe["run_id"] not in published and zoe["run_id"][:16] not in published
    assert all(len(r["run"]) == 16 for r in board.to_dict()["runs"])
