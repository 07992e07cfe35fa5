"""A kernel's resource report (registers, shared memory, spills), on any machine.

numba-cuda compiles a kernel to PTX without a GPU (``cuda.compile_ptx``), and ``ptxas -v`` from the
CUDA toolkit (the ``nvidia-cuda-nvcc-cu12`` wheel of the test extras, or a local toolkit) assembles
that PTX for an architecture and prints what one thread and one block need::

    ptxas info    : Used 22 registers, used 1 barriers, 4224 bytes smem, 496 bytes cmem[0]
        0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads

In the CUDA simulator (the CPU tier) ``cuda.compile_ptx`` is not available, so the kernel's source is
compiled in a child process with the simulator switched off; on a GPU the same path is used, so the
report is the same on every tier. Introduced in lab 04 (the memory subsystem)::

    from techday.ptxreport import resource_reports
    reports = resource_reports({"transpose": (transpose_kernel, "void(float32[:, ::1], float32[:, ::1])")},
                               constants={"TILE": 32, "TILE_PAD": 33})
    print(reports["transpose"])
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from . import proctree
from .i18n import msg

# What the kernel sources may use without importing it themselves.
PREAMBLE = "import math\nimport numpy as np\nfrom numba import cuda, float32, float64, int32, int64, uint8, uint32\n"
DEFAULT_CC = (8, 0)


class PtxError(RuntimeError):
    """A kernel that could not be compiled to PTX; the message holds the compiler's last lines."""


class ToolkitMissing(PtxError):
    """The CUDA compiler libraries (NVVM, libdevice) are not installed, so nothing can be compiled:
    ``pip install -e ".[test]"`` (or ``".[gpu]"``) installs them. Callers skip with this message."""


# What numba-cuda says when NVVM or libdevice cannot be found (the kernel itself is not at fault).
_TOOLKIT_MISSING = ("NvvmSupportError", "libNVVM", "libdevice", "No module named 'cuda.bindings'",
                    "No module named 'cuda'")


def toolkit_missing(log: str) -> bool:
    """True when a compiler log says the CUDA toolkit libraries are missing, not that a kernel is wrong."""
    return any(marker in log for marker in _TOOLKIT_MISSING)


@dataclass
class ResourceReport:
    """What one kernel needs per thread and per block, for one architecture."""

    name: str
    cc: tuple[int, int]
    shared_bytes_ptx: int                 # static shared memory declared in the PTX
    registers: int | None = None          # from ptxas -v (None when ptxas is missing)
    shared_bytes: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    stack_bytes: int | None = None
    ptxas_log: str = ""
    ptx: str = field(default="", repr=False)

    def __str__(self) -> str:
        arch = f"sm_{self.cc[0]}{self.cc[1]}"
        if self.registers is None:
            return msg("techday.ptx_static_shared", "{name} [{arch}]: {shared} B static shared memory (from the PTX; no ptxas)",
                       name=self.name, arch=arch, shared=self.shared_bytes_ptx)
        return msg("techday.ptx_resources",
                   "{name} [{arch}]: {registers} registers/thread, {shared} B shared memory/block, "
                   "spill stores {stores} B, spill loads {loads} B, stack {stack} B",
                   name=self.name, arch=arch, registers=self.registers, shared=self.shared_bytes,
                   stores=self.spill_stores, loads=self.spill_loads, stack=self.stack_bytes)


def find_ptxas() -> tuple[str | None, str]:
    """Return (path to ptxas or None, how it was found or why it is missing). Lab 04 prints the second
    (``ptxas: <path> (<how>)``): it is worded in the run's language (``techday.ptxas_*`` messages).

    Looked for in order: ``$PTXAS``, the ``nvidia-cuda-nvcc-cu12`` wheel (``nvidia/cuda_nvcc/bin``),
    CUDA 13's ``nvidia-cuda-nvcc`` wheel (``nvidia/cu13/bin``), ``$CUDA_HOME`` / ``$CUDA_PATH``, then ``PATH``."""
    tried = []
    env = os.environ.get("PTXAS")
    if env:
        if os.access(env, os.X_OK):
            return env, "$PTXAS"
        tried.append(msg("techday.ptxas_tried_not_executable", "$PTXAS={path} (not executable)", path=env))
    try:
        import nvidia.cuda_nvcc as nvcc  # the CUDA 12 toolkit wheel

        roots = list(getattr(nvcc, "__path__", [])) or [str(Path(nvcc.__file__).parent)]
        for root in roots:
            cand = Path(root) / "bin" / "ptxas"
            if os.access(cand, os.X_OK):
                return str(cand), msg("techday.ptxas_how_cu12_wheel", "the nvidia-cuda-nvcc-cu12 wheel")
        tried.append(msg("techday.ptxas_tried_cu12_empty", "the nvidia-cuda-nvcc-cu12 wheel (no bin/ptxas in it)"))
    except ImportError:
        tried.append(msg("techday.ptxas_tried_cu12_missing",
                         "the nvidia-cuda-nvcc-cu12 wheel (not installed: pip install -e '.[test]')"))
    try:
        import nvidia  # the namespace package of NVIDIA's wheels

        found = ptxas_in_cuda13_wheels(list(getattr(nvidia, "__path__", [])))
        if found:
            return found, msg("techday.ptxas_how_cu13_wheel", "the nvidia-cuda-nvcc wheel of CUDA 13")
        tried.append(msg("techday.ptxas_tried_cu13_missing", "the nvidia-cuda-nvcc wheel of CUDA 13 (not installed)"))
    except ImportError:
        tried.append(msg("techday.ptxas_tried_cu13_missing", "the nvidia-cuda-nvcc wheel of CUDA 13 (not installed)"))
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home:
            cand = Path(home) / "bin" / "ptxas"
            if os.access(cand, os.X_OK):
                return str(cand), f"${var}"
            tried.append(f"${var}/bin")
    which = shutil.which("ptxas")
    if which:
        return which, "PATH"
    tried.append("PATH")
    return None, msg("techday.ptxas_not_found", "ptxas not found; looked in {tried}", tried=", ".join(tried))


def ptxas_in_cuda13_wheels(nvidia_paths: list[str]) -> str | None:
    """ptxas of CUDA 13's ``nvidia-cuda-nvcc`` wheel (the image's cuda13 set): ``nvidia/cu13/bin/ptxas``."""
    for root in nvidia_paths:
        cand = Path(root) / "cu13" / "bin" / "ptxas"
        if os.access(cand, os.X_OK):
            return str(cand)
    return None


def kernel_source(kernel) -> str:
    """The Python source of a ``@cuda.jit`` kernel or device function (GPU dispatcher or simulator)."""
    func = getattr(kernel, "py_func", None) or getattr(kernel, "fn", None) or kernel
    return textwrap.dedent(inspect.getsource(func))


_CHILD = r"""
import json, sys
spec = json.load(open(sys.argv[1]))
from numba import cuda
if not cuda.is_available():
    # Compiling a call to a device function asks the current device for its compute capability;
    # without a GPU, answer with the architecture the PTX is for.
    import types
    import numba.cuda.dispatcher as dispatcher
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=tuple(spec["cc"]))
ns = {"__name__": "techday_ptx"}
exec(spec["preamble"], ns)
ns.update(spec["constants"])
exec(compile(spec["source"], "<kernels>", "exec"), ns)
out = {}
for name, sig in spec["kernels"].items():
    obj = ns[name]
    ptx, _ = cuda.compile_ptx(getattr(obj, "py_func", obj), sig, cc=tuple(spec["cc"]), lineinfo=False)
    out[name] = ptx
json.dump(out, open(sys.argv[2], "w"))
"""


def compile_ptx_sources(kernels: dict, constants: dict | None = None, cc=DEFAULT_CC, extra_source: str = "",
                        timeout: int = 180) -> dict[str, str]:
    """Compile kernels to PTX in a child process with the simulator off; return {name: ptx}.

    ``kernels`` maps a label to ``(kernel, signature)``; ``constants`` are globals the kernels read
    (tile sizes: numbers only); ``extra_source`` holds device functions they call."""
    sources, names = [extra_source] if extra_source else [], {}
    for label, (kernel, sig) in kernels.items():
        src = kernel_source(kernel)
        sources.append(src)
        m = re.search(r"^def\s+(\w+)\s*\(", src, re.M)
        if not m:
            raise PtxError(msg("techday.ptx_no_function", "{label}: no function definition in its source", label=label))
        names[label] = (m.group(1), sig)
    with tempfile.TemporaryDirectory(prefix="techday-ptx-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "ptx.json"
        spec = {"preamble": PREAMBLE, "constants": constants or {}, "source": "\n\n".join(sources),
                "kernels": {name: sig for name, sig in names.values()}, "cc": list(cc)}
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        proc = proctree.run([sys.executable, "-c", _CHILD, str(spec_path), str(out_path)], timeout, env=env)
        if proc.returncode != 0 or not out_path.is_file():
            log = (proc.stderr or proc.stdout).strip()
            tail = "\n".join(log.splitlines()[-6:])
            if toolkit_missing(log):
                raise ToolkitMissing(msg("techday.ptx_toolkit_missing", "numba-cuda cannot compile to PTX here: the "
                                         "CUDA compiler libraries (NVVM) are missing; pip install -e '.[test]' "
                                         "installs them. Last lines:") + "\n" + tail)
            raise PtxError(msg("techday.ptx_failed", "compiling {kernels} to PTX failed:", kernels=", ".join(kernels))
                           + "\n" + tail)
        ptx = json.loads(out_path.read_text(encoding="utf-8"))
    return {label: ptx[name] for label, (name, _) in names.items()}


_SHARED_RE = re.compile(r"^\s*(?:\.visible\s+|\.global\s+)?\.shared\s+(?:\.align\s+\d+\s+)?\.(?:b|u|s|f)(\d+)\s+\S+?\[(\d+)\]", re.M)


def ptx_shared_bytes(ptx: str) -> int:
    """Static shared memory declared in PTX (``.visible .shared .align 4 .b8 name[4224];``), in bytes."""
    return sum(int(bits) // 8 * int(count) for bits, count in _SHARED_RE.findall(ptx))


def ptxas_verbose(ptx: str, cc=DEFAULT_CC, ptxas: str | None = None, timeout: int = 120,
                  options: tuple[str, ...] = ()) -> str:
    """Assemble PTX with ``ptxas -v`` (plus ``options``, e.g. ``("-maxrregcount=32",)``) and return
    its report (stderr)."""
    ptxas = ptxas or find_ptxas()[0]
    if not ptxas:
        raise FileNotFoundError(find_ptxas()[1])
    with tempfile.TemporaryDirectory(prefix="techday-ptxas-") as tmp:
        src, obj = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        src.write_text(ptx, encoding="utf-8")
        proc = subprocess.run([ptxas, "-v", f"-arch=sm_{cc[0]}{cc[1]}", *options, str(src), "-o", str(obj)],
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        # Mangled entry names run to hundreds of characters: shorten them so the reason stays readable.
        log = re.sub(r"_Z\w{40,}", lambda m: m.group(0)[:24] + "...", (proc.stderr or proc.stdout).strip())
        raise PtxError(msg("techday.ptxas_failed", "ptxas failed: {log}", log=log[-600:]))
    return proc.stderr + proc.stdout


def parse_ptxas(log: str) -> dict:
    """Registers, shared memory, spills and stack of the (single) entry function in a ``ptxas -v`` log."""
    def grab(pattern, default=0):
        m = re.search(pattern, log)
        return int(m.group(1)) if m else default
    return {
        "registers": grab(r"Used (\d+) registers"),
        "shared_bytes": grab(r"(\d+) bytes smem"),
        "spill_stores": grab(r"(\d+) bytes spill stores"),
        "spill_loads": grab(r"(\d+) bytes spill loads"),
        "stack_bytes": grab(r"(\d+) bytes stack frame"),
    }


def resource_reports(kernels: dict, constants: dict | None = None, cc=DEFAULT_CC, extra_source: str = "",
                     use_ptxas: bool = True, ptxas_options: tuple[str, ...] = ()) -> dict[str, ResourceReport]:
    """{label: ResourceReport} for kernels given as {label: (kernel, signature)}. Without ptxas
    (``use_ptxas=False`` or none found) only the PTX's shared-memory declarations are reported."""
    ptxs = compile_ptx_sources(kernels, constants, cc, extra_source)
    ptxas = find_ptxas()[0] if use_ptxas else None
    out = {}
    for label, ptx in ptxs.items():
        rep = ResourceReport(label, tuple(cc), ptx_shared_bytes(ptx), ptx=ptx)
        if ptxas:
            rep.ptxas_log = ptxas_verbose(ptx, cc, ptxas, options=ptxas_options)
            for key, value in parse_ptxas(rep.ptxas_log).items():
                setattr(rep, key, value)
        out[label] = rep
    return out


def ptx_opcodes(ptx: str) -> list[str]:
    """The instructions of a PTX listing in order, as opcodes (``fma.rn.f32``, ``ld.global.f32``): no
    directives, labels, braces or comments."""
    return [line.split()[0] for line in ptx.splitlines()
            if line.startswith("\t") and line.strip() and line.strip()[0] not in "/.{}$"]


def instruction_mix(ptx: str) -> tuple[int, int, int]:
    """(FP32 FMAs, other instructions, global loads) of a PTX listing."""
    ops = ptx_opcodes(ptx)
    fmas = sum(op.startswith("fma.rn.f32") for op in ops)
    return fmas, len(ops) - fmas, sum(op.startswith("ld.global") for op in ops)


def loads_before_store(ptx: str, store: str) -> tuple[list[int], int]:
    """(positions of the global loads, position of the first ``store`` instruction, e.g. ``st.shared``)."""
    ops = ptx_opcodes(ptx)
    return [i for i, op in enumerate(ops) if op.startswith("ld.global")], \
        next(i for i, op in enumerate(ops) if op.startswith(store))
