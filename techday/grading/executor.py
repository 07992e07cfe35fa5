"""The sandboxed executor, seen from nbgrader: :class:`SandboxExecute` takes the place of nbgrader's
``Execute`` in the Autograde pipeline and sends the notebook (test cells restored) over a pipe into
the sandbox (:mod:`techday.grading.sandbox`), where :mod:`techday.grading.sandbox_exec` runs it.

Only outputs, execution counts and the executor's events come back; sources and nbgrader metadata
(what ``SaveAutoGrades`` trusts) stay nbgrader's restored copies, outside the sandbox.

Every course root that grades trainees names it (:mod:`techday.grading.config`): the private roots of
``techday grade autograde`` and the course root of ``techday build``, so that the formgrader and plain
``nbgrader autograde`` run submissions here too, with the lab's limits from the syllabus; without a
working sandbox it refuses to run them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode

from ..i18n import read_released
from ..proctree import descendants, kill_tree, tree_memory
from .outside import lab_checks, outside_scores
from .sockmeter import WATCH_BYTES, SocketMeter, descriptors_held, epoll_watches
from .sandbox import (
    WORK,
    Limits,
    PidsCgroup,
    SandboxUnavailable,
    cgroup_prefix,
    check_sandbox,
    cpu_cgroup_parent,
    cpu_share,
    event_notes,
    memory_limit,
    nobody_sandbox_problem,
    pids_cgroup_parent,
    process_limit,
    rlimits,
    sandbox_command,
    sandbox_env,
    seccomp_filter,
    sizes_tmpfs,
    squeeze_events,
)


def process_limit_events(nb, code_cells: list[int]) -> list[dict]:
    """Cells that could not start a process or a thread: the sandbox's process limit (``fork`` fails
    with EAGAIN, ``threading`` cannot start a thread)."""
    events = []
    for i in code_cells:
        for out in nb.cells[i].outputs:
            if out.get("output_type") != "error":
                continue
            ename, evalue = out.get("ename", ""), str(out.get("evalue", ""))
            if (ename == "BlockingIOError" and "Resource temporarily unavailable" in evalue) or (
                    ename == "RuntimeError" and "can't start new thread" in evalue):
                events.append({"cell": i, "event": "process-limit", "error": f"{ename}: {evalue}"[:120]})
                break
    return events


class SandboxExecute(NbGraderPreprocessor):
    """Runs the notebook in ``techday.grading.sandbox`` instead of in this process's kernel.

    The limits, tier and environment are those of the lab being graded (nbgrader's assignment id),
    from :func:`techday.grading.config.grade_settings`: the course's syllabus under ``course_dir``,
    the tier and the scale. Without a working sandbox it refuses to run the notebook (nbgrader then
    grades nothing) unless ``sandbox`` is False.

    Only outputs and execution counts come back from the sandbox; sources and nbgrader metadata
    (what SaveAutoGrades trusts) stay the ones nbgrader restored outside it. A test cell the lab declares
    a check from outside the kernel for (:mod:`techday.grading.outside`) is then scored on the file it
    wrote too: a failure there is an ``OutsideCheck`` error in the cell (0 points)."""

    course_dir = Unicode("", help="the folder with course/syllabus.toml (default: techday's own)").tag(config=True)
    tier = Unicode("auto", help="cpu, gpu, or auto ($TECHDAY_TIER, else the GPU when there is one)").tag(config=True)
    scale = Unicode("auto", help="ci, full, or auto ($TECHDAY_SCALE, else full on a GPU, ci elsewhere)").tag(config=True)
    cell_timeout = Integer(0, help="seconds per cell; 0: the lab's cell_timeout_s in the syllabus").tag(config=True)
    sandbox = Bool(True, help="False: no isolation (trusted work only)").tag(config=True)
    report_path = Unicode("", help="where to write what happened (JSON)").tag(config=True)
    referee = Bool(True, help="run test and locked cells through the in-kernel referee "
                              "(techday.grading.referee); False only for measurements").tag(config=True)
    draw = Unicode("", help="the grading draw of the hidden tests (techday/draw.py): '' draws a fresh seed for "
                            "every hand-in; an integer repeats a recorded grading").tag(config=True)

    def settings(self, lab: str):
        from ..course.syllabus import load_course
        from .config import grade_settings

        course = load_course(Path(self.course_dir) if self.course_dir else None)
        return grade_settings(course, lab, self.tier, self.scale, self.sandbox, self.cell_timeout or None)

    def preprocess(self, nb, resources):
        import nbformat

        t0 = time.monotonic()
        lab = resources.get("nbgrader", {}).get("assignment", "")
        settings = self.settings(lab)
        limits = settings.limits
        if settings.sandbox:
            try:
                check_sandbox()
            except SandboxUnavailable as exc:
                msg = f"refusing to run untrusted submissions: {exc}"
                self.log.error(msg)
                raise SandboxUnavailable(msg) from None
        self.log.info("%s, tier %s, scale %s: %s s per cell, %s s per notebook; memory: %s; processes: %s; cpu: %s",
                      "sandboxed" if settings.sandbox else "NOT sandboxed", settings.tier, settings.scale,
                      limits.cell_timeout_s, limits.notebook_timeout_s,
                      memory_limit(limits, settings.gpu, settings.sandbox),
                      process_limit(limits, settings.gpu, settings.sandbox).text,
                      cpu_share(limits, settings.gpu, settings.sandbox))
        report = {"sandbox": settings.sandbox, "events": [], "problem": ""}
        work = Path(resources.get("metadata", {}).get("path") or ".").resolve() / ".sandbox"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        # The lab's messages in the room's language, released beside the notebook and handed in with
        # it (techday.i18n): msg() in the graded notebook finds them in its working directory. Read
        # as a stranger's data and written afresh; a link or an oversized file is ignored.
        for released in sorted(work.parent.glob("techday-messages.*.json"))[:4]:
            messages = read_released(released)
            if messages is not None:
                (work / released.name).write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")
        job = {"notebook": nb, "course_cells": course_cells(nb, resources), "referee": self.referee,
               "draw": grading_draw(self.draw)}
        checks = lab_checks(lab)  # test cells the grader also scores from outside the kernel (outside.py)
        if any(c.artifact for c in checks.values()):
            job["collect"] = sorted({c.artifact for c in checks.values() if c.artifact})
        result = run_notebook(json.dumps(job), work, limits, settings.env, settings.sandbox, settings.gpu, report)
        shutil.rmtree(work, ignore_errors=True)
        code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        if result and result.get("grader_error"):
            report["grader_error"] = report["problem"] = result.get("problem", "")
            result = None
        cells = (result or {}).get("cells")
        if cells is not None and len(cells) == len(nb.cells) and all(
                (cells[i] is not None) for i in code_cells):
            for i in code_cells:
                nb.cells[i].outputs = [nbformat.from_dict(o) for o in cells[i].get("outputs", [])]
                nb.cells[i].execution_count = cells[i].get("execution_count")
            report["events"] = result.get("events", []) + process_limit_events(nb, code_cells)
            report["problem"] = result.get("problem", "")
            report["draw"] = job["draw"] if self.referee else None  # the grader's own: what it handed in
            if result.get("language_info"):
                nb.metadata["language_info"] = result["language_info"]
            if checks:
                report["outside_checks"] = outside_scores(nb, checks, result.get("artifacts"), settings.sandbox, report,
                                                          course=job["course_cells"])
        else:
            why = report.get("problem_shown") or report["problem"] or "the sandbox returned no result"
            for i in code_cells:
                nb.cells[i].outputs = [nbformat.from_dict({"output_type": "error", "ename": "NotGraded",
                                                           "evalue": why, "traceback": [f"NotGraded: {why}"]})]
        report["seconds"] = round(time.monotonic() - t0, 2)
        for note in event_notes(report) + ([report["problem"]] if report["problem"] else []):
            self.log.warning("%s: %s", resources.get("nbgrader", {}).get("student", "?"), note)
        if self.report_path:
            Path(self.report_path).write_text(json.dumps(report), encoding="utf-8")
        return nb, resources


def grading_draw(given: str = "") -> int:
    """The seed of a hand-in's drawn hidden inputs (techday/draw.py): ``given`` (a regrade that repeats a
    recorded one), else drawn here, outside the sandbox, where no trainee code runs."""
    import secrets

    from ..draw import SEED_BITS, parse

    return parse(given) if str(given).strip() else secrets.randbits(SEED_BITS)


def course_cells(nb, resources: dict) -> list[dict]:
    """The notebook's test and locked cells as nbgrader's gradebook knows them (the trusted sources,
    hidden tests included): only these are run by the referee. A cell that merely carries nbgrader
    metadata (a trainee can write any metadata) but is not in the gradebook is the trainee's."""
    from nbgrader.api import Gradebook, MissingEntry

    info = resources.get("nbgrader", {})
    if not info.get("db_url"):
        return []
    trusted = {}
    with Gradebook(info["db_url"]) as gb:
        try:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
        except MissingEntry:
            return []
        graded = {c.name for c in notebook.grade_cells}
        solutions = {c.name for c in notebook.solution_cells}
        for c in notebook.source_cells:
            if c.cell_type == "code" and c.locked and c.name not in solutions:
                trusted[c.name] = ("test" if c.name in graded else "locked", c.source)
    out, seen = [], set()
    for index, cell in enumerate(nb.cells):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        # As restored, or as nbgrader adds a deleted one back: its source after a comment line (run as the
        # notebook's own code, a deleted test was graded on the kernel's word). The referee runs its own copy.
        if cell.cell_type == "code" and gid in trusted and gid not in seen and cell.source.endswith(trusted[gid][1]):
            seen.add(gid)
            out.append({"index": index, "key": gid, "kind": trusted[gid][0], "source": trusted[gid][1]})
    return out


MALLOC_ARENAS = 4

# The working folder is on the grading host's disk, beside the gradebook and every other submission's:
# files of up to RLIMIT_FSIZE each, as many as the notebook's time allows (77 GB free here filled in about
# a minute at the 1 GB/s a sandbox writes), and a full disk fails every other trainee's grading. Every
# DISK_CHECK_S the free space is read (statvfs); below DISK_FLOOR, a notebook whose working folder holds
# more than DISK_OWN is stopped (an honest one writes megabytes).
DISK_CHECK_S = 1.0
DISK_FLOOR = 2 * 2**30
DISK_OWN = 2**30


def disk_hog(work: Path, floor: int | None = None, own: int | None = None) -> int | None:
    """The bytes the notebook wrote into ``work`` where the disk under it has less than ``floor`` free and
    ``work`` holds more than ``own``; None otherwise (the folder is measured only when the disk is low)."""
    floor = DISK_FLOOR if floor is None else floor
    own = DISK_OWN if own is None else own
    try:
        if shutil.disk_usage(work).free >= floor:
            return None
    except OSError:
        return None
    total = 0
    for folder, _, files in os.walk(work):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                pass
    return total if total > own else None


# A tmpfs's size counts the pages of its files, not its inodes: each file, folder or link holds about 1 kB of the
# host's memory besides (an inode and its name), and bwrap cannot bound their number (tmpfs's nr_inodes, by
# default one for every two pages of the host's memory: 3 million here). A cell made 300,000 empty files in /tmp
# in 14 s, 270 MB of the host's memory under a 32 MB disk limit, and had room for ten times more in each of the
# three. Every DISK_CHECK_S the executor reads, from outside the sandbox, how many inodes each of its tmpfs holds
# (statvfs through /proc/PID/root); over ``max_files`` in one, the notebook is stopped.
SANDBOX_FOLDERS = (WORK, "/tmp", "/dev/shm")


def in_other_namespace(pids: list[int], kind: str):
    """The processes among ``pids`` in a namespace of ``kind`` (``mnt``, ``net``) other than this process's: the
    sandbox's, once bwrap has made its own (a process gone meanwhile is skipped)."""
    try:
        own = os.readlink(f"/proc/self/ns/{kind}")
    except OSError:
        return
    for p in pids:
        try:
            if os.readlink(f"/proc/{p}/ns/{kind}") != own:
                yield p
        except OSError:
            continue


def sandbox_files(pid: int, below: list[int] | None = None) -> int:
    """The most inodes in use in one of the tmpfs of the sandbox below ``pid`` (0 until it has made its own mount
    namespace): read from outside it, through a process of it that is in that namespace. ``below``: the processes
    below ``pid`` where the caller has just listed them."""
    for p in in_other_namespace(descendants(pid) if below is None else below, "mnt"):
        try:
            used = [os.statvfs(f"/proc/{p}/root{folder}") for folder in SANDBOX_FOLDERS]
        except OSError:
            continue  # gone, or not this sandbox's mounts yet
        return max(st.f_files - st.f_ffree for st in used)
    return 0


# The memory of a submission's processes together, read from outside the sandbox every MEMORY_CHECK_S on the
# CPU tier: RLIMIT_AS bounds each process alone, so 8 child processes of 160 MB each held 1.3 GB under a
# 300 MB limit. Over ``memory_mb`` the notebook is stopped.
#
# Page tables: a process's page tables are the kernel's memory, in none of its pages: reading one byte every 2 MB of
# an anonymous mapping maps only the shared zero page (no resident page of its own) but makes a 4 kB page table for
# each 2 MB, 8 MB for the 4 GB RLIMIT_AS allows, times max_processes (16 GB at the defaults; without RLIMIT_AS, on
# the GPU tier, far more). Each process's ``VmPTE`` is counted too.
MEMORY_CHECK_S = 0.5
#
# Sockets: their buffers are the kernel's memory, in no process's pages. 2,879 Unix socket pairs, each filled to its
# default send buffer, held 640 MB under a 300 MB limit; a send buffer may be raised to 8 MB (twice wmem_max on the
# machine measured). What every socket of the sandbox's network namespace holds, open or in flight, is read by a
# meter of the grader's joined to that namespace (techday.grading.sockmeter) and counted with the processes' pages;
# so are the pipes open in its processes, each at its capacity, and the kernel's objects behind every descriptor
# (techday.grading.sockmeter.descriptors_held).


METER_STARTS = 3  # new meters for one notebook after the first stopped


def sandbox_netns_pid(below: list[int]) -> int | None:
    """A process among ``below`` that is in a network namespace other than this process's: the sandbox's."""
    return next(in_other_namespace(below, "net"), None)


def run_notebook(payload: str, work: Path, limits: Limits, env: dict, sandbox: bool, gpu: bool,
                 report: dict) -> dict | None:
    """Execute ``payload`` (notebook JSON) in the sandbox; the executor's result, or None (and
    ``report['problem']`` says why)."""
    r, w = os.pipe()
    executor = [sys.executable, "-m", "techday.grading.sandbox_exec", "--result-fd", str(w),
                "--cell-timeout", str(limits.cell_timeout_s), "--output-bytes", str(limits.output_bytes)]
    senv = sandbox_env(env)
    if not gpu:
        # RLIMIT_AS counts address space, and glibc reserves 64 MB of it for each malloc arena, up to 8 per
        # core: 128 arenas (8 GB) on a 16-core host once Numba's CUDA simulator starts a block's 1024
        # threads, and the kernel dies of MemoryError far below the memory it uses. A few arenas suffice.
        senv["MALLOC_ARENA_MAX"] = str(MALLOC_ARENAS)
    cgroup = user = scratch = host = None
    extra_fds: tuple[int, ...] = ()
    if sandbox:
        bwrap = check_sandbox()  # first: a machine without a sandbox raises here, with nothing made or open
        how = process_limit(limits, gpu).how
        if how in ("rlimit", "nobody"):  # set by the executor itself, inside the sandbox's user namespace
            executor += ["--max-processes", str(limits.max_processes)]
        bound = work
        # Root starts the sandbox as an unprivileged host uid of its own (hostuids), in a folder that uid owns: where
        # that is the process limit, and also under a pids cgroup of its own where such a uid can run it. A sandbox
        # run as root is the host's root to every check by uid alone: /proc/sys's files (see sandbox_command),
        # root's 0600 files in the folders bound into it, and the kernel's per-user counts it shares with every root
        # process; one run as a uid another sandbox also has shares those counts with it (pipe buffers past
        # fs.pipe-user-pages-soft, epoll watches, descriptors in flight: tests/grading/test_sandbox_uids.py).
        if how == "nobody" or (how == "cgroup" and not nobody_sandbox_problem(gpu)):  # as runs_as_own_uid
            from .hostuids import allocate

            try:
                host = allocate()
            except SandboxUnavailable as exc:
                os.close(w)
                os.close(r)
                report["problem"] = f"no host uid for the sandbox: {exc}"
                return None
            user = host.ids
            report["host_uid"] = host.uid  # the outside check's scorer never runs as it (outside.run_scorer)
            bound = scratch = Path(tempfile.mkdtemp(prefix="techday-sandbox-"))
            for released in sorted(work.iterdir()):  # the room's messages, written above: root's, read-only to it
                if released.is_file() and not released.is_symlink():
                    shutil.copyfile(released, scratch / released.name)
                    os.chmod(scratch / released.name, 0o644)
            os.chown(scratch, *user)
        if how == "cgroup":
            try:
                cgroup = PidsCgroup(pids_cgroup_parent(), limits.max_processes, cpu=cpu_cgroup_parent())
            except (OSError, TypeError) as exc:
                os.close(w)
                os.close(r)
                report["problem"] = f"could not make the sandbox's pids cgroup: {exc}"
                _release(host, scratch)
                return None
        # CPU tier: memory no address-space limit counts (memfd, System V segments) is refused by a seccomp
        # filter bwrap reads from this pipe (sandbox.seccomp_filter). The GPU tier's limit is a cgroup's,
        # which counts those pages, and what CUDA's driver calls was never checked against the filter.
        program = None if gpu else seccomp_filter()
        if program is not None:
            filter_fd, fw = os.pipe()
            os.write(fw, program)  # a few hundred bytes: the pipe holds them until bwrap reads
            os.close(fw)
            extra_fds = (filter_fd,)
        argv = sandbox_command(bwrap, bound, senv, gpu, limits.disk_mb,
                               seccomp_fd=extra_fds[0] if extra_fds else None) + executor
        # No RLIMIT_AS with CUDA: a memory limit in a systemd scope where one can be made (untested
        # without a GPU); the process limit in the same scope when that is how this host limits them.
        prefix = cgroup_prefix(limits, memory=gpu, tasks=(how == "scope"))
        argv = prefix + argv
        files = bool(limits.disk_mb) and sizes_tmpfs(bwrap)  # its folders are tmpfs: their inodes are read
        # All the sandbox's processes together, read from outside it (tree_memory): the CPU tier's RLIMIT_AS
        # counts one process alone, and a GPU tier without a scope has no other limit.
        watch = not gpu or not any(p.startswith("MemoryMax=") for p in prefix)
        popen_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        cwd = None
    else:
        argv, watch, files = executor, False, False
        popen_env = {**senv, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                     "HOME": str(work), "MPLCONFIGDIR": str(work / "mpl"), "NUMBA_CACHE_DIR": str(work / "numba"),
                     "IPYTHONDIR": str(work / "ipython"), "JUPYTER_RUNTIME_DIR": str(work / "jupyter")}
        cwd = str(work)
    try:
        return _run(argv, popen_env, cwd, payload, work, limits, gpu, report, r, w, cgroup, user,
                    written=scratch or work, extra_fds=extra_fds, watch=watch,  # written: the sandbox uid's folder
                    files=files)
    finally:
        for fd in extra_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        if cgroup is not None:
            cgroup.remove()
        _release(host, scratch)


def _release(host, scratch: Path | None) -> None:
    """The sandbox's folder removed, then its uid let go (after what is left of its processes is killed)."""
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    if host is not None:
        host.release()


# What the sandbox prints (bwrap's errors, the executor's, the kernel's own stderr) reaches the grader through a
# pipe, and only its first and last LOG_KEEP bytes are written to ``sandbox.log``, beside the submission. Before,
# the file itself was the sandbox's stdout: a cell wrote into it through the kernel's copy of that descriptor,
# on the grading host's disk, outside the sandbox's sized folders and the disk watch, up to RLIMIT_FSIZE
# (256 MB) for every submission, and the file stayed after grading.
LOG_KEEP = 64 * 1024


class LogTail:
    """Drains a pipe, keeping its first and last ``keep`` bytes and counting the rest."""

    def __init__(self, stream, keep: int = LOG_KEEP):
        self.stream, self.keep = stream, keep
        self.head, self.tail, self.dropped = b"", b"", 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        with contextlib.suppress(OSError, ValueError):
            while True:
                b = self.stream.read1(1 << 16)
                if not b:
                    break
                if len(self.head) < self.keep:
                    room = self.keep - len(self.head)
                    self.head, b = self.head + b[:room], b[room:]
                self.tail += b
                if len(self.tail) > self.keep:
                    self.dropped += len(self.tail) - self.keep
                    self.tail = self.tail[-self.keep:]
        with contextlib.suppress(OSError):
            self.stream.close()

    def text(self) -> bytes:
        cut = f"\n[grader: {self.dropped} bytes of the sandbox's output dropped]\n".encode() if self.dropped else b""
        return self.head + cut + self.tail

    def write(self, path: Path, wait: float = 5) -> bytes:
        self.thread.join(wait)
        data = self.text()
        path.write_bytes(data)
        return data


def _run(argv, popen_env, cwd, payload, work, limits, gpu, report, r, w, cgroup, user,
         written: Path | None = None, extra_fds: tuple[int, ...] = (), watch: bool = False,
         files: bool = False) -> dict | None:
    log_path = work.parent / "sandbox.log"
    chunks: list[bytes] = []
    cap = 256 * 1024 * 1024

    def reader():
        total = 0
        with os.fdopen(r, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                total += len(b)
                if total <= cap:
                    chunks.append(b)

    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                pass_fds=(w, *extra_fds), preexec_fn=rlimits(limits, gpu, cgroup, user, argv=argv),
                                start_new_session=True, env=popen_env, cwd=cwd)
    except OSError as exc:
        os.close(w)
        os.close(r)
        report["problem"] = f"could not start the sandbox: {exc}"
        return None
    os.close(w)
    log = LogTail(proc.stdout)
    t = threading.Thread(target=reader, daemon=True)
    t.start()

    def feed():
        try:
            proc.stdin.write(payload.encode())
            proc.stdin.close()
        except OSError:
            pass

    threading.Thread(target=feed, daemon=True).start()
    deadline = time.monotonic() + limits.notebook_timeout_s
    tick, next_disk, peak = (MEMORY_CHECK_S if watch else DISK_CHECK_S), time.monotonic() + DISK_CHECK_S, 0
    meter: SocketMeter | None = None
    restarts = 0
    try:
        while True:
            try:
                proc.wait(timeout=max(0.0, min(tick, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                pass
            below = descendants(proc.pid)  # listed once a tick, for every reading below
            held = in_buffers = 0
            if watch:
                if meter is None and (where := sandbox_netns_pid(below)) is not None:
                    meter = SocketMeter(where)
                    report["socket_meter"] = meter.problem or "reading"
                elif meter is not None and meter.problem and meter.read_once and not report.get("watch_events"):
                    # A meter that read and then stopped (killed, or starved past its answer's time): a new one,
                    # METER_STARTS times at most; then the notebook is flagged, as its sockets go unread.
                    if restarts < METER_STARTS and (where := sandbox_netns_pid(below)) is not None:
                        meter.close()
                        meter, restarts = SocketMeter(where), restarts + 1
                    else:
                        report["watch_events"] = [{"event": "socket-meter", "problem": meter.problem[:200]}]
                if meter is not None and not meter.problem:
                    in_buffers = meter.read() or 0
                    report["socket_meter"] = meter.problem or "reading"
                    report["sockets_peak"] = max(report.get("sockets_peak", 0), meter.sockets)
                held_by = descriptors_held(below, sockets_read=meter is not None and not meter.problem)
                in_buffers += held_by["bytes"]
                report["pipes_peak"] = max(report.get("pipes_peak", 0), held_by["pipes"])
                report["descriptors_peak"] = max(report.get("descriptors_peak", 0), held_by["descriptors"])
                report["socket_peak_mb"] = max(report.get("socket_peak_mb", 0), in_buffers // 2**20)
                held = tree_memory(proc.pid, below=below) + in_buffers
            # epoll watches: the kernel's memory, and a per-user budget the sandbox's host user shares (sockmeter)
            watches = epoll_watches(below, stop_over=limits.max_epoll_watches)
            report["watches_peak"] = max(report.get("watches_peak", 0), watches)
            held += watches * WATCH_BYTES
            many = watches if watches > limits.max_epoll_watches else None
            if held > limits.memory_mb * 2**20:  # pages a fork shares counted once before anything is stopped
                held = tree_memory(proc.pid, exact=True, below=below) + in_buffers + watches * WATCH_BYTES
            peak = max(peak, held)
            report["memory_peak_mb"] = peak // 2**20
            over = held > limits.memory_mb * 2**20
            wrote = inodes = None
            if time.monotonic() >= next_disk:
                next_disk = time.monotonic() + DISK_CHECK_S
                wrote = disk_hog(written or work)
                if files:
                    used = sandbox_files(proc.pid, below)
                    report["files_peak"] = max(report.get("files_peak", 0), used)
                    inodes = used if used > limits.max_files else None
            if wrote is None and inodes is None and many is None and not over and time.monotonic() < deadline:
                continue
            return _stopped(proc, t, log, log_path, report, limits, held, in_buffers, over, inodes, wrote, many)
    finally:
        if meter is not None:
            meter.close()
    kill_tree(proc.pid)
    t.join(30)
    printed = log.write(log_path)
    data = b"".join(chunks)
    if not data:
        tail = printed[-600:].decode("utf-8", "replace").strip()
        code = proc.returncode or 0
        signal_number = -code if code < 0 else code - 128 if 128 < code < 128 + 65 else 0  # bwrap: 128 + the signal
        if signal_number:
            # Nothing of the grader's signals the executor on this path (it stops the whole sandbox, and says so,
            # elsewhere): the notebook's code can (the same user inside the sandbox), or the host's OOM killer.
            report["problem"] = (f"the executor in the sandbox was killed by signal {signal_number} before it sent its "
                                 "result: the notebook's code can signal it (the same user inside the sandbox), as can "
                                 "the host's OOM killer; every test scored 0")
        else:
            report["problem"] = f"the executor ended (exit {proc.returncode}) without a result: {tail[-300:]}"
        return None
    try:
        result = json.loads(data)
    except ValueError:
        report["problem"] = "the executor's result was not readable"
        return None
    if isinstance(result, dict):  # what the readings from outside found; repeats folded (sandbox.squeeze_events)
        events = result.get("events") if isinstance(result.get("events"), list) else []
        result["events"] = squeeze_events([*events, *report.get("watch_events", [])])
    return result


def _stopped(proc, t, log, log_path, report, limits, held, in_buffers, over, inodes, wrote, watches=None) -> None:
    """Stop the sandbox, and say why in ``report``: ``problem`` for the status line (English, as every status
    line), ``problem_shown`` for the trainee, in every code cell of the graded notebook and so in the
    feedback (in the room's language, from the package's catalogue: PackageCatalogue, not msg(), which
    reads a file in the working folder first)."""
    from ..i18n import SOURCE_LANGUAGE, PackageCatalogue

    kill_tree(proc.pid)
    proc.wait()
    mb, sockets_mb = held // 2**20, in_buffers // 2**20
    for catalogue, field in ((PackageCatalogue(SOURCE_LANGUAGE), "problem"), (PackageCatalogue(), "problem_shown")):
        if watches is not None:
            report[field] = catalogue.msg("techday.grader_stopped_watches", "the notebook's processes held {watches} "
                                          "epoll watches, over the limit of {limit}, and were stopped",
                                          watches=watches, limit=limits.max_epoll_watches)
        elif over:
            kept = catalogue.msg("techday.grader_stopped_memory_sockets", " ({mb} MB of it in sockets' and pipes' "
                                 "buffers)", mb=sockets_mb) if in_buffers >= 2**20 else ""
            report[field] = catalogue.msg("techday.grader_stopped_memory", "the notebook's processes held {mb} MB "
                                          "together{kept}, over the memory limit of {limit} MB, and were stopped",
                                          mb=mb, kept=kept, limit=limits.memory_mb)
        elif inodes is not None:
            report[field] = catalogue.msg("techday.grader_stopped_files", "the notebook made {files} files in one of "
                                          "its folders, over the limit of {limit}, and was stopped", files=inodes,
                                          limit=limits.max_files)
        elif wrote is not None:
            report[field] = catalogue.msg("techday.grader_stopped_disk", "the notebook wrote {mb} MB into its working "
                                          "folder while the grading host's disk was nearly full, and was stopped",
                                          mb=wrote // 2**20)
        else:
            report[field] = catalogue.msg("techday.grader_stopped_time", "the notebook ran past its limit of {seconds} "
                                          "s and was stopped", seconds=limits.notebook_timeout_s)
    if watches is not None:
        report["events"] = [{"event": "too-many-watches", "watches": watches, "limit": limits.max_epoll_watches}]
    elif over:
        report["events"] = [{"event": "memory-total", "mb": mb, "limit": limits.memory_mb,
                             **({"sockets_mb": sockets_mb} if in_buffers >= 2**20 else {})}]
    elif inodes is not None:
        report["events"] = [{"event": "too-many-files", "files": inodes, "limit": limits.max_files}]
    elif wrote is not None:
        report["events"] = [{"event": "disk-full", "bytes": wrote}]
    else:
        report["events"] = [{"event": "notebook-timeout", "seconds": limits.notebook_timeout_s}]
    t.join(5)
    log.write(log_path)
    return None

