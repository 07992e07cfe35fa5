"""On a CUDA machine: the grading sandbox keeps the GPU usable. A perfect trainee's notebook of a Numba,
a CuPy and a PyTorch lab, autograded with ``--tier gpu`` in bubblewrap, earns full marks, and its
banner shows that the kernel inside the sandbox ran on the GPU."""

import csv
import json

import nbformat
import pytest

from techday.grading import solution_notebook
from techday.labsrc import write_notebook
from techday.sandbox import SandboxUnavailable, check_sandbox
from tests.conftest import techday

pytestmark = [pytest.mark.gpu, pytest.mark.grading, pytest.mark.slow]


@pytest.mark.parametrize("lab", ["01-numba-first-steps", "05-cupy-interop", "13-dl-training-fast"])
def test_solution_earns_full_marks_on_the_gpu_in_the_sandbox(lab, tmp_path):
    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    env = {"TECHDAY_BUILD": str(tmp_path)}
    out = techday("build", lab, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    root = tmp_path / "course"
    source = json.loads((root / "source" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    write_notebook(nbformat.from_dict(solution_notebook(source, release)),
                   root / "submitted" / "gpu-trainee" / lab / f"{lab}.ipynb")

    out = techday("grade", "autograde", lab, "--tier", "gpu", "--scale", "ci", "--workers", "1", env=env)
    print(out.stdout[-1500:])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "grading" / lab / "report.json").read_text(encoding="utf-8"))
    assert report["sandbox"] is True and report["tier"] == "gpu"
    (sub,) = report["submissions"]
    assert sub["status"] == "graded", sub
    with open(tmp_path / "grading" / "grades.csv", newline="", encoding="utf-8") as f:
        (row,) = [r for r in csv.DictReader(f) if r["assignment"] == lab]
    assert float(row["score"]) == float(row["max_score"]) > 0, (row, sub)
    graded = (root / "autograded" / "gpu-trainee" / lab / f"{lab}.ipynb").read_text(encoding="utf-8")
    assert "TIER: GPU" in graded, "the kernel in the sandbox did not see the GPU"
