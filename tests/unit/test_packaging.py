"""pyproject.toml and environment.yml install the same runtime set, for the same Pythons."""

import re
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.conftest import ROOT

# conda-forge names that differ from PyPI's.
CONDA_TO_PYPI = {"pytorch": "torch"}


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _conda_deps():
    """The conda-forge list of environment.yml (read as text: PyYAML is not a dependency)."""
    deps, in_pip = {}, False
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("\ndependencies:"):].splitlines():
        if re.match(r"^\s+- pip:\s*$", line):
            in_pip = True
            continue
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)\s*(\S*)\s*$", line)
        if m and not in_pip:
            name = CONDA_TO_PYPI.get(m.group(1), m.group(1))
            deps[name] = m.group(2)
    return deps


def test_runtime_sets_agree():
    pypi = {Requirement(r).name: str(Requirement(r).specifier) for r in _pyproject()["dependencies"]}
    conda = {k: v for k, v in _conda_deps().items() if k not in ("python", "pip")}
    assert set(pypi) == set(conda), f"only in pyproject: {set(pypi) - set(conda)}; only in environment.yml: {set(conda) - set(pypi)}"
    for name, spec in pypi.items():
        assert SpecifierSet(conda[name]) == SpecifierSet(spec), (  # the same bounds, in any order
            f"{name}: pyproject wants {spec!r}, environment.yml {conda[name]!r}")


def test_environment_installs_the_project_itself():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+- -e \.\s*$", text, re.M), "environment.yml must pip-install the project (-e .)"


def test_extras_and_entry_point():
    project = _pyproject()
    extras = project["optional-dependencies"]
    gpu = {Requirement(r).name for r in extras["gpu"]}
    assert {"cupy-cuda12x", "numba-cuda"} <= gpu
    assert any("cu12" in Requirement(r).extras for r in extras["gpu"] if Requirement(r).name == "numba-cuda")
    assert "pytest" in {Requirement(r).name for r in extras["test"]}
    assert project["scripts"]["techday"] == "techday.cli.main:main"


def test_core_import_stays_light():
    """Importing techday must not import Numba, CuPy or PyTorch (tier detection comes first)."""
    import subprocess
    import sys

    code = "import sys, techday; print(sorted(m for m in ('numba', 'cupy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_supported_python_is_the_same_everywhere():
    """requires-python, the README (its quickstart and every other section) and environment.yml name the
    same oldest Python, the code's own imports need no newer one, and this interpreter (CI's) and the
    image's (docker/locks) satisfy it. Catches "Python 3.10+" left in the README (its trainees' section
    said so after the quickstart was mended), or python>=3.10 in environment.yml, after requires-python
    moved to 3.11 (tomllib, nbgrader, ipykernel and NumPy need 3.11)."""
    import sys

    from packaging.specifiers import SpecifierSet

    from techday.hub import locks

    spec = SpecifierSet(_pyproject()["requires-python"])
    (oldest,) = [s.version for s in spec if s.operator == ">="]
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    stated = re.findall(r"Python (3\.\d+)(?:\+| or later)", quickstart)
    assert stated == [oldest], f"the quickstart says Python {stated}, requires-python {spec}"
    anywhere = set(re.findall(r"Python (3\.\d+)(?:\+| or later)", readme))
    assert anywhere == {oldest}, f"the README names Python {sorted(anywhere)} as the oldest, requires-python {spec}"
    assert _conda_deps()["python"] == f">={oldest}", f"environment.yml: python{_conda_deps()['python']}"
    uses_tomllib = any("import tomllib" in p.read_text() for p in (ROOT / "techday").rglob("*.py"))
    assert not (uses_tomllib and spec.contains("3.10")), "techday imports tomllib (3.11+), requires-python allows 3.10"
    running = ".".join(map(str, sys.version_info[:3]))
    assert spec.contains(running), f"this Python {running} is outside requires-python {spec}"
    assert spec.contains(locks.PYTHON_FULL), f"the image's Python {locks.PYTHON_FULL} is outside {spec}"


def test_every_file_the_package_reads_is_in_its_wheel():
    """Every file under techday/ that is not Python is package data (pyproject.toml's globs). Wrong answer caught:
    a folder of templates or data added without its glob, which a plain ``pip install`` (a wheel) leaves out: the
    hub's pages of a Korean room came out English on the chart's hub image, installed from a wheel."""
    from fnmatch import fnmatchcase

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["techday"]
    package = ROOT / "techday"
    files = [p.relative_to(package).as_posix() for p in package.rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    # setuptools' globs do not cross a folder: "data/*.pt" is data/x.pt only
    left = [f for f in files if not any(fnmatchcase(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert files and not left, f"not in pyproject.toml's package-data: {left}"
