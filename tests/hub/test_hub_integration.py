"""A trainee's morning and an instructor's afternoon on a real JupyterHub (127.0.0.1 only).

Sign in with the card's password (a wrong one is refused), the server spawns with its own GPU id, the
released lab comes through nbgrader's exchange, a cell runs in a real kernel, the notebook is submitted;
the instructor reaches the course's formgrader (a trainee cannot), collects, autogrades and exports the
grade. A second sign-in, and a server restart, keep the trainee's work.
"""

import csv
import json
import time

import pytest

from tests.hub.conftest import COURSE, LAB, Person
from tests.uids import GRADER_UID, attack_code, why_not

pytestmark = [pytest.mark.hub, pytest.mark.slow]

SOLUTION = "def double(x):\n    return 2 * x\n"


@pytest.fixture(scope="module")
def hub(hub_factory):
    return hub_factory(trainees=2, gpus=["0", "1"])


def signed_in(hub, name: str) -> Person:
    """``name`` signed in, with a running server (a running one is joined, not restarted)."""
    person = Person(hub, name)
    assert person.login().status_code == 302
    person.spawn()
    hub.wait_ready(name)
    return person


def fetch_lab(person: Person) -> dict:
    fetched = person.rest("POST", "/assignments/fetch", data={"course_id": COURSE, "assignment_id": LAB}).json()
    assert fetched["success"], fetched
    return fetched


def submit_solution(person: Person, nb: dict) -> dict:
    """The trainee writes the answer into the exercise cell, saves, submits."""
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "double":
            cell["source"] = SOLUTION
    saved = person.rest("PUT", f"/api/contents/{LAB}/{LAB}.ipynb", json={"type": "notebook", "content": nb})
    assert saved.status_code == 200, saved.text
    submitted = person.rest("POST", "/assignments/submit", data={"course_id": COURSE, "assignment_id": LAB}).json()
    assert submitted["success"], submitted
    return submitted


def kims_submission(hub) -> Person:
    """trainee-001 signed in, the solved lab in the home folder and submitted: what the submit test leaves
    behind, made here when a later test runs without it (alone, with -k, or on another xdist worker,
    which starts a hub of its own), so that no test depends on which tests ran before it."""
    kim = signed_in(hub, "trainee-001")
    if not sorted((hub.exchange / COURSE / "inbound").glob(f"trainee-001+{LAB}+*")):
        fetch_lab(kim)
        submit_solution(kim, kim.rest("GET", f"/api/contents/{LAB}/{LAB}.ipynb").json()["content"])
    return kim


def test_wrong_password_is_refused_clearly(hub):
    r = Person(hub, "trainee-001", password="not-my-password").login()
    assert r.status_code == 403
    assert "Invalid username or password" in r.text
    assert "Tech Day card" in r.text, "the login page says where the password comes from"
    r = Person(hub, "stranger", password="anything").login()
    assert r.status_code == 403, "no open sign-up: an unknown name is refused the same way"
    assert hub.user_model("trainee-001").get("servers") in ({}, None)


def test_trainee_fetches_runs_submits_and_the_instructor_grades(hub):
    kim = Person(hub, "trainee-001")
    r = kim.login()
    assert r.status_code == 302, r.text[:500]
    t0 = time.monotonic()
    kim.spawn()
    hub.wait_ready("trainee-001")
    print(f"spawn to ready: {time.monotonic() - t0:.1f} s")
    model = hub.user_model("trainee-001")
    assert f"nbgrader-{COURSE}" in model["groups"]

    # The released lab, through the Assignments tab's API (nbgrader's assignment_list extension).
    listed = kim.rest("GET", "/assignments", params={"course_id": COURSE}).json()
    assert listed["success"] and [a["assignment_id"] for a in listed["value"]] == [LAB], listed
    fetched = fetch_lab(kim)
    assert fetched["value"][0]["status"] == "fetched", fetched
    nb = kim.rest("GET", f"/api/contents/{LAB}/{LAB}.ipynb").json()["content"]
    assert "raise NotImplementedError()" in json.dumps(nb), "the trainee gets the release, not the solution"

    # A real kernel in the trainee's server: the lab's setup cell, then the trainee's answer.
    kernel = kim.rest("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    setup = next(c for c in nb["cells"] if c["cell_type"] == "code" and "techday.setup" in "".join(c["source"]))
    out = kim.run_cell(kernel, "tier, scale = 'cpu', 'ci'\n" + "".join(setup["source"])
                       + "\nimport os; print('GPU handed out:', os.environ['TECHDAY_GPU'])")
    assert out["status"] == "ok", out
    assert "GPU handed out: 0" in out["stdout"], out["stdout"]
    assert "cpu" in out["stdout"].lower(), "the tier banner says which tier ran"
    out = kim.run_cell(kernel, SOLUTION + "print(double(21))")
    assert out == {"stdout": "42\n", "error": None, "status": "ok"}

    submitted = submit_solution(kim, nb)
    assert any(s["status"] == "submitted" for s in submitted["value"]), submitted

    # The instructor: the formgrader service is theirs, not the trainee's.
    teacher = Person(hub, "teacher")
    assert teacher.login().status_code == 302
    assert f"formgrade-{COURSE}" in hub.user_model("teacher")["groups"]
    page = teacher.s.get(f"{hub.url}/services/{COURSE}/formgrader", timeout=120)
    assert page.status_code == 200 and "formgrader" in page.text.lower(), page.status_code
    denied = kim.s.get(f"{hub.url}/services/{COURSE}/formgrader", timeout=120)
    assert denied.status_code == 403, denied.status_code
    service = hub.processes(JUPYTERHUB_SERVICE_NAME=COURSE)
    assert service, "the course service runs"
    if hub.isolated:  # the hub runs as root here: the formgrader must not
        assert {uid for _, uid in service} == {GRADER_UID}, f"course service (pid, uid): {service}"

    # Collect, autograde and export, as the grader does in the course service's terminal.
    hub.nbgrader("collect", LAB)
    assert (hub.course_root / "submitted" / "trainee-001" / LAB / f"{LAB}.ipynb").is_file()
    hub.nbgrader("autograde", LAB, "--force")
    hub.nbgrader("export", "--to", str(hub.course_root / "grades.csv"))
    rows = list(csv.DictReader((hub.course_root / "grades.csv").read_text().splitlines()))
    grade = [r for r in rows if r["student_id"] == "trainee-001" and r["assignment"] == LAB]
    assert grade and float(grade[0]["score"]) == float(grade[0]["max_score"]) == 2.0, rows


def test_second_login_and_restart_keep_the_work(hub):
    """Same user, new browser; then the server stops and starts again."""
    kims_submission(hub)
    first = hub.user_model("trainee-001")["servers"][""]
    again = Person(hub, "trainee-001")
    assert again.login().status_code == 302
    again.spawn()
    server = hub.wait_ready("trainee-001")
    assert server["started"] == first["started"], "a second login joins the running server"
    nb = again.rest("GET", f"/api/contents/{LAB}/{LAB}.ipynb").json()["content"]
    assert "return 2 * x" in json.dumps(nb)

    assert hub.api("DELETE", "/users/trainee-001/server").status_code in (202, 204)
    deadline = time.monotonic() + 60
    while hub.user_model("trainee-001")["servers"] and time.monotonic() < deadline:
        time.sleep(0.3)
    again.spawn()
    hub.wait_ready("trainee-001")
    again.token = None
    nb = again.rest("GET", f"/api/contents/{LAB}/{LAB}.ipynb").json()["content"]
    assert "return 2 * x" in json.dumps(nb), "the home folder outlives the server"


def test_trainees_cannot_reach_each_others_submissions(hub):
    """trainee-002, told where trainee-001's submission lies, tries to list, read, overwrite, rename and
    delete it from a kernel of its own server; the instructor collects both."""
    if not hub.isolated:
        pytest.skip(f"every server runs as the test's own user here: {why_not()}")
    kims_submission(hub)
    uids = {r["username"]: int(r["uid"]) for r in csv.DictReader(
        (hub.base / "accounts" / "users.csv").read_text().splitlines())}
    inbound = hub.exchange / COURSE / "inbound"
    (theirs,) = sorted(inbound.glob(f"trainee-001+{LAB}+*"))
    assert theirs.stat().st_uid == uids["trainee-001"], "the submission belongs to its trainee's own uid"

    lee = signed_in(hub, "trainee-002")
    kernel = lee.rest("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    out = lee.run_cell(kernel, attack_code(inbound, theirs, hub.exchange / COURSE, f"{LAB}.ipynb"))
    assert out["status"] == "ok", out
    done = json.loads(out["stdout"].strip().splitlines()[-1])
    print("trainee-002 against trainee-001:", done)
    assert done.pop("uid") == uids["trainee-002"], "each server runs as its own account's uid"
    assert done and all(result != "done" for result in done.values()), done

    fetch_lab(lee)
    submitted = lee.rest("POST", "/assignments/submit", data={"course_id": COURSE, "assignment_id": LAB}).json()
    assert submitted["success"], submitted
    hub.nbgrader("collect", LAB)
    for name in ("trainee-001", "trainee-002"):
        assert (hub.course_root / "submitted" / name / LAB / f"{LAB}.ipynb").is_file(), f"{name} collected"


def test_gpus_are_not_shared(hub):
    """Two GPUs listed, three servers asked for: the third is refused, not doubled up."""
    signed_in(hub, "trainee-001")
    signed_in(hub, "trainee-002")
    teacher = Person(hub, "teacher")
    assert teacher.login().status_code == 302
    r = teacher.spawn()
    held = json.loads((hub.base / "state" / "gpus.json").read_text())["holders"]
    assert sorted(held.values()) == ["0", "1"] and "teacher" not in held, held
    assert "Ask an instructor" in r.text or "in use" in hub.log_tail(200), r.text[:300]
    assert not hub.user_model("teacher")["servers"], "no server without a device of its own"


def test_a_trainee_cannot_act_as_another_with_anything_they_hold(hub):
    """trainee-002, hostile, with what a trainee has: their own password, their browser's cookie, and the
    token in their own kernel's environment (JUPYTERHUB_API_TOKEN). With none of them can they sign in
    as trainee-001, use or stop trainee-001's server, have the hub make a token for
    anyone, list the accounts, or open the formgrader. Every answer is read; nothing is assumed."""
    import requests

    signed_in(hub, "trainee-001")
    lee = signed_in(hub, "trainee-002")
    r = Person(hub, "trainee-001", password=hub.passwords["trainee-002"]).login()
    assert r.status_code == 403, "another's name with one's own password"
    r = Person(hub, "TRAINEE-001", password=hub.passwords["trainee-002"]).login()
    assert r.status_code == 403, "the same name in capitals"

    kernel = lee.rest("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    out = lee.run_cell(kernel, "import os; print(os.environ['JUPYTERHUB_API_TOKEN'])")
    stolen = out["stdout"].strip()
    assert out["status"] == "ok" and len(stolen) > 20, out
    auth = {"Authorization": f"token {stolen}"}
    answers = {
        "cookie on their server": lee.s.get(f"{hub.url}/user/trainee-001/api/contents", timeout=60,
                                            allow_redirects=False).status_code,
        "token on their server": requests.get(f"{hub.url}/user/trainee-001/api/contents", headers=auth,
                                              timeout=60).status_code,
        "token on their kernels": requests.post(f"{hub.url}/user/trainee-001/api/kernels", headers=auth,
                                                json={"name": "python3"}, timeout=60).status_code,
        "token reads their account": requests.get(f"{hub.url}/hub/api/users/trainee-001", headers=auth,
                                                  timeout=60).status_code,
        "token mints a token for them": requests.post(f"{hub.url}/hub/api/users/trainee-001/tokens", headers=auth,
                                                      json={}, timeout=60).status_code,
        "token mints a token for itself": requests.post(f"{hub.url}/hub/api/users/trainee-002/tokens",
                                                        headers=auth, json={}, timeout=60).status_code,
        "token lists the accounts": requests.get(f"{hub.url}/hub/api/users", headers=auth, timeout=60).status_code,
        "token stops their server": requests.delete(f"{hub.url}/hub/api/users/trainee-001/server", headers=auth,
                                                    timeout=60).status_code,
        "token opens the formgrader": requests.get(f"{hub.url}/services/{COURSE}/formgrader", headers=auth,
                                                   timeout=60, allow_redirects=False).status_code,
    }
    print("trainee-002 as trainee-001:", answers)
    assert all(code in (302, 401, 403, 404) for code in answers.values()), answers
    assert answers["cookie on their server"] != 200 and answers["token on their server"] in (401, 403, 404)
    assert hub.user_model("trainee-001")["servers"], "trainee-001's server still runs"


def test_no_secret_reaches_the_hubs_logs(hub):
    """The hub's and the course service's logs (``docker compose logs``, read by whoever runs the day,
    often pasted into a chat for help) hold no password of a card (a wrong one typed included), no
    server's or service's token and no cookie secret. Not covered: a password typed into the username
    field, which JupyterHub itself logs as the name that failed."""
    kim = signed_in(hub, "trainee-001")
    assert Person(hub, "trainee-002", password=hub.passwords["trainee-001"]).login().status_code == 403
    kernel = kim.rest("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    out = kim.run_cell(kernel, "import os; print(os.environ['JUPYTERHUB_API_TOKEN'])")
    assert out["status"] == "ok", out
    secrets = {f"{name}'s password": password for name, password in hub.passwords.items()}
    secrets["trainee-001's server token"] = out["stdout"].strip()
    secrets["the course service's token"] = hub.service_token
    secrets["the cookie secret"] = (hub.base / "state" / "jupyterhub_cookie_secret").read_text().strip()
    logs = {name: (hub.base / name).read_text(errors="replace") for name in ("hub.log", "course-service.log")
            if (hub.base / name).exists()}
    assert "hub.log" in logs
    found = [f"{what} in {name}" for what, secret in secrets.items() if secret for name, text in logs.items()
             if secret in text]
    assert not found, found
