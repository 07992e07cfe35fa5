"""Running the suite: check every implementation, then time it, and write one results document.

The document (schema ``techday.bench/2``, see :mod:`techday.bench.schema`) holds the environment,
the device limits and one record per (kernel, implementation): its status (``ok``, ``wrong``,
``error``, ``skipped``, or ``checked`` for a Numba CUDA kernel checked in the simulator and not
timed), the seconds (median, spread), the rates and the fraction of the device's limit.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import time
import traceback
import uuid
from datetime import datetime, timezone

from ..tier import figure_label
from . import families as fam
from .core import AUDIT_FACTOR, AUDIT_REPS, Plan, check, outputs, repoison, time_device, time_host
from .env import environment
from .limits import device_limits, limit_for
from .schema import MAX_FRACTION, MIN_REPS_TIMED, SCHEMA

# Seconds of timed repetitions per implementation (a budget, not a limit: at least `lo` repetitions).
BUDGET = {("gpu", True): 0.15, ("gpu", False): 0.6, ("cpu", True): 0.2, ("cpu", False): 0.8}
# At least this many timed repetitions: the CPU tier shares its cores, so it takes more.
MIN_REPS = {"gpu": MIN_REPS_TIMED, "cpu": MIN_REPS_TIMED}
# Spread (interquartile range over the median) above which a figure carries a warning.
SPREAD_WARN = {"gpu": 0.05, "cpu": 0.10}
# One-minute load average per core above which the run warns that other work shared the machine.
LOAD_WARN = 0.5


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _have(module: str) -> str | None:
    """None when ``module`` imports, else why not."""
    try:
        __import__(module)
    except Exception as exc:  # a broken CUDA install raises more than ImportError
        return f"{module} is not usable here ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})"
    return None


def _gpu_library_reason(name: str, tier: str) -> str | None:
    """Why a GPU library cannot run on this machine, or None."""
    if tier != "gpu":
        return f"{name} needs a GPU (CPU tier)"
    if name == "cupy":
        why = _have("cupy")
        return why and f"{why}; install the GPU extras: pip install -e '.[gpu]'"
    if name == "torch":
        why = _have("torch")
        if why:
            return why
        import torch

        return None if torch.cuda.is_available() else "this PyTorch build has no CUDA (torch.cuda.is_available() is False)"
    return None


def _figures(kernel, seconds: float, limits: dict, timed_on_gpu: bool, best_seconds: float | None = None) -> dict:
    """Rates from the formula beside each kernel: GB/s = bytes / s / 1e9, GFLOP/s = flops / s / 1e9.
    ``value`` is from the median time, ``best`` from the fastest repetition (BabelStream quotes it)."""
    def rates(t):
        return {"gbs": kernel.bytes / t / 1e9 if kernel.bytes else None,
                "gflops": kernel.flops / t / 1e9 if kernel.flops else None, "us": t * 1e6}

    rec = rates(seconds)
    value = rec[kernel.metric]
    best = rates(best_seconds)[kernel.metric] if best_seconds else value
    limit = limit_for(limits, kernel.limit, kernel.intensity) if timed_on_gpu else None
    rec.update(value=value, best=best, limit=limit,
               fraction=(value / limit) if (limit and value is not None) else None)
    return rec


def run_suite(*, tier: str = "auto", quick: bool = True, families: list[str] | None = None, with_cpu: bool = False,
              sim_check: bool = True, progress: bool = True, report=print, console=None, ci: bool = False) -> dict:
    """Run the suite on this machine and return the results document.

    ``tier``: ``auto``, ``gpu`` or ``cpu``. On the CPU tier only the CPU implementations are timed;
    Numba CUDA kernels are checked in the simulator at a tiny size (``sim_check``) and never timed;
    CuPy and PyTorch GPU implementations are skipped with the reason. On the GPU tier the CPU
    implementations are timed too only with ``with_cpu``. ``ci``: the small CPU-tier sizes lab 08
    uses at ``--scale ci``.

    Long (about 110 lines): it writes the results document in the order the schema lists its parts
    (environment, limits, plan, then each family's results), and keeps the GPU's one flush buffer,
    busy kernel and library checks alive across the families; each family's work is in ``_run_one``.
    """
    from techday.lab import setup

    t_start = time.perf_counter()
    lab = setup(tier=tier if tier != "auto" else None, scale="ci" if quick else "full", quiet=True)
    info = lab.info
    gpu = info.gpu
    plan = Plan.for_device(info.tier, quick, gpu.l2_cache_bytes if gpu else 0, gpu.multiprocessor_count if gpu else 0,
                           ci=ci)
    if gpu is not None and gpu.max_threads_per_multiprocessor:
        plan = dataclasses.replace(plan, threads_per_sm=gpu.max_threads_per_multiprocessor)
    limits = device_limits(gpu)
    env = environment(info)
    env["load"] = {"before": load_average(), "after": None, "cpu_count": os.cpu_count()}
    names = fam.select(families)
    doc = {
        "schema": SCHEMA,
        "run_id": uuid.uuid4().hex,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "ci" if ci and info.tier == "cpu" else ("quick" if quick else "full"),
        "tier": info.tier,
        "label": figure_label(gpu.name if gpu else None, f"CPU: {env['cpu']}, {env['cpu_count']} cores"),
        "environment": env,
        "limits": limits,
        "plan": {"n": plan.n, "side": plan.side, "mm": plan.mm, "mm_cpu": plan.mm_cpu, "hist_n": plan.hist_n,
                 "sweep": list(plan.sweep), "transfer_bytes": plan.transfer_bytes},
        "families": names,
        "results": [],
        "notes": [],
        "warnings": [],
    }
    if info.tier == "cpu":
        doc["notes"].append("CPU tier: only CPU implementations are timed; Numba CUDA kernels are checked in the "
                            "CUDA simulator at a tiny size and never timed; CuPy/PyTorch GPU code is skipped.")
    skip_lib = {lib: _gpu_library_reason(lib, info.tier) for lib in ("cupy", "torch")}
    for lib, why in skip_lib.items():
        if why:
            from ..i18n import msg

            # The record keeps the English reason; the line printed (in lab 08 too) is in the run's language.
            shown = msg("techday.bench_needs_gpu", "{lib} needs a GPU (CPU tier)", lib=lib) if info.tier != "gpu" else why
            report(msg("techday.bench_skip_library", "[skip] {lib} implementations: {why}", lib=lib, why=shown))
    flush = None
    sync = None
    busy = None
    if info.tier == "gpu":
        from numba import cuda

        from .core import Busy, L2Flush

        flush = L2Flush(gpu.l2_cache_bytes)
        sync = cuda.synchronize
        busy = Busy()
    budget = BUDGET[(info.tier, quick)]

    work = []
    for family in names:
        try:
            module = fam.load(family)
            kernels = module.kernels(plan)
        except Exception as exc:
            doc["results"].append({"family": family, "kernel": "*", "impl": "*", "status": "error",
                                   "reason": f"{type(exc).__name__}: {exc}"})
            report(f"[error] family {family}: {type(exc).__name__}: {exc}")
            continue
        work += [(module, kernel) for kernel in kernels]

    total = sum(len(k.impls) for _, k in work)
    bar = None
    if progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        bar = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=console, transient=False)
        task = bar.add_task("techday bench", total=total)
        bar.start()
    tiny_cache: dict = {}
    try:
        for module, kernel in work:
            data = _lazy_data(kernel)
            for impl in kernel.impls:
                if bar is not None:
                    bar.update(task, description=f"{kernel.key} [{impl.name}]")
                rec = _run_one(module, kernel, impl, info.tier, plan, limits, budget, flush, sync, skip_lib,
                               with_cpu, sim_check, tiny_cache, data, busy=busy)
                doc["results"].append(rec)
                if bar is not None:
                    bar.advance(task)
                if rec["status"] in ("wrong", "error"):
                    report(f"[{rec['status']}] {kernel.key} {impl.name}: {rec['reason']}")
            del data
            gc.collect()
    finally:
        if bar is not None:
            bar.stop()
    doc["seconds"] = time.perf_counter() - t_start
    env["load"]["after"] = load_average()
    doc["warnings"] += load_warnings(env["load"])
    return doc


def load_warnings(load: dict) -> list[str]:
    """A warning when other work shared the machine while it was measured (figures read low, spread high)."""
    cores = load.get("cpu_count") or 1
    worst = max((x for x in (load.get("before"), load.get("after")) if x is not None), default=None)
    if worst is not None and worst / cores > LOAD_WARN:
        return [f"machine load {worst:.2f} on {cores} cores (one-minute average) while measuring: other work shared "
                "the machine; figures may read low and spread high"]
    return []


def _lazy_data(kernel):
    """The kernel's inputs and reference, made on first use and shared by its implementations."""
    cache = {}

    def data():
        if not cache:
            cache["inputs"] = kernel.inputs()
            cache["expected"] = kernel.reference(cache["inputs"]) if kernel.reference else None
        return cache["inputs"], cache["expected"]

    return data


def _base(kernel, impl) -> dict:
    return {"family": kernel.family, "kernel": kernel.name, "impl": impl.name, "device": impl.device,
            "dtype": kernel.dtype, "size": kernel.size, "bytes": kernel.bytes, "flops": kernel.flops,
            "intensity": kernel.intensity, "metric": kernel.metric, "limit_key": kernel.limit,
            "status": "skipped", "reason": "", "note": impl.note or kernel.note}


def _run_one(module, kernel, impl, tier, plan, limits, budget, flush, sync, skip_lib, with_cpu, sim_check,
             tiny_cache, data, busy=None) -> dict:
    """One kernel x implementation: skipped (with why), checked in the simulator, or checked, timed
    and checked again. Long (about 90 lines) because the record it returns is filled step by step and
    every early return must leave it complete; the steps' order is the harness's rule (check before
    timing, poison before the last repetition, check after it)."""
    rec = _base(kernel, impl)
    for lib in impl.requires:
        if skip_lib.get(lib):
            rec["reason"] = skip_lib[lib]
            return rec
    if impl.device == "gpu" and tier != "gpu":
        if impl.name == "numba-cuda" and sim_check:
            return _simulator_check(module, kernel, impl, rec, tiny_cache, plan)
        rec["reason"] = "needs a GPU (CPU tier)"
        return rec
    if impl.device == "cpu" and tier == "gpu" and not with_cpu:
        rec["reason"] = "GPU tier: CPU implementations are timed with --cpu"
        return rec
    wall = {"setup": 0.0, "check": 0.0, "timing": 0.0}
    t_start = t = time.perf_counter()

    def lap(part):  # host seconds per part of this figure (results' "wall"): where a run's time goes
        nonlocal t
        now = time.perf_counter()
        wall[part] += now - t
        t = now

    inputs, expected = data()
    on_gpu = impl.device == "gpu"
    label = "GPU" if on_gpu else "CPU"
    try:
        with outputs() as made:
            run, fetch = impl.make(inputs)
        run()  # the first call compiles (JIT): outside any timed region
        if on_gpu:
            sync()
        lap("setup")
        got = fetch()
        ok, err, message = check(kernel, kernel.view(got) if kernel.view else got, expected)
        lap("check")
        rec["error"] = err if err == err and err != float("inf") else None
        if not ok:
            rec.update(status="wrong", reason=f"wrong result, not timed: {message}")
            return rec

        def audit():  # outside the timed region: each audit repetition must write every output
            repoison(made)

        def timed():
            if on_gpu and kernel.timer == "device":
                return time_device(run, budget=budget, flush=flush if kernel.cold else None,
                                   calls=kernel.calls_per_run, busy=busy, lo=MIN_REPS[tier], audit=audit,
                                   audits=AUDIT_REPS)
            return time_host(run, budget=budget, sync=sync if on_gpu else None, calls=kernel.calls_per_run,
                             lo=MIN_REPS[tier], warmup=0.02 if on_gpu else 0.0, audit=audit, audits=AUDIT_REPS)

        sample = timed()
        retimed = bool(made) and min(sample.audit) > AUDIT_FACTOR * sample.median
        if retimed:
            # Once more before calling it wrong: on a shared CPU the audit repetitions can fall in a slow
            # spell (2.65 times the median in 10 honest runs here, though spread over the loop); a kernel
            # that skips its work while its outputs hold a result is that slow in every round.
            sample = timed()
        if on_gpu:
            sync()
        lap("timing")
        # The check again, on what the last audit repetition (after the last timed one) wrote into freshly
        # poisoned outputs: a kernel that computed once and returns early on later calls leaves NaN behind.
        got = fetch()
        ok, _, again = check(kernel, kernel.view(got) if kernel.view else got, expected)
        lap("check")
        if not ok:
            rec.update(status="wrong", reason=f"wrong after timing (outputs poisoned again before each of the "
                                              f"{AUDIT_REPS} audit repetitions among the timed ones): {again}")
            return rec
        # A kernel that does its work only when its outputs hold the poison (it looks for it, or remembers
        # it computed) is right in every checked repetition and skips the work in the timed ones: its
        # audit repetitions, which follow a poisoning, take longer than its timed median.
        if made and min(sample.audit) > AUDIT_FACTOR * sample.median:
            rec.update(status="wrong", seconds=sample.to_dict(),
                       reason=f"its fastest audit repetition (outputs poisoned before it) took "
                              f"{min(sample.audit) / sample.median:.1f} times its timed median, in two rounds: the "
                              "timed calls did less work than the checked ones (a kernel that skips its work while "
                              "its outputs hold a result); not a figure")
            return rec
        rec["recheck"] = (f"{len(made)} output(s) poisoned before each of {AUDIT_REPS} audit repetitions among the "
                          "timed ones (as fast as the timed ones) and checked after the last"
                          if made else "no registered output to poison again: checked once, before timing")
    except Exception as exc:
        rec.update(status="error", reason=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}",
                   traceback=traceback.format_exc(limit=3)[-1500:])
        return rec
    finally:
        if on_gpu and sync is not None:
            try:
                sync()
            except Exception:
                pass
    rec.update(status="ok", reason=message, label=label, seconds=sample.to_dict(),
               wall={**{k: round(v, 3) for k, v in wall.items()}, "total": round(time.perf_counter() - t_start, 3)})
    rec.update(_figures(kernel, sample.median, limits, on_gpu and tier == "gpu", sample.best))
    rec["warnings"] = []
    if retimed:
        rec["warnings"].append(f"timed twice: in the first round its audit repetitions took more than "
                               f"{AUDIT_FACTOR:g} times its timed median (the second round's figures are these)")
    if sample.spread > SPREAD_WARN[tier]:
        rec["warnings"].append(f"spread {sample.spread:.0%} over {len(sample.seconds)} repetitions, above "
                               f"{SPREAD_WARN[tier]:.0%}: a noisy figure (other work on the machine, or clocks moving)")
    if sample.uncovered > len(sample.seconds) // 10:
        rec["warnings"].append(f"in {sample.uncovered} of {len(sample.seconds)} repetitions the host took longer to "
                               "enqueue the call than the busy kernel slept: host time may be inside the events")
    limit = rec.get("limit")
    if limit and max(rec["value"], rec["best"]) > MAX_FRACTION * limit:
        # Above what the hardware can do: the timing or the check is broken, so the figure is wrong.
        top = max(rec["value"], rec["best"])
        rec.update(status="wrong", reason=f"{top:.4g} is {top / limit:.0%} of the device's {kernel.limit} limit "
                                          f"{limit:.4g}: above the physical limit, so the timing or the check is "
                                          "broken; not a figure")
    return rec


def _simulator_check(module, kernel, impl, rec, tiny_cache, plan) -> dict:
    """Run a Numba CUDA implementation once in the simulator, at a tiny size, against the reference."""
    key = module.__name__
    if key not in tiny_cache:
        try:
            tiny = dataclasses.replace(Plan.simulator(), sweep=plan.sweep)
            tiny_cache[key] = {k.name: k for k in module.kernels(tiny)}
        except Exception as exc:
            tiny_cache[key] = exc
    tiny = tiny_cache[key]
    if isinstance(tiny, Exception):
        rec.update(status="error", reason=f"simulator plan: {type(tiny).__name__}: {tiny}")
        return rec
    small = tiny.get(kernel.name)
    small_impl = next((i for i in small.impls if i.name == impl.name), None) if small else None
    if small_impl is None:
        rec["reason"] = "needs a GPU (CPU tier); no simulator-sized variant"
        return rec
    try:
        inputs = small.inputs()
        expected = small.reference(inputs) if small.reference else None
        run, fetch = small_impl.make(inputs)
        run()
        got = fetch()
        ok, err, message = check(small, small.view(got) if small.view else got, expected)
    except Exception as exc:
        rec.update(status="error", reason=f"in the simulator: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return rec
    if not ok:
        rec.update(status="wrong", reason=f"wrong in the simulator at {small.size}: {message}")
        return rec
    rec.update(status="checked", reason=f"correct in the CUDA simulator at {small.size} ({message}); not timed: "
                                        "the simulator is not a GPU")
    return rec
