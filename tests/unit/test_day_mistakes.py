"""Mistakes an instructor makes on the day: each gets one clear line, a non-zero exit code, no traceback,
and loses nothing (CONTRIBUTING.md, Package: "Bad input gets a clear error ... and loses nothing")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from techday.cli.main import main
from tests.conftest import ROOT
from tests.unit.test_certificates import empty_gradebook, gradebook, make_course, passing  # noqa: F401 (fixtures)


def _quiet_results(monkeypatch) -> None:
    """`grade results` without nbgrader's feedback and export subprocesses, and without a font search."""
    monkeypatch.setattr("techday.grading.results.generate_feedback", lambda root, labs: [])
    monkeypatch.setattr("techday.course.build.nbgrader", lambda *a, **k: type("P", (), {"returncode": 0})())
    monkeypatch.setattr("techday.grading.results.safe_csv", lambda path: None)
    monkeypatch.setattr("techday.grading.results.hangul_font", lambda: None)


def _snapshot(out) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture
def named_results(make_course, monkeypatch, tmp_path, capsys):
    """A room whose certificates were issued with the names of a good roster."""
    _quiet_results(monkeypatch)
    course, root, out = make_course()
    gradebook(root, course.id, passing("t-1", "t-2"))
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nt-1,김민준\nt-2,Lee Jiwoo\n", encoding="utf-8")
    assert main(["--root", str(course.root), "grade", "results", "--roster", str(roster)]) == 0
    capsys.readouterr()
    assert "김민준" in (out / "passfail.csv").read_text(encoding="utf-8")
    return course, root, out


@pytest.mark.parametrize("content, says", [
    (b"id,fullname\nt-1,x\n", "no 'name' column"),
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
    ("dir", "Is a directory"),
    (None, "No such file"),
])
def test_a_roster_that_cannot_be_read_stops_results_before_it_writes(named_results, tmp_path, capsys, content,
                                                                     says):
    """A broken --roster let `results` go on: every certificate was made again under the id and the
    named ones already handed out were withdrawn in the register (`verify` then said WITHDRAWN)."""
    course, _, out = named_results
    before = _snapshot(out)
    roster = tmp_path / "bad.csv"
    if content == "dir":
        roster.mkdir()
    elif content is not None:
        roster.write_bytes(content)
    rc = main(["--root", str(course.root), "grade", "results", "--roster", str(roster)])
    text = capsys.readouterr()
    assert rc == 2, text
    lines = text.err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "bad.csv" in lines[0] and "nothing was written" in lines[0], lines
    assert _snapshot(out) == before, "the certificates, the register and passfail.csv stand as they were"


def test_results_on_a_course_root_with_nothing_graded_keeps_the_certificates(named_results, tmp_path, capsys):
    """A mistyped --course-root (an empty folder, or one not there) wrote an empty passfail.csv and
    removed every certificate PDF, exit 0; one not there ended in a traceback."""
    course, _, out = named_results
    before = _snapshot(out)
    (tmp_path / "empty").mkdir()
    for where, says in ((tmp_path / "empty", "no gradebook.db"), (tmp_path / "not-there", "no gradebook.db")):
        rc = main(["--root", str(course.root), "grade", "results", "--course-root", str(where)])
        text = capsys.readouterr()
        assert rc == 2 and says in text.err and "Traceback" not in text.err + text.out, text
        assert "nothing was written" in text.err and len(text.err.strip().splitlines()) == 1, text.err
    assert _snapshot(out) == before


def test_results_before_any_autograde_says_so(make_course, monkeypatch, capsys, empty_gradebook):  # noqa: F811
    """`results` right after `build` (a gradebook with no submission) reported "0 of 0 passed", exit 0."""
    _quiet_results(monkeypatch)
    course, root, out = make_course()
    rc = main(["--root", str(course.root), "grade", "results"])
    text = capsys.readouterr()
    assert rc == 2 and "no graded submission yet" in text.err and "techday grade autograde" in text.err, text
    assert not (out / "passfail.csv").exists()


def test_a_garbled_state_file_stops_results_with_one_line(named_results, capsys):
    """A state.json cut short by hand raised json's error out of `results`: a traceback."""
    course, _, out = named_results
    (out / "a-lab").mkdir(exist_ok=True)
    (out / "a-lab" / "state.json").write_text('{"schema": "techday.grading/1", "lab": "a-l', encoding="utf-8")
    before = _snapshot(out)
    rc = main(["--root", str(course.root), "grade", "results"])
    text = capsys.readouterr()
    assert rc == 2 and "state.json cannot be read" in text.err and "techday grade autograde a-lab" in text.err, text
    assert _snapshot(out) == before


def test_a_second_autograde_of_the_same_lab_is_refused(tmp_path):
    """Two `autograde` runs of one lab at once graded every submission twice, shared one work folder
    (the first to end removed it, failing the other's submissions) and both rewrote state.json."""
    from techday.grading.run import GradingBusy, lab_lock

    lab_out = tmp_path / "grading" / "ok-lab"
    with lab_lock(lab_out, "ok-lab"):
        with pytest.raises(GradingBusy, match=r"ok-lab is being graded by another .* \(pid \d+"):
            with lab_lock(lab_out, "ok-lab"):
                pass
        # Another process, as a second terminal would be: refused too.
        code = ("import sys; from pathlib import Path; from techday.grading.run import lab_lock, GradingBusy\n"
                "try:\n    lab_lock(Path(sys.argv[1]), 'ok-lab').__enter__()\nexcept GradingBusy:\n    sys.exit(3)\n")
        assert subprocess.run([sys.executable, "-c", code, str(lab_out)], cwd=ROOT).returncode == 3
    with lab_lock(lab_out, "ok-lab"):  # released when the first run ends
        pass


def test_autograde_refused_while_another_grades_the_lab_changes_nothing(fixture_course, tmp_path):
    from techday.grading.run import lab_lock
    from tests.conftest import techday

    assert techday("--root", str(fixture_course), "build", "ok-lab").returncode == 0
    lab_out = fixture_course / "build" / "grading" / "ok-lab"
    lab_out.mkdir(parents=True)
    state = lab_out / "state.json"
    state.write_text(json.dumps({"schema": "techday.grading/1", "lab": "ok-lab", "submissions": {}}), encoding="utf-8")
    before = state.read_bytes()
    with lab_lock(lab_out, "ok-lab"):
        out = techday("--root", str(fixture_course), "grade", "autograde", "ok-lab", "--tier", "cpu", "--no-sandbox",
                      "--workers", "1", timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "being graded by another" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert state.read_bytes() == before and not (lab_out / "report.json").exists()


@pytest.mark.parametrize("line, says", [
    ('minutes = "sixty"', "[labs.ok-lab] minutes = 'sixty': it must be a whole number of minutes above 0"),
    ("timeout_s = 60", "[labs.ok-lab] timeout_s = 60: it must be seconds per scale"),
    ("timeout_s = { ci = -1, full = 60 }", "[labs.ok-lab] timeout_s = {'ci': -1, 'full': 60}"),
    ("memory_mb = 1.5", "[labs.ok-lab] memory_mb = 1.5"),
])
def test_a_syllabus_value_of_the_wrong_type_names_its_table_and_key(fixture_course, capsys, line, says):
    """`timeout_s = 60` ended `techday run` in a traceback (AttributeError: 'int' object has no attribute
    'get'); `minutes = "sixty"` built without a word; and the table's name, in brackets, was dropped
    from the message as rich markup."""
    syllabus = fixture_course / "course" / "syllabus.toml"
    text = syllabus.read_text(encoding="utf-8")
    key = line.split(" = ")[0]
    head, _, rest = text.partition("[labs.ok-lab]\n")
    body, sep, tail = rest.partition("\n[")
    body = "\n".join(x for x in body.splitlines() if not x.startswith(key + " ")) + "\n" + line
    syllabus.write_text(head + "[labs.ok-lab]\n" + body + "\n" + sep + tail, encoding="utf-8")
    for argv in (["list"], ["run", "ok-lab", "--tier", "cpu"]):
        rc = main(["--root", str(fixture_course), *argv])
        out = capsys.readouterr()
        assert rc == 2 and says in out.err and "syllabus.toml" in out.err, out
        assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err + out.out


def test_a_leaderboard_of_no_usable_file_keeps_the_last_board(tmp_path, capsys):
    """A mistyped folder (or one with no result file) wrote an empty board over the room's last one."""
    good = ROOT / "tests" / "fixtures" / "bench" / "gpu-h100-good.json"
    out = tmp_path / "board"
    assert main(["bench", "leaderboard", str(good), "--out", str(out)]) == 0
    before = _snapshot(out)
    assert "leaderboard.json" in before
    (tmp_path / "empty").mkdir()
    (tmp_path / "results.json").mkdir()  # a folder where a results file should be
    for path in (tmp_path / "no-such-folder", tmp_path / "empty", tmp_path / "results.json"):
        capsys.readouterr()
        assert main(["bench", "leaderboard", str(path), "--out", str(out)]) == 1
        text = capsys.readouterr()
        assert "no usable result file" in text.err and "nothing written" in text.err, text.err
        assert "Traceback" not in text.err + text.out
    assert _snapshot(out) == before


def test_a_mistyped_lab_gets_the_close_match(fixture_course, capsys):
    """`grade autograde` printed the tier's banner, then only the list of every lab; a lab folder the
    syllabus does not list was "unknown" with no word of the syllabus."""
    rc = main(["--root", str(fixture_course), "grade", "autograde", "ok-lba", "--tier", "cpu"])
    out = capsys.readouterr()
    assert rc == 2 and "did you mean 'ok-lab'?" in out.err and not out.out.strip(), out
    (fixture_course / "labs" / "new-lab").mkdir()
    rc = main(["--root", str(fixture_course), "build", "new-lab", "--no-release"])
    out = capsys.readouterr()
    assert rc == 2 and "labs/new-lab is not in course/syllabus.toml: add a [labs.new-lab] table" in out.err, out.err
    rc = main(["--root", str(fixture_course), "run", "d", "--tier", "cpu"])
    out = capsys.readouterr()
    assert rc == 2 and "'d' could be dies-lab, dup-lab: give more of the name" in out.err, out.err


def test_hub_commands_name_a_wrong_path(tmp_path, capsys):
    """`hub users --out FILE` said only "[Errno 17] File exists" (exit 1); `hub check --config` with a
    path not there reported a config that "does not call configure"."""
    a_file = tmp_path / "users"
    a_file.write_text("not a folder\n", encoding="utf-8")
    for out, says in ((a_file, "is a file: give a folder"), (a_file / "x", "cannot write in --out")):
        rc = main(["hub", "users", "--trainees", "2", "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and says in err and str(out) in err and len(err.strip().splitlines()) == 1, err
    assert a_file.read_text(encoding="utf-8") == "not a folder\n"
    for config, says in ((tmp_path / "nope.py", "does not exist"), (tmp_path, "is a folder")):
        rc = main(["hub", "check", "--config", str(config)])
        err = capsys.readouterr().err
        assert rc == 2 and f"--config {config} {says}" in err, err


def test_an_out_folder_that_is_a_file_is_named_before_anything_runs(fixture_course, tmp_path, capsys):
    """`run --out FILE` ended in a traceback (FileExistsError from mkdir); `bench --out FILE` timed every
    family first and failed only when it wrote."""
    a_file = tmp_path / "results"
    a_file.write_text("keep me\n", encoding="utf-8")
    for argv in (["--root", str(fixture_course), "run", "ok-lab", "--tier", "cpu", "--out", str(a_file)],
                 ["bench", "--tier", "cpu", "--quick", "--no-progress", "--out", str(a_file)],
                 ["--root", str(fixture_course), "kernels", "--out", str(a_file / "sub")]):
        rc = main(argv)
        out = capsys.readouterr()
        assert rc == 2, (argv, out)
        assert f"--out {a_file}" in out.err and "Traceback" not in out.err, out.err
        assert "running" not in out.out and "results:" not in out.out, out.out
    assert a_file.read_text(encoding="utf-8") == "keep me\n"


def test_grade_check_names_an_import_folder_that_is_not_there(fixture_course, tmp_path, capsys):
    """`grade check --import` with a mistyped folder ended in a traceback (FileNotFoundError)."""
    from tests.conftest import techday

    assert techday("--root", str(fixture_course), "build", "ok-lab").returncode == 0
    for where, says in ((tmp_path / "hand-ins", "does not exist"), (fixture_course / "course" / "syllabus.toml",
                                                                    "is a file")):
        rc = main(["--root", str(fixture_course), "grade", "check", "ok-lab", "--import", str(where)])
        out = capsys.readouterr()
        assert rc == 2 and f"--import {where} {says}" in out.err, out


def test_a_hand_in_outside_nbgraders_layout_is_rejected_with_where_to_move_it(tmp_path):
    """`submitted/kim/ok-lab` as a file, or `submitted/lee/ok-lab.ipynb` with no `ok-lab/` folder, were
    passed over without a word by `grade check` and `autograde`: the trainee's work was never graded."""
    from techday.grading.checks import collect

    base = tmp_path / "submitted"
    (base / "kim").mkdir(parents=True)
    (base / "kim" / "ok-lab").write_text("{}", encoding="utf-8")
    (base / "lee").mkdir()
    (base / "lee" / "ok-lab.ipynb").write_text("{}", encoding="utf-8")
    (base / "park" / "other-lab").mkdir(parents=True)  # another lab's hand-in: not this lab's business
    subs = {s.student: s for s in collect(tmp_path, "ok-lab", {})}
    assert set(subs) == {"kim", "lee"}, subs
    assert all(s.status == "rejected" and not s.gradable for s in subs.values())
    assert "move it to submitted/kim/ok-lab/ok-lab.ipynb" in subs["kim"].notes[0]
    assert "submitted/lee/ok-lab.ipynb is a file outside" in subs["lee"].notes[0]


def test_i18n_stamp_refuses_a_catalogue_that_does_not_load(fixture_course, tmp_path, capsys):
    """`i18n stamp` on a ko.toml with a syntax error wrote it back as it was and said "0 entr(ies)
    restamped", exit 0: the reviewer believed it stamped. `--lang en` and a lab with no translation
    were exit 0 too."""
    from techday.i18n import catalogue_path

    source = fixture_course / "labs" / "ok-lab" / "ok-lab.py"
    course = fixture_course / "course" / "syllabus.toml"
    course.write_text(course.read_text(encoding="utf-8").replace(
        '[course]\n', '[course]\nlanguages = ["en", "ko"]\n', 1), encoding="utf-8")
    catalogue = catalogue_path(source, "ko")
    broken = '[cells.intro]\nen_sha = "0123"\ntext = """unclosed\n'
    catalogue.write_text(broken, encoding="utf-8")
    rc = main(["--root", str(fixture_course), "i18n", "stamp", "ok-lab"])
    out = capsys.readouterr()
    assert rc == 1 and "ok-lab.ko.toml" in out.err and "restamped" not in out.out, out
    assert catalogue.read_text(encoding="utf-8") == broken
    catalogue.unlink()
    assert main(["--root", str(fixture_course), "i18n", "stamp", "ok-lab"]) == 1
    assert "no ok-lab.ko.toml: nothing to stamp" in capsys.readouterr().err
    assert main(["--root", str(fixture_course), "i18n", "stamp", "ok-lab", "--lang", "en"]) == 2
    assert "--lang en is the language the labs are written in" in capsys.readouterr().err


def test_a_rerun_without_the_roster_keeps_the_names_already_issued(named_results, capsys):
    """`results` run again without --roster (or with a row that gives one id two names) reissued every
    certificate under the id and withdrew the named ones the trainees already held."""
    course, _, out = named_results
    codes = json.loads((out / "certificates.json").read_text(encoding="utf-8"))["certificates"]
    assert main(["--root", str(course.root), "grade", "results"]) == 0
    text = capsys.readouterr().out
    assert "keep the name on the certificate issued in run" in text and "t-1, t-2" in text, text
    again = json.loads((out / "certificates.json").read_text(encoding="utf-8"))["certificates"]
    assert again == codes, "the same codes, none withdrawn"
    assert "김민준" in (out / "passfail.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("argv, says", [
    (["grade", "autograde", "ok-lab", "--workers", "-2"], "argument --workers/-w: -2 is not above 0"),
    (["grade", "autograde", "ok-lab", "--cell-timeout", "0"], "argument --cell-timeout: 0 is not above 0"),
    (["run", "ok-lab", "--timeout", "-1"], "argument --timeout: -1 is not above 0"),
    (["run", "ok-lab", "--jobs", "many"], "argument --jobs/-j: 'many' is not a whole number"),
])
def test_a_count_or_a_time_below_one_is_refused(argv, says, capsys):
    """`--workers -2` graded with "-2 worker(s)"; `--timeout -1` and `--cell-timeout 0` went on with the
    syllabus' limits without a word."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and says in capsys.readouterr().err


def test_autograde_of_a_course_root_with_no_hand_in_leaves_the_state_alone(fixture_course):
    """A built course root with no hand-in of the lab (a mistyped --course-root, or before `nbgrader
    collect`) moved every entry of state.json to "superseded" and wrote an empty report, exit 0: the
    room's statuses no longer counted and the next run graded everyone again."""
    from tests.conftest import techday

    assert techday("--root", str(fixture_course), "build", "ok-lab").returncode == 0
    lab_out = fixture_course / "build" / "grading" / "ok-lab"
    lab_out.mkdir(parents=True)
    entry = {"student": "kim", "lab": "ok-lab", "path": "x", "status": "graded", "notes": [], "score": 1.0,
             "max_score": 1.0, "seconds": 1.0, "sha256": "ab" * 32, "gradable": True}
    (lab_out / "state.json").write_text(json.dumps({"schema": "techday.grading/1", "lab": "ok-lab",
                                                    "submissions": {"kim/abababababababab": entry}}), encoding="utf-8")
    (lab_out / "report.json").write_text("{}\n", encoding="utf-8")
    before = _snapshot(lab_out)
    out = techday("--root", str(fixture_course), "grade", "autograde", "ok-lab", "--tier", "cpu", "--no-sandbox",
                  "--workers", "1", timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "no hand-in of ok-lab in" in out.stderr and "nothing changed" in out.stderr, out.stderr
    assert {k: v for k, v in _snapshot(lab_out).items() if k != "autograde.lock"} == before


def test_a_gradebook_that_is_not_one_stops_results_and_autograde(named_results, fixture_course, capsys):
    """A gradebook.db overwritten by something else: `results` ended in sqlalchemy's traceback;
    `autograde` called every hand-in "already graded before" and failed only at the export."""
    from tests.conftest import techday

    course, root, out = named_results
    (root / "gradebook.db").write_bytes(b"not a database " * 100)
    before = _snapshot(out)
    rc = main(["--root", str(course.root), "grade", "results"])
    err = capsys.readouterr().err
    assert rc == 2 and "gradebook.db cannot be read (file is not a database)" in err, err
    assert _snapshot(out) == before

    assert techday("--root", str(fixture_course), "build", "ok-lab").returncode == 0
    (fixture_course / "build" / "course" / "gradebook.db").write_bytes(b"not a database " * 100)
    run = techday("--root", str(fixture_course), "grade", "autograde", "ok-lab", "--tier", "cpu", "--no-sandbox",
                  timeout=120)
    assert run.returncode == 2 and "is not a gradebook that can be read" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr


def test_a_uid_ledger_giving_one_uid_to_two_names_is_refused(tmp_path, capsys):
    """A uids.csv edited by hand with one uid on two lines: `hub users` gave both trainees that uid, so
    each could read the other's files and hand-ins."""
    (tmp_path / "uids.csv").write_text("username,uid\ntrainee-001,20001\ntrainee-002,20001\n", encoding="utf-8")
    assert main(["hub", "users", "--trainees", "3", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "uid 20001 is issued to both trainee-001 and trainee-002" in err, err
    assert not (tmp_path / "users.csv").exists()


def test_fmt_fix_leaves_a_file_that_is_not_a_notebook_as_it_is(tmp_path, capsys):
    """`fmt --fix` on a notebook cut short (or any file outside the repository) ended in a traceback
    (nbformat's error; ValueError from Path.relative_to)."""
    broken = tmp_path / "cut.ipynb"
    broken.write_text('{"cells": [\n', encoding="utf-8")
    messy = tmp_path / "messy.ipynb"
    messy.write_text('{"cells": [{"cell_type": "code", "source": "1", "metadata": {}, "outputs": [], '
                     '"execution_count": 3}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}', encoding="utf-8")
    assert main(["fmt", "--fix", str(broken), str(messy)]) == 1
    out = capsys.readouterr()
    assert f"{broken}: not a valid notebook" in out.err and "Traceback" not in out.err, out.err
    assert broken.read_text(encoding="utf-8") == '{"cells": [\n'
    assert '"execution_count": null' in messy.read_text(encoding="utf-8")  # the valid one is still fixed


def test_a_hand_in_folder_that_is_a_link_is_not_read_through(tmp_path):
    """Wrong answer caught: a notebook that is a link was rejected ("it could point at the course's
    solutions"), but a folder that is one was read through: ``submitted/mallory/ok-lab`` linked to
    ``source/ok-lab`` (a zip unpacked into ``submitted/`` keeps its links) graded the course's solution
    as mallory's, and one linked to ``submitted/kim/ok-lab`` graded kim's work as hers. A linked trainee
    or lab folder is rejected, never read."""
    from techday.grading.checks import collect

    (tmp_path / "source" / "ok-lab").mkdir(parents=True)
    (tmp_path / "source" / "ok-lab" / "ok-lab.ipynb").write_text("{}", encoding="utf-8")
    base = tmp_path / "submitted"
    (base / "mallory").mkdir(parents=True)
    (base / "mallory" / "ok-lab").symlink_to(tmp_path / "source" / "ok-lab")
    (base / "eve").symlink_to(tmp_path / "source", target_is_directory=True)
    subs = {s.student: s for s in collect(tmp_path, "ok-lab", {})}
    assert set(subs) == {"mallory", "eve"}, subs
    for sub in subs.values():
        assert sub.status == "rejected" and not sub.gradable and "is a link" in sub.notes[0], sub
        assert not sub.path.endswith(".ipynb"), sub


def test_files_beside_a_hand_in_are_read_without_following_a_link(tmp_path):
    """Wrong answer caught: ``timestamp.txt`` and ``submission_secret.txt`` were copied into the private root
    with ``shutil.copyfile`` wherever they pointed (``is_file()`` follows a link): a ``timestamp.txt`` linked to
    the course's solution, or to any file the grader can read (``/proc/kcore`` as root), was copied whole.
    They are read through ``checks.read_handin`` now: a link, a folder or a file over the limit gives None."""
    from techday.grading.checks import read_handin

    folder = tmp_path / "submitted" / "kim" / "ok-lab"
    folder.mkdir(parents=True)
    secret = tmp_path / "source.txt"
    secret.write_text("the course's solution", encoding="utf-8")
    (folder / "timestamp.txt").symlink_to(secret)
    (folder / "submission_secret.txt").write_text("x" * 5000, encoding="utf-8")
    (folder / "ok-lab.ipynb").mkdir()
    assert read_handin(tmp_path, "ok-lab", "kim", "timestamp.txt", limit=4096) is None
    assert read_handin(tmp_path, "ok-lab", "kim", "submission_secret.txt", limit=4096) is None
    assert read_handin(tmp_path, "ok-lab", "kim") is None  # a folder, not a notebook
    assert read_handin(tmp_path, "ok-lab", "../kim/ok-lab", "timestamp.txt") is None
    (folder / "timestamp.txt").unlink()
    (folder / "timestamp.txt").write_text("2026-12-07 09:00:00.000000 UTC", encoding="utf-8")
    assert read_handin(tmp_path, "ok-lab", "kim", "timestamp.txt", limit=4096) == b"2026-12-07 09:00:00.000000 UTC"
