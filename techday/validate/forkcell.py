"""Run a range of a notebook's cells, one source replaced, in a fork of the running kernel.

Called from inside an IPython kernel by the wrong-solutions worker (:mod:`techday.validate.variants`):
the kernel has run the lab's right cells up to the wrong solution's cell; :func:`run` forks it, and
the child runs the wrong source and the cells after it up to the last test cell in question, exactly
as a notebook with that wrong solution in place would run them from the top, then writes which test
cells raised and exits. The parent (the kernel) waits, and goes on from the untouched state with the
right cells. So each wrong solution runs once, from the very state the right cells left, and no
leftover of another wrong solution can reach it.

Standard library only: it is imported into a lab's kernel.

The child never speaks on the kernel's sockets: its output goes to ``/dev/null`` and display,
tracebacks and the display hook are switched off (``silent`` runs). What it does not cover (the
caller then runs that wrong solution alone, in a kernel of its own): a kernel where CUDA is in use
(a CUDA context does not survive a fork), a platform without ``fork``, a child that dies or runs past
its time.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def _cuda_in_use() -> str:
    """Why this kernel must not fork, or '' (CUDA contexts do not survive a fork)."""
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch, "cuda", None) is not None and torch.cuda.is_initialized():
        return "PyTorch has initialised CUDA in this kernel"
    if "cupy" in sys.modules:
        return "CuPy is loaded in this kernel"
    driver = sys.modules.get("numba.cuda.cudadrv.driver")
    if driver is not None and getattr(getattr(driver, "driver", None), "is_initialized", False):
        return "Numba has initialised the CUDA driver in this kernel"
    return ""


def _quiet(shell) -> None:
    """In the child: no byte may reach the kernel's sockets or the parent's captured output."""
    from IPython.core.displaypub import DisplayPublisher

    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives until _exit)
    shell.display_pub = DisplayPublisher(shell=shell)
    shell._showtraceback = lambda *args, **kwargs: None


def _child(shell, cells: list[dict], start: int, end: int, source: str, result: str) -> None:
    failed = {}
    for i in range(start, end + 1):
        cell = cells[i]
        if not cell["code"]:
            continue
        got = shell.run_cell(source if i == start else cell["source"], store_history=False, silent=True)
        error = got.error_before_exec or got.error_in_exec
        if cell["grade_id"] and error is not None:
            failed[cell["grade_id"]] = f"{type(error).__name__}: {error}"[:300]
    with open(result + ".part", "w", encoding="utf-8") as f:
        json.dump({"failed": failed}, f)
    os.replace(result + ".part", result)


def run(cells_path: str, start: int, end: int, source: str, result: str, timeout: float) -> None:
    """Fork; in the child run cells ``start..end`` of ``cells_path`` (a JSON list of ``{"code",
    "source", "grade_id"}``) with cell ``start``'s source replaced by ``source``, and write
    ``{"failed": {grade_id: error}}`` to ``result``; or write ``{"error": why}`` when it could not."""
    def give_up(why: str) -> None:
        with open(result, "w", encoding="utf-8") as f:
            json.dump({"error": why}, f)

    if not hasattr(os, "fork"):
        return give_up("this platform cannot fork")
    why = _cuda_in_use()
    if why:
        return give_up(why)
    with open(cells_path, encoding="utf-8") as f:
        cells = json.load(f)
    shell = get_ipython()  # noqa: F821 (a builtin inside IPython)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: a copy of the kernel, never returns
        code = 1
        try:
            os.setpgid(0, 0)  # its own group: a timeout kills what it started too
            _quiet(shell)
            _child(shell, cells, start, end, source, result)
            code = 0
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)  # as the child does: whichever runs first, the group exists before a kill
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    status = None
    while status is None:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = code
        elif time.monotonic() > deadline:
            break
        else:
            time.sleep(0.01)
    try:
        os.killpg(pid, signal.SIGKILL)  # past its time, or grandchildren left behind
    except (ProcessLookupError, PermissionError):
        pass
    if status is None:
        os.waitpid(pid, 0)
        return give_up(f"no end within {timeout:.0f} s")
    if not os.path.exists(result):
        return give_up(f"the forked kernel ended without a result (wait status {status})")
    return None
