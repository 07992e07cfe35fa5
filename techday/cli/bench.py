"""``techday bench`` and ``techday bench leaderboard``: the command-line side of the suite.

    techday bench [--quick] [--family F ...] [--out DIR] [--tier T] [--cpu]
    techday bench leaderboard PATHS... [--out DIR] [--lab LAB]

Exit codes: 0 every implementation that ran was right; 1 one was wrong or failed (or the leaderboard
left a file out); 2 a machine that cannot do what was asked.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console

# Wide enough for the results table when the output is a file or a pipe (rich assumes 80 columns).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 130)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _default_out(name: str) -> Path:
    from ..course.syllabus import CourseError, load_course

    try:
        return load_course().build_dir / name
    except CourseError:
        return Path("build") / name


def cmd_bench(args) -> int:
    if getattr(args, "bench_command", None) == "leaderboard":
        return cmd_leaderboard(args)
    from ..bench.families import select
    from ..bench.report import skipped_reasons, table, targets, write_outputs
    from ..bench.runner import run_suite
    from ..tier import TierError, banner

    try:
        families = select(args.family)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        return 2
    from .common import out_folder

    out = out_folder(Path(args.out).resolve() if args.out else _default_out("bench"))  # before minutes of timing
    t0 = time.perf_counter()
    try:
        from ..tier import detect

        console.print(banner(detect(args.tier), title="bench"))
        doc = run_suite(tier=args.tier, quick=args.quick, families=families, with_cpu=args.cpu,
                        sim_check=not args.no_sim_check, progress=not args.no_progress,
                        report=lambda line: console.print(line, markup=False), console=console)
    except TierError as exc:
        err.print(f"[red]{exc}[/]")
        return 2
    console.print(table(doc))
    for line in skipped_reasons(doc):
        console.print(f"[dim]{line}[/]")
    for t in targets(doc):
        console.print(f"target: {t['target']}: {t['measured']:.3g} "
                      + ("[green]met[/]" if t["met"] else "[yellow]not met[/]"))
    for note in doc["limits"].get("notes", []):
        console.print(f"[yellow]limits:[/] {note}")
    from rich.markup import escape

    for line in doc.get("warnings", []):
        console.print(f"[yellow]warning:[/] {escape(line)}")
    for r in doc["results"]:
        for line in r.get("warnings", []):
            console.print(f"[yellow]warning:[/] {escape(r['family'] + '.' + r['kernel'] + ' [' + r['impl'] + ']: ' + line)}")
    doc["notes"] += args.note
    paths = write_outputs(doc, out)
    bad = [r for r in doc["results"] if r["status"] in ("wrong", "error")]
    for r in bad:
        err.print(f"[red]{r['status']}[/] {r['family']}.{r['kernel']} [{r['impl']}]: {r['reason']}")
    parts = {k: sum(r.get("wall", {}).get(k, 0.0) for r in doc["results"]) for k in ("setup", "check", "timing")}
    console.print(f"results: {paths['json']}   report: {paths['html']}   roofline: {paths['png']}   "
                  f"({time.perf_counter() - t0:.1f} s: set-up {parts['setup']:.1f} s, checks {parts['check']:.1f} s, "
                  f"timing {parts['timing']:.1f} s)")
    return 1 if bad else 0


def cmd_leaderboard(args) -> int:
    from ..bench.leaderboard import build_leaderboard

    out = Path(args.out).resolve() if args.out else _default_out("leaderboard")
    from rich.text import Text

    board = build_leaderboard([Path(p) for p in args.paths], lab=args.lab)
    for line in board.rejected_lines():
        # Plain text, not markup: escaping the brackets still let rich turn ":o:" into an emoji.
        err.print(Text.assemble(("left out", "yellow"), " ", line))
    if not board.runs:  # nothing to rank: an empty board written over the last one would lose it
        from rich.markup import escape

        err.print(f"[red]no usable result file in {escape(', '.join(args.paths))}: give results.json files (or "
                  f"folders of them) that `techday bench` wrote; nothing written to {escape(str(out))}[/]")
        return 1
    for t in board.tables():
        console.print(t)
    paths = board.write(out)
    console.print(f"{len(board.runs)} run(s) merged, {len(board.rejected)} file(s) left out -> "
                  f"{paths['html']}  {paths['json']}  {paths['png']}")
    return 1 if board.rejected else 0


def register(sub) -> None:
    """Add ``bench`` (and ``bench leaderboard``) to the ``techday`` command's subparsers."""
    from ..bench.families import FAMILIES
    from ..tier import TIER_CHOICES
    from .common import TIER_HELP

    # Its own usage: argparse's listed the optional `leaderboard` as a positional every run needs.
    p = sub.add_parser("bench", help="measure this machine's GPU (or CPU) against its limits",
                       usage="techday bench [-h] [--quick] [--family F] [--out DIR] [--tier {auto,gpu,cpu}] [--cpu]\n"
                             "                     [--no-sim-check] [--no-progress] [--note TEXT]\n"
                             "       techday bench leaderboard [-h] [--out DIR] [--lab LAB] PATH [PATH ...]",
                       description="Check, then time, every kernel family; write results.json, roofline.png "
                                   "and report.html.")
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions (a workshop room)")
    p.add_argument("--family", action="append", metavar="F", help=f"only these families (repeat or comma-separate): "
                                                                    f"{', '.join(FAMILIES)}")
    p.add_argument("--out", metavar="DIR", help="output folder (default: build/bench)")
    p.add_argument("--tier", choices=TIER_CHOICES, default="auto", help=TIER_HELP)
    p.add_argument("--cpu", action="store_true", help="on the GPU tier, time the CPU implementations too")
    p.add_argument("--no-sim-check", action="store_true",
                   help="on the CPU tier, do not check the Numba CUDA kernels in the simulator")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a note stored in the results file (for example, what else ran on the machine)")
    p.set_defaults(fn=cmd_bench)
    bsub = p.add_subparsers(dest="bench_command", metavar="leaderboard")
    lb = bsub.add_parser("leaderboard", prog="techday bench leaderboard",
                         help="merge many result files into ranked tables and one roofline")
    lb.add_argument("paths", nargs="+", metavar="PATH",
                    help="result files, folders of them, or an nbgrader course root / submitted/ tree")
    lb.add_argument("--out", metavar="DIR", help="output folder (default: build/leaderboard)")
    lb.add_argument("--lab", default="08-measure-your-gpu",
                    help="in a submitted/ tree, the lab whose files to take (default: 08-measure-your-gpu)")
    lb.set_defaults(fn=cmd_leaderboard)
