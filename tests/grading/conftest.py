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
