"""techday.proctree: a process, what it started in its own session, and its group all stop."""

import subprocess
import sys
import time

from techday.proctree import descendants, kill_tree

# A parent that starts a child in a new session (as Jupyter starts a kernel) and a grandchild in its
# own group, then waits; the child ignores SIGTERM, so only SIGKILL stops it.
TREE = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
    start_new_session=True, stdout=subprocess.PIPE, text=True)
child.stdout.readline()
grand = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, grand.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start():
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child, grand = map(int, proc.stdout.readline().split())
    assert set(descendants(proc.pid)) >= {child, grand}
    return proc, child, grand


def _gone(pids, within=5.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_kill_tree_stops_everything_at_once():
    proc, child, grand = _start()
    kill_tree(proc.pid)
    assert proc.wait(timeout=5) == -9
    proc.stdout.close()
    assert _gone([child, grand]) == []


def test_kill_tree_with_grace_terms_first_then_kills_what_ignores_it():
    proc, child, grand = _start()
    t0 = time.monotonic()
    kill_tree(proc.pid, grace_s=0.5, exited=lambda: proc.poll() is not None)
    assert proc.wait(timeout=5) == -15  # the parent took the SIGTERM
    proc.stdout.close()
    assert time.monotonic() - t0 < 5
    assert _gone([child, grand]) == []  # the child ignored SIGTERM: the SIGKILL after the grace got it


def test_run_kills_the_whole_tree_on_a_timeout():
    """Caught: subprocess.run's timeout, which kills the child and leaves the kernel it started running
    (the wrong-solution runs and nbgrader once used it)."""
    import pytest

    from techday.proctree import run

    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        run([sys.executable, "-c", TREE], 3)
    assert time.monotonic() - t0 < 30
    pids = [int(p) for p in (caught.value.output or "").split()]
    assert len(pids) == 2, f"the tree started before the limit: {caught.value.output!r}"
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "a process of the tree outlived the timeout"


def test_run_returns_like_subprocess_run():
    from techday.proctree import child_env, run

    out = run([sys.executable, "-c", "import os, sys; print(os.environ['TECHDAY_TIER'], os.environ.get('NUMBA_ENABLE_CUDASIM')); sys.exit(3)"],
              30, env=child_env("cpu", "ci"))
    assert (out.returncode, out.stdout.split()) == (3, ["cpu", "1"])
    gpu = run([sys.executable, "-c", "import os; print(os.environ.get('NUMBA_ENABLE_CUDASIM'))"], 30,
              env=child_env("gpu", "full", base={**child_env("cpu", "ci")}))
    assert gpu.stdout.strip() == "None", "a GPU child never inherits the simulator"
