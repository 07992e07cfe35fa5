"""Committed notebooks stay reviewable: canonical, cell ids, no outputs, no embedded images."""

import json

import nbformat

from techday.course.hygiene import fix, problems, tracked_notebooks
from tests.conftest import ROOT


def _nb(tmp_path, name="examples/x.ipynb", outputs=True):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", id="c1")
    if outputs:
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
        cell.execution_count = 3
    nb.cells = [cell]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))  # not canonical on purpose
    return path


def test_dirty_notebook_is_reported_and_fixed(tmp_path):
    path = _nb(tmp_path)
    found = problems(path, tmp_path)
    joined = "\n".join(found)
    for expected in ("has outputs", "execution count", "base64 image", "canonical form"):
        assert expected in joined
    fix(path, tmp_path)
    assert problems(path, tmp_path) == []


def test_fixtures_may_keep_outputs_but_not_images(tmp_path):
    path = _nb(tmp_path, "tests/fixtures/submitted-x.ipynb")
    fix(path, tmp_path)
    found = problems(path, tmp_path)
    assert found == ["tests/fixtures/submitted-x.ipynb: cell 1 embeds a base64 image"]


def test_invalid_notebook(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    assert "not a valid notebook" in problems(path, tmp_path)[0]


def test_repository_notebooks_are_clean():
    """Every tracked .ipynb passes; lab sources are .py so this list is usually short."""
    bad = [p for path in tracked_notebooks(ROOT) for p in problems(path, ROOT)]
    assert bad == []
    sources = list((ROOT / "labs").glob("*/*.ipynb"))
    assert sources == [], f"lab sources are jupytext .py files, not notebooks: {sources}"
