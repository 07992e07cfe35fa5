"""Shared fixtures. Tests are split by what they need (STYLE.md 6):

- tests/unit      fast, no kernels started
- tests/labs      papermill executes the real labs (marker ``labs``)
- tests/grading   the real nbgrader grades (marker ``grading``)
- marker ``gpu``  needs a CUDA device; skipped elsewhere with the reason printed
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from techday.tier import detect

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_COURSE = ROOT / "tests" / "fixtures" / "course"


def pytest_collection_modifyitems(config, items):
    info = detect("auto")
    if info.tier == "gpu":
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {info.reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fixture_course(tmp_path) -> Path:
    """A writable copy of the scenario course, with the real grading settings beside it."""
    root = tmp_path / "course-root"
    shutil.copytree(FIXTURE_COURSE, root)
    shutil.copytree(ROOT / "grading", root / "grading")
    return root


def techday(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 900):
    """Run the real command line, as a person or CI would."""
    import os

    return subprocess.run([sys.executable, "-m", "techday", *args], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
