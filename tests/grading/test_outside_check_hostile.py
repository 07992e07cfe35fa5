"""Lab 17's outside check (techday/grading/outside.py) against files made to slip past its allow-list:
parts of an ONNX file the allow-list did not walk, a second standard opset that the check and the runtime
read differently, a sparse constant that is small in the file and huge once served. Each is refused by
``validate_onnx`` with its reason, before anything serves it.

Each test names the attack it catches.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.grading.test_outside_check import identity_nodes, model_bytes, refusal

pytestmark = [pytest.mark.grading]


def base_model():
    import onnx

    nodes, inits = identity_nodes()
    return onnx.load_from_string(model_bytes(nodes, inits))


def test_a_training_graph_with_any_operator_is_refused():
    """Attack: ``ModelProto.training_info`` holds graphs (an initialisation and an algorithm) the allow-list
    never walked: any operator of any domain rode along in a file that was accepted. The grader serves an
    inference graph only."""
    from onnx import helper

    model = base_model()
    step = model.training_info.add()
    step.algorithm.CopyFrom(helper.make_graph([helper.make_node("Evil", ["a"], ["b"], domain="com.evil")], "alg",
                                              [], []))
    assert refusal(model.SerializeToString()) == "training"


def test_two_standard_opsets_are_refused():
    """Attack: ``""`` at opset 17 and its alias ``ai.onnx`` at 23 in one file: the allow-list checked each
    operator against the higher, the runtime may resolve it against the other (another operator's
    version, or one the check never saw)."""
    model = base_model()
    model.opset_import.add(domain="ai.onnx", version=23)
    assert refusal(model.SerializeToString()) == "opset"


def test_a_sparse_constant_counts_at_its_dense_size():
    """Attack: a ``Constant`` whose ``sparse_value`` holds one value of a tensor of 10^9 elements: a few bytes
    in the file (the weights bound saw those), 4 GB once the runtime makes it dense."""
    from onnx import helper, numpy_helper

    model = base_model()
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.ones(1, np.float32), "v"),
                                       numpy_helper.from_array(np.array([0], np.int64), "i"), [10**9])
    model.graph.node.append(helper.make_node("Constant", [], ["c"], sparse_value=sparse))
    assert refusal(model.SerializeToString()) == "weights"


def test_the_honest_shape_of_file_is_still_served():
    """Kept: the identity model, one standard opset, no training graph, passes the allow-list."""
    from techday.grading.outside import validate_onnx

    assert validate_onnx(base_model().SerializeToString()).graph.name == "g"


@pytest.mark.parametrize("ending", ["abort", "half-line", "unknown-reason"])
def test_a_scorer_that_dies_or_answers_nonsense_is_a_refusal(monkeypatch, tmp_path, ending):
    """Attack: a file that crashes ONNX Runtime (an abort half-way through the answer) or, past a flaw in it,
    a scorer that answers a reason of its own: the grader gives a refusal with a reason it has words for,
    never a crash or a pass. The scorer is replaced by a stand-in that ends that way (bounded: 30 s)."""
    import sys

    from techday.grading import outside
    from techday.i18n import PackageCatalogue

    script = {"abort": "import os; os.abort()",
              "half-line": "import os, sys; sys.stdout.write('RESULT {\"predictions\": '); sys.stdout.flush(); os._exit(3)",
              "unknown-reason": "print('RESULT {\"refused\": \"../../etc/passwd\", \"kw\": {\"x\": 1}}')"}[ending]
    monkeypatch.setattr(outside, "_scorer_argv", lambda folder, sandbox, fd, **kw: ([sys.executable, "-c", script], {}, None))
    nodes, inits = identity_nodes()
    result = outside.score_served_classifier(model_bytes(nodes, inits), sandbox=False, timeout_s=30)
    assert result["passed"] is False and "accuracies" not in result, result
    text = outside.reason_text(PackageCatalogue("ko"), result["key"], {"name": "parts.onnx", **result["kw"]})
    assert text and "{" not in text, text


def test_a_scorer_that_floods_its_output_does_not_take_the_graders_memory(tmp_path):
    """Attack: past a flaw in the runtime, the scorer writes without end to its stdout and stderr: the grader
    read both whole into its memory (``communicate``) and died of it. The grader runs in a process of its own
    with RLIMIT_AS 1.5 GB; the stand-in scorer writes 2 GB (bounded: 120 s)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    program = f"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))
sys.path.insert(0, {str(root)!r})
from techday.grading import outside
flood = "import sys\\nb = b'x' * 2**20\\nfor _ in range(2048): sys.stdout.buffer.write(b)\\nprint('RESULT {{}}')"
outside._scorer_argv = lambda folder, sandbox, fd, **kw: ([sys.executable, "-c", flood], {{}}, None)
from tests.grading.test_outside_check import identity_nodes, model_bytes
result = outside.score_served_classifier(model_bytes(*identity_nodes()), sandbox=False, timeout_s=100)
print("ANSWER " + json.dumps({{"passed": result["passed"], "key": result.get("key")}}))
"""
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=root)
    answer = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ANSWER ")), None)
    assert answer, (proc.returncode, proc.stderr[-2000:])
    result = json.loads(answer[len("ANSWER "):])
    assert result["passed"] is False and result["key"] == "stopped", result


def test_a_file_swapped_for_a_link_while_it_is_taken_never_gives_the_links_target(tmp_path):
    """Attack: a process left behind in the sandbox swaps the exported file, again and again, for a link to
    another file (one the grader may read and the trainee may not name) and for a link to the folder, while
    the executor takes it: whatever instant the swap lands, the grader gets the trainee's own bytes or a
    refusal, never the target's. Held on the code as it was (each step opened without following a link);
    this keeps it so. Bounded: 3000 reads, one thread swapping."""
    import base64
    import os
    import threading

    from techday.grading.outside import GRADER_FILES_DIR, read_artifact

    work = tmp_path / "work"
    folder = work / GRADER_FILES_DIR
    folder.mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_bytes(b"SECRET")
    (tmp_path / "model").write_bytes(b"MODEL")
    stop = threading.Event()

    def swap():
        k = 0
        while not stop.is_set():
            k += 1
            tmp = folder / f".t{k}"
            if k % 3 == 0:
                os.symlink(secret, tmp)
            elif k % 3 == 1:
                os.link(tmp_path / "model", tmp)
            else:
                os.symlink(tmp_path, tmp)
            os.replace(tmp, folder / "parts.onnx")

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        seen = set()
        for _ in range(3000):
            got = read_artifact(str(work), "parts.onnx")
            seen.add(base64.b64decode(got["data"]) if "data" in got else got["problem"])
    finally:
        stop.set()
        swapper.join(10)
    assert b"SECRET" not in seen, seen
    assert seen <= {b"MODEL", "link", "missing", "not-a-file"}, seen


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def test_protobuf_tricks_are_refused_or_seen_as_the_runtime_sees_them():
    """Attack: the file's encoding itself: a length that claims 2^60 bytes, a varint of 11 bytes, subgraphs
    nested 30 000 deep (a parser's stack), and a second ``graph`` field that protobuf merges into the first
    (the check must see the merged graph the runtime serves, with the foreign node the second part adds).
    Held on the code as it was: each is refused before any runtime sees it; this keeps it so."""
    from onnx import helper

    good = base_model().SerializeToString()
    assert refusal(good + b"\x3a" + _varint(2**60)) == "not-onnx"          # graph (field 7), a huge length
    assert refusal(good + b"\x08" + b"\xff" * 10 + b"\x01") == "not-onnx"   # ir_version, an 11-byte varint
    deep = b""  # a graph: node (1) -> attribute (5) -> g (6) -> graph ..., 3 x 30 000 messages deep
    for _ in range(30_000):
        attribute = b"\x32" + _varint(len(deep)) + deep
        node = b"\x2a" + _varint(len(attribute)) + attribute
        deep = b"\x0a" + _varint(len(node)) + node
    assert refusal(good + b"\x3a" + _varint(len(deep)) + deep) == "not-onnx"
    extra = helper.make_graph([helper.make_node("Relu", ["logits"], ["x"], domain="com.evil")], "", [], [])
    part = extra.SerializeToString()
    assert refusal(good + b"\x3a" + _varint(len(part)) + part) == "domain"
