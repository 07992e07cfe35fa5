"""Recompute, never trust: turn a stranger's results file into figures the leaderboard can rank.

After :func:`techday.bench.schema.validate`, a file's figures are rebuilt from things it does not
control:

- the **plan** is derived from the run's tier and mode and the device's recorded L2 size and SM
  count (:func:`techday.bench.counts.plan_for`); a file whose plan differs is not a run of this suite;
- **bytes, FLOPs, metric, limit, dtype, and which device each implementation runs on** come from the
  kernel families under that plan (:func:`techday.bench.counts.kernel_table`), never from the file;
- **limits** come from the project's own table (:mod:`techday.gpuspecs`, :mod:`.limits`) applied
  to the recorded device attributes, which must not claim more than the published row of the named
  GPU; a GPU the table does not know cannot be checked and is not ranked;
- **figures** (median and best) are recomputed from the counts and the recorded times, the fraction
  from the figure and the project's limit; every timed result of a GPU file is checked against its
  limit (a bound for the kernels without one: a host-device copy cannot outrun the row's PCIe link,
  :data:`.limits.HOST_LINK_GBS`; a launch cannot take under :data:`LATENCY_FLOOR_US`), CPU
  implementations against coarse CPU ceilings.

Any disagreement between what the file states and what the board recomputes is a reason to leave
the file out, named in one line. So is a file no real run gives:

- a **version** other than the harness's own (``techday.bench/2``: every repetition recorded, see
  :func:`.schema.contract`); version 1 only where the kit keeps its own committed runs (``legacy``);
- a **device** no real part is: memory other than its row's (or its MIG profile's), a driver branch
  older than the first that ran its architecture, a CUDA driver API older than its driver branch's own
  or a runtime of a newer major version than the driver API (:func:`_check_software`);
- figures that **physics ties together** out of order: on the GPU tier the roofline sweep's FMA chains
  stream the same bytes, so a longer chain cannot take less time than a shorter one
  (:func:`_sweep_in_order`). On the CPU tier this does not hold for honest runs (a parallel Numba
  kernel on a loaded machine waits a scheduler slice per launch: an honest ``fma-1`` took 146 times
  as long as ``fma-4``), so it is not checked there.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from techday.gpuspecs import SPECS
from techday.tier import GpuInfo

from .counts import MAX_L2_BYTES, MAX_SM_COUNT, kernel_table, plan_dict, plan_for
from .limits import _MIG, HOST_LINK_GBS, device_limits, limit_for, mig_problems, mig_profile, parent_spec
from .schema import LEGACY, MAX_FRACTION, SCHEMA, labels, short, validate

LIMIT_KEYS = ("dram_gbs", "fp32_gflops", "tf32_gflops", "fp16_gflops", "bf16_gflops")
AGREE = 0.02             # a stated limit, fraction or figure may differ from the recomputed one by 2 % (rounding)
MIN_REPS = 5             # fewer timed repetitions than the harness ever takes
MAX_REPS = 1_000_000     # more than it ever takes (a time budget of seconds; the committed runs: at most 200)
MAX_AHEAD_S = 86400      # a run's start time may be ahead of the board's clock by a day (time zones, drift)
MAX_PLANS = 16           # distinct plans one board counts (each costs a child process): a room has a few
LATENCY_FLOOR_US = 0.5   # no CUDA launch completes in under half a microsecond (C++ back-to-back: ~2 us)
# A launch faster than C++ launches back to back is marked (ranked, but above the launch rate any host
# reaches; the kit's H200 runs: 6.7 us from CuPy, 24.5 from Numba).
LAUNCH_MARK_US = 2.0
CPU_MAX_GBS = 2000.0     # no CPU socket pair streams 2 TB/s from DRAM (HBM Xeons: about 1 TB/s)
CPU_MAX_GFLOPS = 100e3   # nor computes 100 TFLOP/s in FP32
# Nor any one CPU (os.cpu_count(), hardware threads) move 200 GB/s or compute 1 TFLOP/s in FP32: a core
# streams about 10 to 30 GB/s from DRAM and under 200 from its own caches, and two AVX-512 FMA units at
# 6 GHz make 384 GFLOP/s. A run's CPU count is shown with its device, so a bigger claim is seen.
CPU_MAX_GBS_PER_CPU = 200.0
CPU_MAX_GFLOPS_PER_CPU = 1000.0
ATTR_SLACK = 1.02        # recorded clocks may exceed the published row by 2 % (driver rounding)
# What a driver names a GPU with: ASCII letters, digits and a few separators ("NVIDIA A100-SXM4-40GB MIG
# 3g.20gb", "Tesla V100-SXM2-16GB"). The table matches names by their ASCII words, so any other
# character would pass through the match unread and be shown beside the ranked figures.
DRIVER_NAME = re.compile(r"[A-Za-z0-9 ._()/+-]{1,128}")
# What the driver reports for memory, as a share of the memory in the row's name (GiB): an H100 80GB
# reports 79.6 GiB, an H200 139.8 of 141, a T4 with ECC on 14.8 of 16 (ECC keeps a sixteenth of GDDR6).
MEMORY_SHARE = (0.85, 1.0)
MIG_MEMORY_SHARE = (0.8, 1.0)
# The first driver branch, and the first CUDA version, that ran each architecture (NVIDIA's release
# notes: Hopper and Ada R520 / CUDA 11.8, GA10x R455 / 11.1, GA100 R450 / 11.0, Turing R410 / 10.0,
# Volta R384 / 9.0).
FIRST_DRIVER = {(9, 0): (520, (11, 8)), (8, 9): (520, (11, 8)), (8, 6): (455, (11, 1)), (8, 0): (450, (11, 0)),
                (7, 5): (410, (10, 0)), (7, 0): (384, (9, 0))}
# The CUDA driver API each driver branch's own libcuda reports (a newer one only through a forward-
# compatibility package, never an older one: the user-mode driver must match the kernel module's).
BRANCH_API = ((450, (11, 0)), (455, (11, 1)), (460, (11, 2)), (465, (11, 3)), (470, (11, 4)), (495, (11, 5)),
              (510, (11, 6)), (515, (11, 7)), (520, (11, 8)), (525, (12, 0)), (530, (12, 1)), (535, (12, 2)),
              (545, (12, 3)), (550, (12, 4)), (555, (12, 5)), (560, (12, 6)), (565, (12, 7)), (570, (12, 8)),
              (575, (12, 9)), (580, (13, 0)))
DRIVER_VERSION = re.compile(r"(\d{3,4})(\.\d{1,4}){1,3}")
CUDA_VERSION = re.compile(r"(\d{1,2})\.(\d{1,2})")
# The roofline sweep on a GPU: a longer FMA chain over the same bytes takes at least this share of a
# shorter one's time (the kit's H200 runs: 1.000 to 12.1 times; the slack is for noise).
SWEEP_SLACK = 0.9


@dataclass
class Figure:
    """One timed result, recomputed: what the board ranks and shows."""

    key: str
    family: str
    kernel: str
    impl: str
    device: str
    metric: str
    value: float
    best: float
    limit: float | None
    fraction: float | None
    median_s: float
    gflops: float | None = None      # FLOP rate at the median time (for the roofline), from the plan's FLOPs
    intensity: float | None = None   # the plan's FLOPs per byte
    times: tuple = ()                # the recorded (median, min, max, spread, reps): what a replay keeps
    # Above its physical bound (the device's limit, or the host link for a host-device copy), at its
    # median or its fastest repetition, yet under the 105 % that refuses it: ranked, and marked so.
    above_limit: bool = False
    amount: int | None = None        # the plan's bytes (GB/s) or FLOPs (GFLOP/s) the figure is of; None for us


@dataclass
class Verified:
    doc: dict
    figures: list[Figure] = field(default_factory=list)
    model: str = ""
    limits: dict = field(default_factory=dict)


class Refused(ValueError):
    """The file cannot be ranked; the message is the reason."""


def _gpu_info(g: dict) -> GpuInfo:
    m = re.fullmatch(r"(\d{1,2})\.(\d{1,2})", g["cc"])
    if not m:
        raise Refused(f"environment.gpu.cc {short(g['cc'])} is not a compute capability")
    ints = {k: g[k] for k in ("memory_bytes", "sm_count", "bus_width_bits", "l2_bytes")}
    if any(v <= 0 for v in ints.values()) or g["clock_mhz"] <= 0 or g["memory_clock_mhz"] <= 0:
        raise Refused("environment.gpu: device attributes must be positive")
    if g["l2_bytes"] > MAX_L2_BYTES or g["sm_count"] > MAX_SM_COUNT:
        raise Refused("environment.gpu: L2 size or SM count beyond any GPU")
    return GpuInfo(0, g["name"], (int(m.group(1)), int(m.group(2))), g["memory_bytes"], g["sm_count"],
                   int(g["clock_mhz"] * 1e3), int(g["memory_clock_mhz"] * 1e3), g["bus_width_bits"], g["l2_bytes"],
                   1024, 2048, 32, 0, bool(g.get("ecc")), 0)


def _check_attributes(g: dict, spec) -> None:
    """The recorded attributes must not claim more than the published row of the GPU they name
    (catches a file that raises its clocks or bus to raise its own limit)."""
    mig = mig_profile(g["name"]) is not None
    claims = []
    if f"{spec.cc[0]}.{spec.cc[1]}" != g["cc"]:
        claims.append(f"compute capability {g['cc']} (the {spec.name} is {spec.cc[0]}.{spec.cc[1]})")
    if g["sm_count"] > spec.sm_count or (not mig and g["sm_count"] != spec.sm_count):
        claims.append(f"{g['sm_count']} SMs (the {spec.name} has {spec.sm_count})")
    if g["bus_width_bits"] != spec.bus_width_bits:
        claims.append(f"a {g['bus_width_bits']}-bit bus (the {spec.name} has {spec.bus_width_bits})")
    if g["memory_clock_mhz"] > ATTR_SLACK * spec.memory_clock_mhz:
        claims.append(f"memory clock {g['memory_clock_mhz']:.0f} MHz (the {spec.name}: {spec.memory_clock_mhz})")
    if g["clock_mhz"] > ATTR_SLACK * spec.boost_clock_mhz:
        claims.append(f"SM clock {g['clock_mhz']:.0f} MHz (the {spec.name}: {spec.boost_clock_mhz})")
    l2 = spec.l2_mib * 2**20
    if g["l2_bytes"] > ATTR_SLACK * l2 or (not mig and abs(g["l2_bytes"] - l2) > 0.01 * l2):
        # The L2 size sets the plan (arrays of at least 8 x L2): a whole GPU reports its row's L2.
        claims.append(f"{g['l2_bytes']:,} bytes of L2 (the {spec.name}: {spec.l2_mib} MiB)")
    if mig:
        claims += mig_problems(g["name"], g["sm_count"], spec)
    # Memory: the row's (or the name's: a V100 comes with 16 or 32 GB), or the MIG profile's. Nothing
    # the board computes uses it; a file that names one part and records another's memory (an A100
    # run renamed an H100) is not a run of the part it names.
    prof = mig_profile(g["name"])
    named = re.search(r"(\d+)GB", _MIG.sub("", g["name"]), re.IGNORECASE)
    gib = prof[1] if prof else (int(named.group(1)) if named else spec.memory_gb)
    lo, hi = MIG_MEMORY_SHARE if prof else MEMORY_SHARE
    if not lo * gib * 2**30 <= g["memory_bytes"] <= hi * gib * 2**30:
        claims.append(f"{g['memory_bytes'] / 2**30:.1f} GiB of memory (the {spec.name}"
                      f"{' slice' if prof else ''}: {gib} GB, of which a driver reports {lo:.0%} to {hi:.0%})")
    if claims:
        raise Refused("device attributes do not match the GPU they name: " + "; ".join(claims))


def _version(text, pattern) -> tuple | None:
    m = pattern.fullmatch(text) if isinstance(text, str) else None
    return tuple(int(x) for x in re.findall(r"\d+", text)) if m else None


def _check_software(env: dict, spec, v2: bool) -> None:
    """The driver and CUDA versions a run records must be ones its part runs under: a driver branch
    no older than the first that ran its architecture, a CUDA driver API no older than that
    branch's own, and a CUDA runtime of no newer major version than the driver API (a newer minor
    version runs: CUDA's minor-version compatibility). A value left out (null: no
    ``/proc/driver/nvidia`` in a container) is not judged, except the driver API on version 2 (the
    harness reads it from the driver on every GPU run)."""
    problems = []
    driver, api, runtime = env.get("driver_version"), env.get("cuda_driver_api"), env.get("cuda_runtime")
    dv = _version(driver, DRIVER_VERSION)
    av = _version(api, CUDA_VERSION)
    rv = _version(runtime, CUDA_VERSION)
    for name, value, parsed in (("driver_version", driver, dv), ("cuda_driver_api", api, av),
                                ("cuda_runtime", runtime, rv)):
        if value is not None and parsed is None:
            problems.append(f"{name} {short(value)} is not a version a driver reports")
    if v2 and api is None:
        problems.append("cuda_driver_api missing: the harness records the driver's CUDA version on every GPU run")
    first = FIRST_DRIVER.get(tuple(spec.cc))
    if first and dv and dv[0] < first[0]:
        problems.append(f"driver {driver}: the {spec.name} (compute capability {spec.cc[0]}.{spec.cc[1]}) needs "
                        f"branch {first[0]} or later")
    if first and av and av[:2] < first[1]:
        problems.append(f"CUDA driver API {api}: the {spec.name} needs CUDA {first[1][0]}.{first[1][1]} or later")
    if dv and av:
        native = [cuda for branch, cuda in BRANCH_API if branch <= dv[0]]
        if native and av[:2] < native[-1]:
            problems.append(f"CUDA driver API {api} under driver {driver}, whose own libcuda reports "
                            f"{native[-1][0]}.{native[-1][1]} (a user-mode driver older than the kernel module's "
                            "does not load)")
    if av and rv and rv[0] > av[0]:
        problems.append(f"CUDA runtime {runtime} under driver API {api}: a runtime of a newer major version does not "
                        "run on it")
    if problems:
        raise Refused("a driver and CUDA no real run of this part has: " + "; ".join(problems[:3]))


def at_row_clocks(g: dict, spec) -> dict:
    """The recorded attributes with clocks no lower than the published row's. A file may record lower
    clocks (a capped part), but a limit computed from them is the file's word: the board's limit is
    never below the row's, so lowering one's clocks cannot make a figure read as a larger fraction."""
    return {**g, "clock_mhz": max(g["clock_mhz"], spec.boost_clock_mhz),
            "memory_clock_mhz": max(g["memory_clock_mhz"], spec.memory_clock_mhz)}


def project_limits(doc: dict) -> tuple[dict, str]:
    """The project's limits for the run's device, and its model name (CPU tier: no limits). On the GPU
    tier from the recorded attributes with clocks raised to the row's (:func:`at_row_clocks`)."""
    limits, model, _ = _limits(doc)
    return limits, model


def _limits(doc: dict) -> tuple[dict, str, dict]:
    """(the board's limits, the model, the limits the file's own attributes give: what its harness wrote)."""
    if doc["tier"] == "cpu":
        # The count judged first, then the file's name for its CPU: shown after the name ("CPU: AMD EPYC
        # (2 cores) (64 cores)"), a name could state another count ahead of the one the ceilings used.
        env = doc["environment"]
        return device_limits(None), f"{env.get('cpu_count')} cores: {env.get('cpu')}", device_limits(None)
    g = doc["environment"]["gpu"]
    spec = parent_spec(g["name"])
    if spec is None:
        raise Refused(f"GPU {short(g['name'])} is not in the project's table (techday.gpuspecs): its limits "
                      "cannot be checked, so its figures cannot be ranked")
    if not DRIVER_NAME.fullmatch(g["name"]):
        raise Refused(f"GPU name {ascii(g['name'])[:60]} holds characters no driver name has")
    migs = list(_MIG.finditer(g["name"]))
    if len(migs) > 1 or (migs and migs[0].end() != len(g["name"])):
        # A driver names one profile, last ("NVIDIA H100 80GB HBM3 MIG 1g.10gb"). With two, the first was
        # judged (a 7g slice: the whole GPU's limits) while the name read as the last ("1g.10gb").
        raise Refused(f"GPU name {ascii(g['name'])[:80]} does not end in its one MIG profile, as a driver names a "
                      "slice: which slice was measured cannot be told")
    _check_attributes(g, spec)
    _check_software(doc["environment"], spec, doc["schema"] == SCHEMA)
    model = spec.name if mig_profile(g["name"]) is None else f"{spec.name} MIG {'{}g.{}gb'.format(*mig_profile(g['name']))}"
    return device_limits(_gpu_info(at_row_clocks(g, spec))), model, device_limits(_gpu_info(g))


def plan_key(plan) -> tuple:
    """What a plan's kernel table depends on."""
    return (plan.tier, plan.quick, *(tuple(v) if isinstance(v, list) else v for v in plan_dict(plan).values()))


@functools.lru_cache(maxsize=1)
def row_plans() -> frozenset:
    """The plans of every tier and mode on every whole GPU of the table, as it reports itself."""
    keys = {plan_key(plan_for("cpu", mode)) for mode in ("quick", "full", "ci")}
    keys |= {plan_key(plan_for("gpu", mode, spec.l2_mib * 2**20, spec.sm_count))
             for spec in SPECS for mode in ("quick", "full")}
    return frozenset(keys)


def started_at(text: str) -> datetime | None:
    """A run's ``started`` as an aware time (one without a zone is taken as UTC), or None."""
    try:
        t = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _close(a: float, b: float, tol: float = AGREE) -> bool:
    return abs(a - b) <= tol * max(abs(a), abs(b))


def verify(doc, plans: set | None = None, legacy: bool = False) -> Verified:
    """The figures of ``doc`` recomputed from the plan and the project's limits; :class:`Refused`
    names the first reason the file cannot be ranked. ``plans``: the plans a board has counted so far
    (shared across its files), capped at :data:`MAX_PLANS` so that files cannot make it count plan
    after plan. ``legacy``: the file is one of the kit's own committed runs, which may be version 1."""
    problems = validate(doc)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise Refused("; ".join(problems[:3]) + more)
    if doc["schema"] == LEGACY and not legacy:
        raise Refused(f"schema mismatch: {LEGACY!r} was written by an older harness, without the repetitions behind "
                      f"each figure (no samples, no audit): this board reads it only as the kit's own committed runs; "
                      f"rerun techday bench with this kit ({SCHEMA!r})")
    tier, mode, env = doc["tier"], doc["mode"], doc["environment"]
    if env.get("tier", tier) != tier:
        raise Refused(f"tier {tier!r} but the environment says {short(env.get('tier'))}")
    if tier == "gpu" and mode == "ci":
        raise Refused("mode 'ci' is a CPU-tier mode; a GPU run is 'quick' or 'full'")
    if tier == "gpu" and env.get("simulator"):
        raise Refused("a GPU-tier run in the CUDA simulator: the simulator only checks kernels on the CPU tier")
    started = started_at(doc["started"])
    if started is None:
        raise Refused(f"started {short(doc['started'])} is not an ISO 8601 time")
    ahead = (started - datetime.now(timezone.utc)).total_seconds()
    if ahead > MAX_AHEAD_S:
        raise Refused(f"started {short(doc['started'])} is {ahead / 86400:,.1f} days ahead of the board's clock: "
                      "no run starts in the future")
    limits, model, own = _limits(doc)
    if tier == "cpu":
        named = f"CPU: {env.get('cpu')} ({env.get('cpu_count')} cores)"
        if env["device"] != named:  # what the harness writes, and what the board shows for the run
            raise Refused(f"environment.device {short(env['device'])} is not the CPU and count the run records "
                          f"({short(named)})")
    g = env.get("gpu") or {}
    plan = plan_for(tier, mode, g.get("l2_bytes", 0), g.get("sm_count", 0))
    expected_plan = plan_dict(plan)
    if doc["plan"] != expected_plan:
        diff = [k for k in expected_plan if doc["plan"].get(k) != expected_plan[k]] or list(doc["plan"])
        raise Refused(f"plan differs from the one techday bench uses for a {tier} run in mode {mode!r} on this "
                      f"device ({', '.join(diff[:4])}): not a run of this suite")
    # The file's stated limits: ignored for every figure, but a file that states other limits than the
    # project's table gives was edited (or made by another version): it is not ranked.
    for key in LIMIT_KEYS:
        stated, ours, theirs = doc["limits"].get(key), limits.get(key), own.get(key)
        if stated is None:
            continue
        # What the harness wrote from the file's own (possibly lower) clocks agrees too; the board's
        # figures use its own limits either way.
        if ours is None or not (_close(stated, ours) or (theirs is not None and _close(stated, theirs))):
            raise Refused(f"limits.{key}: the file states {stated:.6g}, the project's table gives "
                          f"{'no such limit' if ours is None else f'{ours:.6g}'} for {model}")
    wrong_labels = labels(doc)
    if wrong_labels:
        # After the device and the plan: a renamed GPU is answered for its name, not for its label.
        raise Refused("; ".join(wrong_labels[:2]))
    if plans is not None:
        # Only the plans no row of the table gives (a MIG slice, an L2 size off its row's) count
        # against the cap: those a file can vary at will, one byte of L2 at a time. The rows' own
        # plans are a fixed few, so files that spend the cap cannot leave an honest run out.
        key = plan_key(plan)
        if key not in plans and key not in row_plans() and len(plans) >= MAX_PLANS:
            raise Refused(f"this board already counted {MAX_PLANS} distinct plans that no GPU of the table "
                          "gives; a room has a few")
        if key not in row_plans():
            plans.add(key)
    table = kernel_table(plan)
    out = Verified(doc, model=model, limits=limits)
    bounds = dict(limits)
    bounds["own"] = own
    bounds["legacy"] = doc["schema"] == LEGACY
    cpus = env.get("cpu_count")
    bounds["cpu_count"] = cpus if isinstance(cpus, int) and cpus > 0 else None
    if tier == "gpu":
        bounds["host_link_gbs"] = HOST_LINK_GBS.get(parent_spec(g["name"]).name)
    seen: dict[tuple[str, str, str], int] = {}
    for i, r in enumerate(doc["results"]):
        if r["kernel"] == "*" and r["impl"] == "*" and r["status"] == "error":
            continue  # a family that failed to load: nothing of it is ranked
        first = seen.setdefault((r["family"], r["kernel"], r["impl"]), i)
        if first != i:  # two timings of one implementation: the file could offer the board its pick
            raise Refused(f"results[{i}] ({short(r['family'] + '.' + r['kernel'], 50)} {short(r['impl'], 30)}) "
                          f"repeats results[{first}]")
        out.figures += _result(i, r, tier, table, bounds)
    timed = [r["seconds"] for r in doc["results"] if r["status"] == "ok"]
    if len(timed) >= 2 and all(sec["min"] == sec["max"] for sec in timed):
        raise Refused(f"every one of the {len(timed)} timed results took exactly the same time in each of its "
                      "repetitions (fastest = median = slowest): not a measurement")
    if tier == "gpu":
        _sweep_in_order(out.figures)
    return out


def _sweep_in_order(figures: list[Figure]) -> None:
    """On a GPU, the roofline sweep's kernels stream the same bytes and chain more FMAs per element as
    ``k`` grows: a longer chain cannot take less time than a shorter one (median and fastest time,
    within :data:`SWEEP_SLACK`). An ``fma-64`` invented at 60 TFLOP/s on an H200 (under the 67 TFLOP/s
    limit) took 0.27 ms beside the run's own ``fma-16`` at 0.40 ms: 4 times the work in two thirds of
    the time."""
    by_impl: dict[str, list[tuple[int, Figure]]] = {}
    for f in figures:
        m = re.fullmatch(r"fma-(\d+)", f.kernel)
        if f.family == "roofline" and f.device == "gpu" and m:
            by_impl.setdefault(f.impl, []).append((int(m.group(1)), f))
    for impl, chain in by_impl.items():
        chain.sort(key=lambda x: x[0])
        for (k1, a), (k2, b) in zip(chain, chain[1:]):
            for what, t1, t2 in (("median", a.median_s, b.median_s), ("fastest", a.times[1], b.times[1])):
                if t2 < SWEEP_SLACK * t1:
                    raise Refused(f"roofline.fma-{k2} {impl}: its {what} time {t2 * 1e3:.4g} ms is under "
                                  f"{SWEEP_SLACK:.0%} of roofline.fma-{k1}'s {t1 * 1e3:.4g} ms: {k2 // k1 if k2 % k1 == 0 else f'{k2 / k1:.3g}'} "
                                  "times the FMAs on the same bytes cannot take less time (figures physics ties "
                                  "together, out of order)")


def _result(i: int, r: dict, tier: str, table: dict, limits: dict) -> list[Figure]:
    key = f"{r['family']}.{r['kernel']}"
    where = f"results[{i}] ({short(key, 50)} {short(r['impl'], 30)})"
    k = table.get(key)
    if k is None:
        raise Refused(f"{where}: no benchmark {short(key, 50)} in this suite")
    device = k["impls"].get(r["impl"])
    if device is None:
        raise Refused(f"{where}: the suite has no implementation {short(r['impl'])} of {key}")
    if "device" in r and r["device"] != device:
        raise Refused(f"{where}: marked device {short(r['device'])}, but {r['impl']} runs on the {device}")
    status = r["status"]
    if status == "checked" and not (tier == "cpu" and device == "gpu"):
        raise Refused(f"{where}: 'checked' (simulator only) is a CPU-tier status of a GPU implementation")
    if status != "ok":
        return []
    if tier == "cpu" and device == "gpu":
        raise Refused(f"{where}: a GPU implementation timed on the CPU tier")
    for name in ("bytes", "flops", "metric", "limit_key", "dtype"):
        if name in r and r[name] != k[name]:
            raise Refused(f"{where}: {name} {short(r[name])}, but the plan gives {k[name]!r}")
    sec = r["seconds"]
    if sec["reps"] < MIN_REPS:
        raise Refused(f"{where}: {sec['reps']} timed repetitions, fewer than the {MIN_REPS} the harness takes")
    if sec["reps"] > MAX_REPS:
        raise Refused(f"{where}: {sec['reps']:,} timed repetitions, more than the {MAX_REPS:,} any run of the "
                      "harness takes")
    if limits.get("legacy") and not 0 <= sec.get("spread", 0) <= 1000:
        # Version 1 states a spread with nothing behind it; version 2's is its samples' own (schema.contract),
        # whatever it is: an honest Numba CPU figure on a loaded 2-core machine (0.02 ms a call, then 40 ms
        # while a thread waited for a core) had an interquartile range 1,945 times its median.
        raise Refused(f"{where}: spread {short(sec.get('spread'))} is not a spread")
    clock = "cuda-event" if device == "gpu" and tier == "gpu" and k["timer"] == "device" else "perf_counter"
    if sec["clock"] != clock:
        raise Refused(f"{where}: timed with {sec['clock']}, but the harness times it with {clock}")
    if clock == "cuda-event" and k["cold"] and sec.get("calls", 1) != 1:
        # A cold kernel is timed one call per pair of events, after the L2 flush (techday.bench.core).
        raise Refused(f"{where}: {sec['calls']} back-to-back calls per repetition, but the harness times this "
                      "kernel cold, one call after each L2 flush")
    metric = k["metric"]
    amount = {"gbs": k["bytes"], "gflops": k["flops"]}.get(metric)

    def rate(seconds: float) -> float:
        return amount / seconds / 1e9 if amount is not None else seconds * 1e6

    value, best = rate(sec["median"]), rate(sec["min"])
    if not (math.isfinite(value) and math.isfinite(best)):
        raise Refused(f"{where}: the recorded times give no finite figure")
    if not _close(r["value"], value, 0.01):
        raise Refused(f"{where}: value {r['value']:.6g} does not follow from the plan's counts and the median time "
                      f"({value:.6g})")
    if r.get("best") is not None and not _close(r["best"], best, 0.01):
        raise Refused(f"{where}: best {r['best']:.6g} does not follow from the fastest time ({best:.6g})")
    on_gpu = tier == "gpu" and device == "gpu"
    limit = limit_for(limits, k["limit_key"], (k["flops"] / k["bytes"]) if k["bytes"] and k["flops"] else None) \
        if on_gpu else None
    fraction = value / limit if limit else None
    theirs = limit_for(limits["own"], k["limit_key"], (k["flops"] / k["bytes"]) if k["bytes"] and k["flops"] else None) \
        if on_gpu and limits.get("own") else None
    if r.get("fraction") is not None and (fraction is None or not (
            _close(r["fraction"], fraction) or (theirs and _close(r["fraction"], value / theirs)))):
        raise Refused(f"{where}: the file's fraction {r['fraction']:.4g} is not the recomputed "
                      f"{'none' if fraction is None else f'{fraction:.4g}'}")
    above = _bound(where, metric, value, best, limit, limits, on_gpu, k)
    intensity = k["flops"] / k["bytes"] if k["bytes"] and k["flops"] else None
    gflops = k["flops"] / sec["median"] / 1e9 if k["flops"] else None
    times = (sec["median"], sec["min"], sec["max"], sec.get("spread"), sec["reps"])
    return [Figure(key, k["family"], k["kernel"], r["impl"], device, metric, value, best, limit, fraction,
                   sec["median"], gflops, intensity, times, above, amount)]


def _bound(where, metric, value, best, limit, limits, on_gpu, k) -> bool:
    """Every timed figure against a physical bound (the fastest repetition too, not only the median).
    Past :data:`.schema.MAX_FRACTION` of it the file is refused; a GPU figure above the bound itself,
    but within that headroom (left for rounding), is kept and said to be above it (True): a triad at
    103 % of the DRAM bandwidth ranked first, above every honest figure, and nothing said no memory
    moves that much. A launch faster than :data:`LAUNCH_MARK_US` is marked the same way (its rate of
    launches is above the limit). CPU ceilings are coarse bounds for any machine, not this one's: never
    marked."""
    if metric == "us":
        if best < LATENCY_FLOOR_US:
            raise Refused(f"{where}: {best:.3g} us per launch, below the {LATENCY_FLOOR_US} us no GPU launch beats")
        return on_gpu and best < LAUNCH_MARK_US
    if on_gpu:
        bound, name = limit, k["limit_key"]
        if bound is None and metric == "gbs":
            # A rate with no device limit is a host-device copy: it crosses the host link once.
            bound, name = limits.get("host_link_gbs"), "host link (PCIe x16, one direction)"
        if bound is None:
            raise Refused(f"{where}: no limit to check a GPU figure against")
    else:
        bound, name = (CPU_MAX_GBS, "CPU ceiling") if metric == "gbs" else (CPU_MAX_GFLOPS, "CPU ceiling")
        cpus = limits.get("cpu_count")
        if cpus:
            per = cpus * (CPU_MAX_GBS_PER_CPU if metric == "gbs" else CPU_MAX_GFLOPS_PER_CPU)
            if per < bound:
                bound, name = per, f"CPU ceiling of {cpus} CPUs"
    top = max(value, best)
    if top > MAX_FRACTION * bound:
        raise Refused(f"{where}: {top:.4g} is {top / bound:.0%} of the {name} limit {bound:.4g}, above "
                      f"{MAX_FRACTION:.0%}: not physically possible")
    return on_gpu and top > bound
