# %% [markdown] key="deployment-onnx-export-onnx"
# # 15 Deployment: ONNX export and ONNX Runtime serving
#
# A trained model earns money only when it answers requests. This lab takes the parts-inspection CNN
# out of PyTorch: it exports it to **ONNX**, the open exchange format for neural networks, checks that
# the exported model gives the same answers, serves it with **ONNX Runtime** (a small, fast inference
# engine without PyTorch), and measures latency and throughput across batch sizes, the two numbers
# that size a deployment.
#
# ## You will learn
# - `torch.onnx.export` with the `torch.export`-based exporter (`dynamo=True`), and a **dynamic batch
#   axis** so one file serves any batch size;
# - checking an exported model: `onnx.checker`, the graph's inputs and outputs, and numeric parity with
#   PyTorch within a stated tolerance;
# - `onnxruntime.InferenceSession`: providers, session options, `run`;
# - measuring latency (median and 90th percentile, after a warm-up) and throughput, and the trade-off
#   between them as the batch grows.
#
# **Tiers**: the `onnxruntime` package used here runs on the CPU, on every tier. With the
# `onnxruntime-gpu` package the same session runs on a GPU through the CUDA execution provider; the
# lab uses it when it is installed. All figures are labelled with where they were measured.
#
# **How this lab works**: solve the three exercises; each test cell checks your work (do not edit
# test cells). The grader also runs hidden tests. Grading checks behaviour, never speed.
#
# Points: exercise 1: 4, exercise 2: 3, exercise 3: 3 (10 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# Run this cell first: it chooses the tier and prints it.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("15.title", "15 Deployment: ONNX and ONNX Runtime"))

# %% nbgrader="locked" id="imports"
import contextlib
import io
import logging
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

from techday.dltrain import device_label
from techday.i18n import msg
from techday.parts import CLASSES, make_parts
from techday.tier import shown_label

device = torch.device("cuda" if lab.on_gpu else "cpu")
if not lab.on_gpu:
    torch.set_num_threads(1)  # CI machines share their cores between labs: one thread each
# The exporter reports each of its stages on stdout and warns about optional torchvision operators;
# keep the notebook readable.
logging.getLogger("torch.onnx").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
WORK = lab.scratch("techday-onnx-")  # removed when the kernel exits
ORT_PROVIDERS = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
if not lab.on_gpu:
    ORT_PROVIDERS = ["CPUExecutionProvider"]
print(msg("15.versions", "PyTorch {torch_v} | onnx {onnx_v} | onnxruntime {ort_v} | ONNX Runtime providers here: {providers}",
          torch_v=torch.__version__, onnx_v=onnx.__version__, ort_v=ort.__version__, providers=ORT_PROVIDERS))

# %% [markdown] key="model-deploy"
# ## 1. The model to deploy
#
# The parts-inspection CNN of the track (labs 13 and 16), with batch normalisation and dropout, trained
# for a short while. Batch norm and dropout behave differently in training and in inference, which is
# why every step below starts from `model.eval()`.

# %% nbgrader="locked" id="model"
class GlobalMaxPool(nn.Module):
    """The strongest response of each channel anywhere in the picture: ``AdaptiveMaxPool2d(1)``, written
    as a reduction that every ONNX exporter translates (PyTorch 2.11's has no rule for the pool)."""

    def forward(self, x):
        return x.amax(dim=(2, 3), keepdim=True)


def make_model(width=8):
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(*block(1, width), nn.MaxPool2d(2), *block(width, 2 * width), nn.MaxPool2d(2),
                         *block(2 * width, 2 * width), GlobalMaxPool(), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(2 * width, 3))


torch.manual_seed(15)
model = make_model()
x_train, y_train = make_parts(lab.size(full=4_000, ci=1_200), seed=15, as_tensor=True)
epochs = lab.size(full=10, ci=4)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=epochs * ((len(x_train) + 63) // 64))
model.train()
for epoch in range(epochs):
    order = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 64):
        idx = order[i:i + 64]
        optimizer.zero_grad()
        F.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
        optimizer.step()
        schedule.step()
model.eval()
x_test, y_test = make_parts(300, seed=16, as_tensor=True)
with torch.no_grad():
    acc = (model(x_test).argmax(1) == y_test).float().mean().item()
print(msg("15.trained", "trained for {epochs} epochs on {n} parts: accuracy {acc:.2f} on 300 new parts",
          epochs=epochs, n=len(x_train), acc=acc)
      + (msg("15.short_training_ci", " (a short training at the CI scale: the deployment steps below do not depend on it)")
         if lab.scale == "ci" else ""))

# %% [markdown] key="export-onnx"
# ## 2. Export to ONNX
#
# An ONNX file holds the graph (operators such as `Conv`, `Relu`, `MaxPool`, `Gemm`) and the weights.
# PyTorch 2 has two exporters:
#
# - `dynamo=True` (the default since PyTorch 2.9): captures the model with `torch.export`, then
#   translates the captured graph with ONNX Script. This is the one this course uses; it works offline
#   with the `onnx` and `onnxscript` packages;
# - `dynamo=False`: the older TorchScript-based exporter, deprecated and slated for removal.
#
# By default every dimension of the example input is baked into the graph, batch size included: a
# model exported with a batch of 4 then refuses a batch of 5. A **dynamic** axis says "any size here":
#
# ```python
# torch.onnx.export(model, (example,), path, dynamo=True,
#                   input_names=["images"], output_names=["logits"],
#                   dynamic_shapes=({0: torch.export.Dim("batch")},))   # axis 0 of the first input
# ```
#
# ## Exercise 1: `export_onnx` (4 points)
#
# Write `export_onnx(model, example, path)` that puts the model in eval mode and exports it with
# `dynamo=True` to `path`, with input name `"images"`, output name `"logits"`, and a dynamic batch axis
# (axis 0 of the input). Return `path`. The exporter prints its progress: wrap the call in
# `contextlib.redirect_stdout(io.StringIO())` if you want a quiet notebook.

# %% nbgrader="solution" id="export_onnx"
def export_onnx(model, example, path):
    """Export model (eval mode) to ONNX at path, input "images" with a dynamic batch axis, output "logits"."""
    ### BEGIN SOLUTION
    model.eval()
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["images"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path
    ### END SOLUTION

# %% nbgrader="tests" id="export_onnx_tests" points=4
"""export_onnx writes a valid ONNX file (onnx.checker) whose input "images" has a symbolic batch axis
and fixed (1, 32, 32) image axes and whose output is "logits"; ONNX Runtime runs it at batch sizes
1, 5 and 64 (the example had 4), matching the eval-mode PyTorch model within 1e-4, for a model handed
over in training mode and left in eval mode; hidden: another width, batch sizes 2 and 129, an example batch of 3; and cases drawn afresh at every grading
(techday.draw)."""
import numpy as np
from techday.i18n import msg
import onnx
import onnxruntime as ort
import torch


def check_export(m, example_batch, batches, name):
    torch.manual_seed(example_batch)
    m.train()
    path = export_onnx(m, torch.randn(example_batch, 1, 32, 32), WORK / name)
    assert Path(path).is_file(), msg("15.export_not_file", "export_onnx returned {path!r}, which is not a file", path=path)
    assert not m.training, msg("15.export_train_mode", "the model is still in training mode after export_onnx: call model.eval() first")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    inputs, outputs = proto.graph.input, proto.graph.output
    assert [i.name for i in inputs] == ["images"], msg("15.input_names", "input names {names}, expected ['images']",
                                                      names=[i.name for i in inputs])
    assert [o.name for o in outputs] == ["logits"], msg("15.output_names", "output names {names}, expected ['logits']",
                                                       names=[o.name for o in outputs])
    dims = inputs[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value"), \
        msg("15.batch_axis_fixed", "the batch axis is fixed to {size}: export with dynamic_shapes for axis 0",
            size=dims[0].dim_value)
    assert [d.dim_value for d in dims[1:]] == [1, 32, 32], msg("15.only_batch_dynamic", "only the batch axis may be dynamic")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    m.eval()
    for b in batches:
        xb = torch.randn(b, 1, 32, 32)
        with torch.no_grad():
            expected = m(xb).numpy()
        got = session.run(None, {"images": xb.numpy()})[0]
        assert got.shape == (b, 3), msg("15.onnx_output_shape", "batch {b}: ONNX output shape {shape}", b=b, shape=got.shape)
        err = float(np.abs(got - expected).max())
        assert err < 1e-4, msg("15.export_differs", "batch {b}: ONNX Runtime differs from PyTorch (eval mode) by {err:.2e}", b=b, err=err)


check_export(model, 4, (1, 5, 64), "visible.onnx")
### BEGIN HIDDEN TESTS
torch.manual_seed(99)
other = make_model(width=6)
with torch.no_grad():
    other(torch.randn(32, 1, 32, 32))  # move batch-norm statistics away from their initial values
check_export(other, 3, (2, 129), "hidden.onnx")
# Drawn at every grading (techday.draw): the width and the batch sizes above are published with the course.
import techday.draw

rd = techday.draw.rng("15.export_onnx_tests")
torch.manual_seed(int(rd.integers(0, 2 ** 31)))
drawn_model = make_model(width=int(rd.integers(2, 11)))
with torch.no_grad():
    drawn_model(torch.randn(32, 1, 32, 32))  # move batch-norm statistics away from their initial values
check_export(drawn_model, int(rd.integers(1, 9)), tuple(int(b) for b in rd.integers(1, 161, size=2)), "drawn.onnx")
### END HIDDEN TESTS
print(msg("15.export_onnx_passed", "export_onnx: all visible tests passed."))

# %% [markdown] key="note"
# What is in the file: the opset (the version of the operator set), the inputs with their symbolic
# batch dimension, and the operators. Batch normalisation has been folded into the convolutions
# where the exporter could, and dropout is gone: both are what inference needs.

# %%
onnx_path = export_onnx(model, x_test[:4], WORK / "parts.onnx")
proto = onnx.load(str(onnx_path))
onnx.checker.check_model(proto)
dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
ops = {}
for node in proto.graph.node:
    ops[node.op_type] = ops.get(node.op_type, 0) + 1
print(msg("15.onnx_file", "{name}: {kib:.1f} KiB, opset {opset}, input {input} {dims}, output {output}",
          name=onnx_path.name, kib=onnx_path.stat().st_size / 1024, opset=proto.opset_import[0].version,
          input=proto.graph.input[0].name, dims=dims, output=proto.graph.output[0].name))
print(msg("15.operators", "operators: {ops}", ops=", ".join(f"{k} x{v}" for k, v in sorted(ops.items()))))

# %% [markdown] key="serving-onnx-runtime"
# ## 3. Serving with ONNX Runtime
#
# An `InferenceSession` loads the file once, optimises the graph for the machine (constant folding,
# operator fusion) and then answers `run` calls. `providers` lists the execution providers in order of
# preference: `CUDAExecutionProvider` (GPU, from the `onnxruntime-gpu` package),
# `CPUExecutionProvider` (always there). `SessionOptions` set the threads; a server that runs several
# sessions side by side gives each one a few threads.

# %%
options = ort.SessionOptions()
options.intra_op_num_threads = 1 if not lab.on_gpu else 0  # 0: ONNX Runtime's default, all cores
session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=ORT_PROVIDERS)
ORT_LABEL = ("GPU" if session.get_providers()[0] == "CUDAExecutionProvider"
             else msg("15.cpu_not_gpu_figure", "CPU, not a GPU figure"))
print(msg("15.session_summary", "session providers: {providers} | input: {input} {shape} | output: {output}",
          providers=session.get_providers(), input=session.get_inputs()[0].name, shape=session.get_inputs()[0].shape,
          output=session.get_outputs()[0].name))
logits = session.run(None, {"images": x_test[:6].numpy()})[0]
print(msg("15.predictions", "predictions for 6 parts: {classes}", classes=[CLASSES[i] for i in logits.argmax(1)]))
print(msg("15.true_classes", "true classes:            {classes}", classes=[CLASSES[i] for i in y_test[:6]]))

# %% [markdown] key="numeric-parity"
# ## 4. Numeric parity
#
# Never ship an exported model without comparing it with the original on real inputs. The two engines
# use different kernels and summation orders, so the outputs differ in the last bits: compare with a
# tolerance, `|onnx - torch| <= atol + rtol * |torch|` element by element, and say by how much they
# differ. Comparing only the predicted classes (`argmax`) would hide a model whose scores have drifted.
#
# ## Exercise 2: `check_parity` (3 points)
#
# Write `check_parity(model, session, x, rtol=1e-4, atol=1e-5)`:
# compute the PyTorch logits for the tensor `x` in eval mode without gradients, the ONNX Runtime logits
# with `session.run(None, {name: x.numpy()})` where `name` is the session's first input's name
# (`session.get_inputs()[0].name`: do not assume it), and raise `AssertionError` with a message giving
# the largest absolute difference unless every element is within the tolerance
# (`np.allclose(onnx_out, torch_out, rtol=rtol, atol=atol)`). Return that largest absolute difference
# as a float.

# %% nbgrader="solution" id="check_parity"
def check_parity(model, session, x, rtol=1e-4, atol=1e-5):
    """Largest |ONNX Runtime - PyTorch| over the logits of x; AssertionError beyond the tolerance."""
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        expected = model(x).cpu().numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.cpu().numpy()})[0]
    max_abs = float(np.abs(got - expected).max())
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=rtol, atol=atol):
        raise AssertionError(msg("15.parity_differs", "ONNX Runtime differs from PyTorch: max |difference| {max_abs:.3e} "
                                 "(rtol={rtol}, atol={atol})", max_abs=max_abs, rtol=rtol, atol=atol))
    return max_abs
    ### END SOLUTION

# %% nbgrader="tests" id="check_parity_tests" points=3
"""check_parity returns a small float for the exported model and its session (also for a model handed
over in training mode), and raises AssertionError for a session whose logits drift by 1e-2 while every
predicted class stays the same; hidden: a session whose input has another name, a drift of 1e-3 on one
element only, a looser tolerance that accepts it, and a drift that only an element-by-element
tolerance catches; and cases drawn afresh at every grading (techday.draw)."""
import numpy as np
from techday.i18n import msg
import torch


class FakeInput:
    def __init__(self, name):
        self.name = name


class DriftingSession:
    """Wraps a real session; adds `drift` to its logits (element `only` or all)."""

    def __init__(self, session, drift, input_name="images", only=None):
        self.session, self.drift, self.input_name, self.only = session, drift, input_name, only

    def get_inputs(self):
        return [FakeInput(self.input_name)]

    def run(self, names, feed):
        assert list(feed) == [self.input_name], msg("15.fed_wrong_input", "fed {fed}, the session's input is {name!r}",
                                                       fed=list(feed), name=self.input_name)
        out = self.session.run(names, {"images": feed[self.input_name]})[0].copy()
        if self.only is None:
            out += self.drift
        else:
            out[self.only] += self.drift
        return [out]


x_par = x_test[:50]
model.train()
diff = check_parity(model, session, x_par)
assert isinstance(diff, float) and 0 <= diff < 1e-4, msg("15.parity_faithful", "check_parity returned {diff!r} for a faithful export", diff=diff)
drifted = DriftingSession(session, 1e-2)
with torch.no_grad():
    model.eval()
    same_classes = np.array_equal(drifted.run(None, {"images": x_par.numpy()})[0].argmax(1), model(x_par).argmax(1).numpy())
assert same_classes, msg("15.drift_changed_class", "the test's drift changed a predicted class")  # the drift changes no prediction: only the scores tell
try:
    check_parity(model, drifted, x_par)
except AssertionError:
    pass
else:
    raise AssertionError(msg("15.drift_passed", "logits that drift by 1e-2 passed the parity check: compare the values, not the classes"))
### BEGIN HIDDEN TESTS
renamed = DriftingSession(session, 0.0, input_name="pixels")
assert check_parity(model, renamed, x_par) < 1e-4, msg("15.hidden_input_name", "hidden: use session.get_inputs()[0].name")
one = DriftingSession(session, 1e-3, only=(7, 1))
try:
    check_parity(model, one, x_par)
except AssertionError:
    pass
else:
    raise AssertionError(msg("15.hidden_one_element_drift", "hidden: a drift of 1e-3 on one element passed with rtol=1e-4, atol=1e-5"))
d_loose = check_parity(model, one, x_par, rtol=1e-2, atol=1e-2)
assert 9e-4 < d_loose < 1.1e-3, msg("15.hidden_loose_difference", "hidden: expected the largest difference near 1e-3, got {got}", got=d_loose)
# Element by element: a drift of half a percent of the largest logit, on the smallest one, is far beyond
# rtol=1e-2 of that element, though within 1e-2 of the largest.
with torch.no_grad():
    logits_par = model(x_par).numpy()
smallest = np.unravel_index(np.abs(logits_par).argmin(), logits_par.shape)
small_drift = DriftingSession(session, 0.005 * float(np.abs(logits_par).max()), only=smallest)
try:
    check_parity(model, small_drift, x_par, rtol=1e-2, atol=0.0)
except AssertionError:
    pass
else:
    raise AssertionError(msg("15.hidden_elementwise", "hidden: a drift on the smallest logit passed: the tolerance "
                             "atol + rtol * |torch| holds for each element, not for the largest one"))
# Drawn at every grading (techday.draw): the images, the drifting element and the input names above are
# published with the course.
import techday.draw

rd = techday.draw.rng("15.check_parity_tests")
start_d = int(rd.integers(0, 250))
x_d = x_test[start_d:start_d + int(rd.integers(1, 51))]
name_d = str(rd.choice(["input", "x", "pixels", "images_in", "batch"]))
assert check_parity(model, DriftingSession(session, 0.0, input_name=name_d), x_d) < 1e-4, msg(
    "15.drawn_faithful", "{n} images, an input named {name!r}: a faithful session must pass", n=len(x_d), name=name_d)
where_d = (int(rd.integers(0, len(x_d))), int(rd.integers(0, 3)))
with torch.no_grad():
    model.eval()
    logit_d = float(model(x_d)[where_d])
# Beyond the tolerance of that element (atol + rtol * |logit|) by a drawn factor of 5 to 50, either way.
drift_d = float(rd.uniform(5, 50)) * (1e-5 + 1e-4 * abs(logit_d)) * (1 if rd.integers(0, 2) else -1)
try:
    check_parity(model, DriftingSession(session, drift_d, input_name=name_d, only=where_d), x_d)
except AssertionError:
    pass
else:
    raise AssertionError(msg("15.drawn_drift_passed", "{n} images: a drift of {drift:.1e} on logit {where} passed with rtol=1e-4, "
                             "atol=1e-5", n=len(x_d), drift=drift_d, where=where_d))
### END HIDDEN TESTS
print(msg("15.check_parity_passed", "check_parity: all visible tests passed."))

# %% [markdown] key="latency-throughput"
# ## 5. Latency and throughput
#
# A service is judged by two numbers:
#
# - **latency**: how long one request waits for its answer. Report the **median** (typical) and a tail
#   percentile such as the 90th (p90: 1 request in 10 is slower), after a **warm-up** (the first runs
#   allocate memory and pick kernels). A mean is pulled up by a single hiccup; the median is not.
# - **throughput**: answers per second, `batch / median latency`.
#
# Larger batches raise throughput (the engine uses the hardware better) and raise latency (a request
# waits for its whole batch). A server picks the largest batch whose latency fits the service's budget.
#
# ## Exercise 3: `measure_latency` (3 points)
#
# Write `measure_latency(run, batch, warmup=3, repeat=20)`: call `run()` `warmup` times untimed, then
# `repeat` times, timing each call alone with `time.perf_counter()`. Return a dict with `"batch"`,
# `"median_ms"` (the median of the timed calls, in milliseconds), `"p90_ms"`
# (`np.percentile(times, 90)` in ms) and `"samples_per_s"` (`batch` divided by the median in seconds).

# %% nbgrader="solution" id="measure_latency"
def measure_latency(run, batch, warmup=3, repeat=20):
    """Median and p90 latency of run() after a warm-up, and the throughput at the median."""
    ### BEGIN SOLUTION
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"batch": batch, "median_ms": median * 1e3, "p90_ms": float(np.percentile(times, 90)) * 1e3,
            "samples_per_s": batch / median}
    ### END SOLUTION

# %% nbgrader="tests" id="measure_latency_tests" points=3
"""measure_latency calls run() warmup + repeat times, leaves slow warm-up calls out, reports the
median (one 0.25 s outlier among 10 ms calls does not move it, nor do 5 slow warm-up calls before 4
timed ones), the 90th percentile, and batch / median as the throughput; hidden: warmup 0, repeat 5, another batch size,
a p90 that is not the slowest call; and cases drawn afresh at every grading (techday.draw)."""
import time
from techday.i18n import msg


def fake_run(schedule):
    calls = []

    def run():
        calls.append(1)
        time.sleep(schedule[min(len(calls) - 1, len(schedule) - 1)])
    return run, calls


sched = [0.2] * 3 + [0.01] * 9 + [0.25] + [0.01] * 10  # warm-up, 9 fast, one outlier, 10 fast
run, calls = fake_run(sched)
rec = measure_latency(run, batch=16, warmup=3, repeat=20)
assert len(calls) == 23, msg("15.run_call_count", "run() was called {count} times; expected warmup + repeat = 23", count=len(calls))
assert {"batch", "median_ms", "p90_ms", "samples_per_s"} <= set(rec), msg("15.record_keys", "record keys: {keys}", keys=sorted(rec))
assert rec["batch"] == 16, msg("15.record_batch", "the record's batch is {got!r}, expected 16", got=rec["batch"])
assert 9 <= rec["median_ms"] < 40, \
    msg("15.median_10ms", "median {ms:.1f} ms for calls of 10 ms: use the median, and leave the warm-up out", ms=rec["median_ms"])
assert rec["p90_ms"] >= rec["median_ms"], msg("15.p90_below_median", "p90_ms {p90:.1f} is below median_ms {median:.1f}",
                                               p90=rec["p90_ms"], median=rec["median_ms"])
assert abs(rec["samples_per_s"] - 16 / (rec["median_ms"] / 1e3)) < 1e-6 * rec["samples_per_s"], \
    msg("15.samples_per_s", "samples_per_s must be batch / median seconds")
run_w, calls_w = fake_run([0.1] * 5 + [0.005] * 4)  # more warm-up calls than timed ones
rec_w = measure_latency(run_w, batch=2, warmup=5, repeat=4)
assert len(calls_w) == 9 and rec_w["median_ms"] < 50, \
    msg("15.warmup_timed", "median {ms:.1f} ms for calls of 5 ms after 5 slow warm-up calls: do not time the warm-up",
        ms=rec_w["median_ms"])
### BEGIN HIDDEN TESTS
run_h, calls_h = fake_run([0.01, 0.01, 0.01, 0.01, 0.3])
rec_h = measure_latency(run_h, batch=3, warmup=0, repeat=5)
assert len(calls_h) == 5 and rec_h["batch"] == 3, msg("15.hidden_warmup0", "hidden: warmup=0, repeat=5")
assert rec_h["median_ms"] < 60, msg("15.hidden_median_300", "hidden: the median of [10, 10, 10, 10, 300] ms is about 10 ms")
assert rec_h["p90_ms"] > 100, msg("15.hidden_p90_300", "hidden: the 90th percentile must see the 300 ms call, got {ms:.1f} ms", ms=rec_h["p90_ms"])
assert rec["p90_ms"] < 100, msg("15.hidden_p90_not_max", "hidden: p90_ms {ms:.1f} for 19 calls of 10 ms and one of 250 ms: the "
                                "90th percentile is about 10 ms (np.percentile(times, 90)), not the slowest call", ms=rec["p90_ms"])
# Drawn at every grading (techday.draw): the batches, warm-ups and repeats above are published with the course.
import techday.draw

rd = techday.draw.rng("15.measure_latency_tests")
batch_d, warmup_d, repeat_d = int(rd.integers(1, 257)), int(rd.integers(1, 6)), int(rd.integers(3, 10))  # warmup 0: above
run_d, calls_d = fake_run([0.002])
rec_d = measure_latency(run_d, batch=batch_d, warmup=warmup_d, repeat=repeat_d)
assert len(calls_d) == warmup_d + repeat_d and rec_d["batch"] == batch_d, msg(
    "15.drawn_calls", "batch {batch}, warmup {warmup}, repeat {repeat}: run() was called {count} times and the record's batch "
    "is {got!r}; expected warmup + repeat calls and the batch given", batch=batch_d, warmup=warmup_d, repeat=repeat_d,
    count=len(calls_d), got=rec_d["batch"])
assert abs(rec_d["samples_per_s"] - batch_d / (rec_d["median_ms"] / 1e3)) < 1e-6 * rec_d["samples_per_s"], \
    msg("15.samples_per_s", "samples_per_s must be batch / median seconds")
### END HIDDEN TESTS
print(msg("15.measure_latency_passed", "measure_latency: all visible tests passed."))

# %% [markdown] key="note-2"
# Now the real thing: PyTorch (eager, `no_grad`, eval mode) and ONNX Runtime at several batch sizes,
# on the same inputs, after a parity check at each size. Both are timed the way a server answers:
# from a batch in host memory to logits in host memory. `session.run` with NumPy arrays copies the
# input to the GPU and the logits back on every call when it runs on the CUDA execution provider, so
# the PyTorch call does the same (`xb.to(device)`, then `.cpu()`, which also waits for the GPU);
# timing PyTorch on inputs already on the GPU would leave out copies that ONNX Runtime pays.

# %%
batch_sizes = [1, 8, 32, 128] if lab.scale == "full" else [1, 8, 32]
repeat = lab.size(full=50, ci=10)
model.eval()
torch_model = model.to(device)
rows = []
for b in batch_sizes:
    xb = make_parts(b, seed=1000 + b, as_tensor=True)[0]
    check_parity(model.cpu(), session, xb)
    torch_model = model.to(device)

    def run_torch():
        with torch.no_grad():   # host in, host out, as session.run with NumPy arrays; .cpu() waits for the GPU
            return torch_model(xb.to(device)).cpu()

    feed = {"images": xb.numpy()}
    t_rec = measure_latency(run_torch, b, warmup=3, repeat=repeat)
    o_rec = measure_latency(lambda: session.run(None, feed), b, warmup=3, repeat=repeat)
    rows.append((b, t_rec, o_rec))

print(msg("15.latency_table_header", "batch | PyTorch median      p90  samples/s | ORT median      p90  samples/s"))
for b, t_rec, o_rec in rows:
    print(f"{b:5d} | {t_rec['median_ms']:11.3f} ms {t_rec['p90_ms']:8.3f} {t_rec['samples_per_s']:10.0f} | "
          f"{o_rec['median_ms']:7.3f} ms {o_rec['p90_ms']:8.3f} {o_rec['samples_per_s']:10.0f}")
print(msg("15.measured_on", "PyTorch: {torch_label}; ONNX Runtime: {ort_label}",
          torch_label=shown_label(device_label(device)),
          ort_label=ORT_LABEL))
if not lab.on_gpu:
    print(msg("15.cpu_tier_figures", "CPU tier: CPU figures on a shared machine, not GPU figures. The shape of the trade-off "
              "(throughput up, latency up with the batch) carries over; the numbers do not."))

# %% [markdown] key="summary"
# ## Summary
#
# - Export with `torch.onnx.export(..., dynamo=True, dynamic_shapes=...)` from eval mode; name the
#   inputs and outputs; check the file with `onnx.checker`.
# - Compare ONNX Runtime with PyTorch on real inputs, values not classes, with a stated tolerance.
# - An `InferenceSession` with the right providers and threads serves the model without PyTorch.
# - Report latency as median and p90 after a warm-up, throughput as batch / median, and choose the
#   batch size against a latency budget.
#
# ## Going further
#
# - ONNX Runtime's performance tuning: https://onnxruntime.ai/docs/performance/ (graph optimisation
#   levels, threading, the CUDA and TensorRT execution providers, float16 and int8 quantisation with
#   `onnxruntime.quantization`).
# - The PyTorch exporter: https://pytorch.org/docs/stable/onnx.html
# - Serving many requests: batch them on the server side (NVIDIA Triton Inference Server's dynamic
#   batcher, or a small queue in front of `session.run`).
# - Next, lab 16: attention and transformers; then lab 17, the assessment, whose model deploys the same way.
