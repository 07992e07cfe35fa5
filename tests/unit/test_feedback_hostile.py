"""The feedback page (the course's template, in Korean and English) of a hand-in whose every value is
hostile: cell sources, outputs of each kind, the notebook's language, grade ids, scores, tags (a cell id
that is not an id is refused by nbconvert's own validation: no page).
The page is read by a browser's parser (html5lib, the HTML5 parsing algorithm) and compared with the page of
an honest hand-in: no script, style, link or frame of its own, no event handler, no URL a browser would fetch
by itself, and the page's language one the package speaks.

Each value names the attack it stands for."""

from __future__ import annotations

import nbformat
import pytest

from tests.unit.test_feedback_ko import graded_notebook, render

PAYLOAD = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
FETCHING = {"src", "href", "action", "formaction", "data", "poster", "srcset", "background", "xlink:href", "ping",
            "codebase", "manifest", "content"}


def hostile_notebook(lang: str) -> nbformat.NotebookNode:
    nb = graded_notebook(lang)
    nb.metadata["techday"] = {"lang": lang + PAYLOAD}          # the language: an attribute of <html>
    answer, test, passing, result, written, task = nb.cells
    answer.source = "def double(x):\n    return x  # </script><script>alert(3)</script>"   # a code cell's source
    answer.metadata["tags"] = [PAYLOAD]                         # tags: written into a class attribute
    test.outputs = [nbformat.v4.new_output("error", ename=PAYLOAD, evalue=PAYLOAD, traceback=[PAYLOAD]),
                    nbformat.v4.new_output("stream", name="stdout", text=PAYLOAD)]
    passing.metadata["nbgrader"] = {"grade_id": "mean_tests" + PAYLOAD, "grade": True, "solution": False,
                                    "points": PAYLOAD, "score": PAYLOAD}   # a grade id, scores: anchors and numbers
    result.outputs = [nbformat.v4.new_output("execute_result", execution_count=4, data={
        "text/plain": PAYLOAD, "text/latex": "$x$</div>" + PAYLOAD,
        "text/html": '<base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=https://evil.example">'
                     '<form action="https://evil.example"><button formaction="https://evil.example">b</button></form>'
                     '<link rel="stylesheet" href="https://evil.example/s.css"><style>@import url(https://evil.example);</style>'
                     '<iframe src="https://evil.example"></iframe><object data="https://evil.example"></object>'
                     '<a href="&#106;avascript:alert(4)">j</a><a href=" javascript:alert(5)">k</a>'
                     '<img src="https://evil.example/p.gif" srcset="https://evil.example/q.gif 2x">'
                     '<math><mi xlink:href="javascript:alert(6)">m</mi></math><svg><use href="https://evil.example/u"/></svg>'})]
    written.source = ("x\n\n<div>\u2028\u2029\x0c\n\n<img src=x onerror=alert(7)>\n\n[l](javascript:alert(8)) "
                      "<a href=/hub/logout>o</a> ![i](https://evil.example/i.png)")
    task.source = "$\\href{javascript:alert(9)}{click}$ <details open ontoggle=alert(10)>"
    return nb


def elements(page: str) -> list:
    html5lib = pytest.importorskip("bleach._vendor.html5lib", reason="bleach's html5lib (a browser's parser)")
    return list(html5lib.parse(page, namespaceHTMLElements=False).iter())


def own(el) -> tuple:
    return el.tag, tuple(sorted(el.attrib.items())), (el.text or "").strip()[:200]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_nothing_in_a_hostile_hand_in_runs_or_fetches_in_its_feedback(tmp_path, monkeypatch, lang):
    monkeypatch.delenv("TECHDAY_LANG", raising=False)
    honest = elements(render(graded_notebook(lang), tmp_path))
    page = render(hostile_notebook(lang), tmp_path)
    found = elements(page)
    template = {own(e) for e in honest if e.tag in ("script", "style", "link", "meta", "base", "iframe", "object")}
    problems = []
    for el in found:
        if el.tag in ("script", "style", "link", "meta", "base", "iframe", "object", "embed", "form", "frame",
                      "button", "input", "details", "svg", "math", "use") and own(el) not in template:
            problems.append(("element", own(el)))
        for name, value in el.attrib.items():
            name = str(name).lower()
            if name.startswith("on"):
                problems.append(("handler", el.tag, name, value))
            if name in FETCHING or name.endswith("}href"):
                v = value.strip().lower()
                if el.tag == "a" and name == "href" and v.startswith(("http://", "https://", "mailto:", "#")):
                    continue
                if el.tag == "img" and name == "src" and v.startswith(("data:image/png;", "data:image/jpeg;", "data:image/gif;")):
                    continue
                if (el.tag, name, value) in {(e.tag, n, v2) for e in honest for n, v2 in e.attrib.items()}:
                    continue  # the template's own (its stylesheet, MathJax, require.js)
                problems.append(("url", el.tag, name, value))
    html = next(e for e in found if e.tag == "html")
    assert html.attrib.get("lang", "en") in ("ko", "en"), html.attrib
    assert not problems, problems[:10]
    assert "alert(" in page, "the payloads are on the page, as text"
