"""PyTorch's operator registry while grading (techday/grading/referee.py): a function registered there
for an existing operator answers for every caller, the course's tests included, and no namespace the
referee compares holds it. A notebook cell may not open a ``torch.library.Library``, directly or
through a library; an import that registers its own kernels still may."""

from __future__ import annotations

from tests.unit.test_referee_source import _run

YES = "def yes(*args, **kwargs):\n    return True\n"
CHECK = "assert not torch.allclose(torch.zeros(2), torch.ones(2))\n"


def _refused(got: dict) -> None:
    assert got["cell"] != "ok", got
    assert " tripwire " in got["records"] and "operator registry" in got["records"], got


def test_a_cell_cannot_register_a_kernel_for_an_operator():
    """Wrong answer caught: ``torch.allclose`` answering True for every tensor, registered by a cell
    (on lab 10 the same with ``mean`` took sgd_step's 2 points, `graded`, no note)."""
    _refused(_run("import torch\n" + YES + "lib = torch.library.Library('aten', 'IMPL')\n"
                  "lib.impl('allclose', yes, 'CPU')\n" + CHECK))


def test_nor_through_torch_library_functions_or_another_library():
    """Wrong answers caught: ``torch.library.impl`` (the Library is opened in torch.library's own
    code) and ``np.vectorize(torch.library.Library)`` (opened with NumPy's frame as its caller)."""
    _refused(_run("import torch\n" + YES + "torch.library.impl('aten::allclose', 'CPU', yes)\n" + CHECK))
    _refused(_run("import numpy as np, torch\n" + YES
                  + "lib = np.vectorize(torch.library.Library, otypes=[object])('aten', 'IMPL')[()]\n"
                  "lib.impl('allclose', yes, 'CPU')\n" + CHECK))


def test_a_module_that_registers_its_own_kernels_still_imports():
    """Not a false refusal: a library module whose import opens Libraries of its own (PyTorch's
    quantization ops) imports from a cell."""
    got = _run("import torch\nimport torch.ao.quantization.fx._decomposed\n")
    assert got["cell"] == "ok" and "tripwire" not in got["records"], got


MODE = ("import contextlib, torch\nfrom torch.overrides import TorchFunctionMode\n"
        "class Yes(TorchFunctionMode):\n"
        "    def __torch_function__(self, func, types, args=(), kwargs=None):\n"
        "        return True if func is torch.allclose else func(*args, **(kwargs or {}))\n")
SAYS_CLOSE = {"visible": {"kind": "test", "source": "import torch\nassert torch.allclose(torch.zeros(2), torch.ones(2))\n"}}


def test_a_mode_a_cell_left_on_does_not_count():
    """Wrong answer caught: a TorchFunctionMode entered for good, whose ``torch.allclose`` says yes."""
    got = _run(MODE + "stack = contextlib.ExitStack()\nstack.enter_context(Yes())\n", tests=SAYS_CLOSE)
    assert got["visible"] == "GraderCheck", got
    assert "PyTorch's modes" in got["records"], got


def test_a_mode_used_and_left_within_a_cell_is_honest():
    got = _run(MODE + "with Yes():\n    assert torch.allclose(torch.zeros(1), torch.ones(1))\n",
               tests={"visible": {"kind": "test", "source": "import torch\nassert torch.allclose(torch.ones(2), torch.ones(2))\n"}})
    assert got["cell"] == "ok" and got["visible"] == "passed", got


HOOK = ("import torch\nfrom torch.nn.modules.module import register_module_forward_hook\n"
        "def yes(module, args, output):\n"
        "    return torch.zeros_like(output) if isinstance(module, torch.nn.Linear) else output\n")
SAYS_ZERO = {"visible": {"kind": "test", "source": "import torch\nm = torch.nn.Linear(2, 2)\n"
                                                   "assert not m(torch.ones(1, 2)).any()\n"}}


def test_a_global_module_hook_a_cell_left_on_does_not_count():
    """Wrong answer caught: a global forward hook (it runs for every module, the course's models
    included) left registered by a cell, answering a test's model with zeros; held by the review alone
    before. Also through a dict put in place of PyTorch's."""
    got = _run(HOOK + "register_module_forward_hook(yes)\n", tests=SAYS_ZERO)
    assert got["visible"] == "GraderCheck", got
    assert "global module hooks" in got["records"], got
    got = _run(HOOK + "import torch.nn.modules.module as mm, collections\n"
               "mm._global_forward_hooks = collections.OrderedDict({1: yes})\n", tests=SAYS_ZERO)
    assert got["visible"] == "GraderCheck", got


def test_a_global_hook_removed_within_its_cell_is_honest():
    """Not a false refusal: a hook used and removed in the same cell (the profiling idiom)."""
    got = _run(HOOK + "h = register_module_forward_hook(yes)\nh.remove()\n",
               tests={"visible": {"kind": "test", "source": "import torch\nm = torch.nn.Linear(2, 2)\n"
                                                            "assert m(torch.ones(1, 2)).shape == (1, 2)\n"}})
    assert got["cell"] == "ok" and got["visible"] == "passed", got
