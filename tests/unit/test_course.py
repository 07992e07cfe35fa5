"""The real course: syllabus and labs agree, and every lab source builds and is graded."""

import pytest

from techday.course.labsrc import hidden_test_count, read_lab
from techday.course.syllabus import CourseError, load_course
from tests.conftest import ROOT

COURSE = load_course(ROOT)


def test_syllabus_lists_exactly_the_lab_folders():
    assert sorted(COURSE.labs) == COURSE.lab_dirs()


def test_every_lab_is_in_one_track_in_order():
    placed = [lab for track in COURSE.tracks.values() for lab in track.labs]
    assert sorted(placed) == sorted(COURSE.labs) and len(placed) == len(set(placed))
    for track in COURSE.tracks.values():
        assert track.labs == sorted(track.labs), f"track {track.id}: labs out of numeric order"
        assert 0 < track.pass_rule["min_fraction"] <= 1
        for lab in track.labs:
            assert COURSE.labs[lab].track == track.id


@pytest.mark.parametrize("lab", sorted(COURSE.labs))
def test_lab_source_builds_with_hidden_tests_and_points(lab):
    nb, refs = read_lab(COURSE.lab_source(lab), lab)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(tests) >= 2, f"{lab}: a lab needs several graded test cells"
    assert hidden_test_count(nb) >= len(tests) // 2, f"{lab}: too few hidden tests"
    # Wrong answer caught: one that special-cases the visible inputs (``{2: 4}.get(x, 0)``) passes a test cell
    # with no hidden part; a test cell's points need its hidden part too (nbgrader scores the whole cell).
    bare = [c.metadata.nbgrader.grade_id for c in tests if "### BEGIN HIDDEN TESTS" not in c.source]
    assert not bare, f"{lab}: test cells without hidden tests, passed by answers to the visible inputs only: {bare}"
    assert sum(c.metadata.nbgrader.points for c in tests) > 0
    first_code = next(c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    assert "techday.setup(" in first_code.source, f"{lab}: the first code cell after the parameters must call techday.setup"
    assert COURSE.labs[lab].timeout("ci") <= 600


def test_cuts_fit_their_time():
    """A "2h" cut must fit in 120 minutes of labs, in the track's own order."""
    for track in COURSE.tracks.values():
        for cut, labs in track.cuts.items():
            hours = float(cut.removesuffix("h"))
            minutes = sum(COURSE.labs[lab].minutes for lab in labs)
            assert minutes <= hours * 60, f"{track.id} {cut}: {minutes} minutes of labs"
            assert labs == [lab for lab in track.labs if lab in labs], f"{track.id} {cut}: out of order"


def test_deep_learning_day_is_the_whole_track_with_transformers():
    """The 8-hour cut of the deep-learning track is every lab of it, the transformer lab included, and
    ends with the assessment; the 4-hour cut ends with the assessment too."""
    track = COURSE.tracks["deep-learning"]
    assert track.cuts["8h"] == track.labs and "16-dl-transformers" in track.labs
    assert track.labs[-1] == track.cuts["4h"][-1] == track.assessment == "17-dl-assessment"


def test_select_by_prefix_and_unknown():
    known, unknown = COURSE.select(["00", "labs/01-numba-first-steps/", "zz-nope"])
    assert known == ["00-gpu-tour", "01-numba-first-steps"] and unknown == ["zz-nope"]
    assert COURSE.select(None)[0] == list(COURSE.labs)


def test_accelerated_track_ends_with_its_assessment():
    track = COURSE.tracks["accelerated"]
    assert track.assessment == "07-accelerated-assessment" == track.labs[-1]
    assert 0 < track.pass_rule["min_assessment_fraction"] <= 1
    assert track.cuts["4h"][-1] == track.assessment
    assert COURSE.tracks["foundations"].assessment is None


def test_pass_rule_with_an_assessment():
    track = COURSE.tracks["accelerated"]
    full = {lab: (10.0, 10.0) for lab in track.labs}
    assert track.passes(full)
    weak_assessment = {**full, track.assessment: (14.0, 18.0)}  # 78 % of the assessment, 97 % overall
    assert not track.passes(weak_assessment)
    assert track.passes({**full, track.assessment: (15.0, 18.0)})
    weak_lab = {**full, track.labs[0]: (4.0, 10.0)}
    assert not track.passes(weak_lab)
    with pytest.raises(CourseError, match="no score"):
        track.passes({track.assessment: (18.0, 18.0)})


SYLLABUS = """
[tracks.t]
title = "T"
labs = ["a-lab", "b-lab"]
pass_rule = {{ min_fraction = 0.7, {rule} }}

[labs.a-lab]
title = "A"
track = "t"
minutes = 10

[labs.b-lab]
title = "B"
track = "t"
minutes = 10
"""


@pytest.mark.parametrize("rule, complaint", [
    ('assessment = "c-lab", min_assessment_fraction = 0.8', "not a lab of the track"),
    ('assessment = "b-lab"', "min_assessment_fraction"),
    ('assessment = "b-lab", min_assessment_fraction = 1.5', "min_assessment_fraction"),
])
def test_bad_assessment_rule_is_named(tmp_path, rule, complaint):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "syllabus.toml").write_text(SYLLABUS.format(rule=rule))
    with pytest.raises(CourseError, match=complaint):
        load_course(tmp_path)


def test_good_assessment_rule_loads(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "syllabus.toml").write_text(
        SYLLABUS.format(rule='assessment = "b-lab", min_assessment_fraction = 0.8'))
    assert load_course(tmp_path).tracks["t"].assessment == "b-lab"
