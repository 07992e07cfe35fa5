"""What the trainee guides say about a lab's first cells is what every lab has: the parameters cell
papermill fills, then the setup cell that prints the tier banner (course/TRAINEES.md, step 1; README,
"For trainees"). Run alone, the setup cell stops with NameError: name 'tier' is not defined."""

from __future__ import annotations

import pytest

from techday.course.labsrc import read_lab
from techday.course.syllabus import load_course
from tests.conftest import ROOT

COURSE = load_course(ROOT)


@pytest.mark.parametrize("lab", list(COURSE.labs))
def test_the_setup_cell_is_the_second_code_cell_after_the_parameters(lab):
    # Wrong answer caught: a lab whose banner comes from another cell than the guides name (a cell of
    # imports put before the setup), or without the parameters cell the setup reads `tier` from.
    nb, _ = read_lab(COURSE.lab_source(lab), lab)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), f"{lab}: the first code cell is not the parameters cell"
    assert "tier = " in code[0].source, f"{lab}: the parameters cell does not set tier"
    assert "techday.setup(" in code[1].source, f"{lab}: the second code cell is not the setup cell"


@pytest.mark.parametrize("doc, wrong", [
    ("course/TRAINEES.md", "run the first code cell"),
    ("course/TRAINEES.ko.md", "첫 번째 코드 셀을 실행"),
    ("README.md", "Run the first cell"),
])
def test_the_guides_do_not_send_a_trainee_to_the_parameters_cell_for_the_banner(doc, wrong):
    # Wrong answer caught: "run the first code cell. The banner says where you are" (the first code cell
    # is the parameters cell: it prints nothing).
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert wrong not in text and "techday.setup(...)" in text, doc


@pytest.mark.parametrize("lab", list(COURSE.labs))
def test_a_lab_does_not_call_its_setup_cell_the_first_cell(lab):
    # Wrong answer caught: "The first code cell chooses the tier and prints it" above the setup cell, in
    # eight labs: the first code cell is the parameters cell.
    nb, _ = read_lab(COURSE.lab_source(lab), lab)
    prose = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for wrong in ("first code cell chooses", "first cell chooses"):
        assert wrong not in prose, f"{lab}: '{wrong}'"
