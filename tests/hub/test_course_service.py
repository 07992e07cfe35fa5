"""The course service as compose runs it: beside the hub, as the grader, started from compose's own
`course` command and environment (docker/compose.yaml), on 127.0.0.1.

Catches a compose `course` service that the hub cannot reach or authenticate (a wrong token, service
name, prefix or API URL), a formgrader open to trainees, and a course service running as root.
"""

from __future__ import annotations

import time

import pytest

from tests.hub.conftest import COURSE, Person, compose_course
from tests.uids import GRADER_UID

pytestmark = [pytest.mark.hub, pytest.mark.slow]


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
