"""On the CPU tier, refuse a kernel that no GPU compiles.

Numba's CUDA simulator runs a kernel as Python and never compiles it, so Python that numba-cuda's
compiler refuses runs there: a list or an f-string in a kernel, a call of a plain Python function, a
shared array sized at run time (``cuda.shared.array(cuda.blockDim.x, float64)``). Each of these passed
every visible and hidden test of its lab on the CPU tier, the grader's included: lab 01's
``saxpy_kernel`` with an f-string, lab 03's ``block_sum_kernel`` with its cache sized by the block and
``histogram_atomic`` with a list, lab 07's ``histogram_kernel`` with its counters sized by
``hist.shape[0]``. On a GPU each fails at its first launch.

:func:`check` (called by :mod:`techday.simlimits` before each launch of a kernel defined in the
notebook) compiles the kernel and the device functions it calls with the launch's argument types, by
numba-cuda's real compiler (``cuda.compile_ptx``: typing, lowering and NVVM, for compute capability
8.0), in a child process with the simulator off, as ``techday kernels`` compiles the course's kernels
(the same records of :mod:`techday.kernelrec` and the same builder). The child is started at the first
such launch (about 1 s of CPU, numba-cuda's import) and kept for the kernel process; each new kernel and
signature then takes about 0.1 s, and the result is kept. A kernel the compiler refuses raises
:class:`KernelNotCompiled` before any of its threads runs, with the compiler's reason and the line, as
a GPU refuses it at its first launch.

What it does not cover: kernels defined in modules (the course's own are compiled by ``techday
kernels``); globals the records cannot carry (an array of more than 4,096 elements, an object of a
class of the notebook's): such a kernel is let through unchecked, never failed; registers and
resources (``ptxas`` is not run); ``@vectorize`` CUDA ufuncs. Where the compiler libraries are missing
or the child fails, the check says so once on standard error and lets launches run: a check that
cannot run never fails a trainee. It is a check of honest work, not a defence against cheating: the
child rebuilds the kernel from the notebook's source and runs its ``def`` statement, and a notebook's
code can tell the check apart or switch it off; the tests still judge the kernel's results.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import threading
import time

from . import kernelrec

CC = (8, 0)
START_TIMEOUT_S = 180  # numba-cuda's import and NVVM's first load, on a loaded 2-core machine
COMPILE_TIMEOUT_S = 120
# Globals the records cannot carry: a kernel that reads one is not checked (Numba would be told
# "cannot determine the type" of a stand-in, not of the notebook's value).
_UNCARRIED = "opaque"

_SERVER = r"""
import json, os, sys
proto = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # whatever the compiler prints goes to standard error, never into the answers
cc = tuple(json.loads(sys.argv[1]))
defs = {}
""" + kernelrec.BUILDER + r"""
proto.write(json.dumps({"ready": True}) + "\n")
proto.flush()
for line in sys.stdin:
    req = json.loads(line)
    defs.update(req["defs"])
    try:
        compile_one(req["job"])
        out = {"id": req["id"], "status": "ok"}
    except Exception as exc:
        out = {"id": req["id"], "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        loc = getattr(exc, "loc", None)  # where Numba's typing stopped, in the kernel's own file
        if loc is not None and isinstance(getattr(loc, "line", None), int):
            out["file"], out["line"] = str(loc.filename), loc.line
    proto.write(json.dumps(out) + "\n")
    proto.flush()
"""


class KernelNotCompiled(RuntimeError):
    """A kernel that numba-cuda's compiler refuses: a GPU would refuse its launch. The message holds
    the compiler's reason and the line of the kernel."""


class _Server:
    """The compiling child: one per kernel process, asked one job at a time."""

    def __init__(self):
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        # -P: no folder of the notebook's on the child's path (a numba.py there is not numba). A process group
        # of its own: at shutdown ipykernel signals every process of the kernel's group and waits until none is
        # left, never reaping them, so this child, killed, stayed a zombie of the kernel's group and every
        # notebook kernel that had launched a kernel took 29 s to exit (10 and 3 s of sleeps, for SIGTERM and
        # SIGKILL each); where the client waits 5 s (JupyterLab's restart, the grader's executor), it was killed
        # before its exit handlers ran. Without its group's signal the child ends when its input closes: when the
        # kernel exits, however it exits (tests/unit/test_simcompile.py).
        self.proc = subprocess.Popen([sys.executable, "-P", "-c", _SERVER, json.dumps(list(CC))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, close_fds=True, process_group=0)
        self.buffer = b""
        self.next_id = 0
        first = self._line(START_TIMEOUT_S)
        if first is None or not first.get("ready"):
            self.close()
            raise OSError("the compiling process did not start")

    def _line(self, timeout: float) -> dict | None:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def ask(self, defs: dict, job: dict) -> dict | None:
        self.next_id += 1
        want = f"{os.getpid()}-{self.next_id}"  # a forked kernel shares this child: answers carry their id
        self.proc.stdin.write((json.dumps({"id": want, "defs": defs, "job": job}) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + COMPILE_TIMEOUT_S
        while True:
            got = self._line(max(0.0, deadline - time.monotonic()))
            if got is None or got.get("id") == want:
                return got

    def close(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass


_lock = threading.Lock()
_state: dict = {"server": None, "off": "", "results": {}}


def _off(why: str) -> None:
    if not _state["off"]:
        _state["off"] = why
        from .i18n import msg

        print(msg("techday.compile_check_off", "techday: kernels are not compiled on this CPU tier ({why}); "
                  "they run in the simulator unchecked", why=why), file=sys.stderr)


def _carried(def_id: str, defs: dict, seen: set) -> bool:
    """Whether every global of the definition (and of what it calls) travels to the child, plain Python
    functions aside (the compiler refuses a call of one, and so does a GPU)."""
    if def_id in seen:
        return True
    seen.add(def_id)
    rec = defs[def_id]
    for spec in rec["globals"].values():
        if _UNCARRIED in spec and spec[_UNCARRIED] != "function":
            return False
    return all(_carried(d, defs, seen) for d in rec["deps"])


# "Function(<function shared.array at 0x7f...>)" in Numba's messages: the name is enough.
_FUNCTION = re.compile(r"Function\(<(?:built-in )?(?:function|class|intrinsic) '?([\w.]+)'?(?: at 0x[0-9a-f]+)?>\)")


def reason(error: str) -> str:
    """The compiler's reason in one line: Numba's first informative line, with the call it could not
    type (``>>> array(int32, class(float64))``) where it names one."""
    first = _FUNCTION.sub(r"\1", kernelrec.error_line(error))
    call = re.search(r"^\s*>>> (.+)$", error, re.M)
    return f"{first} {call.group(1).strip()}" if call and first.rstrip().endswith(":") else first


def _message(signature: str, got: dict, rec: dict) -> str:
    import linecache

    from .i18n import msg

    name, error = rec["name"], got["error"]
    # Where the compiler stopped, in the kernel's own source: the last place its message names there
    # (Numba prints paths relative to the folder both processes run in), else the place typing stopped.
    places = [(os.path.abspath(f), int(n)) for f, n in kernelrec.FILE_LINE.findall(error)]
    places = [p for p in places if p[0] == rec["file"]] or \
        ([(os.path.abspath(got["file"]), got["line"])] if "line" in got else [])
    file, line = places[-1] if places else (rec["file"], 0)
    code = linecache.getline(file, line).strip() if file == rec["file"] and line >= rec["line"] else ""
    where = msg("techday.compile_where", "line {line} of {name}: {code}", line=line - rec["line"] + 1,
                name=name, code=code) if code else ""
    return msg("techday.kernel_not_compiled",
               "{name}: a GPU cannot compile this kernel, and refuses its launch (numba-cuda, arguments {signature}): "
               "{reason}{where}. The CPU tier runs a kernel as Python, so it would run here: a kernel may use only "
               "what Numba compiles for the GPU (numbers, arrays, math, cuda.* and device functions; no lists, "
               "strings, dicts or plain Python functions; shared arrays of a constant size)",
               name=name, signature=signature, reason=reason(error), where=f" ({where})" if where else "")


def check(kernel, args) -> None:
    """Compile ``kernel`` (a simulator kernel) for the launch's argument types; raise
    :class:`KernelNotCompiled` when the real compiler refuses it. Once per kernel and signature."""
    if _state["off"]:
        return
    try:
        signature = f"void({', '.join(kernelrec.type_string(a) for a in args)})"
    except Exception:  # a type the GPU's launch would refuse by itself: the simulator's own check decides
        return
    with _lock:
        fast = (id(kernel), signature)
        known = _state["results"].get(fast)
        if known is not None and known[0] is kernel:
            verdict = known[1]
        else:
            verdict = _compile(kernel, signature)
            _state["results"][fast] = (kernel, verdict)
    if verdict:
        raise KernelNotCompiled(verdict)


def _compile(kernel, signature: str) -> str:
    """'' when the kernel compiles (or cannot be checked); otherwise the message."""
    defs: dict = {}
    try:
        def_id = kernelrec.definition(kernel, defs, literal=True)
    except Exception:  # the records cannot describe it: not checked
        return ""
    if not defs[def_id]["source"] or not _carried(def_id, defs, set()):
        return ""
    known = _state["results"].get((def_id, signature))
    if known is not None:
        return known
    if _state["server"] is None:
        try:
            _state["server"] = _Server()
        except OSError as exc:
            _off(str(exc))
            return ""
    try:
        got = _state["server"].ask(defs, {"def": def_id, "signature": signature, "variant": "cpu"})
    except (OSError, ValueError):  # the child has gone (a broken pipe) or answered garbage
        got = None
    if got is None:
        _state["server"].close()
        _state["server"] = None
        _off("the compiling process did not answer")
        return ""
    verdict = ""
    if got["status"] != "ok":
        from .ptxreport import toolkit_missing

        if toolkit_missing(got["error"]):
            _off("the CUDA compiler libraries (NVVM) are missing")
            return ""
        verdict = _message(signature, got, defs[def_id])
    _state["results"][(def_id, signature)] = verdict
    return verdict
