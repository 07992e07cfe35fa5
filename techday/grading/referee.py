"""The referee: runs a lab's test and locked cells inside the trainee's kernel in a way the trainee's
code cannot silently change, and tells the executor, outside the kernel, which test cells ran to their
end.

Why it exists. nbgrader scores a test cell by the absence of an error in its outputs, and the outputs
come from the kernel, which runs the trainee's code too. A trainee's cell can rewire that kernel
(IPython's input or AST transformers, ``run_cell``, a custom exception handler, a trace function)
so that the restored test cells run as no-ops and report nothing: full marks for no work. Any list
of forbidden names misses the next way to reach the same machinery. So the grade no longer rests on
what the kernel says; it rests on this referee.

How it works (:mod:`techday.grading.sandbox_exec` drives it):

1. **Installed first.** Before the notebook's first cell, the executor runs ``install(path)`` in the
   kernel. ``path`` is a file the executor wrote: the source of every test and locked cell of the lab
   (as nbgrader restored them, hidden tests included), the path of a record file, and a random key.
   ``install`` reads it and deletes it; from then on that data lives only in the closure of an
   audit hook (:pep:`578`). Audit hooks cannot be removed, and nothing in Python refers to this one.
2. **Course cells run from inside the hook.** The executor does not send a test cell's source to the
   kernel; it sends ``__import__("sys").audit("techday.referee.run", KEY)``. The hook receives that
   event, compiles the cell's source from its own copy (never from what the kernel's transformers,
   compiler or ``run_cell`` handle) and runs it with ``exec`` in the notebook's namespace, set for a
   test: the names it reads that a locked cell bound as the course left them, a builtin it calls the
   builtin (not a cell's namesake), the names earlier tests bound theirs; after it, what it bound
   leaves the notebook's namespace (kept for later tests) and the notebook's own values are back.
   If ``exec`` returns, every statement of the test ran and every assert held (a trace function, the
   only way to jump over lines, is refused from the start); the hook then appends a record ``done
   KEY`` to the record file, authenticated with HMAC-SHA256 under the key. An error propagates as
   usual.
3. **The executor decides from outside.** After each test cell it reads the record file. A test cell
   whose outputs show no error but that has no authentic ``done`` record of its own, made while that
   cell ran, gets an error output (``GraderCheck``): nbgrader scores it 0, and the submission is
   ``flagged``. Records written by anyone else fail the HMAC and are reported.
4. **What a test relies on stays as the course left it.** Before and after each course cell, the hook
   compares the builtins, every module loaded so far (each module's names, those added since
   included, and the attributes of the course's own classes and objects), the ``sys.modules`` entries, and every name a locked cell
   bound that holds a function, class, module or course object, against snapshots taken when the
   course's code had just run. A difference (``np.allclose`` or ``assert_close`` replaced, a builtin
   swapped, a helper rebound) fails the test with ``GraderCheck`` and is recorded. The course's *data*
   (plain arrays, tensors, containers and the course's dataclasses a locked cell bound) is compared by
   content: put back in place before every course cell that reads it, and a change made while a course
   cell ran fails that cell.
5. **Tripwires.** The hook refuses and records, whatever the route to them: trace functions (every
   ``sys.settrace``, which CPython audits without showing the function) and profile functions (every
   ``sys.setprofile`` except PyTorch's profiler's own, recognised by its code objects), ``gc``'s object
   walks, opening a process's memory as a file (``/proc/self/mem``), replacing a function's code or
   defaults in a course module, and, when a notebook cell (not a library) asks, code compiled from a
   string counting as the notebook's: a new audit hook, setting attributes of a library's classes,
   frames (``sys._getframe``, ``tb_frame``, ``gi_frame``), and ctypes' raw memory access. The kernel
   is made non-dumpable, so no other process of the sandbox reads or writes its memory.
6. **Code from data** (refused whoever asks): a pickle naming anything but the data types of
   :data:`PICKLE_GLOBALS` or a class a trainee's cell defined; a module (``.py``, ``.pyc``), extension
   module or shared library loaded from outside the Python install, the course's packages and the
   system's folders (a module a cell wrote into the working folder shadows any module not yet
   imported). Code compiled from a string counts as the notebook's under any name it is given; a
   string (or a syntax tree, or a code object built or unmarshalled) made into code while a notebook
   cell waits on the maker is refused unless the maker is one of :data:`STRING_COMPILERS`; and
   Numba's disk cache (compiled machine code) is never read while grading.

7. **The grading draw** (:mod:`techday.draw`): the seed of the hidden tests' drawn inputs, drawn by the
   executor outside the sandbox and handed over in the same file as the key, is answered (event
   ``techday.referee.draw``) only while a course test cell runs and only to code of course cells up to
   that test; anyone else who asks is refused and recorded (grading/README.md, "Hidden inputs drawn per
   grading").

What it cannot see is listed in grading/README.md ("What the grade still trusts").
"""

import sys

RUN_EVENT = "techday.referee.run"
RECORD_SCHEMA = "techday.referee/1"


# What the kernel itself replaces on every cell, so never a sign of the trainee's hand: the notebook's
# own namespace (``__main__``: what the course's names there are is checked name by name), ``sys``
# (IPython swaps its hooks and streams per cell; a test's exceptions do not pass through them), and
# ipykernel's stdin forwarding (``input`` and ``getpass`` are replaced for every request).
KERNEL_OWNED_MODULES = ("__main__", "sys")
# Modules whose functions tests call directly: any of their code replaced counts.
STRICT_MODULES = ("numpy", "numpy.testing", "math", "builtins")
KERNEL_OWNED_BUILTINS = ("_", "__", "___", "input")
KERNEL_OWNED_ATTRS = {"getpass": ("getpass",), "builtins": KERNEL_OWNED_BUILTINS}
# The only callers allowed to set a profile function while grading: PyTorch's profiler (lab 13), whose
# C++ side installs its own when a profiler starts and removes it when it stops.
PROFILER_MODULES = ("torch.autograd.profiler", "torch.profiler.profiler")


# What unpickling may name while grading (``pickle.find_class``): data types and the functions that
# rebuild them, an allow-list. A pickle is a program (each global it names is called with arguments it
# holds), so a file a trainee built at run time and handed to ``np.load(..., allow_pickle=True)`` or
# ``torch.load(..., weights_only=False)`` could otherwise call ``exec`` or NumPy's raw-memory views, or
# read a test's names, where no review reads it. ``None``: every class of the module (its dtypes).
PICKLE_GLOBALS = {
    "builtins": {"set", "frozenset", "bytearray", "bytes", "complex", "slice", "range", "list", "dict", "tuple",
                 "int", "float", "str", "bool", "object"},
    "copyreg": {"_reconstructor"},
    "_codecs": {"encode"},
    "collections": {"OrderedDict", "defaultdict", "deque", "Counter"},
    "datetime": {"date", "time", "datetime", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "fractions": {"Fraction"},
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.dtypes": None,
    "torch": {"Tensor", "Size", "device"},
    "torch._tensor": {"Tensor", "_rebuild_from_type_v2"},
    "torch._utils": {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                     "_rebuild_parameter_with_state", "_rebuild_device_tensor_from_numpy", "ExceptionWrapper"},
    "torch.nn.parameter": {"Parameter"},
    "torch.storage": {"UntypedStorage", "TypedStorage", "_load_from_bytes"},
    # A DataLoader's worker processes send their batches this way (lab 13).
    "torch.multiprocessing.reductions": {"rebuild_tensor", "rebuild_typed_storage", "rebuild_typed_storage_child",
                                         "rebuild_storage_fd", "rebuild_storage_filename", "rebuild_storage_empty",
                                         "rebuild_cuda_tensor", "rebuild_event"},
    "multiprocessing.resource_sharer": {"DupFd"},
}
# PyTorch's dtype, layout and memory-format objects are module attributes a pickle names too
# (``torch.float32``): values, never called.
PICKLE_VALUE_TYPES = {("torch", "dtype"), ("torch", "layout"), ("torch", "memory_format")}
# Files that become native code when a library loads them: Numba's disk cache (an index and the
# compiled object code). While grading they are never read: Numba finds no cache and compiles.
NUMBA_CACHE_SUFFIXES = (".nbi", ".nbc")
# The module whose BOUNDSCHECK the referee holds at 1 from the moment it is loaded (see ``install``).
NUMBA_CONFIG = "numba.core.config"
# How many bytes of the course's data (arrays and tensors a locked cell bound) the referee copies to
# compare and restore before each course cell; data beyond it is not watched.
DATA_COPY_BYTES = 256 * 2**20
# Where the kernel's code may come from besides the Python install and the course's own packages: the
# system's folders (read-only in the grading sandbox). Modules and shared libraries anywhere else (the
# working folder, /tmp, a home) are files a trainee's cell could have written.
SYSTEM_CODE_ROOTS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/opt")
# Libraries that build native code into a cache of their own and load it (torch.compile's inductor:
# C++ on the CPU, Triton on the GPU, untested without one), and pickle what they compiled, in their
# caches and between their compile workers: their loads are theirs, not a trainee's. The grading sandbox
# turns inductor's caches of compiled graphs off, so what they load was built in the same run.
NATIVE_BUILDERS = ("triton", "torch._inductor", "torch._functorch", "torch._dynamo")
# The libraries that may compile a string while a notebook cell is waiting on them (an allow-list):
# each builds its code from a function or class a reviewed cell wrote (Numba's dispatchers and
# signatures, a dataclass's methods, a named tuple's constructor, typing's forward references: the
# two type evaluators are held to type syntax besides), or from a model it traced (torch.compile's
# libraries, torch.fx's code generator); and IPython's ``%time``/``%timeit``, whose statement the
# review reads. Any other library that compiles a string a cell handed it runs code no review read
# (``torch.utils.benchmark.Timer(stmt=...)``, ``timeit``, NumPy's ``testing.measure``): refused.
STRING_COMPILERS = ("numba", "numba_cuda", "llvmlite", "dataclasses", "collections", "typing", "IPython.core.magics",
                    "torch.fx", "torch.export", "torch._export", "torch.onnx", "onnxscript", "techday.kernelrec",
                    *NATIVE_BUILDERS)
# Classes of whole PyTorch modules (``torch.save(model)``), those with a ``__setstate__`` (every Module
# has one), so that a pickle's BUILD step cannot set their attributes.
PICKLE_CLASS_PACKAGES = ("torch.nn.modules.",)


class GraderCheck(AssertionError):
    """A test cell whose result the grader cannot trust: it scores 0."""


def read_records(data: bytes, key: bytes) -> tuple[list[dict], list[str]]:
    """The executor's side: parse and authenticate record lines. Returns (records, problems):
    a line with a wrong MAC, a broken sequence or an unknown schema is a problem, never a record."""
    import hashlib
    import hmac

    records, problems = [], []
    for raw in data.split(b"\n"):
        if not raw:
            continue
        text = raw.decode("utf-8", "replace")
        body, _, mac = text.rpartition(" ")
        good = hmac.new(key, body.encode("utf-8", "replace"), hashlib.sha256).hexdigest()
        parts = body.split(" ", 4)
        if not hmac.compare_digest(mac, good) or len(parts) < 4 or parts[0] != RECORD_SCHEMA:
            problems.append(f"a forged or damaged referee record: {text[:80]!r}")
            continue
        records.append({"seq": int(parts[1]), "kind": parts[2], "cell": parts[3],
                        "detail": parts[4] if len(parts) > 4 else ""})
    return records, problems


def bound_and_loaded(tree) -> tuple[list, list]:
    """(names a cell binds, names it reads without binding them itself)."""
    import ast

    binds, loads = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            binds |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            binds.add(node.name)
        elif isinstance(node, ast.Name):
            (binds if isinstance(node.ctx, ast.Store) else loads).add(node.id)
    return sorted(binds), sorted(loads - binds)


def function_globals(tree) -> list:
    """The names the functions a cell defines read from their module's namespace (a name a function
    reads but binds nowhere in itself): a locked cell's helper that a test calls looks them up in the
    notebook's namespace, where a cell could have put its own."""
    import ast

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            body = node.body if isinstance(node.body, list) else [node.body]
            a = node.args
            own = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs} | {x.arg for x in (a.vararg, a.kwarg) if x}
            binds, loads = bound_and_loaded(ast.Module(body=body, type_ignores=[]))
            names |= set(loads) - own
    return sorted(names)


def install(config_path: str) -> None:
    """Read the executor's file, delete it, and install the referee's audit hook.

    Long on purpose (about 640 lines): everything the hook uses is bound to local names of this one
    closure before any trainee code runs, so nothing the trainee's cells can reach (a module's
    globals, ``sys.modules``) refers to it or can replace a piece of it. Helpers at module level
    would be such a reach."""
    import _hashlib
    import ast
    import builtins
    import linecache
    import os
    import sysconfig
    import types
    from _thread import get_ident

    with open(config_path, encoding="utf-8") as f:
        import json

        config = json.load(f)
    os.unlink(config_path)
    key = bytes.fromhex(config["key"])
    record_fd = os.open(config["records"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    # The record file and its folder, by identity (any path to them: a link, /proc/self/fd/N).
    grader_files = {(st.st_dev, st.st_ino) for st in (os.fstat(record_fd),
                                                      os.stat(os.path.dirname(os.path.abspath(config["records"]))))}

    # Everything the hook uses is bound here, so that rebinding a module attribute or a builtin
    # later cannot change what the hook does.
    _exec, _compile, _len, _type, _id, _isinstance, _sorted = exec, compile, len, type, id, isinstance, sorted
    _vars, _list, _set, _profiler_modules = vars, list, set, tuple(PROFILER_MODULES)
    _callable, _all, _map, _zip, _hasattr = callable, all, map, zip, hasattr
    _dict, _dict_len = dict, dict.__len__
    from operator import is_ as _is_
    _IMMUTABLE_TYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE: a class whose attributes cannot be set
    _classmethod, _staticmethod, _property = classmethod, staticmethod, property
    _getframe, _write, _hmac = sys._getframe, os.write, _hashlib.hmac_digest
    _modules = sys.modules
    _Module, _Function, _Type = types.ModuleType, types.FunctionType, type
    _Method, _Builtin = types.MethodType, types.BuiltinFunctionType
    from functools import partial as _partial
    _code_bearing = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType, type,
                     types.MethodDescriptorType, types.WrapperDescriptorType, classmethod, staticmethod, property)
    _cache = linecache.cache
    _basename, _realpath, _fspath, _stat = os.path.basename, os.path.realpath, os.fspath, os.stat
    try:
        proc_dev = os.stat("/proc").st_dev
    except OSError:
        proc_dev = None
    _RuntimeError, _GraderCheck = RuntimeError, GraderCheck
    MISSING = object()
    _str_bytes, _fs_decode = (str, bytes), os.fsdecode
    _issubclass, _BaseException = issubclass, BaseException
    import _compat_pickle  # the Python 2 names pickle maps (``__builtin__.list``): NumPy saves with them

    py2_modules, py2_names = dict(_compat_pickle.IMPORT_MAPPING), dict(_compat_pickle.NAME_MAPPING)
    pickle_globals = {module: (frozenset(names) if names is not None else None)
                      for module, names in PICKLE_GLOBALS.items()}
    pickle_value_types = frozenset(PICKLE_VALUE_TYPES)
    numba_cache_suffixes, native_builders = tuple(NUMBA_CACHE_SUFFIXES), tuple(NATIVE_BUILDERS)
    pickle_class_packages = tuple(PICKLE_CLASS_PACKAGES)
    not_found = object()  # tripwire's answer for a file that must look absent (not a refusal)
    layout_names = frozenset({"maps", "smaps", "numa_maps", "pagemap", "map_files"})
    _FileNotFoundError = FileNotFoundError
    _tuple, _format_errors = tuple, Exception
    # The referee's words in the room's language (grading/README.md, "The referee's words in the trainee's
    # language"): the executor read them from the package's own catalogue before the kernel started, and
    # they came in this file, read and deleted before any notebook code ran. Nothing here looks a
    # catalogue up (techday.i18n.msg reads a file in the working folder, which a cell can write).
    texts = {k: v for k, v in (config.get("texts") or {}).items() if _isinstance(k, str) and _isinstance(v, str)}

    def msg(key_: str, default: str, /, **fmt) -> tuple:
        """(English, the room's language) of one of the referee's messages. Not :func:`techday.i18n.msg`:
        ``default`` is the English template and ``key_`` its ``techday.<name>`` in
        techday/data/messages.<lang>.toml (held there by tests/unit/test_i18n.py like every msg() of the
        package), but the translation comes from ``texts``, never from a file. A value that is itself
        such a pair goes into each text in that text's language. The English is what the grader's records
        and status lines say (an instructor's); the other, what the notebook and its feedback show (a
        trainee's). Never raises: a refusal worded wrong is still a refusal."""
        en = {k: (v[0] if _isinstance(v, _tuple) else v) for k, v in fmt.items()}
        local = {k: (v[1] if _isinstance(v, _tuple) else v) for k, v in fmt.items()}
        try:
            english = default.format(**en)
        except _format_errors:
            english = default
        for template in (texts.get(key_), default):
            if template is not None:
                try:
                    return english, template.format(**local)
                except _format_errors:
                    pass
        return english, english

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    # The grading draw (techday/draw.py): the seed the executor drew for this hand-in, answered only to a
    # course test cell's own code while the referee runs it (``draw``, below); None: nothing answers, and
    # the tests draw from the default, as outside the grader.
    import techday.draw as _draw_module

    draw_seed = config.get("draw")
    draw_seed = draw_seed if _type(draw_seed) is int and draw_seed >= 0 else None
    draw_event = _draw_module.EVENT
    draw_codes = frozenset(f.__code__ for f in (_draw_module.base, _draw_module.seed, _draw_module.rng))

    shell = get_ipython()  # noqa: F821  (the kernel's own shell; nothing of the trainee's has run)
    user_ns = shell.user_ns
    cell_dir = os.path.dirname(shell.compile.get_code_name("", "", 0)) + os.sep
    if _len(cell_dir) < 3:  # not ipykernel's compiler (plain IPython): its cells are "<ipython-input-..."
        cell_dir = "<ipython-input-"
    paths = sysconfig.get_paths()
    passers = {os.path.join(paths["stdlib"], f) for f in ("inspect.py", "traceback.py", "ctypes/__init__.py")}
    # Where modules and shared libraries may come from: the Python install, the course's own packages
    # (techday/ and benchmarks/ beside it, as in the sandbox) and the system's folders.
    course_root = os.path.dirname(os.path.dirname(os.path.dirname(_realpath(__file__))))
    code_roots = []
    # Folders of installed packages that a .pth file of the install put on the path as the kernel started (a venv
    # layered over a machine's packages; the sandbox binds them, techday.grading.sandbox.python_roots), never one
    # in the working folder.
    work = _realpath(os.getcwd()).rstrip(os.sep) + os.sep
    site_dirs = [p for p in sys.path if p and os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages")
                 and not (_realpath(p).rstrip(os.sep) + os.sep).startswith(work)]
    for root in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *paths.values(), *site_dirs,
                 os.path.join(course_root, "techday"), os.path.join(course_root, "benchmarks"), *SYSTEM_CODE_ROOTS):
        real = _realpath(root).rstrip(os.sep) + os.sep if root and os.path.isdir(root) else None
        if real and real not in code_roots:
            code_roots.append(real)
    code_roots = tuple(code_roots)
    # The folders where torch.compile's libraries keep what they build (their defaults and the
    # settings the kernel started with): only there are their loads their own.
    import tempfile

    builder_roots = [os.environ.get(v) for v in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "TRITON_HOME")]
    builder_roots += [os.path.join(os.path.expanduser("~"), ".triton"),
                      os.path.join(tempfile.gettempdir(), "torchinductor_")]
    builder_roots = tuple(_realpath(r) for r in builder_roots if r)

    cells = {}
    helper_reads = set()  # what the course cells' functions read from the notebook's namespace
    for key_, spec in config["cells"].items():
        filename = f"<course cell {key_}>"
        tree = ast.parse(spec["source"], filename)
        binds, relies = bound_and_loaded(tree)
        cells[key_] = {"code": _compile(tree, filename, "exec", dont_inherit=True, optimize=0),
                       "source": spec["source"], "kind": spec["kind"], "filename": filename,
                       "binds": binds, "relies": relies}
        helper_reads.update(function_globals(tree))  # a test's helper a later test calls reads them too

    state = {"seq": 0, "running": None}
    getframe_busy = set()       # thread ids inside our own sys._getframe call
    course_names = {}           # name -> object, as the last locked cell that bound it left it
    objects = {}                # id -> (object, {attr: value}) for course objects (lab, spies, ...)
    modules = {}                # id -> (module, {name: value}); a module seen once is watched
    module_names = {}           # sys.modules name -> module, as first seen
    classes = {}                # id -> (class, {name: value}) for classes of course modules
    # id -> (class, names, values, size, all names): the code (anything callable, a descriptor) in the
    # namespace of every other module's mutable class, as first seen. Setting a class's attribute raises
    # no audit event (only its special ones do), so a patch is found by comparing (``changes``):
    # ``torch.Tensor.sum`` replaced through a name the review could not follow (``for T in
    # [torch.Tensor]: T.sum = ...``) made lab 11's accuracy bar count every prediction right.
    lib_classes = {}
    builtins_snapshot = dict(builtins.__dict__)
    tainted = []                # module attributes found holding a cell's code when first seen

    def record(kind: str, cell: str, detail: str = "") -> None:
        state["seq"] += 1
        detail = detail.replace("\n", " ")[:400]
        line = f"{RECORD_SCHEMA} {state['seq']} {kind} {cell} {detail}"
        mac = _hmac(key, line.encode("utf-8", "replace"), "sha256").hex()
        _write(record_fd, f"{line} {mac}\n".encode("utf-8", "replace"))

    def course_module(name: str) -> bool:
        return name == "techday" or name.startswith("techday.")

    # File names that code compiled from a string was given by whoever compiled it (NumPy's
    # ``testing.measure`` compiles under "Test name: ..."): code under them is the notebook's, as
    # code under "<...>" names is, whatever the name looks like.
    string_born = set()

    def from_a_string(name: str) -> bool:
        return name.startswith("<") and not name.startswith("<course cell") or name in string_born

    def foreign(value) -> bool:
        """Whether ``value`` looks put in place by a notebook rather than by a library."""
        if _isinstance(value, _partial):
            return True
        if _isinstance(value, _Method):
            value = value.__func__
        if _isinstance(value, _Builtin):
            return (getattr(value, "__module__", None) or "") == "builtins"
        if _isinstance(value, _Function):
            name = value.__code__.co_filename
            return name.startswith(cell_dir) or from_a_string(name)
        if _isinstance(value, _Type):
            return value.__module__ == "__main__"
        return getattr(_type(value), "__module__", None) == "__main__"  # an object of a cell's class

    def from_a_cell(value) -> bool:
        """Whether ``value`` is code that a notebook cell defined (a lambda, a def, a class)."""
        code = getattr(value, "__code__", None) if _isinstance(value, _Function) else None
        if code is not None:
            return code.co_filename.startswith(cell_dir)
        return _isinstance(value, _Type) and value.__module__ == "__main__"

    def cell_made(value, depth: int = 0) -> bool:
        """Whether ``value`` is code a notebook cell made, or holds some: a cell's function, class or
        object of its class, a builtin function (what a patch in a cell looks like), and a wrapper of
        one (a partial, ``functools.wraps``' ``__wrapped__``, a staticmethod's or property's function).
        Not code compiled from a string: libraries make their own that way (dataclasses), and a cell
        cannot (``compile`` and ``exec`` are refused there)."""
        if depth >= 4:
            return False
        if _isinstance(value, _partial):  # PyTorch puts partials of its own functions in its classes
            return cell_made(value.func, depth + 1)
        if _isinstance(value, _Method):
            value = value.__func__
        if _isinstance(value, _Builtin):
            return (getattr(value, "__module__", None) or "") == "builtins"
        if from_a_cell(value) or getattr(_type(value), "__module__", None) == "__main__":
            return True
        if _isinstance(value, (_classmethod, _staticmethod)):
            return cell_made(value.__func__, depth + 1)
        if _isinstance(value, _property):
            return any(cell_made(f, depth + 1) for f in (value.fget, value.fset, value.fdel) if f is not None)
        try:
            inner = _vars(value).get("__wrapped__")
        except Exception:
            return False
        return inner is not None and cell_made(inner, depth + 1)

    def watch_new_modules() -> None:
        """Snapshot modules not seen before. One that already holds code from a notebook cell was
        patched before the referee first saw it: that is a change too."""
        for name, mod in list(_modules.items()):
            if _type(mod) is not _Module or name in KERNEL_OWNED_MODULES or mod.__dict__ is user_ns:
                continue
            module_names.setdefault(name, mod)
            if _id(mod) in modules:
                continue
            try:
                snap = dict(mod.__dict__)
            except Exception:
                continue
            modules[_id(mod)] = (mod, snap)
            if name != "__main__":
                tainted.extend(f"{name}.{k}" for k, v in snap.items() if from_a_cell(v))
            if course_module(name):
                for value in snap.values():
                    if _isinstance(value, _Type) and (value.__module__ or "").startswith("techday"):
                        classes.setdefault(_id(value), (value, dict(value.__dict__)))
            elif name != "__main__":
                for value in snap.values():
                    if _isinstance(value, _Type) and not value.__flags__ & _IMMUTABLE_TYPE \
                            and _id(value) not in lib_classes and getattr(value, "__module__", None) == name:
                        watch_library_class(value)

    def is_code(value) -> bool:
        """Whether ``value`` in a class's namespace is code: callable, or a descriptor (a property)."""
        return _callable(value) or _hasattr(_type(value), "__get__")

    def watch_library_class(cls) -> None:
        try:
            namespace = dict(cls.__dict__)
        except Exception:
            return
        code = [(k, v) for k, v in namespace.items() if is_code(v)]
        lib_classes[_id(cls)] = (cls, tuple(k for k, _ in code), tuple(v for _, v in code), _len(namespace),
                                 frozenset(namespace))
        tainted.extend(f"{cls.__module__}.{cls.__qualname__}.{k}" for k, v in code if from_a_cell(v))

    # Names a locked cell binds, from the moment it starts until it has run to its end: while a locked
    # cell that failed (its ``acc0 = bar_accuracy(0)`` called a trainee's function that raised) leaves a
    # name unbound by the course, a test that reads it finds it unbound, not the notebook's value: a cell
    # after lab 10's failed accuracy bar bound ``BAR = 0.0`` and ``acc0 = 1.0`` (and ``bar_accuracy``
    # by a ``match`` capture) and took the bar's 4 points with nothing trained.
    unfinished = set()

    def watch_course_names(cell: dict) -> None:
        unfinished.difference_update(cell["binds"])
        for name in cell["binds"]:
            value = user_ns.get(name, MISSING)
            data_forget(name)  # its copy's bytes back first: the new value may need them
            if value is MISSING:
                course_names.pop(name, None)
                continue
            course_names[name] = value
            snap = data_snapshot(value)
            if snap is not None:
                data_snaps[name] = snap
            if not _isinstance(value, _code_bearing) and (getattr(_type(value), "__module__", "") or "").startswith(
                    "techday"):
                try:
                    objects[_id(value)] = (value, dict(value.__dict__))
                except Exception:
                    pass

    def inherited(mro, name):
        """The value ``name`` has in the first class of ``mro`` that defines it (None if none does)."""
        for klass in mro:
            value = _vars(klass).get(name, MISSING)
            if value is not MISSING:
                return value
        return None

    def changes(relies) -> list:
        """What differs from the snapshots (empty: nothing a test relies on was changed)."""
        found = list(tainted)
        bdict = builtins.__dict__
        for name, value in builtins_snapshot.items():
            if name not in KERNEL_OWNED_BUILTINS and bdict.get(name, MISSING) is not value:
                found.append(f"builtin {name}")
        for name, mod in module_names.items():
            if _modules.get(name, MISSING) is not mod:
                found.append(f"sys.modules[{name!r}]")
        for mod, snap in modules.values():
            md = mod.__dict__
            mname = getattr(mod, "__name__", "") or ""
            owned = KERNEL_OWNED_ATTRS.get(mname, ())
            strict = course_module(mname) or mname in STRICT_MODULES
            for name, value in snap.items():
                if name in owned:
                    continue
                now = md.get(name, MISSING)
                if now is value:
                    continue
                # The course's helpers and the modules tests call directly: any code swapped is a
                # change: anything callable (NumPy's functions are dispatcher objects, its ufuncs are
                # not functions either, and an instance with __call__ is as good as a lambda).
                # Elsewhere libraries replace their own attributes, under other names too (torch puts
                # its own inspect.getfile and wrapped torch.manual_seed in place), so a change counts
                # when the new value is code from a notebook cell or an object of its classes, a
                # builtin function or a partial: what a trainee's patch looks like.
                if strict and (_callable(value) or _callable(now)) \
                        or not strict and not name.startswith("_") and now is not MISSING and foreign(now):
                    found.append(f"{mname}.{name}")
            # A name added since: one named like a builtin hides it from every function of the module
            # (their globals are looked up first); new code in a course module or a strict one, or from
            # a notebook cell anywhere, is a patch like a replaced one. (Submodules imported later are
            # modules, not code put in place.)
            for name in [n for n in md if n not in snap]:
                now = md.get(name, MISSING)
                if now is MISSING or _isinstance(now, _Module) or name in owned:
                    continue
                if name in builtin_names or strict and _callable(now) or foreign(now):
                    found.append(f"{mname}.{name} (added)")
        for cls, snap in classes.values():
            cd = cls.__dict__
            for name, value in snap.items():
                if cd.get(name, MISSING) is not value:
                    found.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
            for name in [n for n in cd if n not in snap]:
                now = cd.get(name, MISSING)
                if _callable(now) or _isinstance(now, _code_bearing) or inherited(cls.__mro__[1:], name) is not None:
                    found.append(f"{cls.__module__}.{cls.__qualname__}.{name} (added)")
        for cls, names, values, size, known in lib_classes.values():
            cd = cls.__dict__
            if _len(cd) == size and _all(_map(_is_, _map(cd.get, names), values)):
                continue  # (the common case, in C: about 20 ms for PyTorch's and NumPy's 5,000 classes)
            # PyTorch replaces and adds code in its own classes as its modules load (a dataclass's
            # ``Placement.__eq__``, compiled from a string, while lab 11 trains), so a change counts when
            # the new value is the notebook's: see cell_made.
            where = f"{cls.__module__}.{cls.__qualname__}"
            for name, value in _zip(names, values):
                now = cd.get(name, MISSING)
                if now is not value and now is not MISSING and cell_made(now):
                    found.append(f"{where}.{name}")
            for name in [n for n in cd if n not in known]:
                if cell_made(cd.get(name, MISSING)):
                    found.append(f"{where}.{name} (added)")
        for obj, snap in objects.values():
            od = getattr(obj, "__dict__", {})
            for name, value in snap.items():
                now = od.get(name, MISSING)
                if now is not value and (_isinstance(value, _code_bearing) or _isinstance(now, _code_bearing)):
                    found.append(f"{_type(obj).__name__}.{name}")
            for name in [n for n in od if n not in snap]:
                # Code put on the object, or an attribute that hides its class's method or property.
                base = inherited(_type(obj).__mro__, name)
                if _isinstance(od.get(name), _code_bearing) or _callable(base) or _isinstance(base, _code_bearing):
                    found.append(f"{_type(obj).__name__}.{name} (added)")
        for name in relies:
            value = course_names.get(name, MISSING)
            if value is not MISSING and user_ns.get(name, MISSING) is not value \
                    and _isinstance(value, _code_bearing):
                found.append(f"{name} (bound by the course)")
        return _sorted(set(found))

    def caller_is_cell(depth: int) -> bool:
        """Whether the code that caused the event is a notebook cell's (the trainee's), not a
        library's or the course's: the nearest frame above the hook, looking through the frames that
        only pass a request on (the import system, ``inspect``, ``traceback``, ctypes' Python wrappers
        such as ``string_at``); code compiled from a string is the notebook's."""
        me = get_ident()
        getframe_busy.add(me)
        try:
            frame = _getframe(depth)
        except ValueError:
            return False
        finally:
            getframe_busy.discard(me)
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(cell_dir):
                return True
            if name.startswith("<frozen ") or name in passers:
                frame = frame.f_back
                continue
            # Code compiled from a string (exec, eval, a library that evaluates a string it was handed:
            # typing's forward references, Numba's signatures, NumPy's ``testing.measure``) counts as the
            # notebook's: whoever wrote the string, a library frame further down only ran it.
            return from_a_string(name)
        return False

    profiler_codes = {}  # id(module) -> (module, the code objects of its functions and methods)

    def module_codes(mod) -> set:
        """Every code object defined in ``mod``'s own functions and classes, nested ones included."""
        todo = []
        for value in _list(_vars(mod).values()):
            own_class = _isinstance(value, _Type) and value.__module__ == mod.__name__
            members = _list(_vars(value).values()) if own_class else [value]
            for member in members:
                if _isinstance(member, (_classmethod, _staticmethod)):
                    member = member.__func__
                if _isinstance(member, _property):
                    todo.extend(f.__code__ for f in (member.fget, member.fset, member.fdel) if _isinstance(f, _Function))
                if _isinstance(member, _Function) and member.__module__ == mod.__name__:
                    todo.append(member.__code__)
        codes = _set()
        while todo:
            code = todo.pop()
            if code not in codes:
                codes.add(code)
                todo.extend(c for c in code.co_consts if _type(c) is _type(code))
        return codes

    def profiler_caller() -> bool:
        """Whether ``sys.setprofile`` was called by PyTorch's profiler itself (its C++ side sets a
        profile function of its own when a profiler starts and clears it when it stops): the calling
        frame runs one of the code objects of ``torch.autograd.profiler`` or ``torch.profiler.profiler``,
        in that module's own namespace. Code compiled under PyTorch's file name, or run in its
        namespace by ``exec``, has other code objects."""
        me = get_ident()
        getframe_busy.add(me)
        try:
            frame = _getframe(3)
            name = frame.f_globals.get("__name__")
            mod = _modules.get(name) if name in _profiler_modules else None
            if mod is None or _vars(mod) is not frame.f_globals:
                return False
            known = profiler_codes.get(_id(mod))
            if known is None or known[0] is not mod:
                known = profiler_codes[_id(mod)] = (mod, module_codes(mod))
            return frame.f_code in known[1]
        except Exception:
            return False
        finally:
            getframe_busy.discard(me)

    def memory_file(path) -> bool:
        """Whether ``path`` names a process's memory file: any path whose last part is ``mem`` (a path
        relative to a directory descriptor of /proc/self cannot be told apart), or one that resolves
        into /proc and ends there."""
        try:
            path = _fspath(path)
            if _isinstance(path, bytes):
                path = path.decode("utf-8", "replace")
            if not _isinstance(path, str):
                return False
            if _basename(path.rstrip("/")) == "mem":
                return True
            if _stat(path).st_dev != proc_dev:  # a link elsewhere that leads into /proc
                return False
            return _basename(_realpath(path)) == "mem"
        except Exception:
            return False

    def grader_file(path) -> bool:
        """Whether ``path`` is the record file or its folder (by identity: any link to them too)."""
        path = text(path)
        if not path:
            return False
        try:
            st = _stat(path)
        except Exception:
            return False
        return (st.st_dev, st.st_ino) in grader_files

    def event_frame(depth: int = 3):
        """The frame whose code raised the event: ``depth`` above this helper (3 when ``tripwire`` calls
        it: tripwire, hook, then that frame; 4 from a helper of tripwire's)."""
        me = get_ident()
        getframe_busy.add(me)
        try:
            return _getframe(depth)
        except ValueError:
            return None
        finally:
            getframe_busy.discard(me)

    def text(path) -> str:
        """A path argument as text ('' for a descriptor or anything else)."""
        try:
            path = _fspath(path)
            return _fs_decode(path) if _isinstance(path, _str_bytes) else ""
        except Exception:
            return ""

    def code_file_allowed(path: str) -> bool:
        try:
            return _realpath(path).startswith(code_roots)
        except Exception:
            return False

    def frame_module(frame) -> str:
        return (frame.f_globals.get("__name__") or "") if frame is not None else ""

    def builder_load(frame, path: str) -> bool:
        """Whether a library of :data:`NATIVE_BUILDERS` loads ``path`` from a cache folder of its own (a
        module it looks up by name, such as a lazily imported ``tabulate`` in the working folder, is
        not its own)."""
        try:
            real = _realpath(path)
        except Exception:
            return False
        return real.startswith(builder_roots) and builder_frame(frame)

    def builder_frame(frame) -> bool:
        """Whether the nearest frame that is not the import system's or ctypes' belongs to a library that
        loads native code it built itself (:data:`NATIVE_BUILDERS`)."""
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen ")
                                     or frame.f_code.co_filename in passers):
            frame = frame.f_back
        name = frame_module(frame)
        return any(name == b or name.startswith(b + ".") for b in native_builders)

    def layout_file(path) -> bool:
        """Whether ``path`` names where a process's memory lies: ``maps``, ``smaps``, ``numa_maps``,
        ``pagemap`` or the ``map_files`` folder of a process or thread under /proc (by its last part, as
        for ``mem``, or where it resolves into /proc)."""
        try:
            path = text(path)
            if not path:
                return False
            if _basename(path.rstrip("/")) in layout_names:
                return True
            if _stat(path).st_dev != proc_dev:
                return False
            return _basename(_realpath(path)) in layout_names
        except Exception:
            return False

    def torch_preload_frame(frame) -> bool:
        """Whether ``frame`` runs PyTorch's own ``_load_global_deps`` (``import torch`` reads
        /proc/self/maps to see whether CUDA's runtime is loaded), its very code object in its module."""
        if frame is None or frame.f_code.co_name != "_load_global_deps" or frame_module(frame) != "torch":
            return False
        mod = _modules.get("torch")
        func = getattr(mod, "__dict__", {}).get("_load_global_deps")
        return getattr(func, "__code__", None) is frame.f_code and _vars(mod) is frame.f_globals

    def numba_exception_frame(frame) -> bool:
        """Whether ``frame`` runs Numba's own ``_numba_unpickle`` (called from its C helpers when
        compiled code raises), its very code object in its own module."""
        name = frame_module(frame)
        if frame.f_code.co_name != "_numba_unpickle" or name not in ("numba.core.serialize", "numba.cuda.serialize"):
            return False
        mod = _modules.get(name)
        func = getattr(mod, "__dict__", {}).get("_numba_unpickle")
        return getattr(func, "__code__", None) is frame.f_code and _vars(mod) is frame.f_globals

    unpickling = {}  # thread id -> (id, f_lasti) of the frame a pickle is being loaded under
    pickled_modules = set()  # modules of the allow-list whose classes are watched

    def watch_pickled_classes() -> None:
        """A pickle's BUILD step sets the attributes of the object it names one by one, with no audit
        event, when that object has no ``__setstate__``: named a class of the allow-list that Python
        code defined (``torch.storage.TypedStorage``), a pickle could set its methods. Those classes are
        watched like the course's own from the first pickle on (a later test that finds one changed does
        not count). A class's module may be imported by the pickle that names it: every event looks."""
        for module, names in pickle_globals.items():
            mod = _modules.get(module) if module not in pickled_modules else None
            if mod is None:
                continue
            pickled_modules.add(module)
            for name, value in _list(_vars(mod).items()):
                if (names is None or name in names) and _isinstance(value, _Type) \
                        and not value.__flags__ & 0x100 and getattr(value, "__setstate__", None) is None:
                    classes.setdefault(_id(value), (value, dict(value.__dict__)))

    def pickle_refusal(module, name) -> tuple | None:
        """Why unpickling may not name ``module.name`` while grading (None: data, or a pickle Numba or
        torch.compile made of its own)."""
        frame = event_frame(4)
        while frame is not None and frame.f_code.co_name == "find_class":  # an Unpickler subclass's super()
            frame = frame.f_back
        if frame is None:
            return None
        # Numba raising an exception from compiled code (the exception's class and arguments, pickled by
        # Numba when it compiled a reviewed ``raise``, into the code itself); torch.compile's own
        # (:data:`NATIVE_BUILDERS`: its compile workers and caches of compiled graphs, which the grading
        # sandbox turns off).
        if numba_exception_frame(frame) or builder_frame(frame):
            return None
        unpickling[get_ident()] = (_id(frame), frame.f_lasti)
        if _len(pickled_modules) < _len(pickle_globals):
            watch_pickled_classes()
        if not _isinstance(module, str) or not _isinstance(name, str):
            return msg("techday.referee_unpickling_unnamed", "unpickling a global not named by a string")
        module, name = py2_names.get((module, name), (py2_modules.get(module, module), name))
        where = f"{module}.{name}"[:109]  # "unpickling " and these: 120 characters at most
        if module == "__main__":
            # A class a trainee's cell defined (its own data); never a function, nor a name a course or
            # test cell bound (a test's reference class).
            value = user_ns.get(name, MISSING) if "." not in name else MISSING
            if _isinstance(value, _Type) and value.__module__ == "__main__" and course_names.get(name) is not value \
                    and not course_class(value):
                return None
            return msg("techday.referee_unpickling_cell_class", "unpickling {name} (only a class a trainee's cell "
                       "defined)", name=where)
        names = pickle_globals.get(module, MISSING)
        if names is not MISSING and names is not None and name in names:
            return None
        mod = _modules.get(module)
        value = getattr(mod, "__dict__", {}).get(name, MISSING) if "." not in name else MISSING
        if names is None and _isinstance(value, _Type):
            return None
        if module.startswith(pickle_class_packages) and _isinstance(value, _Type) \
                and getattr(value, "__setstate__", None) is not None:
            return None
        # An exception's class (a DataLoader's worker sends the one a Dataset raised, to raise it here).
        # Every one has BaseException's ``__setstate__``, so a pickle's BUILD step cannot set its attributes.
        if _isinstance(value, _Type) and _issubclass(value, _BaseException):
            return None
        vt = _type(value)
        if (getattr(vt, "__module__", None), getattr(vt, "__name__", None)) in pickle_value_types:
            return None
        return msg("techday.referee_unpickling_not_data", "unpickling {name} (not a data type of the allow-list)",
                   name=where)

    def course_class(cls) -> bool:
        """Whether a course or test cell defined ``cls`` (a function of its body compiled from one: a
        test's class is in the notebook's namespace before that test has finished, and so before its
        names are recorded as the course's)."""
        for value in _list(_vars(cls).values()):
            if _isinstance(value, (_classmethod, _staticmethod)):
                value = value.__func__
            if _isinstance(value, _property):
                value = value.fget
            code = getattr(value, "__code__", None) if _isinstance(value, _Function) else None
            if code is not None and code.co_filename.startswith("<course cell"):
                return True
        return False

    def while_unpickling() -> bool:
        """Whether the event comes straight from a pickle being loaded (its BUILD step setting attributes),
        not from code the pickle's objects run."""
        mark = unpickling.get(get_ident())
        if mark is None:
            return False
        frame = event_frame(4)
        return frame is not None and (_id(frame), frame.f_lasti) == mark

    def writes(args) -> bool:
        """Whether an ``open`` event's mode or flags write."""
        mode = args[1] if _len(args) > 1 else None
        flags = args[2] if _len(args) > 2 else 0
        return (_isinstance(mode, str) and any(c in mode for c in "wax+")
                or _isinstance(flags, int) and bool(flags & write_flags))

    def refuse(what) -> None:
        """Record and refuse ``what``: a (English, the room's language) pair from :func:`msg`, or a name
        that reads the same in every language (an audit event's)."""
        cell = state["running"] or "-"
        record("tripwire", cell, what[0] if _isinstance(what, _tuple) else what)
        raise _RuntimeError(msg("techday.referee_refused", "the grader does not allow {what} while grading",
                                what=what)[1])

    test_names = {}  # name -> object, as the last test that bound it left it (out of the notebook between tests)

    # The course's data: what a locked cell bound that is plain data (NumPy arrays, tensors that are not
    # parameters or trained, lists, tuples and dicts of them, the course's dataclasses such as a digits
    # ``Split``), copied as the cell left it. Rebinding a name is seen by identity; this is the content:
    # ``data.test.y.zero_()`` in a cell made lab 11's held-out labels all 0 and a constant model
    # "accurate". Before each course cell the data it reads is put back as the course left it (in place,
    # so every alias sees it); a change made while a course cell ran (by a trainee's function it called)
    # means that cell does not count. Models and their parameters are left out: training a course model
    # in place is the exercise.
    data_snaps = {}  # name -> snapshot (see data_snapshot)
    _dataclass_fields = "__dataclass_fields__"

    # What the copies may take in all (the executor's config may set it lower: the tests do). A copy's
    # bytes are given back when its name is rebound or unbound, so a lab that rebinds large data in
    # many locked cells has its later data watched as long as what is held stays under the cap.
    data_budget = [int(config.get("data_copy_bytes", DATA_COPY_BYTES))]

    def snap_bytes(snap) -> int:
        """The bytes ``snap``'s copies hold (what :func:`data_snapshot` took from the budget)."""
        if snap is None:
            return 0
        if snap[0] == "array":
            return snap[2].nbytes
        if snap[0] == "tensor":
            return snap[2].nelement() * snap[2].element_size()
        children = snap[3].values() if snap[0] in ("dict", "object") else snap[3]
        return sum(snap_bytes(child) for child in children)

    def data_forget(name: str) -> None:
        data_budget[0] += snap_bytes(data_snaps.pop(name, None))

    def data_snapshot(value, depth: int = 0, budget=data_budget):
        """A copy of the plain data in ``value`` to compare and restore, or None (nothing to watch)."""
        if depth > 4:
            return None
        np_ = _modules.get("numpy")
        torch_ = _modules.get("torch")
        kind = _type(value)
        try:
            if np_ is not None and _isinstance(value, np_.ndarray):
                if value.dtype.hasobject or value.nbytes > budget[0]:
                    return None
                budget[0] -= value.nbytes
                return ("array", value, value.copy())
            if torch_ is not None and _isinstance(value, torch_.Tensor):
                if _isinstance(value, torch_.nn.Parameter) or value.requires_grad or value.is_sparse \
                        or value.is_meta or value.nelement() * value.element_size() > budget[0]:
                    return None
                budget[0] -= value.nelement() * value.element_size()
                return ("tensor", value, value.detach().clone())
            if kind is list or kind is tuple:
                if _len(value) > 10_000:
                    return None
                items = [data_snapshot(v, depth + 1, budget) for v in value]
                return ("list" if kind is list else "tuple", value, _list(value), items)
            if kind is dict:
                if _len(value) > 10_000:
                    return None
                saved = dict(value)
                return ("dict", value, saved, {k: data_snapshot(v, depth + 1, budget) for k, v in saved.items()})
            if (getattr(kind, "__module__", "") or "").startswith("techday") and _dataclass_fields in _vars(kind) \
                    and not _isinstance(value, _code_bearing):
                # Public fields only: a private one is the object's own state, which its methods keep
                # (``lab._scratch``, the folders ``lab.scratch()`` made).
                saved = {k: v for k, v in value.__dict__.items() if not k.startswith("_")}
                return ("object", value, saved, {k: data_snapshot(v, depth + 1, budget) for k, v in saved.items()})
        except Exception:
            return None
        return None

    def data_reset(snap, path: str, found: list) -> None:
        """Put ``snap``'s data back as it was copied; append to ``found`` the path of each change
        (with " (not restorable)" where it cannot be put back in place)."""
        if snap is None:
            return
        kind, value, saved = snap[0], snap[1], snap[2]
        try:
            if kind == "array":
                if _type(value) is not _type(saved) or value.shape != saved.shape or value.dtype != saved.dtype:
                    found.append(path + " (not restorable)")
                elif value.tobytes() != saved.tobytes():
                    found.append(path)
                    value[...] = saved
                return
            if kind == "tensor":
                if _type(value) is not _type(saved) or value.shape != saved.shape or value.dtype != saved.dtype \
                        or value.device != saved.device:
                    found.append(path + " (not restorable)")
                    return
                same = value.equal(saved)
                if not same and value.is_floating_point():
                    same = ((value == saved) | (value.isnan() & saved.isnan())).all().item()
                if not same:
                    found.append(path)
                    value.copy_(saved)
                return
            if kind in ("list", "tuple"):
                if kind == "list" and (_len(value) != _len(saved) or not _all(a is b for a, b in zip(value, saved))):
                    found.append(path)
                    value[:] = saved
                for i, child in enumerate(snap[3]):
                    data_reset(child, f"{path}[{i}]", found)
                return
            if kind == "dict":
                if _len(value) != _len(saved) or not _all(value.get(k, MISSING) is v for k, v in saved.items()):
                    found.append(path)
                    value.clear()
                    value.update(saved)
                for k, child in snap[3].items():
                    data_reset(child, f"{path}[{k!r}]", found)
                return
            if kind == "object":
                od = value.__dict__
                for k, v in saved.items():
                    if od.get(k, MISSING) is not v:
                        found.append(f"{path}.{k}")
                        od[k] = v
                for k, child in snap[3].items():
                    data_reset(child, f"{path}.{k}", found)
        except Exception:
            found.append(path + " (not restorable)")

    def course_data_reset(names) -> list:
        """Put the course's data among ``names`` back as the course left it; what had changed."""
        found = []
        for name in _sorted(names):
            snap = data_snaps.get(name)
            if snap is not None and user_ns.get(name, MISSING) is snap[1]:
                data_reset(snap, name, found)
        return found

    def enter_test(key_: str, cell: dict) -> tuple[dict, set]:
        """Set the notebook's namespace for a test, which runs in it (its spies replace the notebook's
        names in place: ``watch_kernels(globals(), ...)``): the names earlier tests bound are theirs
        again, every name the test reads that a locked cell bound is as the course left it (kept
        after the test: the course's value stands, and the rebinding is said), and a builtin the test
        calls is the builtin, not a notebook name that hides it (a trainee's helper may share a
        builtin's name: honest, put back after the test and not said). "Reads" counts what the
        functions of the course's cells read too (lab 10's accuracy bar reads ``train`` and
        ``BAR_EPOCHS`` from the notebook's namespace when the test calls it; lab 07's hidden test calls
        a helper an earlier test defined). Returns what to put back."""
        prior = {}
        for name in (*test_names, *cell["binds"]):
            prior.setdefault(name, user_ns.get(name, MISSING))
        for name, value in test_names.items():
            user_ns[name] = value
        kept, rebound = set(), []
        for name in _sorted(_set(cell["relies"]) | helper_reads):
            if name in unfinished and name not in course_names and name not in test_names and name in user_ns:
                prior.setdefault(name, user_ns[name])  # the course's cell did not bind it: unbound here
                del user_ns[name]
            elif name in course_names and name not in test_names:
                if user_ns.get(name, MISSING) is not course_names[name]:
                    rebound.append(name)
                    user_ns[name] = course_names[name]
                kept.add(name)
            elif name in builtin_names and name not in test_names and name in user_ns:
                prior.setdefault(name, user_ns[name])
                del user_ns[name]
        if rebound:
            record("restored", key_, ", ".join(_sorted(rebound)[:12]))
        return prior, kept

    def enter_locked(key_: str, cell: dict) -> None:
        """Set the notebook's namespace for a locked cell: every name it reads that an earlier locked cell
        bound is as the course left it (a cell's ``data = ...`` before lab 11's accuracy bar no longer
        decides what the bar measures); the course's value stays, and the rebinding is said."""
        rebound = []
        for name in _sorted(_set(cell["relies"])):
            if name in course_names and name not in test_names and user_ns.get(name, MISSING) is not course_names[name]:
                rebound.append(name)
                user_ns[name] = course_names[name]
        if rebound:
            record("restored", key_, ", ".join(rebound[:12]))

    def leave_test(cell: dict, prior: dict, kept: set) -> None:
        """After a test: what it bound is kept for later tests, and the notebook's namespace is as the
        notebook had it (a test's expected values, reference functions and helpers are not left
        where a later cell, or an answer called by a later test, could read or replace them)."""
        for name in cell["binds"]:
            value = user_ns.get(name, MISSING)
            if value is not MISSING:
                test_names[name] = value
        for name, value in prior.items():
            if name in kept:
                continue
            if value is MISSING:
                user_ns.pop(name, None)
            else:
                user_ns[name] = value

    def forget_bound(cell: dict) -> None:
        """What a locked cell that does not count bound is not left for the tests (computed with changed
        code or data)."""
        for name in cell["binds"]:
            user_ns.pop(name, None)
            course_names.pop(name, None)
            data_forget(name)

    def fail_if_changed(key_: str, cell: dict, when: str) -> None:
        """Raise GraderCheck (the cell does not count) if code the course relies on was changed:
        ``when`` is "before" the cell runs or "during" it."""
        found = changes(cell["relies"])
        if not found:
            return
        test = cell["kind"] == "test"
        record("changed", key_, f"{when}: " + ", ".join(found[:12]))
        if not test:
            forget_bound(cell)
        listed = found_words(found[:6])
        if when == "before":
            said = (msg("techday.referee_test_changed_before", "this test does not count: code in the notebook changed "
                        "what it relies on: {found}", found=listed) if test else
                    msg("techday.referee_cell_changed_before", "this cell does not count: code in the notebook changed "
                        "what it relies on: {found}", found=listed))
        else:
            said = (msg("techday.referee_test_changed_during", "this test does not count: the code it called changed "
                        "what it relies on: {found}", found=listed) if test else
                    msg("techday.referee_cell_changed_during", "this cell does not count: the code it called changed "
                        "what it relies on: {found}", found=listed))
        raise _GraderCheck(said[1])

    def found_words(found: list) -> tuple:
        """What :func:`changes` or :func:`data_reset` found, as a message's list: (English, the room's
        language). The names stay as they are; the words around them are translated."""
        local = []
        for item in found:
            if item.startswith("builtin "):
                said = msg("techday.referee_found_builtin", "builtin {name}", name=item[8:])
            elif item.endswith(" (added)"):
                said = msg("techday.referee_found_added", "{name} (added)", name=item[:-8])
            elif item.endswith(" (bound by the course)"):
                said = msg("techday.referee_found_course_name", "{name} (bound by the course)", name=item[:-22])
            elif item.endswith(" (not restorable)"):
                said = msg("techday.referee_found_not_restorable", "{name} (not restorable)", name=item[:-17])
            else:
                said = (item, item)
            local.append(said[1])
        return ", ".join(found), ", ".join(local)

    # Signal handlers while a course cell runs. CPython hands a Python signal handler the frame it
    # interrupts: a timer's handler (``signal.setitimer``) set by a cell caught lab 10's test helper
    # between its reference and the call of the answer, and the answer returned the test's own
    # ``loss_ref`` from that frame's locals: 2 points, with no frame ever asked for (no audit event).
    # While a course cell runs, every signal's Python handler is taken off (SIGINT gets Python's own
    # ``default_int_handler``, so that the grader's interrupt still stops the cell; signals ignored by
    # default keep that default, not SIG_IGN, which for SIGCHLD would reap a library's children) and put
    # back after it; a handler that is not a library's own function is recorded, the cell then flagged.
    import _signal  # the C module: signal.py's wrappers read module globals a cell could change
    import signal as _signal_mod

    _getsignal, _setsignal = _signal.getsignal, _signal.signal
    _SIG_DFL, _SIG_IGN, _default_int = int(_signal.SIG_DFL), int(_signal.SIG_IGN), _signal.default_int_handler
    _SIGINT = int(_signal.SIGINT)
    signal_names = {int(s): s.name for s in _signal_mod.Signals}
    quiet_signals = {int(getattr(_signal, n)) for n in ("SIGCHLD", "SIGURG", "SIGWINCH", "SIGCONT")
                     if hasattr(_signal, n)}
    all_signals = [int(sig) for sig in _signal.valid_signals() if sig not in (_signal.SIGKILL, _signal.SIGSTOP)]
    _FunctionType = types.FunctionType

    def library_handler(handler) -> bool:
        """A plain function of a library's own module (PyTorch's DataLoader sets one for SIGCHLD)."""
        if _type(handler) is not _FunctionType:
            return False
        name = handler.__code__.co_filename
        return not name.startswith(cell_dir) and not from_a_string(name) and code_file_allowed(name)

    def hold_signals(key_: str) -> list:
        held = []
        for sig in all_signals:
            try:
                handler = _getsignal(sig)
                if handler is None or _isinstance(handler, int) or handler is _default_int:
                    continue
                _setsignal(sig, _default_int if sig == _SIGINT else _SIG_DFL if sig in quiet_signals else _SIG_IGN)
            except (ValueError, OSError, TypeError):  # not the main thread, or a signal Python cannot set
                continue
            held.append((sig, handler))
            if not library_handler(handler):
                record("tripwire", key_, f"a signal handler of the notebook's ({signal_names.get(sig, sig)}) "
                                         "while a course cell ran: a handler is handed the frame it interrupts "
                                         "(taken off for the cell)")
        return held

    def release_signals(held: list) -> None:
        for sig, handler in held:
            try:
                _setsignal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass

    def shown_lines(source: str) -> list:
        """``source``'s lines, those of its hidden-test regions (markers included) made empty."""
        out, hidden = [], False
        for line in source.splitlines(True):
            begins = "### BEGIN HIDDEN TESTS" in line
            hidden = hidden or begins
            out.append("\n" if hidden else line)
            if "### END HIDDEN TESTS" in line:
                hidden = False
        return out

    # PyTorch's modes (``TorchFunctionMode``, ``TorchDispatchMode``) see every operation of every tensor,
    # the course's included, and may answer for it: a mode a cell entered for good
    # (``contextlib.ExitStack().enter_context(...)``) whose ``__torch_function__`` made ``==`` all True
    # took lab 10's accuracy bar with an untrained model, 4 points, held by the review alone. The mode
    # stacks are C++ state no namespace comparison reads; nothing the course runs leaves a mode on
    # between cells, so a course cell that starts with one on, or ends with more than it started
    # with, does not count.
    # PyTorch's global module hooks (``torch.nn.modules.module.register_module_forward_hook`` and its
    # siblings) are the same class: they run for every module, the course's models included, and a
    # forward hook may replace a model's output. They live in dicts of that module, read here at each
    # check (a dict put in place of one is read too; anything that is not a dict counts as a hook).
    torch_mode_counts = []
    global_hook_names = ("_global_forward_pre_hooks", "_global_forward_hooks", "_global_backward_pre_hooks",
                         "_global_backward_hooks", "_global_buffer_registration_hooks",
                         "_global_module_registration_hooks", "_global_parameter_registration_hooks")

    def torch_global_hooks() -> int:
        module = _modules.get("torch.nn.modules.module")
        if _type(module) is not _Module:
            return 0
        names = _vars(module)
        total = 0
        for name in global_hook_names:
            hooks = names.get(name)
            if hooks is None:
                continue
            total += _dict_len(hooks) if _isinstance(hooks, _dict) else 1_000_000
        return total

    def torch_modes() -> int:
        """Modes on plus global module hooks registered: what a course cell must not start or end with."""
        if not torch_mode_counts:
            torch_ = _modules.get("torch")
            c_ = _vars(torch_).get("_C") if _type(torch_) is _Module else None
            try:
                torch_mode_counts.extend([c_._len_torch_function_stack, c_._len_torch_dispatch_stack])
            except AttributeError:
                return 0
        total = torch_global_hooks()
        try:
            for count in torch_mode_counts:
                total += count()
        except Exception:
            return 0
        return total

    def fail_if_moded(key_: str, cell: dict, when: str, before: int = 0) -> None:
        if torch_modes() <= before:
            return
        test = cell["kind"] == "test"
        record("changed", key_, f"{when}: PyTorch's modes or global module hooks (a mode the notebook entered "
                                "sees every tensor operation; a global hook, every module's)")
        if not test and when == "during":
            forget_bound(cell)
        raise _GraderCheck((msg("techday.referee_test_moded", "this test does not count: a PyTorch mode or global "
                                "module hook the notebook set was on (it sees and may answer every tensor operation "
                                "or model)") if test else
                            msg("techday.referee_cell_moded", "this cell does not count: a PyTorch mode or global "
                                "module hook the notebook set was on (it sees and may answer every tensor operation "
                                "or model)"))[1])

    def run(key_: str) -> None:
        cell = cells.get(key_)
        if cell is None:
            record("unknown", str(key_)[:80])
            raise _RuntimeError(msg("techday.referee_unknown_cell", "unknown course cell")[1])
        if state["running"] is not None:
            record("nested", key_, f"inside {state['running']}")
            raise _RuntimeError(msg("techday.referee_nested", "a course cell cannot run inside another")[1])
        # The executor's proof that the trigger reached the referee: a trigger the notebook answered itself
        # (its ``__import__``) ran no course cell, and a locked cell that never started leaves its names to
        # the notebook's values.
        record("start", key_)
        test = cell["kind"] == "test"
        if not test:
            unfinished.update(cell["binds"])  # until it has run to its end (watch_course_names)
        # A locked cell too: lab 11's accuracy is measured in a locked cell, and a patch in place while it
        # ran and taken away before the test that reads its result would leave the test nothing to find.
        watch_new_modules()
        fail_if_changed(key_, cell, "before")
        fail_if_moded(key_, cell, "before")
        # A test's source is not in linecache while it runs: a function it calls could read it from
        # there (through warnings.formatwarning, a traceback module, any library that quotes lines)
        # and answer with the hidden test's own expected values. IPython's traceback of a failed test
        # quotes its lines: they are put there when the test fails, after every statement of it ran.
        # Hidden tests' lines are put there blank (the numbering kept): after a failure a later cell read
        # a hidden test's every line back from linecache (``warnings.formatwarning`` with the test's file
        # name, a module the review allows) and printed them reversed, past the feedback's filter.
        lines = (_len(cell["source"]), None, shown_lines(cell["source"]) if test else cell["source"].splitlines(True),
                 cell["filename"])
        if test:
            _cache.pop(cell["filename"], None)
        else:
            _cache[cell["filename"]] = lines
        state["running"] = key_
        prior, kept = enter_test(key_, cell) if test else ({}, set())
        if not test:
            enter_locked(key_, cell)
        reads = _set(cell["relies"]) | helper_reads
        reset = course_data_reset(reads)
        if reset:
            record("reset", key_, ", ".join(reset[:12]))
            lost = [r for r in reset if r.endswith("(not restorable)")]
            if lost:  # reshaped in place: the course's data cannot be put back, the cell cannot count
                state["running"] = None
                if test:
                    leave_test(cell, prior, kept)
                listed = found_words(lost[:6])
                raise _GraderCheck((msg("techday.referee_test_data_before", "this test does not count: a cell of the "
                                        "notebook changed the course's data in place: {found}", found=listed) if test
                                    else msg("techday.referee_cell_data_before", "this cell does not count: a cell of "
                                             "the notebook changed the course's data in place: {found}",
                                             found=listed))[1])
        held = hold_signals(key_)
        try:
            _exec(cell["code"], user_ns)
        except BaseException:
            _cache[cell["filename"]] = lines
            raise
        finally:
            release_signals(held)
            state["running"] = None
            if test:
                leave_test(cell, prior, kept)
        fail_if_changed(key_, cell, "during")
        fail_if_moded(key_, cell, "during")
        during = course_data_reset(reads)
        if during:
            # A function the cell called changed the course's data in place while the cell ran (its
            # results were computed from changed data): the cell does not count, and what a locked
            # cell computed that way is not left for the tests.
            record("changed", key_, "during: the course's data " + ", ".join(during[:12]))
            if not test:
                forget_bound(cell)
            listed = found_words(during[:6])
            raise _GraderCheck((msg("techday.referee_test_data_during", "this test does not count: the code it called "
                                    "changed the course's data in place: {found}", found=listed) if test
                                else msg("techday.referee_cell_data_during", "this cell does not count: the code it "
                                         "called changed the course's data in place: {found}", found=listed))[1])
        if not test:
            watch_course_names(cell)
        watch_new_modules()
        record("done", key_)

    # Libraries that evaluate a string as a type (Numba's signatures, typing's forward references) run
    # whatever expression they are handed, with the builtins at hand; a trainee can build that string at
    # run time, where no review reads it (the referee's key was read that way). What they compile must
    # be a type expression, an allow-list of syntax checked when the library compiles the string:
    # Numba's, names of its types namespace (not its modules: ``np``, ``ctypes``) called and
    # subscripted; typing's, names and attributes subscripted or joined by ``|``, never a call.
    numba_evaluators = {("numba.core.sigutils", "_parse_signature_string"),
                        ("numba.cuda.core.sigutils", "_parse_signature_string")}
    typing_evaluator = ("typing", "__init__")  # ForwardRef compiles its string when it is made
    numba_nodes = (ast.Expression, ast.Name, ast.Load, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Constant,
                   ast.Call, ast.keyword)
    typing_nodes = (ast.Expression, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Tuple, ast.List,
                    ast.Constant, ast.BinOp, ast.BitOr)
    type_constants = (int, float, complex, str, bytes, bool, type(None), type(...))
    type_builtins = {name for name, value in _vars(builtins).items()
                     if _isinstance(value, _Type) and _issubclass(value, _BaseException)}
    type_builtins |= {"int", "float", "complex", "bool", "str", "bytes", "list", "dict", "tuple", "set",
                     "frozenset", "object"}
    builtin_names = _set(_vars(builtins))
    _Name, _Attribute, _BinOp, _BitOr, _Constant, _AST = ast.Name, ast.Attribute, ast.BinOp, ast.BitOr, ast.Constant, ast.AST
    _Module = types.ModuleType
    _only_ast = ast.PyCF_ONLY_AST
    parsing = set()  # thread ids parsing a type string (our own compile raises the event again)

    def type_string_refusal(source) -> tuple | None:
        """Why a type evaluator's string is refused, or None (any other compile, or a type expression)."""
        me = get_ident()
        if me in parsing:
            return None
        getframe_busy.add(me)
        try:
            frame = _getframe(3)
        except ValueError:
            return None
        finally:
            getframe_busy.discard(me)
        where = (frame.f_globals.get("__name__"), frame.f_code.co_name)
        if where in numba_evaluators:
            allowed, namespace = numba_nodes, getattr(frame.f_globals.get("types"), "__dict__", {})
        elif where == typing_evaluator:
            allowed, namespace = typing_nodes, None
        else:
            return None
        parsing.add(me)
        try:
            tree = _compile(source, "<type>", "eval", _only_ast, dont_inherit=True)
        except Exception:
            return None  # not Python at all: the library's own error says so
        finally:
            parsing.discard(me)
        todo = [tree]
        while todo:
            node = todo.pop()
            name = node.id if _isinstance(node, _Name) else node.attr if _isinstance(node, _Attribute) else ""
            if namespace is not None and _isinstance(node, _Name):
                bad_name = name not in namespace or _isinstance(namespace[name], _Module)
            else:
                bad_name = _isinstance(node, _Name) and name in builtin_names and name not in type_builtins
            if (not _isinstance(node, allowed) or name.startswith("__") or bad_name
                    or _isinstance(node, _BinOp) and not _isinstance(node.op, _BitOr)
                    or _isinstance(node, _Constant) and not _isinstance(node.value, type_constants)):
                return msg("techday.referee_type_string", "{module} evaluating a string that is not a type "
                           "expression ({node})", module=where[0],
                           node=f"{_type(node).__name__}{' ' + name if name else ''}")
            for field in node._fields:
                value = getattr(node, field, None)
                todo.extend(v for v in (value if _isinstance(value, _list) else [value]) if _isinstance(v, _AST))
        return None

    string_compilers = tuple(STRING_COMPILERS)
    ast_parse_code = ast.parse.__code__  # compiles to a syntax tree only: no code to run
    _os_open, _os_read, _os_close, _O_RDONLY = os.open, os.read, os.close, os.O_RDONLY

    def event_frame_code():
        frame = event_frame(4)
        return frame.f_code if frame is not None else None

    def same_as_file(name: str, source) -> bool:
        """Whether ``source`` is the text of the installed file ``name`` (the course's or the install's)."""
        if not _isinstance(source, _str_bytes) or not code_file_allowed(name):
            return False
        data = source.encode("utf-8", "surrogateescape") if _isinstance(source, str) else source
        try:
            fd = _os_open(name, _O_RDONLY)
            try:
                text = _os_read(fd, _len(data) + 2)
            finally:
                _os_close(fd)
        except OSError:
            return False
        return text.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")

    # What IPython's %time and %timeit run is a cell's own statement, compiled under these names.
    magic_code_names = {"<timed exec>", "<timed eval>", "<magic-timeit>", "<magic-timeit-setup>", "<magic-timeit-stmt>"}

    def string_compiler_refusal() -> tuple | None:
        """Why compiling a string here is refused, or None. From the code that compiles it outward: a
        library of :data:`STRING_COMPILERS`, the import system or a course cell before any notebook
        cell (a cell's own code, or the statement of its ``%time``/``%timeit``) says the string is
        theirs; a notebook cell reached first, through other libraries or none, handed it over."""
        frame = event_frame(4)
        compiler = ""
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith("<course cell") or name.startswith("<frozen importlib"):
                return None
            if name.startswith("<frozen "):  # runpy, codecs...: the interpreter's own, passing on
                frame = frame.f_back
                continue
            if name.startswith(cell_dir) or name in magic_code_names:
                return (msg("techday.referee_string_compiler", "{compiler} compiling a string a notebook cell "
                            "handed it (code no review read)", compiler=compiler) if compiler else
                        msg("techday.referee_cell_code", "making code in a notebook cell (compile, exec, eval, a "
                            "code object)"))
            if from_a_string(name):
                # Code a library generated (networkx's argmap wrappers under PyTorch's partitioner, a
                # dataclass's __init__): only a maker that may compile a cell's string made it, as every
                # other was refused; who called it decides.
                frame = frame.f_back
                continue
            module = frame_module(frame)
            if any(module == c or module.startswith(c + ".") for c in string_compilers):
                return fx_name_refusal(frame)
            compiler = compiler or module or name
            frame = frame.f_back
        return None

    operator_makers = tuple(c for c in STRING_COMPILERS if c.split(".")[0] == "torch")

    def operator_library_refusal() -> tuple | None:
        """PyTorch's operator registry (its dispatcher) is C++ state that no namespace comparison sees: a
        Python function registered there for an existing operator (``torch.library.Library("aten",
        "IMPL").impl("eq.Tensor", ...)``) answers every ``==`` of every tensor, the course's included. A
        ``torch.library.Library`` reads its caller's frame as it opens (``sys._getframe(1)``, audited
        here). From that frame outward, an import or a course cell, or a library that builds code from a
        traced model (:data:`STRING_COMPILERS`' PyTorch ones), reached first says the registry is the
        libraries' own; a notebook cell reached first, through ``torch.library``'s public functions or
        any other library (``np.vectorize(torch.library.Library)``), asked for it: refused."""
        frame = event_frame(4)
        if frame is None or frame.f_code.co_name != "__init__" or frame_module(frame) != "torch.library":
            return None
        library = _modules.get("torch.library")
        if library is None or frame.f_globals is not _vars(library):
            return None
        frame = frame.f_back
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith("<course cell") or name.startswith("<frozen importlib"):
                return None
            if name.startswith(cell_dir) or name in magic_code_names:
                return msg("techday.referee_operator_registry", "registering a kernel in PyTorch's operator "
                           "registry (torch.library) for a notebook cell")
            module = frame_module(frame)
            if any(module == c or module.startswith(c + ".") for c in operator_makers):
                return None
            frame = frame.f_back
        return None

    safe_name_chars = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

    def fx_name_refusal(frame) -> tuple | None:
        """torch.fx writes the names a graph's nodes target (attributes, submodules, methods) into the
        code it generates, quoted but not escaped (``getattr(self, "<name>")``): a name with a quote in
        it, which ``add_module`` and a hand-built graph accept, ends the string and the rest is code no
        review read (lab 10 took 15 of 15 that way). Where fx compiles a graph module's code, every
        such name must be plain: letters, digits, ``_`` and ``-`` between its dots."""
        while frame is not None:
            if frame.f_code.co_name == "recompile" and frame_module(frame) == "torch.fx.graph_module":
                break
            frame = frame.f_back
        if frame is None:
            return None
        graph = _vars(frame.f_locals.get("self")).get("_graph")
        for node in getattr(graph, "nodes", ()):
            target = getattr(node, "target", None)
            if _isinstance(target, str) and not _all(c in safe_name_chars for part in target.split(".") for c in part):
                return msg("techday.referee_fx_name", "torch.fx writing the name {name} into code (a name with a "
                           "quote ends fx's string)", name=f"{target[:40]!r}")
        return None

    def tripwire(event: str, args: tuple):
        """What the event would do that the grader refuses, as :func:`msg`'s (English, the room's language)
        pair or an audit event's name, or None. Never raises by itself: an
        exception escaping an audit hook inside a C extension's initialisation aborts the process."""
        if event == "sys.settrace":
            # CPython raises this event without arguments: whether a function is being set or cleared
            # cannot be seen, so every call is refused (nothing the course runs while grading sets one).
            return msg("techday.referee_settrace", "sys.settrace (a trace function)")
        if event == "sys.setprofile":
            return None if profiler_caller() else msg("techday.referee_setprofile",
                                                      "sys.setprofile (a profile function)")
        if event == "sys.addaudithook":  # a library may add one (lab 13 on the GPU tier); it runs after ours
            return msg("techday.referee_audit_hook", "a new audit hook") if caller_is_cell(3) else None
        if event in ("gc.get_objects", "gc.get_referrers", "gc.get_referents"):
            return event
        if event == "compile" and _len(args) > 1:
            parse_only = _isinstance(args[0], _str_bytes) and event_frame_code() is ast_parse_code
            if not parse_only:
                # Code made from a string or a syntax tree. Both type evaluators compile their string
                # as "<string>".
                why = type_string_refusal(args[0]) if args[1] == "<string>" else None
                why = why or string_compiler_refusal()
                if why or args[1] == "<string>":
                    return why
        if event in ("code.__new__", "marshal.loads", "marshal.load"):
            return string_compiler_refusal()  # code objects built or read from bytes: the same rule
        if event == "compile" and _len(args) > 1 and _isinstance(args[1], str) and args[1] \
                and not args[1].startswith("<") and not args[1].startswith(cell_dir) and args[1] not in string_born:
            # A string compiled under a name that looks like a file: the import system compiling a
            # module's source is the only compiler whose names are files it read; torch.compile's
            # libraries compile what they generated; a file's own text parsed under its name (IPython's
            # tracebacks read the library files they show) is that file's code.
            frame = event_frame()
            if frame is not None and not frame.f_code.co_filename.startswith("<frozen importlib") \
                    and not builder_frame(frame) and not same_as_file(args[1], args[0]):
                string_born.add(args[1])
            return None
        if event in ("open", "os.listdir", "os.scandir") and _len(args) and grader_file(args[0]):
            # The grader's record file and its folder: the referee writes through a descriptor it opened
            # before any cell ran, the executor reads through its own. A cell that found the key in the
            # kernel's memory appended a forged "done" for every test through a path to it.
            return msg("techday.referee_record_file", "opening the grader's record file or its folder")
        if event in ("open", "os.listdir", "os.scandir") and _len(args) and layout_file(args[0]) \
                and not torch_preload_frame(event_frame()):
            # Where the kernel's memory lies (/proc/self/maps and its kin): every cheat that read the
            # referee's key or rewrote its compiled tests through raw memory (NumPy views of any address,
            # an array interface a library's object took from a dict) found the regions to read there.
            return msg("techday.referee_memory_map", "reading the kernel's memory map (/proc/.../maps)")
        if event == "open" and _len(args) and memory_file(args[0]):
            # A process's memory as a file (/proc/self/mem, /proc/<pid>/task/<tid>/mem): reading it finds
            # the referee's key, writing it rewrites the interpreter. Nothing the course runs opens one.
            return msg("techday.referee_memory_file", "opening a process's memory (/proc/.../mem)")
        # Code from data: what the kernel runs must be code a review read or the install's own.
        if event == "open" and _len(args):
            path = text(args[0])
            if path.endswith(numba_cache_suffixes) and not writes(args):
                # Numba's disk cache (an index and machine code it links and runs) is never read while
                # grading, whoever wrote it: Numba finds no cache, compiles, and writes one nobody reads.
                return not_found
            frame = event_frame() if path else None
            # Whatever the import system's loaders read (``get_data``: a module's source or bytecode,
            # under any name a loader was given) comes from the install or the course: a module in the
            # working folder, /tmp or a home shadows any module not yet imported. (A C extension that
            # opens a file while it is imported has a frame of the import system above it, not this one.)
            if frame is not None and frame.f_code.co_name == "get_data" \
                    and frame.f_code.co_filename.startswith("<frozen importlib") and not code_file_allowed(path) \
                    and not builder_load(frame, path):
                return msg("techday.referee_import_outside", "importing code from {path} (outside the Python "
                           "install and the course)", path=path[:160])
            return None
        if event == "import" and _len(args) > 1 and args[1] is not None:
            path = text(args[1])  # an extension module's file
            if path and not code_file_allowed(path) and not builder_load(event_frame(), path):
                return msg("techday.referee_extension_outside", "loading the extension module {path} (outside the "
                           "Python install and the course)", path=path[:160])
            return None
        if event == "ctypes.dlopen" and _len(args):
            path = text(args[0])
            if "/" in path and not code_file_allowed(path) and not builder_load(event_frame(), path):
                return msg("techday.referee_library_outside", "loading the shared library {path} (outside the "
                           "Python install and the course)", path=path[:160])
            return None
        if event == "pickle.find_class" and _len(args) > 1:
            return pickle_refusal(args[0], args[1])
        if event == "object.__setattr__":
            target, name = args[0], args[1]
            # An object's class swapped by a cell (the course's labels made a subclass whose ``==`` is
            # always true): no exercise needs it.
            if name == "__class__" and not _isinstance(target, _Module) and caller_is_cell(3):
                return msg("techday.referee_class_swap", "changing the class of a {kind} object",
                           kind=_type(target).__name__)
            if name == "__class__" and _type(target) is PinnedConfig:  # Numba's bounds checks, held on
                return msg("techday.referee_numba_config_class", "changing the class of Numba's configuration "
                           "(its bounds checks)")
            # A function's code or defaults (audited, unlike a class's other attributes: above) set by a
            # pickle's BUILD step.
            if _isinstance(target, (_Function, _Type)) and unpickling and while_unpickling():
                return msg("techday.referee_pickle_sets", "setting {name} from a pickle",
                           name=f"{getattr(target, '__qualname__', '?')}.{name}")
            if _isinstance(target, _Function):
                mod = getattr(target, "__module__", None) or ""
                if name in ("__code__", "__defaults__", "__kwdefaults__") and (
                        course_module(mod) or mod != "__main__" and caller_is_cell(3)):
                    return msg("techday.referee_replacing", "replacing {name}",
                               name=f"{mod}.{getattr(target, '__qualname__', '?')}.{name}")
            elif _isinstance(target, _Type):
                mod = getattr(target, "__module__", None) or ""
                if mod not in ("__main__", "builtins") and _isinstance(mod, str) and caller_is_cell(3):
                    return msg("techday.referee_setting", "setting {name}",
                               name=f"{mod}.{getattr(target, '__qualname__', '?')}.{name}")
            return None
        if getframe_busy and get_ident() in getframe_busy:  # our own sys._getframe, from caller_is_cell
            return None
        if event in ("sys._getframe", "sys._current_frames"):
            if caller_is_cell(3):
                return msg("techday.referee_frames", "reading interpreter frames ({how})", how="sys._getframe")
            return operator_library_refusal() if event == "sys._getframe" else None
        if event == "object.__getattr__":
            if args[1] in ("tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back") and caller_is_cell(3):
                return msg("techday.referee_frames", "reading interpreter frames ({how})", how=args[1])
            return None
        if event in ("ctypes.cdata", "ctypes.cdata/buffer", "ctypes.addressof", "ctypes.string_at",
                     "ctypes.wstring_at", "ctypes.PyObj_FromPtr", "ctypes.dlsym", "ctypes.dlsym/handle"):
            return msg("techday.referee_raw_memory", "raw memory access ({event})", event=event) \
                if caller_is_cell(3) else None
        return None

    # Numba's indexing as raw memory: without bounds checks (Numba's default) ``a[i]`` in an @njit
    # function reads and writes any address, computed from ``id()`` (a bytes object's data lies 32
    # bytes past it), with no audit event and nothing the review can tell from honest indexing. A cell
    # that solved nothing rewrote the referee's compiled tests that way and took lab 01's 14 of 14,
    # `graded`. So Numba's configuration, as soon as it is loaded (before Numba compiles anything),
    # answers BOUNDSCHECK = 1 for good: every index of every @njit, @vectorize or @guvectorize
    # function is checked (IndexError), whatever its decorator says; setting it is refused.
    numba_pin = [NUMBA_CONFIG]

    class PinnedConfig(_Module):
        """``numba.core.config`` while grading: Numba's bounds checks always on."""

        @_property
        def BOUNDSCHECK(self):
            return 1

        @BOUNDSCHECK.setter
        def BOUNDSCHECK(self, value):
            refuse(msg("techday.referee_boundscheck_off", "turning Numba's bounds checks off "
                       "(numba.config.BOUNDSCHECK)"))

    def pin_numba() -> None:
        config_ = _modules.get(numba_pin[0])
        if config_ is not None and "BOUNDSCHECK" in _vars(config_) and _type(config_) is _Module:
            numba_pin[0] = None
            config_.__class__ = PinnedConfig

    # Every code object of the course's cells (their functions, comprehensions and lambdas too), by identity:
    # the code the draw is answered to. A name is not enough: a cell can compile code under any file name.
    course_codes = set()
    pending_codes = [c["code"] for c in cells.values()]
    while pending_codes:
        code_ = pending_codes.pop()
        if code_ not in course_codes:
            course_codes.add(code_)
            pending_codes.extend(k for k in code_.co_consts if _type(k) is _type(code_))
    course_codes = frozenset(course_codes)

    def draw(args: tuple) -> None:
        """Answer the grading draw's event: the seed goes into the caller's list only when the code that
        asks (past techday.draw's own functions) is the running test cell's, or a course cell's function
        that it called, all the way up to the test itself. Anything else (a notebook cell, an answer a
        test calls, a test helper called by an answer) is refused and recorded: the draw would let code
        learn the hidden inputs before they are handed to it."""
        running = state["running"]
        cell = cells.get(running) if running is not None else None
        frame = event_frame(3)  # draw, hook, then the frame that raised the event
        while frame is not None and frame.f_code in draw_codes:
            frame = frame.f_back
        allowed = cell is not None and cell["kind"] == "test" and frame is not None
        while allowed and frame is not None and frame.f_code is not cell["code"]:
            allowed = frame.f_code in course_codes
            frame = frame.f_back
        box = args[0] if _len(args) else None
        if not allowed or frame is None or _type(box) is not _list:
            refuse(msg("techday.referee_draw", "reading the grading draw outside the course's tests"))
        if draw_seed is not None:
            box.append(draw_seed)

    def hook(event: str, args: tuple) -> None:
        if numba_pin[0] is not None:
            try:
                pin_numba()
            except Exception:
                pass
        if event == RUN_EVENT:
            run(args[0] if _len(args) else "")
            return
        if event == draw_event:
            draw(args)
            return
        try:
            why = tripwire(event, args)
        except Exception:
            return
        if why is not_found:
            raise _FileNotFoundError(2, msg("techday.referee_not_read", "not read while grading")[1], args[0])
        if why:
            refuse(why)

    # The kernel is not dumpable: another process of the sandbox (same user; one a cell starts has no
    # audit hook) cannot read or write its memory through /proc or ptrace. The kernel itself is held
    # back by the tripwire on opening a memory file.
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass
    watch_new_modules()
    sys.addaudithook(hook)
    record("installed", "-", f"{_len(cells)} course cells")

