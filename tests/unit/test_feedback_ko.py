"""The feedback page of a graded hand-in in the room's language (techday/grading/feedback.py): rendered as
`nbgrader generate_feedback` renders it with a course root's config (techday.grading.config), a Korean
page keeps no English label (only numbers, code, names and units stay Latin), an English page is
nbgrader's own page byte for byte, and the language follows $TECHDAY_LANG, else the hand-in's notebook."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from techday.grading import config as grading_config
from techday.grading.feedback import feedback_language, nbgrader_templates

ROOT = Path(__file__).resolve().parents[2]
TEST = ('"""double() doubles."""\n'
        'assert double(2) == 4, "double(2) should be 4"\n'
        "### BEGIN HIDDEN TESTS\n"
        "assert double(-7) == -14\n"
        "### END HIDDEN TESTS\n")
# What may stay Latin on a Korean page outside code and outputs: the notebook's name and grade ids
# (names), exception names (code).
ALLOWED = {"01-double", "double", "double_tests", "mean_tests", "explain", "plan"}


def graded_notebook(lang: str | None = "ko") -> nbformat.NotebookNode:
    """An autograded hand-in as GetGrades leaves it: every kind of graded cell nbgrader's template labels
    (an answer, a test cell with a visible failure and a hidden test, a passing test, a written answer
    with the instructor's comment, a task), an output with a prompt."""
    nb = nbformat.v4.new_notebook()
    if lang:
        nb.metadata["techday"] = {"lang": lang}
    answer = nbformat.v4.new_code_cell("def double(x):\n    return x + 1", execution_count=1)
    answer.metadata["nbgrader"] = {"grade_id": "double", "solution": True, "grade": True, "points": 1, "score": 0,
                                   "comment": "곱셈을 씁니다"}
    test = nbformat.v4.new_code_cell(TEST, execution_count=2)
    test.metadata["nbgrader"] = {"grade_id": "double_tests", "grade": True, "solution": False, "points": 2,
                                 "score": 0}
    test.outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="double(2) should be 4",
        traceback=["AssertionError                            Traceback (most recent call last)",
                   "Cell In[2], line 2\n      1 \"\"\"double() doubles.\"\"\"\n----> 2 assert double(2) == 4",
                   "AssertionError: double(2) should be 4"])]
    passing = nbformat.v4.new_code_cell('"""mean() averages."""\nassert True', execution_count=3)
    passing.metadata["nbgrader"] = {"grade_id": "mean_tests", "grade": True, "solution": False, "points": 1,
                                    "score": 1}
    result = nbformat.v4.new_code_cell("double(3)", execution_count=4)
    result.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "4"}, execution_count=4),
                      nbformat.v4.new_output("display_data", data={"application/javascript": "show()"})]
    written = nbformat.v4.new_markdown_cell("두 배는 x + x입니다.")
    written.metadata["nbgrader"] = {"grade_id": "explain", "grade": True, "solution": True, "points": 1, "score": 0.5,
                                    "comment": "좋습니다"}
    task = nbformat.v4.new_markdown_cell("계획을 적습니다.")
    task.metadata["nbgrader"] = {"grade_id": "plan", "task": True, "grade": False, "solution": False, "points": 1,
                                 "score": 1, "comment": "좋습니다"}
    nb.cells = [answer, test, passing, result, written, task]
    return nb


def course_config(tmp_path: Path):
    """The config of a course root that grades trainees (techday.grading.config.nbgrader_config), as
    nbgrader loads it."""
    root = tmp_path / "course"
    root.mkdir(exist_ok=True)
    (root / "nbgrader_config.py").write_text(grading_config.nbgrader_config(root, "techday", ROOT), encoding="utf-8")
    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def render(nb, tmp_path: Path, stock: bool = False) -> str:
    """The page `nbgrader generate_feedback` writes for ``nb`` (GetGrades' scores already in it), with the
    course root's config; ``stock``: with nbgrader's own feedback template instead of the course's."""
    from nbconvert.exporters import HTMLExporter
    from traitlets.utils.importstring import import_item

    config = course_config(tmp_path)
    config.HTMLExporter.template_name = "feedback"  # as GenerateFeedback and the formgrader's API name it
    if stock:
        config.HTMLExporter.extra_template_basedirs = [nbgrader_templates()]
    config.HTMLExporter.extra_template_paths = [str(Path(nbgrader_templates()).parent / "static" / "node_modules"
                                                    / "bootstrap" / "dist" / "css")]
    exporter = HTMLExporter(config=config)
    for name in config.GenerateFeedback.preprocessors:
        if name != "nbgrader.preprocessors.GetGrades":  # reads the gradebook: its scores are in nb already
            exporter.register_preprocessor(import_item(name), enabled=True)
    resources = {"nbgrader": {"notebook": "01-double", "score": 1.5, "max_score": 5, "late_penalty": 1}}
    return exporter.from_notebook_node(nb, resources=resources)[0]


class Labels(HTMLParser):
    """The text of a page that is not a trainee's or a test's: outside code, outputs, rendered markdown,
    styles and scripts."""

    SKIP_CLASSES = {"input_area", "output_area", "output_subarea", "text_cell_render", "highlight"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "meta", "link", "img", "hr", "input"):
            return
        classes = set((dict(attrs).get("class") or "").split())
        self.stack.append(tag in ("style", "script", "title", "code", "pre") or bool(classes & self.SKIP_CLASSES)
                          or bool(self.stack and self.stack[-1]))

    def handle_endtag(self, tag):
        if tag not in ("br", "meta", "link", "img", "hr", "input") and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]) and data.strip():
            self.text.append(data.strip())


def english_words(page: str) -> list[str]:
    parser = Labels()
    parser.feed(page)
    words = re.findall(r"[A-Za-z][A-Za-z0-9_'-]*", " ".join(parser.text))
    return [w for w in words if w not in ALLOWED]


def test_a_korean_rooms_feedback_has_no_english_label(tmp_path, monkeypatch):
    """nbgrader's template wrote "Score", "Test cell", "Student's answer", "Comments:", "(Top)", "In [1]:"
    on a Korean trainee's page."""
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    page = render(graded_notebook("ko"), tmp_path)
    assert '<html lang="ko">' in page
    assert not english_words(page), sorted(set(english_words(page)))
    for label in ("점수", "테스트 셀", "참가자의 답안", "코멘트:", "(맨 위로)", "입력\xa0[1]:", "출력[4]:",
                  "늦은 제출 감점", "서술형 답안", "코드 서술형 답안", "채점 셀:"):
        assert label in page, label
    # the test's error as the page shows it: the verdict, the failing line's label in Korean too
    assert "실패: AssertionError: double(2) should be 4 (위치: `assert double(2) == 4" in page
    assert "double(-7)" not in page and " (at `" not in page
    # what the safe-HTML rules write in place of an output they drop (techday/grading/safehtml.py)
    assert "[application/javascript 형식의 출력은 여기에 보여 주지 않습니다]" in page and "not shown here" not in page


def test_the_label_scan_finds_nbgraders_english(tmp_path, monkeypatch):
    """The scan above can fail: nbgrader's own template on the same hand-in leaves its English labels."""
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    found = set(english_words(render(graded_notebook("ko"), tmp_path, stock=True)))
    assert {"Score", "Test", "cell", "Comments", "Top", "In"} <= found, found


def test_an_english_rooms_feedback_is_nbgraders_own_page(tmp_path, monkeypatch):
    monkeypatch.setenv("TECHDAY_LANG", "en")
    nb = graded_notebook("en")
    page = render(copy.deepcopy(nb), tmp_path)
    assert page == render(copy.deepcopy(nb), tmp_path, stock=True)
    assert "(Score: 1.5 / 5.0)" in page and "Student&#39;s answer" not in page and "Student's answer" in page
    assert "[output of type application/javascript not shown here]" in page and "<html>" in page


def test_the_language_is_the_rooms_else_the_hand_ins(monkeypatch):
    """$TECHDAY_LANG (``grade results --lang``) decides; without it the notebook's own language (a room that
    mixes languages), and nothing the trainee's file says that the package cannot speak."""
    monkeypatch.setenv("TECHDAY_LANG", "en")
    assert feedback_language(graded_notebook("ko")) == "en"
    monkeypatch.delenv("TECHDAY_LANG")
    assert feedback_language(graded_notebook("ko")) == "ko"
    assert feedback_language(graded_notebook(None)) == "en"
    for forged in ("../../etc/passwd", "ko\n", "xx", 3, ["ko"]):
        nb = graded_notebook(None)
        nb.metadata["techday"] = {"lang": forged}
        assert feedback_language(nb) == "en", forged


def test_a_notebook_in_korean_gets_korean_feedback_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("TECHDAY_LANG", raising=False)
    page = render(graded_notebook("ko"), tmp_path)
    assert "참가자의 답안" in page and "실패: AssertionError" in page and "Score" not in page


def test_both_course_roots_render_feedback_with_the_courses_template(tmp_path):
    """The course root `techday build` writes (the formgrader's Generate Feedback, plain `nbgrader
    generate_feedback`), a private root of `techday grade autograde` and `techday grade results`' own run
    all find the course's `feedback` before nbgrader's, and fill its labels."""
    from techday.course.build import write_config
    from techday.course.syllabus import load_course
    from techday.grading.config import FEEDBACK_PREPROCESSORS, grade_settings
    from techday.grading.feedback import template_dirs
    from techday.grading.run import private_config

    repo = ROOT / "tests" / "fixtures" / "course"
    (tmp_path / "grading").mkdir()
    (tmp_path / "grading" / "nbgrader_config.py").write_text("c = get_config()\n")
    course = load_course(repo)
    course.root = tmp_path
    write_config(course, tmp_path / "course")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "nbgrader_config.py").write_text(
        private_config(grade_settings(course, "grade-lab", "cpu", "ci"), tmp_path / "private", tmp_path / "r.json"))
    assert "techday.grading.results.FeedbackLanguage" in FEEDBACK_PREPROCESSORS
    for root in ("course", "private"):
        config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path / root)).load_config()
        assert list(config.HTMLExporter.extra_template_basedirs) == template_dirs(), root
        assert (Path(template_dirs()[0]) / "feedback" / "index.html.j2").is_file()
        assert Path(template_dirs()[1], "formgrade").is_dir()  # the formgrader's own page is still found
