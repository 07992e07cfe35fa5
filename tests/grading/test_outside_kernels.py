"""Lab 07's kernels scored from outside the trainee's kernel (techday/grading/outside_kernels.py): the grader runs
the hand-in's code again in a process of its own, on cases it draws after the notebook ran, and judges the output
arrays against the course's NumPy references itself.

Each test names the wrong answer it catches. The judge and the runner are tested directly; one room is graded for
the whole module (a lab 07 hand-in takes about a minute in the sandbox here).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from techday.grading.outside_kernels import LAB, TESTS, draw_cases, judge, parse_output, program_cells, score_kernels
from tests.conftest import ROOT

pytestmark = [pytest.mark.grading]

WRONG = ROOT / "tests" / "wrong_solutions" / f"{LAB}.py"
FORGERY = ROOT / "tests" / "fixtures" / "submissions" / "lab07_forge_reference.py"
COPY_BLUR = '''@cuda.jit
def blur_kernel(img, weights, out):
    """A blur that does not blur: out = img."""
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = img[row, col]
'''


def sandbox_here() -> bool:
    from tests.grading.test_outside_check import sandbox_here as probe

    return probe()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Lab 07's source and release notebooks, as the course's build makes them."""
    from tests.conftest import build_lab

    root = build_lab(LAB, tmp_path_factory.mktemp("lab07"))
    read = lambda part: json.loads((root / part / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))  # noqa: E731
    return read("source"), read("release")


def solution(built, replace: dict[str, str] | None = None, after: dict[str, str] | None = None):
    """The lab's solution as a hand-in, ``replace`` giving other sources to solution cells (by grade id), ``after``
    adding a cell of the trainee's after one."""
    import nbformat

    from techday.grading.contract import solution_notebook

    nb = nbformat.reads(json.dumps(solution_notebook(*built)), as_version=4)  # sources as strings, as nbgrader reads
    for gid, source in (replace or {}).items():
        (cell,) = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid]
        cell.source = source
    for gid, source in (after or {}).items():
        (index,) = [i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid]
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


# --- what runs -------------------------------------------------------------------------------------------------

def test_the_program_is_the_releases_definitions_and_the_hand_ins_own_cells(built):
    """Caught: a definition cell changed in the hand-in (``MAX_SIDE`` raised, so that no grid-stride loop is needed)
    runs as the release wrote it; kept: the trainee's own helper cell runs, in notebook order; left out: the test
    cells, the locked speed helpers and the release's demo and plot cells (slow, and not the trainee's)."""
    nb = solution(built, after={"launch_settings": "def clamp(v, low, high):\n    return min(max(v, low), high)\n"})
    (settings,) = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "launch_settings"]
    settings.source = settings.source.replace("else 1", "else 64")
    cells = program_cells(nb, None)
    assert [(c["origin"], c["key"]) for c in cells[:4]] == [
        ("grader", "prelude"), ("release", "setup"), ("release", "imports"), ("release", "launch_settings")]
    assert "else 1 " in cells[3]["source"] and "else 64" not in cells[3]["source"]
    hand_in = [c for c in cells if c["origin"] == "hand-in"]
    assert [c["key"] for c in hand_in][1:] == ["blur_kernel", "histogram_kernel", "lut_kernel", "pipeline"]
    assert "def clamp" in hand_in[0]["source"]
    text = "\n".join(c["source"] for c in cells)
    for left_out in ("check_blur", "matplotlib", "speed_buffers", "pipeline_reference(picture", "tier = None"):
        assert left_out not in text, left_out
    # With the gradebook's cells (executor.course_cells), their sources are the ones run.
    course = [{"index": i, "key": gid, "kind": "locked", "source": f"# the gradebook's {gid}\n"}
              for i, c in enumerate(nb.cells) if (gid := c.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
              in ("setup", "imports", "launch_settings", "speed_helpers")]
    cells = program_cells(nb, course)
    assert [c["source"] for c in cells if c["origin"] == "release"] == [
        "# the gradebook's setup\n", "# the gradebook's imports\n", "# the gradebook's launch_settings\n"]


def test_each_grading_draws_its_own_cases_past_one_block_with_grid_stride_and_several_blocks():
    """Caught: an answer fitted to the published cases (lab 07's ``lut_keyed_on_published_cases``), or kernels
    right for one block only or for a grid that covers the picture only: every grading draws its own seed; blur
    and histogram cases pass one block of 16 in every dimension, one launches several blocks per side, one a grid
    smaller than the picture."""
    from techday.grading.outside_kernels import draw_seed

    seeds = {draw_seed() for _ in range(4)}
    assert len(seeds) == 4 and min(seeds) >= 2**20
    a, b = (draw_cases("blur_kernel_tests", s) for s in sorted(seeds)[:2])
    assert [c["what"] for c in a] != [c["what"] for c in b]
    for test in ("blur_kernel_tests", "histogram_kernel_tests"):
        cases = draw_cases(test, 2**20 + 99)
        launches = [(c["inputs"]["img"].shape, c["args"]["grid"], c["args"]["block"]) for c in cases]
        assert any(s[0] > 16 and s[1] > 16 for s, _, _ in launches), launches
        assert any(min(g) >= 2 and g[0] * b[0] >= s[1] and g[1] * b[1] >= s[0] for s, g, b in launches), launches
        assert any(g[0] * b[0] < s[1] or g[1] * b[1] < s[0] for s, g, b in launches), launches
    assert {c["kind"] for c in draw_cases("pipeline_tests", 2**20 + 99)} == {"equalize", "equalize_device",
                                                                            "equalize_canary", "orchestrate"}


def test_the_judges_references_are_the_labs():
    """The expected outputs are the course's own references (techday.imageref, which the lab's tests import),
    checked here on the lab's published cases: a blur of a constant picture is that picture, a histogram counts
    every pixel, one grey level's table is the identity."""
    from techday.imageref import (binomial_weights, blur_reference, equalization_lut_reference, histogram_reference,
                                  pipeline_reference)

    flat = np.full((21, 34), 77, np.uint8)
    assert np.array_equal(blur_reference(flat, binomial_weights(5)), flat)
    assert histogram_reference(flat)[77] == flat.size
    one = np.zeros(256, np.int64)
    one[77] = 1000
    assert np.array_equal(equalization_lut_reference(one), np.arange(256))
    for case in draw_cases("pipeline_tests", 2**20 + 7)[:1]:
        assert np.array_equal(case["expected"], pipeline_reference(case["inputs"]["img"], case["inputs"]["weights"]))


# --- the judge -------------------------------------------------------------------------------------------------

def encoded(array) -> dict:
    import base64

    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode()}


@pytest.mark.parametrize("bad", ["dtype", "shape", "short", "long", "fields", "base64", "not-a-dict", "bool-shape"])
def test_the_judge_parses_each_array_strictly(bad):
    """Caught: an answer of another dtype (int64 for uint8), another shape, fewer or more bytes than its shape
    holds, fields beyond dtype/shape/data, data that is not base64, an answer that is no array, a shape of
    booleans: each refused with its reason (``kernels-answer``), never read past what the case asks for."""
    from techday.grading.outside_kernels import Unusable

    case = draw_cases("lut_kernel_tests", 2**20 + 1)[0]
    good = encoded(case["expected"])
    out = {"dtype": {**good, "dtype": "int64"}, "shape": {**good, "shape": [16, 16]},
           "short": encoded(case["expected"][:-1]) | {"shape": [256]}, "long": {**good, "data": good["data"] + "AAAA"},
           "fields": {**good, "extra": 1}, "base64": {**good, "data": "!" * len(good["data"])},
           "not-a-dict": [1, 2], "bool-shape": {**good, "shape": [True]}}[bad]
    with pytest.raises(Unusable):
        parse_output(out, case)
    assert np.array_equal(parse_output(good, case), case["expected"])


def test_the_judge_decides_per_case_and_wants_one_array_per_case():
    """Caught: an answer with more arrays than cases (or fewer), one array wrong by one value, a case that
    raised: each fails the test with a reason that names the case."""
    cases = draw_cases("lut_kernel_tests", 2**20 + 2)
    right = [encoded(c["expected"]) for c in cases]
    assert judge("lut_kernel_tests", cases, {"outputs": right}) == {"passed": True}
    assert judge("lut_kernel_tests", cases, {"outputs": right + right[:1]})["key"] == "kernels-answer"
    assert judge("lut_kernel_tests", cases, {"outputs": right[:-1]})["key"] == "kernels-answer"
    off = cases[2]["expected"].copy()
    off[200] ^= 1
    verdict = judge("lut_kernel_tests", cases, {"outputs": right[:2] + [encoded(off)] + right[3:]})
    assert verdict["key"] == "kernels-differ" and verdict["kw"]["case"] == 3 and verdict["kw"]["bad"] == 1, verdict
    verdict = judge("lut_kernel_tests", cases, {"outputs": [{"error": "NameError: lut_kernel"}] + right[1:]})
    assert verdict["key"] == "kernels-raised" and "NameError" in verdict["kw"]["error"], verdict


def test_the_reason_and_the_case_are_in_the_rooms_language():
    """Caught: a reason whose case stayed in English in a Korean room (the template translated, ``grid``, ``weights``
    and ``one grey level`` not), or a reason the catalogue cannot render (``no readable reason``)."""
    from techday.grading.outside import failed_text, reason_text
    from techday.i18n import PackageCatalogue

    for test, kind in (("blur_kernel_tests", "blur"), ("lut_kernel_tests", "lut")):
        cases = draw_cases(test, 2**20 + 5)
        zeros = [encoded(np.zeros(c["shape"], c["dtype"])) for c in cases]
        verdict = judge(test, cases, {"outputs": zeros})
        english, korean = (failed_text(c, reason_text(c, verdict["key"], verdict["kw"]), "cuda-kernels-rerun")
                           for c in (PackageCatalogue("en"), PackageCatalogue("ko")))
        assert cases[0]["what"] in english and "readable" not in english, english
        assert "시뮬레이터(simulator)" in korean and cases[0]["what"] not in korean, korean
        assert ("그리드" if kind == "blur" else "히스토그램") in korean, korean


# --- the runner on the lab's own answers ------------------------------------------------------------------------

def test_the_honest_solution_passes_outside_in_the_sandbox(built):
    """Kept: the lab's solution passes every test cell outside, in the sandbox as a host uid of its own where root
    grades, on the simulator; each record says what ran and what was drawn. Measured here (2 cores, loaded): 16 to
    19 s for the five processes (kernels compiled first, the histogram race-checked, the pipeline's two)."""
    results = score_kernels(solution(built), None, list(TESTS), sandbox=sandbox_here())
    for test, result in results.items():
        print(test, result["seconds"], "s", (result.get("user") or {}).get("text"))
        assert result["passed"] is True, (test, result)
        assert result["seed"] >= 2**20 and len(result["cases"]) >= 4 and "NUMBA_ENABLE_CUDASIM=1" in result["simulator"]
    assert sum(r["seconds"] for r in results.values()) < 60


def test_an_experiment_left_in_a_cell_of_the_trainees_does_not_fail_the_honest_kernels(built):
    """Kept: an honest hand-in whose own cell goes on computing (an experiment on a big picture in the simulator,
    here a loop without end) after the solution cells. The kernel tests do not run it at all (the kernels-only
    program: the record lists it as left out); the pipeline test's whole program does: there the cell stops after
    CELL_TIMEOUT_S, is recorded, and the functions it did not touch pass; the process's own limit is not reached."""
    from techday.grading.outside_kernels import CELL_TIMEOUT_S

    nb = solution(built, after={"lut_kernel": "import time\nwhile True:\n    time.sleep(0.05)\n"})
    results = score_kernels(nb, None, ["lut_kernel_tests", "pipeline_tests"], sandbox=sandbox_here())
    lut, pipeline = results["lut_kernel_tests"], results["pipeline_tests"]
    assert lut["passed"] is True and not lut.get("cell_errors"), lut
    assert any("while statement" in x for x in lut["left_out"]), lut
    assert pipeline["passed"] is True, pipeline
    assert any("TimeoutError" in e for e in pipeline["cell_errors"]), pipeline
    assert pipeline["seconds"] < CELL_TIMEOUT_S + 30, pipeline


def test_magics_in_the_trainees_cells_run_as_ipython_would_not_fail_them(built):
    """Kept: ``%%time`` atop an answer cell, a ``%timeit`` and a ``!nvidia-smi`` line in cells of the trainee's
    (plain Python has none of them: the whole cell was a SyntaxError, or a NameError of ``get_ipython``, and the
    honest kernel was undefined)."""
    timed = "%%time\n" + "".join(solution(built).cells[[c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                                                          for c in solution(built).cells].index("lut_kernel")].source)
    nb = solution(built, {"lut_kernel": timed}, {"lut_kernel": "%timeit 1 + 1\n!nvidia-smi\nhelper = 1\n"})
    (result,) = score_kernels(nb, None, ["lut_kernel_tests"], sandbox=False).values()
    assert result["passed"] is True and not result.get("cell_errors"), result


def test_each_test_cell_runs_on_what_the_cells_above_it_defined(built):
    """Kept: an honest hand-in with an experiment after the table's test that redefines ``lut_kernel`` wrongly (the
    kernel's test ran the right one, above it): the table's cases run on the cells above its test cell only.
    Caught: a right ``lut_kernel`` defined only after its test cell (the kernel's test failed, NameError) is not
    used outside either: no such definition above the test (``kernels-missing``)."""
    later = "@cuda.jit\ndef lut_kernel(hist, lut):\n    lut[cuda.threadIdx.x] = 0\n"
    nb = solution(built, after={"lut_kernel_tests": later})
    (result,) = score_kernels(nb, None, ["lut_kernel_tests"], sandbox=False).values()
    assert result["passed"] is True, result
    assert result["program"][-1] == "hand-in:lut_kernel (kernels only)", result
    nb = solution(built, {"lut_kernel": "pass\n"}, {"lut_kernel_tests": solution(built).cells[[
        c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in solution(built).cells].index(
        "lut_kernel")].source})
    (result,) = score_kernels(nb, None, ["lut_kernel_tests"], sandbox=False).values()
    assert result["passed"] is False and result["key"] == "kernels-missing", result


def wrong_solutions():
    from techday.validate.variants import read_wrong_solutions

    return [w for w in read_wrong_solutions(WRONG) if set(w.fails) & set(TESTS)]


# Wrong solutions the kernel's tests catch by how the answer works, not by what it outputs, and that the outside
# check cannot catch: none since it runs only the hand-in's @cuda.jit definitions, compiled first, the histogram
# under check_races and the pipeline with a canary table (grading/README.md, "lab 07's kernels, run again"). The
# nine that were here (NumPy objects named like the kernels, host pipelines, racing histograms, a shared array of
# run-time size) each fail outside now (tests/grading/test_outside_kernels_only.py names each check).
KERNEL_ONLY: dict[str, str] = {}


@pytest.mark.slow
@pytest.mark.parametrize("wrong", wrong_solutions(), ids=lambda w: w.name)
def test_the_labs_wrong_solutions_fail_outside_too(built, wrong):
    """Caught outside as in the kernel: every wrong solution of lab 07 that gives wrong outputs (zero padding, no
    border, transposed weights, lost or double counts, an exclusive cdf, a missing one-level case, a pipeline on
    the unblurred histogram, a histogram never cleared, blocks of 2,048 threads...) fails the same test outside, and
    so do those with right outputs made the wrong way (a NumPy object named like a kernel, a host pipeline, a
    racing histogram, a shared array of run-time size); KERNEL_ONLY lists any left to the kernel alone. Run without the sandbox
    (the runner is the same; the sandbox is tested above)."""
    tests = [t for t in wrong.fails if t in TESTS]
    results = score_kernels(solution(built, {wrong.cell: wrong.source}), None, tests, sandbox=False)
    passed = {t: r["passed"] for t, r in results.items()}
    if wrong.name in KERNEL_ONLY:
        print(f"{wrong.name}: {passed} ({KERNEL_ONLY[wrong.name]})")
        return
    assert not any(passed.values()), {t: (r.get("key"), r.get("kw")) for t, r in results.items()}


def right_answers():
    from techday.validate.variants import read_right_solutions

    return [r for r in read_right_solutions(ROOT / "tests" / "right_solutions" / f"{LAB}.py")
            if set(r.fails) & set(TESTS)]


@pytest.mark.slow
@pytest.mark.parametrize("right", right_answers(), ids=lambda r: r.name)
def test_the_labs_right_answers_pass_outside_too(built, right):
    """Kept: every right answer of lab 07 written another way (tests/right_solutions/, each passing the kernel's
    tests) passes the same tests outside: a hand-in must not lose points outside for how it is written. Caught
    before (each lost its test outside, flagged, passing in the kernel): Numba type objects as a signature, a
    device function or a kernel made by wrapping a plain function (``k = cuda.jit(f)``), an alias of a kernel
    (``lut_kernel = equalisation_table``). Run without the sandbox."""
    tests = [t for t in right.fails if t in TESTS]
    results = score_kernels(solution(built, {right.cell: right.source}), None, tests, sandbox=False)
    for test, result in results.items():
        print(right.name, test, result.get("seconds"), "s", result.get("left_out"))
    assert all(r["passed"] for r in results.values()), {t: (r.get("key"), r.get("kw")) for t, r in results.items()}


# --- the grader's path: a room graded once ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """One room of lab 07 graded by ``techday grade autograde`` (CPU tier, ci scale, sandboxed, one worker): the
    solution, the solution whose blur copies its input with a cell that forges the course's reference through raw
    memory, and the untouched release. Returns {student: (submission line, grades row, autograded notebook)}."""
    import csv

    import nbformat

    from techday.course.labsrc import write_notebook
    from tests.conftest import build_lab, techday

    tmp = tmp_path_factory.mktemp("room07")
    root = build_lab(LAB, tmp)
    built = tuple(json.loads((root / part / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
                  for part in ("source", "release"))
    hand_ins = {"perfect-trainee": solution(built),
                "forger": solution(built, {"blur_kernel": COPY_BLUR}, {"blur_kernel": FORGERY.read_text()}),
                "unfinished": nbformat.reads(json.dumps(built[1]), as_version=4)}
    for student, nb in hand_ins.items():
        write_notebook(nb, root / "submitted" / student / LAB / f"{LAB}.ipynb")
    out = techday("grade", "autograde", LAB, "--tier", "cpu", "--scale", "ci", "--workers", "1",
                  env={"TECHDAY_BUILD": str(tmp)})
    print(out.stdout[-3000:])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((tmp / "grading" / LAB / "report.json").read_text(encoding="utf-8"))
    with open(tmp / "grading" / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == LAB}
    return {s["student"]: (s, rows[s["student"]], json.loads(
        (root / "autograded" / s["student"] / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8")))
        for s in report["submissions"]}


def outputs_of(nb: dict, gid: str) -> list:
    (cell,) = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid]
    return cell["outputs"]


@pytest.mark.slow
def test_a_forged_reference_takes_the_points_in_the_kernel_and_loses_them_outside(room):
    """Caught: a blur that copies its input, with a cell that points the course's ``blur_reference`` at a copy
    of its own by writing the function's code pointer through NumPy's ``__array_interface__`` over ``id()``
    (no ctypes, no ``as_strided``, no audit event; the review flags the cell's ``import types`` only): every test
    in the kernel compared with the forged reference, 18 of 18 before. Outside, the blur and the pipeline are run
    on the grader's cases and judged against the grader's own reference: 0 for both, flagged, the reason shown."""
    sub, row, nb = room["forger"]
    assert float(row["score"]) == 10.0, (row, sub)
    assert sub["status"] == "flagged", sub
    records = {r["cell"]: r for r in sub["outside"]}
    assert set(records) == set(TESTS), records
    for test in ("blur_kernel_tests", "pipeline_tests"):
        assert records[test]["kernel"] == "passed" and records[test]["passed"] is False, records[test]
        assert records[test]["key"] == "kernels-differ", records[test]
        first = outputs_of(nb, test)[0]
        assert first["output_type"] == "error" and first["ename"] == "OutsideCheck", first
        assert "outside your notebook" in first["evalue"] and "scores 0" in first["evalue"], first
    for test in ("histogram_kernel_tests", "lut_kernel_tests"):
        assert records[test]["passed"] is True, records[test]


@pytest.mark.slow
def test_the_honest_solution_keeps_18_and_the_release_0(room):
    """Kept: the solution keeps 18 of 18 (CPU tier: the speed test's CPU rule), every outside record passed, with
    its seed, cases, seconds and the simulator named; the untouched release scores 0 and nothing is run outside
    for it (every test failed in the kernel)."""
    sub, row, nb = room["perfect-trainee"]
    assert float(row["score"]) == float(row["max_score"]) == 18, (row, sub)
    assert sub["status"] == "graded", sub
    for record in sub["outside"]:
        assert record["kernel"] == "passed" and record["passed"] is True, record
        assert record["seed"] >= 2**20 and record["cases"] and record["seconds"] > 0, record
        assert "CUDA simulator" in record["simulator"], record
    sub, row, _ = room["unfinished"]
    assert float(row["score"]) == 0, row
    assert all(r["kernel"] == "failed" and r["passed"] is None for r in sub["outside"]), sub["outside"]
