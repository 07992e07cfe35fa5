"""Child processes: started one way, stopped with everything they started.

:func:`run` is the one way the package runs a helper process with a time limit (nbgrader, the
wrong-solution runs, the kernel recorder and compiler, torchrun): the child leads its own session, and
on a timeout or Ctrl-C its whole tree is killed, Jupyter kernels included (they run in sessions of
their own, which ``subprocess.run``'s timeout never reaches). :func:`child_env` builds the environment
of a child that runs lab code, once. :func:`kill_tree` also serves the lab runner's workers, the
grader's sandboxes and nbgrader workers; :func:`tree_memory` reads what a process and everything it
started hold (the grader's limit on a sandbox, the lab runner's peak per lab).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def child_env(tier: str | None = None, scale: str | None = None, base: dict | None = None,
              **extra: str) -> dict:
    """The environment of a child that runs lab or package code: ``base`` (default: this process's),
    this checkout's ``techday`` importable first, plots off-screen, output unbuffered; with ``tier`` and
    ``scale``, the lab's settings, and the CUDA simulator on for the CPU tier (off otherwise, so a GPU
    child never inherits it). ``extra`` last."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    if tier is not None:
        env["TECHDAY_TIER"] = tier
        if tier == "cpu":
            env["NUMBA_ENABLE_CUDASIM"] = "1"
        else:
            env.pop("NUMBA_ENABLE_CUDASIM", None)
    if scale is not None:
        env["TECHDAY_SCALE"] = scale
    env.update(extra)
    return env


def run(cmd: list[str], timeout: float | None = None, *, env: dict | None = None, cwd=None,
        check_output: bool = True) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, timeout=...)``, except that on a timeout
    or Ctrl-C the child and everything it started are killed before ``TimeoutExpired`` (with the output
    so far) or ``KeyboardInterrupt`` is raised. ``check_output=False`` sends the output to this
    process's own (no capture)."""
    pipe = subprocess.PIPE if check_output else None
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=pipe, stderr=pipe, text=True, start_new_session=True)
    try:
        out, errs = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid, grace_s=2, exited=lambda: proc.poll() is not None)
        try:
            out, errs = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a process that left the tree still holds the pipes
            out = errs = None
        raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=errs) from None
    except BaseException:
        kill_tree(proc.pid)
        proc.wait()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, errs)


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


def _kb(text: str, *keys: str) -> int:
    total = 0
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in keys:
            total += int(value.split()[0])
    return total


def tree_memory(pid: int, exact: bool = False, below: list[int] | None = None) -> int:
    """Bytes held by ``pid`` and every process below it: each one's resident private and shared-memory pages,
    swap and page tables (``/proc/PID/status``: ``RssAnon``, ``RssShmem``, ``VmSwap``, ``VmPTE``; a few
    milliseconds for a room's
    processes, and every process shows them, a non-dumpable one too). That counts a page a fork shares in
    every process that shares it; ``exact`` reads each one's proportional share instead (``smaps_rollup``:
    ``Pss_Anon``, ``Pss_Shmem``, ``SwapPss``; about 80 ms for a process with PyTorch loaded) where the caller
    may read it, ``status`` elsewhere. A process whose first thread has exited (``pthread_exit`` in its main
    thread: a zombie leader whose other threads run on) shows no memory in its own files; a live thread's are
    read (before, 200 MB held that way read as 0). Files in a tmpfs that no process maps are the disk limit's, and the
    pages of files and libraries are the page cache's (the host can drop them). ``below``: the processes below
    ``pid`` where the caller has just listed them (:func:`descendants`)."""
    total = 0
    for p in [pid, *(descendants(pid) if below is None else below)]:
        try:
            where = Path(f"/proc/{p}")
            status = (where / "status").read_text()
            if "RssAnon" not in status:  # its first thread has exited: a live thread of it shows the memory
                for tid in os.listdir(where / "task"):
                    thread = (where / "task" / tid / "status").read_text()
                    if "RssAnon" in thread:
                        where, status = where / "task" / tid, thread
                        break
            kb = None
            if exact:
                try:
                    rollup = (where / "smaps_rollup").read_text()
                    kb = _kb(rollup, "Pss_Anon", "Pss_Shmem", "SwapPss") if "Pss_Anon" in rollup else None
                except OSError:
                    pass
            if kb is None:
                kb = _kb(status, "RssAnon", "RssShmem", "VmSwap")
            # Its page tables, held with no page of its own: 8 MB for 4 GB of address space touched a byte every
            # 2 MB (techday.grading.executor, MEMORY_CHECK_S).
            kb += _kb(status, "VmPTE")
        except (OSError, ValueError, IndexError):
            continue  # gone since the list was read
        total += kb * 1024
    return total


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
