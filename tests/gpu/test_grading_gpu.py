"""On a CUDA machine: the grading sandbox keeps the GPU usable. A perfect trainee's notebook of a Numba,
a CuPy and a PyTorch lab, autograded with ``--tier gpu`` in bubblewrap, earns full marks, and its
banner shows that the kernel inside the sandbox ran on the GPU."""

import pytest

from techday.grading.sandbox import SandboxUnavailable, check_sandbox
from tests.conftest import grade_solution

pytestmark = [pytest.mark.gpu, pytest.mark.grading, pytest.mark.slow]


@pytest.mark.parametrize("lab", ["01-numba-first-steps", "05-cupy-interop", "13-dl-training-fast"])
def test_solution_earns_full_marks_on_the_gpu_in_the_sandbox(lab, tmp_path):
    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    report, sub, row, graded = grade_solution(lab, tmp_path, tier="gpu", student="gpu-trainee")
    assert report["sandbox"] is True and report["tier"] == "gpu"
    assert sub["status"] == "graded", sub
    assert float(row["score"]) == float(row["max_score"]) > 0, (row, sub)
    assert "TIER: GPU" in graded, "the kernel in the sandbox did not see the GPU"
