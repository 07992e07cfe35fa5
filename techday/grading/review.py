"""The review of the cells a trainee wrote, before any code runs: an allow-list of what a lab's
exercises need, not a list of what is forbidden.

A trainee's cell (an answer cell, a new cell, or a course cell the trainee changed) may use:

- **modules**: those the lab's own cells import (for ``techday``: the exact modules), plus a few
  plain ones (:data:`PLAIN_MODULES`); never the interpreter's own machinery (:data:`NEVER_MODULES`),
  also not when the lab imports one in an example;
- **names**: its own and the notebook's, and the builtins in :data:`ALLOWED_BUILTINS` (so not
  ``getattr``, ``globals``, ``vars``, ``eval``, ``exec``, ``compile``, ``__import__``, ``open``,
  ``get_ipython``, ``In``...); no name that starts with ``_``; never, in a function, a name a test
  binds (hidden tests included, from the source), even one the trainee's cell binds first;
- **the course's library** (``techday``) as the lab teaches it: the names its cells use, other than its
  tests and what its locked cells call (``techday.dl.fit`` is lab 10's answer, kept for later labs),
  and no module of it as a value;
- **attributes**: none that starts with ``_`` (``super().__init__`` excepted), none of the
  interpreter's introspection attributes (frames, tracebacks, code), none named after a module of
  :data:`NEVER_MODULES` (``np.ctypeslib``, ``torch.sys``), none that makes code from a file or
  a string (:data:`NATIVE_LOADER_ATTRS`), none under which a package the lab allows holds a module the
  cell could not import or the interpreter's machinery (``re.enum``, whose ``bltns`` is ``builtins``;
  :mod:`techday.grading.review_aliases`);
- **changes**: attributes are set only on what the trainee's own code made (``self.fc = ...``,
  ``p.grad = None`` for a loop variable), never on a module, an imported name or a name the course
  bound; a name a locked cell bound to a module, function or class is not rebound;
- **statements**: no ``global``/``nonlocal``, no metaclass, and in classes only the special methods
  of :data:`ALLOWED_SPECIAL_METHODS` (an ``__eq__`` or ``__array__`` makes a wrong answer compare
  equal);
- **magics**: ``%time``, ``%timeit`` and ``%matplotlib`` (their code is reviewed as well); no shell
  escapes (``!``), no other magic.

Anything else is a finding: the submission is ``flagged`` and its certificate held until a person
looks. The grade itself does not rest on this review: the referee (:mod:`techday.grading.referee`)
runs the tests where the trainee's code cannot silently change them. The review catches what a
person should see even when it did not change a grade, and makes the routes the referee cannot
watch (see grading/README.md) visible.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from pathlib import Path

# Modules a trainee may import in any lab beside the lab's own: plain computation, no machinery.
PLAIN_MODULES = {"math", "cmath", "random", "statistics", "itertools", "collections", "dataclasses", "typing",
                 "time", "copy", "heapq", "bisect", "numbers", "fractions", "decimal", "json", "re", "functools",
                 "numpy", "warnings", "io", "pathlib", "contextlib", "abc"}
# The interpreter's own machinery: never in a trainee's cell, even where a lab example imports one.
NEVER_MODULES = {"sys", "gc", "inspect", "ctypes", "ctypeslib", "importlib", "builtins", "types", "code", "codeop",
                 "dis", "marshal", "pickle", "dill", "cloudpickle", "subprocess", "signal", "socket", "threading",
                 "multiprocessing", "_thread", "ast", "IPython", "ipykernel", "traitlets", "atexit", "weakref",
                 "faulthandler", "tracemalloc", "linecache", "traceback", "runpy", "pdb", "bdb", "site",
                 "sysconfig", "operator", "copyreg", "shelve", "mmap", "resource", "pty", "os", "posix", "shutil",
                 "asyncio", "concurrent", "zmq", "jupyter_client", "nbformat", "nbclient", "nbgrader", "urllib",
                 "http", "requests", "tempfile", "glob", "platform", "llvmlite"}
ALLOWED_BUILTINS = {
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod", "complex",
    "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hasattr", "hash", "hex", "int",
    "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord", "pow",
    "print", "property", "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod", "str", "sum",
    "super", "tuple", "zip", "id", "True", "False", "None", "NotImplemented", "Ellipsis",
}
# What makes a class without a ``class`` statement, from a name and a namespace (where special methods
# need no ``def``): ``type`` is left out of the builtins above for the same reason.
# NumPy's views of raw memory: as_strided makes an array over any address (its strides computed from
# byte_bounds and id()), with no audit event for the referee to refuse.
RAW_MEMORY_ATTRS = {"as_strided", "byte_bounds"}
# PyTorch's sparse tensors: their indices are checked neither when made (``sparse_coo_tensor``'s
# invariants are off by default) nor when changed in place (``s.indices()`` is a view), and
# ``dense.add_(s)`` writes at each index with no bounds check: any address past the tensor's
# ``data_ptr()``. No lab uses them, so every name with "sparse" in it is outside the allow-list, and so
# is ``sparse=True`` given to an embedding (its gradients are sparse tensors).
SPARSE_KEYWORD_CALLS = {"Embedding", "EmbeddingBag", "embedding", "embedding_bag", "from_pretrained"}
CLASS_FACTORIES = {"make_dataclass", "new_class", "ABCMeta", "EnumMeta", "EnumType", "NamedTupleMeta"}
# Library functions that turn a file or a string into code where no audit event shows it: PyTorch's
# operator libraries and C++ extensions, ONNX Runtime's custom operators (loaded in C++), ctypes'
# loaders reached through a library, LLVM reached through Numba (``numba.core.codegen.ll``: machine code
# from IR text, shared libraries loaded), PyTorch's packages (module source from an archive).
NATIVE_LOADER_ATTRS = {"load_library", "register_custom_ops_library", "cpp_extension", "load_inline", "CDLL",
                       "PyDLL", "cdll", "pydll", "LoadLibrary", "codegen", "load_library_permanently",
                       "parse_assembly", "parse_bitcode", "create_mcjit_compiler", "run_static_constructors",
                       "add_symbol", "PackageImporter", "PackageExporter", "save_source_string"}
# PyTorch's global registries, whose entries answer for every caller, the course's code included: its
# operator registry (``torch.library``: a function registered for ``aten::eq`` is every tensor's ``==``)
# and the hooks every module runs (``torch.nn.modules.module.register_module_forward_hook``). No
# namespace holds what they register, so the referee's comparisons do not see it; it refuses
# ``torch.library`` at run time too, and a course cell that starts or ends with a global module hook on
# does not count.
GLOBAL_REGISTRY_ATTRS = {"library", "Library"}
GLOBAL_REGISTRY_PREFIX = "register_module_"
ALLOWED_SPECIAL_METHODS = {"__init__", "__call__", "__len__", "__getitem__", "__iter__", "__next__", "__repr__",
                           "__str__", "__post_init__", "__enter__", "__exit__"}
# Names IPython puts in a kernel: its shell, the history, the output cache, the exit helpers.
IPYTHON_NAMES = {"get_ipython", "In", "Out", "exit", "quit"}
# Builtins IPython adds that a trainee may use.
IPYTHON_BUILTINS = {"display"}
# The interpreter's introspection attributes (frames, tracebacks, generators, code objects).
INTROSPECTION_ATTRS = {"f_back", "f_locals", "f_globals", "f_builtins", "f_code", "f_trace", "f_lineno", "f_lasti",
                       "tb_frame", "tb_next", "tb_lasti", "tb_lineno", "gi_frame", "gi_code", "gi_yieldfrom",
                       "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "co_code", "co_consts",
                       "co_names", "co_varnames", "with_traceback"}
# IPython's machinery, named for the status line when reached through an allowed name.
MACHINERY_ATTRS = {"input_transformers_post", "input_transformers_cleanup", "ast_transformers", "showtraceback",
                   "run_cell", "run_cell_async", "run_code", "run_ast_nodes", "set_custom_exc", "custom_exceptions",
                   "events", "excepthook", "displayhook", "settrace", "setprofile", "audit", "addaudithook",
                   "modules", "user_ns", "kernel", "shell"}
# Numba as the labs teach it: its decorators, its types, its CUDA API. Its compiler's own machinery
# (``numba.extending.intrinsic`` builds LLVM IR: any address; ``carray`` makes an array of a pointer;
# ``numba.core`` holds its configuration and code generators) is raw memory with no audit event, so a
# trainee's cell may name from ``numba`` only these, and import only these of its modules (and those the
# lab's own cells import).
NUMBA_MODULES = {"numba", "numba.cuda", "numba.cuda.random", "numba.typed"}
NUMBA_NAMES = {"cuda", "njit", "jit", "vectorize", "guvectorize", "prange", "typed", "typeof", "literal_unroll",
               "stencil", "get_num_threads", "set_num_threads", "get_thread_id", "threading_layer", "from_dtype",
               "NumbaWarning", "NumbaPerformanceWarning", "NumbaDeprecationWarning", "NumbaError",
               "TypingError", "boolean", "void", "intp", "uintp", "byte", "double", "optional"}
NUMBA_TYPE_NAME = re.compile(r"(u?int(8|16|32|64)|float(16|32|64)|complex(64|128)|b1|bool_?|[fiuc][1248]|f16|c16)")
ALLOWED_MAGICS = {"time", "timeit", "matplotlib"}
# %timeit's options (IPython's own: -n N -r R -t -c -p P -q -o -v NAME); the rest of its line is code.
TIMEIT_OPTIONS = "n:r:tcp:qov:"
# What %matplotlib may name: a backend (inline, widget, agg...), or nothing; not module://anything.
BACKEND_NAME = re.compile(r"(-l|--list|[A-Za-z0-9_]*)")
# A special method's name written as a string: how a class is given one without a ``def`` in its body
# (``type("A", (), {"__eq__": ...})``, a namespace handed to a class factory).
SPECIAL_NAME = re.compile(r"__\w+__")


def _release_cells(release_nb: dict) -> dict[str, dict]:
    cells = {}
    for cell in release_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            cells[meta["grade_id"]] = cell
    return cells


def _kind(meta: dict) -> str:
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("solution"):
        return "solution"
    if meta.get("locked"):
        return "locked"
    return "other"


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else (source or "")


def _python(source: str) -> tuple[ast.Module | None, list[str]]:
    """The cell as Python, IPython's magics and shell escapes turned into calls as the kernel does;
    (None, []) when it is not valid Python (then it cannot run either)."""
    try:
        return ast.parse(source), []
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source)), []
    except Exception:
        return None, []


class Context:
    """What the lab's own cells establish: the modules it imports, the names its locked cells bind."""

    def __init__(self, release_nb: dict, test_names=()):
        self.modules: set[str] = set()          # roots a trainee may import
        # Names the lab's tests bind at module level: the release's visible tests (below), and
        # ``test_names``, those of the source's hidden tests where the grader has them.
        self.test_names: set[str] = set(test_names)
        self.techday: set[str] = {"techday"}     # exact techday modules the lab imports
        self.course_code_names: set[str] = set()  # names a locked cell binds to code (imports, defs)
        self.course_names: set[str] = set()       # every name a locked cell binds
        self.notebook_names: set[str] = set()     # names the release's cells other than tests define
        self.course_aliases: dict[str, str] = {}  # a name the lab's cells bind to a course name -> its path
        self.course_paths: set[str] = set()       # the course's names (techday.dl.Split) a trainee may use
        self.numba_modules: set[str] = set(NUMBA_MODULES)  # Numba's modules a trainee may import
        self.numba_aliases: set[str] = {"numba"}  # names bound to the numba module (import numba as nb)
        self.course_imports: dict[str, set[str]] = {}  # a name a locked cell imports -> what it stands for
        # Attribute names the lab's cells other than tests use (``lab.simulator``): the lab teaches them,
        # whatever a library holds under the same name (review_aliases).
        self.taught_attrs: set[str] = set()
        trees = []
        for cell in release_nb["cells"]:
            if cell.get("cell_type") != "code":
                continue
            tree, _ = _python(_text(cell["source"]))
            if tree is None:
                continue
            kind = _kind(cell.get("metadata", {}).get("nbgrader", {}))
            trees.append((kind, tree))
            if kind != "test":
                self.taught_attrs |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
            locked = cell.get("metadata", {}).get("nbgrader", {}).get("locked", False)
            if kind != "test":
                self.notebook_names |= _scope_names(tree.body)
            else:
                self.test_names |= _scope_names(tree.body)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for a in node.names:
                        self._module(a.name)
                        self.numba_aliases |= _numba_aliases(node)
                        if locked:
                            self.course_code_names.add((a.asname or a.name).split(".")[0])
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    self._module(node.module)
                    for a in node.names:
                        if node.module.split(".")[0] == "techday":
                            self.techday.add(f"{node.module}.{a.name}")
                        if locked:
                            self.course_code_names.add(a.asname or a.name)
                elif locked and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.course_code_names.add(node.name)
                if locked:
                    self.course_names |= _bound(node)
                if locked:
                    for name, path in _import_paths(node).items():
                        self.course_imports.setdefault(name, set()).add(path)
        self.modules = (self.modules | PLAIN_MODULES) - NEVER_MODULES
        # The course's library as the lab teaches it: the names of ``techday`` its cells use, other than
        # its tests and what its locked cells call. The library holds reference answers for later labs
        # (``techday.dl.fit`` is lab 10's training loop), and the locked cells are the grader's own
        # machinery (lab 10's accuracy bar evaluates with ``dl.evaluate``); a trainee's cell may use the
        # data and constants they read (``techday.parts.CLASSES``), not what they call.
        for kind, tree in trees:
            if kind != "test":
                self.course_aliases.update(_course_aliases(tree))
        for kind, tree in trees:
            if kind != "test":
                self.course_paths |= {path for path, called in _course_uses(tree, self.course_aliases)
                                      if kind != "locked" or not called}
        self.course_paths |= OPEN_CALLS

    def _module(self, name: str) -> None:
        self.modules.add(name.split(".")[0])
        if name.split(".")[0] == "numba":
            self.numba_modules.add(name)
        if name.split(".")[0] == "techday":
            self.techday.add(name)


def test_bound_names(nb: dict) -> set[str]:
    """The names a notebook's test cells bind at module level (a test's ``expected``, its reference
    function): with the source notebook, its hidden tests' too."""
    names = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and _kind(cell.get("metadata", {}).get("nbgrader", {})) == "test":
            tree, _ = _python(_text(cell.get("source", "")))
            if tree is not None:
                names |= _scope_names(tree.body)
    return names


# Course functions any trainee's cell may call in any lab, though a lab's locked cell calls them: they
# hand out nothing a grade rests on. ``dl.load_digits_split`` gives the digits' train and validation
# sets and the test split's images without their labels (the labels come from ``dl.held_out_digits``,
# which stays the locked cells'): a trainee exploring lab 10's data in a cell of their own, as the
# lesson shows, is not a review line.
OPEN_CALLS = frozenset({"techday.dl.load_digits_split"})


@functools.lru_cache(maxsize=256)
def _course_module(path: str) -> bool:
    """Whether ``techday.x.y`` names a module or package of the course's library (found as a file)."""
    folder = Path(__file__).resolve().parents[1].joinpath(*path.split(".")[1:])
    return folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file()


def _course_aliases(tree: ast.AST) -> dict[str, str]:
    """Names a cell's imports bind to the course's library: ``dl`` -> ``techday.dl``."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "techday":
                    aliases[a.asname or "techday"] = a.name if a.asname else "techday"
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level \
                and node.module.split(".")[0] == "techday":
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names if a.name != "*"})
    return aliases


def _course_path(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``dl.Split.x`` -> ``techday.dl.Split.x`` when the chain starts at a course alias; else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def _course_uses(tree: ast.AST, aliases: dict[str, str]) -> list[tuple[str, bool]]:
    """(path, called) for every whole name chain of the course's library a cell reads, and every name
    it imports from it."""
    inner, calls = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            inner.add(id(node.value))
        elif isinstance(node, ast.Call):
            calls.add(id(node.func))
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level \
                and node.module.split(".")[0] == "techday":
            # A module imported by name is an alias, like ``import techday.dl as dl``; a function, class
            # or constant imported is a use.
            uses += [(f"{node.module}.{a.name}", False) for a in node.names
                     if not _course_module(f"{node.module}.{a.name}")]
        elif isinstance(node, (ast.Name, ast.Attribute)) and id(node) not in inner \
                and not (isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)):
            path = _course_path(node, aliases)
            if path:
                uses.append((path, id(node) in calls))
    return uses


def _course_hits(tree: ast.AST, ctx: "Context") -> set[str]:
    """A course name the lab does not teach, or a module of the course taken as a value (it could be
    handed anywhere and its names read where no chain shows them)."""
    aliases = {**ctx.course_aliases, **_course_aliases(tree)}
    hits = set()
    for path, _ in _course_uses(tree, aliases):
        if path in ctx.course_paths or any(path.startswith(p + ".") for p in ctx.course_paths):
            continue
        if any(p.startswith(path + ".") for p in ctx.course_paths) or path == "techday":
            hits.add(f"uses the module {path} as a value")
        elif path.endswith(".*"):
            hits.add(f"imports * from {path[:-2]}")
        else:
            hits.add(f"uses {path} (not a name the lab's cells use)")
    return hits


def _bound(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return {node.id}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    return set()


def _binds(node: ast.AST) -> set[str]:
    """Every name ``node`` binds in its scope, whatever the syntax: assignment targets, ``def`` and
    ``class``, imports, ``except ... as``, ``match`` captures."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        return {node.id}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
    if isinstance(node, ast.ExceptHandler) and node.name:
        return {node.name}
    if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
        return {node.name}
    if isinstance(node, ast.MatchMapping) and node.rest:
        return {node.rest}
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return set(node.names)
    return set()


def _args(a: ast.arguments) -> set[str]:
    return {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs} | {x.arg for x in (a.vararg, a.kwarg) if x}


def _scope(nodes) -> list:
    """The nodes of one scope: not the bodies of the functions, lambdas and classes it defines (their
    decorators, defaults and bases belong to it)."""
    out, todo = [], list(nodes)
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo += [d for d in node.args.defaults + node.args.kw_defaults if d is not None]
            todo += getattr(node, "decorator_list", [])
        elif isinstance(node, ast.ClassDef):
            todo += node.decorator_list + node.bases + [k.value for k in node.keywords]
        else:
            todo += list(ast.iter_child_nodes(node))
    return out


def _scope_names(nodes) -> set[str]:
    return set().union(*(_binds(n) for n in _scope(nodes)))


def _unresolved(tree: ast.Module, known: set[str], skip: set[int]) -> set[str]:
    """Names read that no scope of the cell binds, nor ``known`` (what the notebook's own cells and the
    trainee's cells define at module level), nor the builtins: Python would look them up in the
    notebook's namespace at run time, where only a test put them (a test's ``expected`` or its
    reference function, read by an answer while the test calls it)."""
    found = set()

    def resolved(name: str, local: set, enclosing: list) -> bool:
        return name in local or any(name in s for s in enclosing) or name in known or name.startswith("_") \
            or hasattr(builtins, name) or name in IPYTHON_NAMES or name in IPYTHON_BUILTINS

    def visit(nodes, enclosing: list, params: set, function: bool) -> None:
        body = _scope(nodes)
        local = params | set().union(*(_binds(n) for n in body))
        inner = enclosing + [local] if function else enclosing
        if not function and nodes is not tree.body:
            local = None  # a class body: resolved statement by statement (class_reads)
        for node in body:
            if id(node) in skip:
                continue
            if local is not None and isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if not resolved(node.id, local, enclosing):
                    found.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(node.body, inner, _args(node.args), True)
            elif isinstance(node, ast.Lambda):
                visit([node.body], inner, _args(node.args), True)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, inner, set(), False)
                class_reads(node.body, inner)

    def class_reads(nodes, enclosing: list) -> None:
        """A class body looks a name up in what it bound so far, then in the notebook's namespace: a
        name it binds later or in the same statement (``expected = expected``), or one read inside a
        comprehension (which skips the class's names), is the notebook's, where a test may have put it."""
        bound = set()
        for stmt in nodes:
            targets = set().union(*(_targets(c.target) for c in ast.walk(stmt) if isinstance(c, ast.comprehension)))
            for node, in_comprehension in _loads(stmt):
                if id(node) not in skip and not resolved(node.id, targets if in_comprehension else bound, enclosing):
                    found.add(node.id)
            bound |= set().union(*(_binds(n) for n in _scope([stmt])))

    visit(tree.body, [], set(), False)
    return found


def _loads(stmt: ast.AST) -> list:
    """(name read, whether inside a comprehension) in one statement's scope; a comprehension's first
    iterable is read outside it, as Python evaluates it."""
    out, todo = [], [(stmt, False)]
    comprehensions = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    while todo:
        node, inside = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            out.append((node, inside))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo += [(d, inside) for d in node.args.defaults + node.args.kw_defaults if d is not None]
            todo += [(d, inside) for d in getattr(node, "decorator_list", [])]
        elif isinstance(node, ast.ClassDef):
            todo += [(d, inside) for d in node.decorator_list + node.bases + [k.value for k in node.keywords]]
        elif isinstance(node, comprehensions):
            first = node.generators[0].iter
            todo.append((first, inside))
            todo += [(c, True) for c in ast.iter_child_nodes(node) if c is not node.generators[0]]
            todo += [(c, True) for c in ast.iter_child_nodes(node.generators[0]) if c is not first]
        else:
            todo += [(c, inside) for c in ast.iter_child_nodes(node)]
    return out


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node


def _targets(node: ast.AST) -> set[str]:
    """Names bound by an assignment target (``a``, ``a, (b, *c)``), not names read inside one
    (``d[k] = ...`` binds nothing)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, (ast.Tuple, ast.List)):
        return set().union(*(_targets(e) for e in node.elts)) if node.elts else set()
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    return set()


def _own_names(tree: ast.Module) -> set[str]:
    """Names the trainee's code makes itself: function parameters, loop and ``with`` targets,
    comprehension variables, and names assigned something new (a call, a literal, arithmetic), not
    an alias of something that exists (``t = np.testing``)."""
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            own |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
            own |= {x.arg for x in (a.vararg, a.kwarg) if x}
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            own |= _targets(node.target)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            own |= _targets(node.optional_vars)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            if isinstance(node.value, (ast.Name, ast.Attribute, ast.Subscript, ast.Starred)):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            own |= set().union(*(_targets(t) for t in targets))
        elif isinstance(node, ast.ClassDef):
            own.add(node.name)
    return own


def _magics(tree: ast.Module) -> list[tuple[ast.Call, str]]:
    """IPython's rewritten magics and shell escapes: (call, magic name or '!')."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name) \
                and node.func.value.func.id == "get_ipython":
            attr = node.func.attr
            if attr in ("run_line_magic", "run_cell_magic") and node.args and isinstance(node.args[0], ast.Constant):
                out.append((node, str(node.args[0].value)))
            else:
                out.append((node, "!" if attr in ("system", "getoutput") else attr))
    return out


def _code_in_string(node: ast.AST) -> ast.Expression | None:
    """A string constant that is a Python expression doing something (a call, an attribute, an index, a
    lambda), as libraries evaluate them: Numba's signatures (``"float32(float32)"``) and typing's
    forward references go through ``eval``, with the builtins at hand."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or len(node.value) > 10_000:
        return None
    try:
        tree = ast.parse(node.value.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    doing = (ast.Call, ast.Attribute, ast.Subscript, ast.Lambda, ast.NamedExpr, ast.comprehension)
    return tree if any(isinstance(n, doing) for n in ast.walk(tree)) else None


def _format_fields(text: str) -> list[str]:
    """The attribute and item names a ``str.format`` field reaches (``"{0.__globals__[expected]}"``:
    ``__globals__``, ``expected``): format strings read attributes by name, underscores included."""
    if "{" not in text:
        return []
    import string

    parts = []
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f]
    except (ValueError, TypeError):
        return []
    for field in fields:
        parts += [p.strip("]") for p in re.split(r"[.\[]", field)[1:]]
    return parts


def _magic_code(magic: str, args: list, ctx: Context) -> tuple[list[str], str]:
    """(the code an allowed magic runs, a finding or ''): ``%time``'s line and cell are code;
    ``%timeit``'s options are read as IPython reads them, then its statement (in a cell, the setup on the
    first line) and body are code; ``%matplotlib`` names a backend, never a module to import."""
    if any(not isinstance(a, str) for a in args):
        return [], f"uses %{magic} with arguments made at run time"
    line, cell = args[0], args[1:]
    if magic == "matplotlib":
        if not BACKEND_NAME.fullmatch(line.strip()):
            return [], f"uses %matplotlib with {line.strip()[:40]!r} (a backend module runs code of its own)"
        return [], ""
    if magic == "timeit":
        import getopt

        from IPython.utils.process import arg_split

        try:
            opts, rest = getopt.getopt(arg_split(line, posix=False, strict=False), TIMEIT_OPTIONS)
        except (getopt.GetoptError, ValueError) as exc:
            return [], f"uses %timeit with options the review cannot read ({exc})"
        saved = [v for k, v in opts if k == "-v"]
        if any(not v.isidentifier() or v.startswith("_") or v in ctx.course_code_names for v in saved):
            return [], f"uses %timeit -v {saved[0][:40]} (saves into a name the course or Python owns)"
        line = " ".join(rest)
    return [line, *cell], ""


def review_cell(source: str, ctx: Context, trainee_names: set[str],
                trainee_globals: set[str] = frozenset(), resolve: bool = True) -> tuple[list[str], str]:
    """(what the cell does outside the allow-list, a note if it could not be read). ``trainee_globals``:
    the names the trainee's cells bind at module level; ``resolve``: whether a name read must be one the
    notebook or the trainee defines (not for a string that a library evaluates among its own names)."""
    tree, _ = _python(source)
    if tree is None:
        return [], "has a syntax error (not reviewed; it cannot run either)"
    hits: set[str] = set()
    generated = set()
    for call, magic in _magics(tree):
        generated.add(id(call.func.value))
        generated.add(id(call.func.value.func))
        if magic not in ALLOWED_MAGICS:
            hits.add("uses a shell escape (!)" if magic == "!" else f"uses %{magic}")
            continue
        for arg in call.args[1:]:
            generated.add(id(arg))
        texts, problem = _magic_code(magic, [a.value if isinstance(a, ast.Constant) else None for a in call.args[1:]],
                                     ctx)
        if problem:
            hits.add(problem)
        for text in texts:
            inner, _ = review_cell(text, ctx, trainee_names, trainee_globals)
            hits |= set(inner)
    # Strings that are code: an annotation (typing evaluates it in the notebook's namespace) is reviewed
    # as the cell's own code; any other string that is an expression doing something, by the same rules
    # except that its names may be a library's (a Numba signature's float32).
    annotations = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotations.add(id(node.annotation))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            annotations.add(id(node.returns))
        elif isinstance(node, ast.AnnAssign):
            annotations.add(id(node.annotation))
    for node in ast.walk(tree):
        if id(node) in generated or not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        hits |= {f"reads {part} through a format string" for part in _format_fields(node.value)
                 if part.startswith("_")}
        if id(node) in annotations:
            inner, _ = review_cell(node.value, ctx, trainee_names, trainee_globals)
        elif _code_in_string(node) is not None:
            inner, _ = review_cell(node.value.strip(), ctx, trainee_names, trainee_globals, resolve=False)
        else:
            continue
        hits |= {f"{hit} (in the string {node.value.strip()[:40]!r})" for hit in inner}
    own = _own_names(tree) | trainee_names
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    # A name only a test binds is the test's, even where a trainee's cell binds it first (then the test
    # rebinds it in the notebook's namespace while the answer runs: ``reference_epoch = None`` made the
    # hidden test's reference look like the trainee's own name).
    test_only = ctx.test_names - ctx.notebook_names
    known = ctx.notebook_names | ((set(trainee_globals) | _scope_names(tree.body)) - test_only)
    if resolve:
        hits |= {f"reads {name}, which only a test defines" for name in _unresolved(tree, known, generated)}
    hits |= _course_hits(tree, ctx)
    for node in ast.walk(tree):
        if id(node) in generated:
            continue
        hits |= {f"binds {name}" for name in _binds(node) if name.startswith("__")
                 and not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and name in ALLOWED_SPECIAL_METHODS
                          and isinstance(parents.get(id(node)), ast.ClassDef))}
        if isinstance(node, ast.keyword) and node.arg and node.arg.startswith("_"):
            hits.add(f"passes {node.arg}=")
        # NumPy's resize(refcheck=False) frees the memory views of the array still point to: they then
        # read and write whatever is allocated there next (no audit event).
        if isinstance(node, ast.keyword) and node.arg == "refcheck":
            hits.add("passes refcheck= (a resize that leaves views on freed memory)")
        if isinstance(node, ast.Call) and any(k.arg == "sparse" for k in node.keywords) \
                and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in SPARSE_KEYWORD_CALLS:
            hits.add("passes sparse= to an embedding (sparse tensors: raw memory)")
        if isinstance(node, ast.alias) and "sparse" in node.name.lower():
            hits.add(f"imports {node.name} (sparse tensors: raw memory)")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SPECIAL_NAME.fullmatch(node.value):
            hits.add(f"names {node.value} in a string")
        if isinstance(node, ast.Import):
            for a in node.names:
                hits |= _import_hits(a.name, ctx)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                hits.add(f"imports a relative module ({'.' * node.level}{module})")
            else:
                hits |= _import_hits(module, ctx)
                if module.split(".")[0] == "techday":
                    for a in node.names:
                        if f"{module}.{a.name}" not in ctx.techday and module not in ctx.techday:
                            hits.add(f"imports {module}.{a.name}")
                if module == "numba":
                    hits |= {f"imports numba.{a.name} (Numba's compiler internals)" for a in node.names
                             if not numba_name(a.name) and f"numba.{a.name}" not in ctx.numba_modules}
            # A star import binds whatever the module holds, names the course bound included (numpy.ma.testutils
            # holds an ``assert_close`` of its own): no name it binds can be read here.
            hits |= {f"imports * from {module or '.'} (binds names this review cannot read)" for a in node.names
                     if a.name == "*"}
            hits |= {f"imports {a.name}" for a in node.names if a.name.startswith("_") or a.name in NEVER_MODULES}
            hits |= {f"binds {a.asname}" for a in node.names if a.asname and a.asname.startswith("_")}
            hits |= {f"makes a class with {a.name}" for a in node.names if a.name in CLASS_FACTORIES}
            hits |= {f"imports {a.name} (raw memory)" for a in node.names if a.name in RAW_MEMORY_ATTRS}
            hits |= {f"imports {a.name} (makes code from a file or string)" for a in node.names
                     if a.name in NATIVE_LOADER_ATTRS}
            hits |= {f"imports {a.name} (a PyTorch registry every caller's code goes through)" for a in node.names
                     if a.name in GLOBAL_REGISTRY_ATTRS or a.name.startswith(GLOBAL_REGISTRY_PREFIX)}
            if "cpp_extension" in (node.module or "").split("."):
                hits.add("imports from cpp_extension (makes code from a file or string)")
        elif isinstance(node, ast.Name):
            hits |= _name_hits(node, ctx, own)
        elif isinstance(node, ast.Attribute):
            hits |= _attribute_hits(node, parents)
            hits |= _alias_hits(node.attr, ctx)
            if isinstance(node.value, ast.Name) and node.value.id in ctx.numba_aliases and not numba_name(node.attr) \
                    and f"numba.{node.attr}" not in ctx.numba_modules and not node.attr.startswith("_"):
                hits.add(f"uses numba.{node.attr} (Numba's compiler internals)")
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                root = _root(node)
                if not (isinstance(root, ast.Name) and root.id in own - ctx.course_code_names):
                    hits.add(f"changes {ast.unparse(node)[:60]}")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root(node)
            if isinstance(root, ast.Name) and root.id in ctx.course_code_names:
                hits.add(f"changes {ast.unparse(node)[:60]}")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            hits.add(f"declares {type(node).__name__.lower()} {', '.join(node.names)}")
        elif isinstance(node, ast.ClassDef):
            if node.keywords:
                hits.add(f"class {node.name} uses a metaclass or class keywords")
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("__") \
                        and item.name not in ALLOWED_SPECIAL_METHODS:
                    hits.add(f"class {node.name} defines {item.name}")
                elif isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id.startswith("__")
                                                          for t in item.targets):
                    hits.add(f"class {node.name} sets a special attribute")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in ctx.course_code_names \
                and not isinstance(parents.get(id(node)), ast.ClassDef):
            hits.add(f"redefines {node.name}")
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in ctx.course_code_names:
            hits.add(f"rebinds {node.id}")
        # The same name bound by any other syntax: a ``match`` capture, ``except ... as``, an import of
        # something else than the course imported under that name (importing the same is honest).
        if isinstance(node, (ast.MatchAs, ast.MatchStar, ast.MatchMapping, ast.ExceptHandler)):
            hits |= {f"rebinds {name}" for name in _binds(node) & ctx.course_code_names}
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name, path in _import_paths(node).items():
                if name in ctx.course_code_names and path not in ctx.course_imports.get(name, ()):
                    hits.add(f"rebinds {name}")
    return sorted(hits), ""


def _import_hits(module: str, ctx: Context) -> set[str]:
    root = module.split(".")[0]
    if root in NEVER_MODULES or any(part in NEVER_MODULES or part.startswith("_") for part in module.split(".")[1:]):
        return {f"imports {module}"}
    if any(part in GLOBAL_REGISTRY_ATTRS for part in module.split(".")[1:]):
        return {f"imports {module} (a PyTorch registry every caller's code goes through)"}
    if root not in ctx.modules:
        return {f"imports {module} (not a module of this lab)"}
    if root == "techday" and module not in ctx.techday:
        return {f"imports {module}"}
    if root == "numba" and module not in ctx.numba_modules:
        return {f"imports {module} (Numba's compiler internals)"}
    return set()


def _import_paths(node) -> dict[str, str]:
    """What an import binds: name -> the dotted path of what it stands for (``torch.nn`` for both
    ``import torch.nn as nn`` and ``from torch import nn``)."""
    if isinstance(node, ast.Import):
        return {(a.asname or a.name.split(".")[0]): (a.name if a.asname else a.name.split(".")[0]) for a in node.names}
    if isinstance(node, ast.ImportFrom) and not node.level:
        return {(a.asname or a.name): f"{node.module}.{a.name}" for a in node.names if a.name != "*"}
    return {}


def _numba_aliases(node) -> set[str]:
    """The names an ``import`` statement binds to the numba module itself."""
    if not isinstance(node, ast.Import):
        return set()
    return {a.asname or "numba" for a in node.names if a.name == "numba" or (not a.asname and a.name.startswith("numba."))}


def numba_name(name: str) -> bool:
    """Whether a trainee's cell may name ``numba.<name>`` (see :data:`NUMBA_NAMES`)."""
    return name in NUMBA_NAMES or bool(NUMBA_TYPE_NAME.fullmatch(name))


def _name_hits(node: ast.Name, ctx: Context, own: set[str]) -> set[str]:
    name = node.id
    if isinstance(node.ctx, ast.Store):
        return {f"binds {name}"} if name.startswith("__") else set()
    if name == "_":
        return set()
    if name.startswith("_") and name not in own:
        return {f"uses {name}"}
    if name in IPYTHON_NAMES and name not in own:
        return {f"uses {name}"}
    value = getattr(builtins, name, None)
    if hasattr(builtins, name) and name not in ALLOWED_BUILTINS and name not in own \
            and not (isinstance(value, type) and issubclass(value, BaseException)):
        return {f"uses {name}"}
    if name in NEVER_MODULES and name not in own:
        return {f"uses {name}"}
    return set()


def _attribute_hits(node: ast.Attribute, parents: dict) -> set[str]:
    attr = node.attr
    if attr == "__init__" and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) \
            and node.value.func.id == "super":
        return set()
    if attr.startswith("__") or attr.startswith("_") and not (isinstance(node.value, ast.Name)
                                                              and node.value.id == "self"):
        return {f"uses .{attr}"}
    if attr in INTROSPECTION_ATTRS or attr in NEVER_MODULES or attr in MACHINERY_ATTRS:
        return {f"uses .{attr}"}
    if attr in CLASS_FACTORIES:
        return {f"makes a class with {attr}"}
    if attr in RAW_MEMORY_ATTRS:
        return {f"uses .{attr} (raw memory)"}
    if attr == "cudadrv":  # Numba's CUDA driver: copies to and from raw host pointers
        return {f"uses .{attr} (Numba's compiler internals)"}
    if "sparse" in attr.lower():
        return {f"uses .{attr} (sparse tensors: raw memory)"}
    if attr in NATIVE_LOADER_ATTRS:
        return {f"uses .{attr} (makes code from a file or string)"}
    if attr in GLOBAL_REGISTRY_ATTRS or attr.startswith(GLOBAL_REGISTRY_PREFIX):
        return {f"uses .{attr} (a PyTorch registry every caller's code goes through)"}
    return set()


def _alias_hits(attr: str, ctx: Context) -> set[str]:
    """An attribute under which a package the lab lets a trainee import holds a module they may not import,
    or the interpreter's machinery (``re.enum``: Python's enum module, which holds ``builtins`` as
    ``bltns``; ``pathlib.attrgetter``; see :mod:`techday.grading.review_aliases`). A name the lab's own
    cells use as an attribute is the lab's (``lab.simulator``, where Numba holds its simulator's module
    as ``numba.cuda.simulator``: nothing of the machinery lies past it)."""
    from .review_aliases import aliases

    if attr in ctx.taught_attrs:
        return set()
    packages, refused = [], set()
    for package, held in aliases().get(attr, {}).items():
        if package not in ctx.modules:
            continue
        found = {what.removeprefix("module ") for what in held if not what.startswith("module ")
                 or _import_hits(what.removeprefix("module "), ctx)}
        if found:
            packages.append(package)
            refused |= found
    if not refused:
        return set()
    return {f"uses .{attr} ({', '.join(sorted(refused)[:3])}, held by {', '.join(packages[:4])} under that name)"}


def review_findings(nb, release_nb: dict, test_names=()) -> list[str]:
    """One line per cell the trainee wrote that goes outside the allow-list."""
    return review(nb, release_nb, test_names)[1]


def review(nb, release_nb: dict, test_names=()) -> tuple[list[str], list[str]]:
    """(notes, findings) for a submitted notebook against its release. Findings flag the submission;
    notes are said in its status line only. ``test_names``: what the source's tests (hidden ones
    included) bind, where the grader has the source."""
    release_locked = _release_cells(release_nb)
    released = {cell.get("id"): _text(cell["source"]) for cell in release_nb["cells"] if cell.get("id")}
    ctx = Context(release_nb, test_names)
    mine, graded = [], set()
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        # The type nbgrader runs it as: the first cell of a grade id goes back to the release's type with an
        # answer's source kept (an answer cell handed in as markdown or raw ran its text as code); a copy
        # loses its grade id and runs as it was handed in.
        first = gid in release_locked and gid not in graded
        graded.add(gid)
        if (release_locked[gid].get("cell_type") if first else cell.cell_type) != "code":
            continue
        # Restored from the source by nbgrader anyway: the first cell of a grade id that the *release* has as
        # a test or locked cell. The kind is the release's, not the metadata's (a trainee writes that: an
        # answer cell marked locked kept its source and ran unread), and a copy runs as a plain cell.
        if first and _kind(release_locked[gid].get("metadata", {}).get("nbgrader", {})) in ("test", "locked"):
            continue
        if cell.get("id") in released and _text(cell.source) == released[cell["id"]]:
            continue  # as released: the course wrote it, not the trainee
        mine.append((index, gid, _text(cell.source)))
    trainee_names, trainee_globals = set(), set()
    for _, _, source in mine:
        tree, _ = _python(source)
        if tree is not None:
            trainee_names |= _own_names(tree)
            trainee_globals |= _scope_names(tree.body)
            ctx.numba_aliases |= {alias for node in ast.walk(tree) for alias in _numba_aliases(node)}
    notes, findings = [], []
    for index, gid, source in mine:
        where = f"'{gid}'" if gid else f"cell {index + 1}"
        hits, note = review_cell(source, ctx, trainee_names, trainee_globals)
        if note:
            notes.append(f"{where} {note}")
        if hits:
            findings.append(f"{where} {', '.join(hits[:8])}" + (f" (+{len(hits) - 8} more)" if len(hits) > 8 else ""))
    return notes, findings
