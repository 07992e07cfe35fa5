"""Finding the kernel families: ``benchmarks/<family>.py`` in the repository (content, like ``labs/``).

The modules are loaded by path (they are course content, not part of the installed package), under
the names ``techday_benchmarks.<family>``. ``$TECHDAY_BENCHMARKS`` points elsewhere if needed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

# The order of the suite and of the final table.
FAMILIES = ("stream", "reduction", "transpose", "stencil", "histogram", "matmul", "transfer", "latency",
            "roofline")


def benchmarks_dir() -> Path:
    env = os.environ.get("TECHDAY_BENCHMARKS")
    if env:
        return Path(env).resolve()
    from techday.course.syllabus import CourseError, find_root

    try:
        root = find_root()
    except CourseError:
        root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "stream.py").is_file():
        root = Path(__file__).resolve().parents[2]
    return root / "benchmarks"


def load(family: str):
    """Import ``benchmarks/<family>.py`` (once per process)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown benchmark family {family!r}: choose from {', '.join(FAMILIES)}")
    name = f"techday_benchmarks.{family}"
    if name in sys.modules:
        return sys.modules[name]
    path = benchmarks_dir() / f"{family}.py"
    if not path.is_file():
        raise FileNotFoundError(f"benchmark family {family!r}: {path} does not exist")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def select(names: list[str] | None) -> list[str]:
    """The families asked for (all of them by default), in suite order; unknown names raise."""
    if not names:
        return list(FAMILIES)
    wanted = {n.strip() for name in names for n in name.split(",") if n.strip()}
    unknown = wanted - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown benchmark family {', '.join(sorted(unknown))}: choose from {', '.join(FAMILIES)}")
    return [f for f in FAMILIES if f in wanted]
