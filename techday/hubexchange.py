"""nbgrader's file exchange, with one trainee's work closed to every other trainee.

nbgrader's default exchange keeps submissions apart by a random name in a folder others cannot list,
and leaves each submission open to everyone (mode 0777, files 0444) so that the instructor can read and
delete it. With a Unix user per account (:func:`techday.hub.apply_identity`) the kernel can do better,
and these two steps make it (``docker/etc-jupyter/nbgrader_config.py`` selects them):

- **release** (the grader): the exchange root gets the sticky bit (1777: nobody removes or renames a
  folder they do not own, such as the course's; nbgrader's 0777 lets any trainee replace the course
  folder and hand the room other notebooks), and the course's ``inbound`` folder becomes 3733 in the
  grader's group: others may add an entry but not list it; setgid gives every entry the grader's
  group; sticky lets only an entry's owner or the grader remove or rename it.
- **submit** (the trainee): the new submission is closed to everyone but its owner and the grader's
  group: folders 0750, files 0440. Another trainee who learns the name can still neither read, change,
  remove nor rename it.

What this does not cover: a trainee who runs as the grader's uid or group, or as root (the images and
``techday.hub`` never give them that); a full disk (one trainee can fill the shared volume); nbgrader's
feedback files, which stay readable by anyone who knows their name (a hash keyed by the submission's
secret, which only its owner and the grader hold); the moment between nbgrader's own ``chmod 0777`` of a
fresh submission and the lock-down here (its name is random and unlistable during that moment).
Standard nbgrader otherwise: the instructor collects with ``nbgrader collect`` as before.
"""

from __future__ import annotations

import os
import stat

import shutil

from nbgrader.exchange.default import ExchangeReleaseAssignment as _Release
from nbgrader.exchange.default import ExchangeSubmit as _Submit
from nbgrader.utils import ignore_patterns

ROOT_MODE = 0o1777      # anyone may create (trainees' caches of the course need it); only owners remove
INBOUND_MODE = 0o3733   # setgid + sticky; owner rwx, group and others -wx (submit without listing)
SUBMISSION_DIR = 0o750  # owner rwx, the grader's group r-x, others nothing
SUBMISSION_FILE = 0o440


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
        super().init_dest()
        inbound = self.inbound_path
        if os.stat(inbound).st_gid != os.getgid():
            os.chown(inbound, -1, os.getgid())
        os.chmod(inbound, INBOUND_MODE)


class ExchangeSubmit(_Submit):
    """nbgrader's submit, then the submission closed to all but its owner and the grader's group."""

    _inbound_copy: str | None = None

    def do_copy(self, src, dest, log=None):
        if os.path.dirname(os.path.abspath(dest)) != os.path.abspath(self.inbound_path):
            return super().do_copy(src, dest)  # the trainee's own cache
        # nbgrader's copy ends with copytree's copystat, which clears the setgid bit of the new folder:
        # the files nbgrader writes next (timestamp, secret) would then take the trainee's group, not
        # the grader's. This copy applies the same filters and never changes a folder's mode.
        size = self.get_size(src)
        if size > 1000 * self.coursedir.max_dir_size:
            raise RuntimeError(f"Directory size is too big. Size is {size}, maximum size is "
                               f"{1000 * self.coursedir.max_dir_size}")
        ignore = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                                 max_file_size=self.coursedir.max_file_size, log=self.log)
        copy_keeping_group(src, dest, ignore, self.log)
        self._inbound_copy = dest

    def copy_files(self):
        self._inbound_copy = None
        super().copy_files()
        if self._inbound_copy:
            group = os.stat(self.inbound_path).st_gid
            strays = lock_down(self._inbound_copy, group)
            if strays:
                self.fail(f"The submission could not be handed to the grader ({len(strays)} file(s) outside the "
                          f"grader's group, e.g. {strays[0]}); it is closed to everyone and your notebook is "
                          "unchanged. Ask an instructor: `techday hub check` shows the exchange's set-up.")


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
