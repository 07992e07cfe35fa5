"""The results document, schema ``techday.bench/1``, and its validation.

::

    {
      "schema": "techday.bench/1",
      "run_id": "<32 hex>",              # one per run: a copied file is a duplicate
      "started": "2026-11-22T02:00:00+00:00", "seconds": 41.2,
      "mode": "quick" | "full" | "ci", "tier": "gpu" | "cpu",
      "label": "GPU (NVIDIA H100 80GB HBM3)" | "CPU (...): not a GPU figure",
      "fixture": true,                   # only in test fixtures: never a measurement
      "environment": {"tier", "device", "device_hash", "gpu": {...} | null, "driver_version",
                      "cuda_runtime", "versions": {"numba", "numba_cuda", "cupy", "torch", "numpy", ...}, ...},
      "limits": {"source", "dram_gbs", "fp32_gflops", "tf32_gflops", "fp16_gflops", "bf16_gflops",
                 "published": {...} | null, "notes": [...]},
      "results": [{"family", "kernel", "impl", "device", "dtype", "size", "status", "reason",
                   "bytes", "flops", "intensity", "metric": "gbs" | "gflops" | "us",
                   "seconds": {"median", "min", "max", "spread", "reps", "clock"},
                   "gbs", "gflops", "us", "value", "limit_key", "limit", "fraction", "label"}, ...]
    }

Rates: ``gbs = bytes / seconds / 1e9``, ``gflops = flops / seconds / 1e9``; ``fraction = value / limit``
(GPU tier only). :func:`validate` lists every problem of a document; the leaderboard leaves out a
file with any.
"""

from __future__ import annotations

import math
import re

from .limits import limit_for

SCHEMA = "techday.bench/1"
SCHEMA_FAMILY = "techday.bench/"
STATUSES = ("ok", "wrong", "error", "skipped", "checked")
METRICS = ("gbs", "gflops", "us")
MAX_FRACTION = 1.05  # a figure above 105 % of its device's limit is not believable

_TOP = {"schema": str, "run_id": str, "started": str, "mode": str, "tier": str, "environment": dict,
        "limits": dict, "results": list}
_RESULT = {"family": str, "kernel": str, "impl": str, "status": str}
_TIMED = {"device": str, "dtype": str, "bytes": int, "flops": int, "metric": str, "seconds": dict, "value": (int, float)}


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate(doc) -> list[str]:
    """Every reason ``doc`` is not a usable ``techday.bench/1`` document (empty when it is)."""
    if not isinstance(doc, dict):
        return [f"not a results document (a JSON {type(doc).__name__}, expected an object)"]
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_FAMILY):
        return [f"not a techday.bench results file (schema {schema!r})"]
    if schema != SCHEMA:
        return [f"schema mismatch: {schema!r}, this version reads {SCHEMA!r}"]
    problems = []
    for key, kind in _TOP.items():
        if not isinstance(doc.get(key), kind):
            problems.append(f"field {key!r} missing or not a {kind.__name__}")
    if problems:
        return problems
    if not re.fullmatch(r"[0-9a-f]{8,64}", doc["run_id"]):
        problems.append(f"run_id {doc['run_id']!r} is not a hex id")
    if doc["tier"] not in ("gpu", "cpu"):
        problems.append(f"tier {doc['tier']!r} is neither 'gpu' nor 'cpu'")
    if doc["tier"] == "gpu" and not isinstance(doc["environment"].get("gpu"), dict):
        problems.append("tier 'gpu' but the environment names no GPU")
    limits = doc["limits"]
    for i, r in enumerate(doc["results"]):
        where = f"results[{i}]"
        if not isinstance(r, dict):
            problems.append(f"{where} is not an object")
            continue
        for key, kind in _RESULT.items():
            if not isinstance(r.get(key), kind):
                problems.append(f"{where}: field {key!r} missing or not a {kind.__name__}")
        if r.get("status") not in STATUSES:
            problems.append(f"{where}: status {r.get('status')!r} is not one of {', '.join(STATUSES)}")
        if r.get("status") != "ok":
            continue
        where = f"{where} ({r.get('family')}.{r.get('kernel')} {r.get('impl')})"
        for key, kind in _TIMED.items():
            if not isinstance(r.get(key), kind) or isinstance(r.get(key), bool):
                problems.append(f"{where}: field {key!r} missing or of the wrong type")
        if r.get("metric") not in METRICS:
            problems.append(f"{where}: metric {r.get('metric')!r} is not one of {', '.join(METRICS)}")
            continue
        value = r.get("value")
        if not _num(value) or value <= 0:
            problems.append(f"{where}: value {value!r} is not a positive number")
            continue
        median = (r.get("seconds") or {}).get("median")
        if not _num(median) or median <= 0:
            problems.append(f"{where}: seconds.median {median!r} is not a positive number")
            continue
        # The figure must follow from the counts and the time (formula beside the kernel).
        amount = {"gbs": r.get("bytes"), "gflops": r.get("flops")}.get(r["metric"])
        if amount is not None and _num(amount):
            implied = amount / median / 1e9
            if abs(implied / value - 1) > 0.01:
                problems.append(f"{where}: {r['metric']} {value:.4g} does not follow from {amount} / "
                                f"{median:.4g} s ({implied:.4g})")
        # Against the device's own limit, as the file states it (GPU figures only).
        key = r.get("limit_key")
        intensity = r.get("intensity") if _num(r.get("intensity")) else None
        limit = limit_for(limits, key, intensity) if isinstance(key, str) else None
        if doc["tier"] == "gpu" and r.get("device") == "gpu" and _num(limit) and limit > 0 and r["metric"] != "us":
            if value > MAX_FRACTION * limit:
                problems.append(f"{where}: {value:.4g} is {value / limit:.0%} of the device's {key} limit "
                                f"{limit:.4g}, above {MAX_FRACTION:.0%}")
    published = limits.get("published") if isinstance(limits.get("published"), dict) else None
    if doc["tier"] == "gpu" and published:
        for key in ("dram_gbs", "fp32_gflops"):
            mine, theirs = limits.get(key), published.get(key)
            if _num(mine) and _num(theirs) and theirs > 0 and mine > 1.10 * theirs:
                problems.append(f"limits: {key} {mine:.4g} is above the published {published.get('name')} figure "
                                f"{theirs:.4g} by more than 10 %")
    return problems
