"""Trainees walled off in nbgrader's exchange: each process runs as its own Unix user, as on the day.

The grader (uid 1500) releases, trainees A and B (their own uids) fetch and submit, then B tries
everything a curious or hostile neighbour would try on A's submission and on the course's folder,
knowing A's submission's name (as if it had leaked). With the project's exchange steps
(docker/etc-jupyter/nbgrader_config.py selects techday.hubexchange) every attempt is refused and the
grader still collects both; with nbgrader's defaults the same attempts succeed, so the test can fail.
A trainee who submits twice at once keeps both submissions; the grader collects the later.
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

from tests.uids import (GRADER_GID, GRADER_UID, TRAINEE_GID, UID_FIRST, attack_code, child_env, chown_tree, runas,
                        shared_dir, why_not)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "docker" / "etc-jupyter" / "nbgrader_config.py"
COURSE, LAB = "fixture", "lab1"
A, B = ("trainee-a", UID_FIRST + 10), ("trainee-b", UID_FIRST + 11)

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

    def __init__(self, base: Path, shipped: bool):
        self.base = base / ("techday" if shipped else "nbgrader-default")
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
        (self.config / "nbgrader_config.py").write_text(text)
        (self.config / "nbgrader_config.py").chmod(0o644)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 42")])
        nbformat.write(nb, self.course_root / "release" / LAB / f"{LAB}.ipynb")
        (self.course_root / "nbgrader_config.py").write_text("c = get_config()\n")
        chown_tree(self.course_root, GRADER_UID, GRADER_GID)

    def nbgrader(self, who: tuple[str, int] | None, *args: str, wait: bool = True):
        """``nbgrader ARGS`` as the grader (``who`` None, in the course root) or as a trainee (in their home)."""
        name, uid, gid = ("grader", GRADER_UID, GRADER_GID) if who is None else (who[0], who[1], TRAINEE_GID)
        home = self.base / "home" / name
        env = child_env(JUPYTER_CONFIG_PATH=str(self.config), TECHDAY_EXCHANGE=str(self.exchange),
                        TECHDAY_COURSE_ID=COURSE, HOME=str(home))
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

    day.nbgrader(None, "collect", LAB)
    for name, _ in (A, B):
        assert (day.course_root / "submitted" / name / LAB / f"{LAB}.ipynb").is_file(), f"{name} collected"
    stamps = sorted((e / "timestamp.txt").read_text().strip() for e in mine)
    collected = (day.course_root / "submitted" / A[0] / LAB / "timestamp.txt").read_text().strip()
    assert collected == stamps[-1], "the later of two submissions is the one graded"
    assert len(day.entries(A[0])) == 2, "collecting removes nothing from the exchange"


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
