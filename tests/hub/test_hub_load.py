"""30 trainees arrive at once (loopback only): each signs in, gets a server, runs a cell in a kernel.

Reports the spawn time's median and 95th percentile and the errors (there must be none) in
build/hub/load.json and on stdout. The room of 300 is this, ten times, on the real server: see
course/RUNBOOK.md for the figures that matter there.
"""

import json
import os
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import ROOT
from tests.hub.conftest import Person

pytestmark = [pytest.mark.hub, pytest.mark.slow]

TRAINEES = 30
# A bound on the whole room, sign-in to cell output, so that the test ends; not a speed target (those
# belong in a benchmark: the figures for the day are measured on the real server, course/RUNBOOK.md).
# On the 2-core CI machine beside a grading test the room took 240 s (spawn median 78 s).
BUDGET_S = 600


def percentile(values, q):
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def one_trainee(hub, name, deadline):
    t = {"user": name}
    p = Person(hub, name)
    t0 = time.monotonic()
    r = p.login()
    if r.status_code != 302:
        raise AssertionError(f"{name}: sign-in answered {r.status_code}")
    t["login_s"] = time.monotonic() - t0
    t1 = time.monotonic()
    # Past the spawn limit the hub refuses at once (429, Retry-After) and the trainee's page asks again by
    # itself after the wait (techday/hub/templates/error.html): so does this trainee.
    t["spawn_retries"] = 0
    while p.spawn().status_code == 429:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: refused at the spawn limit until the deadline")
        t["spawn_retries"] += 1
        time.sleep(5.0)
    while True:
        server = hub.user_model(name).get("servers", {}).get("")
        if server and server.get("ready"):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: no server before the deadline")
        time.sleep(1.0)
    t["spawn_s"] = time.monotonic() - t1
    t2 = time.monotonic()
    r = p.rest("POST", "/api/kernels", json={"name": "python3"})
    if r.status_code != 201:
        raise AssertionError(f"{name}: starting a kernel answered {r.status_code}: {r.text[:300]!r}")
    kernel = r.json()["id"]
    out = p.run_cell(kernel, f"print(sum(range(1000)), {name!r})", timeout=max(5, deadline - time.monotonic()))
    if out != {"stdout": f"499500 {name}\n", "error": None, "status": "ok"}:
        raise AssertionError(f"{name}: the cell gave {out}")
    t["cell_s"] = time.monotonic() - t2
    # The stand-in's kernels must use Unix sockets of their own (tests/hub/conftest.py, AccountSpawner):
    # over TCP, thirty servers starting kernels at once gave two kernels one port.
    connection = json.loads((hub.runtime / name / f"kernel-{kernel}.json").read_text())
    if connection["transport"] != "ipc" or not connection["ip"].startswith(str(hub.runtime / name)):
        raise AssertionError(f"{name}: the kernel listens on {connection['transport']} {connection['ip']}")
    p.rest("DELETE", f"/api/kernels/{kernel}")
    t["total_s"] = time.monotonic() - t0
    return t


def test_thirty_trainees_at_once(hub_factory):
    hub = hub_factory(trainees=TRAINEES, gpus=[], course=False)
    names = [f"trainee-{i:03d}" for i in range(1, TRAINEES + 1)]
    start = time.monotonic()
    deadline = start + BUDGET_S
    results, errors = [], []
    with ThreadPoolExecutor(max_workers=TRAINEES) as pool:
        futures = {pool.submit(one_trainee, hub, name, deadline): name for name in names}
        for future, name in futures.items():
            try:
                results.append(future.result(timeout=BUDGET_S + 30))
            except Exception as exc:  # noqa: BLE001 (every failure is counted and reported)
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
    wall = time.monotonic() - start
    spawn = [r["spawn_s"] for r in results]
    report = {
        "trainees": TRAINEES,
        "ok": len(results),
        "errors": errors,
        "wall_s": round(wall, 1),
        "spawn_s": {"median": round(statistics.median(spawn), 1) if spawn else None,
                    "p95": round(percentile(spawn, 0.95), 1) if spawn else None,
                    "max": round(max(spawn), 1) if spawn else None},
        "login_s_median": round(statistics.median(r["login_s"] for r in results), 2) if results else None,
        "spawn_retries": sum(r["spawn_retries"] for r in results),
        "cell_s_median": round(statistics.median(r["cell_s"] for r in results), 2) if results else None,
        "spawner": "SimpleLocalProcessSpawner on loopback (a process per trainee, no Docker)",
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
    }
    out = ROOT / "build" / "hub"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nload: {report['ok']}/{TRAINEES} trainees in {report['wall_s']} s; spawn median "
          f"{report['spawn_s']['median']} s, p95 {report['spawn_s']['p95']} s; errors {len(errors)} -> {out / 'load.json'}")
    causes = [line for line in hub.log_tail(100_000).splitlines()
              if re.search(r"Address already in use|KernelRestarter|Nudge: attempt 10\b|ping timeout", line)]
    assert not errors, "\n".join(errors[:10] + causes[:20]) + "\n" + hub.log_tail(40)
    assert len(results) == TRAINEES and wall < BUDGET_S
    assert len({r["user"] for r in results}) == TRAINEES


ROOM = 300
# A bound on the whole room's sign-in so that the test ends; not a speed target. Each sign-in costs the
# hub one PBKDF2 hash (120,000 rounds). Measured on the 2-core test machine: see the printed line.
ROOM_BUDGET_S = 300


def sign_in(hub, name: str) -> tuple[str, float, str]:
    """``name`` signs in with their card; returns who the hub then says this browser is."""
    p = Person(hub, name)
    t0 = time.monotonic()
    r = p.login()
    took = time.monotonic() - t0
    if r.status_code != 302:
        return name, took, f"sign-in answered {r.status_code}"
    me = p.s.get(f"{hub.url}/hub/api/user", timeout=60)
    p.s.close()
    return name, took, me.json().get("name", f"no name: {me.status_code}") if me.status_code == 200 else str(me.status_code)


def test_a_room_of_three_hundred_signs_in(hub_factory):
    """The day's room, sign-in only (no server: 300 Jupyter servers do not fit a 2-core machine): 300
    accounts in the accounts file, everyone signing in within minutes, 30 at a time. Every sign-in
    succeeds, and every browser is the account it signed in as (no session handed to another)."""
    hub = hub_factory(trainees=ROOM, gpus=[], course=False)
    names = [f"trainee-{i:03d}" for i in range(1, ROOM + 1)]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(lambda n: sign_in(hub, n), names, timeout=ROOM_BUDGET_S))
    wall = time.monotonic() - start
    took = [t for _, t, _ in results]
    wrong = [(name, who) for name, _, who in results if who != name]
    print(f"\n{ROOM} sign-ins in {wall:.0f} s; median {statistics.median(took):.1f} s, "
          f"p95 {percentile(took, 0.95):.1f} s, max {max(took):.1f} s; {len(wrong)} wrong")
    assert not wrong, wrong[:10]
    assert wall < ROOM_BUDGET_S
