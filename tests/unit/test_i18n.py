"""The course in two languages: every translated lab complete and current, code identical in both
builds, messages looked up at run time without touching module state, one rendering per glossary
term (labs/README.md, "Languages")."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from techday import i18n
from techday.course.build import build_sources
from techday.course.labsrc import read_lab
from techday.course.syllabus import load_course
from techday.i18n import (
    catalogue_path,
    en_hash,
    examine,
    korean_share,
    load_catalogue,
    messages_in,
    released_messages,
)
from tests.conftest import ROOT, techday

COURSE = load_course(ROOT)
TRANSLATED = [(lang, lab) for lang, labs in COURSE.translated.items() for lab in labs]
GLOSSARY = tomllib.loads((ROOT / "course" / "glossary.toml").read_text(encoding="utf-8"))["terms"]


def test_the_syllabus_lists_translated_labs():
    assert COURSE.default_language in COURSE.languages
    assert "ko" in COURSE.translated and COURSE.translated["ko"], "no lab is listed as translated to Korean"


@pytest.mark.parametrize("lab", list(COURSE.labs))
def test_every_markdown_cell_has_a_key_and_every_message_a_literal_key_of_its_lab(lab):
    source = COURSE.lab_source(lab)
    nb, refs = read_lab(source, lab)
    unkeyed = [r.describe() for c, r in zip(nb.cells, refs) if c.cell_type == "markdown" and not r.key]
    assert not unkeyed, f"{lab}: markdown cells without key=\"...\": {unkeyed}"
    found = messages_in(source.read_text(encoding="utf-8"))
    bad = [f"line {m.line}: {m.key}" for m in found if not m.key.startswith(f"{i18n.lab_number(lab)}.")]
    bad += [f"line {m.line}: {m.key} does not pass {sorted(m.unfilled())}" for m in found if m.unfilled()]
    assert not bad, f"{lab}: msg() keys must be string literals starting with '{i18n.lab_number(lab)}.': {bad}"


@pytest.mark.parametrize("lang,lab", TRANSLATED)
def test_a_translated_lab_is_complete_and_current(lang, lab):
    """Every markdown cell and every msg() of the lab has its twin, translated from today's English."""
    report, _ = examine(COURSE.lab_source(lab), lab, lang)
    assert report.exists, f"{lab} is listed as translated to {lang} but has no {report.path.name}"
    assert report.cells_total > 0 and report.messages_total > 0
    assert not report.problems, "\n".join(report.problems)
    assert not report.stale, "\n".join(report.stale)
    assert report.cells_done == report.cells_total and report.messages_done == report.messages_total


def test_labs_not_yet_translated_are_reported_and_none_is_complete_but_unlisted(record_property, capsys):
    """Labs outside the syllabus' list are not enforced; this prints what each lacks, and fails when
    a lab's translation is complete but not listed (list it, and the checks above hold it)."""
    lines, complete_unlisted = [], []
    for lang in COURSE.languages:
        if lang == i18n.SOURCE_LANGUAGE:
            continue
        listed = set(COURSE.translated.get(lang, []))
        for lab in COURSE.labs:
            if lab in listed:
                continue
            report, _ = examine(COURSE.lab_source(lab), lab, lang)
            lines.append(f"{lang} {lab}: cells {report.cells_done}/{report.cells_total}, "
                         f"messages {report.messages_done}/{report.messages_total}, stale {len(report.stale)}")
            if report.complete:
                complete_unlisted.append(f"{lang} {lab}")
    with capsys.disabled():
        print("\nnot yet translated (not enforced):\n  " + "\n  ".join(lines or ["none"]))
    record_property("untranslated", "; ".join(lines))
    assert not complete_unlisted, f"complete translations not listed in course/syllabus.toml: {complete_unlisted}"


# --- the checks catch what they must: a small lab and its twin, changed one way at a time ---------

LAB_TEXT = '''# %% [markdown] key="intro"
# # A lab
# Some English.

# %% tags=["parameters"]
tier = None
scale = None

# %% nbgrader="tests" id="t" points=1
"""Checks."""
from techday.i18n import msg
assert True, msg("99.visible", "value {v} is wrong", v=1)
### BEGIN HIDDEN TESTS
assert True, msg("99.secret", "hidden value {v} is wrong", v=2)
### END HIDDEN TESTS

# %% [markdown] key="outro"
# The end.
'''


def write_lab(tmp_path, text=LAB_TEXT, twin=None):
    source = tmp_path / "99-demo" / "99-demo.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(text, encoding="utf-8")
    nb, refs = read_lab(source, "99-demo")
    english = {r.key: c.source for c, r in zip(nb.cells, refs) if r.key}
    if twin is None:
        twin = {"cells": {k: ("한국어 " + k, en_hash(v)) for k, v in english.items()},
                "messages": {"visible": ("값 {v}이 틀렸습니다", en_hash("value {v} is wrong")),
                             "secret": ("숨은 값 {v}이 틀렸습니다", en_hash("hidden value {v} is wrong"))}}
    out = []
    for section, entries in twin.items():
        for key, (text, sha) in entries.items():
            out.append(f'[{section}.{key}]\nen_sha = "{sha}"\ntext = {json.dumps(text, ensure_ascii=False)}\n')
    catalogue_path(source, "ko").write_text("\n".join(out), encoding="utf-8")
    return source


def test_a_complete_twin_passes(tmp_path):
    report, catalogue = examine(write_lab(tmp_path), "99-demo", "ko")
    assert report.complete and (report.cells_total, report.messages_total) == (2, 2)


def test_a_missing_cell_twin_and_a_stray_entry_are_named(tmp_path):
    source = write_lab(tmp_path)
    path = catalogue_path(source, "ko")
    path.write_text(path.read_text(encoding="utf-8").replace("[cells.outro]", "[cells.gone]"), encoding="utf-8")
    report, _ = examine(source, "99-demo", "ko")
    assert any("'outro'" in p and "no ko twin" in p for p in report.problems), report.problems
    assert any("[cells.gone] names no markdown cell" in p for p in report.problems), report.problems


def test_a_changed_english_cell_or_message_makes_its_twin_stale(tmp_path):
    source = write_lab(tmp_path)
    source.write_text(LAB_TEXT.replace("Some English.", "Some better English.")
                      .replace("value {v} is wrong", "value {v} is not right"), encoding="utf-8")
    report, _ = examine(source, "99-demo", "ko")
    assert any("'intro'" in s and "changed in English" in s for s in report.stale), report.stale
    assert any("'99.visible'" in s and "changed in English" in s for s in report.stale), report.stale
    i18n.stamp(catalogue_path(source, "ko"), source, "99-demo")
    assert examine(source, "99-demo", "ko")[0].complete


def test_a_message_in_one_language_only_or_with_other_placeholders_is_named(tmp_path):
    source = write_lab(tmp_path, twin={
        "cells": {},
        "messages": {"visible": ("값 {w}이 틀렸습니다", en_hash("value {v} is wrong"))}})
    report, _ = examine(source, "99-demo", "ko")
    assert any("'99.secret'" in p and "no ko twin" in p for p in report.problems), report.problems
    assert any("'99.visible'" in p and "placeholders" in p for p in report.problems), report.problems
    assert any("'intro'" in p for p in report.problems)


def test_the_released_catalogue_leaves_hidden_test_messages_out(tmp_path):
    source = write_lab(tmp_path)
    catalogue = load_catalogue(catalogue_path(source, "ko"))
    released = released_messages(source, "99-demo", catalogue, "ko", hidden=False)
    assert released["messages"] == {"99.visible": "값 {v}이 틀렸습니다"}
    assert "99.secret" in released_messages(source, "99-demo", catalogue, "ko", hidden=True)["messages"]


# --- run time ---------------------------------------------------------------------------------------


def test_msg_speaks_the_language_of_the_run_and_changes_no_module_state(monkeypatch, tmp_path):
    monkeypatch.setenv("TECHDAY_ROOT", str(ROOT))
    monkeypatch.chdir(tmp_path)
    before = dict(vars(i18n))
    monkeypatch.setenv("TECHDAY_LANG", "en")
    assert i18n.msg("00.i_i_above_roof", "I = {i}: {a} is above a roof", i=2, a=9) == "I = 2: 9 is above a roof"
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    assert i18n.msg("00.i_i_above_roof", "I = {i}: {a} is above a roof", i=2, a=9) == "I = 2: 9가 지붕보다 높습니다"
    assert i18n.msg("00.no_such_message", "fallback {x}", x=1) == "fallback 1"
    # The catalogue released beside a notebook wins (the trainee's image has no lab sources).
    (tmp_path / "techday-messages.ko.json").write_text(json.dumps({"messages": {"00.no_such_message": "대체 {x}"}}),
                                                       encoding="utf-8")
    assert i18n.msg("00.no_such_message", "fallback {x}", x=1) == "대체 1"
    # A planted text that reaches through a field into the test's objects, or names a value the English
    # does not, is not used: the English is shown.
    for planted in ("{x.__class__.__mro__}", "{x[0]}", "{secret}", "{x:{x}}"):
        (tmp_path / "techday-messages.ko.json").write_text(
            json.dumps({"messages": {"00.no_such_message": planted}}), encoding="utf-8")
        assert i18n.msg("00.no_such_message", "fallback {x}", x=[1]) == "fallback [1]", planted
    after = dict(vars(i18n))
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before), \
        "msg() must not bind or rebind anything in techday.i18n (the grading referee snapshots it)"


# --- one build per language --------------------------------------------------------------------------


def test_both_languages_of_a_lab_build_with_identical_code_and_korean_markdown(tmp_path):
    lab = "01-numba-first-steps"
    built = {}
    for lang in ("en", "ko"):
        result = build_sources(COURSE, [lab], tmp_path / lang, lang)
        assert result.built == [lab], result.errors
        built[lang] = json.loads((tmp_path / lang / "source" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    en, ko = built["en"]["cells"], built["ko"]["cells"]
    assert [c["cell_type"] for c in en] == [c["cell_type"] for c in ko]
    code = [(a, b) for a, b in zip(en, ko) if a["cell_type"] == "code"]
    assert code and all(a == b for a, b in code), "code cells (source, ids, nbgrader metadata) differ between languages"
    markdown = [(a, b) for a, b in zip(en, ko) if a["cell_type"] == "markdown"]
    assert all(a["id"] == b["id"] and a["source"] != b["source"] for a, b in markdown)
    for _, cell in markdown:
        assert re.search(r"[\uac00-\ud7a3]", cell["source"]), f"Korean cell {cell['id']} has no Hangul"
    ko_words, words = korean_share([b["source"] for _, b in markdown])
    en_ko_words, _ = korean_share([a["source"] for a, _ in markdown])
    assert ko_words / words > 0.6 and ko_words > 5 * en_ko_words, (ko_words, words, en_ko_words)
    assert built["ko"]["metadata"]["techday"]["lang"] == "ko" and "lang" not in built["en"]["metadata"]["techday"]
    released = json.loads((tmp_path / "ko" / "source" / lab / "techday-messages.ko.json").read_text(encoding="utf-8"))
    hidden_only = {m.key for m in messages_in(COURSE.lab_source(lab).read_text(encoding="utf-8")) if m.hidden} - {
        m.key for m in messages_in(COURSE.lab_source(lab).read_text(encoding="utf-8")) if not m.hidden}
    assert hidden_only and not hidden_only & set(released["messages"]), "hidden tests' messages reach the release"
    assert not (tmp_path / "en" / "source" / lab / "techday-messages.en.json").exists()


def korean_course(fixture_course, twin: str | None):
    """The scenario course offered in Korean, with ``twin`` as ok-lab's Korean file."""
    syllabus = fixture_course / "course" / "syllabus.toml"
    syllabus.write_text(syllabus.read_text(encoding="utf-8").replace(
        'title = "Fixture course"', 'title = "Fixture course"\nlanguages = ["en", "ko"]'), encoding="utf-8")
    source = fixture_course / "labs" / "ok-lab" / "ok-lab.py"
    source.write_text(source.read_text(encoding="utf-8").replace("# %% [markdown]\n", '# %% [markdown] key="intro"\n'),
                      encoding="utf-8")
    if twin is not None:
        (source.parent / "ok-lab.ko.toml").write_text(twin, encoding="utf-8")
    return source


def test_build_lang_releases_the_same_graded_cells_through_nbgrader(fixture_course):
    source = korean_course(fixture_course, None)
    nb, _ = read_lab(source, "ok-lab")
    (source.parent / "ok-lab.ko.toml").write_text(
        f'[cells.intro]\nen_sha = "{en_hash(nb.cells[0].source)}"\ntext = "# 시나리오 실습"\n', encoding="utf-8")
    release = {}
    for lang in ("en", "ko"):
        out = techday("--root", str(fixture_course), "build", "ok-lab", "--lang", lang)
        assert out.returncode == 0, out.stdout + out.stderr
        path = fixture_course / "build" / "course" / "release" / "ok-lab" / "ok-lab.ipynb"
        release[lang] = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in release[lang]:
            cell["source"] = "".join(cell["source"])
    assert release["ko"][0]["source"] == "# 시나리오 실습" and release["en"][0]["source"] == "# Scenario lab"
    assert release["ko"][1:] == release["en"][1:], "graded cells (checksums, ids, points) differ between languages"
    assert any("checksum" in c["metadata"].get("nbgrader", {}) for c in release["ko"])


def test_build_names_the_lab_the_cell_and_the_language_of_a_missing_or_stray_twin(fixture_course):
    korean_course(fixture_course, '[cells.gone]\nen_sha = "000000000000"\ntext = "사라진 셀"\n')
    out = techday("--root", str(fixture_course), "build", "ok-lab", "--lang", "ko", "--no-release")
    assert out.returncode == 1
    assert "ok-lab [ko]" in out.stderr and "'intro'" in out.stderr and "no ko twin" in out.stderr, out.stderr
    assert "[cells.gone] names no markdown cell" in out.stderr, out.stderr
    out = techday("--root", str(fixture_course), "build", "raises-lab", "--lang", "ko", "--no-release")
    assert out.returncode == 1 and "raises-lab has no ko translation" in out.stderr, out.stderr


def test_build_refuses_an_unknown_language(fixture_course):
    out = techday("--root", str(fixture_course), "build", "ok-lab", "--lang", "xx", "--no-release")
    assert out.returncode == 2 and "unknown language 'xx'" in out.stderr, out.stderr


def test_i18n_report_computes_the_korean_share_per_lab():
    out = techday("i18n", "report", "00-gpu-tour", "01-numba-first-steps", env={"COLUMNS": "200"})
    assert out.returncode == 0, out.stdout + out.stderr
    for lab in ("00-gpu-tour", "01-numba-first-steps"):
        nb, refs = read_lab(COURSE.lab_source(lab), lab)
        cells = load_catalogue(catalogue_path(COURSE.lab_source(lab), "ko"))["cells"]
        ko, n = korean_share([cells[r.key]["text"] for c, r in zip(nb.cells, refs) if c.cell_type == "markdown"])
        src_ko, src_n = korean_share([c.source for c in nb.cells if c.cell_type == "markdown"])
        row = next(line for line in out.stdout.splitlines() if lab in line)
        assert f"{ko / n:.1%}" in row and f"{src_ko / src_n:.1%}" in row and ko / n > 5 * src_ko / src_n, row


# --- glossary ----------------------------------------------------------------------------------------


def korean_texts(lang: str, lab: str) -> tuple[list[str], list[str]]:
    """(markdown twins in cell order, message twins) of a translated lab."""
    source = COURSE.lab_source(lab)
    nb, refs = read_lab(source, lab)
    catalogue = load_catalogue(catalogue_path(source, lang))
    cells = [catalogue["cells"][r.key]["text"] for c, r in zip(nb.cells, refs) if c.cell_type == "markdown"]
    return cells, [e["text"] for e in catalogue.get("messages", {}).values()]


def test_the_glossary_is_well_formed():
    for name, term in GLOSSARY.items():
        assert {"en", "ko", "wrong", "source"} <= set(term), name
        assert term["source"] in ("d2l", "course"), name
        assert term["ko"] not in term["wrong"], name


@pytest.mark.parametrize("lang,lab", [t for t in TRANSLATED if t[0] == "ko"])
def test_a_translated_lab_uses_the_glossary_renderings(lang, lab):
    cells, messages = korean_texts(lang, lab)
    # Prose only: headings, code blocks and inline code are not where a term is introduced.
    prose = re.sub(r"```.*?```", " ", "\n".join(cells), flags=re.S)
    prose = re.sub(r"(?m)^#.*$", " ", re.sub(r"`[^`]*`", " ", prose))
    text = re.sub(r"\s+", " ", prose)
    problems = []
    for name, term in GLOSSARY.items():
        for wrong in term["wrong"]:
            if wrong in text or any(wrong in m for m in messages):
                problems.append(f"{name}: '{wrong}' where the glossary says '{term['ko']}'")
        at = text.find(term["ko"])
        if at < 0 or not term.get("gloss", True):
            continue
        after = re.match(r"[\s\uac00-\ud7a3]{0,12}?\(([^)]*)\)", text[at + len(term["ko"]):])
        if not after or term["en"].lower() not in after.group(1).lower():
            problems.append(f"{name}: first use '...{text[max(0, at - 20):at + len(term['ko']) + 20]}...' "
                            f"needs the English in parentheses: {term['ko']}({term['en']})")
    assert not problems, f"{lab} [{lang}]:\n" + "\n".join(problems)


def glossary_slips(texts: list[str]) -> list[str]:
    """The glossary's wrong renderings found in ``texts``."""
    return [f"{name}: '{wrong}' where the glossary says '{term['ko']}'" for name, term in GLOSSARY.items()
            for wrong in term["wrong"] if any(wrong in t for t in texts)]


def test_the_packages_korean_messages_use_the_glossary_renderings():
    """The package's own catalogue (feedback pages, certificates, the labs' helpers) was outside the glossary
    check: a "인증서" for certificate or a "스코어" for score on a trainee's page passed."""
    entries = load_catalogue(ROOT / "techday" / "data" / "messages.ko.toml")["messages"]
    assert not glossary_slips([e["text"] for e in entries.values()])
    assert glossary_slips(["수료 인증서", "스코어: 3 / 5"]) == [  # the check finds a slip where there is one
        "score: '스코어' where the glossary says '점수'", "certificate: '인증서' where the glossary says '수료증'"]


def test_a_released_catalogue_from_a_submission_is_read_as_a_strangers_data(tmp_path):
    good = tmp_path / "techday-messages.ko.json"
    good.write_text(json.dumps({"lab": "01-x", "lang": "ko", "messages": {"01.a": "가 {x}", "01.b": 3, "bad key": "x"}}),
                    encoding="utf-8")
    assert i18n.read_released(good)["messages"] == {"01.a": "가 {x}"}
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"messages": {"01.a": "grader's secret"}}), encoding="utf-8")
    link = tmp_path / "techday-messages.en.json"
    link.symlink_to(secret)
    assert i18n.read_released(link) is None, "a link planted in a submission must not be followed"
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"messages": {"01.a": "x" * 2048}}), encoding="utf-8")
    assert i18n.read_released(big, limit=1024) is None
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert i18n.read_released(tmp_path / "bad.json") is None


def test_a_msg_call_that_does_not_fill_its_placeholders_is_named(tmp_path):
    source = write_lab(tmp_path)
    source.write_text(LAB_TEXT.replace('msg("99.visible", "value {v} is wrong", v=1)',
                                       'msg("99.visible", "value {v} is wrong")'), encoding="utf-8")
    report, _ = examine(source, "99-demo", "ko")
    assert any("'99.visible' does not pass ['v']" in p for p in report.problems), report.problems


def test_an_english_only_test_message_in_a_lab_is_named(tmp_path):
    source = write_lab(tmp_path)
    source.write_text(LAB_TEXT.replace('assert True, msg("99.visible", "value {v} is wrong", v=1)',
                                       'assert True, msg("99.visible", "value {v} is wrong", v=1)\n'
                                       'assert True, "this stays in English"\n'
                                       'assert_close(1, 1, "bump_cpu")'), encoding="utf-8")
    report, _ = examine(source, "99-demo", "ko")
    assert report.raw == 1 and any("English only" in p and "lines 13" in p for p in report.problems), report.problems


@pytest.mark.parametrize("lang", sorted(COURSE.translated))
def test_the_packages_own_messages_have_their_twins(lang, monkeypatch, capsys):
    """techday.lab's GPU-only notice in every language labs are translated to, through
    techday/data/messages.<lang>.toml; the timing label, stored in labs' records, stays one text."""
    assert i18n.package_messages(), "no msg('techday.<name>', ...) call found in the package"
    assert not i18n.examine_package(lang), "\n".join(i18n.examine_package(lang))
    monkeypatch.setenv("TECHDAY_LANG", lang)
    from techday.lab import Lab
    from techday.tier import detect

    lab = Lab(info=detect("cpu"), scale="ci")
    assert lab.gpu_only("a GPU-only step") is False
    assert "[GPU only]" not in capsys.readouterr().out or lang == "en"
    assert lab.timing_label() == "CPU/simulator (not a GPU figure)"


def test_a_broken_translation_file_is_named_without_a_traceback(fixture_course):
    """Catches a Korean file with an entry that lacks its hash ending `i18n report` and `build --lang ko`
    in a Python traceback: both exit 1 and name the file and the entry."""
    syllabus = fixture_course / "course" / "syllabus.toml"
    text = syllabus.read_text(encoding="utf-8")
    if "languages" not in text:
        syllabus.write_text(text.replace('title = "Fixture course"\n', 'title = "Fixture course"\nlanguages = ["en", "ko"]\n', 1),
                            encoding="utf-8")
    twin = fixture_course / "labs" / "ok-lab" / "ok-lab.ko.toml"
    twin.write_text('[messages.oops]\ntext = "번역"\n', encoding="utf-8")
    for command in (["i18n", "report", "ok-lab"], ["build", "ok-lab", "--lang", "ko", "--no-release"]):
        out = techday("--root", str(fixture_course), *command)
        assert out.returncode == 1, (command, out.stdout[-1000:], out.stderr[-2000:])
        assert "[messages.oops] needs text" in out.stderr and "Traceback" not in out.stderr, (command, out.stderr)


def test_pad_counts_the_columns_a_korean_row_takes():
    """Wrong answer caught: a Korean table row padded by characters (``str.ljust``, ``{name:32s}``): each syllable takes
    two columns, so the row's numbers came out one column to the right for every syllable (lab 00's roofline table)."""
    from techday.i18n import pad, width

    assert width("커널") == 4 and width("kernel") == 6 and width("e\u0301") == 1
    assert pad("합계 리덕션", 14) == "합계 리덕션   " and width(pad("합계 리덕션", 14)) == 14
    assert pad("sum", 6, right=True) == "   sum"
    assert pad("a long name", 4) == "a long name"
    rows = [pad(name, 20) + "|" for name in ("벡터 덧셈", "vector add", "SAXPY          y")]
    assert len({width(r) for r in rows}) == 1, rows
