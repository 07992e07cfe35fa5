"""Signal handlers while a course cell runs (techday/grading/referee.py): CPython hands a Python signal
handler the frame it interrupts, with no audit event, so a timer's handler set by a cell could catch a
test between its reference and its call of the answer and hand the answer the test's own locals (on
lab 10, sgd_step returned the test helper's ``loss_ref``: 2 points). While a course cell runs, the
notebook's handlers are taken off, and put back after it."""

from __future__ import annotations

import json

from tests.unit.test_referee_source import _run

TIMER = r'''
import signal
seen = {}

def handler(signum, frame):
    seen["ticks"] = seen.get("ticks", 0) + 1
    if "expected" in frame.f_code.co_varnames:
        seen["frame"] = frame

signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)

def answer(x):
    return seen["frame"].f_locals["expected"]
'''
# The reference is computed in the test's own frame before the answer is called (a loop: the
# interpreter runs pending signal handlers on its backward jumps). The loop lasts tens of timer
# periods, so that a tick lands in it; a shorter period (20 us) kept a loaded machine's driver in the
# handler and ran past the driver's time bound.
TESTS = {"hidden": {"kind": "test", "source":
                    "def check(x):\n    expected = 0.0\n    for i in range(200000):\n        expected += i * 0.5\n"
                    "    expected += x\n    assert answer(x) == expected\n    return True\nassert check(3)\n",
                    "then": "signal.setitimer(signal.ITIMER_REAL, 0)\nassert seen['ticks'] > 0\n"}}


def test_a_signal_handler_cannot_read_the_frame_of_a_test():
    """Wrong answer caught: the test's ``expected``, read from the frame a timer's handler was handed."""
    got = _run(TIMER, tests=TESTS)
    assert got["hidden"] != "passed", got
    assert " tripwire hidden a signal handler of the notebook's (SIGALRM)" in got["records"], got
    assert got["hidden then"] == "ok", got  # the handler is the notebook's again after the test


def test_the_interrupt_still_stops_a_course_cell():
    """SIGINT keeps Python's own handler while a course cell runs, whatever a cell set: the grader's
    interrupt of a cell past its time limit still ends it."""
    cell = "import signal\nsignal.signal(signal.SIGINT, lambda *a: None)\n"
    tests = {"visible": {"kind": "test", "source":
                         "import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nimport time\ntime.sleep(0.5)\n"}}
    got = _run(cell, tests=tests)
    assert got["visible"] == "KeyboardInterrupt", got
