"""Inside the sandbox: execute one notebook as nbgrader's Execute preprocessor does, and hand the
outputs back on a private pipe.

    python -m techday.grading.sandbox_exec --result-fd N --cell-timeout S --output-bytes B [--max-processes P]
                                           < job.json

The job (``{"notebook": ..., "course_cells": [...], "collect": [...]}``: the notebook with hidden tests
restored, which of its cells are the course's test and locked cells, and the files a check from outside the
kernel scores, :mod:`techday.grading.outside`) arrives on standard input. The referee
(:class:`Referee`, :mod:`techday.grading.referee`) is installed in the kernel before the first cell
and runs those cells itself; its instructions are a file that the kernel deletes as it reads them,
before any trainee code runs, and nothing else of the job is written to disk inside the sandbox. This process makes itself non-dumpable before the kernel starts, so the kernel (same
user) cannot read its memory or its file descriptors through ``/proc``; the result pipe is
close-on-exec, so the kernel never holds it. What comes back: for each cell, its outputs and
execution count (the grader keeps its own copy of sources and metadata), plus events: cells that
timed out, a dead kernel, output cut at the cap; and the files to ``collect``, read once the kernel is
stopped, without following a link (:func:`techday.grading.outside.read_artifact`).

A kernel that dies (``os._exit``, a segfault, the memory limit) ends the run: the cell gets a
``KernelDied`` error and every later code cell a ``NotExecuted`` error, so that nbgrader scores
them zero (nbgrader gives full marks to a test cell without an error output, even one never run).

The executor is nbclient's ``NotebookClient`` with the settings and the error hook of nbgrader 0.9's
``Execute`` (``nbgrader/preprocessors/execute.py``), not ``Execute`` itself: importing
``nbgrader.preprocessors`` loads nbgrader's server extensions, Jupyter Server and SQLAlchemy, 1.3 s
of CPU for every submission, while the sandbox needs only nbclient. tests/unit/test_sandbox_exec.py
runs the same notebooks through both and requires the same outputs.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time

from ..fastimport import skip_iri_grammar
from .sandbox import squeeze_events

PR_SET_DUMPABLE = 4


def _error(ename: str, evalue: str):
    from nbformat.notebooknode import NotebookNode
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _size(content: dict) -> int:
    """What a message adds to a cell's outputs: every field the kernel sent (text, data, metadata, an error's
    name, value and traceback), a string by its length, anything else by its JSON."""
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v, default=str)) for v in content.values())


# The kernel is the trainee's process: every message that adds to or changes a cell's outputs counts against
# the cell's cap. Before, only a stream's text and a display's data counted: a cell's error of 3 MB came back
# as 6 MB (its value and its traceback), a display's metadata was not counted, and a display update rewrote an
# earlier cell's output before the cap was looked at, so a notebook's result (and the autograded notebook on
# the grading host's disk) was as big as the executor's memory allowed.
OUTPUT_MESSAGES = ("stream", "display_data", "execute_result", "update_display_data", "error")
ERROR_KEEP = 4000  # characters of an error's value kept past the cap; its name and traceback's last lines too
# And all cells together, at this many times a cell's cap: before, every cell of a notebook could bring back its
# whole cap (40 cells of 90 kB under a 100 kB cap: 3.6 MB), up to the 256 MB the grader's reader keeps, into the
# autograded notebook on the grading host's disk and its feedback.
NOTEBOOK_CELLS_OF_OUTPUT = 16
# Each output counts its own frame besides what the kernel said (its type, its fields: about what its JSON adds), and a
# notebook keeps at most NOTEBOOK_OUTPUTS outputs: every output is an object of the grader's memory (about 1.3 kB once
# parsed and made a NotebookNode) and an entry of the autograded notebook. Before, a one-byte display counted 23 bytes
# and kept 71: a cell capped at 100 kB kept 4,300 of them in 340 kB, and a notebook of 16 such cells at the 1 MB cap
# would have kept 650,000 (tests/grading/test_disk_limit.py).
OUTPUT_FRAME = 64
NOTEBOOK_OUTPUTS = 20_000
NEW_OUTPUTS = ("stream", "display_data", "execute_result", "error")  # an update rewrites outputs, adds none


def _short_error(content: dict, catalogue=None) -> dict:
    """An error past the cap, cut short: it must stay (an error fails a test cell), but not at its size."""
    tb = content.get("traceback")
    tb = [str(line)[:500] for line in tb[-10:]] if isinstance(tb, list) else []
    cut = (catalogue or _english()).msg("techday.grader_error_cut", "[grader: this error was cut short at the cell's "
                                                                    "output cap]")
    return {"ename": str(content.get("ename", ""))[:200], "evalue": str(content.get("evalue", ""))[:ERROR_KEEP],
            "traceback": tb + [cut]}


def _english():
    from techday.i18n import SOURCE_LANGUAGE, PackageCatalogue

    return PackageCatalogue(SOURCE_LANGUAGE)


def _count(value):
    """An execution count as nbformat has it (an int, or None): the kernel sends it."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None


# nbgrader 0.9's Execute.error_on_timeout: what a cell that timed out records.
ERROR_ON_TIMEOUT = {"ename": "CellTimeoutError", "evalue": "",
                    "traceback": ["\x1b[0;31mCellTimeoutError\x1b[0m: No reply from kernel before timeout"]}


def nbgrader_execute_class():
    """nbgrader's ``Execute``, rebuilt on nbclient alone: the same settings (errors allowed, interrupt
    on timeout, iopub timeouts raised, the same timeout error, an async kernel manager) and the same
    ``on_cell_executed`` hook, which records the kernel's error reply when the cell's outputs do not
    show it (a timeout, or ``showtraceback`` disabled by the trainee)."""
    from nbclient import NotebookClient
    from nbformat.notebooknode import NotebookNode

    from techday.localkernel import LocalKernelManager

    class Execute(NotebookClient):
        def __init__(self, **kw):
            kw.setdefault("kernel_manager_class", LocalKernelManager)  # an AsyncKernelManager
            kw.setdefault("interrupt_on_timeout", True)
            kw.setdefault("allow_errors", True)
            kw.setdefault("raise_on_iopub_timeout", True)
            kw.setdefault("error_on_timeout", dict(ERROR_ON_TIMEOUT))
            super().__init__(NotebookNode(cells=[], metadata={}), **kw)

        def on_cell_executed(self, **kwargs):  # nbgrader's hook, same conditions, same output
            cell, reply = kwargs["cell"], kwargs["execute_reply"]
            if reply["content"]["status"] != "error":
                return
            if any(o.output_type == "error" and o.ename == reply["content"]["ename"] for o in cell.outputs):
                return
            error = NotebookNode(output_type="error", ename=reply["content"]["ename"],
                                 evalue=reply["content"]["evalue"], traceback=reply["content"]["traceback"])
            if error.traceback == []:
                error.traceback = ["ERROR: An error occurred while showtraceback was disabled"]
            cell.outputs.append(error)

        def preprocess(self, nb, resources=None, km=None):
            """nbconvert's ExecutePreprocessor.preprocess: run every cell in one kernel, in order."""
            self.nb, self.km, self.resources = nb, km, resources or {}
            self.reset_execution_trackers()
            with self.setup_kernel():
                info = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info["content"]["language_info"]
                if getattr(self, "install_referee", None):
                    self.install_referee()
                for index, cell in enumerate(self.nb.cells):
                    self.preprocess_cell(cell, self.resources, index)
                if getattr(self, "install_referee", None):
                    self.referee_last_word()
            self.set_widgets_metadata()
            return self.nb, self.resources

        def preprocess_cell(self, cell, resources, index):
            return self.execute_cell(cell, index, store_history=True), resources

    return Execute


class GraderError(RuntimeError):
    """The grader itself could not run this notebook as it must: the submission is ``failed``
    (``--retry-failed`` tries again), never scored."""


class Referee:
    """The executor's side of :mod:`techday.grading.referee`: writes the kernel's instructions, reads
    its authenticated records after each cell, and decides which test cells ran to their end.

    ``course`` maps a cell index to ``{"key": grade_id, "kind": "test"|"locked", "source": ...}``:
    the cells nbgrader restored from its gradebook (trusted sources, hidden tests included)."""

    def __init__(self, course: dict[int, dict], folder: str, catalogue=None, draw: int | None = None):
        import secrets

        from techday.i18n import PackageCatalogue

        self.course = course
        # The words a trainee reads, the referee's among them, in the room's language: read here, before
        # the kernel starts, from the package's catalogue (never the working folder's, which the notebook
        # can write); the referee gets its texts in its instructions (grading/README.md).
        self.catalogue = catalogue if catalogue is not None else PackageCatalogue()
        self.key = secrets.token_bytes(32)
        self.config = os.path.join(folder, f".referee-{secrets.token_hex(8)}.json")
        self.records_path = os.path.join(folder, f".referee-{secrets.token_hex(8)}.log")
        self.offset = 0
        self.seq = 0
        self.events: list[dict] = []
        self.installed = False
        self.records = None
        self.unstarted: list[str] = []   # course cells whose trigger never reached the referee
        # The grading draw (techday/draw.py): handed to the referee in its instructions, answered to test cells only.
        self.draw = draw

    def write_config(self) -> None:
        """The kernel's instructions (deleted by the kernel as it reads them) and the record file,
        kept open here, so that deleting or replacing it in the kernel changes nothing."""
        fd = os.open(self.records_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self.records = os.fdopen(fd, "rb")
        cells = {c["key"]: {"source": c["source"], "kind": c["kind"]} for c in self.course.values()}
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"key": self.key.hex(), "records": self.records_path, "cells": cells,
                       "texts": self.catalogue.starting("techday.referee_"), "draw": self.draw}, f, ensure_ascii=False)

    def install_code(self) -> str:
        return f"import techday.grading.referee as _r; _r.install({self.config!r}); del _r"

    @staticmethod
    def trigger(key: str) -> str:
        return f'__import__("sys").audit("techday.referee.run", {key!r})'

    def read(self) -> list[dict]:
        """Records written since the last read; a forged, replayed or missing one becomes an event."""
        from .referee import read_records

        if self.records is None:
            return []
        f = self.records
        size = os.fstat(f.fileno()).st_size
        if size < self.offset:
            self.events.append({"event": "referee", "what": "the referee's records were cut short"})
            self.offset = 0
        f.seek(self.offset)
        data = f.read()
        end = data.rfind(b"\n") + 1   # a line being written is read next time
        self.offset += end
        records, problems = read_records(data[:end], self.key)
        for why in problems:
            self.events.append({"event": "referee", "what": why})
        good = []
        for rec in records:
            if rec["seq"] != self.seq + 1:
                self.events.append({"event": "referee", "what": f"referee record {rec['seq']} out of order"})
            self.seq = max(self.seq, rec["seq"])
            good.append(rec)
        return good

    def kinds(self) -> dict:
        return {c["key"]: c["kind"] for c in self.course.values()}

    def judge(self, index: int, cell, records: list[dict]) -> None:
        """After course cell ``index``: only a ``done`` record of its own, written while it ran,
        lets a test cell's outputs stand; tripwires and changes become events."""
        spec = self.course[index]
        done = started = False
        for rec in records:
            if rec["kind"] == "start":
                started = started or rec["cell"] == spec["key"]
            elif rec["kind"] == "done" and rec["cell"] == spec["key"]:
                done = True
            elif rec["kind"] == "done":
                self.events.append({"cell": index, "event": "referee",
                                    "what": f"course cell '{rec['cell']}' was run out of turn"})
            elif rec["kind"] in ("tripwire", "changed", "nested", "unknown", "restored", "reset"):
                self.events.append({"cell": index, "event": "referee", "what": _record_words(rec, self.kinds())})
        if spec["kind"] == "test":
            self.no_results(index, cell, spec["key"])
        if not started:
            # Its trigger was answered by the notebook's code (a cell's ``__import__``: the trigger's name is
            # looked up in the notebook's namespace first), not by the referee: nothing of the course ran.
            # A locked cell skipped so left its names to the notebook's values for every later test.
            self.unstarted.append(spec["key"])
            self.events.append({"cell": index, "event": "referee",
                                "what": f"course cell '{spec['key']}' never reached the grader's referee "
                                        "(the notebook answered its trigger)"})
        elif spec["kind"] == "test" and self.unstarted and done:
            done = False
            cell.outputs.append(_error("GraderCheck", self.catalogue.msg(
                "techday.grader_unstarted_before", "this test does not count: course cell(s) {cells} before it never "
                "ran", cells=", ".join(self.unstarted[:4]))))
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if spec["kind"] == "test" and not done and not errors:
            cell.outputs.append(_error("GraderCheck", self.catalogue.msg(
                "techday.grader_not_to_its_end", "this test cell did not run to its end under the grader's watch; "
                "it scores 0")))
            self.events.append({"cell": index, "event": "referee",
                                "what": f"test cell '{spec['key']}' reported success but did not run to its end"})

    def no_results(self, index: int, cell, key: str) -> None:
        """A test cell shows no result (`execute_result`), only displays. nbgrader scores a test cell by its
        first output that is an error (0) or a result (a number: that score; anything else: full marks),
        so a result shown before the error that failed the test outweighed it: a cell's ``__import__``
        made the trigger itself show one (the test never ran; grade-lab 5 of 5 over the GraderCheck
        below), an answer's call of the display hook another (2 of 5). The referee runs a test with
        ``exec``, which shows nothing: every result in a test cell is the notebook's doing."""
        from nbformat.notebooknode import NotebookNode

        shown = 0
        for i, out in enumerate(cell.get("outputs", [])):
            if out.get("output_type") == "execute_result":
                cell.outputs[i] = NotebookNode(output_type="display_data", data=out.get("data", {}),
                                               metadata=out.get("metadata", {}))
                shown += 1
        if shown:
            self.events.append({"cell": index, "event": "referee",
                                "what": f"test cell '{key}' showed {shown} result(s) the notebook put there "
                                        "(nbgrader reads a result as the cell's score): shown as displays"})

    def between(self, records: list[dict], index: int | None = None) -> None:
        """Records written while a trainee's cell ran (tripwires, a course cell run out of turn)."""
        where = {} if index is None else {"cell": index}
        out_of_turn = set()
        for rec in records:
            if rec["kind"] == "installed":
                self.installed = True
            elif rec["kind"] in ("start", "done"):   # said once a cell, also where it failed before its end
                if rec["cell"] not in out_of_turn:
                    out_of_turn.add(rec["cell"])
                    self.events.append({**where, "event": "referee",
                                        "what": f"course cell '{rec['cell']}' was run out of turn"})
            else:
                self.events.append({**where, "event": "referee", "what": _record_words(rec, self.kinds())})


def _record_words(rec: dict, kinds: dict | None = None) -> str:
    """A record as a status line's words; ``kinds``: course cell key -> "test" or "locked"."""
    kind, detail = rec["kind"], rec["detail"]

    def _course_cell(key: str) -> str:
        return f"test '{key}'" if (kinds or {}).get(key, "test") == "test" else f"locked cell '{key}'"

    if kind == "tripwire":
        return f"refused {detail}"
    if kind == "changed":
        when, _, what = detail.partition(": ")
        return (f"{_course_cell(rec['cell'])} did not count: "
                f"{'the code it called' if when == 'during' else 'code in the notebook'} changed {what}")
    if kind == "restored":
        return (f"{_course_cell(rec['cell'])} used the course's own {detail}: a cell of the notebook had rebound "
                f"what a locked cell set")
    if kind == "reset":
        return (f"{_course_cell(rec['cell'])} used the course's own data: a cell of the notebook had changed "
                f"{detail} in place")
    if kind == "nested":
        return f"course cell '{rec['cell']}' was started inside another ({detail})"
    return f"{kind} {rec['cell']} {detail}".strip()


# What an allocation past the memory limit raises: Python's own, NumPy's (``np.empty`` of too many
# bytes; a subclass whose name IPython shows), PyTorch's on a device.
MEMORY_ERRORS = ("MemoryError", "_ArrayMemoryError", "OutOfMemoryError")


MISSING_TAGS = object()
# ipykernel sends a cell's reply before it publishes ``idle``; a kernel idle this long without a reply
# never sends one (its message handler failed: a trainee's cell replaced ``run_cell_async``).
REPLY_AFTER_IDLE = 5.0


def make_executor(cell_timeout: int, output_bytes: int, referee: Referee | None = None,
                  notebook_bytes: int | None = None, catalogue=None):
    """nbgrader's Execute preprocessor as the sandbox runs it: the per-cell limit, the output cap, a
    dead or silent kernel recorded, and the referee's course cells run from inside its audit hook.

    Long (about 145 lines) because the classes are made here, once nbclient and nbgrader are imported
    inside the sandbox (importing them at module level would load them in every grading worker)."""
    import asyncio

    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    total_bytes = NOTEBOOK_CELLS_OF_OUTPUT * output_bytes if notebook_bytes is None else notebook_bytes
    if catalogue is None:  # what the cells' errors say, in the room's language: read before the kernel starts
        from techday.i18n import PackageCatalogue

        catalogue = referee.catalogue if referee is not None else PackageCatalogue()
    from nbformat.notebooknode import NotebookNode

    class KernelGone(Exception):
        pass

    class SandboxedExecute(nbgrader_execute_class()):
        """nbgrader's Execute, with an output cap and a clear record of a dead kernel."""

        def preprocess(self, nb, resources=None, km=None):
            self.events = []
            self.executed = set()
            self._printed = {}
            self._cut_errors = set()
            self._kept, self._dropped, self._outputs = 0, {}, 0
            try:
                return super().preprocess(nb, resources, km)
            except KernelGone:
                return nb, resources
            finally:
                if referee is not None:
                    self.events += referee.events

        def install_referee(self):
            """Before the first cell: the referee, from the executor's file, before any trainee code."""
            if referee is None:
                return
            referee.write_config()
            reply = self.wait_for_reply(self.kc.execute(referee.install_code(), silent=True, store_history=False))
            if reply is None or reply["content"]["status"] != "ok":
                why = (reply or {}).get("content", {}).get("evalue", "no reply")
                raise GraderError(f"the grader's referee could not be installed: {why}")
            referee.between(referee.read())
            if not referee.installed:
                raise GraderError("the grader's referee did not confirm its installation")

        def referee_last_word(self):
            """Tripwires of the last cells, read before the kernel stops."""
            if referee is not None:
                referee.between(referee.read())

        def _end_run(self, cell, index, ename, evalue, event):
            """No later cell can run: record why on this one and stop the notebook here."""
            if cell.cell_type == "code":
                cell.outputs.append(_error(ename, evalue))
            self.executed.add(index)
            self.events.append({"cell": index, **event})
            raise KernelGone() from None

        def preprocess_cell(self, cell, resources, index):
            started = time.monotonic()
            course = referee.course.get(index) if referee is not None else None
            if referee is not None:
                referee.between(referee.read())
            source, tags = cell.source, cell.metadata.get("tags", MISSING_TAGS)
            if course is not None:
                cell.source = referee.trigger(course["key"])  # the referee runs its own copy
                # Every course cell runs, whatever tags the submission gave it: nbclient skips a cell
                # tagged "skip-execution", and OverwriteCells restores a cell's source, not its tags
                # (lab 10's accuracy bar, skipped, left its BAR to a cell's BAR = 0.0: 4 points).
                cell.metadata.pop("tags", None)
            try:
                try:
                    cell, resources = super().preprocess_cell(cell, resources, index)
                finally:
                    cell.source = source
                    if tags is not MISSING_TAGS:
                        cell.metadata["tags"] = tags
                if course is not None:
                    referee.judge(index, cell, referee.read())
                elif referee is not None:
                    referee.between(referee.read(), index)
            except CellTimeoutError:
                # nbclient interrupted the cell at its limit and the kernel never went idle: the
                # code ignores SIGINT (or is stuck in C). The kernel is still busy, so no later cell
                # can run: the run ends here, as for a dead kernel.
                stuck = time.monotonic() - started >= self.timeout
                why = (catalogue.msg("techday.grader_cell_stuck", "the cell ran past its {seconds} s limit and "
                                     "ignored the interrupt; the kernel was stopped", seconds=self.timeout) if stuck
                       else catalogue.msg("techday.grader_kernel_silent", "the kernel stopped answering; the kernel "
                                          "was stopped"))
                self._end_run(cell, index, "CellTimeoutError", why,
                              {"event": "kernel-stuck" if stuck else "kernel-silent", "seconds": self.timeout})
            except DeadKernelError:
                self._end_run(cell, index, "KernelDied", catalogue.msg(
                    "techday.grader_kernel_died", "the kernel died while running this cell (os._exit, a crash, or the "
                    "memory limit)"),
                              {"event": "kernel-died"})
            self.executed.add(index)
            dropped = self._dropped.get(index, 0)
            if dropped > 0:
                cell.outputs.append(NotebookNode(output_type="stream", name="stdout",
                                                 text="\n" + catalogue.msg(
                                                     "techday.grader_output_dropped",
                                                     "[grader: {bytes} more bytes of output dropped]", bytes=dropped)
                                                 + "\n"))
                self.events.append({"cell": index, "event": "output-truncated", "bytes": dropped})
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError":
                    self.events.append({"cell": index, "event": "cell-timeout", "seconds": self.timeout})
                    break
                if out.get("output_type") == "error" and out.get("ename") in MEMORY_ERRORS:
                    self.events.append({"cell": index, "event": "memory-limit"})
                    break
            return cell, resources

        async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
            """nbclient's wait for a cell's reply, ended when the kernel went idle and sent none.

            A kernel whose message handler fails (a cell replaced ``run_cell_async`` by a function that
            returns no coroutine) publishes ``idle`` and never replies: every later cell waited its
            whole limit, until the notebook's (lab 01: 300 s of a grading slot for one submission).
            Now the run ends there, as for a kernel that stopped answering: later cells score 0."""
            reply = asyncio.ensure_future(super()._async_poll_for_reply(
                msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive))
            try:
                await asyncio.wait({reply, task_poll_output_msg}, return_when=asyncio.FIRST_COMPLETED)
                idle = (not reply.done() and task_poll_output_msg.done() and not task_poll_output_msg.cancelled()
                        and task_poll_output_msg.exception() is None)
                if idle:
                    await asyncio.wait({reply}, timeout=REPLY_AFTER_IDLE)
                    if not reply.done():
                        task_poll_kernel_alive.cancel()
                        raise CellTimeoutError.error_from_timeout_and_cell(
                            "the kernel went idle without a reply", REPLY_AFTER_IDLE, cell)
                return await reply
            finally:
                if not reply.done():
                    reply.cancel()

        def process_message(self, msg, cell, cell_index):
            """Every message that adds to or changes outputs counts against the cell's cap, whole, before
            nbclient applies it (a display update rewrites earlier outputs before ``output`` is called): the
            rest of the cell's output is dropped, except one error, cut short (an error fails a test cell), and
            so is any output past ``NOTEBOOK_CELLS_OF_OUTPUT`` cells' caps in all. An execution count that is not
            a count is dropped."""
            content = msg.get("content")
            if not isinstance(content, dict):
                return None
            if "execution_count" in content:
                content["execution_count"] = _count(content["execution_count"])
            if msg.get("msg_type") not in OUTPUT_MESSAGES:
                return super().process_message(msg, cell, cell_index)
            transient = content.get("transient")
            display_id = transient.get("display_id") if isinstance(transient, dict) else None
            if display_id is not None and not isinstance(display_id, str):
                content["transient"], display_id = {}, None
            new = msg["msg_type"] in NEW_OUTPUTS
            size = _size(content) + (OUTPUT_FRAME if new else 0)
            if display_id and msg["msg_type"] != "error":  # it also rewrites every output shown under that id
                size *= 1 + sum(len(v) for v in self._display_id_map.get(display_id, {}).values())
            seen = self._printed.get(cell_index, 0) + size
            self._printed[cell_index] = seen
            if seen > output_bytes or self._kept + size > total_bytes or (new and self._outputs >= NOTEBOOK_OUTPUTS):
                if msg["msg_type"] != "error" or cell_index in self._cut_errors:
                    self._dropped[cell_index] = self._dropped.get(cell_index, 0) + size
                    return None
                self._cut_errors.add(cell_index)
                msg["content"] = _short_error(content, catalogue)
                size = _size(msg["content"]) + OUTPUT_FRAME
            self._kept += size
            self._outputs += new
            return super().process_message(msg, cell, cell_index)

        def on_cell_executed(self, **kwargs):
            """The error of the kernel's reply, which nbgrader's hook records where no output shows it, counts
            too: cut short past the cap, as an error output is."""
            content = kwargs["execute_reply"].get("content", {})
            if content.get("status") == "error" and _size(content) > output_bytes:
                kwargs["execute_reply"]["content"] = {"status": "error", **_short_error(content, catalogue)}
            return super().on_cell_executed(**kwargs)

    # iopub_timeout: how long to wait for a finished cell's last output (nbclient's 4 s is short on a
    # loaded grading host, and running past it ends the notebook). shutdown_kernel: every output is in
    # by then, and the sandbox is torn down next; a graceful shutdown waited 3 s more for the kernel
    # to exit in 3 of 56 runs here.
    timeout_error = dict(ERROR_ON_TIMEOUT)  # nbgrader's, worded in the room's language (the same in English)
    timeout_error["traceback"] = ["\x1b[0;31mCellTimeoutError\x1b[0m: " + catalogue.msg(
        "techday.grader_cell_timeout", "No reply from kernel before timeout")]
    return SandboxedExecute(timeout=cell_timeout, iopub_timeout=15, shutdown_kernel="immediate",
                            extra_arguments=["--HistoryManager.hist_file=:memory:"], error_on_timeout=timeout_error)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--result-fd", type=int, required=True)
    ap.add_argument("--cell-timeout", type=int, default=120)
    ap.add_argument("--output-bytes", type=int, default=1_000_000)
    ap.add_argument("--max-processes", type=int, default=0, help="RLIMIT_NPROC, set here: inside the sandbox's "
                    "own user namespace it counts this sandbox's processes and threads only")
    args = ap.parse_args(argv)
    if args.max_processes:
        import resource

        resource.setrlimit(resource.RLIMIT_NPROC, (args.max_processes, args.max_processes))
    skip_iri_grammar()
    os.set_inheritable(args.result_fd, False)
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    payload = json.loads(sys.stdin.read())
    if "notebook" not in payload:  # a bare notebook: no course cells to referee (measurements, tests)
        payload = {"notebook": payload, "course_cells": []}
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    import tempfile

    import nbformat

    nb = nbformat.reads(json.dumps(payload["notebook"]), as_version=4)  # multi-line sources as lists, too
    course = {int(c["index"]): c for c in payload.get("course_cells", [])}
    from techday.i18n import PackageCatalogue

    catalogue = PackageCatalogue()  # before the kernel starts: see Referee
    draw = payload.get("draw") if type(payload.get("draw")) is int else None
    referee = (Referee(course, tempfile.mkdtemp(prefix="grader-"), catalogue, draw) if payload.get("referee", True)
               else None)
    collect = [str(name) for name in payload.get("collect", [])][:8]  # files a check from outside reads (outside.py)
    del payload
    ex = make_executor(args.cell_timeout, args.output_bytes, referee, catalogue=catalogue)
    problem, grader_error = "", False
    try:
        ex.preprocess(nb, {"metadata": {"path": os.getcwd()}})
    except GraderError as exc:
        problem, grader_error = str(exc)[:500], True
    except Exception as exc:  # the kernel would not start, or nbclient gave up
        problem = f"{type(exc).__name__}: {exc}"[:500]
    events = squeeze_events(getattr(ex, "events", []))
    executed = getattr(ex, "executed", set())
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and index not in executed:
            cell.outputs = [_error("NotExecuted", catalogue.msg("techday.grader_not_executed",
                                                                "not run: an earlier cell ended the kernel"))]
    cells = [{"outputs": c.get("outputs", []), "execution_count": c.get("execution_count")}
             if c.cell_type == "code" else None for c in nb.cells]
    # The files the grader scores itself, taken now that the kernel is stopped: no link followed, capped.
    from .outside import read_artifact

    artifacts = [read_artifact(os.getcwd(), name) for name in collect]
    data = json.dumps({"cells": cells, "events": events, "problem": problem, "grader_error": grader_error,
                       "language_info": nb.metadata.get("language_info"), "artifacts": artifacts}).encode()
    with os.fdopen(args.result_fd, "wb") as out:
        out.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
