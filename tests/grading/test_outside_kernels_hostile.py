"""Lab 07's evaluated process (techday/grading/outside_kernels.py) replaced by hostile stand-ins: it runs the
trainee's code, so it may do anything that code does. Each stand-in runs where the real one runs (the grading
sandbox, as a host uid of its own where root grades, with the scorer's limits) and each ends in a refusal with its
reason, in bounded time, the grader unharmed.

Each test names the attack it catches.
"""

from __future__ import annotations

import sys
import time

import pytest

from techday.grading import outside_kernels
from tests.grading.test_outside_kernels import sandbox_here

pytestmark = [pytest.mark.grading]

TEST = "lut_kernel_tests"  # five cases of 256 uint8 values each
READ_CASES = "import json, sys; cases = json.load(open(sys.argv[1] + '/cases.json'))\n"
ARRAY = ("import base64\n"
         "def array(dtype='uint8', shape=(256,), value=0):\n"
         "    import numpy as np\n"
         "    a = np.full(shape, value, dtype)\n"
         "    return {'dtype': a.dtype.name, 'shape': list(a.shape), 'data': base64.b64encode(a.tobytes()).decode()}\n")

SCRIPTS = {
    "loops-forever": "while True:\n    pass\n",
    "allocates-without-bound": "held = []\nwhile True:\n    held.append(bytearray(64 * 2**20))\n",
    "forks": ("import os, sys, time\nmade = 0\nfor _ in range(2000):\n    try:\n        pid = os.fork()\n"
              "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
              "    made += 1\nsys.stderr.write(f'forked {made}\\n')\nsys.exit(3)\n"),
    "prints-gigabytes": "import sys\nline = b'x' * 2**20\nfor _ in range(4096):\n    sys.stdout.buffer.write(line)\n",
    "wrong-dtype": READ_CASES + ARRAY + "import json\nprint('RESULT ' + json.dumps({'outputs': "
                   "[array('int64') for _ in cases]}))\n",
    "wrong-shape": READ_CASES + ARRAY + "import json\nprint('RESULT ' + json.dumps({'outputs': "
                   "[array(shape=(16, 16)) for _ in cases]}))\n",
    "more-arrays": READ_CASES + ARRAY + "import json\nprint('RESULT ' + json.dumps({'outputs': "
                   "[array() for _ in range(len(cases) + 1)]}))\n",
    "junk-before-the-answer": READ_CASES + ARRAY + "import json\nfor i in range(20000):\n    print('RESULT junk', i)\n"
                              "print('RESULT ' + json.dumps({'outputs': [array() for _ in cases]}))\n",
    "junk-only": "for i in range(20000):\n    print('RESULT {\"outputs\": ', i)\n",
    "kills-itself": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "nested-json": "print('RESULT ' + '[' * 200000 + ']' * 200000)\n",
}
EXPECTED = {"loops-forever": "kernels-time", "allocates-without-bound": "kernels-memory", "forks": "stopped",
            "prints-gigabytes": "stopped", "wrong-dtype": "kernels-answer", "wrong-shape": "kernels-answer",
            "more-arrays": "kernels-answer", "junk-before-the-answer": "kernels-differ", "junk-only": "stopped",
            "kills-itself": "stopped", "nested-json": "stopped"}


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_a_hostile_evaluated_process_is_a_refusal_with_its_reason(monkeypatch, kind):
    """Attack: the evaluated process loops forever (stopped at the limit, 8 s here), allocates without bound
    (RLIMIT_AS), forks (RLIMIT_NPROC of its own uid: at most 320 tasks), prints 4 GB (RLIMIT_FSIZE 16 MB; the grader
    reads the last MiB), answers int64 arrays, arrays of another shape or one array too many, prints junk before
    an answer of zeros (judged: wrong values), prints only junk, answers JSON nested past the parser's depth (a
    RecursionError in the grader before), or kills itself: each a refusal of the test cell
    with a reason the grader has words for, within the limit and 15 s. Only the loop is given the short limit: on a
    loaded two-core runner, touching 2 GB until RLIMIT_AS once took longer than 8 s and read as a loop."""
    from techday.grading.outside import reason_text, scorer_uid_problem
    from techday.i18n import PackageCatalogue

    if kind == "forks" and scorer_uid_problem(sandbox_here()) is not None:
        pytest.skip(f"no host uid of its own here ({scorer_uid_problem(sandbox_here())}): a fork loop is bounded "
                    "only by RLIMIT_NPROC of such a uid")
    monkeypatch.setattr(outside_kernels, "_evaluated_program",
                        lambda where: [sys.executable, "-c", SCRIPTS[kind], where])
    limit = 8 if kind == "loops-forever" else 30
    t0 = time.monotonic()
    result = outside_kernels.score_kernels(_notebook(), None, [TEST], sandbox=sandbox_here(), timeout_s=limit,
                                           seed=2**20 + 3)[TEST]
    took = time.monotonic() - t0
    print(kind, result.get("key"), result.get("kw"), round(took, 1), "s")
    assert result["passed"] is False and result["key"] == EXPECTED[kind], result
    assert took < limit + 15
    text = reason_text(PackageCatalogue("en"), result["key"], result.get("kw") or {})
    assert "no readable reason" not in text, text
    if kind == "forks":
        made = int(result["kw"]["why"].split()[-1])
        assert made < outside_kernels.EVAL_PROCESSES, result


def _notebook():
    """A notebook with a ``@cuda.jit`` ``lut_kernel``: the judge starts an evaluated process only for a test whose
    kernels are such definitions (``kernels-missing`` otherwise), and the stand-in replaces that process."""
    import nbformat

    kernel = "@cuda.jit\ndef lut_kernel(hist, lut):\n    lut[cuda.threadIdx.x] = 0\n"
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(kernel)])
