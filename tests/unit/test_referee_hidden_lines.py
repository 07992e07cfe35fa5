"""A failed test's hidden lines stay out of the kernel (techday/grading/referee.py). The referee puts a
failed test's lines in ``linecache`` for its traceback; with its hidden region there too, a later cell
read every hidden line back (``warnings.formatwarning`` with the test's file name: a module the review
allows) and printed them reversed, past the feedback's filter of hidden text: on lab 01 the whole of
``mean_var``'s hidden tests reached the trainee's feedback, `graded`, no note."""

from __future__ import annotations

from tests.unit.test_referee_source import _run

READ_BACK = ("import warnings\n"
             "lines = [warnings.formatwarning('', UserWarning, '<course cell visible>', n).split(chr(10))[1]"
             " for n in range(1, 6)]\n"
             "assert 'secret_expected' not in ''.join(lines), lines\n"
             "assert 'answer(1)' in ''.join(lines), lines\n")
TESTS = {"visible": {"kind": "test", "then": READ_BACK, "source":
                     "assert answer(1) == 7.0\n### BEGIN HIDDEN TESTS\nsecret_expected = 42.5\n"
                     "assert answer(2) == secret_expected\n### END HIDDEN TESTS\n"}}


def test_a_failed_tests_hidden_lines_cannot_be_read_back():
    """Wrong answer caught: the hidden line ``secret_expected = 42.5`` read back after the test failed;
    its visible line is still there (for the traceback)."""
    got = _run("def answer(x):\n    return 0.0\n", tests=TESTS)
    assert got["visible"] == "AssertionError", got
    assert got["visible then"] == "ok", got
