"""Sign-in for a Tech Day hub: accounts issued before the day, from a CSV the organiser makes.

``techday hub users --trainees 300 --instructors kim,lee --out /srv/jupyterhub`` writes ``users.csv``
(username, role, PBKDF2 hash: what the hub reads) and ``passwords.csv`` (the cards to print). Nobody
signs up; an unknown name or a wrong password is refused with JupyterHub's "Invalid username or
password". The file is re-read when it changes, so an account added mid-morning can sign in at once
(its group follows at the next hub restart).

Failed sign-ins are throttled per account and per client address (:mod:`techday.hub.throttle`): past
the limit the sign-in page says, in Korean and English, to wait or fetch an instructor, and refuses even
the right password until the back-off ends; ``techday hub release NAME`` lifts a lock at once.

Roles: ``trainee`` is in the group ``nbgrader-<course>``; ``instructor`` in ``formgrade-<course>`` (the
shared formgrader service); ``admin`` is a hub admin and an instructor. :func:`techday.hub.config.configure`
makes the groups from the same file when the hub starts.
Needs JupyterHub (the ``hub`` extra).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Float, Integer, List, Unicode, default

from ..i18n import PackageCatalogue
from .config import Account, AccountsCache, check_password
from .throttle import RELEASE_FILE, SignInThrottle, client_address, read_releases


def throttled_message(seconds: float) -> str:
    """What the sign-in page says to a locked account or address: Korean, then English (the page is the
    same for the whole room, whatever anyone's language)."""
    minutes = max(1, math.ceil(seconds / 60))
    return " / ".join(PackageCatalogue(lang).msg(
        "techday.signin_throttled",
        "Too many failed sign-ins for this account or from this computer. Wait {minutes} minute(s) and "
        "try again, or ask an instructor to release it.", minutes=minutes) for lang in ("ko", "en"))


class PasswordListAuthenticator(Authenticator):
    """Pre-issued accounts from a CSV (``techday hub users``); no open sign-up."""

    users_file = Unicode(help="CSV of username,role,password_hash (techday hub users writes it)").tag(config=True)
    course_id = Unicode("techday", help="nbgrader course id: names the formgrade-/nbgrader- groups").tag(config=True)

    # Failed sign-ins (techday.hub.throttle): per account, then per client address (a venue behind one
    # NAT is one address for the whole room: far above a room's typos; 0 turns a limit off).
    signin_max_failures = Integer(5, help="failed sign-ins per account within the window before a lock").tag(config=True)
    signin_address_max_failures = Integer(100, help="failed sign-ins per client address within the window").tag(config=True)
    signin_window_s = Float(300, help="seconds over which failures are counted").tag(config=True)
    signin_lockout_s = Float(60, help="first lock, in seconds; doubles with each lock in a row").tag(config=True)
    signin_lockout_max_s = Float(900, help="the longest lock, in seconds").tag(config=True)
    signin_proxies = List(Unicode(), help="networks of proxies in front of the hub whose X-Forwarded-For is read "
                          "(besides loopback and the hub's own address), e.g. ['10.9.0.0/16']").tag(config=True)

    _cache: AccountsCache | None = None
    _throttle: SignInThrottle | None = None
    _releases_seen: tuple | None = None

    def throttle(self) -> SignInThrottle:
        if self._throttle is None:
            self._throttle = SignInThrottle(self.signin_max_failures, self.signin_window_s, self.signin_lockout_s,
                                            self.signin_lockout_max_s, self.signin_address_max_failures)
        self._apply_releases(self._throttle)
        return self._throttle

    def _apply_releases(self, throttle: SignInThrottle) -> None:
        """Locks lifted by ``techday hub release`` (a file beside the accounts file, read when it changes)."""
        path = Path(self.users_file).parent / RELEASE_FILE
        try:
            st = path.stat()
            seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return
        if seen == self._releases_seen:
            return
        self._releases_seen = seen
        for kind, value, when in read_releases(path):
            if throttle.release(kind, value, before=when):
                self.log.warning("sign-in lock released for %s %r", kind, value)

    @default("any_allow_config")
    def _allow_by_file(self):
        return True  # the accounts file is the allow list (check_allowed)

    def accounts(self) -> dict[str, Account]:
        if self._cache is None or self._cache.path != Path(self.users_file):
            self._cache = AccountsCache(Path(self.users_file), log=self.log)
        return self._cache.get()

    def check_allowed(self, username, authentication=None):
        return username in self.accounts()

    async def authenticate(self, handler, data):
        name = self.normalize_username((data or {}).get("username", "").strip())
        password = (data or {}).get("password", "")
        # The peer's address, or the hop the hub's own proxy appended: never a header the client wrote.
        address = client_address(getattr(handler, "request", None), self.signin_proxies)
        throttle = self.throttle()
        wait = throttle.attempt(name, address)
        if wait:
            # Refused before any hash: the same answer, and the same time, whether the account exists or not.
            self.log.warning("sign-in for %r from %s refused: locked for %.0f s more", name[:64], address, wait)
            raise web.HTTPError(429, throttled_message(wait))
        account = self.accounts().get(name)
        # The hash runs off the event loop (a room signs in at once); an unknown name costs the same. A try
        # that waited for a thread is checked again when its turn comes, and a wrong password is counted in
        # the thread that hashed it, before that thread takes another try: a burst sent at once from one
        # address hashes at most the lock's count plus one try per thread past it, however slowly the event
        # loop answers.
        stored = account.password_hash if account else "pbkdf2_sha256$120000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"

        def check():
            if throttle.address_refused_for(address):
                return None
            hashed = check_password(password, stored)  # an unknown name costs the same hash
            right = account is not None and bool(hashed)
            if not right:
                throttle.failed(name, address)
            return right

        ok = await asyncio.to_thread(check)
        if ok is None:
            wait = throttle.address_refused_for(address) or throttle.lockout_s
            self.log.warning("sign-in for %r from %s refused: locked for %.0f s more", name[:64], address, wait)
            raise web.HTTPError(429, throttled_message(wait))
        if not ok:
            self.log.warning("refused sign-in for %r", name)
            return None
        throttle.succeeded(name, address)
        return {"name": name, "admin": account.role == "admin"}
