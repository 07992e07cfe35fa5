"""The ``techday`` command: one way in for trainees' machines, instructors and CI.

    techday doctor                      which tier is this machine? (GPU, driver, CUDA runtime)
    techday list                        tracks and labs from course/syllabus.toml
    techday build [LAB ...] [--lang L]  lab sources -> nbgrader course root, source/ and release/
    techday run [LAB ...]               execute labs headless with papermill; summary, JUnit
    techday grade selftest [LAB ...]    the grading contract with the real nbgrader
    techday grade check|autograde|results|review|verify   a room's submissions: checked, sandboxed, graded, certified
    techday validate                    doctor, build, run, grade selftest and kernels: the main job
    techday lab [LAB ...]               a trainee's JupyterLab on this machine: released labs, no instructor panels
    techday kernels [LAB ...]           every Numba kernel compiled for sm_80 and sm_90 with ptxas, without a GPU
    techday i18n report|stamp           translations (labs, course documents): Korean share, what is missing or stale; store reviews
    techday fmt [--fix]                 committed notebooks: canonical and output-free
    techday bench [--quick]             measure this GPU against its limits; `bench leaderboard` merges runs
    techday hub check|users|release|sweep|lab-language   the JupyterHub for the day: check, accounts, sign-in locks, the exchange
    techday locks check|compile         the image's locked install sets (docker/locks/), one per CUDA major

``techday --help`` lists every command with its line of help, made from the parser itself (:func:`commands_list`).

Exit codes: 0 everything passed, 1 something failed (a lab, the contract, a build), 2 bad usage
or a machine that cannot do what was asked (for example ``--tier gpu`` without a GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading

from rich.markup import escape

from .. import __version__
from ..fastimport import skip_iri_grammar
from . import bench, course, grade, hub, i18n, run
from .common import CourseError, TierError, UsageError, bad_usage, err

# The command groups, each one module with one ``register(sub)``, in the order `techday --help` lists them.
GROUPS = (course, run, grade, i18n, bench, hub)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="techday", description="Tech Day GPU Lab: build, run and grade the course.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"techday {__version__}")
    ap.add_argument("--root", help="repository root (default: found from the working directory)")
    sub = ap.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    _name_commands(ap)
    ap.epilog = commands_list(ap)
    return ap


def _commands(p: argparse.ArgumentParser, path: str, help_: str | None = None) -> list[tuple[str, str]]:
    """(command, its line of help) for every parser under ``p`` that runs a function of its own (``fn``)."""
    found = [(path, help_ or "")] if p.get_default("fn") is not None else []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                found += _commands(child, f"{path} {name}", helps.get(name))
    return found


def commands_list(ap: argparse.ArgumentParser) -> str:
    """The end of ``techday --help``: every command the parser runs (``techday hub sweep``, not only ``hub``),
    each with the help its group gives it. Made from the parser, the one table of commands: a command added
    to a group is listed without anyone editing this (tests/unit/test_cli_help.py checks the help is there)."""
    import shutil
    import textwrap

    cmds = _commands(ap, ap.prog)
    width = max(60, shutil.get_terminal_size().columns - 2)
    column = max(len(cmd) for cmd, _ in cmds) + 4
    lines = ["commands (`COMMAND --help` for its arguments):"]
    for cmd, help_ in cmds:
        wrapped = textwrap.wrap(help_, width=width - column) or [""]
        lines.append(f"  {cmd:<{column - 2}}{wrapped[0]}".rstrip())
        lines += [" " * column + more for more in wrapped[1:]]
    return "\n".join(lines)


def _name_commands(p: argparse.ArgumentParser) -> None:
    """Give every group of subcommands its choices as its name, as its usage shows them: argparse named a
    missing one by its internal ``dest`` ("the following arguments are required: grade_command")."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            if action.metavar is None:
                action.metavar = "{" + ",".join(action.choices) + "}"
            for child in action.choices.values():
                _name_commands(child)


def tools_on_path() -> None:
    """Put this Python's own folder first on PATH, for the tools its packages run as programs
    (nbgrader runs ``alembic`` when it makes a gradebook): ``techday`` started by a virtual
    environment's full path, without activating it, then finds them as an activated one would."""
    here = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[:1] != [here]:
        os.environ["PATH"] = os.pathsep.join([here, path]) if path else here


# OSErrors that are the machine's state rather than a bug: one line naming the file, exit 1.
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}

# Signals that stop a command as Ctrl-C does: `kill`, `docker stop`, `timeout`, a CI job cancelled (SIGTERM);
# the terminal or SSH session closed (SIGHUP). Without this they killed the command where it stood: no
# summary, and the labs' worker processes and kernels (each in a session of its own) left running.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals_interrupt():
    """While the command runs, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, so every
    command's Ctrl-C path runs for them too (children stopped, what finished written, exit 130). The
    handlers before are put back after (the command line called in-process, by a test)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal ignored on purpose stays ignored: `nohup techday validate &` must outlive the SSH session.
    before = {s: signal.signal(s, _stop) for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    skip_iri_grammar()  # most commands read notebooks: nbformat without the IRI grammar, a second less a call
    tools_on_path()
    args = parser().parse_args(argv)
    with stop_signals_interrupt():
        return _run(args)


def _run(args) -> int:
    try:
        return args.fn(args)
    except (CourseError, TierError, UsageError) as exc:  # an unknown lab, a broken syllabus, --tier gpu without one
        return bad_usage(exc)
    except ValueError as exc:  # a lab source or a translation that cannot be read: its message, no traceback
        from ..course.labsrc import LabSourceError  # here: nbformat comes with it, a second at start-up
        from ..i18n import TranslationError

        if not isinstance(exc, (LabSourceError, TranslationError)):
            raise
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return 1
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        if exc.errno not in MACHINE_ERRNOS or not (full or exc.filename):  # EPERM from os.kill: a bug, traced
            raise
        # The machine, not the course: a full disk, a quota, a read-only or forbidden folder. Files the
        # command writes are replaced whole (techday/atomicfile.py), so the one there is as it was.
        where = f"{exc.filename}: " if exc.filename else ""
        hint = " (free some space, then run it again)" if full else ""
        err.print(f"[red]error:[/] {escape(where + (exc.strerror or str(exc)))}{hint}")
        return 1
    except KeyboardInterrupt as exc:
        err.print(f"interrupted{f' ({exc})' if str(exc) else ''}")
        return 130


if __name__ == "__main__":
    sys.exit(main())
