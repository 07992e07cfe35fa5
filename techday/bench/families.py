"""Finding the kernel families: ``benchmarks/<family>.py`` in the repository (content, like ``labs/``).

The modules are loaded by path (they are course content, not part of the installed package), under
the names ``techday_benchmarks.<family>``. ``$TECHDAY_BENCHMARKS`` points elsewhere if needed.

Measuring (``techday bench``) takes the families of the course it runs in. Judging (the leaderboard)
never does: a room's folder can hold a ``course/syllabus.toml`` and a ``benchmarks/`` of its own, and
the board is often started from inside it. The board counts with :func:`kit_benchmarks_dir`, the
folder beside this package as shipped, and :func:`pin` makes every load of a process use it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

# The order of the suite and of the final table.
FAMILIES = ("stream", "reduction", "transpose", "stencil", "histogram", "matmul", "transfer", "latency",
            "roofline")


# Set by :func:`pin`: the only folder this process loads families from (the board's counting child).
_PINNED: Path | None = None


def kit_benchmarks_dir() -> Path:
    """The kernel families shipped with this package: ``benchmarks/`` beside the ``techday`` package
    (the repository this code was installed from). Never a folder found from the working directory,
    ``$TECHDAY_BENCHMARKS`` or ``$TECHDAY_ROOT``, nor from the files being judged."""
    return Path(__file__).resolve().parents[2] / "benchmarks"


def pin(folder: Path) -> None:
    """Load every family of this process from ``folder`` and nowhere else (nested loads included)."""
    global _PINNED
    _PINNED = Path(folder).resolve()


def benchmarks_dir() -> Path:
    """Where ``techday bench`` finds the families it measures: the pinned folder if any, else
    ``$TECHDAY_BENCHMARKS``, else the course root's (found from the working directory), else the kit's."""
    if _PINNED is not None:
        return _PINNED
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
    path = benchmarks_dir() / f"{family}.py"
    if name in sys.modules:
        loaded = getattr(sys.modules[name], "__file__", None)
        if _PINNED is None or (loaded and Path(loaded).resolve() == path.resolve()):
            return sys.modules[name]
        raise RuntimeError(f"benchmark family {family!r} was loaded from {loaded}, not the pinned {path}")
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
