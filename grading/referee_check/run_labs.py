"""On a GPU machine without Jupyter packages: run labs' solutions cell by cell in an IPython shell with the
grader's referee installed, as the sandboxed executor does (course cells through the referee's trigger), and report
tests done, errors, and every tripwire or change the referee recorded (false flags on the GPU tier).
A last run adds a cell that patches NumPy's and the course's test helpers: every test must then fail.

    python grading/referee_check/make_data.py LAB ...   # here, where nbformat is installed
    python3 grading/referee_check/run_labs.py gpu LAB,LAB,...   # there; results in $OUT/referee-gpu.json

IPython and its dependencies travel as wheels where the machine lacks them.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHEAT = ("import sys\nsys.modules['numpy'].allclose = lambda *a, **k: True\n"
         "lt = sys.modules.get('techday.labtools')\nif lt is not None:\n    lt.assert_close = lambda *a, **k: None\n")


def one(lab, tier, referee, cheat=False):
    sys.path.insert(0, ROOT)
    os.environ["TECHDAY_TIER"], os.environ["TECHDAY_SCALE"] = tier, "ci"
    if tier == "cpu":
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    import builtins
    from IPython.core.interactiveshell import InteractiveShell
    sh = InteractiveShell.instance()
    builtins.get_ipython = lambda: sh
    cells = json.load(open(os.path.join(HERE, "labs.json")))[lab]
    if tier == "cpu":
        cells = [dict(c, source=c["source"].replace('tier = "gpu"', 'tier = "cpu"')) for c in cells]
    if cheat:
        at = next(i for i, c in enumerate(cells) if c["kind"] is None and c["key"])
        cells.insert(at + 1, {"key": None, "kind": None, "source": CHEAT})
    d = tempfile.mkdtemp()
    key = os.urandom(32)
    if referee:
        cfg, rec = os.path.join(d, "c.json"), os.path.join(d, "r.log")
        course = {c["key"]: {"source": c["source"], "kind": c["kind"]} for c in cells if c["kind"]}
        json.dump({"key": key.hex(), "records": rec, "cells": course}, open(cfg, "w"))
        reader = open(rec, "a+b")  # as the executor reads: a descriptor opened before the referee refuses the file
        got = sh.run_cell(f"import techday.grading.referee as _r; _r.install({cfg!r}); del _r")
        assert got.success, got.error_in_exec
    res = {"lab": lab, "tier": tier, "referee": referee, "cheat": cheat, "errors": [], "tests": 0, "cells": len(cells)}
    t0 = time.time()
    for i, c in enumerate(cells):
        code = c["source"]
        if referee and c["kind"]:
            code = f'__import__("sys").audit("techday.referee.run", {c["key"]!r})'
        out = sh.run_cell(code, silent=False)
        if not out.success:
            e = out.error_in_exec or out.error_before_exec
            res["errors"].append(f"cell {i} {c['key']}: {type(e).__name__}: {str(e)[:200]}")
        res["tests"] += c["kind"] == "test"
    res["seconds"] = round(time.time() - t0, 1)
    if referee:
        from techday.grading.referee import read_records
        reader.seek(0)
        recs, problems = read_records(reader.read(), key)
        res["done"] = sum(1 for x in recs if x["kind"] == "done" and x["cell"] in {c["key"] for c in cells if c["kind"] == "test"})
        res["flags"] = [f"{x['kind']} {x['cell']} {x['detail']}" for x in recs if x["kind"] not in ("done", "installed")] + problems
    print("RESULT " + json.dumps(res), flush=True)

if __name__ == "__main__":
    if len(sys.argv) > 3:
        one(sys.argv[1], sys.argv[2], sys.argv[3] == "1", len(sys.argv) > 4)
        sys.exit(0)
    tier, labs = sys.argv[1], sys.argv[2].split(",")
    out = os.environ.get("OUT", "/tmp")
    results = []
    runs = [(lab, []) for lab in labs] + [(labs[0], ["cheat"])]
    for lab, extra in runs:
        for referee in ("1",):
            t0 = time.time()
            try:
                p = subprocess.run([sys.executable, __file__, lab, tier, referee, *extra], capture_output=True,
                                   text=True, timeout=150)
            except subprocess.TimeoutExpired as exc:
                p = subprocess.CompletedProcess(exc.cmd, -9, str(exc.stdout or ""), "timeout")
            line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            r = json.loads(line[-1][7:]) if line else {"lab": lab, "crash": p.returncode, "tail": (p.stdout + p.stderr)[-1500:]}
            r["wall"] = round(time.time() - t0, 1)
            results.append(r)
            print(json.dumps(r)[:1500], flush=True)
    json.dump(results, open(os.path.join(out, f"referee-{tier}.json"), "w"), indent=1)
