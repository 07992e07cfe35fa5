"""Where a course root keeps each notebook: the one owner of nbgrader's folder layout here (nbgrader's
own is ``nbgrader.coursedir``; these names follow it).

    source/<lab>/<lab>.ipynb                       techday build: the lab with solutions and hidden tests
    release/<lab>/<lab>.ipynb                      nbgrader generate_assignment: what trainees get
    submitted/<student>/<lab>/<lab>.ipynb          nbgrader collect, techday grade --import
    autograded/<student>/<lab>/<lab>.ipynb         nbgrader autograde
    feedback/<student>/<lab>/<lab>.html            nbgrader generate_feedback

A headless run (``techday run``) keeps the same shape for its own folders: ``<out>/source/<lab>/`` and
``<out>/<lab>/<lab>.ipynb``.
"""

from __future__ import annotations

from pathlib import Path

STEPS = ("source", "release", "submitted", "autograded", "feedback")
PER_STUDENT = ("submitted", "autograded", "feedback")


def notebook_name(lab: str) -> str:
    """The file name a lab is released, submitted and graded under."""
    return f"{lab}.ipynb"


def lab_folder(root: Path, step: str, lab: str, student: str | None = None) -> Path:
    """``root/<step>/[<student>/]<lab>``; a student exactly for the per-student steps."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: one of {', '.join(STEPS)}")
    if (step in PER_STUDENT) != (student is not None):
        raise ValueError(f"{step}/ is {'per student' if step in PER_STUDENT else 'not per student'}")
    return Path(root) / step / student / lab if student is not None else Path(root) / step / lab


def notebook(root: Path, step: str, lab: str, student: str | None = None) -> Path:
    """The lab's notebook in ``step`` (see the module docstring)."""
    return lab_folder(root, step, lab, student) / notebook_name(lab)


def read_built(root: Path, step: str, lab: str) -> dict:
    """The JSON of the lab's notebook that ``techday build`` wrote in ``step`` (``source`` or ``release``).
    One cut off by a stopped build (nbgrader's writes are not atomic) or edited by hand raises
    :class:`~techday.course.syllabus.CourseError` naming it and the fix: it was a JSON traceback."""
    import json

    from .syllabus import CourseError

    path = notebook(root, step, lab)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CourseError(f"{path} not found: run `techday build {lab}` first") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CourseError(f"{path} is not a notebook ({exc}): build it again with `techday build {lab}`") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise CourseError(f"{path} is not a notebook (no list of cells): build it again with `techday build {lab}`")
    return data
