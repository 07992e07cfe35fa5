"""The worker pool: N long-lived nbgrader processes (:mod:`techday.grading.worker`) for N grading
threads. No trainee code runs in them; each submission still gets its own sandbox and kernel."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from ..proctree import kill_tree


def default_workers(tier: str, cpus: int | None = None) -> int:
    """One worker per CPU core (a worker is mostly one busy kernel); on the GPU tier at most 4, since
    they share the GPU's memory: raise it with --workers where the lab is small."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(cpus, 4) if tier == "gpu" else cpus)


class NbgraderWorker:
    """One long-lived ``python -m techday.grading.worker``: nbgrader's Autograde, started once and
    reused for many submissions (each still gets its own sandbox, executor and kernel).

    A worker that dies or does not answer in time is killed, that submission is ``failed`` (and
    ``--retry-failed`` tries it again), and the next submission gets a new worker. Every
    ``max_jobs`` submissions the worker is replaced, so nothing accumulates in it."""

    def __init__(self, env: dict, log: Path, max_jobs: int = 100, argv: list[str] | None = None):
        self.env, self.log, self.max_jobs = env, log, max_jobs
        self.argv = argv or [sys.executable, "-m", "techday.grading.worker"]
        self.proc: subprocess.Popen | None = None
        self.jobs = 0
        self.lines: queue.Queue = queue.Queue()

    def _start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        err = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, env=self.env, start_new_session=True)
        err.close()
        self.jobs = 0
        self.lines = lines = queue.Queue()
        out = self.proc.stdout

        def read():
            with out:
                for raw in out:
                    lines.put(raw)
            lines.put(None)

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def _answer(self, timeout: float) -> dict:
        try:
            raw = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.close(kill=True)
            raise TimeoutError(f"no answer in {timeout:.0f} s") from None
        if raw is None:
            code = self.proc.wait() if self.proc else None
            self.close()
            raise RuntimeError(f"the nbgrader worker ended (exit {code}); see {self.log}")
        return json.loads(raw)

    def _job(self, job: dict, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None or self.jobs >= self.max_jobs:
            self.close()
            self._start()
            self._answer(120)  # {"ready": true}: imports done
        self.jobs += 1
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise RuntimeError(f"the nbgrader worker is gone ({exc}); see {self.log}") from None
        return self._answer(timeout)

    def autograde(self, root: Path, lab: str, student: str, timeout: float) -> dict:
        return self._job({"root": str(root), "lab": lab, "student": student}, timeout)

    def command(self, cwd: Path, args: list[str], env: dict | None = None,
                timeout: float | None = None) -> subprocess.CompletedProcess:
        """``nbgrader ARGS`` in ``cwd``, run by this worker (:func:`techday.grading.worker.command`),
        as a completed process: its exit status, and nbgrader's log as its output. Raises
        ``subprocess.TimeoutExpired`` (the worker killed) when it does not end in ``timeout``
        seconds, ``RuntimeError`` when the worker ends."""
        argv = ["nbgrader", *map(str, args)]
        try:
            got = self._job({"cwd": str(cwd), "argv": argv[1:], "env": env or {}}, timeout or 24 * 3600)
        except TimeoutError:
            raise subprocess.TimeoutExpired(argv, timeout) from None
        if "returncode" not in got:  # the worker could not read the job
            return subprocess.CompletedProcess(argv, 1, "", got.get("error", "") or "no answer")
        return subprocess.CompletedProcess(argv, int(got["returncode"]), got.get("output", ""), "")

    def close(self, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # a worker that reads to the end of its input exits by itself
        except OSError:
            kill = True
        if not kill:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill = True
        if kill:
            kill_tree(proc.pid)
            proc.wait()
        self.reader.join(5)


class WorkerPool:
    """N nbgrader workers for N grading threads: a thread takes one, grades, gives it back."""

    def __init__(self, n: int, env: dict, logs: Path):
        self.all = [NbgraderWorker(env, logs / f"nbgrader-worker-{i}.log") for i in range(n)]
        self.free: queue.Queue = queue.Queue()
        for w in self.all:
            self.free.put(w)

    def autograde(self, root: Path, lab: str, student: str, timeout: float) -> dict:
        worker = self.free.get()
        try:
            return worker.autograde(root, lab, student, timeout)
        finally:
            self.free.put(worker)

    def command(self, cwd: Path, args: list[str], env: dict | None = None,
                timeout: float | None = None) -> subprocess.CompletedProcess:
        worker = self.free.get()
        try:
            return worker.command(cwd, args, env, timeout)
        finally:
            self.free.put(worker)

    def close(self) -> None:
        for w in self.all:
            w.close()

    def kill(self) -> None:
        """Stop every worker now, with the sandboxes they are running."""
        for w in self.all:
            w.close(kill=True)


def _log_error(result: dict) -> str:
    """The lines of nbgrader's captured log (or traceback) worth showing a person."""
    from ..course.build import error_lines

    return error_lines(result.get("log", "") + "\n" + result.get("error", "")) or "no log"

