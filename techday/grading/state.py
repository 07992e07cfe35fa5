"""``build/grading/<lab>/state.json``: submission checksum -> status, so a run is resumable and grades
nothing twice. Replaced atomically; a file that cannot be read is kept aside, never overwritten."""

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
        entry = self.data["submissions"].get(sub.key)
        if entry and entry.get("status") in FINAL and not (retry_failed and entry["status"] == "failed"):
            return entry
        return None

    def record(self, sub: Submission) -> None:
        with self.lock:
            entry = asdict(sub)
            entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.data["submissions"][sub.key] = entry
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)

