"""The package's layers (ARCHITECTURE.md): what each layer may import at module level, and the names
that labs import, which must not move."""

import ast
import importlib
import re

from tests.conftest import ROOT

SUBPACKAGES = ("course", "validate", "grading", "hub", "bench", "cli")
# Module-level imports a layer may make (an allow-list: a new edge is a decision, made here). Imports
# inside a function are the seams (the lab runtime reading the syllabus when asked) and are not limited.
ALLOWED = {
    "runtime": {"runtime"},
    "course": {"runtime", "course"},
    "bench": {"runtime", "course", "bench"},
    "grading": {"runtime", "course", "grading"},
    "hub": {"runtime", "course", "hub"},
    "validate": {"runtime", "course", "bench", "grading", "validate"},
    "cli": {"runtime", "course", "bench", "grading", "hub", "validate", "cli"},
}
ENTRY = {"techday.__main__"}  # python -m techday: the command line itself
# Names before 0.1 that deployed hub and nbgrader configs may still give: thin re-exports.
ALIASES = {"techday.hubauth": "techday.hub.auth", "techday.hubexchange": "techday.hub.exchange"}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else "runtime"


def _module_level_imports(path):
    rel = path.relative_to(ROOT).with_suffix("").parts
    module = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
    package = module if rel[-1] == "__init__" else module.rsplit(".", 1)[0]
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [f"{target}.{a.name}" for a in node.names] if target == "techday" else [target]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target == "techday" or target.startswith("techday."):
                yield module, target, node.lineno


def test_layers_import_only_what_they_may():
    # Wrong answers caught: the lab runtime importing the grader or the hub at import time (a trainee's
    # kernel would load nbgrader), the course layer importing the command line, a new edge unnoticed.
    bad = []
    for path in sorted((ROOT / "techday").rglob("*.py")):
        for module, target, line in _module_level_imports(path):
            if module in ENTRY or module in ALIASES or target == "techday.__version__":
                continue
            if _layer(target) not in ALLOWED[_layer(module)]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {_layer(module)} imports {target} ({_layer(target)})")
    assert bad == [], "\n".join(bad)


def test_every_name_a_lab_imports_exists():
    # Wrong answer caught: a lab-runtime module moved into a subpackage without an alias; released
    # notebooks in trainees' home folders would fail at their first cell.
    names = set()
    for path in sorted((ROOT / "labs").glob("*/*.py")):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"\btechday\.([a-z_]\w*)", text))
        for group in re.findall(r"^\s*from techday import ([\w ,]+)", text, flags=re.M):
            names |= {x.strip().split(" as ")[0] for x in group.split(",")}
    assert {"labtools", "setup", "gpuspecs", "bench", "i18n"} <= names, sorted(names)
    missing = []
    for name in sorted(names):
        try:
            importlib.import_module(f"techday.{name}")
        except ModuleNotFoundError:
            if not hasattr(importlib.import_module("techday"), name):
                missing.append(name)
    assert missing == [], f"labs import techday.{missing}, which no longer exist"
    assert not names & set(SUBPACKAGES) - {"bench"}, "a lab imports a layer above the runtime"


def test_configs_written_before_the_move_keep_working():
    # Wrong answer caught (issue 17: "deployed hub configs keep working"): a jupyterhub_config.py or
    # nbgrader_config.py of a running deployment that names the old modules failing at the hub's start.
    import pytest

    pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
    pytest.importorskip("nbgrader", reason="nbgrader is not installed")
    from traitlets.utils.importstring import import_item

    import techday.hub
    import techday.hub.config

    assert techday.hub.configure is techday.hub.config.configure
    assert techday.hub.HubSettings is techday.hub.config.HubSettings
    for old, new in ALIASES.items():
        for name in ("PasswordListAuthenticator",) if old.endswith("auth") else (
                "ExchangeCollect", "ExchangeSubmit", "ExchangeReleaseAssignment"):
            assert import_item(f"{old}.{name}") is import_item(f"{new}.{name}"), (old, name)


def test_the_checkout_is_found_from_outside_it(monkeypatch, tmp_path):
    # Wrong answer caught: a module moved one folder deeper that still climbs one level from its own
    # file to find the checkout: in the grading sandbox (working directory /grading, no TECHDAY_ROOT)
    # every lab that reads the syllabus failed with "cannot find the course" (lab 16 lost 6 of 16).
    from techday.course.syllabus import find_root
    from techday.hub.locks import repo_root

    monkeypatch.delenv("TECHDAY_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert find_root() == ROOT.resolve() and find_root(tmp_path) == ROOT.resolve()
    assert repo_root() == ROOT.resolve()
    offenders = []
    for path in sorted((ROOT / "techday").glob("*/*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "__file__" in line and ".parent.parent" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "a subpackage module climbing to the checkout: use parents[2]\n" + "\n".join(offenders)
