"""Pieces of the headless runner that need no kernel: reports and failing-cell detection."""

import json
import xml.etree.ElementTree as ET

from techday.course.labsrc import CellRef
from techday.validate.runner import LabResult, RunSummary, failing_cell, junit_xml


def test_junit_counts_failures_and_errors():
    s = RunSummary(schema="techday.run/1", started="2026-01-01T00:00:00+00:00", scale="ci", tier={}, seconds=3.0)
    s.labs = [LabResult("a", "cpu", "ci", "passed", 1.0),
              LabResult("b", "cpu", "ci", "failed", 1.0, "ValueError: <bad> & \"x\"", "cell 3 'b-002' (line 9)"),
              LabResult("c", "cpu", "ci", "crashed", 1.0, "DeadKernelError")]
    root = ET.fromstring(junit_xml(s))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    failure = root.find("testcase[@name='b[cpu,ci]']/failure")
    assert "ValueError: <bad>" in failure.get("message") and "line 9" in failure.get("message")
    assert root.find("testcase[@name='a[cpu,ci]']/failure") is None
    assert not s.ok


def _cell(cid, **pm):
    return {"id": cid, "cell_type": "code", "metadata": {"papermill": pm}, "source": "", "outputs": []}


def test_failing_cell_prefers_the_raising_cell(tmp_path):
    nb = {"cells": [_cell("a", start_time="t", exception=False), _cell("b", start_time="t", exception=True),
                    _cell("c", start_time=None)]}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    refs = {"b": CellRef(index=1, cell_id="b", line=12, kind="tests")}
    assert failing_cell(path, refs) == "cell 2 'b' tests (line 12)"


def test_failing_cell_is_last_started_when_nothing_raised(tmp_path):
    nb = {"cells": [_cell("a", start_time="t"), _cell("b", start_time="t", status="running"), _cell("c")]}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    assert failing_cell(path, {}) == "cell id 'b'"
    assert failing_cell(tmp_path / "missing.ipynb", {}) == ""


def test_left_behind_names_what_a_lab_leaves_but_not_the_libraries_fixed_caches(tmp_path):
    """Caught: a lab's uniquely named temporary file reported as nothing; PyTorch's per-user compile
    cache or ONNX Runtime's session file (one fixed name each, nothing piles up) failing every lab."""
    from techday.validate.runner import kept_by_libraries, left_behind

    assert left_behind(tmp_path) == []
    for name in kept_by_libraries():
        (tmp_path / name).mkdir()
    assert left_behind(tmp_path) == []
    (tmp_path / "tmpa1b2c3.onnx").write_text("x")
    (tmp_path / "techday-ddp-x1").mkdir()
    assert left_behind(tmp_path) == ["techday-ddp-x1", "tmpa1b2c3.onnx"]
    assert left_behind(tmp_path / "missing") == []
