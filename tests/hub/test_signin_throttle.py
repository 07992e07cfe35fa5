"""Failed sign-ins on a real hub on 127.0.0.1 (the project's settings, a short window set for the test):
past the limit an account is refused even with the right password until the back-off ends, another
account signs in meanwhile, a made-up name is locked the same way, and ``techday hub release`` lifts a
lock at once. Bounded: one hub, a few dozen requests, a 3-second lock.

Each test names the wrong behaviour it catches.
"""

from __future__ import annotations

import re
import time

import pytest

from techday.cli.main import main
from tests.hub.conftest import Person

pytestmark = [pytest.mark.hub]

LOCK_S = 3
SHORT = f"""
c.PasswordListAuthenticator.signin_max_failures = 3
c.PasswordListAuthenticator.signin_window_s = 60
c.PasswordListAuthenticator.signin_lockout_s = {LOCK_S}
c.PasswordListAuthenticator.signin_lockout_max_s = {LOCK_S}
c.PasswordListAuthenticator.signin_address_max_failures = 50
"""


@pytest.fixture(scope="module")
def hub(hub_factory):
    return hub_factory(trainees=3, gpus=[], course=False, extra_config=SHORT)


def wrong(hub, name: str, times: int) -> list[int]:
    return [Person(hub, name, password="not-the-card").login().status_code for _ in range(times)]


def test_beyond_the_limit_even_the_right_password_waits(hub):
    """Caught: the old hub answered every attempt ("Invalid username or password" forever), so anyone on
    the venue's network could try passwords against a trainee's account without end."""
    assert wrong(hub, "trainee-001", 3) == [403, 403, 403]
    r = Person(hub, "trainee-001").login()
    assert r.status_code == 429, f"the right password got through the lock: {r.status_code}"
    page = r.content.decode("utf-8")   # the error page's Content-Type names no charset
    said = re.search(r'class="login_error">(.*?)</p>', page, re.S)
    assert said, f"no message on the sign-in form: {page[page.find('<body'):][:2000]}"
    assert "Too many failed sign-ins" in said.group(1) and "로그인 실패가 너무 많습니다" in said.group(1), said.group(1)
    other = Person(hub, "trainee-002").login()
    assert other.status_code == 302, "another account is not locked with it"
    time.sleep(LOCK_S + 0.5)
    assert Person(hub, "trainee-001").login().status_code == 302, "the lock ends: the card works again"


def test_a_made_up_name_is_locked_like_an_account(hub):
    """Caught: counting real accounts only, which told an outsider which names exist."""
    for name in ("trainee-003", "nobody-here"):
        assert wrong(hub, name, 3) == [403] * 3
        assert Person(hub, name, password="still-wrong").login().status_code == 429, name


def test_an_admin_releases_a_locked_account(hub, capsys):
    """Caught: a lock only a restart of the hub could lift while a trainee waited at the door."""
    time.sleep(LOCK_S + 0.5)
    assert wrong(hub, "trainee-002", 3) == [403] * 3
    assert Person(hub, "trainee-002").login().status_code == 429
    assert main(["hub", "release", "trainee-002", "--out", str(hub.users_file.parent)]) == 0
    capsys.readouterr()
    assert Person(hub, "trainee-002").login().status_code == 302
