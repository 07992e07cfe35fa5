"""Instructor notes: one per lab (course/notes/<lab>.md, Korean twin <lab>.ko.md), in one shape, so
an instructor who has never taught the slot can run it from the page.

Checked here: every lab of the syllabus has notes and no notes name a lab that does not exist; the
sections, in order; the timing table adds up to the lab's minutes in the syllabus; exactly three
common mistakes, each with what the trainee sees and the hint to give; every exercise the notes name
by grade id exists in the lab; every file they link or cite exists; and a GPU figure (GB/s, TFLOP/s,
ms, us) appears only beside a results file under benchmarks/results/ that was measured on a GPU.
The Korean twin is checked section by section by tests/unit/test_i18n_docs.py."""

import json
import re
import tomllib

import pytest

from tests.conftest import ROOT

SYLLABUS = tomllib.loads((ROOT / "course" / "syllabus.toml").read_text(encoding="utf-8"))
LABS = sorted(SYLLABUS["labs"])
NOTES = ROOT / "course" / "notes"
SECTIONS = ["Talk track", "Timings", "Common mistakes", "Where the room gets stuck", "What the GPU output looks like"]
FIGURE = re.compile(r"\b\d[\d,.]*\s?(GB/s|TB/s|TFLOP/s|GFLOP/s|ms|µs|us)\b")


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"(?m)^## ", text)
    return {p.split("\n", 1)[0].strip(): p.split("\n", 1)[1] if "\n" in p else "" for p in parts[1:]}


def _grade_ids(lab: str) -> set[str]:
    source = (ROOT / "labs" / lab / f"{lab}.py").read_text(encoding="utf-8")
    return set(re.findall(r'^# %%.*\bid="([\w-]+)"', source, flags=re.M))


def test_every_lab_has_notes_and_every_note_a_lab():
    english = sorted(p.stem for p in NOTES.glob("*.md") if len(p.suffixes) == 1)
    assert english == LABS, f"missing: {sorted(set(LABS) - set(english))}; unknown: {sorted(set(english) - set(LABS))}"
    twins = sorted(p.name.split(".")[0] for p in NOTES.glob("*.ko.md"))
    assert twins == LABS, "every note has its Korean twin <lab>.ko.md"


@pytest.mark.parametrize("lab", LABS)
def test_notes_have_the_shape_an_instructor_can_teach_from(lab):
    path = NOTES / f"{lab}.md"
    if not path.is_file():
        pytest.fail(f"no instructor notes for {lab}: {path.relative_to(ROOT)}")
    text = path.read_text(encoding="utf-8")
    meta = SYLLABUS["labs"][lab]
    title = text.splitlines()[0]
    assert title.startswith(f"# {lab}") and meta["title"] in title, f"first line: '# {lab}: {meta['title']} ...'"
    assert f"{meta['minutes']} minutes" in text.split("##", 1)[0] and meta.get("slot", "") in text.split("##", 1)[0]
    sections = _sections(text)
    assert list(sections) == SECTIONS, f"sections, in this order: {SECTIONS}; found {list(sections)}"

    # Timings: a table whose first column is minutes; they add up to the slot.
    rows = re.findall(r"(?m)^\|\s*(\d+)\s*\|", sections["Timings"])
    assert len(rows) >= 3, "at least three timed steps"
    assert sum(map(int, rows)) == meta["minutes"], f"timings add up to {sum(map(int, rows))}, the slot has {meta['minutes']}"

    # Exactly three numbered mistakes, each with the hint to give.
    mistakes = re.split(r"(?m)^\d\.\s", sections["Common mistakes"])[1:]
    assert len(mistakes) == 3, f"three common mistakes, numbered 1. 2. 3.; found {len(mistakes)}"
    for m in mistakes:
        assert "Hint:" in m and len(m.split("Hint:", 1)[1].strip()) > 20, f"each mistake ends with 'Hint: ...': {m[:80]}"

    # Named exercises exist; linked files exist.
    ids = _grade_ids(lab)
    for gid in re.findall(r"`([a-z][\w]*_(?:tests|answer|exercise|solution)\w*)`", text):
        assert gid in ids, f"{lab}: `{gid}` is not a grade id of the lab"
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if not target.startswith(("http://", "https://")):
            assert (path.parent / target).resolve().exists(), f"{lab}: link to a missing file: {target}"
    for cited in re.findall(r"`((?:benchmarks|labs|course|docker|grading)/[^`\s]+)`", text):
        assert (ROOT / cited).exists(), f"{lab}: cites a missing file: {cited}"


@pytest.mark.parametrize("lab", LABS)
def test_gpu_figures_in_the_notes_were_measured_on_a_gpu(lab):
    """Wrong answer caught: a figure for the GPU output that nobody measured (an expectation written
    as a measurement), or one cited from a CPU-tier results file."""
    path = NOTES / f"{lab}.md"
    if not path.is_file():
        pytest.fail(f"no instructor notes for {lab}")
    gpu = _sections(path.read_text(encoding="utf-8")).get("What the GPU output looks like", "")
    for paragraph in re.split(r"\n\s*\n", gpu):
        if not FIGURE.search(paragraph):
            continue
        cited = re.findall(r"`(benchmarks/results/[^`\s]+)`", paragraph)
        assert cited, f"{lab}: a figure without the results file it was measured in: {paragraph[:160]}"
        for c in cited:
            assert _measured_on_a_gpu(ROOT / c), f"{lab}: {c} is not a GPU measurement"


def _measured_on_a_gpu(path) -> bool:
    """A results file (or folder) that records a GPU run; a README stands for the files beside it."""
    files = [path] if path.suffix == ".json" else sorted((path if path.is_dir() else path.parent).glob("*.json"))
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        text = json.dumps(doc)[:200_000]
        if '"tier": "gpu"' in text or re.search(r'"name": "NVIDIA [^"]+"', text):
            return True
    return False
