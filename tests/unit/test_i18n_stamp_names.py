"""`techday i18n stamp` names a course document as a person would type it after editing it: the path
from where they stand, the file name, or the Korean twin they just edited. Each stamps that document;
a name ending in .md that is no course document is refused in one line that lists them (exit 2),
not called an unknown lab."""

from __future__ import annotations

import pytest

from techday.cli.main import main

EN = "# Guide\n\nRead this first.\n\n## Steps\n\n1. Do it.\n"
STALE_KO = ("<!-- en_sha: 000000000000 -->\n# 안내\n\n먼저 읽으세요.\n\n"
            "<!-- en_sha: 000000000000 -->\n## 단계\n\n1. 하세요.\n")


@pytest.fixture
def course_with_guide(fixture_course):
    syllabus = fixture_course / "course" / "syllabus.toml"
    syllabus.write_text(syllabus.read_text(encoding="utf-8").replace(
        "[course]\n", '[course]\nlanguages = ["en", "ko"]\n', 1), encoding="utf-8")
    (fixture_course / "course" / "TRAINEES.md").write_text(EN, encoding="utf-8")
    twin = fixture_course / "course" / "TRAINEES.ko.md"
    twin.write_text(STALE_KO, encoding="utf-8")
    return fixture_course, twin


@pytest.mark.parametrize("where, name", [
    ("root", "course/TRAINEES.md"),
    ("root", "TRAINEES.md"),
    ("root", "course/TRAINEES.ko.md"),  # the twin just edited
    ("course", "./TRAINEES.md"),        # a path from the course/ folder
    ("course", "TRAINEES.ko.md"),
    ("elsewhere", "ABSOLUTE"),
])
def test_stamp_takes_a_document_by_the_name_a_person_types(course_with_guide, monkeypatch, tmp_path, capsys,
                                                           where, name):
    # Wrong answer caught: `./TRAINEES.md`, an absolute path or the `.ko.md` twin was "unknown lab" (exit 2)
    # and nothing was stamped.
    root, twin = course_with_guide
    monkeypatch.chdir({"root": root, "course": root / "course", "elsewhere": tmp_path}[where])
    if name == "ABSOLUTE":
        name = str(root / "course" / "TRAINEES.md")
    assert main(["--root", str(root), "i18n", "stamp", name]) == 0, capsys.readouterr()
    assert "course/TRAINEES.md: 2 section(s) restamped" in capsys.readouterr().out
    assert "000000000000" not in twin.read_text(encoding="utf-8")


def test_stamp_refuses_a_document_it_does_not_know_by_name(course_with_guide, monkeypatch, capsys):
    # Wrong answer caught: a typo in a document's name said "unknown lab 'TRAINES.md'" and listed the labs.
    root, twin = course_with_guide
    monkeypatch.chdir(root)
    assert main(["--root", str(root), "i18n", "stamp", "course/TRAINES.md"]) == 2
    err = capsys.readouterr().err
    assert "course/TRAINES.md: not a course document with a translation" in err and "course/TRAINEES.md" in err
    assert "unknown lab" not in err
    assert "000000000000" in twin.read_text(encoding="utf-8")
