"""``techday lab``: a trainee's JupyterLab on their own machine, with the released labs and without
nbgrader's instructor panels or the hub-only Assignments and Courses panels."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from techday.hub.locallab import (
    LAB_PLUGINS_OFF,
    SERVER_EXTENSIONS_OFF,
    SERVER_EXTENSIONS_ON,
)
from tests.conftest import techday

LAB = "grade-lab"  # a lab of the fixture course (tests/fixtures/course): quick to build


def _would_run(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("would run: ")]
    assert len(lines) == 1, stdout
    return lines[0].removeprefix("would run: ")


def _lab(course, tmp_path, *args):
    return techday("--root", str(course), "lab", *args, env={"TECHDAY_BUILD": str(tmp_path / "build")}, timeout=600)


def test_dry_run_builds_copies_writes_the_config_and_prints_the_command(fixture_course, tmp_path):
    out = _lab(fixture_course, tmp_path, LAB, "--dry-run", "--no-browser", "--port", "9123")
    assert out.returncode == 0, out.stdout + out.stderr
    home = tmp_path / "build" / "trainee"
    line = _would_run(out.stdout)
    assert f"JUPYTER_CONFIG_DIR={home / 'jupyter'}" in line and f"TECHDAY_ROOT={fixture_course}" in line
    assert f"-m jupyterlab --ServerApp.root_dir={home / 'work'} --no-browser --port=9123" in line
    assert "building 1 lab(s)" in out.stdout, "no release yet: it is built"
    notebook = home / "work" / LAB / f"{LAB}.ipynb"
    released = tmp_path / "build" / "course" / "release" / LAB / f"{LAB}.ipynb"
    assert notebook.read_text() == released.read_text()
    assert "BEGIN SOLUTION" not in notebook.read_text() and "BEGIN HIDDEN TESTS" not in notebook.read_text()

    server = json.loads((home / "jupyter" / "jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
    assert {k for k, on in server.items() if not on} == set(SERVER_EXTENSIONS_OFF)
    assert {k for k, on in server.items() if on} == set(SERVER_EXTENSIONS_ON)
    assert {"nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list",
            "nbgrader.server_extensions.assignment_list"} <= set(SERVER_EXTENSIONS_OFF)
    page = json.loads((home / "jupyter" / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    assert {k for k, off in page.items() if off} == set(LAB_PLUGINS_OFF)
    assert {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list",
            "@jupyter/nbgrader:assignment-list"} <= set(LAB_PLUGINS_OFF)
    nbconfig = (home / "jupyter" / "nbgrader_config.py").read_text()
    exchange = re.search(r"c\.Exchange\.root = '([^']+)'", nbconfig).group(1)
    assert os.path.isdir(exchange), "the exchange the config names exists"
    assert "c.Execute.timeout = " in nbconfig


def test_release_is_reused_a_trainees_notebook_kept_and_a_newer_source_rebuilt(fixture_course, tmp_path):
    assert _lab(fixture_course, tmp_path, LAB, "--dry-run").returncode == 0
    notebook = tmp_path / "build" / "trainee" / "work" / LAB / f"{LAB}.ipynb"
    notebook.write_text(notebook.read_text().replace("YOUR CODE HERE", "MY ANSWER"))

    again = _lab(fixture_course, tmp_path, LAB, "--dry-run")
    assert again.returncode == 0 and "building" not in again.stdout, again.stdout
    assert f"kept your copies of {LAB}" in again.stdout and "MY ANSWER" in notebook.read_text()

    source = fixture_course / "labs" / LAB / f"{LAB}.py"
    later = time.time() + 60
    os.utime(source, (later, later))  # the instructor changed the lab after the last build
    rebuilt = _lab(fixture_course, tmp_path, LAB, "--dry-run")
    assert rebuilt.returncode == 0 and "building 1 lab(s)" in rebuilt.stdout, rebuilt.stdout
    assert "MY ANSWER" in notebook.read_text(), "a rebuild never overwrites the trainee's copy"


def test_a_given_release_folder_is_used_as_it_is(fixture_course, tmp_path, monkeypatch):
    release = tmp_path / "release"
    (release / LAB).mkdir(parents=True)
    (release / LAB / f"{LAB}.ipynb").write_text('{"cells": [], "marker": "from the image"}')
    env = {"TECHDAY_BUILD": str(tmp_path / "build"), "TECHDAY_RELEASE": str(release)}
    out = techday("--root", str(fixture_course), "lab", LAB, "--dry-run", env=env)
    assert out.returncode == 0 and "building" not in out.stdout, out.stdout + out.stderr
    assert "from the image" in (tmp_path / "build" / "trainee" / "work" / LAB / f"{LAB}.ipynb").read_text()
    missing = techday("--root", str(fixture_course), "lab", "hangs-lab", "--dry-run", env=env)
    assert missing.returncode == 1 and "has no hangs-lab" in missing.stderr
    # a Korean trainee reads why in Korean (it was English only)
    missing = techday("--root", str(fixture_course), "lab", "hangs-lab", "--dry-run", env={**env, "TECHDAY_LANG": "ko"})
    assert missing.returncode == 1 and "hangs-lab" in missing.stderr and "has no" not in missing.stderr, missing.stderr
    assert "에 없습니다" in missing.stderr, missing.stderr


def test_unknown_lab_is_refused(fixture_course, tmp_path):
    out = _lab(fixture_course, tmp_path, "no-such-lab", "--dry-run")
    assert out.returncode == 2 and "unknown lab" in out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy: 127.0.0.1 only


def _get(url: str) -> tuple[int, str]:
    try:
        with LOOPBACK.open(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except urllib.error.URLError:
        return 0, ""  # not listening yet


@pytest.mark.slow
def test_jupyterlab_started_with_that_config_shows_no_instructor_panel(fixture_course, tmp_path):
    """The real JupyterLab, on 127.0.0.1, with the config `techday lab` wrote: the instructor and hub-only
    endpoints are gone, Validate's is there, and the page tells JupyterLab to leave the plugins out."""
    assert _lab(fixture_course, tmp_path, LAB, "--dry-run").returncode == 0
    home = tmp_path / "build" / "trainee"
    port, token = _free_port(), "techday-test"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "jupyter"), "HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={home / 'work'}", "--no-browser",
           f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _get(f"{base}/api?token={token}")[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline, "JupyterLab did not start"
            time.sleep(1)
        for path in ("formgrader", "assignments", "formgraders"):
            assert _get(f"{base}/{path}?token={token}")[0] == 404, f"/{path} is served"
        assert _get(f"{base}/nbgrader_version?version=0&token={token}")[0] != 404, "Validate's extension is on"
        status, page = _get(f"{base}/lab?token={token}")
        config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                      page, re.S).group(1))
        assert status == 200 and set(LAB_PLUGINS_OFF) <= set(config["disabledExtensions"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_trainee_reads_the_lines_in_korean(fixture_course, tmp_path):
    """``techday lab`` is a trainee's command: its lines come in the trainee's language. Caught: the
    English-only lines it printed before ("released labs", "your notebooks", "building 1 lab(s)")."""
    out = techday("--root", str(fixture_course), "lab", LAB, "--dry-run", "--no-browser",
                  env={"TECHDAY_BUILD": str(tmp_path / "build"), "TECHDAY_LANG": "ko"}, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    for korean in ("실습 1개를 techday build로 빌드합니다: grade-lab", "배포된 실습: ", "(grade-lab 빌드함)",
                   "내 노트북: ", "(1개 복사)", "jupyter 설정: "):
        assert korean in out.stdout, (korean, out.stdout)
    for english in ("released labs", "your notebooks", "building 1 lab(s)"):
        assert english not in out.stdout, (english, out.stdout)
    _would_run(out.stdout)  # the command line itself stays as the shell reads it


def test_a_copy_stopped_half_way_is_not_kept_as_the_trainees(tmp_path, monkeypatch):
    # Wrong answer caught: Ctrl-C (or a full disk) during the first copy left work/<lab>/ with part of
    # the lab; every later `techday lab` kept it as the trainee's own answers and never copied again.
    import shutil

    from techday.hub import locallab

    release = tmp_path / "release" / LAB
    release.mkdir(parents=True)
    for name in ("a.ipynb", "b.ipynb", "data.csv"):
        (release / name).write_text(f"whole {name}\n")
    target = tmp_path / "work 작업" / LAB
    copied = []

    def stopped(src, dst, **kw):
        if copied:
            raise KeyboardInterrupt
        copied.append(src)
        return shutil.copy2(src, dst, **kw)

    real_copytree = shutil.copytree
    monkeypatch.setattr(locallab.shutil, "copytree",
                        lambda src, dst, **kw: real_copytree(src, dst, **kw, copy_function=stopped))
    with pytest.raises(KeyboardInterrupt):
        locallab.copy_whole(release, target)
    assert not target.exists() and list(target.parent.iterdir()) == []
    monkeypatch.undo()
    locallab.copy_whole(release, target)
    assert sorted(p.name for p in target.iterdir()) == ["a.ipynb", "b.ipynb", "data.csv"]
    assert (target / "b.ipynb").read_text() == "whole b.ipynb\n"
    assert oct(target.stat().st_mode & 0o777) == oct(release.stat().st_mode & 0o777)


def test_a_release_cut_off_by_a_stopped_build_is_built_again(fixture_course, tmp_path):
    # Wrong answer caught: `techday build` stopped while nbgrader wrote release/<lab>/<lab>.ipynb left
    # it newer than its source and cut off; `techday lab` reused it and copied a notebook that does not open.
    from techday.course.syllabus import load_course
    from techday.hub.locallab import _stale

    course = load_course(fixture_course)
    release = tmp_path / "release"
    (release / LAB).mkdir(parents=True)
    nb = release / LAB / f"{LAB}.ipynb"
    nb.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
    assert not _stale(course, release, LAB)
    nb.write_text('{"cells": [{"cell_type": "mark')
    assert _stale(course, release, LAB)


def test_the_notebooks_come_in_the_language_asked_for_and_a_release_in_another_is_built_again(tmp_path):
    # Wrong answer caught: `techday lab --lang` did not exist, and with TECHDAY_LANG=ko the lines were Korean
    # while the notebooks were built in the syllabus' default language (English); a release built with
    # `techday build --lang ko` was then reused for an English trainee (its age was all that was checked).
    from tests.conftest import ROOT

    def released_lang(home):
        nb = json.loads((home / "work" / "00-gpu-tour" / "00-gpu-tour.ipynb").read_text(encoding="utf-8"))
        return nb["metadata"].get("techday", {}).get("lang", "en")

    env = {"TECHDAY_BUILD": str(tmp_path / "build")}
    ko = techday("--root", str(ROOT), "lab", "00", "--lang", "ko", "--dry-run", "--dir", str(tmp_path / "ko"),
                 env=env, timeout=600)
    assert ko.returncode == 0, ko.stdout + ko.stderr
    assert released_lang(tmp_path / "ko") == "ko" and "배포된 실습: " in ko.stdout, ko.stdout
    assert "TECHDAY_LANG=ko " in _would_run(ko.stdout)  # the kernels' messages in the notebooks' language
    en = techday("--root", str(ROOT), "lab", "00", "--dry-run", "--dir", str(tmp_path / "en"), env=env, timeout=600)
    assert en.returncode == 0, en.stdout + en.stderr
    assert released_lang(tmp_path / "en") == "en" and "(built 00-gpu-tour)" in en.stdout, en.stdout
    bad = techday("--root", str(ROOT), "lab", "00", "--lang", "kr", "--dry-run", env=env, timeout=600)
    assert bad.returncode == 2 and "unknown language 'kr'" in bad.stderr, bad.stdout + bad.stderr
