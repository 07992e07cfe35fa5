"""The accounts file as each compose container sees it after an admin adds a trainee mid-morning.

docker/compose.yaml hands ``users.csv`` to the hub (sign-in, uids for spawning) and to the course service
(collect: whose entry is whose). ``techday hub users --force`` writes the file whole, through a rename
(techday.atomicfile), as most editors do. A bind mount of a single file holds the inode it was given:
after the rename the container still reads the old file. Without Docker here, each service's own
volume line is replayed with ``mount --bind`` in a private mount namespace (root only: ``unshare``),
which is what Docker does with a bind volume.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from techday.hub.config import make_accounts, write_accounts

ROOT = Path(__file__).resolve().parents[2]


def why_no_mounts() -> str | None:
    if os.geteuid() != 0:
        return f"bind mounts in a private namespace need root (this is uid {os.geteuid()})"
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "unshare or mount is not installed (util-linux)"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare --mount is refused here: {probe.stderr.strip()}"
    return None


def accounts_mounts() -> dict[str, tuple[str, str, str]]:
    """service -> (source relative to docker/, target in the container, TECHDAY_USERS_FILE there)."""
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")
    services = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]
    found = {}
    for name, service in services.items():
        users = (service.get("environment") or {}).get("TECHDAY_USERS_FILE")
        if not users:
            continue
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith(".") and (users == target or users.startswith(target.rstrip("/") + "/")):
                found[name] = (source, target, users)
    return found


# Replayed in the namespace: the service's bind mount, then the admin's re-issue on the host path, then
# what the container reads.
REPLAY = r"""
import subprocess, sys
from pathlib import Path
from techday.hub.config import make_accounts, read_accounts, write_accounts
source, target, users_file, out = sys.argv[1:5]
subprocess.run(["mount", "--bind", source, target], check=True)
seen_before = sorted(read_accounts(Path(users_file)))
write_accounts(make_accounts(3, "trainee", ["kim"], []), Path(out), force=True)   # trainee-003 arrives
print(" ".join(seen_before), "|", " ".join(sorted(read_accounts(Path(users_file)))))
"""


@pytest.mark.parametrize("service", ["hub", "course"])
def test_a_trainee_added_mid_morning_is_seen_by_every_container(tmp_path, service):
    """Caught: compose mounted ``./hub-users/users.csv`` alone into the course service. After ``techday hub
    users --force`` added trainee-003, the hub signed them in and started their server, but collect in
    the course container still read the old file: trainee-003's submissions were "not in the accounts
    file" and never collected, until someone restarted the container."""
    why = why_no_mounts()
    if why:
        pytest.skip(why)
    mounts = accounts_mounts()
    assert service in mounts, f"compose gives {service} no accounts file from docker/hub-users: {mounts}"
    source, target, users_file = mounts[service]
    host = tmp_path / "docker"
    out = host / "hub-users"
    write_accounts(make_accounts(2, "trainee", ["kim"], []), out)
    src = (host / source).resolve()
    inside = tmp_path / "container"
    mountpoint = inside / target.lstrip("/")
    if src.is_dir():
        mountpoint.mkdir(parents=True)
    else:
        mountpoint.parent.mkdir(parents=True)
        mountpoint.touch()
    seen = inside / users_file.lstrip("/")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", REPLAY,
                          str(src), str(mountpoint), str(seen), str(out)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    before, after = (part.split() for part in run.stdout.strip().split("|"))
    assert before == ["kim", "trainee-001", "trainee-002"], before
    assert "trainee-003" in after, f"the {service} container still reads the old accounts file: {after}"
