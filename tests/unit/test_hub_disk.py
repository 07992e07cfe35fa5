"""Disk for a room: `techday hub check` sets the free disk against the worst case (accounts x what each may
write), and the hub refuses a server when the disk is all but full. The container request with a size:
tests/hub/test_trainee_container.py; the chart's sizes below.

Each test names the wrong behaviour it catches.
"""

from __future__ import annotations

import shutil
from collections import namedtuple
from types import SimpleNamespace

import pytest

from techday.hub.config import (
    GpuAllocator,
    HubSettings,
    check,
    make_accounts,
    parse_size,
    spawn_hooks,
    write_accounts,
)
from techday.hub.config import AccountsCache

pytest.importorskip("jupyterhub", reason='JupyterHub is in the hub extra (python -m pip install -e ".[hub]")')

Usage = namedtuple("Usage", "total used free")
G = 1024**3


def config_file(tmp_path, disk_limit: str) -> object:
    if not (tmp_path / "users.csv").exists():
        write_accounts(make_accounts(300, "trainee", ["kim"], []), tmp_path)
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        "from pathlib import Path\nfrom techday.hub.config import HubSettings, configure\nc = get_config()\n"
        f"configure(c, HubSettings(course_id='c101', users_file=Path({str(tmp_path / 'users.csv')!r}), "
        f"exchange=Path({str(tmp_path / 'exchange')!r}), course_root=Path({str(tmp_path / 'course')!r}), "
        f"state_dir=Path({str(tmp_path / 'state')!r}), disk_limit={disk_limit!r}))\n")
    (tmp_path / "state").mkdir(exist_ok=True)
    return path


def disk(tmp_path, free_g: float, disk_limit: str = "5G"):
    path = config_file(tmp_path, disk_limit)
    found = {f.check: f for f in check(path, gpu_probe=lambda: (["0"], ""),
                                       disk_probe=lambda p: Usage(2000 * G, 0, int(free_g * G)))}
    return found["disk for the room"]


def test_the_check_sets_free_disk_against_the_rooms_worst_case(tmp_path):
    """Caught: the check said nothing of disk. 301 accounts x (5 GB home + 5 GB layer) is 3010 GB; a
    server with 1 TB free passed the rehearsal and filled at noon."""
    short = disk(tmp_path, 1000)
    assert not short.ok and "301 account(s)" in short.detail and "3010 GB" in short.detail, short.detail
    assert disk(tmp_path, 3100).ok


def test_no_disk_limit_is_reported_as_a_problem(tmp_path):
    """Caught: a room with no size on anyone's disk passing the check as ready."""
    found = disk(tmp_path, 3100, disk_limit="")
    assert not found.ok and "TECHDAY_DISK_LIMIT" in found.fix and "no per-trainee" in found.detail


def test_sizes_are_read_as_docker_reads_them():
    """Caught: "10G" read as 10**10 bytes (Docker's sizes are binary) or "10GB" refused."""
    assert parse_size("10G") == parse_size("10GB") == parse_size("10Gi") == 10 * G
    assert parse_size("512m") == 512 * 1024**2 and parse_size("") == 0
    with pytest.raises(ValueError):
        parse_size("ten gigs")


def test_a_server_is_refused_when_the_disk_is_all_but_full(tmp_path, monkeypatch):
    """Caught: servers kept starting on a full disk: each then failed to save any notebook, with an
    error about the notebook, not the disk. The spawn is refused with the reason, in both languages."""
    write_accounts(make_accounts(1, "trainee", [], []), tmp_path)
    settings = HubSettings(course_id="c", users_file=tmp_path / "users.csv", state_dir=tmp_path)
    pre, _ = spawn_hooks(AccountsCache(settings.users_file), GpuAllocator([]), disk_free=(tmp_path, 2 * G))
    spawner = SimpleNamespace(user=SimpleNamespace(name="trainee-001"), environment={}, log=None)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(100 * G, 99 * G, 1 * G))
    with pytest.raises(RuntimeError) as refused:
        pre(spawner)
    assert "disk" in str(refused.value) and "디스크" in str(refused.value), refused.value
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(100 * G, 10 * G, 90 * G))
    pre(spawner)


def test_the_charts_pods_have_a_disk_size_in_every_profile():
    """Caught: the chart's GPU profiles replace ``extra_resource_limits`` with their GPU only, so a size
    set once for all pods was dropped from exactly the pods the room uses; and no ephemeral-storage
    limit at all (a pod's /tmp and pip installs filled the node's disk, and the kubelet evicted others)."""
    from pathlib import Path

    yaml = pytest.importorskip("yaml", reason="PyYAML reads the values file")
    single = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker" / "z2jh-values.yaml").read_text())["singleuser"]
    assert parse_size(single["storage"]["capacity"]) > 0, "each trainee's PVC has a size"
    base = single["extraResource"]["limits"]["ephemeral-storage"]
    assert parse_size(base) > 0
    for profile in single["profileList"]:
        limits = profile.get("kubespawner_override", {}).get("extra_resource_limits")
        if limits is not None:
            assert limits.get("ephemeral-storage") == base, profile["slug"]
