"""The ``techday`` command: one way in for trainees' machines, instructors and CI.

    techday doctor                      which tier is this machine? (GPU, driver, CUDA runtime)
    techday list                        tracks and labs from course/syllabus.toml
    techday build [LAB ...] [--lang L]  lab sources -> nbgrader course root, source/ and release/
    techday run [LAB ...]               execute labs headless with papermill; summary, JUnit
    techday grade selftest [LAB ...]    the grading contract with the real nbgrader
    techday grade check|autograde|results|verify   a room's submissions: checked, sandboxed, graded, certified
    techday validate                    doctor, build, run, grade selftest and kernels: the main job
    techday lab [LAB ...]               a trainee's JupyterLab on this machine: released labs, no instructor panels
    techday kernels [LAB ...]           every Numba kernel compiled for sm_80 and sm_90 with ptxas, without a GPU
    techday i18n report|stamp           translations (labs, course documents): Korean share, what is missing or stale; store reviews
    techday fmt [--fix]                 committed notebooks: canonical and output-free
    techday bench [--quick]             measure this GPU against its limits; `bench leaderboard` merges runs
    techday hub check|users             the JupyterHub for the day: check the server, make the accounts
    techday locks check|compile         the image's locked install sets (docker/locks/), one per CUDA major

Exit codes: 0 everything passed, 1 something failed (a lab, the contract, a build), 2 bad usage
or a machine that cannot do what was asked (for example ``--tier gpu`` without a GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import __version__
from ..course.syllabus import CourseError, load_course
from ..tier import TIER_CHOICES, TierError, banner, detect

# Not a terminal (CI logs, a file): wide enough that tables keep lab names and reasons whole.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)

DEFAULT_JOBS = max(1, min(4, os.cpu_count() or 1))
STATUS_STYLE = {"passed": "green", "failed": "red", "timeout": "yellow", "crashed": "red", "error": "red",
                "interrupted": "yellow", "not started": "dim"}


def _print_table(t: Table) -> None:
    """Print ``t`` with its first column (lab and device names) never cut: on a narrow terminal the
    other columns wrap instead."""
    for i, col in enumerate(t.columns):
        if i == 0 or str(col.header) in ("lab", "device"):
            col.no_wrap = True
            col.min_width = max((len(str(c)) for c in col.cells), default=0)
    console.print(t)


def _course(args):
    return load_course(Path(args.root).resolve() if getattr(args, "root", None) else None)


def _tier(requested: str):
    info = detect(requested)
    console.print(banner(info))
    return info


def _scale(requested: str, tier: str) -> str:
    """``auto``: the workshop size on a GPU, the quick size elsewhere (the simulator is slow)."""
    if requested != "auto":
        return requested
    return "full" if tier == "gpu" else "ci"


class UnknownLab(CourseError):
    """A lab name the syllabus does not have: bad usage (exit 2), before anything runs."""


def _labs(course, names):
    """The labs ``names`` select; any unknown name stops the command before it does anything (exit 2,
    the known labs listed once). The second value stays for the callers' shape: always empty."""
    labs, unknown = course.select(names)
    if unknown:
        raise UnknownLab(f"unknown lab{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(course.labs)})")
    return labs, unknown


# ---------------------------------------------------------------------------------------------


def cmd_doctor(args) -> int:
    try:
        info = detect(args.tier)
    except TierError as exc:
        err.print(f"[red]{exc}[/]")
        return 2
    if args.json:
        print(info.to_json())
        return 0
    console.print(banner(info))
    if info.tier == "gpu":
        t = Table(title="CUDA devices")
        for col in ("#", "name", "cc", "memory", "SMs", "clock", "mem clock", "bus", "L2", "id"):
            t.add_column(col)
        for g in info.gpus:
            t.add_row(str(g.index), g.name, g.cc, f"{g.memory_gib:.1f} GiB", str(g.multiprocessor_count),
                      f"{g.clock_rate_khz / 1e3:.0f} MHz", f"{g.memory_clock_rate_khz / 1e3:.0f} MHz",
                      f"{g.global_memory_bus_width_bits} bit", f"{g.l2_cache_bytes / 2**20:.0f} MiB", g.fingerprint())
        _print_table(t)
    else:
        console.print("Numba CUDA kernels will run in the simulator (NUMBA_ENABLE_CUDASIM=1): correct, not fast.")
    return 0


def cmd_list(args) -> int:
    course = _course(args)
    t = Table(title=course.title)
    for col in ("track", "lab", "title", "slot", "minutes", "timeout ci/full"):
        t.add_column(col)
    for track in course.tracks.values():
        for lab_id in track.labs:
            lab = course.labs[lab_id]
            t.add_row(track.id, lab.id, f"{lab.title}\n{lab.title_ko}".strip(), lab.slot, str(lab.minutes),
                      f"{lab.timeout('ci')}/{lab.timeout('full')} s")
    _print_table(t)
    for track in course.tracks.values():
        rule = track.pass_rule
        console.print(f"{track.id}: pass with {rule.get('min_fraction', 0):.0%} of the track's points and "
                      f"{rule.get('min_lab_fraction', 0):.0%} in every lab")
        if track.assessment:
            console.print(f"  and {rule.get('min_assessment_fraction', 0):.0%} in the assessment, {track.assessment}")
        for cut, labs in track.cuts.items():
            minutes = sum(course.labs[lab].minutes for lab in labs)
            console.print(f"  {cut} cut ({minutes} min): {', '.join(labs)}")
    return 0


def cmd_build(args) -> int:
    from ..course.build import build, course_root

    course = _course(args)
    labs, unknown = _labs(course, args.labs)
    root = course_root(course)
    t0 = time.monotonic()
    lang = course.language(getattr(args, "lang", None))
    count = iter(range(1, len(labs) + 1))

    def progress(lab: str, error: str | None) -> None:
        n = f"[{next(count)}/{len(labs)}]"
        if error:
            err.print(f"{n} [red]build failed[/] {lab}: {escape(error)}")
        else:
            console.print(f"{n} [green]built[/] {lab}: {root / 'source' / lab}"
                          + ("" if args.no_release else f" -> {root / 'release' / lab}")
                          + f"  ({time.monotonic() - t0:.1f} s)")

    result = build(course, labs, release=not args.no_release, root=root, lang=lang, report=progress)
    console.print(f"course root: {root}  (language {lang}, {time.monotonic() - t0:.1f} s)")
    return 1 if result.errors or unknown else 0


def _results_table(summary) -> Table:
    t = Table(title=f"labs at scale {summary.scale}")
    for col in ("lab", "tier", "status", "seconds", "failing cell / reason"):
        t.add_column(col)
    for r in summary.labs:
        style = STATUS_STYLE.get(r.status, "")
        detail = "" if r.ok else " | ".join(x for x in (r.failing_cell, r.reason) if x)
        t.add_row(r.lab, r.tier, f"[{style}]{r.status}[/]", f"{r.seconds:.1f}", detail)
    return t


def cmd_run(args) -> int:
    from ..validate.runner import run_labs

    course = _course(args)
    labs, unknown = _labs(course, args.labs)
    try:
        info = _tier(args.tier)
    except TierError as exc:
        err.print(f"[red]{exc}[/]")
        return 2
    scale = _scale(args.scale, info.tier)
    out = Path(args.out).resolve() if args.out else course.build_dir / "run"
    console.print(f"running {len(labs)} lab(s) at scale {scale} on the {info.tier} tier, {args.jobs} at a time -> {out}")
    summary = run_labs(course, labs, unknown, info, scale, args.jobs, args.timeout, out, report=console.print,
                       lang=course.language(getattr(args, "lang", None)))
    _print_table(_results_table(summary))
    console.print(f"summary: {out / 'summary.json'}   junit: {out / 'junit.xml'}   ({summary.seconds:.0f} s)")
    if summary.interrupted:
        err.print("interrupted: the table and the summary hold what finished")
        return 130
    return 0 if summary.ok else 1


def cmd_grade_selftest(args) -> int:
    from ..grading.contract import selftest

    course = _course(args)
    labs, unknown = _labs(course, args.labs)
    try:
        info = _tier(args.tier)
    except TierError as exc:
        err.print(f"[red]{exc}[/]")
        return 2
    scale = _scale(args.scale, info.tier)
    t0 = time.monotonic()
    contracts, csv = selftest(course, labs, info.tier, scale, jobs=args.jobs, report=console.print,
                              lang=course.language(getattr(args, "lang", None)))
    t = Table(title="grading contract: solution = full marks, release = zero")
    for col in ("lab", "cells", "points", "hidden tests", "solution", "release", "contract"):
        t.add_column(col)
    for c in contracts:
        sol = sum(x.solution_score or 0 for x in c.cells)
        rel = sum(x.release_score or 0 for x in c.cells)
        t.add_row(c.lab, str(len(c.cells)), f"{c.max_score:g}", str(c.hidden_tests), f"{sol:g}", f"{rel:g}",
                  "[green]kept[/]" if c.ok else "[red]BROKEN[/]")
    _print_table(t)
    for c in contracts:
        for problem in c.problems:
            err.print(f"[red]{c.lab}[/]: {problem}")
    if csv:
        console.print(f"grades CSV (nbgrader export): {csv}")
    console.print(f"({time.monotonic() - t0:.0f} s)")
    ok = contracts and all(c.ok for c in contracts) and not unknown and csv is not None
    return 0 if ok else 1


def _grade_dispatch(fn, tiered: bool = False):
    """Wrap a techday.grading.cli handler: the course, and for grading the tier and scale."""
    def run(args) -> int:
        course = _course(args)
        if not tiered:
            return fn(args, course)
        try:
            info = _tier(args.tier)
        except TierError as exc:
            err.print(f"[red]{exc}[/]")
            return 2
        return fn(args, course, info.tier, _scale(args.scale, info.tier))
    return run


def cmd_validate(args) -> int:
    """The main job: is this machine and this course ready for a Tech Day?"""
    steps = [
        ("doctor", cmd_doctor, argparse.Namespace(tier=args.tier, json=False)),
        ("build", cmd_build, argparse.Namespace(root=args.root, labs=args.labs, no_release=False)),
        # Its own folder: a later `techday run` of one lab must not replace the record of the whole course.
        ("run", cmd_run, argparse.Namespace(root=args.root, labs=args.labs, tier=args.tier, scale=args.scale,
                                            jobs=args.jobs, timeout=None,
                                            out=str(_course(args).build_dir / "validate" / "run"))),
        ("grade selftest", cmd_grade_selftest, argparse.Namespace(root=args.root, labs=args.labs, tier=args.tier,
                                                                  scale=args.scale, jobs=args.jobs)),
        # Every kernel the CPU tier launches, compiled for the GPUs the course targets (no GPU needed).
        ("kernels", cmd_kernels, argparse.Namespace(root=args.root, labs=args.labs, bench=None, jobs=args.jobs,
                                                    out=None)),
    ]
    results = []
    for name, fn, ns in steps:
        console.rule(f"techday {name}")
        code = fn(ns)
        results.append((name, code))
        if code == 2:
            break
    console.rule("validate")
    for name, code in results:
        console.print(f"{name:<16} {'[green]ok[/]' if code == 0 else '[red]FAILED[/]'}")
    return max(code for _, code in results)


def cmd_kernels(args) -> int:
    """Record the kernels the CPU tier launches, compile them for the target GPUs, check the launches."""
    from ..validate import kernels

    course = _course(args)
    out = Path(args.out).resolve() if args.out else course.build_dir / "kernels"
    labs = args.labs or None
    families = [f for name in args.bench for f in name.split(",") if f] if args.bench else None
    if labs is not None and families is None:
        families = []
    if families is not None and labs is None:
        labs = []
    t0 = time.monotonic()
    rep = kernels.run(course.root, out, jobs=args.jobs, labs=labs, families=families, report=console.print)
    if rep.tool_missing:
        err.print(f"techday kernels: {rep.tool_missing}", style="red", markup=False)
        return 2
    # Wide enough for a kernel's name and signature on one line, also in a CI log.
    Console(highlight=False, width=max(console.width, 200)).print(kernels.table(rep))
    from rich.markup import escape

    for line in rep.problems:
        err.print(f"[red]FAILED[/] {escape(line)}")
    console.print(kernels.summary_line(rep))
    console.print(f"report: {out / 'kernels.json'}  ({time.monotonic() - t0:.0f} s: record {rep.seconds.get('record', 0)} s, "
                  f"compile {rep.seconds.get('compile', 0)} s)")
    return 0 if rep.ok else 1


def cmd_fmt(args) -> int:
    from ..course.hygiene import fix, problems, tracked_notebooks

    course = _course(args)
    paths = [Path(p).resolve() for p in args.paths] or tracked_notebooks(course.root)
    bad = 0
    for path in paths:
        found = problems(path, course.root)
        if found and args.fix:
            fix(path, course.root)
            found = problems(path, course.root)
        for line in found:
            err.print(line)
        bad += bool(found)
    console.print(f"{len(paths)} notebook(s) checked, {bad} with problems")
    return 1 if bad else 0


def cmd_i18n_report(args) -> int:
    """Per lab: the share of markdown words in the target language, in the English source and in
    the translated edition, and what the translation lacks. Computed from the sources."""
    from ..course.labsrc import read_lab
    from ..i18n import examine, korean_share

    course = _course(args)
    lang = course.language(args.lang)
    if lang == "en":
        err.print("report on a translation: --lang names a language other than English")
        return 2
    labs, unknown = _labs(course, args.labs)
    listed = set(course.translated.get(lang, []))
    t = Table(title=f"{lang} edition: share of markdown words in Korean (computed from labs/)")
    for col in ("lab", "listed", "words", "source", lang, "cells", "messages", "English-only msgs", "stale",
                "problems"):
        t.add_column(col)
    totals = [0, 0, 0, 0]
    bad = False
    for lab in labs:
        path = course.lab_source(lab)
        nb, refs = read_lab(path, lab)
        english = [c.source for c in nb.cells if c.cell_type == "markdown"]
        report, catalogue = examine(path, lab, lang)
        cells = catalogue.get("cells", {})
        edition = [cells[r.key]["text"] if r.key in cells and cells[r.key]["text"].strip() else c.source
                   for c, r in zip(nb.cells, refs) if c.cell_type == "markdown"]
        src_ko, src_n = korean_share(english)
        ed_ko, ed_n = korean_share(edition)
        totals = [totals[0] + src_ko, totals[1] + src_n, totals[2] + ed_ko, totals[3] + ed_n]
        state = "[green]yes[/]" if lab in listed else "no"
        if lab in listed and not report.complete:
            state, bad = "[red]yes, incomplete[/]", True
        t.add_row(lab, state, str(src_n), f"{src_ko / max(src_n, 1):.1%}", f"{ed_ko / max(ed_n, 1):.1%}",
                  f"{report.cells_done}/{report.cells_total}", f"{report.messages_done}/{report.messages_total}",
                  str(report.raw), str(len(report.stale)), str(len(report.problems)))
        if args.verbose:
            for line in report.problems + report.stale:
                console.print(f"  {line}", markup=False)
    t.add_row("all", "", str(totals[1]), f"{totals[0] / max(totals[1], 1):.1%}", f"{totals[2] / max(totals[3], 1):.1%}",
              "", "", "", "", "")
    console.print(t)
    console.print(f"listed as translated ({lang}): {', '.join(sorted(listed)) or 'none'}  "
                  "(course/syllabus.toml, \\[course] translated)")
    from ..i18n import DOCUMENTS, doc_sections, doc_twin_path, examine_doc

    d = Table(title=f"{lang} edition of the course documents (section by section)")
    for col in ("document", "sections", "problems"):
        d.add_column(col)
    for doc in DOCUMENTS:
        path = course.root / doc
        if not path.exists():
            continue
        problems = examine_doc(path, lang)
        bad = bad or bool(problems)
        d.add_row(doc, f"{len(doc_sections(path.read_text(encoding='utf-8')))}", str(len(problems)))
        if args.verbose:
            for line in problems:
                console.print(f"  {line}", markup=False)
    console.print(d)
    return 1 if bad or unknown else 0


def cmd_i18n_stamp(args) -> int:
    """Store, beside each translated entry, the hash of the English it now matches: run it after
    checking the translation against the changed English, never instead."""
    from ..i18n import catalogue_path, stamp, stamp_package

    course = _course(args)
    lang = course.language(args.lang)
    if "techday" in args.labs:  # the package's own messages (techday/data/messages.<lang>.toml)
        console.print(f"techday: {stamp_package(lang)} entr(ies) restamped")
        args.labs = [name for name in args.labs if name != "techday"]
        if not args.labs:
            return 0
    from ..i18n import DOCUMENTS, doc_twin_path, stamp_doc

    docs = [d for d in DOCUMENTS if "docs" in args.labs or d in args.labs or Path(d).name in args.labs]
    for doc in docs:  # the course's documents (course/<NAME>.<lang>.md beside each)
        if doc_twin_path(course.root / doc, lang).exists():
            console.print(f"{doc}: {stamp_doc(course.root / doc, lang)} section(s) restamped")
    args.labs = [n for n in args.labs if n != "docs" and n not in DOCUMENTS and n not in {Path(d).name for d in DOCUMENTS}]
    if docs and not args.labs:
        return 0
    labs, unknown = _labs(course, args.labs)
    for lab in labs:
        path = catalogue_path(course.lab_source(lab), lang)
        if not path.is_file():
            err.print(f"{lab}: no {path.name}")
            continue
        console.print(f"{lab}: {stamp(path, course.lab_source(lab), lab)} entr(ies) restamped in {path.name}")
    return 1 if unknown else 0


def cmd_lab(args) -> int:
    from ..hub.locallab import LAB_PLUGINS_OFF, LocalLabError, prepare, start

    course = _course(args)
    labs, unknown = _labs(course, args.labs)
    if unknown:
        return 2
    try:
        local = prepare(course, labs, home=Path(args.dir) if args.dir else None, rebuild=args.rebuild,
                        no_browser=args.no_browser, port=args.port, report=console.print)
    except LocalLabError as exc:
        err.print(f"[red]{exc}[/]")
        return 1
    console.print(f"released labs: {local.release}" + (f" (built {', '.join(local.built)})" if local.built else ""))
    console.print(f"your notebooks: {local.work} ({len(local.copied)} copied"
                  + (f"; kept your copies of {', '.join(local.kept)}" if local.kept else "") + ")")
    console.print(f"jupyter config: {local.config_dir} (off: {', '.join(p.split(':')[1] for p in LAB_PLUGINS_OFF)}; "
                  "Validate on)")
    if args.dry_run:
        console.print(f"would run: {local.shell()}", markup=False)
        return 0
    console.print("starting JupyterLab (Ctrl-C stops it; your notebooks stay in the folder above)")
    return start(local)


# ---------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="techday", description="Tech Day GPU Lab: build, run and grade the course.")
    ap.add_argument("--version", action="version", version=f"techday {__version__}")
    ap.add_argument("--root", help="repository root (default: found from the working directory)")
    sub = ap.add_subparsers(dest="command", required=True)

    def tier_scale(p, scale_default="auto"):
        p.add_argument("--tier", choices=TIER_CHOICES, default="auto",
                       help="auto: the GPU when there is one; cpu: simulator and NumPy; gpu: fail without one")
        p.add_argument("--scale", choices=("auto", "ci", "full"), default=scale_default,
                       help="ci: small and quick; full: the workshop sizes; auto: full on a GPU, ci elsewhere")

    p = sub.add_parser("doctor", help="detect the tier and describe the GPU")
    p.add_argument("--tier", choices=TIER_CHOICES, default="auto")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(fn=cmd_doctor)

    p = sub.add_parser("list", help="tracks and labs")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("build", help="build the nbgrader course root (source/ and release/)")
    p.add_argument("labs", nargs="*", metavar="LAB")
    p.add_argument("--no-release", action="store_true", help="only write source/ (skip generate_assignment)")
    p.add_argument("--lang", help="the language of markdown and messages (default: the syllabus' default_language)")
    p.set_defaults(fn=cmd_build)

    p = sub.add_parser("run", help="execute labs headless with papermill")
    p.add_argument("labs", nargs="*", metavar="LAB")
    tier_scale(p)
    p.add_argument("--jobs", "-j", type=int, default=DEFAULT_JOBS,
                   help="labs at a time (default: one per core, at most 4)")
    p.add_argument("--timeout", type=int, help="seconds per lab (default: course/syllabus.toml)")
    p.add_argument("--out", help="output folder (default: build/run)")
    p.add_argument("--lang", help="the language of markdown and messages (default: the syllabus' default_language)")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("grade", help="grading commands")
    gsub = p.add_subparsers(dest="grade_command", required=True)
    g = gsub.add_parser("selftest", help="solution earns full marks, release earns zero, with real nbgrader")
    g.add_argument("labs", nargs="*", metavar="LAB")
    tier_scale(g)
    g.add_argument("--jobs", "-j", type=int, default=DEFAULT_JOBS, help="labs graded at a time")
    g.add_argument("--lang", help="the language of markdown and messages (default: the syllabus' default_language)")
    g.set_defaults(fn=cmd_grade_selftest)
    from ..grading.cli import (
        add_parsers as add_grade_parsers,  # check, autograde, results, verify
    )

    add_grade_parsers(gsub, tier_scale, _grade_dispatch)

    p = sub.add_parser("validate", help="doctor, build, run, grade selftest and kernels (the main job)")
    p.add_argument("labs", nargs="*", metavar="LAB")
    tier_scale(p)
    p.add_argument("--jobs", "-j", type=int, default=DEFAULT_JOBS)
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("kernels", help="compile every recorded Numba kernel for sm_80 and sm_90 (no GPU needed)")
    p.add_argument("labs", nargs="*", metavar="LAB", help="only these labs (default: every lab and benchmark family)")
    p.add_argument("--bench", action="append", metavar="FAMILY", help="only these benchmark families")
    p.add_argument("--jobs", "-j", type=int, default=DEFAULT_JOBS, help="labs recorded at a time")
    p.add_argument("--out", help="output folder (default: build/kernels)")
    p.set_defaults(fn=cmd_kernels)

    p = sub.add_parser("i18n", help="translations of the labs: report and stamp")
    isub = p.add_subparsers(dest="i18n_command", required=True)
    g = isub.add_parser("report", help="per lab: share of Korean words in the markdown, missing and stale twins")
    g.add_argument("labs", nargs="*", metavar="LAB")
    g.add_argument("--lang", default="ko", help="the translation to report on (default: ko)")
    g.add_argument("--verbose", "-v", action="store_true", help="list every missing or stale entry")
    g.set_defaults(fn=cmd_i18n_report)
    g = isub.add_parser("stamp", help="after review: store the hash of the current English beside each translation")
    g.add_argument("labs", nargs="+", metavar="LAB", help="labs, 'techday' for the package's own messages, "
                   "'docs' (or a document's name) for course/TRAINEES.md, INSTRUCTORS.md, RUNBOOK.md")
    g.add_argument("--lang", default="ko")
    g.set_defaults(fn=cmd_i18n_stamp)

    p = sub.add_parser("fmt", help="check committed notebooks are canonical and output-free")
    p.add_argument("paths", nargs="*")
    p.add_argument("--fix", action="store_true", help="rewrite them in canonical form")
    p.set_defaults(fn=cmd_fmt)

    p = sub.add_parser("lab", help="a trainee's JupyterLab on this machine: the released labs, no instructor panels")
    p.add_argument("labs", nargs="*", metavar="LAB", help="labs to open (default: every lab)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser (open the printed URL)")
    p.add_argument("--port", type=int, help="JupyterLab's port (default: 8888 or the next free one)")
    p.add_argument("--dir", help="folder for your notebooks and the trainee config (default: build/trainee)")
    p.add_argument("--rebuild", action="store_true", help="build the release again even if it is up to date")
    p.add_argument("--dry-run", action="store_true",
                   help="prepare the folder and print the command, without starting JupyterLab")
    p.set_defaults(fn=cmd_lab)

    from ..bench.cli import (
        register as register_bench,  # techday bench, techday bench leaderboard
    )

    register_bench(sub)

    from ..hub.config import register as register_hub  # techday hub check | users

    register_hub(sub)

    from ..hub.locks import register as register_locks  # techday locks check | compile

    register_locks(sub)
    return ap


def tools_on_path() -> None:
    """Put this Python's own folder first on PATH, for the tools its packages run as programs
    (nbgrader runs ``alembic`` when it makes a gradebook): ``techday`` started by a virtual
    environment's full path, without activating it, then finds them as an activated one would."""
    here = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[:1] != [here]:
        os.environ["PATH"] = os.pathsep.join([here, path]) if path else here


def main(argv: list[str] | None = None) -> int:
    tools_on_path()
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except CourseError as exc:
        err.print(f"[red]{exc}[/]")
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
