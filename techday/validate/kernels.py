"""``techday kernels``: every Numba CUDA kernel of the course, compiled by the real compiler without a GPU.

Three steps, each in its own processes:

1. **Record** (CPU tier, simulator on): every lab that defines a ``@cuda.jit`` kernel runs as the
   plain script its jupytext source is (``scale=ci``), and every benchmark family runs its Numba CUDA
   implementations once at the simulator's tiny size, with the recorder of :mod:`techday.kernelrec`
   switched on. Kernels a lab or family defines but does not launch are written down too (their
   source and globals), so that a listed GPU-only kernel compiles with the values it really reads.
2. **Compile** (simulator off): every recorded kernel and argument signature, and every kernel of
   ``course/gpu_only_kernels.toml`` with its listed signatures, is compiled by numba-cuda
   (``cuda.compile_ptx``: typing, lowering, NVVM) for compute capability 8.0 and 9.0, device
   functions included, then assembled by ``ptxas -v``. Kernels that read a constant declared with
   :meth:`techday.Lab.per_tier` are compiled with its CPU-tier and its GPU-tier value.
3. **Check**: registers, spills and static shared memory from ``ptxas``; every recorded launch against
   the limits of both architectures: threads per block, registers (allocated per warp in units of
   256) x warps against the 64 Ki-register file a block may use, static plus dynamic shared memory
   against the 48 KiB a block gets without an opt-in. For the GPU-tier variant a block dimension
   equal to the CPU-tier value of a declared constant is checked at its GPU-tier value.

A failure names the file, the lab cell and the source line. Exit status: 0 when everything compiled
and fits, 1 when something failed (the other kernels are still checked), 2 when a tool is missing.

What this does not cover: whether a kernel is *correct* on a GPU (the simulator and tests/gpu do
that), kernels only launched with types the CPU tier never passes (list them), the block size of a
launch whose dimensions are computed from the device (the CPU-tier value is checked), occupancy and
speed, ``@vectorize``/``@guvectorize`` CUDA ufuncs beyond compiling their scalar function as a device
function, and dynamic shared memory above 48 KiB with an opt-in.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import atomicfile, proctree
from ..kernelrec import error_line, error_location

TARGETS = ((8, 0), (9, 0))
# Per-block limits of compute capability 8.0 and 9.0 (CUDA C++ Programming Guide, "Technical
# Specifications per Compute Capability").
LIMITS = {
    (8, 0): {"threads": 1024, "registers_per_block": 65536, "registers_per_thread": 255, "shared": 48 * 1024},
    (9, 0): {"threads": 1024, "registers_per_block": 65536, "registers_per_thread": 255, "shared": 48 * 1024},
}
GPU_ONLY = Path("course") / "gpu_only_kernels.toml"
RECORD_TIMEOUT_S = 300
COMPILE_TIMEOUT_S = 600
# What a kernel listed without a recording may use (as ptxreport's PREAMBLE).
STATIC_GLOBALS = {
    "math": {"module": "math"}, "np": {"module": "numpy"}, "numpy": {"module": "numpy"},
    "cuda": {"module": "numba.cuda"}, "numba": {"module": "numba"},
    **{t: {"numba_type": t} for t in ("float32", "float64", "int32", "int64", "uint8", "uint32")},
}


class KernelsError(RuntimeError):
    """A missing piece (a tool, a file) that stops the whole check; the message says which."""


# --- where things are ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Definition:
    """A ``@cuda.jit`` function found in the source (file relative to the root)."""

    file: str
    name: str
    line: int
    device: bool


def _is_cuda_jit(deco) -> tuple[bool, bool]:
    """(is ``@cuda.jit`` or ``@cuda.jit(...)``, has ``device=True``)."""
    call = deco if isinstance(deco, ast.Call) else None
    target = call.func if call else deco
    ok = isinstance(target, ast.Attribute) and target.attr == "jit" and isinstance(target.value, ast.Name) \
        and target.value.id == "cuda"
    device = bool(call) and any(kw.arg == "device" and isinstance(kw.value, ast.Constant) and kw.value.value is True
                                for kw in call.keywords)
    return ok, device


def definitions_in(path: Path, root: Path) -> list[Definition]:
    """Every ``@cuda.jit`` function defined in one Python file, nested ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                ok, device = _is_cuda_jit(deco)
                if ok:
                    found.append(Definition(rel(path, root), node.name, node.lineno, device))
                    break
    return sorted(found, key=lambda d: (d.file, d.line))


def kernel_files(root: Path) -> list[Path]:
    """The sources whose kernels are checked: labs, benchmark families, the package."""
    return sorted([*root.glob("labs/*/*.py"), *root.glob("benchmarks/*.py"), *root.glob("techday/**/*.py")])


def scan(root: Path) -> list[Definition]:
    return [d for path in kernel_files(root) for d in definitions_in(path, root)]


def rel(path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


_MARKER = re.compile(r"^# %%(.*)$")
_CELL_ID = re.compile(r'\bid="([^"]+)"')


def cell_at(path: Path, line: int) -> str:
    """The lab cell that holds ``line`` of a jupytext source: ``cell 12 'saxpy'``, or '' elsewhere."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    number, ident = 0, ""
    for i, text in enumerate(lines[:line], 1):
        m = _MARKER.match(text)
        if m:
            number += 1
            found = _CELL_ID.search(m.group(1))
            ident = found.group(1) if found else ""
    if not number:
        return ""
    return f"cell {number}" + (f" '{ident}'" if ident else "")


def where(file: str, line: int, root: Path) -> str:
    """``labs/04-memory-subsystem/04-memory-subsystem.py cell 9 'transpose_tiled' line 263``."""
    path = root / file
    cell = cell_at(path, line) if file.startswith("labs/") else ""
    return " ".join(x for x in (file, cell, f"line {line}") if x)


def source_line(root: Path, file: str, line: int) -> str:
    try:
        return (root / file).read_text(encoding="utf-8").splitlines()[line - 1].strip()
    except (OSError, IndexError):
        return ""


# --- the GPU-only list --------------------------------------------------------------------------

@dataclass
class Listed:
    file: str
    name: str
    signatures: list[str]
    why: str
    block: list[int] = field(default_factory=list)
    dynamic_shared: int = 0
    constants: dict = field(default_factory=dict)


def load_gpu_only(root: Path) -> list[Listed]:
    """``course/gpu_only_kernels.toml``: ``[[kernel]]`` tables with file, name, signatures and why."""
    path = root / GPU_ONLY
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KernelsError(f"{GPU_ONLY}: {exc}") from None
    out = []
    for i, entry in enumerate(data.get("kernel", []), 1):
        missing = [k for k in ("file", "name", "signatures", "why") if k not in entry]
        if missing:
            raise KernelsError(f"{GPU_ONLY}: kernel {i} lacks {', '.join(missing)}")
        out.append(Listed(entry["file"], entry["name"], list(entry["signatures"]), entry["why"],
                          list(entry.get("block", [])), int(entry.get("dynamic_shared", 0)),
                          dict(entry.get("constants", {}))))
    return out


# --- step 1: record -----------------------------------------------------------------------------

@dataclass
class Target:
    """One thing to record: a lab (its jupytext source) or a benchmark family."""

    kind: str  # "lab" | "bench"
    name: str
    path: Path

    @property
    def label(self) -> str:
        return f"lab {self.name}" if self.kind == "lab" else f"benchmark {self.name}"


def _may_define_kernels(path: Path, root: Path) -> bool:
    """Whether ``path`` defines a kernel, or cannot be read to tell (then its recording says why)."""
    try:
        return bool(definitions_in(path, root))
    except (OSError, ValueError, SyntaxError):
        return True


def targets(root: Path, labs: list[str] | None = None, families: list[str] | None = None) -> list[Target]:
    """Labs that define a kernel and every benchmark family (or only those asked for)."""
    out = []
    for path in sorted(root.glob("labs/*/*.py")):
        name = path.parent.name
        if labs is not None and name not in labs:
            continue
        if labs is None and not _may_define_kernels(path, root):
            continue
        out.append(Target("lab", name, path))
    from ..bench.families import FAMILIES

    for fam in FAMILIES:
        if families is not None and fam not in families:
            continue
        path = root / "benchmarks" / f"{fam}.py"
        if path.is_file():
            out.append(Target("bench", fam, path))
    return out


def _record_env(log: Path, root: Path) -> dict:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "TECHDAY_TIER": "cpu", "TECHDAY_SCALE": "ci",
           "TECHDAY_KERNEL_LOG": str(log), "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
           "TECHDAY_ROOT": str(root), "TECHDAY_BENCHMARKS": str(root / "benchmarks")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def record(target: Target, out_dir: Path, root: Path) -> tuple[Path, str, float]:
    """Run one target with the recorder in a child process; (log, problem or '', seconds)."""
    log = out_dir / f"{target.kind}-{target.name}.jsonl"
    log.unlink(missing_ok=True)
    work = out_dir / "work" / target.name
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        proc = proctree.run([sys.executable, "-m", "techday.validate.kernels", "_record", target.kind, str(target.path),
                             str(log), str(root)], RECORD_TIMEOUT_S, cwd=work, env=_record_env(log, root))
    except subprocess.TimeoutExpired:
        return log, f"{target.label}: no end after {RECORD_TIMEOUT_S} s on the CPU tier", time.monotonic() - t0
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        last = [x for x in (proc.stderr or proc.stdout).strip().splitlines() if x.strip()]
        why = last[-1] if last else f"exit {proc.returncode}"
        return log, f"{target.label}: failed on the CPU tier: {why}", seconds
    return log, "", seconds


def _record_child(kind: str, path: str, log: str, root: str) -> int:
    """In the recording process (simulator on): run the target, then write down unlaunched kernels."""
    import runpy
    import traceback

    from .. import kernelrec
    from ..lab import setup

    setup(tier="cpu", scale="ci", quiet=True)
    kernelrec.install(log)
    file = os.path.abspath(path)
    listed = [x for x in load_gpu_only(Path(root)) if os.path.abspath(Path(root) / x.file) == file]
    ns: dict = {}
    status = 0
    try:
        if kind == "lab":
            ns = runpy.run_path(file, run_name="__main__")
        else:
            from ..bench import families as fam
            from ..bench.core import Plan

            module = fam.load(Path(path).stem)
            ns = vars(module)
            for kernel in module.kernels(Plan.simulator()):
                for impl in kernel.impls:
                    if impl.device == "gpu" and not impl.requires:  # Numba CUDA: no CuPy or PyTorch
                        run, fetch = impl.make(kernel.inputs())
                        run()
                        fetch()
    except BaseException as exc:  # noqa: BLE001 - report where the lab stopped, keep what was recorded
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) == file]
        at = where(rel(file, Path(root)), frames[-1].lineno, Path(root)) if frames else rel(file, Path(root))
        print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''} at {at}",
              file=sys.stderr)
        ns = ns or {}
        status = 1
    for value in list(ns.values()):
        if kernelrec._is_sim_kernel(value) and os.path.abspath(value.fn.__code__.co_filename) == file:
            kernelrec.define(value)
    for item in listed:
        value = ns.get(item.name)
        if isinstance(value, types.FunctionType):  # a plain function: a CUDA ufunc's scalar code
            kernelrec.define(value)
    return status


# --- step 2: compile ----------------------------------------------------------------------------

def load_records(paths: list[Path]) -> tuple[dict, list[dict]]:
    defs, launches = {}, []
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["kind"] == "def":
                defs.setdefault(rec["id"], rec)
            elif rec["kind"] == "launch":
                launches.append(rec)
    return defs, launches


def _tier_constants(def_id: str, defs: dict, seen=None) -> dict:
    """Declared tier constants a definition (or a device function it calls) reads: name -> (cpu, gpu)."""
    seen = seen or set()
    if def_id in seen or def_id not in defs:
        return {}
    seen.add(def_id)
    out = {}
    for name, spec in defs[def_id]["globals"].items():
        if "gpu" in spec:
            out[name] = (spec["const"], spec["gpu"])
        elif "function" in spec:
            out.update(_tier_constants(spec["function"], defs, seen))
    return out


def static_def(item: Listed, root: Path) -> dict | None:
    """A definition for a listed kernel the recorder never saw: its source from the file, the
    preamble's names and the listed constants as its globals."""
    path = root / item.file
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, ValueError, SyntaxError):  # its recording failed and said why: a traceback here
        return None
    lines = text.splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == item.name:
            body = lines[node.lineno - 1:node.end_lineno]
            indent = len(body[0]) - len(body[0].lstrip())
            source = "".join(x[indent:] if x.strip() else x for x in body)
            glob = dict(STATIC_GLOBALS)
            glob.update({k: {"const": v} for k, v in item.constants.items()})
            device = any(_is_cuda_jit(d)[1] for d in node.decorator_list) or not any(
                _is_cuda_jit(d)[0] for d in node.decorator_list)
            return {"kind": "def", "id": f"{item.name}-listed", "name": item.name, "file": str(path.resolve()),
                    "line": node.lineno, "source": source, "options": {}, "globals": glob, "deps": [],
                    "device": device}
    return None


@dataclass
class Job:
    """One compilation: a definition, a signature, the tier whose constants it takes."""

    def_id: str
    signature: str
    variant: str  # "cpu" | "gpu"
    launches: list[dict] = field(default_factory=list)
    listed: bool = False
    results: dict = field(default_factory=dict)  # "8.0" -> result of the compiling process

    @property
    def key(self) -> str:
        return f"{self.def_id}|{self.signature}|{self.variant}"


def plan_jobs(defs: dict, launches: list[dict], listed: list[Listed], root: Path,
              files: set[str] | None = None) -> tuple[list[Job], list[str]]:
    """Jobs for every recorded launch signature (and GPU-tier variant) and every listed signature
    (only those of ``files`` when given: the labs and families this run recorded)."""
    jobs: dict[str, Job] = {}
    problems = []

    def add(def_id, sig, launch=None, is_listed=False):
        variants = ["cpu"] + (["gpu"] if _tier_constants(def_id, defs) else [])
        for variant in variants:
            job = jobs.setdefault(f"{def_id}|{sig}|{variant}", Job(def_id, sig, variant, listed=is_listed))
            if launch is not None:
                job.launches.append(launch)

    for launch in launches:
        if launch.get("error") or not launch["signature"]:
            problems.append(f"{launch['def']}: the recorder could not type a launch: {launch.get('error')}")
            continue
        add(launch["def"], launch["signature"], launch)
    for item in listed:
        if files is not None and item.file not in files:
            continue  # its lab or family was not recorded in this run
        file = str((root / item.file).resolve())
        matches = [d for d in defs.values() if d["file"] == file and d["name"] == item.name]
        if not matches:
            made = static_def(item, root)
            if made is None:
                problems.append(f"{GPU_ONLY}: {item.file} defines no function {item.name}")
                continue
            defs[made["id"]] = made
            matches = [made]
        d = matches[0]
        for sig in item.signatures:
            launch = None
            if item.block:
                launch = {"def": d["id"], "signature": sig, "block": item.block, "grid": [],
                          "dynamic_shared": item.dynamic_shared, "origin": str(GPU_ONLY)}
            add(d["id"], sig, launch, is_listed=True)
    return list(jobs.values()), problems


_COMPILE_CHILD = r"""
import json, sys
defs, jobs, cc = json.load(open(sys.argv[1]))
cc = tuple(cc)
from techday.kernelrec import BUILDER
exec(BUILDER)
from techday.ptxreport import find_ptxas, ptxas_verbose, parse_ptxas

ptxas = find_ptxas()[0]
out = {}
for job in jobs:
    res = {}
    try:
        ptx, rec = compile_one(job)
        res["ptx_bytes"] = len(ptx)
        if ptxas and not rec["device"]:  # a device function alone has no entry to report on (its kernels do)
            opts = []
            if rec["options"].get("max_registers"):
                opts.append(f"-maxrregcount={rec['options']['max_registers']}")
            log = ptxas_verbose(ptx, cc, ptxas, options=tuple(opts))
            entry = log[log.find("Compiling entry function"):] if "Compiling entry function" in log else log
            res.update(parse_ptxas(entry))
        res["status"] = "ok"
    except Exception as exc:
        res["status"] = "failed"
        res["error"] = f"{type(exc).__name__}: {exc}"
    out[job["key"]] = res
json.dump(out, open(sys.argv[2], "w"))
"""


def compile_all(defs: dict, jobs: list[Job], out_dir: Path, root: Path) -> None:
    """Compile every job for every target architecture, one child process per architecture, side by side."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    payload = [{"def": j.def_id, "signature": j.signature, "variant": j.variant, "key": j.key} for j in jobs]

    def one(cc):
        spec, result = out_dir / f"compile-{cc[0]}{cc[1]}.json", out_dir / f"compiled-{cc[0]}{cc[1]}.json"
        spec.write_text(json.dumps([defs, payload, list(cc)]), encoding="utf-8")
        result.unlink(missing_ok=True)
        proc = proctree.run([sys.executable, "-c", _COMPILE_CHILD, str(spec), str(result)], COMPILE_TIMEOUT_S,
                            env=env)
        if proc.returncode != 0 or not result.is_file():
            from ..ptxreport import toolkit_missing

            log = (proc.stderr or proc.stdout).strip()
            if toolkit_missing(log):
                raise KernelsError("numba-cuda cannot compile here: the CUDA compiler libraries (NVVM) are missing; "
                                   "pip install -e '.[test]' installs them")
            raise KernelsError(f"the compiling process for sm_{cc[0]}{cc[1]} failed: "
                               f"{log.splitlines()[-1] if log else proc.returncode}")
        return cc, json.loads(result.read_text(encoding="utf-8"))

    with ThreadPoolExecutor(max_workers=len(TARGETS)) as pool:
        for cc, results in pool.map(one, TARGETS):
            for job in jobs:
                job.results[f"{cc[0]}.{cc[1]}"] = results.get(job.key, {"status": "failed", "error": "no result"})


# --- step 3: check ------------------------------------------------------------------------------

def warp_registers(registers: int) -> int:
    """Registers a warp is given: 32 x registers per thread, rounded up to the unit of 256."""
    return -(-registers * 32 // 256) * 256


def gpu_block(block: list[int], constants: dict) -> list[int]:
    """The block of a GPU-tier launch: a dimension equal to a declared constant's CPU value takes its
    GPU value (an over-approximation when another dimension happens to equal it: a larger block is checked)."""
    swap = {cpu: gpu for cpu, gpu in constants.values() if isinstance(cpu, int)}
    return [swap.get(d, d) for d in block]


def launch_problems(res: dict, launch: dict, cc: tuple[int, int], block: list[int]) -> list[str]:
    limits = LIMITS[cc]
    threads = 1
    for d in block or [1]:
        threads *= d
    out = []
    if threads > limits["threads"]:
        out.append(f"{threads} threads per block > {limits['threads']}")
    regs = res.get("registers")
    if regs is not None:
        warps = -(-threads // 32)
        need = warps * warp_registers(regs)
        if need > limits["registers_per_block"]:
            out.append(f"{regs} registers x {threads} threads needs {need} registers > the "
                       f"{limits['registers_per_block']} a block may use")
    shared = (res.get("shared_bytes") or 0) + int(launch.get("dynamic_shared") or 0)
    if shared > limits["shared"]:
        out.append(f"{shared} B shared memory per block > {limits['shared']} B")
    return out


@dataclass
class Row:
    kernel: str
    where: str
    signature: str
    variant: str
    registers: str
    spills: str
    shared: str
    status: str
    problems: list[str] = field(default_factory=list)
    listed: bool = False


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    recorded_kernels: int = 0
    recorded_signatures: int = 0
    compiled: dict = field(default_factory=dict)  # "8.0" -> jobs compiled
    failed: int = 0
    listed: int = 0
    not_covered: list[str] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    tool_missing: str = ""
    cupy_sources: int = 0  # CuPy kernel sources (call site x argument set x placeholder dtype)
    cupy_compiled: dict = field(default_factory=dict)  # "sm_80" -> compiled by NVRTC
    cupy_note: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.tool_missing

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "ok": self.ok}


def check(defs: dict, jobs: list[Job], root: Path, report: Report) -> None:
    for job in jobs:
        rec = defs[job.def_id]
        name = f"{Path(rec['file']).stem}:{rec['name']}"
        constants = _tier_constants(job.def_id, defs) if job.variant == "gpu" else {}
        regs, spills, shared, problems = [], [], [], []
        for cc in TARGETS:
            label = f"{cc[0]}.{cc[1]}"
            res = job.results.get(label, {})
            if res.get("status") != "ok":
                file, line = error_location(res.get("error", ""), rec)
                loc = where(rel(file, root), line, root)
                problems.append(f"{name} {job.signature} [{job.variant} tier, sm_{cc[0]}{cc[1]}] does not compile at "
                                f"{loc}: {error_line(res.get('error', 'no result'))}")
                continue
            report.compiled[label] = report.compiled.get(label, 0) + 1
            if "registers" in res:
                regs.append(str(res["registers"]))
                spills.append(str(res["spill_stores"] + res["spill_loads"]))
                shared.append(str(res["shared_bytes"]))
            reads_constants = bool(_tier_constants(job.def_id, defs))
            for launch in job.launches:
                declared = {**{k: tuple(v) for k, v in launch.get("tier_constants", {}).items()}, **constants}
                gpu = gpu_block(launch["block"], declared)
                if job.variant == "gpu":
                    blocks = [gpu]
                elif not reads_constants and gpu != launch["block"]:
                    blocks = [launch["block"], gpu]  # same code, the GPU tier's block
                else:
                    blocks = [launch["block"]]
                for block in blocks:
                    tier = "gpu" if block is gpu and gpu != launch["block"] else job.variant
                    for why in launch_problems(res, launch, cc, block):
                        loc = where(rel(rec["file"], root), rec["line"], root)
                        problems.append(f"{name} {job.signature} [{tier} tier, sm_{cc[0]}{cc[1]}] launched with "
                                        f"block {tuple(block)} does not fit at {loc}: {why}")
        problems = list(dict.fromkeys(problems))
        variant = job.variant + (f" ({', '.join(f'{k}={v[1]}' for k, v in constants.items())})" if constants else "")
        row = Row(name, where(rel(rec["file"], root), rec["line"], root), job.signature, variant,
                  "/".join(regs) or "-", "/".join(spills) or "-", "/".join(shared) or "-",
                  "FAILED" if problems else "ok", problems, job.listed)
        report.rows.append(row)
        report.problems += problems
        report.failed += bool(problems)


def coverage(defined: list[Definition], defs: dict, launches: list[dict], listed: list[Listed],
             root: Path) -> list[str]:
    """Kernels defined in the source that the CPU tier never launches and the GPU-only list omits.
    Device functions count as covered when a compiled kernel calls them."""
    launched_ids = {x["def"] for x in launches}
    covered = set()

    def mark(def_id):
        rec = defs.get(def_id)
        if rec is None:
            return
        key = (rel(rec["file"], root), rec["name"])
        if key in covered and rec.get("_marked"):
            return
        rec["_marked"] = True
        covered.add(key)
        for dep in rec.get("deps", []):
            mark(dep)

    for def_id in launched_ids:
        mark(def_id)
    for item in listed:
        covered.add((item.file, item.name))
        for rec in defs.values():
            if rel(rec["file"], root) == item.file and rec["name"] == item.name:
                mark(rec["id"])
    missing = []
    for d in defined:
        if (d.file, d.name) not in covered:
            kind = "device function" if d.device else "kernel"
            missing.append(f"{d.name} ({kind}) at {where(d.file, d.line, root)} is never launched on the CPU tier "
                           f"and not listed in {GPU_ONLY}")
    return missing


# --- the command --------------------------------------------------------------------------------

def run(root: Path, out_dir: Path, jobs: int = 2, labs: list[str] | None = None,
        families: list[str] | None = None, report=print) -> Report:
    """Record, compile and check; never raises for one kernel's or one lab's failure."""
    from ..ptxreport import find_ptxas

    rep = Report()
    t0 = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    ptxas, how = find_ptxas()
    if not ptxas:
        rep.tool_missing = f"ptxas is missing: {how}"
        return rep
    try:
        listed = load_gpu_only(root)
    except KernelsError as exc:
        rep.problems.append(str(exc))
        listed = []
    todo = targets(root, labs, families)
    named = {t.name for t in todo if t.kind == "lab"}
    # A lab asked for by name whose source is gone: it was "0 recorded" and exit 0, as if it had no kernel.
    rep.problems += [f"labs/{lab}/{lab}.py: lab source not found" for lab in labs or [] if lab not in named]
    logs = []

    def rec_one(t):
        log, problem, seconds = record(t, out_dir, root)
        return t, log, problem, seconds

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for t, log, problem, seconds in pool.map(rec_one, todo):
            logs.append(log)
            _, launched = load_records([log])
            report(f"recorded {t.label:<32} {len(launched):3d} launch(es) {seconds:6.1f} s"
                   + (f"  {problem}" if problem else ""))
            if problem:
                rep.problems.append(problem)
            elif not launched and _may_define_kernels(t.path, root):
                rep.problems.append(f"{t.label}: the recorder saw no kernel launch on the CPU tier, though "
                                    f"{rel(t.path, root)} defines kernels")
    rep.seconds["record"] = round(time.monotonic() - t0, 1)
    defs, launches = load_records(logs)
    rep.recorded_kernels = len({x["def"] for x in launches})
    rep.recorded_signatures = len({(x["def"], x["signature"]) for x in launches})
    rep.listed = len(listed)
    full = labs is None and families is None
    work, planning = plan_jobs(defs, launches, listed, root, None if full else {rel(t.path, root) for t in todo})
    rep.problems += planning
    t1 = time.monotonic()
    try:
        compile_all(defs, work, out_dir, root)
    except KernelsError as exc:
        rep.tool_missing = str(exc)
        return rep
    rep.seconds["compile"] = round(time.monotonic() - t1, 1)
    check(defs, work, root, rep)
    if labs is None and families is None:  # coverage needs every lab and family
        rep.not_covered = coverage(scan(root), defs, launches, listed, root)
        rep.problems += rep.not_covered
        t2 = time.monotonic()
        cupy_check(root, out_dir, rep)
        rep.seconds["cupy"] = round(time.monotonic() - t2, 1)
    else:
        rep.cupy_note = "CuPy kernel sources: checked only when every lab and family is (no LAB or --bench given)"
    rep.seconds["total"] = round(time.monotonic() - t0, 1)
    atomicfile.write_text(out_dir / "kernels.json", json.dumps(rep.to_dict(), indent=2) + "\n")
    return rep


def cupy_check(root: Path, out_dir: Path, rep: Report) -> None:
    """Every CuPy kernel source compiled by NVRTC for sm_80 and sm_90 (see :mod:`techday.validate.cupysources`)."""
    from ..cudasrc import NvrtcUnavailable
    from . import cupysources

    sites, problems = cupysources.find_all(root, out_dir)
    rep.problems += problems
    try:
        results = cupysources.compile_all(sites)
    except NvrtcUnavailable as exc:
        rep.problems.append(f"CuPy kernel sources: NVRTC is missing: {exc}")
        return
    rep.cupy_sources = len({(r.site.file, r.site.line, r.label) for r in results})
    for r in results:
        if r.ok:
            rep.cupy_compiled[r.arch] = rep.cupy_compiled.get(r.arch, 0) + 1
        else:
            rep.problems.append(cupysources.failure_line(r))


def table(rep: Report):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="kernels compiled for sm_80 / sm_90 (registers, spills and shared bytes: sm_80/sm_90)")
    for col in ("kernel", "signature", "tier", "registers", "spills", "shared bytes", "status"):
        t.add_column(col, no_wrap=col != "signature")
    for r in rep.rows:
        style = "green" if r.status == "ok" else "red"
        t.add_row(escape(r.kernel + (" (listed)" if r.listed else "")), escape(r.signature), escape(r.variant),
                  r.registers, r.spills, r.shared, f"[{style}]{r.status}[/]")
    return t


def summary_line(rep: Report) -> str:
    compiled = ", ".join(f"cc {k}: {v}" for k, v in sorted(rep.compiled.items()))
    return (f"kernels recorded: {rep.recorded_kernels} ({rep.recorded_signatures} signatures); compiled "
            f"({len(rep.rows)} kernel x signature x tier): {compiled or 'none'}; failed: {rep.failed}; "
            f"listed GPU-only: {rep.listed}; not covered: {len(rep.not_covered)}"
            + (f"; CuPy kernel sources: {rep.cupy_sources}, compiled by NVRTC "
               + ", ".join(f"{k}: {v}" for k, v in sorted(rep.cupy_compiled.items())) if rep.cupy_sources else "")
            + (f"; {rep.cupy_note}" if rep.cupy_note else ""))


def _main(argv: list[str]) -> int:
    if argv[:1] == ["_record"]:
        return _record_child(*argv[1:5])
    ap = argparse.ArgumentParser(prog="python -m techday.validate.kernels")
    ap.parse_args(argv)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
