"""Checks before any code runs: one :class:`Submission` per file under ``submitted/<student>/<lab>/``,
with a status line that says what is wrong and how to fix it.

JSON and nbformat; every graded and locked cell of the release present, of the same type and
unchanged (nbgrader's checksum); copies of graded cells; the file name as released; one trainee under
two ids; and the review of the cells the trainee wrote (:mod:`techday.grading.review`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..course.layout import lab_folder, notebook_name
from .review import _kind, _release_cells, review, test_bound_names


# What the checks read of one hand-in. They run one after another, for the whole room, before anything
# is graded: a notebook of 100 000 one-line cells (11 MB) took 29 s of CPU to check, one of 300 000
# lines of code 45 s, and the exchange lets a hand-in be 100 MB (--import: any size, read whole). The
# course's labs have at most 43 cells and 60 kB of text; the limits are 8 to 20 times that.
MAX_NOTEBOOK_BYTES = 100_000_000
MAX_CELLS = 1_000
MAX_SOURCE_CHARS = 500_000
MAX_NOTES = 10  # notes of one kind (unknown graded cells) named one by one; the rest are counted


def file_sha256(path, limit: int | None = None) -> str | None:
    """The SHA-256 of ``path`` (or of an open binary file, read from where it stands), read in pieces; None
    where it is over ``limit`` bytes (not read past it; default :data:`MAX_NOTEBOOK_BYTES`)."""
    limit = MAX_NOTEBOOK_BYTES if limit is None else limit
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") if isinstance(path, (str, Path)) else contextlib.nullcontext(path) as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            if size > limit:
                return None
            digest.update(chunk)
    return digest.hexdigest()


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_handin(root: Path, lab: str, student: str, name: str | None = None):
    """``submitted/<student>/<lab>/<name>`` (default the lab's notebook) open for reading in binary, or None
    where it cannot be the trainee's own file: the trainee's folder, the lab's folder or the file is a link,
    one of them is not a folder or a regular file, or it is not there. Each step is opened relative to the
    one before with ``O_NOFOLLOW`` (a link is refused where it stands, also one put there after a look);
    ``submitted/`` itself is the instructor's and may be a link. The way :func:`collect` reads hand-ins: a
    zip unpacked into ``submitted/`` keeps its links, and ``results`` and ``review`` read a folder linked to
    another trainee's as this trainee's notebook (compared with the room as theirs, a decision bound to it)."""
    name = notebook_name(lab) if name is None else name
    if any(not part or part in (".", "..") or "/" in part or "\0" in part for part in (student, lab, name)):
        return None
    fds: list[int] = []
    try:
        fds.append(os.open(Path(root) / "submitted", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        fds.append(os.open(student, _DIR, dir_fd=fds[-1]))
        fds.append(os.open(lab, _DIR, dir_fd=fds[-1]))
        fd = os.open(name, _FILE, dir_fd=fds[-1])
    except (OSError, ValueError):
        return None
    finally:
        for d in fds:
            os.close(d)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def has_handin(root: Path, lab: str, student: str) -> bool:
    """Whether the trainee has a notebook of ``lab`` that is their own file (:func:`open_handin`)."""
    f = open_handin(root, lab, student)
    if f is not None:
        f.close()
    return f is not None


def handin_students(root: Path) -> list[str]:
    """The trainees with a folder of their own in ``submitted/`` (a folder, never a link to one), sorted."""
    try:
        with os.scandir(Path(root) / "submitted") as entries:
            return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def read_handin(root: Path, lab: str, student: str, name: str | None = None,
                limit: int = MAX_NOTEBOOK_BYTES) -> bytes | None:
    """The bytes of :func:`open_handin`'s file; None where it gives none, it cannot be read, or it is over
    ``limit`` bytes (never read past that)."""
    f = open_handin(root, lab, student, name)
    if f is None:
        return None
    try:
        with f:
            raw = f.read(limit + 1)
    except OSError:
        return None
    return raw if len(raw) <= limit else None


def handin_sha256(root: Path, lab: str, student: str) -> str | None:
    """The SHA-256 of the trainee's notebook of ``lab``, read through :func:`open_handin`; None where there is
    none that is the trainee's own file, it cannot be read, or it is over :data:`MAX_NOTEBOOK_BYTES`."""
    f = open_handin(root, lab, student)
    if f is None:
        return None
    try:
        with f:
            return file_sha256(f)
    except OSError:
        return None


def _too_big(data: dict) -> str | None:
    """Why the checks will not read this notebook (None: they will): too many cells or too much text."""
    cells = data["cells"] if isinstance(data["cells"], list) else []
    if len(cells) > MAX_CELLS:
        return (f"{len(cells)} cells, more than the {MAX_CELLS} a hand-in may have: delete the scratch cells, "
                "then hand it in again")
    chars = 0
    for cell in cells:
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        chars += sum(len(x) for x in source if isinstance(x, str)) if isinstance(source, list) else \
            len(source) if isinstance(source, str) else 0
    if chars > MAX_SOURCE_CHARS:
        return (f"{chars} characters of cell text, more than the {MAX_SOURCE_CHARS} a hand-in may have: "
                "remove the pasted data, then hand it in again")
    return None


def shown(text: str) -> str:
    """A trainee's id or file name as a status line prints it: as it is where every character is
    printable (Hangul included), else Python's quoted form, so that a newline, a terminal escape or a
    bidirectional control in a name never starts a line of its own (``graded trainee-009 ...``) or
    rewrites one (an allow-list: :meth:`str.isprintable`)."""
    return text if text.isprintable() else repr(text)


@dataclass
class Submission:
    student: str
    lab: str
    path: str
    sha256: str = ""
    status: str = "pending"            # pending, graded, flagged, failed, rejected
    notes: list[str] = field(default_factory=list)
    gradable: bool = True
    score: float | None = None
    max_score: float | None = None
    seconds: float | None = None
    memory_mb: int | None = None       # the most its processes held together in the sandbox (read from outside)
    outside: list | None = None        # checks from outside the kernel: seeds drawn, accuracies, verdict (outside.py)
    draw: int | None = None            # the seed of its drawn hidden inputs (techday/draw.py), to repeat a grading

    @property
    def key(self) -> str:
        """The submission in ``state.json``: trainee and checksum, and the file name when it is not the
        lab's (a file rejected for its name is another entry than the same bytes renamed)."""
        name = Path(self.path).name
        own = f"{self.student}/{self.sha256[:16]}"
        return own if name == notebook_name(self.lab) or not self.sha256 else f"{own}/{name}"

    def line(self) -> str:
        score = f" {self.score:g}/{self.max_score:g}" if self.score is not None and self.max_score else ""
        notes = "; ".join(self.notes)
        notes = notes if notes.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in notes)
        return (f"{self.status:<8} {shown(self.student)} {shown(Path(self.path).name)}{score}"
                + (f": {notes}" if notes else ""))




def _flags(meta: dict) -> tuple[bool, bool, bool]:
    """What nbgrader makes of a cell: (graded, an answer, locked)."""
    return bool(meta.get("grade")), bool(meta.get("solution")), bool(meta.get("locked"))


def _said(flags: tuple[bool, bool, bool]) -> str:
    return "+".join(w for w, on in zip(("graded", "answer", "locked"), flags) if on) or "a plain cell"


def check_notebook(path: Path, lab: str, release_nb: dict, test_names=()) -> tuple[list[str], bool, object]:
    """(notes, gradable, notebook) for one file. Nothing is executed. ``test_names``: the names the
    lab's tests bind, hidden ones included (:func:`techday.grading.review.test_bound_names` of the source)."""
    import nbformat
    from nbgrader.utils import compute_checksum

    notes: list[str] = []
    raw = path.read_bytes()
    if not raw.strip():
        return ["empty file"], False, None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [f"not valid JSON ({str(exc)[:80]})"], False, None
    if not isinstance(data, dict) or "cells" not in data:
        return ["not a notebook (no cells)"], False, None
    if why := _too_big(data):
        return [why], False, None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        missing_ids = sum(1 for c in data["cells"] if isinstance(c, dict) and not c.get("id"))
        if missing_ids:
            notes.append(f"{missing_ids} cell(s) without an id (ids added in the graded copy)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nb)
    except Exception as exc:
        return [f"not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})"], False, None
    release = _release_cells(release_nb)
    seen: dict[str, list] = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            seen.setdefault(gid, []).append(cell)
    for gid, rcell in release.items():
        rmeta = rcell["metadata"]["nbgrader"]
        kind = _kind(rmeta)
        found = seen.get(gid, [])
        if not found:
            if kind == "test":
                notes.append(f"deleted test cell '{gid}' (nbgrader adds it back)")
            elif kind == "solution":
                notes.append(f"deleted answer cell '{gid}' (its tests will fail)")
            else:
                notes.append(f"deleted locked cell '{gid}' (the grader adds it back)")
            continue
        if len(found) > 1:
            notes.append(f"copied cell '{gid}' ({len(found)} copies: the first is graded, the copies run as "
                         "plain cells)")
        cell = found[0]
        if cell.cell_type != rcell["cell_type"]:
            notes.append(f"retyped cell '{gid}' ({rcell['cell_type']} -> {cell.cell_type}; nbgrader restores it)")
        elif kind in ("test", "locked") and "checksum" in rmeta:
            if compute_checksum(cell) != rmeta["checksum"]:
                notes.append(f"edited {kind} cell '{gid}' (nbgrader restores it from the source)")
        elif (flags := _flags(cell.get("metadata", {}).get("nbgrader", {}))) != _flags(rmeta):
            # An answer's flags are outside nbgrader's checksum, and nbgrader restores only `locked` and the
            # points: an answer cell marked locked kept its source and passed for a course cell.
            notes.append(f"changed the grading flags of cell '{gid}' (released as {_said(_flags(rmeta))}, "
                         f"handed in as {_said(flags)}): its code is read as the trainee's")
    unknown = [gid for gid in seen if gid not in release]
    for gid in unknown[:MAX_NOTES]:
        notes.append(f"unknown graded cell '{gid}' (not in the release; ignored by nbgrader)")
    if len(unknown) > MAX_NOTES:
        notes.append(f"{len(unknown) - MAX_NOTES} more unknown graded cells")
    unread, findings = review(nb, release_nb, test_names)
    notes += [f"review: {f}" for f in findings] + unread
    return notes, True, nb


def _hangul(c: str) -> bool:
    """Hangul syllables and jamo (conjoining, compatibility, extended): the room's own letters."""
    o = ord(c)
    return (0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F or 0xA960 <= o <= 0xA97F
            or 0xD7B0 <= o <= 0xD7FF)


def id_notes(student: str) -> list[str]:
    """What a status line says of a trainee id. An allow-list: ASCII and Hangul are noted at most; any
    other character flags the submission (its certificate is held for a person to look), since it can
    make the id look like another one (``kіm.minsu`` with a Cyrillic ``і``, ``trainee-00١`` with an
    Arabic-Indic one) or not print as itself (a control character)."""
    odd = sorted({c for c in student if not (c.isascii() and c.isprintable() or _hangul(c))})
    if odd:
        named = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in odd[:4])
        return [f"trainee id {student!r} has characters outside ASCII and Hangul ({named}"
                f"{', ...' if len(odd) > 4 else ''}): it can look like another trainee's id; check who it is"]
    return [] if student.isascii() else ["non-ASCII trainee id (kept as is)"]


# What a trainee id may be made of besides letters, digits and marks of any script (those outside ASCII
# and Hangul are flagged by id_notes) and format characters and spaces (flagged there too).
ID_PUNCTUATION = "._-@+ "


def id_refusal(student: str) -> str | None:
    """Why ``student`` cannot be a trainee id (None: it can). An allow-list: letters, digits and marks of
    any script, spaces, format characters and ``._-@+``. Anything else (``<``, ``"``, ``&``, ``=``, a
    control character, ...) is refused: nbgrader's formgrader writes the id into its pages unescaped, so
    an ``--import`` file named ``<img src=x onerror=...>.ipynb`` ran its script in an instructor's
    browser, with the session that sets every trainee's grades."""
    odd = sorted({c for c in student if not (unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) in
                                             ("Cf", "Zs") or c in ID_PUNCTUATION)})
    if not odd:
        return None
    named = " ".join(repr(c)[1:-1] for c in odd[:8])
    return (f"trainee id {shown(student)} has {named}{' ...' if len(odd) > 8 else ''}: an id is letters, digits, "
            f"spaces and {' '.join(ID_PUNCTUATION.strip())} only (the formgrader shows ids as HTML); rename it")


def _norm(student: str) -> str:
    """What two ids that may be one trainee's have in common: NFKC, case folded, without spaces or the
    punctuation ``._-`` (``kim.`` beside ``kim``, ``trainee_007`` beside ``trainee-007``: each read as the
    other on a certificate, and a trailing dot is dropped by Windows' file names)."""
    text = unicodedata.normalize("NFKC", student).casefold()
    return "".join(c for c in text if not c.isspace() and c not in "._-")


def import_folder(source: Path, root: Path, lab: str) -> list[str]:
    """Copy hand-ins from a plain folder into nbgrader's ``submitted/<student>/<lab>/``: either
    ``<student>.ipynb`` or ``<student>/<any name>.ipynb`` (an exchange inbound, a download). Names are
    kept, so a wrong notebook name is still caught by the checks; existing files are not overwritten.
    Returns one line per file. A link is never followed (it could point at the course's solutions)."""
    lines = []
    items = [(p.stem, p) for p in sorted(source.glob("*.ipynb"))]
    items += [(d.name, p) for d in sorted(source.iterdir()) if d.is_dir() and not d.is_symlink()
              for p in sorted(d.glob("*.ipynb"))]
    items = [(unicodedata.normalize("NFC", student).strip(), path) for student, path in items]
    # Two sources for one id (``kim.ipynb`` and ``kim .ipynb``, a name in NFC and one in NFD, a file and
    # a folder): whichever came first was that trainee's hand-in and the other was dropped as
    # "already collected". None of them is imported: a person says which is whose.
    sources: dict[str, set[Path]] = {}  # id -> its sources: top-level files and folders
    for student, path in items:
        sources.setdefault(student, set()).add(path if path.parent == source else path.parent)
    clashes = {student for student, found in sources.items() if len(found) > 1}
    for student in sorted(clashes):
        names = ", ".join(shown(p.name) for p in sorted(sources[student]))
        lines.append(f"skipped  {shown(student)}: {len(sources[student])} hand-ins for one trainee id ({names}): "
                     "keep one, then import again")
    for student, path in items:
        if student in clashes:
            continue
        if student in ("", ".", ".."):  # " .ipynb", "...ipynb": no id, or a path out of submitted/
            lines.append(f"skipped  {shown(path.name)}: no trainee id in its name")
            continue
        if why := id_refusal(student):
            lines.append(f"skipped  {shown(path.name)}: {why}")
            continue
        if path.is_symlink() or not path.is_file():
            lines.append(f"skipped  {shown(student)}: {shown(path.name)} is a link or not a file")
            continue
        dest = lab_folder(root, "submitted", lab, student) / (path.name if path.parent != source else notebook_name(lab))
        if dest.exists():
            lines.append(f"kept     {shown(student)}: {shown(dest.name)} already collected")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
        lines.append(f"imported {shown(student)}: {shown(path.name)} -> {shown(str(dest.relative_to(root)))}")
    return lines


def misplaced(base: Path, lab: str, students: list[str]) -> list[Submission]:
    """Hand-ins of ``lab`` beside nbgrader's layout, which :func:`collect` would pass over without a
    word: ``submitted/<student>/<lab>`` a file rather than a folder, or ``submitted/<student>/<lab>.ipynb``
    with no ``<lab>/`` folder. Each is rejected with where to move it, so the trainee's work is seen."""
    found = []
    if not base.is_dir():
        return found
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and p.name not in students):
        for path in (folder / lab, folder / notebook_name(lab)):
            if path.is_file() and not path.is_symlink():
                found.append(Submission(folder.name, lab, str(path), status="rejected", gradable=False, notes=[
                    f"submitted/{folder.name}/{path.name} is a file outside nbgrader's layout: move it to "
                    f"submitted/{folder.name}/{lab}/{notebook_name(lab)}, then run this again"]))
                break
    return found


def collect(root: Path, lab: str, release_nb: dict) -> list[Submission]:
    """Every file under ``submitted/<student>/<lab>/``, checked; nothing runs."""
    subs: list[Submission] = []
    source = lab_folder(root, "source", lab) / notebook_name(lab)
    test_names = test_bound_names(json.loads(source.read_text(encoding="utf-8"))) if source.is_file() else set()
    base = root / "submitted"
    students = sorted(p.name for p in base.iterdir() if (p / lab).is_dir()) if base.is_dir() else []
    for student in students:
        folder = base / student / lab
        if why := id_refusal(student):  # a folder made by hand, or by an --import of before
            subs.append(Submission(student, lab, str(folder), status="rejected", gradable=False, notes=[why]))
            continue
        # Never read through a linked folder either (a zip unpacked into submitted/ keeps its links): one to
        # source/<lab> graded the course's solution as the trainee's, one to another trainee's folder theirs.
        linked = [p for p in (base / student, folder) if p.is_symlink()]
        if linked:
            subs.append(Submission(student, lab, str(folder), status="rejected", gradable=False, notes=[
                f"submitted/{student}{'' if linked[0] == base / student else '/' + lab} is a link, not a folder of "
                "hand-ins: not graded (copy the hand-in itself there)"]))
            continue
        links = sorted(p for p in folder.iterdir() if p.is_symlink() and p.suffix == ".ipynb")
        for path in links:   # never read through a link: it could point at the course's solutions
            subs.append(Submission(student, lab, str(path), status="rejected", gradable=False,
                                   notes=[f"{path.name} is a link, not a notebook: not graded"]))
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink() and p.suffix == ".ipynb")
        if links and not files:
            continue
        if not files:
            subs.append(Submission(student, lab, str(folder), status="rejected", gradable=False,
                                   notes=["no notebook in the submission"]))
            continue
        for path in files:
            digest = file_sha256(path)
            sub = Submission(student, lab, str(path), sha256=digest or "")
            if digest is None:  # never read whole: the same name stays rejected until it is replaced
                sub.notes, sub.gradable = [f"{path.name} is over {MAX_NOTEBOOK_BYTES // 1_000_000} MB: clear the "
                                           "outputs (Kernel > Restart and Clear Output), then hand it in again"], False
            elif path.name != notebook_name(lab):
                others = [p.name for p in files if p.name == notebook_name(lab)]
                why = (f"second notebook in the submission: only {lab}.ipynb is graded" if others else
                       f"wrong notebook name {path.name!r} (released as {lab}.ipynb): rename it to grade it")
                if not path.name.isascii():
                    why += " (non-ASCII file name)"
                sub.notes, sub.gradable = [why], False
            else:
                try:
                    sub.notes, sub.gradable, _ = check_notebook(path, lab, release_nb, test_names)
                except (Exception, RecursionError) as exc:  # e.g. JSON nested 100 000 deep: this file
                    # alone is not gradable; the run goes on for everyone else
                    sub.notes, sub.gradable = [f"could not be checked ({type(exc).__name__}: "
                                               f"{str(exc).splitlines()[0][:100] if str(exc) else ''})"], False
                sub.notes += id_notes(student)
            if not sub.gradable:
                sub.status = "rejected"
            subs.append(sub)
    subs += misplaced(base, lab, students)
    # One trainee under two ids that differ only in case, spacing, punctuation or Unicode form.
    by_norm: dict[str, list[Submission]] = {}
    for sub in subs:
        if sub.gradable:
            by_norm.setdefault(_norm(sub.student), []).append(sub)
    for group in by_norm.values():
        ids = sorted({s.student for s in group})
        if len(ids) > 1:
            for sub in group:
                sub.notes.append(f"same trainee as {[i for i in ids if i != sub.student]}? (ids differ only in "
                                 "case, spacing, punctuation ._- or Unicode form): both graded, keep one")
    return subs



def graded_copy(path: Path) -> bytes:
    """The bytes nbgrader grades: the submission, with what nbgrader itself would trip on undone.

    A copied graded or locked cell keeps nbgrader's metadata, and nbgrader 0.9's DeduplicateIds then
    leaves a cell that OverwriteCells cannot read (KeyError 'grade_id'): the copies lose their grading
    metadata here, as DeduplicateIds intends (the first cell with an id is the graded one)."""
    raw = path.read_bytes()
    data = json.loads(raw.decode("utf-8"))
    seen, changed = set(), False
    for cell in data.get("cells", []):
        meta = cell.get("metadata", {})
        gid = meta.get("nbgrader", {}).get("grade_id")
        if gid and gid in seen:
            meta.pop("nbgrader")
            meta.pop("editable", None)
            meta.pop("deletable", None)
            changed = True
        elif gid:
            seen.add(gid)
    return json.dumps(data, ensure_ascii=False).encode("utf-8") if changed else raw

