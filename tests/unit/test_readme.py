"""The README's commands are the ones CI runs, and its examples work (examples cannot rot)."""

import re

from techday.course.labsrc import read_lab
from tests.conftest import ROOT, techday

README = (ROOT / "README.md").read_text()


def _bash_blocks():
    return re.findall(r"```bash\n(.*?)```", README, re.S)


def test_quickstart_has_exactly_two_commands_and_ci_runs_them_verbatim():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [b.strip() for b in re.findall(r"```bash\n(.*?)```", quick, re.S)]
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    assert "techday" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, f".ci/run must run the README command verbatim: {command}"


def test_ci_script_fails_on_errors():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and "torch==2.13.0" in ci


def test_lab_example_in_readme_builds(tmp_path):
    example = re.search(r"### Writing a lab.*?```python\n(.*?)```", README, re.S).group(1)
    path = tmp_path / "readme-lab.py"
    path.write_text(example)
    nb, _ = read_lab(path)
    assert [c.id for c in nb.cells if "nbgrader" in c.metadata] == ["saxpy", "saxpy_tests"]


def test_readme_instructor_commands_exist():
    """Every `techday X` the README shows is a real subcommand (checked with --help)."""
    shown = {m for block in _bash_blocks() for m in re.findall(r"^techday ([a-z][a-z0-9]*(?: selftest)?)", block, re.M)}
    assert {"list", "build", "run", "grade selftest"} <= shown
    for sub in shown:
        out = techday(*sub.split(), "--help")
        assert out.returncode == 0, f"techday {sub}: {out.stderr}"


def test_readme_course_table_matches_the_syllabus():
    """The README's course table names every lab of every track, in the track's row."""
    from techday.course.syllabus import load_course

    table = README.split("## The course", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(load_course(ROOT).tracks)
    course = load_course(ROOT)
    for track in course.tracks.values():
        row = next((r for r in rows if track.title.lower().startswith(r.split("|")[1].strip())
                    or track.id.replace("-", " ") == r.split("|")[1].strip()), None)
        assert row is not None, f"track {track.id!r} has no row in the README's course table"
        for lab in track.labs:
            assert f" {lab.split('-')[0]} " in row, f"{lab} is missing from the README row of {track.id!r}"
