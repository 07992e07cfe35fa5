"""Sign-in for a Tech Day hub: accounts issued before the day, from a CSV the organiser makes.

``techday hub users --trainees 300 --instructors kim,lee --out /srv/jupyterhub`` writes ``users.csv``
(username, role, PBKDF2 hash: what the hub reads) and ``passwords.csv`` (the cards to print). Nobody
signs up; an unknown name or a wrong password is refused with JupyterHub's "Invalid username or
password". The file is re-read when it changes, so an account added mid-morning can sign in at once
(its group follows at the next hub restart).

Roles: ``trainee`` is in the group ``nbgrader-<course>``; ``instructor`` in ``formgrade-<course>`` (the
shared formgrader service); ``admin`` is a hub admin and an instructor. :func:`techday.hub.config.configure`
makes the groups from the same file when the hub starts.
Needs JupyterHub (the ``hub`` extra).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from .config import Account, AccountsCache, check_password


class PasswordListAuthenticator(Authenticator):
    """Pre-issued accounts from a CSV (``techday hub users``); no open sign-up."""

    users_file = Unicode(help="CSV of username,role,password_hash (techday hub users writes it)").tag(config=True)
    course_id = Unicode("techday", help="nbgrader course id: names the formgrade-/nbgrader- groups").tag(config=True)

    _cache: AccountsCache | None = None

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
        account = self.accounts().get(name)
        # The hash runs off the event loop (a room signs in at once); an unknown name costs the same.
        stored = account.password_hash if account else "pbkdf2_sha256$120000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"
        ok = await asyncio.to_thread(check_password, password, stored)
        if not (account and ok):
            self.log.warning("refused sign-in for %r", name)
            return None
        return {"name": name, "admin": account.role == "admin"}
