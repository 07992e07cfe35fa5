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
