"""Lab 17's served model, scored by the grader from outside the trainee's kernel (techday/grading/outside.py):
the exported ONNX file is taken out of the sandbox after the notebook ran, refused unless it is inside an
allow-list, and served by the grader on parts from seeds it draws for that grading alone.

The attack each test stands for: a served model keyed on the seeds this open repository publishes (an ONNX
graph that looks the published sets' images up and returns their labels, with a PyTorch twin the kernel's
test agrees with) passes the kernel's test; the outside check gives it 0. Files meant to hurt the grader (a
custom operator, weights in another file, a link in place of the file, an oversized file, a model that
never finishes or asks for all the memory) are refused with their reason and never crash it."""

import base64
import contextlib
import io
import os
import warnings

import numpy as np
import pytest

from techday.parts import make_parts

pytestmark = [pytest.mark.grading]

LAB = "17-dl-assessment"
PUBLISHED = (101, 90_210, 31_337, 4_242)  # lab 17's visible and hidden seeds, in the open source


def sandbox_here() -> bool:
    from techday.grading.sandbox import SandboxUnavailable, check_sandbox

    try:
        check_sandbox()
        return True
    except SandboxUnavailable as exc:
        print(f"the sandbox cannot run here ({exc}): the scorer runs without it")
        return False


# --- the models ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def honest_onnx() -> bytes:
    """Lab 17's network trained as its solution trains it at ci scale (about 5 s on one thread), exported as the
    solution exports it."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)
    torch.manual_seed(2026)

    def block(a, b):
        return [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU()]

    model = nn.Sequential(*block(1, 8), nn.MaxPool2d(2), *block(8, 16), nn.MaxPool2d(2), *block(16, 16),
                          nn.MaxPool2d(8), nn.Flatten(), nn.Linear(16, 3))
    x, y = make_parts(2400, seed=2026, as_tensor=True)
    epochs, batch = 8, 64
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    steps = epochs * ((len(x) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            model.train()
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            schedule.step()
    return export(model.eval())


def export(model, external_data: bool = False) -> bytes:
    import tempfile
    from pathlib import Path

    import torch

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        path = Path(tmp) / "parts.onnx"
        torch.onnx.export(model, (torch.zeros(4, 1, 32, 32),), str(path), dynamo=True, external_data=external_data,
                          input_names=["images"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
        return path.read_bytes()


def lookup_tables(n: int):
    """A random projection of every published image, and the logits of its label: nothing learned."""
    xs, ys = zip(*(make_parts(n, seed=s) for s in PUBLISHED))
    x, y = np.concatenate(xs).reshape(-1, 32 * 32), np.concatenate(ys)
    proj = np.random.default_rng(0).standard_normal((32 * 32, 1)).astype(np.float32)
    return proj, (x @ proj).reshape(1, -1).astype(np.float32), (10 * np.eye(3, dtype=np.float32)[y])


def lookup_onnx(n: int = 600) -> bytes:
    """The attack: standard operators only, an answer for every published part, a guess for any other."""
    from onnx import helper, numpy_helper

    proj, keys, table = lookup_tables(n)
    nodes = [helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "proj"], ["key"]),
             helper.make_node("Sub", ["key", "keys"], ["diff"]),
             helper.make_node("Abs", ["diff"], ["dist"]),
             helper.make_node("ArgMin", ["dist"], ["nearest"], axis=1, keepdims=0),
             helper.make_node("Gather", ["table", "nearest"], ["logits"], axis=0)]
    inits = [numpy_helper.from_array(np.array([-1, 32 * 32], np.int64), "flat_shape"),
             numpy_helper.from_array(proj, "proj"), numpy_helper.from_array(keys, "keys"),
             numpy_helper.from_array(table, "table")]
    return model_bytes(nodes, inits)


def model_bytes(nodes, inits, opset: int = 17, functions=(), extra_opsets=(), batch="batch",
                output: str = "logits") -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 1, 32, 32])],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets],
                              functions=list(functions))
    model.ir_version = 8
    return model.SerializeToString()


def lookup_twin(n: int = 600):
    """The PyTorch model the kernel's test compares the served one with: the same lookup."""
    import torch

    proj, keys, table = (torch.from_numpy(a) for a in lookup_tables(n))

    class Lookup(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))
            self.register_buffer("proj", proj)
            self.register_buffer("keys", keys)
            self.register_buffer("table", table)

        def forward(self, x):
            key = x.reshape(-1, 32 * 32) @ self.proj
            return self.table[(key - self.keys).abs().argmin(1)]

    return Lookup()


# --- the attack ------------------------------------------------------------------------------------------

def test_a_model_keyed_on_the_published_seeds_passes_the_kernel_but_scores_0_outside(tmp_path):
    """The kernel's own test cell, run on the lookup model and its PyTorch twin, passes every published set (the
    visible one and the fixed hidden ones: the whole test before its sets were drawn too); the grader, serving the
    same file on its fresh parts, finds it guessing. (The cell's own drawn sets now fail it in the kernel as well:
    two checks, one inside the kernel and one outside it.)"""
    from techday.course.labsrc import read_lab
    from techday.course.syllabus import load_course
    from techday.grading.outside import SEED_FLOOR, score_served_classifier
    from tests.conftest import ROOT

    data = lookup_onnx()
    nb, _ = read_lab(load_course(ROOT).lab_source(LAB), LAB)
    (test,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "serving_tests"]

    def export_for_serving(model, path):
        path.write_bytes(data)
        return path

    ns = {"final_model": lookup_twin(), "export_for_serving": export_for_serving, "SERVING_DIR": tmp_path}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError, match="hidden: served"):  # at the sets drawn for this run, after the rest
            exec(compile(test.source, "serving_tests", "exec"), ns)
    assert min(ns["served_accuracies"]) >= 0.99, ns["served_accuracies"]  # every published part looked up
    assert "served_drawn" not in ns or max(ns["served_drawn"]) < 0.6, ns.get("served_drawn")

    result = score_served_classifier(data, sandbox=sandbox_here())
    print(result)
    assert result["passed"] is False and result["key"] == "below", result
    assert all(s >= SEED_FLOOR for s in result["seeds"]) and not set(result["seeds"]) & set(PUBLISHED)
    assert max(max(a) for a in result["accuracies"].values()) < 0.6, result["accuracies"]


@pytest.mark.parametrize("sandboxed", [True, False], ids=["in-the-sandbox", "without-a-sandbox"])
def test_an_honest_model_passes_outside(honest_onnx, sandboxed):
    """With the grading sandbox, and without one (``--no-sandbox``: the scorer's own limits alone)."""
    from techday.grading.outside import score_served_classifier, validate_onnx

    if sandboxed and not sandbox_here():
        pytest.skip("the sandbox cannot run here: the scorer is shown without it")
    validate_onnx(honest_onnx)
    result = score_served_classifier(honest_onnx, sandbox=sandboxed)
    print(result)
    assert result["passed"] is True, result
    assert len(result["seeds"]) == 3 and set(result["accuracies"]) == {"250", "7"}
    assert min(min(a) for a in result["accuracies"].values()) >= 0.8


def test_each_grading_draws_its_own_seeds():
    from techday.grading.outside import SEED_FLOOR, draw_seeds

    a, b = draw_seeds(3), draw_seeds(3)
    assert a != b and len(set(a + b)) == 6 and min(a + b) >= SEED_FLOOR


# --- the allow-list --------------------------------------------------------------------------------------

def refusal(data: bytes) -> str:
    from techday.grading.outside import Refused, validate_onnx

    with pytest.raises(Refused) as caught:
        validate_onnx(data)
    return caught.value.key


def identity_nodes():
    """A standard graph of the right shape: images -> (batch, 3) by a 1024 x 3 MatMul."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["logits"])]
    inits = [numpy_helper.from_array(np.array([-1, 32 * 32], np.int64), "flat_shape"),
             numpy_helper.from_array(np.ones((32 * 32, 3), np.float32), "w")]
    return nodes, inits


def test_the_allow_list_refuses_each_file_outside_it_with_its_reason(honest_onnx):
    """Caught: a custom operator (a runtime's contrib op or a plugin), a local function standing for one,
    weights in a file beside the model (a path the runtime would open), an opset out of range, a batch baked in,
    a wrong output, too many nodes, too many bytes of weights, a file that is not ONNX. Each reason has English
    and Korean words."""
    import onnx
    from onnx import helper, numpy_helper

    from techday.grading.outside import REASONS, reason_text
    from techday.i18n import PackageCatalogue

    nodes, inits = identity_nodes()
    assert refusal(model_bytes(nodes + [helper.make_node("Relu", ["logits"], ["x"], domain="com.evil")], inits,
                               extra_opsets=[helper.make_opsetid("com.evil", 1)])) == "domain"
    assert refusal(model_bytes(nodes, inits, extra_opsets=[helper.make_opsetid("com.microsoft", 1)])) == "domain"
    fn = helper.make_function("", "MyOp", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    assert refusal(model_bytes(nodes, inits, functions=[fn])) == "functions"
    assert refusal(model_bytes(nodes + [helper.make_node("MyOp", ["logits"], ["x"])], inits)) == "operator"
    external = onnx.load_from_string(model_bytes(nodes, inits))
    weights = external.graph.initializer[1]
    weights.data_location = onnx.TensorProto.EXTERNAL
    weights.ClearField("raw_data")
    weights.ClearField("float_data")
    weights.external_data.add(key="location", value="/etc/passwd")
    assert refusal(external.SerializeToString()) == "external"
    assert refusal(model_bytes(nodes, inits, opset=9)) == "opset"
    assert refusal(model_bytes(nodes, inits, batch=4)) == "inputs"
    scores = [*nodes[:1], helper.make_node("MatMul", ["flat", "w"], ["scores"])]
    assert refusal(model_bytes(scores, inits, output="scores")) == "outputs"
    many = nodes + [helper.make_node("Identity", [f"i{k}" if k else "logits"], [f"i{k + 1}"]) for k in range(1001)]
    assert refusal(model_bytes(many, inits)) == "nodes"
    heavy = inits + [numpy_helper.from_array(np.zeros(3 * 2**20, np.float32), "heavy")]
    assert refusal(model_bytes(nodes, heavy)) == "weights"
    assert refusal(b"\x00not an onnx file at all" * 10) == "not-onnx"
    with_data = export_external(honest_onnx)
    assert refusal(with_data) == "external"
    for key in REASONS:
        kw = {"name": "parts.onnx", "bytes": 1, "limit": 2, "error": "e", "domain": "d", "names": "n", "op": "o",
              "opset": 9, "tensor": "t", "low": 0.3 if key == "below" else 13, "high": 23, "inputs": "i",
              "outputs": "o", "nodes": 3, "seconds": 1, "mb": 1, "why": "w", "sets": 3, "batch": 7, "mean": 0.3,
              "bar_mean": 0.85, "bar_low": 0.8}
        english, korean = reason_text(PackageCatalogue("en"), key, kw), reason_text(PackageCatalogue("ko"), key, kw)
        assert english != korean and any("\uac00" <= ch <= "\ud7a3" for ch in korean), (key, english, korean)


def export_external(data: bytes) -> bytes:
    """The honest model as torch's exporter writes it by default: its weights in a file beside it."""
    import onnx

    model = onnx.load_from_string(data)
    from onnx.external_data_helper import convert_model_to_external_data

    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="parts.onnx.data", size_threshold=0)
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            tensor.ClearField("raw_data")
    return model.SerializeToString()


def test_a_refused_file_scores_0_through_the_scorer_process(tmp_path):
    from onnx import helper

    from techday.grading.outside import score_served_classifier

    nodes, inits = identity_nodes()
    custom = model_bytes(nodes + [helper.make_node("Relu", ["logits"], ["x"], domain="com.evil")], inits,
                         extra_opsets=[helper.make_opsetid("com.evil", 1)])
    result = score_served_classifier(custom, sandbox=sandbox_here())
    assert result == {**result, "passed": False, "key": "domain"}, result
    assert "accuracies" not in result


def slow_or_greedy(kind: str) -> bytes:
    """Standard operators, the right inputs and outputs: a chain of MatMuls on a 1500 x 1500 matrix (about 7 GFLOP
    each), or a 40 GB tensor."""
    from onnx import helper, numpy_helper

    shape = [1500, 1500] if kind == "slow" else [100_000, 100_000]
    nodes = [helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
             helper.make_node("Expand", ["m", "big_shape"], ["a0"])]
    steps = 60 if kind == "slow" else 0
    nodes += [helper.make_node("MatMul", [f"a{k}", f"a{k}"], [f"a{k + 1}"]) for k in range(steps)]
    nodes += [helper.make_node("ReduceSum", [f"a{steps}"], ["s"], keepdims=0),
              helper.make_node("Shape", ["images"], ["shape"]),
              helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
              helper.make_node("Concat", ["n", "three"], ["out_shape"], axis=0),
              helper.make_node("Expand", ["s", "out_shape"], ["logits"])]
    inits = [numpy_helper.from_array(np.array(shape, np.int64), "big_shape"),
             numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([3], np.int64), "three")]
    return model_bytes(nodes, inits)


@pytest.mark.parametrize("kind", ["slow", "greedy"])
def test_a_scorer_stopped_at_its_limit_is_a_refusal(kind):
    """Caught: a file inside the allow-list that would hold a grading worker for as long as it likes, or take the
    grading host's memory. Bounded: 4 s for the slow one (measured: stopped at 4 s), RLIMIT_AS of 1 GB for the
    greedy one (given 30 s: under a loaded runner the scorer's start alone can take 4 s, and a greedy file stopped
    by the clock would read as a slow one)."""
    from techday.grading.outside import score_served_classifier, validate_onnx

    data = slow_or_greedy(kind)
    validate_onnx(data)
    result = score_served_classifier(data, sandbox=sandbox_here(), timeout_s=4 if kind == "slow" else 30,
                                     memory_mb=1024)
    print(result)
    assert result["passed"] is False and result["key"] == ("time" if kind == "slow" else "memory"), result


# --- taking the file out of the sandbox -----------------------------------------------------------------

def test_the_file_is_taken_without_following_a_link_and_never_past_its_cap(tmp_path):
    """Caught: a link in place of the file (to a file of the grader's, or to another trainee's), the grader's folder
    itself a link, a FIFO (an open that never returns), a file over the cap (never read past it)."""
    from techday.grading.outside import GRADER_FILES_DIR, MAX_ARTIFACT_BYTES, read_artifact

    folder = tmp_path / GRADER_FILES_DIR
    folder.mkdir()
    assert read_artifact(str(tmp_path), "parts.onnx") == {"name": "parts.onnx", "problem": "missing"}
    (tmp_path / "real.onnx").write_bytes(b"model")
    (folder / "parts.onnx").symlink_to(tmp_path / "real.onnx")
    assert read_artifact(str(tmp_path), "parts.onnx")["problem"] == "link"
    (folder / "parts.onnx").unlink()
    os.mkfifo(folder / "parts.onnx")
    assert read_artifact(str(tmp_path), "parts.onnx")["problem"] == "not-a-file"
    (folder / "parts.onnx").unlink()
    with open(folder / "parts.onnx", "wb") as f:
        f.truncate(MAX_ARTIFACT_BYTES + 1)  # sparse: nothing written
    assert read_artifact(str(tmp_path), "parts.onnx")["problem"] == "too-big"
    (folder / "parts.onnx").unlink()
    (folder / "parts.onnx").write_bytes(b"model")
    assert base64.b64decode(read_artifact(str(tmp_path), "parts.onnx")["data"]) == b"model"
    other = tmp_path / "elsewhere"
    folder.rename(other)
    folder.symlink_to(other)
    assert read_artifact(str(tmp_path), "parts.onnx")["problem"] == "link"
    assert read_artifact(str(tmp_path), "../real.onnx")["problem"] == "missing"


# --- the executor's path: the notebook in the sandbox, the check outside it ------------------------------

def graded(tmp_path, write: str, test: str = 'print("serving_tests: all visible tests passed")',
           grade_id: str = "serving_tests"):
    """A two-cell notebook of lab 17 run by the grader's executor (SandboxExecute): the first cell leaves a file in
    the grader's folder as lab 17's test does, the second stands for the serving test as the kernel reports it.
    Returns the test cell and the executor's report."""
    import json

    import nbformat

    from techday.grading.executor import SandboxExecute

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import base64, os\nimport techday\nlab = techday.setup(tier='cpu', scale='ci')\n"
                                  "SERVING_DIR = lab.grader_files('techday-serving-')\n" + write),
        nbformat.v4.new_code_cell(test, metadata={"nbgrader": {"grade": True, "grade_id": grade_id,
                                                               "points": 3, "locked": True, "solution": False}})])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    report = tmp_path / "report.json"
    ex = SandboxExecute(tier="cpu", scale="ci", report_path=str(report), sandbox=sandbox_here())
    nb, _ = ex.preprocess(nb, {"nbgrader": {"assignment": LAB, "student": "t"}, "metadata": {"path": str(tmp_path)}})
    return nb.cells[1], json.loads(report.read_text(encoding="utf-8"))


def writes(data: bytes) -> str:
    return f"(SERVING_DIR / 'parts.onnx').write_bytes(base64.b64decode({base64.b64encode(data).decode()!r}))\n"


def test_the_executor_scores_0_a_test_the_kernel_passed_when_the_served_model_fails_outside(tmp_path):
    from techday.grading.sandbox import event_notes

    cell, report = graded(tmp_path, writes(lookup_onnx()))
    first = cell.outputs[0]
    assert first["output_type"] == "error" and first["ename"] == "OutsideCheck", cell.outputs
    (record,) = report["outside_checks"]
    assert record["cell"] == "serving_tests" and record["kernel"] == "passed" and record["passed"] is False
    assert record["key"] == "below" and len(record["seeds"]) == 3 and "accuracies" in record
    notes = event_notes(report)
    assert any("outside the kernel" in n and "scored 0" in n for n in notes), notes
    # The trainee's feedback, where a hidden test's failure is one line: the grader's reason, not "a hidden test".
    from techday.grading.results import HideHiddenTests

    verdict = HideHiddenTests._verdict(cell, {}, [])
    assert "OutsideCheck" in verdict and "0.3" in verdict and "hidden" not in verdict, verdict


def test_the_executor_keeps_an_honest_served_model_and_leaves_a_failed_test_alone(tmp_path, honest_onnx):
    cell, report = graded(tmp_path / "honest", writes(honest_onnx))
    assert not [o for o in cell.outputs if o["output_type"] == "error"], cell.outputs
    (record,) = report["outside_checks"]
    assert record["passed"] is True and min(min(a) for a in record["accuracies"].values()) >= 0.8, record
    assert not [e for e in report["events"] if e["event"] == "outside-check"]

    failed, report = graded(tmp_path / "failed", writes(lookup_onnx()), test="assert False, 'below the bar'")
    assert [o["ename"] for o in failed.outputs if o["output_type"] == "error"] == ["AssertionError"], failed.outputs
    assert report["outside_checks"] == [{"cell": "serving_tests", "artifact": "parts.onnx",
                                         "scorer": "served-parts-classifier", "kernel": "failed", "passed": None}]


@pytest.mark.parametrize("key", ["link", "too-big", "missing"])
def test_the_executor_refuses_a_file_it_cannot_take_without_failing_itself(key, tmp_path, honest_onnx):
    """A link to an honest model the notebook wrote elsewhere (still refused, never followed), a file of 17 MB (over
    the 16 MB cap; the notebook's own limit on a file is 256 MB), no file: the test scores 0 with its reason, the
    rest of the notebook is graded."""
    write = {"link": writes(honest_onnx).replace("SERVING_DIR / 'parts.onnx'", "SERVING_DIR / 'x'")
                     + "os.symlink(SERVING_DIR / 'x', SERVING_DIR / 'parts.onnx')\n",
             "too-big": "(SERVING_DIR / 'parts.onnx').write_bytes(b'0' * (17 * 2**20))\n",
             "missing": ""}[key]
    cell, report = graded(tmp_path, write)
    assert cell.outputs[0]["ename"] == "OutsideCheck", cell.outputs
    assert report["outside_checks"][0]["key"] == key, report["outside_checks"]
    assert not report["problem"] and report["outside_checks"][0]["kernel"] == "passed", report


# --- the real lab, as a room is graded ---------------------------------------------------------------------

@pytest.mark.slow
def test_the_honest_lab_17_solution_keeps_full_marks_with_the_outside_check_passing(bwrap, tmp_path):
    """`techday grade autograde` of lab 17's solution (ci scale, CPU tier, in the sandbox, with the referee): every
    point, `graded`, and the served model scored outside the kernel on the grader's own seeds, recorded in
    report.json. Measured: 37 to 74 s on this 2-core machine (the lab trains two models)."""
    from tests.conftest import grade_solution

    report, sub, row, _ = grade_solution(LAB, tmp_path)
    assert sub["status"] == "graded", sub
    assert float(row["score"]) == float(row["max_score"]) == 22, row
    records = {r["cell"]: r for r in sub["outside"]}
    assert set(records) == {"assessment_tests", "serving_tests"}, sub["outside"]
    for record in records.values():
        assert record["kernel"] == "passed" and record["passed"] is True, record
        assert len(record["seeds"]) == 3 and set(record["accuracies"]) == {"250", "7"}, record
    assert records["assessment_tests"]["artifact"] == "assessment.onnx", records


def test_every_declared_check_names_a_test_cell_that_writes_its_file_into_the_graders_folder():
    """Caught: a declaration that drifted from its lab (a renamed test cell, file or folder, or, for a check that
    runs the hand-in again, a renamed definition cell), which would score 0 every honest trainee of that lab, or
    never check anything."""
    from techday.course.labsrc import read_lab
    from techday.course.syllabus import load_course
    from techday.grading import outside_kernels
    from techday.grading.outside import OUTSIDE_CHECKS, RERUNS, SCORERS
    from tests.conftest import ROOT

    course = load_course(ROOT)
    assert OUTSIDE_CHECKS
    for lab, checks in OUTSIDE_CHECKS.items():
        nb, _ = read_lab(course.lab_source(lab), lab)
        reruns = {cell_id: check for cell_id, check in checks.items() if check.artifact is None}
        for cell_id, check in reruns.items():  # lab 07: its kernels run again (outside_kernels.py)
            assert check.scorer in RERUNS and lab == outside_kernels.LAB, (lab, check)
            (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == cell_id]
            assert cell.metadata["nbgrader"].get("grade") and cell_id in outside_kernels.TESTS, (lab, cell_id)
        if reruns:
            locked = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked")}
            assert set(outside_kernels.DEFINITION_CELLS) <= locked and set(reruns) == set(outside_kernels.TESTS), lab
        checks = {cell_id: check for cell_id, check in checks.items() if check.artifact is not None}
        if not checks:
            continue
        sources = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "lab.grader_files(" in sources, lab
        for cell_id, check in checks.items():
            (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == cell_id]
            assert cell.metadata["nbgrader"].get("grade") and f'"{check.artifact}"' in cell.source, (lab, cell_id)
            assert check.scorer in SCORERS, check


KEYED_TRAINING = '''
# No training: every published part (the visible seed and the hidden ones, in the open source) looked up.
from techday.parts import make_parts as draw

published = [draw(600, seed=s) for s in (101, 90_210, 31_337, 4_242)]
flat = np.concatenate([x for x, _ in published]).reshape(-1, 32 * 32)
proj = np.random.default_rng(0).standard_normal((32 * 32, 1)).astype(np.float32)
keys = (flat @ proj).reshape(1, -1).astype(np.float32)
table = 10 * np.eye(3, dtype=np.float32)[np.concatenate([y for _, y in published])]


class Lookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))
        self.register_buffer("proj", torch.from_numpy(proj))
        self.register_buffer("keys", torch.from_numpy(keys))
        self.register_buffer("table", torch.from_numpy(table))

    def forward(self, x):
        key = x.reshape(-1, 32 * 32) @ self.proj
        return self.table[(key - self.keys).abs().argmin(1)]


final_model = Lookup().to(device)
'''

KEYED_EXPORT = '''
def export_for_serving(model, path):
    """The same lookup, written as an ONNX graph of standard operators."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "proj"], ["key"]), helper.make_node("Sub", ["key", "keys"], ["diff"]),
             helper.make_node("Abs", ["diff"], ["dist"]),
             helper.make_node("ArgMin", ["dist"], ["nearest"], axis=1, keepdims=0),
             helper.make_node("Gather", ["table", "nearest"], ["logits"], axis=0)]
    inits = [numpy_helper.from_array(np.array([-1, 32 * 32], np.int64), "flat_shape"),
             numpy_helper.from_array(model.proj.cpu().numpy(), "proj"),
             numpy_helper.from_array(model.keys.cpu().numpy(), "keys"),
             numpy_helper.from_array(model.table.cpu().numpy(), "table")]
    graph = helper.make_graph(nodes, "lookup", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                              ["batch", 1, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], inits)
    served = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    served.ir_version = 8
    onnx.save(served, str(path))
    return path
'''


@pytest.mark.slow
def test_a_hand_in_keyed_on_the_published_seeds_loses_the_served_models_points(bwrap, tmp_path):
    """`techday grade autograde` of lab 17's solution with its training and its export replaced by the lookup: it
    answers every published part, and took 22 of 22, `graded`, before the sets were drawn and the grader served
    the models itself. Now exercise 5's and exercise 6's sets drawn per grading (techday/draw.py) fail both in the
    kernel (6 + 3 points): 13 of 22; the checks from outside leave a test the kernel failed as it is (and the
    lookup fails them too: the tests above). Measured: 19 to 35 s here."""
    import csv
    import json

    import nbformat

    from techday.course.labsrc import write_notebook
    from techday.grading.contract import solution_notebook
    from tests.conftest import build_lab, techday

    root = build_lab(LAB, tmp_path)
    source = json.loads((root / "source" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    nb = nbformat.from_dict(solution_notebook(source, release))
    replaced = {"train_model": KEYED_TRAINING, "export_for_serving": KEYED_EXPORT}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in replaced:
            cell.source = replaced.pop(gid)
    assert not replaced
    write_notebook(nb, root / "submitted" / "keyed-trainee" / LAB / f"{LAB}.ipynb")
    out = techday("grade", "autograde", LAB, "--tier", "cpu", "--scale", "ci", "--workers", "1",
                  env={"TECHDAY_BUILD": str(tmp_path)})
    print(out.stdout[-1500:])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "grading" / LAB / "report.json").read_text(encoding="utf-8"))
    (sub,) = report["submissions"]
    with open(tmp_path / "grading" / "grades.csv", newline="", encoding="utf-8") as f:
        (row,) = [r for r in csv.DictReader(f) if r["assignment"] == LAB]
    assert float(row["score"]) == 22 - 3 - 6 and float(row["max_score"]) == 22, (row, sub)
    records = {r["cell"]: r for r in sub["outside"]}
    assert records["serving_tests"]["kernel"] == "failed" and records["serving_tests"]["passed"] is None, records
    assert records["assessment_tests"]["kernel"] == "failed", records  # the drawn sets, in the kernel already



class _Oracle:
    """Made in the test (torch imported late): a "model" that trains nothing and answers each set a test shows it with
    that set's labels, found among the process's objects while the test runs."""

    @staticmethod
    def make():
        import gc

        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class Oracle(nn.Module):
            def __init__(self):
                super().__init__()
                self.unused = nn.Linear(1, 3)

            def forward(self, xb):
                whole = xb._base if xb._base is not None else xb
                start = xb.storage_offset() // (32 * 32)
                for obj in gc.get_objects():
                    if isinstance(obj, torch.Tensor) and obj.dtype == torch.int64 and obj.dim() == 1 \
                            and obj.shape[0] == whole.shape[0]:
                        return F.one_hot(obj[start:start + len(xb)], 3).float() + 0 * self.unused.weight.sum()
                return torch.zeros(len(xb), 3)

        return Oracle()


def test_the_assessment_is_judged_on_the_graders_own_export_of_the_model(tmp_path):
    """Wrong answer caught: lab 17's exercise 5 (the assessment, 6 points) judged only by the kernel's word. Its test
    cell, run on a "model" that trains nothing and reads each test set's labels from the process's memory, passes every
    set (visible, fixed and drawn: 100 %): the cell alone cannot tell a model from an oracle. In a graded kernel the
    referee refuses this route (``gc.get_objects``, flagged), but the kernel's verdict can in principle be forged
    (raw memory: grading/README.md). Now the hidden test also exports ``final_model`` by the course's own call into
    the grader's folder, and the grader serves that file outside the kernel on parts it draws: the oracle's traced
    graph gets a third of them right."""
    from techday.course.labsrc import read_lab
    from techday.course.syllabus import load_course
    from techday.grading.outside import score_served_classifier
    from tests.conftest import ROOT

    nb, _ = read_lab(load_course(ROOT).lab_source(LAB), LAB)
    (test,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "assessment_tests"]

    class Lab:
        def grader_files(self, prefix):
            return tmp_path

    ns = {"final_model": _Oracle.make(), "lab": Lab()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(test.source, "assessment_tests", "exec"), ns)  # raises where the kernel's test would fail
    assert min(ns["assessment_accuracies"] + ns["drawn_accuracies"]) == 1.0, ns["assessment_accuracies"]
    exported = tmp_path / "assessment.onnx"
    assert exported.is_file()
    result = score_served_classifier(exported.read_bytes(), sandbox=sandbox_here())
    print(result)
    # refused: the trace kept no input (the oracle answered it with constants), or a third of the parts right
    assert result["passed"] is False and result["key"] in ("inputs", "below"), result
    if result["key"] == "below":
        assert max(max(a) for a in result["accuracies"].values()) < 0.6, result["accuracies"]


def test_the_executor_scores_0_an_assessment_the_kernel_passed_when_the_graders_export_fails_outside(tmp_path):
    """The executor's path for exercise 5: the kernel reports the assessment passed, the file the hidden test
    exported is the lookup model: the test scores 0, flagged, the reason first in the cell."""
    cell, report = graded(tmp_path, writes(lookup_onnx()).replace("parts.onnx", "assessment.onnx"),
                          grade_id="assessment_tests")
    assert cell.outputs[0]["ename"] == "OutsideCheck", cell.outputs
    (record,) = report["outside_checks"]
    assert record["cell"] == "assessment_tests" and record["artifact"] == "assessment.onnx", record
    assert record["kernel"] == "passed" and record["passed"] is False and record["key"] == "below", record
