"""What one trainee may keep in the shared exchange, and the sweep that holds every uid to it from outside.

nbgrader keeps every submission in ``inbound`` under a new name, and ``inbound`` is open for anyone to add
to (3733): a trainee who submits in a loop, or writes into ``inbound`` by hand as their own uid, fills the
exchange's disk, and every other trainee's hand-in fails. Two layers hold each trainee to a budget:

- the trainee's own submit (:class:`techday.hub.exchange.ExchangeSubmit`) keeps the newest
  ``keep`` submissions of each lab (older ones of the same trainee are removed after a new one is in
  place), refuses a submission that would take the trainee past ``max_bytes`` in all, and refuses any
  submission while the exchange's disk has less than ``min_free`` free. It runs as the trainee, who can
  skip it (write into ``inbound`` by hand, delete the record of their submissions): it is the clear
  message, not the wall.
- :func:`sweep`, run by the hub (as root, the only user that may remove a trainee's files: a submission is
  ``0750`` and its owner's) every minute: it lists ``inbound`` and charges every entry to its **owner
  uid**, never to the name (names are anyone's to choose). Per uid it keeps the newest ``keep`` well-formed
  entries of each lab in its own name and removes the rest, then removes the oldest until the uid is within
  ``max_bytes`` and ``max_files``. What a trainee's process did, with or without the course's code, is recomputed from the
  filesystem each pass. It sweeps only a course folder and ``inbound`` that are real folders of the grader or root
  (:func:`graders_folder`), opens nothing there but folders, each ``O_NOFOLLOW|O_DIRECTORY|O_NONBLOCK``
  (:func:`open_folder`), and refuses a budget it cannot honour (:class:`Budget`): each refusal removes nothing.

Sizes are charged the same way on both sides (:func:`tree_cost`): every file, folder and link at least one
4 KiB block, a file its size rounded up to blocks or its allocated blocks, whichever is more, each inode
once. The defaults (``TECHDAY_EXCHANGE_KEEP=3``, ``TECHDAY_EXCHANGE_QUOTA=300M``,
``TECHDAY_EXCHANGE_MIN_FREE=1G``, ``TECHDAY_EXCHANGE_FILES=10000``) are sized in docker/README.md, "The exchange's disk".
"""

from __future__ import annotations

import datetime
import errno
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

KEEP = 3                  # kept submissions per trainee and lab
QUOTA = "300M"            # bytes per trainee in the exchange, every lab together
MIN_FREE = "1G"           # no submission while the exchange's disk has less free
FILES = 10_000            # files, folders and links per trainee in the exchange (inodes run out before bytes)
BLOCK = 4096
MAX_INODES = 200_000      # a tree with more is charged as over any budget (the walk stops there)
MAX_DEPTH = 256           # folders open at once along one path; a tree nested deeper is charged as over any budget
OVER = 1 << 62            # the cost of a tree the walk does not finish
FOLDER_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
PARTIAL = ".partial-"     # a submission being written: no '+', so collect never takes it
YOUNG_S = 600             # an entry changed this recently may be a submission still being written


# The budget's variables: (variable, Budget field, default, least, kind). One reader for the trainee's submit, the
# hub's sweep and `techday hub check` (:meth:`Budget.from_env`): the three cannot read one value three ways.
SETTINGS = (("TECHDAY_EXCHANGE_KEEP", "keep", str(KEEP), 1, "whole"),
            ("TECHDAY_EXCHANGE_QUOTA", "max_bytes", QUOTA, 0, "size"),
            ("TECHDAY_EXCHANGE_MIN_FREE", "min_free", MIN_FREE, 0, "size"),
            ("TECHDAY_EXCHANGE_FILES", "max_files", str(FILES), 0, "whole"))


def expected_text(name: str) -> str:
    """What ``name`` (one of :data:`SETTINGS`) takes, in the reader's language."""
    from ..i18n import msg

    if name == "TECHDAY_EXCHANGE_KEEP":
        return msg("techday.exchange_expect_keep", "a whole number of 1 or more, such as 3")
    if name == "TECHDAY_EXCHANGE_FILES":
        return msg("techday.exchange_expect_files", "a whole number of 0 or more, such as 10000 (0: no bound)")
    return msg("techday.exchange_expect_size", "a size of 0 or more, such as 300M or 1G (0: no bound)")


class BudgetError(ValueError):
    """A budget value outside the allow-list: the variable (``name``), the value as written (``value``) and what
    it takes (``expected``). Its text is the admin's (the sweep, ``techday hub check``); the trainee's submit says
    it in its own words (:func:`techday.hub.exchange.budget_refused_text`)."""

    def __init__(self, name: str, value: object):
        from ..i18n import msg

        self.name, self.value, self.expected = name, value, expected_text(name)
        super().__init__(msg("techday.exchange_budget_invalid", "{name}={value}: expected {expected}; the sweep "
                             "removes nothing and no submission is taken until it is (docker/README.md, \"The "
                             "exchange's disk\")", name=name, value=self.shown, expected=self.expected))

    @property
    def shown(self) -> str:
        """The value on one line: quoted as Python writes it (``'three'``, ``''``, escapes for a newline), cut at
        60 characters."""
        text = repr(self.value) if isinstance(self.value, str) else str(self.value)
        return text if len(text) <= 60 else text[:57] + "..."


def read_setting(name: str, text: str, least: int, kind: str) -> int:
    """``text`` (one variable of :data:`SETTINGS`, as written) as its number, or :class:`BudgetError`. An
    allow-list: ASCII digits (a size: with a decimal part and a unit ``K M G T``, ``B``/``iB`` optional, as
    :func:`techday.hub.config.parse_size` reads them), at least ``least``. Refused: empty (set but empty is not
    unset: an admin who wrote ``QUOTA=`` may have meant no bound or the default), a sign, ``1e4``, full-width
    digits (``int()`` takes them), a size that rounds to 0 bytes though not written as 0 (``0.0001K``: no bound)."""
    from .config import parse_size

    clean = text.strip()
    try:
        if not clean or not clean.isascii():
            raise ValueError(text)
        if kind == "whole":
            if not clean.isdigit():
                raise ValueError(text)
            value = int(clean)
        else:
            value = parse_size(clean)
            if value == 0 and any(c in "123456789" for c in clean):
                raise ValueError(text)
    except ValueError:
        raise BudgetError(name, text) from None
    if value < least:
        raise BudgetError(name, text)
    return value


@dataclass(frozen=True)
class Budget:
    keep: int = KEEP
    max_bytes: int = 0
    min_free: int = 0
    max_files: int = 0     # files, folders and links one trainee may keep there (the sweep counts them)

    def __post_init__(self) -> None:
        """An allow-list of values, wherever a budget is made: ``keep`` a whole number of 1 or more, the bytes, the
        floor and the files whole numbers of 0 or more (0: no bound). Caught: ``TECHDAY_EXCHANGE_FILES=-1`` put
        every uid over the budget for good, and root's sweep removed the room's every submission each minute."""
        for name, attr, _, least, _ in SETTINGS:
            value = getattr(self, attr)
            if type(value) is not int or value < least:
                raise BudgetError(name, value)

    @classmethod
    def from_env(cls, env=None) -> Budget:
        """The budget the ``TECHDAY_EXCHANGE_*`` variables of ``env`` (default: this process's) give: an unset
        variable is its default; one set to anything :func:`read_setting` refuses raises :class:`BudgetError`
        (a ValueError) naming it, the first of :data:`SETTINGS` order."""
        env = os.environ if env is None else env
        return cls(**{attr: read_setting(name, env[name] if name in env else default, least, kind)
                      for name, attr, default, least, kind in SETTINGS})


def tree_cost(path: str | os.PathLike, limit: int = MAX_INODES) -> int:
    """Bytes ``path`` is charged: :func:`tree_usage`'s first half."""
    return tree_usage(path, limit)[0]


def tree_usage(path: str | os.PathLike, limit: int = MAX_INODES) -> tuple[int, int]:
    """(bytes, inodes) ``path`` is charged (a folder with all it holds; a file; a link): each inode once (hard
    links), at least one block each. Every folder is opened by :func:`open_folder` (never a link, never
    anything but a folder, never blocking): whatever its owner swaps in mid-walk, root opens nothing outside
    the tree and never waits on a FIFO. More than ``limit`` inodes, or folders nested deeper than
    :data:`MAX_DEPTH`: a cost over any budget."""
    def charge(st: os.stat_result) -> int:
        return max(-(-st.st_size // BLOCK) * BLOCK, st.st_blocks * 512, BLOCK)

    try:
        fd = open_folder(path)
    except OSError:   # a file, a link, a FIFO (or gone): one inode, never opened
        try:
            top = os.lstat(path)
        except OSError:
            return 0, 0
        return charge(top), 1
    stack: list[tuple[int, list[str]]] = [(fd, [])]
    try:
        top = os.fstat(fd)
        seen = {(top.st_dev, top.st_ino)}
        total = charge(top)
        try:
            stack[0] = (fd, os.listdir(fd))
        except OSError:   # unreadable even to root (an I/O error): the folder itself, this pass
            pass
        while stack:
            dir_fd, names = stack[-1]
            if not names:
                os.close(stack.pop()[0])
                continue
            name = names.pop()
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if len(seen) > limit:
                return OVER, len(seen)
            total += charge(st)
            if stat.S_ISDIR(st.st_mode):
                if len(stack) >= MAX_DEPTH:
                    return OVER, len(seen)
                try:
                    sub = open_folder(name, dir_fd)
                except OSError:   # swapped for a link, a FIFO, a file since the stat: charged as seen
                    continue
                got = os.fstat(sub)
                if (got.st_dev, got.st_ino) != (st.st_dev, st.st_ino):   # another folder swapped in: its own
                    if (got.st_dev, got.st_ino) in seen:                  # inode too, and each folder once
                        os.close(sub)
                        continue
                    seen.add((got.st_dev, got.st_ino))
                    total += charge(got)
                try:
                    stack.append((sub, os.listdir(sub)))
                except OSError:
                    os.close(sub)
    finally:
        for dir_fd, _ in stack:
            os.close(dir_fd)
    return total, len(seen)


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes an unprivileged user may still write on the filesystem of ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def name_time(name: str) -> datetime.datetime | None:
    """The submission time in an entry's name (nbgrader's ``student+lab+time+random``), or None."""
    from nbgrader.utils import parse_utc

    parts = name.rsplit("+", 3)
    if len(parts) != 4:
        return None
    try:
        return parse_utc(parts[2])
    except (ValueError, OverflowError, TypeError):
        return None


def open_folder(name: str | os.PathLike, dir_fd: int | None = None) -> int:
    """Open a folder of ``inbound`` the only way the sweep (root, over trees their owners reshape at any
    moment) opens anything there: ``O_NOFOLLOW`` (a link swapped in is refused, never followed out of the
    tree), ``O_DIRECTORY`` (a FIFO, a file, a device node is refused before it is opened: nothing blocks, no
    device's open runs), ``O_NONBLOCK``. Caught: Python's ``os.fwalk`` and ``shutil.rmtree`` check a
    sub-folder with ``lstat`` and then ``open`` it plainly, following links and blocking: a folder swapped for
    a FIFO between the two stopped the sweep for good."""
    return os.open(name, FOLDER_OPEN, dir_fd=dir_fd)


def graders_folder(path: str | os.PathLike, owners: tuple[int, ...]) -> os.stat_result:
    """``path`` as the sweep accepts the course's folder and its ``inbound``: a real folder (opened by
    :func:`open_folder`: a link is refused, never followed) owned by one of ``owners`` (the grader, root). Caught:
    the exchange's root is 1777, so before the first release a trainee could make the course's folder and an
    ``inbound`` in it (a link to any folder of the hub's, or a folder of their own), and root's sweep removed what
    it found there. Raises OSError (EPERM) saying what it found."""
    from ..i18n import msg

    try:
        fd = open_folder(path)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        what = (msg("techday.exchange_sweep_a_link", "a link") if exc.errno == errno.ELOOP
                else msg("techday.exchange_sweep_not_folder", "not a folder"))
    else:
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if st.st_uid in owners:
            return st
        what = msg("techday.exchange_sweep_folder_of", "a folder of uid {uid}", uid=st.st_uid)
    raise OSError(errno.EPERM, msg("techday.exchange_sweep_not_graders",
                                   "{path} is {what}, not a folder of the grader's (uid {owners}): the sweep removes "
                                   "nothing there. Whoever made it may control what is swept: move it aside (as root) "
                                   "and release again", path=os.fspath(path), what=what,
                                   owners="/".join(str(o) for o in owners)))


def remove_entry(path: str) -> None:
    """Remove an entry of ``inbound``: a folder with all it holds (every folder opened by
    :func:`open_folder`, each name removed relative to its folder's descriptor: a link is removed, never
    followed; a folder swapped for a FIFO or a link mid-removal is removed as a name), or a file, a link, a
    FIFO. Folders nested deeper than :data:`MAX_DEPTH`: GNU ``rm -rf --one-file-system``, which walks the
    same way (``O_NOFOLLOW|O_DIRECTORY|O_NONBLOCK``) without a descriptor per level."""
    import subprocess

    try:
        fd = open_folder(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        os.unlink(path)
        return
    try:
        whole = _empty(fd)
    finally:
        os.close(fd)
    if not whole:
        done = subprocess.run(["rm", "-rf", "--one-file-system", "--", path], capture_output=True, text=True,
                              timeout=600)
        if done.returncode:
            raise OSError(done.stderr.strip() or "rm failed")
        return
    os.rmdir(path)


def _empty(top: int) -> bool:
    """Remove everything in the folder open as ``top`` (see :func:`remove_entry`). False: folders nested
    deeper than :data:`MAX_DEPTH` were left."""
    stack: list[tuple[int, list[str], str]] = [(top, os.listdir(top), "")]
    try:
        while stack:
            dir_fd, names, _ = stack[-1]
            if not names:
                _, _, name = stack.pop()
                if stack:
                    os.close(dir_fd)
                    os.rmdir(name, dir_fd=stack[-1][0])
                continue
            name = names.pop()
            try:
                sub = open_folder(name, dir_fd)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                try:
                    os.unlink(name, dir_fd=dir_fd)   # a file, a link, a FIFO: the name goes, nothing is opened
                except FileNotFoundError:
                    pass
                continue
            if len(stack) >= MAX_DEPTH:
                os.close(sub)
                return False
            try:
                stack.append((sub, os.listdir(sub), name))
            except OSError:
                os.close(sub)
                raise
        return True
    finally:
        for dir_fd, _, _ in stack[1:]:
            os.close(dir_fd)


@dataclass
class Removed:
    name: str
    uid: int
    bytes: int
    why: str
    done: bool = True
    error: str = ""


@dataclass
class SweepReport:
    removed: list[Removed] = field(default_factory=list)
    usage: dict[int, int] = field(default_factory=dict)   # uid: bytes kept after the pass


def sweep(inbound: str | os.PathLike, budget: Budget, uids: dict[str, int], remove: bool = True,
          now: float | None = None, log=None, owners: tuple[int, ...] | None = None) -> SweepReport:
    """Hold every uid that owns entries in ``inbound`` to ``budget`` (see the module docstring).

    ``uids``: each student's uid (the accounts file); an entry counts as a submission of a lab only when its
    name is ``student+lab+time+x``, its owner is that student's uid (or the file names no such student:
    a roster cut short must not remove the room's work) and it is a folder (a lab taken back
    from ``outbound`` after the room submitted still has its submissions: they are kept, within the
    budget). Everything else a trainee's uid owns there (a file, a link, an entry in another's name) is
    charged to that uid and removed; a ``.partial-`` folder (a submit writing) once older than
    :data:`YOUNG_S`, or when the uid is still over the budget after all its submissions. The budget is
    bytes (``max_bytes``) and inodes (``max_files``: many empty files fill a disk's inode table first). Entries of the inbound folder's own owner (the grader) and of root are left
    alone. ``inbound`` must be a real folder of one of ``owners`` (the grader's uid or root; :func:`graders_folder`):
    anything else raises OSError and nothing is removed. ``remove`` False: reports what it would remove."""
    now = time.time() if now is None else now
    Budget.__post_init__(budget)   # one made by hand (dataclasses.replace, object.__setattr__) is checked again
    inbound = os.fspath(inbound)
    keeper = graders_folder(inbound, owners if owners is not None else graders()).st_uid
    report = SweepReport()
    by_uid: dict[int, list[tuple[str, os.stat_result]]] = {}
    with os.scandir(inbound) as it:
        for entry in it:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_uid in (0, keeper):
                continue
            by_uid.setdefault(st.st_uid, []).append((entry.name, st))

    for uid, entries in sorted(by_uid.items()):
        labs: dict[str, list[tuple[datetime.datetime, str]]] = {}
        strays: list[tuple[float, str]] = []
        for name, st in entries:
            parts = name.rsplit("+", 3)
            when = name_time(name)
            # A name the accounts file does not know (a roster cut short by a bad edit, an account removed)
            # is not proof of a plant: it stays its owner's submission, within the budget.
            if stat.S_ISDIR(st.st_mode) and when is not None and uids.get(parts[0], uid) == uid:
                labs.setdefault(parts[1], []).append((when, name))
            else:
                strays.append((st.st_ctime, name))
        usage = {name: tree_usage(os.path.join(inbound, name)) for name, _ in entries}
        cost = {name: u[0] for name, u in usage.items()}
        files = {name: u[1] for name, u in usage.items()}
        kinds = {name: st.st_mode for name, st in entries}
        gone: set[str] = set()

        def drop(name: str, why: str) -> None:
            gone.add(name)
            item = Removed(name, uid, cost[name], why, done=remove)
            if remove:
                try:
                    remove_entry(os.path.join(inbound, name))
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    item.done, item.error = False, exc.strerror or str(exc)
            report.removed.append(item)
            if log:
                log(item)

        # A submit writes only a folder named .partial-... and renames it when whole: anything else that is
        # not a submission goes at once; a .partial- folder once older than a submit takes.
        young = {n for c, n in strays if n.startswith(PARTIAL) and stat.S_ISDIR(kinds[n]) and now - c <= YOUNG_S}
        for _, name in sorted(strays):
            if name not in young:
                drop(name, "not a submission in its owner's name" if not name.startswith(PARTIAL)
                     else "a copy left half-written")
        for lab, subs in labs.items():
            subs.sort(reverse=True)
            for _, name in subs[budget.keep:]:
                drop(name, f"older than the newest {budget.keep} of {lab}")
        def over() -> bool:
            left = [n for n in cost if n not in gone]
            return bool((budget.max_bytes and sum(cost[n] for n in left) > budget.max_bytes)
                        or (budget.max_files and sum(files[n] for n in left) > budget.max_files))

        if budget.max_bytes or budget.max_files:
            # oldest first by the names' times, so the newest hand-in of each lab goes last; a copy still
            # being written after them (its owner's newest)
            order = [n for _, n in sorted(s for subs in labs.values() for s in subs)]
            order += [n for c, n in sorted(strays) if n in young]
            for name in order:
                if not over():
                    break
                if name not in gone:
                    drop(name, f"its owner's entries are over the budget ({budget.max_bytes} bytes, "
                               f"{budget.max_files} files)")
        report.usage[uid] = sum(cost[n] for n in cost if n not in gone)
    return report


def graders() -> tuple[int, ...]:
    """The uids that may own the course's folder and ``inbound``: root and the grader
    (:data:`techday.hub.config.GRADER_UID`, the grader image's user)."""
    from .config import GRADER_UID

    return (0, GRADER_UID)


def sweep_from_env(remove: bool = True, log=None) -> SweepReport | None:
    """One pass over the course's ``inbound`` as the hub's environment names it (``TECHDAY_EXCHANGE``,
    ``TECHDAY_COURSE_ID``, ``TECHDAY_USERS_FILE``, the ``TECHDAY_EXCHANGE_*`` budget). None: no inbound yet."""
    from .config import DEFAULT_EXCHANGE, read_accounts

    course = Path(os.environ.get("TECHDAY_EXCHANGE", DEFAULT_EXCHANGE)) / os.environ.get("TECHDAY_COURSE_ID", "techday")
    inbound = course / "inbound"
    if not os.path.lexists(course):
        return None
    graders_folder(course, graders())   # a course folder a trainee made (before any release) is not looked into
    if not os.path.lexists(inbound):
        return None
    accounts = read_accounts(Path(os.environ.get("TECHDAY_USERS_FILE", "/srv/jupyterhub/users.csv")))
    uids = {name: a.uid for name, a in accounts.items() if a.uid is not None}
    return sweep(inbound, Budget.from_env(), uids, remove=remove, log=log)


def shown(item: Removed) -> str:
    name = item.name if item.name.isprintable() else repr(item.name)
    verb = "removed" if item.done else (f"could not remove ({item.error})" if item.error else "would remove")
    return f"{verb} {name} (uid {item.uid}, {item.bytes} bytes): {item.why}"


def summary(report: SweepReport) -> str:
    """A pass in one line: the uids that own entries in ``inbound``, what was removed (and its bytes), what a dry
    run would remove, what could not be removed (the pass failed)."""
    from ..i18n import msg

    removed = [r for r in report.removed if r.done]
    would = [r for r in report.removed if not r.done and not r.error]
    failed = [r for r in report.removed if r.error]
    return msg("techday.exchange_sweep_summary", "pass done: {uids} uid(s) own entries in inbound; {removed} removed "
               "({bytes} bytes), {would} would be removed (--dry-run), {failed} could not be removed",
               uids=len(report.usage), removed=len(removed), bytes=sum(r.bytes for r in removed), would=len(would),
               failed=len(failed))
