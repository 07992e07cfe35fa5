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
- **Released by an admin**: :meth:`release` (``techday hub release NAME``, read from the release file
  beside the accounts file, see :func:`read_releases`), or a hub restart: the counts live in the hub's
  memory only.

An account counts an attempt before its password is checked, so a burst of parallel tries on one
account cannot all slip in before the first failure is recorded; an address counts only answered
failures, so a room behind one NAT signing in at once (many attempts in flight) is not locked.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

RELEASE_FILE = "signin-release.txt"   # beside users.csv: `techday hub release` appends, the hub reads


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    locked_at: float = 0.0
    lockouts: int = 0      # locks in a row: the back-off doubles with each
    last: float = 0.0


class SignInThrottle:
    def __init__(self, max_failures: int = 5, window_s: float = 300, lockout_s: float = 60,
                 lockout_max_s: float = 900, address_max_failures: int = 100, max_entries: int = 50_000,
                 clock=time.time):
        self.max_failures, self.window_s = max_failures, window_s
        self.lockout_s, self.lockout_max_s = lockout_s, max(lockout_s, lockout_max_s)
        self.address_max_failures, self.max_entries = address_max_failures, max_entries
        self.clock = clock
        self.records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    def _keys(self, name: str, address: str) -> list[tuple[tuple[str, str], int]]:
        keys = []
        if self.max_failures:
            keys.append((("account", name[:256]), self.max_failures))
        if self.address_max_failures and address:
            keys.append((("address", address), self.address_max_failures))
        return keys

    def _record(self, key, now: float) -> _Record:
        rec = self.records.pop(key, None) or _Record()
        rec.failures = [t for t in rec.failures if now - t < self.window_s]
        if rec.locked_until and now >= rec.locked_until + self.window_s + self.lockout_max_s:
            rec.lockouts = 0   # quiet for long enough: the next lock is a short one again
        rec.last = now
        self.records[key] = rec          # most recently used last
        while len(self.records) > self.max_entries:
            self.records.popitem(last=False)
        return rec

    def refused_for(self, name: str, address: str) -> float:
        """Seconds until ``name`` from ``address`` may try again (0: now)."""
        now = self.clock()
        wait = 0.0
        for key, _ in self._keys(name, address):
            rec = self.records.get(key)
            if rec and rec.locked_until > now:
                wait = max(wait, rec.locked_until - now)
        return wait

    def _count(self, key, limit: int) -> None:
        now = self.clock()
        rec = self._record(key, now)
        rec.failures.append(now)
        if len(rec.failures) >= limit:
            rec.lockouts += 1
            rec.locked_at = now
            rec.locked_until = now + min(self.lockout_max_s, self.lockout_s * 2 ** (rec.lockouts - 1))
            rec.failures.clear()

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

    def failed(self, name: str, address: str) -> None:
        """The password was wrong (the account's count already holds the attempt)."""
        for key, limit in self._keys(name, address):
            if key[0] == "address":
                self._count(key, limit)

    def succeeded(self, name: str, address: str) -> None:
        """The password was right: the account's count goes."""
        self.records.pop(("account", name[:256]), None)

    def release(self, kind: str, value: str, before: float | None = None) -> bool:
        """Lift the lock and the count of an account (``kind`` "account") or an address; with ``before``,
        only a lock that began before that time (a release does not pardon what comes after it)."""
        key = (kind, value[:256] if kind == "account" else value)
        rec = self.records.get(key)
        if rec is None or (before is not None and rec.locked_at and rec.locked_at > before):
            return False
        del self.records[key]
        return True


def read_releases(path: Path) -> list[tuple[str, str, float]]:
    """``(kind, value, time)`` from the release file: lines ``account NAME TIME`` or ``address IP TIME``,
    written by ``techday hub release``; anything else on a line is ignored."""
    found = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("account", "address"):
            try:
                found.append((parts[0], parts[1], float(parts[2])))
            except ValueError:
                continue
    return found
