"""Notebook hygiene: committed notebooks are canonical and carry no outputs.

Lab sources are text, but some notebooks are committed on purpose (test fixtures, examples). Each
must be valid nbformat, have cell ids, no outputs or execution counts (fixtures of *executed*
submissions are allowed outputs), no embedded images, and be written canonically (sorted keys,
one-space indent) so that diffs stay reviewable. ``techday fmt --fix`` rewrites them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat

from .. import atomicfile
from .labsrc import canonical_json

# Folders whose notebooks are allowed outputs: results measured on a device, grading fixtures that
# stand for executed submissions.
OUTPUTS_ALLOWED = ("benchmarks/results/", "tests/fixtures/")


def tracked_notebooks(root: Path) -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=root, capture_output=True, text=True, check=True)
        names = out.stdout.split()
    except (OSError, subprocess.CalledProcessError):
        names = [str(p.relative_to(root)) for p in root.rglob("*.ipynb") if "build" not in p.parts]
    return [root / n for n in names]


def problems(path: Path, root: Path) -> list[str]:
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    try:
        text = path.read_text(encoding="utf-8")
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        return [f"{rel}: not a valid notebook: {exc}"]
    found = []
    outputs_allowed = rel.startswith(OUTPUTS_ALLOWED)
    for i, cell in enumerate(nb.cells, 1):
        if not cell.get("id"):
            found.append(f"{rel}: cell {i} has no id")
        if cell.cell_type == "code" and not outputs_allowed:
            if cell.get("outputs"):
                found.append(f"{rel}: cell {i} has outputs")
            if cell.get("execution_count") is not None:
                found.append(f"{rel}: cell {i} has an execution count")
        if "image/png" in json.dumps(cell.get("outputs", [])) or "data:image/" in cell.source:
            found.append(f"{rel}: cell {i} embeds a base64 image")
    if text != canonical_json(nb):
        found.append(f"{rel}: not in canonical form (run `techday fmt --fix`)")
    return found


def fix(path: Path, root: Path) -> bool:
    """Rewrite ``path`` in canonical form, outputs cleared where they are not allowed. A file that is
    not a notebook (invalid JSON, a folder, missing) is left exactly as it is: False."""
    rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception:  # what problems() reports as "not a valid notebook": nothing to rewrite
        return False
    if not rel.startswith(OUTPUTS_ALLOWED):
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
    for i, cell in enumerate(nb.cells):
        cell.setdefault("id", f"cell-{i:03d}")
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.nbformat_minor)
    atomicfile.write_text(path, canonical_json(nb))  # fmt --fix rewrites committed notebooks
    return True
