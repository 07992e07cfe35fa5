"""``techday lab``: the labs on a trainee's own machine, as a trainee sees them in the hub.

JupyterLab started by hand in a checkout shows nbgrader's instructor panels (Formgrader, Create
Assignment) and the Assignments and Courses panels, which need a hub and an exchange ("Error fetching
courses", "exchange directory does not exist"). ``techday lab`` starts a trainee's JupyterLab instead:

- the released notebooks: ``release/`` of ``techday build`` (built for the labs whose release is
  missing or older than the lab source), or ``$TECHDAY_RELEASE`` when it is set (the lab image sets it);
- copied into a work folder once: later builds never overwrite a trainee's notebook;
- a Jupyter config folder (``JUPYTER_CONFIG_DIR``) that switches off nbgrader's formgrader, course list
  and assignment list server extensions and their JupyterLab plugins, Create Assignment and the
  Nbgrader menu, and keeps Validate; an nbgrader config whose exchange is a local folder that exists;
  for the Korean edition, JupyterLab's own menus and dialogs in Korean by default;
- nbgrader's Validate button and dialogs in JupyterLab's language: a patched copy of this environment's
  nbgrader labextension in a folder on ``JUPYTER_PATH`` (:func:`techday.hub.nbgraderlang.overlay`; the
  environment itself is never changed; where the copy cannot be made, nbgrader's texts stay English and
  the reason is printed);
- JupyterLab, started in the work folder (``--dry-run`` prepares all this and prints the command).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..course.layout import notebook_name
from ..course.syllabus import Course

# nbgrader's instructor and hub-only parts: off in a trainee's local JupyterLab. Validate stays on.
SERVER_EXTENSIONS_OFF = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
    "nbgrader.server_extensions.assignment_list",
)
SERVER_EXTENSIONS_ON = ("nbgrader.server_extensions.validate_assignment",)
LAB_PLUGINS_OFF = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:menu",  # its items open the four panels above
)


class LocalLabError(RuntimeError):
    """The labs could not be made ready; the message says which and why."""


@dataclass
class LocalLab:
    home: Path
    release: Path
    work: Path
    config_dir: Path
    exchange: Path
    labs: list[str]
    built: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # added to the caller's environment

    def shell(self) -> str:
        """The command as one line a person could paste."""
        return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in self.env.items()), shlex.join(self.command)])


def _stale(course: Course, release: Path, lab: str, lang: str | None = None) -> bool:
    """Whether ``lab``'s release must be built (again): missing, older than its source, cut off, or built in
    another language than ``lang`` (None: the syllabus' default)."""
    notebook = release / lab / notebook_name(lab)
    if not notebook.is_file():
        return True
    source = course.lab_source(lab)
    if source.is_file() and source.stat().st_mtime > notebook.stat().st_mtime:
        return True
    try:  # a build stopped while nbgrader wrote it (its writes are not atomic): newer, and cut off
        released = json.loads(notebook.read_bytes())
    except ValueError:
        return True
    meta = released.get("metadata", {}).get("techday", {}) if isinstance(released, dict) else {}
    built_in = meta.get("lang", "en") if isinstance(meta, dict) else "en"  # the English build records none
    return built_in != (lang or course.default_language)


def write_configs(config_dir: Path, exchange: Path, course: Course, lang: str | None = None) -> None:
    """The trainee's Jupyter config folder: server extensions, lab plugins and nbgrader settings, and for a
    Korean edition JupyterLab's own default language (``labconfig/default_setting_overrides.json``: the
    default of JupyterLab's translation plugin, as the image's ``overrides.json``; the trainee's choice in
    Settings > Language still wins). Another language leaves JupyterLab's own default (the machine's locale)
    and removes a Korean default an earlier run left in the folder."""
    from .lablang import LAB_LOCALES, TRANSLATION_PLUGIN

    (config_dir / "labconfig").mkdir(parents=True, exist_ok=True)
    defaults = config_dir / "labconfig" / "default_setting_overrides.json"
    locale = LAB_LOCALES.get((lang or "").lower())
    if locale and locale != "en":
        defaults.write_text(json.dumps({TRANSLATION_PLUGIN: {"locale": locale}}, indent=2) + "\n", encoding="utf-8")
    else:
        defaults.unlink(missing_ok=True)
    exchange.mkdir(parents=True, exist_ok=True)
    extensions = {name: False for name in SERVER_EXTENSIONS_OFF} | {name: True for name in SERVER_EXTENSIONS_ON}
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": extensions}}, indent=2) + "\n", encoding="utf-8")
    (config_dir / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {name: True for name in LAB_PLUGINS_OFF}}, indent=2) + "\n", encoding="utf-8")
    timeout = max([spec.timeout("full") for spec in course.labs.values()] or [300])
    (config_dir / "nbgrader_config.py").write_text(
        "# Written by `techday lab`: a trainee's nbgrader settings on their own machine (Validate).\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {course.id!r}\n"
        f"c.Exchange.root = {str(exchange)!r}  # a local folder: there is no hub to fetch from or submit to\n"
        f"c.Execute.timeout = {timeout}  # the longest lab's limit: a JIT compile or the simulator is slow\n"
        "c.Execute.interrupt_on_timeout = True\n",
        encoding="utf-8")


def copy_whole(src: Path, target: Path) -> None:
    """Copy the folder ``src`` to ``target`` (which does not exist) whole or not at all: into a hidden
    folder beside it, renamed once complete. A copy stopped half-way (Ctrl-C, a full disk) was kept
    as the trainee's own from then on, a notebook missing or cut off, and never copied again."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
    try:
        shutil.copytree(src, part, dirs_exist_ok=True)  # its mode too (copystat), not mkdtemp's 0700
        os.rename(part, target)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise


def prepare(course: Course, labs: list[str], home: Path | None = None, rebuild: bool = False,
            no_browser: bool = False, port: int | None = None, report=print, lang: str | None = None) -> LocalLab:
    """Release (build or reuse), copy into the work folder, write the configs; return what to run.
    ``lang`` (None: the syllabus' default) is the language of the notebooks built and of the messages their
    code prints: a release built in another language is built again, and JupyterLab's kernels get
    ``TECHDAY_LANG``. A trainee's copy already in the work folder is kept as it is, whatever its language."""
    from ..course.build import build, course_root

    home = (home or course.build_dir / "trainee").resolve()
    given = os.environ.get("TECHDAY_RELEASE")
    release = Path(given).resolve() if given else course_root(course) / "release"
    local = LocalLab(home=home, release=release, work=home / "work", config_dir=home / "jupyter",
                     exchange=home / "exchange", labs=labs)
    if given:
        missing = [lab for lab in labs if not (release / lab / notebook_name(lab)).is_file()]
        if missing:
            from ..i18n import msg

            raise LocalLabError(msg("techday.lab_release_lacks", "TECHDAY_RELEASE={release} has no {labs}",
                                    release=given, labs=", ".join(missing)))
    else:
        todo = list(labs) if rebuild else [lab for lab in labs if _stale(course, release, lab, lang)]
        if todo:
            from ..i18n import msg

            report(msg("techday.lab_building", "building {count} lab(s) with techday build: {labs}", count=len(todo),
                       labs=", ".join(todo)))
            result = build(course, todo, release=True, lang=lang)
            if result.errors:
                raise LocalLabError("; ".join(f"{lab}: {msg}" for lab, msg in result.errors.items()))
            local.built = result.built
    for lab in labs:
        target = local.work / lab
        if target.exists():
            local.kept.append(lab)
            continue
        copy_whole(release / lab, target)
        local.copied.append(lab)
    write_configs(local.config_dir, local.exchange, course, lang)
    local.env = {"JUPYTER_CONFIG_DIR": str(local.config_dir), "TECHDAY_ROOT": str(course.root)}
    data = nbgrader_overlay(home / "jupyter-data", report)
    if data is not None:  # its labextensions win over the environment's (JupyterLab takes the first found)
        local.env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(data), os.environ.get("JUPYTER_PATH")) if p)
    if lang and not given and (lang != course.default_language or os.environ.get("TECHDAY_LANG")):
        # the notebooks' messages in their markdown's language (a given release, $TECHDAY_RELEASE in the lab
        # image, is in whatever language it was built, and the kernel reads the syllabus' default)
        local.env["TECHDAY_LANG"] = lang
    local.command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={local.work}"]
    if no_browser:
        local.command.append("--no-browser")
    if port:
        local.command.append(f"--port={port}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        local.command.append("--allow-root")  # a container's root; JupyterLab refuses root otherwise
    return local


def nbgrader_overlay(target: Path, report=print) -> Path | None:
    """nbgrader's labextension, patched to follow JupyterLab's language, under ``target`` (for ``JUPYTER_PATH``);
    None, with the reason reported, where it cannot be made (no node to check the patch, another nbgrader)."""
    from ..i18n import msg
    from .nbgraderlang import NbgraderLangError, overlay

    try:
        return overlay(target)
    except (NbgraderLangError, OSError) as exc:
        report(msg("techday.lab_nbgrader_english", "nbgrader's buttons stay English in this JupyterLab: {why}", why=exc))
        return None


def start(local: LocalLab) -> int:
    """Run JupyterLab in the work folder until the trainee stops it (Ctrl-C)."""
    return subprocess.run(local.command, cwd=local.work, env={**os.environ, **local.env}).returncode
