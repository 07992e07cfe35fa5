"""``techday i18n report | stamp``: the Korean (or any other) edition of the labs and course documents.

    techday i18n report [LAB ...] [--lang ko] [-v]   per lab: share of Korean words, missing and stale entries
    techday i18n stamp LAB|techday|docs ...          after review: the English each translation now matches
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from .common import LABS_HELP, UsageError, console, course_of, err, labs_of


def cmd_i18n_report(args) -> int:
    """Per lab: the share of markdown words in the target language, in the English source and in
    the translated edition, and what the translation lacks. Computed from the sources."""
    from ..course.labsrc import read_lab
    from ..i18n import examine, korean_share

    course = course_of(args)
    lang = course.language(args.lang)
    if lang == "en":
        err.print("report on a translation: --lang names a language other than English")
        return 2
    labs = labs_of(course, args.labs)
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
    from ..i18n import doc_sections, documents, examine_doc

    d = Table(title=f"{lang} edition of the course documents (section by section)")
    for col in ("document", "sections", "problems"):
        d.add_column(col)
    for doc in documents(course.root):
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
    return 1 if bad else 0


def cmd_i18n_stamp(args) -> int:
    """Store, beside each translated entry, the hash of the English it now matches: run it after
    checking the translation against the changed English, never instead."""
    from ..i18n import catalogue_path, stamp, stamp_package

    course = course_of(args)
    lang = course.language(args.lang)
    if lang == "en":  # the labs are written in English: there is no English translation to stamp
        err.print("[red]--lang en is the language the labs are written in: give the translation to stamp "
                  f"({', '.join(x for x in course.languages if x != 'en') or 'none in the syllabus'})[/]")
        return 2
    if "techday" in args.labs:  # the package's own messages (techday/data/messages.<lang>.toml)
        console.print(f"techday: {stamp_package(lang)} entr(ies) restamped")
        args.labs = [name for name in args.labs if name != "techday"]
        if not args.labs:
            return 0
    from ..i18n import doc_twin_path, documents, stamp_doc

    docs_all = documents(course.root)
    named, args.labs = course_documents(course.root, docs_all, args.labs, lang)
    docs = [d for d in docs_all if "docs" in args.labs or d in named]
    for doc in docs:  # the course's documents (course/<NAME>.<lang>.md beside each)
        if doc_twin_path(course.root / doc, lang).exists():
            console.print(f"{doc}: {stamp_doc(course.root / doc, lang)} section(s) restamped")
    args.labs = [n for n in args.labs if n != "docs"]
    if docs and not args.labs:
        return 0
    labs = labs_of(course, args.labs)
    missing = 0
    for lab in labs:
        path = catalogue_path(course.lab_source(lab), lang)
        if not path.is_file():
            err.print(f"{lab}: no {path.name}: nothing to stamp (translate the lab first; labs/README.md, "
                      "\"Languages\")", markup=False)
            missing += 1
            continue
        console.print(f"{lab}: {stamp(path, course.lab_source(lab), lab)} entr(ies) restamped in {path.name}")
    return 1 if missing else 0


def course_documents(root: Path, docs_all: list[str], names: list[str], lang: str) -> tuple[set[str], list[str]]:
    """(the course documents ``names`` give, the names left for labs). A document is named as
    ``documents`` lists it (``course/RUNBOOK.md``), by its file name (``RUNBOOK.md``), or by a path from
    the working directory (``./RUNBOOK.md`` in ``course/``, an absolute path), its Korean twin's too
    (``RUNBOOK.ko.md``): each is the English document it stamps. A name ending in ``.md`` that is none
    of them raises :class:`UsageError` (exit 2) listing the documents: it used to be called an unknown
    lab."""
    by_name = {Path(d).name: d for d in docs_all}
    twin_suffix = f".{lang}.md"
    found, rest = set(), []
    for name in names:
        if name in docs_all or name in by_name:
            found.add(name if name in docs_all else by_name[name])
            continue
        if not name.endswith(".md"):
            rest.append(name)
            continue
        english = name[: -len(twin_suffix)] + ".md" if name.endswith(twin_suffix) else name
        doc = None
        for base in (Path.cwd(), root):
            try:
                rel = (base / english).resolve().relative_to(root.resolve()).as_posix()
            except (ValueError, OSError):
                continue
            if rel in docs_all:
                doc = rel
                break
        if doc is None and Path(english).name in by_name and not Path(english).is_absolute() \
                and Path(english).parent == Path("."):
            doc = by_name[Path(english).name]
        if doc is None:
            raise UsageError(f"{name}: not a course document with a translation: give 'docs' or one of "
                             f"{', '.join(docs_all[:3])} or course/notes/<lab>.md")
        found.add(doc)
    return found, rest


def register(sub) -> None:
    p = sub.add_parser("i18n", help="translations (labs, course documents): report and stamp")
    isub = p.add_subparsers(dest="i18n_command", required=True)
    g = isub.add_parser("report", help="per lab: share of Korean words in the markdown, missing and stale twins")
    g.add_argument("labs", nargs="*", metavar="LAB", help=LABS_HELP)
    g.add_argument("--lang", default="ko", help="the translation to report on (default: ko)")
    g.add_argument("--verbose", "-v", action="store_true", help="list every missing or stale entry")
    g.set_defaults(fn=cmd_i18n_report)
    g = isub.add_parser("stamp", help="after review: store the hash of the current English beside each translation")
    g.add_argument("labs", nargs="+", metavar="LAB", help="labs, 'techday' for the package's own messages, "
                   "'docs' (or one document: its path, its name or its .ko.md twin's) for course/TRAINEES.md, "
                   "INSTRUCTORS.md, RUNBOOK.md and course/notes/<lab>.md")
    g.add_argument("--lang", default="ko", help="the translation to stamp (default: ko)")
    g.set_defaults(fn=cmd_i18n_stamp)
