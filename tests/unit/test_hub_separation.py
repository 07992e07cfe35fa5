"""What keeps one account from another's work beyond the exchange's modes: the uid each name keeps,
the privileges a server can never gain, and what a server's own token may do at the hub.

Each test names the wrong behaviour it catches; each failed on the code before its fix.
"""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest

from techday.hub.config import (
    UID_FIRST,
    apply_identity,
    make_accounts,
    read_accounts,
    roles,
    write_accounts,
)


def _uids(folder) -> dict[str, int]:
    return {name: a.uid for name, a in read_accounts(folder / "users.csv").items()}


# ------------------------------------------------------------------ a uid is one person's for good


def test_a_reissued_roster_never_hands_a_uid_to_another_name(tmp_path):
    """Caught: ``techday hub users --force`` numbered uids by row order, so adding an instructor (rows
    come staff first) moved every trainee one uid along: trainee-002 got trainee-001's old uid, and with
    it ownership of trainee-001's submissions still in ``inbound`` (read, change, remove them) and of
    the files in trainee-001's home. The exchange's walls are uids: a uid must never change hands."""
    write_accounts(make_accounts(3, "trainee", ["kim"], []), tmp_path)
    first = _uids(tmp_path)
    write_accounts(make_accounts(3, "trainee", ["kim", "lee"], []), tmp_path, force=True)
    second = _uids(tmp_path)
    for name, uid in first.items():
        assert second[name] == uid, f"{name} kept its uid ({uid} -> {second[name]})"
    assert second["lee"] not in first.values(), "a new name gets a uid nobody had"


def test_a_uid_stays_retired_when_its_name_leaves_the_roster(tmp_path):
    """Caught: a name dropped from the roster freed its uid for the next new name, who then owned the
    dropped trainee's entries in ``inbound``."""
    write_accounts(make_accounts(3, "trainee", [], []), tmp_path)
    first = _uids(tmp_path)
    write_accounts(make_accounts(2, "trainee", [], []), tmp_path, force=True, remove=True)  # trainee-003 leaves
    write_accounts(make_accounts(2, "trainee", ["new"], []), tmp_path, force=True)  # someone new comes
    third = _uids(tmp_path)
    assert third["new"] not in first.values(), f"trainee-003's uid {first['trainee-003']} went to 'new'"
    assert third["trainee-001"] == first["trainee-001"]


def test_the_first_roster_still_numbers_from_uid_first(tmp_path):
    write_accounts(make_accounts(2, "trainee", ["kim"], []), tmp_path)
    assert _uids(tmp_path) == {"kim": UID_FIRST, "trainee-001": UID_FIRST + 1, "trainee-002": UID_FIRST + 2}
    with open(tmp_path / "users.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == ["username", "role", "password_hash", "uid"], "the hub's file is unchanged"


# ------------------------------------------------------------------ a server's token at the hub


# What a server's own token (JUPYTERHUB_API_TOKEN, in every kernel and terminal of that server) may do:
# JupyterHub's default (its activity, its own server) and the course list's look-up of the course
# service. Anything else is a power over other accounts that code in the server inherits.
SERVER_SCOPES = {"users:activity!user", "access:servers!server", "list:services", "read:services!service=c101",
                 "access:services!service=c101"}


def test_a_servers_token_holds_only_what_a_server_needs():
    """Caught: the ``server`` role was ``inherit``: a server's token held every scope of its owner. A
    trainee's notebook run by an admin in the admin's own server (an instructor checking "why does mine
    fail?") then read that token from its environment and held the hub's admin scopes (tokens for any
    user, so every trainee's server and files; stopping and deleting users); run by an instructor, the
    formgrader's (every submission, the solutions). An allow-list now: the server role names its scopes,
    and JupyterHub intersects them with the owner's (a trainee's server gets no formgrader access)."""
    server = {r["name"]: r for r in roles("c101")}["server"]
    assert "inherit" not in server["scopes"]
    assert set(server["scopes"]) <= SERVER_SCOPES, sorted(set(server["scopes"]) - SERVER_SCOPES)
    assert {"list:services", "read:services!service=c101"} <= set(server["scopes"]), "the course list still works"


def test_an_admins_server_token_expands_to_no_admin_scope():
    """The same, through JupyterHub's own roles: what an admin's server token is granted (``inherit``:
    all of the admin role; else the server role's scopes, which JupyterHub intersects with the owner's)."""
    jh_roles = pytest.importorskip("jupyterhub.roles")
    scopes = pytest.importorskip("jupyterhub.scopes")
    import warnings

    admin = {r["name"]: r for r in jh_roles.get_default_roles()}["admin"]["scopes"]
    server = {r["name"]: r for r in roles("c101")}["server"]["scopes"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "!user" and "!server" filters are kept as they are
        granted = set(admin) if "inherit" in server else set(scopes.expand_scopes(set(server))) | set(server)
    powerful = sorted(s for s in granted if s.split(":")[0] in ("admin", "admin-ui", "tokens", "proxy", "shutdown",
                      "shares") or s in ("access:servers", "access:services", "read:services"))
    assert not powerful, f"an admin's server token could use {powerful}"


# ------------------------------------------------------------------ no server gains privileges


def _spawner(**attrs):
    return SimpleNamespace(user=SimpleNamespace(name="trainee-001"), environment={}, **attrs)


def test_a_trainees_container_can_gain_no_privilege():
    """Caught: a trainee's container kept Docker's default capability bounding set and could gain
    privileges through any setuid or file-capability program of the image (``su``, ``mount``,
    ``newgrp``, ``passwd`` in the base image; a flaw in one, or one added later, is root in the
    container: read and change every submission in the shared exchange). The kernel now refuses any
    gain, whatever the image holds: no-new-privileges, and no capability in the bounding set."""
    docker = _spawner(extra_create_kwargs={}, extra_host_config={"shm_size": "2g", "security_opt": ["label=x"]})
    apply_identity(docker, 20001)
    host = docker.extra_host_config
    assert "no-new-privileges:true" in host["security_opt"] and "label=x" in host["security_opt"]
    assert host["cap_drop"] == ["ALL"] and host["shm_size"] == "2g"

    kube = _spawner(fs_gid=100, uid=None, gid=None, allow_privilege_escalation=None, container_security_context={})
    apply_identity(kube, 20001)
    assert kube.allow_privilege_escalation is False
    assert kube.container_security_context["capabilities"]["drop"] == ["ALL"]
    assert kube.container_security_context["allowPrivilegeEscalation"] is False

    local = _spawner()
    apply_identity(local, 20001)
    assert local.techday_no_new_privs is True


def test_the_charts_pods_can_gain_no_privilege():
    """The chart's spawner gets its uid from the values file's own hook, not from apply_identity."""
    from tests.conftest import ROOT

    text = (ROOT / "docker" / "z2jh-values.yaml").read_text(encoding="utf-8")
    assert "c.KubeSpawner.allow_privilege_escalation = False" in text
    assert '"drop": ["ALL"]' in text


def test_the_charts_server_role_is_the_same_allow_list():
    """Caught: the chart's own ``loadRoles`` gave the server role ``[inherit]`` too."""
    yaml = pytest.importorskip("yaml")
    from tests.conftest import ROOT

    values = yaml.safe_load((ROOT / "docker" / "z2jh-values.yaml").read_text(encoding="utf-8"))
    server = values["hub"]["loadRoles"]["server"]["scopes"]
    assert set(server) == {s.replace("c101", "techday") for s in SERVER_SCOPES}, server


def test_a_process_run_as_a_trainee_gains_nothing_from_a_setuid_program(tmp_path):
    """Outside the process: the kernel, not the program, refuses. A setuid-root copy of this Python
    (standing in for any setuid program of an image) run through ``techday.hub.runas`` as a trainee
    used to run with euid 0; with no_new_privs set before the exec it runs as the trainee."""
    import os
    import shutil
    import subprocess
    import sys

    from tests.uids import runas, shared_dir

    if os.geteuid() != 0:
        pytest.skip("making a setuid-root program needs root")
    where = shared_dir("techday-suid-")
    try:
        prog = where / "py"
        shutil.copy(os.path.realpath(sys.executable), prog)
        os.chmod(prog, 0o4755)
        out = subprocess.run(runas(20050, 100, str(prog), "-S", "-c", "import os; print(os.getuid(), os.geteuid())"),
                             capture_output=True, text=True, timeout=60, cwd=str(where))
        if "nosuid" in out.stderr:
            pytest.skip(out.stderr)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["20050", "20050"], f"uid, euid: {out.stdout} (0 is root)"
    finally:
        shutil.rmtree(where, ignore_errors=True)


# ------------------------------------------------------------------ one origin per server


def _hub_config(tmp_path, extra_settings: str = ""):
    from techday.hub.config import write_accounts as _write

    _write(make_accounts(2, "trainee", ["kim"], []), tmp_path)
    (tmp_path / "exchange").mkdir()
    (tmp_path / "exchange").chmod(0o1777)
    (tmp_path / "course" / "release" / "ok-lab").mkdir(parents=True)
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        "from pathlib import Path\nfrom techday.hub.config import HubSettings, configure\nc = get_config()\n"
        f"configure(c, HubSettings(course_id='c101', users_file=Path({str(tmp_path / 'users.csv')!r}), "
        f"exchange=Path({str(tmp_path / 'exchange')!r}), course_root=Path({str(tmp_path / 'course')!r}), "
        f"state_dir=Path({str(tmp_path / 'state')!r}), gpus=['0']{extra_settings}))\n")
    return path


def test_check_says_when_every_server_shares_the_hubs_origin(tmp_path):
    """Caught: nothing said that every trainee's server is served from the hub's own origin
    (``/user/<name>/``). A trainee controls everything their server answers (a handler of their own, or
    a server of their own on its port), so a page of trainee B's that trainee A or an admin opens runs
    B's script on A's origin: it can frame ``/user/trainee-a/lab``, read its XSRF token and use A's files
    and kernels (JupyterHub's own advice: subdomains). ``techday hub check`` now fails the rehearsal
    on it, with the fix; ``TECHDAY_SUBDOMAIN_HOST`` gives each server an origin of its own."""
    pytest.importorskip("jupyterhub")
    from techday.hub.config import check

    found = {f.check: f for f in check(_hub_config(tmp_path), gpu_probe=lambda: (["0"], ""))}
    shared = found["servers on origins of their own"]
    assert not shared.ok and "TECHDAY_SUBDOMAIN_HOST" in shared.fix, shared


def test_a_subdomain_host_gives_each_server_its_own_origin(tmp_path):
    pytest.importorskip("jupyterhub")
    from traitlets.config import Config

    from techday.hub.config import HubSettings, check, configure

    c = Config()
    settings = HubSettings(course_id="c101", users_file=tmp_path / "users.csv", subdomain_host="https://hub.example.org")
    configure(c, settings)
    assert c.JupyterHub.subdomain_host == "https://hub.example.org"
    found = {f.check: f for f in check(_hub_config(tmp_path, ", subdomain_host='https://hub.example.org'"),
                                       gpu_probe=lambda: (["0"], ""))}
    assert found["servers on origins of their own"].ok
    import os

    os.environ["TECHDAY_SUBDOMAIN_HOST"] = "https://hub.example.org"
    try:
        assert HubSettings.from_env(course_id="c101").subdomain_host == "https://hub.example.org"
    finally:
        del os.environ["TECHDAY_SUBDOMAIN_HOST"]


# ------------------------------------------------------------------ names the exchange can hold apart


@pytest.mark.parametrize("name, why", [
    ("kim\u200b", "zero-width space: prints as kim, another account, uid and exchange entries"),
    ("k\u0456m", "Cyrillic i: prints as kim"),
    ("ｋｉｍ", "full-width letters: NFKC makes them kim"),
    ("kim minsu", "a space"),
    ("kim+lab1", "'+' separates nbgrader's entry name: kim+lab1+<lab>+<time>"),
    ("..", "a path: submitted/../<lab> is the course root's own folder"),
    (".kim", "a hidden folder name"),
    ("\u1100\u1161", "Hangul in decomposed form (NFD): the same syllable as 가, another account"),
])
def test_an_account_name_that_could_pass_for_another_or_for_a_path_is_refused(tmp_path, name, why):
    """Caught: ``read_accounts`` took any name a hand-edited line gave (only lower-cased and stripped),
    so two accounts could print alike on cards, the formgrader and certificates (with two uids, two
    homes and two sets of exchange entries), or a name could be a path or split nbgrader's entry names.
    An allow-list now, the one ``techday hub users`` issues from, plus Hangul syllables (NFC)."""
    from techday.hub.config import UsersFileError, hash_password

    path = tmp_path / "users.csv"
    path.write_text("username,role,password_hash,uid\n"
                    f"{name},trainee,{hash_password('x', iterations=1000)},{UID_FIRST}\n", encoding="utf-8")
    with pytest.raises(UsersFileError, match="not a username"):
        read_accounts(path)


def test_the_names_issued_and_korean_names_are_kept(tmp_path):
    from techday.hub.config import hash_password

    path = tmp_path / "users.csv"
    path.write_text("username,role,password_hash,uid\n" + "".join(
        f"{name},trainee,{hash_password('x', iterations=1000)},{UID_FIRST + i}\n"
        for i, name in enumerate(["trainee-001", "kim.minsu", "lee_2", "김민수", "Park"])), encoding="utf-8")
    assert sorted(read_accounts(path)) == ["kim.minsu", "lee_2", "park", "trainee-001", "김민수"]
