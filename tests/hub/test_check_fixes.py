"""The fixes ``techday hub check`` and the exchange print are pasted by an admin under pressure, as root:
each is run here as printed, and must lose nobody's work.

A course folder in the exchange that a trainee's account made before the first release is refused (its
maker controls what the room fetches). But everyone may already have submitted into it: nbgrader's
submit needs only an ``inbound`` folder that exists, and the folder's maker can make that too.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from techday.hub.config import UID_FIRST, check, make_accounts, write_accounts
from techday.hub.exchange import ExchangeReleaseAssignment

pytest.importorskip("jupyterhub", reason='the hub extra is not installed (python -m pip install -e ".[hub]")')

MAKER, OTHER = UID_FIRST + 3, UID_FIRST + 4


def planted_course(tmp_path):
    """An exchange whose course folder (and inbound) trainee MAKER made, with OTHER's submission inside."""
    exchange = tmp_path / "exchange"
    entry = exchange / "c101" / "inbound" / "trainee-002+lab1+2026-01-01 10:00:00.000000 UTC+abc"
    entry.mkdir(parents=True)
    exchange.chmod(0o1777)
    (entry / "lab1.ipynb").write_text('{"answer": "two hours of work"}')
    for path in (exchange / "c101", exchange / "c101" / "inbound"):
        os.chown(path, MAKER, 100)
    os.chown(entry, OTHER, 100)
    os.chown(entry / "lab1.ipynb", OTHER, 100)
    return exchange, entry


def pasted(fix: str, cwd) -> None:
    """The fix's command, as an admin pastes it (``fix: <command> and <what to do next>``)."""
    command = fix.split(" and release again")[0].split("(")[-1].rstrip(")").removeprefix("as root: ")
    assert command.startswith(("mv ", "rm ")), f"no command to paste in: {fix}"
    run = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


@pytest.fixture
def root_only():
    if os.geteuid() != 0:
        pytest.skip(f"folders owned by other uids need root to make (this is uid {os.geteuid()})")


def test_the_checks_fix_for_a_trainees_course_folder_keeps_the_submissions_in_it(tmp_path, root_only):
    """Caught: the fix was ``rm -rf <exchange>/<course>``: pasted, it deleted every submission the room
    had made into that folder, without a word."""
    from tests.unit.test_hub import _by_check, _config_file

    write_accounts(make_accounts(2, "trainee", ["kim"], []), tmp_path)
    exchange, entry = planted_course(tmp_path)
    work = entry.joinpath("lab1.ipynb").read_text()
    found = _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))["course folder the grader's"]
    assert not found.ok and str(MAKER) in found.detail
    pasted(found.fix, tmp_path)
    kept = [p for p in exchange.rglob("lab1.ipynb") if p.read_text() == work]
    assert kept, f"the fix `{found.fix}` lost trainee-002's submission"
    assert not (exchange / "c101").exists(), "the course's name is free for the grader's release"
    again = _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))
    assert "course folder the grader's" not in again or again["course folder the grader's"].ok


def test_release_refusing_a_trainees_course_folder_says_how_to_keep_what_is_in_it(tmp_path, root_only):
    """The same fix, in the message of the release that refuses the folder."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeError

    exchange, entry = planted_course(tmp_path)
    release = ExchangeReleaseAssignment(coursedir=CourseDirectory(course_id="c101"), authenticator=Authenticator())
    release.root = str(exchange)
    with pytest.raises(ExchangeError) as refused:
        release.init_dest()
    message = str(refused.value)
    assert "Nothing was released" in message and "rm -rf" not in message, message
    pasted(message, tmp_path)
    assert not (exchange / "c101").exists() and any(exchange.rglob("lab1.ipynb")), message
