"""``techday hub lab-language``: the default language of a trainee's JupyterLab, written at the image's build
(techday/hub/lablang.py). The server that reads it is tested in tests/unit/test_lab_language.py."""

from __future__ import annotations

import json
import os
import stat

import pytest

from techday.hub import lablang
from tests.conftest import techday


def _overrides(prefix):
    return json.loads((lablang.settings_dir(prefix) / "overrides.json").read_text(encoding="utf-8"))


@pytest.fixture
def pack(monkeypatch):
    """The Korean pack counted as installed, whatever this environment holds (the check itself is tested below)."""
    monkeypatch.setattr(lablang, "installed_packs", lambda: {"ko_KR": "jupyterlab_language_pack_ko_KR"})


def test_the_file_is_where_this_jupyterlab_reads_its_overrides():
    """Wrong answer caught: overrides written into a folder JupyterLab does not read (its application settings
    folder is ``<app dir>/settings``, which JupyterLab works out itself): the image's JupyterLab would stay English
    while the file sits beside it."""
    from jupyterlab.labapp import LabApp

    assert lablang.settings_dir() == lablang.Path(LabApp().app_settings_dir)


@pytest.mark.parametrize("lang, locale", [("ko", "ko_KR"), ("en", "en"), (" KO\n", "ko_KR")])
def test_each_room_gets_its_locale_and_other_overrides_are_kept(tmp_path, pack, lang, locale):
    """Wrong answers caught: a room given another room's locale, and an ``overrides.json`` already in the image
    (another default an admin set, another key of the translation plugin) overwritten instead of kept."""
    settings = lablang.settings_dir(tmp_path)
    settings.mkdir(parents=True)
    (settings / "overrides.json").write_text(json.dumps({
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
        lablang.TRANSLATION_PLUGIN: {"locale": "fr_FR", "displayLanguage": "x"}}))
    lablang.write_lab_locale(lang, tmp_path)
    got = _overrides(tmp_path)
    assert got[lablang.TRANSLATION_PLUGIN] == {"locale": locale, "displayLanguage": "x"}
    assert got["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}


@pytest.mark.parametrize("lang", ["fr", "ko_KR", "", "../../etc", "ko;en", "default"])
def test_a_language_outside_the_allow_list_stops_the_build(tmp_path, pack, lang):
    """Wrong answer caught: any string written into JupyterLab's settings as a locale (a typo in the build
    argument gives a JupyterLab that asks for a catalogue nobody has, in English, with no error at build)."""
    with pytest.raises(lablang.LabLanguageError):
        lablang.write_lab_locale(lang, tmp_path)
    assert not (lablang.settings_dir(tmp_path) / "overrides.json").exists()


def test_korean_without_the_language_pack_stops_the_build(tmp_path, monkeypatch):
    """Wrong answer caught: a lock that lost the Korean pack still builds a Korean image, whose JupyterLab asks
    for ko_KR, is told "Language pack 'ko_KR' not installed!" and shows English. English needs no pack."""
    monkeypatch.setattr(lablang, "installed_packs", lambda: {})
    with pytest.raises(lablang.LabLanguageError, match="jupyterlab-language-pack-ko-kr"):
        lablang.write_lab_locale("ko", tmp_path)
    assert not (lablang.settings_dir(tmp_path) / "overrides.json").exists(), "a Korean default written without its pack"
    lablang.write_lab_locale("en", tmp_path)
    assert _overrides(tmp_path)[lablang.TRANSLATION_PLUGIN]["locale"] == "en"


def test_the_file_is_readable_by_every_trainee_under_a_tight_umask(tmp_path, pack):
    """Wrong answer caught: a build run with umask 077 writes a 0600 file, root's: every trainee's server (its
    own uid) fails to read its overrides ("Failed loading overrides") and shows English."""
    old = os.umask(0o077)
    try:
        path = lablang.write_lab_locale("ko", tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", json.dumps({lablang.TRANSLATION_PLUGIN: "ko_KR"})])
def test_an_overrides_file_that_is_not_plugin_settings_is_left_alone(tmp_path, pack, text):
    """Wrong answer caught: a file JupyterLab cannot use silently replaced (the other defaults in it lost)
    or patched into something worse; the build stops and names it, the file unchanged."""
    settings = lablang.settings_dir(tmp_path)
    settings.mkdir(parents=True)
    (settings / "overrides.json").write_text(text)
    with pytest.raises(lablang.LabLanguageError, match="overrides.json"):
        lablang.write_lab_locale("ko", tmp_path)
    assert (settings / "overrides.json").read_text() == text


def test_the_command_line_says_so_in_the_builders_language(tmp_path):
    """``techday hub lab-language``: exit 0 and the file's path, or exit 2 and why. Wrong answers caught: a bad
    language accepted (exit 0), and its lines in English only for a Korean instructor."""
    bad = techday("hub", "lab-language", "fr", "--prefix", str(tmp_path), env={"TECHDAY_LANG": "ko"}, timeout=120)
    assert bad.returncode == 2 and "JupyterLab 언어가 없습니다" in bad.stderr, bad.stdout + bad.stderr
    ok = techday("hub", "lab-language", "en", "--prefix", str(tmp_path), env={"TECHDAY_LANG": "en"}, timeout=120)
    assert ok.returncode == 0 and "overrides.json" in ok.stdout and "Settings > Language" in ok.stdout, ok.stdout + ok.stderr
    assert _overrides(tmp_path)[lablang.TRANSLATION_PLUGIN]["locale"] == "en"
