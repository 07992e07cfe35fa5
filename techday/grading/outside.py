"""Checks from outside the trainee's kernel: a file a test cell wrote, taken out of the sandbox after the
notebook ran and scored by the grader itself, on inputs the kernel never saw.

Every test cell runs in the trainee's own kernel, defended in process by the referee; whatever that kernel
computes can in principle be forged (grading/README.md, "Audit hooks are not a sandbox"). Where a test's
verdict rests on a file (lab 17's exercise 6 exports the trained model to ONNX), the grader can judge the
file itself instead of the kernel's word about it:

1. :data:`OUTSIDE_CHECKS` declares, per lab and test cell, the file the test leaves in the grader's folder
   (:data:`GRADER_FILES_DIR` under the sandbox's working folder; a lab asks for it with
   ``lab.grader_files()``) and the scorer that reads it.
2. After the notebook ran, the executor inside the sandbox (outside the kernel, which has been stopped)
   reads that file without following a link at any step (:func:`read_artifact`), at most
   :data:`MAX_ARTIFACT_BYTES`, and hands the bytes back with the outputs; the grader writes them into a
   folder of its own.
3. The scorer (:func:`score_served_classifier`) draws fresh seeds (``secrets``) after the kernel is gone,
   makes the parts and keeps their labels, then serves the model in a process of its own (the grading
   sandbox where there is one, limits on time and memory, one thread, no network; where root grades, as a
   host uid of its own with a process limit, :func:`run_scorer`):
   :func:`validate_onnx` first refuses any file outside an allow-list, then ONNX Runtime serves the parts at
   two batch sizes and only the predicted classes come back. The grader scores them against the labels it
   kept, by the track's pass rule (:func:`techday.dltrain.assessment_rule`).
4. A test cell that passed in the kernel and fails outside gets an ``OutsideCheck`` error before its
   outputs (nbgrader scores it 0) and the notebook is flagged with the reason; a test that failed in the
   kernel is left as it is.

Lab 07's correctness tests are checked from outside too, with no file: the grader runs the hand-in's code
again itself (:data:`RERUNS`, :mod:`techday.grading.outside_kernels`).

Not covered: lab 17's test cells other than the assessment and the served model, and every other lab but lab
07's correctness tests, stay in the kernel; a model that is good on
fresh parts passes, however it was made; the scorer trusts ONNX Runtime with a file that passed the
allow-list (a flaw in it is bounded by the scorer's process, its uid and sandbox, not ruled out); where no
host uid can be had (a grader that is not root, a host where no unprivileged uid can run the sandbox) the scorer runs as
the grader's user, with no process limit of its own, and its record says so.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import resource
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GRADER_FILES_DIR = "grader-files"  # under the notebook's working folder: $TECHDAY_GRADER_FILES (techday.lab)
MAX_ARTIFACT_BYTES = 16 * 2**20     # a file taken out of the sandbox (lab 17's model: about 30 kB)


@dataclass(frozen=True)
class OutsideCheck:
    """One test cell's check from outside: ``artifact``, the file name the test writes into the grader's
    folder, and ``scorer``, a name in :data:`SCORERS`; or no artifact and ``scorer`` a name in
    :data:`RERUNS`: the grader runs the hand-in's code again itself (nothing the kernel wrote is read)."""

    artifact: str | None
    scorer: str


# The one place a lab declares its checks from outside: lab -> test cell id -> check.
OUTSIDE_CHECKS: dict[str, dict[str, OutsideCheck]] = {
    "17-dl-assessment": {"assessment_tests": OutsideCheck("assessment.onnx", "served-parts-classifier"),
                         "serving_tests": OutsideCheck("parts.onnx", "served-parts-classifier")},
    # Lab 07's correctness tests: the hand-in's kernels run again in a process of the grader's
    # (techday.grading.outside_kernels). Its speed test stays in the kernel.
    "07-accelerated-assessment": {test: OutsideCheck(None, "cuda-kernels-rerun") for test in
                                  ("blur_kernel_tests", "histogram_kernel_tests", "lut_kernel_tests",
                                   "pipeline_tests")},
}


def lab_checks(lab: str) -> dict[str, OutsideCheck]:
    return dict(OUTSIDE_CHECKS.get(lab, {}))


# --- taking the file out (inside the sandbox, outside the kernel: techday.grading.sandbox_exec) -------------

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_artifact(work: str, name: str, limit: int = MAX_ARTIFACT_BYTES) -> dict:
    """``work/GRADER_FILES_DIR/name`` as ``{"name", "data"}`` (base64), or ``{"name", "problem"}``: ``missing``,
    ``link`` (the folder or the file is a link: never followed, also one put there after a look), ``not-a-file``
    (a folder, a FIFO, a device), ``too-big`` (over ``limit`` bytes: never read past it)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        return {"name": name, "problem": "missing"}
    fds: list[int] = []
    try:
        fds.append(os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        fds.append(os.open(GRADER_FILES_DIR, _DIR, dir_fd=fds[-1]))
        fd = os.open(name, _FILE, dir_fd=fds[-1])
    except OSError as exc:
        return {"name": name, "problem": "link" if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fds, name)
                else "missing" if exc.errno in (errno.ENOENT,) else "not-a-file"}
    finally:
        for d in fds:
            os.close(d)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return {"name": name, "problem": "not-a-file"}
        if st.st_size > limit:
            return {"name": name, "problem": "too-big", "bytes": st.st_size}
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # grew while read
            return {"name": name, "problem": "too-big", "bytes": len(data)}
        return {"name": name, "data": base64.b64encode(data).decode("ascii")}
    finally:
        os.close(fd)


def _is_link(fds: list[int], name: str) -> bool:
    """Whether the step that failed with ELOOP or ENOTDIR was a link (looked at, never followed)."""
    try:
        if len(fds) == 1:
            return stat.S_ISLNK(os.lstat(GRADER_FILES_DIR, dir_fd=fds[0]).st_mode)
        return stat.S_ISLNK(os.lstat(name, dir_fd=fds[-1]).st_mode)
    except OSError:
        return False


# --- the reasons, in the room's language -----------------------------------------------------------------

REASONS = {
    "missing": lambda c, kw: c.msg("techday.outside_missing", "the file the test exported ({name}) was not in the "
                                   "grader's folder after the notebook ran", **kw),
    "link": lambda c, kw: c.msg("techday.outside_link", "{name} in the grader's folder is a link, not the exported "
                                "file itself", **kw),
    "not-a-file": lambda c, kw: c.msg("techday.outside_not_a_file", "{name} in the grader's folder is not a regular "
                                      "file", **kw),
    "too-big": lambda c, kw: c.msg("techday.outside_too_big", "{name} is {bytes} bytes, over the grader's limit of "
                                   "{limit} bytes", **kw),
    "not-onnx": lambda c, kw: c.msg("techday.outside_not_onnx", "the exported file is not a valid ONNX model "
                                    "({error})", **kw),
    "domain": lambda c, kw: c.msg("techday.outside_domain", "the model uses operators of the domain '{domain}': the "
                                  "grader serves only the standard ONNX operators (ai.onnx)", **kw),
    "functions": lambda c, kw: c.msg("techday.outside_functions", "the model defines functions of its own "
                                     "({names}): the grader serves only the standard ONNX operators", **kw),
    "operator": lambda c, kw: c.msg("techday.outside_operator", "the model uses the operator '{op}', which is not "
                                    "a standard ONNX operator of opset {opset}", **kw),
    "training": lambda c, kw: c.msg("techday.outside_training", "the model carries training graphs "
                                    "(training_info): the grader serves one inference graph only", **kw),
    "external": lambda c, kw: c.msg("techday.outside_external", "the tensor '{tensor}' keeps its data in another "
                                    "file: export one self-contained file (external_data=False)", **kw),
    "opset": lambda c, kw: c.msg("techday.outside_opset", "the model's ONNX opset is {opset}: the grader serves "
                                 "opsets {low} to {high}", **kw),
    "inputs": lambda c, kw: c.msg("techday.outside_inputs", "the model's inputs are {inputs}: the grader serves "
                                  "one input 'images', float32, of shape (batch, 1, 32, 32) with a batch axis of any "
                                  "size", **kw),
    "outputs": lambda c, kw: c.msg("techday.outside_outputs", "the model's outputs are {outputs}: the grader "
                                   "serves one output 'logits', float32, of shape (batch, 3)", **kw),
    "nodes": lambda c, kw: c.msg("techday.outside_nodes", "the model has {nodes} nodes, over the grader's limit of "
                                 "{limit}", **kw),
    "weights": lambda c, kw: c.msg("techday.outside_weights", "the model's tensors take {bytes} bytes, over the "
                                   "grader's limit of {limit}", **kw),
    "serve": lambda c, kw: c.msg("techday.outside_serve", "ONNX Runtime could not serve the model ({error})", **kw),
    "time": lambda c, kw: c.msg("techday.outside_time", "serving the model ran past the grader's limit of "
                                "{seconds} s", **kw),
    "memory": lambda c, kw: c.msg("techday.outside_memory", "serving the model needed more than the grader's "
                                  "{mb} MB of memory", **kw),
    "stopped": lambda c, kw: c.msg("techday.outside_stopped", "the grader's scorer stopped without an answer "
                                   "({why})", **kw),
    "kernels-differ": lambda c, kw: c.msg("techday.outside_kernels_differ", "case {case} of {cases} ({what}): {bad} "
                                          "of {size} values differ; first at {at}: got {got}, expected {want}",
                                          **_case_words(c, kw)),
    "kernels-raised": lambda c, kw: c.msg("techday.outside_kernels_raised", "case {case} of {cases} ({what}) raised "
                                          "{error}", **_case_words(c, kw)),
    "kernels-missing": lambda c, kw: c.msg("techday.outside_kernels_missing", "no @cuda.jit kernel named {name} in "
                                           "your cells above the test: outside your notebook the grader runs only "
                                           "your @cuda.jit definitions and constants, not other code", **kw),
    "kernels-not-compiled": lambda c, kw: c.msg("techday.outside_kernels_not_compiled", "case {case} of {cases} "
                                                "({what}): a GPU cannot compile your kernel (numba-cuda): {why}",
                                                **_case_words(c, kw)),
    "kernels-no-compiler": lambda c, kw: c.msg("techday.outside_kernels_no_compiler", "the grader could not run "
                                               "the CUDA compiler to check your kernel ({why}); it does not run a "
                                               "kernel it could not compile: ask your instructor to regrade",
                                               **kw),
    "kernels-raced": lambda c, kw: c.msg("techday.outside_kernels_raced", "case {case} of {cases} ({what}), "
                                         "race-checked: {why}", **_case_words(c, kw)),
    "kernels-answer": lambda c, kw: c.msg("techday.outside_kernels_answer", "the process that ran your code gave "
                                          "an answer the grader cannot use ({why})", **kw),
    "kernels-time": lambda c, kw: c.msg("techday.outside_kernels_time", "running your code on the grader's cases "
                                        "took longer than its limit of {seconds} s", **kw),
    "kernels-memory": lambda c, kw: c.msg("techday.outside_kernels_memory", "running your code on the grader's "
                                          "cases needed more than its {mb} MB of memory", **kw),
    "below": lambda c, kw: c.msg("techday.outside_below", "served by the grader on {sets} sets of parts it drew "
                                 "itself, in batches of {batch}: mean accuracy {mean:.3f}, lowest {low:.3f}; the "
                                 "pass rule asks for a mean of {bar_mean} and none below {bar_low}", **kw),
}


def _case_words(catalogue, kw: dict) -> dict:
    """``kw`` with lab 07's case (``describe``) in the catalogue's language as ``what``."""
    if "describe" not in kw:
        return kw
    from .outside_kernels import case_text

    return {**kw, "what": case_text(catalogue, kw["describe"])}


def reason_text(catalogue, key: str, kw: dict) -> str:
    """A refusal's words from ``catalogue`` (:class:`techday.i18n.PackageCatalogue`); an unknown key or
    fields that do not fit say that the scorer gave no answer."""
    try:
        return REASONS[key](catalogue, kw)
    except (KeyError, IndexError, ValueError, TypeError):
        return REASONS["stopped"](catalogue, {"why": "no readable reason"})


def failed_text(catalogue, reason: str, scorer: str = "served-parts-classifier") -> str:
    if scorer in RERUNS:
        return catalogue.msg("techday.outside_rerun_failed", "the grader ran your code again itself, outside your "
                             "notebook, in Numba's CUDA simulator on cases it drew, and it did not pass: {reason}. "
                             "This test scores 0.", reason=reason)
    return catalogue.msg("techday.outside_failed", "the grader served your exported model itself, outside your "
                         "notebook, and it did not pass: {reason}. This test scores 0.", reason=reason)


# --- the allow-list (run in the scorer's process, before anything serves the file) -------------------------

MIN_OPSET, MAX_OPSET = 13, 23   # ai.onnx opsets served (the course's exporter writes 18 to 20)
MAX_NODES = 1_000               # nodes, in every subgraph too (lab 17's model: about 11)
MAX_TENSOR_BYTES = 8 * 2**20    # initializers and constants together (a model under 1 million parameters: 4 MB)
IMAGE_SHAPE = (1, 32, 32)
CLASSES = 3


class Refused(Exception):
    def __init__(self, key: str, **kw):
        super().__init__(key)
        self.key, self.kw = key, {k: (v if isinstance(v, (int, float)) else str(v)[:200]) for k, v in kw.items()}


def _graphs(graph):
    """``graph`` and every subgraph of its nodes' attributes (If, Loop, Scan), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for g in attr.graphs:
                yield from _graphs(g)


def _tensors(graph):
    """Every tensor the graph holds: initializers, sparse ones' parts and constants in attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            yield from (s.values for s in attr.sparse_tensors)


def _shape(value) -> list:
    t = value.type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim] \
        if t.HasField("shape") else []


def validate_onnx(data: bytes):
    """The model in ``data`` if it is inside the allow-list, else :class:`Refused` with the first reason: a
    valid ONNX model (``onnx.checker``) of the standard domain only (no other domain in its opsets or nodes, no
    functions of its own, no training graphs), one ai.onnx opset within ``MIN_OPSET``..``MAX_OPSET``, every
    operator a standard one of that opset, no tensor with data in another file, one input ``images`` float32
    (batch, 1, 32, 32), one output ``logits`` float32 (batch, 3), at most ``MAX_NODES`` nodes and
    ``MAX_TENSOR_BYTES`` of tensors (a sparse constant at its dense size)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise Refused("not-onnx", error=f"{type(exc).__name__}: {exc}") from None
    if not model.HasField("graph"):
        raise Refused("not-onnx", error="no graph")
    domains = {o.domain for o in model.opset_import}
    for domain in sorted(domains - {"", "ai.onnx"}):
        raise Refused("domain", domain=domain)
    if model.functions:
        raise Refused("functions", names=", ".join(sorted({f.name for f in model.functions}))[:200])
    if model.training_info:  # graphs of their own (initialisation, algorithm): the grader serves inference only
        raise Refused("training", graphs=len(model.training_info))
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if len(opsets) > 1:  # "" and its alias "ai.onnx" at two versions: checked against one, served by the other
        raise Refused("opset", opset=", ".join(map(str, opsets)), low=MIN_OPSET, high=MAX_OPSET)
    opset = max(opsets) if opsets else 0
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise Refused("opset", opset=opset, low=MIN_OPSET, high=MAX_OPSET)
    nodes = 0
    for graph in _graphs(model.graph):
        for node in graph.node:
            nodes += 1
            if node.domain not in ("", "ai.onnx"):
                raise Refused("domain", domain=node.domain)
            if not onnx.defs.has(node.op_type, opset, "") or onnx.defs.get_schema(
                    node.op_type, opset, "").deprecated:
                raise Refused("operator", op=node.op_type, opset=opset)
        if nodes > MAX_NODES:
            raise Refused("nodes", nodes=nodes, limit=MAX_NODES)
    held = 0
    for graph in _graphs(model.graph):
        if graph.sparse_initializer:
            raise Refused("external", tensor=graph.sparse_initializer[0].values.name or "sparse")
        for tensor in _tensors(graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
                raise Refused("external", tensor=tensor.name)
            held += tensor.ByteSize()
        for node in graph.node:  # a sparse constant is served dense: counted at its dense size
            for attr in node.attribute:
                held_sparse = [attr.sparse_tensor] if attr.HasField("sparse_tensor") else []
                for sparse in held_sparse + list(attr.sparse_tensors):
                    dense = 8
                    for d in sparse.dims:
                        dense *= max(int(d), 0)
                    held += min(dense, 2**62)
    if held > MAX_TENSOR_BYTES:
        raise Refused("weights", bytes=held, limit=MAX_TENSOR_BYTES)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        raise Refused("not-onnx", error=str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "checker") \
            from None
    constants = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in constants]
    shape = _shape(inputs[0]) if len(inputs) == 1 else []
    if len(inputs) != 1 or inputs[0].name != "images" or inputs[0].type.tensor_type.elem_type \
            != onnx.TensorProto.FLOAT or len(shape) != 4 or tuple(shape[1:]) != IMAGE_SHAPE or isinstance(shape[0], int):
        raise Refused("inputs", inputs=[(i.name, _shape(i)) for i in inputs][:4])
    outputs = list(model.graph.output)
    shape = _shape(outputs[0]) if len(outputs) == 1 else []
    if len(outputs) != 1 or outputs[0].name != "logits" or outputs[0].type.tensor_type.elem_type \
            != onnx.TensorProto.FLOAT or len(shape) != 2 or shape[1] != CLASSES or isinstance(shape[0], int):
        raise Refused("outputs", outputs=[(o.name, _shape(o)) for o in outputs][:4])
    return model


# --- the scorer's process: validate, then serve ---------------------------------------------------------

def serve_main(argv=None) -> int:
    """``python -m techday.grading.outside --model M --images I --batches 250,7``: one line ``RESULT {json}``,
    the predicted classes per batch size (``{"predictions": {"250": [...], ...}}``) or ``{"refused": key,
    "kw": {...}}``."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--batches", default="250,7")
    args = ap.parse_args(argv)
    try:
        out = {"predictions": _serve(args.model, args.images, [int(b) for b in args.batches.split(",")])}
    except Refused as exc:
        out = {"refused": exc.key, "kw": exc.kw}
    except MemoryError:
        out = {"refused": "memory", "kw": {}}
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def _serve(model_path: str, images_path: str, batches: list[int]) -> dict:
    import numpy as np

    with open(model_path, "rb") as f:
        data = f.read(MAX_ARTIFACT_BYTES + 1)
    validate_onnx(data)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        x = np.load(images_path, allow_pickle=False)
        out = {}
        for batch in batches:
            guesses = []
            for i in range(0, len(x), batch):
                (logits,) = session.run(["logits"], {"images": x[i:i + batch]})
                if logits.shape != (len(x[i:i + batch]), CLASSES):
                    raise Refused("outputs", outputs=[("logits", list(logits.shape))])
                guesses.append(np.asarray(logits).argmax(1))
            out[str(batch)] = np.concatenate(guesses).astype(int).tolist()
        return out
    except Refused:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # ONNX Runtime's own errors (a failed allocation among them)
        text = str(exc)
        if "bad_alloc" in text or "bad allocation" in text or "Failed to allocate" in text:
            raise MemoryError() from None
        raise Refused("serve", error=f"{type(exc).__name__}: {text.strip().splitlines()[0] if text.strip() else ''}"
                      [:200]) from None


# --- the grader's side -----------------------------------------------------------------------------------

SCORER_TIMEOUT_S = 60    # validating and serving 3 x 600 parts twice: 0.3 to 1.1 s here (grading/README.md)
SCORER_MEMORY_MB = 1024  # RLIMIT_AS of the scorer's process: lab 17's model served, it peaks at 256 MB (150 MB resident)
BATCHES = (250, 7)
SEED_FLOOR = 2**20       # every seed a lab, a test or the docs name is below this: never drawn


def draw_seeds(count: int) -> list[int]:
    """``count`` fresh seeds for this grading, from ``secrets``: never shown to the kernel (drawn after it ran),
    never one of the small seeds the course publishes."""
    return [SEED_FLOOR + secrets.randbelow(2**62) for _ in range(count)]


def _scorer_program(where: str) -> list[str]:
    """The scorer's own command, run in ``where`` (its working folder as the scorer sees it)."""
    return [sys.executable, "-m", "techday.grading.outside", "--model", f"{where}/model.onnx",
            "--images", f"{where}/images.npy", "--batches", ",".join(map(str, BATCHES))]


def _scorer_argv(folder: Path, sandbox: bool, seccomp_fd: int | None, program=None,
                 extra_env: dict | None = None) -> tuple[list[str], dict, str | None]:
    """The scorer's command, environment and working folder: in the grading sandbox (no network, nothing of the
    host but the Python install and the package, ``folder`` alone as its working folder) where ``sandbox``.
    ``program`` (where -> argv) is the command, lab 17's served-model scorer unless given; ``extra_env`` adds
    to its environment."""
    from .sandbox import WORK, check_sandbox, sandbox_command, sandbox_env

    env = {"OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2", **(extra_env or {})}
    if sandbox:
        bwrap = check_sandbox()
        where = WORK
        argv = sandbox_command(bwrap, folder, sandbox_env(env), gpu=False, disk_mb=64, seccomp_fd=seccomp_fd)
        cwd = None
        popen_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    else:
        where, argv, cwd = str(folder), [], str(folder)
        popen_env = {**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                     "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "HOME": str(folder)}
    return argv + (program or _scorer_program)(where), popen_env, cwd


# Where root grades, the scorer's sandbox runs as a host uid of its own (techday.grading.hostuids), held for its run
# alone, with RLIMIT_NPROC: the kernel counts every process and thread of that uid against it (a user namespace is
# charged to the uid that made it), bwrap's own included, and nothing else runs as that uid. Measured (this 2-core
# machine, Linux 6.18, ONNX Runtime 1.32, one intra-op thread): the honest scorer holds 4 tasks at most, bwrap's
# outer process, its init (pid 1 of the sandbox), the interpreter and one thread ONNX Runtime starts when imported;
# at 3 it still served (that thread refused), at 2 bwrap could not start. Twice that, for a margin.
SCORER_PROCESSES = 8


def scorer_uid_problem(sandbox: bool = True) -> str | None:
    """None where the scorer's sandbox runs as a host uid of its own (root grades, and an unprivileged uid can run
    the sandbox here: :func:`techday.grading.sandbox.nobody_sandbox_problem`, the notebook's own rule), else why
    not, in words for the record."""
    if not sandbox:
        return "no sandbox (--no-sandbox): the scorer runs as the grader's own user"
    if os.geteuid() != 0:
        return f"the grader is not root and has no uid to give: the scorer runs as the grader's uid {os.geteuid()}"
    from .sandbox import nobody_sandbox_problem

    problem = nobody_sandbox_problem(False)
    if problem:
        return ("the grader is root and no unprivileged host uid can run the sandbox here "
                f"({problem}): the scorer runs as the host's root in a user namespace, with no process limit")
    return None


SCORER_OUTPUT_TAIL = 2**20  # bytes of the scorer's stdout and stderr the grader reads (its answer: about 10 kB)


def _tail(f, limit: int = SCORER_OUTPUT_TAIL) -> bytes:
    """The last ``limit`` bytes of the file ``f``."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - limit))
    return f.read(limit)


def run_scorer(folder: Path, sandbox: bool = True, timeout_s: float = SCORER_TIMEOUT_S,
               memory_mb: int = SCORER_MEMORY_MB, avoid_uids=(), program=None,
               processes: int = SCORER_PROCESSES, env: dict | None = None) -> dict:
    """The scorer on ``folder/model.onnx`` and ``folder/images.npy``, in a process of its own under its own
    limits: its answer (``predictions`` or ``refused``); past ``timeout_s`` or dead, a refusal too. ``ran_as``
    says which host user it ran as (``uid``, ``own``: a uid of its own, ``max_processes``, ``text``).

    Where root grades and a host uid can be had (:func:`scorer_uid_problem`), the scorer's sandbox runs as one of
    the sandbox uids (:func:`techday.grading.hostuids.allocate`, never one of ``avoid_uids``: the notebook's),
    held for this run and let go after it (what is left of its processes killed), with ``RLIMIT_NPROC``
    :data:`SCORER_PROCESSES`; ``folder`` and its files are then root's, readable by that uid's group alone and
    writable by no one but root.

    ``program`` (where -> argv), ``processes`` (its ``RLIMIT_NPROC``) and ``env`` (added to its environment)
    run another scorer under the same rules: lab 07's evaluated process (:mod:`techday.grading.outside_kernels`).
    """
    run = (program, processes, env)
    problem = scorer_uid_problem(sandbox)
    if problem is not None:
        ran_as = {"uid": os.geteuid(), "own": False, "max_processes": None, "text": problem}
        os.chmod(folder, 0o755)  # as before: for any user (the grader's own, or root mapped into the sandbox)
        for entry in folder.iterdir():
            if entry.is_file() and not entry.is_symlink():
                os.chmod(entry, 0o644)
        return {**_run_scorer(folder, sandbox, timeout_s, memory_mb, None, *run), "ran_as": ran_as}
    from .hostuids import allocate
    from .sandbox import SandboxUnavailable

    try:
        host = allocate(avoid_uids)
    except SandboxUnavailable as exc:
        return {"refused": "stopped", "kw": {"why": f"no host uid for the scorer: {exc}"[:200]},
                "ran_as": {"uid": None, "own": False, "max_processes": None, "text": f"not started: {exc}"[:300]}}
    ran_as = {"uid": host.uid, "own": True, "max_processes": processes,
              "text": f"host uid {host.uid} of its own (held for this run alone), at most {processes} "
                      "processes and threads (RLIMIT_NPROC)"}
    try:
        # Read-only to the scorer: the folder searchable (0710) and the files readable (0440) by its group alone.
        os.chown(folder, 0, host.gid)
        os.chmod(folder, 0o710)
        for entry in folder.iterdir():
            if entry.is_file() and not entry.is_symlink():
                os.chown(entry, 0, host.gid)
                os.chmod(entry, 0o440)
        return {**_run_scorer(folder, sandbox, timeout_s, memory_mb, host.ids, *run), "ran_as": ran_as}
    finally:
        host.release()


def _run_scorer(folder: Path, sandbox: bool, timeout_s: float, memory_mb: int,
                user: tuple[int, int] | None, program=None, processes: int = SCORER_PROCESSES,
                env: dict | None = None) -> dict:
    from ..proctree import kill_tree
    from .sandbox import Limits, rlimits, seccomp_filter

    limits = Limits(memory_mb=memory_mb, file_size_mb=16, max_descriptors=256)
    base: list = []  # rlimits for the command, once it is known (a path it binds may need revealing: sandbox.py)

    def apply():
        base[0]()
        if user is not None:  # counted for the uid alone: nothing else runs as it
            resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))

    extra: tuple[int, ...] = ()
    seccomp = seccomp_filter() if sandbox else None
    if seccomp is not None:
        filter_fd, fw = os.pipe()
        os.write(fw, seccomp)
        os.close(fw)
        extra = (filter_fd,)
    # Its stdout and stderr are files, not pipes: RLIMIT_FSIZE bounds what it writes, and the grader reads
    # their last SCORER_OUTPUT_TAIL bytes only (a scorer that wrote without end took the grader's memory).
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        try:
            argv, popen_env, cwd = _scorer_argv(folder, sandbox, extra[0] if extra else None, program=program,
                                                extra_env=env)
            base.append(rlimits(limits, gpu=False, user=user, argv=argv))
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                                    env=popen_env, cwd=cwd, pass_fds=extra, start_new_session=True,
                                    preexec_fn=apply)
        except OSError as exc:
            return {"refused": "stopped", "kw": {"why": f"could not start: {exc}"[:200]}}
        finally:
            for fd in extra:
                with contextlib.suppress(OSError):
                    os.close(fd)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid, grace_s=1, exited=lambda: proc.poll() is not None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            return {"refused": "time", "kw": {"seconds": timeout_s}}
        out, err = _tail(out_f), _tail(err_f)
    line = next((ln for ln in reversed(out.decode("utf-8", "replace").splitlines()) if ln.startswith("RESULT ")), "")
    try:
        answer = json.loads(line[len("RESULT "):]) if line else None
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        answer = None
    if not isinstance(answer, dict):
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        if "MemoryError" in tail[0] or "bad_alloc" in tail[0]:
            return {"refused": "memory", "kw": {"mb": memory_mb}}
        return {"refused": "stopped", "kw": {"why": tail[0][:200]}}
    if answer.get("refused") == "memory":
        answer["kw"] = {"mb": memory_mb}
    return answer


def score_served_classifier(data: bytes, sandbox: bool = True, seeds: list[int] | None = None,
                            timeout_s: float = SCORER_TIMEOUT_S, memory_mb: int = SCORER_MEMORY_MB,
                            avoid_uids=()) -> dict:
    """Lab 17's served model, scored by the grader: ``{"passed", "key", "kw", "seeds", "accuracies"}``.

    The parts are drawn here, from fresh seeds (:func:`draw_seeds`), and their labels never leave this
    process: the scorer's process gets the images alone and answers with a class for each, at each of
    ``BATCHES``; the pass rule (``assessment_rule()``: the mean over the sets and each set) must hold at every
    batch size. ``user`` records which host user the scorer ran as (:func:`run_scorer`'s ``ran_as``); it never
    runs as one of ``avoid_uids`` (the host uid the notebook's sandbox ran as)."""
    import numpy as np

    from ..dltrain import assessment_rule
    from ..parts import make_parts

    rule = assessment_rule()
    seeds = list(seeds) if seeds is not None else draw_seeds(rule["hidden_sets"])
    record: dict = {"seeds": seeds, "batches": list(BATCHES), "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()}
    folder = Path(tempfile.mkdtemp(prefix="techday-outside-"))  # 0700: opened to the scorer by run_scorer
    try:
        (folder / "model.onnx").write_bytes(data)
        sets = [make_parts(rule["samples_per_set"], seed=s) for s in seeds]
        np.save(folder / "images.npy", np.concatenate([x for x, _ in sets]))
        labels = np.concatenate([y for _, y in sets])
        t0 = time.monotonic()
        answer = run_scorer(folder, sandbox, timeout_s, memory_mb, avoid_uids=avoid_uids)
        record["seconds"] = round(time.monotonic() - t0, 2)
        record["user"] = answer.pop("ran_as", None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if "refused" in answer:
        return {**record, "passed": False, "key": str(answer["refused"]), "kw": answer.get("kw") or {}}
    predictions = answer.get("predictions")
    n = rule["samples_per_set"]
    accuracies = {}
    for batch in BATCHES:
        guess = predictions.get(str(batch)) if isinstance(predictions, dict) else None
        if not isinstance(guess, list) or len(guess) != len(labels):
            return {**record, "passed": False, "key": "stopped", "kw": {"why": "no prediction for every part"}}
        hit = np.asarray(guess, dtype=object) == labels.astype(object)
        accuracies[str(batch)] = [round(float(hit[i * n:(i + 1) * n].mean()), 4) for i in range(len(seeds))]
    record["accuracies"] = accuracies
    for batch in BATCHES:
        acc = accuracies[str(batch)]
        mean, low = float(np.mean(acc)), min(acc)
        if mean < rule["min_mean_accuracy"] or low < rule["min_accuracy"]:
            return {**record, "passed": False, "key": "below",
                    "kw": {"sets": len(seeds), "batch": batch, "mean": mean, "low": low,
                           "bar_mean": rule["min_mean_accuracy"], "bar_low": rule["min_accuracy"]}}
    return {**record, "passed": True}


SCORERS = {"served-parts-classifier": score_served_classifier}


def _rerun_kernels(nb, course, tests, sandbox: bool, avoid_uids=()) -> dict:
    from .outside_kernels import score_kernels

    return score_kernels(nb, course, tests, sandbox=sandbox, avoid_uids=avoid_uids)


# Checks that read no file: the scorer gets the notebook as graded (nbgrader's restored sources), the course's
# cells (executor.course_cells) and the test cells the kernel passed, and answers {test cell: result}.
RERUNS = {"cuda-kernels-rerun": _rerun_kernels}


def outside_scores(nb, checks: dict[str, OutsideCheck], artifacts, sandbox: bool, report: dict,
                   course: list[dict] | None = None) -> list[dict]:
    """Run the lab's checks from outside on the notebook ``nb`` the sandbox sent back (its outputs in place):
    one record per checked test cell. A test cell that passed in the kernel and fails here gets an
    ``OutsideCheck`` error first among its outputs (nbgrader scores it 0, the feedback says why, in the room's
    language) and an ``outside-check`` event in ``report`` (the status line, in English: flagged). ``course``:
    the gradebook's test and locked cells (:func:`techday.grading.executor.course_cells`), for the checks that
    run the hand-in's code again (:data:`RERUNS`)."""
    import nbformat

    from ..i18n import SOURCE_LANGUAGE, PackageCatalogue

    english, shown = PackageCatalogue(SOURCE_LANGUAGE), PackageCatalogue()
    taken = {a.get("name"): a for a in artifacts if isinstance(a, dict)} if isinstance(artifacts, list) else {}
    cells = [(index, cell, cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
             for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    cells = [(index, cell, gid) for index, cell, gid in cells if gid in checks]
    failed = {gid for _, cell, gid in cells if any(o.get("output_type") == "error" for o in cell.get("outputs", []))}
    reruns: dict = {}
    for scorer in sorted({checks[gid].scorer for _, _, gid in cells if checks[gid].artifact is None}):
        tests = [gid for _, _, gid in cells if checks[gid].scorer == scorer and gid not in failed]
        if not tests:
            continue
        try:
            reruns.update(RERUNS[scorer](nb, course, tests, sandbox=sandbox, avoid_uids=[report.get("host_uid")]))
        except Exception as exc:  # a bug of ours must not pass the tests: they fail, flagged
            reruns.update({t: {"passed": False, "key": "stopped", "kw": {"why": f"{type(exc).__name__}: {exc}"[:200]}}
                           for t in tests})
    records = []
    for index, cell, gid in cells:
        check = checks[gid]
        record: dict = {"cell": gid, "artifact": check.artifact, "scorer": check.scorer}
        if gid in failed:
            records.append({**record, "kernel": "failed", "passed": None})  # 0 already: nothing changes
            continue
        item = taken.get(check.artifact) or {"problem": "missing"}
        if check.artifact is None:
            result = reruns.get(gid) or {"passed": False, "key": "stopped", "kw": {"why": "no verdict"}}
        elif "data" in item:
            try:
                data = base64.b64decode(item["data"], validate=True)
            except ValueError:
                data = None
            if data is None or len(data) > MAX_ARTIFACT_BYTES:
                result = {"passed": False, "key": "too-big",
                          "kw": {"bytes": len(item["data"]) * 3 // 4, "limit": MAX_ARTIFACT_BYTES}}
            else:
                try:
                    # never as the host uid the notebook ran as (executor.run_notebook's host_uid)
                    result = SCORERS[check.scorer](data, sandbox=sandbox, avoid_uids=[report.get("host_uid")])
                except Exception as exc:  # a bug of ours must not pass the test: it fails, flagged
                    result = {"passed": False, "key": "stopped", "kw": {"why": f"{type(exc).__name__}: {exc}"[:200]}}
        else:
            problem = item.get("problem", "missing")
            result = {"passed": False, "key": problem if problem in REASONS else "missing",
                      "kw": {"bytes": item.get("bytes", 0), "limit": MAX_ARTIFACT_BYTES}}
        kw = {"name": check.artifact, **result.get("kw", {})}
        record.update({k: v for k, v in result.items() if k != "kw"}, kernel="passed")
        if not result["passed"]:
            record["reason"] = reason_text(english, result["key"], kw)
            text = failed_text(shown, reason_text(shown, result["key"], kw), check.scorer)
            cell.outputs.insert(0, nbformat.from_dict({
                "output_type": "error", "ename": "OutsideCheck", "evalue": text,
                "traceback": ["OutsideCheck: " + text]}))
            report.setdefault("events", []).append({"cell": index, "event": "outside-check", "what": record["reason"]})
        records.append(record)
    return records


if __name__ == "__main__":
    sys.exit(serve_main())
