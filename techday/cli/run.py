"""``techday run | kernels | validate``: the labs run headless, their kernels compiled, the main job.

    techday run [LAB ...]               execute labs headless with papermill; summary, JUnit
    techday kernels [LAB ...]           every Numba kernel compiled for sm_80 and sm_90 with ptxas, without a GPU
    techday validate                    doctor, build, run, grade selftest and kernels: the main job
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import (
    JOBS_HELP,
    LABS_HELP,
    LANG_HELP,
    CourseError,
    Setup,
    TierError,
    UsageError,
    bad_usage,
    console,
    course_of,
    default_jobs,
    draw_seed,
    err,
    labs_of,
    out_folder,
    positive_int,
    print_table,
    scale_for,
    tier_scale,
)

STATUS_STYLE = {"passed": "green", "failed": "red", "timeout": "yellow", "crashed": "red", "error": "red",
                "interrupted": "yellow", "not started": "dim"}


def _results_table(summary) -> Table:
    t = Table(title=f"labs at scale {summary.scale}")
    for col in ("lab", "tier", "status", "seconds", "host MB", "failing cell / reason"):
        t.add_column(col)
    for r in summary.labs:
        style = STATUS_STYLE.get(r.status, "")
        detail = "" if r.ok else " | ".join(x for x in (r.failing_cell, r.reason) if x)
        memory = "" if r.memory_mb is None else str(r.memory_mb)
        t.add_row(r.lab, r.tier, f"[{style}]{r.status}[/]", f"{r.seconds:.1f}", memory, detail)
    return t


def cmd_run(args) -> int:
    from ..validate.runner import run_labs

    s = Setup.of(args)
    out = out_folder(Path(args.out).resolve() if args.out else s.course.build_dir / "run")
    jobs = default_jobs(s.info.tier, args.jobs)
    console.print(f"running {len(s.labs)} lab(s) at scale {s.scale} on the {s.info.tier} tier, {jobs} at a time "
                  f"-> {out}")
    summary = run_labs(s.course, s.labs, s.info, s.scale, jobs, args.timeout, out, report=console.print,
                       lang=s.course.language(getattr(args, "lang", None)))
    print_table(_results_table(summary))
    console.print(f"summary: {out / 'summary.json'}   junit: {out / 'junit.xml'}   ({summary.seconds:.0f} s)")
    if summary.interrupted:
        err.print("interrupted: the table and the summary hold what finished")
        return 130
    return 0 if summary.ok else 1


def cmd_kernels(args) -> int:
    """Record the kernels the CPU tier launches, compile them for the target GPUs, check the launches."""
    from ..validate import kernels

    course = course_of(args)
    # An unknown name: exit 2 before anything runs (it was "0 recorded", exit 0); a lab given by the start of its
    # name (`techday kernels 02`, `techday validate 02`) as the lab it names (it was "labs/02/02.py: lab source not
    # found").
    labs = labs_of(course, args.labs) if args.labs else None
    families = [f for name in args.bench for f in name.split(",") if f] if args.bench else None
    if families:
        from ..bench.families import select

        try:
            select(families)  # an unknown family: exit 2 (it was "0 recorded", exit 0)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    out = out_folder(Path(args.out).resolve() if args.out else course.build_dir / "kernels")
    if labs is not None and families is None:
        families = []
    if families is not None and labs is None:
        labs = []
    t0 = time.monotonic()
    # Recording runs every lab on the CPU tier (the simulator), whatever the machine has.
    rep = kernels.run(course.root, out, jobs=default_jobs("cpu", args.jobs), labs=labs, families=families,
                      report=console.print)
    if rep.tool_missing:
        err.print(f"techday kernels: {rep.tool_missing}", style="red", markup=False)
        return 2
    # Wide enough for a kernel's name and signature on one line, also in a CI log.
    Console(highlight=False, width=max(console.width, 200)).print(kernels.table(rep))
    for line in rep.problems:
        err.print(f"[red]FAILED[/] {escape(line)}")
    console.print(kernels.summary_line(rep))
    console.print(f"report: {out / 'kernels.json'}  ({time.monotonic() - t0:.0f} s: record {rep.seconds.get('record', 0)} s, "
                  f"compile {rep.seconds.get('compile', 0)} s)")
    return 0 if rep.ok else 1


def cmd_validate(args) -> int:
    """The main job: is this machine and this course ready for a Tech Day? Each step as its own
    command would run it; a step that cannot run here (exit 2) stops the rest, and the summary of
    the steps is printed either way."""
    from ..course.build import course_root
    from ..tier import detect
    from ..validate import record
    from .course import cmd_build, cmd_doctor
    from .grade import cmd_grade_selftest

    course = course_of(args)
    labs = labs_of(course, args.labs)  # an unknown lab is bad usage before any step starts
    drawn = _draw_for(getattr(args, "draw", None))
    before = record.snapshot(course.root)
    outputs = {"build": course_root(course), "run": course.build_dir / "validate" / "run",
               "grade selftest": course.build_dir / "selftest", "kernels": course.build_dir / "kernels"}
    # The tier is detected once, here, and every step and the record get the one answer (a step that
    # detected again could disagree with the others, say a GPU lost between steps). Where it cannot
    # be had, the doctor step says why and validate stops there.
    try:
        tier = detect(args.tier).tier
    except TierError:
        tier = args.tier
    steps = [
        ("doctor", cmd_doctor, argparse.Namespace(tier=tier, json=False)),
        ("build", cmd_build, argparse.Namespace(root=args.root, labs=args.labs, no_release=False)),
        # Its own folder: a later `techday run` of one lab must not replace the record of the whole course.
        ("run", cmd_run, argparse.Namespace(root=args.root, labs=args.labs, tier=tier, scale=args.scale,
                                            jobs=args.jobs, timeout=None,
                                            out=str(outputs["run"]))),
        ("grade selftest", cmd_grade_selftest, argparse.Namespace(root=args.root, labs=args.labs, tier=tier,
                                                                  scale=args.scale, jobs=args.jobs)),
        # Every kernel the CPU tier launches, compiled for the GPUs the course targets (no GPU needed).
        ("kernels", cmd_kernels, argparse.Namespace(root=args.root, labs=args.labs, bench=None, jobs=args.jobs,
                                                    out=str(outputs["kernels"]))),
    ]
    results = []
    with drawn:
        for name, fn, ns in steps:
            console.rule(f"techday {name}")
            try:
                code = fn(ns)
            except (CourseError, TierError) as exc:
                code = bad_usage(exc)
            results.append((name, code))
            if code == 2:
                break
    console.rule("validate")
    for name, code in results:
        console.print(f"{name:<16} {'[green]ok[/]' if code == 0 else '[red]FAILED[/]'}")
    if len(results) == len(steps):
        # What was checked, on exactly this tree: the test suite reads it instead of checking twice.
        written, changed = record.write(course.build_dir, before, course.root, labs=labs,
                                        all_labs=labs == list(course.labs), tier=tier, scale=scale_for(args.scale, tier),
                                        steps=dict(results), outputs={k: str(v) for k, v in outputs.items()})
        console.print(f"record: {written}" if written else
                      f"record: none: changed while validate ran: {', '.join(changed)} (the tests will run "
                      "their checks themselves)", markup=False)
    return max(code for _, code in results)


@contextlib.contextmanager
def _draw_for(given: str | None):
    """The hidden tests' draw (techday/draw.py) for the labs validate runs: ``$TECHDAY_DRAW`` for their
    kernels while validate runs; ``random`` draws a seed here (printed, so a failure can be repeated with
    ``--draw SEED``); None leaves the environment as it is (the default draw, or ``$TECHDAY_DRAW``)."""
    import secrets

    from ..draw import DEFAULT, ENV, SEED_BITS

    if not given:
        console.print(f"hidden tests' draw: {os.environ.get(ENV) or DEFAULT} "
                      f"({'$' + ENV if os.environ.get(ENV) else 'the default'}; --draw random for a fresh one)")
        yield
        return
    seed = str(secrets.randbits(SEED_BITS)) if given == "random" else given
    console.print(f"hidden tests' draw: {seed} (repeat with --draw {seed})")
    old = os.environ.get(ENV)
    os.environ[ENV] = seed
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


def register(sub) -> None:
    p = sub.add_parser("run", help="execute labs headless with papermill")
    p.add_argument("labs", nargs="*", metavar="LAB", help=LABS_HELP)
    tier_scale(p)
    p.add_argument("--jobs", "-j", type=positive_int, help=f"labs {JOBS_HELP}")
    p.add_argument("--timeout", type=positive_int, help="seconds per lab (default: course/syllabus.toml)")
    p.add_argument("--out", help="output folder (default: build/run)")
    p.add_argument("--lang", help=LANG_HELP)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("validate", help="doctor, build, run, grade selftest and kernels (the main job)")
    p.add_argument("labs", nargs="*", metavar="LAB", help=LABS_HELP)
    tier_scale(p)
    p.add_argument("--jobs", "-j", type=positive_int, help=f"labs {JOBS_HELP}")
    p.add_argument("--draw", type=draw_seed, default=None, metavar="SEED|random",
                   help="the seed of the hidden tests' drawn inputs (default: $TECHDAY_DRAW, else the fixed "
                        "default, reproducible); random: a fresh one, printed (CI: honest answers pass any draw)")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("kernels", help="compile every recorded Numba kernel for sm_80 and sm_90 (no GPU needed)")
    p.add_argument("labs", nargs="*", metavar="LAB", help="only these labs (default: every lab and benchmark family)")
    p.add_argument("--bench", action="append", metavar="FAMILY", help="only these benchmark families")
    p.add_argument("--jobs", "-j", type=positive_int, help="labs recorded at a time (default: one more than the cores)")
    p.add_argument("--out", help="output folder (default: build/kernels)")
    p.set_defaults(fn=cmd_kernels)
