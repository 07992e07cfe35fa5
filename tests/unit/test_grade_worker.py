"""The long-lived nbgrader worker of ``techday grade autograde`` (techday/grading/worker.py) and how the
grader survives a worker that fails: it answers, is reused, and is replaced when it dies or stalls."""

import sys
import textwrap

import pytest

from techday.grading.pool import NbgraderWorker, WorkerPool, _log_error


def _fake(tmp_path, body: str) -> list[str]:
    """A stand-in worker: says it is ready, then runs ``body`` for each job line."""
    script = tmp_path / "fake_worker.py"
    script.write_text(textwrap.dedent('''
        import json, os, sys, time
        print(json.dumps({"ready": True}), flush=True)
        for n, line in enumerate(sys.stdin):
            job = json.loads(line)
    ''') + textwrap.indent(textwrap.dedent(body), " " * 4), encoding="utf-8")
    return [sys.executable, str(script)]


def test_real_worker_answers_and_is_reused(tmp_path):
    w = NbgraderWorker({"PATH": "/usr/bin:/bin"}, tmp_path / "w.log")
    try:
        first = w.autograde(tmp_path / "no-such-root", "lab", "trainee", timeout=120)
        pid = w.proc.pid
        second = w.autograde(tmp_path / "no-such-root", "lab", "trainee", timeout=120)
        assert w.proc.pid == pid, "the worker was not reused"
    finally:
        w.close()
    for result in (first, second):
        assert result["success"] is False
        assert "nbgrader_config.py" in result["error"] or "No such file" in result["error"], result
    assert "nbgrader_config.py" in _log_error(first) or "rror" in _log_error(first)


def test_worker_that_dies_fails_one_job_and_is_replaced(tmp_path):
    argv = _fake(tmp_path, '''
        if job["student"] == "crash":
            os._exit(3)
        print(json.dumps({"success": True, "pid": os.getpid()}), flush=True)
    ''')
    w = NbgraderWorker({"PATH": "/usr/bin:/bin"}, tmp_path / "w.log", argv=argv)
    try:
        pid = w.autograde(tmp_path, "lab", "a", timeout=30)["pid"]
        with pytest.raises(RuntimeError, match="exit 3"):
            w.autograde(tmp_path, "lab", "crash", timeout=30)
        assert w.proc is None
        again = w.autograde(tmp_path, "lab", "b", timeout=30)["pid"]
        assert again != pid, "a dead worker was not replaced"
    finally:
        w.close()


def test_worker_that_stalls_is_killed(tmp_path):
    argv = _fake(tmp_path, '''
        time.sleep(600)
    ''')
    w = NbgraderWorker({"PATH": "/usr/bin:/bin"}, tmp_path / "w.log", argv=argv)
    with pytest.raises(TimeoutError, match="no answer in 2 s"):
        w.autograde(tmp_path, "lab", "a", timeout=2)
    assert w.proc is None  # killed, not left running
    w.close()


def test_worker_is_recycled_after_max_jobs(tmp_path):
    argv = _fake(tmp_path, '''
        print(json.dumps({"success": True, "pid": os.getpid()}), flush=True)
    ''')
    pool = WorkerPool(1, {"PATH": "/usr/bin:/bin"}, tmp_path)
    pool.all[0].argv, pool.all[0].max_jobs = argv, 2
    try:
        pids = [pool.autograde(tmp_path, "lab", f"t{i}", timeout=30)["pid"] for i in range(5)]
    finally:
        pool.close()
    assert pids[0] == pids[1] and pids[2] == pids[3] and len(set(pids)) == 3, pids


def test_default_workers_follow_the_cores_and_spare_the_gpu():
    from techday.grading.pool import default_workers

    assert default_workers("cpu", cpus=8) == 8 and default_workers("sim", cpus=2) == 2
    assert default_workers("gpu", cpus=16) == 4 and default_workers("gpu", cpus=2) == 2


def test_worker_runs_nbgrader_commands_as_the_command_line_does(tmp_path):
    """The course's own nbgrader commands in the long-lived worker (techday.course.build.nbgrader with
    ``workers``). Caught: a release that differs from the command line's by a byte; a failing command
    answered as a success (exit 0) or without nbgrader's error; a job's folder or environment that
    stays in the worker for the next job (each root's nbgrader_config.py records what it saw)."""
    import json

    from techday.course.build import build, nbgrader, nbgrader_workers
    from techday.course.layout import notebook
    from techday.course.syllabus import load_course
    from tests.conftest import FIXTURE_COURSE

    course = load_course(FIXTURE_COURSE)
    cli, served = tmp_path / "cli" / "course", tmp_path / "served" / "course"
    for root in (cli, served):  # each config names its own root
        build(course, ["ok-lab"], release=False, root=root, sandboxed=False)
    spy = ("\nimport json as _j, os as _o\n"
           "with open('seen.json', 'w') as _f:\n"
           "    _j.dump({'cwd': _o.getcwd(), 'x': _o.environ.get('TECHDAY_SPY')}, _f)\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "nbgrader_config.py").write_text("c = get_config()" + spy, encoding="utf-8")
    with (served / "nbgrader_config.py").open("a", encoding="utf-8") as f:
        f.write(spy)
    assert nbgrader(cli, "generate_assignment", "ok-lab", "--force").returncode == 0
    with nbgrader_workers(tmp_path / "logs") as workers:
        made = nbgrader(served, "generate_assignment", "ok-lab", "--force", env={"TECHDAY_SPY": "1"}, workers=workers)
        pid = workers.all[0].proc.pid
        missing = nbgrader(empty, "generate_assignment", "no-such-lab", workers=workers)
        assert workers.all[0].proc.pid == pid, "the worker was not reused"
    assert made.returncode == 0, made.stdout
    assert notebook(served, "release", "ok-lab").read_bytes() == notebook(cli, "release", "ok-lab").read_bytes()
    assert missing.returncode != 0 and "no-such-lab" in missing.stdout, missing.stdout
    assert json.loads((served / "seen.json").read_text()) == {"cwd": str(served), "x": "1"}
    assert json.loads((empty / "seen.json").read_text()) == {"cwd": str(empty), "x": None}
    assert "ERROR" in _log_error({"log": missing.stdout}) or "no-such-lab" in _log_error({"log": missing.stdout})
