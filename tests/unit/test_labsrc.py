"""The lab source format: good sources become nbgrader notebooks; bad ones fail naming the cell."""

import textwrap

import nbformat
import pytest

from techday.course.labsrc import LabSourceError, read_lab, strip_solution_markers

HEAD = '''\
# %% [markdown]
# # A lab

# %% tags=["parameters"]
tier = None
scale = None

'''

GOOD = HEAD + '''\
# %% nbgrader="solution" id="f"
def f(x):
    ### BEGIN SOLUTION
    return x + 1
    ### END SOLUTION

# %% nbgrader="tests" id="f_tests" points=2.5
"""f adds one."""
assert f(1) == 2
### BEGIN HIDDEN TESTS
assert f(41) == 42
### END HIDDEN TESTS

# %% [markdown] nbgrader="locked" id="rules"
# Do not edit.

# %%
%timeit f(1)
'''


def _write(tmp_path, text, name="lab-x"):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_source_becomes_nbgrader_notebook(tmp_path):
    nb, refs = read_lab(_write(tmp_path, GOOD))
    nbformat.validate(nb)
    by_id = {c.id: c for c in nb.cells}
    sol, tests, locked = by_id["f"].metadata.nbgrader, by_id["f_tests"].metadata.nbgrader, by_id["rules"].metadata.nbgrader
    assert (sol.solution, sol.grade, sol.locked) == (True, False, False)
    assert (tests.solution, tests.grade, tests.locked, tests.points) == (False, True, True, 2.5)
    assert (locked.locked, locked.grade, locked.solution) == (True, False, False)
    assert by_id["lab-x-001"].metadata.tags == ["parameters"]
    assert all("lines_to_next_cell" not in c.metadata for c in nb.cells)
    assert [r.line for r in refs] == [1, 4, 8, 14, 21, 24]
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("body, message", [
    ('# %% nbgrader="solution" id="a"\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n\n'
     '# %% nbgrader="tests" id="a" points=1\n"""x."""\nassert x\n', r"cell 4 'a' tests \(line 13\): duplicate grade id 'a' \(first used by cell 3 'a' solution"),
    ('# %% nbgrader="tests" id="t"\n"""x."""\nassert 1\n', r"cell 3 't' tests \(line 8\): test cell has no points"),
    ('# %% nbgrader="tests" id="t" points=0\n"""x."""\nassert 1\n', "points must be a positive number"),
    ('# %% nbgrader="tests" id="t" points=1\nassert 1\n', "opens with a docstring"),
    ('# %% nbgrader="solution" id="s"\nx = 1\n# %% nbgrader="tests" id="t" points=1\n"""x"""\n', "needs '### BEGIN SOLUTION'"),
    ('# %% nbgrader="answer" id="s"\nx = 1\n', "unknown nbgrader kind 'answer'"),
    ('# %% nbgrader="locked"\nx = 1\n', "needs id="),
    ('# %% nbgrader="locked" id="bad id!"\nx = 1\n', "must be 1-64 letters"),
    ('# %% nbgrader="locked" id="c" points=2\nx = 1\n', "points=N is only for"),
    ('# %% nbgrader="tests" id="t" points=1\n"""x."""\ndef f(:\n    pass\n', r"cell 3 't' tests \(line 8\): Python syntax error at line 10"),
    ('# %% nbgrader="locked" id="h"\n### BEGIN HIDDEN TESTS\nx=1\n### END HIDDEN TESTS\n'
     '# %% nbgrader="tests" id="t" points=1\n"""x"""\n', "hidden tests outside"),
    ('# %% nbgrader="tests" id="t" points=1\n"""x"""\n### BEGIN HIDDEN TESTS\nx=1\n', "unbalanced"),
    ('# %%\nx = 1\n', "no nbgrader=\"tests\" cell"),
])
def test_bad_sources_name_the_cell(tmp_path, body, message):
    with pytest.raises(LabSourceError, match=message):
        read_lab(_write(tmp_path, HEAD + body))


def test_missing_parameters_cell(tmp_path):
    with pytest.raises(LabSourceError, match="no papermill parameters cell"):
        read_lab(_write(tmp_path, '# %% nbgrader="tests" id="t" points=1\n"""x"""\nassert 1\n'))


def test_text_before_first_marker(tmp_path):
    with pytest.raises(LabSourceError, match="before the first"):
        read_lab(_write(tmp_path, "x = 1\n" + GOOD))


def test_unreadable_source(tmp_path):
    path = tmp_path / "lab-bin.py"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(LabSourceError, match="cannot read"):
        read_lab(path)


def test_strip_solution_markers():
    src = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    assert strip_solution_markers(src) == "def f():\n    return 1"
