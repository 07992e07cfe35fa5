"""``techday grade``: the grading contract, and the instructor's grading commands.

    techday grade selftest [LAB ...]        solution = full marks, release = zero, with the real nbgrader
    techday grade check LAB [--import DIR]  every submission checked; nothing runs
    techday grade autograde LAB -w 4        sandboxed, parallel, resumable; grades CSV
    techday grade results [--roster FILE]   feedback, pass/fail per track, certificates with codes
    techday grade verify CODE | --file F    is a certificate genuine, and what does it certify?

The room's commands work on an nbgrader course root (``build/course`` by default, ``--course-root`` otherwise):
``submitted/<student>/<lab>/<lab>.ipynb`` as ``nbgrader collect`` or the hub's exchange leaves it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..course.layout import notebook, read_built
from ..grading.pool import default_workers
from .common import (
    JOBS_HELP,
    LANG_HELP,
    Setup,
    console,
    course_of,
    default_jobs,
    err,
    out_folder,
    positive_int,
    print_table,
    scale_for,
    tier_banner,
    tier_scale,
)

STYLE = {"graded": "green", "flagged": "yellow", "failed": "red", "rejected": "red", "pending": "white"}


def cmd_grade_selftest(args) -> int:
    from ..grading.contract import selftest

    s = Setup.of(args)
    t0 = time.monotonic()
    contracts, csv = selftest(s.course, s.labs, s.info.tier, s.scale, jobs=default_jobs(s.info.tier, args.jobs),
                              report=console.print, lang=s.course.language(getattr(args, "lang", None)))
    t = Table(title="grading contract: solution = full marks, release = zero")
    for col in ("lab", "cells", "points", "hidden tests", "solution", "release", "contract"):
        t.add_column(col)
    for c in contracts:
        sol = sum(x.solution_score or 0 for x in c.cells)
        rel = sum(x.release_score or 0 for x in c.cells)
        t.add_row(c.lab, str(len(c.cells)), f"{c.max_score:g}", str(c.hidden_tests), f"{sol:g}", f"{rel:g}",
                  "[green]kept[/]" if c.ok else "[red]BROKEN[/]")
    print_table(t)
    for c in contracts:
        for problem in c.problems:
            err.print(f"[red]{c.lab}[/]: {problem}")
    if csv:
        console.print(f"grades CSV (nbgrader export): {csv}")
    console.print(f"({time.monotonic() - t0:.0f} s)")
    ok = contracts and all(c.ok for c in contracts) and csv is not None
    return 0 if ok else 1


def _root(args, course) -> Path:
    from ..course.build import course_root

    return Path(args.course_root).resolve() if args.course_root else course_root(course)


def _one_lab(course, name: str) -> str | None:
    labs, unknown = course.select([name])
    if unknown or len(labs) != 1:
        from .common import unknown_labs

        err.print(f"[red]{escape(unknown_labs(course, [name]))}[/]")
        return None
    return labs[0]


def _print(sub) -> None:
    console.print(f"[{STYLE.get(sub.status, 'white')}]{sub.status:<8}[/] {escape(sub.line()[9:])}")


def cmd_check(args, course) -> int:
    from ..grading.checks import collect

    lab = _one_lab(course, args.lab)
    if not lab:
        return 2
    root = _root(args, course)
    release = notebook(root, "release", lab)
    if not release.is_file():
        err.print(f"[red]{release} not found: run `techday build {lab}` first[/]")
        return 2
    if args.import_from:
        from ..grading.checks import import_folder

        source = Path(args.import_from).resolve()
        if not source.is_dir():
            err.print(f"[red]--import {escape(str(source))} {'is a file' if source.exists() else 'does not exist'}: "
                      "give the folder that holds the hand-ins (<student>.ipynb or <student>/*.ipynb)[/]")
            return 2
        for line in import_folder(source, root, lab):
            console.print(escape(line))
    subs = collect(root, lab, read_built(root, "release", lab))
    for sub in subs:
        if sub.status == "pending":
            sub.status = "flagged" if sub.notes and any(not n.startswith("non-ASCII") for n in sub.notes) else "ok"
        _print(sub)
    rejected = sum(1 for s in subs if s.status == "rejected")
    flagged = sum(1 for s in subs if s.status == "flagged")
    console.print(f"{len(subs)} submission(s) of {lab}: {len(subs) - rejected - flagged} ok, "
                  f"{flagged} to review, {rejected} cannot be graded as they are")
    return 1 if rejected else 0


class RichProgress:
    """A progress bar with counts of graded, flagged and failed submissions."""

    def __init__(self, verbose: bool = True):
        self.counts = {"graded": 0, "flagged": 0, "failed": 0}
        self.verbose = verbose
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), console=console)

    def _counts(self) -> str:
        c = self.counts
        return f"[green]{c['graded']} graded[/]  [yellow]{c['flagged']} flagged[/]  [red]{c['failed']} failed[/]"

    def start(self, subs, todo):
        for sub in subs:
            if sub not in todo:
                self.counts["failed" if sub.status in ("failed", "rejected") else sub.status] = \
                    self.counts.get("failed" if sub.status in ("failed", "rejected") else sub.status, 0) + 1
        self.bar.start()
        self.task = self.bar.add_task("grading", total=len(subs), completed=len(subs) - len(todo),
                                      counts=self._counts())

    def advance(self, sub):
        key = "failed" if sub.status in ("failed", "rejected") else sub.status
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.verbose and sub.status != "graded":
            self.bar.console.print(f"[{STYLE.get(sub.status, 'white')}]{sub.status:<8}[/] {escape(sub.line()[9:])}")
        self.bar.update(self.task, advance=1, counts=self._counts())

    def stop(self):
        self.bar.stop()


def cmd_autograde(args, course, tier: str, scale: str) -> int:
    from ..grading.certificates import printable
    from ..grading.run import GradingBusy, autograde
    from ..grading.sandbox import SandboxUnavailable

    lab = _one_lab(course, args.lab)
    if not lab:
        return 2
    root = _root(args, course)
    if args.no_sandbox:
        err.print("[yellow]--no-sandbox: submissions run with your rights, your network and your files. "
                  "Only for work you trust.[/]")
    if not args.workers:
        args.workers = default_workers(tier)
        console.print(f"{args.workers} worker(s) (--workers to change)")
    progress = RichProgress()
    t0 = time.monotonic()
    try:
        run = autograde(course, lab, root, tier, scale, workers=args.workers, sandbox=not args.no_sandbox,
                        referee=not args.no_referee,
                        retry_failed=args.retry_failed, cell_timeout=args.cell_timeout, progress=progress,
                        report=lambda line: console.print(escape(printable(str(line)))))
    except SandboxUnavailable as exc:
        err.print(f"[red]refusing to run untrusted submissions: {exc}[/]")
        return 2
    except (FileNotFoundError, GradingBusy) as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        return 2
    finally:
        if getattr(progress, "task", None) is not None:
            progress.stop()
    if run.interrupted:
        pending = sum(1 for s in run.submissions if s.status == "pending")
        err.print(f"[yellow]{lab}: interrupted. {len(run.submissions) - pending} submission(s) have a status in "
                  f"{run.state}; {pending} are not graded yet. Run the same command again to grade only those.[/]")
        return 130
    rejected = [s for s in run.submissions if s.status == "rejected"]
    for sub in rejected:
        _print(sub)
    console.print(f"{lab}: {len(run.submissions)} submission(s): {run.count('graded')} graded, "
                  f"{run.count('flagged')} flagged, {run.count('failed')} failed, {len(rejected)} rejected, "
                  f"{run.skipped} already graded before ({time.monotonic() - t0:.0f} s, {args.workers} worker(s))")
    console.print(f"state: {run.state}   report: {run.state.parent / 'report.json'}")
    if run.csv:
        console.print(f"grades CSV (nbgrader export): {run.csv}")
    return 0 if run.csv and not run.count("failed") else 1


def cmd_results(args, course) -> int:
    from ..grading.results import ResultsStopped, results

    if getattr(args, "lang", None):  # the language of the certificates and feedback pages
        os.environ["TECHDAY_LANG"] = course.language(args.lang)

    root = _root(args, course)
    out = out_folder(Path(args.out).resolve() if args.out else course.build_dir / "grading")
    roster = Path(args.roster).resolve() if args.roster else None
    from ..grading.certificates import printable

    # Report lines name trainees (ids from --import file names, roster lines): printed as printable text.
    try:
        res = results(course, root, out, issue_held=args.issue_held, roster=roster, run=args.run,
                      report=lambda line: console.print(escape(printable(line))))
    except ResultsStopped as exc:
        err.print(f"[red]{escape(printable(str(exc)))}[/]")
        return 2
    for track, rows in res.tracks.items():
        passed = sum(1 for r in rows if r["passed"])
        held = sum(1 for r in rows if r["certificate"].startswith("held"))
        console.print(f"track {track}: {passed} of {len(rows)} trainee(s) passed, {held} certificate(s) held "
                      "for review" + (" (issued: --issue-held)" if args.issue_held and held else ""))
    console.print(f"pass/fail: {res.passfail}   feedback: {res.feedback_dir}   certificates: {res.cert_dir}   "
                  f"codes: {res.register}")
    for problem in res.problems:
        err.print(f"[red]{escape(printable(problem))}[/]")
    return 1 if res.problems else 0


def cmd_verify(args, course) -> int:
    from ..grading.certificates import CertificateError, Register, load_key, verify

    if not args.code and not args.file:
        err.print("[red]give a code, or a certificate with --file[/]")
        return 2
    try:
        key, _, notes = load_key(course)
        for note in notes:
            err.print(f"[yellow]{escape(note)}[/]")
        out = Path(args.out).resolve() if args.out else course.build_dir / "grading"
        path = Path(args.register).resolve() if args.register else out / "certificates.json"
        register = Register.load(path, keep_aside=False)[0] if path.is_file() else None
    except CertificateError as exc:
        err.print(f"[red]cannot verify here: {escape(str(exc))}[/]")
        return 2
    verdict = verify(course, key, register, code=args.code, file=Path(args.file) if args.file else None)
    for i, line in enumerate(verdict.lines):
        style = ("green" if verdict.ok else "red") if i == 0 else ("red" if line.startswith("WITHDRAWN") else "")
        console.print(f"[{style}]{escape(line)}[/]" if style else escape(line))
    return 0 if verdict.ok else 1


def _on_course(fn, tiered: bool = False):
    """A room command's handler called with the course (and, for grading, the tier and scale)."""
    def run(args) -> int:
        course = course_of(args)
        if not tiered:
            return fn(args, course)
        if not _one_lab(course, args.lab):  # a mistyped lab is said before the tier's banner, not under it
            return 2
        info = tier_banner(args.tier)
        return fn(args, course, info.tier, scale_for(args.scale, info.tier))
    return run


def register(sub) -> None:
    p = sub.add_parser("grade", help="grading commands")
    gsub = p.add_subparsers(dest="grade_command", required=True)
    g = gsub.add_parser("selftest", help="solution earns full marks, release earns zero, with real nbgrader")
    g.add_argument("labs", nargs="*", metavar="LAB")
    tier_scale(g)
    g.add_argument("--jobs", "-j", type=positive_int, help=f"labs graded {JOBS_HELP}")
    g.add_argument("--lang", help=LANG_HELP)
    g.set_defaults(fn=cmd_grade_selftest)

    g = gsub.add_parser("check", help="check every submission of a lab before grading (nothing runs)")
    g.add_argument("lab", metavar="LAB")
    g.add_argument("--course-root", help="nbgrader course root (default: build/course)")
    g.add_argument("--import", dest="import_from", metavar="DIR",
                   help="first copy DIR/<student>.ipynb or DIR/<student>/*.ipynb into submitted/")
    g.set_defaults(fn=_on_course(cmd_check))

    g = gsub.add_parser("autograde", help="grade a lab's submissions in sandboxes, in parallel, resumably")
    g.add_argument("lab", metavar="LAB")
    tier_scale(g)
    g.add_argument("--workers", "-w", type=positive_int, default=None,
                   help="submissions graded at a time (default: one per CPU core; on the GPU tier at most 4)")
    g.add_argument("--course-root", help="nbgrader course root (default: build/course)")
    g.add_argument("--cell-timeout", type=positive_int, help="seconds per cell (default: course/syllabus.toml)")
    g.add_argument("--retry-failed", action="store_true", help="grade again the submissions that failed")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run submissions WITHOUT isolation (only for trusted work, e.g. a machine without bwrap)")
    g.add_argument("--no-referee", action="store_true",
                   help="run test cells as plain cells, trusting the kernel's word (to measure what the referee "
                        "catches; every submission is then flagged)")
    g.set_defaults(fn=_on_course(cmd_autograde, tiered=True))

    g = gsub.add_parser("results", help="feedback, pass/fail per track and certificates from the gradebook")
    g.add_argument("--course-root", help="nbgrader course root (default: build/course)")
    g.add_argument("--out", help="output folder (default: build/grading)")
    g.add_argument("--lang", help="language of the certificates and feedback pages (default: $TECHDAY_LANG, "
                                  "else the syllabus' default_language)")
    g.add_argument("--issue-held", action="store_true",
                   help="issue the certificates held because a submission was flagged (after reviewing them)")
    g.add_argument("--roster", metavar="FILE",
                   help="CSV (UTF-8) with columns id,name: the names on the certificates (default: nbgrader's "
                        "student table, else the name issued before in this run, else the id)")
    g.add_argument("--run", help="this delivery of the course, bound into every code (default: the last run "
                                 "recorded in certificates.json, else today's date)")
    g.set_defaults(fn=_on_course(cmd_results))

    g = gsub.add_parser("verify", help="is a certificate's verification code genuine, and what does it certify?")
    g.add_argument("code", nargs="?", metavar="CODE", help="the code printed on the certificate")
    g.add_argument("--file", metavar="CERTIFICATE", help="a certificate (.html or .pdf) to check, code and fields")
    g.add_argument("--out", help="the results folder with certificates.json (default: build/grading)")
    g.add_argument("--register", metavar="FILE", help="the register to look codes up in (default: OUT/certificates.json)")
    g.set_defaults(fn=_on_course(cmd_verify))
