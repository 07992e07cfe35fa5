"""The language of a trainee's JupyterLab itself (menus, file browser, dialogs, status bar): the room's.

The course is Korean first, and so is the JupyterLab a trainee works in all day, not only the notebooks. The
trainee image installs JupyterLab's Korean language pack (``jupyterlab-language-pack-ko-kr``, pinned in
pyproject.toml and the locks) in every room, and its build writes the room's language as the default
of JupyterLab's translation plugin (``@jupyterlab/translation-extension:plugin``, ``locale``) into
``overrides.json`` in the environment's JupyterLab settings folder
(``<sys.prefix>/share/jupyter/lab/settings/``, root's in the image): ``techday hub lab-language ko``.

A default, not a lock: a trainee who picks another language in Settings > Language keeps it (JupyterLab
writes it to the trainee's own user settings, which win over the defaults).

Both rooms write the setting. An English room writes ``en`` rather than leaving JupyterLab's own default
(``default``: the server's system locale), so its JupyterLab does not follow whatever ``LANG`` a host or
a chart sets. The languages are an allow-list (:data:`LAB_LOCALES`); another one stops the build.

Building for ``ko`` checks that the language pack is installed in this environment (its
``jupyterlab.languagepack`` entry point for ``ko_KR``): a lock that lost it would otherwise build an
image whose JupyterLab asks for a catalogue nobody serves, and shows English.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from ..atomicfile import write_text
from ..i18n import msg

# The room's language (TECHDAY_LANG, `techday build --lang`) -> JupyterLab's locale. An allow-list.
LAB_LOCALES = {"en": "en", "ko": "ko_KR"}
TRANSLATION_PLUGIN = "@jupyterlab/translation-extension:plugin"
LANGUAGE_PACK_GROUP = "jupyterlab.languagepack"
# The languages whose JupyterLab strings come from a language pack (English is JupyterLab's own).
LANGUAGE_PACKS = {"ko_KR": "jupyterlab-language-pack-ko-kr"}


class LabLanguageError(ValueError):
    """A language this module cannot set, or an overrides file it cannot read."""


def settings_dir(prefix: str | os.PathLike | None = None) -> Path:
    """JupyterLab's application settings folder of the environment at ``prefix`` (this Python's by default):
    what JupyterLab's ``app_settings_dir`` is unless configured otherwise."""
    return Path(prefix if prefix is not None else sys.prefix) / "share" / "jupyter" / "lab" / "settings"


def installed_packs() -> dict[str, str]:
    """The locales whose language pack this environment has: locale -> the pack's module."""
    return {ep.name: ep.value for ep in entry_points(group=LANGUAGE_PACK_GROUP)}


def write_lab_locale(lang: str, prefix: str | os.PathLike | None = None, *, check_pack: bool = True) -> Path:
    """Set the default locale of JupyterLab's translation plugin to the room's ``lang`` in the
    ``overrides.json`` of the environment at ``prefix``; every other override there is kept. Returns the
    file written."""
    key = (lang or "").strip().lower()
    if key not in LAB_LOCALES:
        raise LabLanguageError(msg("techday.lab_language_unknown", "no JupyterLab language for the room language {lang}: "
                                   "one of {known}", lang=repr(lang), known=", ".join(sorted(LAB_LOCALES))))
    locale = LAB_LOCALES[key]
    if check_pack and locale in LANGUAGE_PACKS and locale not in installed_packs():
        raise LabLanguageError(msg("techday.lab_language_no_pack", "JupyterLab's {locale} language pack is not "
                                   "installed in {prefix} (pip package {package}): JupyterLab would show English",
                                   locale=locale, prefix=sys.prefix, package=LANGUAGE_PACKS[locale]))
    path = settings_dir(prefix) / "overrides.json"
    overrides: dict = {}
    if path.exists():
        try:
            overrides = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LabLanguageError(msg("techday.lab_language_bad_overrides", "{path}: not a JSON object of plugin "
                                       "settings ({why}); fix or remove it", path=path, why=exc)) from None
        if not isinstance(overrides, dict) or not isinstance(overrides.get(TRANSLATION_PLUGIN, {}), dict):
            raise LabLanguageError(msg("techday.lab_language_bad_overrides", "{path}: not a JSON object of plugin "
                                       "settings ({why}); fix or remove it", path=path, why=type(overrides).__name__))
    overrides.setdefault(TRANSLATION_PLUGIN, {})["locale"] = locale
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(overrides, indent=2, ensure_ascii=False) + "\n", perms=0o644)  # every trainee uid reads it
    return path
