"""The course service as compose runs it: beside the hub, as the grader, started from compose's own
`course` command and environment (docker/compose.yaml), on 127.0.0.1.

Catches a compose `course` service that the hub cannot reach or authenticate (a wrong token, service
name, prefix or API URL), a formgrader open to trainees, and a course service running as root.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.hub.conftest import COURSE, Person
from tests.uids import GRADER_UID

pytestmark = [pytest.mark.hub, pytest.mark.slow]


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


def compose_course(hub) -> tuple[list[str], dict[str, str]]:
    """compose's `course` command and environment, moved to this hub's paths and loopback ports."""
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")
    from tests.conftest import ROOT

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


@pytest.fixture(scope="module")
def hub(hub_factory):
    return hub_factory(trainees=1, external_service=True)


def test_the_course_service_from_compose_serves_instructors_only(hub):
    command, env = compose_course(hub)
    hub.start_course_service(command, env)

    teacher = Person(hub, "teacher")
    assert teacher.login().status_code == 302
    deadline, page = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        page = teacher.s.get(f"{hub.url}/services/{COURSE}/formgrader", timeout=60)
        if page.status_code == 200:
            break
        assert hub.service_proc.poll() is None, (hub.base / "course-service.log").read_text()[-3000:]
        time.sleep(0.5)
    assert page is not None and page.status_code == 200 and "formgrader" in page.text.lower(), \
        (page.status_code if page is not None else None, (hub.base / "course-service.log").read_text()[-3000:])

    kim = Person(hub, "trainee-001")
    assert kim.login().status_code == 302
    assert kim.s.get(f"{hub.url}/services/{COURSE}/formgrader", timeout=60).status_code == 403

    running = hub.processes(JUPYTERHUB_SERVICE_NAME=COURSE)
    assert running, "the course service is running"
    if hub.isolated:
        assert {uid for _, uid in running} == {GRADER_UID}, running
