"""Write labs.json: each lab as a plain list of code cells, solutions filled in, course cells marked, for
run_labs.py on a GPU machine that has no Jupyter packages (no nbformat, no nbgrader).

    python grading/referee_check/make_data.py 01-numba-first-steps 05-cupy-interop ...
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from techday.course.labsrc import read_lab, strip_solution_markers

out = {}
for lab in sys.argv[1:]:
    nb, _ = read_lab(Path(__file__).resolve().parents[2] / "labs" / lab / f"{lab}.py")
    cells = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        m = c.metadata.get("nbgrader", {})
        src = c.source
        kind = None
        if m.get("solution"):
            src = strip_solution_markers(src)
        elif m.get("locked"):
            kind = "test" if m.get("grade") else "locked"
        if "parameters" in c.metadata.get("tags", []):
            src = 'tier = "gpu"\nscale = "ci"\n'
        cells.append({"key": m.get("grade_id"), "kind": kind, "source": src})
    out[lab] = cells
Path(str(Path(__file__).resolve().parent / "labs.json")).write_text(json.dumps(out))
print({k: len(v) for k, v in out.items()})
