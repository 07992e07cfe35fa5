"""The kernel recorder: what the CPU tier launches, written down so that the real compiler can check it.

On the CPU tier every ``@cuda.jit`` kernel runs in Numba's CUDA simulator, which executes the Python
function and never compiles it. The simulator proves results; it cannot prove that the kernel is
CUDA that numba-cuda's compiler accepts. With ``$TECHDAY_KERNEL_LOG`` set to a file,
:func:`techday.setup` switches this recorder on (CPU tier only): every kernel launch appends, once
per distinct kernel, signature and launch configuration, a JSON line to that file:

- ``{"kind": "def", ...}``: a kernel or device function, with its source (decorators removed), the
  file and line of its ``def``, its ``@cuda.jit`` options, and the globals and closure variables it
  reads, each as a value the compiling process can rebuild (a number, a module, an importable
  object, a device function, a small array) or, for anything else, the name of its type;
- ``{"kind": "launch", ...}``: the kernel's definition id, the argument types as a numba signature
  (``void(float32[::1], float32)``), the grid, the block and the dynamic shared memory in bytes.

``techday kernels`` (:mod:`techday.validate.kernels`) reads these files in a process without the simulator,
compiles every definition and signature for the target GPUs and checks each launch against their
limits. Constants that differ between tiers are declared with :meth:`techday.Lab.per_tier`; their
GPU-tier value travels with the definition so that both values are compiled.
"""

from __future__ import annotations

import ast
import dis
import hashlib
import inspect
import json
import os
import re
import sys
import textwrap
import threading
import types as pytypes

ENV = "TECHDAY_KERNEL_LOG"

# Constants declared with Lab.per_tier: name -> {"cpu": value, "gpu": value}.
TIER_CONSTANTS: dict[str, dict] = {}

_lock = threading.Lock()
_state: dict = {"path": None, "defs": {}, "launches": set(), "installed": False}

_ARRAY_LIMIT = 4096  # elements of a global array that are written down (the compiler freezes them)


def _write(record: dict) -> None:
    path = _state["path"]
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


# What a compiling process (simulator off) runs to rebuild recorded definitions and compile them, with
# ``defs`` (id -> definition record) and ``cc`` (a compute capability) bound first: ``techday kernels``'
# children (techday.validate.kernels) and the CPU tier's launch check (techday.simcompile). It runs a
# definition's ``def`` statement, never its body; globals come back from their recorded values.
BUILDER = r"""
import builtins, importlib, types
import numpy as np
import numba
from numba import cuda
if not cuda.is_available():
    # Compiling a call to a device function asks the current device for its compute capability:
    # without a GPU, answer with the architecture the PTX is for.
    import numba.cuda.dispatcher as dispatcher
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
from numba.np.numpy_support import from_dtype

built = {}

def value(name, spec, variant):
    if "const" in spec:
        v = spec["gpu"] if variant == "gpu" and "gpu" in spec else spec["const"]
        return getattr(np, spec["numpy"])(v) if "numpy" in spec else v
    if "tuple" in spec:
        return tuple(spec["tuple"])
    if "complex" in spec:
        return complex(*spec["complex"])
    if "module" in spec:
        return importlib.import_module(spec["module"])
    if "numba_type" in spec:
        return eval(spec["numba_type"], vars(numba.types))
    if "array" in spec:
        return np.array(spec["array"], dtype=spec["dtype"]).reshape(spec["shape"])
    if "dtype" in spec:
        return np.dtype(spec["dtype"])
    if "import" in spec:
        obj = importlib.import_module(spec["import"])
        for part in spec["attr"].split("."):
            obj = getattr(obj, part)
        return obj
    if "function" in spec:
        return build(spec["function"], variant)
    kind = spec.get("opaque", "object")
    if kind == "function":
        def placeholder(*args):
            return None
        placeholder.__name__ = name
        return placeholder
    return type(kind, (), {})()   # numba says it cannot type this global

def build(def_id, variant):
    key = (def_id, variant)
    if key in built:
        return built[key]
    rec = defs[def_id]
    ns = {"__name__": "techday_kernels", "__builtins__": builtins}
    for name, spec in rec["globals"].items():
        ns[name] = value(name, spec, variant)
    exec(compile("\n" * (rec["line"] - 1) + rec["source"], rec["file"], "exec"), ns)
    fn = ns[rec["name"]]
    opts = {k: v for k, v in rec["options"].items() if k in ("fastmath", "inline", "opt", "lineinfo")}
    built[key] = cuda.jit(device=True, **opts)(fn) if rec["device"] else fn
    return built[key]


def compile_one(job):
    # (PTX, definition record) of one job: its definition compiled for cc with its signature.
    rec = defs[job["def"]]
    if not rec["source"]:
        raise RuntimeError(rec.get("error", "the recorder found no source for this kernel"))
    fn = build(job["def"], job["variant"])
    func = fn.py_func if hasattr(fn, "py_func") else fn
    fastmath = bool(rec["options"].get("fastmath"))
    # The recorder's signature text, read as Numba reads one, plus record dtypes (a generator's states).
    signature = eval(job["signature"], {"from_dtype": from_dtype, "dtype": np.dtype}, vars(numba.types))
    ptx, _ = cuda.compile_ptx(func, signature, cc=cc, device=rec["device"], fastmath=fastmath)
    return ptx, rec
"""


# --- compiler errors -----------------------------------------------------------------------------

FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_line(error: str) -> str:
    """The informative line of a numba or ptxas error (not 'Failed in cuda mode pipeline')."""
    lines = [x.strip() for x in _ANSI.sub("", error).splitlines() if x.strip()]
    for text in lines:
        if re.match(r"^(\w+Error: )?Failed in .* pipeline", text) or text.startswith("During:"):
            continue
        if text.startswith(("File ", ">", "^")) or re.match(r"^\d+:", text):
            continue
        return text
    return lines[0] if lines else error


def error_location(error: str, rec: dict) -> tuple[str, int]:
    found = [(f, int(n)) for f, n in FILE_LINE.findall(_ANSI.sub("", error)) if not f.startswith("<")]
    return found[-1] if found else (rec["file"], rec["line"])


# --- argument types -----------------------------------------------------------------------------

def _array_spec(dtype: str, ndim: int, layout: str) -> str:
    if ndim == 0:
        return dtype
    dims = [":"] * ndim
    if layout == "C":
        dims[-1] = "::1"
    elif layout == "F":
        dims[0] = "::1"
    return f"{dtype}[{', '.join(dims)}]"


def _scalar_name(ty) -> str:
    name = str(ty)
    return {"bool": "boolean"}.get(name, name)


def type_string(value) -> str:
    """The numba signature text of one kernel argument as the GPU would see it: an array (host or
    device) becomes ``dtype[:, ::1]`` with its layout, a scalar its numba type (``int64``, ``float32``)."""
    from numba import typeof
    from numba.core import types

    hint = getattr(value, "value", None) if type(value).__name__ in ("In", "Out", "InOut") else None
    if hint is not None:
        value = hint
    ty = getattr(value, "_numba_type_", None)  # a simulator device array
    if ty is None:
        ty = typeof(value)
    if isinstance(ty, types.Array) and isinstance(ty.dtype, types.Record):
        # A structured dtype (numba.cuda.random's generator states): an expression the compile step
        # evaluates with NumPy's dtype and Numba's from_dtype, since a Record's own text is not one.
        d = ty.dtype.dtype
        spec = {"names": list(d.names), "formats": [d.fields[n][0].str for n in d.names],
                "offsets": [d.fields[n][1] for n in d.names], "itemsize": d.itemsize}
        return f"Array(from_dtype(dtype({spec!r}, align={bool(d.isalignedstruct)})), {ty.ndim}, {ty.layout!r})"
    if isinstance(ty, types.Array):
        return _array_spec(_scalar_name(ty.dtype), ty.ndim, ty.layout)
    if isinstance(ty, types.UniTuple):
        return f"UniTuple({_scalar_name(ty.dtype)}, {ty.count})"
    if isinstance(ty, types.Tuple):
        return f"Tuple(({', '.join(_scalar_name(t) for t in ty.types)},))"
    return _scalar_name(ty)


# --- definitions --------------------------------------------------------------------------------

def _code_names(code) -> set[str]:
    """Globals and closure variables the code reads (not attribute names such as ``cuda.grid``)."""
    names = {ins.argval for ins in dis.get_instructions(code)
             if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLOSURE")}
    for const in code.co_consts:
        if isinstance(const, pytypes.CodeType):
            names |= _code_names(const)
    return names


def _is_sim_kernel(obj) -> bool:
    # Look at the type and the instance dict only: a lab's test doubles raise on any other attribute.
    return type(obj).__name__ == "FakeCUDAKernel" and "fn" in getattr(obj, "__dict__", {})


def _importable(obj) -> dict | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    mod = sys.modules.get(module)
    target = mod
    for part in qualname.split("."):
        target = getattr(target, part, None)
    # The module may hold the plain function in place of its compiled one for a while (the simulator's
    # generator, techday.simtools.quiet_generator): the compiling process imports the compiled one.
    same = target is obj or target is getattr(obj, "py_func", None) or obj is getattr(target, "py_func", None)
    return {"import": module, "attr": qualname} if same else None


def _global_spec(name: str, value, deps: list, made: dict, literal: bool = False) -> dict:
    """How the compiling process rebuilds one global a kernel reads."""
    import numpy as np
    from numba.core import types as nbtypes

    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        spec = {"const": value.item() if isinstance(value, np.generic) else value}
        if isinstance(value, np.generic):
            spec["numpy"] = type(value).__name__
        declared = TIER_CONSTANTS.get(name)
        if declared is not None and declared.get("cpu") == value:
            spec["gpu"] = declared["gpu"]
        return spec
    if isinstance(value, complex):
        return {"complex": [value.real, value.imag]}
    if isinstance(value, tuple) and all(isinstance(v, (int, float, bool)) for v in value):
        return {"tuple": list(value)}
    if isinstance(value, pytypes.ModuleType):
        return {"module": value.__name__}
    if _is_sim_kernel(value):
        dep = definition(value, made, literal)
        deps.append(dep)
        return {"function": dep}
    if isinstance(value, nbtypes.Type):
        return {"numba_type": str(value)}
    if isinstance(value, np.ndarray) and value.size <= _ARRAY_LIMIT and value.dtype.kind in "biuf":
        return {"array": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, np.dtype):
        return {"dtype": str(value)}
    found = _importable(value)
    if found is not None:
        return found
    return {"opaque": type(value).__name__}


def _def_source(fn, literal: bool = False) -> tuple[str, int, dict]:
    """(source of the ``def`` without decorators, dedented; line of the ``def``; literal jit options).
    ``literal``: options written as literals only (``fastmath=True``), none evaluated in the kernel's
    globals: no code is compiled from a string in the process (the grader's referee refuses that)."""
    lines, first = inspect.getsourcelines(fn)
    text = textwrap.dedent("".join(lines))
    tree = ast.parse(text)
    node = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    options = {}
    for deco in node.decorator_list:
        if isinstance(deco, ast.Call):
            for kw in deco.keywords:
                if kw.arg in ("device", "fastmath", "max_registers", "lineinfo", "opt", "inline", "cache"):
                    try:
                        value = ast.literal_eval(kw.value) if literal else \
                            eval(compile(ast.Expression(kw.value), "<option>", "eval"), fn.__globals__)
                    except Exception:  # an option the recorder cannot evaluate: leave it out
                        continue
                    if isinstance(value, (bool, int, str)):
                        options[kw.arg] = value
    body = text.splitlines(keepends=True)[node.lineno - 1:]
    return "".join(body), first + node.lineno - 1, options


def definition(kernel, made: dict, literal: bool = False) -> str:
    """Build the definition record of a simulator kernel or device function, and of every kernel or
    device function it calls, into ``made`` (id -> record); return its id. Nothing is written."""
    fn = getattr(kernel, "fn", kernel)  # a simulator kernel, or a plain function (a CUDA ufunc's scalar code)
    record = {"kind": "def", "name": fn.__name__, "file": os.path.abspath(fn.__code__.co_filename),
              "device": bool(getattr(kernel, "_device", True))}
    try:
        source, line, options = _def_source(fn, literal)
    except (OSError, TypeError, StopIteration, SyntaxError) as exc:
        source, line, options = "", fn.__code__.co_firstlineno, {}
        record["error"] = f"source not available: {exc}"
    if getattr(kernel, "_fastmath", False):
        options["fastmath"] = True
    record.update(source=source, line=line, options=options)
    deps: list = []
    scope = dict(fn.__globals__)
    if fn.__closure__:
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                scope[var] = cell.cell_contents
            except ValueError:  # an empty cell
                continue
    glob = {}
    for name in sorted(_code_names(fn.__code__) | set(fn.__code__.co_freevars)):
        if name in scope and name != fn.__name__:
            glob[name] = _global_spec(name, scope[name], deps, made, literal)
    record["globals"] = glob
    record["deps"] = sorted(set(deps))
    digest = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]
    record["id"] = f"{fn.__name__}-{digest}"
    made[record["id"]] = record
    return record["id"]


def define(kernel) -> str:
    """Write the definition of a simulator kernel or device function (once), and of those it calls;
    return its id."""
    key = id(kernel)
    known = _state["defs"].get(key)
    if known is not None and known[0] is kernel:
        return known[1]
    made: dict = {}
    def_id = definition(kernel, made)
    _state["defs"][key] = (kernel, def_id)
    for rid, record in sorted(made.items(), key=lambda kv: kv[0] == def_id):  # what it calls first
        if rid not in _state.setdefault("written", set()):
            _state["written"].add(rid)
            _write(record)
    return def_id


def _dims(dim) -> list[int]:
    if dim is None:
        return []
    if isinstance(dim, int):
        return [dim]
    return [int(getattr(dim, a)) for a in ("x", "y", "z")] if hasattr(dim, "x") else [int(d) for d in dim]


def record_launch(kernel, args) -> None:
    """Write one launch (first time for this kernel, signature and configuration)."""
    try:
        def_id = define(kernel)
        sig = f"void({', '.join(type_string(a) for a in args)})"
        error = ""
    except Exception as exc:  # the recorder must never break a lab
        def_id, sig, error = getattr(kernel, "__name__", "?"), "", f"{type(exc).__name__}: {exc}"
    block, grid = _dims(kernel.block_dim), _dims(kernel.grid_dim)
    dyn = int(kernel.dynshared_size or 0)
    key = (def_id, sig, tuple(block), dyn)
    if key in _state["launches"]:
        return
    _state["launches"].add(key)
    record = {"kind": "launch", "def": def_id, "signature": sig, "block": block, "grid": grid,
              "dynamic_shared": dyn, "origin": os.environ.get("TECHDAY_KERNEL_ORIGIN", "")}
    if TIER_CONSTANTS:  # a block of (TILE, TILE) threads is checked at the GPU tier's TILE too
        record["tier_constants"] = {k: [v["cpu"], v["gpu"]] for k, v in TIER_CONSTANTS.items()}
    if error:
        record["error"] = error
    _write(record)


def install(path: str | None = None) -> bool:
    """Switch the recorder on (simulator only). Idempotent; returns True when recording."""
    path = path or os.environ.get(ENV)
    if not path or os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        return False
    _state["path"] = path
    if _state["installed"]:
        return True
    from numba.cuda.simulator import kernel as simkernel

    original = simkernel.FakeCUDAKernel.__call__

    def __call__(self, *args):
        if not self._device and not simkernel._kernel_context:
            with _lock:
                record_launch(self, args)
        return original(self, *args)

    simkernel.FakeCUDAKernel.__call__ = __call__
    _state["installed"] = True
    return True
