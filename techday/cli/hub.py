"""``techday hub | locks``: delivery. The JupyterHub for the day, and the image's locked install sets.

    techday hub check [--config F]      rehearsal: the hub config loads, GPUs visible, exchange writable
    techday hub users --trainees N      the accounts CSV and the password cards
    techday hub release NAME --out DIR  lift a sign-in lock (too many wrong passwords) at once
    techday hub lab-language ko|en      the trainee image's JupyterLab speaks the room's language (image build)
    techday hub nbgrader-language [--undo]  nbgrader's buttons and tab in the page's language (lab-language runs it)
    techday hub sweep [--every S]       hold every uid to the exchange's budget (root; the hub runs it)
    techday locks check|compile [SET]   docker/locks/: every pin checked, or the sets resolved again

Both locks commands end the same way (:func:`_locks_exit`): 0 done, 1 a lock or a resolve that fails,
2 bad usage (an unknown set, ``--lock`` with more than one), 3 the registry could not be reached.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..hub.config import check, make_accounts, read_accounts, write_accounts
from ..hub.locks import (
    SETS,
    LockError,
    LockSet,
    RegistryUnreachable,
    compile_lock,
    default_cache,
    repo_root,
)
from ..hub.locks import check as check_lock


def register(sub) -> None:
    _register_hub(sub)
    _register_locks(sub)


def _register_hub(sub) -> None:
    p = sub.add_parser("hub", help="JupyterHub for the day: check the server, accounts, sign-in locks, the exchange's sweep")
    hsub = p.add_subparsers(dest="hub_command", required=True)

    c = hsub.add_parser("check", help="rehearsal: config loads, GPUs visible, exchange writable")
    c.add_argument("--config", default=None, help="jupyterhub_config.py (default: docker/jupyterhub_config.py)")
    c.add_argument("--allow-cpu", action="store_true", help="no GPU listed is fine (a CPU-only rehearsal)")
    c.set_defaults(fn=cmd_hub_check)

    u = hsub.add_parser("users", help="make the accounts CSV and the password cards")
    u.add_argument("--trainees", type=int, required=True, help="how many trainee accounts")
    u.add_argument("--prefix", default="trainee", help="trainee usernames: PREFIX-001, ...")
    u.add_argument("--instructors", default="", help="comma-separated instructor usernames")
    u.add_argument("--admins", default="", help="comma-separated hub admin usernames")
    u.add_argument("--out", required=True, help="folder for users.csv (hub) and passwords.csv (cards)")
    u.add_argument("--force", action="store_true",
                   help="re-issue into a folder that has accounts (to add names): accounts already there keep "
                        "their passwords, so printed cards still work")
    u.add_argument("--new-passwords", action="store_true",
                   help="with --force: a new password for every account (every printed card stops working)")
    u.add_argument("--remove", action="store_true",
                   help="with --force: remove the accounts this roster leaves out (they can no longer sign in, "
                        "and their submissions are no longer collected)")
    u.set_defaults(fn=cmd_hub_users)

    w = hsub.add_parser("sweep", help="hold every trainee's uid to the exchange's budget (TECHDAY_EXCHANGE_*; as root, "
                        "the hub runs it)")
    w.add_argument("--every", type=float, default=0, help="seconds between passes (0: one pass)")
    w.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    w.set_defaults(fn=cmd_hub_sweep)

    r = hsub.add_parser("release", help="lift the sign-in lock of accounts or addresses (too many wrong passwords)")
    r.add_argument("names", nargs="*", metavar="NAME", help="accounts to release")
    r.add_argument("--address", action="append", default=[], help="a client address to release (repeatable)")
    r.add_argument("--out", required=True, help="the folder of users.csv (the one `techday hub users --out` wrote)")
    r.set_defaults(fn=cmd_hub_release)

    g = hsub.add_parser("lab-language", help="JupyterLab's own language (menus, dialogs) defaults to the room's "
                                             "(the trainee image's build runs it)")
    g.add_argument("lang", help="the room's language: ko or en (TECHDAY_LANG)")
    g.add_argument("--prefix", default=None,
                   help="the Python environment whose JupyterLab to set (default: this one, sys.prefix)")
    g.set_defaults(fn=cmd_hub_lab_language)

    nb = hsub.add_parser("nbgrader-language", help="nbgrader's own buttons, tab and dialogs (Validate, Fetch, "
                                                   "Submit, Assignments) in the page's language: its installed "
                                                   "labextension rewritten (lab-language runs it)")
    nb.add_argument("--prefix", default=None,
                    help="the Python environment whose nbgrader labextension to patch (default: this one)")
    nb.add_argument("--undo", action="store_true",
                    help="nbgrader's extension as installed: package.json from its .orig, the step's files removed")
    nb.set_defaults(fn=cmd_hub_nbgrader_language)


def cmd_hub_check(args) -> int:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if args.config:
        path = Path(args.config)
    else:
        from ..course.syllabus import find_root

        path = find_root() / "docker" / "jupyterhub_config.py"
    if not path.is_file():  # said as such, not as a config that "does not call configure"
        what = "is a folder" if path.is_dir() else "does not exist"
        print(f"techday hub check: --config {path} {what}: give the hub's jupyterhub_config.py (default: "
              "docker/jupyterhub_config.py)", file=sys.stderr)
        return 2
    findings = check(path.resolve(), allow_cpu=args.allow_cpu)
    # One finding per line, never cut to a terminal's width: the fix is to be copied.
    for f in findings:
        console.print(f"{'[green]ok     [/]' if f.ok else '[red]PROBLEM[/]'} {f.check}: {f.detail}", markup=True)
        if f.fix:
            console.print(f"        fix: {f.fix}", markup=False)
    bad = [f for f in findings if not f.ok]
    console.print(f"{len(findings) - len(bad)} ok, {len(bad)} problem(s)")
    return 1 if bad else 0


def cmd_hub_sweep(args) -> int:
    """One pass, or one every ``--every`` seconds, of :func:`techday.hub.exchangequota.sweep` over the course's
    inbound as ``TECHDAY_EXCHANGE``, ``TECHDAY_COURSE_ID`` and ``TECHDAY_USERS_FILE`` name it. Each removal on a
    line, then the pass's counts (:func:`techday.hub.exchangequota.summary`). One pass exits 1 when it failed: it
    could not read what it sweeps, or could not remove an entry it should have (a Kubernetes CronJob's Job then
    shows Failed); ``--every`` goes on to the next pass."""
    from ..hub.config import UsersFileError
    from ..hub.exchangequota import shown, summary, sweep_from_env

    while True:
        try:
            report = sweep_from_env(remove=not args.dry_run, log=lambda item: print(
                f"techday hub sweep: {shown(item)}", flush=True))
            if report is None:
                print("techday hub sweep: no inbound yet (nothing released)", flush=True)
            else:
                print(f"techday hub sweep: {summary(report)}", flush=True)
                if not args.every and any(item.error for item in report.removed):
                    return 1
        except (OSError, UsersFileError, ValueError) as exc:   # ValueError: a budget it cannot honour
            print(f"techday hub sweep: {exc}", file=sys.stderr, flush=True)
            if not args.every:
                return 1
        except Exception as exc:  # noqa: BLE001 (a pass that fails must not end the sweep for the day)
            if not args.every:
                raise
            print(f"techday hub sweep: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        if not args.every:
            return 0
        time.sleep(args.every)


def cmd_hub_users(args) -> int:
    names = lambda s: [x.strip().lower() for x in s.split(",") if x.strip()]  # noqa: E731
    if args.trainees < 0:
        print("--trainees must be 0 or more", file=sys.stderr)
        return 2
    try:
        rows = make_accounts(args.trainees, args.prefix, names(args.instructors), names(args.admins))
    except ValueError as exc:
        print(f"techday hub users: {exc}", file=sys.stderr)
        return 2
    if not rows:  # an accounts file with nobody in it (with --force: every account gone, nobody can sign in)
        print("techday hub users: no account to make: give --trainees N above 0, or --instructors or --admins",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"techday hub users: --out {out} is a file: give a folder for users.csv and passwords.csv",
              file=sys.stderr)
        return 2
    if (args.new_passwords or args.remove) and not args.force:
        print("techday hub users: --new-passwords and --remove change accounts already issued: give --force too",
              file=sys.stderr)
        return 2
    try:
        before = set(read_accounts(out / "users.csv")) if args.force and (out / "users.csv").is_file() else set()
        users, slips = write_accounts(rows, out, force=args.force, new_passwords=args.new_passwords,
                                      remove=args.remove)
    except (FileExistsError, ValueError) as exc:  # UsersFileError, RosterShrinks: ValueErrors, nothing written
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:  # a folder that cannot be made or written (a file on the way, no rights, a full disk)
        print(f"techday hub users: cannot write in --out {out}: {exc.strerror or exc}"
              f"{f' ({exc.filename})' if exc.filename else ''}: give a folder you can write to", file=sys.stderr)
        return 2
    print(f"{len(rows)} account(s): {users} (for the hub: TECHDAY_USERS_FILE)")
    if before:
        names = [name for name, _, _ in rows]
        kept = [] if args.new_passwords else [n for n in names if n in before]
        new = [n for n in names if n not in kept]
        print(f"{len(kept)} kept their passwords (their cards still work); new card(s) for {len(new)}: "
              f"{', '.join(new[:20])}{' ...' if len(new) > 20 else ''}"
              + (f"; removed: {', '.join(sorted(before - set(names)))}" if before - set(names) else ""))
    print(f"passwords: {slips} (print the cards, then keep this file off the server)")
    return 0


def cmd_hub_release(args) -> int:
    """Append ``account NAME TIME`` lines to the release file beside users.csv; the hub reads it at the
    next sign-in attempt and lifts the locks that began before TIME (techday.hub.throttle)."""
    import re

    from ..hub.throttle import RELEASE_FILE

    out = Path(args.out)
    if not (out / "users.csv").is_file():
        print(f"techday hub release: no users.csv in --out {out}: give the folder `techday hub users --out` wrote",
              file=sys.stderr)
        return 2
    names = [n.strip().lower() for n in args.names if n.strip()]
    if not names and not args.address:
        print("techday hub release: name an account (NAME) or an address (--address IP)", file=sys.stderr)
        return 2
    bad = [x for x in [*names, *args.address] if not re.fullmatch(r"[A-Za-z0-9_.:@-]{1,256}", x)]
    if bad:
        print(f"techday hub release: not an account name or an address: {', '.join(map(repr, bad))}", file=sys.stderr)
        return 2
    unknown = sorted(set(names) - set(read_accounts(out / "users.csv")))
    now = time.time()
    lines = [f"account {n} {now:.3f}\n" for n in names] + [f"address {a} {now:.3f}\n" for a in args.address]
    try:
        with open(out / RELEASE_FILE, "a", encoding="utf-8") as f:
            f.writelines(lines)
    except OSError as exc:
        print(f"techday hub release: cannot write {out / RELEASE_FILE}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"released {len(lines)}: {', '.join([*names, *args.address])} (the hub reads {out / RELEASE_FILE} "
          "at the next sign-in)" + (f"; not in users.csv: {', '.join(unknown)}" if unknown else ""))
    return 0


def cmd_hub_lab_language(args) -> int:
    """Write the room's language into JupyterLab's settings overrides (techday.hub.lablang)."""
    from ..hub.lablang import LabLanguageError, write_lab_locale
    from ..i18n import msg

    try:
        path = write_lab_locale(args.lang, args.prefix)
    except LabLanguageError as exc:
        print(f"techday hub lab-language: {exc}", file=sys.stderr)
        return 2
    print(msg("techday.hub_lab_language_set", "JupyterLab's default language is now {lang} ({path}); a trainee "
              "can still change it in Settings > Language", lang=args.lang.strip().lower(), path=path))
    # nbgrader's own texts follow the page's language at run time: the same patch in every room's image
    return _nbgrader_language(args.prefix, undo=False, required=False, name="lab-language")


def cmd_hub_nbgrader_language(args) -> int:
    """Rewrite nbgrader's labextension so its texts follow the page's language (techday.hub.nbgraderlang)."""
    return _nbgrader_language(args.prefix, undo=args.undo, required=True, name="nbgrader-language")


def _nbgrader_language(prefix, undo: bool, required: bool, name: str) -> int:
    """0 done (or nothing to do), 2 refused (the reason on stderr, nothing written)."""
    from ..hub.nbgraderlang import NbgraderLangError, extension_dir, patch
    from ..hub.nbgraderlang import undo as undo_patch
    from ..i18n import msg

    ext = extension_dir(prefix)
    if not (ext / "package.json").is_file():
        print(msg("techday.nbgrader_language_absent", "nbgrader's JupyterLab extension is not installed in {path}: "
                  "nothing to translate", path=ext), file=sys.stderr if required else sys.stdout)
        return 2 if required else 0
    try:
        result = undo_patch(ext=ext) if undo else patch(ext=ext)
    except NbgraderLangError as exc:
        print(f"techday hub {name}: {exc}", file=sys.stderr)
        return 2
    if undo:
        print(msg("techday.nbgrader_language_undone", "nbgrader's JupyterLab extension restored from its original: "
                  "{count} file(s) in {path}", count=len(result.restored), path=ext))
    elif not result.unchanged:
        print(msg("techday.nbgrader_language_patched", "nbgrader's buttons, tab and dialogs now follow JupyterLab's "
                  "language: {count} file(s) written in {path} (nbgrader's own files unchanged, package.json kept as "
                  "package.json.orig; --undo puts it back)", count=len(result.patched) + len(result.restored), path=ext))
    else:
        print(msg("techday.nbgrader_language_unchanged", "nbgrader's JupyterLab extension already follows "
                  "JupyterLab's language: nothing changed in {path}", path=ext))
    return 0


def _register_locks(sub) -> None:
    p = sub.add_parser("locks", help="the image's locked install sets: check or re-resolve them")
    lsub = p.add_subparsers(dest="locks_command", required=True)
    c = lsub.add_parser("check", help="every pin against the requirements and the other pins' metadata")
    c.add_argument("sets", nargs="*", metavar="SET", help=f"default: all ({', '.join(SETS)})")
    c.add_argument("--lock", help="check this file instead of docker/locks/SET.txt (one SET)")
    c.add_argument("--allow-missing", action="store_true",
                   help="a pin the registry has no wheel of is reported as unchecked, not as a failure")
    c.add_argument("--no-uv", action="store_true", help="skip the second resolve with uv")
    c.add_argument("--no-cache", action="store_true",
                   help="read every wheel's metadata from the registry again (default: build/locks/metadata.json)")
    c.set_defaults(fn=cmd_locks_check)
    m = lsub.add_parser("compile", help="resolve the sets again with uv (nothing installed) and rewrite the locks")
    m.add_argument("sets", nargs="*", metavar="SET", help=f"default: all ({', '.join(SETS)})")
    m.add_argument("--upgrade", action="store_true", help="take the newest releases, not the current pins")
    m.set_defaults(fn=cmd_locks_compile)


class LockUsage(LockError):
    """The command line asks for something that does not exist (exit 2), not a lock that fails."""


def _sets(names: list[str]) -> list[LockSet]:
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise LockUsage(f"unknown set(s) {', '.join(unknown)}; the sets are {', '.join(SETS)}")
    return [SETS[n] for n in (names or SETS)]


def _locks_exit(fn):
    """One ending for both locks commands: the exit codes of the module docstring."""
    import functools

    @functools.wraps(fn)
    def run(args) -> int:
        try:
            return fn(args)
        except RegistryUnreachable as exc:
            print(f"locks: the package registry is unreachable, so the {args.locks_command} could not finish:\n{exc}",
                  file=sys.stderr)
            return 3
        except LockUsage as exc:
            print(f"locks: {exc}", file=sys.stderr)
            return 2
        except LockError as exc:
            print(f"locks: {exc}", file=sys.stderr)
            return 1
    return run


def _root(args) -> Path:
    return Path(args.root).resolve() if getattr(args, "root", None) else repo_root()


@_locks_exit
def cmd_locks_check(args) -> int:
    root = _root(args)
    sets = _sets(args.sets)
    if args.lock and len(sets) != 1:
        raise LockUsage("--lock needs exactly one SET")
    status = 0
    for lockset in sets:
        path = Path(args.lock).resolve() if args.lock else None
        t0 = time.monotonic()
        res = check_lock(root, lockset, path, use_uv=not args.no_uv,
                         cache=None if args.no_cache else default_cache(root))
        took = time.monotonic() - t0
        rel = _rel(res.path, root)
        failed = bool(res.problems) or (bool(res.unchecked) and not args.allow_missing)
        for line in res.problems:
            print(f"{rel}: {line}", file=sys.stderr)
        for line in res.unchecked:
            print(f"{rel}: unchecked: {line}", file=sys.stderr if failed else sys.stdout)
        for line in res.notes:
            print(f"{rel}: note: {line}")
        parts = ", ".join(f"{k} {v} s" for k, v in res.seconds.items())
        verdict = "FAILED" if failed else "ok"
        print(f"{rel}: {verdict}: {res.pins} pins, {len(res.problems)} problem(s), "
              f"{len(res.unchecked)} unchecked; {took:.1f} s ({parts})")
        status = max(status, 1 if failed else 0)
    return status


@_locks_exit
def cmd_locks_compile(args) -> int:
    root = _root(args)
    for lockset in _sets(args.sets):
        path, stats = compile_lock(root, lockset, upgrade=args.upgrade)
        print(f"{_rel(path, root)}: {stats['wheels']} wheels, {stats['mb']} MB; resolved in {stats['resolve_s']} s, "
              f"{stats['seconds']} s with the wheel list")
    return 0


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
