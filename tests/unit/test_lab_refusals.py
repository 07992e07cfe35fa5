"""The Assignments tab's refusals (techday/hub/labrefusals.py): nbgrader's ``assignment_list`` handler, which the
trainee's Submit and Fetch buttons call, answered a refusal with a Python traceback; now with the refusal's line
alone, in the trainee's language. Run through the handler's own class, in process, as the trainee's server runs it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from techday.i18n import _HANGUL

LAB = "lab"


@pytest.fixture()
def handlers(monkeypatch):
    """nbgrader's handler module, its ``traceback`` restored after the test."""
    module = importlib.import_module("nbgrader.server_extensions.assignment_list.handlers")
    monkeypatch.setattr(module, "traceback", module.traceback)
    return module


def _room(tmp_path: Path, monkeypatch) -> Path:
    """A trainee's server root with the course's exchange classes and a released lab fetched; returns the root."""
    exchange = tmp_path / "exchange"
    (exchange / "c" / "inbound").mkdir(parents=True)
    (exchange / "c" / "outbound" / LAB).mkdir(parents=True)
    (exchange / "c" / "outbound" / LAB / f"{LAB}.ipynb").write_text("{}")
    home = tmp_path / "home"
    (home / LAB).mkdir(parents=True)
    (home / LAB / f"{LAB}.ipynb").write_text('{"cells": [], "my work": 1}')
    (home / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.Exchange.root = {str(exchange)!r}\nc.Exchange.cache = {str(tmp_path / 'cache')!r}\n"
        "c.CourseDirectory.student_id = 'trainee-a'\n"
        "c.ExchangeFactory.submit = 'techday.hub.exchange.ExchangeSubmit'\n"
        "c.ExchangeFactory.fetch_assignment = 'techday.hub.exchange.ExchangeFetchAssignment'\n")
    config = tmp_path / "jupyter"
    config.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(config))
    monkeypatch.chdir(home)
    return home


def _assignments(handlers, root: Path):
    lister = handlers.AssignmentList()
    lister.root_dir = str(root)
    return lister


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_a_refused_submit_is_one_line_in_the_trainees_language(tmp_path, monkeypatch, handlers, lang):
    """Caught: Submit in the Assignments tab with the exchange's budget mistyped by the admin
    (``TECHDAY_EXCHANGE_KEEP=three``) showed the trainee nbgrader's traceback, the refusal on its last line.
    Now the answer is the refusal's text alone, in the trainee's language, naming what to do."""
    from techday.hub.labrefusals import patch

    root = _room(tmp_path, monkeypatch)
    monkeypatch.setenv("TECHDAY_LANG", lang)
    monkeypatch.setenv("TECHDAY_EXCHANGE_KEEP", "three")
    before = _assignments(handlers, root).submit_assignment("c", LAB)
    assert before["success"] is False and "Traceback (most recent call last)" in before["value"], before
    assert patch() is True
    after = _assignments(handlers, root).submit_assignment("c", LAB)
    print(after["value"])
    assert after["success"] is False, after
    assert "Traceback" not in after["value"] and "\n" not in after["value"].strip(), after["value"]
    assert "TECHDAY_EXCHANGE_KEEP" in after["value"] and "three" in after["value"], after["value"]
    assert after["value"] == before["value"].strip().splitlines()[-1].split(": ", 1)[1], (before, after)
    assert bool(_HANGUL.search(after["value"])) == (lang == "ko"), after["value"]
    assert not any((tmp_path / "exchange" / "c" / "inbound").iterdir())


def test_a_fault_keeps_its_traceback_and_patching_twice_changes_nothing(tmp_path, monkeypatch, handlers):
    """Kept: an exception that is no refusal (here a fault in the exchange's code) still reaches the browser and the
    log with its whole traceback, so that it can be reported; the patch is made once however often it loads."""
    from nbgrader.exchange import default

    from techday.hub.labrefusals import patch

    root = _room(tmp_path, monkeypatch)
    import shutil

    shutil.rmtree(root / LAB)  # not fetched yet: the fetch gets as far as copying

    def broken(self):
        raise RuntimeError("a fault, not a refusal")

    monkeypatch.setattr(default.ExchangeFetchAssignment, "copy_files", broken)
    assert patch() is True and patch() is True
    assert getattr(handlers.traceback, "_techday", False)
    answer = _assignments(handlers, root).fetch_assignment("c", LAB)
    assert answer["success"] is False and "Traceback (most recent call last)" in answer["value"], answer
    assert "RuntimeError: a fault, not a refusal" in answer["value"], answer


def test_every_trainees_server_loads_it():
    """Caught: the extension written and never enabled (the trainee image's server settings name it)."""
    from traitlets.config import Config

    path = Path(__file__).resolve().parents[2] / "docker" / "etc-jupyter" / "jupyter_server_config.py"
    c = Config()
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), {"get_config": lambda: c, "c": c})
    extensions = c.ServerApp.jpserver_extensions
    value = extensions.get_value({}) if hasattr(extensions, "get_value") else extensions
    assert value.get("techday.hub.labrefusals") is True, value
    assert os.path.isfile(Path(__file__).resolve().parents[2] / "techday" / "hub" / "labrefusals.py")
