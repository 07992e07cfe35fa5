"""nbgrader's grading settings, built in one place for every course root that grades trainees' code:

- the course root that ``techday build`` writes (``build/course/nbgrader_config.py``), read by the
  formgrader's *Autograde* and *Generate Feedback* buttons and by plain ``nbgrader autograde LAB`` or
  ``nbgrader generate_feedback LAB`` in that folder;
- each submission's private course root that ``techday grade autograde`` writes
  (:mod:`techday.grading.run`).

Both replace nbgrader's ``Execute`` with :class:`techday.grading.executor.SandboxExecute` and add
:class:`techday.grading.results.HideHiddenTests` to the feedback. The sandbox's limits, tier and
environment for the lab being graded come from :func:`grade_settings` (``course/syllabus.toml``, the
tier, the scale), which ``techday grade autograde`` calls for its first lines and ``SandboxExecute``
calls again when it runs, so both paths grade with the same settings. Without a working sandbox
``SandboxExecute`` refuses to run a notebook (:class:`techday.grading.sandbox.SandboxUnavailable`).

Only the kit's own self-test roots (``techday grade selftest``: the course's solution and its release,
no trainee's code) keep nbgrader's ``Execute`` (``sandboxed=False``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .feedback import template_dirs as feedback_template_dirs
from .sandbox import Limits

# nbgrader's own, with OverwriteCells widened: deleted locked cells are added back too, every added cell
# in the course's order (techday/grading/restore.py).
SANITIZE_PREPROCESSORS = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "techday.grading.restore.RestoreCourseCells",  # in place of nbgrader.preprocessors.OverwriteCells
    "nbgrader.preprocessors.CheckCellMetadata",
]
AUTOGRADE_PREPROCESSORS = [
    "techday.grading.executor.SandboxExecute",  # in place of nbgrader.preprocessors.Execute
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
SAFE_HTML = "techday.grading.safehtml.SafeHTML"  # every HTML export of a trainee's notebook
FEEDBACK_PREPROCESSORS = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "techday.grading.results.HideHiddenTests",
    "techday.grading.results.FeedbackLanguage",  # the course's template's labels (techday/grading/feedback.py)
]


@dataclass
class GradeSettings:
    lab: str
    course_id: str
    repo_root: Path
    limits: Limits
    env: dict
    sandbox: bool = True
    gpu: bool = False
    keep_work: bool = False
    tier: str = "cpu"
    scale: str = "ci"
    referee: bool = True
    draw: str = ""   # the grading draw's seed for every hand-in ('': a fresh one each, techday/draw.py)


def resolve_tier(tier: str = "auto") -> str:
    """``auto``: ``$TECHDAY_TIER`` when set, else the GPU when there is one (:func:`techday.tier.detect`)."""
    if tier == "auto":
        tier = os.environ.get("TECHDAY_TIER", "auto") or "auto"
    if tier in ("cpu", "gpu"):
        return tier
    from ..tier import detect

    return detect(tier).tier


def resolve_scale(scale: str, tier: str) -> str:
    """``auto``: ``$TECHDAY_SCALE`` when set, else the workshop size on a GPU and the quick one elsewhere."""
    if scale == "auto":
        scale = os.environ.get("TECHDAY_SCALE", "auto") or "auto"
    return scale if scale != "auto" else ("full" if tier == "gpu" else "ci")


def grade_env(tier: str, scale: str) -> dict:
    """The variables a graded notebook sees besides the sandbox's own (see ``sandbox_env``)."""
    from ..lab import GRADER_FILES
    from .outside import GRADER_FILES_DIR

    # GRADER_FILES: where a test leaves a file the grader scores itself (techday/grading/outside.py)
    env = {"TECHDAY_TIER": tier, "TECHDAY_SCALE": scale, "MPLBACKEND": "Agg", GRADER_FILES: GRADER_FILES_DIR}
    if tier == "cpu":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return env


def lab_limits(course, lab: str, scale: str, cell_timeout: int | None = None) -> Limits:
    """The sandbox's limits for ``lab`` from the syllabus; a lab the syllabus does not know (an
    assignment made by hand in the formgrader) gets the defaults."""
    spec = course.labs.get(lab)
    if spec is None:
        limits = Limits()
        if cell_timeout:
            limits.cell_timeout_s = min(cell_timeout, limits.notebook_timeout_s)
        return limits
    return Limits(cell_timeout_s=cell_timeout or spec.cell_timeout(scale), notebook_timeout_s=spec.timeout(scale),
                  memory_mb=spec.memory_mb, max_processes=spec.max_processes)


def grade_settings(course, lab: str, tier: str, scale: str, sandbox: bool = True,
                   cell_timeout: int | None = None, referee: bool = True, draw: str = "") -> GradeSettings:
    """Everything that decides how one lab's submissions run: the one place both paths ask."""
    tier = resolve_tier(tier)
    scale = resolve_scale(scale, tier)
    return GradeSettings(lab=lab, course_id=course.id, repo_root=course.root,
                         limits=lab_limits(course, lab, scale, cell_timeout), env=grade_env(tier, scale),
                         sandbox=sandbox, gpu=(tier == "gpu"), tier=tier, scale=scale, referee=referee,
                         draw=str(draw or ""))


def nbgrader_config(root: Path, course_id: str, repo_root: Path, *, sandboxed: bool = True, tier: str = "auto",
                    scale: str = "auto", sandbox: bool = True, referee: bool = True, cell_timeout: int | None = None,
                    report_path: str = "", extra: str = "", header: str = "", draw: str = "") -> str:
    """The text of an ``nbgrader_config.py`` for the course root ``root``.

    ``sandboxed``: autograde through ``SandboxExecute`` and feedback through ``HideHiddenTests``
    (every root that grades trainees); False only for the kit's self-test roots. ``tier`` and
    ``scale`` (``auto``: decided when grading runs, see :func:`resolve_tier`), ``sandbox``, ``referee``,
    ``cell_timeout`` and ``report_path`` are ``SandboxExecute``'s; the limits themselves are read
    from ``repo_root``'s syllabus for the lab being graded."""
    base = Path(repo_root) / "grading" / "nbgrader_config.py"
    lines = [header.rstrip("\n"), "c = get_config()  # noqa: F821",
             f"load_subconfig({str(base)!r})  # noqa: F821",
             f"c.CourseDirectory.root = {str(root)!r}",
             f"c.CourseDirectory.course_id = {course_id!r}"]
    if sandboxed:
        lines += [
            "# Trainees' code runs only in the sandbox (techday/grading/executor.py), with the lab's limits from",
            "# course/syllabus.toml; feedback never shows hidden tests (techday/grading/results.py).",
            f"c.Autograde.sanitize_preprocessors = {SANITIZE_PREPROCESSORS!r}",
            f"c.Autograde.autograde_preprocessors = {AUTOGRADE_PREPROCESSORS!r}",
            "c.OverwriteCells.add_missing_cells = True",
            f"c.GenerateFeedback.preprocessors = {FEEDBACK_PREPROCESSORS!r}",
            "# Feedback in the hand-in's language: the course's `feedback` template before nbgrader's",
            "# (techday/grading/feedback.py).",
            f"c.HTMLExporter.extra_template_basedirs = {feedback_template_dirs()!r}",
            f"c.SandboxExecute.course_dir = {str(repo_root)!r}",
            f"c.SandboxExecute.tier = {tier!r}",
            f"c.SandboxExecute.scale = {scale!r}",
            f"c.SandboxExecute.sandbox = {bool(sandbox)!r}",
            f"c.SandboxExecute.referee = {bool(referee)!r}",
            "# Trainees' answers and outputs are rendered as HTML in the formgrader and feedback: cleaned",
            "# (techday/grading/safehtml.py), also where the course has no grading/nbgrader_config.py.",
            "_pre = c.HTMLExporter.get('preprocessors')",
            f"if not isinstance(_pre, list) or {SAFE_HTML!r} not in _pre:",
            f"    c.HTMLExporter.preprocessors = [*(_pre if isinstance(_pre, list) else []), {SAFE_HTML!r}]",
        ]
        if cell_timeout:
            lines.append(f"c.SandboxExecute.cell_timeout = {int(cell_timeout)}")
        if report_path:
            lines.append(f"c.SandboxExecute.report_path = {str(report_path)!r}")
        if draw:
            lines.append(f"c.SandboxExecute.draw = {str(draw)!r}")
    if extra:
        lines.append(extra.rstrip("\n"))
    return "\n".join(line for line in lines if line) + "\n"
