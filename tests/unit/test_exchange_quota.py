"""One trainee cannot fill the room's shared exchange (techday/hub/exchangequota.py, ExchangeSubmit).

nbgrader keeps every submission in ``inbound`` under a new name and caps nothing across them: a trainee
who submits in a loop, or writes into ``inbound`` by hand (anyone may add to it), fills the exchange's
disk and every other trainee's hand-in fails. The trainee's submit keeps the newest N of each lab,
refuses past a byte budget and below a free-disk floor, and writes under a name collect never takes; the
hub's sweep, run from outside the trainee's processes, holds every owner uid to the same budget.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from techday.hub import exchange as ex
from techday.hub import exchangequota as q
from techday.i18n import _HANGUL

LAB = "lab"
A = "trainee-a"


class Room:
    """An exchange with course ``c`` and lab ``lab`` released, and trainee A's home with the lab fetched,
    every process this test's own user (the uid checks are the sweep's, tested as other users below)."""

    def __init__(self, tmp_path: Path, payload: int = 1000):
        self.exchange = tmp_path / "exchange"
        self.inbound = self.exchange / "c" / "inbound"
        self.inbound.mkdir(parents=True)
        (self.exchange / "c" / "outbound" / LAB).mkdir(parents=True)
        (self.exchange / "c" / "outbound" / LAB / f"{LAB}.ipynb").write_text("{}")
        self.home = tmp_path / "home"
        (self.home / LAB).mkdir(parents=True)
        (self.home / LAB / f"{LAB}.ipynb").write_text("{}")
        self.payload(payload)
        self.cache = tmp_path / "cache"

    def payload(self, size: int) -> None:
        (self.home / LAB / "data.bin").write_bytes(os.urandom(size))

    def submit(self) -> None:
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(root=str(self.home), course_id="c", assignment_id=LAB, student_id=A)
        ex.ExchangeSubmit(coursedir=coursedir, authenticator=Authenticator(), root=str(self.exchange),
                          cache=str(self.cache), assignment_dir=str(self.home)).start()

    def entries(self) -> list[str]:
        return sorted(os.listdir(self.inbound))


@pytest.fixture
def budget(monkeypatch):
    def set_(keep: int = 3, quota: str = "1M", min_free: str = "0") -> None:
        monkeypatch.setenv("TECHDAY_EXCHANGE_KEEP", str(keep))
        monkeypatch.setenv("TECHDAY_EXCHANGE_QUOTA", quota)
        monkeypatch.setenv("TECHDAY_EXCHANGE_MIN_FREE", min_free)
    monkeypatch.setenv("TECHDAY_LANG", "en")
    return set_


def test_a_trainee_submitting_in_a_loop_keeps_only_the_newest(tmp_path, budget):
    """Caught: 30 submissions in a loop left 30 entries in inbound (nbgrader keeps every one): the exchange
    grew without bound. Now the newest 3 stay, and the newest is the last one submitted."""
    budget(keep=3, quota="10M")
    room = Room(tmp_path)
    for _ in range(30):
        room.submit()
    kept = room.entries()
    assert len(kept) == 3, kept
    assert all(n.startswith(f"{A}+{LAB}+") for n in kept), kept   # no half-written copy left either
    ledger = (room.cache / "c" / ex.ExchangeSubmit.LEDGER).read_text().splitlines()
    assert sorted(ledger) == kept, "the trainee's record names exactly what is kept"
    cached = sorted(p for p in (room.cache / "c").iterdir() if p.is_dir())
    newest = max(kept, key=q.name_time)
    assert (room.inbound / newest / "timestamp.txt").read_text() == (cached[-1] / "timestamp.txt").read_text()


def test_a_submission_past_the_trainees_bytes_is_refused_and_the_previous_kept(tmp_path, budget, monkeypatch):
    """Caught: any number of bytes per trainee. With 100 KB allowed and a lab of about 40 KB, a keep of 30
    lets the bytes bind: the third submission is refused with the numbers, in Korean too, and the two
    before stay whole."""
    from nbgrader.exchange import ExchangeError

    budget(keep=30, quota="100K")
    room = Room(tmp_path, payload=30_000)
    room.submit()
    room.submit()
    before = room.entries()
    with pytest.raises(ExchangeError) as err:
        room.submit()
    assert "over the 100 KB each trainee may keep there" in str(err.value), err.value
    assert str(err.value).startswith("Not submitted: your submissions in the exchange would take"), err.value
    assert room.entries() == before, "nothing was added and nothing removed"
    assert all((room.inbound / n / "data.bin").stat().st_size == 30_000 for n in before)
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    with pytest.raises(ExchangeError) as err:
        room.submit()
    assert _HANGUL.search(str(err.value)), err.value


def test_a_submission_below_the_free_disk_floor_is_refused_before_writing(tmp_path, budget, monkeypatch):
    """Caught: a submission started on a nearly full exchange, failing halfway for whoever came next.
    Below the floor (the free disk played by a patched statvfs reading) nothing is written and the
    previous submission stays."""
    from nbgrader.exchange import ExchangeError

    budget(keep=3, quota="10M", min_free="1G")
    room = Room(tmp_path)
    monkeypatch.setattr(q, "free_bytes", lambda path: 5 << 30)
    room.submit()
    (first,) = room.entries()
    monkeypatch.setattr(q, "free_bytes", lambda path: 900 << 20)
    with pytest.raises(ExchangeError) as err:
        room.submit()
    assert "the exchange's disk is almost full (900 MB free; 1.0 GB are kept free" in str(err.value), err.value
    assert room.entries() == [first] and (room.inbound / first / f"{LAB}.ipynb").is_file()
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    assert _HANGUL.search(ex.exchange_full_text(1, 2)) and _HANGUL.search(ex.not_written_text("x"))
    assert _HANGUL.search(ex.over_budget_text(3, 2, 1, 1)) and _HANGUL.search(ex.kept_text(3, LAB, 1))


KILLED = r"""
import os, shutil, sys
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from techday.hub import exchange as ex
home, exchange, cache = sys.argv[1:4]
real = shutil.copyfile
def dying(src, dst, *a, **k):   # the process killed after the first file of the submission
    real(src, dst, *a, **k)
    if "/inbound/" in dst:
        os._exit(9)
shutil.copyfile = dying
coursedir = CourseDirectory(root=home, course_id="c", assignment_id="lab", student_id="trainee-a")
ex.ExchangeSubmit(coursedir=coursedir, authenticator=Authenticator(), root=exchange, cache=cache,
                  assignment_dir=home).start()
"""


def test_a_submission_killed_halfway_is_never_collected(tmp_path, budget):
    """Caught: nbgrader writes straight into the entry's final name, so a submit killed after its first
    file left ``trainee-a+lab+<time>+x`` holding half a lab, and collect took it as the newest hand-in
    (over the whole one before). Now it is written under ``.partial-...`` (no ``+``) and renamed at the end:
    collect still takes the whole one before; the next submit removes the leftover."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    from tests.unit.test_hubexchange import _exchange

    budget(keep=3, quota="10M")
    room = Room(tmp_path)
    room.submit()
    (whole,) = room.entries()
    for name in ("a.bin", "b.bin", "c.bin"):
        (room.home / LAB / name).write_bytes(b"x" * 100)
    out = subprocess.run([sys.executable, "-c", KILLED, str(room.home), str(room.exchange), str(room.cache)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.returncode == 9, out.stderr
    left = [n for n in room.entries() if n != whole]
    assert len(left) == 1 and "+" not in left[0], f"what the killed submit left: {left}"

    _, course, _ = _exchange(tmp_path / "grader")
    app = ex.ExchangeCollect(coursedir=CourseDirectory(root=str(course), course_id="c", assignment_id=LAB),
                             authenticator=Authenticator(), root=str(room.exchange))
    app.expected_uids = lambda: {A: os.getuid()}
    app.start()
    got = course / "submitted" / A / LAB
    assert (got / "data.bin").is_file() and not (got / "c.bin").exists(), "the whole submission before is collected"
    # the leftover is the trainee's own to clear: their next submit does, once it is older than a submit takes
    os.utime(room.inbound / left[0], (0, 0))
    stamp = q.YOUNG_S
    try:
        q.YOUNG_S = -1
        room.submit()
    finally:
        q.YOUNG_S = stamp
    assert all("+" in n for n in room.entries()), room.entries()


ENOSPC = r"""
import subprocess, sys
mnt, script = sys.argv[1:3]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,nr_inodes=200", "techday-exchange-test", mnt], check=True)
exec(compile(open(script).read(), script, "exec"))
"""

FULL = r"""
import os, sys
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeError
from techday.hub import exchange as ex, exchangequota as q
home, exchange, cache = sys.argv[3:6]
os.makedirs(os.path.join(exchange, "c", "inbound"))
os.makedirs(os.path.join(exchange, "c", "outbound", "lab"))
open(os.path.join(exchange, "c", "outbound", "lab", "lab.ipynb"), "w").write("{}")
def submit():
    coursedir = CourseDirectory(root=home, course_id="c", assignment_id="lab", student_id="trainee-a")
    ex.ExchangeSubmit(coursedir=coursedir, authenticator=Authenticator(), root=exchange, cache=cache,
                      assignment_dir=home).start()
submit()
first = sorted(os.listdir(os.path.join(exchange, "c", "inbound")))
with open(os.path.join(home, "lab", "big.bin"), "wb") as f:
    f.write(os.urandom(1 << 20))       # twice the filesystem
q.free_bytes = lambda path: 1 << 40    # as if another trainee filled the disk after the floor was read
try:
    submit()
    print("SUBMITTED")
except ExchangeError as exc:
    print("REFUSED", exc)
print("LEFT", sorted(os.listdir(os.path.join(exchange, "c", "inbound"))), "FIRST", first)
print("INTACT", os.path.isfile(os.path.join(exchange, "c", "inbound", first[0], "lab.ipynb")))
"""


def test_a_disk_that_fills_during_the_copy_leaves_nothing_half_written(tmp_path, budget):
    """Caught: a real ENOSPC halfway through the copy (a 512 KiB tmpfs in a private mount namespace, gone
    with the process) left a half-written entry under its final name, taken by collect. Now the trainee
    reads why, nothing of the failed copy is left, and the previous submission is whole."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs in a private mount namespace needs root (unshare -m)")
    budget(keep=3, quota="10M")
    room = Room(tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "full.py"
    script.write_text(FULL)
    cmd = ["unshare", "-m", "--propagation", "private", sys.executable, "-c", ENOSPC, str(mnt), str(script),
           str(room.home), str(mnt / "exchange"), str(room.cache)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    except FileNotFoundError:
        pytest.skip("no unshare on this machine")
    if out.returncode != 0 and "mount" in out.stderr and "LEFT" not in out.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()[-200:]}")
    print(out.stdout)
    assert out.returncode == 0, out.stderr
    assert "REFUSED Not submitted: the exchange could not take the submission (No space left on device)" in out.stdout
    left = out.stdout.split("LEFT ")[1].split(" FIRST ")
    assert left[0] == left[1].strip().splitlines()[0], "only the first submission is left"
    assert "INTACT True" in out.stdout
    assert not os.listdir(mnt), "the tmpfs was the namespace's own"


# ------------------------------------------------------------------------------------------ the sweep


def _graders_inbound(base: Path) -> Path:
    """``base/c/inbound`` as the exchange makes it: the grader's, with the exchange's inbound mode."""
    from tests.uids import GRADER_GID, GRADER_UID

    inbound = base / "c" / "inbound"
    inbound.mkdir(parents=True)
    (base / "c").chmod(0o755)
    os.chown(inbound, GRADER_UID, GRADER_GID)
    inbound.chmod(ex.INBOUND_MODE)
    return inbound


def _entry(inbound: Path, name: str, size: int) -> Path:
    entry = inbound / name
    entry.mkdir()
    (entry / "lab.ipynb").write_bytes(b"x" * size)
    return entry


def test_the_sweep_keeps_the_newest_per_lab_and_bounds_bytes_per_uid(tmp_path):
    """The sweep's own arithmetic: 30 entries of one lab become the newest 3; a plain file, a half-written
    copy older than a submit takes, an entry in another student's name are removed; a lab taken back from
    outbound keeps its submission (caught: an allow-list of released labs removed the whole room's
    hand-ins of a lab unreleased before collect); the bytes bound, then the files bound, remove the
    oldest first."""
    if os.geteuid() != 0:
        pytest.skip("the sweep leaves the inbound owner's entries alone: giving the entries another uid needs root")
    inbound = tmp_path / "inbound"
    inbound.mkdir()
    names = [f"{A}+{LAB}+2026-12-07 10:{m:02d}:00.000000 UTC+r{m}" for m in range(30)]
    for name in names:
        _entry(inbound, name, 1000)
    unreleased = _entry(inbound, f"{A}+not-released+2026-12-07 09:00:00.000000 UTC+r", 10).name
    _entry(inbound, f"trainee-b+{LAB}+2026-12-07 11:00:00.000000 UTC+r", 10)
    _entry(inbound, ".partial-x", 10)
    (inbound / "junk").write_bytes(b"y" * 5000)
    os.chown(inbound, 1500, -1)     # the grader's; the entries get a trainee's uid (root's are left alone)
    for p in inbound.iterdir():
        os.lchown(p, 20077, -1)
    uid = 20077
    budget = q.Budget(keep=3, max_bytes=1 << 20)
    report = q.sweep(inbound, budget, {A: uid, "trainee-b": 20078}, now=2e9)
    assert sorted(os.listdir(inbound)) == sorted(names[-3:] + [unreleased]), sorted(os.listdir(inbound))
    assert len(report.removed) == 27 + 3
    budget = q.Budget(keep=3, max_bytes=3 * 8192 + 100)   # three entries of 2 blocks each fit
    q.sweep(inbound, budget, {A: uid}, now=2e9)
    assert sorted(os.listdir(inbound)) == names[-3:], "the oldest went first"
    for i in range(3):
        (inbound / names[-1] / f"f{i}").write_text("x")
        os.lchown(inbound / names[-1] / f"f{i}", uid, -1)
    q.sweep(inbound, q.Budget(keep=3, max_files=6), {A: uid}, now=2e9)   # 2 + 2 + 5 inodes: 9, then 7
    assert sorted(os.listdir(inbound)) == names[-1:], "the files bound removes the oldest too"


SUBMIT_LOOP_BY_HAND = r"""
import os, sys
inbound, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    os.listdir(inbound)
    print("LISTED")
except PermissionError:
    print("CANNOT-LIST")
for i in range(n):   # no nbgrader, no course code: the entries a loop of submits would make, by hand
    entry = os.path.join(inbound, f"trainee-a+lab+2026-12-07 10:{i:02d}:00.000000 UTC+hand{i}")
    os.mkdir(entry, 0o700)
    with open(os.path.join(entry, "lab.ipynb"), "wb") as f:
        f.write(os.urandom(size))
with open(os.path.join(inbound, "filler"), "wb") as f:
    f.write(os.urandom(4 * size))
os.mkdir(os.path.join(inbound, ".partial-fresh"), 0o700)   # young: a submit may still be writing it
print("WROTE", n)
"""


def test_a_trainee_writing_into_inbound_by_hand_is_held_to_the_budget_by_the_sweep(tmp_path):
    """Caught: the submit's budget runs in the trainee's own process, which can skip it. As trainee A's
    own uid (inbound 3733: A may add but not list), 30 entries and a filler file written without nbgrader
    stayed: nothing outside the trainee's processes counted them. The hub's sweep (root) charges each
    entry to its owner uid: A is back to the newest 3 of the lab, and within the byte budget. Entries it
    cannot read (0700, made so by A) are measured and removed too; the grader's own entries stay."""
    from tests.uids import GRADER_GID, GRADER_UID, TRAINEE_GID, UID_FIRST, child_env, runas, shared_dir, why_not

    reason = why_not()
    if reason:
        pytest.skip(f"cannot run as another user: {reason}")
    base = shared_dir("techday-quota-")
    try:
        inbound = _graders_inbound(base)
        grader_own = inbound / ".grader-note"
        grader_own.write_text("x")
        os.chown(grader_own, GRADER_UID, GRADER_GID)
        uid = UID_FIRST + 21
        out = subprocess.run(runas(uid, TRAINEE_GID, sys.executable, "-c", SUBMIT_LOOP_BY_HAND, str(inbound),
                                   "30", "20000"), capture_output=True, text=True, timeout=120, env=child_env(),
                             cwd=base)
        assert out.returncode == 0, out.stderr
        assert "CANNOT-LIST" in out.stdout and "WROTE 30" in out.stdout, out.stdout
        assert len(os.listdir(inbound)) == 30 + 3
        before = sum(q.tree_cost(inbound / n) for n in os.listdir(inbound))

        budget = q.Budget(keep=3, max_bytes=3 * 24576 + 4096)
        report = q.sweep(inbound, budget, {A: uid})
        left = sorted(os.listdir(inbound))
        mine = [n for n in left if n.startswith(f"{A}+{LAB}+")]
        assert mine == [f"{A}+{LAB}+2026-12-07 10:{i:02d}:00.000000 UTC+hand{i}" for i in (27, 28, 29)], left
        assert "filler" not in left, "an old stray is charged to its owner and removed"
        assert report.usage[uid] <= budget.max_bytes, report.usage
        assert ".grader-note" in left, "the grader's own entries are never swept"
        assert all(r.done for r in report.removed), [q.shown(r) for r in report.removed]
        print(f"inbound before {before} bytes; after the sweep {report.usage[uid]} for uid {uid}; "
              f"{len(report.removed)} entries removed")
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_the_check_reports_the_exchanges_worst_case(tmp_path):
    """Caught: `techday hub check` weighed the homes against the disk but not the exchange: 300 trainees x
    their budget against the exchange's free disk was nobody's number."""
    from techday.hub.config import exchange_finding, hash_password

    users = tmp_path / "users.csv"
    users.write_text("username,role,password_hash,uid\n" + "".join(
        f"t{i},trainee,{hash_password('x', iterations=1000)},{20001 + i}\n" for i in range(300)))
    (tmp_path / "exchange").mkdir()
    settings = {"exchange": str(tmp_path / "exchange"), "users_file": str(users), "exchange_quota": "300M",
                "exchange_keep": 3, "exchange_min_free": "1G"}
    free = type("U", (), {"free": 200 << 30})
    found = exchange_finding(settings, lambda p: free)
    assert found.ok and "300 account(s) x 300M" in found.detail, found
    free.free = 50 << 30
    found = exchange_finding(settings, lambda p: free)
    assert not found.ok and "TECHDAY_EXCHANGE_QUOTA" in found.fix, found


def test_the_hub_runs_the_sweep_as_root_with_the_budget(tmp_path, monkeypatch):
    """Caught: a budget only the trainee's own submit reads. The hub (root) starts the sweep with the same
    budget it hands every trainee's server and the course service; a hub not running as root cannot
    remove a trainee's files and starts none."""
    from traitlets.config import Config

    from techday.hub.config import HubSettings, configure

    settings = HubSettings(course_id="c101", users_file=tmp_path / "users.csv", state_dir=tmp_path / "state",
                           exchange_keep=4, exchange_quota="200M", exchange_min_free="2G")
    for euid in (0, 1000):
        monkeypatch.setattr(os, "geteuid", lambda e=euid: e)
        c = Config()
        configure(c, settings)
        services = {s["name"]: s for s in c.JupyterHub.services}
        want = {"TECHDAY_EXCHANGE_KEEP": "4", "TECHDAY_EXCHANGE_QUOTA": "200M", "TECHDAY_EXCHANGE_MIN_FREE": "2G",
                "TECHDAY_EXCHANGE_FILES": "10000"}
        assert want.items() <= c.Spawner.environment.items()
        if euid:
            assert "exchange-sweep" not in services
            continue
        sweep = services["exchange-sweep"]
        assert sweep["command"][-4:] == ["hub", "sweep", "--every", "60"]
        assert want.items() <= sweep["environment"].items() and sweep["environment"]["TECHDAY_COURSE_ID"] == "c101"


def test_the_sweep_follows_no_link_charges_a_hard_link_once_and_removes_a_deep_tree(tmp_path):
    """Caught, in the sweep run as root over trees a trainee shapes: a link charged as its target (or the
    target removed with the entry); a hard-linked file charged once per name; a folder nested past
    Python's recursion (1,200 levels) that stopped the walk or the removal with a RecursionError, so the
    entry stayed for good."""
    if os.geteuid() != 0:
        pytest.skip("the sweep leaves the inbound owner's entries alone: giving the entries another uid needs root")
    inbound = tmp_path / "inbound"
    inbound.mkdir()
    outside = tmp_path / "big-outside.bin"
    outside.write_bytes(b"z" * 300_000)
    linked = _entry(inbound, f"{A}+{LAB}+2026-12-07 10:00:00.000000 UTC+link", 100)
    os.symlink(outside, linked / "to-outside")
    os.symlink(tmp_path, linked / "to-folder")
    hard = _entry(inbound, f"{A}+{LAB}+2026-12-07 10:01:00.000000 UTC+hard", 40_960)
    for i in range(5):
        os.link(hard / "lab.ipynb", hard / f"again{i}.ipynb")
    assert q.tree_cost(linked) == 3 * q.BLOCK + q.BLOCK, "the folder, its file and two links: a block each"
    assert q.tree_cost(hard) == q.BLOCK + 40_960, "five more names of one file cost nothing more"
    deep = inbound / "deep"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY)
    for _ in range(1200):
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    assert q.tree_cost(deep) > 1 << 40, "a tree the walk cannot follow counts as over any budget"
    os.chown(inbound, 1500, -1)
    for p in inbound.iterdir():
        os.lchown(p, 20077, -1)
    try:
        report = q.sweep(inbound, q.Budget(keep=1, max_bytes=1 << 20), {A: 20077}, now=2e9)
    finally:   # pytest's own clean-up of old temporary folders recurses too: never leave the tree behind
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(deep)], timeout=120)
    assert sorted(os.listdir(inbound)) == [hard.name], [q.shown(r) for r in report.removed]
    assert outside.read_bytes() == b"z" * 300_000 and tmp_path.is_dir(), "nothing a link points at was touched"


def test_techday_hub_sweep_reads_the_hubs_environment_and_dry_run_removes_nothing(tmp_path, monkeypatch, capsys):
    """Caught: a sweep command that read another exchange or course than the hub's, or a --dry-run that
    removed. One pass over the course's inbound as TECHDAY_EXCHANGE, TECHDAY_COURSE_ID and
    TECHDAY_USERS_FILE name it: --dry-run names what is over the budget, the real pass removes it."""
    if os.geteuid() != 0:
        pytest.skip("the sweep leaves the inbound owner's entries alone: giving the entries another uid needs root")
    from techday.cli.main import main
    from techday.hub.config import hash_password

    exchange = tmp_path / "exchange"
    inbound = exchange / "c" / "inbound"
    inbound.mkdir(parents=True)
    (exchange / "c" / "outbound" / LAB).mkdir(parents=True)
    users = tmp_path / "users.csv"
    users.write_text(f"username,role,password_hash,uid\n{A},trainee,{hash_password('x', iterations=1000)},20077\n")
    names = [f"{A}+{LAB}+2026-12-07 10:0{m}:00.000000 UTC+r{m}" for m in range(5)]
    for name in names:
        _entry(inbound, name, 10)
    os.chown(inbound, 1500, -1)
    for p in inbound.iterdir():
        os.lchown(p, 20077, -1)
    for k, v in {"TECHDAY_EXCHANGE": str(exchange), "TECHDAY_COURSE_ID": "c", "TECHDAY_USERS_FILE": str(users),
                 "TECHDAY_EXCHANGE_KEEP": "2", "TECHDAY_EXCHANGE_QUOTA": "300M"}.items():
        monkeypatch.setenv(k, v)
    assert main(["hub", "sweep", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would remove") == 3 and "older than the newest 2 of lab" in out, out
    assert sorted(os.listdir(inbound)) == names
    assert main(["hub", "sweep"]) == 0
    assert capsys.readouterr().out.count("techday hub sweep: removed") == 3
    assert sorted(os.listdir(inbound)) == names[-2:]


def test_a_collect_that_fills_the_course_disk_says_so_and_keeps_nothing_half_copied(tmp_path, monkeypatch, caplog):
    """Caught: collect's copy failing with "No space left on device" on the course's disk was logged as
    "its entry changed while it was collected", pointing the instructor at the trainee. It now names the
    course's disk; the half copy is removed and the other trainees are collected. (ENOSPC played by the
    copy raising it after its first file.)"""
    import errno

    from tests.unit.test_hubexchange import _scanned_collect

    app, course, _ = _scanned_collect(tmp_path)
    app.src_records.sort(key=lambda r: r["username"])
    real = ex.copy_untrusted

    def full(src, dest, **kw):
        if "trainee-a+" in src:
            os.makedirs(dest)
            (Path(dest) / "lab.ipynb").write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dest, **kw)

    monkeypatch.setattr(ex, "copy_untrusted", full)
    app.copy_files()
    assert (course / "submitted" / "trainee-b" / "lab" / "lab.ipynb").is_file()
    assert not (course / "submitted" / "trainee-a" / "lab").exists(), "no half copy is left to grade"
    assert "the course's disk is full (No space left on device)" in caplog.text, caplog.text


def test_a_roster_cut_short_removes_nobodys_work(tmp_path):
    """Caught: the sweep read an entry named for a student the accounts file does not know as a plant in
    another's name and removed it: a users.csv cut short by a bad edit (or an account removed before
    collect) had the sweep remove those trainees' hand-ins within a minute. Only a name the file gives
    another uid is a plant."""
    if os.geteuid() != 0:
        pytest.skip("the sweep leaves the inbound owner's entries alone: giving the entries another uid needs root")
    inbound = tmp_path / "inbound"
    inbound.mkdir()
    mine = _entry(inbound, f"{A}+{LAB}+2026-12-07 10:00:00.000000 UTC+r", 10).name
    plant = _entry(inbound, f"trainee-b+{LAB}+2026-12-07 10:00:00.000000 UTC+r", 10).name
    os.chown(inbound, 1500, -1)
    for p in inbound.iterdir():
        os.lchown(p, 20077, -1)
    q.sweep(inbound, q.Budget(keep=3, max_bytes=1 << 20), {}, now=2e9)   # the file lost every line
    assert sorted(os.listdir(inbound)) == sorted([mine, plant])
    q.sweep(inbound, q.Budget(keep=3, max_bytes=1 << 20), {"trainee-b": 20078}, now=2e9)
    assert os.listdir(inbound) == [mine], "a name the file gives another uid is a plant"


def _racing_open(monkeypatch, name: str, swap) -> list:
    """``os.open`` as if the entry's owner won the race between the sweep's look at ``name`` (a folder) and
    its open of it: just before the first open of ``name``, ``swap(name, dir_fd)`` replaces the folder. A
    trainee does the same with ``renameat2(RENAME_EXCHANGE)`` in a loop, with hours to win it once; here it
    is won at once so the test is deterministic. Returns what each open by the calling thread got (fstat)."""
    import threading

    real, got, done, me = os.open, [], [], threading.current_thread()

    def racing(path, flags, mode=0o777, *, dir_fd=None):
        if threading.current_thread() is me:
            return real(path, flags, mode, dir_fd=dir_fd)
        if not done and os.path.basename(os.fsdecode(path)) == name:
            done.append(path)
            os.rename(path, os.fsdecode(path) + ".was", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            swap(path, dir_fd)
        fd = real(path, flags, mode, dir_fd=dir_fd)
        got.append(os.fstat(fd))
        return fd

    monkeypatch.setattr(os, "open", racing)
    return got


def _in_thread(fn, unblock, seconds: float = 5.0):
    """Run ``fn`` in a thread; if it is still running after ``seconds``, call ``unblock`` (the test must
    end either way) and return False. True: it ended on its own."""
    import threading

    t = threading.Thread(target=lambda: _swallow(fn), daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        unblock()
        t.join(seconds)
        return False
    return True


def _swallow(fn):
    try:
        fn()
    except Exception:   # noqa: BLE001 (the test asserts on whether it ended and on what it opened)
        pass


def test_the_sweep_never_blocks_on_a_fifo_swapped_in_for_a_folder(tmp_path, monkeypatch):
    """Caught: the removal (Python's rmtree) opens each sub-folder with a plain blocking ``open`` that
    follows links. A trainee who swaps a sub-folder of an entry the sweep is removing for a FIFO (``mkfifo``
    needs no privilege) between the sweep's look and its open stopped root's sweep for good: ``open`` of a
    FIFO waits for a writer that never comes, and no uid is held to the budget for the rest of the day.
    Now every folder is opened ``O_DIRECTORY|O_NOFOLLOW|O_NONBLOCK``: a FIFO or link in its place is refused."""
    entry = _entry(tmp_path, "stray", 10)
    (entry / "swapme").mkdir()
    (entry / "swapme" / "f").write_text("x")
    fifo = entry / "swapme"
    got = _racing_open(monkeypatch, "swapme", lambda p, d: os.mkfifo(p, dir_fd=d))
    ended = _in_thread(lambda: q.remove_entry(str(entry)),
                       lambda: os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)))
    monkeypatch.undo()
    assert ended, "root's sweep hung on opening a FIFO a trainee swapped in for a folder"
    import stat as st_
    assert all(st_.S_ISDIR(s.st_mode) for s in got), "the removal opened something that is not a folder"


def test_the_sweeps_weighing_opens_nothing_a_swapped_in_link_points_at(tmp_path, monkeypatch):
    """Caught: the weighing (``os.fwalk``) checks each sub-folder with ``lstat`` and then opens it with an
    ``open`` that follows links (only comparing afterwards). A trainee who swaps the sub-folder for a link
    between the two had root open whatever the link names, anywhere on the hub: a FIFO of someone else, a
    device whose open does something (a tape rewinds, a watchdog starts). Now the open itself refuses a
    link (``O_NOFOLLOW``) and anything not a folder (``O_DIRECTORY``): root opens only folders of the entry."""
    import stat as st_

    outside = tmp_path / "someone-elses-fifo"
    os.mkfifo(outside)
    entry = _entry(tmp_path, "stray", 10)
    (entry / "swapme").mkdir()
    got = _racing_open(monkeypatch, "swapme", lambda p, d: os.symlink(outside, p, dir_fd=d))
    ended = _in_thread(lambda: q.tree_usage(entry),
                       lambda: os.close(os.open(outside, os.O_WRONLY | os.O_NONBLOCK)))
    monkeypatch.undo()
    assert ended
    want = os.stat(outside)
    assert not [s for s in got if (s.st_dev, s.st_ino) == (want.st_dev, want.st_ino)], \
        "root opened the FIFO outside the entry that a swapped-in link names"
    assert all(st_.S_ISDIR(s.st_mode) for s in got)


@pytest.mark.parametrize("env", [{"TECHDAY_EXCHANGE_FILES": "-1"}, {"TECHDAY_EXCHANGE_KEEP": "0"},
                                 {"TECHDAY_EXCHANGE_KEEP": "-3"}, {"TECHDAY_EXCHANGE_FILES": "1e4"},
                                 {"TECHDAY_EXCHANGE_QUOTA": "-300M"}])
def test_a_budget_the_sweep_cannot_honour_is_refused_and_removes_nothing(tmp_path, env):
    """Caught: a budget value nobody meant was taken as it came. ``TECHDAY_EXCHANGE_FILES=-1`` made every uid
    over the budget for good: root's sweep removed every trainee's every submission, each minute, the room's
    hand-ins gone; ``TECHDAY_EXCHANGE_KEEP=0`` or ``-3`` kept one per lab without a word. Now a budget is an
    allow-list of values (keep 1 or more, bytes and files 0 or more, whole numbers) checked wherever one is
    made: the sweep refuses to start and removes nothing."""
    if os.geteuid() != 0:
        pytest.skip("the sweep leaves the inbound owner's entries alone: giving the entries another uid needs root")
    inbound = tmp_path / "inbound"
    inbound.mkdir()
    kept = _entry(inbound, f"{A}+{LAB}+2026-12-07 10:00:00.000000 UTC+r", 100)
    os.chown(inbound, 1500, -1)
    os.lchown(kept, 20077, -1)
    with pytest.raises(ValueError):
        budget = q.Budget.from_env(env)
        q.sweep(inbound, budget, {A: 20077}, now=2e9)
    with pytest.raises(ValueError):
        q.sweep(inbound, q.Budget(keep=3, max_files=-1), {A: 20077}, now=2e9)
    assert os.listdir(inbound) == [kept.name], "a budget the sweep cannot honour removed a trainee's hand-in"


def test_the_hubs_check_flags_a_budget_the_sweep_would_refuse(tmp_path):
    """Caught: ``techday hub check`` said nothing of ``TECHDAY_EXCHANGE_FILES=-1``, which the sweep (before) took
    as every trainee over the budget: the rehearsal passed and the day's hand-ins went each minute."""
    from techday.hub.config import exchange_finding

    settings = {"exchange": str(tmp_path), "users_file": str(tmp_path / "none.csv"), "exchange_quota": "300M",
                "exchange_min_free": "1G", "exchange_keep": 3, "exchange_files": -1}
    finding = exchange_finding(settings, disk_probe=lambda _: type("U", (), {"free": 1 << 50})())
    assert not finding.ok and "TECHDAY_EXCHANGE_FILES" in finding.detail, finding
    assert exchange_finding({**settings, "exchange_files": 10_000},
                            disk_probe=lambda _: type("U", (), {"free": 1 << 50})()).ok


LEDGER_POINTS_AT_B = r"""
import os, sys
from techday.hub import exchangequota as q
inbound, theirs = sys.argv[1], sys.argv[2]
print("COST", q.tree_cost(os.path.join(inbound, theirs)))
try:   # what the submit's _remove does with a name its (editable) record gives it
    q.remove_entry(os.path.join(inbound, theirs))
    print("REMOVED")
except OSError as exc:
    print("REFUSED", exc.errno)
"""


def test_a_record_naming_another_trainees_entry_removes_nothing_of_theirs(tmp_path):
    """Held (kept as a check): trainee A's own submit removes the names its record in A's cache gives it, and A may
    write any name there, trainee B's entry's included. The submit runs as A's uid: the kernel refuses (B's entry is
    0750 and B's, ``inbound`` sticky), B's entry stays whole and A's submit learns no more than one block of it."""
    from tests.uids import GRADER_GID, GRADER_UID, TRAINEE_GID, UID_FIRST, child_env, runas, shared_dir, why_not

    reason = why_not()
    if reason:
        pytest.skip(f"cannot run as another user: {reason}")
    base = shared_dir("techday-quota-ledger-")
    try:
        inbound = _graders_inbound(base)
        theirs = _entry(inbound, f"trainee-b+{LAB}+2026-12-07 10:00:00.000000 UTC+b", 50_000)
        for p in (theirs, theirs / "lab.ipynb"):
            os.lchown(p, UID_FIRST + 23, GRADER_GID)
        theirs.chmod(ex.SUBMISSION_DIR)
        (theirs / "lab.ipynb").chmod(ex.SUBMISSION_FILE)
        out = subprocess.run(runas(UID_FIRST + 22, TRAINEE_GID, sys.executable, "-c", LEDGER_POINTS_AT_B, str(inbound),
                                   theirs.name), capture_output=True, text=True, timeout=120, env=child_env(), cwd=base)
        assert out.returncode == 0, out.stderr
        assert "REFUSED" in out.stdout and (theirs / "lab.ipynb").stat().st_size == 50_000, out.stdout
        assert f"COST {q.BLOCK}" in out.stdout, out.stdout
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("plant", ["link", "folder"])
def test_the_sweep_refuses_an_inbound_a_trainee_planted(tmp_path, monkeypatch, plant):
    """Caught: the exchange's root is 1777 (anyone may create in it), so before the first release a trainee can make
    the course's folder and put in it an ``inbound`` of their own: a link to any folder of the hub's, or a folder
    they own. Root's sweep took either as the course's inbound: through the link it charged and removed every entry
    there not root's nor the link's owner's (here another uid's folder outside the exchange); in the planted folder
    the planter's own entries were never swept (the folder's owner counts as the grader) and everyone else's were.
    Now the course's folder and ``inbound`` must each be a real folder (opened ``O_NOFOLLOW``) owned by the grader
    or root: anything else, the sweep removes nothing and says so."""
    if os.geteuid() != 0:
        pytest.skip("the sweep leaves the inbound owner's entries alone: giving the entries another uid needs root")
    from techday.cli.main import main
    from techday.hub.config import hash_password

    exchange = tmp_path / "exchange"
    course = exchange / "c"
    course.mkdir(parents=True)
    os.chown(course, 20077, -1)                          # made by trainee A, before any release
    victim = tmp_path / "hub-folder"
    victim.mkdir()
    precious = _entry(victim, "someone-elses", 10)
    os.lchown(precious, 20078, -1)
    if plant == "link":
        os.symlink(victim, course / "inbound")
        os.lchown(course / "inbound", 20077, -1)
    else:
        os.rename(victim, course / "inbound")
        os.chown(course / "inbound", 20077, -1)
        precious = course / "inbound" / "someone-elses"
    users = tmp_path / "users.csv"
    users.write_text(f"username,role,password_hash,uid\n{A},trainee,{hash_password('x', iterations=1000)},20077\n")
    for k, v in {"TECHDAY_EXCHANGE": str(exchange), "TECHDAY_COURSE_ID": "c", "TECHDAY_USERS_FILE": str(users),
                 "TECHDAY_EXCHANGE_KEEP": "2", "TECHDAY_EXCHANGE_QUOTA": "300M"}.items():
        monkeypatch.setenv(k, v)
    code = main(["hub", "sweep"])
    assert precious.is_dir(), "root's sweep removed a folder of another uid through an inbound a trainee planted"
    assert code == 1
