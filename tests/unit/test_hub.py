"""techday.hub.config: the GPU hand-out, the accounts file, the hub settings and `techday hub check`."""

import csv
import json
import os
from types import SimpleNamespace

import pytest

from techday.hub.config import (
    GRADER_UID,
    TRAINEE_GID,
    UID_FIRST,
    AccountsCache,
    GpuAllocator,
    HubSettings,
    NoGpuFree,
    UsersFileError,
    apply_device,
    apply_identity,
    check,
    check_password,
    configure,
    drop_missing_gpus,
    gpu_hooks,
    hash_password,
    make_accounts,
    parse_devices,
    read_accounts,
    roles,
    spawn_hooks,
    write_accounts,
)
from tests.conftest import ROOT, techday

MIG = ["MIG-4f1c2a1e-0b7a-5a1d-9f43-2e7b1b5c0d11", "MIG-7a0e9d3b-1c2d-5e6f-8a9b-0c1d2e3f4a5b"]


# ------------------------------------------------------------------ allocator


def test_parse_devices_indices_and_mig_uuids():
    assert parse_devices("0, 1 2,3") == ["0", "1", "2", "3"]
    assert parse_devices(",".join(MIG)) == MIG
    assert parse_devices("") == []


@pytest.mark.parametrize("text, words", [("0,1,0", "listed twice"), ("gpu0", "not a GPU index"),
                                         (f"{MIG[0]} {MIG[0]}", "listed twice")])
def test_parse_devices_refuses_a_silent_share(text, words):
    with pytest.raises(ValueError, match=words):
        parse_devices(text)


def test_allocator_hands_out_in_order_one_each_and_refuses_when_full():
    a = GpuAllocator(["0", "1"])
    assert [a.assign("kim"), a.assign("lee")] == ["0", "1"]
    assert a.assign("kim") == "0", "a second spawn of the same user keeps its device"
    with pytest.raises(NoGpuFree, match="all 2 GPU"):
        a.assign("park")
    assert a.release("kim") == "0" and a.assign("park") == "0"
    assert len(set(a.holders.values())) == len(a.holders), "no device held twice"


def test_allocator_is_deterministic_and_survives_a_restart(tmp_path):
    state = tmp_path / "gpus.json"
    first = GpuAllocator(MIG, state=state)
    order = [first.assign(u) for u in ("u2", "u1")]
    again = GpuAllocator(MIG, state=state)
    assert again.holders == {"u2": MIG[0], "u1": MIG[1]} and order == MIG
    # A device dropped from the list is dropped from the state; a corrupt double holding is cut to one.
    state.write_text(json.dumps({"holders": {"a": "0", "b": "0", "c": "9"}}))
    assert GpuAllocator(["0", "1"], state=state).holders == {"a": "0"}


@pytest.mark.parametrize("text", [b'{"holders": {"a": "0"', b"\xff\xfe", b"[1, 2]", b'{"holders": {"a": 0}}'])
def test_an_unreadable_gpu_state_is_kept_aside_and_the_hub_still_starts(tmp_path, text, caplog):
    # Wrong answer caught: a cut-off, hand-edited or mis-encoded gpus.json raised from the hub's
    # config (json.JSONDecodeError, AttributeError): the hub did not start and no one could log in.
    state = tmp_path / "gpus.json"
    state.write_bytes(text)
    a = GpuAllocator(["0", "1"], state=state)
    assert a.holders == {} and a.assign("u1") == "0"
    kept = list(tmp_path.glob("gpus.json.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == text  # nothing lost: the old file is beside
    assert "not readable" in caplog.text
    assert json.loads(state.read_text())["holders"] == {"u1": "0"}


class FakeSpawner:
    def __init__(self, name, docker=False):
        self.user = SimpleNamespace(name=name)
        self.environment = {"KEEP": "1"}
        self.log = SimpleNamespace(info=lambda *a: None, warning=lambda *a: None)
        if docker:
            self.extra_host_config = {"shm_size": "2g"}


def test_hooks_give_docker_a_device_request_and_local_processes_cuda_visible_devices():
    pre, post = gpu_hooks(GpuAllocator(["0", MIG[0]]))
    d, local = FakeSpawner("kim", docker=True), FakeSpawner("lee")
    pre(d)
    pre(local)
    assert d.extra_host_config == {"shm_size": "2g", "device_requests": [
        {"driver": "nvidia", "device_ids": ["0"], "capabilities": [["gpu"]]}]}
    assert "CUDA_VISIBLE_DEVICES" not in d.environment and d.environment["TECHDAY_GPU"] == "0"
    assert local.environment == {"KEEP": "1", "TECHDAY_GPU": MIG[0], "CUDA_VISIBLE_DEVICES": MIG[0]}
    with pytest.raises(RuntimeError, match="Ask an instructor"):
        pre(FakeSpawner("park"))
    post(d)
    third = FakeSpawner("park")
    pre(third)
    assert third.environment["CUDA_VISIBLE_DEVICES"] == "0"


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_refused_spawn_says_why_in_the_rooms_language(monkeypatch, lang):
    """The trainee reads this on the hub's page: it was English with a Korean line written into the code,
    not from the catalogue; now all of it in the room's language."""
    from techday.i18n import _HANGUL

    monkeypatch.setenv("TECHDAY_LANG", lang)
    pre, _ = gpu_hooks(GpuAllocator(["0"]))
    pre(FakeSpawner("kim"))
    with pytest.raises(RuntimeError) as err:
        pre(FakeSpawner("lee"))
    said = str(err.value)
    if lang == "ko":
        assert said == "GPU 1개가 모두 사용 중이라 lee에게 줄 디바이스가 없습니다. 강사에게 문의합니다. 다른 서버가 멈추면 GPU가 풀립니다."
    else:
        assert said == ("all 1 GPU(s) are in use; no device for lee. Ask an instructor: a GPU frees up when a server "
                        "stops") and not _HANGUL.search(said)


def test_overflow_to_cpu_says_so():
    pre, _ = gpu_hooks(GpuAllocator(["0"]), overflow="cpu")
    pre(FakeSpawner("kim"))
    late = FakeSpawner("lee", docker=True)
    pre(late)
    assert late.environment["TECHDAY_TIER"] == "cpu" and late.extra_host_config["device_requests"] == []
    assert late.environment["NVIDIA_VISIBLE_DEVICES"] == "void", "no GPU by the runtime's default either"
    with pytest.raises(ValueError):
        gpu_hooks(GpuAllocator([]), overflow="share")


def test_apply_device_none_is_the_cpu_tier():
    s = FakeSpawner("kim")
    apply_device(s, None)
    assert s.environment["TECHDAY_TIER"] == "cpu" and s.environment["CUDA_VISIBLE_DEVICES"] == ""


# ------------------------------------------------------------------ accounts


def test_password_hash_round_trip():
    stored = hash_password("correct horse", iterations=1000)
    assert check_password("correct horse", stored)
    assert not check_password("correct hors", stored)
    assert not check_password("x", "plain-text")
    assert hash_password("a", iterations=1000) != hash_password("a", iterations=1000), "salted"


def test_accounts_file_round_trip_and_cards(tmp_path):
    rows = make_accounts(3, "trainee", ["kim"], ["admin"])
    assert [r[:2] for r in rows] == [("admin", "admin"), ("kim", "instructor"), ("trainee-001", "trainee"),
                                     ("trainee-002", "trainee"), ("trainee-003", "trainee")]
    assert all(len(p) == 10 and not set(p) & set("0O1lI") for _, _, p in rows)
    users, slips = write_accounts(rows, tmp_path)
    accounts = read_accounts(users)
    cards = list(csv.DictReader(slips.read_text().splitlines()))
    assert check_password(cards[2]["password"], accounts["trainee-001"].password_hash)
    assert oct(slips.stat().st_mode & 0o777) == "0o600", "the plain-text cards are private"
    with pytest.raises(FileExistsError, match="--force"):
        write_accounts(rows, tmp_path)


@pytest.mark.parametrize("body, words", [("username,role,password_hash\nkim,boss,pbkdf2_sha256$1$a$b\n", ":2"),
                                         ("username,role,password_hash\nkim,trainee,secret\n", "want username"),
                                         ("username,role,password_hash\nkim,trainee,pbkdf2_sha256$1$a$b\n"
                                          "KIM,trainee,pbkdf2_sha256$1$a$b\n", "listed twice")])
def test_accounts_file_errors_name_the_line(tmp_path, body, words):
    path = tmp_path / "users.csv"
    path.write_text(body)
    with pytest.raises(UsersFileError, match=words):
        read_accounts(path)
    with pytest.raises(UsersFileError, match="No such file"):
        read_accounts(tmp_path / "absent.csv")


def test_cli_users_writes_cards(tmp_path):
    out = techday("hub", "users", "--trainees", "2", "--instructors", "Kim", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert sorted(read_accounts(tmp_path / "users.csv")) == ["kim", "trainee-001", "trainee-002"]
    again = techday("hub", "users", "--trainees", "2", "--out", str(tmp_path))
    assert again.returncode == 1 and "--force" in again.stderr


# ------------------------------------------------------------------ settings and check


def test_roles_are_nbgraders_multi_grader_roles():
    r = {x["name"]: x for x in roles("c101")}
    assert r["formgrade-c101"]["groups"] == ["formgrade-c101"]
    assert "access:services!service=c101" in r["formgrade-c101"]["scopes"]
    assert "access:services!service=c101" not in r["nbgrader-c101"]["scopes"], "trainees cannot open the formgrader"
    assert set(r["idle-culler"]["scopes"]) >= {"list:users", "delete:servers"}


def _settings(tmp_path, **kw):
    users = tmp_path / "users.csv"
    if not users.exists():
        write_accounts(make_accounts(2, "trainee", ["kim"], []), tmp_path, force=True)
    exchange = tmp_path / "exchange"
    base = dict(course_id="c101", users_file=users, exchange=exchange, course_root=tmp_path / "course",
                state_dir=tmp_path / "state")
    return HubSettings(**{**base, **kw})


def test_configure_sets_sign_in_services_and_hooks(tmp_path):
    pytest.importorskip("traitlets")
    from traitlets.config import Config

    c = Config()
    configure(c, _settings(tmp_path, gpus=["0"]))
    assert c.JupyterHub.authenticator_class == "techday.hub.auth.PasswordListAuthenticator"
    services = {s["name"]: s for s in c.JupyterHub.services}
    # the exchange's sweep removes trainees' files: only a hub running as root starts it
    assert set(services) == {"c101", "idle-culler"} | ({"exchange-sweep"} if os.geteuid() == 0 else set())
    assert services["c101"]["environment"]["JUPYTERHUB_DEFAULT_URL"] == "/formgrader"
    assert set(c.JupyterHub.load_groups) == {"formgrade-c101", "nbgrader-c101"}
    assert callable(c.Spawner.pre_spawn_hook) and callable(c.Spawner.post_stop_hook)
    assert c.JupyterHub.cleanup_servers is False, "a hub restart must not stop trainees' servers"


def _config_file(tmp_path, settings_kwargs="", extra=""):
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        "from pathlib import Path\nfrom techday.hub.config import HubSettings, configure\nc = get_config()\n"
        f"configure(c, HubSettings(course_id='c101', users_file=Path({str(tmp_path / 'users.csv')!r}), "
        f"exchange=Path({str(tmp_path / 'exchange')!r}), course_root=Path({str(tmp_path / 'course')!r}), "
        f"state_dir=Path({str(tmp_path / 'state')!r}){settings_kwargs}))\n{extra}")
    return path


def _by_check(findings):
    return {f.check: f for f in findings}


def test_check_reports_each_problem_with_its_fix(tmp_path):
    pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
    path = _config_file(tmp_path, ", gpus=['0', '1']")
    found = _by_check(check(path, gpu_probe=lambda: ([], "nvidia-smi not found")))
    assert found["config loads"].ok
    assert not found["accounts"].ok and "techday hub users" in found["accounts"].fix
    assert not found["GPUs visible"].ok and "not visible: 0, 1" in found["GPUs visible"].detail
    assert "nvidia-smi -L" in found["GPUs visible"].fix
    assert not found["exchange writable"].ok and "does not exist" in found["exchange writable"].detail
    assert found["exchange writable"].fix.startswith("mkdir -p")
    assert not found["course built"].ok and "techday build" in found["course built"].fix


def test_check_passes_on_a_ready_server(tmp_path):
    pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
    write_accounts(make_accounts(2, "trainee", ["kim"], []), tmp_path)
    (tmp_path / "exchange").mkdir()
    (tmp_path / "exchange").chmod(0o1777)
    (tmp_path / "course" / "release" / "ok-lab").mkdir(parents=True)
    path = _config_file(tmp_path, f", gpus=[{MIG[0]!r}], subdomain_host='https://hub.example.org', disk_limit='1M'")
    found = _by_check(check(path, gpu_probe=lambda: (["0", "GPU-x", MIG[0]], "")))
    proxy = found.pop("proxy")
    assert all(f.ok for f in found.values()), [f for f in found.values() if not f.ok]
    assert proxy.ok or "npm install" in proxy.fix
    # An exchange trainees cannot write to, and no GPU listed without --allow-cpu.
    (tmp_path / "exchange").chmod(0o755)
    found = _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))
    assert not found["exchange writable"].ok and found["exchange writable"].fix == f"chmod 1777 {tmp_path / 'exchange'}"
    # Writable by all but not sticky (nbgrader's own 777): any trainee could rename the course's folder.
    (tmp_path / "exchange").chmod(0o777)
    found = _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))
    assert not found["exchange writable"].ok and "not sticky" in found["exchange writable"].detail
    # An inbound folder others may list (nbgrader's groupshared mode, or made by hand) is reported.
    inbound = tmp_path / "exchange" / "c101" / "inbound"
    inbound.mkdir(parents=True)
    inbound.chmod(0o777)
    found = _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))
    assert not found["submissions closed"].ok and "3733" in found["submissions closed"].fix
    inbound.chmod(0o3733)
    assert _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))["submissions closed"].ok
    assert _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))["course folder the grader's"].ok
    # A course folder a trainee's account made before the first release (root only: chown).
    if os.geteuid() == 0:
        os.chown(inbound.parent, UID_FIRST + 3, 100)
        found = _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))
        assert not found["course folder the grader's"].ok and "mv " in found["course folder the grader's"].fix
        os.chown(inbound.parent, 0, 0)
    else:
        print("skipped the trainee-owned course folder case: chown needs root")
    assert not found["GPUs visible"].ok and "TECHDAY_GPUS" in found["GPUs visible"].fix
    assert _by_check(check(_config_file(tmp_path), allow_cpu=True, gpu_probe=lambda: ([], "none")))["GPUs visible"].ok


def test_check_reports_a_broken_config(tmp_path):
    pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
    bad = _config_file(tmp_path, extra="c.JupyterHub.authenticator_class = 'dummy'\n")
    write_accounts(make_accounts(1, "trainee", ["kim"], []), tmp_path)
    assert not _by_check(check(bad, gpu_probe=lambda: ([], "")))["sign-in"].ok
    broken = tmp_path / "broken.py"
    broken.write_text("c = get_config()\nc.JupyterHub.port = int('eight')\n")
    (only,) = check(broken)
    assert not only.ok and "ValueError" in only.detail
    plain = tmp_path / "plain.py"
    plain.write_text("c = get_config()\n")
    assert "techday.hub.config.configure" in check(plain)[0].detail


def test_shipped_hub_config_loads(tmp_path, monkeypatch):
    """docker/jupyterhub_config.py loads with the variables compose sets (DockerSpawner, the GPU list)."""
    pytest.importorskip("dockerspawner", reason="the hub extra is not installed")
    from techday.hub.config import load_hub_config

    monkeypatch.setenv("TECHDAY_HUB_STATE", str(tmp_path))
    monkeypatch.setenv("TECHDAY_GPUS", "0,1")
    monkeypatch.setenv("TECHDAY_COURSE_ID", "techday")
    cfg = load_hub_config(ROOT / "docker" / "jupyterhub_config.py")
    assert cfg.JupyterHub.spawner_class == "dockerspawner.DockerSpawner"
    assert cfg.TechDayHub.settings["gpus"] == ["0", "1"]
    assert cfg.DockerSpawner.extra_host_config["shm_size"] == "2g"
    assert "/srv/nbgrader/exchange" in cfg.DockerSpawner.volumes.values()


def test_cli_check_prints_each_problem_with_its_fix(tmp_path):
    pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
    path = _config_file(tmp_path)
    out = techday("hub", "check", "--config", str(path))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "PROBLEM exchange writable" in out.stdout and f"fix: mkdir -p {tmp_path / 'exchange'}" in out.stdout
    assert "PROBLEM accounts" in out.stdout and "problem(s)" in out.stdout


def test_visible_gpus_reads_nvidia_smi_with_mig(tmp_path, monkeypatch):
    """`nvidia-smi -L` as printed on a MIG-partitioned H100: indices, GPU UUIDs and MIG UUIDs."""
    from techday.hub.config import visible_gpus

    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\ncat <<'OUT'\n"
                   "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5b1e2c3d-0000-1111-2222-333344445555)\n"
                   f"  MIG 1g.10gb     Device  0: (UUID: {MIG[0]})\n"
                   f"  MIG 1g.10gb     Device  1: (UUID: {MIG[1]})\n"
                   "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-6c2f3d4e-0000-1111-2222-333344445555)\nOUT\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    ids, why = visible_gpus()
    assert why == "" and ids == ["0", "GPU-5b1e2c3d-0000-1111-2222-333344445555", MIG[0], MIG[1], "1",
                                 "GPU-6c2f3d4e-0000-1111-2222-333344445555"]
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver' >&2\nexit 9\n")
    ids, why = visible_gpus()
    assert ids == [] and "could not communicate" in why


def test_password_list_authenticator(tmp_path):
    """Right password in, wrong or unknown out; an account added to the file signs in without a restart."""
    pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
    import asyncio
    import os

    from techday.hub.auth import PasswordListAuthenticator

    users, _ = write_accounts([("kim", "admin", "pw-kim"), ("trainee-001", "trainee", "pw-1")], tmp_path)
    auth = PasswordListAuthenticator(users_file=str(users), course_id="c101")
    login = lambda name, pw: asyncio.run(auth.authenticate(None, {"username": name, "password": pw}))  # noqa: E731
    assert login("Trainee-001", "pw-1") == {"name": "trainee-001", "admin": False}
    assert login("kim", "pw-kim") == {"name": "kim", "admin": True}
    assert login("trainee-001", "pw-kim") is None and login("nobody", "pw-1") is None
    assert auth.check_allowed("kim") and not auth.check_allowed("nobody")
    with users.open("a") as f:
        f.write(f"late,trainee,{hash_password('pw-late', iterations=1000)}\n")
    os.utime(users, (users.stat().st_atime, users.stat().st_mtime + 5))
    assert login("late", "pw-late") == {"name": "late", "admin": False}
    # A bad edit (the same name again) must not sign the room out: the last good file stays in use.
    with users.open("a") as f:
        f.write(f"kim,trainee,{hash_password('other', iterations=1000)},{UID_FIRST + 50}\n")
    os.utime(users, (users.stat().st_atime, users.stat().st_mtime + 10))
    assert login("kim", "pw-kim") == {"name": "kim", "admin": True} and login("kim", "other") is None


def test_hub_modules_need_only_jupyterhub():
    """The Kubernetes hub image installs techday without dependencies: sign-in must import without them."""
    pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
    import subprocess
    import sys

    code = ("import sys, techday.hub.config, techday.hub.auth; "
            "print(sorted(m for m in ('numpy', 'numba', 'torch', 'rich', 'nbgrader', 'cupy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


# ------------------------------------------------------------------ one Unix user per account


def test_accounts_get_their_own_uids_stable_for_the_same_roster(tmp_path):
    rows = make_accounts(3, "trainee", ["kim"], [])
    users, _ = write_accounts(rows, tmp_path / "a")
    first = {a.name: a.uid for a in read_accounts(users).values()}
    assert sorted(first.values()) == list(range(UID_FIRST, UID_FIRST + 4)), first
    again, _ = write_accounts(rows, tmp_path / "b")
    assert {a.name: a.uid for a in read_accounts(again).values()} == first, "same roster, same uids"


@pytest.mark.parametrize("instructors, admins, words", [
    (["kim", "kim"], [], "kim is listed twice"),
    (["trainee-001"], [], "trainee-001 is listed twice"),   # an instructor named like a generated trainee
    (["kim"], ["kim"], "kim is listed twice"),
    (["Kim Lee"], [], "is not a username"),
])
def test_a_roster_with_a_duplicate_login_is_refused_before_any_card_is_printed(tmp_path, instructors, admins, words):
    with pytest.raises(ValueError, match=words):
        make_accounts(2, "trainee", instructors, admins)
    out = techday("hub", "users", "--trainees", "2", "--instructors", ",".join(instructors),
                  "--admins", ",".join(admins), "--out", str(tmp_path))
    assert out.returncode == 2 and words in out.stderr, out.stderr
    assert not list(tmp_path.iterdir()), "no file written"


@pytest.mark.parametrize("rows, words", [
    ([("kim", "instructor", 20001), ("lee", "trainee", 20001)], "uid 20001 of lee is also kim's"),
    ([("kim", "instructor", 0)], "not a number from"),       # root
    ([("kim", "instructor", GRADER_UID)], "not a number from"),  # the grader's uid
    ([("kim", "instructor", "x1")], "not a number from"),
])
def test_an_accounts_file_sharing_or_borrowing_a_uid_is_refused(tmp_path, rows, words):
    h = hash_password("pw", iterations=1000)
    path = tmp_path / "users.csv"
    path.write_text("username,role,password_hash,uid\n" + "".join(f"{n},{r},{h},{u}\n" for n, r, u in rows))
    with pytest.raises(UsersFileError, match=words):
        read_accounts(path)


class IdentitySpawner:
    def __init__(self, name, kind):
        self.user = SimpleNamespace(name=name)
        self.environment = {}
        self.log = SimpleNamespace(info=lambda *a: None, warning=lambda *a: None)
        if kind == "docker":
            self.extra_create_kwargs, self.extra_host_config = {"keep": 1}, {}
        elif kind == "kube":
            self.uid = self.gid = None
            self.fs_gid = 100


def test_identity_reaches_every_spawner():
    docker, kube, local = (IdentitySpawner("kim", k) for k in ("docker", "kube", "local"))
    for s in (docker, kube, local):
        apply_identity(s, 20007)
        assert s.environment["USER"] == s.environment["LOGNAME"] == "kim"
    assert docker.extra_create_kwargs == {"keep": 1, "user": f"20007:{TRAINEE_GID}"}
    assert docker.environment["HOME"] == "/home/jovyan"
    assert (kube.uid, kube.gid) == (20007, TRAINEE_GID)
    assert (local.techday_uid, local.techday_gid) == (20007, TRAINEE_GID)


def test_spawn_hook_runs_each_account_as_its_uid_and_refuses_one_without(tmp_path):
    users, _ = write_accounts(make_accounts(1, "trainee", ["kim"], []), tmp_path)
    pre, post = spawn_hooks(AccountsCache(users), GpuAllocator(["0"]))
    s = IdentitySpawner("trainee-001", "docker")
    pre(s)
    assert s.extra_create_kwargs["user"] == f"{UID_FIRST + 1}:{TRAINEE_GID}"
    assert s.extra_host_config["device_requests"][0]["device_ids"] == ["0"]
    with users.open("a") as f:   # added by hand, without a uid: signs in, but no server as root or as 1000
        f.write(f"late,trainee,{hash_password('pw', iterations=1000)},\n")
    with pytest.raises(RuntimeError, match="gives late no uid.*techday hub users"):
        pre(IdentitySpawner("late", "docker"))
    with pytest.raises(RuntimeError, match="not in the accounts file"):
        pre(IdentitySpawner("stranger", "docker"))
    # A later bad edit (the same name twice) leaves the last good accounts in use for spawns too.
    import os

    with users.open("a") as f:
        f.write(f"kim,trainee,{hash_password('pw', iterations=1000)},{UID_FIRST + 90}\n")
    os.utime(users, (users.stat().st_atime, users.stat().st_mtime + 10))
    again = IdentitySpawner("trainee-001", "docker")
    pre(again)
    assert again.extra_create_kwargs["user"] == f"{UID_FIRST + 1}:{TRAINEE_GID}"


def test_a_listed_gpu_that_is_not_there_is_named_and_not_handed_out():
    said = []
    kept = drop_missing_gpus(["0", "3", MIG[0]], said.append, probe=lambda: (["0", "1", MIG[0]], ""))
    assert kept == ["0", MIG[0]]
    assert len(said) == 1 and "GPU 3" in said[0] and "nvidia-smi -L lists 0, 1" in said[0]
    said.clear()
    assert drop_missing_gpus(["0"], said.append, probe=lambda: ([], "nvidia-smi not found")) == ["0"]
    assert "unchecked" in said[0] and "nvidia-smi not found" in said[0]


def test_the_course_service_never_runs_as_root(tmp_path, monkeypatch):
    pytest.importorskip("traitlets")
    from traitlets.config import Config

    import techday.hub.config as hub

    monkeypatch.setattr(hub.os, "geteuid", lambda: 0)
    c = Config()
    configure(c, _settings(tmp_path))
    service = next(s for s in c.JupyterHub.services if s["name"] == "c101")
    assert service["command"][1:5] == ["-m", "techday.hub.runas", str(GRADER_UID), str(hub.GRADER_GID)]
    assert "--ServerApp.allow_root=True" not in service["command"]
    # Run elsewhere (compose's course container): no command at all, a token instead.
    c = Config()
    configure(c, _settings(tmp_path, course_service_token="t0k", course_service_url="http://course:9999"))
    service = next(s for s in c.JupyterHub.services if s["name"] == "c101")
    assert "command" not in service and service["api_token"] == "t0k" and service["url"] == "http://course:9999"


def test_runas_refuses_root_and_refuses_to_pretend(monkeypatch, capsys):
    import techday.hub.runas as runas

    assert runas.main(["0", "0", "--", "true"]) == 2 and "refusing to run as root" in capsys.readouterr().err
    assert runas.main(["20001", "100"]) == 2
    monkeypatch.setattr(runas.os, "geteuid", lambda: 1000)
    with pytest.raises(PermissionError, match="only root"):
        runas.drop(20001, 100)


def test_lock_down_closes_what_the_grader_cannot_be_given(tmp_path):
    """A file outside the grader's group (an inbound folder set up by hand, without setgid) is closed to
    everyone rather than left readable by the trainees' shared group."""
    import os

    from techday.hub.exchange import lock_down

    if os.geteuid() != 0:
        pytest.skip("giving a file another group needs root")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "nb.ipynb").write_text("{}")
    (sub / "timestamp.txt").write_text("t")
    os.chown(sub, -1, 1500)
    os.chown(sub / "nb.ipynb", -1, 1500)
    os.chown(sub / "timestamp.txt", -1, TRAINEE_GID)
    strays = lock_down(str(sub), 1500)
    assert strays == [str(sub / "timestamp.txt")]
    assert (sub / "nb.ipynb").stat().st_mode & 0o777 == 0o440
    assert (sub / "timestamp.txt").stat().st_mode & 0o777 == 0o600
    assert sub.stat().st_mode & 0o777 == 0o750
