"""A real JupyterHub on 127.0.0.1 for the hub tests (markers ``hub`` and ``browser``).

The hub runs the project's settings (:func:`techday.hub.config.configure`: password-list sign-in, nbgrader
roles, the course service, GPU hand-out, the idle culler) with configurable-http-proxy from npm. A local
process spawner (JupyterHub's SimpleLocalProcessSpawner) stands in for DockerSpawner: every trainee's
server is a process with its own home folder, and nbgrader knows it by its hub user name, as in the
image (docker/etc-jupyter/nbgrader_config.py is the config both read).

Run as root where other users can reach this Python (tests/uids.py), every account's server runs as
that account's own uid from the accounts file and the course service as the grader, as
:func:`techday.hub.config.apply_identity` does in the containers: the exchange then holds each submission by
Unix permissions, as on the day. Elsewhere every process is the test's own user, and the tests that
need separate users skip with the reason.

Loopback only, fixed ports picked free on 127.0.0.1, every process in a session of its own and killed
at teardown (process group, then anything left carrying this hub's marker).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from techday.hub.config import GRADER_GID, GRADER_UID, make_accounts, write_accounts
from techday.localkernel import short_folder
from tests.conftest import FIXTURE_COURSE, ROOT
from tests.uids import (
    child_env,
    chown_tree,
    collect_by_name_config,
    runas,
    shared_dir,
    why_not,
)

LAB = "ok-lab"
COURSE = "fixture"


def proxy_command() -> str | None:
    """configurable-http-proxy: on PATH, or where .ci/run installs it (npm --prefix build/node)."""
    for candidate in (shutil.which("configurable-http-proxy"),
                      ROOT / "build" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"):
        if candidate and Path(candidate).is_file() and shutil.which("node"):
            return str(candidate)
    return None


def hub_missing() -> str | None:
    """Why the hub tests cannot run here, or None."""
    for module in ("jupyterhub", "requests", "tornado"):
        try:
            __import__(module)
        except ImportError:
            return f'{module} is not installed (python -m pip install -e ".[hub]")'
    if not proxy_command():
        return ("configurable-http-proxy not found (npm install --prefix build/node configurable-http-proxy@5, "
                "as .ci/run does; node must be on PATH)")
    return None


def free_port() -> int:
    """A free port on 127.0.0.1 below Linux's ephemeral range (32768 and up), where outgoing connections
    and the spawner's random ports cannot take it between now and the hub's bind."""
    import random

    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1 between 20000 and 32000")


def _kill_marked(marker: str) -> int:
    """SIGKILL every process whose environment carries this hub's marker (servers, kernels, services)."""
    killed = 0
    needle = f"TECHDAY_HUB_TEST={marker}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
        except (OSError, ProcessLookupError):
            continue
    return killed


class Hub:
    """One running hub, its course root, exchange and accounts."""

    def __init__(self, base: Path, trainees: int, gpus: list[str], external_service: bool = False,
                 cull_timeout_s: int = 3600, extra_config: str = "", lang: str | None = None):
        # ``extra_config``: lines appended to the hub's config (a short sign-in window, a small spawn limit).
        # ``lang``: the room's language (the hub's TECHDAY_LANG; None: as the test's own environment says).
        self.extra_config = extra_config
        # Separate users need a base they can pass through (pytest's own folders are 0700).
        self.isolated = why_not() is None
        self.base = base = shared_dir("techday-hub-") if self.isolated else base
        self.marker = uuid.uuid4().hex
        self.pick_ports()
        self.token = secrets.token_hex(16)  # the test's own service token, for the hub's REST API
        self.exchange = base / "exchange"
        self.exchange.mkdir()
        self.exchange.chmod(0o1777)  # as the image makes it (docker/Dockerfile)
        self.course_root = base / "build" / "course"
        self.home = base / "home"
        # Each server's kernel sockets (see AccountSpawner in write_config), on a path where a socket's
        # name fits (techday.localkernel: <account>/kernel-<uuid>-ipc-N below it); open to every account
        # like /tmp, each one's own folder 0700.
        folder = short_folder("tdk-hub-", len("/trainee-000/kernel-") + 36 + len("-ipc-5"))
        assert folder, "no temporary folder short enough for the kernels' Unix sockets"
        self.runtime = Path(folder)
        self.runtime.chmod(0o1777)
        rows = make_accounts(trainees, "trainee", ["teacher"], [])
        write_accounts(rows, base / "accounts")
        self.users_file = base / "accounts" / "users.csv"
        if self.isolated:  # the course service reads the uids (collect), as compose mounts the file
            (base / "accounts").chmod(0o711)
            self.users_file.chmod(0o644)
        self.passwords = {name: password for name, _, password in rows}
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "JUPYTER_CONFIG_PATH": str(ROOT / "docker" / "etc-jupyter"),
            "TECHDAY_COURSE_ID": COURSE,
            "TECHDAY_EXCHANGE": str(self.exchange),
            "TECHDAY_HUB_TEST": self.marker,
            "TECHDAY_USERS_FILE": str(self.users_file),
        }
        if lang is not None:
            self.env["TECHDAY_LANG"] = lang
        if not self.isolated:
            # One Unix user runs everyone here, so no entry is owned by its student's uid: collect by
            # name, as nbgrader does (the uid check is tested where users are separate, as root).
            self.env["JUPYTER_CONFIG_PATH"] = self.single_user_config(base)
        self.gpus = gpus
        self.cull_timeout_s = cull_timeout_s
        # The course service started by the test, as compose's `course` container (not by the hub).
        self.service_token = secrets.token_hex(16) if external_service else ""
        self.service_proc: subprocess.Popen | None = None
        self.proc: subprocess.Popen | None = None
        self.people: list[Person] = []  # their browser sessions close when the hub stops

    @staticmethod
    def single_user_config(base: Path) -> str:
        folder = collect_by_name_config(base / "single-user-config")
        print("hub tests: not root, every process is one Unix user: collect by name (nbgrader's own)")
        return os.pathsep.join([str(folder), str(ROOT / "docker" / "etc-jupyter")])

    def pick_ports(self):
        ports = set()
        while len(ports) < 4:
            ports.add(free_port())
        self.port, self.hub_port, self.api_port, self.service_port = sorted(ports)
        self.url = f"http://127.0.0.1:{self.port}"

    # -------------------------------------------------------------- course
    def build_course(self, built: Path):
        """The instructor's morning: the fixture course built by `techday build` (once per session, in
        ``built``), copied to this hub's course root; then ok-lab is released to the exchange."""
        shutil.copytree(built, self.course_root)
        config = self.course_root / "nbgrader_config.py"
        config.write_text(config.read_text().replace(repr(str(built)), repr(str(self.course_root))))
        if self.isolated:  # the grader image's course root belongs to the grader user
            chown_tree(self.course_root.parent, GRADER_UID, GRADER_GID)
        self.nbgrader("release_assignment", LAB, "--force")

    def nbgrader(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """The grader's command line, in the course root, with the hub's nbgrader settings (as the
        grader user where users are separate)."""
        env = {k: v for k, v in self.env.items() if not k.startswith("JUPYTERHUB_")}
        cmd = [sys.executable, "-m", "nbgrader", *args]
        if self.isolated:
            env = {**child_env(), **{k: env[k] for k in ("JUPYTER_CONFIG_PATH", "TECHDAY_COURSE_ID",
                                                          "TECHDAY_EXCHANGE", "TECHDAY_HUB_TEST",
                                                          "TECHDAY_USERS_FILE")}}
            cmd = runas(GRADER_UID, GRADER_GID, *cmd, home=str(self.base / "grader-cli-home"))
        out = subprocess.run(cmd, cwd=self.course_root, env=env,
                             capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"nbgrader {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
        return out

    # -------------------------------------------------------------- hub
    def write_config(self) -> Path:
        proxy = proxy_command()
        text = f"""
import os, sys
from pathlib import Path
from techday.hub.config import HubSettings, configure

c = get_config()
configure(c, HubSettings(
    course_id={COURSE!r}, users_file=Path({str(self.base / 'accounts' / 'users.csv')!r}),
    exchange=Path({str(self.exchange)!r}), course_root=Path({str(self.course_root)!r}),
    state_dir=Path({str(self.base / 'state')!r}), gpus={self.gpus!r}, gpu_overflow="refuse",
    course_service_port={self.service_port}, cull_timeout_s={self.cull_timeout_s},
    course_service_token={self.service_token!r},
    course_service_url={f"http://127.0.0.1:{self.service_port}" if self.service_token else ""!r}))

# Loopback only.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {self.port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {self.hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.debug = False

# A local process per trainee stands in for DockerSpawner's container; where the test runs as root it
# runs as the uid techday.hub.config.apply_identity gave the account, in a home of its own.
from jupyterhub.spawner import SimpleLocalProcessSpawner
from techday.hub.runas import no_new_privs

import random, socket

class AccountSpawner(SimpleLocalProcessSpawner):
    # Each server's port: below Linux's ephemeral range (32768 and up, where kernels' and outgoing
    # connections' ports come from), in a slice of 32000-32767 of this pytest worker's own (hubs of
    # other workers run at the same time), and never one this hub gave before. JupyterHub's
    # random_port() closes the port it found, so under load two spawns got the same port: the second
    # server could not bind it (port_retries is 0), the hub's readiness check reached the first, and
    # one trainee's requests went to another trainee's server (404 from /user/<other>/).
    given = set()

    async def start(self):
        self.port = self.techday_port()
        return await super().start()

    def techday_port(self):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        first = 32000 + (int(worker[2:] or 0) % 4) * 192
        for _ in range(2000):
            port = random.randrange(first, first + 192)
            if port in AccountSpawner.given:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            AccountSpawner.given.add(port)
            return port
        raise RuntimeError(f"no free port on 127.0.0.1 in {{first}}-{{first + 191}}")

    def get_env(self):
        # Kernels talk to their server over Unix sockets in a folder of this trainee's. Over TCP,
        # jupyter_client picks a kernel's five ports by binding port 0 and closing it, so two servers
        # starting kernels at once got the same port (bind(0) hands out only odd ports here: about
        # 14,000); one kernel did not start, the restarter gave it new ports, and the server went on
        # talking to the other trainee's kernel, which ignored messages signed with another key (the
        # websocket took 180 s to open, then "Nudge: attempt 190", then a ping timeout). DockerSpawner
        # and KubeSpawner give each server a network of its own, so this is the stand-in's problem only.
        env = super().get_env()
        env["JUPYTER_RUNTIME_DIR"] = os.path.join({str(self.runtime)!r}, self.user.name)
        return env

    def make_preexec_fn(self, name):
        uid, gid, home = getattr(self, "techday_uid", None), getattr(self, "techday_gid", None), self.home_dir
        if uid is None or os.geteuid() != 0:
            return super().make_preexec_fn(name)

        def preexec():
            os.makedirs(home, 0o700, exist_ok=True)
            os.chown(home, uid, gid)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            if getattr(self, "techday_no_new_privs", False):  # apply_identity asks, as Docker's option does
                no_new_privs()
            os.chdir(home)
        return preexec

c.JupyterHub.spawner_class = AccountSpawner
c.SimpleLocalProcessSpawner.home_dir_template = {str(self.home / '{username}')!r}
c.Spawner.ip = "127.0.0.1"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--KernelManager.transport=ipc"]  # see AccountSpawner.get_env
if os.geteuid() == 0:
    c.Spawner.args.append("--ServerApp.allow_root=True")
c.Spawner.environment.update({{k: os.environ[k] for k in ("JUPYTER_CONFIG_PATH", "TECHDAY_HUB_TEST", "PATH")}})
c.Spawner.environment["TECHDAY_TIER"] = "cpu"
c.Spawner.http_timeout = 240
c.JupyterHub.cleanup_servers = True   # the test's hub takes its servers with it

# Every process the hub starts carries this hub's marker (found and stopped at teardown).
for service in c.JupyterHub.services:
    service.setdefault("environment", {{}})["TECHDAY_HUB_TEST"] = os.environ["TECHDAY_HUB_TEST"]

# The test's own service: reads users and servers, makes tokens for them.
c.JupyterHub.services.append({{"name": "tester", "api_token": {self.token!r}}})
c.JupyterHub.load_roles.append({{"name": "tester", "services": ["tester"],
    "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users", "access:servers",
               "read:groups"]}})
""" + self.extra_config + "\n"
        path = self.base / "jupyterhub_config.py"
        path.write_text(text)
        return path

    def start(self, timeout: float = 90, attempts: int = 3):
        """Start the hub; on a port taken meanwhile by another program, again on fresh ports."""
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except AssertionError:
                if attempt == attempts - 1 or "Address already in use" not in self.log_tail(200):
                    raise
                self.stop()
                self.pick_ports()

    def _start(self, timeout: float):
        import requests

        config = self.write_config()
        (self.base / "state").mkdir(exist_ok=True)
        self.log = open(self.base / "hub.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)],
                                     cwd=self.base / "state", env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the hub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the hub did not answer in {timeout:.0f} s:\n{self.log_tail()}")

    def start_course_service(self, command: list[str], env: dict[str, str]):
        """Start the course service beside the hub, as the grader where users are separate."""
        env = {**child_env(), **env, "TECHDAY_HUB_TEST": self.marker,
               "JUPYTER_CONFIG_PATH": self.env["JUPYTER_CONFIG_PATH"]}
        if self.isolated:
            command = runas(GRADER_UID, GRADER_GID, *command, home=str(self.base / "grader-home"))
        self.service_log = open(self.base / "course-service.log", "w")  # noqa: SIM115 (closed in stop)
        self.service_proc = subprocess.Popen(command, cwd=self.course_root, env=env, stdout=self.service_log,
                                             stderr=subprocess.STDOUT, start_new_session=True)

    def wait_course_service(self, timeout: float = 180):
        """Until the course service answers on its port (bounded), or says why it stopped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.service_proc.poll() is None, (self.base / "course-service.log").read_text()[-3000:]
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", self.service_port)) == 0:
                    return
            time.sleep(0.3)
        raise AssertionError(f"the course service did not answer in {timeout:.0f} s:\n"
                             + (self.base / "course-service.log").read_text()[-3000:])

    def stop(self):
        for person in self.people:
            person.s.close()
        if self.service_proc and self.service_proc.poll() is None:
            os.killpg(self.service_proc.pid, signal.SIGKILL)
            self.service_proc.wait(timeout=30)
            self.service_log.close()
        if self.proc and self.proc.poll() is None:
            # A few seconds to stop on its own, then everything is killed: nothing is checked after the
            # stop, and the hub's own shutdown (stopping every server it spawned) ran into a 30-second
            # wait on every test that had used it.
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        _kill_marked(self.marker)
        shutil.rmtree(self.runtime, ignore_errors=True)
        if getattr(self, "log", None):
            self.log.close()

    def processes(self, **env: str) -> list[tuple[int, int]]:
        """(pid, real uid) of this hub's processes whose environment holds every ``env`` item, read
        from /proc: from outside the processes, as an admin would look."""
        found = []
        want = [f"{k}={v}".encode() for k, v in {"TECHDAY_HUB_TEST": self.marker, **env}.items()]
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
                status = (proc / "status").read_text()
            except OSError:
                continue
            if all(item in environ for item in want):
                uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
                found.append((int(proc.name), uid))
        return found

    def log_tail(self, lines: int = 60) -> str:
        path = self.base / "hub.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # -------------------------------------------------------------- REST
    def api(self, method: str, path: str, **kw):
        import requests

        r = requests.request(method, f"{self.url}/hub/api{path}", headers={"Authorization": f"token {self.token}"},
                             timeout=30, **kw)
        return r

    def user_model(self, name: str) -> dict:
        r = self.api("GET", f"/users/{name}")
        r.raise_for_status()
        return r.json()

    def wait_ready(self, name: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.user_model(name).get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            time.sleep(0.25)
        raise AssertionError(f"{name}'s server was not ready in {timeout:.0f} s:\n{self.log_tail()}")

    def user_token(self, name: str) -> str:
        r = self.api("POST", f"/users/{name}/tokens", json={"note": "hub test", "expires_in": 3600})
        assert r.status_code in (200, 201), r.text
        return r.json()["token"]


class Person:
    """Someone at a browser: the hub's login form and cookies, then the server's REST API."""

    def __init__(self, hub: Hub, name: str, password: str | None = None):
        import requests

        self.hub, self.name = hub, name
        self.password = hub.passwords.get(name, "") if password is None else password
        self.s = requests.Session()
        self.token: str | None = None
        hub.people.append(self)

    def login(self):
        page = self.s.get(f"{self.hub.url}/hub/login", timeout=30)
        m = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        data = {"username": self.name, "password": self.password, **({"_xsrf": m.group(1)} if m else {})}
        return self.s.post(f"{self.hub.url}/hub/login", data=data, allow_redirects=False, timeout=60)

    def spawn(self):
        """What the browser does after login: the hub's spawn page starts the server."""
        return self.s.get(f"{self.hub.url}/hub/spawn/{self.name}", timeout=120)

    @property
    def base(self) -> str:
        return f"{self.hub.url}/user/{self.name}"

    def rest(self, method: str, path: str, **kw):
        if self.token is None:
            self.token = self.hub.user_token(self.name)
        import requests

        return requests.request(method, f"{self.base}{path}", headers={"Authorization": f"token {self.token}"},
                                timeout=kw.pop("timeout", 120), **kw)

    def run_cell(self, kernel_id: str, code: str, timeout: float = 120) -> dict:
        if self.token is None:
            self.token = self.hub.user_token(self.name)
        return asyncio.run(_execute(f"{self.base}/api/kernels/{kernel_id}/channels".replace("http", "ws", 1),
                                    self.token, code, timeout))


async def _execute(ws_url: str, token: str, code: str, timeout: float) -> dict:
    """One execute_request over the kernel's websocket: stdout, errors and the reply status."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}, connect_timeout=timeout,
                          request_timeout=timeout)
    conn = await asyncio.wait_for(websocket_connect(request), timeout)
    msg_id = uuid.uuid4().hex
    conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out = {"stdout": "", "error": None, "status": None}
    deadline = time.monotonic() + timeout
    idle = False
    try:
        # The reply (shell) and the output (iopub) travel apart: done when both the reply and idle came.
        while out["status"] is None or not idle:
            raw = await asyncio.wait_for(conn.read_message(), max(0.1, deadline - time.monotonic()))
            if raw is None:
                raise AssertionError("the kernel's websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out["stdout"] += msg["content"]["text"]
            elif kind == "error":
                out["error"] = f"{msg['content']['ename']}: {msg['content']['evalue']}"
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                out["status"] = msg["content"]["status"]
    finally:
        # Close the websocket fully before this event loop ends (no socket left for the collector).
        conn.close()
        try:
            while await asyncio.wait_for(conn.read_message(), 5) is not None:
                pass
        except Exception:  # noqa: BLE001 (closing: a timeout or a reset both end here)
            pass
        stream = getattr(getattr(conn, "protocol", None), "stream", None)
        if stream is not None and not stream.closed():
            stream.close()
    return out


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``, from ``variables`` only."""
    def one(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in variables:
            return variables[name]
        if op == ":-":
            return arg
        raise AssertionError(f"compose needs {name}: {arg}")
    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def compose_course(hub: Hub) -> tuple[list[str], dict[str, str]]:
    """compose's `course` command and environment (docker/compose.yaml), moved to this hub's paths and
    loopback ports: the course service as the day runs it, beside the hub. JupyterHub 5.5 (the images'
    and the chart's) gives a service the hub starts itself 10 seconds to answer and stops the hub
    otherwise; the formgrader took longer on a busy 2-core machine."""
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")

    service = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]["course"]
    variables = {"TECHDAY_COURSE_ID": COURSE, "TECHDAY_COURSE_SERVICE_TOKEN": hub.service_token}
    moves = [("http://hub:8081", f"http://127.0.0.1:{hub.hub_port}"), ("0.0.0.0", "127.0.0.1"),
             ("9999", str(hub.service_port)), ("/srv/nbgrader/course", str(hub.course_root)),
             ("/srv/nbgrader/exchange", str(hub.exchange)), ("/home/grader", str(hub.base / "grader-home")),
             ("/srv/jupyterhub/users/users.csv", str(hub.users_file))]

    def move(text: str) -> str:
        text = interpolate(str(text), variables)
        for old, new in moves:
            text = text.replace(old, new)
        return text

    command = [move(part) for part in service["command"]]
    env = {name: move(value) for name, value in service["environment"].items()}
    assert service["user"] == f"{GRADER_UID}:{GRADER_UID}", "compose runs the course service as the grader"
    assert "docker.sock" not in str(service.get("volumes")), "no Docker socket next to the course service"
    assert env["TECHDAY_USERS_FILE"] == str(hub.users_file), "collect knows each student's uid"
    return command, env


@pytest.fixture(scope="session")
def built_course(tmp_path_factory):
    """The fixture course's ok-lab, built with the real `techday build` (source/ and release/); where
    users are separate, in a folder the grader user can read (the course root's settings point here)."""
    isolated = why_not() is None
    base = shared_dir("techday-course-") if isolated else tmp_path_factory.mktemp("course-build")
    src = base / "repo"
    shutil.copytree(FIXTURE_COURSE, src)
    shutil.copytree(ROOT / "grading", src / "grading")
    env = {**os.environ, "TECHDAY_ROOT": str(src), "TECHDAY_BUILD": str(base / "build"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "techday", "build", LAB], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    yield base / "build" / "course"
    if isolated:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def hub_factory(tmp_path_factory, request):
    """Start hubs for a module; every one is stopped at the end, processes and all."""
    reason = hub_missing()
    if reason:
        pytest.skip(f"cannot start a real JupyterHub: {reason}")
    started: list[Hub] = []

    def start(trainees: int = 2, gpus: list[str] | None = None, course: bool = True,
              external_service: bool = False, **settings) -> Hub:
        """The course service runs beside the hub with a token, as compose runs it (`course`): started here
        for a hub with a course, by the test itself with ``external_service``, not at all without a course."""
        hub = Hub(tmp_path_factory.mktemp("hub"), trainees, gpus or [], external_service=True, **settings)
        started.append(hub)
        if course:
            hub.build_course(request.getfixturevalue("built_course"))
        else:
            (hub.course_root / "release").mkdir(parents=True)
        hub.start()
        if course and not external_service:
            hub.start_course_service(*compose_course(hub))
            hub.wait_course_service()
        return hub

    yield start
    for hub in started:
        hub.stop()
        if hub.isolated:  # a folder of its own outside pytest's (other users must reach it)
            shutil.rmtree(hub.base, ignore_errors=True)
