"""``techday doctor | list | build | fmt | lab``: the machine, the course and its notebooks.

    techday doctor [--json]             which tier is this machine? (GPU, driver, CUDA runtime)
    techday list                        tracks and labs from course/syllabus.toml
    techday build [LAB ...] [--lang L]  lab sources -> nbgrader course root, source/ and release/
    techday fmt [--fix]                 committed notebooks: canonical and output-free
    techday lab [LAB ...]               a trainee's JupyterLab on this machine: released labs, no instructor panels
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from ..tier import TIER_CHOICES, TierError, banner, detect
from .common import LABS_HELP, LANG_HELP, TIER_HELP, console, course_of, err, labs_of, print_table


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
        print_table(t)
    else:
        console.print("Numba CUDA kernels will run in the simulator (NUMBA_ENABLE_CUDASIM=1): correct, not fast.")
    return 0


def cmd_list(args) -> int:
    course = course_of(args)
    t = Table(title=course.title)
    for col in ("track", "lab", "title", "slot", "minutes", "timeout ci/full"):
        t.add_column(col)
    for track in course.tracks.values():
        for lab_id in track.labs:
            lab = course.labs[lab_id]
            t.add_row(track.id, lab.id, f"{lab.title}\n{lab.title_ko}".strip(), lab.slot, str(lab.minutes),
                      f"{lab.timeout('ci')}/{lab.timeout('full')} s")
    print_table(t)
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

    course = course_of(args)
    labs = labs_of(course, args.labs)
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
    return 1 if result.errors else 0


def cmd_fmt(args) -> int:
    from ..course.hygiene import fix, problems, tracked_notebooks

    course = course_of(args)
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


def cmd_lab(args) -> int:
    import os

    course = course_of(args)
    labs = labs_of(course, args.labs)
    # One language for the notebooks and the messages their code prints: --lang (one the syllabus offers),
    # else $TECHDAY_LANG where the syllabus has that edition, else its default. A Korean trainee's lines were
    # Korean and the notebooks English.
    before = os.environ.get("TECHDAY_LANG")
    wanted = (before or "").strip().lower()
    lang = course.language(args.lang or (wanted if wanted in course.languages else None))
    if args.lang:  # the lines below in that language too
        os.environ["TECHDAY_LANG"] = lang
    try:
        return _lab(args, course, labs, lang)
    finally:
        if before is None:
            os.environ.pop("TECHDAY_LANG", None)
        else:
            os.environ["TECHDAY_LANG"] = before


def _lab(args, course, labs: list[str], lang: str) -> int:
    from ..hub.locallab import LAB_PLUGINS_OFF, LocalLabError, prepare, start
    from ..i18n import msg

    try:
        local = prepare(course, labs, home=Path(args.dir) if args.dir else None, rebuild=args.rebuild,
                        no_browser=args.no_browser, port=args.port, lang=lang,
                        report=lambda text: console.print(text, markup=False))  # an error may hold [ ]
    except LocalLabError as exc:
        err.print(f"[red]{exc}[/]")
        return 1
    # A trainee reads these: in their language ($TECHDAY_LANG, else the syllabus' default_language).
    built = msg("techday.lab_built", " (built {labs})", labs=", ".join(local.built)) if local.built else ""
    console.print(msg("techday.lab_released", "released labs: {release}{built}", release=local.release, built=built),
                  markup=False)
    kept = msg("techday.lab_kept", "; kept your copies of {labs}", labs=", ".join(local.kept)) if local.kept else ""
    console.print(msg("techday.lab_work", "your notebooks: {work} ({copied} copied{kept})", work=local.work,
                      copied=len(local.copied), kept=kept), markup=False)
    console.print(msg("techday.lab_config", "jupyter config: {config} (off: {off}; Validate on)",
                      config=local.config_dir, off=", ".join(p.split(":")[1] for p in LAB_PLUGINS_OFF)), markup=False)
    if args.dry_run:
        console.print(f"would run: {local.shell()}", markup=False)
        return 0
    console.print(msg("techday.lab_starting", "starting JupyterLab (Ctrl-C stops it; your notebooks stay in the "
                      "folder above)"), markup=False)
    return start(local)


def register(sub) -> None:
    p = sub.add_parser("doctor", help="detect the tier and describe the GPU")
    p.add_argument("--tier", choices=TIER_CHOICES, default="auto", help=TIER_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(fn=cmd_doctor)

    p = sub.add_parser("list", help="tracks and labs")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("build", help="build the nbgrader course root (source/ and release/)")
    p.add_argument("labs", nargs="*", metavar="LAB", help=LABS_HELP)
    p.add_argument("--no-release", action="store_true", help="only write source/ (skip generate_assignment)")
    p.add_argument("--lang", help=LANG_HELP)
    p.set_defaults(fn=cmd_build)

    p = sub.add_parser("fmt", help="check committed notebooks are canonical and output-free")
    p.add_argument("paths", nargs="*", metavar="NOTEBOOK",
                   help="notebooks to check (default: every .ipynb git tracks)")
    p.add_argument("--fix", action="store_true", help="rewrite them in canonical form")
    p.set_defaults(fn=cmd_fmt)

    p = sub.add_parser("lab", help="a trainee's JupyterLab on this machine: the released labs, no instructor panels")
    p.add_argument("labs", nargs="*", metavar="LAB", help="labs to open (default: every lab)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser (open the printed URL)")
    p.add_argument("--port", type=int, help="JupyterLab's port (default: 8888 or the next free one)")
    p.add_argument("--dir", help="folder for your notebooks and the trainee config (default: build/trainee)")
    p.add_argument("--rebuild", action="store_true", help="build the release again even if it is up to date")
    p.add_argument("--lang", help="the language of the notebooks and their messages (default: $TECHDAY_LANG, else "
                   "the syllabus' default_language); copies already in your folder are kept")
    p.add_argument("--dry-run", action="store_true",
                   help="prepare the folder and print the command, without starting JupyterLab")
    p.set_defaults(fn=cmd_lab)
