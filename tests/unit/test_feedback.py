"""Feedback without hidden tests (techday.grading.results.HideHiddenTests), on tracebacks as IPython 8
and 9 write them: a visible test keeps its own message; nothing of a hidden test is shown, not its code,
a traceback or message quoting it, nor what ran while it ran; any other output quoting it is removed."""

import nbformat

from techday.grading.results import HideHiddenTests, hidden_lines

TEST = ('"""double() doubles."""\n'
        'assert double(2) == 4, "double(2) should be 4"\n'
        "### BEGIN HIDDEN TESTS\n"
        "assert double(-7) == -14, 'negative: double(-7)'\n"
        "### END HIDDEN TESTS\n")


def _tb(count: int, line: int, ename: str, evalue: str, *more: str) -> list[str]:
    """A traceback as IPython sends it: colours, the cell's frame with lines around the failing one
    (hidden ones too), then deeper frames."""
    context = "".join(f"\x1b[32m{'----> ' if i == line else '      '}{i}\x1b[39m {text}\n"
                      for i, text in enumerate(TEST.splitlines(), 1) if abs(i - line) <= 2)
    return ["\x1b[31m---------------------------------------------------------------------------\x1b[39m",
            f"\x1b[31m{ename}\x1b[39m                            Traceback (most recent call last)",
            f"\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[{count}]\x1b[39m\x1b[32m, line {line}\x1b[39m\n{context}",
            *more, f"\x1b[31m{ename}\x1b[39m: {evalue}"]


def _notebook(test_outputs, other_outputs=()):
    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_code_cell("def double(x):\n    print('called with', x)\n    return x + 1",
                                       execution_count=3)
    answer.metadata["nbgrader"] = {"grade_id": "double", "solution": True}
    test = nbformat.v4.new_code_cell(TEST, execution_count=4)
    test.metadata["nbgrader"] = {"grade_id": "double_tests", "grade": True, "points": 2}
    test.outputs = [nbformat.v4.new_output("stream", name="stdout", text="called with -7\n"), *test_outputs]
    later = nbformat.v4.new_code_cell("print(In[4])", execution_count=5)
    later.outputs = list(other_outputs)
    nb.cells = [answer, test, later]
    return nb


def _error(ename, evalue, traceback):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=traceback)


def _feedback(nb) -> tuple[str, str]:
    out, _ = HideHiddenTests().preprocess(nb, {})
    return out.cells[1].outputs[0].text, nbformat.writes(out)


def test_hidden_lines_are_the_regions_with_their_markers():
    assert hidden_lines(TEST) == {3, 4, 5}


def test_a_visible_test_keeps_its_message():
    nb = _notebook([_error("AssertionError", "double(2) should be 4",
                           _tb(4, 2, "AssertionError", "double(2) should be 4"))])
    verdict, text = _feedback(nb)
    assert verdict == ("failed: AssertionError: double(2) should be 4 "
                       "(at `assert double(2) == 4, \"double(2) should be 4\"`)\n")
    assert "-7" not in text and "-14" not in text and "BEGIN HIDDEN" not in text  # the frame quoted them


def test_a_hidden_test_shows_nothing_of_itself():
    nb = _notebook([_error("AssertionError", "negative: double(-7)",
                           _tb(4, 4, "AssertionError", "negative: double(-7)"))])
    verdict, text = _feedback(nb)
    assert verdict == "failed: a hidden test (hidden tests are not shown)\n"
    assert "-7" not in text and "negative" not in text  # nor what double printed during it


def test_a_visible_line_calling_hidden_code_counts_as_hidden():
    """The cell's frame is on a visible line, but a deeper frame of the same cell is in a hidden region."""
    deeper = "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[4]\x1b[39m\x1b[32m, line 4\x1b[39m, in check()\n"
    nb = _notebook([_error("AssertionError", "", _tb(4, 2, "AssertionError", "", deeper))])
    assert _feedback(nb)[0] == "failed: a hidden test (hidden tests are not shown)\n"


def test_an_error_that_cannot_be_placed_is_hidden():
    """showtraceback disabled by the trainee: no frame to read, so nothing is shown of it."""
    nb = _notebook([_error("ValueError", "negative: double(-7)",
                           ["ERROR: An error occurred while showtraceback was disabled"])])
    verdict, text = _feedback(nb)
    assert verdict.startswith("failed: a hidden test") and "ValueError" not in text


def test_the_graders_own_errors_are_shown():
    nb = _notebook([_error("KernelDied", "the kernel died while running this cell",
                           ["KernelDied: the kernel died while running this cell"])])
    assert _feedback(nb)[0] == "failed: KernelDied: the kernel died while running this cell\n"


def test_a_passing_test_says_passed():
    assert _feedback(_notebook([]))[0] == "passed\n"


def test_a_message_quoting_a_hidden_line_is_hidden():
    """A trainee's function that returns the test cell's source (IPython's In[]) into a visible message."""
    quoted = "assert double(-7) == -14, 'negative: double(-7)'"
    nb = _notebook([_error("AssertionError", f"got {quoted}", _tb(4, 2, "AssertionError", f"got {quoted}"))])
    verdict, text = _feedback(nb)
    assert verdict.startswith("failed: a hidden test") and "-14" not in text


def test_other_outputs_quoting_a_hidden_test_are_removed():
    leak = nbformat.v4.new_output("stream", name="stdout", text=TEST)
    fine = nbformat.v4.new_output("stream", name="stdout", text="my own output\n")
    nb = _notebook([], [leak, fine])
    out, _ = HideHiddenTests().preprocess(nb, {})
    texts = [o.text for o in out.cells[2].outputs]
    assert texts[0].startswith("[output removed from the feedback") and texts[1] == "my own output\n"
    assert "-14" not in nbformat.writes(out)


def _referee_tb(line: int, ename: str, evalue: str) -> list[str]:
    """A traceback of a test run by the grader's referee: the one-line trigger cell, the referee's
    frames, then the test's own frame as ``<course cell ID>`` (techday.grading.referee)."""
    context = "".join(f"{'----> ' if i == line else '      '}{i} {text}\n"
                      for i, text in enumerate(TEST.splitlines(), 1) if abs(i - line) <= 2)
    return ["---------------------------------------------------------------------------",
            f"{ename}                            Traceback (most recent call last)",
            'Cell In[4], line 1\n----> 1 __import__("sys").audit("techday.referee.run", "double_tests")\n',
            "File /opt/techday/techday/grading/referee.py:320, in install.<locals>.run(key_)\n"
            "--> 320     _exec(cell[\"code\"], user_ns)\n",
            f"File <course cell double_tests>:{line}\n{context}", f"{ename}: {evalue}"]


def test_under_the_referee_a_visible_test_keeps_its_message_and_a_hidden_one_says_nothing():
    visible = _notebook([_error("AssertionError", "double(2) should be 4",
                                _referee_tb(2, "AssertionError", "double(2) should be 4"))])
    verdict, text = _feedback(visible)
    assert verdict == ("failed: AssertionError: double(2) should be 4 "
                       "(at `assert double(2) == 4, \"double(2) should be 4\"`)\n")
    # The trigger's line 1 is not the failing line; a hidden line fails: nothing of it is shown.
    hidden = _notebook([_error("AssertionError", "negative: double(-7)",
                               _referee_tb(4, "AssertionError", "negative: double(-7)"))])
    verdict, text = _feedback(hidden)
    assert verdict == "failed: a hidden test (hidden tests are not shown)\n"
    assert "-7" not in text and "negative" not in text


def test_hidden_regions_are_found_in_linear_time_as_the_pattern_finds_them():
    """HIDDEN's lazy .*? scanned to the end of the cell from every BEGIN marker without an END: a
    trainee's cell of 50 000 such lines took minutes per pass, and nbgrader generate_feedback for the
    whole lab ran past its time limit. The line scanner finds the same regions."""
    import random
    import time

    from techday.grading.results import HIDDEN, hide_regions, hidden_regions

    def by_pattern(source: str) -> tuple[set[int], str]:
        lines: set[int] = set()
        for m in HIDDEN.finditer(source):
            first = source.count("\n", 0, m.start()) + 1
            lines.update(range(first, first + m.group(0).rstrip("\n").count("\n") + 1))
        return lines, HIDDEN.sub("X\n", source)

    pieces = ["### BEGIN HIDDEN TESTS", "  ### END HIDDEN TESTS tail", "x = 1", "", "\t### BEGIN HIDDEN TESTS x",
              "### END HIDDEN TESTS", "assert f(2) == 4", "# ### BEGIN HIDDEN TESTS", "y\r"]
    rng = random.Random(7)
    for _ in range(3000):
        source = "\n".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12))) + rng.choice(["", "\n"])
        lines = {k + 1 for a, b in hidden_regions(source.split("\n")) for k in range(a, b + 1)}
        assert (lines, hide_regions(source, "X")) == by_pattern(source), repr(source)
    attack = "### BEGIN HIDDEN TESTS\n" * 200_000
    t0 = time.monotonic()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(attack))
    nb.cells.append(nbformat.v4.new_code_cell(TEST))
    HideHiddenTests().preprocess(nb, {})
    assert time.monotonic() - t0 < 10


def test_a_traceback_of_frame_lookalikes_is_read_in_linear_time():
    """FRAME's lazy ".*?" scanned to the end of the line from every "Input In [1]": a trainee's error
    message of them (1 MB, the output cap) took minutes per pass in each failing hidden-test cell."""
    import time

    from techday.grading.results import FRAME

    assert FRAME.findall("Input In [4], in <cell line: 3>()") == [("", "", "4", "3")]
    assert FRAME.findall("Cell In[4], line 3") == [("4", "3", "", "")]
    message = "Exception: " + "Input In [1]" * 85_000
    t0 = time.monotonic()
    assert FRAME.findall(message) == []
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(TEST, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("error", ename="Exception", evalue=message[11:],
                                           traceback=["Cell In[1], line 2", message])]
    nb.cells.append(cell)
    HideHiddenTests().preprocess(nb, {})
    assert time.monotonic() - t0 < 10
