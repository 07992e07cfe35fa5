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
