"""JupyterHub for a Tech Day: the project's hub settings, the GPU allocator and ``techday hub``.

One GPU server (docker/compose.yaml, docker/jupyterhub_config.py) and the integration tests share
:func:`configure`, so the settings a test proves are the settings the room gets::

    c = get_config()
    from techday.hub.config import HubSettings, configure
    configure(c, HubSettings.from_env())

What it sets up:

- **Sign-in**: :class:`techday.hub.auth.PasswordListAuthenticator` reads a CSV of pre-issued accounts
  (``techday hub users`` writes it, with hashed passwords; no open sign-up).
- **nbgrader, several graders** (nbgrader's "Using nbgrader with JupyterHub", JupyterHub 2+ roles): a
  course service named after the course runs the formgrader in the course root; the group and role
  ``formgrade-<course>`` lets instructors reach it, ``nbgrader-<course>`` lets trainees see the course.
- **GPUs by device id**: :class:`GpuAllocator` hands each trainee's server one whole GPU or one MIG
  slice from a list, and never gives one device to two servers.
- **Idle culling**: jupyterhub-idle-culler runs as a hub service.

This module imports only the standard library, so ``techday`` stays light; JupyterHub is imported
where it is needed (the ``hub`` extra: ``pip install -e ".[hub]"``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import atomicfile

DEFAULT_EXCHANGE = "/srv/nbgrader/exchange"
ROLES = ("trainee", "instructor", "admin")

# Who owns what on the day (docker/README.md, "Who can read what"). Every account's server runs as a
# Unix user of its own, so nbgrader's exchange keeps one trainee's submission from another by the
# kernel's permission checks; the course service (formgrader, collect, release) runs as the grader.
GRADER_UID = GRADER_GID = 1500     # the grader image's `grader` user: owns the course root and inbound
TRAINEE_GID = 100                  # every account's server: group `users`, never the grader's group
UID_FIRST, UID_LAST = 20001, 65533 # account uids: `techday hub users` numbers them from UID_FIRST


# --------------------------------------------------------------------------------------------- GPUs


class NoGpuFree(RuntimeError):
    """Every listed device is in use: the spawn is refused rather than shared."""


def parse_devices(text: str) -> list[str]:
    """``"0,1,2"`` or MIG UUIDs (``"MIG-aaa,MIG-bbb"``), comma or space separated, in hand-out order.

    A device listed twice would be shared by two trainees without anyone deciding it: refused.
    """
    devices = [d for d in re.split(r"[\s,]+", text.strip()) if d]
    seen, dupes = set(), []
    for d in devices:
        if not re.fullmatch(r"\d+|(GPU|MIG)-[0-9A-Za-z-]+", d):
            raise ValueError(f"{d!r} is not a GPU index, GPU-<uuid> or MIG-<uuid> (see `nvidia-smi -L`)")
        if d in seen:
            dupes.append(d)
        seen.add(d)
    if dupes:
        raise ValueError(f"device(s) listed twice, two trainees would share them: {', '.join(dupes)}")
    return devices


@dataclass
class GpuAllocator:
    """Deterministic GPU hand-out: the first free device in list order, one server per device.

    ``state`` (a JSON file) keeps who holds what across hub restarts; a user who already holds a
    device gets the same one back (a second login or a re-spawn keeps its GPU).
    """

    devices: list[str]
    state: Path | None = None
    holders: dict[str, str] = field(default_factory=dict)  # user -> device

    def __post_init__(self):
        if self.state and self.state.is_file():
            saved = self._read_state()
            # A device no longer listed is dropped; a device listed once is held by one user only.
            taken = set()
            for user, device in sorted(saved.items()):
                if device in self.devices and device not in taken:
                    self.holders[user] = device
                    taken.add(device)

    def _read_state(self) -> dict:
        """The saved holders; a file that cannot be read (cut off, edited by hand, another encoding)
        is kept beside as ``gpus.json.unreadable-<time>`` and the hand-out starts empty, with a warning:
        it stopped the hub's config from loading, so no one could log in."""
        import logging
        import time

        try:
            saved = json.loads(self.state.read_text(encoding="utf-8")).get("holders", {})
            if not (isinstance(saved, dict) and all(isinstance(v, str) for v in saved.values())):
                raise ValueError("holders is not a table of user -> device")
            return saved
        except (ValueError, AttributeError) as exc:  # JSONDecodeError, UnicodeDecodeError, not an object
            kept = self.state.with_name(f"{self.state.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.state, kept)
            logging.getLogger("techday.hub.config").warning(
                "%s was not readable (%s); kept as %s: GPUs are handed out afresh", self.state, exc, kept.name)
            return {}

    def free(self) -> list[str]:
        taken = set(self.holders.values())
        return [d for d in self.devices if d not in taken]

    def assign(self, user: str) -> str:
        if user in self.holders:
            return self.holders[user]
        free = self.free()
        if not free:
            raise NoGpuFree(f"all {len(self.devices)} GPU(s) are in use; no device for {user}")
        self.holders[user] = free[0]
        self._save()
        return free[0]

    def release(self, user: str) -> str | None:
        device = self.holders.pop(user, None)
        if device is not None:
            self._save()
        return device

    def _save(self):
        if not self.state:
            return
        self.state.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state.parent, prefix=".gpus-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"devices": self.devices, "holders": self.holders}, f, indent=1, sort_keys=True)
        os.replace(tmp, self.state)


def apply_device(spawner, device: str | None) -> None:
    """Give a spawner's server one device (or none: the CPU tier).

    DockerSpawner: a Docker device request for exactly that id (the container sees it as device 0).
    Any other spawner (a local process): ``CUDA_VISIBLE_DEVICES``, which takes indices and MIG UUIDs.
    """
    env = dict(spawner.environment or {})
    env["TECHDAY_GPU"] = device or "none"
    if device is None:
        env["TECHDAY_TIER"] = "cpu"
    if hasattr(spawner, "extra_host_config"):
        host = dict(spawner.extra_host_config or {})
        host["device_requests"] = ([{"driver": "nvidia", "device_ids": [device], "capabilities": [["gpu"]]}]
                                   if device else [])
        spawner.extra_host_config = host
        if device is None:
            # Where the daemon's default runtime is NVIDIA's, an image's NVIDIA_VISIBLE_DEVICES would
            # still show GPUs to a container that asked for none: say none.
            env["NVIDIA_VISIBLE_DEVICES"] = "void"
    else:
        env["CUDA_VISIBLE_DEVICES"] = device or ""
    spawner.environment = env


def gpu_hooks(allocator: GpuAllocator, overflow: str = "refuse"):
    """``pre_spawn_hook`` and ``post_stop_hook`` for JupyterHub's Spawner.

    ``overflow``: ``refuse`` (the spawn fails with a message to fetch an instructor) or ``cpu`` (the
    server starts on the CPU tier and its banner says so). Never a silent share.
    """
    if overflow not in ("refuse", "cpu"):
        raise ValueError(f"overflow must be 'refuse' or 'cpu', not {overflow!r}")

    def pre_spawn(spawner):
        if not allocator.devices:
            apply_device(spawner, None)
            return
        try:
            device = allocator.assign(spawner.user.name)
        except NoGpuFree as exc:
            if overflow == "cpu":
                spawner.log.warning("%s: starting on the CPU tier", exc)
                apply_device(spawner, None)
                return
            from ..i18n import msg

            # the trainee reads it on the hub's page: in the room's language (the syllabus' default_language)
            raise RuntimeError(msg("techday.hub_no_gpu", "all {count} GPU(s) are in use; no device for {user}. Ask "
                                   "an instructor: a GPU frees up when a server stops", count=len(allocator.devices),
                                   user=spawner.user.name)) from None
        spawner.log.info("GPU %s -> %s", device, spawner.user.name)
        apply_device(spawner, device)

    def post_stop(spawner):
        device = allocator.release(spawner.user.name)
        if device is not None:
            spawner.log.info("GPU %s released by %s", device, spawner.user.name)

    return pre_spawn, post_stop


# ------------------------------------------------------------------------------------------ identity


class AccountsCache:
    """The accounts file, re-read when it changes (sign-in and the spawn hook ask on every use).

    A bad edit mid-morning must not sign the room out or stop every spawn: once a file has been read,
    a later one that does not parse is logged as an error and the last good accounts stay in use.
    """

    def __init__(self, path: Path, log=None):
        import logging

        self.path = Path(path)
        self.log = log or logging.getLogger("techday.hub.config")
        self._seen: tuple[float, dict] | None = None

    def get(self) -> dict:
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            raise UsersFileError(f"{self.path}: {exc.strerror}") from None
        if self._seen is None or self._seen[0] != mtime:
            try:
                accounts = read_accounts(self.path)
            except UsersFileError as exc:
                if self._seen is None:
                    raise
                self.log.error("accounts file not reloaded, the previous one stays in use: %s", exc)
                accounts = self._seen[1]
            else:
                self.log.info("accounts: %d from %s", len(accounts), self.path)
            self._seen = (mtime, accounts)
        return self._seen[1]


def both_languages(say) -> str:
    """A refusal the hub shows on a trainee's spawn page: ``say(words)`` (one ``words.msg(...)`` call) in
    Korean and English, whatever the room's language (the hub's own process reads no trainee's setting)."""
    from ..i18n import PackageCatalogue

    return " / ".join(say(PackageCatalogue(lang)) for lang in ("ko", "en"))


def account_uid(accounts: dict, name: str) -> int:
    """The uid ``name``'s server runs as; a clear refusal (Korean and English) when the file gives none."""
    account = accounts.get(name)
    if account is None:
        raise RuntimeError(both_languages(lambda w: w.msg(
            "techday.spawn_unknown_account", "{name} is not in the accounts file: no server for an unknown account. "
            "Ask an instructor.", name=name)))
    if account.uid is None:
        raise RuntimeError(both_languages(lambda w: w.msg(
            "techday.spawn_no_uid", "the accounts file gives {name} no uid: no server can start for it. Ask an "
            "instructor (remake it with `techday hub users`: each server runs as a Unix user of its own, so "
            "trainees cannot read each other's submissions).", name=name)))
    return account.uid


def spawner_uid(accounts: AccountsCache):
    """``KubeSpawner.uid`` for the chart (docker/z2jh-values.yaml, ``techday-uids``): the account's uid, and
    an account without one (or an accounts file that cannot be read) refused on the trainee's spawn page
    with the reason, in Korean and English. A plain RuntimeError there became JupyterHub's "Unhandled error
    starting server <name>" and the reason stayed in the hub's log."""

    def uid(spawner) -> int:
        def look_up(spawner) -> int:
            try:
                accounts_now = accounts.get()
            except (OSError, UsersFileError) as exc:
                raise RuntimeError(both_languages(lambda w: w.msg(
                    "techday.spawn_accounts_unreadable", "The hub cannot read its accounts file ({error}): no "
                    "server can start. Ask an instructor.", error=str(exc)))) from None
            return account_uid(accounts_now, spawner.user.name)

        return shown_to_trainee(look_up)(spawner)

    return uid


# No server gains a privilege after it starts, whatever its image holds: a setuid or file-capability
# program (su, mount, newgrp in the base image; a flaw in one is root in the container, and root there
# reads and changes every submission in the shared exchange) runs with the caller's rights, and the
# capability bounding set is empty. The kernel checks it, from outside the trainee's processes.
NO_NEW_PRIVILEGES = "no-new-privileges:true"
KUBE_NO_PRIVILEGES = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def apply_identity(spawner, uid: int, gid: int = TRAINEE_GID) -> None:
    """Run a spawner's server as ``uid:gid``, whatever the spawner, never gaining a privilege after it
    starts (:data:`NO_NEW_PRIVILEGES`: no setuid program raises it, no capability is left to gain).

    DockerSpawner: the container's user (the lab image's home and work folders are open to any uid);
    KubeSpawner: the pod's ``runAsUser``/``runAsGroup``; a local process spawner (the hub tests): the
    ``techday_uid``/``techday_gid`` attributes its ``make_preexec_fn`` reads. No passwd entry exists for
    these uids, so ``USER`` and ``LOGNAME`` are set for the libraries that ask.
    """
    env = dict(spawner.environment or {})
    env["USER"] = env["LOGNAME"] = spawner.user.name
    if hasattr(spawner, "extra_create_kwargs"):                     # DockerSpawner
        spawner.extra_create_kwargs = {**(spawner.extra_create_kwargs or {}), "user": f"{uid}:{gid}"}
        host = dict(spawner.extra_host_config or {})
        host["security_opt"] = sorted({*(host.get("security_opt") or []), NO_NEW_PRIVILEGES})
        host["cap_drop"] = ["ALL"]
        spawner.extra_host_config = host
        env["HOME"] = "/home/jovyan"
    elif hasattr(spawner, "fs_gid") and hasattr(spawner, "uid"):    # KubeSpawner
        spawner.uid, spawner.gid = uid, gid
        spawner.allow_privilege_escalation = False
        spawner.container_security_context = {**(getattr(spawner, "container_security_context", None) or {}),
                                              **KUBE_NO_PRIVILEGES}
    else:
        spawner.techday_uid, spawner.techday_gid = uid, gid
        spawner.techday_no_new_privs = True   # the local spawner's preexec: techday.hub.runas.no_new_privs
    spawner.environment = env


def apply_pids_limit(spawner, pids: int) -> None:
    """At most ``pids`` processes and threads in a server (0: no limit). DockerSpawner: the container's
    pids cgroup (Docker's ``--pids-limit``), counted by the kernel from outside the trainee's processes.
    KubeSpawner has no per-pod setting (the kubelet's ``podPidsLimit`` is the node's); a local process
    spawner has no cgroup of its own: neither gets one here (docker/README.md says so)."""
    if pids and hasattr(spawner, "extra_host_config"):
        spawner.extra_host_config = {**(spawner.extra_host_config or {}), "pids_limit": int(pids)}


def parse_size(text: str) -> int:
    """Bytes in a size as Docker and Kubernetes write it: ``10G``, ``10GB``, ``10Gi``, ``512m`` (binary
    units, as Docker reads ``--storage-opt size``); ``""`` or ``0`` is 0 (no size)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)(?:i?[bB]|i)?\s*", text or "0")
    if not m:
        raise ValueError(f"{text!r} is not a size (10G, 512M, 5Gi)")
    # Exact arithmetic (never float: 400 digits overflowed it, and past 2**53 bytes it rounded); a fraction of a
    # byte is dropped. Past Python's digits for int() (sys.get_int_max_str_digits) Fraction raises ValueError.
    from fractions import Fraction

    return int(Fraction(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))


HOME = "/home/jovyan/work"   # a trainee's folder in the lab image (docker/jupyterhub_config.py mounts it)


def apply_disk_limit(spawner, size: str) -> None:
    """At most ``size`` in a trainee's home and as much again in their container's own layer (/tmp, pip
    installs), counted by the kernel's XFS project quotas, outside the trainee's processes.

    DockerSpawner: the home volume becomes a volume mount with the local driver's ``size`` option (the
    volume is made with a quota when it is first made: one made before keeps none), and the container's
    ``storage_opt`` size. Both need Docker's data root on XFS mounted with ``pquota``; elsewhere Docker
    refuses the container, so no size is asked unless one is set (docker/README.md, "Disk").
    KubeSpawner and a local process spawner: nothing here (the chart sizes each PVC and pod itself)."""
    if not size or not hasattr(spawner, "extra_host_config") or not hasattr(spawner, "mounts"):
        return
    volumes = dict(spawner.volumes or {})
    homes = [src for src, dst in volumes.items() if (dst if isinstance(dst, str) else dst.get("bind")) == HOME]
    for src in homes:
        del volumes[src]
    spawner.volumes = volumes
    spawner.mounts = [*(spawner.mounts or []), *({"type": "volume", "source": src, "target": HOME,
                                                    "driver_config": {"Name": "local", "Options": {"size": size}}}
                                                   for src in homes)]
    spawner.extra_host_config = {**(spawner.extra_host_config or {}), "storage_opt": {"size": size}}


def refuse_on_full_disk(path: Path, min_free: int) -> None:
    """Refuse a server while the disk under ``path`` (the hub's state: on one server, the disk Docker keeps
    volumes on) has less than ``min_free`` bytes free: a server started there cannot save a notebook."""
    from ..i18n import PackageCatalogue

    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return
    if free < min_free:
        raise RuntimeError(" / ".join(PackageCatalogue(lang).msg(
            "techday.disk_full", "The server's disk is almost full ({free_mb} MB free): no new server can "
            "start. Ask an instructor.", free_mb=free // 2**20) for lang in ("ko", "en")))


def spawn_hooks(accounts: AccountsCache, allocator: GpuAllocator, overflow: str = "refuse", pids_limit: int = 0,
                disk_limit: str = "", disk_free: tuple[Path, int] | None = None):
    """``pre_spawn_hook`` and ``post_stop_hook``: the account's own uid, its process and disk limits, then
    its GPU; no server at all while the disk of ``disk_free`` (a path, bytes) is fuller than that."""
    gpu_pre, gpu_post = gpu_hooks(allocator, overflow)

    def pre_spawn(spawner):
        if disk_free:
            refuse_on_full_disk(*disk_free)
        try:
            accounts_now = accounts.get()
        except (OSError, UsersFileError) as exc:
            raise RuntimeError(both_languages(lambda w: w.msg(
                "techday.spawn_accounts_unreadable", "The hub cannot read its accounts file ({error}): no server "
                "can start. Ask an instructor.", error=str(exc)))) from None
        apply_identity(spawner, account_uid(accounts_now, spawner.user.name))
        apply_pids_limit(spawner, pids_limit)
        apply_disk_limit(spawner, disk_limit)
        gpu_pre(spawner)

    return pre_spawn, gpu_post


def drop_missing_gpus(devices: list[str], log, probe=None) -> list[str]:
    """The listed devices that this machine shows, logging each one that it does not.

    Handing out a device that is not there fails that trainee's spawn with Docker's "could not select
    device" at the worst moment; dropping it keeps everyone else working, and ``techday hub check``
    reports it. Without ``nvidia-smi`` nothing can be told apart: the list is kept, with a warning.
    """
    if not devices:
        return devices
    visible, why = (probe or visible_gpus)()
    if not visible:
        log(f"TECHDAY_GPUS lists {', '.join(devices)}, but no GPU can be seen from here ({why}); "
            "handing them out unchecked")
        return devices
    missing = [d for d in devices if d not in visible]
    for d in missing:
        log(f"TECHDAY_GPUS names GPU {d}, which this machine does not show (nvidia-smi -L lists "
            f"{', '.join(visible)}): it is not handed out; fix TECHDAY_GPUS and restart the hub")
    return [d for d in devices if d not in missing]


# --------------------------------------------------------------------------------------------- users


@dataclass
class Account:
    name: str
    role: str
    password_hash: str
    uid: int | None = None  # the Unix user its server runs as (None: an accounts file without uids)


def hash_password(password: str, salt: bytes | None = None, iterations: int = 120_000) -> str:
    import base64
    import hashlib

    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"pbkdf2_sha256${iterations}${b64(salt)}${b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    import base64
    import hashlib
    import hmac

    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(got, base64.b64decode(digest))


# The names an account may have (an allow-list): what `techday hub users` issues, plus precomposed
# Hangul syllables for names typed by hand. Nothing that prints as another name (a zero-width or
# full-width character, another script's look-alike, Hangul in decomposed form), nothing that is a path
# or splits nbgrader's entry names (``/``, ``..``, ``+``, a space).
ACCOUNT_NAME = re.compile(r"[a-z0-9\uac00-\ud7a3][a-z0-9\uac00-\ud7a3._-]{0,63}")


class UsersFileError(ValueError):
    """The accounts CSV is missing or malformed; the message says where."""


def read_accounts(path: Path) -> dict[str, Account]:
    """The hub's accounts CSV: ``username,role,password_hash,uid`` (``techday hub users`` writes it).

    A name listed twice, or two accounts with one uid, would let one person act as another: refused,
    naming both lines. (An account without a uid, such as a line added by hand, still signs in; its
    server does not start, and says why.)
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsersFileError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsersFileError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    accounts: dict[str, Account] = {}
    lines: dict[str, int] = {}
    uids: dict[int, str] = {}
    for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        name = (row.get("username") or "").strip().lower()
        role = (row.get("role") or "").strip()
        digest = (row.get("password_hash") or "").strip()
        if not name or role not in ROLES or not digest.startswith("pbkdf2_sha256$"):
            raise UsersFileError(f"{path}:{n}: want username,role,password_hash,uid with role in {ROLES}")
        if not ACCOUNT_NAME.fullmatch(name):
            raise UsersFileError(f"{path}:{n}: {name!r} is not a username (lower-case letters a-z, Hangul "
                                 "syllables, digits, . _ -; not starting with . _ -; up to 64): it could print "
                                 "as another account's name or be a path")
        if name in accounts:
            raise UsersFileError(f"{path}:{n}: {name} listed twice (first on line {lines[name]}): "
                                 "two people would share one account; remove one line")
        uid = None
        raw = (row.get("uid") or "").strip()
        if raw:
            if not raw.isdigit() or not UID_FIRST <= int(raw) <= UID_LAST:
                raise UsersFileError(f"{path}:{n}: uid {raw!r} of {name} is not a number from {UID_FIRST} "
                                     f"to {UID_LAST}")
            uid = int(raw)
            if uid in uids:
                raise UsersFileError(f"{path}:{n}: uid {uid} of {name} is also {uids[uid]}'s: they could "
                                     "read each other's work; give each account its own uid")
            uids[uid] = name
        accounts[name] = Account(name, role, digest, uid)
        lines[name] = n
    return accounts


def make_accounts(trainees: int, prefix: str, instructors: list[str], admins: list[str]) -> list[tuple[str, str, str]]:
    """(username, role, password) rows: ``trainee-001`` ... and the named staff, with fresh passwords."""
    import secrets

    # No look-alike characters (0/O, 1/l/I): the password is typed from a printed card.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    width = max(3, len(str(trainees)))
    rows = [(name, "admin", "") for name in admins] + [(name, "instructor", "") for name in instructors]
    rows += [(f"{prefix}-{i:0{width}d}", "trainee", "") for i in range(1, trainees + 1)]
    seen: dict[str, str] = {}
    for name, role, _ in rows:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name):
            raise ValueError(f"{name!r} is not a username (lower-case letters, digits, . _ -; up to 64)")
        if name in seen:
            raise ValueError(f"{name} is listed twice ({seen[name]} and {role}): one account per person")
        seen[name] = role
    if len(rows) > UID_LAST - UID_FIRST + 1:
        raise ValueError(f"{len(rows)} accounts: more than the {UID_LAST - UID_FIRST + 1} uids available")
    return [(name, role, "".join(secrets.choice(alphabet) for _ in range(10))) for name, role, _ in rows]


UID_LEDGER = "uids.csv"   # beside users.csv: every name -> uid this folder ever issued (no secrets)


def issued_uids(out: Path) -> dict[str, int]:
    """Every uid issued from the folder ``out`` so far, by name: its ledger (:data:`UID_LEDGER`) and its
    current ``users.csv`` (one written before the ledger existed). Refuses what it cannot read: a roster
    issued without knowing the old uids could hand one person's uid, and with it their files and
    submissions, to another."""
    issued: dict[str, int] = {}
    ledger = out / UID_LEDGER
    if ledger.exists():
        try:
            with open(ledger, newline="", encoding="utf-8") as f:
                for n, row in enumerate(csv.DictReader(f), start=2):
                    name, raw = (row.get("username") or "").strip(), (row.get("uid") or "").strip()
                    if not name or not raw.isdigit():
                        raise UsersFileError(f"{ledger}:{n}: want username,uid")
                    issued[name] = int(raw)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsersFileError(f"{ledger}: {exc}") from None
    if (out / "users.csv").exists():
        for name, account in read_accounts(out / "users.csv").items():
            if account.uid is not None:
                issued.setdefault(name, account.uid)
    # One uid, two names (a ledger edited by hand): both would get it, and with it each other's files.
    owners: dict[int, str] = {}
    for name, uid in issued.items():
        if uid in owners:
            raise UsersFileError(f"{ledger if ledger.exists() else out / 'users.csv'}: uid {uid} is issued to both "
                                 f"{owners[uid]} and {name}")
        owners[uid] = name
    return issued


class RosterShrinks(ValueError):
    """A re-issued roster leaves out accounts that exist: refused unless removing them is asked for."""


def _cards(path: Path) -> dict[str, str]:
    """The plain-text passwords a ``passwords.csv`` holds, by name (none if it was moved off the server)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return {(row.get("username") or "").strip(): row.get("password") or "" for row in csv.DictReader(f)}
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsersFileError(f"{path}: {exc}") from None


def write_accounts(rows, out: Path, force: bool = False, new_passwords: bool = False,
                   remove: bool = False) -> tuple[Path, Path]:
    """``users.csv`` (hashes and uids, for the hub) and ``passwords.csv`` (plain text, to print and hand
    out). A uid belongs to one name for good: a name issued before (in ``users.csv`` or the ledger
    :data:`UID_LEDGER` beside it) keeps its uid, and a new name gets one above every uid ever issued
    here, even one whose name has left the roster. Renumbering (uids by row order, as before) gave a
    trainee the uid of the trainee before them, who still owned submissions in the exchange and files
    in a home folder. The first roster is numbered from :data:`UID_FIRST` in row order.

    Re-issued into a folder that has accounts (``force``, the way to add a late trainee): an account
    already there keeps its password, so every printed card still works (``new_passwords``: new ones for
    everyone), and the cards file keeps the passwords it held. An account the new roster leaves out is
    removed only with ``remove``; otherwise :class:`RosterShrinks` names them and nothing is written.
    Re-issuing used to give all 300 trainees new passwords and drop whoever a mistyped count left out.
    Returns the two paths."""
    out.mkdir(parents=True, exist_ok=True)
    users, slips = out / "users.csv", out / "passwords.csv"
    if not force and (users.exists() or slips.exists()):
        raise FileExistsError(f"{users} or {slips} exists: passwords already handed out would stop working "
                              "(use --force to add accounts to them)")
    try:
        issued = issued_uids(out)
        before = read_accounts(users) if users.exists() else {}
        printed = _cards(slips)
    except UsersFileError as exc:
        raise UsersFileError(f"cannot tell which accounts and uids were issued before ({exc}): fix that file rather "
                             "than remove it; a uid given to a second person hands them the first one's files") from None
    wanted = {name for name, _, _ in rows}
    gone = sorted(set(before) - wanted)
    if gone and not remove:
        raise RosterShrinks(f"{len(gone)} account(s) in {users} are not in this roster: {', '.join(gone[:20])}"
                            f"{' ...' if len(gone) > 20 else ''}. Nothing was written. Give the whole roster "
                            "(the same --trainees, --instructors and --admins, plus the new names), or add --remove "
                            "to remove them: they could no longer sign in, and their submissions would not be collected")
    taken = set(issued.values())
    following = max(taken, default=UID_FIRST - 1) + 1
    uids = []
    for name, _, _ in rows:
        if name not in issued:
            if following > UID_LAST:
                raise ValueError(f"no uid left for {name}: {UID_FIRST} to {UID_LAST} have all been issued in {out}")
            issued[name], following = following, following + 1
        uids.append(issued[name])
    kept = [] if new_passwords else [name for name, _, _ in rows if name in before]
    hashes = {name: before[name].password_hash for name in kept}
    cards = [(name, role, printed.get(name, "") if name in hashes else password) for name, role, password in rows]
    tmp = out / f".{UID_LEDGER}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["username", "uid"])
        w.writerows(sorted(issued.items(), key=lambda item: item[1]))
    os.replace(tmp, out / UID_LEDGER)
    with atomicfile.replacing(users, newline="") as f:
        w = csv.writer(f)
        w.writerow(["username", "role", "password_hash", "uid"])
        for uid, (name, role, password) in zip(uids, rows):
            w.writerow([name, role, hashes.get(name) or hash_password(password), uid])
    with atomicfile.replacing(slips, newline="", perms=0o600) as f:  # passwords: the owner's eyes only
        w = csv.writer(f)
        w.writerow(["username", "role", "password"])
        # A kept account whose card is not in the old file (moved off the server) keeps its password, unknown here.
        w.writerows(card for card in cards if card[2])
    return users, slips


# --------------------------------------------------------------------------------------------- config


@dataclass
class HubSettings:
    """Everything the hub needs to know about the day. :meth:`from_env` reads ``TECHDAY_*`` variables."""

    course_id: str
    users_file: Path
    exchange: Path = Path(DEFAULT_EXCHANGE)
    course_root: Path = Path("/srv/nbgrader/course")
    gpus: list[str] = field(default_factory=list)
    gpu_overflow: str = "refuse"
    state_dir: Path = Path("/srv/jupyterhub")
    cull_timeout_s: int = 3600
    # What one trainee's server may take of the machine (docker/README.md, "Limits per trainee"): memory,
    # CPU cores (a fraction is fine) and processes (threads count). 0 or "": no limit of that kind.
    mem_limit: str = "16G"
    cpu_limit: float = 4.0
    pids_limit: int = 4096
    course_service_port: int = 9999
    course_service_url: str = ""  # default http://127.0.0.1:<port>
    # Set: the course service runs elsewhere (compose's `course` container, the chart's grader
    # deployment) and signs in to the hub with this token. Empty: the hub starts it itself, as the
    # grader user (never as root) when the hub runs as root.
    course_service_token: str = ""
    # Each server on an origin of its own (JupyterHub's subdomain_host, "https://hub.example.org": trainee
    # servers at https://<name>.hub.example.org; wildcard DNS and certificate). Empty: every server
    # shares the hub's origin, and a trainee's page can act as whoever opens it (`techday hub check`).
    subdomain_host: str = ""
    # Spawns at once (JupyterHub's concurrent_spawn_limit): one server holds at most 56 trainees (8 GPUs as
    # MIG slices) and starts a container in 5 to 20 s; 20 at a time lets such a room in within a minute
    # without 56 container starts competing for the Docker daemon and the hub. The rest are refused and
    # ask again by themselves after a draw in spawn_retry_s (about one container start).
    spawn_limit: int = 20
    spawn_retry_s: tuple[int, int] = (10, 30)
    # Disk (docker/README.md, "Disk"): the most one trainee may write in their home, and again in their
    # container's layer (needs Docker on XFS with pquota; "": no size); and the free disk below which no
    # server starts (on the disk under state_dir: in compose, the disk Docker keeps its volumes on).
    disk_limit: str = ""
    disk_min_free: str = "2G"
    # The exchange (techday.hub.exchangequota; docker/README.md, "The exchange's disk"): the newest submissions
    # kept per trainee and lab, the bytes one trainee may keep there, the free disk below which no
    # submission is taken. Read by every trainee's submit and by the hub's sweep.
    # As written (text from the environment; a number set by hand is fine): the hub hands them on unread, the
    # submit and the sweep read them with one parser (exchangequota.Budget.from_env), `techday hub check` too.
    exchange_keep: int | str = 3
    exchange_quota: str = "300M"
    exchange_min_free: str = "1G"
    exchange_files: int | str = 10_000
    # The room's language for the hub's own pages (techday.hub.pages): "" reads TECHDAY_LANG, else the
    # syllabus' default_language, as the labs' messages do (techday.i18n.current_language).
    lang: str = ""

    @classmethod
    def from_env(cls, **overrides) -> HubSettings:
        e = os.environ.get
        values = dict(
            course_id=e("TECHDAY_COURSE_ID") or _course_id_from_syllabus(),
            users_file=Path(e("TECHDAY_USERS_FILE", "/srv/jupyterhub/users.csv")),
            exchange=Path(e("TECHDAY_EXCHANGE", DEFAULT_EXCHANGE)),
            course_root=Path(e("TECHDAY_COURSE_ROOT", "/srv/nbgrader/course")),
            gpus=parse_devices(e("TECHDAY_GPUS", "")),
            gpu_overflow=e("TECHDAY_GPU_OVERFLOW", "refuse"),
            state_dir=Path(e("TECHDAY_HUB_STATE", "/srv/jupyterhub")),
            cull_timeout_s=int(e("TECHDAY_CULL_TIMEOUT", "3600")),
            mem_limit=e("TECHDAY_MEM_LIMIT", "16G"),
            cpu_limit=float(e("TECHDAY_CPU_LIMIT", "4")),
            pids_limit=int(e("TECHDAY_PIDS_LIMIT", "4096")),
            course_service_port=int(e("TECHDAY_COURSE_SERVICE_PORT", "9999")),
            course_service_url=e("TECHDAY_COURSE_SERVICE_URL", ""),
            course_service_token=e("TECHDAY_COURSE_SERVICE_TOKEN", ""),
            subdomain_host=e("TECHDAY_SUBDOMAIN_HOST", ""),
            spawn_limit=int(e("TECHDAY_SPAWN_LIMIT", "20")),
            disk_limit=e("TECHDAY_DISK_LIMIT", ""),
            disk_min_free=e("TECHDAY_DISK_MIN_FREE", "2G"),
            # Not int(): "three" stopped the hub's config from loading, and `techday hub check` with it, with
            # "invalid literal for int()" naming no variable; the check names a bad value (exchange_finding).
            exchange_keep=e("TECHDAY_EXCHANGE_KEEP", "3"),
            exchange_quota=e("TECHDAY_EXCHANGE_QUOTA", "300M"),
            exchange_min_free=e("TECHDAY_EXCHANGE_MIN_FREE", "1G"),
            exchange_files=e("TECHDAY_EXCHANGE_FILES", "10000"),
            lang=e("TECHDAY_LANG", ""),
        )
        values.update(overrides)
        return cls(**values)


def _course_id_from_syllabus() -> str:
    try:
        from ..course.syllabus import load_course

        return load_course().id
    except Exception:  # noqa: BLE001 (outside a checkout: the image always sets TECHDAY_COURSE_ID)
        return "techday"


def roles(course_id: str) -> list[dict]:
    """nbgrader's multi-grader roles for JupyterHub 2+ (nbgrader docs, "Using nbgrader with JupyterHub")."""
    return [
        {   # instructors and the grader account: the formgrader of this course
            "name": f"formgrade-{course_id}",
            "groups": [f"formgrade-{course_id}"],
            "scopes": [f"access:services!service={course_id}", "list:services",
                       f"read:services!service={course_id}"],
        },
        {   # trainees: the course shows up in their Assignments tab (course_list extension)
            "name": f"nbgrader-{course_id}",
            "groups": [f"nbgrader-{course_id}"],
            "scopes": ["list:services", f"read:services!service={course_id}"],
        },
        {   # what a server's own token may do (it is in every kernel's environment): JupyterHub's default
            # (its activity, its own server) and the course list's look-up of the course service, which
            # JupyterHub intersects with the owner's scopes. Not "inherit": a trainee's notebook run in an
            # admin's server would hold the hub's admin scopes, in an instructor's the formgrader.
            "name": "server",
            "scopes": ["users:activity!user", "access:servers!server", "list:services",
                       f"read:services!service={course_id}", f"access:services!service={course_id}"],
        },
        {
            "name": "idle-culler",
            "services": ["idle-culler"],
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        },
    ]


def groups(users_file: Path, course_id: str) -> dict:
    """``load_groups`` from the accounts file, read when the hub starts (after adding accounts, restart the
    hub: trainees' servers keep running). A missing file gives empty groups; `techday hub check` says so."""
    try:
        accounts = read_accounts(Path(users_file)).values()
    except UsersFileError:
        accounts = []
    return {
        f"formgrade-{course_id}": {"users": sorted(a.name for a in accounts if a.role != "trainee")},
        f"nbgrader-{course_id}": {"users": sorted(a.name for a in accounts if a.role == "trainee")},
    }


def configure(c, s: HubSettings) -> None:
    """Apply the Tech Day settings to a JupyterHub config object ``c``. The spawner is left to the caller
    (DockerSpawner in docker/jupyterhub_config.py, a local process spawner in the tests)."""
    course = s.course_id
    c.JupyterHub.authenticator_class = "techday.hub.auth.PasswordListAuthenticator"
    c.PasswordListAuthenticator.users_file = str(s.users_file)
    c.PasswordListAuthenticator.course_id = course
    c.JupyterHub.load_groups = groups(s.users_file, course)
    c.JupyterHub.load_roles = roles(course)
    c.JupyterHub.template_vars = {
        "announcement_login": "Sign in with the username and password on your Tech Day card. "
                              "Tech Day 카드에 적힌 아이디와 비밀번호로 로그인하세요.",
    }

    if s.subdomain_host:
        # A trainee answers everything their server serves: on the hub's origin, their page opened by
        # another trainee or an admin would act as that person (frame their server, read its XSRF token).
        c.JupyterHub.subdomain_host = s.subdomain_host

    c.JupyterHub.db_url = f"sqlite:///{s.state_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(s.state_dir / "jupyterhub_cookie_secret")
    # Trainee servers outlive a hub restart (a config fix mid-morning loses nobody's work).
    c.JupyterHub.cleanup_servers = False

    allocator = GpuAllocator(s.gpus, state=s.state_dir / "gpus.json")
    pre_spawn, post_stop = spawn_hooks(AccountsCache(s.users_file), allocator, s.gpu_overflow, s.pids_limit,
                                       s.disk_limit, (s.state_dir, parse_size(s.disk_min_free)))
    c.Spawner.pre_spawn_hook = shown_to_trainee(pre_spawn)
    c.Spawner.post_stop_hook = post_stop
    c.Spawner.default_url = "/lab"
    budget = budget_env(vars(s))
    c.Spawner.environment = {
        "TECHDAY_COURSE_ID": course,
        "TECHDAY_EXCHANGE": str(s.exchange),
        **budget,   # the trainee's submit says why it refuses; the sweep below enforces
    }
    # One trainee's busy loops or fork bomb must not take the machine from the others: DockerSpawner and
    # KubeSpawner turn these into the container's cgroup limits (a local process spawner ignores them).
    if s.mem_limit:
        c.Spawner.mem_limit = s.mem_limit
    if s.cpu_limit:
        c.Spawner.cpu_limit = s.cpu_limit
        # OpenMP (PyTorch, OpenBLAS) starts one thread per core of the host, which the quota throttles in
        # turn: as many threads as the server has cores.
        c.Spawner.environment["OMP_NUM_THREADS"] = str(max(1, math.ceil(s.cpu_limit)))
    # Past this many spawns at once JupyterHub 5.5 does not queue: it refuses the next with 429 "Too many
    # users trying to log in right now" and a suggested wait. spawn_limit_page makes that page bilingual and
    # makes it ask again by itself, so a room arriving at once comes in in waves.
    c.JupyterHub.concurrent_spawn_limit = s.spawn_limit
    spawn_limit_page(c, s.spawn_retry_s)
    # The hub's own pages in the room's language (an English room: JupyterHub's own, untouched).
    from .pages import room_pages

    room_pages(c, s.lang or None)
    c.Spawner.start_timeout = 300
    c.Spawner.http_timeout = 120

    url = s.course_service_url or f"http://127.0.0.1:{s.course_service_port}"
    course_env = {"JUPYTERHUB_DEFAULT_URL": "/formgrader", "TECHDAY_COURSE_ID": course,
                  "TECHDAY_EXCHANGE": str(s.exchange), "TECHDAY_COURSE_ROOT": str(s.course_root),
                  # collect takes from each student only what their own uid submitted (techday.hub.exchange)
                  "TECHDAY_USERS_FILE": str(s.users_file),
                  # the lab image switches the formgrader's lab extension back on there (docker/Dockerfile)
                  "JUPYTER_CONFIG_DIR": str(s.course_root / ".jupyter"), **budget}
    if s.course_service_token:
        # Run elsewhere, as the grader, next to no Docker socket (docker/compose.yaml's `course`).
        service = {"name": course, "url": url, "api_token": s.course_service_token, "oauth_no_confirm": True}
    else:
        command = ["jupyterhub-singleuser", f"--ServerApp.root_dir={s.course_root}"]
        if os.geteuid() == 0:
            # A hub running as root starts the formgrader as the grader user, never as root: the
            # grader's notebooks, terminals and autograding then hold no power over the machine.
            command = [sys.executable, "-m", "techday.hub.runas", str(GRADER_UID), str(GRADER_GID),
                       "--home", str(s.state_dir / "grader-home"), "--", *command]
        service = {   # the shared formgrader: one notebook server in the course root, reached by formgrade-<course>
            "name": course,
            "url": url,
            "command": command,
            "cwd": str(s.course_root),
            "environment": course_env,
            "oauth_no_confirm": True,
        }
    sweeper = []
    if os.geteuid() == 0:
        # Only root may remove a trainee's files (a submission is 0750 and its owner's): the hub holds
        # every uid to the exchange's budget from outside the trainees' processes, every minute.
        sweeper = [{"name": "exchange-sweep",
                    "command": [sys.executable, "-m", "techday", "hub", "sweep", "--every", "60"],
                    "environment": {"TECHDAY_EXCHANGE": str(s.exchange), "TECHDAY_COURSE_ID": course,
                                    "TECHDAY_USERS_FILE": str(s.users_file), **budget}}]
    c.JupyterHub.services = [
        *sweeper,
        service,
        {
            "name": "idle-culler",
            # A pass every half timeout, at most every 5 minutes: a server is stopped at most that late.
            "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={s.cull_timeout_s}",
                        f"--cull-every={max(5, min(300, s.cull_timeout_s // 2))}", "--concurrency=10"],
        },
    ]
    # What `techday hub check` reads back (a section of its own: JupyterHub ignores it).
    c.TechDayHub.settings = {"course_id": course, "exchange": str(s.exchange), "gpus": s.gpus,
                             "users_file": str(s.users_file), "course_root": str(s.course_root),
                             "subdomain_host": s.subdomain_host, "disk_limit": s.disk_limit,
                             "state_dir": str(s.state_dir), "exchange_keep": s.exchange_keep,
                             "exchange_quota": s.exchange_quota, "exchange_min_free": s.exchange_min_free,
                             "exchange_files": s.exchange_files}


def shown_to_trainee(hook):
    """``hook`` (a ``pre_spawn_hook``) with its refusals on the trainee's page. JupyterHub 5.5 shows a failed
    spawn's own message only for an ``HTTPError`` (or an exception carrying ``jupyterhub_message``); any other
    became "Unhandled error starting server <name>" and the course's reason (no GPU free, the disk full),
    written for the trainee in the room's language, stayed in the hub's log."""

    def pre_spawn(spawner):
        try:
            return hook(spawner)
        except RuntimeError as exc:
            from tornado import web

            refused = web.HTTPError(500, "%s", str(exc))
            refused.jupyterhub_message = str(exc)   # the spawn-pending page's wording of a failed spawn
            raise refused from exc

    return pre_spawn


def spawn_limit_page(c, retry_s: tuple[int, int] = (10, 30)) -> None:
    """What a trainee sees past ``concurrent_spawn_limit``: JupyterHub's 429 page with the same in Korean,
    reloading itself after ``retry_s`` seconds (a random draw in that range, so that a refused wave does
    not return at once); JupyterHub's own Retry-After and "Try again in N seconds" follow the same range.
    Also for the chart's hub (docker/z2jh-values.yaml, ``extraConfig``): it adds to what is set."""
    from ..i18n import PackageCatalogue

    low, high = int(retry_s[0]), int(retry_s[1])
    ours = str(Path(__file__).resolve().parent / "templates")
    paths = c.JupyterHub.template_paths   # first: JupyterHub's own error.html comes after (it extends it)
    if isinstance(paths, list):
        paths.insert(0, ours)
    else:
        paths.prepend([ours])
    c.JupyterHub.template_vars.update({
        "techday_spawn_retry": (low, high),
        "techday_spawn_wait": [PackageCatalogue(lang).msg(
            "techday.spawn_wait", "Many people are starting their servers right now. This page asks again by "
            "itself in {low} to {high} seconds: keep it open.", low=low, high=high) for lang in ("ko", "en")],
    })
    # Not a configurable trait in JupyterHub 5.5: the handlers read it from the tornado settings.
    c.JupyterHub.tornado_settings.update({"spawn_throttle_retry_range": (low, high)})


# --------------------------------------------------------------------------------------------- check


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""


def aside_command(course: str) -> str:
    """The shell command that moves a course folder someone else made out of the course's way, keeping
    what is in it: the room may have submitted into its ``inbound`` (anyone can, once it exists). Deleting
    it (the fix printed before) deleted their work."""
    import shlex

    try:
        owner = f"uid-{os.lstat(course).st_uid}"
    except OSError:
        owner = "unknown"
    return f"mv {shlex.quote(course)} {shlex.quote(f'{course}.made-by-{owner}')}"


def visible_gpus() -> tuple[list[str], str]:
    """Device ids this machine shows (indices, GPU and MIG UUIDs), from ``nvidia-smi -L``; and why none."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return [], "nvidia-smi not found (no NVIDIA driver on this machine)"
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"nvidia-smi -L failed: {exc}"
    if out.returncode != 0:
        return [], f"nvidia-smi -L failed: {(out.stderr or out.stdout).strip()[:200]}"
    ids = []
    for line in out.stdout.splitlines():
        m = re.match(r"\s*GPU (\d+):.*\(UUID: (GPU-[^)]+)\)", line)
        if m:
            ids += [m.group(1), m.group(2)]
        m = re.search(r"\(UUID: (MIG-[^)]+)\)", line)
        if m:
            ids.append(m.group(1))
    return ids, "" if ids else "nvidia-smi lists no GPU"


def _room_and_free(where: Path, settings: dict, disk_probe) -> tuple[Path, int, "int | OSError"]:
    """The folder a disk check reads (``where``, else the nearest folder above it that exists: before the hub's
    first start, the disk it will use), the room's account count (0 where the accounts file cannot be read), and
    that disk's free bytes, or the OSError that reading them raised."""
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        count = len(read_accounts(Path(settings["users_file"])))
    except (OSError, UsersFileError):
        count = 0
    try:
        return where, count, disk_probe(where).free
    except OSError as exc:
        return where, count, exc


def disk_finding(settings: dict, disk_probe=shutil.disk_usage) -> Finding:
    """Free disk against the room's worst case: every account writing its home and its container's
    layer full (2 x TECHDAY_DISK_LIMIT each). Measured under the hub's state folder: in compose, a volume
    on the disk Docker keeps every volume and container layer on."""
    limit = settings.get("disk_limit") or ""
    where, count, free = _room_and_free(Path(settings.get("state_dir") or settings["exchange"]), settings, disk_probe)
    if isinstance(free, OSError):
        return Finding("disk for the room", False, f"{where}: {free.strerror or free}", "start the hub once (it makes it)")
    gb = lambda n: f"{n / 1024**3:.0f} GB"  # noqa: E731
    if not limit:
        return Finding("disk for the room", False,
                       f"{gb(free)} free under {where}; no per-trainee disk limit: one trainee can fill it, and "
                       "every notebook and submission stops saving",
                       "on Docker's disk as XFS mounted with pquota, set TECHDAY_DISK_LIMIT=5G (docker/README.md, "
                       "\"Disk\"); elsewhere, watch `df -h /var/lib/docker` during the day")
    worst = count * 2 * parse_size(limit)
    ok = free >= worst
    return Finding("disk for the room", ok,
                   f"{gb(free)} free under {where}; worst case {count} account(s) x 2 x {limit} = {gb(worst)}"
                   + ("" if ok else ": the room can fill the disk"),
                   "" if ok else "free disk (docker system prune, old home volumes of an earlier day) or lower "
                   "TECHDAY_DISK_LIMIT")


# The exchange's budget: each variable the hub hands to every trainee's server and to the sweep, and the setting
# (HubSettings' field) it is written from.
BUDGET_FIELDS = {"TECHDAY_EXCHANGE_KEEP": "exchange_keep", "TECHDAY_EXCHANGE_QUOTA": "exchange_quota",
                 "TECHDAY_EXCHANGE_MIN_FREE": "exchange_min_free", "TECHDAY_EXCHANGE_FILES": "exchange_files"}


def budget_env(settings: dict) -> dict[str, str]:
    """The budget's variables as written in ``settings`` (HubSettings' fields by name; those absent left out)."""
    return {name: str(settings[field]) for name, field in BUDGET_FIELDS.items() if field in settings}


def exchange_finding(settings: dict, disk_probe=shutil.disk_usage) -> Finding:
    """Free disk under the exchange against its worst case: every account keeping its whole budget there
    (``TECHDAY_EXCHANGE_QUOTA``), plus the floor below which submissions are refused."""
    where = Path(settings["exchange"])
    from .exchangequota import Budget, BudgetError

    # The variables as the hub hands them to every trainee's server and to the sweep, read by the same parser.
    env = budget_env(settings)
    try:   # the submit and the sweep refuse a budget they cannot read (the sweep removes nothing): said here first
        budget = Budget.from_env(env)
    except BudgetError as exc:
        return Finding("disk for the exchange", False, str(exc), f"set {exc.name} to {exc.expected} and restart the "
                       "hub (docker/README.md, \"The exchange's disk\")")
    quota = env.get("TECHDAY_EXCHANGE_QUOTA", "300M")
    floor = env.get("TECHDAY_EXCHANGE_MIN_FREE", "1G")
    where, count, free = _room_and_free(where, settings, disk_probe)
    if isinstance(free, OSError):
        return Finding("disk for the exchange", False, f"{where}: {free.strerror or free}")
    gb = lambda n: f"{n / 1024**3:.1f} GB"  # noqa: E731
    worst = count * budget.max_bytes + budget.min_free
    ok = free >= worst
    return Finding("disk for the exchange", ok,
                   f"{gb(free)} free under {where}; worst case {count} account(s) x {quota} (newest "
                   f"{budget.keep} per lab) + {floor} kept free = {gb(worst)}"
                   + ("" if ok else ": the room can fill the exchange, and submissions are refused below the floor"),
                   "" if ok else "free disk under the exchange (collect, then move old courses' inbound aside) "
                   "or lower TECHDAY_EXCHANGE_QUOTA / TECHDAY_EXCHANGE_KEEP (docker/README.md, \"The exchange's disk\")")


def load_hub_config(path: Path):
    """Load a jupyterhub_config.py the way JupyterHub does (nothing is started)."""
    from jupyterhub.app import JupyterHub

    app = JupyterHub()
    app.load_config_file(str(path))
    return app.config


def check(config_path: Path, allow_cpu: bool = False, gpu_probe=visible_gpus,
          disk_probe=shutil.disk_usage) -> list[Finding]:
    """The rehearsal check: the config loads, accounts parse, GPUs are visible, the exchange is writable.

    Long (about 100 lines): a flat list of independent checks, each appending its finding with the fix
    to paste, in the order an admin works through them; none depends on another but the first."""
    found: list[Finding] = []
    try:
        cfg = load_hub_config(config_path)
    except ModuleNotFoundError as exc:
        return [Finding("config loads", False, f"{config_path}: {exc}",
                        'install the hub extra: python -m pip install -e ".[hub]"')]
    except Exception as exc:  # noqa: BLE001 (a person fixes whatever the config file raised)
        return [Finding("config loads", False, f"{config_path}: {type(exc).__name__}: {exc}",
                        "fix the line named above; the TECHDAY_* variables are listed in docker/compose.yaml")]
    settings = cfg.TechDayHub.get("settings") if "TechDayHub" in cfg else None
    if not settings:
        return [Finding("config loads", False, f"{config_path} does not call techday.hub.config.configure(c, ...)",
                        "start from docker/jupyterhub_config.py")]
    auth = str(cfg.JupyterHub.get("authenticator_class", ""))
    found.append(Finding("config loads", True, f"{config_path} (course {settings['course_id']}, sign-in {auth})"))
    if "dummy" in auth.lower() or "null" in auth.lower():
        found.append(Finding("sign-in", False, f"{auth} lets anyone in",
                             "use techday.hub.auth.PasswordListAuthenticator (configure() sets it)"))

    users_file = Path(settings["users_file"])
    try:
        accounts = read_accounts(users_file)
        staff = [a for a in accounts.values() if a.role != "trainee"]
        trainees = len(accounts) - len(staff)
        no_uid = sorted(a.name for a in accounts.values() if a.uid is None)
        ok = bool(staff) and trainees > 0 and not no_uid
        detail = f"{users_file}: {trainees} trainee(s), {len(staff)} instructor/admin(s)"
        if no_uid:
            detail += (f"; no uid for {', '.join(no_uid[:5])}{' ...' if len(no_uid) > 5 else ''}: "
                       "their servers will not start")
        found.append(Finding("accounts", ok, detail,
                             "" if ok else f"techday hub users --trainees N --instructors NAME --out {users_file.parent}"))
    except UsersFileError as exc:
        found.append(Finding("accounts", False, str(exc),
                             f"techday hub users --trainees N --instructors NAME --out {users_file.parent}"))

    gpus = list(settings["gpus"])
    visible, why = gpu_probe()
    if gpus:
        missing = [g for g in gpus if g not in visible]
        found.append(Finding("GPUs visible", not missing,
                             f"listed {len(gpus)}: {', '.join(gpus)}" + (f"; not visible: {', '.join(missing)} ({why})"
                                                                           if missing else ""),
                             "" if not missing else "set TECHDAY_GPUS to ids that `nvidia-smi -L` shows (indices, "
                             "GPU-/MIG- UUIDs); for MIG slices create them first (`nvidia-smi mig -cgi ... -C`)"))
    elif allow_cpu:
        found.append(Finding("GPUs visible", True, f"no GPU listed: servers start on the CPU tier ({why or 'by choice'})"))
    else:
        found.append(Finding("GPUs visible", False, "TECHDAY_GPUS lists no device" + (f"; {why}" if why else
                             f"; visible: {', '.join(visible)}"),
                             "set TECHDAY_GPUS=0,1,... (or MIG UUIDs) from `nvidia-smi -L`; install the NVIDIA "
                             "driver and Container Toolkit if none is visible; --allow-cpu for a CPU-only rehearsal"))

    exchange = Path(settings["exchange"])
    fix = f"mkdir -p {exchange} && chmod 1777 {exchange} (in compose: the exchange volume is mounted there)"
    if not exchange.is_dir():
        found.append(Finding("exchange writable", False, f"{exchange} does not exist", fix))
    else:
        try:
            with tempfile.NamedTemporaryFile(dir=exchange, prefix=".techday-check-"):
                pass
            mode = exchange.stat().st_mode & 0o7777
            world, sticky = mode & 0o003 == 0o003, bool(mode & 0o1000)
            found.append(Finding("exchange writable", world and sticky,
                                 f"{exchange} (mode {mode:o})" + ("" if world else ": trainees cannot submit")
                                 + ("" if sticky or not world else ": not sticky, any trainee can rename the "
                                    "course's folder and hand the room other notebooks"),
                                 "" if world and sticky else f"chmod 1777 {exchange}"))
        except OSError as exc:
            found.append(Finding("exchange writable", False, f"{exchange}: {exc.strerror}", fix))

    course_dir = exchange / settings["course_id"]
    if course_dir.exists() or course_dir.is_symlink():
        st = course_dir.lstat()
        ours = course_dir.is_dir() and not course_dir.is_symlink() and not UID_FIRST <= st.st_uid <= UID_LAST
        found.append(Finding("course folder the grader's", ours,
                             f"{course_dir} (owner {st.st_uid})" + ("" if ours else
                             ": made by a trainee's account (or a link): its owner controls what the room fetches"),
                             "" if ours else f"move it aside, with what was submitted into it ({aside_command(str(course_dir))}) "
                             "and release again from the course service; release refuses it until then"))

    inbound = course_dir / "inbound"
    from .exchange import planted

    where = planted(str(exchange), settings["course_id"])
    if where:   # the trainees' submit refuses it (a link, not a folder, a folder of another uid than the grader's)
        path, what, owners = where
        found.append(Finding("submissions closed", False,
                             f"{path} is {what}, not a folder of the grader's (uid {'/'.join(map(str, owners))}): "
                             "every trainee's submit refuses it; whoever made it could read or replace what is written "
                             "there", f"move the course's folder aside, with what was submitted into it "
                             f"({aside_command(str(course_dir))}), and release again from the course service"))
    elif inbound.is_dir():
        st = inbound.stat()
        closed = (not st.st_mode & 0o044 and st.st_mode & 0o1000 and st.st_gid != TRAINEE_GID
                  and not UID_FIRST <= st.st_uid <= UID_LAST)
        found.append(Finding("submissions closed", bool(closed),
                             f"{inbound} (mode {st.st_mode & 0o7777:o}, owner {st.st_uid}:{st.st_gid})"
                             + ("" if closed else ": trainees could list, read or move each other's submissions"),
                             "" if closed else "release again from the course service (as the grader, with "
                             "docker/etc-jupyter/nbgrader_config.py): it sets inbound to 3733 in the grader's group"))

    subdomain = settings.get("subdomain_host", "")
    found.append(Finding("servers on origins of their own", bool(subdomain),
                         f"each server at <name>.{subdomain.split('://')[-1]}" if subdomain else
                         "every server is served from the hub's own origin (/user/<name>/): a trainee answers "
                         "whatever their server serves, so their page opened by another trainee or an admin "
                         "acts as that person (frames their server, reads its XSRF token, uses their files)",
                         "" if subdomain else "TECHDAY_SUBDOMAIN_HOST=https://hub.example.org with wildcard DNS "
                         "and a wildcard certificate for *.hub.example.org (JupyterHub's subdomain_host); until "
                         "then, tell admins never to open a link into another person's server"))

    root = Path(settings["course_root"])
    released = sorted(p.name for p in (root / "release").glob("*") if p.is_dir()) if (root / "release").is_dir() else []
    found.append(Finding("course built", bool(released),
                         f"{root}/release: {', '.join(released)}" if released else f"{root}/release has no lab",
                         "" if released else f"TECHDAY_BUILD={root.parent} techday build (or rebuild the image)"))

    found.append(disk_finding(settings, disk_probe))
    found.append(exchange_finding(settings, disk_probe))

    proxy = shutil.which("configurable-http-proxy")
    found.append(Finding("proxy", bool(proxy), proxy or "configurable-http-proxy not on PATH",
                         "" if proxy else "npm install -g configurable-http-proxy@5"))
    return found
