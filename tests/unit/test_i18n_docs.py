"""The course's documents in Korean: course/TRAINEES.md, INSTRUCTORS.md, RUNBOOK.md and each lab's
instructor notes (course/notes/<lab>.md) have a twin <NAME>.ko.md, section for section, with the hash
of the English section each Korean section was made from (techday.i18n.examine_doc / stamp_doc; `techday i18n report` and `techday i18n stamp docs`).
A section in one language only, an English section changed since its twin was stamped, or a code block
that differs (the runbook's commands are executed by tests/grading/test_runbook.py) fails here."""

import re
import tomllib

import pytest

from techday import i18n
from tests.conftest import ROOT

GLOSSARY = tomllib.loads((ROOT / "course" / "glossary.toml").read_text(encoding="utf-8"))["terms"]


@pytest.mark.parametrize("doc", i18n.documents(ROOT))
def test_every_course_document_has_a_current_korean_twin(doc):
    problems = i18n.examine_doc(ROOT / doc, "ko")
    assert not problems, "\n".join(problems) + "\n(review, then: python -m techday i18n stamp docs)"


def test_the_korean_runbook_runs_the_same_commands():
    from tests.grading.test_runbook import blocks

    en = (ROOT / "course" / "RUNBOOK.md").read_text(encoding="utf-8")
    ko = (ROOT / "course" / "RUNBOOK.ko.md").read_text(encoding="utf-8")
    assert [code for _, code in blocks(ko)] == [code for _, code in blocks(en)]
    assert len(blocks(ko)) >= 8


@pytest.mark.parametrize("doc", i18n.documents(ROOT))
def test_the_english_and_korean_documents_name_each_other(doc):
    path = ROOT / doc
    twin = i18n.doc_twin_path(path, "ko")
    assert twin.name in path.read_text(encoding="utf-8")
    assert path.name in twin.read_text(encoding="utf-8")


@pytest.mark.parametrize("doc", i18n.documents(ROOT))
def test_a_korean_document_uses_the_glossary_renderings(doc):
    text = i18n.doc_twin_path(ROOT / doc, "ko").read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", " ", text, flags=re.S)
    prose = re.sub(r"(?m)^\s*#.*$", " ", re.sub(r"`[^`]*`", " ", prose))
    prose = re.sub(r"\s+", " ", re.sub(r"<!--.*?-->", " ", prose))
    problems = []
    for name, term in GLOSSARY.items():
        problems += [f"{name}: '{w}' where the glossary says '{term['ko']}'" for w in term["wrong"] if w in prose]
        at = prose.find(term["ko"])
        if at < 0 or not term.get("gloss", True):
            continue
        after = re.match(r"[\s\uac00-\ud7a3]{0,12}?\(([^)]*)\)", prose[at + len(term["ko"]):])
        if not after or term["en"].lower() not in after.group(1).lower():
            problems.append(f"{name}: first use '...{prose[max(0, at - 20):at + len(term['ko']) + 20]}...' "
                            f"needs the English in parentheses: {term['ko']}({term['en']})")
    assert not problems, f"{doc} [ko]:\n" + "\n".join(problems)


def test_the_readmes_korean_lines_use_the_glossary_renderings():
    # Wrong answer caught: the README's Korean paragraph ran the labs "CPU 계층으로" (CPU hierarchy) where
    # every guide and lab says CPU 티어.
    korean = " ".join(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
                      if re.search(r"[\uac00-\ud7a3]", line))
    assert korean, "the README has a Korean paragraph"
    problems = [f"{name}: '{w}' where the glossary says '{term['ko']}'" for name, term in GLOSSARY.items()
                for w in term["wrong"] if w in korean]
    assert not problems, "\n".join(problems)


def test_the_kits_korean_messages_use_the_glossary_renderings():
    # Wrong answer caught: the feedback a trainee reads said 숨겨진 테스트 where every guide and lab says
    # 숨은 테스트 (techday/data/messages.ko.toml, read by no document test).
    text = (ROOT / "techday" / "data" / "messages.ko.toml").read_text(encoding="utf-8")
    korean = " ".join(line for line in text.splitlines() if re.search(r"[\uac00-\ud7a3]", line))
    assert korean, "the kit's messages have a Korean edition"
    problems = [f"{name}: '{w}' where the glossary says '{term['ko']}'" for name, term in GLOSSARY.items()
                for w in term["wrong"] if w in korean]
    assert not problems, "\n".join(problems)


EN = """# Guide

Intro.

## Run

Type this:

   ```bash
   # not a heading
   techday run 01
   ```

## After

Done.
"""
KO = """<!-- en_sha: {0} -->
# 안내

소개.

<!-- en_sha: {1} -->
## 실행

다음을 입력합니다.

   ```bash
   # not a heading
   techday run 01
   ```

<!-- en_sha: {2} -->
## 이후

끝.
"""


def write(tmp_path, en=EN, ko=KO):
    path = tmp_path / "GUIDE.md"
    path.write_text(en, encoding="utf-8")
    hashes = [i18n.en_hash(s) for s in i18n.doc_sections(EN)]
    (tmp_path / "GUIDE.ko.md").write_text(ko.format(*hashes), encoding="utf-8")
    return path


def test_a_complete_document_twin_passes_and_a_heading_in_a_code_block_is_no_section(tmp_path):
    assert len(i18n.doc_sections(EN)) == 3
    assert i18n.examine_doc(write(tmp_path), "ko") == []


def test_a_changed_english_section_stales_that_section_only_until_stamped(tmp_path):
    path = write(tmp_path, en=EN.replace("Done.", "Done, then go home."))
    problems = i18n.examine_doc(path, "ko")
    assert len(problems) == 1 and "section 2" in problems[0] and "changed since" in problems[0], problems
    assert i18n.stamp_doc(path, "ko") == 1
    assert i18n.examine_doc(path, "ko") == []


def test_a_twin_saved_in_another_encoding_is_named_and_not_stamped(tmp_path):
    # Wrong answer caught: a Korean twin saved as CP949 made `techday i18n report` and `stamp docs` end
    # in a UnicodeDecodeError traceback naming no file.
    path = write(tmp_path)
    twin = tmp_path / "GUIDE.ko.md"
    twin.write_bytes(twin.read_text(encoding="utf-8").encode("cp949"))
    before = twin.read_bytes()
    with pytest.raises(i18n.TranslationError, match="GUIDE.ko.md: not UTF-8 text"):
        i18n.examine_doc(path, "ko")
    with pytest.raises(i18n.TranslationError, match="GUIDE.ko.md: not UTF-8 text"):
        i18n.stamp_doc(path, "ko")
    assert twin.read_bytes() == before


def test_a_section_in_one_language_only_or_a_missing_twin_is_named(tmp_path):
    path = write(tmp_path, en=EN + "\n## More\n\nExtra.\n")
    assert any("one language only" in p for p in i18n.examine_doc(path, "ko"))
    (tmp_path / "GUIDE.ko.md").unlink()
    assert i18n.examine_doc(path, "ko") == ["GUIDE.md: no ko twin (GUIDE.ko.md)"]


def test_a_command_changed_in_one_language_is_named(tmp_path):
    path = write(tmp_path, ko=KO.replace("techday run 01", "techday run 02"))
    assert any("section 1" in p and "code blocks differ" in p for p in i18n.examine_doc(path, "ko"))


def test_assert_close_speaks_korean_with_the_same_facts(monkeypatch):
    import numpy as np

    from techday.labtools import assert_close

    def failure(lang, *args):
        monkeypatch.setenv("TECHDAY_LANG", lang)
        with pytest.raises(AssertionError) as e:
            assert_close(*args)
        return str(e.value)

    a, b = np.zeros(4, np.float32), np.array([0, 0, 1, 1], np.float32)
    en, ko = failure("en", a, b, "out"), failure("ko", a, b, "out")
    assert "2 of 4 elements differ" in en and "first at index (2,)" in en
    assert "원소 4개 중 2개가 다릅니다" in ko and "(2,)" in ko and "rtol=1e-05" in ko and ko.startswith("out: ")
    assert "모양(shape)" in failure("ko", a, b[:3], "out") and "(3,)" in failure("ko", a, b[:3], "out")
