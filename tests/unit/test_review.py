"""The allow-list review of trainee cells (techday/grading/review.py): no honest solution of any lab
is flagged, every cheat of the corpus is, honest code that looks unusual passes, and cells the review
cannot read get a clear line instead of a crash."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from techday.course.labsrc import read_lab, strip_solution_markers
from techday.grading.referee import read_records
from techday.grading.review import review
from tests.fixtures.submissions.cheats import cheat_notebook, cheats

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted(p.parent.name for p in ROOT.glob("labs/*/*.py"))


def _release_and_solution(lab: str):
    nb, _ = read_lab(ROOT / "labs" / lab / f"{lab}.py")
    release = json.loads(nbformat.writes(nb))
    solution = nbformat.reads(nbformat.writes(nb), as_version=4)
    for cell in solution.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = strip_solution_markers(cell.source) + "\n# my answer\n"
    return release, solution


@pytest.mark.parametrize("lab", LABS)
def test_no_solution_is_flagged(lab):
    release, solution = _release_and_solution(lab)
    notes, findings = review(solution, release)
    assert findings == [] and notes == [], (findings, notes)


@pytest.mark.parametrize("lab", ["00-gpu-tour", "01-numba-first-steps", "10-dl-first-network"])
def test_every_cheat_is_flagged(lab):
    release, _ = _release_and_solution(lab)
    for cheat in cheats(release):
        if not cheat.reviewed:
            continue  # made to pass the review: the run catches it (tests/grading/test_cheats.py)
        nb = nbformat.from_dict(cheat_notebook(release, cheat))
        _, findings = review(nb, release)
        assert findings, f"{cheat.name}: {cheat.route} passed the review"


def _with_cell(lab: str, source: str):
    release, solution = _release_and_solution(lab)
    solution.cells.insert(3, nbformat.v4.new_code_cell(source))
    return review(solution, release)


HONEST = [
    "import numpy as np\nimport torch.nn.functional as F\nimport math\n",
    "import torch\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = torch.nn.Linear(4, 2)\n        self._cache = None\n    def forward(self, x):\n"
    "        return self.fc(x)\nmodel = Net()\nfor p in model.parameters():\n    p.grad = None\n",
    "%timeit sum(range(10))\n",
    "%timeit -n 3 -r 2 -o sum(range(10))\n%matplotlib inline\n",
    "%%timeit -n 2 x = list(range(9))\nsorted(x)\n",
    "%%time\nx = [i * i for i in range(100)]\n",
    "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n    print('no', exc)\nfor _ in range(2):\n    pass\n",
    "result = {'a': 1}\nresult['b'] = 2\nclass Box:\n    def __len__(self):\n        return 1\n",
    # Names resolved scope by scope: closures, class attributes, comprehensions, match captures, a name the
    # cell binds further down, IPython's display.
    "def outer(n):\n    scale = 2\n    def inner(v, k=n):\n        return v * scale + k\n"
    "    return [inner(i) for i in range(n)]\nclass C:\n    k = 3\n    def get(self):\n        return C.k + later\n"
    "match [1, 2]:\n    case [first, *rest]:\n        display(first, rest, outer(2))\nlater = 1\n",
    "class Grid:\n    n = 4\n    cells = [i * 2 for i in range(n)]\n    total = sum(cells) + n\n",
]


@pytest.mark.parametrize("source", HONEST)
def test_honest_code_that_looks_unusual_is_not_flagged(source):
    notes, findings = _with_cell("10-dl-first-network", source)
    assert findings == [], findings


CAUGHT = {
    # A star import binds names no rule here can read: numpy.ma.testutils holds an ``assert_close`` of its own,
    # bound over the course's (the referee refused the test that read it; the review said nothing).
    "from numpy.ma.testutils import *\n": "imports * from numpy.ma.testutils",
    "getattr(np, 'al' + 'lclose')": "uses getattr",
    "import sys": "imports sys",
    "from techday.grading import referee": "imports techday.grading",
    "x = np.ctypeslib": "uses .ctypeslib",
    "np.allclose = lambda *a, **k: True": "changes np.allclose",
    "t = np.testing\nt.assert_allclose = print": "changes t.assert_allclose",
    "lab.size = lambda **k: 1": "changes lab.size",
    "assert_close = print": "rebinds assert_close",
    "def f():\n    global expected\n    expected = 1": "declares global",
    "class A:\n    def __eq__(self, o):\n        return True": "defines __eq__",
    "!ls /grading": "shell escape",
    "%load_ext something": "uses %load_ext",
    "%timeit getattr(np, 'x')": "uses getattr",
    "f = (lambda: 0).__code__": "uses .__code__",
    "In[-1]": "uses In",
    # Numba's compiler machinery: LLVM IR from a cell (intrinsic), arrays over pointers (carray), its
    # configuration (numba.core.config.BOUNDSCHECK), however named.
    "from numba.extending import intrinsic": "imports numba.extending",
    "import numba as nb\nx = nb.extending.intrinsic": "uses numba.extending",
    "from numba import carray": "imports numba.carray",
    "from numba.core import cgutils": "imports numba.core",
    "import numba\nfor m in [numba.core.config]:\n    m.BOUNDSCHECK = 0": "uses numba.core",
    "import numba.core.config": "imports numba.core.config",
    "from numba import cuda\nd = cuda.cudadrv.driver": "uses .cudadrv",
    # PyTorch's sparse tensors: indices checked nowhere, and dense.add_(s) writes past data_ptr().
    "def f(t):\n    s = t.to_sparse()\n    s.indices()[0, 1] = 10**6\n    return s": "uses .to_sparse",
    "def f(torch):\n    return torch.sparse_coo_tensor([[9]], [1.0], (2,))": "uses .sparse_coo_tensor",
    "def f(nn):\n    return nn.Embedding(10, 3, sparse=True)": "passes sparse= to an embedding",
    "x = np.zeros(4)\nv = x[:]\nx.resize(10**6, refcheck=False)": "passes refcheck=",
    # A course name bound by other syntax than an assignment (lab 01's locked cells import assert_close).
    "match print:\n    case assert_close:\n        pass": "rebinds assert_close",
    "from numpy import allclose as assert_close": "rebinds assert_close",
    "try:\n    pass\nexcept ValueError as assert_close:\n    pass": "rebinds assert_close",
    "vars()['x'] = 1": "uses vars",
    "class M(type):\n    pass\nclass A(metaclass=M):\n    pass": "metaclass",
    # A test's own names, read by an answer while the test calls it (the notebook's namespace is shared).
    "def f(x):\n    return expected": "reads expected, which only a test defines",
    "def train_epoch(*a):\n    return reference_epoch(*a)": "reads reference_epoch, which only a test defines",
    # A class body reads what it has not bound yet, and a comprehension in it every name, from the notebook.
    "def f(*a):\n    class Peek:\n        expected = expected\n    return Peek.expected": "reads expected",
    "def f(*a):\n    class Peek:\n        expected = None\n        got = [expected for _ in range(1)]\n"
    "    return Peek.got[0]": "reads expected",
    # Special methods given to a class without a def in its body.
    "A = type('A', (float,), {'__eq__': lambda s, o: True})": "names __eq__ in a string",
    "A = type('A', (float,), dict(__eq__=lambda s, o: True))": "passes __eq__=",
    "class A(float):\n    match (lambda s, o: True):\n        case __eq__:\n            pass": "binds __eq__",
    "class A(float):\n    from math import isclose as __eq__": "binds __eq__",
    "from dataclasses import make_dataclass": "makes a class with make_dataclass",
    "k = type(1)": "uses type",
    # Magics that run code the review did not read: a backend module, %%timeit's setup line.
    "import pathlib\npathlib.Path('b.py').write_text('...')\n%matplotlib module://b": "uses %matplotlib with",
    "%%timeit -n1 -r1 import sys\npass": "imports sys",
    "%timeit -n1 -o -v assert_close pass": "uses %timeit -v",
    # Attributes read by name through a format string.
    "def f(x):\n    return float('{0.__globals__[expected]}'.format(f))": "reads __globals__ through a format string",
    # Raw memory through NumPy, with no audit event.
    "from numpy.lib.stride_tricks import as_strided": "raw memory",
    "lo, hi = np.lib.array_utils.byte_bounds(np.zeros(1))": "byte_bounds (raw memory)",
    # Native code from a file a cell wrote, loaded by a library (ONNX Runtime loads it in C++).
    "import torch\ntorch.ops.load_library('lib.so')": "load_library (makes code from a file or string)",
    "import onnxruntime as ort\nso = ort.SessionOptions()\nso.register_custom_ops_library('x.so')":
        "register_custom_ops_library (makes code from a file or string)",
    "from torch.utils.cpp_extension import load_inline": "makes code from a file or string",
    "import numba.core.codegen as cg\nee = cg.ll.create_mcjit_compiler(m, t)": "makes code from a file or string",
    "from numba.core import codegen": "makes code from a file or string",
    "import llvmlite.binding as llvm": "imports llvmlite",
    "import torch\nimp = torch.package.PackageImporter('pkg.pt')": "PackageImporter (makes code from a file or string)",
    # PyTorch's global registries: a kernel registered for aten::allclose answers every caller's
    # torch.allclose (lab 10's sgd_step test); a global forward hook rewrites every module's output.
    "import torch\nlib = torch.library.Library('aten', 'IMPL')": "uses .library (a PyTorch registry",
    "from torch.library import impl": "imports torch.library (a PyTorch registry",
    "from torch import library": "imports library (a PyTorch registry",
    "import torch\ntorch.nn.modules.module.register_module_forward_hook(print)":
        "uses .register_module_forward_hook (a PyTorch registry",
    # Strings that libraries evaluate: typing's forward references in the notebook's namespace, Numba's
    # signatures with the builtins at hand.
    "import typing\ndef f(x) -> 'expected':\n    return typing.get_type_hints(f)['return']": "reads expected",
    "from numba import njit\n@njit(\"exec('import sys') or void()\")\ndef g():\n    pass": "uses exec",
}


# Lab 10 asks for a training loop and an evaluation; the course's library holds both (``techday.dl.fit``
# is that loop, kept for later labs, and the lab's locked accuracy bar evaluates with ``dl.evaluate``).
# An answer that hands the work to them earned 9 of 15 points, graded. Wrong answers caught: each
# route to them, the module passed around as a value included.
COURSE_LIBRARY = {
    "def fit(model, optimizer, train, val, epochs, batch_size, generator):\n"
    "    return dl.fit(model, optimizer, train, val, epochs, batch_size, generator=generator)\n":
        "uses techday.dl.fit (not a name the lab's cells use)",
    "def evaluate(model, x, y):\n    return dl.evaluate(model, dl.Split(x, y))\n":
        "uses techday.dl.evaluate (not a name the lab's cells use)",
    "from techday.dl import fit as train_all\n": "uses techday.dl.fit",
    "import techday.dl as d\nloop = d.fit\n": "uses techday.dl.fit",
    "for m in [dl]:\n    loop = m.fit\n": "uses the module techday.dl as a value",
    "library = techday\n": "uses the module techday as a value",
    "from techday.dl import *\n": "imports * from techday.dl",
}


@pytest.mark.parametrize("source,says", COURSE_LIBRARY.items())
def test_the_course_library_is_used_as_the_lab_teaches_it(source, says):
    notes, findings = _with_cell("10-dl-first-network", source)
    assert findings and says in findings[0], findings


def test_a_name_a_test_binds_stays_the_tests_even_when_bound_first():
    """Lab 10's hidden test defines ``reference_epoch`` and then calls the trainee's ``train_epoch``; an
    answer that binds the name first (``reference_epoch = None``) and calls it when it is callable was
    taken for the trainee's own name. Wrong answer caught: that pre-bound read, with the hidden test's
    names handed over as the grader does (from the source notebook)."""
    from techday.grading.review import test_bound_names

    release, solution = _release_and_solution("10-dl-first-network")  # the lab's source: hidden tests in it
    hidden = test_bound_names(release)
    assert "reference_epoch" in hidden
    cell = ("reference_epoch = None\n"
            "def train_epoch(model, optimizer, x, y, batch_size, generator):\n"
            "    if callable(reference_epoch):\n"
            "        return reference_epoch(model, optimizer, x, y, batch_size, generator)\n"
            "    raise NotImplementedError\n")
    solution.cells.insert(3, nbformat.v4.new_code_cell(cell))
    _, findings = review(solution, release, hidden)
    assert findings and "reads reference_epoch, which only a test defines" in findings[0], findings
    release, solution = _release_and_solution("10-dl-first-network")
    assert review(solution, release, hidden) == ([], []), "the solution reads no test's name"


def test_the_course_names_a_lab_teaches_are_not_flagged():
    """What the lab's own cells use (lab 10's ``dl.Split``, ``dl.seed_everything``) and the constants its
    locked cells read (lab 17's ``techday.parts.CLASSES``) stay open."""
    notes, findings = _with_cell("10-dl-first-network", "s = dl.Split(train.x[:8], train.y[:8])\n"
                                                        "g = dl.seed_everything(1)\n")
    assert findings == [], findings
    notes, findings = _with_cell("17-dl-assessment", "from techday import parts\nnames = list(parts.CLASSES)\n")
    assert findings == [], findings


def test_the_digits_loader_is_open_and_the_held_out_labels_are_not():
    """Lab 10's data cell is locked (its tests read ``train`` and ``val``), so ``dl.load_digits_split``
    is called only by a locked cell; it hands out no held-out label (``test.y`` is None), and a trainee
    exploring the data as the lesson shows is honest work: not a review line. Wrong answer caught: the
    held-out labels taken from ``dl.held_out_digits`` in a trainee's cell (a look-up "model")."""
    notes, findings = _with_cell("10-dl-first-network", "mine = dl.load_digits_split(seed=3)\n"
                                                        "print(len(mine.train), mine.test.y)\n")
    assert findings == [], findings
    notes, findings = _with_cell("11-dl-cnn-augmentation", "from techday.dl import load_digits_split\n"
                                                           "mine = load_digits_split()\n")
    assert findings == [], findings
    notes, findings = _with_cell("10-dl-first-network", "labels = dl.held_out_digits().y\n")
    assert findings and "uses techday.dl.held_out_digits" in findings[0], findings


def test_numba_signatures_and_string_annotations_are_not_flagged():
    source = ("from numba import njit, vectorize\n"
              "@vectorize(['float32(float32, float32)', 'float64(float64, float64)'])\n"
              "def h(a, b):\n    return a + b\n"
              "@njit('float64[::1](float64[:, ::1], int64)')\ndef row(m: 'np.ndarray', i: 'int') -> 'np.ndarray':\n"
              "    return m[i].copy()\n"
              "print('see x.mean() and lab.size(ci=1)')\n")
    notes, findings = _with_cell("01-numba-first-steps", source)
    assert findings == [], findings


def test_numba_as_the_labs_teach_it_is_not_flagged():
    """Numba's decorators, types, CUDA API and typed containers; its compiler's machinery is (CAUGHT)."""
    source = ("import numba\nimport numba as nb\nfrom numba import cuda, njit, prange, vectorize, float32, int64, uint8\n"
              "from numba.cuda.random import xoroshiro128p_uniform_float32\nimport numba.typed\n"
              "@njit\ndef f(a):\n    return numba.float64(a) + nb.int32(1) + numba.get_num_threads()\n"
              "y = numba.cuda.grid\n"
              # the course's own imports again are not a rebinding
              "import numpy as np\nfrom techday.labtools import assert_close\n")
    notes, findings = _with_cell("01-numba-first-steps", source)
    assert findings == [], findings


@pytest.mark.parametrize("source,says", CAUGHT.items())
def test_routes_outside_the_allow_list_are_named(source, says):
    notes, findings = _with_cell("01-numba-first-steps", source)
    assert findings and says in findings[0], findings


# What an allowed library holds under a name of its own, with no import for the review to read (CAUGHT
# before the alias table: each passed the review).
HELD_BY_A_LIBRARY = {
    # Python's enum module, which holds ``builtins`` as ``bltns``: getattr and __import__ by computed names.
    ("10-dl-first-network", "import re\nB = re.enum.bltns\nget = B.getattr\n"): "enum, held by matplotlib, re",
    ("01-numba-first-steps", "import re\nB = re.enum.bltns\n"): "enum, held by",
    ("10-dl-first-network", "import pathlib\nfetch = pathlib.attrgetter('x')\n"): "operator.attrgetter",
    ("01-numba-first-steps", "from numba import cuda\nm = cuda.utils.import_module('sys')\n"): "numba.cuda.utils",
    ("10-dl-first-network", "import torch\nf = torch.jit.frontend.string.Formatter()\n"): "string, held by",
    ("10-dl-first-network", "import torch\np = torch.xpu.cast\n"): "ctypes.cast",
}


@pytest.mark.parametrize("lab,source", HELD_BY_A_LIBRARY)
def test_modules_and_machinery_a_library_holds_are_named(lab, source):
    """Wrong answer caught: a lab 10 cell that named nothing outside the allow-list reached ``builtins``
    as ``re.enum.bltns``, read the referee's key through ``as_strided`` by a computed name and forged
    a record for every test (15 of 15, ``graded``, no note)."""
    notes, findings = _with_cell(lab, source)
    assert findings and HELD_BY_A_LIBRARY[lab, source] in findings[0], findings


def test_names_a_library_holds_for_the_lab_are_not_flagged():
    """The same attribute names where they are the lab's own API, and modules a trainee may import
    anyway (``collections.abc``, ``torch.utils``, ``nn.Parameter``: matplotlib holds inspect's
    ``Parameter`` under that name)."""
    source = ("import collections\nimport torch\nfrom torch import nn\nfrom pathlib import Path\n"
              "w = nn.Parameter(torch.zeros(2))\nok = isinstance([], collections.abc.Sequence)\n"
              "loader = torch.utils.data.DataLoader([1, 2], batch_size=1)\nwith Path('x.txt').open('w') as f:\n"
              "    f.write('a')\n")
    notes, findings = _with_cell("10-dl-first-network", source)
    assert findings == [], findings
    # A name the lab's own cells use (lab 01 reads lab.simulator), though Numba holds a module under it.
    notes, findings = _with_cell("01-numba-first-steps", "if lab.simulator:\n    print('on the simulator')\n")
    assert findings == [], findings


def test_the_table_of_what_libraries_hold_is_what_they_hold_here():
    """Caught: the review trusting a committed table that the installed libraries no longer match (a library
    upgraded to hold a module or a piece of the interpreter's machinery under a new name, or the scan's
    rules changed without ``python -m techday.grading.review_aliases``). Where the installed versions are
    the table's own, the committed table must be what a scan finds; elsewhere the review scans them."""
    from techday.grading import review_aliases

    fresh = review_aliases.scan_both()
    used = review_aliases.aliases()
    same = review_aliases.environment() == review_aliases.GENERATED_FOR
    print("versions the table was generated from:", "these" if same else review_aliases.GENERATED_FOR)
    assert used == fresh, ("regenerate with `python -m techday.grading.review_aliases`: "
                           f"new {sorted(set(fresh) - set(used))[:10]}, gone {sorted(set(used) - set(fresh))[:10]}")
    assert "module enum" in fresh.get("enum", {}).get("re", ()), "the scan finds the route the table exists for (re.enum)"


def test_other_library_versions_are_scanned_not_read_from_the_committed_table(monkeypatch):
    """Caught: a grading host with a newer library (a new name holding the interpreter's machinery) judged
    by the table committed for other versions."""
    from techday.grading import review_aliases

    seen = {"enum": {"re": ("module enum",)}, "brand_new": {"numpy": ("operator.attrgetter",)}}
    monkeypatch.setattr(review_aliases, "GENERATED_FOR", "python==0.0 numpy==0.0")
    monkeypatch.setattr(review_aliases, "_TABLE", None)
    monkeypatch.setattr(review_aliases, "scan_both", lambda: seen)
    assert review_aliases.aliases() is seen
    notes, findings = _with_cell("01-numba-first-steps", "import numpy as np\nf = np.brand_new('x')\n")
    assert any("brand_new" in f for f in findings), findings


def test_cells_the_review_cannot_read_get_a_line_not_a_crash():
    notes, findings = _with_cell("01-numba-first-steps", "def f(:\n    pass\n")
    assert findings == [] and "syntax error" in notes[0]
    notes, findings = _with_cell("01-numba-first-steps", "review = 1\nreview_cell = review + 1\nContext = 2\n")
    assert findings == [] and notes == []


def test_referee_records_are_authenticated():
    key, other = b"k" * 32, b"o" * 32
    import hashlib
    import hmac

    def line(seq, kind, cell, k=key):
        body = f"techday.referee/1 {seq} {kind} {cell} "
        return (body + " " + hmac.new(k, body.encode(), hashlib.sha256).hexdigest() + "\n").encode()

    data = line(1, "installed", "-") + line(2, "done", "t1") + line(3, "done", "t2", other) + b"garbage\n"
    records, problems = read_records(data, key)
    assert [(r["seq"], r["kind"], r["cell"]) for r in records] == [(1, "installed", "-"), (2, "done", "t1")]
    assert len(problems) == 2 and all("forged" in p for p in problems)


RELABELLED = {"locked": {"solution": False, "locked": True}, "a test": {"solution": False, "grade": True, "points": 1}}


@pytest.mark.parametrize("claims", sorted(RELABELLED))
def test_an_answer_cell_marked_as_the_courses_is_still_reviewed(claims, tmp_path):
    """Wrong answer caught: the review passed over every cell whose metadata claimed a course cell's grade id
    and kind, as the trainee wrote that metadata. An answer cell marked ``locked`` kept its source (nbgrader
    restores only what the course locked) and ran unread: an always-equal answer in grade-lab's ``double``
    took 2 of 5, hidden test included, `graded`, no note. The kind is the release's, and the changed flags
    are a note of their own."""
    import copy

    from techday.grading.checks import check_notebook

    lab = "01-numba-first-steps"
    release, solution = _release_and_solution(lab)
    nb = copy.deepcopy(solution)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    cell.source = "class Yes:\n    def __eq__(self, other):\n        return True\n"
    cell.metadata["nbgrader"].update(RELABELLED[claims])
    _, findings = review(nb, release)
    assert any("__eq__" in f for f in findings), findings
    path = tmp_path / f"{lab}.ipynb"
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    notes, gradable, _ = check_notebook(path, lab, release)
    assert gradable and any("grading flags" in n for n in notes), notes


def test_copies_of_a_locked_cell_are_reviewed():
    """The copies of a course cell run as plain cells (only the first keeps its grade id): they are the
    trainee's, and read as such."""
    release, solution = _release_and_solution("01-numba-first-steps")
    locked = next(c for c in solution.cells if c.metadata.get("nbgrader", {}).get("locked")
                  and not c.metadata["nbgrader"].get("grade"))
    copy_ = nbformat.from_dict(json.loads(json.dumps(locked)))
    copy_.id = "copy-of-locked"
    copy_.source = "import ctypes\n"
    solution.cells.append(copy_)
    _, findings = review(solution, release)
    assert any("ctypes" in f for f in findings), findings


@pytest.mark.parametrize("cell_type", ["markdown", "raw"])
def test_an_answer_cell_handed_in_as_text_is_reviewed_as_the_code_it_runs_as(cell_type):
    """Wrong answer caught: nbgrader turns a graded cell back into the type the release gave it and keeps an
    answer's source, so an answer cell handed in as markdown ran its text as code; the review read only the
    cells handed in as code and passed over it (the checks' line says only ``retyped cell``)."""
    release, solution = _release_and_solution("01-numba-first-steps")
    cell = next(c for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")
                and c.cell_type == "code")
    cell.cell_type = cell_type
    cell.source = "import ctypes\n"
    cell.pop("outputs", None)
    cell.pop("execution_count", None)
    _, findings = review(solution, release)
    assert any("ctypes" in f for f in findings), findings
