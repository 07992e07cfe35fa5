"""Kernels this package starts (validate, wrong solutions, the grader) listen on Unix sockets of their
own, so that two processes starting kernels at once cannot be handed one TCP port
(techday/localkernel.py: jupyter/jupyter_client#487)."""

import asyncio
import os
import stat
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from techday import localkernel
from techday.localkernel import LocalKernelManager

pytestmark = pytest.mark.skipif(os.name != "posix", reason="Unix sockets: POSIX only (elsewhere TCP is kept)")

# What the kernel itself says it listens on, and whether those are sockets in its folder.
SELF_REPORT = """
import json, os, stat
from ipykernel.connect import get_connection_info
info = get_connection_info(unpack=True)
names = [f"{info['ip']}-{info[k]}" for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
print(json.dumps({"transport": info["transport"], "ip": info["ip"],
                  "sockets": [os.path.exists(n) and stat.S_ISSOCK(os.stat(n).st_mode) for n in names]}))
"""


def _client(manager=LocalKernelManager, code=SELF_REPORT):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    return nb, NotebookClient(nb, kernel_name="python3", kernel_manager_class=manager, timeout=120)


def _report(nb) -> dict:
    import json

    out = nb.cells[0].outputs
    assert out and out[0].get("name") == "stdout", out
    return json.loads(out[0]["text"])


def _run(manager=LocalKernelManager, code=SELF_REPORT):
    nb, client = _client(manager, code)
    client.execute()
    return _report(nb)


async def _at_once(n: int) -> list[dict]:
    started = [_client() for _ in range(n)]
    await asyncio.gather(*(client.async_execute() for _, client in started))
    return [_report(nb) for nb, _ in started]


def _folders(root: Path) -> set[str]:
    return {p.name for p in root.glob("tdk-*")}


def test_kernels_started_at_once_each_listen_on_sockets_of_their_own(tmp_path, monkeypatch):
    """Four kernels at once: each on ipc, in its own folder under $TMPDIR, every channel a Unix socket;
    the folders are gone when the kernels are. (jupyter_client's default, TCP, is what collided.)"""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(localkernel.tempfile, "tempdir", None)  # read $TMPDIR again
    seen = asyncio.run(_at_once(4))  # one event loop, closed at the end (no thread leaves one open)
    assert all(s["transport"] == "ipc" for s in seen), seen
    folders = {Path(s["ip"]).parent for s in seen}
    assert len(folders) == 4 and all(f.parent == tmp_path and f.name.startswith("tdk-") for f in folders), seen
    assert all(all(s["sockets"]) for s in seen), seen
    assert _folders(tmp_path) == set(), "a kernel's socket folder was left behind"


def test_a_folder_too_deep_for_a_socket_name_is_not_used(tmp_path, monkeypatch):
    """A socket's name holds at most 107 bytes: under a deep $TMPDIR the folder goes to /tmp instead
    (the kernel would otherwise fail to bind)."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(localkernel.tempfile, "tempdir", None)
    folder = localkernel.socket_folder()
    try:
        assert folder is not None and not folder.startswith(str(deep))
        assert len(os.path.join(folder, "kernel-99")) <= localkernel.SOCKET_PATH_MAX
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    finally:
        if folder:
            os.rmdir(folder)
    assert list(deep.iterdir()) == []


def test_where_no_folder_can_be_made_the_kernel_keeps_tcp(monkeypatch):
    monkeypatch.setattr(localkernel, "socket_folder", lambda: None)
    seen = _run()
    assert seen["transport"] == "tcp" and seen["ip"] == "127.0.0.1", seen


def test_an_explicit_transport_is_kept():
    km = LocalKernelManager(transport="tcp")
    assert km.transport == "tcp" and km._socket_folder is None


def test_every_place_the_package_starts_kernels_names_it():
    """A module of the package that runs notebooks (nbclient, papermill) names this manager (or the
    course runs' :class:`PatientKernelManager`, one of its kind); one added later without it fails here."""
    root = Path(localkernel.__file__).parent
    starters = [p for p in root.rglob("*.py")
                if any(k in p.read_text(encoding="utf-8") for k in ("NotebookClient", "execute_notebook("))]
    assert {p.relative_to(root).as_posix() for p in starters} >= {
        "validate/runner.py", "validate/variants.py", "grading/sandbox_exec.py"}
    missing = [str(p) for p in starters
               if not any(k in p.read_text(encoding="utf-8") for k in ("LocalKernelManager", "PatientKernelManager"))]
    assert not missing, missing


def test_a_course_run_lets_a_slow_kernel_exit_and_run_its_exit_handlers(tmp_path):
    """Wrong answer caught: a course run's kernel killed 5 s into its shutdown (jupyter_client's wait),
    so its exit handlers never ran and a lab's ``lab.scratch`` folder stayed behind: ``techday validate``
    then failed lab 17 for leaving files when the machine was loaded. Here the kernel's exit takes 8 s
    (an exit handler that sleeps, then writes a file): the course's manager waits for it."""
    from techday.localkernel import COURSE_SHUTDOWN_WAIT_S, PatientKernelManager

    assert COURSE_SHUTDOWN_WAIT_S > 8 + 20, "the wait must leave a loaded machine room beyond the handler's 8 s"
    done = tmp_path / "exit-handler-ran"
    code = (f"import atexit, pathlib, time\natexit.register(lambda: (time.sleep(8), "
            f"pathlib.Path({str(done)!r}).write_text('ran')))\n" + SELF_REPORT)
    assert _run(PatientKernelManager, code)["transport"] == "ipc"
    assert done.is_file(), "the kernel was killed before its exit handlers ran"
