"""Files written whole or not at all: a temporary file beside the target, then ``os.replace``.

Every file a person would lose work in, or a later command would read, is written through here:
translation stamps (``labs/<lab>/<lab>.ko.toml``, the course documents' Korean twins), the locked
install sets (``docker/locks/``), notebooks rewritten in place (``techday fmt --fix``), ``techday run``'s
summary and JUnit, the grading contract's and the kernel check's records, ``techday bench``'s results
and report, the leaderboard, certificates and the pass/fail list, the hub's account lists. Ctrl-C,
SIGTERM, an exception while the text is made or a full disk between the first byte and the last
leaves the file as it was before (and no temporary file beside it): a reader sees the old whole file
or the new whole file, never half of one.

A symbolic link is written through (its target replaced, the link kept), as ``open`` would.
The temporary file takes the mode the target had (or the one a plain ``open`` would give under the
umask), so a rewritten committed file keeps its permissions.

What it does not cover: a power cut (nothing is fsynced: a file system may keep the rename and lose
the data), two writers racing for one file (the last rename wins, whole), files appended to over
time (logs), and files another program writes (nbgrader's gradebook, papermill's notebook as it runs).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def replacing(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
              newline: str | None = None, perms: int | None = None) -> Iterator:
    """Open a temporary file beside ``path`` for writing (``mode`` ``"w"`` or ``"wb"``); when the block
    ends without an exception, it replaces ``path``. On any exception (``KeyboardInterrupt`` included)
    the temporary file is removed and ``path`` is untouched. ``perms``: the new file's permission bits
    (default: those ``path`` has, else the umask's)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode {mode!r}: only 'w' and 'wb'")
    path = Path(path)
    if path.is_symlink():  # written through, as open() would: the link stays, its target is replaced
        path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.chmod(tmp, _mode_for(path) if perms is None else perms)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding,
                       newline=None if "b" in mode else newline) as f:
            fd = -1
            yield f
        os.replace(tmp, path)
    except BaseException as exc:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno and exc.filename in (None, tmp):
            # A full disk says "No space left on device" with no file name (or the temporary's):
            # name the file the person asked for, which is as it was.
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8", *, perms: int | None = None) -> Path:
    """``Path(path).write_text(text)``, whole or not at all. Returns ``path``."""
    with replacing(path, "w", encoding=encoding, perms=perms) as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes, *, perms: int | None = None) -> Path:
    """``Path(path).write_bytes(data)``, whole or not at all. Returns ``path``."""
    with replacing(path, "wb", perms=perms) as f:
        f.write(data)
    return Path(path)


__all__ = ["replacing", "write_bytes", "write_text"]
