"""What the libraries a trainee may import hold under other names: modules and the interpreter's
machinery, reached as attributes with no ``import`` for the review to read.

The review (:mod:`techday.grading.review`) allows a trainee's cell the modules its lab imports and a few
plain ones, by the ``import`` statement. A library's namespace holds other modules too, under names of
its own choosing: ``re.enum.bltns`` is the ``builtins`` module (Python's ``enum`` imports it under that
name), ``pathlib.attrgetter`` is ``operator.attrgetter``, ``numba.cuda.utils.import_module`` imports any
module by a computed name, ``torch.jit.frontend.string`` is ``string`` (whose ``Formatter`` looks up
attributes by computed names). From ``builtins.getattr`` every name the review refuses is a computed
string away: a lab 10 cell that named nothing the review refused read the referee's key through
``as_strided`` and forged a record for every test (15 of 15, ``graded``, no note).

So the attributes of the installed libraries are read once, here, and :data:`ALIASES` says, for every
attribute name under which a module of an allowed package (numpy, torch, numba, matplotlib, the plain
standard modules...) or a class it defines holds

- a module: that module's name (the review holds it to the rule of importing it: a module of the
  interpreter's machinery, of a package the lab does not import, with a private part, or Numba's
  internals, is a finding; a module the lab could import is not);
- a builtin outside the review's allow-list (``getattr``, ``type``, ``open``...), or a function or class
  of the interpreter's machinery (:data:`techday.grading.review.NEVER_MODULES`: ``operator``, ``ctypes``,
  ``weakref``, ``multiprocessing``...): always a finding.

Only names the review does not refuse anyway are listed, keyed by the package that holds them
(``{name: {package: (what, ...)}}``): a lab that does not import the package is not concerned. The table
is generated (``python -m techday.grading.review_aliases``, under the CPU tier's simulator and without
it) from the installed libraries, with the versions it was read from (:data:`GENERATED_FOR`); where a
grading host's differ (a newer library may hold a new name), :func:`aliases` reads that host's libraries
again, once per process (about 8 s), rather than trust the committed table, and
``tests/unit/test_review.py`` fails when the committed table is no longer what its versions hold. Not covered: a submodule that importing its package does not load (a trainee who imports it by
name is held by the import rule, not by this table), objects held in a library's containers or
instances (not namespaces), and a library function that looks attributes up by a computed name under
a name of its own (``matplotlib.artist.getp`` reads only ``get_*``; none other was found).
"""

from __future__ import annotations

# Packages whose namespaces are read: every package a lab imports, and the plain modules (the review's
# PLAIN_MODULES). A package not installed here is skipped.
SCANNED = ("argparse", "cupy", "cupyx", "json", "logging", "matplotlib", "matplotlib.pyplot", "numba",
           "numba.cuda", "numba.typed", "numpy", "nvtx", "onnx", "onnxruntime", "platform", "rich", "skimage",
           "torch", "torch.nn", "torch.nn.functional", "torch.utils.data")


# The operator module's functions that are only the operators (``statistics.mul`` is ``operator.mul``):
# not machinery. ``attrgetter`` and ``methodcaller`` look attributes up by computed names: they are.
OPERATORS = frozenset({"abs", "add", "and_", "concat", "contains", "countOf", "eq", "floordiv", "ge", "getitem",
                       "gt", "index", "indexOf", "inv", "invert", "is_", "is_not", "itemgetter", "le", "length_hint",
                       "lshift", "lt", "matmul", "mod", "mul", "ne", "neg", "not_", "or_", "pos", "pow", "rshift",
                       "sub", "truediv", "truth", "xor", "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod"})


# What the interpreter's machinery holds that is no machinery: ``open`` (files are a trainee's through
# pathlib; the referee refuses memory files and code files), inspect's description of a signature
# (matplotlib holds ``inspect.Parameter`` where a trainee writes ``nn.Parameter``).
HARMLESS_BUILTINS = frozenset({"open"})
HARMLESS = frozenset({"inspect.Parameter", "inspect.Signature"})


def scan() -> dict[str, dict[str, tuple[str, ...]]]:
    """Read the namespaces of every module of the scanned packages now loaded (see the module's text)."""
    import ast
    import builtins
    import importlib
    import sys
    import types
    import warnings

    from .review import (ALLOWED_BUILTINS, NEVER_MODULES, PLAIN_MODULES, Context, _attribute_hits, _import_hits,
                         numba_name)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sorted(set(SCANNED) | PLAIN_MODULES):
            try:
                importlib.import_module(name)
            except Exception:  # not installed here (cupy without a GPU), or fails to load
                pass
    packages = {name.split(".")[0] for name in SCANNED} | PLAIN_MODULES
    widest = Context({"cells": []})  # every scanned package importable: what is left is refused in any lab
    widest.modules = packages - NEVER_MODULES

    def what(value, package: str) -> str | None:
        if isinstance(value, types.ModuleType):
            name = getattr(value, "__name__", None)
            if not isinstance(name, str):
                return None
            root = name.split(".")[0]
            if root != package:  # another package: the review holds it to the rule of importing it
                return f"module {name}" if root not in PLAIN_MODULES else None
            # The package's own modules, private ones included (``numpy._core.umath`` is NumPy's, as
            # ``np.multiply`` is); Numba's beyond those the labs teach are its compiler's internals.
            return f"module {name}" if root == "numba" and _import_hits(name, widest) else None
        name = getattr(value, "__name__", None)
        if isinstance(value, type) and issubclass(value, BaseException):
            return None
        if isinstance(name, str) and getattr(builtins, name, None) is value:
            return f"builtins.{name}" if name not in ALLOWED_BUILTINS | HARMLESS_BUILTINS else None
        module = getattr(value, "__module__", None)
        if not callable(value) or not isinstance(module, str):
            return None
        held = f"{module}.{getattr(value, '__qualname__', name)}"
        if module == "builtins":  # a type of the interpreter's (FunctionType, TracebackType...)
            return held if name not in ALLOWED_BUILTINS else None
        if module.split(".")[0].lstrip("_") in NEVER_MODULES and held not in HARMLESS \
                and not (module.lstrip("_") == "operator" and name in OPERATORS):
            return held
        return None

    # From each package, what a trainee's cell reaches by attributes the review lets through: modules of
    # the same package and classes, read breadth first. A module of another package ends the walk there
    # (listed: the review decides by the lab's imports; the package's own walk reads it when allowed).
    found: dict[str, dict[str, set]] = {}
    for package in sorted(packages - NEVER_MODULES):
        start = sys.modules.get(package)
        if start is None:
            continue
        todo, seen = [start], {id(start)}
        while todo:
            holder = todo.pop(0)
            try:
                space = list(vars(holder).items())
            except TypeError:
                continue
            for attr, value in space:
                if not isinstance(attr, str) or not attr.isidentifier() or attr.startswith("_") \
                        or _attribute_hits(ast.Attribute(value=ast.Name(id="x"), attr=attr), {}) \
                        or holder is sys.modules.get("numba") and not numba_name(attr):
                    continue
                try:
                    held = what(value, package)
                    mine = (value.__name__ if isinstance(value, types.ModuleType) else value.__module__).split(".")[0] \
                        == package if isinstance(value, (types.ModuleType, type)) else False
                except Exception:
                    continue
                if held:
                    found.setdefault(attr, {}).setdefault(package, set()).add(held)
                elif mine and isinstance(value, (types.ModuleType, type)) and id(value) not in seen:
                    seen.add(id(value))
                    todo.append(value)
    return {attr: {p: tuple(sorted(h)) for p, h in sorted(by.items())} for attr, by in sorted(found.items())}


def scan_both() -> dict[str, dict[str, tuple[str, ...]]]:
    """:func:`scan` in two fresh interpreters, with Numba's CUDA simulator (the CPU tier) and without it
    (``numba.cuda`` is another module then), merged."""
    import json
    import os
    import subprocess
    import sys

    merged: dict[str, dict[str, set]] = {}
    for sim in ("1", "0"):
        env = {**os.environ, "NUMBA_ENABLE_CUDASIM": sim}
        out = subprocess.run([sys.executable, "-c", "import json; from techday.grading.review_aliases import scan; "
                              "print(json.dumps(scan()))"], capture_output=True, text=True, env=env, timeout=600,
                             check=True).stdout
        for attr, by in json.loads(out.strip().splitlines()[-1]).items():
            for package, held in by.items():
                merged.setdefault(attr, {}).setdefault(package, set()).update(held)
    return {attr: {p: tuple(sorted(h)) for p, h in sorted(by.items())} for attr, by in sorted(merged.items())}


# The distributions whose versions decide the table (with the interpreter's, for the standard modules):
# those of the scanned packages, where installed.
KEYED = ("numpy", "torch", "numba", "numba-cuda", "llvmlite", "matplotlib", "onnx", "onnxruntime", "onnxscript",
         "scikit-image", "scipy", "rich", "nvtx", "cupy-cuda12x", "cupy-cuda13x", "pillow")


def environment() -> str:
    """The interpreter's version and the installed versions of :data:`KEYED`, as :data:`GENERATED_FOR` holds
    them."""
    import platform
    from importlib import metadata

    parts = [f"python=={platform.python_version()}"]
    for name in KEYED:
        try:
            parts.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return " ".join(parts)


_TABLE: dict | None = None


def aliases() -> dict[str, dict[str, tuple[str, ...]]]:
    """The table for the libraries installed here, decided once per process (the review asks for every
    attribute of every cell): :data:`ALIASES` where they are the versions it was generated from, else a
    scan of them (:func:`scan_both`). A scan that fails (a library that does not import) leaves the
    committed table."""
    global _TABLE
    if _TABLE is None:
        if environment() == GENERATED_FOR:
            _TABLE = ALIASES
        else:
            import subprocess

            try:
                _TABLE = scan_both()
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                _TABLE = ALIASES
    return _TABLE


def main() -> None:
    """Rewrite :data:`ALIASES` below from the installed libraries."""
    from pathlib import Path

    path = Path(__file__)
    text = path.read_text(encoding="utf-8")
    head = text[:text.index("\n# --- generated") + 1]
    lines = ["# --- generated by `python -m techday.grading.review_aliases`; do not edit by hand ---",
             f"GENERATED_FOR = {environment()!r}",
             "ALIASES: dict[str, dict[str, tuple[str, ...]]] = {"]
    for attr, by in scan_both().items():
        lines.append(f"    {attr!r}: {{{', '.join(f'{p!r}: {h!r}' for p, h in by.items())}}},")
    lines.append("}")
    path.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

# --- generated by `python -m techday.grading.review_aliases`; do not edit by hand ---
GENERATED_FOR = 'python==3.11.7 numpy==2.4.6 torch==2.13.0+cpu numba==0.68.1 numba-cuda==0.30.4 llvmlite==0.50.0 matplotlib==3.11.2 onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2 scikit-image==0.26.0 scipy==1.17.1 rich==15.0.0 pillow==13.0.0'
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    'FunctionType': {'dataclasses': ('builtins.function',)},
    'GenericAlias': {'contextlib': ('types.GenericAlias',), 'dataclasses': ('types.GenericAlias',), 'functools': ('types.GenericAlias',), 'logging': ('types.GenericAlias',), 'typing': ('types.GenericAlias',)},
    'Image': {'matplotlib': ('module PIL.Image',)},
    'MappingProxyType': {'torch': ('builtins.mappingproxy',)},
    'MethodDescriptorType': {'typing': ('builtins.method_descriptor',)},
    'MethodType': {'contextlib': ('builtins.method',)},
    'MethodWrapperType': {'typing': ('builtins.method-wrapper',)},
    'ModuleType': {'torch': ('builtins.module',)},
    'PIL': {'matplotlib': ('module PIL',)},
    'RLock': {'numpy': ('threading.RLock',)},
    'ReferenceType': {'torch': ('weakref.ReferenceType',)},
    'Request': {'torch': ('urllib.request.Request',)},
    'SimpleNamespace': {'matplotlib': ('types.SimpleNamespace',)},
    'TemporaryDirectory': {'matplotlib': ('tempfile.TemporaryDirectory',)},
    'TracebackType': {'torch': ('builtins.traceback',)},
    'WeakKeyDictionary': {'matplotlib': ('weakref.WeakKeyDictionary',), 'torch': ('weakref.WeakKeyDictionary',)},
    'WeakRef': {'torch': ('weakref.ReferenceType',)},
    'WeakValueDictionary': {'matplotlib': ('weakref.WeakValueDictionary',), 'torch': ('weakref.WeakValueDictionary',)},
    'WrapperDescriptorType': {'typing': ('builtins.wrapper_descriptor',)},
    'api': {'numba': ('module numba.cuda.api', 'module numba.cuda.simulator.api')},
    'api_util': {'numba': ('module numba.cuda.api_util',)},
    'argparse': {'onnx': ('module argparse',), 'torch': ('module argparse',)},
    'args': {'numba': ('module numba.cuda.args', 'module numba.cuda.simulator.args')},
    'attrgetter': {'pathlib': ('operator.attrgetter',), 'torch': ('operator.attrgetter',)},
    'base64': {'matplotlib': ('module base64',), 'torch': ('module base64',)},
    'bf16': {'numba': ('module numba.cuda.simulator.bf16',)},
    'byref': {'torch': ('_ctypes.byref',)},
    'c_double': {'torch': ('ctypes.c_double',)},
    'c_uint32': {'torch': ('ctypes.c_uint',)},
    'c_void_p': {'torch': ('ctypes.c_void_p',)},
    'cache_hints': {'numba': ('module numba.cuda.cache_hints',)},
    'cast': {'torch': ('ctypes.cast',)},
    'cext': {'numba': ('module numba.cuda.cext',)},
    'cg': {'numba': ('module numba.cuda.cg',)},
    'cgutils': {'numba': ('module numba.cuda.cgutils',)},
    'codecs': {'json': ('module codecs',)},
    'compiler': {'numba': ('module numba.cuda.compiler', 'module numba.cuda.simulator.compiler')},
    'config': {'numba': ('module numba.core.config',)},
    'contextvars': {'torch': ('module contextvars',)},
    'core': {'numba': ('module numba.cuda.core',)},
    'cpython': {'numba': ('module numba.cuda.cpython',)},
    'cuda_paths': {'numba': ('module numba.cuda.cuda_paths',)},
    'datamodel': {'numba': ('module numba.cuda.datamodel',)},
    'datetime': {'matplotlib': ('module datetime',), 'torch': ('module datetime',)},
    'dateutil': {'matplotlib': ('module dateutil',)},
    'debuginfo': {'numba': ('module numba.cuda.debuginfo',)},
    'decorators': {'numba': ('module numba.cuda.decorators',)},
    'descriptor': {'numba': ('module numba.cuda.descriptor',)},
    'device_init': {'numba': ('module numba.cuda.device_init',)},
    'devicearray': {'numba': ('module numba.cuda.cudadrv.devicearray', 'module numba.cuda.simulator.cudadrv.devicearray')},
    'devices': {'numba': ('module numba.cuda.cudadrv.devices',)},
    'deviceufunc': {'numba': ('module numba.cuda.deviceufunc',)},
    'difflib': {'torch': ('module difflib',)},
    'dispatcher': {'numba': ('module numba.cuda.dispatcher', 'module numba.cuda.simulator.dispatcher')},
    'driver': {'numba': ('module numba.cuda.cudadrv.driver',)},
    'enum': {'matplotlib': ('module enum',), 're': ('module enum',), 'torch': ('module enum',)},
    'errno': {'torch': ('module errno',)},
    'errors': {'numba': ('module numba.cuda.errors',)},
    'extending': {'numba': ('module numba.cuda.extending',)},
    'find_spec': {'torch': ('importlib.util.find_spec',)},
    'flags': {'numba': ('module numba.cuda.flags',)},
    'fnmatch': {'pathlib': ('module fnmatch',), 'torch': ('module fnmatch',)},
    'fontTools': {'matplotlib': ('module fontTools',)},
    'getfullargspec': {'torch': ('inspect.getfullargspec',)},
    'google': {'onnx': ('module google',)},
    'gzip': {'matplotlib': ('module gzip',), 'torch': ('module gzip',)},
    'hashlib': {'matplotlib': ('module hashlib',), 'torch': ('module hashlib',)},
    'initialize': {'numba': ('module numba.cuda.initialize',)},
    'intrinsics': {'numba': ('module numba.cuda.intrinsics',)},
    'itanium_mangler': {'numba': ('module numba.cuda.itanium_mangler',)},
    'kernelapi': {'numba': ('module numba.cuda.simulator.kernelapi',)},
    'kernels': {'numba': ('module numba.cuda.kernels',)},
    'keyword': {'dataclasses': ('module keyword',), 'torch': ('module keyword',)},
    'launchconfig': {'numba': ('module numba.cuda.launchconfig',)},
    'libdevice': {'numba': ('module numba.cuda.libdevice',)},
    'literal': {'numba': ('module numba.cuda.misc.literal',)},
    'locale': {'matplotlib': ('module locale',), 'torch': ('module locale',)},
    'locks': {'numba': ('module numba.cuda.locks',)},
    'logging': {'matplotlib': ('module logging',), 'torch': ('module logging',)},
    'lowering': {'numba': ('module numba.cuda.lowering',)},
    'mathimpl': {'numba': ('module numba.cuda.mathimpl',)},
    'memory_management': {'numba': ('module numba.cuda.memory_management', 'module numba.cuda.simulator.memory_management')},
    'misc': {'numba': ('module numba.cuda.misc',)},
    'ml_dtypes': {'onnx': ('module ml_dtypes',)},
    'models': {'numba': ('module numba.cuda.models',)},
    'mp': {'torch': ('module multiprocessing',)},
    'np': {'numba': ('module numba.cuda.np',)},
    'ntpath': {'pathlib': ('module ntpath',)},
    'nvvm': {'numba': ('module numba.cuda.cudadrv.nvvm',)},
    'nvvmutils': {'numba': ('module numba.cuda.nvvmutils',)},
    'pickletools': {'torch': ('module pickletools',)},
    'plistlib': {'matplotlib': ('module plistlib',)},
    'pointer': {'torch': ('_ctypes.pointer',)},
    'posixpath': {'pathlib': ('module posixpath',)},
    'pprint': {'matplotlib': ('module pprint',), 'torch': ('module pprint',)},
    'python_multiprocessing': {'torch': ('module multiprocessing',)},
    'queue': {'torch': ('module queue',)},
    'reduction': {'numba': ('module numba.cuda.kernels.reduction', 'module numba.cuda.simulator.reduction')},
    'ref': {'torch': ('weakref.ReferenceType',)},
    'serialize': {'numba': ('module numba.cuda.serialize',)},
    'shlex': {'matplotlib': ('module shlex',)},
    'signature': {'torch': ('inspect.signature',)},
    'simulator': {'numba': ('module numba.cuda.simulator',)},
    'simulator_init': {'numba': ('module numba.cuda.simulator_init',)},
    'string': {'matplotlib': ('module string',), 'torch': ('module string',)},
    'struct': {'matplotlib': ('module struct',), 'torch': ('module struct',)},
    'stubs': {'numba': ('module numba.cuda.stubs',)},
    'tarfile': {'onnx': ('module tarfile',), 'torch': ('module tarfile',)},
    'target': {'numba': ('module numba.cuda.target',)},
    'textwrap': {'matplotlib': ('module textwrap',), 'numpy': ('module textwrap',), 'torch': ('module textwrap',)},
    'typeconv': {'numba': ('module numba.cuda.typeconv',)},
    'typing': {'numba': ('module numba.cuda.typing',)},
    'typing_extensions': {'onnx': ('module typing_extensions',), 'torch': ('module typing_extensions',)},
    'ufuncs': {'numba': ('module numba.cuda.ufuncs',)},
    'urlopen': {'torch': ('urllib.request.urlopen',)},
    'urlparse': {'torch': ('urllib.parse.urlparse',)},
    'urlquote_from_bytes': {'pathlib': ('urllib.parse.quote_from_bytes',)},
    'utils': {'numba': ('module numba.cuda.utils',)},
    'uuid': {'matplotlib': ('module uuid',), 'onnx': ('module uuid',), 'torch': ('module uuid',)},
    'vectorizers': {'numba': ('module numba.cuda.vectorizers',)},
    'zipfile': {'torch': ('module zipfile',)},
}
