"""The review of the cells a trainee wrote (no code runs): what reaches into the kernel or the tests."""

from __future__ import annotations

import ast

# Names whose use in a trainee's cell is worth a human look: they reach into the kernel, the test
# machinery or the machine. The grade stands; the status says "flagged" and why.
SUSPECT_ATTRS = {"input_transformers_post", "input_transformers_cleanup", "ast_transformers", "showtraceback",
                 "run_cell", "run_cell_async", "set_custom_exc", "register", "settrace", "setprofile",
                 "do_execute", "_showtraceback", "excepthook", "displayhook"}
SUSPECT_NAMES = {"get_ipython", "__builtins__", "builtins", "ctypes", "socket", "urllib", "requests", "http",
                 "subprocess", "sys.settrace", "_exit", "gc", "signal"}



def _release_cells(release_nb: dict) -> dict[str, dict]:
    cells = {}
    for cell in release_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            cells[meta["grade_id"]] = cell
    return cells


def _kind(meta: dict) -> str:
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("solution"):
        return "solution"
    if meta.get("locked"):
        return "locked"
    return "other"



def review_findings(nb, release_nb: dict) -> list[str]:
    """Static look at the cells a trainee could write: what reaches into the kernel or the tests."""
    release_locked = _release_cells(release_nb)
    released = {cell.get("id"): "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                for cell in release_nb["cells"] if cell.get("id")}
    imported = set()  # names the locked cells (setup, imports, tests) bring in
    for cell in release_nb["cells"]:
        if cell.get("cell_type") != "code" or not cell.get("metadata", {}).get("nbgrader", {}).get("locked"):
            continue
        try:
            tree = ast.parse("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
    findings = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if cell.cell_type != "code" or (gid in release_locked and _kind(meta) in ("test", "locked")):
            continue  # restored from the source by nbgrader anyway
        if cell.get("id") in released and cell.source == released[cell["id"]]:
            continue  # as released: the course wrote it, not the trainee
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        hits = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in SUSPECT_ATTRS:
                hits.add(f"uses {node.attr}")
            if isinstance(node, ast.Name) and node.id in SUSPECT_NAMES:
                hits.add(f"uses {node.id}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    if a.name.split(".")[0] in SUSPECT_NAMES:
                        hits.add(f"imports {a.name}")
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in SUSPECT_NAMES:
                    hits.add(f"imports {node.module}")
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    # rebinding what a locked cell imported, or patching an imported module
                    if isinstance(target, ast.Name) and target.id in imported:
                        hits.add(f"rebinds {target.id}")
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                            and target.value.id in imported:
                        hits.add(f"patches {target.value.id}.{target.attr}")
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in imported:
                hits.add(f"redefines {node.name}")
        if hits:
            where = f"'{gid}'" if gid else f"cell {index + 1}"
            findings.append(f"{where} {', '.join(sorted(hits))}")
    return findings

