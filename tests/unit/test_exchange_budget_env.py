"""A mistyped exchange budget in a trainee's environment (techday/hub/exchangequota.py, ``Budget.from_env``;
techday/hub/exchange.py, ``ExchangeSubmit``): a one-line refusal in the trainee's language, never a traceback.

The hub hands every trainee's server ``TECHDAY_EXCHANGE_KEEP``, ``_QUOTA``, ``_MIN_FREE`` and ``_FILES`` as the
admin wrote them. nbgrader's ``submit`` run with one of them mistyped (``KEEP=three``, ``QUOTA=300XB``) raised a
ValueError from ``int()`` or the size parser: the trainee read a Python traceback naming the course's code, and
the sweep's message for the admin at its end. Each test runs the real ``nbgrader submit`` as a trainee would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from techday.hub import exchangequota as q
from techday.i18n import _HANGUL

ROOT = Path(__file__).resolve().parents[2]
LAB = "lab"

# (variable, value as an admin mistyped it, what kind of mistake)
MALFORMED = [
    ("TECHDAY_EXCHANGE_KEEP", "three", "not a number"),
    ("TECHDAY_EXCHANGE_KEEP", "-1", "negative"),
    ("TECHDAY_EXCHANGE_KEEP", "0", "below the least (1)"),
    ("TECHDAY_EXCHANGE_KEEP", "", "empty"),
    ("TECHDAY_EXCHANGE_QUOTA", "300XB", "a unit typo"),
    ("TECHDAY_EXCHANGE_QUOTA", "-300M", "negative"),
    ("TECHDAY_EXCHANGE_QUOTA", "", "empty"),
    ("TECHDAY_EXCHANGE_QUOTA", "0.0001K", "a fraction of a byte: no bound, not what was meant"),
    ("TECHDAY_EXCHANGE_MIN_FREE", "1GG", "a unit typo"),
    ("TECHDAY_EXCHANGE_MIN_FREE", "one gig", "not a number"),
    ("TECHDAY_EXCHANGE_FILES", "1e4", "not a whole number"),
    ("TECHDAY_EXCHANGE_FILES", " ", "empty (a space)"),
    ("TECHDAY_EXCHANGE_FILES", "１０", "full-width digits"),
]


class Room:
    """An exchange with course ``c`` and lab ``lab`` released, and a trainee's home with the lab fetched."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.exchange = tmp_path / "exchange"
        self.inbound = self.exchange / "c" / "inbound"
        self.inbound.mkdir(parents=True)
        (self.exchange / "c" / "outbound" / LAB).mkdir(parents=True)
        (self.exchange / "c" / "outbound" / LAB / f"{LAB}.ipynb").write_text("{}")
        self.home = tmp_path / "home"
        (self.home / LAB).mkdir(parents=True)
        self.notebook = self.home / LAB / f"{LAB}.ipynb"
        self.notebook.write_text('{"cells": [], "my work": 1}')

    def submit(self, env: dict[str, str], lang: str = "en") -> subprocess.CompletedProcess:
        """``nbgrader submit`` as a trainee's terminal runs it, with the course's submit selected."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TECHDAY_EXCHANGE")}
        (self.tmp / "jupyter").mkdir(exist_ok=True)
        return subprocess.run(
            [sys.executable, "-m", "nbgrader", "submit", LAB, "--course", "c",
             f"--Exchange.root={self.exchange}", f"--Exchange.cache={self.tmp / 'cache'}",
             f"--CourseDirectory.root={self.home}", "--CourseDirectory.student_id=trainee-a",
             "--ExchangeFactory.submit=techday.hub.exchange.ExchangeSubmit"],
            cwd=self.home, capture_output=True, text=True, timeout=120,
            env={**clean, **env, "TECHDAY_LANG": lang, "PYTHONPATH": str(ROOT),
                 "JUPYTER_CONFIG_DIR": str(self.tmp / "jupyter"), "JUPYTER_CONFIG_PATH": str(self.tmp / "jupyter")})


@pytest.mark.parametrize("name,value,kind", MALFORMED, ids=[f"{n[17:]}={v!r}" for n, v, _ in MALFORMED])
def test_a_malformed_budget_is_a_one_line_refusal_naming_it(tmp_path, name, value, kind):
    """Caught: ``nbgrader submit`` with a mistyped budget variable (here: {kind}) ended in a Python traceback
    (``int()`` or the size parser raising ValueError in ``Budget.from_env``), or, for a value outside the
    allow-list the parser took (a fraction of a byte read as 0: no bound), went on with a budget nobody meant.
    Now: one line naming the variable, its value and what is expected, telling the trainee to ask the
    instructor; exit non-zero; nothing written to ``inbound``, the notebook as it was."""
    room = Room(tmp_path)
    before = room.notebook.read_bytes()
    out = room.submit({name: value})
    said = out.stdout + out.stderr
    assert out.returncode != 0, said
    assert "Traceback" not in said, said
    lines = [line for line in said.splitlines() if name in line]
    assert len(lines) == 1, said
    assert f"{name}={value!r}" in lines[0] and "Ask the instructor" in lines[0], lines[0]
    assert "expected" in lines[0], lines[0]
    assert os.listdir(room.inbound) == [], "a refused submission wrote into inbound"
    assert room.notebook.read_bytes() == before


def test_the_refusal_reads_in_korean(tmp_path):
    """Caught: the budget's refusal, where there was one (the sweep's), was written for the admin and went
    through no trainee-facing catalogue entry for the submit."""
    room = Room(tmp_path)
    out = room.submit({"TECHDAY_EXCHANGE_QUOTA": "300XB"}, lang="ko")
    said = out.stdout + out.stderr
    assert out.returncode != 0 and "Traceback" not in said, said
    (line,) = [line for line in said.splitlines() if "TECHDAY_EXCHANGE_QUOTA" in line]
    assert _HANGUL.search(line) and "'300XB'" in line, line


def test_a_good_budget_still_submits(tmp_path):
    """The control: the same command with a budget as written in docker/README.md submits (so the
    refusals above are the budget's, not a command that never worked), and an unset variable is its default."""
    room = Room(tmp_path)
    out = room.submit({"TECHDAY_EXCHANGE_KEEP": "2", "TECHDAY_EXCHANGE_QUOTA": "300MB",
                       "TECHDAY_EXCHANGE_MIN_FREE": "0"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(os.listdir(room.inbound)) == 1
    assert q.Budget.from_env({}) == q.Budget(keep=q.KEEP, max_bytes=300 << 20, min_free=1 << 30, max_files=q.FILES)


@pytest.mark.parametrize("name,value,kind", MALFORMED, ids=[f"{n[17:]}={v!r}" for n, v, _ in MALFORMED])
def test_the_hubs_check_names_a_malformed_budget(tmp_path, monkeypatch, name, value, kind):
    """Caught: with ``TECHDAY_EXCHANGE_KEEP=three`` (or ``FILES=1e4``) the hub's config did not load at all and
    ``techday hub check`` said "ValueError: invalid literal for int() with base 10: 'three'", naming no variable;
    an empty ``QUOTA`` was taken as the default by the check and the sweep. Now the config loads, the check's
    "disk for the exchange" names the variable and its value, and the sweep refuses the same value (one parser
    for the trainee, the sweep and the check)."""
    from traitlets.config import Config

    from techday.hub.config import HubSettings, configure, exchange_finding

    for var in ("KEEP", "QUOTA", "MIN_FREE", "FILES"):
        monkeypatch.delenv(f"TECHDAY_EXCHANGE_{var}", raising=False)
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("TECHDAY_LANG", "en")
    c = Config()
    configure(c, HubSettings.from_env(course_id="c", users_file=tmp_path / "users.csv", state_dir=tmp_path / "s",
                                      exchange=tmp_path))
    assert c.Spawner.environment[name] == value, "the trainee's server gets the value as written"
    finding = exchange_finding(c.TechDayHub.settings, disk_probe=lambda _: type("U", (), {"free": 1 << 50})())
    assert not finding.ok and f"{name}={value!r}" in finding.detail, finding
    with pytest.raises(q.BudgetError) as err:
        q.Budget.from_env(c.Spawner.environment)
    assert err.value.name == name


def test_a_size_too_long_for_a_float_is_read_exactly_never_a_traceback():
    """Caught: a size with more digits than a float holds (``QUOTA`` of 400 nines, a paste gone wrong) made the
    size parser's ``int(float(...))`` raise OverflowError, which ``read_setting`` does not catch: the trainee's
    submit ended in a traceback, not the one-line refusal; and a size past 2**53 bytes was read rounded
    (``9007199254740993`` as ``...992``). Now sizes are read in exact arithmetic: every value is the number
    written (a whole number of bytes, a fraction of one dropped), and the 400 nines a bound like any other."""
    assert q.read_setting("TECHDAY_EXCHANGE_QUOTA", "9007199254740993", 0, "size") == 9007199254740993
    assert q.read_setting("TECHDAY_EXCHANGE_QUOTA", "1.5K", 0, "size") == 1536
    assert q.read_setting("TECHDAY_EXCHANGE_QUOTA", "0.1K", 0, "size") == 102
    huge = "9" * 400
    assert q.Budget.from_env({"TECHDAY_EXCHANGE_QUOTA": huge}).max_bytes == int(huge)
    assert q.Budget.from_env({"TECHDAY_EXCHANGE_MIN_FREE": huge + ".5G"}).min_free == int(huge) * 2**30 + 2**29
    with pytest.raises(q.BudgetError):   # past Python's digits for int(): refused, one line
        q.Budget.from_env({"TECHDAY_EXCHANGE_QUOTA": "9" * 5000})
