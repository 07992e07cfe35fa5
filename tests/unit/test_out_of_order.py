"""A command run before the step it needs, pointed at a folder that is not the course's, or given nothing
to do: one line saying which step comes first or which option to check, exit 2, nothing written or
changed (CONTRIBUTING.md, Package: exit codes)."""

from __future__ import annotations

import pytest

from techday.cli.main import main
from tests.conftest import techday


def test_grade_check_before_anything_was_collected_says_collect_first(fixture_course, tmp_path, capsys):
    # Wrong answer caught: `techday grade check LAB` before `nbgrader collect` (or with a mistyped
    # --course-root) printed "0 submission(s) of LAB: 0 ok, ..." and exit 0, which reads as "checked,
    # go on"; `autograde`, the next step, then refused. An --import folder with no hand-in did the same.
    env = {"TECHDAY_BUILD": str(tmp_path / "build")}
    assert techday("--root", str(fixture_course), "build", "ok-lab", env=env).returncode == 0
    root = tmp_path / "build" / "course"
    out = techday("--root", str(fixture_course), "grade", "check", "ok-lab", "--course-root", str(root), env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"no hand-in of ok-lab in {root / 'submitted'}: collect them first" in out.stderr, out.stderr
    assert "0 submission(s)" not in out.stdout and "Traceback" not in out.stderr
    empty = tmp_path / "inbox"
    empty.mkdir()
    rc = main(["--root", str(fixture_course), "grade", "check", "ok-lab", "--course-root", str(root),
               "--import", str(empty)])
    err = capsys.readouterr().err
    assert rc == 2 and f"--import {empty} holds no hand-in of ok-lab" in err, err
    assert not (root / "submitted").exists() or not any((root / "submitted").iterdir())


@pytest.mark.parametrize("command", ["check", "autograde"])
def test_a_mistyped_course_root_is_named_not_sent_to_build(command, fixture_course, tmp_path):
    # Wrong answer caught: `--course-root /srv/nbgrader/cours` said "run `techday build LAB` first", which
    # builds into build/course and leaves the mistyped path as it was.
    missing = tmp_path / "cours"
    extra = ["--no-sandbox", "--workers", "1"] if command == "autograde" else []
    out = techday("--root", str(fixture_course), "grade", command, "ok-lab", "--course-root", str(missing), *extra,
                  env={"TECHDAY_BUILD": str(tmp_path / "build")})
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"{missing} does not exist: check --course-root" in out.stderr, out.stderr
    assert "techday build" not in out.stderr and not missing.exists()


def test_a_root_that_is_not_the_course_repository_is_named(tmp_path, capsys):
    # Wrong answer caught: `techday --root /tmp list` said "/tmp/course/syllabus.toml: [Errno 2] No such file
    # or directory: '/tmp/course/syllabus.toml'", the path twice and nothing about --root.
    assert main(["--root", str(tmp_path), "list"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} has no course/syllabus.toml: give --root the course repository's folder" in err, err
    assert "Errno" not in err


def test_hub_users_with_nobody_to_make_changes_nothing(tmp_path, capsys):
    # Wrong answer caught: `techday hub users --trainees 0` wrote an accounts file with nobody in it, exit 0;
    # with --force over the day's folder, every account was gone and nobody could sign in.
    out = tmp_path / "hub-users"
    assert main(["hub", "users", "--trainees", "2", "--out", str(out)]) == 0
    before = (out / "users.csv").read_bytes()
    capsys.readouterr()
    assert main(["hub", "users", "--trainees", "0", "--out", str(out), "--force"]) == 2
    assert "no account to make" in capsys.readouterr().err
    assert (out / "users.csv").read_bytes() == before
