"""What the leaderboard trusts: only the kit it was installed with, and a file's figures, never its
place, its inode, its run id or its own claims about the machine.

Each test names the wrong answer the old board gave (the red-team review of the board).
"""

import json
import os
import shutil

import pytest

from techday.bench import counts, leaderboard
from techday.bench.leaderboard import build_leaderboard
from tests.conftest import ROOT
from tests.unit.test_bench_hostile import finish, resample

FIX = ROOT / "tests" / "fixtures" / "bench"
RESULTS = ROOT / "benchmarks" / "results"
H200_RUN = RESULTS / "h200-quick-2026-12-04.json"
CPU_RUN = RESULTS / "cpu-tier-quick-2core-ci.json"


def doc_of(path):
    """A results file as a participant would hand it in: the kit's version-1 runs in the harness's
    current version (:func:`tests.unit.test_bench_hostile.as_current`), their summaries kept."""
    from tests.unit.test_bench_hostile import as_current

    doc = json.loads(path.read_text())
    return as_current(doc) if doc.get("schema") == "techday.bench/1" else doc


def student(doc, run_id=None):
    """A fixture handed in as a student's file: no fixture mark (a room never ranks fixtures)."""
    doc = dict(doc)
    doc.pop("fixture", None)
    if run_id:
        doc["run_id"] = run_id * 32
    return doc


def submit(course, who, name, doc):
    lab = course / "submitted" / who / "08-measure-your-gpu"
    lab.mkdir(parents=True, exist_ok=True)
    path = lab / name
    path.write_text(json.dumps(doc))
    return path


def retime_all(doc, seed, rel=0.02):
    """Each timed figure moved by its own noise (an honest second run), its recorded figures made to agree."""
    import random

    rng = random.Random(seed)
    for r in doc["results"]:
        if r.get("status") != "ok":
            continue
        f = 1 + rng.uniform(-rel, rel)
        for k in ("median", "min", "max"):
            r["seconds"][k] *= f
        amount = {"gbs": r["bytes"], "gflops": r["flops"]}.get(r["metric"])
        rate = (lambda t: amount / t / 1e9) if amount else (lambda t: t * 1e6)
        r["value"], r["best"] = rate(r["seconds"]["median"]), rate(r["seconds"]["min"])
        for k in ("fraction", "limit", "gbs", "gflops", "us"):
            r.pop(k, None)
        resample(r)
    return finish(doc)


@pytest.fixture
def fresh_caches():
    """The board's caches (kernel tables, the kit's runs) emptied before and after: what a test's
    working directory would change must be computed under it."""
    counts._table.cache_clear()
    leaderboard.kit_runs.cache_clear()
    yield
    counts._table.cache_clear()
    leaderboard.kit_runs.cache_clear()


# ---------------------------------------------------------------------------------------------
# 1. The kit the board counts with is the installed one, never one found from the working directory.


def test_a_course_root_in_the_working_directory_changes_nothing_and_runs_nothing(tmp_path, monkeypatch,
                                                                                 fresh_caches):
    # Wrong answer caught: the board run from inside a student's folder holding course/syllabus.toml and
    # a benchmarks/ of its own imported that stream.py (the student's Python, run by the instructor) and
    # counted with it, and took its benchmarks/results/ for the kit's runs (so an honest run that the
    # folder also holds was refused as "a copy of the course kit's own run").
    fake = tmp_path / "mallory"
    (fake / "course").mkdir(parents=True)
    (fake / "course" / "syllabus.toml").write_text((ROOT / "course" / "syllabus.toml").read_text())
    shutil.copytree(ROOT / "benchmarks", fake / "benchmarks", ignore=shutil.ignore_patterns("results", "__pycache__"))
    ran = tmp_path / "ran"
    poison = f"import pathlib\npathlib.Path({str(ran)!r}).mkdir(exist_ok=True)\n"
    stream = fake / "benchmarks" / "stream.py"
    stream.write_text(poison + stream.read_text().replace("words * 8 * n", "words * 80 * n"))
    (fake / "techday").mkdir()  # a package shadowing the kit's, for a child that puts its cwd first
    (fake / "techday" / "__init__.py").write_text(poison)
    (fake / "benchmarks" / "results").mkdir()
    shutil.copy(FIX / "gpu-h100-good.json", fake / "benchmarks" / "results" / "mine.json")
    monkeypatch.chdir(fake)
    monkeypatch.delenv("TECHDAY_ROOT", raising=False)
    monkeypatch.setenv("TECHDAY_BENCHMARKS", str(fake / "benchmarks"))

    board = build_leaderboard([FIX / "gpu-h100-good.json"])

    assert not ran.exists(), "the board ran Python from the working directory's course"
    assert board.rejected == [], board.rejected_lines()
    assert [r["value"] for r in board.rankings("gpu")["stream.triad"]] == pytest.approx([2950.0])
    assert {k.path.parent for k in leaderboard.kit_runs()} <= {RESULTS.resolve(), (RESULTS / "h200-2026-12-04").resolve()}


# ---------------------------------------------------------------------------------------------
# 2. The kit's own run is recognised by its figures, wherever it lies and whatever its inode.


def test_a_hard_link_to_the_kit_s_run_is_judged_by_its_figures(tmp_path):
    # Wrong answer caught: a hard link of the kit's H200 run in a student's folder is the kit file's own
    # inode (samefile), so the kit-copy check was skipped and the kit's H200 figures topped the room
    # under the student's name.
    course = tmp_path / "course"
    lab = course / "submitted" / "mallory" / "08-measure-your-gpu"
    lab.mkdir(parents=True)
    try:
        os.link(H200_RUN, lab / "results.json")
    except OSError as exc:  # another file system: no hard link possible, nothing to test
        pytest.skip(f"no hard link from {tmp_path} to the checkout: {exc}")
    board = build_leaderboard([course])
    assert board.runs == []
    assert "a copy of the course kit's own run: the same results as benchmarks/results/h200-quick" in \
        board.rejected[0].reason


def test_a_symlinked_lab_folder_or_file_is_not_followed_and_says_so(tmp_path):
    # Wrong answer caught: submitted/mallory/08-measure-your-gpu -> benchmarks/results: the board followed
    # the link, read the kit's own files where they lie, and ranked the kit's H200 run as mallory's.
    course = tmp_path / "course"
    (course / "submitted" / "mallory").mkdir(parents=True)
    os.symlink(RESULTS, course / "submitted" / "mallory" / "08-measure-your-gpu")
    os.symlink(RESULTS / "h200-2026-12-04", course / "submitted" / "trudy")
    eve = submit(course, "eve", "mine.json", student(doc_of(CPU_RUN)))
    os.symlink(H200_RUN, eve.parent / "results.json")
    room = tmp_path / "room"
    (room / "oscar").mkdir(parents=True)
    os.symlink(RESULTS, room / "oscar" / "lab08")
    board = build_leaderboard([course, room])
    assert all(r.who != "mallory" and r.who != "trudy" and r.who != "oscar" for r in board.runs)
    lines = {r.path.relative_to(tmp_path).as_posix(): r.reason for r in board.rejected}
    for link in ("course/submitted/mallory/08-measure-your-gpu", "course/submitted/trudy",
                 "course/submitted/eve/08-measure-your-gpu/results.json", "room/oscar/lab08"):
        assert "symbolic link: not followed" in lines.get(link, ""), (link, lines)
    # eve's own file, a copy of the kit's CPU run, is still judged (by its figures).
    assert "a copy of the course kit's own run" in lines["course/submitted/eve/08-measure-your-gpu/mine.json"]


def test_the_kit_s_runs_where_they_lie_are_still_admitted():
    # The other way: the path check must not refuse the kit's own files as copies of themselves.
    board = build_leaderboard([RESULTS])
    assert sorted(r.path.name for r in board.runs) == sorted(
        [CPU_RUN.name, H200_RUN.name, "run1-lab08-bench-numba-builtin.json"]), board.rejected_lines()


# ---------------------------------------------------------------------------------------------
# 3. A copy is decided by figures: a pasted run_id evicts nobody.


def test_a_copied_run_id_alone_evicts_nobody_and_both_files_are_marked(tmp_path):
    # Wrong answer caught: bob (sorting first) pastes zoe's run_id into his own, different run: the board
    # called zoe's file "duplicate run: run_id ... was already merged" and left her out.
    course = tmp_path / "course"
    zoe = student(doc_of(FIX / "gpu-h100-good.json"))
    bob = retime_all(student(doc_of(FIX / "gpu-h100-good.json")), 5, rel=0.05)
    bob["run_id"] = zoe["run_id"]
    submit(course, "zoe", "results.json", zoe)
    submit(course, "0bob", "results.json", bob)
    board = build_leaderboard([course])
    assert sorted(r.who for r in board.runs) == ["0bob", "zoe"], board.rejected_lines()
    assert board.rejected == []
    marks = {r.who: r.disputed for r in board.runs}
    assert marks["zoe"] == ["shares run_id aaaaaaaaaaaa with 0bob (results.json): figures differ"]
    assert marks["0bob"] == ["shares run_id aaaaaaaaaaaa with zoe (results.json): figures differ"]
    assert all(row["disputed"] for row in board.rankings("gpu")["stream.triad"])


def test_the_same_figures_under_the_same_run_id_are_still_one_run(tmp_path):
    # The other way: a file handed in twice is one run (decided by its figures).
    course = tmp_path / "course"
    doc = student(doc_of(FIX / "gpu-h100-good.json"))
    submit(course, "zoe", "results.json", doc)
    submit(course, "bob", "results.json", doc)
    board = build_leaderboard([course])
    assert [r.who for r in board.runs] == ["bob"]
    assert "duplicate run: the same results as" in board.rejected[0].reason
    assert "the same run_id" in board.rejected[0].reason


# ---------------------------------------------------------------------------------------------
# 7. Fixtures are never ranked from a room.


def test_a_fixture_in_a_room_is_never_ranked(tmp_path):
    # Wrong answer caught: a student's file saying "fixture": true was ranked (first), marked "(fixture)".
    course = tmp_path / "course"
    submit(course, "mallory", "results.json", doc_of(FIX / "gpu-h100-good.json"))
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "mallory.json").write_bytes((FIX / "gpu-h100-second-run.json").read_bytes())
    board = build_leaderboard([course, flat])
    assert board.runs == []
    assert [r.path.name for r in board.rejected] == ["results.json", "mallory.json"]
    assert all("a test fixture" in r.reason for r in board.rejected)
    # The kit's own fixtures where they lie, or a file the instructor names, are shown marked.
    board = build_leaderboard([FIX / "gpu-a100-good.json", flat / "mallory.json"])
    assert len(board.runs) == 2 and all(r.fixture for r in board.runs)


# ---------------------------------------------------------------------------------------------
# 4. A CPU-tier run states its CPU count.


@pytest.mark.parametrize("count", [None, 0, -2])
def test_a_cpu_run_without_a_positive_cpu_count_is_refused(tmp_path, count):
    # Wrong answer caught: with cpu_count missing, 0 or -2 the per-CPU ceiling was skipped and a 1.9 TB/s
    # "CPU" triad (a 2-CPU machine streams about 20 GB/s) passed under the flat 2 TB/s ceiling.
    doc = retime_all(doc_of(CPU_RUN), 11)
    doc["run_id"] = "c" * 32
    r = next(r for r in doc["results"] if r["kernel"] == "triad" and r["impl"] == "numba-cpu")
    t = r["bytes"] / 1900e9
    r["seconds"].update(median=t, min=t, max=t * 1.01)
    r["value"] = r["best"] = 1900.0
    env = doc["environment"]
    if count is None:
        del env["cpu_count"]
    else:
        env["cpu_count"] = count
    env["device"] = f"CPU: {env['cpu']} ({count} cores)"
    (tmp_path / "fast.json").write_text(json.dumps(doc))
    board = build_leaderboard([tmp_path / "fast.json"])
    assert board.runs == []
    assert "environment.cpu_count is" in board.rejected[0].reason
    assert "positive number of CPUs" in board.rejected[0].reason


# ---------------------------------------------------------------------------------------------
# 5. Lowered clocks cannot lower the board's limit.


def _h200_at_clocks(clock, memory_clock, stated, seed):
    """The H200 run (its own noise) recording lower clocks; ``stated``: with the limits and fractions its
    harness would write from those clocks (a capped part, honestly), else with none stated."""
    from techday.bench.limits import device_limits, limit_for
    from techday.bench.verify import _gpu_info

    doc = retime_all(doc_of(H200_RUN), seed, rel=0.01)
    doc["run_id"] = f"{seed:x}" * 32
    g = doc["environment"]["gpu"]
    g.update(clock_mhz=clock, memory_clock_mhz=memory_clock)
    own = device_limits(_gpu_info(g))
    for key in ("dram_gbs", "fp32_gflops", "tf32_gflops", "fp16_gflops", "bf16_gflops"):
        doc["limits"][key] = own[key] if stated else None
    if stated:
        for r in doc["results"]:
            if r["status"] == "ok" and r["device"] == "gpu" and r.get("limit_key"):
                lim = limit_for(own, r["limit_key"], r["flops"] / r["bytes"] if r["bytes"] and r["flops"] else None)
                if lim:
                    r.update(limit=lim, fraction=r["value"] / lim)
    return doc


def test_lowered_clocks_cannot_make_a_figure_read_closer_to_the_limit(tmp_path):
    # Wrong answer caught: an H200 run recording clocks lowered just so far that its best figure of each
    # limit sits at 104 % of the limit they give had its DRAM and FP32 limits scaled down with them, and
    # read "100 %" and more "of limit" on the board. The board's limit is the row's: 4,813 GB/s.
    from techday.bench.verify import verify

    worst = {"dram_gbs": 0.0, "fp32_gflops": 0.0}
    for f in verify(_h200_at_clocks(1980.0, 3201.0, stated=False, seed=13)).figures:
        key = "dram_gbs" if f.metric == "gbs" and f.limit else "fp32_gflops" if f.metric == "gflops" and f.limit else None
        if key and f.limit and (f.key.startswith("stream") or f.key == "matmul.fp32" or key == "dram_gbs"):
            worst[key] = max(worst[key], max(f.value, f.best) / f.limit)
    low = _h200_at_clocks(1980.0 * min(1, worst["fp32_gflops"] / 1.04), 3201.0 * worst["dram_gbs"] / 1.04,
                          stated=False, seed=13)
    (tmp_path / "low.json").write_text(json.dumps(low))
    (tmp_path / "capped.json").write_text(json.dumps(_h200_at_clocks(1700.0, 3000.0, stated=True, seed=14)))
    board = build_leaderboard([tmp_path])
    assert board.rejected == [], board.rejected_lines()  # a capped part that states its own limits is ranked
    for run in board.runs:
        assert run.verified.limits["dram_gbs"] == pytest.approx(2 * 3201e6 * 6016 / 8 / 1e9)
        assert run.verified.limits["fp32_gflops"] == pytest.approx(132 * 128 * 2 * 1.98)
        triad = run.best()["stream.triad"]
        assert triad.fraction == pytest.approx(triad.value / run.verified.limits["dram_gbs"]) and triad.fraction < 0.95


# ---------------------------------------------------------------------------------------------
# 7. Times no run records.


def _h200_edited(fn, c):
    doc = retime_all(doc_of(H200_RUN), ord(c))
    doc["run_id"] = c * 32
    fn(doc)
    return doc


def _timed(doc):
    return [r for r in doc["results"] if r["status"] == "ok"]


def _equal_samples(doc):
    # The event-timed figures only: equal perf_counter repetitions are refused one figure at a time
    # (schema.contract), before this rule on the whole file is reached.
    doc["results"] = [r for r in doc["results"] if r.get("seconds", {}).get("clock") != "perf_counter"]
    for r in _timed(doc):
        s = r["seconds"]
        s.update(min=s["median"], max=s["median"], spread=0.0, samples=[s["median"]] * s["reps"])
        r["best"] = r["value"]


CASES_7 = {
    "future": (lambda d: d.update(started="2999-01-01T00:00:00+00:00"), "days ahead of the board's clock"),
    "not-a-time": (lambda d: d.update(started="yesterday"), "started 'yesterday' is not an ISO 8601 time"),
    "huge-reps": (lambda d: [r["seconds"].update(reps=10**19) for r in _timed(d)],
                  "10000000000000000000 repetitions stated, 200 samples recorded"),
    "equal-samples": (_equal_samples, "exactly the same time in each of its repetitions"),
}


def test_a_start_in_the_future_absurd_repetitions_or_identical_samples_are_refused(tmp_path):
    # Wrong answer caught: a run started in 2999, one of 10**19 repetitions per figure, and one whose every
    # repetition of every figure took the same time to the last bit were all admitted and ranked.
    for i, (name, (fn, _)) in enumerate(CASES_7.items()):
        (tmp_path / f"{name}.json").write_text(json.dumps(_h200_edited(fn, "abcd"[i])))
    board = build_leaderboard([tmp_path])
    reasons = {r.path.stem: r.reason for r in board.rejected}
    assert board.runs == []
    for name, (_, words) in CASES_7.items():
        assert words in reasons[name], (name, reasons[name])


# ---------------------------------------------------------------------------------------------
# 6. Scale: the copy search is indexed (and exact), the files read and the points drawn are bounded.


class _FakeRun:
    def __init__(self, tier, sig, times=None):
        self.tier, self._sig, self._times = tier, sig, times or {}
        self.participant = ("file", str(id(self)))  # each its own participant

    def signature(self):
        return self._sig

    def times(self):
        return self._times

    def ranked(self):
        from techday.bench.leaderboard import by_rank

        return by_rank(self._sig)


def test_the_copy_index_finds_exactly_what_comparing_every_pair_finds():
    # Wrong answer caught (the other way from speed): an index that misses a nudged, rescaled or partial
    # copy, or a copy of a run that lacks an anchor figure. Checked against the pairwise rules on
    # random rooms seeded with each kind of copy.
    import random

    from techday.bench.leaderboard import ANCHORS, _Index, near_duplicate, replayed

    rng = random.Random(7)
    keys = list(ANCHORS["gpu"]) + [f"k.{i} impl" for i in range(30)]
    runs = []
    for i in range(300):
        kind = rng.random()
        if runs and kind < 0.15:  # a nudged copy (within 0.4 %), some figures dropped
            src = rng.choice(runs)
            sig = {k: v * rng.uniform(0.996, 1.004) for k, v in src._sig.items() if rng.random() < 0.9}
        elif runs and kind < 0.3:  # a rescaled copy, any factor
            src, f = rng.choice(runs), rng.uniform(0.5, 2.0)
            sig = {k: v * f * rng.uniform(0.9998, 1.0002) for k, v in src._sig.items()}
        elif kind < 0.4:  # a partial run: no anchor figures
            sig = {k: rng.uniform(1, 2) for k in keys[4:] if rng.random() < 0.7}
        elif kind < 0.5:  # a partial run holding some anchors (one family left out)
            gone = set(rng.sample(keys[:4], rng.choice((1, 2))))
            sig = {k: (1 + keys.index(k)) * rng.uniform(0.97, 1.03) for k in keys if k not in gone}
        else:  # honest: every figure near the same device's figure, with its own noise
            sig = {k: (1 + keys.index(k)) * rng.uniform(0.97, 1.03) for k in keys if rng.random() < 0.95}
        runs.append(_FakeRun("gpu", sig, {k: (round(v, 2),) for k, v in sig.items()}))
    index, brute, found = _Index(), 0, 0
    for run in runs:
        want = next((o for o in index.runs if near_duplicate(run._sig, o._sig) or replayed(run._times, o._times)), None)
        got, _ = index.copy_of(run)
        assert got is want
        found += want is not None
        brute += len(index.runs)
        index.add(run)
    assert found > 60  # the room held copies of every kind, and each was found
    assert index.compared < brute / 4, (index.compared, brute)


def _room(tmp_path, n, seed=0):
    room = tmp_path / "room"
    for i in range(n):
        doc = retime_all(doc_of(H200_RUN), 1000 + seed + i, rel=0.03)
        doc["run_id"] = f"{i + 1:032x}"
        (room / f"p{i:03d}").mkdir(parents=True)
        (room / f"p{i:03d}" / "results.json").write_text(json.dumps(doc))
    return room


def test_a_room_of_runs_lacking_one_anchor_is_indexed_too():
    # Wrong answer caught: runs without one anchor figure (a room of machines without one family) were
    # each compared with every run merged: 200 of them made 19,900 full comparisons (300 real H200 runs
    # without the latency family: 44,850, 3.2 s more here; 2,000 about two and a half minutes).
    import random

    from techday.bench.leaderboard import ANCHORS, _Index

    rng = random.Random(3)
    keys = list(ANCHORS["gpu"][:3]) + [f"k.{i} impl" for i in range(30)]  # no latency figure
    index = _Index()
    for _ in range(200):
        run = _FakeRun("gpu", {k: (1 + keys.index(k)) * rng.uniform(0.9, 1.1) for k in keys})
        assert index.copy_of(run) == (None, None)
        index.add(run)
    assert index.compared < 200 * 199 / 2 / 10, index.compared


def test_a_room_is_compared_in_far_fewer_than_every_pair_and_a_copy_is_still_found(tmp_path):
    # Wrong answer caught: every merged run compared with every other (600 runs: 180,000 comparisons).
    room = _room(tmp_path, 40)
    copy = json.loads((room / "p007" / "results.json").read_text())
    copy["run_id"] = "f" * 32
    for r in copy["results"]:
        if r["status"] == "ok":
            for k in ("median", "min", "max"):
                r["seconds"][k] *= 1.003
            r["value"] /= 1.003
            r["best"] /= 1.003
            resample(r)
    finish(copy)
    (room / "zz-copier").mkdir()
    (room / "zz-copier" / "results.json").write_text(json.dumps(copy))
    board = build_leaderboard([room])
    assert len(board.runs) == 40
    assert "near-duplicate" in board.rejected[0].reason and "p007" in board.rejected[0].reason
    assert board.comparisons < 40 * 41 / 2 / 4, board.comparisons


def test_the_board_reads_a_bounded_number_of_files_and_names_the_rest(tmp_path, monkeypatch):
    # Wrong answer caught: a room of any size read in full (1,200 files took 206 s here).
    monkeypatch.setattr(leaderboard, "MAX_FILES", 3)
    board = build_leaderboard([_room(tmp_path, 5)])
    assert [r.who for r in board.runs] == ["p000", "p001", "p002"]
    assert len(board.rejected) == 1
    assert board.rejected[0].path.parent.name == "p003"
    assert "reads at most 3 files; this one and the 1 after it in path order are left out (of p003, p004)" in \
        board.rejected[0].reason


def test_the_roofline_draws_each_participant_s_best_per_kernel_only(tmp_path):
    # Wrong answer caught: every figure of every file drawn (600 files: 26,000 points, a minute of
    # matplotlib); a participant's three runs drawn three times.
    course = tmp_path / "course"
    for i in range(3):
        submit(course, "bob", f"run{i}.json", retime_all(doc_of(H200_RUN), 40 + i, rel=0.03) | {"run_id": f"{i + 1}" * 32})
    board = build_leaderboard([course])
    assert len(board.runs) == 3, board.rejected_lines()
    docs = board.plot_docs()
    assert len(docs) == 1
    kernels = [f"{r['family']}.{r['kernel']}" for r in docs[0]["results"]]
    assert sorted(kernels) == sorted(set(kernels)) == sorted(board.runs[0].best())
    best = {k: row["value"] for k, rows in board.rankings("gpu").items() for row in rows}
    assert all(r["value"] == best[f"{r['family']}.{r['kernel']}"] for r in docs[0]["results"])
