"""The sign-in throttle on a real hub behind its own configurable-http-proxy on 127.0.0.1, against a guesser
who writes the address into a header: each try with its own ``X-Real-Ip`` (tornado, with JupyterHub's
``xheaders``, prefers it to the hop the proxy appends, and the proxy passes it through) and its own
``X-Forwarded-For``. Bounded: one hub, a dozen requests.

Each test names the attack it catches.
"""

from __future__ import annotations

import pytest

from tests.hub.conftest import Person

pytestmark = [pytest.mark.hub]

LIMIT = 4
CONFIG = f"""
c.PasswordListAuthenticator.signin_max_failures = 3
c.PasswordListAuthenticator.signin_window_s = 60
c.PasswordListAuthenticator.signin_lockout_s = 30
c.PasswordListAuthenticator.signin_address_max_failures = {LIMIT}
"""


@pytest.fixture(scope="module")
def hub(hub_factory):
    return hub_factory(trainees=1, gpus=[], course=False, extra_config=CONFIG)


def test_a_guesser_cannot_choose_the_address_it_is_counted_as(hub):
    """Attack: one machine, many made-up names, each try claiming another address in ``X-Real-Ip`` and
    ``X-Forwarded-For``: the address limit never locked it."""
    codes = []
    for i in range(LIMIT + 2):
        person = Person(hub, f"made-up-{i}", password="wrong")
        person.s.headers.update({"X-Real-Ip": f"203.0.113.{i + 1}", "X-Forwarded-For": f"198.51.100.{i + 1}"})
        codes.append(person.login().status_code)
    assert codes[:LIMIT] == [403] * LIMIT and codes[LIMIT:] == [429, 429], codes
