"""Trainees walled off in nbgrader's exchange: each process runs as its own Unix user, as on the day.

The grader (uid 1500) releases, trainees A and B (their own uids) fetch and submit, then B tries
everything a curious or hostile neighbour would try on A's submission and on the course's folder,
knowing A's submission's name (as if it had leaked). With the project's exchange steps
(docker/etc-jupyter/nbgrader_config.py selects techday.hub.exchange) every attempt is refused and the
grader still collects both; with nbgrader's defaults the same attempts succeed, so the test can fail.
A trainee who submits twice at once keeps both submissions; the grader collects the later.

Two attacks go through ``inbound`` itself, which anyone may add to: B plants an entry in A's name with
a later time (nbgrader collects the newest entry of each name, so A would be graded on B's file), and
B, who still owns their own entry after submitting, adds a link to a file only the grader may read (a
collect that follows links hands B the grader's file as their work). The project's collect takes only
entries owned by the uid the accounts file gives each student, and copies no link; nbgrader's collects
B's entry for A and copies the grader's file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from techday.hub.config import hash_password
from tests.uids import (
    GRADER_GID,
    GRADER_UID,
    TRAINEE_GID,
    UID_FIRST,
    attack_code,
    child_env,
    chown_tree,
    runas,
    shared_dir,
    why_not,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "docker" / "etc-jupyter" / "nbgrader_config.py"
COURSE, LAB = "fixture", "lab1"
A, B = ("trainee-a", UID_FIRST + 10), ("trainee-b", UID_FIRST + 11)
LATER = "2099-01-01 00:00:00.000000 UTC"   # a submission time after any real one
PLANTED = "answer = 'planted by trainee-b'"
GRADERS_ONLY = "the grader's eyes only: solutions"

# Run as B: an entry in A's name, later than any of A's, in nbgrader's layout.
PLANT = r"""
import json, os, sys
inbound, name, lab, later, code = sys.argv[1:6]
entry = os.path.join(inbound, f"{name}+{lab}+{later}+planted")
os.mkdir(entry)
nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "x", "metadata": {}, "outputs": [],
                 "source": code}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
open(os.path.join(entry, lab + ".ipynb"), "w").write(json.dumps(nb))
open(os.path.join(entry, "timestamp.txt"), "w").write(later)
print(entry)
"""

# Run as B, on B's own entry after submitting: a link to a file only the grader can read, and a pipe
# (a copy that opens it for reading waits forever).
LINK = r"""
import os, sys
entry, target, pipe = sys.argv[1:4]
os.chmod(entry, 0o750)
os.symlink(target, os.path.join(entry, "solution.ipynb"))
if pipe == "yes":
    os.mkfifo(os.path.join(entry, "stall.fifo"))
"""

@pytest.fixture(scope="module")
def base():
    reason = why_not()
    if reason:
        pytest.skip(f"cannot run as other users: {reason}")
    path = shared_dir("techday-exchange-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Day:
    """One exchange, one course root, three people; ``shipped`` picks the project's config or nbgrader's."""

    def __init__(self, base: Path, shipped: bool, name: str = ""):
        self.base = base / (name or ("techday" if shipped else "nbgrader-default"))
        self.exchange = self.base / "exchange"
        self.course_root = self.base / "course"
        self.config = self.base / "config"
        for d in (self.exchange, self.course_root / "release" / LAB, self.config, self.base / "home"):
            d.mkdir(parents=True)
        self.base.chmod(0o755)
        (self.base / "home").chmod(0o755)
        # The image makes the exchange 1777 (docker/Dockerfile); nbgrader's own guide says 777.
        self.exchange.chmod(0o1777 if shipped else 0o777)
        self.config.chmod(0o755)
        text = f"exec(compile(open({str(SHIPPED)!r}).read(), {str(SHIPPED)!r}, 'exec'))\n"
        if not shipped:
            text += ('c.ExchangeFactory.release_assignment = "nbgrader.exchange.default.ExchangeReleaseAssignment"\n'
                     'c.ExchangeFactory.submit = "nbgrader.exchange.default.ExchangeSubmit"\n')
        if not shipped:
            text += 'c.ExchangeFactory.collect = "nbgrader.exchange.default.ExchangeCollect"\n'
        (self.config / "nbgrader_config.py").write_text(text)
        (self.config / "nbgrader_config.py").chmod(0o644)
        # The hub's accounts file: each trainee's uid (techday hub users writes it).
        self.users = self.config / "users.csv"
        self.users.write_text("username,role,password_hash,uid\n" + "".join(
            f"{name},trainee,{hash_password('x', iterations=1000)},{uid}\n" for name, uid in (A, B)))
        self.users.chmod(0o644)
        # A file only the grader may read, as the course's sources with their solutions are.
        self.secret = self.course_root / "source-solutions.txt"
        self.secret.write_text(GRADERS_ONLY)
        self.secret.chmod(0o600)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 42")])
        nbformat.write(nb, self.course_root / "release" / LAB / f"{LAB}.ipynb")
        (self.course_root / "nbgrader_config.py").write_text("c = get_config()\n")
        chown_tree(self.course_root, GRADER_UID, GRADER_GID)

    def nbgrader(self, who: tuple[str, int] | None, *args: str, wait: bool = True):
        """``nbgrader ARGS`` as the grader (``who`` None, in the course root) or as a trainee (in their home)."""
        name, uid, gid = ("grader", GRADER_UID, GRADER_GID) if who is None else (who[0], who[1], TRAINEE_GID)
        home = self.base / "home" / name
        env = child_env(JUPYTER_CONFIG_PATH=str(self.config), TECHDAY_EXCHANGE=str(self.exchange),
                        TECHDAY_COURSE_ID=COURSE, HOME=str(home), TECHDAY_USERS_FILE=str(self.users))
        if who is not None:
            env["JUPYTERHUB_USER"] = name
        cmd = runas(uid, gid, sys.executable, "-m", "nbgrader", *args, home=str(home))
        if who is not None and not home.exists():
            home.mkdir(mode=0o700)
            os.chown(home, uid, gid)
        cwd = self.course_root if who is None else home
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return self.finish(proc, args) if wait else proc

    @staticmethod
    def finish(proc, args, timeout: float = 240) -> str:
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{out}"
        return out

    def inbound(self) -> Path:
        return self.exchange / COURSE / "inbound"

    def entries(self, name: str) -> list[Path]:
        return sorted(p for p in self.inbound().iterdir() if p.name.startswith(f"{name}+{LAB}+"))

    def attack(self, theirs: Path) -> dict:
        code = attack_code(self.inbound(), theirs, self.exchange / COURSE, f"{LAB}.ipynb")
        cmd = runas(B[1], TRAINEE_GID, sys.executable, "-c", code, home=str(self.base / "home" / B[0]))
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=child_env(), cwd=self.base)
        assert out.returncode == 0, out.stderr
        done = json.loads(out.stdout)
        assert done.pop("uid") == B[1], "the attempts run as trainee B"
        return done

    def run_as(self, who: tuple[str, int], code: str, *args: str) -> str:
        cmd = runas(who[1], TRAINEE_GID, sys.executable, "-c", code, *args, home=str(self.base / "home" / who[0]))
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=child_env(), cwd=self.base)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def attacks_through_inbound(self, pipe: bool) -> Path:
        """B plants an entry in A's name and links the grader's file into B's own entry."""
        planted = Path(self.run_as(B, PLANT, str(self.inbound()), A[0], LAB, LATER, PLANTED))
        assert planted.stat().st_uid == B[1], "B could add an entry in A's name"
        (own,) = self.entries(B[0])
        self.run_as(B, LINK, str(own), str(self.secret), "yes" if pipe else "no")
        return planted

    def collected(self, name: str, file: str = f"{LAB}.ipynb") -> Path:
        return self.course_root / "submitted" / name / LAB / file

    def morning(self, twice: bool = False):
        self.nbgrader(None, "release_assignment", LAB, "--force")
        for who in (A, B):
            self.nbgrader(who, "fetch_assignment", LAB)
        if twice:  # the same trainee presses Submit twice at once
            procs = [self.nbgrader(A, "submit", LAB, wait=False) for _ in range(2)]
            for proc in procs:
                self.finish(proc, ("submit", LAB))
        else:
            self.nbgrader(A, "submit", LAB)
        self.nbgrader(B, "submit", LAB)


def test_a_neighbour_can_do_nothing_to_a_submission_and_the_grader_collects_both(base):
    day = Day(base, shipped=True)
    day.morning(twice=True)

    inbound = day.inbound()
    assert oct(inbound.stat().st_mode & 0o7777) == oct(0o3733), "inbound: setgid, sticky, no listing"
    assert inbound.stat().st_gid == GRADER_GID
    mine = day.entries(A[0])
    assert len(mine) == 2, f"both of A's simultaneous submissions are kept: {mine}"
    for entry in mine:
        assert entry.stat().st_uid == A[1] and entry.stat().st_gid == GRADER_GID
        assert entry.stat().st_mode & 0o007 == 0, f"{entry.name} is closed to others"

    refused = day.attack(mine[0])
    assert all(result != "done" for result in refused.values()), refused
    print("B against A:", refused)

    planted = day.attacks_through_inbound(pipe=True)
    log = day.nbgrader(None, "collect", LAB)
    for name, _ in (A, B):
        assert day.collected(name).is_file(), f"{name} collected"
    stamps = sorted((e / "timestamp.txt").read_text().strip() for e in mine)
    collected = day.collected(A[0], "timestamp.txt").read_text().strip()
    assert collected == stamps[-1], "the later of A's own two submissions is the one graded, not B's plant"
    assert PLANTED not in day.collected(A[0]).read_text(), "B's file is not graded as A's"
    assert f"Not collecting {planted.name}: made by uid {B[1]}, not by {A[0]} (uid {A[1]})" in log, log
    assert not day.collected(B[0], "solution.ipynb").exists(), "no link is followed into the grader's files"
    assert not day.collected(B[0], "stall.fifo").exists()
    assert "left out solution.ipynb (a link)" in log and "left out stall.fifo (not a regular file)" in log, log
    assert len(day.entries(A[0])) == 3, "collecting removes nothing from the exchange"


def test_the_same_attempts_succeed_with_nbgraders_defaults(base):
    """The comparison that shows the test above can fail: nbgrader's own modes leave A's work open."""
    day = Day(base, shipped=False)
    day.morning()
    (theirs,) = day.entries(A[0])
    done = day.attack(theirs)
    print("B against A, nbgrader defaults:", done)
    assert done["list inbound"] != "done", "nbgrader hides the names in both setups"
    for attack in ("read their notebook", "read their secret", "add a file to theirs", "rename theirs",
                   "rename the course folder"):
        assert done[attack] == "done", (attack, done)


def test_nbgraders_collect_grades_a_plant_and_copies_a_link(base):
    """The comparison for the attacks through ``inbound``: nbgrader's own collect is fooled by both."""
    day = Day(base, shipped=False, name="nbgrader-default-collect")
    day.morning()
    day.attacks_through_inbound(pipe=False)   # nbgrader's copy would fail on a pipe, not be fooled
    day.nbgrader(None, "collect", LAB)
    assert PLANTED in day.collected(A[0]).read_text(), "nbgrader grades B's plant as A's work"
    assert day.collected(B[0], "solution.ipynb").read_text() == GRADERS_ONLY, "and copies the linked file"


def test_release_refuses_a_course_folder_a_trainee_made_first(base):
    """The exchange root is open to all: a trainee who makes the course's folder before the first
    release would own what the room fetches. Release stops and says so; nbgrader's would go on."""
    day = Day(base, shipped=True, name="early-trainee")
    made = day.run_as(B, "import os, sys; p = os.path.join(sys.argv[1], sys.argv[2]); os.mkdir(p, 0o777); "
                         "os.chmod(p, 0o777); print(p)", str(day.exchange), COURSE)
    name, uid, gid = "grader", GRADER_UID, GRADER_GID
    cmd = runas(uid, gid, sys.executable, "-m", "nbgrader", "release_assignment", LAB, "--force",
                home=str(day.base / "home" / name))
    out = subprocess.run(cmd, cwd=day.course_root, capture_output=True, text=True, timeout=240,
                         env=child_env(JUPYTER_CONFIG_PATH=str(day.config), TECHDAY_EXCHANGE=str(day.exchange),
                                       TECHDAY_COURSE_ID=COURSE, HOME=str(day.base / "home" / name)))
    assert out.returncode != 0, "release into a trainee's folder must fail"
    assert f"{made} belongs to uid {B[1]}, not to this grader" in out.stdout + out.stderr, out.stdout + out.stderr
    assert not (Path(made) / "outbound").exists(), "nothing was released into it"


PLANT_COURSE = r"""
import os, sys
exchange, course, lab = sys.argv[1:4]
top = os.path.join(exchange, course)
os.makedirs(os.path.join(top, "outbound", lab))
open(os.path.join(top, "outbound", lab, lab + ".ipynb"), "w").write('{"cells": [], "metadata": {}, "nbformat": 4, '
                                                                    '"nbformat_minor": 5}')
inbound = os.path.join(top, "inbound")
os.mkdir(inbound)
for path in (os.path.join(top, "outbound"), os.path.join(top, "outbound", lab)):
    os.chmod(path, 0o755)
os.chmod(top, 0o711)   # others may pass through but not list it: a check that must open it to judge it cannot
os.chmod(inbound, 0o2777)   # anyone's submit can write; every entry takes the trainees' shared group
print(inbound)
"""


@pytest.mark.parametrize("shipped", [True, False], ids=["techday", "nbgrader-default"])
def test_submit_refuses_an_inbound_a_trainee_made_first(base, shipped):
    """Attack: before the first release, trainee B (their own uid) makes the course's folder with a lab in
    ``outbound`` and an ``inbound`` of their own, open to all and setgid in the trainees' group. Trainee A then
    submits: with nbgrader's submit the hand-in lands in B's folder, where B reads it (the wrong answer, shown
    here so the test can fail); the course's submit refuses before writing anything, naming the folder's uid.
    B's course folder is 0711 (passable, not readable): a check that gave up on a folder it could not open
    (the first version of this one, ``open(O_RDONLY)`` failing with EACCES) let the submit write there."""
    day = Day(base, shipped=shipped, name=f"planted-inbound-{'techday' if shipped else 'nbgrader'}")
    inbound = Path(day.run_as(B, PLANT_COURSE, str(day.exchange), COURSE, LAB))
    home = day.base / "home" / A[0]
    home.mkdir(mode=0o700)
    os.chown(home, A[1], TRAINEE_GID)
    day.run_as(A, "import os, sys; os.makedirs(sys.argv[1]); open(os.path.join(sys.argv[1], sys.argv[2]), 'w')"
                  ".write('{}')", str(home / LAB), f"{LAB}.ipynb")
    proc = day.nbgrader(A, "submit", LAB, "--course", COURSE, wait=False)
    out, _ = proc.communicate(timeout=240)
    if not shipped:
        assert proc.returncode == 0, out
        (entry,) = os.listdir(inbound)
        read = day.run_as(B, "import sys; print(open(sys.argv[1]).read())", str(inbound / entry / f"{LAB}.ipynb"))
        assert read == "{}", "B reads A's hand-in in B's own inbound"
        return
    assert proc.returncode != 0, out
    assert "Traceback" not in out and f"{inbound.parent} is a folder of uid {B[1]}" in out, out
    assert os.listdir(inbound) == [], "A's submission was written into B's folder"
