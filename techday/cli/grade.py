"""``techday grade``: the grading contract, and the instructor's grading commands.

    techday grade selftest [LAB ...]        solution = full marks, release = zero, with the real nbgrader
    techday grade check LAB [--import DIR]  every submission checked; nothing runs
    techday grade autograde LAB -w 4        sandboxed, parallel, resumable; grades CSV
    techday grade results [--roster FILE]   feedback, pass/fail per track, certificates with codes
    techday grade review [ID --clear|--refuse --by NAME --reason TEXT]   what holds a certificate; decide
    techday grade verify CODE | --file F    is a certificate genuine, and what does it certify?

The room's commands work on an nbgrader course root (``build/course`` by default, ``--course-root`` otherwise):
``submitted/<student>/<lab>/<lab>.ipynb`` as ``nbgrader collect`` or the hub's exchange leaves it.
"""

from __future__ import annotations

import contextlib
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
    LAB_HELP,
    LABS_HELP,
    LANG_HELP,
    Setup,
    console,
    course_of,
    default_jobs,
    draw_seed,
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
    if not root.is_dir():  # a mistyped --course-root: `techday build` would not put the course there
        err.print(f"[red]{escape(str(root))} does not exist: check --course-root (the nbgrader course root, with "
                  "release/ and submitted/)[/]")
        return 2
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
    if not subs and args.import_from:
        err.print(f"[red]--import {escape(str(source))} holds no hand-in of {lab} (<student>.ipynb or "
                  "<student>/*.ipynb)[/]")
        return 2
    if not subs:  # before `nbgrader collect`, or a mistyped --course-root: "0 submission(s)" and exit 0 read as done
        err.print(f"[red]no hand-in of {lab} in {escape(str(root / 'submitted'))}: collect them first "
                  f"(`nbgrader collect {lab}`, or `techday grade check {lab} --import DIR`), or check "
                  "--course-root[/]")
        return 2
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
                        referee=not args.no_referee, draw="" if args.draw in (None, "random") else args.draw,
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
        refused = sum(1 for r in rows if r["certificate"].startswith("refused"))
        console.print(f"track {track}: {passed} of {len(rows)} trainee(s) passed, {held} certificate(s) held "
                      "for review" + (" (issued: --issue-held)" if args.issue_held and held else "")
                      + (f", {refused} refused on review" if refused else ""))
    if any(r["certificate"].startswith("held") for rows in res.tracks.values() for r in rows) and not args.issue_held:
        console.print("what holds each one, and how to clear or refuse it: techday grade review")
    console.print(f"pass/fail: {res.passfail}   feedback: {res.feedback_dir}   certificates: {res.cert_dir}   "
                  f"codes: {res.register}")
    for problem in res.problems:
        err.print(f"[red]{escape(printable(problem))}[/]")
    return 1 if res.problems else 0


def _issued(out: Path, course_id: str) -> dict[tuple[str, str], list[str]]:
    """(trainee, track) -> codes of certificates the register says are issued: they verify, held or not."""
    from ..grading.certificates import CertificateError, Register

    codes: dict[tuple[str, str], list[str]] = {}
    path = out / "certificates.json"
    if path.is_file():
        with contextlib.suppress(CertificateError):
            for code, entry in sorted(Register.load(path, keep_aside=False)[0].certificates.items()):
                if isinstance(entry, dict) and entry.get("status") == "issued" and entry.get("course") == course_id:
                    codes.setdefault((str(entry.get("trainee")), str(entry.get("track"))), []).append(code)
    return codes


def _review_table(tracks: dict, students: list[str], root: Path, out: Path, course_id: str,
                  everyone: bool = False) -> None:
    """Per trainee and track: the certificate's standing and any code already issued (it verifies, held
    or not), then each lab's holds, the notebook to open (as graded, else as handed in) and the decision
    (and why one lapsed); then a count. ``everyone`` (no id named): a trainee who did not pass the track,
    with nothing decided, is counted, not listed (no certificate waits on a person there; in a room of
    300, failed gradings of those who did not pass buried the held ones)."""
    from ..grading.certificates import printable
    from ..grading.checks import has_handin
    from ..grading.results import KEPT_NOTE

    issued = _issued(out, course_id)
    shown = 0
    count = {"held": 0, "refused": 0, "yes": 0, "no": 0}
    unlisted = 0
    for track, rows in tracks.items():
        for row in rows:
            if row["student"] not in students or not (row["holds"] or row["decided"]):
                continue
            if everyone and not row["passed"] and not row["decided"]:
                unlisted += 1
                continue
            shown += 1
            kind = {"refused on review": "refused", "held: review the flags": "held"}.get(row["certificate"],
                                                                                         row["certificate"])
            count[kind] = count.get(kind, 0) + 1
            console.print(f"[bold]{escape(printable(row['student']))}[/] track {track}: certificate "
                          f"{escape(row['certificate'])} ({row['points']:g} of {row['max_points']:g} points)")
            if row["certificate"] != "yes":
                for code in issued.get((row["student"], track), []):
                    console.print(f"  [red]issued[/]   {escape(KEPT_NOTE.format(code=code))}")
            for lab in sorted(set(row["holds"]) | set(row["decided"])):
                for line in row["holds"].get(lab, []):
                    console.print(f"  hold     {escape(printable(line))}")
                for step in ("autograded", "submitted"):
                    path = notebook(root, step, lab, row["student"])
                    # A hand-in is named only where it is the trainee's own file (never through a link).
                    if path.is_file() if step == "autograded" else has_handin(root, lab, row["student"]):
                        with contextlib.suppress(ValueError):
                            path = path.relative_to(Path.cwd())
                        console.print(f"  open     {escape(printable(str(path)))}")
                        break
                standing, decision = row["decided"].get(lab, ("none", None))
                if decision is not None:
                    style = {"refused": "red", "cleared": "green"}.get(standing, "yellow")
                    console.print(f"  [{style}]{standing:<8}[/] {escape(printable(decision.line()))}")
                    if standing == "lapsed" and row["holds"].get(lab):
                        why = ("the gradebook's score is not of the current notebook: grade it "
                               f"(techday grade autograde {lab}), then decide" if lab in row["unscored"] else
                               "the notebook or its holds changed since: decide again")
                        console.print(f"           ({why})")
    if shown:
        console.print(f"{shown} listed: {count['held']} held, {count['refused']} refused, {count['yes']} certified "
                      f"after a decision, {count['no']} not passed with a decision"
                      + (f"; {unlisted} who did not pass, with holds and nothing decided, not listed "
                         "(name them to see)" if unlisted else ""))
    else:
        console.print("nothing held and nothing decided" + (f" for {', '.join(students)}" if students else "")
                      + (f" ({unlisted} who did not pass have holds: name them to see)" if unlisted else ""))


def cmd_review(args, course) -> int:
    """List what holds certificates, or record a person's decision on one trainee's held labs."""
    from ..grading.certificates import printable
    from ..grading.decisions import Decisions, DecisionsError, locked
    from ..grading.results import ResultsStopped, _states, notebook_sha, pass_fail, preflight

    root = _root(args, course)
    out = out_folder(Path(args.out).resolve() if args.out else course.build_dir / "grading")
    verdict = "clear" if args.clear else "refuse" if args.refuse else None
    if verdict and not args.students:
        err.print("[red]name the trainee(s) to decide on: techday grade review ID --clear/--refuse --by NAME "
                  "--reason TEXT[/]")
        return 2
    if verdict and not (args.by and args.reason):
        err.print("[red]a decision needs --by (who decides) and --reason (why): both are shown in passfail.csv[/]")
        return 2
    lab = None
    if args.lab:
        lab = _one_lab(course, args.lab)
        if lab is None:
            return 2
    try:
        preflight(root, None)
        _states(out)
        decisions = Decisions.load(out)
        tracks, notes = pass_fail(course, root, out, decisions)
    except (ResultsStopped, DecisionsError) as exc:
        err.print(f"[red]{escape(printable(str(exc)))}[/]")
        return 2
    for note in notes:
        console.print(escape(note))
    known = {row["student"] for rows in tracks.values() for row in rows}
    unknown = [s for s in args.students if s not in known]
    if unknown:
        err.print(f"[red]not in the gradebook: {escape(printable(', '.join(unknown)))}; nothing was recorded[/]")
        return 2
    if not verdict:
        _review_table(tracks, args.students or sorted(known), root, out, course.id, everyone=not args.students)
        return 0

    # Every trainee's decisions are worked out before any is recorded: one refused line records none.
    held: dict[str, dict[str, list[str]]] = {}
    refused: dict[str, set[str]] = {}
    unscored: dict[str, set[str]] = {}
    read: dict[tuple[str, str], str] = {}  # (student, lab) -> the notebook the holds were read from
    for rows in tracks.values():
        for row in rows:
            unscored.setdefault(row["student"], set()).update(row["unscored"])
            read.update({(row["student"], name): sha for name, sha in row["notebooks"].items()})
            for name, lines in row["holds"].items():
                held.setdefault(row["student"], {}).setdefault(name, lines)
            refused.setdefault(row["student"], set()).update(
                name for name, (standing, _) in row["decided"].items() if standing == "refused")
    todo = []
    for student in args.students:
        mine = held.get(student, {})
        labs = [lab] if lab else sorted(mine)
        if not labs:
            hint = "; name the lab to refuse with --lab" if verdict == "refuse" else ""
            err.print(f"[red]{escape(printable(student))}: nothing is held{hint}; nothing was recorded[/]")
            return 2
        if verdict == "clear" and lab and lab not in mine and lab not in refused.get(student, ()):
            err.print(f"[red]{escape(printable(student))}: nothing is held in {lab}; nothing was recorded[/]")
            return 2
        if verdict == "clear":
            for name in labs:
                if name in unscored.get(student, ()) and mine.get(name):
                    err.print(f"[red]{escape(printable(student))}: {name}'s score in the gradebook is not of the "
                              f"current notebook ({escape(printable(mine[name][0]))}): a clearance would certify "
                              f"it; grade it first (techday grade autograde {name}), or name the other labs with "
                              "--lab; nothing was recorded[/]")
                    return 2
        todo += [(student, name, mine.get(name, [])) for name in labs]
    try:
        with locked(out):  # read again under the lock: another instructor may have decided meanwhile
            decisions = Decisions.load(out)
            # Bound to the notebook the holds were read from, not to the file as it is now: one handed in
            # and graded meanwhile, with the same flag, was cleared unread.
            made = [decisions.record(student, name, verdict,
                                     read[(student, name)] if (student, name) in read else
                                     notebook_sha(root, name, student), lines, args.by, args.reason)
                    for student, name, lines in todo]
            decisions.save()
    except DecisionsError as exc:
        err.print(f"[red]{escape(str(exc))}; nothing was recorded[/]")
        return 2
    for d in made:
        console.print(f"recorded: {escape(printable(d.student))}: {escape(printable(d.line()))}")
    console.print(f"decisions: {decisions.path}; run `techday grade results` to issue or withhold the certificates")
    _review_table(pass_fail(course, root, out, decisions)[0], list(args.students), root, out, course.id)
    return 0


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
    g.add_argument("labs", nargs="*", metavar="LAB", help=LABS_HELP)
    tier_scale(g)
    g.add_argument("--jobs", "-j", type=positive_int, help=f"labs graded {JOBS_HELP}")
    g.add_argument("--lang", help=LANG_HELP)
    g.set_defaults(fn=cmd_grade_selftest)

    g = gsub.add_parser("check", help="check every submission of a lab before grading (nothing runs)")
    g.add_argument("lab", metavar="LAB", help=LAB_HELP)
    g.add_argument("--course-root", help="nbgrader course root (default: build/course)")
    g.add_argument("--import", dest="import_from", metavar="DIR",
                   help="first copy DIR/<student>.ipynb or DIR/<student>/*.ipynb into submitted/")
    g.set_defaults(fn=_on_course(cmd_check))

    g = gsub.add_parser("autograde", help="grade a lab's submissions in sandboxes, in parallel, resumably")
    g.add_argument("lab", metavar="LAB", help=LAB_HELP)
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
    g.add_argument("--draw", type=draw_seed, default=None, metavar="SEED",
                   help="grade with this seed of the hidden tests' drawn inputs (`draw` of a hand-in in state.json: "
                        "repeats that grading); default: a fresh draw for every hand-in")
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

    g = gsub.add_parser("review", help="what holds each certificate; clear or refuse one trainee's held labs")
    g.add_argument("students", nargs="*", metavar="ID", help="trainee ids (default: list every held trainee)")
    decide = g.add_mutually_exclusive_group()
    decide.add_argument("--clear", action="store_true",
                        help="the held notebooks are fine as they are: certify on them (lapses if they change)")
    decide.add_argument("--refuse", action="store_true",
                        help="withhold the certificates that rest on these labs (withdraws one already issued)")
    g.add_argument("--lab", metavar="LAB", help="decide on this lab only (default: every held lab of the trainee)")
    g.add_argument("--by", metavar="NAME", help="who decides (required with --clear/--refuse)")
    g.add_argument("--reason", metavar="TEXT", help="why (required with --clear/--refuse)")
    g.add_argument("--course-root", help="nbgrader course root (default: build/course)")
    g.add_argument("--out", help="results folder holding decisions.json (default: build/grading)")
    g.set_defaults(fn=_on_course(cmd_review))

    g = gsub.add_parser("verify", help="is a certificate's verification code genuine, and what does it certify?")
    g.add_argument("code", nargs="?", metavar="CODE", help="the code printed on the certificate")
    g.add_argument("--file", metavar="CERTIFICATE", help="a certificate (.html or .pdf) to check, code and fields")
    g.add_argument("--out", help="the results folder with certificates.json (default: build/grading)")
    g.add_argument("--register", metavar="FILE", help="the register to look codes up in (default: OUT/certificates.json)")
    g.set_defaults(fn=_on_course(cmd_verify))
