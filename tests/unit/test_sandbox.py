"""The autograde sandbox's pieces that need no kernel: bwrap's command line, the GPU binds, the refusal
without a sandbox, the static tamper check, the graded copy, and feedback without hidden tests."""

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from techday.course.syllabus import LabSpec
from techday.grading import sandbox
from techday.grading.checks import graded_copy
from techday.grading.results import HideHiddenTests
from techday.grading.review import review_findings as tamper_findings


def test_sandbox_command_exposes_only_python_and_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCTOR_TOKEN", "s3cret")
    env = sandbox.sandbox_env({"TECHDAY_TIER": "cpu"})
    argv = sandbox.sandbox_command("/usr/bin/bwrap", tmp_path, env, gpu=False)
    joined = " ".join(argv)
    assert "--unshare-all" in argv and "--clearenv" in argv and "--die-with-parent" in argv
    assert "s3cret" not in joined and "INSTRUCTOR_TOKEN" not in joined
    pkg = str(Path(sandbox.__file__).resolve().parents[1])
    assert argv[argv.index(pkg) + 1] == f"{sandbox.PKG_MOUNT}/techday"
    repo = str(Path(pkg).parent)
    bound = {argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind", "--dev-bind")}
    assert repo not in bound and str(Path(repo) / "build") not in bound
    assert str(Path(repo) / "labs") not in bound and str(Path(repo) / "tests") not in bound
    # The syllabus and the benchmark families are readable where find_root() looks: beside the package, entry by
    # entry (tests/grading/test_sandbox_reach.py: never a course root's folders).
    for public in ("course/syllabus.toml", "benchmarks/stream.py"):
        assert argv[argv.index(str(Path(repo) / public)) + 1] == f"{sandbox.PKG_MOUNT}/{public}"
    assert argv[argv.index(str(tmp_path)) + 1] == sandbox.WORK
    assert "--dev-bind" not in argv
    # Loopback names resolve inside (torchrun's rendezvous uses "localhost"); the host's hosts file stays out.
    hosts = argv[argv.index("/etc/hosts") - 1]
    assert hosts != "/etc/hosts" and "127.0.0.1\tlocalhost" in Path(hosts).read_text()


def test_what_the_sandbox_may_write_is_sized_and_nothing_else_is_writable(tmp_path, monkeypatch):
    """Wrong sandbox caught: the working folder bound from the host's disk, /tmp, /dev/shm, /dev and bwrap's
    root writable without a limit (RLIMIT_FSIZE caps one file, not how many); /proc writable (its /proc/sys held
    the host's kernel settings, writable where root grades)."""
    monkeypatch.setattr(sandbox, "sizes_tmpfs", lambda bwrap: True)
    monkeypatch.setattr(sandbox.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    (tmp_path / "techday-messages.xx.json").write_text("{}")
    argv = sandbox.sandbox_command("/usr/bin/bwrap", tmp_path, {}, gpu=True, disk_mb=64)
    sizes = {argv[i + 3]: int(argv[i + 1]) for i, a in enumerate(argv) if a == "--size"}
    assert sizes == {"/tmp": 64 * 2**20, "/dev/shm": 64 * 2**20, sandbox.WORK: 64 * 2**20}, sizes
    assert str(tmp_path) not in argv  # the host's folder is not bound; its files are, read-only
    ro = argv.index(str(tmp_path / "techday-messages.xx.json"))
    assert argv[ro - 1] == "--ro-bind" and argv[ro + 1] == f"{sandbox.WORK}/techday-messages.xx.json"
    # last of all the mounts, after the GPU's devices are bound into /dev
    assert argv.index("--remount-ro") > argv.index("--dev-bind")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--remount-ro"] == ["/dev", "/proc", "/"]


def test_gpu_tier_binds_the_nvidia_devices(monkeypatch):
    monkeypatch.setattr(sandbox.glob, "glob", lambda pattern: ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"])
    args = sandbox.gpu_binds()
    assert args[:3] == ["--dev-bind", "/dev/nvidia-uvm", "/dev/nvidia-uvm"]
    assert args.count("--dev-bind") == 3


def test_no_bwrap_means_a_clear_refusal(monkeypatch):
    monkeypatch.setenv("TECHDAY_BWRAP", "none")
    assert sandbox.find_bwrap() is None
    with pytest.raises(sandbox.SandboxUnavailable, match="--no-sandbox"):
        sandbox.check_sandbox()


def test_cell_timeout_defaults_and_cap():
    spec = LabSpec(id="x", title="x", track="t", minutes=1, timeout_s={"ci": 60, "full": 600})
    assert spec.cell_timeout("ci") == 60 and spec.cell_timeout("full") == 300 and spec.memory_mb == 4096


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    for source, meta in cells:
        cell = nbformat.v4.new_code_cell(source)
        if meta:
            cell.metadata["nbgrader"] = meta
        nb.cells.append(cell)
    return nb


def test_tamper_check_flags_reaching_into_the_kernel_not_honest_code():
    release = json.loads(nbformat.writes(_nb(
        ("from techday.labtools import assert_close", {"grade_id": "setup", "locked": True}),
        ("raise NotImplementedError()", {"grade_id": "ans", "solution": True}))))
    honest = _nb(("from techday.labtools import assert_close", {"grade_id": "setup", "locked": True}),
                 ("def f(x):\n    return sum(x) / len(x)", {"grade_id": "ans", "solution": True}))
    assert tamper_findings(honest, release) == []
    cheat = _nb(("from techday.labtools import assert_close", {"grade_id": "setup", "locked": True}),
                ("get_ipython().showtraceback = None\nassert_close = print", {"grade_id": "ans", "solution": True}))
    (finding,) = tamper_findings(cheat, release)
    assert "'ans'" in finding and "showtraceback" in finding and "rebinds assert_close" in finding


def test_graded_copy_drops_grading_metadata_of_copies_only(tmp_path):
    nb = _nb(("x = 1", {"grade_id": "setup", "locked": True}), ("x = 1", {"grade_id": "setup", "locked": True}))
    path = tmp_path / "a.ipynb"
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    cells = json.loads(graded_copy(path))["cells"]
    assert cells[0]["metadata"]["nbgrader"]["grade_id"] == "setup" and "nbgrader" not in cells[1]["metadata"]
    single = tmp_path / "b.ipynb"
    single.write_text(nbformat.writes(_nb(("x = 1", {"grade_id": "setup", "locked": True}))), encoding="utf-8")
    assert graded_copy(single) == single.read_bytes()


def test_feedback_hides_hidden_tests_and_their_output():
    source = ('"""checks f."""\nassert f(1) == 1\n### BEGIN HIDDEN TESTS\nassert f(-7) == 7\n'
              "### END HIDDEN TESTS\n")
    nb = _nb((source, {"grade_id": "t", "grade": True, "points": 1}), ("assert f(1) == 1", {}))
    nb.cells[0].execution_count = 2
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="f called with -7\n"),
                           nbformat.v4.new_output("error", ename="AssertionError", evalue="",
                                                  traceback=["Cell In[2], line 4\n----> 4 assert f(-7) == 7"])]
    out, _ = HideHiddenTests().preprocess(nb, {})
    text = nbformat.writes(out)
    assert "-7" not in text and "BEGIN HIDDEN" not in text
    assert "assert f(1) == 1" in out.cells[0].source and out.cells[0].outputs[0].text.startswith("failed")
    # (tests/unit/test_feedback.py: visible messages, tracebacks as IPython writes them)


def test_import_folder_keeps_names_and_never_overwrites(tmp_path):
    from techday.grading.checks import import_folder

    src, root = tmp_path / "inbox", tmp_path / "course"
    (src / "kim").mkdir(parents=True)
    (src / "lee.ipynb").write_text("{}")
    (src / "kim" / "my-lab.ipynb").write_text("{}")
    lines = import_folder(src, root, "lab")
    assert (root / "submitted" / "lee" / "lab" / "lab.ipynb").is_file()
    assert (root / "submitted" / "kim" / "lab" / "my-lab.ipynb").is_file()  # the checks will name it
    assert len(lines) == 2 and all(line.startswith("imported") for line in lines)
    assert all(line.startswith("kept") for line in import_folder(src, root, "lab"))


def test_a_link_is_never_imported_nor_graded(tmp_path):
    """Caught: a hand-in that is a link to the course's solutions, read as the trainee's notebook."""
    from techday.grading.checks import collect, import_folder

    solutions = tmp_path / "source.ipynb"
    solutions.write_text('{"solutions": true}')
    src, root = tmp_path / "inbox", tmp_path / "course"
    (src / "kim").mkdir(parents=True)
    os.symlink(solutions, src / "lee.ipynb")
    os.symlink(solutions, src / "kim" / "lab.ipynb")
    lines = import_folder(src, root, "lab")
    assert lines == ["skipped  lee: lee.ipynb is a link or not a file", "skipped  kim: lab.ipynb is a link or not a file"]
    assert not (root / "submitted" / "lee").exists()
    folder = root / "submitted" / "park" / "lab"
    folder.mkdir(parents=True)
    os.symlink(solutions, folder / "lab.ipynb")
    (sub,) = collect(root, "lab", {"cells": []})
    assert not sub.gradable and sub.status == "rejected" and "is a link" in sub.notes[0]


def test_tamper_check_leaves_the_course_own_cells_alone():
    """A demo cell as released (lab 00 rebinds its own `plt` when matplotlib is missing) is the
    course's code, not the trainee's; the same cell edited to rebind a locked import is flagged."""
    import copy

    release_nb = _nb(
        ("from techday.labtools import assert_close", {"grade_id": "setup", "locked": True}),
        ("try:\n    import matplotlib.pyplot as plt\nexcept ImportError:\n    plt = None", None),
        ("raise NotImplementedError()", {"grade_id": "ans", "solution": True}))
    release = json.loads(nbformat.writes(release_nb))
    honest = copy.deepcopy(release_nb)
    honest.cells[2].source = "def f(x):\n    return sum(x) / len(x)"
    assert tamper_findings(honest, release) == []
    edited = copy.deepcopy(honest)
    edited.cells[1].source += "\nassert_close = print"
    (finding,) = tamper_findings(edited, release)
    assert "cell 2" in finding and "rebinds assert_close" in finding


def _fake_systemd_run(tmp_path, monkeypatch, script: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "systemd-run"
    fake.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(sandbox, "_SCOPES", {})
    monkeypatch.setattr(sandbox, "_systemd_running", lambda: True)
    return str(fake)


def test_gpu_memory_scope_falls_back_to_the_user_manager(tmp_path, monkeypatch):
    # Like a grader without root: the system manager refuses, the user's manager makes the scope.
    fake = _fake_systemd_run(tmp_path, monkeypatch, 'case "$1" in --user) exit 0;; *) exit 1;; esac\n')
    prefix = sandbox.cgroup_prefix(sandbox.Limits(memory_mb=512))
    assert prefix[:3] == [fake, "--user", "--scope"] and "MemoryMax=512M" in prefix


def test_gpu_memory_scope_is_left_out_where_none_can_be_made(tmp_path, monkeypatch):
    _fake_systemd_run(tmp_path, monkeypatch, "echo 'Interactive authentication required.' >&2\nexit 1\n")
    assert sandbox.cgroup_prefix(sandbox.Limits()) == []  # started without a limit, not failed


def test_the_run_says_what_limits_memory(tmp_path, monkeypatch):
    limits = sandbox.Limits(memory_mb=2048)
    cpu = sandbox.memory_limit(limits, gpu=False)
    assert cpu.startswith("2048 MB of address space per process (RLIMIT_AS) and 2048 MB for all its processes "
                          "together"), cpu
    assert "; memfd and System V" in cpu and "user namespaces in the sandbox" in cpu, cpu
    assert sandbox.memory_limit(limits, gpu=False, sandbox=False).startswith("none")
    _fake_systemd_run(tmp_path / "user", monkeypatch, 'case "$1" in --user) exit 0;; *) exit 1;; esac\n')
    assert "2048 MB (MemoryMax, a systemd scope of the grader's user manager)" in sandbox.memory_limit(limits, gpu=True)
    _fake_systemd_run(tmp_path / "none", monkeypatch, "exit 1\n")
    assert sandbox.memory_limit(limits, gpu=True).startswith(
        "2048 MB for all its processes together with their sockets' and pipes' buffers, read from outside the sandbox")


def test_the_process_limit_follows_who_grades(monkeypatch):
    """RLIMIT_NPROC (set inside the sandbox) for a grader that is not root, on a kernel that counts it per
    user namespace; a cgroup for root, whom the kernel does not count; and the run says which."""
    limits = sandbox.Limits(max_processes=300)
    monkeypatch.setattr(sandbox, "cgroup_prefix", lambda *a, **k: [])
    monkeypatch.setattr(sandbox, "_kernel", lambda: (6, 1))
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    got = sandbox.process_limit(limits, gpu=False)
    assert got.how == "rlimit" and got.text.startswith("300 processes and threads (RLIMIT_NPROC")
    monkeypatch.setattr(sandbox, "_kernel", lambda: (5, 10))  # counted per user: not per sandbox
    assert sandbox.process_limit(limits, gpu=False).text.startswith("none: Linux 5.10 counts RLIMIT_NPROC per user")
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sandbox, "pids_cgroup_parent", lambda: Path("/sys/fs/cgroup/pids"))
    assert sandbox.process_limit(limits, gpu=False).how == "cgroup"
    monkeypatch.setattr(sandbox, "pids_cgroup_parent", lambda: None)
    assert "the grader runs as root" in sandbox.process_limit(limits, gpu=False).text
    monkeypatch.setattr(sandbox, "cgroup_prefix", lambda limits, memory=True, tasks=False: ["systemd-run"] if tasks else [])
    assert sandbox.process_limit(limits, gpu=False).how == "scope"
    assert sandbox.process_limit(limits, gpu=False, sandbox=False).text == "none (--no-sandbox)"


def test_tasks_max_joins_the_memory_scope(tmp_path, monkeypatch):
    _fake_systemd_run(tmp_path, monkeypatch, "exit 0\n")
    prefix = sandbox.cgroup_prefix(sandbox.Limits(memory_mb=512, max_processes=99), memory=True, tasks=True)
    assert "MemoryMax=512M" in prefix and "TasksMax=99" in prefix
    assert "MemoryMax=512M" not in sandbox.cgroup_prefix(sandbox.Limits(), memory=False, tasks=True)


def test_the_executor_sets_rlimit_nproc_only_where_it_counts(tmp_path, monkeypatch):
    """In rlimit mode the executor inside the sandbox gets --max-processes; never without the sandbox."""
    from techday.grading import executor

    seen = []
    def fake_run(argv, env, cwd, payload, work, limits, gpu, report, r, w, cgroup, user, **_):
        seen.append(argv)
        os.close(r)
        os.close(w)

    monkeypatch.setattr(executor, "_run", fake_run)
    monkeypatch.setattr(executor, "check_sandbox", lambda: "/usr/bin/bwrap")
    monkeypatch.setattr(executor, "process_limit", lambda *a, **k: sandbox.ProcessLimit("rlimit", ""))
    limits = sandbox.Limits(max_processes=77)
    executor.run_notebook("{}", tmp_path, limits, {}, sandbox=True, gpu=False, report={})
    executor.run_notebook("{}", tmp_path, limits, {}, sandbox=False, gpu=False, report={})
    boxed, plain = seen
    assert boxed[0] == "/usr/bin/bwrap" and boxed[boxed.index("--max-processes") + 1] == "77"
    assert "--max-processes" not in plain


def test_one_place_builds_the_settings_of_both_course_roots(tmp_path):
    """The course root `techday build` writes and a private root of `techday grade autograde` name the
    same preprocessors, and SandboxExecute reads the lab's limits from the syllabus as autograde does."""
    from traitlets.config.loader import PyFileConfigLoader

    from techday.course.build import write_config
    from techday.course.syllabus import load_course
    from techday.grading.config import (
        AUTOGRADE_PREPROCESSORS,
        FEEDBACK_PREPROCESSORS,
        SANITIZE_PREPROCESSORS,
        grade_settings,
    )
    from techday.grading.executor import SandboxExecute
    from techday.grading.run import private_config

    repo = Path(__file__).resolve().parents[1] / "fixtures" / "course"
    (tmp_path / "grading").mkdir()
    (tmp_path / "grading" / "nbgrader_config.py").write_text("c = get_config()\n")
    course = load_course(repo)
    course.root = tmp_path  # where grading/nbgrader_config.py is
    settings = grade_settings(course, "grade-lab", "cpu", "ci")
    roots = {"course": tmp_path / "course", "private": tmp_path / "private"}
    write_config(course, roots["course"])
    roots["private"].mkdir()
    (roots["private"] / "nbgrader_config.py").write_text(
        private_config(settings, roots["private"], tmp_path / "r.json"))
    for name, root in roots.items():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        assert list(config.Autograde.autograde_preprocessors) == AUTOGRADE_PREPROCESSORS, name
        assert list(config.Autograde.sanitize_preprocessors) == SANITIZE_PREPROCESSORS, name
        assert list(config.GenerateFeedback.preprocessors) == FEEDBACK_PREPROCESSORS, name
        config.SandboxExecute.course_dir = str(repo)
        config.SandboxExecute.tier, config.SandboxExecute.scale = "cpu", "ci"
        got = SandboxExecute(config=config).settings("grade-lab")
        assert (got.limits, got.env, got.sandbox, got.gpu) == (settings.limits, settings.env, True, False), name
    assert settings.limits.cell_timeout_s == 10 and settings.limits.memory_mb == 2048  # grade-lab's syllabus


def test_root_without_cgroups_starts_the_sandbox_as_a_host_uid_of_its_own(tmp_path, monkeypatch):
    """Where root can have neither a scope nor a cgroup (a container), the sandbox runs as an unprivileged host uid
    (so that RLIMIT_NPROC counts) of its own (techday.grading.hostuids: no other sandbox shares its per-user kernel
    budgets), in a scratch folder that uid owns, removed after, and the uid let go after that.
    Wrong answer caught: every sandbox run as the host's one nobody."""
    from techday.grading import executor, hostuids

    limits = sandbox.Limits(max_processes=55)
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sandbox, "_kernel", lambda: (6, 1))
    monkeypatch.setattr(sandbox, "cgroup_prefix", lambda *a, **k: [])
    monkeypatch.setattr(sandbox, "pids_cgroup_parent", lambda: None)
    monkeypatch.setattr(sandbox, "nobody_sandbox_problem", lambda gpu=False: None)
    assert sandbox.process_limit(limits, gpu=False).how == "nobody"
    monkeypatch.setattr(sandbox, "nobody_sandbox_problem", lambda gpu=False: "Permission denied")
    text = sandbox.process_limit(limits, gpu=False).text
    assert "cannot run as an unprivileged host user (Permission denied)" in text, text
    monkeypatch.setattr(sandbox, "nobody_sandbox_problem", lambda gpu=False: None)

    seen, released = [], []

    def fake_run(argv, env, cwd, payload, work, limits, gpu, report, r, w, cgroup, user, **kw):
        seen.append((argv, user, Path(argv[argv.index(sandbox.WORK) - 1])))
        assert kw.get("written") == seen[-1][2]  # the disk guard measures the folder the notebook writes
        assert not released and seen[-1][2].exists()  # the uid is held, and its folder there, while it runs
        os.close(r)
        os.close(w)

    class Held(hostuids.HostUser):
        def release(self):
            assert not seen[-1][2].exists()  # its folder removed first
            released.append(self.uid)
            return []

    monkeypatch.setattr(executor, "_run", fake_run)
    monkeypatch.setattr(executor, "check_sandbox", lambda: "/usr/bin/bwrap")
    monkeypatch.setattr(executor, "process_limit", lambda *a, **k: sandbox.ProcessLimit("nobody", ""))
    monkeypatch.setattr(executor.os, "chown", lambda path, uid, gid: seen.append((path, uid, gid)))
    monkeypatch.setattr(hostuids, "allocate", lambda: Held(2_000_000_007, 2_000_000_007, None))
    executor.run_notebook("{}", tmp_path, limits, {}, sandbox=True, gpu=False, report={})
    (chowned, uid, gid), (argv, user, bound) = seen
    assert user == (2_000_000_007, 2_000_000_007) == (uid, gid) != sandbox.NOBODY and bound == chowned != tmp_path
    assert argv[argv.index("--max-processes") + 1] == "55"
    assert not bound.exists() and released == [2_000_000_007]  # the scratch folder removed, then the uid let go


def test_a_cell_stopped_by_the_process_limit_is_named_on_the_status_line():
    from techday.grading.executor import process_limit_events

    nb = _nb(("import os\nos.fork()", None), ("import threading", None), ("open('x')", None))
    nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="BlockingIOError",
                                                  evalue="[Errno 11] Resource temporarily unavailable", traceback=[])]
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="RuntimeError", evalue="can't start new thread",
                                                  traceback=[])]
    nb.cells[2].outputs = [nbformat.v4.new_output("error", ename="FileNotFoundError", evalue="x", traceback=[])]
    events = process_limit_events(nb, [0, 1, 2])
    assert [e["cell"] for e in events] == [0, 1]
    (note, _) = sandbox.event_notes({"events": events})
    assert note == ("cell 1 could not start a process or thread: the process limit "
                    "(BlockingIOError: [Errno 11] Resource temporarily unavailable)")


FORGED = "notes.ipynb\ngraded   trainee-009 01-lab.ipynb 10\u22155\n\x1b[1Ax\u202e.ipynb"


def test_a_status_line_is_one_line_whatever_the_file_and_id(tmp_path):
    """A file name (the trainee's choice) with a newline printed a second status line naming another
    trainee; a terminal escape or a bidirectional control could rewrite one."""
    from techday.grading.checks import Submission, import_folder

    sub = Submission("trainee-003", "01-lab", str(tmp_path / FORGED), status="rejected",
                     notes=[f"wrong notebook name {FORGED!r}", "a note\nwith a line\x1b[2K break"])
    line = sub.line()
    assert line.isprintable() and line.startswith("rejected trainee-003 'notes.ipynb\\ngraded"), line
    assert Submission("김민준", "01-lab", str(tmp_path / "01-lab.ipynb")).line().startswith("pending  김민준 01-lab.ipynb")
    src = tmp_path / "inbox"
    (src / "x\ny\x1b[2K").mkdir(parents=True)
    (src / "x\ny\x1b[2K" / FORGED).write_text("{}", encoding="utf-8")
    (src / "김민준.ipynb").write_text("{}", encoding="utf-8")
    lines = import_folder(src, tmp_path / "root", "01-lab")
    assert len(lines) == 2 and all(line.isprintable() for line in lines), lines
    assert any(line.startswith("imported 김민준: 김민준.ipynb") for line in lines), lines


def test_a_trainee_id_that_can_look_like_another_is_flagged(tmp_path):
    """``kіm.minsu`` (a Cyrillic і) and ``trainee-00١`` (an Arabic-Indic one) were graded clean beside
    ``kim.minsu`` and ``trainee-001`` (NFKC and case folding leave them apart): a certificate whose id
    reads as another trainee's, issued without a person looking. ASCII and Hangul ids stay clean."""
    import unicodedata

    from techday.grading.checks import collect

    root = tmp_path / "course"
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    ids = ["kim.minsu", "k\u0456m.minsu", "trainee-001", "trainee-00\u0661", "김민준",
           unicodedata.normalize("NFD", "이서연"), "ｋｉｍ", "a\u200bb"]
    for student in ids:
        path = root / "submitted" / student / "lab" / "lab.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(nbformat.writes(nb), encoding="utf-8")
    subs = {s.student: s for s in collect(root, "lab", {"cells": []})}
    assert set(subs) == set(ids)

    def flagged(sub) -> bool:  # as the grader and `techday grade check` decide it
        return any(not n.startswith(("non-ASCII", "graded WITHOUT")) for n in sub.notes)

    for clean in ("kim.minsu", "trainee-001", "김민준", unicodedata.normalize("NFD", "이서연")):
        assert not flagged(subs[clean]), subs[clean].notes
    for odd, char in (("k\u0456m.minsu", "CYRILLIC"), ("trainee-00\u0661", "ARABIC-INDIC"), ("ｋｉｍ", "FULLWIDTH"),
                      ("a\u200bb", "ZERO WIDTH SPACE")):
        assert flagged(subs[odd]) and char in " ".join(subs[odd].notes), subs[odd].notes


def test_two_hand_ins_for_one_id_are_neither_imported(tmp_path):
    """``kim.ipynb`` and ``kim .ipynb`` (or a name in NFC and one in NFD, or a file and a folder) became
    one id: the first in sorted order was imported as kim's hand-in ("kim .ipynb", someone else's) and
    kim's own was dropped as "already collected". And "...ipynb" was written outside submitted/."""
    import unicodedata

    from techday.grading.checks import import_folder

    src, root = tmp_path / "inbox", tmp_path / "course"
    src.mkdir()
    (src / "kim.ipynb").write_text('{"by": "kim"}')
    (src / "kim .ipynb").write_text('{"by": "someone else"}')
    nfc = "김민준"
    (src / f"{unicodedata.normalize('NFD', nfc)}.ipynb").write_text('{"by": "nfd"}')
    (src / nfc).mkdir()
    (src / nfc / "lab.ipynb").write_text('{"by": "minjun"}')
    (src / nfc / "notes.ipynb").write_text('{"by": "minjun too"}')  # one folder: one source
    (src / "lee").mkdir()
    (src / "lee" / "lab.ipynb").write_text('{"by": "lee"}')
    (src / "lee" / "extra.ipynb").write_text('{"by": "lee"}')
    (src / "...ipynb").write_text('{"by": "dots"}')
    lines = import_folder(src, root, "lab")
    assert not (root / "submitted" / "kim").exists() and not (root / "submitted" / nfc).exists(), lines
    assert sorted(p.name for p in (root / "submitted" / "lee" / "lab").iterdir()) == ["extra.ipynb", "lab.ipynb"]
    assert [line for line in lines if "2 hand-ins for one trainee id" in line and line.startswith("skipped  kim:")]
    assert [line for line in lines if "2 hand-ins for one trainee id" in line and nfc in line]
    assert not (root / "lab").exists() and any("no trainee id" in line for line in lines), lines


def test_autograde_prints_report_lines_as_plain_printable_text(monkeypatch, capsys, tmp_path):
    """`autograde`'s report lines (a trainee id in "waiting <id>: the gradebook is locked") went to
    rich as markup: an --import id such as ``[link=https://x.example]kim[/link]`` became a hyperlink,
    a terminal escape went through raw."""
    from techday.cli import grade
    from techday.grading import run as grading_run
    from techday.grading.run import GradeRun

    line = "waiting  [link=https://x.example]kim[/link]\x1bM: the gradebook is locked"

    def fake(course, lab, root, *a, report=print, **k):
        report(line)
        return GradeRun(lab, [], 0, None, 0.0, tmp_path / "state.json")

    monkeypatch.setattr(grading_run, "autograde", fake)
    monkeypatch.setattr(grade, "_one_lab", lambda course, lab: "lab")
    monkeypatch.setattr(grade, "_root", lambda args, course: tmp_path)
    args = type("A", (), {"lab": "lab", "no_sandbox": False, "workers": 1, "no_referee": False,
                          "retry_failed": False, "cell_timeout": None, "draw": None})()
    grade.cmd_autograde(args, None, "cpu", "ci")
    out = capsys.readouterr().out
    assert "[link=https://x.example]kim[/link]\\x1bM" in out and "\x1b" not in out, out


def test_one_notebook_that_cannot_be_checked_never_stops_the_others(tmp_path):
    """A hand-in of JSON nested 200 000 deep raised RecursionError out of the checks: `techday grade
    check` and `autograde` stopped for the whole room. It is that file's rejection now."""
    from techday.grading.checks import collect

    root = tmp_path / "course"
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    hand_ins = {"a-deep": "[" * 200_000 + "]" * 200_000,
                "b-deep-cell": '{"cells": [{"cell_type": "code", "metadata": ' + '{"a":' * 100_000 + "1"
                               + "}" * 100_000 + "}]}",
                "c-honest": nbformat.writes(nb)}
    for student, text in hand_ins.items():
        path = root / "submitted" / student / "lab" / "lab.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
    subs = {s.student: s for s in collect(root, "lab", {"cells": []})}
    for deep in ("a-deep", "b-deep-cell"):
        assert subs[deep].status == "rejected" and "RecursionError" in subs[deep].notes[0], subs[deep].notes
    assert subs["c-honest"].gradable and subs["c-honest"].status == "pending"


def test_an_id_that_is_markup_is_never_imported_nor_graded(tmp_path):
    """Caught: ``<img src=x onerror=alert(1)>.ipynb`` in an --import folder became that trainee's id,
    graded clean (ASCII, printable), and nbgrader's formgrader writes ids into its pages unescaped: the
    script ran in the instructor's browser when the submission was opened. An id is letters, digits,
    spaces and ``._-@+`` (an allow-list); letters of any script stay ids (flagged where not ASCII or Hangul)."""
    from techday.grading.checks import collect, import_folder

    src, root = tmp_path / "inbox", tmp_path / "course"
    src.mkdir()
    bad = ["<img src=x onerror=alert(1)>", 'kim" onmouseover="x', "a&amp;b", "kim'", "x;y", "kim (1)"]
    good = ["trainee-007", "kim.minsu", "kim minsu", "kim@x.example", "kim+lab", "김민준", "k\u0456m"]
    for student in bad + good:
        (src / f"{student}.ipynb").write_text("{}")
    lines = import_folder(src, root, "lab")
    imported = {p.name for p in (root / "submitted").iterdir()}
    assert imported == set(good), lines
    assert sum(line.startswith("skipped") and "rename it" in line for line in lines) == len(bad), lines
    folder = root / "submitted" / "<svg onload=alert(2)>" / "lab"  # made by hand, or by an older --import
    folder.mkdir(parents=True)
    (folder / "lab.ipynb").write_text("{}")
    subs = {s.student: s for s in collect(root, "lab", {"cells": []})}
    odd = subs["<svg onload=alert(2)>"]
    assert odd.status == "rejected" and not odd.gradable and "rename it" in odd.notes[0], odd
    assert all(subs[s].status != "rejected" or "rename it" not in " ".join(subs[s].notes) for s in good)


def test_a_hand_in_too_big_to_check_is_rejected_unread(tmp_path, monkeypatch):
    """The checks run one hand-in after another for the whole room before anything is graded: 100 000
    one-line cells took 29 s of CPU, 300 000 lines of code in one cell 45 s, 20 000 unknown graded cells
    made a status line of 1.4 million characters, and every file was read whole (``--import`` has no size
    limit) however big. Each is now that hand-in's rejection (or a count), decided before the slow part."""
    import time

    from techday.grading import checks
    from techday.grading.checks import collect

    root = tmp_path / "course"

    def hand_in(student: str, cells: list) -> None:
        nb = nbformat.v4.new_notebook()
        nb.cells = cells
        path = root / "submitted" / student / "lab" / "lab.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(nbformat.writes(nb), encoding="utf-8")

    code = nbformat.v4.new_code_cell
    max_cells, max_chars, max_notes = (getattr(checks, name, default) for name, default in
                                       (("MAX_CELLS", 1_000), ("MAX_SOURCE_CHARS", 500_000), ("MAX_NOTES", 10)))
    hand_in("many-cells", [code("x = 1") for _ in range(max_cells + 1)])
    hand_in("much-code", [code("x = 1\n" * (max_chars // 6 + 1))])
    forged = [code("x = 1", metadata={"nbgrader": {"grade": False, "solution": True, "locked": False,
                                                    "grade_id": f"g{i}", "schema_version": 3}}) for i in range(200)]
    hand_in("unknown-ids", forged)
    hand_in("honest", [code("x = 1")])
    limit = max(p.stat().st_size for p in root.glob("submitted/*/lab/lab.ipynb"))
    monkeypatch.setattr(checks, "MAX_NOTEBOOK_BYTES", limit, raising=False)
    printed = code("x = 1")
    printed.outputs = [nbformat.v4.new_output("stream", text="x" * limit)]
    hand_in("big-file", [printed])
    start = time.process_time()
    subs = {s.student: s for s in collect(root, "lab", {"cells": []})}
    assert time.process_time() - start < 20
    for student, says in (("many-cells", "cells, more than"), ("much-code", "characters of cell text"),
                          ("big-file", "is over")):
        assert subs[student].status == "rejected" and says in subs[student].notes[0], subs[student].notes
    assert subs["honest"].gradable and subs["honest"].status == "pending", subs["honest"].notes
    unknown = [n for n in subs["unknown-ids"].notes if "unknown graded cell" in n]
    assert len(unknown) == max_notes + 1 and "190 more" in unknown[-1], unknown


def test_ids_that_differ_only_in_punctuation_are_flagged_as_one_trainee(tmp_path):
    """``kim.`` beside ``kim`` and ``trainee_007`` beside ``trainee-007`` were graded as two clean trainees
    (case, spaces and Unicode form were compared, not ``._-``): two certificates whose ids read as one,
    and a trailing dot that Windows drops from a file name. Distinct names stay apart."""
    from techday.grading.checks import collect

    root = tmp_path / "course"
    for student in ("kim", "kim.", "trainee-007", "trainee_007", "lee", "lee-minsu"):
        path = root / "submitted" / student / "lab" / "lab.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(nbformat.writes(nbformat.v4.new_notebook()), encoding="utf-8")
    subs = {s.student: s for s in collect(root, "lab", {"cells": []})}
    for student in ("kim", "kim.", "trainee-007", "trainee_007"):
        assert any("same trainee" in n for n in subs[student].notes), subs[student].notes
    assert not subs["lee"].notes and not subs["lee-minsu"].notes


@pytest.mark.parametrize("sized", [True, False])
def test_the_sandboxs_scratch_space_is_bounded_or_on_disk(sized, tmp_path, monkeypatch):
    """``/tmp`` and ``/dev/shm`` were tmpfs as big as half the host's memory, and ``/dev`` was writable: a
    notebook wrote 300 MB into each at 1.8 GB/s, host memory that RLIMIT_AS does not count, taken from
    the other trainees' kernels and the grader. Each is now a tmpfs of ``scratch_mb`` (or, with a bwrap
    that cannot size one, a folder on disk), and ``/dev`` is read-only."""
    try:
        bwrap = sandbox.check_sandbox()
    except sandbox.SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    if sized and not sandbox.sizes_tmpfs(bwrap):
        pytest.skip("this bwrap cannot size a tmpfs (bubblewrap before 0.10)")
    monkeypatch.setitem(sandbox._SIZED, bwrap, sized)
    work = tmp_path / "work"
    work.mkdir()
    script = ("for d in /tmp /dev/shm /dev; do dd if=/dev/zero of=$d/fill bs=1M count=200 2>/dev/null; "
              "echo $d $(stat -c %s $d/fill 2>/dev/null || echo none); done")
    argv = sandbox.sandbox_command(bwrap, work, sandbox.sandbox_env({}), False, 64) + ["/bin/sh", "-c", script]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    written = dict(line.split() for line in out.splitlines())
    assert written["/dev"] == "none", out
    for where in ("/tmp", "/dev/shm"):
        if sized:
            assert int(written[where]) <= 64 * 1024 * 1024, out
        else:  # on the host's disk, in the work folder, never in its memory
            assert (work / {"/tmp": ".tmp", "/dev/shm": ".shm"}[where] / "fill").stat().st_size == 200 * 1024 * 1024


def test_a_notebook_filling_the_graders_disk_is_stopped(tmp_path, monkeypatch):
    """The working folder is on the grading host's disk (files up to RLIMIT_FSIZE each, as many as the
    notebook's time allowed): a notebook could fill it in about a minute, and a full disk fails every
    other trainee's grading (the gradebook's writes). When the disk runs low, the notebook whose folder
    holds more than ``DISK_OWN`` is stopped (flagged, every test 0); one that wrote little runs on."""
    import sys
    import time

    from techday.grading import executor
    from techday.grading.sandbox import Limits, event_notes

    monkeypatch.setattr(executor, "DISK_FLOOR", 2**62, raising=False)  # "nearly full", whatever this disk has
    monkeypatch.setattr(executor, "DISK_OWN", 2**20, raising=False)
    work = tmp_path / "private" / ".sandbox"
    work.mkdir(parents=True)
    writer = ("import time\nopen('fill', 'wb').write(b'x' * 3 * 2**20)\ntime.sleep(60)\n")
    r, w = os.pipe()
    report: dict = {}
    start = time.monotonic()
    result = executor._run([sys.executable, "-c", writer], {"PATH": os.environ.get("PATH", "")}, str(work), "{}",
                           work, Limits(notebook_timeout_s=30), False, report, r, w, None, None)
    assert result is None and time.monotonic() - start < 20, report
    assert report["events"][0]["event"] == "disk-full" and "disk was nearly full" in event_notes(report)[0], report
    monkeypatch.setattr(executor, "DISK_OWN", 2**30, raising=False)  # a folder of a few MB: not the one
    (work / "fill").unlink()
    r, w = os.pipe()
    report = {}
    honest = "import time\nopen('fill', 'wb').write(b'x' * 3 * 2**20)\ntime.sleep(2)\n"
    executor._run([sys.executable, "-c", honest], {"PATH": os.environ.get("PATH", "")}, str(work), "{}",
                  work, Limits(notebook_timeout_s=30), False, report, r, w, None, None)
    assert "events" not in report, report


def _bpf(program: bytes, nr: int, arch: int, arg0: int = 0) -> int:
    """What the kernel's classic-BPF machine returns for one system call (the instructions the filter uses)."""
    import struct

    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data, acc, pc = {0: nr, 4: arch, 16: arg0 & 0xFFFFFFFF}, 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = data[k]
        elif code == 0x06:
            return k
        elif code in (0x15, 0x35):
            taken = acc == k if code == 0x15 else acc >= k
            pc += jt if taken else jf
        else:
            raise AssertionError(f"instruction {code:#x} is not one the filter should use")
        pc += 1


@pytest.mark.parametrize("machine", sorted(sandbox._SECCOMP_ARCHES))
def test_the_seccomp_filter_refuses_memory_no_limit_counts_and_nothing_else(machine):
    """Wrong answers caught: a jump off by one (the call after a refused one refused, or a refused one
    let through), x32 numbers or another architecture's table let through; a socket of a family whose buffers the
    grader cannot read (AF_ALG 38, AF_VSOCK 40, AF_PACKET 17...) let through, or a Unix, IP or netlink one refused."""
    audit, calls, (socket_nr, socketpair_nr) = sandbox._SECCOMP_ARCHES[machine]
    program = sandbox.seccomp_filter(machine)
    eperm, allow, eafnosupport = 0x00050000 | 1, 0x7FFF0000, 0x00050000 | 97
    for name, nr in calls.items():
        assert _bpf(program, nr, audit) == eperm, name
        assert _bpf(program, nr | 0x40000000, audit) == eperm, name
    for nr in set(range(0, 460)) - set(calls.values()) - {socket_nr, socketpair_nr}:
        assert _bpf(program, nr, audit) == allow, nr
        assert _bpf(program, nr, audit, 38) == allow, nr  # only socket calls look at their first argument
    for nr in (socket_nr, socketpair_nr):
        for family in range(0, 64):
            want = allow if family in (1, 2, 10, 16) else eafnosupport
            assert _bpf(program, nr, audit, family) == want, (nr, family)
        assert _bpf(program, nr, audit, (1 << 32) | 38) == eafnosupport  # the kernel reads an int: low 32 bits
    assert _bpf(program, 1, 0x40000003) == eperm  # i386's table, on any machine
    assert sandbox.seccomp_filter("sparc64") is None


def test_folders_of_installed_packages_on_sys_path_are_bound_and_nothing_else(tmp_path, monkeypatch):
    """Wrong answers caught: packages in a site folder outside the interpreter's prefix (the user's own, or one a
    ``.pth`` file adds) missing in the sandbox; a checkout on PYTHONPATH (the labs' solutions) or another folder of
    the path bound into it."""
    import sys
    from pathlib import Path

    import techday

    extra = tmp_path / "machine" / "lib" / "python3" / "site-packages"
    extra.mkdir(parents=True)
    dist = tmp_path / "usr" / "dist-packages"
    dist.mkdir(parents=True)
    checkout = tmp_path / "some-checkout"
    (checkout / "labs").mkdir(parents=True)
    ours = tmp_path / "techday-checkout"  # this package's checkout: a site folder inside it stays out
    (ours / "techday").mkdir(parents=True)
    own = ours / ".venv-like" / "site-packages"
    own.mkdir(parents=True)
    monkeypatch.setattr(techday, "__file__", str(ours / "techday" / "__init__.py"))
    monkeypatch.setattr(sys, "path", [*sys.path, str(extra), str(dist), str(checkout), "", str(own)])
    roots = sandbox.python_roots()
    assert str(extra) in roots and str(dist) in roots, roots
    assert str(checkout) not in roots and str(own) not in roots, roots
    assert not any(Path(r) == Path.cwd() for r in roots), roots


def test_repeated_events_are_kept_once_and_counted():
    """Wrong answers caught: 100,000 copies of one tripwire event each kept (8 MB of the result, one log line and one
    status note each); different events merged; how many there were lost; something not an event passed on."""
    trip = {"cell": 0, "event": "referee", "what": "refused raw memory access (ctypes.dlsym)"}
    other = [{"cell": n, "event": "output-truncated", "bytes": n} for n in range(sandbox.MAX_EVENTS + 5)]
    events = sandbox.squeeze_events([trip] * 100_000 + [{"cell": 1, "event": "kernel-died"}, "forged", *other])
    assert events[0] == {**trip, "times": 100_000} and events[1] == {"cell": 1, "event": "kernel-died"}
    assert len(events) == sandbox.MAX_EVENTS + 1 and events[-1] == {"event": "events-dropped", "times": 8}
    assert sandbox.squeeze_events(events) == events  # folding twice changes nothing
    notes = sandbox.event_notes({"events": events})
    assert notes[0].endswith("(cell 1) (100000 times)")
    assert notes[-1] == "review: 8 more events of the notebook not kept"


def test_a_sandbox_whose_cpu_cgroup_cannot_be_made_still_gets_its_pids_cgroup(tmp_path):
    """Wrong answer caught: a cpu cgroup that cannot be made (a cgroup file system that refuses it) failing the whole
    sandbox (the notebook not graded) or leaving folders behind; and a pids cgroup's cpu twin left behind."""
    pids, cpu = tmp_path / "pids", tmp_path / "cpu"
    pids.mkdir()
    cpu.mkdir()
    made = sandbox.PidsCgroup(pids, 64, cpu=(tmp_path / "missing", False))
    assert made.cpu is None and (made.path / "pids.max").read_text() == "64"
    (made.path / "pids.max").unlink()
    made.remove()
    assert not made.path.exists()
    both = sandbox.PidsCgroup(pids, 64, cpu=(cpu, False))
    assert (both.cpu / "cpu.shares").read_text() == str(sandbox.CPU_SHARES)
    for folder in (both.path, both.cpu):  # what the kernel removes with a cgroup's folder, a plain folder holds
        for f in folder.iterdir():
            f.unlink()
    both.remove()
    assert not both.path.exists() and not both.cpu.exists()
