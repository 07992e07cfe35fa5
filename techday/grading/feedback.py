"""The feedback page a trainee reads after grading, in the room's language.

nbgrader 0.9 renders feedback (``generate_feedback``, and the formgrader's *Generate Feedback* button,
which names the template ``feedback`` itself) with its template ``feedback/index.html.j2``, whose
labels are English only: "Score", "Test cell", "Student's answer", "Comments", "(Top)", and the
prompts "In [3]:" and "Out[3]:" of the classic template below it. The course's own template of the same
name, ``techday/grading/templates/feedback/index.html.j2``, is nbgrader's with every label taken from
``resources["techday_feedback"]``, which :class:`techday.grading.results.FeedbackLanguage` fills through the
package's catalogue (``techday/data/messages.<lang>.toml``, keys ``techday.feedback_*``). An English page is byte for byte
nbgrader's (``tests/unit/test_feedback_ko.py``).

The language of a page (:func:`feedback_language`): ``$TECHDAY_LANG`` when it is set (``techday grade
results --lang``), else the language the hand-in's notebook was released in (``techday build --lang``
writes it into the notebook's metadata: a room that mixes languages gets each trainee's own), else the
syllabus' ``default_language``. Only a language the package has a catalogue for is used: any other value
of ``$TECHDAY_LANG`` gives English, and of the notebook's metadata (the trainee's file) the room's language. The hidden-test verdicts
(:class:`techday.grading.results.HideHiddenTests`) and the lines :class:`techday.grading.safehtml.SafeHTML`
writes in place of an output follow the same language.

Not covered: what IPython writes in a traceback ("Traceback (most recent call last)", "Cell In[4],
line 2") of a test cell without hidden tests (it stays as the kernel wrote it); a trainee's own
outputs and markdown; the instructor's comment (shown as written).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from .. import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"  # holds feedback/, nbgrader's template name
RESOURCE = "techday_feedback"


def nbgrader_templates() -> str:
    """nbgrader's own template folder (its ``feedback`` and the formgrader's ``formgrade``)."""
    import importlib.util

    package = Path(importlib.util.find_spec("nbgrader").origin).resolve().parent
    return str(package / "server_extensions" / "formgrader" / "templates")


def template_dirs() -> list[str]:
    """``HTMLExporter.extra_template_basedirs`` for a course root: the course's ``feedback`` before
    nbgrader's; nbgrader's folder stays (the course root's config is read after the formgrader sets its
    own folder, and replaces it)."""
    return [str(TEMPLATES), nbgrader_templates()]


def known_language(lang) -> str | None:
    """``lang`` where the package can speak it (English, or a language with a package catalogue)."""
    if not isinstance(lang, str) or not lang.isascii() or not lang.isalpha() or len(lang) > 8:
        return None
    lang = lang.lower()
    catalogue = Path(i18n.__file__).resolve().parent / i18n.PACKAGE_CATALOGUE.format(lang=lang)
    return lang if lang == i18n.SOURCE_LANGUAGE or catalogue.is_file() else None


def feedback_language(nb=None) -> str:
    """The language of a hand-in's feedback, as the module docstring says."""
    if (os.environ.get(i18n.ENV) or "").strip():
        return known_language(os.environ[i18n.ENV].strip()) or i18n.SOURCE_LANGUAGE
    meta = nb.get("metadata", {}) if nb is not None else {}
    techday = meta.get("techday") if isinstance(meta, dict) else None
    lang = known_language(techday.get("lang")) if isinstance(techday, dict) else None
    return lang or known_language(i18n.current_language()) or i18n.SOURCE_LANGUAGE


def labels(lang: str) -> dict[str, str]:
    """The feedback template's labels in ``lang``, HTML-escaped (``&``, ``<``, ``>``): the catalogue's
    texts go into the page as they are."""
    words = i18n.PackageCatalogue(lang)
    texts = {
        "lang": lang,
        "score": words.msg("techday.feedback_score", "Score"),
        "top": words.msg("techday.feedback_top", "(Top)"),
        "test_cell": words.msg("techday.feedback_test_cell", "Test cell"),
        "coding_response": words.msg("techday.feedback_coding_response", "Coding free-response"),
        "written_response": words.msg("techday.feedback_written_response", "Written response"),
        "task": words.msg("techday.feedback_task", "Task"),
        "comment": words.msg("techday.feedback_comment", "Comment"),
        "late_penalty": words.msg("techday.feedback_late_penalty", "Late submission penalty"),
        "students_answer": words.msg("techday.feedback_students_answer", "Student's answer"),
        "students_task": words.msg("techday.feedback_students_task", "Student's task"),
        "grade_cell": words.msg("techday.feedback_grade_cell", "Grade cell:"),
        "task_id": words.msg("techday.feedback_task_id", "Task:"),
        "comments": words.msg("techday.feedback_comments", "Comments:"),
        "in_prompt": words.msg("techday.feedback_in_prompt", "In"),
        "out_prompt": words.msg("techday.feedback_out_prompt", "Out"),
    }
    return {k: html.escape(v, quote=False) for k, v in texts.items()}

