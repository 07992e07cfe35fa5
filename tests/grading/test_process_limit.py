"""A fork loop in a trainee's cell stops at the sandbox's process limit (techday.grading.sandbox.process_limit):
the grading host never sees more of the sandbox's processes and threads than the limit, and the cell
gets the error. The loop is bounded on its own too (2000 tries, 20 s; every child exits after 5 s), so
a broken limit cannot load the machine that runs this test."""

import json
import threading
import time

import psutil
import pytest

from techday.grading.config import grade_env
from techday.grading.executor import run_notebook
from techday.grading.sandbox import Limits, SandboxUnavailable, check_sandbox, process_limit

pytestmark = [pytest.mark.grading]

FORK_LOOP = """\
import os, time
children, error = [], None
deadline = time.monotonic() + 20
for attempt in range(2000):
    if time.monotonic() > deadline:
        break
    try:
        pid = os.fork()
    except OSError as exc:
        error = exc
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    children.append(pid)
print('forked', len(children))
if error:
    raise error
"""
LIMIT = 64


def _notebook(cells: list[str]) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb)


class TaskCounter:
    """Samples, from the host, the processes and threads below this test process (the sandbox's)."""

    def __init__(self):
        self.peak, self.samples, self.stop = 0, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        me = psutil.Process()
        while not self.stop.is_set():
            tasks = 0
            for proc in me.children(recursive=True):
                try:
                    tasks += proc.num_threads()
                except psutil.Error:
                    continue
            self.peak, self.samples = max(self.peak, tasks), self.samples + 1
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


@pytest.mark.parametrize("tier", ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def test_a_fork_loop_stops_at_the_process_limit(tmp_path, tier):
    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    limits = Limits(cell_timeout_s=60, notebook_timeout_s=120, max_processes=LIMIT)
    gpu = tier == "gpu"
    how = process_limit(limits, gpu=gpu)
    if how.how == "none":
        pytest.skip(f"no process limit can be set on this host: {how.text}")
    work = tmp_path / ".sandbox"
    work.mkdir()
    report: dict = {}
    with TaskCounter() as host:
        result = run_notebook(_notebook([FORK_LOOP, "print('after')"]), work, limits, grade_env(tier, "ci"),
                              sandbox=True, gpu=gpu, report=report)
    assert result is not None, report
    loop, after = result["cells"]
    errors = [o for o in loop["outputs"] if o["output_type"] == "error"]
    printed = "".join(o.get("text", "") for o in loop["outputs"] if o["output_type"] == "stream")
    print(f"{how.text}: the host saw at most {host.peak} tasks in {host.samples} samples; the cell printed "
          f"{printed.strip()!r} and raised {[e['ename'] for e in errors]}")
    assert errors and errors[0]["ename"] == "BlockingIOError", json.dumps(loop)[:2000]  # EAGAIN from fork()
    forked = int(printed.split()[-1])
    assert 0 < forked < LIMIT, printed  # stopped by the limit, long before the loop's own 2000
    assert host.samples > 10
    # Everything in the sandbox counts (bwrap's two processes, the executor, the kernel, their threads);
    # with RLIMIT_NPROC the outer bwrap process is outside the sandbox's user namespace: one more.
    assert host.peak <= LIMIT + (1 if how.how == "rlimit" else 0), host.peak
    assert "after" in "".join(o.get("text", "") for o in after["outputs"])  # the kernel lived on
