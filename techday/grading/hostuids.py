"""One host uid (and gid) for each sandbox that runs at a time, where root grades.

Many of the kernel's budgets are kept per host user, whatever namespace a process is in: pipe buffers past
``fs.pipe-user-pages-soft``, epoll watches (``fs.epoll.max_user_watches``), descriptors in flight over Unix sockets
(``RLIMIT_NOFILE``), inotify instances and watches, fanotify groups, POSIX message queue bytes
(``RLIMIT_MSGQUEUE``), keys and their bytes (``kernel.keys.maxkeys``), queued signals (``RLIMIT_SIGPENDING``),
processes (``RLIMIT_NPROC``, as counted at the host's level). Where every sandbox ran as the host's one ``nobody``,
a notebook that spent one of them spent it for every notebook graded beside it: a neighbour's pipes were cut to
8 kB and could not grow, and it could pass no descriptor to a DataLoader's worker
(``tests/grading/test_sandbox_uids.py``).

Root now gives each sandbox a uid of its own, from a range no account of the host uses
(``TECHDAY_SANDBOX_UIDS``, ``FIRST-LAST``; by default :data:`DEFAULT_RANGE`), with the gid of the same number.
A range that holds a uid or gid of ``/etc/passwd`` or ``/etc/group`` (as the system's name service lists them), or
that overlaps a range of ``/etc/subuid`` or ``/etc/subgid`` (another tool's containers), is refused: grading stops
(:class:`UidRangeError`, a :class:`~techday.grading.sandbox.SandboxUnavailable`) rather than run a trainee's code as
someone's uid.

A uid is held with a lock on a file of its own in :data:`LOCKS` (a folder of root's, closed to others): ``flock``,
so that the graders of one machine (the pool's workers, a second ``techday grade``, the formgrader) never hand out
one uid twice, and a grader that dies lets go of its uids with its descriptors. A uid is handed out only when no
process of the host has it (real, effective, saved or file-system uid or gid: ``/proc/*/status``) and the kernel
holds no key of it (``/proc/key-users``); a uid whose processes linger is skipped, not reused. On release, what is
left of the uid's processes is killed (nothing else runs as it: it is held) and the lock let go. The outside check's
scorer (:func:`techday.grading.outside.run_scorer`) takes one the same way for its own sandbox, never the one the
notebook it judges ran as (``avoid``).

Not covered: the limits the kernel keeps for the whole machine (``fs.file-max``, ``kernel.threads-max``,
``kernel.pid_max``, ``fs.aio-max-nr``, ``kernel.pty.max``, ``net.ipv4.tcp_mem``...), which no uid splits; and a grader
that is not root has no uid to give (every sandbox runs as the grader's own uid, and the run's first lines say the
budgets are shared). See grading/README.md, "A host uid per sandbox"."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from .sandbox import SandboxUnavailable

# Above the uids systemd hands out (containers up to 1,879,048,191, its dynamic users at 61,184-65,519), below 2**31
# (tools that keep a uid in a signed int), and outside the subordinate ranges useradd gives (100,000 and up, 65,536
# each: 2**31 would take 32,000 accounts).
DEFAULT_RANGE = (2_000_000_000, 2_000_004_095)
ENV = "TECHDAY_SANDBOX_UIDS"
LOCKS = Path("/run/techday-sandbox-uids")
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
NEVER = {0, 65534, 65535, 2**32 - 1}  # root, nobody, and the two "no uid" values of 16 and 32 bits
MAX_COUNT = 65536


class NoFreeUid(SandboxUnavailable):
    """Every uid of the range is held now, or has something left: a state of the moment, not of the host."""


class UidRangeError(SandboxUnavailable):
    """The configured range of sandbox uids cannot be used; the message says why and what to do."""


def _parse(text: str) -> tuple[int, int]:
    first, sep, last = text.strip().partition("-")
    try:
        lo, hi = int(first), int(last if sep else first)
    except ValueError:
        raise UidRangeError(f"{ENV}={text!r}: not a range of uids (FIRST-LAST, e.g. 2000000000-2000004095)") from None
    return lo, hi


def _accounts() -> tuple[dict[int, str], dict[int, str]]:
    """The uids and gids the host's name service lists (``/etc/passwd``, ``/etc/group`` and what NSS adds)."""
    import grp
    import pwd

    return ({p.pw_uid: p.pw_name for p in pwd.getpwall()}, {g.gr_gid: g.gr_name for g in grp.getgrall()})


def _subids() -> list[tuple[str, int, int, str]]:
    """(file, first, last, owner) of each range in ``/etc/subuid`` and ``/etc/subgid``."""
    out = []
    for path in SUBID_FILES:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.strip().split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                start, count = int(fields[1]), int(fields[2])
                out.append((str(path), start, start + count - 1, fields[0]))
    return out


_CHECKED: dict[str, tuple[int, int]] = {}


def uid_range() -> tuple[int, int]:
    """The range of sandbox uids (first, last), checked against the host's accounts (once a process for a given
    ``TECHDAY_SANDBOX_UIDS``); raises :class:`UidRangeError` for one that cannot be used."""
    text = os.environ.get(ENV, "").strip()
    if text in _CHECKED:
        return _CHECKED[text]
    lo, hi = _parse(text) if text else DEFAULT_RANGE
    if not 1 <= lo <= hi < 2**32 - 1 or hi - lo + 1 > MAX_COUNT:
        raise UidRangeError(f"{ENV}: {lo}-{hi} is not a range of 1 to {MAX_COUNT} uids between 1 and {2**32 - 2}")
    bad = sorted(u for u in NEVER if lo <= u <= hi)
    users, groups = _accounts()
    clash = [f"uid {u} ({users[u]})" for u in sorted(users) if lo <= u <= hi]
    clash += [f"gid {g} ({groups[g]})" for g in sorted(groups) if lo <= g <= hi]
    clash += [f"{path}: {owner}'s {start}-{end}" for path, start, end, owner in _subids() if start <= hi and lo <= end]
    if bad or clash:
        what = ", ".join([*(f"uid {u}" for u in bad), *clash][:5])
        raise UidRangeError(f"the range of sandbox uids {lo}-{hi} holds {what}: a sandbox would run as someone's "
                            f"uid. Set {ENV}=FIRST-LAST to a range no account, group or subordinate range uses "
                            "(see grading/README.md)")
    _CHECKED[text] = (lo, hi)
    return lo, hi


def ids_in_use() -> set[int]:
    """Every uid and gid some process of the host has (real, effective, saved, file system), from ``/proc``."""
    used: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as f:
                for line in f:
                    if line.startswith((b"Uid:", b"Gid:")):
                        used.update(int(x) for x in line.split()[1:])
        except (OSError, ValueError):
            continue
    return used


def key_users() -> set[int]:
    """The uids the kernel holds keys for (``/proc/key-users``)."""
    try:
        text = Path("/proc/key-users").read_text(encoding="ascii")
    except OSError:
        return set()
    return {int(line.split(":")[0]) for line in text.splitlines() if line.split(":")[0].strip().isdigit()}


def _lock_folder() -> Path:
    """:data:`LOCKS`, made root's and closed to others, or refused where it is not."""
    with contextlib.suppress(FileExistsError):
        LOCKS.mkdir(mode=0o700)
    st = os.lstat(LOCKS)
    import stat

    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise UidRangeError(f"{LOCKS} is not a folder of root's closed to others: it holds which sandbox has which "
                            "uid (remove it, and it is made again)")
    return LOCKS


@dataclass
class HostUser:
    """A uid and gid held for one sandbox, until :meth:`release`."""

    uid: int
    gid: int
    fd: int | None

    @property
    def ids(self) -> tuple[int, int]:
        return self.uid, self.gid

    def __del__(self):
        # A holder dropped without release (an error between the hand-out and the sandbox's start): the lock goes
        # with it, not with the long-lived worker process that made it. Its processes, if any, keep the uid skipped.
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def processes(self) -> list[int]:
        """The host's processes that have this uid or gid, anywhere in their ids."""
        pids = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/status", "rb") as f:
                    ids = {int(x) for line in f if line.startswith((b"Uid:", b"Gid:")) for x in line.split()[1:]}
            except (OSError, ValueError):
                continue
            if self.uid in ids or self.gid in ids:
                pids.append(int(entry.name))
        return pids

    def release(self) -> list[int]:
        """Kill what is left of the uid's processes (only a sandbox of this holder runs as it), then let the uid go;
        the processes found (a later :func:`allocate` skips the uid while any of them is still there)."""
        left = self.processes()
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # the lock goes with the descriptor
        return left


def allocate(avoid=()) -> HostUser:
    """A uid of the range that no other sandbox holds and nothing of which is left on the host (its processes, its
    keys), and not one of ``avoid`` (the grader's scorer passes the uid the notebook it judges ran as: what that
    notebook left of its uid, if anything outlived its processes, never reaches the scorer), held until
    :meth:`HostUser.release`. Raises :class:`UidRangeError` for a range that cannot be used, or
    :class:`SandboxUnavailable` when every uid of it is held or lingering."""
    import grp
    import pwd

    lo, hi = uid_range()
    folder = _lock_folder()
    used, keys = ids_in_use(), key_users()
    lingering = 0
    avoid = {int(u) for u in avoid if u is not None}
    for uid in range(lo, hi + 1):
        if uid in avoid:
            continue
        fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if uid in used or uid in keys:  # held by no one, but something of it is still there
            lingering += 1
            os.close(fd)
            continue
        try:  # an account made since the range was checked
            pwd.getpwuid(uid)
            clash = True
        except KeyError:
            try:
                grp.getgrgid(uid)
                clash = True
            except KeyError:
                clash = False
        if clash:
            os.close(fd)
            _CHECKED.clear()
            raise UidRangeError(f"uid or gid {uid}, of the range of sandbox uids {lo}-{hi}, is now an account's or "
                                f"a group's: set {ENV} to a range no account uses (see grading/README.md)")
        return HostUser(uid, uid, fd)
    raise NoFreeUid(f"no free sandbox uid in {lo}-{hi}: every one is held by a sandbox running now, or has "
                             f"processes or keys left ({lingering} of them); widen {ENV}")
