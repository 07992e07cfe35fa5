"""A hostile-results corpus: every file here tries to reach the leaderboard's ranking, crash it, or
exhaust it, and each must be left out with its own reason while the honest runs beside it are ranked.

The files are generated from the honest fixtures (tests/fixtures/bench, "fixture": true) in the test,
not committed: the 50 MB and 200,000-result files would not belong in the repository. Each case names
the attack and the words of the reason that answers it.
"""

import copy
import json
import math
import os
import re
import statistics

import pytest

from techday.bench.leaderboard import build_leaderboard
from techday.bench.schema import MAX_FILE_BYTES, ReadError, read_document
from techday.measure import relative_spread
from tests.conftest import ROOT

FIX = ROOT / "tests" / "fixtures" / "bench"
HONEST = ["gpu-h100-good.json", "gpu-h100-second-run.json", "gpu-a100-good.json"]
CPU_RUN = ROOT / "benchmarks" / "results" / "cpu-tier-quick-2core-ci.json"
H200_RUN = ROOT / "benchmarks" / "results" / "h200-quick-2026-12-04.json"


def base():
    """The honest H100 fixture as a participant hands it in: without the fixture mark (a room's folders
    never rank a fixture)."""
    return honest_doc("gpu-h100-good.json")


def honest_doc(name):
    doc = json.loads((FIX / name).read_text())
    doc.pop("fixture")
    return doc


def honest_bytes(name):
    return json.dumps(honest_doc(name)).encode()


def cpu_base():
    """The kit's CPU-tier run as a participant would hand it in: in the harness's current version
    (version 1 is read only where the kit keeps it), its summaries kept (see :func:`as_current`)."""
    return as_current(json.loads(CPU_RUN.read_text()))


def h200_base():
    """The kit's H200 run as a participant would hand it in (see :func:`cpu_base`)."""
    return as_current(json.loads(H200_RUN.read_text()))


def fit_samples(sec, key="", spread=None):
    """Repetitions whose median, fastest and slowest are exactly ``sec``'s and whose spread is ``spread``
    (within 1e-9; else the shape's own), shuffled by ``key``: what an attacker who does the maths
    writes behind a summary. Lower and upper halves run from the fastest and to the slowest through
    values drawn towards the median by a power ``g`` (found by bisection to give the spread)."""
    import random
    import statistics
    import zlib

    from techday.measure import relative_spread

    n, m, a, b = sec["reps"], sec["median"], sec["min"], sec["max"]
    h = n // 2

    def make(g):
        w = [((h - 1 - i) / (h - 1)) ** g if h > 1 else 1.0 for i in range(h)]
        lower = [m - (m - a) * x for x in w]
        upper = [m + (b - m) * x for x in reversed(w)]
        xs = lower + ([m] if n % 2 else []) + upper
        xs[0], xs[-1], xs[h - 1 if n % 2 == 0 else h] = a, b, m
        if n % 2 == 0:
            xs[h] = m
        return xs

    xs = make(1.0)
    if spread is not None and n >= 4:
        lo, hi = -30.0, 30.0
        for _ in range(200):
            mid = (lo + hi) / 2
            xs = make(math.exp(mid))
            if relative_spread(xs) > spread:
                lo = mid
            else:
                hi = mid
    assert statistics.median(xs) == m and min(xs) == a and max(xs) == b, (sec, xs)
    random.Random(zlib.crc32(key.encode())).shuffle(xs)
    return xs


def resample(r, keep_spread=False, min_reps=10):
    """Samples, audit repetitions and host times behind ``r``'s summary (after an edit of its times), so
    that every rule of the file's version-2 contract holds (at least ``min_reps`` repetitions); the
    spread is the samples' own unless kept."""
    from techday.measure import relative_spread

    sec = r["seconds"]
    sec["reps"] = max(sec["reps"], min_reps)
    sec.setdefault("calls", 1)
    key = f"{r['family']}.{r['kernel']} {r['impl']}"
    target = sec.get("spread") if keep_spread else None
    xs = fit_samples(sec, key, target)
    sec["samples"] = xs
    sec["spread"] = target if keep_spread and target is not None and abs(relative_spread(xs) - target) <= 1e-7 \
        else relative_spread(xs)
    m = sec["median"]
    sec["audit"] = [m * 1.001, m * 1.002, m * 0.999]
    timing = math.ceil(((sum(xs) + sum(sec["audit"])) * sec["calls"] * 1.01) * 1e3) / 1e3
    r["wall"] = {"setup": 0.05, "check": 0.01, "timing": timing, "total": round(0.06 + timing + 0.001, 3)}
    return r


def finish(doc):
    """``doc``'s own duration made long enough to hold its figures' host times (after edits)."""
    total = sum(r["wall"]["total"] for r in doc["results"]
                if isinstance(r, dict) and r.get("status") == "ok" and isinstance(r.get("wall"), dict))
    doc["seconds"] = max(doc.get("seconds") or 0.0, total + 1.0)
    return doc


def as_current(doc):
    """A version-1 document (the kit's committed runs) as the harness writes version 2: its summaries
    kept (median, fastest, slowest, spread; at least the 10 repetitions the harness takes), made-up
    repetitions that fit them, audit repetitions, host times, the labels and the start time the
    contract asks for. Made up: never a measurement."""
    from techday.bench.schema import SCHEMA, SCHEMA_SINCE
    from techday.tier import figure_label

    doc["schema"] = SCHEMA
    if doc["started"][:10] < SCHEMA_SINCE:
        doc["started"] = SCHEMA_SINCE + doc["started"][10:]
    env = doc["environment"]
    if doc["tier"] == "cpu":
        doc["label"] = figure_label(None, f"CPU: {env['cpu']}, {env['cpu_count']} cores")
    for r in doc["results"]:
        if r.get("status") == "ok":
            resample(r, keep_spread=True)
    return finish(doc)


def find(doc, key, impl):
    return next(r for r in doc["results"] if f"{r['family']}.{r['kernel']}" == key and r["impl"] == impl)


def retime(r, value):
    """Set a result's figure and make every recorded field agree with it, its repetitions too (an
    attacker who does the maths)."""
    amount = {"gbs": r["bytes"], "gflops": r["flops"]}.get(r["metric"])
    sec = amount / value / 1e9 if amount else value / 1e6
    fastest = sec * 0.9995  # repetitions that differ, as measured ones do
    r["seconds"].update(median=sec, min=fastest, max=sec * 1.01)
    r.update(value=value, best=amount / fastest / 1e9 if amount else fastest * 1e6, us=sec * 1e6)
    if r["metric"] in ("gbs", "gflops"):
        r[r["metric"]] = value
    if r.get("limit"):
        r["fraction"] = value / r["limit"]
    return resample(r)


def new_id(doc, c):
    doc["run_id"] = c * 32
    return doc


def scale_times(doc, factor):
    """Every timed result's times multiplied by ``factor``, its figures made to agree."""
    for r in doc["results"]:
        if r["status"] == "ok":
            amount = {"gbs": r["bytes"], "gflops": r["flops"]}.get(r["metric"])
            new = r["seconds"]["median"] * factor
            retime(r, amount / new / 1e9 if amount else new * 1e6)
    return doc


def edit(fn, source=base, finished=True):
    """A case: ``source()`` edited by ``fn``, its run's duration then made to hold its figures (unless
    not ``finished``: the duration is the attack)."""
    def make():
        doc = source()
        out = fn(doc)
        out = doc if out is None else out
        return finish(out) if finished and isinstance(out, dict) and isinstance(out.get("results"), list) else out

    return make


def lower_limit(d):
    d["limits"]["dram_gbs"] = 3000.0  # every fraction made to agree with the limit it wrote itself: 98 %
    for r in d["results"]:
        if r.get("limit_key") == "dram_gbs" and r["status"] == "ok":
            r.update(limit=3000.0, fraction=r["value"] / 3000.0)


def double_bytes(d):
    for r in d["results"]:
        if r["status"] == "ok" and r["metric"] == "gbs":
            retime(r, 1500.0)  # a slow run, doubled to 3,000 GB/s: inside the H100's limit
            r["bytes"] *= 2
            r["value"] *= 2
            r["gbs"] *= 2
            r["best"] *= 2


def cpu_device_in_gpu_run(d):
    r = retime(find(d, "stream.triad", "numba-cuda"), 9000.0)  # above any limit, claimed as a CPU figure
    r.update(device="cpu", label="CPU", limit=None, fraction=None)


def tiny_latency(d):
    retime(find(d, "latency.empty-launch", "cupy"), 0.001)


def own_fraction(d):
    find(d, "stream.triad", "numba-cuda")["fraction"] = 0.99


def fast_best(d):
    find(d, "stream.triad", "numba-cuda")["seconds"]["min"] /= 10  # median believable, best 29 TB/s
    find(d, "stream.triad", "numba-cuda")["best"] *= 10
    resample(find(d, "stream.triad", "numba-cuda"))


def triad_result(d):
    return find(d, "stream.triad", "numba-cuda")


def mig_slice(d):
    g = d["environment"]["gpu"]
    g.update(name="NVIDIA H100 80GB HBM3 MIG 1g.10gb", sm_count=16, memory_bytes=int(0.975 * 10 * 2**30))
    d["environment"]["device"] = g["name"]
    d["label"] = f"GPU ({g['name']})"
    for key in ("dram_gbs", "fp32_gflops", "tf32_gflops", "fp16_gflops", "bf16_gflops"):
        d["limits"][key] = None
    for r in d["results"]:
        if r["status"] == "ok":
            r.update(limit=None, fraction=None)


def raised_clocks(d):
    d["environment"]["gpu"]["memory_clock_mhz"] = 5238.0  # twice the H100's: a limit of 6.7 TB/s
    d["limits"]["dram_gbs"] = d["limits"]["published"]["dram_gbs"] = 6704.6
    retime(find(d, "stream.triad", "numba-cuda"), 6000.0)["limit"] = 6704.6
    find(d, "stream.triad", "numba-cuda")["fraction"] = 6000.0 / 6704.6


def smaller_plan(d):
    d["plan"]["n"] //= 2
    for r in d["results"]:
        if r.get("family") == "stream" and r["status"] == "ok":
            r["bytes"] //= 2
            r["flops"] //= 2
            r["seconds"].update({k: v / 2 for k, v in r["seconds"].items() if k in ("median", "min", "max")})
            resample(r)


def gpu_timed_on_cpu_tier(d):
    r = find(d, "stream.triad", "numba-cuda")
    r.update(status="ok", device="gpu", dtype="float64", bytes=3 * 8 * d["plan"]["n"], flops=2 * d["plan"]["n"],
             metric="gbs", limit_key="dram_gbs", value=10.0, seconds={"median": 3 * 8 * d["plan"]["n"] / 1e10,
             "min": 3 * 8 * d["plan"]["n"] / 1.01e10, "max": 3 * 8 * d["plan"]["n"] / 0.99e10, "spread": 0.0, "reps": 20,
             "clock": "perf_counter"}, label="CPU")
    resample(r)


def cpu_above_ceiling(d):
    retime(find(d, "stream.triad", "numba-cpu"), 5000.0)


def as_mig(d, name, sms, gbs, gflops, c):
    """The H100 run as a MIG slice ``name`` with ``sms`` SMs, its memory-bound figures at ``gbs`` and its
    matrix product at ``gflops``, its stated limits left out (the board recomputes them)."""
    g = d["environment"]["gpu"]
    g.update(name=name, sm_count=sms, memory_bytes=int(0.975 * int(name.rsplit(".", 1)[1][:-2]) * 2**30))
    d["environment"]["device"] = name
    d["label"] = f"GPU ({name})"
    for key in ("dram_gbs", "fp32_gflops", "tf32_gflops", "fp16_gflops", "bf16_gflops"):
        d["limits"][key] = None
    for r in d["results"]:
        if r["status"] == "ok":
            if r["metric"] != "us":
                retime(r, gbs if r["metric"] == "gbs" else gflops)
            r.update(limit=None, fraction=None)
    return new_id(d, c)


def host_link(d):
    _jitter(new_id(d, "3"), 3)
    retime(find(d, "transfer.h2d-pinned", "numba-cuda"), 4000.0)  # under the H200's 4.8 TB/s of DRAM


def partial_replay(d):
    """Two figures of the honest H100 run kept with every recorded time, the rest of the run its own."""
    _jitter(new_id(d, "2"), 4)
    honest = base()
    for impl in ("numba-cuda", "cupy"):
        mine, theirs = find(d, "stream.triad", impl), find(honest, "stream.triad", impl)
        mine.update({k: copy.deepcopy(theirs[k]) for k in ("seconds", "value", "best", "gbs", "fraction")})


# name -> (how the file is made, words of the reason that must answer it)
CASES = {
    # The attacks of the issue.
    "lowered-limit": (edit(lower_limit), "limits.dram_gbs: the file states 3000"),
    "doubled-bytes": (edit(double_bytes), "but the plan gives"),
    "cpu-device-in-gpu-run": (edit(cpu_device_in_gpu_run), "marked device 'cpu', but numba-cuda runs on the gpu"),
    "latency-0.001us": (edit(tiny_latency), "below the 0.5 us"),
    "own-fraction": (edit(own_fraction), "the file's fraction 0.99 is not the recomputed"),
    "nudged-copy-new-run-id": (edit(lambda d: scale_times(new_id(d, "9"), 1.001)), "near-duplicate"),
    "deeply-nested": (lambda: b'{"schema": "techday.bench/1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                      "levels deep, above the cap"),
    "string-for-number": (edit(lambda d: triad_result(d).update(value="2950")), "results[0].value is '2950'"),
    "non-string-gpu-name": (edit(lambda d: d["environment"]["gpu"].update(name=12345)),
                            "environment.gpu.name is 12345, expected a string"),
    "200k-results": (lambda: json.dumps({**base(), "results": [{"family": "stream", "kernel": "copy", "impl": "numpy",
                                                                "status": "skipped"}] * 200_000}).encode(),
                     "above the cap"),
    "200k-empty-results": (lambda: json.dumps({**base(), "results": [{}] * 200_000}).encode(),
                           "values, above the cap of 150,000"),  # counted before the parse
    "50MB-gpu-name": (lambda: json.dumps({**base(), "label": "x" * 50_000_000}).encode(), "above the cap of"),
    "nan": (lambda: json.dumps(edit(lambda d: triad_result(d).update(value=float("nan")))()).encode(),
            "NaN is not a number"),
    "infinity": (lambda: json.dumps(edit(lambda d: triad_result(d).update(value=float("inf")))()).encode(),
                 "Infinity is not a number"),
    "negative-times": (edit(lambda d: triad_result(d)["seconds"].update(median=-1e-4, min=-1e-4)),
                       "seconds are not all positive"),
    "unknown-benchmark": (edit(lambda d: triad_result(d).update(kernel="triad-fast")), "no benchmark 'stream.triad-fast' in this suite"),
    # More of our own.
    "scaled-copy-new-run-id": (edit(lambda d: scale_times(new_id(d, "8"), 0.97)), "rescaled copy"),
    "unknown-top-key": (edit(lambda d: d.update(boost=2.0)), "unknown key 'boost'"),
    "unknown-result-key": (edit(lambda d: triad_result(d).update(fraction_override=0.5)),
                           "unknown key 'fraction_override'"),
    "unknown-implementation": (edit(lambda d: triad_result(d).update(impl="hand-tuned")),
                               "no implementation 'hand-tuned'"),
    "duplicate-key": (lambda: json.dumps(base()).replace('"value": 2950.0', '"value": 2950.0, "value": 99999.0', 1)
                      .encode(), "appears twice"),
    "1e999": (lambda: json.dumps(base()).replace('"value": 2950.0', '"value": 1e999', 1).encode(),
              "overflows to infinity"),
    "huge-integer": (lambda: json.dumps(base()).replace('"reps": 20', '"reps": ' + "9" * 5000, 1).encode(),
                     "an integer of 5000 digits"),
    "bool-for-number": (edit(lambda d: triad_result(d).update(value=True)), "results[0].value is True"),
    "terminal-escape": (edit(lambda d: d["notes"].append("\x1b[2J\x1b[31mranked first")), "control"),
    "rich-markup-gpu-name": (edit(lambda d: d["environment"]["gpu"].update(name="[bold red]H100[/]")),
                             "not in the project's table"),
    "unknown-gpu": (edit(lambda d: d["environment"]["gpu"].update(name="NVIDIA Mystery 9000")),
                    "'NVIDIA Mystery 9000' is not in the project's table"),
    "raised-memory-clock": (edit(raised_clocks), "device attributes do not match"),
    "shrunk-l2": (edit(lambda d: d["environment"]["gpu"].update(l2_bytes=40 * 2**20)), "bytes of L2"),
    "smaller-plan": (edit(smaller_plan), "plan differs"),
    "one-repetition": (edit(lambda d: triad_result(d)["seconds"].update(
        reps=1, samples=[triad_result(d)["seconds"]["median"]], min=triad_result(d)["seconds"]["median"],
        max=triad_result(d)["seconds"]["median"], spread=0.0)), "1 timed repetitions"),
    "wrong-clock": (edit(lambda d: triad_result(d)["seconds"].update(clock="perf_counter")),
                    "timed with perf_counter, but the harness times it with cuda-event"),
    "best-beyond-limit": (edit(fast_best), "not physically possible"),
    "simulator-status-on-gpu": (edit(lambda d: triad_result(d).update(status="checked")), "'checked' (simulator"),
    "mig-slice-whole-gpu-figure": (edit(mig_slice), "above 105%"),
    "gpu-timed-on-cpu-tier": (edit(gpu_timed_on_cpu_tier, cpu_base), "a GPU implementation timed on the CPU tier"),
    "cpu-above-ceiling": (edit(cpu_above_ceiling, cpu_base), "CPU ceiling"),
    "cpu-tier-claims-gpu": (edit(lambda d: d.update(tier="cpu")), "tier 'cpu' but the environment names a GPU"),
    "not-an-object": (lambda: b"[1, 2, 3]", "not a results document"),
    "result-not-an-object": (edit(lambda d: d["results"].append("ok")), "results[6] is 'ok', expected an object"),
    "empty-file": (lambda: b"", "malformed JSON"),
    "not-utf8": (lambda: b"\xff\xfe{\x00", "not UTF-8"),
    "repeated-result": (edit(lambda d: d["results"].append(retime(copy.deepcopy(triad_result(d)), 3100.0))),
                        "repeats results[0]"),
    "run-id-not-hex": (edit(lambda d: new_id(d, "z")), "is not a hex id"),
    "schema-other-version": (edit(lambda d: d.update(schema="techday.bench/3")), "schema mismatch"),
    # A host-to-device copy at 4 TB/s: the DRAM bound let it through; it crosses a PCIe link of 63 GB/s.
    "h2d-beyond-the-host-link": (edit(host_link, h200_base), "host link (PCIe x16, one direction) limit 63"),
    # A 1g MIG slice that claims every SM of the GPU (a whole H100's FP32 rate on a seventh of it).
    "mig-1g-with-every-sm": (edit(lambda d: as_mig(d, "NVIDIA H100 80GB HBM3 MIG 1g.10gb", 132, 400.0, 50200.0, "4")),
                             "a 1g slice of the H100 SXM5 has at most 22 SMs, not 132"),
    # A 1g MIG slice that names all 80 GB, so its share of the bandwidth is the whole GPU's.
    "mig-1g-owning-all-memory": (edit(lambda d: as_mig(d, "NVIDIA H100 80GB HBM3 MIG 1g.80gb", 16, 3000.0, 8000.0, "6")),
                                 "owns at most 2 eighths of its memory, not 80 GB"),
    # A name the table matches word by word, its other characters passed through and shown on the board.
    "decorated-gpu-name": (edit(lambda d: _jitter(new_id(d, "1"), 5)["environment"]["gpu"].update(
        name="NVIDIA H100 80GB HBM3 \u2605 \u0420\u0415\u041a\u041e\u0420\u0414")), "holds characters no driver name has"),
    # Attributes a limit is computed from, left out: the board failed on them (an internal error).
    "gpu-without-cc": (edit(lambda d: d["environment"]["gpu"].pop("cc") and d), "environment.gpu: missing cc"),
    "cpu-run-without-device": (edit(lambda d: d["environment"].pop("device") and d, cpu_base), "environment: missing device"),
    # Two figures of another run, every time kept, beside the copier's own: too few for the whole-run rules.
    "partial-replay": (edit(partial_replay), "replayed figures: 2 timed figures"),
    # The kit's own H200 run handed in as one's own: verbatim under a new run id, and nudged by 0.2 %.
    "kit-run-new-run-id": (edit(lambda d: new_id(d, "e"), h200_base),
                           "a copy of the course kit's own run: the same results as benchmarks/results/h200-"),
    "kit-run-nudged": (edit(lambda d: scale_times(new_id(d, "f"), 1.002), h200_base),
                       "a copy of the course kit's own run: near-duplicate"),
    # A CPU-tier run shown under another device's name than the CPU it records, or past what its CPUs move.
    "cpu-run-named-as-a-gpu": (edit(lambda d: _jitter(new_id(d, "d"), 8)["environment"].update(device="NVIDIA H200"),
                                    cpu_base), "is not the CPU and count the run records"),
    "2-cpu-triad-at-1.9TBs": (edit(lambda d: retime(find(_jitter(new_id(d, "7"), 9), "stream.triad", "numba-cpu"),
                                                    1900.0) and d, cpu_base), "CPU ceiling of 2 CPUs"),
    # A GPU run that says it ran in the CUDA simulator (which never times anything).
    "gpu-run-in-the-simulator": (edit(lambda d: _jitter(new_id(d, "0"), 7)["environment"].update(simulator=True)),
                                 "a GPU-tier run in the CUDA simulator"),
    # An honest run's figures relabelled: its triad's Numba CUDA and CuPy figures swapped (replays were
    # matched name by name), and the kit's H200 run with figures moved to kernels of equal bytes.
    "swapped-implementations": (edit(lambda d: _relabel("_swap_implementations", new_id(d, "c"))),
                                "replayed figures: 2 timed figures"),
    "kit-run-moved-kernels": (edit(lambda d: _relabel("_rotate_kernels", new_id(d, "b")), h200_base),
                              "a copy of the course kit's own run: replayed figures"),
    # The honest run with its triad's labels swapped and every time nudged by 0.2 %: no time replayed.
    "swapped-and-nudged": (edit(lambda d: _relabel("_nudge", _relabel("_swap_keeping_all", new_id(d, "a")))),
                           "relabelled copy"),
    # 2 MiB of numbers, within the size and depth caps: parsed one Python call each before the schema.
    "a-million-numbers": (lambda: b'{"notes": [' + b"1," * (MAX_FILE_BYTES // 2 - 20) + b"1]}",
                          "values, above the cap"),
}

# Files whose every figure is well formed, under its limit and consistent with its counts, that no run of
# the harness writes. Each group was ranked by the board before its defence (the test's name says which).
CONTRACT_CASES = {
    # A summary with nothing behind it: version 1 (no repetitions recorded) from a room; a median edited
    # without its samples; samples written rather than measured; one figure's samples pasted into another.
    "version-1-in-a-room": (edit(lambda d: _as_version_1(_jitter(new_id(d, "1"), 51))),
                            "schema mismatch: 'techday.bench/1' was written by an older harness"),
    "median-without-its-samples": (edit(lambda d: _faster_summary_only(_jitter(new_id(d, "2"), 52))),
                                   "is not that of its 20 samples"),
    "samples-written-not-measured": (edit(lambda d: _written_samples(_jitter(new_id(d, "3"), 53), "latency.empty-launch",
                                                                     "cupy")), "distinct values among 20 perf_counter"),
    "samples-pasted-between-kernels": (edit(lambda d: _pasted_samples(_jitter(new_id(d, "4"), 54))),
                                       "the same 20 repetitions, in the same order, as results[0]"),
    # Repetitions, calls and host times no run of the harness has.
    "seven-repetitions": (edit(lambda d: _reps(_jitter(new_id(d, "5"), 55), "stream.triad", "numba-cuda", 7)),
                          "7 timed repetitions; the harness takes 10 to 200 with cuda-event"),
    "150-host-repetitions": (edit(lambda d: _reps(_jitter(new_id(d, "6"), 56), "latency.empty-launch", "cupy", 150)),
                             "150 timed repetitions; the harness takes 10 to 100 with perf_counter"),
    "calls-on-a-host-clock": (edit(lambda d: _field(_jitter(new_id(d, "7"), 57), "latency.empty-launch", "cupy",
                                                    calls=5000)), "5000 back-to-back calls per repetition; the "
                                                                  "harness makes 1 with perf_counter"),
    "cold-kernel-timed-warm": (edit(lambda d: _field(_jitter(new_id(d, "8"), 58), "stream.triad", "numba-cuda",
                                                     calls=50)), "the harness times this kernel cold"),
    "repetitions-outlast-their-timing": (edit(lambda d: _wall(_jitter(new_id(d, "9"), 59), timing=0.001)),
                                         "more than the 0.001 s of host time it records for its timing"),
    "figures-outlast-the-run": (edit(lambda d: _jitter(new_id(d, "a"), 60).update(seconds=0.1), finished=False),
                                "more than the run's own 0.1 s"),
    "stamped-before-its-version": (edit(lambda d: _jitter(new_id(d, "b"), 61).update(started="2026-11-30T09:00:00+00:00")),
                                   "before techday.bench/2 existed"),
    "spread-wider-than-its-range": (edit(lambda d: triad_result(_jitter(new_id(d, "c"), 62))["seconds"].update(
        spread=0.5)), "spread 0.5) is not that of its 20 samples"),
    "audit-left-behind": (edit(lambda d: _scaled_samples(_jitter(new_id(d, "d"), 63), "stream.triad", "numba-cpu", 0.25),
                               cpu_base), "its fastest audit repetition (outputs poisoned before it) took 4.0 times"),
    # Figures physics ties together, out of order: an H200's fma-64 at 60 TFLOP/s (under the 67 TFLOP/s
    # limit), 4 times fma-16's FMAs in two thirds of its time.
    "roofline-sweep-out-of-order": (edit(lambda d: retime(find(_jitter(new_id(d, "e"), 64), "roofline.fma-64",
                                                               "numba-cuda"), 60000.0) and d, h200_base),
                                    "times the FMAs on the same bytes cannot take less time"),
    # Labels that present CPU figures as GPU figures.
    "cpu-run-labelled-as-gpu": (edit(lambda d: _jitter(new_id(d, "f"), 65).update(label="GPU (NVIDIA H200)"), cpu_base),
                                "is not the one the harness writes for this CPU-tier run"),
    "cpu-figures-labelled-gpu": (edit(lambda d: _labelled(_jitter(new_id(d, "10"), 66), "GPU"), cpu_base),
                                 "but the harness labels a cpu figure of a cpu-tier run 'CPU'"),
    # A device no real part is: another part's memory, a driver older than the architecture, a CUDA
    # runtime newer than the driver, a driver API older than its own driver, a driver that is not a version.
    "h100-with-an-a100s-memory": (edit(lambda d: _jitter(new_id(d, "11"), 67)["environment"]["gpu"].update(
        memory_bytes=42314694656)), "39.4 GiB of memory (the H100 SXM5: 80 GB"),
    "hopper-on-a-2019-driver": (edit(lambda d: _jitter(new_id(d, "12"), 68)["environment"].update(
        driver_version="418.67", cuda_driver_api="10.1", cuda_runtime="10.1")), "needs branch 520 or later"),
    "runtime-newer-than-driver": (edit(lambda d: _jitter(new_id(d, "13"), 69)["environment"].update(
        driver_version="535.104.05", cuda_driver_api="12.2", cuda_runtime="13.0"), h200_base),
                                  "a runtime of a newer major version does not run on it"),
    "driver-api-older-than-its-driver": (edit(lambda d: _jitter(new_id(d, "14"), 70)["environment"].update(
        cuda_driver_api="12.2", cuda_runtime="12.2"), h200_base), "whose own libcuda reports 13.0"),
    "driver-that-is-not-a-version": (edit(lambda d: _jitter(new_id(d, "15"), 71)["environment"].update(
        driver_version="fixture")), "driver_version 'fixture' is not a version a driver reports"),
}


def _as_version_1(doc):
    """``doc`` as version 1 writes it: no repetitions behind its summaries."""
    doc["schema"] = "techday.bench/1"
    for r in doc["results"]:
        if r["status"] == "ok":
            r["seconds"].pop("samples", None)
            r["seconds"].pop("audit", None)
    return doc


def _faster_summary_only(doc):
    """The triad's median, fastest and slowest 10 % faster, every figure made to agree; its samples left."""
    r = triad_result(doc)
    xs = r["seconds"]["samples"]
    retime(r, r["value"] * 1.1)
    r["seconds"]["samples"] = xs
    return doc


def _written_samples(doc, key, impl):
    """Repetitions written by hand: the median 12 times, then a few values to give the fastest and slowest."""
    r = find(doc, key, impl)
    sec = r["seconds"]
    m, a, b = sec["median"], sec["min"], sec["max"]
    sec["samples"] = [a, a * 1.0001, a * 1.0002] + [m] * 12 + [b * 0.9998, b * 0.9999, b, b, b]
    from techday.measure import relative_spread

    sec["spread"] = relative_spread(sec["samples"])
    return doc


def _pasted_samples(doc):
    """The Numba CUDA triad's repetitions handed in as CuPy's too (the same figure, under another name)."""
    a, b = find(doc, "stream.triad", "numba-cuda"), find(doc, "stream.triad", "cupy")
    b["seconds"] = copy.deepcopy(a["seconds"])
    for k in ("value", "best", "gbs", "fraction"):
        b[k] = a[k]
    return doc


def _reps(doc, key, impl, n):
    """One figure of ``n`` repetitions, its summary theirs."""
    r = find(doc, key, impl)
    r["seconds"]["reps"] = n
    resample(r, min_reps=1)
    return doc


def _field(doc, key, impl, **seconds):
    r = find(doc, key, impl)
    r["seconds"].update(seconds)
    resample(r)
    return doc


def _labelled(doc, label):
    for r in doc["results"]:
        if r["status"] == "ok":
            r["label"] = label
    return doc


def _wall(doc, **wall):
    triad_result(doc)["wall"].update(wall)
    return doc


def _scaled_samples(doc, key, impl, factor):
    """One figure's repetitions all ``factor`` times as long (its summary and figures made to agree),
    its audit repetitions left as the run recorded them."""
    r = find(doc, key, impl)
    audit = list(r["seconds"]["audit"])
    amount = {"gbs": r["bytes"], "gflops": r["flops"]}[r["metric"]]
    retime(r, amount / (r["seconds"]["median"] * factor) / 1e9)
    r["seconds"]["audit"] = audit
    return doc


def _relabel(name, doc):
    from tests.unit import test_bench_attacks

    return getattr(test_bench_attacks, name)(doc)


def _write(folder, name, payload):
    path = folder / f"{name}.json"
    if isinstance(payload, (bytes, bytearray)):
        path.write_bytes(payload)
    else:
        path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    honest = tmp_path_factory.mktemp("honest")
    for name in HONEST:
        (honest / name).write_bytes(honest_bytes(name))
    paths = {name: _write(folder, name, make()) for name, (make, _) in {**CASES, **CONTRACT_CASES}.items()}
    os.symlink("/dev/zero", folder / "dev-zero.json")  # an endless file behind an innocent name
    (folder / "a-folder.json").mkdir()
    board = build_leaderboard([honest, CPU_RUN, folder])  # the kit's CPU run where it lies: a copy is a copy
    return board, paths


def test_every_hostile_file_is_left_out_with_its_reason_and_the_honest_runs_are_ranked(corpus):
    board, paths = corpus
    reasons = {r.path.name: r.reason for r in board.rejected}
    tried = len(paths) + 2
    crashed = [n for n, why in reasons.items() if "internal error" in why]
    ranked = [r.path.name for r in board.runs if r.path.parent == paths["nan"].parent]
    wrong = {name: reasons.get(f"{name}.json") for name, (_, words) in {**CASES, **CONTRACT_CASES}.items()
             if words not in (reasons.get(f"{name}.json") or "")}
    assert not wrong, wrong
    assert "symbolic link: not followed" in reasons["dev-zero.json"] and "unreadable" in reasons["a-folder.json"]
    assert crashed == [] and ranked == []
    assert sorted(r.path.name for r in board.runs) == sorted(HONEST + [CPU_RUN.name])
    print(f"\nhostile-results corpus: {tried} tried, {len(board.rejected)} rejected with a reason, "
          f"{len(crashed)} crashed the board, {len(ranked)} ranked")
    assert len(board.rejected) == tried


# The contract cases a check of any version answers (labels, the device, the roofline sweep, a cold
# kernel's calls); the others only the version-2 contract (the repetitions behind each figure) answers.
ANY_VERSION = {"cold-kernel-timed-warm", "roofline-sweep-out-of-order", "cpu-run-labelled-as-gpu",
               "cpu-figures-labelled-gpu", "h100-with-an-a100s-memory", "hopper-on-a-2019-driver",
               "runtime-newer-than-driver", "driver-api-older-than-its-driver", "driver-that-is-not-a-version"}


@pytest.mark.parametrize("name", sorted(CONTRACT_CASES))
def test_each_contract_case_is_answered_by_its_own_defence(name):
    # The defence shown failing without it: each case as version 1 writes it (no repetitions behind its
    # figures), the only version the board read before, judged as the kit's own committed runs are.
    # Those only the version-2 contract answers pass that way (the board before ranked all 21: every
    # figure well formed, under its limit, agreeing with its counts); the others are refused whatever
    # the version, for the same reason.
    from techday.bench.verify import Refused, verify

    make, words = CONTRACT_CASES[name]
    doc = make()
    if name != "version-1-in-a-room":
        _as_version_1(doc)
    if name in ANY_VERSION:
        with pytest.raises(Refused, match=re.escape(words)):
            verify(doc, legacy=True)
    else:
        assert verify(doc, legacy=True).figures, name


def test_an_honest_figure_in_two_spells_is_ranked_whatever_its_spread(tmp_path):
    # Wrong answer caught the other way: an honest CPU-tier run on this 2-core machine under a load of 8
    # to 12 was left out, "spread 1945.09 is not a spread": its parallel Numba stencil took 0.03 to 0.07
    # ms a call, then 124 to 144 ms while a thread waited for a core (its repetitions below, scaled by the
    # 16 times the bytes of the quick plan: the run was lab 08's ci plan), so the interquartile range was
    # 1,945 times the median. A spread cap belongs to files whose spread has nothing behind it (version
    # 1); a version-2 spread is its repetitions' own, checked against them.
    doc = _jitter(new_id(cpu_base(), "5"), 5)
    r = find(doc, "stencil.jacobi5", "numba-cpu")
    xs = [16 * x * 1e-3 for x in (135.996, 123.999, 143.932, 128.428, 0.062, 0.034, 0.029, 0.071, 0.027, 0.026)]
    med = statistics.median(xs)
    sec = r["seconds"]
    sec.update(samples=xs, reps=len(xs), median=med, min=min(xs), max=max(xs), spread=relative_spread(xs),
               audit=[med, med * 1.1, med * 0.9])
    r.update(value=r["bytes"] / med / 1e9, best=r["bytes"] / min(xs) / 1e9, gbs=r["bytes"] / med / 1e9)
    r["wall"].update(timing=10.0, total=10.1)
    assert sec["spread"] > 1000
    (tmp_path / "spells.json").write_text(json.dumps(finish(doc)))
    board = build_leaderboard([tmp_path / "spells.json"])
    assert len(board.runs) == 1, board.rejected_lines()


def test_honest_figures_are_recomputed_and_a_cpu_run_is_never_ranked_with_gpus(corpus):
    board, _ = corpus
    gpu = board.rankings("gpu")["stream.triad"]
    assert [row["file"].rsplit("/", 1)[-1] for row in gpu] == HONEST  # 2950, 2900, 1370 GB/s
    assert all(row["fraction"] == pytest.approx(row["value"] / 3352.3, rel=1e-3) for row in gpu[:2])
    cpu = board.rankings("cpu")["stream.triad"]
    assert len(cpu) == 1 and cpu[0]["fraction"] is None


def test_size_caps_answer_before_any_parse(tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as f:  # a sparse file: 50 MB on paper, nothing to read
        f.truncate(50_000_000)
    with pytest.raises(ReadError, match="50,000,000 bytes, above the cap"):
        read_document(big)
    assert MAX_FILE_BYTES < 50_000_000


def test_the_mig_slice_limit_is_its_share_of_the_bandwidth():
    from techday.bench.limits import device_limits
    from techday.gpuspecs import by_name
    from techday.tier import GpuInfo

    spec = by_name("A100 40GB SXM")

    def info(name, sms):
        return GpuInfo(0, name, spec.cc, 10 * 2**30, sms, spec.clock_khz, spec.memory_clock_khz, spec.bus_width_bits,
                       spec.l2_mib * 2**20, 1024, 2048, 32, 0, True, 0)

    whole = device_limits(info("NVIDIA A100-SXM4-40GB", 108))
    half = device_limits(info("NVIDIA A100-SXM4-40GB MIG 3g.20gb", 42))
    eighth = device_limits(info("NVIDIA A100-SXM4-40GB MIG 1g.5gb", 14))
    # Wrong answer caught: a MIG slice given the whole GPU's 1,555 GB/s.
    assert half["dram_gbs"] == pytest.approx(whole["dram_gbs"] / 2)
    assert eighth["dram_gbs"] == pytest.approx(whole["dram_gbs"] / 8)
    assert eighth["bf16_gflops"] == pytest.approx(whole["bf16_gflops"] * 14 / 108)
    assert math.isclose(half["mig"]["memory_share"], 0.5) and "MIG slice" in half["notes"][-1]


def test_the_honest_fixture_is_not_refused_for_the_cases_own_reasons():
    # Each case's words must not already describe the honest file (a reason that matches anything
    # would prove nothing).
    board = build_leaderboard([FIX / "gpu-h100-good.json"])
    assert board.rejected == [] and len(board.runs) == 1


def _jitter(doc, seed, rel=0.02):
    """Each timed figure moved by its own noise, as two honest runs differ."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for r in doc["results"]:
        if r["status"] == "ok":
            amount = {"gbs": r["bytes"], "gflops": r["flops"]}.get(r["metric"])
            new = r["seconds"]["median"] * float(1 + rng.uniform(-rel, rel))
            retime(r, amount / new / 1e9 if amount else new * 1e6)
    return doc


def test_an_honest_second_run_is_not_taken_for_a_copy(tmp_path):
    # Wrong answer caught the other way: the near-duplicate rule refusing a real second run.
    (tmp_path / "b.json").write_text(json.dumps(_jitter(new_id(cpu_base(), "7"), 1)))
    board = build_leaderboard([CPU_RUN, tmp_path])
    assert board.rejected == [] and len(board.runs) == 2


def test_names_a_terminal_or_a_plot_would_interpret_are_shown_inert(tmp_path):
    # Wrong answer caught: a CPU name with rich markup or matplotlib maths crashing the table or the PNG
    # after every file was accepted.
    from rich.console import Console

    doc = _jitter(new_id(cpu_base(), "6"), 2)
    doc["environment"]["cpu"] = r"$\frac{[bold red]x[/]"
    doc["environment"]["device"] = r"CPU: $\frac{[bold red]x[/] (2 cores)"  # as the harness names it
    doc["label"] = r"CPU: $\frac{[bold red]x[/], 2 cores (not a GPU figure)"  # and labels it
    (tmp_path / "odd.json").write_text(json.dumps(doc))
    board = build_leaderboard([tmp_path / "odd.json"])
    assert len(board.runs) == 1
    import io

    console = Console(file=io.StringIO(), width=200)
    for table in board.tables():
        console.print(table)
    assert "[bold red]x[/]" in console.file.getvalue()  # printed as text, not applied as markup
    paths = board.write(tmp_path / "out")
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    # Escaped as text, not markup (and shown inert: the backslash as its escape, "\\").
    assert r"$\\frac{[bold red]x[/]" in paths["html"].read_text()


def test_a_board_counts_a_bounded_number_of_plans():
    # Wrong answer caught: a folder of files, each with its own plan, making the board start a counting
    # process for every one of them.
    from techday.bench.verify import MAX_PLANS, Refused, verify

    plans = {("gpu", True, i) for i in range(MAX_PLANS)}
    with pytest.raises(Refused, match=f"already counted {MAX_PLANS} distinct plans"):
        verify(off_row_plan(base(), 52428800 - 8), plans)
    assert len(verify(base(), set()).figures) == 5
    assert len(verify(base(), plans).figures) == 5  # a table row's own plan: never refused by the cap


def off_row_plan(doc, l2_bytes, c="5"):
    """The H100 run with an L2 size a few bytes off its row's (inside the 1 % the attributes may
    differ), so a plan of its own, and no results: a file that only spends the board's plans."""
    from techday.bench.counts import plan_dict, plan_for

    doc["environment"]["gpu"]["l2_bytes"] = l2_bytes
    doc["plan"] = plan_dict(plan_for("gpu", "quick", l2_bytes, doc["environment"]["gpu"]["sm_count"]))
    doc["results"] = []
    return new_id(doc, c)


def test_files_that_spend_the_plan_cap_cannot_leave_an_honest_run_out(tmp_path, monkeypatch):
    # Wrong answer caught: 16 files of a few bytes of L2 each (one counting process apiece) sorted
    # first, and every honest run after them refused because "this board already counted 16 plans".
    from techday.bench import verify as verify_module

    monkeypatch.setattr(verify_module, "MAX_PLANS", 2)
    for i in range(3):
        (tmp_path / f"0000-{i}.json").write_text(json.dumps(off_row_plan(base(), 52428800 - 8 * (i + 1), "567"[i])))
    (tmp_path / "honest.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    board = build_leaderboard([tmp_path])
    assert "honest.json" in [r.path.name for r in board.runs]
    reasons = {r.path.name: r.reason for r in board.rejected}
    assert "already counted 2 distinct plans" in reasons["0000-2.json"]


def _submit(course, student, name, doc):
    lab = course / "submitted" / student / "08-measure-your-gpu"
    lab.mkdir(parents=True, exist_ok=True)
    (lab / name).write_text(json.dumps(doc))


def test_a_participant_holds_one_place_per_kernel_however_many_files(tmp_path):
    # Wrong answer caught: bob hands in three runs of his GPU and takes the first three places.
    course = tmp_path / "course"
    for i, c in enumerate("123"):
        _submit(course, "bob", f"run{i}.json", _jitter(new_id(base(), c), 10 + i))
    _submit(course, "alice", "results.json", honest_doc("gpu-a100-good.json"))
    board = build_leaderboard([course])
    assert len(board.runs) == 4 and board.rejected == []
    triad = board.rankings("gpu")["stream.triad"]
    assert [row["who"] for row in triad] == ["bob", "alice"]
    bob = max(f.value for r in board.runs if r.who == "bob" for f in r.verified.figures if f.key == "stream.triad")
    assert triad[0]["value"] == bob  # his best run's figure
    assert board.per_model("gpu")["H100 SXM5"]["stream.triad"]["runs"] == 1


def test_look_alike_names_are_shown_apart_and_equal_figures_share_a_rank(tmp_path):
    # Wrong answer caught: a Cyrillic 'а' file name shown as "alice" beside the real alice, and a name
    # that sorts first taking the first place on an equal figure.
    (tmp_path / "alice.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    twin = _jitter(new_id(base(), "7"), 6)
    mine, theirs = find(twin, "stream.triad", "numba-cuda"), find(base(), "stream.triad", "numba-cuda")
    mine.update(value=theirs["value"], best=theirs["best"], gbs=theirs["gbs"], fraction=theirs["fraction"])
    mine["seconds"].update(median=theirs["seconds"]["median"], min=theirs["seconds"]["min"])
    resample(mine)
    retime(find(twin, "stream.triad", "cupy"), 2000.0)
    (tmp_path / "\u0430lice.json").write_text(json.dumps(twin))
    board = build_leaderboard([tmp_path])
    assert board.rejected == [] and len(board.runs) == 2
    triad = board.rankings("gpu")["stream.triad"]
    assert sorted(row["who"] for row in triad) == ["\\u0430lice", "alice"]
    assert [row["rank"] for row in triad] == [1, 1] and triad[0]["value"] == triad[1]["value"]
    page = board.html(b"")
    assert "\u0430" not in page and "\\u0430lice" in page
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    console.print(board.tables()[0])
    assert console.file.getvalue().count("stream.triad") == 1  # the kernel named once, over both tied rows


def _in_mode(doc, mode, plan, scale):
    """``doc`` as a run of another mode: that mode's plan, bytes and FLOPs, and times that give each
    figure ``scale`` times its value."""
    from techday.bench.counts import kernel_table, plan_dict

    table = kernel_table(plan)
    doc.update(mode=mode, plan=plan_dict(plan))
    for r in doc["results"]:
        if r["status"] == "ok":
            k = table[f"{r['family']}.{r['kernel']}"]
            r.update(bytes=k["bytes"], flops=k["flops"])
            retime(r, scale * r["value"])
    return doc


def test_runs_of_other_modes_are_ranked_apart(tmp_path):
    # Wrong answer caught: a CPU-tier run of lab 08 at --scale ci (arrays of 8 MiB, in a cache) ranked
    # above the quick suite's DRAM figures in one table.
    from techday.bench.counts import plan_for

    ci = _in_mode(new_id(cpu_base(), "8"), "ci", plan_for("cpu", "ci"), 3)
    (tmp_path / "ci.json").write_text(json.dumps(_jitter(ci, 9)))  # its own noise: not a rescaled copy
    board = build_leaderboard([tmp_path, CPU_RUN])
    assert board.rejected == [] and len(board.runs) == 2
    ranked = board.rankings("cpu")
    assert [row["who"] for row in ranked["stream.triad"]] == [CPU_RUN.stem]
    assert [row["who"] for row in ranked["stream.triad [ci]"]] == ["ci"]


def test_mig_slices_are_the_profiles_a_driver_reports():
    # Wrong answer caught: a MIG slice of a part that has none, or a profile with more compute slices,
    # memory or SMs than any slice of its GPU, given the limits that follow from its claims.
    from techday.bench.limits import HOST_LINK_GBS, mig_problems
    from techday.gpuspecs import SPECS, by_name

    h100, a30 = by_name("H100 SXM5"), by_name("A30")
    assert mig_problems("NVIDIA H100 80GB HBM3 MIG 1g.10gb", 16, h100) == []
    assert mig_problems("NVIDIA H100 80GB HBM3 MIG 1g.20gb", 26, h100) == []
    assert mig_problems("NVIDIA H100 80GB HBM3 MIG 3g.40gb", 60, h100) == []
    assert mig_problems("NVIDIA H100 80GB HBM3 MIG 7g.80gb", 132, h100) == []
    assert mig_problems("NVIDIA A30 MIG 2g.12gb", 28, a30) == []
    assert "no MIG profile" in mig_problems("NVIDIA H100 80GB HBM3 MIG 5g.40gb", 80, h100)[0]
    assert "no MIG mode" in mig_problems("NVIDIA GeForce RTX 4090 MIG 1g.3gb", 18, by_name("RTX 4090"))[0]
    assert "eighths" in mig_problems("NVIDIA H100 80GB HBM3 MIG 2g.80gb", 32, h100)[0]
    assert set(HOST_LINK_GBS) == {s.name for s in SPECS}  # every row's host link is known


def test_a_fifo_or_a_device_named_json_is_answered_at_once(tmp_path):
    # Wrong answer caught: a FIFO named results.json (a tar can carry one) held the board forever, waiting
    # for a writer. The board runs in a child process under a deadline, so this test cannot hang.
    import subprocess
    import sys

    folder = tmp_path / "room"
    folder.mkdir()
    os.mkfifo(folder / "results.json")
    os.symlink("/dev/zero", folder / "zeros.json")
    (folder / "honest.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    code = ("import sys; from pathlib import Path; from techday.bench.leaderboard import build_leaderboard; "
            "b = build_leaderboard([Path(sys.argv[1])]); print([r.path.name for r in b.runs]); "
            "[print(r.path.name, r.reason) for r in b.rejected]; "
            "b = build_leaderboard([Path(sys.argv[1]) / 'results.json', Path(sys.argv[1]) / 'zeros.json']); "
            "[print('named', r.path.name, r.reason) for r in b.rejected]")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=60,
                             env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the board was still waiting on the FIFO after 60 s")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "['honest.json']"
    assert "results.json not a regular file" in out.stdout and "zeros.json a symbolic link: not followed" in out.stdout
    # Named on the command line, each is opened and answered for what it is (not "does not exist").
    assert "named results.json not a regular file" in out.stdout and "named zeros.json not a regular file" in out.stdout


def test_a_participant_s_files_are_read_up_to_a_cap(tmp_path):
    # Wrong answer caught: one student's folder of thousands of runs, every one read, recomputed and
    # compared with every other merged run (quadratic: 600 runs took 12 s on the build machine).
    from techday.bench import leaderboard

    MAX_FILES_PER_PARTICIPANT = getattr(leaderboard, "MAX_FILES_PER_PARTICIPANT", 8)
    course = tmp_path / "course"
    for i in range(MAX_FILES_PER_PARTICIPANT + 4):
        _submit(course, "mallory", f"run{i:02d}.json", {"schema": "techday.bench/1"})
    _submit(course, "alice", "results.json", base())
    board = build_leaderboard([course])
    assert [r.who for r in board.runs] == ["alice"]
    reasons = [r.reason for r in board.rejected]
    assert reasons.count(f"mallory handed in 12 results files; only the first {MAX_FILES_PER_PARTICIPANT} are read") == 1
    read = [r.path.name for r in board.rejected if r.path.name.startswith("run")]
    assert read == [f"run{i:02d}.json" for i in range(MAX_FILES_PER_PARTICIPANT)]  # the first 8, refused on their own
    assert len(board.rejected) == MAX_FILES_PER_PARTICIPANT + 1  # one line for the rest, not one each


def test_files_past_the_cap_in_a_folder_get_one_line(tmp_path):
    # Wrong answer caught: a line per file past the cap (a folder of a million files, a million lines).
    for i in range(11):
        (tmp_path / "mallory").mkdir(exist_ok=True)
        (tmp_path / "mallory" / f"run{i:02d}.json").write_text("{}")
    board = build_leaderboard([tmp_path])
    assert len(board.rejected) == 9 and "more than 8 results files" in board.rejected[-1].reason


def test_file_and_student_names_are_shown_inert_in_the_lines_left_out(tmp_path):
    # Wrong answer caught: a file named with an OSC escape retitling the instructor's terminal (rich
    # passes ESC through), or a right-to-left override reversing the rest of its line.
    course = tmp_path / "course"
    _submit(course, "eve\u202e", "\x1b]0;owned\x07.json", {"schema": "techday.bench/1"})
    (course / "submitted" / "\x1b[2Jmallory" / "08-measure-your-gpu").mkdir(parents=True)
    board = build_leaderboard([course])
    lines = board.rejected_lines()
    assert len(lines) == 2
    assert all(" " <= c <= "~" for line in lines for c in line), lines
    assert any("\\x1b]0;owned\\x07.json" in line for line in lines)
    assert any("\\x1b[2Jmallory submitted" in line for line in lines)


def test_a_copy_moved_to_another_mode_is_a_duplicate(tmp_path):
    # Wrong answer caught: the H100 quick run's figures handed in as a full run (the full plan's bytes,
    # times made to give the same figures), ranked first in the table of full runs: its seconds differ
    # from the original's by a factor per kernel, so the rules on times never matched.
    from techday.bench.counts import plan_for

    g = base()["environment"]["gpu"]
    full = _in_mode(new_id(base(), "9"), "full", plan_for("gpu", "full", g["l2_bytes"], g["sm_count"]), 1)
    (tmp_path / "a-full.json").write_text(json.dumps(full))
    (tmp_path / "b-quick.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    board = build_leaderboard([tmp_path])
    assert len(board.runs) == 1 and len(board.rejected) == 1
    assert "near-duplicate" in board.rejected[0].reason


def test_participants_of_a_folder_are_its_first_folders_and_files_given_alone_are_their_own(tmp_path):
    # Wrong answer caught (with one row per participant): everyone's room/<name>/lab08/results.json
    # taken for one participant "lab08", or two files named results.json given alone for one.
    for who, name in (("alice", "gpu-h100-good.json"), ("bob", "gpu-a100-good.json")):
        lab = tmp_path / "room" / who / "lab08"
        lab.mkdir(parents=True)
        (lab / "results.json").write_bytes(honest_bytes(name))
    board = build_leaderboard([tmp_path / "room"])
    assert [row["who"] for row in board.rankings("gpu")["stream.triad"]] == ["alice", "bob"]
    board = build_leaderboard([tmp_path / "room" / who / "lab08" / "results.json" for who in ("alice", "bob")])
    assert len(board.rankings("gpu")["stream.triad"]) == 2


def test_a_file_of_escaped_quotes_is_scanned_in_one_pass(tmp_path):
    # Wrong answer caught: the nesting scan restarted at every '"' of '"\"\"\"...' and ran to the end
    # of the file each time (32 KB: 2.8 s; the 2 MiB allowed: hours). Run in a child under a deadline.
    import subprocess
    import sys

    bad = tmp_path / "quotes.json"
    bad.write_bytes(b'"' + b'\\"' * (MAX_FILE_BYTES // 2 - 1))
    assert bad.stat().st_size <= MAX_FILE_BYTES
    code = ("import sys; from techday.bench.schema import ReadError, read_document\n"
            "try: read_document(sys.argv[1])\nexcept ReadError as e: print(e)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    try:
        out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60,
                             env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("reading 2 MiB of escaped quotes took over 60 s")
    assert "Unterminated string" in out.stdout, out.stderr[-2000:]


def test_the_board_keeps_only_what_it_shows_of_a_large_valid_file(tmp_path):
    # Wrong answer caught: every merged file kept whole; 2 MiB of notes and error rows is a valid file,
    # so a folder of them held about 2 MB of memory per run for as long as the board lived.
    import tracemalloc

    for i in range(4):
        doc = _jitter(new_id(base(), "abcd"[i]), 20 + i)
        doc["notes"] = doc["warnings"] = [f"{i}" + "n" * 1990] * 64
        doc["results"] += [{"family": "stream", "kernel": "*", "impl": "*", "status": "error", "reason": "r" * 1999,
                            "traceback": "t" * 1999}] * 440
        raw = json.dumps(doc)
        assert 1.9 * 2**20 < len(raw) <= MAX_FILE_BYTES
        (tmp_path / f"big{i}.json").write_text(raw)
    tracemalloc.start()
    try:
        board = build_leaderboard([tmp_path])
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(board.runs) == 4, board.rejected_lines()
    assert all(len(json.dumps(run.doc)) < 1000 for run in board.runs)
    assert kept < 2 * 2**20, f"{kept:,} bytes kept for 4 runs"


def test_a_submission_thousands_of_folders_deep_does_not_stop_the_board(tmp_path):
    # Wrong answer caught: the folder search recursed once per level (Path.rglob), so one submission
    # 3,000 folders deep stopped the whole board with a RecursionError. Built with relative mkdir
    # calls: its full path is longer than PATH_MAX.
    room = tmp_path / "room"
    (room / "alice").mkdir(parents=True)
    (room / "alice" / "results.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    here = os.getcwd()
    try:
        os.makedirs(room / "mallory")
        os.chdir(room / "mallory")
        for _ in range(3000):
            os.mkdir("d")
            os.chdir("d")
        with open("results.json", "w") as f:
            f.write("{}")
    finally:
        os.chdir(here)
    try:
        board = build_leaderboard([room])
    finally:  # taken down level by level: a recursive removal would fail the way the search did
        try:
            os.chdir(room / "mallory")
            for _ in range(3000):
                os.chdir("d")
            os.remove("results.json")
            for _ in range(3000):
                os.chdir("..")
                os.rmdir("d")
        finally:
            os.chdir(here)
    assert [r.who for r in board.runs] == ["alice"]
    assert any("nested more than" in r.reason for r in board.rejected)


def test_a_student_folder_the_board_cannot_list_leaves_out_only_that_student(tmp_path, monkeypatch):
    # Wrong answer caught: a submission whose permissions the student set to 000 (collected with its
    # mode) raised PermissionError from the folder listing and stopped the whole board. The test runs as
    # any user, so the listing's failure is simulated.
    import pathlib

    course = tmp_path / "course"
    _submit(course, "alice", "results.json", base())
    _submit(course, "mallory", "results.json", {"schema": "techday.bench/1"})
    glob = pathlib.Path.glob

    def locked(self, pattern):
        if "mallory" in self.parts:
            raise PermissionError(13, "Permission denied", str(self))
        return glob(self, pattern)

    monkeypatch.setattr(pathlib.Path, "glob", locked)
    board = build_leaderboard([course])
    assert [r.who for r in board.runs] == ["alice"]
    assert [r.reason for r in board.rejected] == ["mallory's folder is unreadable: Permission denied"]


def test_a_folder_the_search_cannot_list_is_named(tmp_path, monkeypatch):
    # Wrong answer caught: a subfolder the search could not list skipped without a line (its student's
    # file lost silently).
    real = os.scandir

    def locked(path):
        if str(path).endswith("bob"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    (tmp_path / "bob").mkdir()
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "results.json").write_bytes(honest_bytes("gpu-h100-good.json"))
    monkeypatch.setattr(os, "scandir", locked)
    board = build_leaderboard([tmp_path])
    assert [r.who for r in board.runs] == ["alice"]
    assert board.rejected_lines() == [f"{tmp_path / 'bob'}: unreadable folder: Permission denied"]


def test_the_kit_s_own_runs_are_admitted_where_they_lie_and_refused_anywhere_else(tmp_path):
    # Wrong answer caught: the committed H200 run (every student has it) handed in as a student's own
    # and ranked first; and the other way, the kit's runs refused as copies of themselves.
    board = build_leaderboard([ROOT / "benchmarks" / "results"])
    assert sorted(r.path.name for r in board.runs) == sorted(
        [CPU_RUN.name, H200_RUN.name, "run1-lab08-bench-numba-builtin.json"])
    room = tmp_path / "room"
    (room / "eve").mkdir(parents=True)
    os.symlink(H200_RUN, room / "eve" / "results.json")
    (room / "mallory").mkdir()
    (room / "mallory" / "results.json").write_bytes(CPU_RUN.read_bytes())
    board = build_leaderboard([room])
    assert board.runs == []
    reasons = {r.path.parent.name: r.reason for r in board.rejected}
    assert "symbolic link: not followed" in reasons["eve"]  # below a folder given, no link is followed
    assert "a copy of the course kit's own run" in reasons["mallory"], board.rejected_lines()


def test_a_copy_that_sorts_first_keeps_its_place_only_as_disputed(tmp_path):
    # Wrong answer caught: bob copies zoe's run under a name that sorts first ("0bob"): the board kept
    # his, left hers out as the copy, and ranked him first with nothing on his row to say so.
    course = tmp_path / "course"
    _submit(course, "zoe", "results.json", base())
    _submit(course, "0bob", "results.json", new_id(base(), "c"))
    _submit(course, "0bob", "again.json", scale_times(_jitter(new_id(base(), "d"), 30), 1.1))  # his own, slower
    board = build_leaderboard([course])
    assert [r.who for r in board.runs] == ["0bob", "0bob"]
    triad = board.rankings("gpu")["stream.triad"]
    assert [row["who"] for row in triad] == ["0bob"]
    assert triad[0]["disputed"] == ["zoe handed in the same figures (results.json)"]
    assert "(disputed)" in board.html(b"")
    assert "zoe" in board.rejected_lines()[0] and "the same results as" in board.rejected_lines()[0]


def test_files_sharing_one_run_id_name_a_bounded_number_of_the_others(tmp_path):
    # Wrong answer caught: each of N files sharing one run_id (figures differing) named the N - 1 others
    # on every one of its rows: 400 such files wrote 60 MB of JSON and 43 MB of HTML, 2,000 about 1.5 GB.
    from techday.bench.leaderboard import MAX_DISPUTES

    for i in range(MAX_DISPUTES + 3):
        (tmp_path / f"p{i}.json").write_text(json.dumps(new_id(_jitter(base(), 50 + i, rel=0.05), "9")))
    board = build_leaderboard([tmp_path])
    assert len(board.runs) == MAX_DISPUTES + 3
    last = board.runs[-1].disputed
    assert len(last) == MAX_DISPUTES + 1 and last[-1] == "and 2 more", last
    assert all(len(row["disputed"]) <= MAX_DISPUTES + 1 for row in board.rankings("gpu")["stream.triad"])


def _slow_beyond_measure(doc, seconds=1e290):
    """Every timed figure of ``doc`` made of repetitions of ``seconds`` each (rates of about 1e-290)."""
    for r in doc["results"]:
        if r["status"] == "ok" and r["metric"] != "us":
            retime(r, {"gbs": r["bytes"], "gflops": r["flops"]}[r["metric"]] / seconds / 1e9)
            r.pop("us", None)
    return finish(doc)


def test_one_file_timed_beyond_measure_does_not_flatten_the_roofline(tmp_path, monkeypatch):
    # Wrong answer caught: a file whose every repetition took 1e290 s (rates of 1e-290 GFLOP/s, each
    # well formed and below its limit) stretched the picture's frame over 290 decades: every other
    # point of the board was drawn in one line along its top.
    from matplotlib.figure import Figure

    room = tmp_path / "room"
    room.mkdir()
    (room / "zoe.json").write_text(json.dumps(base()))
    (room / "mallory.json").write_text(json.dumps(_slow_beyond_measure(new_id(base(), "6"))))
    board = build_leaderboard([room])
    assert len(board.runs) == 2  # ranked last (its figures are its word), but not drawn
    frames = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (frames.append(fig.axes[0].get_ylim()),
                                                                  save(fig, *a, **k))[1])
    board.write(tmp_path / "out")
    assert frames and frames[0][0] >= 1e-4, frames


def test_the_nesting_scan_skips_exactly_the_strings_a_parser_reads():
    # The scan skips string contents with one regular expression (runs of plain characters in one step:
    # a 2 MiB file of notes took 105 ms, now 14). Checked against a walk one character at a time, on
    # texts of quotes, escapes and brackets, terminated or not.
    import random

    from techday.bench.schema import nesting_depth

    def walk(raw):
        depth = best = 0
        inside = escaped = False
        for c in raw.decode("latin-1"):
            if inside:
                inside, escaped = (True, False) if escaped else (c != '"', c == "\\")
            elif c == '"':
                inside = True
            elif c in "[{":
                depth += 1
                best = max(best, depth)
            elif c in "]}":
                depth -= 1
        return best

    rng = random.Random(5)
    for _ in range(3000):
        raw = bytes(rng.choice(b'ab"\\[{]}') for _ in range(rng.randint(0, 16)))
        assert max(0, nesting_depth(raw)) == walk(raw), raw


def _paste(doc, source, key, impl):
    """``doc`` with one figure of ``source`` pasted, every recorded time kept."""
    mine, theirs = find(doc, key, impl), find(source, key, impl)
    mine.update({k: copy.deepcopy(theirs[k]) for k in ("seconds", "value", "best", "gbs", "gflops", "fraction")
                 if k in theirs})
    return doc


@pytest.mark.parametrize("zoe_first", [True, False])
def test_figures_replayed_one_file_at_a_time_are_replayed_figures(tmp_path, zoe_first):
    # Wrong answer caught: each of mallory's files carried one of zoe's figures, every recorded time kept
    # (one file under the two-figure rule: all ranked), so her 8 files put 8 of zoe's figures on the
    # board, tied with hers, and nothing was said. Whichever comes second in path order is left out, as
    # for any copy, and the files kept are marked disputed.
    zoe = base()
    (tmp_path / ("a-zoe.json" if zoe_first else "zoe.json")).write_text(json.dumps(zoe))
    (tmp_path / "mallory").mkdir()
    for i, impl in enumerate(("numba-cuda", "cupy")):
        mine = _paste(scale_times(_jitter(new_id(base(), "ab"[i]), 60 + i, rel=0.05), 1.1), zoe, "stream.triad", impl)
        (tmp_path / "mallory" / f"run{i}.json").write_text(json.dumps(mine))
    board = build_leaderboard([tmp_path])
    reasons = {r.path.name: r.reason for r in board.rejected}
    left_out, kept = ("run1.json", "a-zoe") if zoe_first else ("zoe.json", "mallory")
    assert list(reasons) == [left_out], reasons
    assert "replayed figures, one file at a time" in reasons[left_out]
    assert [row["disputed"] != [] for row in board.rankings("gpu")["stream.triad"] if row["who"] == kept] == [True]


def test_the_kit_s_figures_replayed_one_file_at_a_time_are_a_copy_of_the_kit(tmp_path):
    kit = h200_base()
    (tmp_path / "mallory").mkdir()
    for i, key in enumerate(("stream.triad", "stream.copy")):
        mine = _paste(scale_times(_jitter(new_id(h200_base(), "cd"[i]), 70 + i, rel=0.05), 1.1), kit, key, "cupy")
        (tmp_path / "mallory" / f"run{i}.json").write_text(json.dumps(mine))
    board = build_leaderboard([tmp_path])
    assert [r.path.name for r in board.runs] == ["run0.json"]
    assert "a copy of the course kit's own run: replayed figures, one file at a time" in board.rejected[0].reason


def test_a_participant_folder_named_submitted_does_not_silence_the_others(tmp_path):
    # Wrong answer caught: in a room of participants' folders, mallory named hers "submitted" (with
    # mallory/08-measure-your-gpu/ inside): the room was read as a course root, her file alone ranked,
    # and alice's and bob's folders were left unread without a line.
    for i, who in enumerate(("alice", "bob")):
        (tmp_path / who).mkdir()
        (tmp_path / who / "run.json").write_text(json.dumps(_jitter(new_id(base(), "ab"[i]), 80 + i, rel=0.05)))
    lab = tmp_path / "submitted" / "mallory" / "08-measure-your-gpu"
    lab.mkdir(parents=True)
    (lab / "run.json").write_text(json.dumps(_jitter(new_id(base(), "c"), 90, rel=0.05)))
    (tmp_path / "source" / "08").mkdir(parents=True)  # a course root's own steps are not named,
    (tmp_path / "source" / "08" / "x.json").write_text("{}")
    (tmp_path / "log").mkdir()  # nor a folder without results files, nor the board's own output
    (tmp_path / "build" / "leaderboard").mkdir(parents=True)
    (tmp_path / "build" / "leaderboard" / "leaderboard.json").write_text("{}")
    board = build_leaderboard([tmp_path])
    assert [r.who for r in board.runs] == ["mallory"]
    assert [r.reason for r in board.rejected if r.path == tmp_path] == [
        "read as a course root (its submitted/ tree only): alice, bob beside submitted/ hold results files that "
        "are not read. If this is a room of participants' folders, one of them is named 'submitted': give the "
        "folders one by one"]
