"""What the exchange tells a trainee on submit and fetch, in the trainee's language (techday/hub/exchange.py,
trainee_text): nbgrader's own refusals and the course's, through the package's catalogue."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from techday.hub import exchange as ex
from techday.i18n import _HANGUL

# The trainee's side of nbgrader's exchange: every text its fail() calls there show a trainee.
TRAINEE_SIDE = ("submit.py", "fetch_assignment.py", "fetch_feedback.py", "exchange.py")


def nbgrader_failures() -> list[str]:
    """The English of every ``self.fail("...")`` in nbgrader's trainee-side exchange, and of every ``msg = "..."``
    it raises itself (``_assignment_not_found``), ``{}`` for a filled value."""
    import nbgrader.exchange.default as default

    found = []
    for name in TRAINEE_SIDE:
        tree = ast.parse((Path(default.__file__).parent / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "fail" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Call) and getattr(arg.func, "attr", None) == "format":
                    arg = arg.func.value
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), ast.dump(node)
                found.append(arg.value)
            elif isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["msg"]:
                value = node.value
                if isinstance(value, ast.Call) and getattr(value.func, "attr", None) == "format":
                    value = value.func.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.append(value.value)
    assert "Assignment not found at: {}" in found
    return found


def sample(template: str) -> str:
    """nbgrader's message as a trainee gets it: the values filled in."""
    return template.replace("{}", "/srv/nbgrader/exchange/techday/outbound/01-x", 1).replace("{}", "01-x")


def test_every_refusal_of_nbgraders_exchange_reads_in_korean(monkeypatch):
    """nbgrader's "You do not have access to this course.", "You already have a copy of the assignment in
    this directory: ..." reached a Korean trainee in English."""
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    failures = nbgrader_failures()
    assert len(failures) >= 12, failures  # the scan found nbgrader's calls
    english = [m for m in failures if not _HANGUL.search(ex.trainee_text(sample(m)))]
    assert not english, english
    said = ex.trainee_text(sample("You already have a copy of the assignment in this directory: {}"))
    assert said == "이 폴더에 이미 가져온 실습이 있습니다: /srv/nbgrader/exchange/techday/outbound/01-x", said


def test_an_english_trainee_reads_nbgraders_own_words(monkeypatch):
    monkeypatch.setenv("TECHDAY_LANG", "en")
    for m in nbgrader_failures():
        assert ex.trainee_text(sample(m)) == sample(m)
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    assert ex.trainee_text("something nbgrader says one day") == "something nbgrader says one day"


def test_the_exchanges_own_refusals_on_submit_are_in_korean(monkeypatch, tmp_path):
    """The course's submit said "Directory size is too big" and "The submission could not be handed to the
    grader" in English only."""
    from nbgrader.exchange import ExchangeError

    monkeypatch.setenv("TECHDAY_LANG", "ko")
    submit = ex.ExchangeSubmit.__new__(ex.ExchangeSubmit)
    monkeypatch.setattr(ex.ExchangeSubmit, "log", pytest.importorskip("logging").getLogger("t"), raising=False)
    with pytest.raises(ExchangeError) as err:
        submit.fail("You do not have access to this course.")
    assert str(err.value) == "이 과정에 접근할 수 없습니다."
    assert _HANGUL.search(ex.too_big_text(3_000_000, 1_000_000))
    assert _HANGUL.search(ex.not_handed_text(2, "01-x/01-x.ipynb")) and "01-x/01-x.ipynb" in ex.not_handed_text(
        2, "01-x/01-x.ipynb")
    monkeypatch.setenv("TECHDAY_LANG", "en")
    assert ex.too_big_text(3, 1) == "Directory size is too big. Size is 3, maximum size is 1"
    assert re.match(r"The submission could not be handed to the grader \(2 file", ex.not_handed_text(2, "a"))


def test_the_trainees_exchange_steps_are_the_courses():
    """Fetching and submitting go through the course's classes (the config every server reads)."""
    config = (Path(__file__).resolve().parents[2] / "docker" / "etc-jupyter" / "nbgrader_config.py").read_text()
    for step, cls in (("submit", "ExchangeSubmit"), ("fetch_assignment", "ExchangeFetchAssignment"),
                      ("fetch_feedback", "ExchangeFetchFeedback")):
        assert f'c.ExchangeFactory.{step} = "techday.hub.exchange.{cls}"' in config, step
        assert issubclass(getattr(ex, cls), ex.TraineeWords)


@pytest.mark.parametrize("lang,said", [("ko", "실습을 찾을 수 없습니다: "), ("en", "Assignment not found at: ")])
def test_a_fetch_from_a_course_not_released_says_so_in_the_trainees_language(tmp_path, monkeypatch, lang, said):
    """The course's fetch, run as nbgrader runs it, against an exchange without the course: nbgrader raises
    this one itself, not through fail()."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeError

    monkeypatch.setenv("TECHDAY_LANG", lang)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exchange").mkdir()
    coursedir = CourseDirectory(root=str(tmp_path / "home"), course_id="techday", assignment_id="01-x")
    fetch = ex.ExchangeFetchAssignment(coursedir=coursedir, authenticator=Authenticator(), root=str(tmp_path / "exchange"))
    with pytest.raises(ExchangeError) as err:
        fetch.start()
    assert str(err.value) == said + str(tmp_path / "exchange" / "techday" / "outbound" / "01-x")
