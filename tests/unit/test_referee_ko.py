"""The grader's words a graded trainee reads, in the room's language: the referee's refusals and the tests it
does not count (raised inside the trainee's kernel, so shown in the notebook and in its feedback) and the sandbox
executor's own errors (a test that did not run to its end, a dead kernel, output cut at the cap). The English
stays what the status lines say (an instructor's).

The referee looks no catalogue up inside the kernel: ``techday.i18n.msg`` reads ``techday-messages.<lang>.json``
in the working folder first, a file a cell can write (a forged catalogue). The executor reads the package's own
catalogue before the kernel starts (``techday.i18n.PackageCatalogue``) and hands the referee its texts in the
instructions the kernel reads and deletes before any notebook code runs (grading/README.md, "The referee's words
in the trainee's language")."""

from __future__ import annotations

import ast
import json
import tempfile

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from techday import i18n
from techday.grading.sandbox_exec import Referee, make_executor
from tests.conftest import ROOT
from tests.unit.test_i18n_package_prints import _literals, is_prose

FORGE = ("import json, sys\n"
         "json.dump({'lab': '00-x', 'lang': 'ko', 'messages': {'techday.referee_refused': 'FORGED {what}',\n"
         "           'techday.referee_settrace': 'FORGED', 'techday.referee_test_changed_before': 'FORGED {found}'}},\n"
         "          open('techday-messages.ko.json', 'w'))\n"
         "sys.settrace(None)\n")
CELLS = ["import numpy as np\n",                                                  # locked
         FORGE,                                                                   # refused: a trace function
         "import builtins\nbuiltins.ascii = lambda x: ''\nnp.allclose = lambda *a, **k: True\n",
         "assert np.allclose([1], [2]) or True\n"]                                # the test: does not count


def _graded(lang: str, monkeypatch):
    """The notebook above, run by the executor with the referee in ``lang``: (error outputs by cell, status lines)."""
    monkeypatch.setenv("TECHDAY_LANG", lang)
    nb = new_notebook(cells=[new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    course = {0: {"key": "setup", "kind": "locked", "source": CELLS[0]},
              3: {"key": "t", "kind": "test", "source": CELLS[3]}}
    referee = Referee(course, tempfile.mkdtemp(prefix="referee-"))
    ex = make_executor(cell_timeout=60, output_bytes=100_000, referee=referee)
    try:
        ex.preprocess(nb, {"metadata": {"path": tempfile.mkdtemp(prefix="notebook-")}})
    finally:
        if referee.records is not None:
            referee.records.close()
    errors = [[(o["ename"], o["evalue"], o["traceback"][-1]) for o in c.outputs if o["output_type"] == "error"]
              for c in nb.cells]
    return errors, [e["what"] for e in ex.events if e.get("event") == "referee"]


def test_a_korean_room_reads_the_referees_words_in_korean_and_a_forged_catalogue_changes_none(monkeypatch):
    """Wrong answers caught: an English-only message added to the referee (a refusal or an uncounted test in
    English in a Korean room's feedback: every one of them before this test); the referee's words looked up in
    the kernel through ``techday.i18n.msg``, where a cell's ``techday-messages.ko.json`` (written here by the
    cell that is then refused) would say them; the status lines translated (an instructor's, English)."""
    errors, lines = _graded("ko", monkeypatch)
    refused = [e for e in errors[1] if e[0] == "RuntimeError"]
    assert refused and refused[0][1] == "채점 중에는 허용하지 않는 작업입니다: sys.settrace(추적 함수 설정)", errors[1]
    assert "RuntimeError" in refused[0][2] and refused[0][1] in refused[0][2]  # the traceback's line too
    check = [e for e in errors[3] if e[0] == "GraderCheck"]
    assert check, errors[3]
    assert check[0][1] == ("이 테스트는 점수로 인정되지 않습니다: 노트북의 코드가 테스트가 기대는 것을 바꿨습니다: "
                           "내장 이름 ascii, builtins.ascii, numpy.allclose"), check[0][1]
    assert not any("FORGED" in text for cell in errors for e in cell for text in e[1:]), errors
    assert "refused sys.settrace (a trace function)" in lines, lines
    assert "test 't' did not count: code in the notebook changed builtin ascii, builtins.ascii, numpy.allclose" \
        in lines, lines


def test_an_english_room_reads_the_referees_words_as_before(monkeypatch):
    """The English is what it was before the referee's words had keys (the grader's README and the cheat corpus
    quote it): a key that changed an English text would be caught here."""
    errors, _ = _graded("en", monkeypatch)
    assert ("RuntimeError", "the grader does not allow sys.settrace (a trace function) while grading") in \
        [e[:2] for e in errors[1]], errors[1]
    assert ("GraderCheck", "this test does not count: code in the notebook changed what it relies on: builtin ascii, "
                           "builtins.ascii, numpy.allclose") in [e[:2] for e in errors[3]], errors[3]


def test_the_executors_own_words_are_in_the_rooms_language(monkeypatch, tmp_path):
    """Wrong answer caught: the executor's GraderCheck for a test that never ran under the referee, in English in
    a Korean room (before this test), or read from a catalogue a notebook wrote into the working folder."""
    (tmp_path / "techday-messages.ko.json").write_text(json.dumps(
        {"messages": {"techday.grader_not_to_its_end": "FORGED"}}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for lang, want in (("ko", "이 테스트 셀은 채점기가 지켜보는 가운데 끝까지 실행되지 않았습니다. 0점입니다"),
                       ("en", "this test cell did not run to its end under the grader's watch; it scores 0")):
        monkeypatch.setenv("TECHDAY_LANG", lang)
        referee = Referee({0: {"key": "t", "kind": "test", "source": "assert True\n"}}, str(tmp_path))
        cell = new_code_cell("assert True\n")
        referee.judge(0, cell, [{"seq": 1, "kind": "start", "cell": "t", "detail": ""}])
        assert [(o["ename"], o["evalue"]) for o in cell.outputs] == [("GraderCheck", want)]


def test_the_referee_hands_the_kernel_only_its_own_texts_and_imports_no_catalogue_reader():
    """Wrong answers caught: the referee importing ``techday.i18n`` (its ``msg`` reads the working folder's file, and
    a module-level name the notebook can reach and rebind), and instructions without the texts (the Korean
    catalogue's referee entries never reaching the kernel)."""
    tree = ast.parse((ROOT / "techday" / "grading" / "referee.py").read_text(encoding="utf-8"))
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in imports if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in imports if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if "i18n" in n], names
    keys = {m.key for m in i18n.package_messages() if m.key.startswith("techday.referee_")}
    assert len(keys) > 30, "the referee's msg() calls are not found by the package's checks (renamed?)"
    texts = i18n.PackageCatalogue("ko").starting("techday.referee_")
    assert set(texts) == keys


# --- every text a trainee reads from the referee or the executor goes through msg() ------------------------------

GRADER_FILES = ("techday/grading/referee.py", "techday/grading/sandbox_exec.py")
SHOWN = {"_RuntimeError", "_GraderCheck", "_FileNotFoundError", "GraderCheck", "refuse", "_error", "NotebookNode"}


def english_outside_msg(source: str) -> list[tuple[int, str]]:
    """(line, literal) of English prose a trainee would read, outside ``msg()``: in a raised error or an argument of
    ``refuse``, ``_error`` or ``NotebookNode`` (what becomes a cell's output), and in what ``tripwire`` and the
    ``*_refusal`` helpers return (the reason a refusal gives)."""
    roots = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            roots.append(node.exc)
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in SHOWN:
                roots += list(node.args[1:] if name == "_error" else node.args)
                roots += [kw.value for kw in node.keywords if kw.arg == "text"]
        elif isinstance(node, ast.FunctionDef) and (node.name == "tripwire" or node.name.endswith("_refusal")):
            roots += [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
    return sorted({(lit.lineno, lit.value) for root in roots for lit in _literals(root) if is_prose(lit.value)})


# Literals the check finds that no trainee reads: literal -> why. Each must still occur (a stale entry fails).
ALLOWED = {
    "the grader's referee could not be installed: ": "a GraderError: the run is `failed`, never scored or shown; an "
                                                     "instructor reads it in the status line",
    "the grader's referee did not confirm its installation": "a GraderError, as above",
    "the kernel went idle without a reply": "nbclient's timeout, caught in preprocess_cell, which shows "
                                            "techday.grader_kernel_silent instead",
}


@pytest.mark.parametrize("rel", GRADER_FILES)
def test_the_grader_words_what_a_trainee_reads_through_msg(rel):
    hits = [(line, text) for line, text in english_outside_msg((ROOT / rel).read_text(encoding="utf-8"))
            if text not in ALLOWED]
    stale = [t for t in ALLOWED if rel == "techday/grading/sandbox_exec.py" and t not in
             {text for _, text in english_outside_msg((ROOT / rel).read_text(encoding="utf-8"))}]
    assert not stale, f"allow-list entries no longer found (remove them): {stale}"
    assert not hits, (f"English a graded trainee reads, outside msg() in {rel} (wrap it in msg(\"techday.referee_"
                      "<name>\", ...) and add its twin to techday/data/messages.ko.toml):\n"
                      + "\n".join(f"  line {line}: {text!r}" for line, text in hits))


def test_the_check_catches_the_referees_words_of_before():
    """The wrong answers, from the referee and the executor before their words had keys; and the right ones."""
    wrong = '''
def refuse(what):
    raise _RuntimeError(f"the grader does not allow {what} while grading")
def tripwire(event, args):
    if event == "sys.settrace":
        return "sys.settrace (a trace function)"
    return f"loading the shared library {path} (outside the Python install and the course)"
def pickle_refusal(module, name):
    return where + " (not a data type of the allow-list)"
cell.outputs.append(_error("GraderCheck", "this test cell did not run to its end under the grader's watch"))
refuse("turning Numba's bounds checks off (numba.config.BOUNDSCHECK)")
'''
    assert sorted({line for line, _ in english_outside_msg(wrong)}) == [3, 6, 7, 9, 10, 11]
    right = '''
def refuse(what):
    raise _RuntimeError(msg("techday.referee_refused", "the grader does not allow {what} while grading", what=what)[1])
def tripwire(event, args):
    if event == "sys.settrace":
        return msg("techday.referee_settrace", "sys.settrace (a trace function)")
    if event in ("gc.get_objects",):
        return event
cell.outputs.append(_error("GraderCheck", catalogue.msg("techday.grader_x", "this test cell did not run")))
'''
    assert english_outside_msg(right) == []


@pytest.mark.parametrize("lang, shown", [("ko", "노트북이 제한 시간 8초를 넘겨 멈췄습니다"),
                                         ("en", "the notebook ran past its limit of 8 s and was stopped")])
def test_a_stopped_notebooks_reason_is_shown_in_the_rooms_language(monkeypatch, tmp_path, lang, shown):
    """A notebook stopped at its time, memory, file or disk limit gets `NotGraded: <why>` in every code cell, and
    so in its feedback. Wrong answer caught: that reason in English in a Korean room (before this test), or the
    status line's reason translated (an instructor's: English)."""
    import subprocess
    import threading

    from techday.grading.executor import _stopped
    from techday.grading.sandbox import Limits

    monkeypatch.setenv("TECHDAY_LANG", lang)
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    t = threading.Thread(target=lambda: None)
    t.start()

    class Log:
        def write(self, path):
            return b""

    report: dict = {}
    _stopped(proc, t, Log(), tmp_path / "log", report, Limits(notebook_timeout_s=8), 0, 0, False, None, None)
    assert proc.poll() is not None, "the notebook's processes are stopped"
    assert report["problem"] == "the notebook ran past its limit of 8 s and was stopped"
    assert report["problem_shown"] == shown
    assert report["events"] == [{"event": "notebook-timeout", "seconds": 8}]
