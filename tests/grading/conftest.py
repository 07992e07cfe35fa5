"""Fixtures of the grading tests."""

import pytest

from techday.grading.sandbox import SandboxUnavailable, check_sandbox


@pytest.fixture(scope="module")
def bwrap():
    """The sandbox's bwrap; the test is skipped, saying why, where no sandbox can run."""
    try:
        return check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")


def notebook_of(cells: list[str]) -> str:
    """A notebook of these code cells, as the executor receives one (JSON text, a Python 3 kernel)."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb)


def run_sandboxed(cells: list[str], tmp_path, limits, env=None, gpu: bool = False) -> tuple[dict | None, dict]:
    """These cells run by the grader's executor in the real sandbox (skipped, saying why, where none can run):
    the executor's result (None where it stopped the notebook) and its report."""
    from techday.grading.config import grade_env
    from techday.grading.executor import run_notebook

    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"the sandbox cannot run here: {exc}")
    work = tmp_path / ".sandbox"
    work.mkdir()
    report: dict = {}
    result = run_notebook(notebook_of(cells), work, limits, env or grade_env("gpu" if gpu else "cpu", "ci"),
                          sandbox=True, gpu=gpu, report=report)
    return result, report
