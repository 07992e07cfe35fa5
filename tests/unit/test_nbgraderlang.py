"""nbgrader's own JupyterLab texts (Validate, Fetch, Submit, the Assignments tab, the validation dialog) made a
choice on the page's language (techday/hub/nbgraderlang.py).

Every test works on a copy of this environment's nbgrader labextension in ``tmp_path``: the environment's own
files are never patched here (the image's build patches the image's). node is this machine's (``node --check``
and the evaluation of the rewritten expressions); where it is missing those tests are skipped, saying so.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from techday.hub import nbgraderlang as g
from tests.conftest import techday

HANGUL = re.compile(r"[\uac00-\ud7a3]")
INSTALLED = g.extension_dir()


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def ext(tmp_path):
    """A copy of this environment's nbgrader labextension, as nbgrader installed it."""
    if not (INSTALLED / "package.json").is_file():
        pytest.fail(f"nbgrader's labextension is not installed at {INSTALLED}: nbgrader is a runtime dependency")
    dest = tmp_path / "prefix" / "share" / "jupyter" / "labextensions" / g.PACKAGE
    return g.copy_original(INSTALLED, dest)  # without what the step wrote, where this environment was patched


def _node() -> str:
    node = g.find_node()
    if not node:
        pytest.skip("node is not installed (neither on PATH nor build/node): the patched bundle cannot be parsed "
                    "or run here; the image's build has it and refuses without it")
    return node


def _bundle(ext: Path, patched: bool = False) -> Path:
    """nbgrader's chunk that holds its texts, or (``patched``) the rewritten copy of it the step wrote."""
    found = [p for p in (ext / "static").glob("*.js") if '"Validation Results"' in p.read_text(encoding="utf-8")
             and bool(g.MARKER_RE.match(p.read_text(encoding="utf-8"))) == patched]
    assert len(found) == 1, f"nbgrader's texts are in {found}"
    return found[0]


def _loaded(ext: Path) -> Path:
    """The entry point JupyterLab loads: package.json's ``jupyterlab._build.load``."""
    return ext / json.loads((ext / "package.json").read_text(encoding="utf-8"))["jupyterlab"]["_build"]["load"]


def _choices(text: str) -> list[str]:
    """Every rewritten expression of a patched bundle, as JavaScript source."""
    return [m.group(0) for m in re.finditer(
        r"(?:\(\)=>)?\(" + re.escape(g.KO_TEST) + r"\?\"(?:[^\"\\]|\\.)*\":(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')\)",
        text)]


def test_every_table_text_is_found_and_made_a_choice_on_the_pages_language(ext):
    """Each of the table's texts is found as often as the table says in nbgrader 0.9.6's bundle, every one of them
    is rewritten, the result parses (``node --check``), and run in node each rewritten expression gives the
    Korean under ``lang="ko-KR"`` (as JupyterLab's translation plugin sets it), ``ko_KR`` and ``ko``, and the
    original English under ``en``, an empty ``lang`` (the page before the plugin ran) and ``kok-IN`` (Konkani,
    which only starts with "ko").

    Wrong answers caught: a table text missed (the Assignments tab half English), an expression that picks the
    Korean in an English room or never picks it (a wrong test of the language), a bundle that no longer parses
    (a blank JupyterLab: nbgrader's plugins gone), and a Korean text missing from the catalogue."""
    node = _node()
    table = g.entries()
    assert all(e.korean and HANGUL.search(e.korean) for e in table), [e.key for e in table if not e.korean]
    result = g.patch(ext=ext, node=node)
    bundle, entry = _bundle(ext, patched=True), _loaded(ext)
    assert sorted(p.name for p in result.patched) == sorted([bundle.name, entry.name, "package.json"])
    for e in table:
        assert result.counts[e.english] == [e.literals, e.html], e.english
    # JupyterLab loads the new entry point, which loads the rewritten chunk, under names a browser has never cached
    assert g.MARKER_RE.match(entry.read_text(encoding="utf-8")) and entry.name != "remoteEntry.45993c55d146ea04.js"
    chunk, new_hash = bundle.name.split(".")[:2]
    assert entry.read_text(encoding="utf-8").count(f'{chunk}:"{new_hash}"') == 2
    text = bundle.read_text(encoding="utf-8")
    assert g.MARKER_RE.match(text)
    assert text.isascii(), "the patched bundle is not ASCII (its encoding would then depend on the server's headers)"
    choices = _choices(text)
    assert len(choices) == sum(e.literals for e in table) + 1, f"{len(choices)} rewritten expressions"  # + the HTML
    for path in (bundle, entry):
        proc = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    script = ("const out={};for(const lang of ['ko_KR','ko-KR','ko','en','','kok-IN']){globalThis.document={documentElement:{lang}};"
              f"out[lang]=[{','.join(c if c.startswith('()=>') else '()=>' + c for c in choices)}].map(f=>"
              "{let v=f();return typeof v==='function'?v():v;});}console.log(JSON.stringify(out));")
    proc = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    korean = [e.korean for e in table]
    english = [e.english for e in table]
    assert out["ko-KR"] == out["ko"] == out["ko_KR"]
    for lang in ("en", "", "kok-IN"):
        assert not any(HANGUL.search(v) for v in out[lang]), f"lang={lang!r} shows Korean: {out[lang]}"
        assert all(v in english or "Released assignments" in v for v in out[lang])
    assert all(v in korean or ("배포된 과제" in v and "Released assignments" not in v) for v in out["ko_KR"]), out["ko_KR"]
    assert set(korean) <= set(out["ko_KR"]) | {e.korean for e in table if not e.literals}
    html_ko = next(v for v in out["ko_KR"] if "<div" in v)
    for e in table:
        if e.html:
            assert e.korean in html_ko and e.english not in html_ko, e.english
    print(f"nbgrader 0.9.6: {len(table)} texts, {len(choices)} expressions rewritten; under ko_KR the first "
          f"reads {out['ko_KR'][0]!r}, under en {out['en'][0]!r}")


def test_a_second_run_changes_nothing_and_says_so_and_undo_restores_the_bytes(ext, tmp_path):
    """``techday hub nbgrader-language`` twice, then ``--undo``, on a prefix holding the copy.

    Wrong answers caught: a second run that patches the patched files again (a choice inside a choice, or a
    package.json.orig overwritten with the patched one: the original lost for good), a second run that reports a
    change, nbgrader's own files changed at all, and an undo that leaves anything but nbgrader's own bytes (a
    stray file, a changed mode)."""
    _node()
    prefix = tmp_path / "prefix"
    before = _digest(ext)
    mode = _bundle(ext).stat().st_mode
    own = {k: v for k, v in before.items() if k != "package.json"}
    first = techday("hub", "nbgrader-language", "--prefix", str(prefix), env={"TECHDAY_LANG": "en"}, timeout=120)
    assert first.returncode == 0 and "3 file(s) written" in first.stdout, first.stdout + first.stderr
    patched = _digest(ext)
    assert patched != before and (ext / "package.json.orig").is_file()
    assert {k: v for k, v in patched.items() if k in own} == own, "nbgrader's own files changed"
    assert _bundle(ext, patched=True).stat().st_mode == mode
    second = techday("hub", "nbgrader-language", "--prefix", str(prefix), env={"TECHDAY_LANG": "en"}, timeout=120)
    assert second.returncode == 0 and "nothing changed" in second.stdout, second.stdout + second.stderr
    assert _digest(ext) == patched, "a second run changed the files"
    ko = techday("hub", "nbgrader-language", "--prefix", str(prefix), env={"TECHDAY_LANG": "ko"}, timeout=120)
    assert ko.returncode == 0 and HANGUL.search(ko.stdout), ko.stdout + ko.stderr
    undone = techday("hub", "nbgrader-language", "--prefix", str(prefix), "--undo", env={"TECHDAY_LANG": "en"},
                     timeout=120)
    assert undone.returncode == 0 and "3 file(s)" in undone.stdout, undone.stdout + undone.stderr
    assert _digest(ext) == before, "undo did not give back nbgrader's own files byte for byte"
    assert _bundle(ext).stat().st_mode == mode


def test_a_changed_table_patches_again_from_the_original(ext):
    """A table changed since the bundle was patched (a better Korean text): the next run starts from nbgrader's
    own files, and the earlier table's files go.

    Wrong answers caught: the old Korean kept (the marker's table hash ignored), the new choice wrapped around
    the old one, and a bundle left patched by a table that no longer has texts in it."""
    node = _node()
    g.patch(ext=ext, node=node)
    table = [g.Entry(e.key, e.english, (e.korean + "!") if e.english == "Fetch" else e.korean, e.literals, e.html)
             for e in g.entries()]
    result = g.patch(ext=ext, node=node, table=table)
    assert result.patched
    assert len([p for p in (ext / "static").glob("*.js") if g.MARKER_RE.match(p.read_text(encoding="utf-8"))]) == 2
    text = _bundle(ext, patched=True).read_text(encoding="utf-8")
    assert text.count(g.KO_TEST) == len(_choices(text)), "a choice inside a choice"
    assert json.dumps(g.entries()[[e.english for e in table].index("Fetch")].korean + "!") in text
    # a table with no text in the bundle any more: nbgrader's own bytes back, the .orig gone
    original = (ext / "package.json.orig").read_bytes()
    other = [g.Entry("techday.nbgrader_ui_fetch", "Not in nbgrader", "없음", literals=0)]
    result = g.patch(ext=ext, node=node, table=other)
    assert result.restored == [ext / "package.json"] and (ext / "package.json").read_bytes() == original
    assert not list(ext.rglob("*.orig")) and not [p for p in (ext / "static").glob("*.js") if g.MARKER_RE.match(
        p.read_text(encoding="utf-8"))]


def test_another_nbgrader_is_refused_with_the_reason_and_nothing_is_written(ext):
    """An nbgrader upgrade: another version in package.json, or the same version with a text moved, gone or
    doubled. Refused, naming the text and both counts, before any file is written.

    Wrong answers caught: a patch applied to a bundle the table was not made for (a text left English without
    notice, or a rewrite in a place never looked at), and a refusal that leaves some files patched."""
    bundle = _bundle(ext)
    original = bundle.read_text(encoding="utf-8")
    before = _digest(ext)
    for changed, why in (
        (original.replace('t.innerText="Submit",t.onclick', 't.textContent=s.label,t.onclick', 1), "'Submit': 1 literal"),
        (original.replace('tooltip:"Validate Assignment"', 'tooltip:"Validate"', 1), "'Validate': 5 literal"),
        (original.replace("Released assignments", "Released", 1), "'Released assignments': 0 literal(s) and 0 HTML"),
    ):
        assert changed != original
        bundle.write_text(changed, encoding="utf-8")
        with pytest.raises(g.NbgraderLangError, match=re.escape(why)):
            g.patch(ext=ext, node=g.find_node() or "/nonexistent/node")
        assert not list(ext.rglob("*.orig")), "a refused run left an .orig"
        assert _digest(ext) == {**before, str(bundle.relative_to(ext)): hashlib.sha256(changed.encode()).hexdigest()}, (
            "a refused run wrote a file")
    bundle.write_text(original, encoding="utf-8")
    assert _digest(ext) == before
    package = ext / "package.json"
    meta = json.loads(package.read_text(encoding="utf-8"))
    package.write_text(json.dumps({**meta, "version": "0.9.7"}), encoding="utf-8")
    with pytest.raises(g.NbgraderLangError, match=r"0\.9\.7.*0\.9\.6"):
        g.patch(ext=ext)
    assert bundle.read_text(encoding="utf-8") == original


TABLE = [g.Entry("techday.nbgrader_ui_fetch", "Fetch", "가져오기", literals=1)]


@pytest.mark.parametrize("code,where", [
    ('var a={"Fetch":1};t.innerText="Fetch";', "an object key"),
    ('t.innerText=x?"Fetch":"Get";', "a ternary's branch"),
    ('t.innerText="Fetch"+n;', "a concatenation"),
    ('t.innerText=`${"Fetch"}`;', "a template literal's expression"),
    ('if(a=="Fetch")go();', "a comparison"),
    ('t.innerText.x=f("Fetch");', "an unknown call"),
])
def test_a_text_outside_the_allowed_contexts_is_refused(tmp_path, code, where):
    """The table's text as a literal in a place that is not one of the allow-listed contexts: refused, naming it.

    Wrong answers caught: a rewritten object key (``{(...?...:"Fetch"):1}`` does not parse, or a key that
    changes with the language), a rewritten comparison (nbgrader's logic would change in a Korean page), a
    concatenation (precedence), a literal inside a template."""
    with pytest.raises(g.NbgraderLangError, match="context|found"):
        g.rewrite(code, TABLE)
    print(f"refused: {where}")


@pytest.mark.parametrize("code", [
    'x=/"Fetch"/.test(s);t.innerText="Fetch";',
    'x=`t.innerText="Fetch"`;t.innerText="Fetch";',
    '/* t.innerText="Fetch" */t.innerText="Fetch";',
    "x=a/2/b;t.innerText='Fetch';",
    'x="\\u{1F600}Fetch";t.innerText="Fetch";',
])
def test_texts_in_regular_expressions_templates_and_comments_are_not_literals(code):
    """The lexer reads a quoted text inside a regular expression, a template literal's text or a comment as part of
    it, never as a string literal; the one real literal is rewritten (a division is not a regular expression).

    Wrong answer caught: a regular expression or a template rewritten into JavaScript that means something else;
    and a literal with an escape the reader does not know (``\\u{...}``) stopping the whole bundle."""
    done = g.rewrite(code, TABLE)
    assert done.counts["Fetch"] == [1, 0], done.counts
    assert done.text.count(g.KO_TEST) == 1
    assert done.text.endswith(f'=({g.KO_TEST}?{json.dumps("가져오기", ensure_ascii=True)}:{code.rsplit("=", 1)[1][:-1]});')


def test_no_node_no_patch(ext, monkeypatch):
    """Without node the patched bundle cannot be shown to parse: refused, saying so, nothing written.

    Wrong answer caught: a bundle written on a Python look alone (a blank JupyterLab if it does not parse)."""
    before = _digest(ext)
    monkeypatch.setattr(g, "find_node", lambda: None)
    with pytest.raises(g.NbgraderLangError, match="node is not installed"):
        g.patch(ext=ext)
    assert _digest(ext) == before


def test_a_bundle_that_does_not_parse_is_not_written(ext):
    """node --check's answer decides: a rewrite it rejects (here: broken on purpose) is not written.

    Wrong answer caught: the parse check skipped, or its failure ignored."""
    node = _node()
    with pytest.raises(g.NbgraderLangError, match="does not parse"):
        g.node_check('t.innerText=("Fetch";', node)
    g.node_check('t.innerText=(/^ko/i.test(document.documentElement.lang)?"\\uac00":"Fetch");', node)


def test_techday_lab_gets_a_patched_copy_and_the_environment_stays_as_it_is(tmp_path):
    """``techday lab``'s overlay: a patched copy for ``JUPYTER_PATH``; this environment's own files unchanged; a
    second call makes it again from the installed one.

    Wrong answers caught: ``techday lab`` patching the trainee's environment in place, and an overlay that keeps
    a stale copy after nbgrader was reinstalled."""
    _node()
    before = _digest(INSTALLED)
    for _ in range(2):
        target = g.overlay(tmp_path / "data")
        assert target == tmp_path / "data"
        copy = target / "labextensions" / g.PACKAGE
        assert g.MARKER_RE.match(_bundle(copy, patched=True).read_text(encoding="utf-8"))
        assert g.MARKER_RE.match(_loaded(copy).read_text(encoding="utf-8"))
        assert not list((tmp_path / "data").glob(".nbgrader.*")), "a half-made copy left behind"
    assert _digest(INSTALLED) == before, "the environment's nbgrader labextension changed"
    from jupyterlab_server.config import get_federated_extensions

    found = get_federated_extensions([str(tmp_path / "data" / "labextensions"), str(INSTALLED.parent.parent)])
    assert Path(found[g.PACKAGE]["ext_path"]) == copy, "JupyterLab would load the environment's copy"


def test_lab_language_without_nbgrader_installed_says_so_and_goes_on(tmp_path):
    """``techday hub lab-language`` in an environment without nbgrader's labextension: the language is set, the
    missing extension said; ``nbgrader-language`` alone refuses (exit 2).

    Wrong answer caught: the image's language step failing where there is nothing of nbgrader's to translate, or
    the explicit command pretending it did something."""
    out = techday("hub", "lab-language", "en", "--prefix", str(tmp_path), env={"TECHDAY_LANG": "en"}, timeout=120)
    assert out.returncode == 0 and "not installed" in out.stdout, out.stdout + out.stderr
    alone = techday("hub", "nbgrader-language", "--prefix", str(tmp_path), env={"TECHDAY_LANG": "en"}, timeout=120)
    assert alone.returncode == 2 and "not installed" in alone.stderr, alone.stdout + alone.stderr


def test_a_patched_bundle_whose_original_is_gone_is_refused(ext):
    """A patched extension whose ``package.json.orig`` is gone (deleted by hand): patching again or undoing is
    refused, saying so.

    Wrong answers caught: the patched package.json taken for nbgrader's (its entry point is then the step's own
    file), and an undo that reports success while nbgrader's original is lost."""
    node = _node()
    g.patch(ext=ext, node=node)
    (ext / "package.json.orig").unlink()
    bundle = ext / "package.json"
    patched = bundle.read_bytes()
    for step in (lambda: g.patch(ext=ext, node=node), lambda: g.undo(ext=ext)):
        with pytest.raises(g.NbgraderLangError, match=r"original .*\.orig is gone"):
            step()
        assert bundle.read_bytes() == patched
