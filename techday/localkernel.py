"""Kernels this package starts talk to their client over Unix sockets in a folder of their own.

jupyter_client gives a local kernel five TCP ports on 127.0.0.1, found by binding port 0 and closing
it again; the kernel binds them later. Another process on the machine can be handed the same port in
between (Linux hands ``bind(0)`` only odd ports here: about 14,000 of them), and jupyter_client's guard
against that (``LocalPortCache``) sees its own process only. When two processes start kernels at once,
as ``techday validate --jobs N``, a grading room without the sandbox and the test suite all do, one
kernel cannot bind its port and dies, or one client talks to another's kernel, which ignores messages
signed with another key (jupyter/jupyter_client#487). Named sockets in a fresh folder cannot collide.

Used by ``techday validate`` (papermill), the wrong-solution runner and the grader's executor. Where a
Unix socket is not possible (not POSIX, no writable temporary folder) the kernel keeps TCP.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from jupyter_client.manager import AsyncKernelManager
from traitlets import Float, default

# A Unix socket's path holds at most 107 bytes (Linux's sun_path, less its NUL). The folders here go in
# the temporary folder ($TMPDIR) where a path of ``room`` more bytes still fits, else in /tmp.
SOCKET_PATH_MAX = 107
SHORT_ROOTS = ("/tmp", "/var/tmp")
# What libraries put under a process's temporary folder and bind: multiprocessing's
# pymp-XXXXXXXX/listener-XXXXXXXX (32 bytes; PyTorch's DataLoader workers hand tensors back through it),
# with room to spare.
LIBRARY_SOCKET_ROOM = 48
KERNEL_SOCKET_ROOM = len("/kernel-99")
# Seconds a course run waits for its kernel to exit after the shutdown request (PatientKernelManager).
COURSE_SHUTDOWN_WAIT_S = 60.0


def short_folder(prefix: str, room: int) -> str | None:
    """A fresh folder (0700) whose path leaves ``room`` bytes for socket names below it; None where
    none can be made."""
    if os.name != "posix":
        return None
    for root in (tempfile.gettempdir(), *SHORT_ROOTS):
        try:
            folder = tempfile.mkdtemp(prefix=prefix, dir=root)
        except OSError:
            continue
        if len(folder.encode()) + room <= SOCKET_PATH_MAX:
            return folder
        os.rmdir(folder)
    return None


def socket_folder() -> str | None:
    """A fresh folder for one kernel's five sockets."""
    return short_folder("tdk-", KERNEL_SOCKET_ROOM)


class LocalKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernel listens on Unix sockets in its own folder (see above),
    removed with the kernel's other files."""

    def __init__(self, **kw):
        self._socket_folder = socket_folder() if "transport" not in kw and "ip" not in kw else None
        super().__init__(**kw)

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc" if self._socket_folder else "tcp"

    @default("ip")
    def _ip_default(self) -> str:
        if self._socket_folder and self.transport == "ipc":
            return os.path.join(self._socket_folder, "kernel")
        return super()._ip_default()

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._socket_folder:
            shutil.rmtree(self._socket_folder, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources

    def __del__(self):
        # A client that never started or never cleaned up its kernel still leaves no folder behind.
        try:
            folder = self._socket_folder
            if folder and not self.has_kernel:
                shutil.rmtree(folder, ignore_errors=True)
        except Exception:  # noqa: BLE001 (at interpreter exit the attributes may be gone already)
            pass


class PatientKernelManager(LocalKernelManager):
    """:class:`LocalKernelManager` for the course's own runs of its notebooks (``techday validate``, the
    wrong-solution runner): it waits :data:`COURSE_SHUTDOWN_WAIT_S` for a kernel to exit after the shutdown
    request, where jupyter_client waits 5 s and then kills it. A kernel that imported PyTorch and ONNX
    Runtime can take longer than 5 s to exit on a loaded machine; killed, it never runs its exit handlers,
    so a lab's ``lab.scratch`` folders stay behind and the run fails the lab for leaving files (lab 17 did,
    beside other runs). The grader's executor keeps jupyter_client's 5 s: it grades trainees' kernels, and
    one that ignores the request would hold every notebook after it."""

    shutdown_wait_time = Float(COURSE_SHUTDOWN_WAIT_S, config=True,
                               help="Seconds to wait for the kernel to exit after the shutdown request.")

