"""Stopping a process with everything it started (the lab runner's workers, the grader's sandboxes
and nbgrader workers)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable


def descendants(pid: int) -> list[int]:
    """All processes below ``pid``, read from Linux's /proc. Jupyter kernels run in their own
    session, so killing the process group alone would miss them."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _send(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:  # gone already, or not ours
            pass


def kill_tree(pid: int, grace_s: float = 0.0, exited: Callable[[], bool] | None = None) -> None:
    """Kill ``pid``, its descendants and its process group (``pid`` is expected to lead its own
    session). With ``grace_s``, first send SIGTERM and wait up to that long, or until ``exited()``
    says the process is gone, so that it can clean up; then SIGKILL whatever is left."""
    pids = descendants(pid) + [pid]
    if grace_s > 0:
        _send(pids, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and not (exited is not None and exited()):
            time.sleep(0.05)
        pids += [p for p in descendants(pid) if p not in pids]
    _send(pids, signal.SIGKILL)
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
