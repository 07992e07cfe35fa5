"""The sign-in throttle (techday.hub.throttle) and the authenticator's use of it, on a clock the test
moves: no waiting, no hub. The same behaviour on a real hub: tests/hub/test_signin_throttle.py.

Each test names the wrong behaviour it catches.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from techday.hub.throttle import SignInThrottle


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def fail(t: SignInThrottle, name: str, address: str = "10.0.0.1", times: int = 1) -> list[float]:
    """``times`` wrong passwords, as the authenticator reports them."""
    waits = []
    for _ in range(times):
        waits.append(t.attempt(name, address))
        if not waits[-1]:
            t.failed(name, address)
    return waits


def test_an_account_is_locked_after_the_limit_then_let_back_in():
    """Caught: no limit at all (the old hub): a guesser tried passwords without end. And a lock with no
    end: an honest trainee who mistyped five times was out for the day."""
    clock = Clock()
    t = SignInThrottle(max_failures=3, window_s=60, lockout_s=30, lockout_max_s=120, clock=clock)
    assert fail(t, "trainee-001", times=3) == [0, 0, 0]
    assert t.attempt("trainee-001", "10.0.0.1") == pytest.approx(30), "the fourth attempt is refused"
    assert t.attempt("trainee-002", "10.0.0.1") == 0, "another account is not locked with it"
    clock.now += 31
    assert t.attempt("trainee-001", "10.0.0.1") == 0, "the lock ends"


def test_the_back_off_doubles_and_is_bounded():
    """Caught: a fixed short lock lets a guesser try max_failures every lockout_s all day; an unbounded
    doubling locks a trainee out for hours."""
    clock = Clock()
    t = SignInThrottle(max_failures=2, window_s=60, lockout_s=10, lockout_max_s=35, clock=clock)
    waits = []
    for _ in range(4):
        fail(t, "a", times=2)
        waits.append(round(t.refused_for("a", "10.0.0.1")))
        clock.now += waits[-1] + 0.1
    assert waits == [10, 20, 35, 35], waits


def test_unknown_names_are_locked_exactly_as_accounts():
    """Caught: counting only real accounts. After five tries a real name answered "locked" and a made-up
    one "invalid": the throttle told an outsider which accounts exist."""
    clock = Clock()
    t = SignInThrottle(max_failures=3, clock=clock)
    fail(t, "trainee-001", "10.0.0.1", 3)
    fail(t, "no-such-person", "10.0.0.2", 3)
    assert t.refused_for("trainee-001", "10.0.0.3") == t.refused_for("no-such-person", "10.0.0.3") > 0


def test_one_address_spraying_many_names_is_locked():
    """Caught: a limit per account only: one machine tried four passwords on each of 300 accounts."""
    clock = Clock()
    t = SignInThrottle(max_failures=5, address_max_failures=10, clock=clock)
    for i in range(10):
        fail(t, f"trainee-{i:03d}", "10.9.9.9")
    assert t.attempt("trainee-200", "10.9.9.9") > 0
    assert t.attempt("trainee-200", "10.0.0.7") == 0, "the account itself is not locked for others"


def test_a_success_clears_the_count_and_the_table_is_bounded():
    """Caught: a trainee who mistyped four times, signed in, and mistyped once the next hour was locked;
    and a flood of made-up names that grew the hub's memory without bound."""
    clock = Clock()
    t = SignInThrottle(max_failures=5, max_entries=100, clock=clock)
    fail(t, "trainee-001", times=4)
    t.attempt("trainee-001", "10.0.0.1")
    t.succeeded("trainee-001", "10.0.0.1")
    assert fail(t, "trainee-001", times=4) == [0] * 4
    for i in range(1000):
        t.attempt(f"made-up-{i}", f"10.1.{i // 250}.{i % 250}")
    assert len(t.records) <= 100


def test_a_release_lifts_only_locks_from_before_it():
    """Caught: a release that pardoned every later lock too (the guesser went on after the admin's release)."""
    clock = Clock()
    t = SignInThrottle(max_failures=2, clock=clock)
    fail(t, "a", times=2)
    assert t.release("account", "a", before=clock.now + 1)
    assert t.attempt("a", "10.0.0.1") == 0
    clock.now += 5
    fail(t, "a", times=1)
    assert not t.release("account", "a", before=clock.now - 3), "a lock that began after the release stays"
    assert t.refused_for("a", "10.0.0.1") > 0


def test_the_authenticator_refuses_without_hashing_and_says_so_in_both_languages(tmp_path, monkeypatch):
    """Caught: a lock checked after the password hash: a refused attempt took as long as a real one
    (the hub's CPU spent on a flood), and the right password got through a lock. The message is the
    page's: in Korean and English."""
    pytest.importorskip("jupyterhub", reason='JupyterHub is in the hub extra (python -m pip install -e ".[hub]")')
    from tornado import web

    from techday.hub import auth
    from techday.hub.config import make_accounts, write_accounts

    rows = make_accounts(2, "trainee", [], [])
    write_accounts(rows, tmp_path)
    password = {n: p for n, _, p in rows}
    a = auth.PasswordListAuthenticator(users_file=str(tmp_path / "users.csv"), signin_max_failures=2,
                                       signin_lockout_s=60)
    handler = SimpleNamespace(request=SimpleNamespace(remote_ip="10.0.0.5"))
    run = lambda name, pw: asyncio.run(a.authenticate(handler, {"username": name, "password": pw}))  # noqa: E731
    assert run("trainee-001", "wrong") is None and run("trainee-001", "wrong") is None
    hashed = []
    monkeypatch.setattr(auth, "check_password", lambda *x: hashed.append(x) or True)
    with pytest.raises(web.HTTPError) as refused:
        run("trainee-001", password["trainee-001"])
    assert refused.value.status_code == 429 and not hashed, "refused before any hash"
    text = refused.value.log_message
    assert "Wait 1 minute" in text and "강사" in text, text
    assert run("trainee-002", password["trainee-002"])["name"] == "trainee-002"


def test_the_release_command_reaches_the_authenticator(tmp_path, capsys):
    """Caught: a lock only a hub restart could lift. ``techday hub release`` writes beside users.csv and
    the next attempt is let through."""
    pytest.importorskip("jupyterhub", reason='JupyterHub is in the hub extra (python -m pip install -e ".[hub]")')
    from techday.cli.main import main
    from techday.hub import auth
    from techday.hub.config import make_accounts, write_accounts

    rows = make_accounts(1, "trainee", [], [])
    write_accounts(rows, tmp_path)
    a = auth.PasswordListAuthenticator(users_file=str(tmp_path / "users.csv"), signin_max_failures=1)
    handler = SimpleNamespace(request=SimpleNamespace(remote_ip="10.0.0.5"))
    assert asyncio.run(a.authenticate(handler, {"username": "trainee-001", "password": "x"})) is None
    assert a.throttle().refused_for("trainee-001", "10.0.0.5") > 0
    assert main(["hub", "release", "trainee-001", "--out", str(tmp_path)]) == 0
    assert "released 1" in capsys.readouterr().out
    assert a.throttle().refused_for("trainee-001", "10.0.0.5") == 0
    assert main(["hub", "release", "../x y", "--out", str(tmp_path)]) == 2


def test_a_room_behind_one_address_signing_in_at_once_is_not_locked():
    """Caught: counting every attempt in flight against the address. 300 trainees behind the venue's NAT
    signing in within a minute were 100 attempts in flight from one address, and the address locked
    the whole room out with nobody having mistyped."""
    clock = Clock()
    t = SignInThrottle(max_failures=5, address_max_failures=100, clock=clock)
    assert all(t.attempt(f"trainee-{i:03d}", "192.0.2.1") == 0 for i in range(300)), "in flight, none answered yet"
    for i in range(300):
        t.succeeded(f"trainee-{i:03d}", "192.0.2.1")
    assert t.refused_for("trainee-300", "192.0.2.1") == 0


def test_parallel_tries_on_one_account_are_bounded():
    """Caught: a lock checked against failures already answered only. Fifty tries sent at once all
    passed the check before the first wrong password was counted: fifty guesses instead of five."""
    clock = Clock()
    t = SignInThrottle(max_failures=5, clock=clock)
    let_through = sum(t.attempt("trainee-001", f"10.0.{i}.1") == 0 for i in range(50))
    assert let_through == 5, let_through
