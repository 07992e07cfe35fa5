"""nbgrader's file exchange, with one trainee's work closed to every other trainee.

nbgrader's default exchange keeps submissions apart by a random name in a folder others cannot list,
and leaves each submission open to everyone (mode 0777, files 0444) so that the instructor can read and
delete it. With a Unix user per account (:func:`techday.hub.config.apply_identity`) the kernel can do better,
and these two steps make it (``docker/etc-jupyter/nbgrader_config.py`` selects them):

- **release** (the grader): the exchange root gets the sticky bit (1777: nobody removes or renames a
  folder they do not own, such as the course's; nbgrader's 0777 lets any trainee replace the course
  folder and hand the room other notebooks), and the course's ``inbound`` folder becomes 3733 in the
  grader's group: others may add an entry but not list it; setgid gives every entry the grader's
  group; sticky lets only an entry's owner or the grader remove or rename it.
- **submit** (the trainee): the new submission is closed to everyone but its owner and the grader's
  group: folders 0750, files 0440. Another trainee who learns the name can still neither read, change,
  remove nor rename it. It writes only into the grader's own ``inbound`` (:func:`planted`): the course's
  folder and ``inbound`` each a real folder (no link) of root, the grader or the exchange root's owner.
- **collect** (the grader): ``inbound`` is open for anyone to add to, so an entry's name proves nothing:
  trainee B can add ``trainee-a+lab+<a later time>+x``, and nbgrader takes the newest entry of each
  name. Only entries whose owner is the uid the accounts file gives that student are collected (an
  allow-list: no uid, another uid, a link or a plain file in place of a folder: left where it is and
  named in the log). And an entry stays its owner's to change after submitting, so it is copied as a
  stranger's data: folders and regular files only, read through file descriptors that never follow a
  link (a link to the course's solutions would otherwise be copied as the trainee's notebook), only
  what the entry's owner owns (a hard link to another trainee's file keeps that trainee as owner),
  pipes and devices left out, size and count capped, and only the folder the scan checked (the same
  inode, device and owner: not one put under its name since); its ``timestamp.txt`` is written from the
  entry's name (checked), since nbgrader stops the whole collect at one it cannot parse, or from the
  last change of what was copied where that is later than the submit's few minutes after the name's
  time (:func:`submission_time`: the name and the files are the owner's to make at any time).
- **release_feedback** leaves out (and names) a trainee whose feedback folder lacks the
  ``submission_secret.txt`` or ``timestamp.txt`` their own entry held: nbgrader stops the whole
  release at the first one.
- **release** refuses a course folder in the exchange that is not the grader's own: the root is open to
  all, so a trainee who creates it before the first release would own what every trainee fetches.
- **fetch** (the trainee) reads only from the grader's own ``outbound`` and ``feedback`` (:func:`planted`, as
  submit): a course folder a trainee made before the first release would otherwise hand the room their code.
- **fetch** and **submit** (the trainee) say why they refuse in the trainee's language: nbgrader's own
  refusals and the course's go through the package's catalogue (:func:`trainee_text`, :class:`TraineeWords`).

- **submit** also holds the trainee to the exchange's budget (:mod:`techday.hub.exchangequota`: the
  newest ``TECHDAY_EXCHANGE_KEEP`` per lab, ``TECHDAY_EXCHANGE_QUOTA`` bytes, no submission below
  ``TECHDAY_EXCHANGE_MIN_FREE`` free) and writes under a ``.partial-`` name collect never takes, renamed
  when whole; the hub's sweep holds every uid to the same budget from outside.

What this does not cover: a trainee who runs as the grader's uid or group, or as root (the images and
``techday.hub.config`` never give them that); a disk filled between two passes of the sweep, or where no
sweep runs (docker/README.md, "The exchange's disk"); nbgrader's
feedback files, which stay readable by anyone who knows their name (a hash keyed by the submission's
secret, which only its owner and the grader hold); a trainee who adds entries under their own name
by hand (each is theirs: the newest is graded, as with nbgrader; the sweep bounds how many). Standard nbgrader otherwise: the instructor collects with ``nbgrader collect`` as before.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import shutil
import stat
from pathlib import Path

from nbgrader.exchange.default import ExchangeCollect as _Collect
from nbgrader.exchange.default import ExchangeFetchAssignment as _FetchAssignment
from nbgrader.exchange.default import ExchangeFetchFeedback as _FetchFeedback
from nbgrader.exchange.default import ExchangeReleaseAssignment as _Release
from nbgrader.exchange.default import ExchangeReleaseFeedback as _ReleaseFeedback
from nbgrader.exchange.default import ExchangeSubmit as _Submit
from nbgrader.utils import ignore_patterns, parse_utc
from traitlets import Bool

from ..i18n import PackageCatalogue, msg

ROOT_MODE = 0o1777      # anyone may create (trainees' caches of the course need it); only owners remove
INBOUND_MODE = 0o3733   # setgid + sticky; owner rwx, group and others -wx (submit without listing)
SUBMISSION_DIR = 0o750  # owner rwx, the grader's group r-x, others nothing
SUBMISSION_FILE = 0o440


# --- what a trainee is told -------------------------------------------------------------------------


class _English:
    """Hands back a message's English template as written: the pattern nbgrader's own text matches."""

    @staticmethod
    def msg(_key: str, default: str, /, **_fmt) -> str:
        return default


# nbgrader 0.9's refusals on the trainee's side of the exchange (fetch, fetch feedback, submit), word for
# word with ``{name}`` where nbgrader fills in a value; tests/unit/test_exchange_ko.py reads nbgrader's
# sources for every one.
NBGRADER_REFUSALS = [
    lambda w, **kw: w.msg("techday.exchange_no_course_id", "No course id specified. Re-run with --course flag.",
                          **kw),
    lambda w, **kw: w.msg("techday.exchange_no_access", "You do not have access to this course.", **kw),
    lambda w, **kw: w.msg("techday.exchange_cannot_read", "You don't have read permissions for the directory: {path}",
                          **kw),
    lambda w, **kw: w.msg("techday.exchange_cannot_enter",
                          "You don't have execute permissions for the directory: {path}", **kw),
    lambda w, **kw: w.msg("techday.exchange_already_fetched",
                          "You already have a copy of the assignment in this directory: {path}", **kw),
    lambda w, **kw: w.msg("techday.exchange_no_inbound", "Inbound directory doesn't exist: {path}", **kw),
    lambda w, **kw: w.msg("techday.exchange_cannot_write", "You don't have write permissions to the directory: {path}",
                          **kw),
    lambda w, **kw: w.msg("techday.exchange_bad_student_id", "The student ID should contain no '*' nor '+'; got {id}",
                          **kw),
    lambda w, **kw: w.msg("techday.exchange_not_found", "Assignment not found: {path}", **kw),
    lambda w, **kw: w.msg("techday.exchange_not_found_at", "Assignment not found at: {path}", **kw),
    lambda w, **kw: w.msg("techday.exchange_missing_notebooks",
                          "Assignment {lab} not submitted. There are missing notebooks for the submission:\n{diff}",
                          **kw),
    lambda w, **kw: w.msg("techday.exchange_unwritable", "Unwritable directory, please contact your instructor: {path}",
                          **kw),
    lambda w, **kw: w.msg("techday.exchange_windows", "Sorry, the exchange is not available on Windows.", **kw),
    lambda w, **kw: w.msg("techday.exchange_not_owner", "You don't own the directory: {path}", **kw),
]


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.*)" for i, p in enumerate(parts)), re.S)


def trainee_text(message: str) -> str:
    """One of nbgrader's refusals in the trainee's language (``$TECHDAY_LANG``, else the syllabus' default),
    from the package's catalogue only; any other text as it is."""
    words = PackageCatalogue()
    for say in NBGRADER_REFUSALS:
        m = _pattern(say(_English)).fullmatch(message)
        if m:
            return say(words, **m.groupdict())
    return message


def too_big_text(size: int, maximum: int) -> str:
    return msg("techday.exchange_too_big", "Directory size is too big. Size is {size}, maximum size is {maximum}",
               size=size, maximum=maximum)


def not_handed_text(count: int, example: str) -> str:
    return msg("techday.exchange_not_handed",
               "The submission could not be handed to the grader ({count} file(s) outside the grader's group, e.g. "
               "{example}); it is closed to everyone and your notebook is unchanged. Ask an instructor: `techday hub "
               "check` shows the exchange's set-up.", count=count, example=example)


class TraineeWords:
    """An exchange step a trainee runs: its refusals (nbgrader's ``fail``) in the trainee's language."""

    def fail(self, message):
        super().fail(trainee_text(message))

    def _assignment_not_found(self, src_path, other_path):
        from nbgrader.exchange import ExchangeError

        try:
            super()._assignment_not_found(src_path, other_path)
        except ExchangeError as exc:  # raised by nbgrader itself, not through fail()
            raise ExchangeError(trainee_text(str(exc))) from None


class GradersSource:
    """A fetch that reads only from the grader's own folder in the exchange (:func:`planted`): ``LEAF``."""

    LEAF = "outbound"

    def init_src(self):
        if self.coursedir.course_id:   # none: nbgrader's own refusal says so
            found = planted(self.root, self.coursedir.course_id, self.LEAF)
            if found:
                path, what, owners = found
                self.fail(msg("techday.exchange_source_planted",
                              "Not fetched: {path} is {what}; only a folder of the grader's (uid {owners}) is "
                              "fetched from: whoever made it decides what you would get, code that would run as "
                              "you. Nothing was copied. Ask the instructor (`techday hub check` names it).",
                              path=path, what=what, owners="/".join(map(str, owners))))
        super().init_src()


class ExchangeFetchAssignment(TraineeWords, GradersSource, _FetchAssignment):
    """nbgrader's fetch, from the grader's own ``outbound`` only, its refusals in the trainee's language."""


class ExchangeFetchFeedback(TraineeWords, GradersSource, _FetchFeedback):
    """nbgrader's fetch of feedback, from the grader's own ``feedback`` only, its refusals in the trainee's
    language."""

    LEAF = "feedback"


class ExchangeReleaseAssignment(_Release):
    """nbgrader's release, then the root sticky and ``inbound`` closed (see the module docstring)."""

    def ensure_root(self):
        super().ensure_root()
        mode = stat.S_IMODE(os.stat(self.root).st_mode)
        if not mode & stat.S_ISVTX:
            try:
                os.chmod(self.root, mode | stat.S_ISVTX)
            except PermissionError:
                self.log.warning("The exchange %s is not sticky (mode %o) and this user cannot make it so: any "
                                 "trainee could rename the course's folder. Run: chmod 1777 %s",
                                 self.root, mode, self.root)

    def init_dest(self):
        from techday.hub.config import aside_command

        course = os.path.join(self.root, self.coursedir.course_id) if self.coursedir.course_id else None
        for path in ([course] + [os.path.join(course, d) for d in ("outbound", "inbound", "feedback")]
                     if course else []):
            why = not_mine(path)
            if why:
                self.fail(f"{path} {why}: whoever made it would control what every trainee fetches or who can "
                          f"read submissions. Nothing was released. Move it aside, with whatever was submitted "
                          f"into it (as root: {aside_command(course)}) and release again; `techday hub check` "
                          "looks for this.")
        super().init_dest()
        inbound = self.inbound_path
        if os.stat(inbound).st_gid != os.getgid():
            os.chown(inbound, -1, os.getgid())
        os.chmod(inbound, INBOUND_MODE)


class ExchangeSubmit(TraineeWords, _Submit):
    """nbgrader's submit, written under a temporary name, closed to all but its owner and the grader's
    group, then renamed into place; held to the trainee's budget in the exchange
    (:mod:`techday.hub.exchangequota`): refused below the exchange's free-disk floor or past the trainee's
    bytes, and only the newest ``keep`` submissions of a lab kept."""

    _inbound_copy: str | None = None
    LEDGER = ".techday-inbound"   # in the trainee's nbgrader cache: the names of their entries in inbound

    def start(self):
        """The budget is read first, before nbgrader's steps look at anything: a value the hub's environment
        got wrong (``TECHDAY_EXCHANGE_QUOTA=300XB``) is one line for the trainee, nothing written."""
        from .exchangequota import Budget, BudgetError

        try:
            self._budget = Budget.from_env()
        except BudgetError as exc:
            self.fail(budget_refused_text(exc))
        return super().start()

    def init_dest(self):
        """nbgrader's, after the course's folder and its ``inbound`` are found to be the grader's
        (:func:`inbound_refusal`): nothing is written into a folder a trainee planted."""
        if self.coursedir.course_id:   # none: nbgrader's own refusal says so
            why = inbound_refusal(self.root, self.coursedir.course_id)
            if why:
                self.fail(why)
        super().init_dest()

    def do_copy(self, src, dest, log=None):
        if os.path.dirname(os.path.abspath(dest)) != os.path.abspath(self.inbound_path):
            return super().do_copy(src, dest)  # the trainee's own cache
        # nbgrader's copy ends with copytree's copystat, which clears the setgid bit of the new folder:
        # the files nbgrader writes next (timestamp, secret) would then take the trainee's group, not
        # the grader's. This copy applies the same filters and never changes a folder's mode.
        size = self.get_size(src)
        if size > 1000 * self.coursedir.max_dir_size:
            raise RuntimeError(too_big_text(size, 1000 * self.coursedir.max_dir_size))
        ignore = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                                 max_file_size=self.coursedir.max_file_size, log=self.log)
        copy_keeping_group(src, dest, ignore, self.log)
        self._inbound_copy = dest

    # -- the trainee's record of their own entries (inbound cannot be listed by them) -------------------

    def _ledger_path(self) -> str:
        return os.path.join(self.cache_path, self.LEDGER)

    def _ledger(self) -> list[str]:
        try:
            with open(self._ledger_path(), encoding="utf-8") as f:
                names = [line.rstrip("\n") for line in f]
        except OSError:
            return []
        return [n for n in dict.fromkeys(names) if n and "/" not in n and n not in (".", "..")]

    def _note(self, name: str) -> None:
        """Record ``name`` (best effort: a home that cannot take it leaves the entry to the hub's sweep)."""
        try:
            os.makedirs(self.cache_path, exist_ok=True)
            with open(self._ledger_path(), "a", encoding="utf-8") as f:
                f.write(name + "\n")
        except OSError as exc:
            self.log.warning("Could not record %s in %s: %s", _shown(name), self._ledger_path(), exc.strerror or exc)

    def _forget(self, gone: set[str]) -> None:
        from .. import atomicfile

        keep = [n for n in self._ledger() if n not in gone]
        try:
            atomicfile.write_text(Path(self._ledger_path()), "".join(n + "\n" for n in keep))
        except OSError as exc:
            self.log.warning("Could not update %s: %s", self._ledger_path(), exc.strerror or exc)

    def _mine(self) -> dict[str, list[tuple[str, int]]]:
        """The trainee's complete entries still in inbound, by lab, newest first: (name, bytes)."""
        from .exchangequota import name_time, tree_cost

        labs: dict[str, list[tuple[object, str, int]]] = {}
        for name in self._ledger():
            path = os.path.join(self.inbound_path, name)
            when = name_time(name)
            if when is None or not os.path.isdir(path) or os.path.islink(path):
                continue
            labs.setdefault(name.rsplit("+", 3)[1], []).append((when, name, tree_cost(path)))
        return {lab: [(n, c) for _, n, c in sorted(subs, reverse=True)] for lab, subs in labs.items()}

    def _remove(self, names: list[str]) -> None:
        from .exchangequota import remove_entry

        for name in names:
            try:
                remove_entry(os.path.join(self.inbound_path, name))
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.log.warning("Could not remove %s: %s", _shown(name), exc.strerror or exc)
        self._forget(set(names))

    def copy_files(self):
        """nbgrader's copy_files (0.9), with the submission written under a name collect never takes
        (:data:`~techday.hub.exchangequota.PARTIAL`, no ``+``), closed, then renamed into place: a copy cut
        short (a full disk, the process killed) is never a hand-in; and held to the budget first."""
        import secrets

        from .exchangequota import PARTIAL, YOUNG_S, Budget, free_bytes, tree_cost

        self.init_release()
        budget = getattr(self, "_budget", None) or Budget.from_env()
        dest_path = os.path.join(self.inbound_path, self.assignment_filename)
        if self.add_random_string:
            cache_path = os.path.join(self.cache_path, self.assignment_filename.rsplit("+", 1)[0])
        else:
            cache_path = os.path.join(self.cache_path, self.assignment_filename)
        self.log.info("Source: %s", self.src_path)
        self.log.info("Destination: %s", dest_path)
        self.check_filename_diff()

        # Half-written copies of an earlier submit (killed, the disk full) that this trainee knows of.
        stale = [n for n in self._ledger() if n.startswith(PARTIAL) and _older_than(
            os.path.join(self.inbound_path, n), YOUNG_S)]
        if stale:
            self._remove(stale)
        size = tree_cost(self.src_path)
        free = free_bytes(self.inbound_path)
        if free - size < budget.min_free:
            self.fail(exchange_full_text(free, budget.min_free))
        lab = self.coursedir.assignment_id
        mine = self._mine()
        older = mine.get(lab, [])[max(0, budget.keep - 1):]   # removed once this one is in place
        kept = sum(c for other, subs in mine.items() for n, c in subs if (n, c) not in older)
        if budget.max_bytes and kept + size > budget.max_bytes:
            self.fail(over_budget_text(kept + size, budget.max_bytes, budget.keep, size))
        # Where one submission more would pass the budget during the copy, the oldest kept goes first
        # (the newest stays until this one is in place, unless only one is kept).
        if budget.max_bytes and budget.keep > 1 and sum(c for subs in mine.values() for _, c in subs) + size \
                > budget.max_bytes:
            self._remove([n for n, _ in older])
            if older:
                self.log.info(kept_text(budget.keep, lab, len(older)))
            older = []

        partial = os.path.join(self.inbound_path, PARTIAL + secrets.token_urlsafe(12))
        self._note(os.path.basename(partial))
        submission_secret = secrets.token_hex(64)
        try:
            self._inbound_copy = None
            self.do_copy(self.src_path, partial)
            for name, text in (("timestamp.txt", self.timestamp), ("submission_secret.txt", submission_secret)):
                with open(os.path.join(partial, name), "w") as fh:
                    fh.write(text)
            group = os.stat(self.inbound_path).st_gid
            strays = lock_down(partial, group)
            if strays:
                self.fail(not_handed_text(len(strays), strays[0]))
            self._note(self.assignment_filename)
            os.rename(partial, dest_path)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            self._forget({os.path.basename(partial), self.assignment_filename})
            self.fail(not_written_text(exc.strerror or str(exc)))
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        self._forget({os.path.basename(partial)})
        if older:
            self._remove([n for n, _ in older])
            self.log.info(kept_text(budget.keep, lab, len(older)))

        # also copy to the cache (nbgrader's own)
        if not os.path.isdir(self.cache_path):
            os.makedirs(self.cache_path)
        self.do_copy(self.src_path, cache_path)
        with open(os.path.join(cache_path, "timestamp.txt"), "w") as fh:
            fh.write(self.timestamp)
        with open(os.path.join(cache_path, "submission_secret.txt"), "w") as fh:
            fh.write(submission_secret)
        self.log.info("Submitted as: %s %s %s", self.coursedir.course_id, lab, self.timestamp)


def _older_than(path: str, seconds: float) -> bool:
    import time

    try:
        return time.time() - os.lstat(path).st_ctime > seconds
    except OSError:
        return True


def planted(root: str, course: str, leaf: str = "inbound") -> tuple[str, str, list[int]] | None:
    """What makes ``<root>/<course>/<leaf>`` (``inbound``, ``outbound``, ``feedback``) no folder of the grader's
    for a trainee to submit into or fetch from: (the path, what it is, the uids that may own it), or None (it is
    the grader's, or a folder is missing and nbgrader's own refusal says so). The exchange's root is 1777:
    before the first release any trainee can make the course's folder, an ``inbound`` or ``outbound`` in it, or
    a link by any of these names; every other trainee's hand-in would go where the planter reads or replaces it,
    and what the room fetches (notebooks whose code runs as each trainee) would be the planter's. An
    allow-list: from the root down, each name is looked at relative to its parent's descriptor without following
    a link (``fstatat``), then held with ``O_PATH|O_NOFOLLOW|O_DIRECTORY`` (nothing opened for reading: no FIFO
    waited on, and a folder this user may pass through but not list is judged all the same), and must be a real
    folder owned by root, the grader (:data:`techday.hub.config.GRADER_UID`) or the exchange root's own owner
    (whoever set the exchange up: root in the images, the instructor on a plain server). Checked that way,
    nothing on the path can be swapped after: the root is sticky (only an entry's owner renames it) and the
    folders under it are the grader's."""
    from .config import GRADER_UID

    # O_PATH: a folder is judged by its owner and kind, never by what it lets this user read (a planted folder of
    # mode 0711 can be passed through but not opened for reading, and a submit would still write below it).
    path_only = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
    try:   # the root is the admin's own path (a mount, maybe a link to one): followed
        fd = os.open(root, path_only)
    except OSError:
        return None
    try:
        # The root's own mode is the admin's: release makes it sticky, `techday hub check` flags it otherwise.
        owners = sorted({0, GRADER_UID, os.fstat(fd).st_uid})
        path = root
        names = [*[part for part in course.split("/") if part], leaf]
        for at, name in enumerate(names):
            path = os.path.join(path, name)
            try:   # the name itself, never what a link names
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:   # missing, or not this user's to reach: nbgrader's refusal names it, and nothing
                return None   # can be written below a folder this user cannot pass through
            if stat.S_ISLNK(st.st_mode):
                return path, msg("techday.exchange_sweep_a_link", "a link"), owners
            if not stat.S_ISDIR(st.st_mode):
                return path, msg("techday.exchange_sweep_not_folder", "not a folder"), owners
            if st.st_uid not in owners:
                return path, msg("techday.exchange_sweep_folder_of", "a folder of uid {uid}", uid=st.st_uid), owners
            # A folder every trainee may write and not sticky: its entries (the next name on the path) can be renamed
            # aside and replaced after this check. ``inbound`` takes everyone's writes by design (2733): its
            # entries are the submissions, named unguessably, below the path this judges.
            if (at < len(names) - 1 or leaf != "inbound") and _open_to_renames(st.st_mode):
                return path, _open_text(st.st_mode), owners
            try:   # the folder just judged, held by a descriptor for the next name (a link swapped in: refused)
                sub = os.open(name, path_only | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    return path, msg("techday.exchange_sweep_a_link", "a link"), owners
                return None
            os.close(fd)
            fd = sub
            got = os.fstat(fd)
            if (got.st_dev, got.st_ino) != (st.st_dev, st.st_ino) and got.st_uid not in owners:   # swapped since
                return path, msg("techday.exchange_sweep_folder_of", "a folder of uid {uid}", uid=got.st_uid), owners
    finally:
        os.close(fd)
    return None


def _open_to_renames(mode: int) -> bool:
    """Writable by others (a trainee) and not sticky: anyone may rename or remove what it holds."""
    return bool(mode & stat.S_IWOTH) and not mode & stat.S_ISVTX


def _open_text(mode: int) -> str:
    return msg("techday.exchange_sweep_open", "a folder others may write, not sticky (mode {mode:o}): anyone could "
               "swap what it holds", mode=stat.S_IMODE(mode))


def inbound_refusal(root: str, course: str) -> str | None:
    """The trainee's submit's words for :func:`planted` (None: the submit may write)."""
    found = planted(root, course)
    if found is None:
        return None
    path, what, owners = found
    return msg("techday.exchange_inbound_planted",
               "Not submitted: {path} is {what}; only a folder of the grader's (uid {owners}) takes "
               "submissions: whoever made it could read or replace what is written there. Nothing was written: your "
               "notebook and your previous submission are as they were. Ask the instructor (`techday hub "
               "check` names it; the fix is to move it aside and release again).",
               path=path, what=what, owners="/".join(map(str, owners)))


def budget_refused_text(exc) -> str:
    """The trainee's words for a :class:`~techday.hub.exchangequota.BudgetError`: one line, the variable, its value
    and what it takes; the instructor's to fix (the hub's environment), the trainee's work untouched."""
    return msg("techday.exchange_budget_refused",
               "Not submitted: the exchange's settings are wrong ({name}={value}; expected {expected}). Nothing was "
               "written: your notebook and your previous submission are as they were. Ask the instructor to fix "
               "the hub's setting.", name=exc.name, value=exc.shown, expected=exc.expected)


def exchange_full_text(free: int, floor: int) -> str:
    return msg("techday.exchange_full",
               "Not submitted: the exchange's disk is almost full ({free} free; {floor} are kept free for the "
               "room). Nothing was written and your previous submission is kept. Ask an instructor.",
               free=human_size(max(0, free)), floor=human_size(floor))


def over_budget_text(total: int, maximum: int, keep: int, size: int) -> str:
    return msg("techday.exchange_over_budget",
               "Not submitted: your submissions in the exchange would take {total}, over the {maximum} each "
               "trainee may keep there (the newest {keep} of each lab are kept; this one is {size}). Remove "
               "data files and large outputs from the lab's folder and submit again; your previous submission is "
               "kept.", total=human_size(total), maximum=human_size(maximum), keep=keep, size=human_size(size))


def human_size(n: int) -> str:
    """Bytes as a trainee reads them: ``98 KB``, ``4.2 MB``, ``300 MB``, ``1.5 GB`` (binary units)."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= 10 * 2**20:
        return f"{n / 2**20:.0f} MB"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MB"
    return f"{-(-n // 1024)} KB"


def not_written_text(error: str) -> str:
    return msg("techday.exchange_not_written",
               "Not submitted: the exchange could not take the submission ({error}). Nothing half-written was "
               "left and your previous submission is kept. Ask an instructor.", error=error)


def kept_text(keep: int, lab: str, removed: int) -> str:
    return msg("techday.exchange_kept",
               "The exchange keeps your newest {keep} submissions of {lab}: {removed} older one(s) removed.",
               keep=keep, lab=lab, removed=removed)


class ExchangeCollect(_Collect):
    """nbgrader's collect, taking from each student only what that student's own uid put in ``inbound``
    (see the module docstring). The accounts file is ``$TECHDAY_USERS_FILE`` (the hub's users.csv);
    without it, the system's user of the same name (a plain multi-user server)."""

    # nbgrader's own owner check compares names from the passwd file, which the hub's uids are not in:
    # it would warn about every entry and stop none. The uid check in init_src replaces it.
    check_owner = Bool(False).tag(config=True)

    refused: list[tuple[str, str]]

    def expected_uids(self) -> dict[str, int] | None:
        path = os.environ.get("TECHDAY_USERS_FILE")
        if not path:
            return None
        from techday.hub.config import UsersFileError, read_accounts

        try:
            accounts = read_accounts(path)
        except UsersFileError as exc:
            self.fail(f"cannot tell whose submissions are whose: {exc}. Nothing was collected.")
        return {name: a.uid for name, a in accounts.items() if a.uid is not None}

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        uids = self.expected_uids()
        wanted = self.coursedir.student_id or "*"
        self.refused, groups, self._checked = [], {}, {}
        with os.scandir(self.inbound_path) as entries:
            for entry in entries:
                parts = entry.name.rsplit("+", 3)
                if len(parts) != 4 or parts[1] != self.coursedir.assignment_id:
                    continue
                student = parts[0]
                if not fnmatch.fnmatchcase(student, wanted):
                    continue
                try:
                    why = entry_refusal(entry, student, parts[2], uids)
                    # The folder checked here is the one copied: a folder put in its place after this
                    # (anyone may add the name once its owner removed it) is refused at the copy.
                    self._checked[entry.name] = entry.stat(follow_symlinks=False)
                except OSError as exc:  # removed by its owner since the listing: theirs alone
                    why = f"gone or changed while collected ({exc.strerror or exc})"
                if why:
                    self.refused.append((entry.name, why))
                    self.log.warning("Not collecting %s: %s", _shown(entry.name), why)
                    continue
                groups.setdefault(student, []).append(
                    {"username": student, "filename": entry.name, "timestamp": parse_utc(parts[2])})
        self.duedate = None
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                self.duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                pass
        self.src_records = []
        for records in groups.values():
            records = self._sort_by_timestamp(records)
            if self.duedate is not None and self.before_duedate:
                on_time = [r for r in records if r["timestamp"] <= self.duedate]
                records = on_time or records
            self.src_records.append(records[0])

    def copy_files(self):
        # nbgrader reads the timestamp.txt of every submission collected before, and a line it cannot
        # parse stops the whole collect (nbgrader 0.9 even fails with an AttributeError): nobody after
        # that trainee would be collected again. One collected before this copy wrote its own is set aside.
        for rec in self.src_records:
            dest = self.coursedir.format_path(self.coursedir.submitted_directory, rec["username"],
                                              self.coursedir.assignment_id)
            stamp = os.path.join(dest, "timestamp.txt")
            if os.path.lexists(stamp) and not (os.path.isfile(stamp) and not os.path.islink(stamp)
                                               and valid_timestamp(stamp)):
                os.replace(stamp, stamp + ".invalid")
                self.log.warning("Collecting %s: its timestamp.txt cannot be read as a time; kept as "
                                 "timestamp.txt.invalid", rec["username"])
        super().copy_files()

    def do_copy(self, src, dest, log=None):
        try:
            checked = getattr(self, "_checked", {}).get(os.path.basename(src))
            if checked is None:  # every record comes from init_src's scan, which keeps what it checked
                raise OSError(f"{os.path.basename(src)} was not checked by the scan")
            changed: list[float] = []
            skipped = copy_untrusted(src, dest, ignore=self.coursedir.ignore,
                                     max_bytes=1000 * self.coursedir.max_dir_size, same_as=checked, changed=changed)
        except OSError as exc:
            # The entry is its owner's to remove, rename or swap for a link at any moment, also between
            # the scan and this copy: that trainee is not collected this time; the others are.
            shutil.rmtree(dest, ignore_errors=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):   # the course's disk, not the trainee's entry
                why = (f"the course's disk is full ({exc.strerror}): nothing of it was kept; free disk under "
                       f"{self.coursedir.root} and collect again")
            else:
                why = f"its entry changed while it was collected ({exc.strerror or exc}); collect again"
            self.refused.append((os.path.basename(src), why))
            self.log.warning("Not collecting %s: %s", _shown(os.path.basename(src)), why)
            return
        for what in skipped:
            self.log.warning("Collecting %s: left out %s", _shown(os.path.basename(src)), what)
        # The time is the one in the entry's name, checked by entry_refusal; the entry's own
        # timestamp.txt is its owner's to rewrite after submitting (nbgrader writes the same time in both).
        # The name is its owner's choice too, and so is what the entry holds until it is collected: where
        # anything copied changed later than the name says (its status-change time, which no owner can
        # set back), the time is that change's.
        named = os.path.basename(src).rsplit("+", 3)[2]
        when = submission_time(named, changed)
        if when != named:
            self.log.warning("Collecting %s: changed at %s, after the time in its name (%s): collected as handed in "
                             "at %s", _shown(os.path.basename(src)), when, named, when)
        stamp = os.path.join(dest, "timestamp.txt")
        if os.path.isdir(stamp) and not os.path.islink(stamp):  # the entry had a folder of that name
            shutil.rmtree(stamp)
        with open(stamp, "w", encoding="utf-8") as f:
            f.write(when)


SUBMIT_SLACK_S = 600  # nbgrader's submit names the entry, then copies and locks it down: minutes at most


def submission_time(named: str, changed: list[float]) -> str:
    """The time a collected entry was handed in: the time in its name (``named``, as nbgrader wrote it),
    unless something in it changed more than :data:`SUBMIT_SLACK_S` after that (``changed``: status-change
    times); then the last change, in UTC as nbgrader writes times."""
    import datetime

    last = max(changed, default=None)
    if last is None or last <= parse_utc(named).replace(tzinfo=datetime.timezone.utc).timestamp() + SUBMIT_SLACK_S:
        return named
    return datetime.datetime.fromtimestamp(last, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def valid_timestamp(path: str) -> bool:
    """Whether nbgrader can read the file at ``path`` as a submission time (empty counts as none)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(200).strip()
        if text:
            parse_utc(text)
        return True
    except (OSError, ValueError, OverflowError, TypeError):
        return False


class ExchangeReleaseFeedback(_ReleaseFeedback):
    """nbgrader's release_feedback, leaving out (and naming) each trainee whose feedback folder lacks a
    readable ``submission_secret.txt`` or ``timestamp.txt``. Both come from the trainee's own inbound
    entry, theirs to remove after submitting; nbgrader stops the whole release at the first such
    folder, so nobody after that trainee would get feedback."""

    def copy_files(self):
        import glob

        excluded = [s for s in (self.coursedir.student_id_exclude or "").split(",") if s]
        for folder in sorted(glob.glob(self.src_path)):
            student = os.path.basename(os.path.dirname(folder))
            if student in excluded or not glob.glob(os.path.join(glob.escape(folder), "*.html")):
                continue
            missing = [name for name in ("submission_secret.txt", "timestamp.txt")
                       if not _readable_file(os.path.join(folder, name))]
            if missing:
                excluded.append(student)
                self.log.warning("Not releasing the feedback of %s: no readable %s in %s (its hand-in had "
                                 "none); the others are released", student, " or ".join(missing), folder)
        self.coursedir.student_id_exclude = ",".join(excluded)
        super().copy_files()


def _readable_file(path: str) -> bool:
    """A regular file (not a link, folder or pipe) this process can open and read as text."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, encoding="utf-8") as f:
            f.read(1)
    except (OSError, UnicodeDecodeError):
        return False
    return True


def _shown(name: str) -> str:
    """A name a trainee chose, as the grader's log prints it: as it is where every character is
    printable, else quoted with escapes (a newline in a file name would print a log line of its own)."""
    return name if name.isprintable() else repr(name)


def not_mine(path: str) -> str | None:
    """Why ``path`` is not a folder of this process's own user (None: it is, or it does not exist)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder (a link or a file)"
    if st.st_uid != os.getuid():
        return f"belongs to uid {st.st_uid}, not to this grader (uid {os.getuid()})"
    return None


def entry_refusal(entry: os.DirEntry, student: str, stamp: str, uids: dict[str, int] | None) -> str | None:
    """Why an ``inbound`` entry named for ``student`` must not be collected as theirs (None: collect)."""
    try:
        parse_utc(stamp)
    except (ValueError, OverflowError, TypeError):
        return "no submission time in its name"
    st = entry.stat(follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        return "not a folder (a link or a file)"
    if uids is not None:
        want = uids.get(student)
        if want is None:
            return f"{student!r} has no uid in the accounts file"
    else:
        import pwd

        try:
            want = pwd.getpwnam(student).pw_uid
        except KeyError:
            return f"{student!r} is no user of this system (set TECHDAY_USERS_FILE to the hub's users.csv)"
    if st.st_uid != want:
        return f"made by uid {st.st_uid}, not by {student} (uid {want})"
    return None


MAX_ENTRIES = 10_000   # files and folders in one submission
MAX_DEPTH = 32


def copy_untrusted(src: str, dest: str, ignore=(), max_bytes: int = 100_000_000,
                   same_as: os.stat_result | None = None, changed: list[float] | None = None) -> list[str]:
    """Copy a folder that someone else owns and may change while it is read: folders and regular files
    only, each opened relative to its parent's descriptor without following a link (a link swapped in
    mid-copy is refused too), pipes and devices left out without waiting on them, names matching
    ``ignore`` left out, at most ``max_bytes`` in all. Only what the top folder's owner owns is copied
    (an allow-list): a hard link to another user's file keeps that user as its owner, and would hand
    the grader another trainee's notebook as this one's (where ``fs.protected_hardlinks`` is 0, or
    the file is writable by its maker). ``same_as``: the stat of the folder that was checked; a top
    folder that is not that one (another inode, device or owner: put in its place since) is refused
    with OSError before anything is copied. ``changed``: gets the status-change time (``st_ctime``, which
    no owner can set back) of the top folder and of everything copied. Returns what was left out and why."""
    skipped: list[str] = []
    budget = {"bytes": max_bytes, "entries": MAX_ENTRIES}
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)

    def walk(dir_fd: int, to: str, rel: str, depth: int) -> None:
        os.mkdir(to, 0o755)
        for name in sorted(os.listdir(dir_fd)):
            if any(fnmatch.fnmatch(name, pattern) for pattern in ignore):
                continue
            shown = _shown(rel + name)
            budget["entries"] -= 1
            if budget["entries"] < 0:
                skipped.append(f"{shown} (more than {MAX_ENTRIES} files)")
                continue
            try:
                fd = os.open(name, flags, dir_fd=dir_fd)
            except OSError as exc:
                skipped.append(f"{shown} ({'a link' if os.path.islink(os.path.join(src, shown)) else exc.strerror})")
                continue
            try:
                st = os.fstat(fd)
                if changed is not None and st.st_uid == owner:
                    changed.append(st.st_ctime)
                if st.st_uid != owner:
                    skipped.append(f"{shown} (owned by uid {st.st_uid}, not by the submission's owner uid {owner}: "
                                   "a hard link to another's file?)")
                elif stat.S_ISDIR(st.st_mode):
                    if depth >= MAX_DEPTH:
                        skipped.append(f"{shown} (folders nested deeper than {MAX_DEPTH})")
                    else:
                        walk(fd, os.path.join(to, name), shown + "/", depth + 1)
                elif stat.S_ISREG(st.st_mode):
                    os.set_blocking(fd, True)
                    size = _copy_capped(fd, os.path.join(to, name), budget["bytes"])
                    if size is None:
                        skipped.append(f"{shown} (over the submission's size limit of {max_bytes} bytes)")
                    else:
                        budget["bytes"] -= size
                else:
                    skipped.append(f"{shown} (not a regular file)")
            finally:
                os.close(fd)

    top = os.open(src, flags | getattr(os, "O_DIRECTORY", 0))
    st = os.fstat(top)
    owner = st.st_uid
    if changed is not None:
        changed.append(st.st_ctime)
    try:
        if same_as is not None and (st.st_ino, st.st_dev, st.st_uid) != (same_as.st_ino, same_as.st_dev,
                                                                        same_as.st_uid):
            raise OSError(errno.ESTALE, "not the folder that was checked (replaced since)")
        walk(top, dest, "", 0)
    finally:
        os.close(top)
    return skipped


def _copy_capped(fd: int, path: str, limit: int) -> int | None:
    """Copy what ``fd`` reads into a new file ``path``: its size, or None (and no file) past ``limit``
    bytes, however the file changes while it is read."""
    written = 0
    with open(path, "xb") as out:
        while chunk := os.read(fd, min(1 << 20, limit - written + 1)):
            written += len(chunk)
            if written > limit:
                break
            out.write(chunk)
    if written > limit:
        os.unlink(path)
        return None
    return written


def copy_keeping_group(src: str, dest: str, ignore, log) -> None:
    """Copy ``src`` to a new ``dest`` with plain file copies: new folders keep the setgid bit and group
    they inherit from ``inbound``. Links to folders are left out (a loop would never end)."""
    os.mkdir(dest)
    names = os.listdir(src)
    skipped = set(ignore(src, names))
    for name in names:
        if name in skipped:
            continue
        s, d = os.path.join(src, name), os.path.join(dest, name)
        if os.path.isdir(s):
            if os.path.islink(s):
                log.warning("Not submitting %s: a link to a folder", s)
                continue
            copy_keeping_group(s, d, ignore, log)
        elif os.path.isfile(s):
            shutil.copyfile(s, d)


def lock_down(path: str, group: int) -> list[str]:
    """Folders :data:`SUBMISSION_DIR`, files :data:`SUBMISSION_FILE`, the top folder last. Anything not in
    ``group`` (the grader's) is closed to everyone instead (0700/0600) and returned: the grader's group
    cannot read it, and the trainees' shared group must not."""
    strays = []
    for dirpath, _, filenames in os.walk(path, topdown=False):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                continue
            if os.stat(full).st_gid != group:
                strays.append(full)
            os.chmod(full, SUBMISSION_FILE if os.stat(full).st_gid == group else 0o600)
        if os.stat(dirpath).st_gid != group:
            strays.append(dirpath)
        os.chmod(dirpath, SUBMISSION_DIR if os.stat(dirpath).st_gid == group else 0o700)
    return strays
