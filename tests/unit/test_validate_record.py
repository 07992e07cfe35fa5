"""The record `techday validate` leaves of what it checked (techday/validate/record.py): the test suite
reads validate's results only for the very tree, environment, labs, tier and scale they were made on."""

import json

from techday.validate import record


def _tree(tmp_path):
    root = tmp_path / "repo"
    for rel, text in {"techday/x.py": "A = 1\n", "labs/a/a.py": "# lab\n", "course/syllabus.toml": "[course]\n",
                      "grading/nbgrader_config.py": "", "pyproject.toml": "[project]\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    out = root / "build" / "selftest"
    out.mkdir(parents=True)
    return root, out


def _write(root, out, before=None, **kw):
    args = dict(labs=["a"], all_labs=True, tier="cpu", scale="ci", steps={"grade selftest": 0, "run": 1},
                outputs={"grade selftest": str(out), "run": str(out)})
    args.update(kw)
    return record.write(root / "build", before or record.snapshot(root), root, **args)[0]


def test_a_record_is_used_only_for_the_tree_it_was_made_on(tmp_path, monkeypatch):
    """Wrong answers caught: a lab edited after validate ran and the old result reused; a record of
    one lab used for the whole course; a failed step reused; the record of the CPU tier used for a
    GPU check; a file changed while validate ran leaving a record; an environment variable that
    changes how labs run ignored."""
    root, out = _tree(tmp_path)
    assert _write(root, out)
    got, why = record.reusable(root / "build", root, "grade selftest", tier="cpu", scale="ci")
    assert got == out and "this very tree" in why

    assert record.reusable(root / "build", root, "run", tier="cpu", scale="ci")[0] is None  # step failed
    assert record.reusable(root / "build", root, "grade selftest", tier="gpu", scale="full")[0] is None
    assert record.reusable(root / "build", root, "kernels", tier="cpu", scale="ci")[0] is None  # never ran

    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "0")
    got, why = record.reusable(root / "build", root, "grade selftest", tier="cpu", scale="ci")
    assert got is None and "changed" in why
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM")
    monkeypatch.setenv("TECHDAY_BUILD", str(tmp_path / "elsewhere"))  # where outputs go: not a difference
    assert record.reusable(root / "build", root, "grade selftest", tier="cpu", scale="ci")[0] == out

    (root / "labs" / "a" / "a.py").write_text("# lab, edited\n")
    got, why = record.reusable(root / "build", root, "grade selftest", tier="cpu", scale="ci")
    assert got is None and "fingerprint differs" in why

    _write(root, out, labs=["a"], all_labs=False)
    assert record.reusable(root / "build", root, "grade selftest", tier="cpu", scale="ci")[0] is None

    before = record.snapshot(root)
    (root / "techday" / "x.py").write_text("A = 2\n")  # changed while validate ran
    written, changed = record.write(root / "build", before, root, labs=["a"], all_labs=True, tier="cpu", scale="ci",
                                    steps={}, outputs={})
    assert written is None and changed == ["file:techday/x.py"] and not record.record_path(root / "build").exists()


def test_a_broken_or_foreign_record_is_never_used(tmp_path):
    root, out = _tree(tmp_path)
    path = record.record_path(root / "build")
    path.parent.mkdir(parents=True)
    for text in ("{", "[]", json.dumps({"schema": "other"}), json.dumps({"schema": record.SCHEMA})):
        path.write_text(text)
        got, why = record.reusable(root / "build", root, "grade selftest", tier="cpu", scale="ci")
        assert got is None and why, text


def test_the_fingerprint_covers_the_installed_requirements():
    names = {line.split("==")[0] for line in record.runtime_distributions()}
    assert {"techday-gpu-lab", "numpy", "nbgrader", "numba"} <= names
    assert "pytest" not in names, "the test extras, installed after validate in CI, are not part of it"


def test_requirements_behind_an_extra_or_a_false_marker_are_not_followed():
    """Caught in a clean-clone CI run: a runtime dependency's `aiohttp; extra=="..."` (no spaces)
    was followed, so installing the hub extras after validate changed the fingerprint and the record
    was never used."""

    class Dist:
        requires = ['aiohttp>=3; extra=="http"', 'tomli; python_version < "3.0"', "numpy>=1", 'zipp; extra == "x"',
                    'idna; python_version >= "3.0"']

    assert record._requirement_names(Dist()) == ["numpy", "idna"]


def test_documents_for_people_do_not_change_the_fingerprint(tmp_path):
    """Instructor notes and guides are not read by any check: editing one keeps the record; editing
    the syllabus beside them does not."""
    root, _ = _tree(tmp_path)
    before = record.fingerprint(root)
    (root / "course" / "notes").mkdir()
    (root / "course" / "notes" / "a.md").write_text("# notes\n")
    assert record.fingerprint(root) == before
    (root / "course" / "syllabus.toml").write_text("[course]\ntitle = 'x'\n")
    assert record.fingerprint(root) != before


def test_importing_setuptools_does_not_change_the_fingerprint(monkeypatch):
    """Caught on a real validate: its steps import setuptools, whose vendored packages then appeared
    as installed distributions and the record was never written."""
    import sys

    before = record.runtime_distributions()
    monkeypatch.syspath_prepend(str(next(p for p in sys.path if p.endswith("site-packages")) + "/setuptools/_vendor"))
    assert record.runtime_distributions() == before


def test_a_step_whose_output_the_record_does_not_name_is_not_reused(tmp_path):
    """Caught: a record from before validate named the build's course root, read as if the build's
    output were reusable (the tests would copy labs from nowhere)."""
    root, out = _tree(tmp_path)
    assert _write(root, out, steps={"build": 0, "grade selftest": 0}, outputs={"grade selftest": str(out)})
    got, why = record.reusable(root / "build", root, "build", tier="cpu", scale="ci")
    assert got is None and "names no output folder of step 'build'" in why
    assert record.reusable(root / "build", root, "grade selftest", tier="cpu", scale="ci")[0] == out
