"""What one trainee's container is, as Docker is asked for it: the shipped hub config
(docker/jupyterhub_config.py, with the variables compose sets) loaded as JupyterHub loads it, the spawn
hook run, then DockerSpawner's own ``create_object`` with the Docker API call caught before it leaves
the process (no daemon needed). The request is what ``docker inspect`` would show: its limits, user,
privileges, devices, volumes and environment.

Each test names the wrong behaviour it catches.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from unittest import mock

import pytest

pytest.importorskip("dockerspawner", reason='DockerSpawner is in the hub extra (python -m pip install -e ".[hub]")')

from techday.hub.config import load_hub_config, make_accounts, read_accounts, write_accounts  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECRET = "0123456789abcdef" * 4   # the course service's token, as compose passes it to the hub


def create_request(tmp_path, monkeypatch, name: str = "trainee-001", **env: str) -> dict:
    """The ``create_container`` call DockerSpawner makes for ``name``'s server under the shipped config."""
    from dockerspawner import DockerSpawner

    accounts = tmp_path / "hub-users"
    if not (accounts / "users.csv").exists():
        write_accounts(make_accounts(2, "trainee", ["kim"], []), accounts)
    variables = {"TECHDAY_USERS_FILE": str(accounts / "users.csv"), "TECHDAY_HUB_STATE": str(tmp_path / "state"),
                 "TECHDAY_GPUS": "0,1", "TECHDAY_COURSE_ID": "techday", "TECHDAY_COURSE_SERVICE_TOKEN": SECRET,
                 "TECHDAY_COURSE_SERVICE_URL": "http://course:9999", **env}
    for key in [k for k in list(__import__("os").environ) if k.startswith("TECHDAY_")]:
        monkeypatch.delenv(key)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    with mock.patch("techday.hub.config.visible_gpus", return_value=(["0", "1"], "")):
        cfg = load_hub_config(ROOT / "docker" / "jupyterhub_config.py")

    calls = []

    class Offline(DockerSpawner):
        _client = None

        async def docker(self, method, *args, **kwargs):
            calls.append((method, kwargs))
            return {"Id": "x", "Config": {"Cmd": ["jupyterhub-singleuser"], "Entrypoint": ["tini", "--"]}}

    user = mock.MagicMock(url=f"/user/{name}/", escaped_name=name, id=1)
    user.name = name
    spawner = Offline(config=cfg, user=user, api_token="server-token", oauth_client_id=f"jupyterhub-user-{name}",
                      hub=mock.MagicMock(api_url="http://hub:8081/hub/api", base_url="/hub/", public_host=""),
                      client_kwargs={"version": "1.43", "base_url": "unix:///nonexistent/docker.sock"})
    spawner.server = mock.MagicMock(base_url=f"/user/{name}/", url=f"http://x:8888/user/{name}/")
    spawner.pre_spawn_hook(spawner)
    asyncio.run(spawner.create_object())
    method, request = calls[-1]
    assert method == "create_container"
    return request


def test_a_trainees_container_has_a_cpu_and_process_limit(tmp_path, monkeypatch):
    """Caught: the one-server hub gave each container a memory limit and nothing else. One trainee's
    busy loops on every core (``multiprocessing.Pool()``, a DataLoader with 64 workers) slowed every
    other trainee's kernel on the machine, and a fork bomb took every process id the host had: the hub,
    the other 55 trainees and the admin's shell could not start a process. The runbook promised 4 cores
    per trainee; compose gave the whole machine."""
    host = create_request(tmp_path, monkeypatch)["host_config"]
    assert host.get("Memory") == 16 * 1024**3, host
    quota = host.get("NanoCpus") or host.get("CpuQuota", 0) * 1e9 / host.get("CpuPeriod", 100_000)
    assert quota == 4e9, f"CPU limit {quota / 1e9 if quota else 'none'}, want 4 cores: {host}"
    assert host.get("PidsLimit") == 4096, f"no process limit: {host}"


def test_the_limits_follow_the_settings(tmp_path, monkeypatch):
    host = create_request(tmp_path, monkeypatch, TECHDAY_CPU_LIMIT="2.5", TECHDAY_PIDS_LIMIT="512",
                          TECHDAY_MEM_LIMIT="8G")["host_config"]
    assert (host["Memory"], host["CpuQuota"], host["PidsLimit"]) == (8 * 1024**3, 250_000, 512), host


def test_threads_follow_the_cpu_limit(tmp_path, monkeypatch):
    """Caught with the CPU limit: PyTorch and OpenMP start one thread per core of the host (112 on a DGX
    node), which a 4-core quota throttles in turn: a lab's training loop ran several times slower than
    with 4 threads. The container says how many cores it has."""
    env = create_request(tmp_path, monkeypatch)["environment"]
    assert env.get("OMP_NUM_THREADS") == "4", env


def test_a_trainees_container_is_theirs_alone(tmp_path, monkeypatch):
    """The rest of the request, as one: the account's own uid, no privilege to gain, one GPU by id, only
    its home and the exchange mounted, and nothing of the hub's secrets in its environment (the course
    service's token opens the formgrader: every submission and the solutions)."""
    request = create_request(tmp_path, monkeypatch)
    uid = read_accounts(tmp_path / "hub-users" / "users.csv")["trainee-001"].uid
    host = request["host_config"]
    assert request["user"] == f"{uid}:100" and request["image"] == "techday-lab:latest"
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host["SecurityOpt"]
    assert not host.get("Privileged") and not host.get("CapAdd")
    assert [d["DeviceIDs"] for d in host["DeviceRequests"]] == [["0"]]
    assert sorted(host["Binds"]) == ["techday-exchange:/srv/nbgrader/exchange:rw",
                                     "techday-home-trainee-2d001:/home/jovyan/work:rw"], host["Binds"]
    leaked = [k for k, v in request["environment"].items() if SECRET in str(v) or "SERVICE_TOKEN" in k]
    assert not leaked, f"the hub's secret reaches a trainee's container: {leaked}"


def test_the_charts_pods_start_as_many_threads_as_their_cpu_limit():
    """The same on Kubernetes: each profile's OpenMP threads are its CPU limit, not the node's cores."""
    import math

    yaml = pytest.importorskip("yaml", reason="PyYAML reads the values file")
    single = yaml.safe_load((ROOT / "docker" / "z2jh-values.yaml").read_text())["singleuser"]
    threads = single["extraEnv"].get("OMP_NUM_THREADS")
    assert threads == str(math.ceil(single["cpu"]["limit"])), (threads, single["cpu"])
    for profile in single["profileList"]:
        override = profile.get("kubespawner_override", {})
        if "cpu_limit" in override:
            assert override.get("environment", {}).get("OMP_NUM_THREADS") == str(math.ceil(override["cpu_limit"])), \
                profile["slug"]


def test_a_disk_limit_caps_the_home_volume_and_the_containers_layer(tmp_path, monkeypatch):
    """Caught: no size anywhere. One trainee's ``dd if=/dev/zero`` (or a dataset downloaded twice) in
    their home filled the disk Docker keeps every volume on: every other notebook failed to save and the
    exchange took no more submissions. With TECHDAY_DISK_LIMIT the home volume is created by Docker's
    local driver with a size (an XFS project quota) and the container's own layer gets the same size."""
    request = create_request(tmp_path, monkeypatch, TECHDAY_DISK_LIMIT="10G")
    host = request["host_config"]
    assert host.get("StorageOpt") == {"size": "10G"}, f"the container's layer has no size: {host}"
    homes = [m for m in host.get("Mounts") or [] if m["Target"] == "/home/jovyan/work"]
    assert len(homes) == 1, f"the home is not a sized volume mount: {host.get('Mounts')}"
    assert homes[0]["Source"] == "techday-home-trainee-2d001" and homes[0]["Type"] == "volume"
    assert homes[0]["VolumeOptions"]["DriverConfig"] == {"Name": "local", "Options": {"size": "10G"}}
    assert host["Binds"] == ["techday-exchange:/srv/nbgrader/exchange:rw"], "the home is mounted once"


def test_without_a_disk_limit_the_request_is_unchanged(tmp_path, monkeypatch):
    """Where Docker's disk is not XFS with project quotas a size fails every spawn: none is asked by default."""
    host = create_request(tmp_path, monkeypatch)["host_config"]
    assert "StorageOpt" not in host and not host.get("Mounts"), host
