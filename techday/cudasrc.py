"""CUDA C source on any machine: compile it with NVRTC, and run simple elementwise kernels on the host.

CuPy's custom kernels (``ElementwiseKernel``, ``ReductionKernel``, ``RawKernel``) are CUDA C++ source
that CuPy compiles with NVRTC, NVIDIA's runtime compiler, at the first launch. NVRTC itself needs no
GPU and no driver: :func:`compile_ptx` calls it through ``cuda.bindings.nvrtc`` (installed with
numba-cuda; the compiler library comes with the CUDA 12 toolkit wheels of the ``test`` and ``gpu``
extras), so on the CPU tier a lab still finds every syntax and type error in kernel source.

:func:`elementwise_source` writes the kernel that an ``ElementwiseKernel(in_params, out_params,
operation)`` stands for (the same parameter types, ``i`` and ``_ind.size()``; CuPy's generated code
differs in detail), and :func:`run_elementwise` evaluates such a kernel on the host with NumPy, one
vector operation for all ``i`` at once, for operations written in the subset of C that is also Python
expression syntax (assignments, arithmetic, comparisons, math calls, indexing ``raw`` inputs). Every
index into a ``raw`` input is bounds-checked: a GPU would read whatever lies there.

Introduced in lab 05 (CuPy and interoperability).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import numpy as np

from .i18n import msg


class NvrtcUnavailable(RuntimeError):
    """NVRTC cannot be loaded on this machine; the message says what to install."""


class CompileError(RuntimeError):
    """NVRTC rejected the source; ``log`` holds its messages."""

    def __init__(self, name: str, log: str):
        super().__init__(msg("techday.cuda_compile_failed", "NVRTC could not compile {name}:", name=name) + "\n" + log)
        self.log = log


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:  # older cuda-python
        try:
            from cuda import nvrtc  # type: ignore
        except ImportError as exc:
            raise NvrtcUnavailable("cuda.bindings is not installed (pip install numba-cuda)") from exc
    try:
        err, *_ = nvrtc.nvrtcVersion()
    except Exception as exc:  # the library itself is missing
        raise NvrtcUnavailable("the NVRTC library was not found: pip install -e \".[test]\" "
                               f"(nvidia-cuda-nvrtc-cu12) ({exc})") from exc
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise NvrtcUnavailable(f"NVRTC did not start: {err}")
    return nvrtc


def nvrtc_status() -> tuple[bool, str]:
    """(True, "NVRTC 12.9") when kernel source can be compiled here, else (False, why not)."""
    try:
        nvrtc = _nvrtc()
    except NvrtcUnavailable as exc:
        return False, str(exc)
    _, major, minor = nvrtc.nvrtcVersion()
    return True, f"NVRTC {major}.{minor}"


def compile_ptx(source: str, name: str = "kernel.cu", arch: str = "compute_80",
                options: tuple[str, ...] = ("--std=c++17",)) -> str:
    """Compile CUDA C++ ``source`` to PTX text with NVRTC, without a GPU. Raises :class:`CompileError`
    with the compiler's log on an error, :class:`NvrtcUnavailable` if NVRTC is not installed."""
    nvrtc = _nvrtc()
    ok = nvrtc.nvrtcResult.NVRTC_SUCCESS
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    if err != ok:
        raise CompileError(name, str(err))
    try:
        opts = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in options]
        (result,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        _, log_size = nvrtc.nvrtcGetProgramLogSize(prog)
        # NVRTC writes into the buffer it is given: a bytearray, never bytes. ``b" " * 1`` is CPython's
        # one shared b" ", and an empty log (one NUL) written into it turned every b" " of the process
        # into b"\x00" (PyTorch's checkpoint loader among the casualties).
        log = bytearray(log_size)
        nvrtc.nvrtcGetProgramLog(prog, log)
        log = bytes(log).decode(errors="replace").rstrip("\x00").strip()
        if result != ok:
            raise CompileError(name, log)
        _, size = nvrtc.nvrtcGetPTXSize(prog)
        ptx = bytearray(size)
        nvrtc.nvrtcGetPTX(prog, ptx)
        return bytes(ptx).decode().rstrip("\x00")
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def compile_cubin(source: str, name: str = "kernel.cu", arch: str = "sm_90", std: str = "c++17") -> bytes:
    """Compile CUDA C++ ``source`` to a cubin (SASS for ``arch``, e.g. ``sm_80``) with NVRTC through
    ``cuda.core``'s :class:`Program`, without a GPU or a driver: the whole compilation, assembly
    included. This is the one helper that checks every CuPy kernel source of the course
    (:mod:`techday.validate.cupysources`). Raises :class:`CompileError` with NVRTC's log on an error and
    :class:`NvrtcUnavailable` when ``cuda.core`` or NVRTC is missing.

    :func:`compile_ptx` stays on the NVRTC bindings: ``cuda.core`` 1.2 asks the driver, before it
    returns PTX, whether the driver can load it, and a machine without a GPU has no driver."""
    try:
        from cuda.core import Program, ProgramOptions
    except ImportError:
        try:
            from cuda.core.experimental import (  # cuda.core before 0.4
                Program,
                ProgramOptions,
            )
        except ImportError as exc:
            raise NvrtcUnavailable("cuda.core is not installed (pip install numba-cuda)") from exc
    try:
        program = Program(source, "c++", options=ProgramOptions(arch=arch, std=std, name=name))
        return bytes(program.compile("cubin").code)
    except Exception as exc:
        text = str(exc).replace("\x00", "").strip()
        if "NVRTC_ERROR_COMPILATION" in text:
            raise CompileError(name, text.split("compilation log:", 1)[-1].strip()) from None
        if "nvrtc" in text.lower() and ("not found" in text.lower() or "load" in text.lower()):
            raise NvrtcUnavailable(f"the NVRTC library was not found: pip install -e \".[test]\" ({text})") from exc
        raise CompileError(name, text) from None


def reduction_source(in_params: str, out_params: str, map_expr: str, reduce_expr: str, post_map_expr: str,
                     identity: str, name: str, dtypes: dict[str, object], reduce_type: str | None = None) -> str:
    """A CUDA C++ kernel that holds the four parts of ``ReductionKernel(in_params, out_params, map_expr,
    reduce_expr, post_map_expr, identity, name)`` in the places CuPy puts them, so NVRTC checks them:
    ``map_expr`` sees every input as a value, ``reduce_expr`` combines ``a`` and ``b`` of type
    ``_type_reduce`` (``reduce_type``, by default the first output's type), ``post_map_expr`` reads
    ``a`` and writes the outputs. Each thread folds a grid-stride share and writes its own result (CuPy
    adds the tree across threads; this kernel exists to be compiled, not run)."""
    ins, outs = parse_params(in_params), parse_params(out_params)
    bound = _bind_types(ins + outs, {k: np.dtype(v) for k, v in dtypes.items()})

    def ctype(p: Param) -> str:
        dt = bound.get(p.type) if p.is_placeholder else np.dtype(p.type)
        if dt is None:
            raise TypeError(msg("techday.cuda_no_dtype", "no dtype for parameter {name} of type {type}: give one in dtypes",
                                name=p.name, type=p.type))
        return _CTYPES[dt.name]

    lines = ["#include <cuda_fp16.h>" if any(ctype(p) == "half" for p in ins + outs) else ""]
    for placeholder, dt in bound.items():
        lines.append(f"typedef {_CTYPES[dt.name]} {placeholder};")
    red = reduce_type if reduce_type else ctype(outs[0])
    lines.append(f"typedef {_CTYPES.get(red, red)} _type_reduce;")
    args = [f"const {ctype(p)}* __restrict__ _{p.name}" for p in ins] + [f"{ctype(p)}* _{p.name}" for p in outs]
    lines += [
        f'extern "C" __global__ void {name}({", ".join(args + ["long long _n"])}) {{',
        f"    _type_reduce _acc = _type_reduce({identity});",
        "    for (long long _i = blockIdx.x * (long long)blockDim.x + threadIdx.x; _i < _n;",
        "         _i += (long long)blockDim.x * gridDim.x) {",
        *[f"        const {ctype(p)} {p.name} = _{p.name}[_i];" for p in ins],
        f"        _type_reduce a = _acc, b = ({map_expr});",
        f"        _acc = ({reduce_expr});",
        "    }",
        "    {",
        "        const long long _t = blockIdx.x * (long long)blockDim.x + threadIdx.x;",
        "        _type_reduce a = _acc; (void)_t;",
        *[f"        {ctype(p)}& {p.name} = _{p.name}[_t];" for p in outs],
        "        " + post_map_expr.strip().rstrip(";") + ";",
        "    }",
        "}",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def ptx_entries(ptx: str) -> list[str]:
    """The kernels (``.entry`` names) a PTX module defines."""
    return re.findall(r"\.entry\s+([A-Za-z_][A-Za-z0-9_]*)", ptx)


# --- ElementwiseKernel parameters ----------------------------------------------------------------

_CTYPES = {"float16": "half", "float32": "float", "float64": "double", "int8": "signed char",
           "int16": "short", "int32": "int", "int64": "long long", "uint8": "unsigned char",
           "uint16": "unsigned short", "uint32": "unsigned int", "uint64": "unsigned long long",
           "bool": "bool"}


@dataclass(frozen=True)
class Param:
    """One parameter of an ``ElementwiseKernel``: ``"raw T x"`` is Param("x", "T", raw=True)."""

    name: str
    type: str
    raw: bool = False

    @property
    def is_placeholder(self) -> bool:
        return self.type not in _CTYPES


def parse_params(spec: str) -> list[Param]:
    """Parse CuPy's parameter list syntax, ``"raw T x, float32 a, T y"``."""
    params = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        words = part.split()
        raw = words[0] == "raw"
        words = words[1:] if raw else words
        if len(words) != 2 or not words[1].isidentifier():
            raise ValueError(msg("techday.cuda_bad_param",
                                 "cannot parse parameter {part!r}: write '[raw] TYPE NAME', e.g. 'raw T x' or 'float32 a'",
                                 part=part))
        params.append(Param(words[1], words[0], raw))
    return params


def _bind_types(params: list[Param], dtypes: dict[str, np.dtype]) -> dict[str, np.dtype]:
    """Type placeholder -> dtype, from the dtypes of the named parameters."""
    bound: dict[str, np.dtype] = {}
    for p in params:
        if p.is_placeholder and p.name in dtypes:
            dt = np.dtype(dtypes[p.name])
            if bound.setdefault(p.type, dt) != dt:
                raise TypeError(msg("techday.cuda_type_bound_twice",
                                    "type {type} is bound to both {first} and {second} (parameter {name})",
                                    type=p.type, first=bound[p.type], second=dt, name=p.name))
    return bound


def elementwise_source(in_params: str, out_params: str, operation: str, name: str,
                       dtypes: dict[str, object]) -> str:
    """The CUDA C++ kernel that ``ElementwiseKernel(in_params, out_params, operation, name)`` stands for,
    with every parameter's dtype given in ``dtypes`` (name -> dtype; one per type placeholder is
    enough). Each thread handles the indices ``i`` of a grid-stride loop; a non-raw input ``x`` is
    the value ``x[i]``, an output ``y`` is a reference to ``y[i]``, a ``raw`` one is the whole array
    (``x[j]``, ``x.size()``), and ``_ind.size()`` is the number of elements."""
    ins, outs = parse_params(in_params), parse_params(out_params)
    params = ins + outs
    bound = _bind_types(params, {k: np.dtype(v) for k, v in dtypes.items()})

    def ctype(p: Param) -> str:
        dt = bound.get(p.type) if p.is_placeholder else np.dtype(p.type)
        if dt is None:
            raise TypeError(msg("techday.cuda_no_dtype", "no dtype for parameter {name} of type {type}: give one in dtypes",
                                name=p.name, type=p.type))
        return _CTYPES[dt.name]

    lines = [
        "#include <cuda_fp16.h>" if any(ctype(p) == "half" for p in params) else "",
        "template <typename T> struct RawArray {",
        "    T* data; long long n;",
        "    __device__ T& operator[](long long j) const { return data[j]; }",
        "    __device__ long long size() const { return n; }",
        "};",
        "struct Indexer { long long n; __device__ long long size() const { return n; } };",
        "",
    ]
    for placeholder, dt in bound.items():
        lines.append(f"typedef {_CTYPES[dt.name]} {placeholder};")
    args = []
    body = []
    for p in params:
        is_out = p in outs
        if p.raw:
            args.append(f"RawArray<{ctype(p)}> {p.name}")
        else:
            args.append(f"{'' if is_out else 'const '}{ctype(p)}* __restrict__ _{p.name}")
            body.append(f"        {ctype(p)}& {p.name} = _{p.name}[i];" if is_out
                        else f"        const {ctype(p)} {p.name} = _{p.name}[i];")
    # CuPy passes a scalar argument by value; here every non-raw input is an array read at i (a
    # broadcast scalar), which compiles the operation the same way.
    lines += [
        f'extern "C" __global__ void {name}({", ".join(args + ["long long _n"])}) {{',
        "    Indexer _ind{_n}; (void)_ind;",
        "    for (ptrdiff_t i = blockIdx.x * (ptrdiff_t)blockDim.x + threadIdx.x; i < _n;",
        "         i += (ptrdiff_t)blockDim.x * gridDim.x) {",
        *body,
        "        " + operation.strip().rstrip(";") + ";",
        "    }",
        "}",
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"


# --- host evaluation ------------------------------------------------------------------------------

_FUNCS = {
    "exp": np.exp, "expf": np.exp, "log": np.log, "logf": np.log, "sqrt": np.sqrt, "sqrtf": np.sqrt,
    "tanh": np.tanh, "tanhf": np.tanh, "sin": np.sin, "sinf": np.sin, "cos": np.cos, "cosf": np.cos,
    "fabs": np.abs, "fabsf": np.abs, "abs": np.abs, "fmax": np.fmax, "fmaxf": np.fmax, "fmin": np.fmin,
    "fminf": np.fmin, "max": np.maximum, "min": np.minimum, "floor": np.floor, "floorf": np.floor,
    "rsqrt": lambda v: 1 / np.sqrt(v), "rsqrtf": lambda v: 1 / np.sqrt(v), "pow": np.power, "powf": np.power,
}
_LITERAL_F = re.compile(r"(?<![A-Za-z_0-9.])(\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)[fF]\b")


# C types a local variable of an operation may be declared with (besides the type placeholders), as NumPy dtypes.
_C_DTYPES = {
    "float": np.dtype(np.float32), "double": np.dtype(np.float64), "int": np.dtype(np.int32),
    "unsigned int": np.dtype(np.uint32), "long long": np.dtype(np.int64), "ptrdiff_t": np.dtype(np.int64),
    "size_t": np.dtype(np.uint64),
}
_DECLARATION = re.compile(r"^(?:const\s+)?((?:unsigned\s+|long\s+)*[A-Za-z_]\w*)\s+([A-Za-z_]\w*)\s*=(?!=)\s*(.+)$", re.S)


class ElementwiseError(ValueError):
    """The operation uses C the host evaluator does not cover, or reads outside a raw array."""


def _c_div(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":  # C integer division truncates toward zero
        return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(np.result_type(a, b))
    return a / b


class _Evaluator:
    def __init__(self, env: dict, raw: dict, n: int):
        self.env, self.raw, self.n = env, raw, n

    def __call__(self, node):
        method = getattr(self, type(node).__name__, None)
        if method is None:
            raise ElementwiseError(msg("techday.cuda_not_covered",
                                       "the host evaluator does not cover {kind} ({code!r}); NVRTC still checks it",
                                       kind=type(node).__name__, code=ast.unparse(node)))
        return method(node)

    def Constant(self, node):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ElementwiseError(msg("techday.cuda_literal", "unsupported literal {value!r}", value=node.value))
        return node.value

    def Name(self, node):
        if node.id not in self.env:
            raise ElementwiseError(msg("techday.cuda_unknown_name",
                                       "unknown name {name!r}: not a parameter, 'i' or a known function", name=node.id))
        return self.env[node.id]

    def BinOp(self, node):
        a, b = self(node.left), self(node.right)
        ops = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: _c_div,
               ast.Mod: np.fmod}
        if type(node.op) not in ops:
            raise ElementwiseError(msg("techday.cuda_operator", "unsupported operator in {code!r}", code=ast.unparse(node)))
        return ops[type(node.op)](a, b)

    def UnaryOp(self, node):
        v = self(node.operand)
        if isinstance(node.op, ast.USub):
            return np.negative(v)
        if isinstance(node.op, ast.UAdd):
            return v
        raise ElementwiseError(msg("techday.cuda_operator", "unsupported operator in {code!r}", code=ast.unparse(node)))

    def Compare(self, node):
        ops = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
               ast.Eq: np.equal, ast.NotEq: np.not_equal}
        if len(node.ops) != 1 or type(node.ops[0]) not in ops:
            raise ElementwiseError(msg("techday.cuda_comparison", "unsupported comparison {code!r}", code=ast.unparse(node)))
        return ops[type(node.ops[0])](self(node.left), self(node.comparators[0]))

    def Call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "size" and not node.args and isinstance(f.value, ast.Name):
            if f.value.id == "_ind":
                return np.int64(self.n)
            if f.value.id in self.raw:
                return np.int64(self.raw[f.value.id].size)
        if isinstance(f, ast.Name) and f.id in _FUNCS and not node.keywords:
            return _FUNCS[f.id](*(self(a) for a in node.args))
        raise ElementwiseError(msg("techday.cuda_call", "unsupported call {code!r}", code=ast.unparse(node)))

    def Subscript(self, node):
        if not isinstance(node.value, ast.Name) or node.value.id not in self.raw:
            raise ElementwiseError(msg("techday.cuda_index_not_raw", "{code!r}: only raw parameters can be indexed",
                                       code=ast.unparse(node)))
        arr = self.raw[node.value.id]
        idx = np.asarray(self(node.slice))
        if idx.dtype.kind not in "iu":
            raise ElementwiseError(msg("techday.cuda_index_not_int", "{code!r}: the index is not an integer",
                                       code=ast.unparse(node)))
        idx = np.broadcast_to(idx, (self.n,))
        bad = np.flatnonzero((idx < 0) | (idx >= arr.size))
        if bad.size:
            j = int(bad[0])
            raise IndexError(msg("techday.cuda_out_of_bounds",
                                 "{code} reads outside {array} (size {size}): index {index} at i = {i} ({bad} of {n} "
                                 "threads read out of bounds; a GPU would read whatever lies there)",
                                 code=ast.unparse(node), array=node.value.id, size=arr.size, index=int(idx[j]), i=j,
                                 bad=bad.size, n=self.n))
        return arr.reshape(-1)[idx]


def run_elementwise(in_params: str, out_params: str, operation: str, *args, size: int | None = None):
    """Evaluate ``ElementwiseKernel(in_params, out_params, operation)(*args)`` on the host with NumPy.

    ``args`` are the inputs (NumPy arrays or scalars), then optionally the outputs. Non-raw arguments
    broadcast to one shape, as in CuPy; with only raw inputs give ``size``. Returns the output array,
    or a tuple of them. Outputs take the dtype their type placeholder is bound to (or the first input's).
    """
    ins, outs = parse_params(in_params), parse_params(out_params)
    if len(args) not in (len(ins), len(ins) + len(outs)):
        raise TypeError(msg("techday.cuda_arg_count",
                            "expected {ins} inputs (and optionally {outs} outputs), got {got} arguments",
                            ins=len(ins), outs=len(outs), got=len(args)))
    given = dict(zip([p.name for p in ins + outs], args))
    dtypes = {k: np.asarray(v).dtype for k, v in given.items()}
    for p in ins + outs:  # a Python scalar takes the placeholder's dtype from the arrays, as in CuPy
        if p.name in given and np.ndim(given[p.name]) == 0 and not isinstance(given[p.name], np.generic):
            dtypes.pop(p.name)
    bound = _bind_types(ins + outs, dtypes)
    for p in ins + outs:
        if not p.is_placeholder:
            bound.setdefault(p.type, np.dtype(p.type))
    elementwise = [np.asarray(given[p.name]) for p in ins + outs if not p.raw and p.name in given]
    shape = np.broadcast_shapes(*(a.shape for a in elementwise)) if elementwise else None
    if shape is None or shape == ():
        if size is None and shape is None:
            raise ValueError(msg("techday.cuda_give_size", "only raw inputs: give size= (the number of elements)"))
        shape = (size,) if size is not None else ()
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    env: dict = {"i": i}
    raw = {}
    for p in ins:
        value = given[p.name]
        dt = bound.get(p.type)
        arr = np.asarray(value, dtype=dt) if dt is not None else np.asarray(value)
        if p.raw:
            raw[p.name] = arr
            env[p.name] = arr
        else:
            env[p.name] = np.broadcast_to(arr, shape).reshape(-1)
    results = []
    for p in outs:
        dt = bound.get(p.type) or np.asarray(args[0]).dtype
        out = np.asarray(given[p.name]) if p.name in given else np.empty(shape, dt)
        results.append((p, out))
    # Assignments, one per statement: "y = expr; z = expr", and local variables: "T acc = expr; acc += expr".
    code = _LITERAL_F.sub(r"\1", operation.strip())
    statements = [s.strip() for s in code.split(";") if s.strip()]
    if not statements:
        raise ElementwiseError(msg("techday.cuda_empty", "the operation is empty"))
    ev = _Evaluator(env, raw, n)
    written = {}
    local_types: dict[str, np.dtype] = {}
    out_names = {p.name for p in outs}
    for st in statements:
        decl = _DECLARATION.match(st)
        if decl:
            ctype, name, expr = " ".join(decl.group(1).split()), decl.group(2), decl.group(3)
            dtype = bound.get(ctype) if ctype in bound else _C_DTYPES.get(ctype)
            if dtype is None:
                raise ElementwiseError(msg("techday.cuda_unknown_type",
                                           "{statement!r}: the host evaluator knows no type {ctype!r} (use a type "
                                           "placeholder, {known}); NVRTC still checks the C",
                                           statement=st, ctype=ctype, known=", ".join(sorted(_C_DTYPES))))
            if name in env or name in _FUNCS or name in local_types:
                raise ElementwiseError(msg("techday.cuda_declared_twice",
                                           "{statement!r}: {name!r} is already declared (a parameter, 'i' or a local variable)",
                                           statement=st, name=name))
            local_types[name] = dtype
            st = f"{name} = {expr}"
        try:
            tree = ast.parse(st, mode="exec").body
        except SyntaxError as exc:
            raise ElementwiseError(msg("techday.cuda_unreadable",
                                       "the host evaluator cannot read {statement!r} ({error}): use C that is also Python "
                                       "expression syntax (no ?:); NVRTC checks the C", statement=st, error=exc.msg)) from None
        if len(tree) != 1 or not isinstance(tree[0], (ast.Assign, ast.AugAssign)):
            raise ElementwiseError(msg("techday.cuda_not_assignment",
                                       "{statement!r}: each statement must assign to an output or a local variable (y = ...)",
                                       statement=st))
        node = tree[0]
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if not isinstance(target, ast.Name) or target.id not in out_names | set(local_types):
            raise ElementwiseError(msg("techday.cuda_bad_target",
                                       "{statement!r}: assign to an output parameter ({outputs}) or a declared local variable",
                                       statement=st, outputs=", ".join(p.name for p in outs)))
        value = np.broadcast_to(np.asarray(ev(node.value)), (n,))
        if isinstance(node, ast.AugAssign):
            prev = env.get(target.id)
            if prev is None:
                raise ElementwiseError(msg("techday.cuda_read_before_write", "{statement!r}: {name} is read before it is written",
                                           statement=st, name=target.id))
            value = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: _c_div}[type(node.op)](prev, value)
        if target.id in local_types:  # a C local keeps its declared type
            env[target.id] = value.astype(local_types[target.id])
            continue
        env[target.id] = value
        written[target.id] = value
    for p, out in results:
        if p.name not in written:
            raise ElementwiseError(msg("techday.cuda_output_unassigned", "the operation never assigns the output {name}",
                                       name=p.name))
        out.reshape(-1)[...] = written[p.name].astype(out.dtype, copy=False)
    outs_only = [out for _, out in results]
    return outs_only[0] if len(outs_only) == 1 else tuple(outs_only)
