"""The JupyterHub the hub tests drive is the JupyterHub the day runs.

The images install the locked sets (docker/locks/: JupyterHub 5.5, the Kubernetes chart's series);
the tests install pyproject.toml's ``hub`` extra. That extra said ``jupyterhub>=5.2``, so CI drove
JupyterHub 6 while every image and the chart ran 5.5: a hub setting that only 6 accepts, or a
behaviour only 5.5 has, passed CI and failed on the day. One did: JupyterHub 5.5 gives a service the hub
starts itself 10 seconds to answer and then stops the hub (6 waits longer); on 5.5 every test hub died
at start, on 6 all passed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def locked_series() -> set[str]:
    pins = {re.search(r"^jupyterhub==([\w.]+)", p.read_text(encoding="utf-8"), re.M).group(1)
            for p in sorted((ROOT / "docker" / "locks").glob("*.txt"))}
    assert pins, "the locks pin no JupyterHub"
    return {".".join(pin.split(".")[:2]) for pin in pins}


def test_the_hub_extra_installs_the_series_the_images_lock():
    (series,) = locked_series()
    hub = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["hub"]
    (req,) = [Requirement(r) for r in hub if Requirement(r).name == "jupyterhub"]
    major, minor = (int(x) for x in series.split("."))
    admitted = [v for v in (f"{major}.{minor}.0", f"{major}.{minor}.99", f"{major + 1}.0.0", f"{major}.{minor - 1}.0")
                if req.specifier.contains(v, prereleases=False)]
    assert admitted == [f"{major}.{minor}.0", f"{major}.{minor}.99"], (
        f"pyproject's hub extra ({req}) admits {admitted}; the images and the chart run JupyterHub {series}")


def test_the_installed_jupyterhub_is_the_locked_series():
    jupyterhub = pytest.importorskip("jupyterhub", reason='the hub extra is not installed (pip install -e ".[hub]")')
    installed = ".".join(str(x) for x in Version(jupyterhub.__version__).release[:2])
    assert {installed} == locked_series(), (
        f"this environment has JupyterHub {jupyterhub.__version__}, the images run {locked_series()}: the hub "
        'tests would prove another JupyterHub. Reinstall: python -m pip install -e ".[hub]"')
