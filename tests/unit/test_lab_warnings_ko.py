"""A library warning a trainee meets in a Korean lab, reworded once in Korean (techday.lab.reword_missing_glyphs):
matplotlib's "Glyph 46020 (\\N{HANGUL SYLLABLE DO}) missing from font(s) DejaVu Sans." came once per Hangul
syllable of a plot's title on a machine without a Hangul font (a trainee's own laptop with `techday lab`)."""

from __future__ import annotations

import sys
import warnings

import pytest

from techday import lab as labmod
from techday.i18n import _HANGUL

GLYPH = "Glyph {n} (\\N{{HANGUL SYLLABLE DO}}) missing from font(s) DejaVu Sans."


def shown(capsys, monkeypatch, lang: str) -> str:
    """What stderr shows for three missing glyphs and one other warning, after the lab's setup step."""
    monkeypatch.setenv("TECHDAY_LANG", lang)
    # Python's own way of showing a warning, as in a kernel (pytest records them instead); restored after
    monkeypatch.setattr(warnings, "showwarning", lambda message, category, filename, lineno, file=None, line=None:
                        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line)))
    labmod.reword_missing_glyphs()
    labmod.reword_missing_glyphs()  # setup run twice (a trainee reruns the first cell): still one line
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for n in (46020, 46021, 46020):
            warnings.warn(GLYPH.format(n=n), UserWarning)
        warnings.warn("something else happened", UserWarning)
    return capsys.readouterr().err


def test_a_korean_lab_says_once_in_korean_that_the_machine_has_no_hangul_font(capsys, monkeypatch):
    err = shown(capsys, monkeypatch, "ko")
    assert "missing from font" not in err, err
    korean = [line for line in err.splitlines() if _HANGUL.search(line)]
    assert len(korean) == 1 and "fonts-nanum" in korean[0], err
    assert "something else happened" in err  # any other warning as the library wrote it


def test_an_english_lab_keeps_matplotlibs_own_warning(capsys, monkeypatch):
    err = shown(capsys, monkeypatch, "en")
    assert err.count("missing from font") == 3 and not _HANGUL.search(err.replace("\\N{HANGUL", "")), err


def test_the_labs_setup_rewords_them(monkeypatch):
    """setup() is where a lab starts: it installs the rewording."""
    class Stop(Exception):
        pass

    def stop(tier):
        raise Stop  # the tier is not what is tested: nothing after the rewording runs

    called = []
    monkeypatch.setattr(labmod, "reword_missing_glyphs", lambda: called.append(True))
    monkeypatch.setattr(labmod, "detect", stop)
    with pytest.raises(Stop):
        labmod.setup(tier="cpu", scale="ci", quiet=True)
    assert called
