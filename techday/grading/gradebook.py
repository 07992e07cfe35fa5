"""nbgrader's gradebook: a snapshot for each private course root, the scores read back from it, and the
one short write of a submission's scores into the course gradebook."""

from __future__ import annotations

import sqlite3
from pathlib import Path


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


def merge_scores(main_db: Path, course_id: str, lab: str, student: str, scores: dict) -> tuple[float, float]:
    """Write one submission's autograde results into the course gradebook."""
    import warnings

    from nbgrader.api import Gradebook

    total = maximum = 0.0
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{main_db}", course_id) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes inside nbgrader's own API
        gb.update_or_create_student(student)
        extra = {"timestamp": scores["timestamp"]} if scores["timestamp"] else {}
        sub = gb.update_or_create_submission(lab, student, **extra)
        for nb in sub.notebooks:
            mine = scores["notebooks"].get(nb.name, {})
            comments = mine.get("__comments__", {})
            for g in nb.grades:
                if g.name in mine:
                    g.auto_score, _, g.needs_manual_grade = mine[g.name]
                    g.manual_score = None
                total += g.auto_score or 0
                maximum += g.max_score or 0
            for c in nb.comments:
                if c.name in comments:
                    c.auto_comment = comments[c.name]
        gb.db.commit()
    return total, maximum

