"""Memory that no address-space limit counts (techday.grading.sandbox.seccomp_filter): on the CPU tier the
sandbox's memory limit is ``RLIMIT_AS``, and pages a cell writes into a ``memfd_create`` file or a System V
shared-memory segment it has let go of are in no process's address space. A cell kept 512 MB of the host's
memory that way under a 300 MB limit, `graded`, no note (about 256 MB a file at ``RLIMIT_FSIZE``, as many
files as descriptors: the host's memory was the only bound). The sandbox now refuses both system calls."""

import json

import pytest

from techday.grading.config import grade_env
from techday.grading.executor import run_notebook
from techday.grading.sandbox import Limits, SandboxUnavailable, check_sandbox
from tests.grading.test_process_limit import _notebook

pytestmark = [pytest.mark.grading]

CHILD = """\
import ctypes, json, os
held = {"memfd": 0, "sysv": 0}
block = b"x" * (16 * 2**20)
fds = []
try:
    for k in range(32):  # 512 MB at most, so that a broken defence loads the host only so much
        fd = os.memfd_create(f"m{k}")
        os.write(fd, block)
        fds.append(fd)
        held["memfd"] += 16
except OSError as exc:
    held["memfd_error"] = str(exc)
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
try:
    for k in range(32):
        sid = libc.shmget(0, 16 * 2**20, 0o1600)
        if sid < 0:
            raise OSError(ctypes.get_errno(), "shmget")
        at = libc.shmat(sid, None, 0)
        ctypes.memset(at, 120, 16 * 2**20)
        libc.shmdt(at)
        held["sysv"] += 16
except OSError as exc:
    held["sysv_error"] = str(exc)
print(json.dumps(held), flush=True)
"""
# The cell starts a process of its own (no audit hook there: the referee's refusal of ctypes is the
# kernel's, not the sandbox's) and prints what it held.
HOLD = f"""\
import subprocess, sys
open("hold.py", "w").write({CHILD!r})
print(subprocess.run([sys.executable, "hold.py"], capture_output=True, text=True, timeout=60).stdout)
"""


def test_memory_outside_the_address_space_limit_is_refused(tmp_path):
    """Wrong answer caught: 512 MB of memfd files and 512 MB of detached System V segments kept by a
    cell under a 300 MB memory limit."""
    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    work = tmp_path / ".sandbox"
    work.mkdir()
    report: dict = {}
    result = run_notebook(_notebook([HOLD]), work, Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=300),
                          grade_env("cpu", "ci"), sandbox=True, gpu=False, report=report)
    assert result is not None, report
    printed = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    assert printed.strip(), (result["cells"][0]["outputs"], report)
    held = json.loads(printed.strip().splitlines()[-1])
    print(held)
    assert held["memfd"] == 0 and held["sysv"] == 0, held
