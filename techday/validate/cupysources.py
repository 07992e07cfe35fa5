"""Every CuPy kernel source of the course (``RawKernel``, ``ElementwiseKernel``, ``ReductionKernel``,
``RawModule`` in labs, benchmark families and the package), compiled by NVRTC on any machine.

CuPy compiles kernel source at the first launch, which only the GPU tier reaches. Here every call
site is found in the source (the AST of ``labs/*/*.py``, ``benchmarks/*.py`` and ``techday/``), and
its arguments are found in one of two ways:

- **module constants**: arguments that are literals, or names and ``*names`` of module-level
  literal assignments (``cupy.RawKernel(SAXPY_SOURCE, "saxpy")``, ``ElementwiseKernel(*AXPB, "axpb")``);
- **a benchmark run**: each benchmark family's CuPy implementations are set up (``make``) and run
  once against a stand-in ``cupy`` module that writes down the arguments of every kernel
  constructor with the file and line of the call: kernels built in a loop or with an f-string get
  their real values.

Each source is then written out as the CUDA C++ kernel CuPy would compile (see
:func:`techday.cudasrc.elementwise_source` and :func:`~techday.cudasrc.reduction_source`; type
placeholders are bound to ``float32`` and to ``float64``) and compiled to a cubin for ``sm_80`` and
``sm_90`` through :func:`techday.cudasrc.compile_cubin`. A call site whose arguments neither way
finds is a failure: it must be written so that one of them can.

Not covered: the code CuPy itself wraps around an elementwise or reduction operation (ours is a
stand-in with the same parameter types), dtypes other than float32 and float64 for placeholders,
and whether a kernel gives the right result (the GPU tier's labs and tests/gpu check that).
"""

from __future__ import annotations

import ast
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import proctree

KINDS = ("RawKernel", "ElementwiseKernel", "ReductionKernel", "RawModule")
ARCHS = ("sm_80", "sm_90")
PLACEHOLDER_DTYPES = ("float32", "float64")


@dataclass
class Site:
    """One kernel constructor call in the source, and the argument sets found for it."""

    file: str
    line: int
    kind: str
    text: str
    found: list[dict] = field(default_factory=list)  # {"args": [...], "kwargs": {...}, "how": "..."}
    why_unresolved: str = ""


def _files(root: Path) -> list[Path]:
    return sorted([*root.glob("labs/*/*.py"), *root.glob("benchmarks/*.py"), *root.glob("techday/**/*.py")])


class _Unresolved(ValueError):
    pass


def _constants(tree: ast.Module) -> dict:
    """Module-level names bound to literals (strings, numbers, tuples of them)."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                continue
    return out


def _value(node, consts: dict):
    if isinstance(node, ast.Name):
        if node.id in consts:
            return consts[node.id]
        raise _Unresolved(f"{node.id} is not a module-level literal")
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        raise _Unresolved(f"{ast.unparse(node)!r} is not a literal") from None


def _static_args(call: ast.Call, consts: dict) -> dict:
    args = []
    for a in call.args:
        if isinstance(a, ast.Starred):
            args += list(_value(a.value, consts))
        else:
            args.append(_value(a, consts))
    kwargs = {kw.arg: _value(kw.value, consts) for kw in call.keywords if kw.arg}
    return {"args": args, "kwargs": kwargs, "how": "module constants"}


def call_sites(root: Path) -> list[Site]:
    """Every CuPy kernel constructor call in the course, with the arguments the module constants give."""
    sites = []
    for path in _files(root):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, str(path))
        consts = _constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in KINDS:
                site = Site(str(path.relative_to(root)), node.lineno, node.func.attr, ast.unparse(node)[:120])
                try:
                    site.found.append(_static_args(node, consts))
                except _Unresolved as exc:
                    site.why_unresolved = str(exc)
                sites.append(site)
    return sites


_RECORD_CHILD = r"""
import json, os, sys, traceback
from unittest import mock
root, out = sys.argv[1], sys.argv[2]
os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
calls, errors = [], []
stub = mock.MagicMock(name="cupy")
def recorder(kind):
    def make(*args, **kwargs):
        frame = sys._getframe(1)
        calls.append({"kind": kind, "file": os.path.abspath(frame.f_code.co_filename), "line": frame.f_lineno,
                      "args": [a if isinstance(a, (str, int, float, bool)) else repr(a) for a in args],
                      "kwargs": {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool))}})
        return mock.MagicMock(name=kind)
    return make
for kind in ("RawKernel", "ElementwiseKernel", "ReductionKernel", "RawModule"):
    setattr(stub, kind, recorder(kind))
sys.modules["cupy"] = stub
from techday.lab import setup
setup(tier="cpu", scale="ci", quiet=True)
from techday.bench import families as fam
from techday.bench.core import Plan
for family in fam.FAMILIES:
    try:
        module = fam.load(family)
        for kernel in module.kernels(Plan.simulator()):
            for impl in kernel.impls:
                if "cupy" in impl.requires:
                    run, fetch = impl.make(kernel.inputs())
                    run()
    except Exception as exc:
        errors.append(f"benchmark {family}: {type(exc).__name__}: {exc}")
json.dump({"calls": calls, "errors": errors}, open(out, "w"))
"""


def record_benchmarks(root: Path, out: Path, timeout: int = 300) -> tuple[list[dict], list[str]]:
    """Run the benchmark families' CuPy set-up against a stand-in cupy; (constructor calls, problems)."""
    env = {**os.environ, "TECHDAY_BENCHMARKS": str(root / "benchmarks"), "NUMBA_ENABLE_CUDASIM": "1",
           "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = proctree.run([sys.executable, "-c", _RECORD_CHILD, str(root), str(out)], timeout, env=env)
    if proc.returncode != 0 or not out.is_file():
        last = (proc.stderr or proc.stdout).strip().splitlines()
        return [], [f"recording the benchmarks' CuPy kernels failed: {last[-1] if last else proc.returncode}"]
    data = json.loads(out.read_text(encoding="utf-8"))
    return data["calls"], data["errors"]


def _placeholders(params: str) -> list[tuple[str, str]]:
    from ..cudasrc import parse_params

    seen, out = set(), []
    for p in parse_params(params):
        if p.is_placeholder and p.type not in seen:
            seen.add(p.type)
            out.append((p.name, p.type))
    return out


def sources(kind: str, args: list, kwargs: dict) -> list[tuple[str, str, str]]:
    """(label, CUDA C++ source, kernel name) for one constructor call: one per placeholder dtype."""
    from ..cudasrc import elementwise_source, reduction_source

    if kind in ("RawKernel", "RawModule"):
        code = kwargs.get("code", args[0] if args else "")
        name = kwargs.get("name", args[1] if len(args) > 1 else "")
        return [(name or kind, code, name)]
    if kind == "ElementwiseKernel":
        names, default = ("in_params", "out_params", "operation", "name"), "kernel"

        def build(v, name, dtypes):
            return elementwise_source(v["in_params"], v["out_params"], v["operation"], name, dtypes)
    else:  # ReductionKernel
        names = ("in_params", "out_params", "map_expr", "reduce_expr", "post_map_expr", "identity", "name",
                 "reduce_type")
        default = "reduce_kernel"

        def build(v, name, dtypes):
            return reduction_source(v["in_params"], v["out_params"], v["map_expr"], v["reduce_expr"],
                                    v["post_map_expr"], v["identity"], name, dtypes, v.get("reduce_type"))
    vals = dict(zip(names, args)) | {k: v for k, v in kwargs.items() if k in names}
    name = vals.get("name", default)
    places = _placeholders(vals["in_params"] + ", " + vals["out_params"])
    out = []
    for dt in PLACEHOLDER_DTYPES if places else ("",):
        out.append((f"{name}[{dt}]" if dt else name, build(vals, name, {pname: dt for pname, _ in places}), name))
    return out
    names = ("in_params", "out_params", "map_expr", "reduce_expr", "post_map_expr", "identity", "name", "reduce_type")
    vals = dict(zip(names, args)) | {k: v for k, v in kwargs.items() if k in names}
    name = vals.get("name", "reduce_kernel")
    places = _placeholders(vals["in_params"] + ", " + vals["out_params"])
    out = []
    for dt in PLACEHOLDER_DTYPES if places else ("",):
        dtypes = {pname: dt for pname, _ in places}
        src = reduction_source(vals["in_params"], vals["out_params"], vals["map_expr"], vals["reduce_expr"],
                               vals["post_map_expr"], vals["identity"], name, dtypes, vals.get("reduce_type"))
        out.append((f"{name}[{dt}]" if dt else name, src, name))
    return out


@dataclass
class Result:
    site: Site
    label: str
    arch: str
    ok: bool
    error: str = ""


def find_all(root: Path, work: Path) -> tuple[list[Site], list[str]]:
    """Every call site with its argument sets; problems for sites nothing resolves."""
    sites = call_sites(root)
    calls, problems = record_benchmarks(root, work / "cupy-calls.json")
    by_place = {(s.file, s.line): s for s in sites}
    for call in calls:
        try:
            file = str(Path(call["file"]).resolve().relative_to(root.resolve()))
        except ValueError:
            continue
        site = by_place.get((file, call["line"]))
        if site is not None:
            entry = {"args": call["args"], "kwargs": call["kwargs"], "how": "benchmark run"}
            if entry["args"] not in [f["args"] for f in site.found]:
                site.found.append(entry)
    for site in sites:
        if not site.found:
            problems.append(f"{site.kind} at {site.file} line {site.line}: its source is neither a module-level "
                            f"literal ({site.why_unresolved}) nor seen in a benchmark run")
    return sites, problems


def compile_all(sites: list[Site], archs=ARCHS) -> list[Result]:
    from ..cudasrc import CompileError, compile_cubin

    results = []
    for site in sites:
        for found in site.found:
            try:
                made = sources(site.kind, found["args"], found["kwargs"])
            except (KeyError, TypeError, ValueError) as exc:
                results.append(Result(site, site.kind, "-", False, f"cannot write its source: {exc}"))
                continue
            for label, src, _name in made:
                for arch in archs:
                    try:
                        compile_cubin(src, f"{label}.cu", arch)
                        results.append(Result(site, label, arch, True))
                    except CompileError as exc:
                        first = next((x.strip() for x in exc.log.splitlines() if "error" in x), exc.log.strip()[:200])
                        results.append(Result(site, label, arch, False, first))
    return results


def failure_line(r: Result) -> str:
    return f"{r.site.kind} {r.label} at {r.site.file} line {r.site.line} does not compile for {r.arch}: {r.error}"
