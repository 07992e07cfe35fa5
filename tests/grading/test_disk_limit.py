"""What a trainee's cell may write in the sandbox is bounded in all (techday.grading.sandbox.sandbox_command):
RLIMIT_FSIZE caps one file, not how many, and the working folder (on the grading host's disk), /tmp,
/dev/shm, /dev and bwrap's own root (all in the host's memory) took as many as a cell wrote: a lab 00
submission wrote 1.2 GB across the first four in 24 files of 50 MB, `graded`, no note, and nothing but the host's
disk or memory would have stopped it, under every other submission graded there."""

import json

import pytest

from techday.grading.config import grade_env
from techday.grading import executor
from techday.grading.executor import run_notebook
from techday.grading.sandbox import (Limits, ProcessLimit, SandboxUnavailable, check_sandbox, nobody_sandbox_problem,
                                     sizes_tmpfs)
from tests.grading.test_process_limit import _notebook
from tests.grading.conftest import run_sandboxed

pytestmark = [pytest.mark.grading]

FILL = """\
import os
block = b"x" * (8 * 2**20)
written = {}
for folder in [".", "/tmp", "/dev/shm", "/dev", "/"]:
    total = 0
    for k in range(16):  # at most 128 MB a folder, so that a broken limit loads nothing much
        try:
            with open(os.path.join(folder, f"fill{k}.bin"), "wb") as f:
                f.write(block)
            total += len(block)
        except OSError:
            break
    written[folder] = total // 2**20
print(written)
print(open("techday-messages.xx.json").read())
"""


@pytest.mark.parametrize("how", ["this host's", "nobody"])
def test_the_sandbox_holds_only_so_much_written(how, tmp_path, monkeypatch):
    """``nobody``: root grading without systemd or a cgroup starts the sandbox as the host's nobody, in a
    folder of its own; the room's message files were left behind in the grader's folder (a translated
    room's notebooks graded with English messages, or failing where a test reads them)."""
    try:
        bwrap = check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    if how == "nobody":
        import os

        if os.geteuid() != 0:
            pytest.skip("the nobody sandbox is root's (this test runs as an ordinary user)")
        problem = nobody_sandbox_problem(False)
        if problem:
            pytest.skip(f"the sandbox cannot run as nobody here: {problem}")
        monkeypatch.setattr(executor, "process_limit", lambda *a, **k: ProcessLimit("nobody", "nobody"))
    if not sizes_tmpfs(bwrap):
        pytest.skip("this bwrap cannot size a tmpfs (--size)")
    work = tmp_path / ".sandbox"
    work.mkdir()
    (work / "techday-messages.xx.json").write_text('{"ok": 1}')
    report: dict = {}
    result = run_notebook(_notebook([FILL]), work, Limits(cell_timeout_s=60, notebook_timeout_s=120, disk_mb=32),
                          grade_env("cpu", "ci"), sandbox=True, gpu=False, report=report)
    assert result is not None, report
    outputs = result["cells"][0]["outputs"]
    printed = "".join(o.get("text", "") for o in outputs)
    written = json.loads(printed.splitlines()[0].replace("'", '"'))
    print(written)
    assert written["."] <= 32 and written["/tmp"] <= 32 and written["/dev/shm"] <= 32, written
    assert written["/dev"] == 0 and written["/"] == 0, written
    assert '{"ok": 1}' in printed  # the released files are still there to read
    assert not (work / "fill0.bin").exists()  # and the host's folder got nothing


# The sandbox's own output: the kernel keeps a copy of its original stdout and stderr (ipykernel echoes what
# reaches descriptors 1 and 2 there), and that was ``sandbox.log`` itself, a file on the grading host's disk
# beside the submission. The cell writes 48 MB into each (at most 96 MB on the host's disk, 20 s).
LOG_FLOOD = """\
import os, sys, time
fds = {getattr(s, "_original_stdstream_copy", None) for s in (sys.stdout, sys.stderr)} - {None}
block, wrote, t = b"L" * 2**20, 0, time.monotonic()
for fd in fds:
    for k in range(48):
        if time.monotonic() - t > 20:
            break
        wrote += os.write(fd, block)
print("wrote", wrote // 2**20, "MB into", len(fds), "descriptors")
"""


def test_what_the_sandbox_prints_is_kept_only_so_long(tmp_path):
    """Wrong answer caught: 96 MB written by a cell into ``sandbox.log`` (the sandbox's stdout was that file, on the
    grading host's disk, outside the sized folders and the disk watch, up to RLIMIT_FSIZE a submission, kept after
    grading), where the grader now keeps the first and last 64 kB of what the sandbox prints."""
    result, report = run_sandboxed([LOG_FLOOD, "print('next')"], tmp_path,
                                   Limits(cell_timeout_s=60, notebook_timeout_s=120, memory_mb=1024))
    assert result is not None, report
    printed = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    print(printed, report)
    assert "wrote 96 MB into 2 descriptors" in printed  # the flood reached the sandbox's output
    assert result["cells"][1]["outputs"][0]["text"] == "next\n"  # and the notebook went on
    log = tmp_path / "sandbox.log"
    assert log.stat().st_size < 200 * 1024, log.stat().st_size
    assert b"bytes of the sandbox's output dropped" in log.read_bytes()


# Empty files: a tmpfs's size counts pages, not inodes, and each file holds about 1 kB of the host's memory. The
# cell makes 6,000 (about 6 MB, 3 times the limit below), then waits for the grader's reading.
MANY_FILES = """\
import os, time
for n in range(6000):
    open(f"/tmp/f{n}", "w").close()
print("made", n + 1, "files", flush=True)
time.sleep(5)
"""


def test_a_notebook_with_too_many_files_is_stopped(bwrap, tmp_path):
    """Wrong answer caught: 6,000 empty files in /tmp, `graded`, under a limit of 2,000 (with no limit, a cell made
    300,000 in 14 s: 270 MB of the host's memory under a 32 MB disk limit, which a tmpfs's size does not count)."""
    if not sizes_tmpfs(bwrap):
        pytest.skip("this bwrap cannot size a tmpfs (--size): the folders are on the host's disk")
    result, report = run_sandboxed([MANY_FILES], tmp_path,
                                   Limits(cell_timeout_s=60, notebook_timeout_s=120, disk_mb=32, max_files=2000))
    print(report)
    assert result is None, "the notebook ran to its end"
    assert [e["event"] for e in report["events"]] == ["too-many-files"], report
    assert 2000 < report["events"][0]["files"] <= 7000, report
    assert "over the limit of 2000" in report["problem"]


def test_an_honest_notebook_is_far_below_the_file_limit(bwrap, tmp_path):
    """Wrong answer caught: a reading of the sandbox's inodes that counts the host's (a folder bound from the host's
    disk), or nothing at all (0: the sandbox's mounts never found), either of which stops or never stops notebooks."""
    if not sizes_tmpfs(bwrap):
        pytest.skip("this bwrap cannot size a tmpfs (--size)")
    result, report = run_sandboxed(["import os, time\nfor n in range(300): open(f'/tmp/g{n}', 'w').close()\n"
                                    "time.sleep(3)"], tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120))
    print(report)
    assert result is not None, report
    assert 300 < report["files_peak"] < 1000, report


# The host's own kernel settings: /proc/sys's files answer to the host's uid the sandbox runs as, root's where root
# grades. The cell writes the value it reads back (vm.swappiness: host-wide; the same value changes nothing).
SYSCTL = """\
import os
path = "/proc/sys/vm/swappiness"
value = open(path).read()
try:
    fd = os.open(path, os.O_WRONLY)
    try:
        print("wrote", os.write(fd, value.encode()), "bytes")
    finally:
        os.close(fd)
except OSError as exc:
    print("refused", exc.errno)
"""


def test_the_hosts_kernel_settings_cannot_be_written(tmp_path):
    """Wrong answer caught: a cell that wrote the grading host's vm.swappiness (where root grades, the sandbox's uid is
    the host's root, and bwrap had left /proc/sys writable: vm.drop_caches, vm.min_free_kbytes, kernel.* took too)."""
    result, report = run_sandboxed([SYSCTL], tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120))
    assert result is not None, report
    printed = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    print(printed)
    assert printed.startswith("refused"), printed


# What the grader keeps of a notebook's result: every event becomes a line of nbgrader's worker log, a note of the
# submission's status line (report.json, state.json) and an entry of the sandbox's report; every output an object of
# the grader's memory (about 1.3 kB, parsed and then made a NotebookNode) and the autograded notebook's JSON. The cell
# sets off 20,000 of the referee's tripwires (a refused ctypes call each: 2 s) and shows 20,000 one-byte displays.
EVENT_FLOOD = """\
import ctypes
for n in range(20000):
    try:
        ctypes.CDLL(None).getpid
    except Exception:
        pass
"""
DISPLAY_FLOOD = """\
from IPython.display import display
for n in range(20000):
    display(1)
"""


def test_a_flood_of_events_and_outputs_is_kept_only_so_big(tmp_path):
    """Wrong answers caught: 20,000 tripwire events each kept (8 MB of the result for 100,000; one log line and one
    status note each, into the worker's log and report.json), and 4,300 one-byte displays kept by a cell capped at
    100 kB, 300 kB of JSON and 4,300 objects of the grader's (its cap counted what each display said, not the output
    it made: a notebook of 16 such cells brought back 650,000 outputs and about 850 MB of the grader's memory)."""
    limits = Limits(cell_timeout_s=60, notebook_timeout_s=120, output_bytes=100_000)
    result, report = run_sandboxed([EVENT_FLOOD, DISPLAY_FLOOD, "print('next')"], tmp_path, limits)
    assert result is not None, report
    events = result["events"]
    outputs = result["cells"][1]["outputs"]
    kept = len(json.dumps(outputs))
    print(len(events), events[-2:], len(outputs), kept)
    assert len(events) <= 100, len(events)
    assert any(e.get("times", 1) > 1000 for e in events), events[:3]  # how many there were is still said
    assert kept <= limits.output_bytes * 1.1, (len(outputs), kept)
    assert result["cells"][2]["outputs"][0]["text"] == "next\n"  # and the notebook went on
