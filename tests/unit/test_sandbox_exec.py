"""The sandbox's executor records what nbgrader's own Execute preprocessor records: the same outputs,
errors and execution counts, cell for cell, for the cases grading depends on."""

import re

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from techday.grading.sandbox_exec import make_executor, nbgrader_execute_class

CELLS = [
    "x = 21\nprint('stdout', x)",
    "import sys\nprint('stderr', file=sys.stderr)\nx * 2",
    "from IPython.display import display, HTML\ndisplay(HTML('<b>shown</b>'))",
    "assert x == 22, 'x is not 22'",                            # a failing test: an error output
    "raise ValueError('plain error')",
    "get_ipython().showtraceback = lambda *a, **k: None\nassert False, 'hidden traceback'",
    "import time\ntime.sleep(30)",                             # past the cell limit: interrupted
    "print('after the timeout', x)",
]


def _notebook():
    nb = new_notebook(cells=[new_markdown_cell("# title")] + [new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _plain(nb):
    """Outputs and counts, with the ANSI colours and kernel-specific paths taken out of tracebacks."""
    def clean(o):
        o = dict(o)
        if "traceback" in o:
            o["traceback"] = [re.sub(r"\x1b\[[0-9;]*m|/tmp/ipykernel_\d+/\d+\.py", "", t) for t in o["traceback"]]
        return o

    return [([clean(o) for o in c.outputs], c.execution_count) for c in nb.cells if c.cell_type == "code"]


def test_executor_matches_nbgrader_execute(tmp_path):
    from nbgrader.preprocessors import Execute

    resources = {"metadata": {"path": str(tmp_path)}}
    # The same settings for both, the wait for a cell's last output as the grader sets it (15 s, not
    # nbclient's 4 s): the comparison is of what they record, which must not depend on the machine's
    # load (one run beside heavy tests on 2 cores differed; the difference was not kept).
    theirs, _ = Execute(timeout=3, iopub_timeout=15).preprocess(_notebook(), dict(resources))
    ours, _ = nbgrader_execute_class()(timeout=3, iopub_timeout=15).preprocess(_notebook(), dict(resources))
    want, got = _plain(theirs), _plain(ours)
    assert got == want
    # and the cases are what they claim: an error, the recorded reply of a disabled traceback, a timeout
    names = [[o.get("ename") for o in outs if o["output_type"] == "error"] for outs, _ in got]
    assert names[3] == ["AssertionError"] and names[4] == ["ValueError"]
    assert names[5] == ["AssertionError"] and "showtraceback was disabled" in got[5][0][-1]["traceback"][0]
    assert "CellTimeoutError" in names[6] and got[7][0][0]["text"] == "after the timeout 21\n"
    assert ours.metadata["language_info"]["name"] == "python"


def test_sandboxed_executor_reports_its_events(tmp_path):
    ex = make_executor(cell_timeout=3, output_bytes=1000)
    nb = _notebook()
    nb.cells.insert(2, new_code_cell("print('y' * 5000)"))
    ex.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    events = {e["event"]: e["cell"] for e in ex.events}
    assert events == {"output-truncated": 2, "cell-timeout": 8}
    assert "5071 more bytes of output dropped" in nbformat.writes(nb)  # its text and its frame (OUTPUT_FRAME)



def _run_refereed(nb, course: dict, tmp_path, output_bytes: int = 10_000):
    """Run ``nb`` in the executor with the referee holding ``course`` (cell index -> key, kind, source); the referee
    and the executor, for their events."""
    from techday.grading.sandbox_exec import Referee

    referee = Referee(course, str(tmp_path))
    ex = make_executor(cell_timeout=30, output_bytes=output_bytes, referee=referee)
    try:
        ex.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    finally:
        if referee.records is not None:
            referee.records.close()
    return referee, ex

def test_every_course_cell_runs_whatever_its_tags(tmp_path):
    """nbclient skips a cell tagged "skip-execution", and nbgrader restores a course cell's source, not
    its tags: lab 10's accuracy bar, tagged so, never ran, and a cell's ``BAR = 0.0`` and ``acc0 = 1.0``
    took its 4 points. Course cells run whatever their tags; a trainee's cell keeps nbclient's rule, and
    every cell keeps its tags in the graded notebook."""
    cells = ["BAR = 0.9\nacc0 = 0.5\n", "BAR = 0.0\nacc0 = 1.0\n", "assert acc0 >= BAR\n", "raise ValueError\n"]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for index in (0, 3):
        nb.cells[index].metadata["tags"] = ["skip-execution"]
    course = {0: {"key": "bar", "kind": "locked", "source": cells[0]},
              2: {"key": "bar_tests", "kind": "test", "source": cells[2]}}
    referee, _ = _run_refereed(nb, course, tmp_path)
    errors = [[o.get("ename") for o in c.outputs if o["output_type"] == "error"] for c in nb.cells]
    assert errors[2] == ["AssertionError"], errors   # the course's BAR and acc0, not the cell's
    assert errors[3] == [], errors                   # a trainee's tagged cell is still skipped
    assert nb.cells[0].metadata["tags"] == ["skip-execution"]


# The kernel is the trainee's process: whatever it sends that adds to or changes outputs counts against the
# cell's cap. Each cell below sends about 3 MB (15 MB in all, so that a broken cap loads nothing much).
FLOODS = {
    "a long error": "raise ValueError('E' * 3_000_000)",
    "a display's metadata": "from IPython.display import display\n"
                            "display({'text/plain': 'm'}, raw=True, metadata={'k': 'M' * 3_000_000})",
    "a display update of an earlier cell": "h.update({'text/plain': 'U' * 3_000_000}, raw=True)",
    "errors sent by the kernel itself": (
        "ip = get_ipython()\n"
        "for k in range(30):\n"
        "    ip.kernel.session.send(ip.kernel.iopub_socket, 'error', {'ename': 'E', 'evalue': 'v' * 100_000,\n"
        "                           'traceback': []}, parent=ip.kernel.get_parent('shell'))"),
    "an execution count that is not one": (
        "ip = get_ipython()\n"
        "ip.kernel.session.send(ip.kernel.iopub_socket, 'execute_input',\n"
        "                       {'code': '', 'execution_count': 'C' * 3_000_000},\n"
        "                       parent=ip.kernel.get_parent('shell'))"),
}


def test_every_output_a_kernel_sends_counts_against_the_cap(tmp_path):
    """Wrong answers caught: the cell's output cap (here 100 kB) bypassed by a cell's error (3 MB raised came back as
    6 MB: its value and its traceback), a display's metadata, a display update (it rewrote an earlier cell's output
    before the cap was looked at), error messages the kernel sends itself, and an execution count that is a 3 MB
    string; each came back whole, into the autograded notebook on the grading host's disk."""
    import json

    ex = make_executor(cell_timeout=30, output_bytes=100_000)
    cells = ["from IPython.display import display\nh = display('small', display_id=True)", *FLOODS.values()]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    ex.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    sizes = {name: len(json.dumps(nb.cells[i].outputs)) for i, name in enumerate(["shown", *FLOODS], 0)}
    print(sizes)
    assert all(size < 150_000 for size in sizes.values()), sizes
    errors = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert [o.ename for o in errors] == ["ValueError"] and "cut short" in errors[0].traceback[-1]
    assert any(o.output_type == "error" for o in nb.cells[4].outputs)  # the first of the kernel's errors stays
    assert all(c.execution_count is None or isinstance(c.execution_count, int) for c in nb.cells)


def test_all_cells_output_together_is_capped(tmp_path):
    """Wrong answer caught: 40 cells that each print 90 kB under a 100 kB cap a cell (3.6 MB) all come back whole
    (with 1 MB a cell, up to the 256 MB the grader reads, into the autograded notebook on the grading host's disk);
    now 16 cells' caps in all, and every later cell keeps its errors, cut short."""
    import json

    from techday.grading.sandbox_exec import NOTEBOOK_CELLS_OF_OUTPUT

    ex = make_executor(cell_timeout=30, output_bytes=100_000)
    cells = ["print('p' * 90_000)"] * 40 + ["raise ValueError('last')"]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    ex.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    total = sum(len(json.dumps(c.outputs)) for c in nb.cells)
    print(total)
    assert total < (NOTEBOOK_CELLS_OF_OUTPUT + 1) * 100_000, total
    assert nb.cells[0].outputs[0].text == "p" * 90_000 + "\n"  # the first cells whole
    assert "more bytes of output dropped" in nb.cells[30].outputs[-1].text
    assert [o.ename for o in nb.cells[40].outputs if o.output_type == "error"] == ["ValueError"]
    assert {"cell": 30, "event": "output-truncated", "bytes": 90_071} in ex.events  # with its frame


# Outputs that put a value in a test cell as its result: nbgrader scores a test cell by the first output that is
# an error (0) or a result (`execute_result`: a number is the score, anything else full marks), whichever comes
# first, so a result shown before the test's error outweighed it. A course test never shows one (the referee runs
# it with `exec`); each of these came from the notebook's code.
RESULTS_BEFORE_THE_ERROR = {
    # the trigger's `__import__` is looked up in the notebook's namespace first: the test never runs, and the
    # trigger's own value is shown before the grader's GraderCheck (grade-lab: 5 of 5, before)
    "__import__ bound by a cell": ("class Sys:\n    def audit(self, *args):\n        return 'passed'\n"
                                   "def __import__(name, *args):\n    return Sys()\n", "assert answer() == 4\n"),
    # the answer shows a value as the running cell's result, then the test fails (grade-lab: 2 of 5, before)
    "the display hook called by the answer": ("def answer():\n    get_ipython().displayhook('ok')\n    return 0\n",
                                              "assert answer() == 4\n"),
    # a result message sent by the kernel under the test's request
    "a result the kernel sends": ("def answer():\n    ip = get_ipython()\n"
                                  "    ip.kernel.session.send(ip.kernel.iopub_socket, 'execute_result',\n"
                                  "        {'data': {'text/plain': '2'}, 'metadata': {}, 'execution_count': 1},\n"
                                  "        parent=ip.kernel.get_parent('shell'))\n    return 0\n",
                                  "assert answer() == 4\n"),
}


def test_a_value_shown_in_a_test_cell_never_outweighs_its_error(tmp_path):
    """Wrong answers caught: a test cell whose outputs held a result before the error that failed it scored that
    result (`__import__` bound by a cell: every test the grader's GraderCheck failed scored full marks, grade-lab
    5 of 5, flagged by the review alone). A test cell's results are shown as displays; the cell scores 0 and the
    run says so."""
    from nbgrader.utils import determine_grade

    for name, (trainee, test) in RESULTS_BEFORE_THE_ERROR.items():
        nb = new_notebook(cells=[new_code_cell(trainee), new_code_cell(test)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells[1].metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 2,
                                            "grade_id": "answer_tests"}
        referee, ex = _run_refereed(nb, {1: {"key": "answer_tests", "kind": "test", "source": test}}, tmp_path,
                                    output_bytes=100_000)
        kinds = [o.output_type for o in nb.cells[1].outputs]
        assert "error" in kinds, (name, kinds)
        assert determine_grade(nb.cells[1]) == (0, 2.0), (name, nb.cells[1].outputs)
        assert "execute_result" not in kinds, (name, kinds)
        assert any("result" in e.get("what", "") for e in ex.events + referee.events), (name, ex.events, referee.events)


def test_a_course_cell_whose_trigger_the_notebook_answers_does_not_count(tmp_path):
    """Wrong answer caught: the executor's trigger looks ``__import__`` up in the notebook's namespace first, so
    a cell's ``__import__`` could pass the tests' triggers on to the referee and answer a locked cell's itself:
    the locked cell never ran, the test read the notebook's ``BAR`` and ``acc`` and passed, no note. Every course
    cell's trigger must reach the referee (its ``start`` record); a locked cell that did not is said, and no
    later test counts."""
    proxy = ("import sys as real\nclass Sys:\n    def audit(self, event, key):\n"
             "        return None if key == 'bar' else real.audit(event, key)\n"
             "def __import__(name, *args):\n    return Sys()\n")
    cells = [proxy, "BAR = 0.9\nacc = 0.5\n", "BAR = 0.0\nacc = 1.0\n", "assert acc >= BAR\n"]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    course = {1: {"key": "bar", "kind": "locked", "source": cells[1]},
              3: {"key": "bar_tests", "kind": "test", "source": cells[3]}}
    referee, _ = _run_refereed(nb, course, tmp_path)
    errors = [o.get("ename") for o in nb.cells[3].outputs if o["output_type"] == "error"]
    assert errors == ["GraderCheck"], nb.cells[3].outputs
    assert any("'bar' never reached" in e["what"] for e in referee.events), referee.events


def test_a_test_cell_nbgrader_adds_back_is_run_by_the_referee(tmp_path):
    """Wrong answer caught: a test cell deleted from the hand-in is added back by nbgrader's ``OverwriteCells``
    with a comment line before its source, and the executor took only a cell whose source was the course's as
    written for a course cell: the test ran as the notebook's own code, on the kernel's word (grade-lab, an input
    transformer set in a cell before the answer: the deleted ``double_tests`` took its 2 points, hidden test
    included, flagged only as ``deleted test cell ... (nbgrader adds it back)``)."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import OverwriteCells

    from techday.fastimport import alembic_head_in_process
    from techday.grading.executor import course_cells

    alembic_head_in_process()  # the schema revision read here, not from an `alembic` found on PATH
    source = "assert answer() == 4\n"
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db) as gb:
        gb.add_assignment("lab")
        gb.add_notebook("lab", "lab")
        gb.add_grade_cell("answer_tests", "lab", "lab", max_score=2, cell_type="code")
        gb.add_source_cell("answer_tests", "lab", "lab", cell_type="code", locked=True, source=source,
                           checksum="0")
    nb = new_notebook(cells=[new_code_cell("def answer():\n    return 0\n")])
    resources = {"nbgrader": {"notebook": "lab", "assignment": "lab", "db_url": db}}
    nb, _ = OverwriteCells(add_missing_cells=True).preprocess(nb, resources)
    added = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "answer_tests"]
    assert len(added) == 1 and added[0].source != source and added[0].source.endswith(source), added
    assert [c["key"] for c in course_cells(nb, resources)] == ["answer_tests"]
