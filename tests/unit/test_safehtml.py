"""What a trainee writes or prints is shown to instructors (the formgrader) and in feedback as HTML:
rendered with the course root's config, nothing of it can run (techday/grading/safehtml.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[2]
ATTACKS = [
    ("markdown", 'my answer <img src=x onerror="alert(1)"> <script>alert(2)</script>'),
    ("markdown", '<a href="javascript:alert(3)">see</a> <iframe src="javascript:alert(4)"></iframe>'),
    ("markdown", "```\ncode\n\n```\n<img src=x onerror=alert(5)>\n\n<svg onload=alert(6)></svg>"),
    ("text/html", '<b>ok</b><script>alert(7)</script><img src=x onerror="alert(8)">'),
    ("application/javascript", "alert(9)"),
    ("text/markdown", '<img src=x onerror="alert(10)">'),
    ("image/svg+xml", '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(11)"><script>alert(12)</script></svg>'),
    ("raw", '<img src=x onerror="alert(13)"><script>alert(14)</script>'),
    ("markdown", '![x](/hub/logout) <img src="https://tracker.example/p.gif"> <a href="/hub/logout">out</a>'),
    ("text/html", '<img src="/hub/logout"><a href="data:text/html,alert(15)">d</a>'),
]


class Runnable(HTMLParser):
    """Every place in a page where a trainee's alert(N) would run: a script's text, an on* attribute,
    a javascript: URL."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        self.in_script = tag == "script"
        for name, value in attrs:
            if value and "alert(" in value and (name.startswith("on") or "javascript:" in value.lower()):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("src", "data") and value and value.startswith("data:image/svg") and "alert" in value:
                self.found.append(f"<{tag} {name}=svg data>")

    def handle_endtag(self, tag):
        self.in_script = False

    def handle_data(self, data):
        if self.in_script and "alert(" in data:
            self.found.append(f"<script>{data.strip()[:60]}")


def notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("An honest answer: **bold**, `x<y`, $a < b$, [docs](https://x.example)."
                                                  " ![plot](data:image/png;base64,iVBORw0KGgo=)"))
    for kind, text in ATTACKS:
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "raw":
            nb.cells.append(nbformat.v4.new_raw_cell(text, metadata={"raw_mimetype": "text/html"}))
        else:
            cell = nbformat.v4.new_code_cell("display(...)")
            cell.outputs = [nbformat.v4.new_output("display_data", data={kind: text, "text/plain": "x"})]
            nb.cells.append(cell)
    return nb


def course_config():
    """The course root's settings as nbgrader loads them (grading/nbgrader_config.py)."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "grading")).load_config()


def formgrade_html(nb) -> str:
    """The notebook as the formgrader renders it for an instructor, with the course's config."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers

    config = course_config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"base_url": "/", "mathjax_url": "", "index": 0, "total": 1, "notebook_id": "n",
                 "notebook_path": "n", "submission_id": "s", "student": "s", "first_name": "", "last_name": ""}
    return HTMLExporter(config=config).from_notebook_node(nb, resources=resources)[0]


@pytest.mark.parametrize("template,korean", [("formgrade", False), ("feedback", False), ("feedback", True)],
                         ids=["formgrade", "feedback", "the course's feedback in Korean"])
def test_nothing_a_trainee_wrote_runs_in_the_formgrader_or_feedback(template, korean, recwarn):
    """Without the course root's settings the formgrader ran the markdown cell's onerror and <script>
    (its template renders markdown itself, unsanitized) and every output's HTML and JavaScript. The
    course's own feedback template (techday/grading/feedback.py) renders a Korean page as safely."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers

    from techday.grading.feedback import labels, template_dirs

    config = course_config()
    config.HTMLExporter.template_name = template
    config.HTMLExporter.extra_template_basedirs = template_dirs() if korean else [handlers.template_path]
    # as nbgrader's GenerateFeedback sets it (the feedback page inlines bootstrap's CSS)
    config.HTMLExporter.extra_template_paths = [str(Path(handlers.template_path).parent / "static" / "node_modules"
                                                    / "bootstrap" / "dist" / "css")]
    resources = {"base_url": "/", "mathjax_url": "", "index": 0, "total": 1, "notebook_id": "n",
                 "notebook_path": "n", "submission_id": "s", "student": "s", "first_name": "", "last_name": "",
                 "assignment_name": "lab",
                 "nbgrader": {"notebook": "n", "score": 0, "max_score": 1, "late_penalty": 0}}
    if korean:
        resources["techday_feedback"] = labels("ko")
    html, _ = HTMLExporter(config=config).from_notebook_node(notebook(), resources=resources)
    assert ("(점수:" in html) == korean  # the page rendered is the one named
    parser = Runnable()
    parser.feed(html)
    assert not parser.found, parser.found
    # An honest answer still reads as written.
    assert "<strong>bold</strong>" in html and re.search(r"<code>x(&lt;|<)y</code>", html), html[:2000]
    assert 'href="https://x.example"' in html and "<p>An honest answer" in html  # paragraphs stay paragraphs
    assert "&lt;script&gt;alert(2)" in html  # an attempt is shown to the instructor as text
    # Nothing the instructor's browser would fetch by itself, or a relative link on the hub's origin.
    assert 'src="/hub/logout"' not in html and 'href="/hub/logout"' not in html
    assert 'src="https://tracker.example' not in html and 'href="data:' not in html
    assert 'src="data:image/png;base64,iVBOR' in html  # an embedded image stays


def test_metadata_a_trainee_wrote_never_becomes_an_attribute_or_a_url():
    """nbconvert writes an image output's width and height into an unquoted attribute and its
    ``filenames`` as the image's URL: ``width: "1 onerror=alert(16)"`` (set by ``display(...,
    metadata=...)`` in a cell) ran in the formgrader, and ``filenames`` made the instructor's browser
    fetch ``/hub/logout``. A cell's forged ``grade_id`` went into an ``id`` unescaped too."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="},
                               metadata={"image/png": {"width": "1 onerror=alert(16)", "height": 480}}),
        nbformat.v4.new_output("display_data", data={"image/jpeg": "AAAA"},
                               metadata={"height": "2 onerror=alert(17)", "filenames": {"image/jpeg": "/hub/logout"}}),
        nbformat.v4.new_output("execute_result", data={"image/png": "iVBORw0KGgo="}, execution_count=1,
                               metadata={"filenames": {"image/png": "/hub/x"}, "image/png": {"width": True}}),
    ]
    forged = nbformat.v4.new_markdown_cell("answer", metadata={"nbgrader": {
        "grade": True, "solution": True, "points": 1, "grade_id": 'a"><img src=x onerror=alert(18)>'}})
    nb.cells = [cell, forged]
    html = formgrade_html(nb)
    parser = Runnable()
    parser.feed(html)
    assert not parser.found, parser.found
    assert "/hub/logout" not in html and "/hub/x" not in html and "onerror" not in html
    assert re.search(r'<img[^>]*height="?480', html), html  # a real size stays


@pytest.mark.parametrize("course", ["the kit", "a course without grading/nbgrader_config.py"])
def test_every_course_root_cleans_its_html(course, tmp_path):
    """SafeHTML was set only in the kit's grading/nbgrader_config.py, which a course root's config loads
    from the course's folder: a course without that file (the test fixture's course; one made anew with
    the kit) rendered every trainee's markdown and outputs raw in the formgrader and in feedback. The
    generated config sets it itself, once."""
    from techday.grading.config import SAFE_HTML, nbgrader_config

    repo = ROOT if course == "the kit" else tmp_path / "course"
    (tmp_path / "root").mkdir()
    text = nbgrader_config(tmp_path / "root", "c", repo)
    (tmp_path / "root" / "nbgrader_config.py").write_text(text, encoding="utf-8")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path / "root")).load_config()
    preprocessors = config.HTMLExporter.get("preprocessors")
    assert isinstance(preprocessors, list) and preprocessors.count(SAFE_HTML) == 1, config.HTMLExporter


def test_no_trainee_element_takes_the_id_of_a_score_box():
    """The formgrader binds each score box by its grade id (``$("#" + grade_id)``, the first element that
    has it): a trainee's heading ``# double_tests`` above the test cell got ``id="double_tests"`` first, and
    the instructor's score for that cell went nowhere (or, inside another graded answer, to it)."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell('# double_tests\n\n<h2 id="mean_tests">x</h2>'))
    printed = nbformat.v4.new_code_cell("show()")
    printed.outputs = [nbformat.v4.new_output("display_data", data={"text/html": '<p id="double_tests">x</p>'})]
    nb.cells.append(printed)
    for gid in ("double_tests", "mean_tests"):
        nb.cells.append(nbformat.v4.new_code_cell("assert True", metadata={"nbgrader": {
            "grade": True, "solution": False, "locked": True, "points": 1, "grade_id": gid, "schema_version": 3}}))
    html = formgrade_html(nb)
    for gid in ("double_tests", "mean_tests"):
        found = re.findall(rf'<[a-z0-9]+[^>]*\bid="{gid}"', html)
        assert found and all(tag.startswith("<input") for tag in found) and len(found) == 1, found
