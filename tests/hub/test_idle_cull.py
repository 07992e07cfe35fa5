"""Lunch on a real JupyterHub (127.0.0.1 only): a server nobody uses is stopped by the idle culler the
hub runs (techday.hub.config.configure), and its GPU goes back to the pool for the next trainee.

The timeout is seconds here, an hour on the day (TECHDAY_CULL_TIMEOUT); what is proved is the chain:
the culler runs, its role lets it stop servers, and the stop frees the device.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.hub.conftest import Person

pytestmark = [pytest.mark.hub, pytest.mark.slow]

CULL_S = 20
# Bounds the wait: the timeout, then one pass of the culler (every timeout/2 here, at most 5 minutes),
# then the stop, on a busy 2-core machine. Measured: culled about 35 s after the server was ready.
BUDGET_S = 150


def holders(hub) -> dict:
    path = hub.base / "state" / "gpus.json"
    return json.loads(path.read_text())["holders"] if path.exists() else {}


def test_an_idle_server_is_stopped_and_its_gpu_goes_back(hub_factory):
    """Caught: the culler checked every 300 s whatever TECHDAY_CULL_TIMEOUT said, so a timeout of a few
    minutes (a short break) stopped servers up to five minutes late, and nothing proved that a culled
    server's GPU came back at all."""
    hub = hub_factory(trainees=2, gpus=["0"], course=False, cull_timeout_s=CULL_S)
    kim = Person(hub, "trainee-001")
    assert kim.login().status_code == 302
    kim.spawn()
    hub.wait_ready("trainee-001")
    assert holders(hub) == {"trainee-001": "0"}
    ready = time.monotonic()
    while hub.user_model("trainee-001").get("servers") and time.monotonic() - ready < BUDGET_S:
        time.sleep(1)
    took = time.monotonic() - ready
    print(f"culled {took:.0f} s after the server was ready (timeout {CULL_S} s)")
    assert not hub.user_model("trainee-001").get("servers"), \
        f"still running {BUDGET_S} s after it was ready:\n{hub.log_tail(40)}"
    assert holders(hub) == {}, "the culled server's GPU went back to the pool"

    lee = Person(hub, "trainee-002")
    assert lee.login().status_code == 302
    lee.spawn()
    hub.wait_ready("trainee-002")
    assert holders(hub) == {"trainee-002": "0"}, "the next trainee gets the freed device"
