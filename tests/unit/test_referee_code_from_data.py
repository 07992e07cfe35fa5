"""Code from data, refused by the referee while grading (techday/grading/referee.py): a pickle that names
anything but data, a module or shared library loaded from a file outside the Python install and the
course; and Numba's disk cache, never read.

Each is a way to run code that no review reads: the file's bytes are built at run time (here, a list of
numbers), and a library turns them into code. Each case runs in a fresh interpreter with the referee
installed, in a working folder of its own that is first on ``sys.path``, as a kernel's is."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from tests.fixtures.submissions.cheats import pickle_that_runs
from tests.unit.test_referee_source import ROOT, _run


def _bytes(data: bytes) -> str:
    """Python source that makes ``data`` at run time without spelling it."""
    return f"bytes({list(data)!r})"


def _ran_clean(got: dict) -> None:
    """The cell ran to its end and the referee refused nothing."""
    assert got["cell"] == "ok" and "tripwire" not in got["records"], got


def _refused(got: dict, what: str) -> None:
    """The cell failed (a library may wrap the referee's error in its own) and the refusal is recorded."""
    assert got["cell"] != "ok", got
    assert " tripwire " in got["records"] and what in got["records"], got


class _Strided:
    def __reduce__(self):
        import numpy as np

        return (np.lib.stride_tricks.as_strided, (np.zeros(1),))


def _torch_file(obj) -> bytes:
    """What ``torch.save`` writes for ``obj`` (its own zip format: the pickle inside it)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_a_pickle_that_calls_anything_but_a_data_type_is_refused(tmp_path):
    """Wrong answers caught: a pickle built at run time whose first global is ``exec`` (through
    ``np.load(..., allow_pickle=True)``), NumPy's raw-memory view ``as_strided`` (through
    ``torch.load(..., weights_only=False)``), and a function a test defined in the notebook (a hidden
    test's reference, read by name from a pickle)."""
    payload = pickle_that_runs("import sys; sys.modules['numpy'].allclose = lambda *a, **k: True")
    got = _run(f"import io, numpy as np\nnp.load(io.BytesIO({_bytes(payload)}), allow_pickle=True)\n", cwd=tmp_path)
    _refused(got, "unpickling builtins.exec")

    got = _run(f"import io, torch\ntorch.load(io.BytesIO({_bytes(_torch_file(_Strided()))}), weights_only=False)\n",
               cwd=tmp_path)
    _refused(got, "unpickling numpy.lib.")

    tests = {"hidden": {"kind": "test", "source": "def reference(x):\n    return 2 * x\nassert True\n"}}
    by_name = b"\x80\x02c__main__\nreference\nK\x15\x85R."
    cell = ("import io, numpy as np\n"
            "def answer(x):\n"
            f"    return np.load(io.BytesIO({_bytes(by_name)}), allow_pickle=True)\n")
    # The cell defines the answer; a later test's reference is read when the answer runs, as a test calls it.
    got = _run(cell, {**tests, "calls": {"kind": "test", "source": "assert answer(21) == 42\n"}}, cwd=tmp_path)
    assert got["calls"] != "passed", got
    assert "unpickling __main__.reference" in got["records"], got

    # A class the test defines before it calls the answer (its reference model), named by a pickle.
    by_class = b"\x80\x02c__main__\nReference\n)\x81."
    cell = ("import io, numpy as np\n"
            "def answer(x):\n"
            f"    return np.load(io.BytesIO({_bytes(by_class)}), allow_pickle=True).double(x)\n")
    test = ("class Reference:\n    def double(self, x):\n        return 2 * x\n"
            "assert answer(21) == 42\n")
    got = _run(cell, {"calls": {"kind": "test", "source": test}}, cwd=tmp_path)
    assert got["calls"] != "passed", got
    assert "unpickling __main__.Reference" in got["records"], got


def test_a_class_a_pickle_changed_fails_the_next_test():
    """A pickle's BUILD step sets the attributes of a class it names one by one, with no audit event,
    when the class has no ``__setstate__``. Wrong answer caught: a pickle that names a Python class of
    the allow-list (``DupFd``, what a DataLoader's workers send) and sets one of its methods to a
    builtin type (``float``): the next test finds the class changed and does not count."""
    build = (b"\x80\x02cmultiprocessing.resource_sharer\nDupFd\nN}X\x06\x00\x00\x00detachcbuiltins\nfloat\n"
             b"s\x86b.")
    got = _run(f"import io, numpy as np\nnp.load(io.BytesIO({_bytes(build)}), allow_pickle=True)\n",
               {"after": {"kind": "test", "source": "assert True\n"}})
    assert got["after"] == "GraderCheck", got
    assert "DupFd.detach" in got["records"], got


def test_data_a_trainee_saves_and_loads_still_loads():
    """Wrong answer caught the other way: the allow-list refusing honest data (arrays, tensors, a
    parameter, dtypes, a state dict, a whole model, a class of the trainee's own, dates and numbers of
    the standard library, a pickled object array) saved and loaded in one notebook, or a forward
    reference that names an exception class."""
    cell = ("import collections, dataclasses, datetime, decimal, fractions, io\n"
            "import numpy as np, torch\n"
            "@dataclasses.dataclass\n"
            "class Point:\n    x: float\n    y: float\n"
            "data = {'t': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'p': torch.nn.Parameter(torch.ones(2)),\n"
            "        'dt': torch.float64, 'size': torch.Size([2, 3]), 'dev': torch.device('cpu'),\n"
            "        'sd': torch.nn.Linear(3, 2).state_dict(), 'od': collections.OrderedDict(a=1),\n"
            "        'dd': collections.defaultdict(list), 'when': datetime.datetime(2026, 12, 5, tzinfo=datetime.timezone.utc),\n"
            "        'span': datetime.timedelta(seconds=3), 'dec': decimal.Decimal('1.5'), 'frac': fractions.Fraction(1, 3),\n"
            "        'count': collections.Counter('abca'),\n"
            "        'point': Point(1.0, 2.0), 'set': {1, 2}, 'cplx': 1 + 2j, 'np': np.arange(4.0), 'dtype': np.dtype('f4'),\n"
            "        'scalar': np.float32(2.5)}\n"
            "buf = io.BytesIO()\ntorch.save(data, buf)\nbuf.seek(0)\n"
            "back = torch.load(buf, weights_only=False)\n"
            "assert back['point'] == Point(1.0, 2.0) and torch.equal(back['t'], data['t']) and back['dt'] is torch.float64\n"
            "arr = np.array([1.5, 'two', (3,), Point(0.0, 1.0)], dtype=object)\n"
            "f = io.BytesIO()\nnp.save(f, arr, allow_pickle=True)\nf.seek(0)\n"
            "assert list(np.load(f, allow_pickle=True)) == list(arr)\n"
            "model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Dropout(0.1))\n"
            "buf = io.BytesIO()\ntorch.save(model, buf)\nbuf.seek(0)\n"
            "assert isinstance(torch.load(buf, weights_only=False)[0], torch.nn.Linear)\n"
            "import typing\ndef check(x) -> 'ValueError | None':\n    return None\n"
            "assert typing.get_type_hints(check)['return'] == typing.Optional[ValueError]\n")
    got = _run(cell)
    _ran_clean(got)


def test_a_module_written_at_run_time_is_not_imported(tmp_path):
    """A module a cell writes into the working folder (first on ``sys.path``) shadows any module not yet
    imported: a library importing that name later runs it. Wrong answers caught: a source module and a
    compiled one (``.pyc``, no source) written by a cell and imported, a file of another name handed to
    a source loader; a module of the install not yet imported still imports."""
    cell = ("import pathlib\n"
            "pathlib.Path('shadow_mod.py').write_text('import sys\\nsys.modules[\"numpy\"].allclose = None\\n')\n"
            "__import__('shadow_mod')\n")
    _refused(_run(cell, cwd=tmp_path), "importing code from")
    compiled = tmp_path / "compiled_src.py"
    compiled.write_text("X = 1\n")
    subprocess.run([sys.executable, "-m", "py_compile", str(compiled)], check=True)
    pyc = next((tmp_path / "__pycache__").glob("compiled_src.*.pyc"))
    data = pyc.read_bytes()
    compiled.unlink()
    cell = f"import pathlib\npathlib.Path('sourceless.pyc').write_bytes({_bytes(data)})\n__import__('sourceless')\n"
    _refused(_run(cell, cwd=tmp_path), "importing code from")
    # A loader handed a file of any other name reads it as source all the same.
    cell = ("import importlib.machinery, pathlib\npathlib.Path('notes.txt').write_text('X = 1\\n')\n"
            "importlib.machinery.SourceFileLoader('notes', 'notes.txt').load_module()\n")
    _refused(_run(cell, cwd=tmp_path), "importing code from")
    got = _run("import colorsys, wave\nassert colorsys.rgb_to_hsv(1, 0, 0)[0] == 0\n", cwd=tmp_path)
    _ran_clean(got)


def test_numbas_disk_cache_is_never_read_while_grading(tmp_path):
    """Numba's cache files hold an index (a pickle) and compiled machine code that Numba links and runs
    when a cached function is called; a trainee's code can reach those files in many ways (a symlink,
    a hard link, ``/proc/self/fd``, a shared mapping), so while grading Numba never reads them: it finds
    no cache and compiles. Wrong answer caught: an index planted in place of the one Numba wrote (its
    first pickle runs code) loaded and run by a benchmark family's cached function. The other way: that
    function, cached by another process, still runs, with nothing recorded."""
    cache = tmp_path / "numba"
    use = ("import numpy as np\nfrom benchmarks.stream import triad_cpu\n"
           "a = np.zeros(64)\ntriad_cpu(np.ones(64), np.ones(64), 2.0, a)\nassert (a == 3.0).all()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(cache)}
    subprocess.run([sys.executable, "-c", use], check=True, env=env, cwd=tmp_path, timeout=300)
    (index,) = cache.rglob("*triad_cpu*.nbi")
    got = _run(use, cwd=tmp_path, env={"NUMBA_CACHE_DIR": str(cache)})
    _ran_clean(got)
    index.write_bytes(pickle_that_runs("raise ValueError('the planted index ran')"))
    planted = subprocess.run([sys.executable, "-c", use], env=env, cwd=tmp_path, timeout=300, capture_output=True,
                             text=True)
    assert "the planted index ran" in planted.stderr, "without the referee, Numba loads the planted index"
    got = _run(use, cwd=tmp_path, env={"NUMBA_CACHE_DIR": str(cache)})
    _ran_clean(got)


def test_a_string_compiled_under_a_file_like_name_is_the_notebooks(tmp_path):
    """NumPy's ``testing.measure`` compiles the string it is handed under the name "Test name: ...":
    not a "<...>" name, so its code looked like a library's, and reading frames from it found the
    referee's key in a closure. Wrong answer caught: a frame read by code run that way (refused since);
    now the string is not compiled at all (NumPy is not a library that may compile a cell's string)."""
    cell = ("import numpy as np\n"
            "np.testing.measure(''.join(chr(c) for c in "
            f"{[ord(c) for c in 'import sys; sys._getframe(0)']!r}), 1)\n")
    _refused(_run(cell, cwd=tmp_path), "numpy.testing._private.utils compiling a string a notebook cell handed it")


def test_a_library_may_not_compile_a_string_a_cell_hands_it(tmp_path):
    """Libraries that run a string they are handed run code no review read (a string built at run
    time): only those of ``STRING_COMPILERS`` may compile a string while a notebook cell waits on them.
    Wrong answers caught: PyTorch's ``Timer(stmt=...)`` and the ``timeit`` it calls, a syntax tree
    compiled by a library, a code object rebuilt with ``replace``, ``eval`` in a cell. Still allowed:
    a dataclass, a named tuple, a Numba function, ``%timeit``, and parsing without compiling."""
    hidden = "''.join(chr(c) for c in " + repr([ord(c) for c in "out['v'] = 42"]) + ")"
    cells = [  # (the cell, what the refusal says)
        (f"import torch.utils.benchmark\nout = {{}}\n"
         f"torch.utils.benchmark.Timer(stmt={hidden}, globals={{'out': out}}).timeit(1)\n",
         "timeit compiling a string a notebook cell handed it"),
        (f"import timeit\nout = {{}}\ntimeit.timeit({hidden}, number=1, globals={{'out': out}})\n",
         "timeit compiling a string a notebook cell handed it"),
        (f"out = {{}}\neval(compile({hidden}, 'x', 'exec'))\n", "making code in a notebook cell"),
        (f"import ast\nout = {{}}\nexec(compile(ast.parse({hidden}), 'x', 'exec'))\n",
         "making code in a notebook cell"),
        ("def f():\n    return 1\ng = f.__code__.replace(co_consts=(None, 2))\n", "making code in a notebook cell"),
        # %time runs the cell's statement as code IPython compiled (an allowed maker): still the cell's.
        (f"import timeit\nout = {{}}\n%time timeit.timeit({hidden}, number=1, globals={{'out': out}})\n",
         "timeit compiling a string a notebook cell handed it"),
    ]
    for cell, what in cells:
        _refused(_run(cell, cwd=tmp_path), what)
    honest = ("import ast, collections, dataclasses, typing\nimport numba\n"
              "@dataclasses.dataclass\nclass P:\n    x: int = 1\n"
              "Q = collections.namedtuple('Q', 'a b')\n"
              "class R(typing.NamedTuple):\n    a: int\n"
              "@numba.njit('float64(float64)')\ndef twice(v):\n    return 2 * v\n"
              "assert P().x == 1 and Q(1, 2).b == 2 and R(3).a == 3 and twice(2.0) == 4.0\n"
              "assert isinstance(ast.parse('x = 1'), ast.Module)\n"
              "%timeit -n 1 -r 1 twice(1.0)\n")
    _ran_clean(_run(honest, cwd=tmp_path))
    # torch.compile's partitioner (a backward pass) calls networkx, whose generated wrappers compile
    # more wrappers: code a library made from a string, called by an allowed maker (it was refused).
    trained = ("import torch\n"
               "m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))\n"
               "c = torch.compile(m, backend='aot_eager')\n"
               "c(torch.randn(16, 4)).sum().backward()\n"
               "assert m[0].weight.grad is not None\n")
    _ran_clean(_run(trained, cwd=tmp_path))


def test_a_module_a_library_imports_by_name_is_not_a_builders_own(tmp_path):
    """torch.compile's libraries may load what they built in their own cache folders; a module they
    import by name (Dynamo imports ``tabulate`` lazily, to print its compile times when the kernel
    exits) found in the working folder is not that. Wrong answer caught: a ``tabulate.py`` a cell
    wrote, imported by Dynamo's own frame."""
    cell = ("import pathlib, torch\n"
            "pathlib.Path('tabulate.py').write_text('X = 1\\n')\n"
            "torch._dynamo.utils.tabulate([('a', 1)], ('k', 'v'))\n")
    _refused(_run(cell, cwd=tmp_path), "importing code from")


def test_the_pickles_of_the_allow_list_are_real():
    """Every name of the allow-list exists where it says (a renamed one would refuse honest data)."""
    import importlib

    from techday.grading.referee import PICKLE_GLOBALS

    missing = []
    for module, names in PICKLE_GLOBALS.items():
        mod = importlib.import_module(module)
        missing += [f"{module}.{n}" for n in sorted(names or ()) if not hasattr(mod, n)]
    # Names kept for pickles of older releases (NumPy 1's module path, PyTorch's older rebuild functions).
    allowed_missing = {"torch._utils._rebuild_tensor_v3"}
    assert set(missing) <= allowed_missing, missing


def test_numba_raising_from_compiled_code_is_its_own_pickle_and_only_that():
    """Numba pickles the class and arguments of a ``raise`` in compiled code when it compiles it and
    unpickles them when the code raises (an untouched release's ``raise NotImplementedError`` in a
    ``@njit`` answer was refused and flagged). Wrong answer caught the other way: Numba's public
    functions that load a pickle they are handed (``serialize.loads``, ``runtime_build_excinfo_struct``)
    called from a cell are held to the allow-list."""
    cell = ("from numba import njit\n"
            "@njit\n"
            "def answer(x):\n"
            "    raise NotImplementedError('write the kernel')\n"
            "try:\n    answer(1)\nexcept NotImplementedError as exc:\n    assert str(exc) == 'write the kernel'\n")
    got = _run(cell)
    _ran_clean(got)
    payload = pickle_that_runs("x = 1")
    for call in ("loads(p)", "runtime_build_excinfo_struct(p, ())"):
        got = _run(f"from numba.core import serialize\np = {_bytes(payload)}\nserialize.{call}\n")
        _refused(got, "unpickling builtins.exec")


def test_a_dataloaders_workers_send_batches_and_errors_as_before():
    """What a DataLoader's worker processes send (batches of tensors, and the exception a Dataset
    raised, which the loader raises again in the notebook: an unanswered exercise of lab 13) still
    arrives. Wrong answer caught the other way: an allow-list without PyTorch's reductions, or one that
    refused an exception's class, flagging honest or unfinished work."""
    cell = ("import torch\nfrom torch.utils.data import DataLoader, Dataset\n"
            "class Squares(Dataset):\n"
            "    def __init__(self, fail):\n        self.fail = fail\n"
            "    def __len__(self):\n        return 8\n"
            "    def __getitem__(self, i):\n"
            "        if self.fail:\n            raise NotImplementedError('write __getitem__')\n"
            "        return torch.tensor([float(i * i)])\n"
            "got = torch.cat([b for b in DataLoader(Squares(False), batch_size=4, num_workers=1)])\n"
            "assert got.flatten().tolist() == [float(i * i) for i in range(8)]\n"
            "try:\n    next(iter(DataLoader(Squares(True), batch_size=4, num_workers=1)))\n"
            "except NotImplementedError as exc:\n    assert 'write __getitem__' in str(exc)\n")
    got = _run(cell)
    _ran_clean(got)


def test_torch_compile_builds_loads_and_pickles_its_own_code(tmp_path):
    """torch.compile's inductor (C++ here, Triton on a GPU) writes native code into a cache folder of its
    own and loads it, and pickles the graphs it compiled; the referee takes those as inductor's own.
    Wrong answer caught the other way: the shared-library, extension-module or pickle rules refusing
    inductor (its compiled graph ``CompiledFxGraph`` was refused and flagged), with the grading
    sandbox's settings (its graph caches off) and with PyTorch's defaults."""
    cell = ("import torch\n"
            "def f(x):\n    return torch.sin(x) * 2 + x.cos()\n"
            "x = torch.randn(64)\n"
            "for _ in range({times}):  # the second compile of the same graph is a cache hit where caches are on\n"
            "    g = torch.compile(lambda x: torch.sin(x) * 2 + x.cos(), backend='inductor')\n"
            "    assert torch.allclose(g(x), f(x), atol=1e-5)\n")
    from techday.grading.sandbox import sandbox_env

    off = {k: v for k, v in sandbox_env({}).items() if k.startswith("TORCHINDUCTOR_")}
    assert off == {"TORCHINDUCTOR_FX_GRAPH_CACHE": "0", "TORCHINDUCTOR_AUTOGRAD_CACHE": "0"}, off
    for env, times in ((off, 1), ({}, 2)):
        # One compile thread: inductor's pool of compile workers would take every core from the tests
        # beside this one (the hub's load test among them). Inductor's C++ build took 97 s in one CI run
        # and over 120 s in another, beside the other tests on 2 cores: the driver gets 300 s.
        got = _run(cell.format(times=times), cwd=tmp_path, timeout=300,
                   env={**env, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / f"inductor-{times}"),
                        "TORCHINDUCTOR_COMPILE_THREADS": "1"})
        assert got["cell"] == "ok" and "tripwire" not in got["records"], (env, got)


def test_torch_fx_writes_only_plain_names_into_its_code(tmp_path):
    """torch.fx quotes the names a graph's nodes target into the code it generates without escaping
    them (``getattr(self, "<name>")``): a name holding a quote ended the string, and the rest was code
    no review read. A lab 10 submission that solved nothing took 15 of 15, graded, by defining its
    answers that way; a smaller one read a hidden test's expected value. Wrong answer caught: such a
    name, in a hand-built graph and in a submodule's name. Still allowed: fx's own code for a traced
    model (a ModuleList's numbered names included) and torch.export's."""
    q = "chr(34)"
    target = (f"'x' + {q} + ') if 0 else getattr(' + '_' * 2 + 'import' + '_' * 2 + '(' + {q} + 'math' + {q} + "
              f"'), ' + {q} + 'pi'")
    cells = [
        f"import torch.fx as fx\ntarget = {target}\ng = fx.Graph()\ng.output(g.get_attr(target))\n"
        "fx.GraphModule({target: 0}, g)()\n",
        f"import torch\nimport torch.fx as fx\nm = torch.nn.Module()\nm.add_module({target}, torch.nn.ReLU())\n"
        f"g = fx.Graph()\nx = g.placeholder('x')\ng.output(g.call_module({target}, (x,)))\n"
        "fx.GraphModule(m, g)(torch.ones(1))\n",
    ]
    for cell in cells:
        _refused(_run(cell, cwd=tmp_path), "torch.fx writing the name")
    honest = ("import torch\nimport torch.fx as fx\n"
              "class Net(torch.nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(2)])\n"
              "    def forward(self, x):\n"
              "        for layer in self.layers:\n"
              "            x = torch.relu(layer(x))\n"
              "        return x.sum(-1)\n"
              "net = Net()\nx = torch.randn(3, 4)\n"
              "assert torch.allclose(fx.symbolic_trace(net)(x), net(x))\n"
              "ep = torch.export.export(net, (x,))\nassert torch.allclose(ep.module()(x), net(x))\n")
    _ran_clean(_run(honest, cwd=tmp_path))


def test_numbas_indexing_is_bounds_checked_whatever_a_cell_sets():
    """Numba compiles indexing without bounds checks by default: ``a[i]`` in an @njit function then reads
    and writes any address (from ``id()`` of a bytes object, whose data lies 32 bytes past it), with no
    audit event; a cell that solved nothing rewrote the referee's compiled tests that way (lab 01, 14 of
    14, `graded`, the ``numba-out-of-bounds`` cheat). Under the referee Numba's configuration answers
    BOUNDSCHECK = 1 from the moment it loads, whatever a decorator says, and a cell that sets it is
    refused. The other way: the same read outside the bounds, without the referee, returns a byte."""
    peek = ("import numpy as np\nfrom numba import njit\n"
            "@njit(boundscheck=False)\ndef peek(w, i):\n    return w[i]\n"
            "anchor = bytes(64)\nview = np.frombuffer(anchor, np.uint8)\n"
            "got = int(peek(view, np.uint64(64 + 8)))\n")
    plain = subprocess.run([sys.executable, "-c", peek], env={**os.environ, "PYTHONPATH": str(ROOT)},
                           timeout=300, capture_output=True, text=True)
    assert plain.returncode == 0, "without the referee, Numba reads past the array: " + plain.stderr[-500:]
    got = _run(peek)
    assert got["cell"].startswith("IndexError"), got
    got = _run("import numba\nfor m in [numba.config]:\n    m.BOUNDSCHECK = 0\n")
    _refused(got, "bounds checks")
    got = _run("import numba\nnumba.config.__class__ = type(numba)\n")
    _refused(got, "bounds checks")
    got = _run("import numpy as np\nfrom numba import njit\n@njit\ndef total(a):\n    s = 0.0\n"
               "    for i in range(a.shape[0]):\n        s += a[i]\n    return s\nassert total(np.ones(5)) == 5.0\n")
    _ran_clean(got)


def test_code_from_a_folder_of_installed_packages_on_the_path_is_the_installs(tmp_path):
    """Wrong answers caught: a package in a site folder that the install put on the path as the kernel started (a
    venv layered over a machine's packages) refused as code from outside the install; and, the other way, a folder of
    the trainee's working folder named ``site-packages`` and put on the path by the cell, or a site folder that was not
    on the path when the kernel started, counted as the install."""
    layered = tmp_path / "machine" / "site-packages"
    layered.mkdir(parents=True)
    (layered / "layered_pkg.py").write_text("VALUE = 42\n")
    work = tmp_path / "work"
    (work / "site-packages").mkdir(parents=True)
    (work / "site-packages" / "planted_pkg.py").write_text("VALUE = 1\n")
    late = tmp_path / "late" / "site-packages"
    late.mkdir(parents=True)
    (late / "late_pkg.py").write_text("VALUE = 2\n")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(layered)])}
    _ran_clean(_run("import layered_pkg\nassert layered_pkg.VALUE == 42\n", cwd=work, env=env))
    got = _run("import sys\nsys.path.insert(0, 'site-packages')\nimport planted_pkg\n", cwd=work, env=env)
    _refused(got, "importing code from")
    got = _run(f"import sys\nsys.path.insert(0, {str(late)!r})\nimport late_pkg\n", cwd=work, env=env)
    _refused(got, "importing code from")
