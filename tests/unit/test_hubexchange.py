"""The grader's copy of a trainee's submission (techday.hub.exchange.copy_untrusted), without root.

A submission stays its owner's after it is submitted, so whatever it holds when the grader collects it
is a stranger's data: each case here is a file a hostile owner can put there, and what a plain copy
(nbgrader's copytree) would do with it.
"""

from __future__ import annotations

import datetime
import os
import shutil
import threading

import pytest

from techday.hub.exchange import MAX_DEPTH, copy_untrusted, not_mine


@pytest.fixture
def entry(tmp_path):
    src = tmp_path / "trainee-a+lab+2026-12-04 10:00:00.000000 UTC+abc"
    src.mkdir()
    (src / "lab.ipynb").write_text("{}")
    (src / "timestamp.txt").write_text("2026-12-04 10:00:00.000000 UTC")
    return src


def test_folders_and_regular_files_are_copied(entry, tmp_path):
    (entry / "data").mkdir()
    (entry / "data" / "x.csv").write_text("1,2")
    skipped = copy_untrusted(str(entry), str(tmp_path / "out"))
    assert skipped == []
    assert (tmp_path / "out" / "lab.ipynb").read_text() == "{}"
    assert (tmp_path / "out" / "data" / "x.csv").read_text() == "1,2"


def test_links_are_never_followed(entry, tmp_path):
    """Caught: a link to the grader's solutions copied as the trainee's notebook (copytree follows it)."""
    secret = tmp_path / "solutions.ipynb"
    secret.write_text("solutions")
    os.symlink(secret, entry / "solution.ipynb")
    os.symlink(tmp_path, entry / "folder-link")
    skipped = copy_untrusted(str(entry), str(tmp_path / "out"))
    assert sorted(skipped) == ["folder-link (a link)", "solution.ipynb (a link)"]
    assert not (tmp_path / "out" / "solution.ipynb").exists() and not (tmp_path / "out" / "folder-link").exists()


def test_a_top_folder_that_is_a_link_is_refused(entry, tmp_path):
    os.symlink(entry, tmp_path / "link")
    with pytest.raises(OSError):
        copy_untrusted(str(tmp_path / "link"), str(tmp_path / "out"))


def test_a_pipe_is_left_out_without_waiting(entry, tmp_path):
    """Caught: a collect that opens a pipe for reading and waits for a writer forever."""
    os.mkfifo(entry / "stall.fifo")
    done = {}
    worker = threading.Thread(target=lambda: done.update(s=copy_untrusted(str(entry), str(tmp_path / "out"))),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the copy waited on a pipe"
    assert done["s"] == ["stall.fifo (not a regular file)"]


def test_a_name_left_out_is_logged_on_one_line(entry, tmp_path):
    """A file name with a newline printed a log line of its own in the grader's log ("Collecting ...:
    left out ..."), which could read as the collect of another trainee."""
    os.mkfifo(entry / "x\nCollecting trainee-b+lab+...: collected.fifo")
    skipped = copy_untrusted(str(entry), str(tmp_path / "out"))
    assert skipped == ["'x\\nCollecting trainee-b+lab+...: collected.fifo' (not a regular file)"], skipped
    assert all(line.isprintable() for line in skipped)


def test_size_depth_and_ignored_names_are_capped(entry, tmp_path):
    (entry / "big.bin").write_bytes(b"x" * 5000)
    (entry / ".ipynb_checkpoints").mkdir()
    (entry / ".ipynb_checkpoints" / "lab-checkpoint.ipynb").write_text("{}")
    deep = entry
    for _ in range(MAX_DEPTH + 2):
        deep = deep / "d"
    deep.mkdir(parents=True)
    skipped = copy_untrusted(str(entry), str(tmp_path / "out"), ignore=[".ipynb_checkpoints"], max_bytes=1000)
    assert "big.bin (over the submission's size limit of 1000 bytes)" in skipped
    assert any(s.endswith(f"(folders nested deeper than {MAX_DEPTH})") for s in skipped), skipped
    assert not (tmp_path / "out" / "big.bin").exists(), "no partial file is left behind"
    assert not (tmp_path / "out" / ".ipynb_checkpoints").exists()
    assert (tmp_path / "out" / "lab.ipynb").is_file()


def test_not_mine_names_a_link_or_a_file(tmp_path):
    assert not_mine(str(tmp_path / "absent")) is None
    assert not_mine(str(tmp_path)) is None
    os.symlink(tmp_path, tmp_path / "link")
    assert not_mine(str(tmp_path / "link")) == "is not a folder (a link or a file)"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file of another uid needs root")
def test_a_file_of_another_user_is_left_out(entry, tmp_path):
    """A hard link keeps its file's owner: trainee A's entry holding a link to trainee B's notebook (where
    fs.protected_hardlinks is 0, or B's file is writable) was collected as A's work. Only what the
    entry's owner owns is copied; a folder of another uid too."""
    other = tmp_path / "b-notebook.ipynb"
    other.write_text('{"b": "work"}')
    os.chown(other, 54321, 54321)
    os.link(other, entry / "copied.ipynb")
    (entry / "sub").mkdir()
    os.chown(entry / "sub", 54321, 54321)
    skipped = copy_untrusted(str(entry), str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == ["lab.ipynb", "timestamp.txt"], os.listdir(tmp_path / "out")
    assert len(skipped) == 2 and all("owned by uid 54321" in s for s in skipped), skipped


def _exchange(tmp_path, *students):
    """(exchange, course, inbound) of course ``c`` with a lab ``lab`` in its gradebook, and an inbound
    entry with a notebook for each of ``students``."""
    import warnings

    from nbgrader.api import Gradebook

    from techday.fastimport import alembic_head_in_process

    alembic_head_in_process()
    exchange, course = tmp_path / "exchange", tmp_path / "course"
    inbound = exchange / "c" / "inbound"
    inbound.mkdir(parents=True)
    course.mkdir()
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course / 'gradebook.db'}", "c") as gb:
        warnings.simplefilter("ignore")
        gb.add_assignment("lab")
    for student in students:
        entry = inbound / f"{student}+lab+2026-12-05 10:00:00.000000 UTC+r"
        entry.mkdir()
        (entry / "lab.ipynb").write_text("{}")
    return exchange, course, inbound

def _scanned_collect(tmp_path):
    """(collect app, course, inbound) for trainees a and b (both this process's uid), after collect's scan
    of inbound and before its copy: where an entry can be swapped."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    from techday.hub.exchange import ExchangeCollect

    exchange, course, inbound = _exchange(tmp_path, "trainee-a", "trainee-b")
    app = ExchangeCollect(coursedir=CourseDirectory(root=str(course), course_id="c", assignment_id="lab"),
                          authenticator=Authenticator(), root=str(exchange))
    app.expected_uids = lambda: {"trainee-a": os.getuid(), "trainee-b": os.getuid()}
    app.init_src()
    app.init_dest()
    return app, course, inbound



def test_one_trainees_timestamp_never_stops_the_collect_of_the_others(tmp_path, caplog):
    """A trainee owns their inbound entry after submitting and may rewrite its timestamp.txt. nbgrader's
    collect reads the timestamp.txt of every submission it collected before and stopped (nbgrader 0.9:
    an AttributeError) at one it could not parse: nobody after that trainee was collected again. The
    grader now writes the time of the entry's name (checked) and sets an unreadable old one aside."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    from techday.hub.exchange import ExchangeCollect

    exchange, course, inbound = _exchange(tmp_path)

    now = datetime.datetime.now(datetime.timezone.utc)

    def at(seconds: int) -> str:  # a time in nbgrader's form, minutes before the entries are made
        return (now + datetime.timedelta(seconds=seconds)).strftime(
            "%Y-%m-%d %H:%M:%S.000000 UTC")

    def submit(student: str, stamp: str, text: str | None = None) -> None:
        entry = inbound / f"{student}+lab+{stamp}+r{len(os.listdir(inbound))}"
        entry.mkdir()
        (entry / "lab.ipynb").write_text("{}")
        (entry / "timestamp.txt").write_text(stamp if text is None else text)

    def collect(update: bool) -> None:
        app = ExchangeCollect(coursedir=CourseDirectory(root=str(course), course_id="c", assignment_id="lab"),
                              authenticator=Authenticator(), root=str(exchange), update=update)
        app.expected_uids = lambda: {"trainee-a": os.getuid(), "trainee-b": os.getuid(), "trainee-c": os.getuid()}
        app.start()

    def collected(student: str) -> str:
        return (course / "submitted" / student / "lab" / "timestamp.txt").read_text()

    submit("trainee-a", at(-300), "garbage")
    submit("trainee-b", at(-299))
    collect(update=False)
    assert collected("trainee-a") == at(-300)  # the name's time, not the file's
    submit("trainee-b", at(-240))
    collect(update=True)
    assert collected("trainee-b") == at(-240)
    # A submission collected before this fix, with the trainee's own unreadable timestamp.txt.
    (course / "submitted" / "trainee-a" / "lab" / "timestamp.txt").write_text("2026-13-45 garbage")
    submit("trainee-b", at(-180))
    collect(update=True)
    assert collected("trainee-b") == at(-180)
    assert "cannot be read as a time" in caplog.text
    assert collected("trainee-a") == at(-300)  # collected again (no time: older)
    # A folder named timestamp.txt, in a new entry and in one collected before.
    submit("trainee-c", at(-120))
    entry = next(p for p in inbound.iterdir() if p.name.startswith("trainee-c+"))
    (entry / "timestamp.txt").unlink()
    (entry / "timestamp.txt").mkdir()
    (entry / "timestamp.txt" / "x").write_text("x")
    collect(update=True)
    assert collected("trainee-c") == at(-120)
    shutil.rmtree(course / "submitted" / "trainee-a" / "lab" / "timestamp.txt", ignore_errors=True)
    (course / "submitted" / "trainee-a" / "lab" / "timestamp.txt").unlink(missing_ok=True)
    (course / "submitted" / "trainee-a" / "lab" / "timestamp.txt").mkdir()
    submit("trainee-b", at(-60))
    collect(update=True)
    assert collected("trainee-b") == at(-60)


# nbgrader's release_feedback reads timestamp.txt with open(...).read(), never closed
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_one_trainees_missing_secret_never_stops_the_feedback_of_the_others(tmp_path, caplog):
    """submission_secret.txt comes from the trainee's own inbound entry, theirs to remove after
    submitting: nbgrader's release_feedback stopped (FileNotFoundError) at the first feedback folder
    without one, and nobody after that trainee got feedback."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    from techday.hub.exchange import ExchangeReleaseFeedback

    course, exchange = tmp_path / "course", tmp_path / "exchange"
    exchange.mkdir()
    for student, secret in (("trainee-a", None), ("trainee-b", "s" * 128), ("trainee-c", "dir"), ("trainee-d", "d" * 128)):
        folder = course / "feedback" / student / "lab"
        folder.mkdir(parents=True)
        (folder / "lab.html").write_text(f"<html>{student}</html>")
        (folder / "timestamp.txt").write_text("2026-12-05 10:00:00.000000 UTC")
        if secret == "dir":
            (folder / "submission_secret.txt").mkdir()
        elif secret:
            (folder / "submission_secret.txt").write_text(secret)
    app = ExchangeReleaseFeedback(coursedir=CourseDirectory(root=str(course), course_id="c", assignment_id="lab",
                                                            student_id_exclude="trainee-d"),
                                  authenticator=Authenticator(), root=str(exchange))
    app.start()
    released = sorted((exchange / "c" / "feedback").iterdir())
    assert [p.read_text() for p in released] == ["<html>trainee-b</html>"]  # trainee-d excluded as asked
    assert "Not releasing the feedback of trainee-a" in caplog.text and "of trainee-c" in caplog.text


@pytest.mark.parametrize("how", ["removed", "a link"])
def test_an_entry_changed_between_scan_and_copy_stops_only_its_own_collect(tmp_path, caplog, how):
    """A trainee owns their inbound entry and may remove it, or swap a link in, at any moment: between
    collect's scan and its copy the copy raised (FileNotFoundError, NotADirectoryError) and the collect
    stopped for everyone after that trainee."""
    app, course, inbound = _scanned_collect(tmp_path)
    app.src_records.sort(key=lambda r: r["username"])  # trainee-a first
    entry = inbound / "trainee-a+lab+2026-12-05 10:00:00.000000 UTC+r"
    shutil.rmtree(entry)
    if how == "a link":
        os.symlink(tmp_path, entry)
    app.copy_files()
    assert (course / "submitted" / "trainee-b" / "lab" / "lab.ipynb").is_file()
    assert not (course / "submitted" / "trainee-a" / "lab").exists()
    assert "its entry changed while it was collected" in caplog.text


def test_an_entry_gone_between_listing_and_stat_is_refused_not_a_stop(tmp_path, monkeypatch):
    """An owner can create and remove entries in a loop: one listed by the scan and gone at its stat
    raised FileNotFoundError out of the scan, and nothing was collected. (The race is played by
    entry_refusal raising as its lstat would.)"""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    from techday.hub import exchange as ex

    real = ex.entry_refusal

    def racing(entry, student, stamp, uids):
        if student == "trainee-a":
            raise FileNotFoundError(2, "No such file or directory")
        return real(entry, student, stamp, uids)

    monkeypatch.setattr(ex, "entry_refusal", racing)
    exchange, course, inbound = _exchange(tmp_path, "trainee-a", "trainee-b")
    app = ex.ExchangeCollect(coursedir=CourseDirectory(root=str(course), course_id="c", assignment_id="lab"),
                             authenticator=Authenticator(), root=str(exchange))
    app.expected_uids = lambda: {"trainee-a": os.getuid(), "trainee-b": os.getuid()}
    app.start()
    assert (course / "submitted" / "trainee-b" / "lab" / "lab.ipynb").is_file()
    assert [why for name, why in app.refused if name.startswith("trainee-a+")] == \
        ["gone or changed while collected (No such file or directory)"]


def test_a_folder_put_in_an_entrys_place_after_the_scan_is_not_collected(tmp_path, caplog):
    """Caught: collect checked an entry's owner at its scan and copied whatever folder had that name at
    its copy, trusting the files of that folder's owner. ``inbound`` lets anyone add a name and an entry's
    owner remove theirs, so once A removed (or renamed) an entry after the scan, trainee B, knowing its
    name, could make a folder of B's under it before the copy: B's files collected as A's. The copy
    now takes only the folder the scan checked (the same inode, device and owner: a folder of another
    owner never passes, even on a reused inode). Played here as one user: another inode, same name.)"""
    app, course, inbound = _scanned_collect(tmp_path)
    entry = inbound / "trainee-a+lab+2026-12-05 10:00:00.000000 UTC+r"
    entry.rename(inbound / "moved away")   # kept, so that the new folder cannot reuse its inode
    entry.mkdir()
    (entry / "lab.ipynb").write_text("planted after the scan")
    app.copy_files()
    assert (course / "submitted" / "trainee-b" / "lab" / "lab.ipynb").is_file()
    assert not (course / "submitted" / "trainee-a" / "lab").exists(), "the swapped-in folder was collected"
    assert "its entry changed while it was collected" in caplog.text


def test_copy_untrusted_refuses_a_top_folder_other_than_the_one_checked(entry, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(OSError):
        copy_untrusted(str(entry), str(tmp_path / "out"), same_as=os.lstat(other))
    assert not (tmp_path / "out").exists()
    assert copy_untrusted(str(entry), str(tmp_path / "out2"), same_as=os.lstat(entry)) == []


def test_an_entry_named_or_changed_before_its_time_is_collected_at_its_last_change(tmp_path, caplog):
    """The time nbgrader records (and a due date's late penalty reads) came from the entry's name, and the
    entry is its owner's: after the due date a trainee made ``trainee-a+lab+<a time before it>+x`` by
    hand, or rewrote the notebook of an entry handed in on time, and it was collected as on time. The
    time is now the last change of anything copied (``st_ctime``, which no owner sets back), where that
    is more than the submit's few minutes after the name's."""
    import datetime

    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    from techday.hub.exchange import ExchangeCollect

    exchange, course, inbound = _exchange(tmp_path)
    now = datetime.datetime.now(datetime.timezone.utc)
    fmt = "%Y-%m-%d %H:%M:%S.%f UTC"
    early = (now - datetime.timedelta(days=2)).strftime(fmt)
    honest = (now - datetime.timedelta(seconds=30)).strftime(fmt)
    for student, stamp in (("trainee-a", early), ("trainee-b", honest)):
        entry = inbound / f"{student}+lab+{stamp}+r"
        entry.mkdir()
        (entry / "lab.ipynb").write_text("{}")
    app = ExchangeCollect(coursedir=CourseDirectory(root=str(course), course_id="c", assignment_id="lab"),
                          authenticator=Authenticator(), root=str(exchange))
    app.expected_uids = lambda: {"trainee-a": os.getuid(), "trainee-b": os.getuid()}
    app.start()

    def collected(student: str) -> datetime.datetime:
        from nbgrader.utils import parse_utc

        return parse_utc((course / "submitted" / student / "lab" / "timestamp.txt").read_text())

    assert collected("trainee-a") >= now.replace(tzinfo=None) - datetime.timedelta(seconds=5), collected("trainee-a")
    assert "after the time in its name" in caplog.text
    assert (course / "submitted" / "trainee-b" / "lab" / "timestamp.txt").read_text() == honest  # as named
