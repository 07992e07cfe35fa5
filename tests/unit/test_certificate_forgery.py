"""Korean and English HTML certificates (techday/grading/certificates.py, ``verify --file``) altered to show
another score while their data still verifies: the score line in the other language, look-alike digits
(full-width, Hangul and Arabic-Indic numerals), digits written as character references, a bidirectional
override, a second score line, the page's language switched. A v2 page (its page code) refuses them all; a
v1 page (fields only) refuses every change inside its ``data-field`` elements.

Each case names the forgery it stands for."""

from __future__ import annotations

import pytest

from techday.grading import certificates as cert
from tests.unit.test_grading_ko import COURSE, DATA, KEY, V1, _page

SCORES = {"ko": {DATA["score"]: "30점 만점에 27점 (90%)", V1["score"]: "30점 만점에 27.5점 (92%)"},
          "en": {DATA["score"]: "27 of 30 points (90%)", V1["score"]: "27.5 of 30 points (92%)"}}


def forgeries(shown: str, lang: str) -> dict[str, str]:
    """Ways to make the score line say 30 of 30 (or look as if it did) while reading as text."""
    full = str.maketrans("0123456789", "０１２３４５６７８９")
    arabic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    top = shown.replace("27.5", "30").replace("27", "30").replace("92%", "100%").replace("90%", "100%")
    other = SCORES["en" if lang == "ko" else "ko"]
    return {
        "30 of 30 in the page's language": top,
        "30 of 30 in the other language": next(iter(other.values())).replace("27.5", "30").replace("27", "30"),
        "full-width digits": shown.translate(full),
        "Arabic-Indic digits": shown.translate(arabic),
        "Hangul numerals": shown.replace("27", "이십칠"),
        "digits as character references": top.replace("3", "&#51;").replace("0", "&#x30;"),
        "a right-to-left override": "\u202e" + shown[::-1],
        "a zero-width space in the number": shown.replace("2", "2\u200b", 1),
    }


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("data,key", [(DATA, KEY), (V1, None)], ids=["v2", "v1"])
def test_a_score_line_changed_in_any_script_or_language_does_not_verify(tmp_path, monkeypatch, lang, data, key):
    page = _page(tmp_path / "c.html", lang, monkeypatch, data, key)
    text = page.read_text(encoding="utf-8")
    shown = SCORES[lang][data["score"]]
    assert shown in text and cert.verify(COURSE, KEY, None, file=page).ok
    for what, forged in forgeries(shown, lang).items():
        page.write_text(text.replace(shown, forged, 1), encoding="utf-8")
        verdict = cert.verify(COURSE, KEY, None, file=page)
        assert not verdict.ok and "NOT GENUINE" in verdict.lines[0], (what, verdict.lines)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_second_score_line_or_another_language_is_refused_on_a_v2_page(tmp_path, monkeypatch, lang):
    """Forgeries outside the ``data-field`` elements: a second score line (with or without ``data-field``),
    the real one hidden, the page's ``lang`` switched so the other language's line is read. A v2 page's code
    covers every byte but its data block."""
    page = _page(tmp_path / "c.html", lang, monkeypatch, DATA, KEY)
    text = page.read_text(encoding="utf-8")
    shown = SCORES[lang][DATA["score"]]
    other = "en" if lang == "ko" else "ko"
    edits = {
        "a second line with data-field": text.replace("</body>", '<p><span data-field="score">30 of 30</span></p></body>'),
        "a second line without": text.replace("</body>", "<p>30 of 30 points (100%)</p></body>"),
        "the real line hidden": text.replace('<span data-field="score">', '<span data-field="score" hidden>'),
        "the page's language switched": text.replace(f'<html lang="{lang}"', f'<html lang="{other}"'),
        "the line in the other language": text.replace(shown, SCORES[other][DATA["score"]]),
    }
    for what, forged in edits.items():
        assert forged != text, what
        page.write_text(forged, encoding="utf-8")
        verdict = cert.verify(COURSE, KEY, None, file=page)
        assert not verdict.ok and "NOT GENUINE" in verdict.lines[0], (what, verdict.lines)
