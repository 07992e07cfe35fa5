"""`techday build` on the scenario course: good labs are released by nbgrader, bad ones named."""

import json

import nbformat

from tests.conftest import techday


def test_build_releases_through_nbgrader(fixture_course):
    out = techday("--root", str(fixture_course), "build", "ok-lab")
    assert out.returncode == 0, out.stdout + out.stderr
    root = fixture_course / "build" / "course"
    release = json.loads((root / "release" / "ok-lab" / "ok-lab.ipynb").read_text())
    source = json.loads((root / "source" / "ok-lab" / "ok-lab.ipynb").read_text())
    for nb in (release, source):
        nbformat.validate(nbformat.from_dict(nb))
    text = json.dumps(release)
    assert "raise NotImplementedError()" in text and "return 2 * x" not in text
    assert "double(-7)" not in text, "hidden tests must not reach the trainee"
    assert "double(-7)" in json.dumps(source)
    assert (root / "gradebook.db").is_file()
    config = (root / "nbgrader_config.py").read_text()
    assert "load_subconfig" in config and str(root) in config


def test_build_by_the_environments_full_path_without_activating_it(fixture_course):
    """A virtual environment's `techday` run by its full path, with a PATH that does not hold that
    environment (not activated): nbgrader runs `alembic` from PATH when it makes the gradebook.
    Catches the "No such file or directory: 'alembic'" of a fresh build."""
    import os
    import shutil
    import sys
    from pathlib import Path

    here = Path(sys.executable).parent
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != here)
    assert shutil.which("alembic", path=path) is None or Path(shutil.which("alembic", path=path)).parent != here
    out = techday("--root", str(fixture_course), "build", "ok-lab", env={"PATH": path or "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert (fixture_course / "build" / "course" / "gradebook.db").is_file()


def test_build_names_duplicate_ids_and_missing_points(fixture_course):
    out = techday("--root", str(fixture_course), "build", "dup-lab", "nopoints-lab", "--no-release")
    assert out.returncode == 1
    assert "dup-lab" in out.stderr and "duplicate grade id 'answer'" in out.stderr and "line 18" in out.stderr
    assert "nopoints-lab" in out.stderr and "'answer_tests'" in out.stderr and "no points" in out.stderr


def test_build_unknown_lab(fixture_course):
    out = techday("--root", str(fixture_course), "build", "no-such-lab", "--no-release")
    assert out.returncode == 2 and "unknown lab 'no-such-lab'" in out.stderr
    assert out.stderr.count("known:") == 1 and "built" not in out.stdout, "said once, nothing built"


def test_fmt_command_passes_on_repository():
    out = techday("fmt")
    assert out.returncode == 0, out.stderr
    assert "notebook(s) checked, 0 with problems" in out.stdout


def test_validate_and_run_refuse_an_unknown_lab_before_any_step(fixture_course):
    """Wrong answers caught: `validate` running the doctor and failing in its build step (a summary of
    steps for a typo), and `run` starting labs when one name of several is wrong."""
    for command in (["validate", "ok-lab", "no-such-lab"], ["run", "ok-lab", "no-such-lab"],
                    ["grade", "selftest", "no-such-lab"]):
        out = techday("--root", str(fixture_course), *command, "--tier", "cpu")
        assert out.returncode == 2, (command, out.stdout[-800:], out.stderr[-800:])
        assert out.stderr.count("unknown lab 'no-such-lab'") == 1 and out.stderr.count("known:") == 1, out.stderr
        assert "TIER" not in out.stdout and "techday doctor" not in out.stdout, (command, out.stdout[-800:])


def test_every_command_group_is_one_module_registered_one_way():
    """techday/cli/: one module per command group, each with one register(sub) that main calls.
    Wrong answers caught: a group module main forgets (its commands vanish from `techday`), a command
    added to main by hand, two groups claiming one command name."""
    import argparse
    import importlib

    from techday.cli import main
    from tests.conftest import ROOT

    modules = {p.stem for p in (ROOT / "techday" / "cli").glob("*.py")} - {"__init__", "main", "common"}
    assert {g.__name__.rsplit(".", 1)[1] for g in main.GROUPS} == modules
    seen = {}
    for name in sorted(modules):
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"techday.cli.{name}").register(sub)
        for command in sub.choices:
            assert command not in seen, f"{command} registered by {seen[command]} and {name}"
            seen[command] = name
    top = main.parser()._subparsers._group_actions[0].choices
    assert set(top) == set(seen), "every command comes from a group's register(sub), and only from there"
    assert {"doctor", "build", "run", "validate", "kernels", "grade", "i18n", "bench", "hub", "locks", "lab"} <= set(top)
