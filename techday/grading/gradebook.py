"""nbgrader's gradebook: a snapshot for each private course root, the scores read back from it, and the
one short write of a submission's scores into the course gradebook.

A regrade keeps what instructors entered by hand in the formgrader, as nbgrader's own ``SaveAutoGrades``
does (it never writes ``manual_score`` and leaves comments alone): manual scores, manual comments and
extra credit stay. One exception: a manual score given to a cell whose source changed since (the
trainee's answer in a cell graded by hand) is cleared, since it graded an answer that is no longer
there; the status line keeps the old value, and the cell waits for manual grading again. A kept manual
score is marked for review (``needs_manual_grade``, as nbgrader does) when the submission or the
cell's automatic score changed; a regrade of the same notebook with the same result changes nothing.

The course gradebook may be locked by another writer (an instructor grading in the formgrader, at the
same moment): the merge waits and tries again with a growing pause, says so on a status line, and
gives up only after ``wait_s`` (the submission is then ``failed``: nothing was written, nothing lost).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

BUSY_TIMEOUT_S = 2.0     # how long SQLite itself waits for a lock on each try
LOCK_WAIT_S = 300.0      # how long a merge keeps trying
BACKOFF_S = (0.5, 1, 2, 4, 8, 15, 30)


class GradebookLocked(RuntimeError):
    """The course gradebook stayed locked by another program; the message says what to do."""


def _snapshot(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite file that others may be writing."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def _read_scores(db: Path, lab: str, student: str) -> dict:
    """{notebook: {cell: (auto_score, max_score, needs_manual)}} and the submission timestamp."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        sub = gb.find_submission(lab, student)
        ts = sub.timestamp
        for nb in sub.notebooks:
            out[nb.name] = {g.name: (g.auto_score, g.max_score, g.needs_manual_grade) for g in nb.grades}
            out[nb.name]["__comments__"] = {c.name: c.auto_comment for c in nb.comments}
    return {"notebooks": out, "timestamp": ts}


def graded_sources(folder: Path) -> dict[str, dict[str, str]]:
    """{notebook: {grade_id: source}} of the autograded notebooks in ``folder``; {} where there are none."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cells = {}
        for cell in nb.get("cells", []):
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            src = cell.get("source", "")
            cells[gid or f"#{len(cells)}"] = "".join(src) if isinstance(src, list) else src
        out[path.stem] = cells
    return out


def _locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


def merge_scores(main_db: Path, course_id: str, lab: str, student: str, scores: dict,
                 before: dict | None = None, after: dict | None = None, report=None,
                 wait_s: float = LOCK_WAIT_S, busy_timeout_s: float = BUSY_TIMEOUT_S) -> tuple[float, float, list[str]]:
    """Write one submission's autograde results into the course gradebook: (score, maximum, notes).

    ``before`` and ``after``: :func:`graded_sources` of the autograded notebooks that were graded by
    hand (the course root's, before this regrade) and of the new ones. ``report``: where to say that
    the gradebook is locked and the merge waits."""
    deadline = time.monotonic() + wait_s
    for attempt in range(10_000):
        try:
            return _merge(main_db, course_id, lab, student, scores, before or {}, after or {}, busy_timeout_s)
        except Exception as exc:
            if not _locked(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise GradebookLocked(
                    f"the gradebook {main_db} stayed locked by another program (the formgrader?) for "
                    f"{wait_s:.0f} s: {student}'s scores were not written; run again with --retry-failed") from None
            pause = min(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)], left)
            if report:
                report(f"waiting  {student}: the gradebook is locked by another program (an instructor grading "
                       f"in the formgrader?); trying again in {pause:g} s (for up to {left:.0f} s more)")
            time.sleep(pause)
    raise AssertionError("unreachable")


def _merge(main_db: Path, course_id: str, lab: str, student: str, scores: dict, before: dict, after: dict,
           busy_timeout_s: float) -> tuple[float, float, list[str]]:
    import warnings

    from nbgrader.api import Gradebook

    total = maximum = 0.0
    notes: list[str] = []
    url = f"sqlite:///{main_db}?timeout={busy_timeout_s:g}"
    with warnings.catch_warnings(), Gradebook(url, course_id) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes inside nbgrader's own API
        gb.update_or_create_student(student)
        extra = {"timestamp": scores["timestamp"]} if scores["timestamp"] else {}
        sub = gb.update_or_create_submission(lab, student, **extra)
        for nb in sub.notebooks:
            mine = scores["notebooks"].get(nb.name, {})
            comments = mine.get("__comments__", {})
            old_src, new_src = before.get(nb.name), after.get(nb.name)
            changed = old_src is None or new_src is None or old_src != new_src
            for g in nb.grades:
                if g.name in mine:
                    auto, _, _ = mine[g.name]
                    auto_changed = auto != g.auto_score
                    g.auto_score = auto
                    if g.manual_score is None:
                        g.needs_manual_grade = auto is None
                    elif (old_src is not None and new_src is not None
                          and old_src.get(g.name) != new_src.get(g.name)):
                        notes.append(f"manual score {g.manual_score:g} of '{g.name}' cleared: the cell changed "
                                     "since it was graded by hand; grade it again in the formgrader")
                        g.manual_score = None
                        g.needs_manual_grade = True
                    elif changed or auto_changed:
                        notes.append(f"manual score {g.manual_score:g} of '{g.name}' kept (the "
                                     f"{'submission' if changed else 'automatic score'} changed): review it "
                                     "in the formgrader")
                        g.needs_manual_grade = True
            for c in nb.comments:
                if c.name in comments:
                    c.auto_comment = comments[c.name]
        gb.db.commit()
        for nb in sub.notebooks:  # read back: nbgrader's score (a manual score, else the automatic one)
            for g in nb.grades:
                total += g.score or 0
                maximum += g.max_score or 0
    return total, maximum, notes
