"""What each kernel of the suite moves and computes under a plan, from the kernel families themselves.

The leaderboard never takes a file's word for bytes, FLOPs, metric, limit or which device an
implementation runs on: it derives the plan from the run's tier, mode and recorded device
attributes (:func:`plan_for`), and asks the families (``benchmarks/*.py``) what their kernels count
under that plan (:func:`kernel_table`). The families are the one place those formulas live.

The table is built in a child process with the CUDA simulator on, so the board's own process never
imports Numba's CUDA target (a leaderboard runs on any machine, and choosing the tier stays with the
process that measures). Nothing from a results file reaches the child but the plan's integers,
which :func:`plan_for` computes itself within caps.

The child counts with the kit's own families (:func:`.families.kit_benchmarks_dir`, the folder beside
this package), never a course found from the working directory: an instructor who runs the board
from inside a student's folder holding ``course/syllabus.toml`` and a ``benchmarks/`` of its own
would otherwise run the student's Python and count with the student's formulas. It runs isolated
(``python -I``: no working directory, ``$PYTHONPATH`` or user site on its path), in the kit's folder,
with only this package's own checkout put first on its path.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

from .. import proctree
from .core import Plan

# Device attributes a plan is derived from, capped so a file cannot ask for an absurd plan.
MAX_L2_BYTES = 2**30
MAX_SM_COUNT = 1024
PLAN_KEYS = ("n", "side", "mm", "mm_cpu", "hist_n", "sweep", "transfer_bytes")

_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[2])
from techday.bench import families
families.pin(families.kit_benchmarks_dir())
from techday.bench.core import Plan
args = json.loads(sys.argv[1])
plan = Plan(**{**args, "sweep": tuple(args["sweep"])})
out = {}
for f in families.FAMILIES:
    for k in families.load(f).kernels(plan):
        out[k.key] = {"family": k.family, "kernel": k.name, "dtype": k.dtype, "bytes": int(k.bytes),
                      "flops": int(k.flops), "metric": k.metric, "limit_key": k.limit, "timer": k.timer,
                      "cold": bool(k.cold), "impls": {i.name: i.device for i in k.impls}}
print(json.dumps(out))
"""


def plan_for(tier: str, mode: str, l2_bytes: int = 0, sm_count: int = 0) -> Plan:
    """The plan ``techday bench`` uses for this tier and mode on a device with these attributes."""
    if tier == "cpu":
        l2_bytes, sm_count = 0, 0
    return Plan.for_device(tier, mode != "full", l2_bytes, sm_count, ci=(mode == "ci"))


def plan_dict(plan: Plan) -> dict:
    """The plan as a run records it in its results file."""
    return {"n": plan.n, "side": plan.side, "mm": plan.mm, "mm_cpu": plan.mm_cpu, "hist_n": plan.hist_n,
            "sweep": list(plan.sweep), "transfer_bytes": plan.transfer_bytes}


def kernel_table(plan: Plan) -> dict[str, dict]:
    """kernel key -> {bytes, flops, metric, limit_key, dtype, timer, cold, impls: {name: device}}."""
    # The device's L2 size and SM count reach the table only through the sizes they chose (n): two
    # devices with one plan share one table (and one counting process).
    args = {"tier": plan.tier, "quick": plan.quick, "n": plan.n, "side": plan.side, "mm": plan.mm,
            "mm_cpu": plan.mm_cpu, "hist_n": plan.hist_n, "sweep": list(plan.sweep),
            "transfer_bytes": plan.transfer_bytes, "l2_bytes": 0, "sm_count": 0}
    return json.loads(_table(json.dumps(args, sort_keys=True)))


# Enough for every table row's plans (a few dozen) and the leaderboard's cap of other plans besides:
# a folder that alternates between plans never makes the board count one twice.
@functools.lru_cache(maxsize=64)
def _table(args: str) -> str:
    root = Path(__file__).resolve().parents[2]  # this package's own checkout, which holds benchmarks/
    env = {k: v for k, v in os.environ.items() if k not in ("TECHDAY_BENCHMARKS", "TECHDAY_ROOT")}
    env["NUMBA_ENABLE_CUDASIM"] = "1"
    out = proctree.run([sys.executable, "-I", "-c", _CHILD, args, str(root)], 300, env=env, cwd=root)
    if out.returncode != 0:
        raise RuntimeError(f"the kernel families could not be counted: {out.stderr.strip()[-500:]}")
    return out.stdout.strip().splitlines()[-1]
