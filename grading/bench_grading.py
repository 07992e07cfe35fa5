"""Grading throughput: submissions per minute with ``techday grade autograde`` (1 and 2 workers, in
the sandbox and without it) against nbgrader's own serial ``autograde``, on the same submissions.

    python grading/bench_grading.py [--lab grade-lab] [--root tests/fixtures/course] [-k 6] [--scale ci]

K trainees hand in the lab: the solution, the untouched release, in turn (so scores are checked
too: every run must give the same scores as nbgrader's). Each configuration grades a fresh copy of
the built course root. Writes build/bench/grading.json and prints a table. A measurement, not a test:
run it on an otherwise idle machine and record the result in grading/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from techday.course.build import build  # noqa: E402
from techday.course.syllabus import load_course  # noqa: E402
from techday.grading.contract import solution_notebook  # noqa: E402


def scores(root: Path, lab: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: float(s.score) for s in gb.assignment_submissions(lab)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--root", type=Path, default=REPO / "tests" / "fixtures" / "course",
                    help="course repository (default: tests/fixtures/course; . for this course)")
    ap.add_argument("--lab", default="grade-lab", help="the lab whose hand-ins are graded (default: grade-lab)")
    ap.add_argument("-k", type=int, default=6, help="submissions (default: 6)")
    ap.add_argument("--scale", default="ci", help="ci or full: the lab's sizes (default: ci)")
    ap.add_argument("--tier", choices=("cpu", "gpu"), default="cpu",
                    help="gpu: the labs use the GPU, bound into the sandbox (a grading host with a GPU)")
    ap.add_argument("--repeat", type=int, default=7, help="runs of one notebook for the sandbox's own overhead")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench",
                    help="folder for grading.json (default: build/bench)")
    args = ap.parse_args(argv)

    from techday.grading.run import autograde
    from techday.tier import TierError, detect

    try:  # what the figures are figures of; no GPU, no GPU tier run
        found = detect(args.tier)
    except TierError as exc:
        print(exc)
        return 2
    device = (f"{found.gpus[0].name}, driver {found.driver_version}" if found.tier == "gpu" and found.gpus
              else f"CPU only ({found.cpu}), {found.reason}")

    work = args.out / "grading-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    repo = work / "repo"
    shutil.copytree(args.root, repo, ignore=shutil.ignore_patterns("build", ".git", "node_modules", "__pycache__",
                                                                 "*.egg-info"))
    if not (repo / "grading").exists():
        shutil.copytree(REPO / "grading", repo / "grading")
    course = load_course(repo)
    os.environ["TECHDAY_BUILD"] = str(work / "build")
    base = work / "build" / "course"
    result = build(course, [args.lab], root=base, sandboxed=False)  # the baseline: nbgrader's own Execute
    if args.lab in result.errors:
        print(result.errors[args.lab])
        return 1
    src = json.loads((base / "source" / args.lab / f"{args.lab}.ipynb").read_text(encoding="utf-8"))
    rel = json.loads((base / "release" / args.lab / f"{args.lab}.ipynb").read_text(encoding="utf-8"))
    for i in range(args.k):
        nb = solution_notebook(src, rel) if i % 2 == 0 else rel
        folder = base / "submitted" / f"trainee-{i:03d}" / args.lab
        folder.mkdir(parents=True)
        (folder / f"{args.lab}.ipynb").write_text(json.dumps(nb), encoding="utf-8")

    env = {"TECHDAY_TIER": args.tier, "TECHDAY_SCALE": args.scale, "MPLBACKEND": "Agg",
           "PYTHONPATH": str(REPO)}
    if args.tier == "cpu":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    spec = course.labs[args.lab]
    rows = []

    def fresh(name: str) -> Path:
        root = work / name
        shutil.copytree(base, root)
        text = (root / "nbgrader_config.py").read_text(encoding="utf-8").replace(str(base), str(root))
        (root / "nbgrader_config.py").write_text(text + f"c.Execute.timeout = {spec.cell_timeout(args.scale)}\n",
                                                 encoding="utf-8")
        return root

    root = fresh("nbgrader-serial")
    t0 = time.monotonic()
    # nbgrader's own command line, as an instructor would run it (not techday.nbgrader_cli)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", args.lab, "--force"], cwd=root,
                          env={**os.environ, **env}, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    reference = scores(root, args.lab)
    rows.append({"config": "nbgrader autograde (serial, no sandbox)", "workers": 1, "sandbox": False,
                 "seconds": round(seconds, 1), "ok": proc.returncode == 0})

    # --no-referee beside the same configuration: what the referee costs (its runs are all flagged).
    for workers, sandbox, referee in ((1, False, True), (1, True, False), (1, True, True), (2, True, True)):
        root = fresh(f"techday-w{workers}-{'sandbox' if sandbox else 'plain'}-{'referee' if referee else 'plain'}")
        t0 = time.monotonic()
        run = autograde(course, args.lab, root, args.tier, args.scale, workers=workers, sandbox=sandbox,
                        referee=referee, out=root.parent / (root.name + "-out"), report=lambda *a: None)
        seconds = time.monotonic() - t0
        same = scores(root, args.lab) == reference
        trusted = sandbox and referee
        rows.append({"config": f"techday grade autograde -w {workers}" + ("" if sandbox else " --no-sandbox")
                     + ("" if referee else " --no-referee"),
                     "workers": workers, "sandbox": sandbox, "referee": referee, "seconds": round(seconds, 1),
                     "ok": same and all(s.status == ("graded" if trusted else "flagged") for s in run.submissions)})
    # The sandbox alone: the same notebook (the solution) executed by the same executor, in bwrap and
    # without it, alternately, --repeat times each; the difference of the medians.
    from techday.grading.config import lab_limits
    from techday.grading.executor import run_notebook

    payload = json.dumps({"notebook": solution_notebook(src, rel), "course_cells": []})
    limits = lab_limits(course, args.lab, args.scale)
    plain_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    timing: dict[bool, list[float]] = {False: [], True: []}
    for i in range(2 * args.repeat):
        boxed_run = bool(i % 2)
        bench = work / f"overhead-{i}" / ".sandbox"
        bench.mkdir(parents=True)
        t0 = time.monotonic()
        result = run_notebook(payload, bench, limits, plain_env, boxed_run, args.tier == "gpu", {})
        timing[boxed_run].append(time.monotonic() - t0)
        if not result or not result.get("cells"):
            print(f"the overhead run {i} gave no result")
            return 1
    med = {k: statistics.median(v) for k, v in timing.items()}
    serial = rows[0]["seconds"]
    for row in rows:
        row["per_minute"] = round(60 * args.k / row["seconds"], 2)
        row["speedup_vs_nbgrader"] = round(serial / row["seconds"], 2)
    plain = next(r for r in rows if r["workers"] == 1 and not r["sandbox"] and r["config"].startswith("techday"))
    boxed = next(r for r in rows if r["workers"] == 1 and r["sandbox"])
    overhead = (boxed["seconds"] - plain["seconds"]) / args.k
    direct = med[True] - med[False]
    load = os.getloadavg()
    out = {"schema": "techday.bench-grading/1", "lab": args.lab, "k": args.k, "scale": args.scale, "tier": args.tier,
           "cpus": os.cpu_count(), "device": device, "loadavg": [round(x, 2) for x in load],
           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": sys.version.split()[0],
           "versions": {p: version(p) for p in ("nbgrader", "nbclient", "ipykernel")}, "rows": rows,
           "sandbox_overhead_s_per_submission": round(overhead, 2),
           "executor_seconds": {"plain": [round(x, 3) for x in timing[False]],
                                "sandbox": [round(x, 3) for x in timing[True]]},
           "sandbox_overhead_s_direct": round(direct, 3)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grading.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"{args.k} submissions of {args.lab} at scale {args.scale}, tier {args.tier}, on {os.cpu_count()} CPU(s), "
          f"load average {load[0]:.1f}")
    print(f"device: {device}")
    print("| configuration | seconds | submissions/min | vs nbgrader serial | scores as nbgrader |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['config']} | {row['seconds']} | {row['per_minute']} | {row['speedup_vs_nbgrader']}x | "
              f"{'yes' if row['ok'] else 'NO'} |")
    print(f"sandbox overhead: {overhead:+.2f} s per submission (techday -w 1, sandbox vs --no-sandbox)")
    print(f"sandbox overhead, direct: {direct:+.3f} s per notebook (executor + kernel + cells, median of "
          f"{args.repeat}: {med[True]:.2f} s in bwrap, {med[False]:.2f} s without)")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
