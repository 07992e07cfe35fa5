"""What every command group of ``techday`` shares: the consoles, the course, the labs a command was
given, the tier and scale it runs at, and the ``--tier``/``--scale`` options.

Each group (``techday/cli/<group>.py``) has one ``register(sub)`` that adds its commands to the
``techday`` parser, each command's handler set as ``fn``; :mod:`techday.cli.main` calls them in order.
Handlers parse nothing themselves and print through :data:`console` and :data:`err`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..course.syllabus import Course, CourseError, load_course
from ..tier import TIER_CHOICES, TierError, TierInfo, banner, detect

# Not a terminal (CI logs, a file): wide enough that tables keep lab names and reasons whole.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)

JOBS_HELP = "at a time (default: one more than the cores on the CPU tier, up to 4 on a GPU, which they share)"


def default_jobs(tier: str, jobs: int | None = None, cpus: int | None = None) -> int:
    """``jobs`` when given; else how many labs to run at a time on ``tier``. On the CPU tier one more
    than the cores: each lab's process also waits (a kernel starting, a child process, a file), and
    with two cores three labs at a time ran the course's 17 labs in 67 s against 82 s with two. On the
    GPU tier at most 4, since the labs share the GPU's memory."""
    if jobs:
        return max(1, jobs)
    cpus = cpus or os.cpu_count() or 1
    return min(4, cpus) if tier == "gpu" else cpus + 1


LANG_HELP = "the language of markdown and messages (default: the syllabus' default_language)"
LABS_HELP = "labs by name or by the start of it, as 02 or 02-kernels-and-threads (default: every lab)"
LAB_HELP = "the lab, by name or by the start of it, as 02 or 02-kernels-and-threads"
TIER_HELP = "auto: the GPU when there is one; cpu: simulator and NumPy; gpu: fail without one"


class UnknownLab(CourseError):
    """A lab name the syllabus does not have: bad usage (exit 2), before anything runs."""


class UsageError(ValueError):
    """An argument the command cannot use (an ``--out`` that is a file): bad usage (exit 2), said in one
    line before anything runs."""


def out_folder(path: Path, option: str = "--out") -> Path:
    """``path``, made if missing, checked before a command spends minutes on results it then could not
    write (a file of that name, a folder that cannot be made). Raises :class:`UsageError`."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file: give a folder (it is made if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot make that folder ({exc.strerror or exc}): give a folder you "
                         "can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: this user cannot write in that folder: give a folder you can write to")
    return path


def positive_int(text: str) -> int:
    """argparse's type for a count or a number of seconds: a whole number above 0. ``--workers -2``
    ran with "-2 worker(s)" and ``--timeout -1`` or ``--cell-timeout 0`` fell back to the syllabus
    without a word; argparse now names the option (exit 2)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not above 0")
    return value


def draw_seed(text: str) -> str:
    """argparse's type for a seed of the grading draw (techday/draw.py): a whole number from 0 to 2**62 - 1,
    kept as text (``random`` too where the command takes it: see its help)."""
    import argparse

    from ..draw import parse

    if text.strip() == "random":
        return "random"
    try:
        return str(parse(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def print_table(t: Table) -> None:
    """Print ``t`` with its first column (lab and device names) never cut: on a narrow terminal the
    other columns wrap instead."""
    for i, col in enumerate(t.columns):
        if i == 0 or str(col.header) in ("lab", "device"):
            col.no_wrap = True
            col.min_width = max((len(str(c)) for c in col.cells), default=0)
    console.print(t)


def course_of(args) -> Course:
    """The course at ``--root``, else the checkout found from the working directory."""
    return load_course(Path(args.root).resolve() if getattr(args, "root", None) else None)


def labs_of(course: Course, names: list[str]) -> list[str]:
    """The labs ``names`` select (all of them for none); any unknown name stops the command before it
    does anything (:class:`UnknownLab`: exit 2, the known labs listed once)."""
    labs, unknown = course.select(names)
    if unknown:
        raise UnknownLab(unknown_labs(course, unknown))
    return labs


def unknown_labs(course: Course, unknown: list[str]) -> str:
    """Why ``unknown`` select no lab, with what the person most likely meant: the close match of a
    typo, the labs a short prefix could mean, or a lab folder the syllabus does not list yet."""
    import difflib

    hints = []
    try:
        folders = course.lab_dirs()
    except OSError:
        folders = []
    for name in unknown:
        prefixed = [lab for lab in course.labs if lab.startswith(name)] if name else []
        close = difflib.get_close_matches(name, list(course.labs), n=1, cutoff=0.6)
        if len(prefixed) > 1:
            hints.append(f"{name!r} could be {', '.join(prefixed)}: give more of the name")
        elif name in folders:
            hints.append(f"labs/{name} is not in course/syllabus.toml: add a [labs.{name}] table and list it in a "
                         "track")
        elif close:
            hints.append(f"did you mean {close[0]!r}?")
    known = f"known: {', '.join(course.labs)}"
    return (f"unknown lab{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            + (f": {'; '.join(hints)}" if hints else "") + f" ({known})")


def tier_banner(requested: str) -> TierInfo:
    """Detect the tier (``TierError`` when ``requested`` cannot be had here) and print its banner."""
    info = detect(requested)
    console.print(banner(info))
    return info


def scale_for(requested: str, tier: str) -> str:
    """``auto``: the workshop size on a GPU, the quick size elsewhere (the simulator is slow)."""
    if requested != "auto":
        return requested
    return "full" if tier == "gpu" else "ci"


@dataclass
class Setup:
    """What a command that runs lab code starts from: the course, the labs asked for, the machine's
    tier (its banner printed) and the scale used."""

    course: Course
    labs: list[str]
    info: TierInfo
    scale: str

    @classmethod
    def of(cls, args) -> Setup:
        """From ``args.root``, ``args.labs``, ``args.tier``, ``args.scale``. Raises :class:`UnknownLab`
        and :class:`TierError` (both exit 2)."""
        course = course_of(args)
        labs = labs_of(course, args.labs)
        info = tier_banner(args.tier)
        return cls(course, labs, info, scale_for(args.scale, info.tier))


def tier_scale(p, scale_default: str = "auto") -> None:
    """The ``--tier`` and ``--scale`` options, the same on every command that runs lab code."""
    p.add_argument("--tier", choices=TIER_CHOICES, default="auto", help=TIER_HELP)
    p.add_argument("--scale", choices=("auto", "ci", "full"), default=scale_default,
                   help="ci: small and quick; full: the workshop sizes; auto: full on a GPU, ci elsewhere")


def bad_usage(exc: Exception) -> int:
    """Print why the command cannot run as asked; exit 2. Escaped: a syllabus error names its table
    (``[labs.00-gpu-tour]``), which rich would otherwise take for markup and drop."""
    from rich.markup import escape

    err.print(f"[red]{escape(str(exc))}[/]")
    return 2


__all__ = ["JOBS_HELP", "LABS_HELP", "LAB_HELP", "LANG_HELP", "TIER_HELP", "CourseError", "Setup", "TierError",
           "UnknownLab", "UsageError", "bad_usage", "console", "course_of", "default_jobs", "err", "labs_of",
           "out_folder", "positive_int", "print_table", "scale_for", "tier_banner", "tier_scale", "unknown_labs"]
