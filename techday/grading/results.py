"""``techday grade results``: from the course gradebook to what trainees and organisers receive.

- **feedback**: nbgrader's own ``generate_feedback`` (HTML per trainee and lab), with one more
  preprocessor, :class:`HideHiddenTests`. nbgrader 0.9's feedback shows the autograded notebook as
  graded, and that notebook holds the hidden tests (restored from the gradebook) and tracebacks that
  quote them; so cells with hidden tests lose those regions, and their outputs are reduced to
  "passed", a visible test's own error message, or "failed: a hidden test"; other outputs that
  quote a hidden test are removed. The course root's own config has it too (formgrader feedback).
- **pass/fail per track** by the track's own rule (:meth:`techday.course.syllabus.TrackSpec.passes`, from
  ``pass_rule`` in ``course/syllabus.toml``): at least ``min_fraction`` of the track's autograded
  points, ``min_lab_fraction`` in every lab of it and, for a track with an assessment,
  ``min_assessment_fraction`` in the assessment; written to ``passfail.csv`` with the name, the
  certificate's code and file, and the grading flags to review beside each trainee.
- **certificates** of completion for each trainee who passed a track (held unless every lab's score is
  of the trainee's current notebook, graded without a flag, see :func:`_standing`, until a person
  clears that trainee's lab with ``techday grade review`` or issues every held one with ``--issue-held``;
  never where a person refused it, :mod:`.decisions`): HTML, and PDF drawn with
  matplotlib's PDF backend (no new dependency) in a font with Hangul when the machine has one
  (NanumGothic from Debian's ``fonts-nanum``, Noto Sans CJK, ...). Each shows the trainee's name
  (``--roster`` CSV, else nbgrader's student table, else the name issued before in this run, else the
  id) and a verification code, recorded
  in ``certificates.json``; names, codes, the course key and file names are
  :mod:`techday.grading.certificates`'.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from .. import atomicfile, proctree
from ..i18n import PackageCatalogue, current_language, msg
from .config import FEEDBACK_PREPROCESSORS
from .feedback import RESOURCE, feedback_language, labels, template_dirs
from .spreadsheet import safe_csv, spreadsheet_cell

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython's name for a cell's code in a traceback frame: "Cell In[4], line 3" (IPython 8.5 and later),
# "Input In [4], in <cell line: 3>()" (8.0 to 8.4). The gap is bounded: a lazy ".*?" scanned to the end
# of the line from every "Input In [1]", and a trainee's error message of them, 1 MB (the output cap),
# took minutes per pass and held the whole lab's feedback past its time limit.
FRAME = re.compile(r"Cell In\[(\d+)\], line (\d+)|Input In \[(\d+)\][^\n]{0,300}?<cell line: (\d+)>")
# A test or locked cell run by the grader's referee (techday.grading.referee) from its own copy:
# "File <course cell double_tests>:3"; the line is the cell's own.
COURSE_FRAME = re.compile(r"<course cell ([A-Za-z0-9_-]+)>:(\d+)")
# Errors the grader itself writes (techday.grading.sandbox_exec and executor, nbgrader's timeout): no
# trainee's or test's text in them.
GRADER_ERRORS = {"KernelDied", "NotExecuted", "NotGraded", "CellTimeoutError", "GraderCheck",
                 "OutsideCheck"}  # the grader's check from outside the kernel (outside.py): its reason is shown


class _ThisRun:
    """The package's messages in the language of this run (:func:`techday.i18n.msg`)."""

    msg = staticmethod(msg)


def _words(lang: str | None):
    """The package's messages in ``lang`` (a feedback page's, :func:`.feedback.feedback_language`), else in
    the language of this run; called as ``_words(lang).msg(key, english)`` (the catalogue checks find it)."""
    return PackageCatalogue(lang) if lang else _ThisRun


def removed_text(lang: str | None = None) -> str:
    return _words(lang).msg("techday.feedback_removed",
                            "[output removed from the feedback: it quotes a hidden test]") + "\n"


def hidden_failed(lang: str | None = None) -> str:
    return _words(lang).msg("techday.feedback_hidden_failed",
                            "failed: a hidden test (hidden tests are not shown)") + "\n"


def failed_line(message: str, lang: str | None = None) -> str:
    return _words(lang).msg("techday.feedback_failed", "failed: {message}", message=message) + "\n"


def passed_line(lang: str | None = None) -> str:
    return _words(lang).msg("techday.feedback_passed", "passed") + "\n"


def failed_at(message: str, line: str, lang: str | None = None) -> str:
    """A visible test's error with the line it failed on."""
    return _words(lang).msg("techday.feedback_failed_at", "{message} (at `{line}`)", message=message, line=line)


BEGIN_LINE = re.compile(r"[ \t]*### BEGIN HIDDEN TESTS")
END_LINE = re.compile(r"[ \t]*### END HIDDEN TESTS")


def hidden_regions(lines: list[str]) -> list[tuple[int, int]]:
    """The hidden-test regions of a cell's lines (``source.split("\\n")``): (first, last) line indices,
    markers included, as :data:`HIDDEN` finds them, in one pass. :data:`HIDDEN`'s lazy ``.*?`` scans to
    the end of the cell from every BEGIN marker that has no END after it: quadratic, and a trainee's
    cell of 50 000 BEGIN lines held the feedback of the whole lab for longer than its time limit."""
    regions: list[tuple[int, int]] = []
    i, n = 0, len(lines)
    while i < n:
        if BEGIN_LINE.match(lines[i]):
            end = next((k for k in range(i + 1, n) if END_LINE.match(lines[k])), None)
            if end is None:  # no END after this line: none after any later BEGIN either
                break
            regions.append((i, end))
            i = end + 1
        else:
            i += 1
    return regions


def hide_regions(source: str, replacement: str) -> str:
    """``source`` with each hidden-test region (and the line break after it) made ``replacement`` and a
    line break: what ``HIDDEN.sub(replacement + "\\n", source)`` gives, in linear time."""
    lines = source.split("\n")
    regions = hidden_regions(lines)
    out: list[str] = []
    prev = 0
    for first, last in regions:
        out += lines[prev:first]
        out.append(replacement)
        prev = last + 1
    if regions and regions[-1][1] == len(lines) - 1:
        out.append("")
    out += lines[prev:]
    return "\n".join(out)


def hidden_lines(source: str) -> set[int]:
    """1-based numbers of the lines inside hidden-test regions (markers included)."""
    return {k + 1 for first, last in hidden_regions(source.split("\n")) for k in range(first, last + 1)}


def _hidden_texts(cells) -> list[str]:
    """The hidden tests' lines worth looking for in outputs (long enough not to match by chance)."""
    texts = set()
    for cell in cells:
        lines = cell.source.split("\n")
        for first, last in hidden_regions(lines):
            for line in "\n".join(lines[first:last + 1]).splitlines():
                line = line.strip()
                if len(line) >= 10 and "HIDDEN TESTS" not in line:
                    texts.add(line)
    return sorted(texts)


def _text(out) -> str:
    """Everything an output shows, colours taken out."""
    parts = [out.get("text") or "", out.get("ename") or "", out.get("evalue") or ""]
    parts += list(out.get("traceback") or [])
    for value in (out.get("data") or {}).values():
        parts.append(value if isinstance(value, str) else "".join(value) if isinstance(value, list) else str(value))
    return ANSI.sub("", "\n".join(str(p) for p in parts))


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback never shows a hidden test: not its code, not a traceback quoting it, not its message,
    not what the trainee's code printed while it ran; a visible test keeps its own message.

    In a cell with hidden tests, the hidden regions become one comment line and the outputs one line:
    ``passed``; ``failed: <error>: <message> (at <the failing line>)`` when the error was raised on a
    visible line (every frame of the traceback that is a notebook cell points at a visible line of
    it); ``failed: a hidden test`` otherwise, also when the traceback cannot be read. Any other
    output of the notebook that quotes a line of a hidden test (a trainee's ``print(In)``, a
    traceback) is removed too."""

    def preprocess(self, nb, resources):
        from nbformat.notebooknode import NotebookNode

        lang = feedback_language(nb)
        hidden = _hidden_texts(nb.cells)
        by_count = {c.get("execution_count"): c for c in nb.cells
                    if c.cell_type == "code" and c.get("execution_count") is not None}
        by_count.update({c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
                         if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")})
        for cell in nb.cells:
            if "### BEGIN HIDDEN TESTS" in cell.source and cell.cell_type == "code":
                text = self._verdict(cell, by_count, hidden, lang)
                cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
            elif cell.cell_type == "code":
                cell.outputs = [o if not any(h in _text(o) for h in hidden) else
                                NotebookNode(output_type="stream", name="stdout", text=removed_text(lang))
                                for o in cell.get("outputs", [])]
        for cell in nb.cells:
            if "### BEGIN HIDDEN TESTS" in cell.source:
                cell.source = hide_regions(cell.source, _words(lang).msg("techday.feedback_hidden_source",
                                                                  "# (hidden tests: not shown)"))
        return nb, resources

    @staticmethod
    def _verdict(cell, by_count: dict, hidden: list[str], lang: str | None = None) -> str:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not errors:
            return passed_line(lang)
        shown = []
        for err in errors:
            ename, evalue = str(err.get("ename") or ""), ANSI.sub("", str(err.get("evalue") or ""))
            traceback = [ANSI.sub("", str(t)) for t in err.get("traceback") or []]
            if ename in GRADER_ERRORS and not FRAME.search("\n".join(traceback)) or ename == "GraderCheck":
                shown.append(f"{ename}: {evalue}".rstrip(": "))
                continue
            frames = [(int(a or c), int(b or d)) for a, b, c, d in FRAME.findall("\n".join(traceback))]
            course = [(gid, int(line)) for gid, line in COURSE_FRAME.findall("\n".join(traceback))]
            if course:  # run by the referee: its frames are the cell's own lines (the Cell In frame is
                # the one-line trigger)
                frames = course
                mine = [line for gid, line in course if gid == cell.get("metadata", {}).get("nbgrader", {}).get(
                    "grade_id")]
            else:
                mine = [line for count, line in frames if count == cell.get("execution_count")]
            if not mine:  # no frame of this cell: not something we can place
                return hidden_failed(lang)
            for count, line in frames:
                other = by_count.get(count)
                if other is not None and line in hidden_lines(other.source):
                    return hidden_failed(lang)
            message = f"{ename}: {evalue}" if evalue else ename
            if any(h in message for h in hidden):
                return hidden_failed(lang)
            lines = cell.source.splitlines()
            at = lines[mine[0] - 1].strip() if 0 < mine[0] <= len(lines) else ""
            shown.append(failed_at(message, at, lang) if at else message)
        return "".join(failed_line(m, lang) for m in shown)


class FeedbackLanguage(NbGraderPreprocessor):
    """Puts the page's language and labels in ``resources["techday_feedback"]`` for the course's feedback
    template (:mod:`techday.grading.feedback`; set in ``GenerateFeedback.preprocessors``,
    :mod:`techday.grading.config`)."""

    def preprocess(self, nb, resources):
        resources[RESOURCE] = labels(feedback_language(nb))
        return nb, resources


@dataclass
class Results:
    passfail: Path
    feedback_dir: Path
    cert_dir: Path
    tracks: dict[str, list[dict]] = field(default_factory=dict)
    register: Path | None = None
    key: Path | None = None
    run: str = ""
    certificates: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    font: str = ""


def generate_feedback(root: Path, labs: list[str]) -> list[str]:
    """nbgrader generate_feedback for each lab, with HideHiddenTests added; the problems met."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        # The course root's config has these preprocessors already (techday.grading.config); set
        # again for a root built before it did.
        Path(tmp, "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            f"load_subconfig({str(root / 'nbgrader_config.py')!r})  # noqa: F821\n"
            f"c.GenerateFeedback.preprocessors = {FEEDBACK_PREPROCESSORS!r}\n"
            f"c.HTMLExporter.extra_template_basedirs = {template_dirs()!r}\n",
            encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]) + os.pathsep
               + os.environ.get("PYTHONPATH", "")}
        for lab in labs:
            proc = proctree.run([sys.executable, "-m", "techday.nbgrader_cli", "generate_feedback", lab, "--force"],
                                1800, cwd=tmp, env=env)
            if proc.returncode != 0:
                from ..course.build import nbgrader_error

                problems.append(f"nbgrader generate_feedback {lab}: {nbgrader_error(proc)}")
    return problems


class ResultsStopped(Exception):
    """``techday grade results`` cannot run as asked (no gradebook, nothing graded, a roster or a state
    file it cannot read): stopped before anything is written, so the certificates, the register and
    ``passfail.csv`` of an earlier run stand as they were."""


def _states(out: Path) -> list[dict]:
    """Every lab's ``state.json`` under ``out``; one that cannot be read stops ``results``: the
    certificates rest on it (:func:`_standing`)."""
    states = []
    for state in sorted(out.glob("*/state.json")):
        try:
            data = json.loads(state.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("lab"), str) \
                    or not isinstance(data.get("submissions", {}), dict):
                raise ValueError("not a state file of `techday grade autograde`")
        except (OSError, ValueError) as exc:
            raise ResultsStopped(f"{state} cannot be read ({str(exc)[:100]}): run `techday grade autograde "
                                 f"{state.parent.name}` again (it keeps that file aside and grades the lab again), "
                                 "then this command; nothing was written") from None
        states.append(data)
    return states


def preflight(root: Path, roster: Path | None) -> None:
    """What ``results`` checks before it writes anything (:class:`ResultsStopped`): a course root with
    a gradebook that holds at least one graded submission (a mistyped ``--course-root``, or ``results``
    before ``autograde``, would otherwise replace the certificates with none), and a roster that can
    be read (one that cannot would reissue every certificate under the id, withdrawing the named ones)."""
    import sqlite3

    from .certificates import read_roster

    db = root / "gradebook.db"
    if not db.is_file():
        raise ResultsStopped(f"{root} is not a graded course root (no gradebook.db): check --course-root, or run "
                             "`techday build` and `techday grade autograde LAB` first; nothing was written")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as con:
            (n,) = con.execute("SELECT count(*) FROM submitted_assignment").fetchone()
    except sqlite3.Error as exc:
        fix = ("another program is writing it (the formgrader, an autograde): try again when it is done"
               if "locked" in str(exc) else "restore it from a backup, or run `techday build` and `techday grade "
               "autograde LAB` again")
        raise ResultsStopped(f"{db} cannot be read ({exc}): {fix}; nothing was written") from None
    if not n:
        raise ResultsStopped(f"{db} holds no graded submission yet: run `techday grade autograde LAB` first; "
                             "nothing was written")
    if roster is not None:
        problems = read_roster(roster).problems
        if problems:
            raise ResultsStopped(f"{problems[0].removesuffix(': no names read from it')}: fix the roster (or leave "
                                 "out --roster to use nbgrader's student table); nothing was written")


def _standing(root: Path, out: Path) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], list[str]],
                                               dict[tuple[str, str], bool], set[str]]:
    """What ``techday grade autograde`` recorded of each trainee's current hand-in, per (lab, student):
    notes to review, reasons to hold the certificate, whether the lab's current notebook was graded
    (``graded`` or ``flagged``, and no newer hand-in pending: the gradebook's score is of it), and the
    labs with a ``state.json``.

    Allow-list: a lab's score stands for a certificate only where the trainee's current notebook of
    that lab (``<lab>.ipynb`` in ``submitted/``) is in ``state.json`` as ``graded``. Held: a current
    notebook entry of any other status (``flagged``, ``failed``, ``rejected``, ``pending``), a notebook in
    ``submitted/`` that no run has graded yet (handed in since, or a run stopped before it), and (in
    :func:`pass_fail`) a gradebook score with no current graded notebook behind it (the graded one was
    replaced or removed: entries in ``superseded`` never count). Other files rejected beside a graded
    notebook (``Untitled.ipynb``) are noted only."""
    from ..course.layout import notebook_name
    from .checks import file_sha256, handin_students, open_handin

    notes: dict[tuple[str, str], list[str]] = {}
    holds: dict[tuple[str, str], list[str]] = {}
    graded: dict[tuple[str, str], bool] = {}
    labs: set[str] = set()
    for data in _states(out):
        lab = data["lab"]
        labs.add(lab)
        main = notebook_name(lab)
        known = set()
        for key, entry in data.get("submissions", {}).items():
            student, status = entry["student"], entry.get("status")
            known.add(key)
            ours = Path(entry.get("path") or main).name == main
            if ours and status in ("graded", "flagged"):
                graded[(lab, student)] = True
            if status != "graded":
                note = f"{lab}: {status}: {'; '.join(entry.get('notes', []))}"
                notes.setdefault((lab, student), []).append(note)
                if ours:
                    holds.setdefault((lab, student), []).append(note)
        for student in handin_students(root):
            # Read without following a link (checks.open_handin): a lab folder linked to another trainee's
            # is rejected by the checks, and its notebook is not this trainee's pending hand-in.
            f = open_handin(root, lab, student)
            if f is None:
                continue
            try:
                with f:
                    sha = file_sha256(f) or ""
            except OSError:  # there, and unreadable: not the graded one
                sha = ""
            if f"{student}/{sha[:16]}" not in known:
                note = f"{lab}: pending: {main} handed in and not graded yet (run `techday grade autograde {lab}`)"
                notes.setdefault((lab, student), []).append(note)
                holds.setdefault((lab, student), []).append(note)
                graded.pop((lab, student), None)  # the graded entry is of the notebook before this one
    return notes, holds, graded, labs


def notebook_sha(root: Path, lab: str, student: str) -> str:
    """SHA-256 of the trainee's current notebook of ``lab`` in ``submitted/``; "" where there is none (or it
    is not a plain file): what a person's decision on the lab is bound to (:mod:`.decisions`)."""
    from .checks import handin_sha256

    return handin_sha256(root, lab, student) or ""


def answer_cells(nb) -> dict:
    """A notebook reduced to what :func:`.similarity.shared_answers` reads: each cell's type, source and
    ``nbgrader`` metadata (no outputs, no attachments)."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    kept = []
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict):
            meta = cell.get("metadata")
            kept.append({"cell_type": cell.get("cell_type"), "source": cell.get("source"),
                         "metadata": {"nbgrader": meta.get("nbgrader")} if isinstance(meta, dict) else {}})
    return {"cells": kept}


def shared_answers_in_room(root: Path, labs: set[str], out: Path | None = None) \
        -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], list[str]]]:
    """Per (lab, student): hold lines and review notes for answers shared with another trainee or with
    the course's solution (:mod:`.similarity`), among the current notebooks in ``submitted/`` of each lab
    that ``techday grade autograde`` graded. The hold line names the other party and the trainee's own
    cells, no figures: a person's clearance (:mod:`.decisions`) stands while the same copy is what holds
    it, and the room's figures move as late notebooks arrive. A lab without its built release is skipped (a
    plain nbgrader root); a notebook that cannot be read is compared as absent (the checks reject it).

    With ``out``, a lab's findings are kept in ``out/<lab>/shared-answers.json`` under a key made of
    every input's SHA-256 (release, solution, each trainee's notebook) and of the comparing code itself:
    a room of 300 costs one to two seconds a lab to compare, and ``techday grade review`` reads every lab
    each time it is run; a changed notebook, a late hand-in or a new version of the code compares again."""
    import hashlib

    from ..course.layout import read_built
    from ..course.syllabus import CourseError
    from . import similarity
    from .checks import handin_sha256, handin_students, read_handin

    holds: dict[tuple[str, str], list[str]] = {}
    notes: dict[tuple[str, str], list[str]] = {}
    code = hashlib.sha256(Path(similarity.__file__).read_bytes()).hexdigest()
    for lab in sorted(labs):
        try:
            release = read_built(root, "release", lab)
        except CourseError:
            continue
        try:
            solution = read_built(root, "source", lab)
        except CourseError:
            solution = None
        room: list[str] = []
        shas = []
        for student in handin_students(root):
            # Never through a link (checks.open_handin): a folder linked to another trainee's read that
            # trainee's notebook as this one's, and each was then held for sharing the other's answers.
            sha = handin_sha256(root, lab, student)  # None over MAX_NOTEBOOK_BYTES: the checks reject it unread
            if sha is not None:
                room.append(student)
                shas.append((student, sha))
        key = hashlib.sha256(json.dumps([code, release, solution, shas], sort_keys=True).encode()).hexdigest()
        kept = out / lab / "shared-answers.json" if out is not None else None
        found = None
        if kept is not None:
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
                data = json.loads(kept.read_bytes())
                if data["key"] == key:
                    found = [{k: str(f[k]) for k in ("a", "b", "cells_a", "cells_b", "note")} for f in data["found"]]
        if found is None:
            loaded = {}
            for student in room:
                # Only what is compared is kept (a notebook's outputs may be most of its 100 MB); one that
                # cannot be read, or nests past the parser's depth, is compared as absent.
                raw = read_handin(root, lab, student)
                with contextlib.suppress(ValueError, RecursionError):
                    if raw is not None:
                        loaded[student] = answer_cells(json.loads(raw))
            found = [{"a": f.a, "b": f.b, "cells_a": ", ".join(f.cells_a), "cells_b": ", ".join(f.cells_b),
                      "note": f.note()}
                     for f in similarity.shared_answers(release, loaded, solution)]
            if kept is not None and kept.parent.is_dir():
                with contextlib.suppress(OSError):
                    atomicfile.write_text(kept, json.dumps({"key": key, "found": found}, indent=1) + "\n")
        for f in found:
            for me, other, cells in ((f["a"], f["b"], f["cells_a"]), (f["b"], f["a"], f["cells_b"])):
                if me == similarity.SOLUTION:
                    continue
                # My own cells only: the other party cannot change my hold line (and so lapse a person's
                # clearance of me) by moving the copy about in their own notebook.
                holds.setdefault((lab, me), []).append(f"{lab}: answers shared with {other} (cells: {cells})")
                notes.setdefault((lab, me), []).append(f"{lab}: {f['note']}")
    return holds, notes


def pass_fail(course, root: Path, out: Path, decisions=None) -> tuple[dict[str, list[dict]], list[str]]:
    """Per track, per trainee: points, fractions, passed (the track's own rule,
    :meth:`techday.course.syllabus.TrackSpec.passes`: overall, every lab, the assessment), and what to review.

    ``decisions`` (:class:`.decisions.Decisions`; read from ``out`` when None): a person's clearance lifts a
    lab's holds while it stands, and never where the gradebook's score is not of the trainee's current
    notebook (pending, rejected, failed, replaced: a person reads the notebook, the certificate certifies
    the score); a refusal withholds the certificate. Each row also carries ``holds`` (lab -> the hold
    lines before any decision), ``decided`` (lab -> standing, decision), ``unscored`` (those labs) and
    ``notebooks`` (lab -> the SHA-256 of the notebook these holds were read from, what a decision is bound
    to), which ``passfail.csv`` leaves out and ``techday grade review`` uses."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    from .decisions import Decisions

    decisions = Decisions.load(out) if decisions is None else decisions
    tracks: dict[str, list[dict]] = {}
    notes = []
    flags, holds, graded, with_state = _standing(root, out)
    copied, copy_notes = shared_answers_in_room(root, with_state, out)
    shas: dict[tuple[str, str], str] = {}
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}", course.id) as gb:
        warnings.simplefilter("ignore")
        known = {a.name: a for a in gb.assignments}
        students = [s.id for s in gb.students]
        for track in course.tracks.values():
            missing = [lab for lab in track.labs if lab not in known]
            if missing:
                notes.append(f"track {track.id}: not decided, labs not in the gradebook: {', '.join(missing)}")
                continue
            rows = []
            for student in students:
                scores = {}
                review = []
                hold = []
                lab_holds: dict[str, list[str]] = {}
                decided: dict[str, tuple[str, object]] = {}
                unscored: set[str] = set()  # labs whose gradebook score is not of the current notebook
                refused = []
                for lab in track.labs:
                    maximum = float(known[lab].max_score or 0)
                    here = list(holds.get((lab, student), []))
                    # the gradebook's score is not of the current notebook (pending, rejected, failed, replaced)
                    unscored_here = lab in with_state and not graded.get((lab, student))
                    try:
                        score = float(gb.find_submission(lab, student).score or 0)
                    except MissingEntry:
                        score = 0.0
                        review.append(f"{lab}: no submission")
                    else:
                        if unscored_here and not holds.get((lab, student)):
                            stale = (f"{lab}: the gradebook's score is of no current hand-in (the graded notebook "
                                     "was replaced or removed since)")
                            review.append(stale)
                            here.append(stale)
                    scores[lab] = (score, maximum)
                    here += copied.get((lab, student), [])
                    review += flags.get((lab, student), []) + copy_notes.get((lab, student), [])
                    if (lab, student) not in shas:
                        shas[(lab, student)] = notebook_sha(root, lab, student)
                    standing, decision = decisions.standing(student, lab, shas[(lab, student)], here)
                    if unscored_here:
                        unscored.add(lab)
                        if standing == "cleared" and here:
                            # A person reads a notebook, not a score: the gradebook's is of another notebook,
                            # which a clearance must not certify.
                            standing = "lapsed"
                    if here:
                        lab_holds[lab] = here
                    if decision is not None:
                        decided[lab] = (standing, decision)
                    if standing == "refused":
                        refused.append(decision.line())
                        review.append(decision.line())
                    elif standing == "cleared" and here:
                        review.append(decision.line())
                    else:
                        if standing == "lapsed" and here and unscored_here:
                            review.append(f"{lab}: the decision of {decision.by} ({decision.at}) does not count: "
                                          "the gradebook's score is not of the current notebook; grade it "
                                          f"(`techday grade autograde {lab}`), then decide")
                        elif standing == "lapsed" and here:
                            review.append(f"{lab}: the decision of {decision.by} ({decision.at}) lapsed: the "
                                          "notebook or its holds changed since; decide again")
                        hold += here
                f = track.fractions(scores)
                passed = track.passes(scores)
                # A pass waits for a person unless every lab's score is of the trainee's current
                # notebook, graded clean (see _standing), or a person cleared what holds it: flagged (the
                # review, the referee, a dead kernel), not gradable, not graded (yet), or replaced since.
                # A person's refusal withholds it, whatever --issue-held says.
                held = passed and bool(hold)
                certificate = ("refused on review" if passed and refused else
                               "held: review the flags" if held else ("yes" if passed else "no"))
                rows.append({"track": track.id, "student": student,
                             "points": round(sum(s for s, _ in scores.values()), 3),
                             "max_points": round(sum(m for _, m in scores.values()), 3),
                             "fraction": round(f["track"], 4), "lowest_lab_fraction": round(min(f["labs"].values()), 4),
                             "assessment_fraction": "" if f["assessment"] is None else round(f["assessment"], 4),
                             "passed": passed, "certificate": certificate,
                             "review": " | ".join(review), "holds": lab_holds, "decided": decided,
                             "unscored": unscored,
                             "notebooks": {lab: shas[(lab, student)] for lab in track.labs}})
            tracks[track.id] = rows
    return tracks, notes


def gradebook_names(root: Path, course_id: str) -> dict[str, str]:
    """Every trainee in nbgrader's student table -> the display name it holds ("" if none)."""
    import warnings

    from nbgrader.api import Gradebook

    from .certificates import display_name

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        warnings.simplefilter("ignore")
        return {s.id: display_name(s.first_name, s.last_name) for s in gb.students}


def hangul_font() -> str | None:
    """A font file with Hangul syllables, if this machine has one."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    preferred = ("NanumGothic", "NotoSansCJK", "NotoSansKR", "NotoSerifCJK", "UnDotum", "Baekmuk")
    paths = sorted(font_manager.findSystemFonts(), key=lambda p: (not any(n in p for n in preferred), p))
    for path in paths:
        try:
            if 0xAC00 in FT2Font(path).get_charmap():
                return path
        except Exception:
            continue
    return None


STYLE = """body{font-family:"Noto Sans KR","NanumGothic","Apple SD Gothic Neo","Malgun Gothic",sans-serif;
text-align:center;margin:4em;border:6px double #76b900;padding:3em} h1{margin-bottom:0}
.name{font-size:2.2em;margin:1em 0 .2em} .small{color:#555} .code{font-family:monospace;font-size:1.3em}"""


def certificate_texts(korean: bool, labs: int = 0) -> dict[str, str]:
    """The labels of a certificate: in the course's language (``$TECHDAY_LANG``, else the syllabus'
    ``default_language``) when ``korean`` may be drawn, else English. The facts (name, score, track,
    code) come from :func:`visible_fields` and are the same in every language."""
    def say(_: str, default: str, text: str) -> str:
        return text if korean else default

    return {
        "lang": "ko" if korean else "en",
        "title": say("title", "Certificate of completion",
                     msg("techday.cert_title", "Certificate of completion")),
        "other": "Certificate of completion" if korean else "수료증",
        "trainee": say("trainee", "trainee", msg("techday.cert_trainee", "trainee")),
        "completed": say("completed", "has completed the track / 다음 과정을 수료했습니다",
                         msg("techday.cert_completed", "has completed the track")),
        "labs": say("labs", f"{labs} graded labs", msg("techday.cert_labs", "{count} graded labs", count=labs)),
        "run": say("run", "course run", msg("techday.cert_run", "course run")),
        "code": say("code", "verification code", msg("techday.cert_code", "verification code")),
        "check": say("check", "The course organiser checks it:",
                     msg("techday.cert_check", "The course organiser checks it:")),
    }


def certificate_korean() -> bool:
    """Korean certificates when the course's language is Korean (``$TECHDAY_LANG``, set by
    ``techday grade results --lang``, else the syllabus' ``default_language``)."""
    return current_language() == "ko"


def certificate_html(course, track, data: dict, code: str, key: bytes | None = None) -> str:
    """The HTML certificate: each field it shows in an element with ``data-field`` (what ``verify
    --file`` compares), and its payload and code in a JSON block; its labels in the course's language.
    With ``key``, the block also carries the page's own code (:func:`certificates.page_code`): ``verify
    --file`` then refuses any other byte on the page."""
    from .certificates import BLOCK_CLOSE, BLOCK_OPEN, html_block, page_code

    if key is None:
        return _certificate_page(course, track, data, code, html_block(data, code))
    page = _certificate_page(course, track, data, code, BLOCK_OPEN + BLOCK_CLOSE)
    return _certificate_page(course, track, data, code, html_block(data, code, page_code(key, code, page)))


def _certificate_page(course, track, data: dict, code: str, block: str) -> str:
    from .certificates import visible_fields

    e = html.escape
    s = {k: e(x) for k, x in certificate_texts(certificate_korean(), len(track.labs)).items()}
    v = {k: e(x) for k, x in visible_fields(course, data, code, s["lang"]).items()}
    return f"""<!doctype html>
<html lang="{s['lang']}"><head><meta charset="utf-8"><title>{e(course.title)}: {e(track.title)}</title>
<style>{STYLE}</style>
{block}</head>
<body><h1>{s['title']}</h1><p class="small">{s['other']}</p>
<p class="name" data-field="name">{v['name']}</p>
<p class="small">{s['trainee']} <span data-field="trainee">{v['trainee']}</span></p>
<p>{s['completed']}</p>
<h2 data-field="track">{v['track']}</h2><p>{e(track.title_ko)}</p>
<p>{e(course.title)}: {s['labs']}, <span data-field="score">{v['score']}</span></p>
<p class="small">{s['run']} <span data-field="run">{v['run']}</span>, <span data-field="date">{v['date']}</span></p>
<p>{s['code']} <span class="code" data-field="code">{v['code']}</span></p>
<p class="small">{s['check']} <code>techday grade verify CODE</code></p></body></html>
"""


def certificate_pdf(path: Path, course, track, data: dict, code: str, font: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    from .certificates import pdf_keywords, visible_fields

    fp = FontProperties(fname=font) if font else FontProperties(family="DejaVu Sans")
    mono = FontProperties(family="DejaVu Sans Mono")
    glyphs = set(FT2Font(font or findfont(fp)).get_charmap())
    missing = False

    def drawable(text: str) -> str:
        """What the font cannot draw becomes "?" (matplotlib would leave a blank and warn)."""
        nonlocal missing
        out = "".join(c if ord(c) in glyphs or c.isspace() else "?" for c in text)
        missing |= out != text
        return out

    fig = Figure(figsize=(11.69, 8.27))  # A4 landscape
    fig.patches.append(matplotlib.patches.Rectangle((0.03, 0.04), 0.94, 0.92, transform=fig.transFigure,
                                                    fill=False, linewidth=4, edgecolor="#76b900"))
    # Korean labels only with a Hangul font: without one they would print as "?" (tofu).
    s = certificate_texts(certificate_korean() and font is not None, len(track.labs))
    v = visible_fields(course, data, code, s["lang"])
    lines = [(0.84, s["title"], 30, fp), (0.78, s["other"] if font else "", 16, fp),
             (0.65, drawable(v["name"]), 34, fp), (0.59, drawable(f"{s['trainee']} {v['trainee']}"), 11, fp),
             (0.52, s["completed"] if font else "has completed the track", 14, fp),
             (0.44, drawable(v["track"]), 22, fp), (0.38, track.title_ko if font else "", 16, fp),
             (0.30, drawable(f"{course.title}: {s['labs']}, {v['score']}"), 12, fp),
             (0.24, drawable(f"{s['run']} {v['run']}, {v['date']}"), 11, fp),
             (0.15, f"{s['code']}  {code}", 15, fp if s["lang"] == "ko" else mono),
             (0.10, f"{s['check']} techday grade verify CODE", 9, fp)]
    if missing:
        lines.append((0.70, "(install a Hangul font, e.g. fonts-nanum, to print this name: the HTML certificate "
                            "shows it)", 9, fp))
    for y, text, size, prop in lines:
        if text:
            # Drawn as written: matplotlib would read a "$...$" in a name as math text (another text
            # on the page than the code certifies, or an error that stops the whole room's results).
            fig.text(0.5, y, text, ha="center", va="center", fontproperties=prop, fontsize=size, parse_math=False,
                     usetex=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Title": f"{course.title}: {track.title}", "Subject": data["name"], "Keywords": pdf_keywords(data, code)}
    with atomicfile.replacing(path, "wb") as out, PdfPages(out, metadata=meta) as pdf:
        pdf.savefig(fig)


KEPT_NOTE = ("issued before as {code}: it still verifies while held; `techday grade review ID --refuse --lab LAB` "
             "withdraws it at the next `techday grade results`")
PASSFAIL_COLUMNS = ["track", "student", "name", "points", "max_points", "fraction", "lowest_lab_fraction",
                    "assessment_fraction", "passed", "certificate", "code", "file", "review"]


def results(course, root: Path, out: Path, issue_held: bool = False, roster: Path | None = None,
            run: str | None = None, report=print) -> Results:
    from ..course.build import nbgrader

    from .decisions import Decisions, DecisionsError

    preflight(root, roster)
    _states(out)
    try:
        Decisions.load(out)
    except DecisionsError as exc:
        raise ResultsStopped(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    graded = sorted({p.parent.name for p in root.glob("autograded/*/*/*.ipynb")})
    report(f"feedback for {', '.join(graded) or 'no lab'} (nbgrader generate_feedback, hidden tests removed) ...")
    problems = generate_feedback(root, graded)
    proc = nbgrader(root, "export", "--to", str(out / "grades.csv"))
    if proc.returncode != 0:
        problems.append("nbgrader export failed")
    else:
        safe_csv(out / "grades.csv")
    res = certify(course, root, out, issue_held=issue_held, roster=roster, run=run, report=report)
    res.problems[:0] = problems
    return res


def keep_issued_names(names: dict[str, tuple[str, str]], students: list[str], register, course_id: str,
                      run: str) -> list[str]:
    """A trainee with no name now (no ``--roster`` this time, none in nbgrader's student table, a
    roster row with two names) keeps the name on the certificate issued to them in this ``run``:
    a rerun that forgot ``--roster`` reissued every certificate under the id and withdrew the named
    ones already handed out. ``names`` is updated in place; the notes say who kept a name."""
    issued: dict[str, str] = {}
    for entry in register.certificates.values():
        if entry.get("course") == course_id and entry.get("run") == run and entry.get("status") == "issued":
            name = entry.get("name")
            if isinstance(name, str) and name and name != entry.get("trainee") and name.isprintable():
                issued.setdefault(entry.get("trainee"), name)
    kept = []
    for trainee in students:
        if names.get(trainee, (trainee, "id"))[1] == "id" and trainee in issued:
            names[trainee] = (issued[trainee], "issued")
            kept.append(trainee)
    if not kept:
        return []
    return [f"{len(kept)} trainee(s) with no name in the roster nor in nbgrader's student table keep the name on "
            f"the certificate issued in run {run} (give --roster to change it): {', '.join(kept)}"]


def certify(course, root: Path, out: Path, issue_held: bool = False, roster: Path | None = None,
            run: str | None = None, font: str | None = "auto", report=print) -> Results:
    """From the gradebook: pass/fail per track, names, ``passfail.csv``, the certificates and the
    register of their codes. ``font``: a font file, None for DejaVu Sans, "auto" to look for Hangul.

    Long (about 95 lines): the register of codes is loaded once, consulted for every trainee (a
    certificate already issued keeps its code), updated with this run's certificates and withdrawals,
    and saved once; the steps share it and the run's name."""
    import shutil

    from . import certificates as cert

    out.mkdir(parents=True, exist_ok=True)
    res = Results(passfail=out / "passfail.csv", feedback_dir=root / "feedback", cert_dir=out / "certificates",
                  register=out / "certificates.json")
    res.tracks, notes = pass_fail(course, root, out)
    for note in notes:
        report(note)

    # Names: the roster CSV, else nbgrader's student table, else (keep_issued_names, below) the name
    # issued before in this run, else the id.
    stored = gradebook_names(root, course.id)
    students = sorted(stored)
    listed = None
    if roster is not None:
        listed = cert.read_roster(roster)
        res.problems += listed.problems
        for note in listed.notes:
            report(note)
    names, notes = cert.resolve_names(students, stored, listed, label=f"roster {roster.name}" if roster else "roster")
    for note in notes:
        report(note)

    # The key and the register.
    key = None
    try:
        key, res.key, notes = cert.load_key(course, create=True)
        for note in notes:
            report(note)
    except cert.CertificateError as exc:
        res.problems.append(f"no certificates written: {exc}")
    register, notes = cert.Register.load(res.register)
    for note in notes:
        report(note)
    res.run = (run or "").strip() or register.last_run(course.id) or time.strftime("%Y-%m-%d")
    today = time.strftime("%Y-%m-%d")
    for note in keep_issued_names(names, students, register, course.id, res.run):
        report(note)

    font = hangul_font() if font == "auto" else font
    res.font = font or ""
    if res.cert_dir.exists():
        shutil.rmtree(res.cert_dir)
    if key is not None:
        report(f"certificate font: {font or 'none with Hangul found (install fonts-nanum); PDFs use DejaVu Sans'}; "
               f"course run {course.id} / {res.run}; key {res.key}")
    issued: dict[str, dict] = {}
    kept: set[str] = set()
    unnamed = []
    stems = cert.certificate_stems(students)
    for track_id, rows in res.tracks.items():
        track = course.tracks[track_id]
        for row in rows:
            name, source = names.get(row["student"], (row["student"], "id"))
            row.update(name=name, code="", file="")
            if not row["passed"] or key is None:
                continue
            data = cert.payload(course.id, res.run, track_id, row["student"], name, row["points"], row["max_points"],
                                today, title=track.title)
            before = register.find(data)
            if before is None:  # issued before the title was signed (v1), with these very fields: it stands
                legacy = {k: v for k, v in data.items() if k != "title"}
                before = register.find(legacy)
                if before is not None and "title" not in before and before.get("status") == "issued":
                    data = legacy
                else:
                    before = None
            data["date"] = before["date"] if before else today
            code = cert.make_code(key, data)
            refused = row["certificate"].startswith("refused")
            if row["certificate"] != "yes" and (not issue_held or refused):
                if before is not None and not refused and before.get("status") == "issued":
                    # Held, issued before with these very fields: it stands, and says so (a held row with
                    # no code read as "nothing is out" while `verify` said GENUINE).
                    kept.add(code)
                    row["code"] = code
                    row["review"] = " | ".join(filter(None, [row["review"], KEPT_NOTE.format(code=code)]))
                elif before is not None and not refused:
                    kept.add(code)
                continue
            base = res.cert_dir / track_id / stems[row["student"]]
            base.parent.mkdir(parents=True, exist_ok=True)
            html_path, pdf_path = base.parent / f"{base.name}.html", base.parent / f"{base.name}.pdf"
            atomicfile.write_text(html_path, certificate_html(course, track, data, code, key=key))
            certificate_pdf(pdf_path, course, track, data, code, font)
            res.certificates.append(pdf_path)
            row.update(code=code, file=str(pdf_path.relative_to(out)))
            issued[code] = {**data, "file": row["file"]}
            if source == "id":
                unnamed.append(row["student"])
    if key is not None:
        withdrawn = register.issue(course.id, res.run, issued, keep=kept, tracks=set(res.tracks))
        if withdrawn:
            report(f"withdrawn (issued before in run {res.run}, not certified now): {', '.join(withdrawn)}")
        register.save()
    if unnamed:
        report(f"{len(set(unnamed))} certificate holder(s) without a name (not in the roster nor in nbgrader's "
               f"student table): their certificates show the id: {', '.join(sorted(set(unnamed)))}")

    with atomicfile.replacing(res.passfail, newline="") as f:
        w = csv.DictWriter(f, fieldnames=PASSFAIL_COLUMNS)
        w.writeheader()
        for rows in res.tracks.values():
            w.writerows({k: spreadsheet_cell(row[k]) for k in PASSFAIL_COLUMNS} for row in rows)
    return res
