"""Past JupyterHub's ``concurrent_spawn_limit`` (JupyterHub 5.5, handlers/base.py ``spawn_single_user``)
a spawn is not queued: it is refused at once with 429 "Too many users trying to log in right now. Try
again in N seconds." (a Retry-After header, N drawn from ``spawn_throttle_retry_range``). What the room
sees is then the project's error page: the same in Korean, and the page asks again by itself.

A real hub on 127.0.0.1 with a limit of 1 and a spawner held 8 s before it starts: bounded to two
trainees and about a minute.

Each test names the wrong behaviour it catches.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.hub.conftest import Person

pytestmark = [pytest.mark.hub]

HOLD_S = 8
SMALL = f"""
c.JupyterHub.concurrent_spawn_limit = 1
_techday_start = AccountSpawner.start
async def _held_start(self):
    import asyncio
    await asyncio.sleep({HOLD_S})   # the first spawn stays pending while the second asks
    return await _techday_start(self)
AccountSpawner.start = _held_start
"""


def test_past_the_spawn_limit_the_page_waits_and_retries_in_both_languages(hub_factory):
    """Caught: the config's comment promised that a room arriving at once queues; JupyterHub refuses the
    spawn instead, and the trainee saw an English-only "Too many users" page that did nothing until they
    thought of reloading it. Now it says so in Korean too, and reloads itself after the suggested wait."""
    hub = hub_factory(trainees=2, gpus=[], course=False, extra_config=SMALL)
    first, second = Person(hub, "trainee-001"), Person(hub, "trainee-002")
    assert first.login().status_code == 302 and second.login().status_code == 302
    first.s.get(f"{hub.url}/hub/spawn/trainee-001", timeout=60, allow_redirects=False)
    r = second.s.get(f"{hub.url}/hub/spawn/trainee-002", timeout=60, allow_redirects=False)
    assert r.status_code == 429, f"the second spawn was not refused ({r.status_code}): the limit did not hold"
    page = r.content.decode("utf-8")
    retry = int(r.headers["Retry-After"])
    low, high = 10, 30
    assert low <= retry <= high, f"Retry-After {retry} outside the configured {low}-{high} s"
    assert "서버를 시작하려는 사람이 많습니다" in page and "starting their servers" in page, page[-3000:]
    again = re.search(r"techdayRetry\((\d+), (\d+)\)", page)
    assert again and (int(again.group(1)), int(again.group(2))) == (low, high), "the page asks again by itself"
    # What the page's own retry does: once the first spawn is no longer pending (started, or failed where
    # the stand-in cannot start servers as other users), the second is let through.
    deadline = time.monotonic() + HOLD_S + 90
    while time.monotonic() < deadline:
        r = second.s.get(f"{hub.url}/hub/spawn/trainee-002", timeout=60, allow_redirects=False)
        if r.status_code != 429:
            break
        time.sleep(1)
    assert r.status_code == 302, f"the retry was not let through: {r.status_code}"
    assert "/hub/spawn-pending/trainee-002" in r.headers.get("Location", ""), r.headers
