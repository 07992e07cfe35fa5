"""Failed sign-ins, counted per account and per client address: past a limit, the next attempts are
refused for a while, the right password included (:class:`techday.hub.auth.PasswordListAuthenticator`).

Without it anyone on the venue's network could try passwords against another trainee's account for as
long as they liked. What it is built to hold:

- **Per account**: ``max_failures`` wrong passwords within ``window_s`` lock the name for
  ``lockout_s``, doubling at each lock in a row up to ``lockout_max_s``: a trainee who mistypes is
  back within minutes, a guesser gets a few tries an hour. A success clears the name's count.
- **Per address**: ``address_max_failures`` within the window lock the address the same way (one
  machine spraying many names). A venue behind one NAT shows every trainee as one address: that limit
  is set far above a room's typos, and 0 turns it off.
- **No account told apart**: a name that does not exist is counted and locked exactly as one that
  does, so "locked" says nothing about which accounts exist; a refused attempt answers without
  hashing, whatever the name. The table is bounded (``max_entries``, oldest dropped first) against a
  flood of made-up names.
- **The address is the peer's**: :func:`client_address` reads a forwarded address only from the hub's
  own proxy (a peer on loopback or on the hub's own address, or one named in ``signin_proxies``), and
  then only the hop that proxy appended to ``X-Forwarded-For``; never ``X-Real-Ip`` (tornado, with
  JupyterHub's ``xheaders``, prefers it, and the proxy passes a client's through). :func:`address_key`
  counts an address once however it is written (``::ffff:10.0.0.1`` is ``10.0.0.1``) and an IPv6 host
  by its /64 (one host's prefix).
- **Locks outlive a flood**: when the table is full the oldest entry that is not locked goes first; a
  lock is dropped for room only when every entry is locked.
- **Released by an admin**: :meth:`release` (``techday hub release NAME``, read from the release file
  beside the accounts file, see :func:`read_releases`), or a hub restart: the counts live in the hub's
  memory only.

An account counts an attempt before its password is checked, so a burst of parallel tries on one
account cannot all slip in before the first failure is recorded; an address counts only answered
failures, so a room behind one NAT signing in at once (many attempts in flight) is not locked; a try
that waited for its hash checks the address again when its turn comes (:meth:`address_refused_for`), so
a burst sent at once from one address hashes no further than the lock its first answers put on it.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

RELEASE_FILE = "signin-release.txt"   # beside users.csv: `techday hub release` appends, the hub reads
MAX_RELEASE_BYTES = 2**20             # the release file's last MiB is read (about 20,000 lines, the newest)
LOOPBACK = ("127.0.0.0/8", "::1/128")


def address_key(address: str) -> str:
    """The address as the throttle counts it: canonical (``2001:DB8:0::1`` is ``2001:db8::1``), an IPv4
    address mapped into IPv6 as IPv4, an IPv6 address by its /64 (what one host or one home is given);
    anything that is not an address as written, cut to 64 characters."""
    try:
        ip = ipaddress.ip_address(address.strip().split("%")[0])
    except ValueError:
        return address[:64]
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _ip(address):
    """``address`` as an IP address (an IPv4 one mapped into IPv6 as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return None
    return (ip.ipv4_mapped or ip) if ip.version == 6 else ip


def _in(address: str, networks) -> bool:
    ip = _ip(address)
    try:
        return ip is not None and any(ip in ipaddress.ip_network(n, strict=False) for n in networks)
    except (ValueError, TypeError):
        return False


def client_address(request, proxies=()) -> str:
    """The client's address for a tornado request: the peer's own, unless the peer is the hub's proxy (on
    loopback, on the hub's own address: the proxy JupyterHub starts beside it; or in ``proxies``, networks
    such as ``10.9.0.0/16``), then the last hop of ``X-Forwarded-For`` (the one that proxy appended).
    ``X-Real-Ip`` is never read: the proxy passes a client's through, and tornado would prefer it. A
    request without a tornado connection (a test's) gives its ``remote_ip``."""
    connection = getattr(request, "connection", None)
    context = getattr(connection, "context", None)
    peer = getattr(context, "_orig_remote_ip", None)
    if not isinstance(peer, str) or not peer:
        return getattr(request, "remote_ip", "") or ""
    try:
        local = connection.stream.socket.getsockname()[0]
    except (AttributeError, OSError, IndexError, TypeError):
        local = None
    if not (_in(peer, LOOPBACK) or (_ip(peer) is not None and _ip(peer) == _ip(local)) or _in(peer, proxies)):
        return peer
    headers = getattr(request, "headers", None) or {}
    hop = (headers.get("X-Forwarded-For") or "").split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return peer


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    locked_at: float = 0.0
    lockouts: int = 0      # locks in a row: the back-off doubles with each
    last: float = 0.0


def _locked(method):
    """``method`` under the throttle's lock."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return run


class SignInThrottle:
    def __init__(self, max_failures: int = 5, window_s: float = 300, lockout_s: float = 60,
                 lockout_max_s: float = 900, address_max_failures: int = 100, max_entries: int = 50_000,
                 clock=time.time):
        self.max_failures, self.window_s = max_failures, window_s
        self.lockout_s, self.lockout_max_s = lockout_s, max(lockout_s, lockout_max_s)
        self.address_max_failures, self.max_entries = address_max_failures, max_entries
        self.clock = clock
        self.records: OrderedDict[tuple[str, str], _Record] = OrderedDict()
        # The hub counts a wrong password in the thread that hashed it (techday.hub.auth), so that the
        # next try that thread takes already sees the lock; the event loop reads and counts too.
        self._lock = threading.RLock()

    def _keys(self, name: str, address: str) -> list[tuple[tuple[str, str], int]]:
        keys = []
        if self.max_failures:
            keys.append((("account", name[:256]), self.max_failures))
        if self.address_max_failures and address:
            keys.append((("address", address_key(address)), self.address_max_failures))
        return keys

    def _record(self, key, now: float) -> _Record:
        rec = self.records.pop(key, None) or _Record()
        rec.failures = [t for t in rec.failures if now - t < self.window_s]
        if rec.locked_until and now >= rec.locked_until + self.window_s + self.lockout_max_s:
            rec.lockouts = 0   # quiet for long enough: the next lock is a short one again
        rec.last = now
        self.records[key] = rec          # most recently used last
        while len(self.records) > self.max_entries:
            # The oldest entry that is not locked (a flood of made-up names must not push a lock out);
            # the oldest of all where every entry is locked.
            victim = next((k for k, r in self.records.items() if r.locked_until <= now and k != key),
                          next(iter(self.records)))
            del self.records[victim]
        return rec

    @_locked
    def refused_for(self, name: str, address: str) -> float:
        """Seconds until ``name`` from ``address`` may try again (0: now)."""
        now = self.clock()
        wait = 0.0
        for key, _ in self._keys(name, address):
            rec = self.records.get(key)
            if rec and rec.locked_until > now:
                wait = max(wait, rec.locked_until - now)
        return wait

    @_locked
    def address_refused_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: now): the check a try that waited for its hash makes
        again (the account's count already holds the try itself)."""
        rec = self.records.get(("address", address_key(address))) if self.address_max_failures and address else None
        return max(0.0, rec.locked_until - self.clock()) if rec else 0.0

    def _count(self, key, limit: int) -> None:
        now = self.clock()
        rec = self._record(key, now)
        rec.failures.append(now)
        if len(rec.failures) >= limit:
            rec.lockouts += 1
            rec.locked_at = now
            rec.locked_until = now + min(self.lockout_max_s, self.lockout_s * 2 ** (rec.lockouts - 1))
            rec.failures.clear()

    @_locked
    def attempt(self, name: str, address: str) -> float:
        """An attempt begins: 0, or the seconds to wait (nothing counted, no password to check).

        The account counts the attempt as a failure now, until :meth:`succeeded` says otherwise: parallel
        tries on one name cannot all pass before the first failure lands. The address counts only
        failures (:meth:`failed`): a room behind one NAT signing in at once is many attempts in flight
        from one address, all honest."""
        wait = self.refused_for(name, address)
        if wait:
            return wait
        for key, limit in self._keys(name, address):
            if key[0] == "account":
                self._count(key, limit)
        return 0.0

    @_locked
    def failed(self, name: str, address: str) -> None:
        """The password was wrong (the account's count already holds the attempt)."""
        for key, limit in self._keys(name, address):
            if key[0] == "address":
                self._count(key, limit)

    @_locked
    def succeeded(self, name: str, address: str) -> None:
        """The password was right: the account's count goes."""
        self.records.pop(("account", name[:256]), None)

    @_locked
    def release(self, kind: str, value: str, before: float | None = None) -> bool:
        """Lift the lock and the count of an account (``kind`` "account") or an address; with ``before``,
        only a lock that began before that time (a release does not pardon what comes after it)."""
        key = (kind, value[:256] if kind == "account" else address_key(value))
        rec = self.records.get(key)
        if rec is None or (before is not None and rec.locked_at and rec.locked_at > before):
            return False
        del self.records[key]
        return True


def read_releases(path: Path) -> list[tuple[str, str, float]]:
    """``(kind, value, time)`` from the release file: lines ``account NAME TIME`` or ``address IP TIME``,
    written by ``techday hub release``; anything else on a line is ignored, and so is a time that is not
    finite, a file that is not a regular one (a FIFO would hold the hub's event loop) and anything before
    its last ``MAX_RELEASE_BYTES`` (``techday hub release`` appends: the newest lines are last)."""
    found = []
    try:  # never waits on a FIFO or a device: a regular file only, read up to the bound
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return found
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return found
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            start = max(0, f.seek(0, os.SEEK_END) - MAX_RELEASE_BYTES)
            f.seek(start)
            raw = f.read(MAX_RELEASE_BYTES)
    except OSError:
        return found
    finally:
        os.close(fd)
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if start:
        lines = lines[1:]    # the newest lines only (the command appends); the first is cut at the bound
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("account", "address"):
            try:
                when = float(parts[2])
            except ValueError:
                continue
            if math.isfinite(when):
                found.append((parts[0], parts[1], when))
    return found
