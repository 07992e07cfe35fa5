"""A person's decision on a held certificate, one trainee and one lab at a time (``techday grade review``).

A pass that rests on a flagged, failed, ungraded or replaced notebook holds the trainee's certificate
(:func:`techday.grading.results.pass_fail`). ``--issue-held`` issues every held certificate at once; in a
room of 300 with twelve held, two of them copied, an instructor needs to clear ten and refuse two. A
decision is kept in ``decisions.json`` beside ``certificates.json``, appended (the latest for a trainee
and a lab wins, the earlier ones stay as the record of who decided what), and says:

- ``clear``: this notebook (its SHA-256) with these holds is fine. It counts only while the trainee's
  current notebook of the lab is the same file and its holds are among those the person saw: a notebook
  handed in or graded again since, or a new flag (another trainee's copy found later), holds the
  certificate again, and ``results`` says the decision lapsed. A decision never clears what nobody read.
- ``refuse``: no certificate of a track with this lab, whatever the notebook and ``--issue-held``, until
  a later ``clear``. A refusal after a certificate was issued withdraws it (the register's rule for a
  certificate no longer issued), so ``verify`` then refuses its code.

Who decided (``--by``) and why (``--reason``) are required and shown in ``passfail.csv``.

What it does not cover: it records a decision, it does not prove who made it (anyone who can write the
grading folder can write this file, as they can the gradebook); a file that cannot be read stops
``results`` rather than being taken as empty (an ignored refusal would be issued by ``--issue-held``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import atomicfile

FILE = "decisions.json"
VERDICTS = ("clear", "refuse")
MAX_BYTES = 16 << 20  # 16 MiB: about 40,000 decisions, a hundred times a room's
MAX_TEXT = 2000  # characters in a reason, a name, a hold line


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """One decision-maker at a time: two instructors recording at the same moment each read the file,
    appended, and wrote it whole; the second write lost the first's decisions (a lost refusal is then
    issued by ``--issue-held``). Held for the read, the record and the write; freed when the process ends."""
    Path(out).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(out) / f".{FILE}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class DecisionsError(ValueError):
    """``decisions.json`` cannot be read or a decision cannot be recorded; the message says which and why."""


@dataclass(frozen=True)
class Decision:
    student: str
    lab: str
    verdict: str  # one of VERDICTS
    notebook: str  # SHA-256 of the trainee's notebook when decided; "" where there was none
    holds: tuple[str, ...]  # the hold lines the person saw, each as :func:`hold_key` records it
    by: str
    reason: str
    at: str  # UTC, ISO 8601

    def line(self) -> str:
        """How ``passfail.csv`` and ``techday grade review`` show it."""
        word = "cleared" if self.verdict == "clear" else "refused"
        return f"{self.lab}: {word} by {self.by} ({self.at}): {self.reason}"


def hold_key(line: str) -> str:
    """A hold line as a decision records it: as written where it is one line of printable text of at most
    :data:`MAX_TEXT` characters, else ``sha256:`` and its SHA-256. A hold line is the kit's text around a
    trainee's (a ``grade_id``, a file name, a review note): a line break or a control character in it, or a
    long one, made every decision on that lab impossible to record. The digest binds the decision to that
    very line (a line of the kit never starts with ``sha256:``: it starts with the lab's id)."""
    if line.isprintable() and 0 < len(line) <= MAX_TEXT and line.strip():
        return line
    return "sha256:" + hashlib.sha256(line.encode("utf-8", "surrogatepass")).hexdigest()


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or not value.isprintable():
        raise DecisionsError(f"{what} must be one line of printable text, 1 to {MAX_TEXT} characters")
    return value


def _id(value, what: str) -> str:
    """A trainee id or a lab as the gradebook holds it: any text of 1 to :data:`MAX_TEXT` characters with no
    line break. Not printable only: an id may hold a format character (a zero-width space from a pasted
    file name; the checks flag it), and a decision on that trainee could not be recorded."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or "\n" in value or "\r" in value:
        raise DecisionsError(f"{what} must be one line of text, 1 to {MAX_TEXT} characters")
    return value


def _decision(entry) -> Decision:
    if not isinstance(entry, dict):
        raise DecisionsError("a decision is not an object")
    holds = entry.get("holds")
    if not isinstance(holds, list):
        raise DecisionsError("a decision's holds are not a list")
    verdict = entry.get("verdict")
    if verdict not in VERDICTS:
        raise DecisionsError(f"verdict {str(verdict)[:20]!r} is not one of {', '.join(VERDICTS)}")
    notebook = entry.get("notebook")
    if not isinstance(notebook, str) or not (notebook == "" or (len(notebook) == 64 and
                                                                 all(c in "0123456789abcdef" for c in notebook))):
        raise DecisionsError("a decision's notebook is not a SHA-256")
    return Decision(student=_id(entry.get("student"), "student"), lab=_id(entry.get("lab"), "lab"),
                    verdict=verdict, notebook=notebook,
                    holds=tuple(_text(h, "a hold line") for h in holds),
                    by=_text(entry.get("by"), "by"), reason=_text(entry.get("reason"), "reason"),
                    at=_text(entry.get("at"), "at"))


class Decisions:
    """``decisions.json`` under a results folder: every decision made, in the order made."""

    def __init__(self, path: Path, entries: list[Decision] | None = None):
        self.path = path
        self.entries = list(entries or [])

    @classmethod
    def load(cls, out: Path) -> Decisions:
        """The decisions in ``out`` (none if the file is not there). One that cannot be read raises
        :class:`DecisionsError` naming it: nothing may be certified as if it held no refusal."""
        path = Path(out) / FILE
        try:
            if path.stat().st_size > MAX_BYTES:
                raise DecisionsError(f"over {MAX_BYTES >> 20} MiB")
            data = json.loads(path.read_bytes())
            if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("decisions"), list):
                raise DecisionsError("not a decisions file of `techday grade review`")
            return cls(path, [_decision(e) for e in data["decisions"]])
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError, RecursionError) as exc:  # DecisionsError, JSONDecodeError, UnicodeDecodeError
            raise DecisionsError(f"{path} cannot be read ({str(exc)[:200]}): restore it from a backup, or move it "
                                 "aside and decide again with `techday grade review`; nothing was written") from None

    def latest(self, student: str, lab: str) -> Decision | None:
        for d in reversed(self.entries):
            if d.student == student and d.lab == lab:
                return d
        return None

    def standing(self, student: str, lab: str, notebook: str, holds: list[str]) -> tuple[str, Decision | None]:
        """``("refused" | "cleared" | "lapsed" | "none", decision)`` for the trainee's lab as it is now:
        a clearance stands only for the same notebook and holds the person saw (module docstring)."""
        d = self.latest(student, lab)
        if d is None:
            return "none", None
        if d.verdict == "refuse":
            return "refused", d
        if d.notebook == notebook and {hold_key(h) for h in holds} <= set(d.holds):
            return "cleared", d
        return "lapsed", d

    def record(self, student: str, lab: str, verdict: str, notebook: str, holds: list[str], by: str,
               reason: str) -> Decision:
        """Append one decision (checked as :meth:`load` checks a read one) and write the file whole."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        d = _decision({"student": student, "lab": lab, "verdict": verdict, "notebook": notebook,
                       "holds": [hold_key(h) for h in holds], "by": by, "reason": reason, "at": when})
        self.entries.append(d)
        return d

    def save(self) -> None:
        data = {"version": 1, "decisions": [{**asdict(d), "holds": list(d.holds)} for d in self.entries]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomicfile.write_text(self.path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
