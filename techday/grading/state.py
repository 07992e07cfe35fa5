"""``build/grading/<lab>/state.json``: submission checksum -> status, so a run is resumable and grades
nothing twice. Replaced atomically; a file that cannot be read is kept aside, never overwritten.

A ``rejected`` entry never stands in the way of a file that is gradable now: nothing ran for it, and
the checks that rejected it run again on every run (a notebook renamed as its status line said is
another entry anyway, see ``Submission.key``). Entries of files no longer in ``submitted/`` (renamed,
replaced by a new hand-in) move to ``superseded``, kept but no longer listed as the trainee's."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

from .checks import Submission

STATE_SCHEMA = "techday.grading/1"
FINAL = ("graded", "flagged", "failed", "rejected")


class State:
    def __init__(self, path: Path, lab: str):
        self.path = path
        self.lock = threading.Lock()
        self.data = {"schema": STATE_SCHEMA, "lab": lab, "submissions": {}}
        self.problem = ""
        if path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if not (isinstance(loaded, dict) and loaded.get("schema") == STATE_SCHEMA
                        and isinstance(loaded.get("submissions"), dict)):
                    raise ValueError(f"not a {STATE_SCHEMA} file")
                self.data = loaded
            except (ValueError, UnicodeDecodeError) as exc:
                # Never overwrite what we cannot read: keep it beside, start over (grading again
                # loses nothing: the gradebook is updated, not appended to).
                kept = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
                os.replace(path, kept)
                self.problem = (f"{path} was not readable ({str(exc)[:120]}); kept as {kept.name}: "
                                "every submission is graded again")

    def done(self, sub: Submission, retry_failed: bool = False) -> dict | None:
        """The recorded entry that stands for ``sub`` (not to be graded again), or None."""
        entry = self.data["submissions"].get(sub.key)
        if not entry or entry.get("status") not in FINAL:
            return None
        if entry["status"] == "failed" and retry_failed:
            return None
        if (entry["status"] == "rejected") != (not sub.gradable):  # the checks decide again
            return None
        return entry

    def retire(self, current: set[str]) -> list[str]:
        """Move the entries of files that are gone to ``superseded``; their keys."""
        with self.lock:
            gone = [key for key in self.data["submissions"] if key not in current]
            if gone:
                old = self.data.setdefault("superseded", {})
                for key in gone:
                    old[key] = self.data["submissions"].pop(key)
                self._write()
            return gone

    def record(self, sub: Submission) -> None:
        with self.lock:
            entry = asdict(sub)
            entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.data["submissions"][sub.key] = entry
            self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

