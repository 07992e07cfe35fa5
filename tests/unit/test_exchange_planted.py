"""The trainee's submit writes only into the grader's own ``inbound``, and fetch reads only from the grader's own
``outbound`` and ``feedback`` (techday/hub/exchange.py, ``planted``).

The exchange's root is 1777: before the first release (or after a course folder was moved aside) any trainee can
make the course's folder and an ``inbound`` in it, or a link by that name. nbgrader's submit checks only that
``inbound`` is a folder it may write (following a link): every other trainee's hand-in then went into a folder
the planter owns, to read, replace or remove before the grader collects. Each test plants as a trainee would
(uid 65534 plays the trainee: these tests run as root to give a folder another owner) and checks that nothing
was written there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from techday.hub import exchange as ex
from techday.i18n import _HANGUL

LAB = "lab"
PLANTER = 65534   # another uid than the exchange's owner, root or the grader: a trainee's

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="giving a planted folder another owner needs root")


def _room(tmp_path: Path) -> tuple[Path, Path]:
    """An exchange (owned by this test's user, root) with lab ``lab`` released in course ``c`` and no inbound yet,
    and a trainee's home with the lab fetched."""
    exchange = tmp_path / "exchange"
    (exchange / "c" / "outbound" / LAB).mkdir(parents=True)
    (exchange / "c" / "outbound" / LAB / f"{LAB}.ipynb").write_text("{}")
    home = tmp_path / "home"
    (home / LAB).mkdir(parents=True)
    (home / LAB / f"{LAB}.ipynb").write_text('{"my work": 1}')
    return exchange, home


def _planted(path: Path) -> Path:
    """A folder as trainee B plants it: B's own, open to all, setgid in the group every trainee shares (here this
    process's group): each submission written there then takes that group and, closed 0440 by the submit, stays
    readable by every trainee."""
    path.mkdir()
    os.chown(path, PLANTER, os.getgid())
    os.chmod(path, 0o2777)
    return path


def _submit(tmp_path: Path, exchange: Path, home: Path) -> None:
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(root=str(home), course_id="c", assignment_id=LAB, student_id="trainee-a")
    ex.ExchangeSubmit(coursedir=coursedir, authenticator=Authenticator(), root=str(exchange),
                      cache=str(tmp_path / "cache"), assignment_dir=str(home)).start()


@pytest.fixture(autouse=True)
def _budget(monkeypatch):
    for var in ("KEEP", "QUOTA", "MIN_FREE", "FILES"):
        monkeypatch.delenv(f"TECHDAY_EXCHANGE_{var}", raising=False)
    monkeypatch.setenv("TECHDAY_EXCHANGE_MIN_FREE", "0")
    monkeypatch.setenv("TECHDAY_LANG", "en")


def _refused(tmp_path, exchange, home) -> str:
    from nbgrader.exchange import ExchangeError

    with pytest.raises(ExchangeError) as err:
        _submit(tmp_path, exchange, home)
    said = str(err.value)
    assert "\n" not in said and said.startswith("Not submitted:") and "Ask the instructor" in said, said
    return said


def test_an_inbound_planted_by_a_trainee_takes_no_submission(tmp_path):
    """Attack: trainee B makes ``<exchange>/c/inbound`` as their own folder (mode 0777, so everyone's submit can
    write) before the grader does; every other trainee's submission lands in B's folder, which B reads or
    replaces before collect. Wrong answer caught: the submit wrote into it (nbgrader checks only that it may
    write there). Now refused by owner, an allow-list (root, the grader, the exchange root's owner), nothing
    written."""
    exchange, home = _room(tmp_path)
    inbound = _planted(exchange / "c" / "inbound")
    said = _refused(tmp_path, exchange, home)
    assert str(inbound) in said and f"uid {PLANTER}" in said, said
    assert os.listdir(inbound) == [], "a submission was written into a trainee's planted inbound"


def test_an_inbound_that_is_a_link_takes_no_submission(tmp_path):
    """Attack: trainee B puts a link named ``inbound`` to a folder of B's choosing (here a folder the exchange's
    own owner made, so only the link itself gives it away: a folder B can read, another course's inbound).
    Wrong answer caught: nbgrader's ``isdir`` follows the link and the submit wrote through it. Now the link is
    refused (opened ``O_NOFOLLOW``), nothing written at its target."""
    exchange, home = _room(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    (exchange / "c" / "inbound").symlink_to(elsewhere)
    said = _refused(tmp_path, exchange, home)
    assert "a link" in said, said
    assert os.listdir(elsewhere) == [], "a submission was written through a planted link"


def test_a_file_in_place_of_the_inbound_is_refused_with_the_reason(tmp_path):
    """Attack: trainee B puts a file (or a FIFO) named ``inbound`` in an unreleased course folder: every submit
    fails. Wrong answer caught: nbgrader said "Inbound directory doesn't exist", which sent the instructor
    looking for a missing folder; now the submit says what is there (not a folder) and opens nothing (a FIFO
    would block an open without ``O_DIRECTORY``)."""
    exchange, home = _room(tmp_path)
    os.mkfifo(exchange / "c" / "inbound")
    said = _refused(tmp_path, exchange, home)
    assert "not a folder" in said, said


def test_a_course_folder_planted_by_a_trainee_takes_no_submission(tmp_path):
    """Attack: trainee B makes the course's folder itself before the first release (the exchange's root is 1777)
    and later swaps whatever ``inbound`` is in it. Wrong answer caught: the submit looked no further than
    ``inbound``. Now every folder from the exchange's root down must be the grader's (or root's, or the root's
    owner's), each opened without following a link."""
    exchange, home = _room(tmp_path)
    (exchange / "c" / "inbound").mkdir()
    os.chown(exchange / "c", PLANTER, PLANTER)
    said = _refused(tmp_path, exchange, home)
    assert str(exchange / "c") in said and f"uid {PLANTER}" in said, said
    assert os.listdir(exchange / "c" / "inbound") == []


def test_a_course_folder_that_is_a_link_takes_no_submission(tmp_path):
    """Attack: trainee B makes the course's folder a link to another course's real folder in the same exchange
    (the grader's, with an ``inbound`` the grader owns): the room's hand-ins go to the wrong course, where
    nobody collects them. Wrong answer caught: only ``inbound``'s own owner was looked at. Now the link is
    refused."""
    import shutil

    exchange, home = _room(tmp_path)
    other = exchange / "last-year"
    shutil.copytree(exchange / "c", other)
    (other / "inbound").mkdir()
    shutil.rmtree(exchange / "c")
    (exchange / "c").symlink_to(other)
    said = _refused(tmp_path, exchange, home)
    assert "a link" in said, said
    assert os.listdir(other / "inbound") == []


def test_the_graders_inbound_takes_the_submission(tmp_path):
    """The control (so the refusals above are the owner's and the kind's, not a submit that never works): the
    production layout, the exchange's root root's, the course's folder and ``inbound`` the grader's (uid 1500),
    takes the submission; so does an exchange whose one owner made all of it (a plain server, these tests)."""
    from techday.hub.config import GRADER_UID

    exchange, home = _room(tmp_path)
    inbound = exchange / "c" / "inbound"
    inbound.mkdir()
    os.chmod(inbound, 0o3733)
    _submit(tmp_path, exchange, home)
    assert len(os.listdir(inbound)) == 1
    os.chown(exchange / "c", GRADER_UID, GRADER_UID)
    os.chown(inbound, GRADER_UID, GRADER_UID)
    os.chmod(inbound, 0o3733)
    _submit(tmp_path, exchange, home)
    assert len(os.listdir(inbound)) == 2


def test_the_refusal_reads_in_korean(tmp_path, monkeypatch):
    exchange, home = _room(tmp_path)
    inbound = _planted(exchange / "c" / "inbound")
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    from nbgrader.exchange import ExchangeError

    with pytest.raises(ExchangeError) as err:
        _submit(tmp_path, exchange, home)
    assert _HANGUL.search(str(err.value)) and str(inbound) in str(err.value), err.value
    assert os.listdir(inbound) == []


def test_the_hubs_check_names_a_planted_inbound(tmp_path):
    """Attack, seen from the rehearsal: a link named ``inbound`` to a folder that looks right (the grader's mode
    3733). Wrong answer caught: ``techday hub check``'s "submissions closed" followed the link, read the target's
    mode and owner and said ok; a trainee-owned ``inbound`` was judged by a deny-list of the accounts' uid range.
    Now it uses the submit's own allow-list (``planted``) and names what is there."""
    pytest.importorskip("jupyterhub", reason="the hub extra is not installed")
    from techday.hub.config import check
    from tests.unit.test_hub import _by_check, _config_file

    (tmp_path / "exchange").mkdir()
    (tmp_path / "exchange").chmod(0o1777)
    course = tmp_path / "exchange" / "c101"
    course.mkdir()
    looks_right = tmp_path / "looks-right"
    looks_right.mkdir()
    looks_right.chmod(0o3733)
    (course / "inbound").symlink_to(looks_right)
    found = _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))["submissions closed"]
    assert not found.ok and "a link" in found.detail and "mv " in found.fix, found
    (course / "inbound").unlink()
    _planted(course / "inbound")
    found = _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))["submissions closed"]
    assert not found.ok and f"uid {PLANTER}" in found.detail, found
    os.chown(course / "inbound", 0, 0)
    os.chmod(course / "inbound", 0o3733)
    assert _by_check(check(_config_file(tmp_path), gpu_probe=lambda: (["0"], "")))["submissions closed"].ok


def _fetch(tmp_path: Path, exchange: Path, feedback: bool = False) -> Path:
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    home = tmp_path / "fetcher"
    home.mkdir(exist_ok=True)
    coursedir = CourseDirectory(root=str(home), course_id="c", assignment_id=LAB, student_id="trainee-a")
    step = ex.ExchangeFetchFeedback if feedback else ex.ExchangeFetchAssignment
    step(coursedir=coursedir, authenticator=Authenticator(), root=str(exchange), cache=str(tmp_path / "cache"),
         assignment_dir=str(home)).start()
    return home


def test_an_outbound_planted_by_a_trainee_is_not_fetched(tmp_path):
    """Attack: before the first release trainee B makes the course's folder with an ``outbound`` of their own
    holding a lab: every trainee who fetches it runs B's code as themselves (their files, their token). Wrong
    answer caught: the fetch copied B's lab into the trainee's home. Now refused by the same allow-list as
    submit, nothing copied."""
    from nbgrader.exchange import ExchangeError

    exchange, _ = _room(tmp_path)
    for path in (exchange / "c", exchange / "c" / "outbound", exchange / "c" / "outbound" / LAB):
        os.chown(path, PLANTER, PLANTER)
    with pytest.raises(ExchangeError) as err:
        home = _fetch(tmp_path, exchange)
    said = str(err.value)
    assert said.startswith("Not fetched:") and f"uid {PLANTER}" in said and "\n" not in said, said
    assert not (tmp_path / "fetcher" / LAB).exists(), "the planted lab was copied into the trainee's home"
    for path in (exchange / "c", exchange / "c" / "outbound", exchange / "c" / "outbound" / LAB):
        os.chown(path, 0, 0)
    home = _fetch(tmp_path, exchange)   # the control: the grader's own outbound is fetched
    assert (home / LAB / f"{LAB}.ipynb").is_file()


def test_an_outbound_or_feedback_that_is_a_link_is_not_fetched(tmp_path):
    """Attack: a link named ``outbound`` (or ``feedback``) pointing at a folder that looks the grader's (B can
    make one in a course folder of B's own; here the course's folder is root's, so the link alone must give it
    away). Wrong answer caught: nbgrader's ``isdir`` follows the link and the fetch copied what it points at."""
    from nbgrader.exchange import ExchangeError

    exchange, _ = _room(tmp_path)
    os.rename(exchange / "c" / "outbound", tmp_path / "looks-right")
    (exchange / "c" / "outbound").symlink_to(tmp_path / "looks-right")
    (tmp_path / "fb").mkdir()
    (exchange / "c" / "feedback").symlink_to(tmp_path / "fb")
    for feedback in (False, True):
        with pytest.raises(ExchangeError) as err:
            _fetch(tmp_path, exchange, feedback=feedback)
        assert "a link" in str(err.value) and str(err.value).startswith("Not fetched:"), err.value
    assert not (tmp_path / "fetcher" / LAB).exists()


def _as_trainee(action) -> int:
    """``action()`` in a child as uid 65534 (a trainee): its exit status, 0 where it succeeded."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(PLANTER)
            os.setuid(PLANTER)
            action()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_grader_folder_any_trainee_may_rename_in_takes_no_submission(tmp_path):
    """Attack: the course's folder is the grader's but writable by all and not sticky (``chmod 777`` by an admin
    script, or an exchange made with umask 0): the check finds every folder the grader's, then any trainee renames
    the grader's ``inbound`` aside and puts their own in its place before the submit writes (shown here: the
    rename succeeds as a trainee's uid). Wrong answer caught: ``planted`` judged owners only and passed it, so
    "nothing on the path can be swapped after" did not hold. Now a folder below the exchange's root on the path
    (``inbound`` itself aside, which takes everyone's writes by design) must be closed to others' writes or
    sticky; the same folder sticky (1777) is still taken. The root's own mode is left to release (it makes it
    sticky) and ``techday hub check`` (which flags it): nbgrader's default root, 777, still fetches."""
    import shutil
    import tempfile

    room = Path(tempfile.mkdtemp(prefix="techday-exchange-"))   # the trainee's uid must reach it: not under tmp_path
    try:
        os.chmod(room, 0o755)
        _rename_in(room)
    finally:
        shutil.rmtree(room)


def _rename_in(tmp_path: Path) -> None:
    exchange, home = _room(tmp_path)
    (exchange / "c" / "inbound").mkdir()
    os.chmod(exchange / "c", 0o777)
    found = ex.planted(str(exchange), "c")
    assert _as_trainee(lambda: os.rename(exchange / "c" / "inbound", exchange / "c" / "aside")) == 0
    os.rename(exchange / "c" / "aside", exchange / "c" / "inbound")
    assert found is not None and found[0] == str(exchange / "c"), found
    said = _refused(tmp_path, exchange, home)
    assert str(exchange / "c") in said and "others" in said, said
    assert os.listdir(exchange / "c" / "inbound") == [], "a submission was written below a swappable folder"
    os.chmod(exchange / "c", 0o1777)
    assert _as_trainee(lambda: os.rename(exchange / "c" / "inbound", exchange / "c" / "aside")) != 0
    assert ex.planted(str(exchange), "c") is None
    os.chmod(exchange / "c" / "outbound", 0o777)   # fetch's source: anyone could swap a lab in it
    assert ex.planted(str(exchange), "c", "outbound") is not None
    named = exchange / "inbound"   # a course named like the leaf is judged as a course's folder all the same
    (named / "inbound").mkdir(parents=True)
    os.chmod(named, 0o777)
    assert ex.planted(str(exchange), "inbound") is not None
