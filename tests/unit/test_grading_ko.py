"""Certificates and feedback pages in Korean when the course's language is Korean
(``techday grade results --lang ko``, $TECHDAY_LANG, or the syllabus' default_language): the Korean
labels from techday/data/messages.ko.toml (test_i18n's package test fails on a missing twin), the same
facts as the English, and a PDF that draws Hangul with a Hangul font rather than tofu."""

from types import SimpleNamespace

import nbformat
import pytest

from techday import i18n
from techday.grading import certificates as cert
from techday.grading.results import HideHiddenTests, certificate_html, certificate_pdf, hangul_font

TRACK = SimpleNamespace(title="CUDA foundations", title_ko="CUDA 기초", labs=["01-a", "02-b", "03-c"])
COURSE = SimpleNamespace(id="techday", title="Tech Day GPU Lab", tracks={"cuda": TRACK})
DATA = cert.payload("techday", "2025-06-14-seoul", "cuda", "trainee-002", "김민수", 27, 30, "2025-06-14",
                    title=TRACK.title)
CODE = "ABCD-EFGH-JKLM"


def html_in(lang, monkeypatch):
    monkeypatch.setenv("TECHDAY_LANG", lang)
    return certificate_html(COURSE, TRACK, DATA, CODE)


def test_every_certificate_and_feedback_label_has_a_korean_twin():
    keys = {m.key for m in i18n.package_messages()}
    assert {"techday.cert_title", "techday.cert_completed", "techday.feedback_passed",
            "techday.feedback_hidden_failed"} <= keys
    assert not i18n.examine_package("ko"), i18n.examine_package("ko")


def test_a_korean_certificate_says_the_same_facts_in_korean(monkeypatch):
    en, ko = html_in("en", monkeypatch), html_in("ko", monkeypatch)
    assert "<h1>Certificate of completion</h1>" in en and '<html lang="en">' in en
    assert "<h1>수료증</h1>" in ko and "다음 과정을 수료했습니다" in ko and "확인 코드" in ko and '<html lang="ko">' in ko
    for fact in ("김민수", "trainee-002", "CUDA foundations", "CUDA 기초", CODE, "2025-06-14-seoul"):
        assert fact in en and fact in ko, fact
    # the number of labs inside the sentence ("3 개 실습 채점" put a space in a Korean count)
    assert "Tech Day GPU Lab: 3 graded labs, " in en and "Tech Day GPU Lab: 채점한 실습 3개, " in ko
    # the score line in the page's language (it was English on a Korean certificate)
    assert '<span data-field="score">27 of 30 points (90%)</span>' in en and "점" not in en.split("<body>")[1]
    assert '<span data-field="score">30점 만점에 27점 (90%)</span>' in ko and "points" not in ko
    # what verify --file compares is the same in both languages
    assert cert.html_block(DATA, CODE) in en and cert.html_block(DATA, CODE) in ko


def test_a_korean_pdf_certificate_draws_hangul_not_tofu(monkeypatch, tmp_path):
    font = hangul_font()
    if font is None:
        pytest.skip("no Hangul font on this machine (docker/matplotlibrc, tests/unit/test_hangul_font.py)")
    import matplotlib.pyplot  # noqa: F401  (font cache)

    monkeypatch.setenv("TECHDAY_LANG", "ko")
    path = tmp_path / "c.pdf"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns on a glyph it cannot draw
        certificate_pdf(path, COURSE, TRACK, DATA, CODE, font)
    assert path.read_bytes().startswith(b"%PDF")


def test_without_a_hangul_font_a_korean_pdf_keeps_english_labels_not_tofu(monkeypatch, tmp_path):
    import warnings

    monkeypatch.setenv("TECHDAY_LANG", "ko")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Hangul label drawn with DejaVu Sans would warn "Glyph ... missing"
        certificate_pdf(tmp_path / "c.pdf", COURSE, TRACK, DATA, CODE, None)
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


def _feedback(lang, monkeypatch, outputs):
    monkeypatch.setenv("TECHDAY_LANG", lang)
    test = nbformat.v4.new_code_cell("assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(9) == 18\n"
                                     "### END HIDDEN TESTS", outputs=outputs, execution_count=2)
    nb = nbformat.v4.new_notebook(cells=[test])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    return nb.cells[0].outputs[0]["text"], nb.cells[0].source


def test_a_korean_feedback_page_says_passed_and_hides_hidden_tests_in_korean(monkeypatch):
    assert _feedback("en", monkeypatch, []) == ("passed\n", "assert double(2) == 4\n# (hidden tests: not shown)\n")
    verdict, source = _feedback("ko", monkeypatch, [])
    assert verdict == "통과\n" and "# (숨은 테스트: 보여 주지 않습니다)" in source and "double(9)" not in source
    err = nbformat.v4.new_output("error", ename="KernelDied", evalue="the kernel died", traceback=["KernelDied"])
    assert _feedback("en", monkeypatch, [err])[0] == "failed: KernelDied: the kernel died\n"
    assert _feedback("ko", monkeypatch, [err])[0] == "실패: KernelDied: the kernel died\n"


def _page(path, lang, monkeypatch, data, key=None):
    monkeypatch.setenv("TECHDAY_LANG", lang)
    path.write_text(certificate_html(COURSE, TRACK, data, cert.make_code(KEY, data), key), encoding="utf-8")
    return path


KEY = bytes(range(32))
V1 = cert.payload("techday", "2025-06-14-seoul", "cuda", "trainee-002", "김민수", 27.5, 30, "2025-06-14")


@pytest.mark.parametrize("data,key", [(DATA, KEY), (V1, None)], ids=["v2 with its page code", "v1, fields only"])
def test_a_korean_certificate_verifies_and_a_changed_word_does_not(tmp_path, monkeypatch, data, key):
    """`verify --file` compares what a page shows with what its code certifies, in the page's language: a
    Korean page verifies, and one word of its score line changed fails (a v1 page has no page code: the
    field comparison is its only check)."""
    page = _page(tmp_path / "c.html", "ko", monkeypatch, data, key)
    text = page.read_text(encoding="utf-8")
    assert "만점에" in text
    verdict = cert.verify(COURSE, KEY, None, file=page)
    assert verdict.ok, verdict.lines
    for old, new in (("만점에", "만점 중"), ("점 (", "개 (")):
        page.write_text(text.replace(old, new, 1), encoding="utf-8")
        verdict = cert.verify(COURSE, KEY, None, file=page)
        assert not verdict.ok and "NOT GENUINE" in verdict.lines[0], (old, verdict.lines)
    # English words on a page that says it is Korean are not the Korean line either way round
    page.write_text(text.replace("만점에", "of"), encoding="utf-8")
    assert not cert.verify(COURSE, KEY, None, file=page).ok


def test_a_korean_certificate_issued_with_the_english_score_line_still_verifies(tmp_path, monkeypatch):
    """Korean certificates issued before the score line was translated show it in English: still genuine."""
    page = _page(tmp_path / "c.html", "ko", monkeypatch, V1)
    text = page.read_text(encoding="utf-8")
    before = text.replace("30점 만점에 27.5점 (92%)", "27.5 of 30 points (92%)")
    assert before != text
    page.write_text(before, encoding="utf-8")
    assert cert.verify(COURSE, KEY, None, file=page).ok
    page.write_text(before.replace("of 30 points", "of 30 marks"), encoding="utf-8")
    assert not cert.verify(COURSE, KEY, None, file=page).ok
