"""Run a command as another Unix user: ``python -m techday.hub.runas UID GID [--home DIR] -- COMMAND...``.

The hub runs as root where it starts containers; the course service it starts itself (the formgrader,
when the hub manages it) must not. This drops to ``UID:GID`` with no supplementary group, gives the
command a home of its own (created and handed to that user when missing), sets no_new_privs (no setuid
program it runs gains anything), and replaces itself with the command, so the hub's signals reach it directly. Run by a user who is not root, it refuses: it
never pretends to have dropped anything. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import sys


PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39


def no_new_privs() -> None:
    """Set the kernel's no_new_privs flag on this process and everything it runs: a setuid or
    file-capability program then runs with the caller's rights (as Docker's ``no-new-privileges``).
    Raises OSError where the kernel refuses (Linux before 3.5)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def drop(uid: int, gid: int, home: str | None = None) -> None:
    """Become ``uid:gid`` for good (after ``setuid`` there is no way back to root), with no_new_privs:
    no setuid program the command runs can raise it again."""
    if os.geteuid() != 0:
        raise PermissionError(f"only root can become uid {uid}; this process is uid {os.geteuid()}")
    if home:
        os.makedirs(home, mode=0o700, exist_ok=True)
        os.chown(home, uid, gid)
        os.environ["HOME"] = home
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise PermissionError(f"could not become {uid}:{gid}")
    no_new_privs()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m techday.hub.runas UID GID [--home DIR] -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    cut = argv.index("--")
    p = argparse.ArgumentParser(prog="python -m techday.hub.runas")
    p.add_argument("uid", type=int)
    p.add_argument("gid", type=int)
    p.add_argument("--home", default=None)
    args = p.parse_args(argv[:cut])
    command = argv[cut + 1:]
    if not command:
        print("techday.hub.runas: no command after --", file=sys.stderr)
        return 2
    if args.uid == 0 or args.gid == 0:
        print("techday.hub.runas: refusing to run as root (uid or gid 0)", file=sys.stderr)
        return 2
    try:
        drop(args.uid, args.gid, args.home)
    except (PermissionError, OSError) as exc:
        print(f"techday.hub.runas: {exc}", file=sys.stderr)
        return 1
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"techday.hub.runas: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
