# %% [markdown] key="training-fast-gpu"
# # 13 Training fast on one GPU
#
# A model that trains in an hour instead of four is a model you can iterate on four times as often.
# This lab takes a plain PyTorch training loop and makes it faster one step at a time, measuring
# samples per second before and after each step: mixed precision, the channels-last memory layout,
# `torch.compile`, and a data pipeline that keeps the GPU fed. The profiler shows where the time goes.
#
# ## You will learn
# - how to measure training throughput honestly: warm-up outside the timed region, and
#   `torch.cuda.synchronize()` before reading the clock, because GPU work is asynchronous;
# - mixed precision: `torch.autocast` with bfloat16 or float16, and `torch.amp.GradScaler`, which keeps
#   float16 gradients from underflowing and skips steps whose gradients overflowed; and TF32, with which
#   float32 convolutions and matrix multiplications may already run on Tensor Cores (Ampere and later);
# - the channels-last memory layout (`torch.channels_last`) that Tensor Cores prefer for convolutions;
# - `torch.compile`: what it does, what the first call costs, and when it pays;
# - a `DataLoader` with worker processes and pinned memory, and asynchronous copies;
# - `torch.profiler`: which operators take the time.
#
# **Tier honesty**: on the GPU tier every figure is a GPU figure. On the CPU tier the same
# code runs on the processor at a tiny size: it shows the code path, and its numbers are CPU numbers,
# labelled so, never a prediction of what a GPU does.
#
# **How this lab works**: read, run the examples, solve the three exercises; the test
# cell after each one checks it (do not edit test cells). The grader also runs hidden tests.
# Grading checks behaviour, never speed.
#
# Points: exercise 1: 3, exercise 2: 4, exercise 3: 3 (10 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# Run this cell first: it chooses the tier and prints it.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("13.title", "13 Training fast on one GPU"))

# %% nbgrader="locked" id="imports"
import copy
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from techday.dltrain import device_label
from techday.i18n import msg
from techday.parts import make_parts
from techday.tier import shown_label

device = torch.device("cuda" if lab.on_gpu else "cpu")
if not lab.on_gpu:
    torch.set_num_threads(1)  # CI machines share their cores between labs: one thread each, no oversubscription
LABEL = device_label(device)  # records keep it as it stands; printed, shown_label says it in the run's language
print(msg("13.banner", "PyTorch {version} | device {device} | figures in this lab: {label}",
          version=torch.__version__, device=device, label=shown_label(LABEL)))
if lab.on_gpu:
    major, minor = torch.cuda.get_device_capability()
    print(msg("13.capability", "compute capability {major}.{minor}; bfloat16 supported: {bf16}",
              major=major, minor=minor, bf16=torch.cuda.is_bf16_supported(including_emulation=False)))
    print(msg("13.tf32", "TF32 for float32 (Tensor Cores, compute capability 8.0 and later): cuDNN convolutions {conv}, "
                         "matrix multiplications {matmul} (float32 matmul precision {precision!r})",
              conv=torch.backends.cudnn.allow_tf32, matmul=torch.backends.cuda.matmul.allow_tf32,
              precision=torch.get_float32_matmul_precision()))

# %% [markdown] key="model-data-baseline"
# ## 1. The model, the data, the baseline
#
# The data are the course's synthetic *parts inspection* images (`techday.parts`): 1 x 32 x 32
# photographs of machined parts, ok, scratched or dented. The model is a small CNN whose width we
# choose by scale: wide on a GPU, so that the GPU has real work, narrow on the CPU tier.
# The baseline step is the plain float32 loop every PyTorch tutorial starts with. ("float32" on a GPU
# of the Ampere generation or later does not quite mean FP32 arithmetic everywhere: see TF32 in
# section 3; the imports cell above prints what this machine's PyTorch does.)

# %% nbgrader="locked" id="model"
WIDTH = lab.size(full=64, ci=8)
BATCH = lab.size(full=256, ci=32)
N_BATCHES = lab.size(full=60, ci=6)  # batches per measurement (the first WARMUP are not timed)
WARMUP = 2


def make_model(width=WIDTH):
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

    return nn.Sequential(*block(1, width), *block(width, width), nn.MaxPool2d(2),
                         *block(width, 2 * width), *block(2 * width, 2 * width), nn.MaxPool2d(2),
                         *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 3))


images, labels = make_parts(BATCH * N_BATCHES, seed=13, as_tensor=True)
batches = [(images[i:i + BATCH].to(device), labels[i:i + BATCH].to(device)) for i in range(0, len(images), BATCH)]
torch.manual_seed(0)
base_model = make_model()
print(msg("13.batches", "{n_batches} batches of {batch} parts; model width {width}, {n_params:,} parameters",
          n_batches=len(batches), batch=BATCH, width=WIDTH, n_params=sum(p.numel() for p in base_model.parameters())))


def fresh(model=base_model):
    """A copy of the same initial model and its optimizer: every variant starts from the same weights."""
    m = copy.deepcopy(model).to(device)
    return m, torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)


def fp32_step(model, optimizer):
    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return step

# %% [markdown] key="measuring-throughput"
# ## 2. Measuring throughput
#
# Throughput is samples processed per second: `samples_per_s = samples / seconds`. Two traps:
#
# - **Warm-up**. The first steps are slow for reasons that have nothing to do with steady
#   training: CUDA context creation, loading kernels and initialising cuDNN (and, with
#   `torch.backends.cudnn.benchmark = True`, timing its algorithms), the caching allocator growing,
#   `torch.compile` compiling. Run a few steps *before* starting the clock.
# - **Asynchrony**. On a GPU, kernel launches are asynchronous: `loss.backward()` and
#   `optimizer.step()` only *queue* kernels and return (unless something in them copies a value back
#   to the host). Read the clock without waiting and you time the queueing, not the work.
#   `torch.cuda.synchronize()` waits until the GPU has finished everything queued: call it before
#   starting the clock (so the warm-up is over) and before stopping it.
#
# The host clock around the whole loop measures what training throughput is: GPU work *and* the Python
# and launch overhead between steps. CUDA events would not leave that overhead out either: when the GPU
# sits idle waiting for the host to queue the next kernel, the idle time lies between the events too.
#
# ## Exercise 1: `measure_throughput` (3 points)
#
# Write `measure_throughput(step, batches, warmup=2, device="cpu", label="")`:
#
# - iterate over `batches` **once** (it may be a generator), calling `step(x, y)` for each `(x, y)`;
# - the first `warmup` batches are not timed and not counted;
# - if `torch.device(device).type == "cuda"`, call `torch.cuda.synchronize(device)` just before starting
#   the clock and just after the last step; never call it on the CPU;
# - time with `time.perf_counter()`;
# - return a dict with keys `"label"`, `"device"` (the string `str(torch.device(device))`),
#   `"batches"` and `"samples"` (timed ones only; samples are `len(x)` summed), `"seconds"` and
#   `"samples_per_s"`.

# %% nbgrader="solution" id="measure_throughput"
def measure_throughput(step, batches, warmup=2, device="cpu", label=""):
    """Samples per second of step(x, y) over batches, after `warmup` untimed batches."""
    ### BEGIN SOLUTION
    dev = torch.device(device)
    on_cuda = dev.type == "cuda"
    it = iter(batches)
    for _ in range(warmup):
        x, y = next(it)
        step(x, y)
    if on_cuda:
        torch.cuda.synchronize(dev)
    n_batches = n_samples = 0
    t0 = time.perf_counter()
    for x, y in it:
        step(x, y)
        n_batches += 1
        n_samples += len(x)
    if on_cuda:
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    return {"label": label, "device": str(dev), "batches": n_batches, "samples": n_samples,
            "seconds": seconds, "samples_per_s": n_samples / seconds}
    ### END SOLUTION

# %% nbgrader="tests" id="measure_throughput_tests" points=3
"""measure_throughput leaves slow warm-up steps out of the timing and the counts, calls every step once
in order, returns the labelled record, never synchronises on the CPU and, for a CUDA device,
synchronises before the clock starts and after the last step (a spy stands in for
torch.cuda.synchronize); hidden: the clock starts and stops outside the syncs, warmup 0 and 3, batches given
as a one-pass generator, a smaller last batch, a torch.device as the device; and cases drawn afresh at every
grading (techday.draw)."""
import time

import torch
from techday.i18n import msg


def fake_batches(n, batch=8):
    return [(torch.full((batch, 1), float(i)), torch.zeros(batch, dtype=torch.int64)) for i in range(n)]


def run_fake(n=6, warmup=2, device="cpu", slow=0.25, fast=0.01, as_generator=False):
    events = []

    def step(x, y):
        i = int(x[0, 0])
        events.append(("step", i))
        time.sleep(slow if i < warmup else fast)

    data = fake_batches(n)
    rec = measure_throughput(step, (b for b in data) if as_generator else data, warmup=warmup, device=device,
                             label=f"fake {device}")
    return rec, events


real_sync = torch.cuda.synchronize
sync_calls = []
torch.cuda.synchronize = lambda *a, **k: sync_calls.append(a)
try:
    rec, events = run_fake(device="cpu")
    assert not sync_calls, msg("13.no_sync_on_cpu", "do not call torch.cuda.synchronize() for a CPU device")
    assert [e for e in events] == [("step", i) for i in range(6)], \
        msg("13.steps_order", "steps were called as {events}; call each once, in order", events=events)
    assert isinstance(rec, dict) and {"label", "device", "batches", "samples", "seconds", "samples_per_s"} <= set(rec), \
        msg("13.record_keys", "the record needs label, device, batches, samples, seconds, samples_per_s; got {rec!r}", rec=rec)
    assert rec["label"] == "fake cpu" and rec["device"] == "cpu", \
        msg("13.label_device", "label/device: {label!r}, {device!r}", label=rec["label"], device=rec["device"])
    assert rec["batches"] == 4 and rec["samples"] == 32, \
        msg("13.counts", "6 batches of 8 with warmup=2: time and count 4 batches, 32 samples; got {batches}, {samples}",
            batches=rec["batches"], samples=rec["samples"])
    assert rec["seconds"] < 0.2, \
        msg("13.warmup_timed", "{seconds:.2f} s: the 2 warm-up steps (0.25 s each) must not be timed", seconds=rec["seconds"])
    assert abs(rec["samples_per_s"] - rec["samples"] / rec["seconds"]) < 1e-6 * rec["samples_per_s"], \
        msg("13.rate", "samples_per_s must be samples / seconds")

    events_sync = []
    torch.cuda.synchronize = lambda *a, **k: events_sync.append(("sync",))
    rec, events = run_fake(device="cuda", slow=0.0)
    assert rec["device"] == "cuda", msg("13.device_str", "device {device!r}: return str(torch.device(device))", device=rec["device"])
    assert len(events_sync) >= 2, msg("13.sync_twice", "synchronise before starting the clock and after the last step on a CUDA device")
finally:
    torch.cuda.synchronize = real_sync
### BEGIN HIDDEN TESTS
order = []
real_clock = time.perf_counter


def counting_clock():  # returns how many times it was read: the timed interval names the two reads it spans
    order.append(f"clock{sum(e.startswith('clock') for e in order) + 1}")
    return float(order[-1][5:])


torch.cuda.synchronize = lambda *a, **k: order.append("sync")
time.perf_counter = counting_clock
try:
    def step_h(x, y):
        order.append(f"step{int(x[0, 0])}")
    rec_h = measure_throughput(step_h, fake_batches(5), warmup=2, device="cuda:0", label="h")
finally:
    torch.cuda.synchronize = real_sync
    time.perf_counter = real_clock
events_h = [e for e in order if not e.startswith("clock")]
assert events_h[-1] == "sync", msg("13.hidden_last_sync", "hidden: the last thing before stopping the clock must be a sync, got {order}", order=events_h)
assert "sync" in events_h[events_h.index("step1") + 1:events_h.index("step2") + 1], \
    msg("13.hidden_sync_after_warmup", "hidden: synchronise after the warm-up, before the first timed step: {order}", order=events_h)
if len(events_h) < len(order):  # time.perf_counter was the clock: the timed reads must lie outside both syncs
    warm_sync = max(i for i, e in enumerate(order[:order.index("step2")]) if e == "sync")
    last_sync = max(i for i, e in enumerate(order) if e == "sync")
    starts = [float(e[5:]) for e in order[warm_sync + 1:order.index("step2")] if e.startswith("clock")]
    stops = [float(e[5:]) for e in order[last_sync + 1:] if e.startswith("clock")]
    assert any(rec_h["seconds"] == b - a for a in starts for b in stops), msg(
        "13.hidden_clock_outside_syncs", "hidden: start the clock after the sync that ends the warm-up and stop it after the "
        "sync that follows the last step; events {order}, {seconds} s timed", order=order, seconds=rec_h["seconds"])
rec_d = measure_throughput(lambda x, y: time.sleep(0.001), fake_batches(3), warmup=1, device=torch.device("cpu"), label="d")
assert isinstance(rec_d["device"], str) and rec_d["device"] == "cpu", msg(
    "13.hidden_device_object", "hidden: given torch.device('cpu'), as the notebook passes it, the record's device is "
    "{device!r}: return the string str(torch.device(device))", device=rec_d["device"])
uneven = [(torch.full((b, 3), float(i)), torch.zeros(b, dtype=torch.int64)) for i, b in enumerate((8, 8, 8, 5))]
rec_u = measure_throughput(lambda x, y: time.sleep(0.001), uneven, warmup=1, device="cpu", label="uneven")
assert rec_u["batches"] == 3 and rec_u["samples"] == 21, msg(
    "13.hidden_uneven_batches", "hidden: batches of 8, 8, 8 and 5 samples of 3 values each, warmup 1: 3 batches and 21 "
    "samples (len(x) of every timed batch), got {batches}, {samples}", batches=rec_u["batches"], samples=rec_u["samples"])
rec0, ev0 = run_fake(n=5, warmup=0, slow=0.01)
assert rec0["batches"] == 5 and rec0["samples"] == 40, msg("13.hidden_warmup0", "hidden: warmup=0 times every batch")
rec3, ev3 = run_fake(n=7, warmup=3, as_generator=True)
assert rec3["batches"] == 4 and rec3["samples"] == 32 and len(ev3) == 7, \
    msg("13.hidden_generator", "hidden: a generator of 7 batches, warmup 3")
assert rec3["seconds"] < 0.2, msg("13.hidden_generator_warmup", "hidden: warm-up steps of a generator were timed")
# Drawn at every grading (techday.draw): the batch counts, sizes and warm-ups above are published with the course.
import techday.draw

rd = techday.draw.rng("13.measure_throughput_tests")
sizes_d = [int(v) for v in rd.integers(1, 17, size=int(rd.integers(2, 10)))]
warmup_d = int(rd.integers(0, len(sizes_d)))
data_d = [(torch.full((b, 2), float(i)), torch.zeros(b, dtype=torch.int64)) for i, b in enumerate(sizes_d)]
steps_d = []


def step_d(x, y):
    steps_d.append(int(x[0, 0]))
    time.sleep(0.001)


rec_dr = measure_throughput(step_d, (b for b in data_d) if rd.integers(0, 2) else data_d, warmup=warmup_d, device="cpu",
                            label="drawn")
assert steps_d == list(range(len(sizes_d))), msg("13.steps_order", "steps were called as {events}; call each once, in order",
                                                 events=steps_d)
assert (rec_dr["batches"], rec_dr["samples"]) == (len(sizes_d) - warmup_d, sum(sizes_d[warmup_d:])), msg(
    "13.drawn_counts", "batches of {sizes} samples, warmup {warmup}: time and count {batches} batches and {samples} samples "
    "(len(x) of every timed batch), got {got_batches}, {got_samples}", sizes=sizes_d, warmup=warmup_d,
    batches=len(sizes_d) - warmup_d, samples=sum(sizes_d[warmup_d:]), got_batches=rec_dr["batches"], got_samples=rec_dr["samples"])
assert abs(rec_dr["samples_per_s"] - rec_dr["samples"] / rec_dr["seconds"]) < 1e-6 * rec_dr["samples_per_s"], \
    msg("13.rate", "samples_per_s must be samples / seconds")
### END HIDDEN TESTS
print(msg("13.measure_passed", "measure_throughput: all visible tests passed."))

# %% [markdown] key="note"
# The baseline: float32, the default memory layout, eager execution.

# %%
results = []


def record(rec, what):
    results.append({**rec, "step": what})
    print(msg("13.record", "{what:38s} {rate:10.1f} samples/s  ({samples} samples in {seconds:.3f} s) [{label}]",
              what=what, rate=rec["samples_per_s"], samples=rec["samples"], seconds=rec["seconds"], label=rec["label"]))


model, opt = fresh()
record(measure_throughput(fp32_step(model, opt), batches, WARMUP, device, LABEL), msg("13.row_1", "1. float32 baseline"))

# %% [markdown] key="mixed-precision"
# ## 3. Mixed precision
#
# Tensor Cores multiply 16-bit numbers (float16, bfloat16) many times faster than the ordinary FP32
# units, and 16-bit activations halve the memory traffic. `torch.autocast` runs each operator in the
# precision that suits it:
# matrix multiplications and convolutions in 16 bits, reductions, softmax and losses in 32 bits. The
# weights stay float32, so small updates are not lost.
#
# | format | exponent bits | mantissa bits | range | needs a GradScaler? |
# | --- | --- | --- | --- | --- |
# | float32 | 8 | 23 | 1e-38 ... 3e38 | no |
# | bfloat16 | 8 | 7 | same as float32 | no |
# | float16 | 5 | 10 | 6e-8 ... 65504 | **yes** |
#
# float16 has so little range that small gradients underflow to zero. `GradScaler` multiplies the
# loss by a large factor (65536 to start) before `backward()`, so the gradients are large enough to
# survive; `scaler.step(optimizer)` divides them back, and **skips the step** if any gradient is
# inf or NaN (an overflow); `scaler.update()` then lowers the factor after an overflow, and raises it
# after a run of good steps. bfloat16 has float32's range: on GPUs that support it (A100, H100,
# L40S...) it needs no scaler.
#
# **TF32.** Since Ampere (A100, compute capability 8.0), Tensor Cores also take *TensorFloat-32*: float32
# inputs rounded to a 10-bit mantissa (float16's precision, float32's range), products summed in
# float32. When it is enabled, a "float32" model runs its convolutions or matrix multiplications on
# Tensor Cores with no change to the code. PyTorch's defaults: `torch.backends.cudnn.allow_tf32 = True`
# (cuDNN convolutions use TF32), `torch.backends.cuda.matmul.allow_tf32 = False` (matrix
# multiplications stay FP32, unless you call `torch.set_float32_matmul_precision("high")`). So on an
# Ampere or later GPU this lab's float32 baseline already runs its convolutions, nearly all of its
# work, on Tensor Cores in TF32, and 16-bit mixed precision gains over it about 2x in Tensor Core rate
# plus the halved memory traffic, not the 10x or more that FP32-versus-FP16 peak figures suggest. On
# older GPUs (Volta, Turing) there is no TF32 and float32 runs on the ordinary FP32 units.
#
# ```python
# scaler = torch.amp.GradScaler("cuda")          # enabled=False makes every call a pass-through
# optimizer.zero_grad()
# with torch.autocast("cuda", dtype=torch.float16):
#     loss = F.cross_entropy(model(x), y)        # forward and loss under autocast
# scaler.scale(loss).backward()                  # backward outside autocast, on the scaled loss
# scaler.step(optimizer)                         # unscale, check for inf/NaN, step (or skip)
# scaler.update()                                # adjust the scale for the next step
# ```
#
# ## Exercise 2: `amp_train_step` (4 points)
#
# Write `amp_train_step(model, optimizer, scaler, x, y, device_type, amp_dtype)` that does one
# training step as above, with `torch.autocast(device_type, dtype=amp_dtype)`, and returns the loss as
# a Python float. Use the scaler for every step, whatever the dtype: with `enabled=False` it does
# nothing, so one function serves float16, bfloat16 and float32.
#
# (`loss.item()` copies the loss to the host, so it waits for the GPU at every step; the exercise asks
# for it so the tests can read the loss. A production loop keeps the loss on the device and reads it
# every few hundred steps.)

# %% nbgrader="solution" id="amp_train_step"
def amp_train_step(model, optimizer, scaler, x, y, device_type, amp_dtype):
    """One mixed-precision training step; returns the loss as a float."""
    ### BEGIN SOLUTION
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type, dtype=amp_dtype):
        loss = F.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.item()
    ### END SOLUTION

# %% nbgrader="tests" id="amp_train_step_tests" points=4
"""amp_train_step runs the forward pass under autocast with the requested dtype (a hook records it),
returns a finite float loss, goes through scale/step/update of the GradScaler, updates the weights,
matches a reference over two float16 steps (so the gradients are cleared each step), and when the
scaled gradients overflow leaves the weights unchanged and lowers the scale; hidden: bfloat16 with a
disabled scaler, three steps with Adam, a scale of 1024 (the loss returned is the unscaled one),
overflow with SGD momentum; and cases drawn afresh at every grading (techday.draw)."""
import copy

import torch
import torch.nn.functional as F
from techday.i18n import msg


class SpyScaler(torch.amp.GradScaler):
    """A real GradScaler that also records which of its methods were called."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def scale(self, outputs):
        self.calls.append("scale")
        return super().scale(outputs)

    def step(self, optimizer, *args, **kwargs):
        self.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale=None):
        self.calls.append("update")
        return super().update(new_scale)


def probe_model(seed=0):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                            torch.nn.Linear(4 * 6 * 6, 3))
    seen = []
    m[0].register_forward_hook(lambda mod, inp, out: seen.append(
        (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None, out.dtype)))
    return m, seen


def reference(model, make_opt, batches, dtype, scaler_kwargs):
    model = copy.deepcopy(model)
    opt, scaler = make_opt(model.parameters()), torch.amp.GradScaler("cpu", **scaler_kwargs)
    losses = []
    for x, y in batches:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=dtype):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    return model, losses


def check_amp(dtype, n_steps, make_opt, seed=0, **scaler_kwargs):
    # A scale of 1 (or a disabled scaler): a large scale would divide leftover gradients of the previous
    # step by itself, and hide a missing zero_grad.
    model, seen = probe_model(seed)
    g = torch.Generator().manual_seed(seed)
    data = [(torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n_steps)]
    expected, expected_losses = reference(model, make_opt, data, dtype, scaler_kwargs)
    before = [p.detach().clone() for p in model.parameters()]
    opt, scaler = make_opt(model.parameters()), SpyScaler("cpu", **scaler_kwargs)
    for (x, y), want in zip(data, expected_losses):
        loss = amp_train_step(model, opt, scaler, x, y, "cpu", dtype)
        assert isinstance(loss, float) and loss == loss and abs(loss) < float("inf"), \
            msg("13.loss_float", "loss {loss!r}: return a finite float", loss=loss)
        assert abs(loss - want) <= 1e-4 * max(1.0, abs(want)), msg(
            "13.loss_not_reference", "loss {loss!r}, expected {want!r}: compute the loss under autocast and return its item(), "
            "not the scaled loss that backward() runs on", loss=loss, want=want)
    assert seen and all(s[0] for s in seen), \
        msg("13.autocast_missing", "the forward pass must run inside torch.autocast(device_type, dtype=...)")
    assert all(s[1] == dtype and s[2] == dtype for s in seen), \
        msg("13.autocast_dtype", "autocast ran with {got}, expected {dtype}", got=seen[0][1], dtype=dtype)
    assert scaler.calls == ["scale", "step", "update"] * n_steps, \
        msg("13.scaler_calls", "scaler calls {calls}: use scaler.scale(loss).backward(), scaler.step(optimizer), scaler.update() every step",
            calls=scaler.calls)
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before)), msg("13.weights_unchanged", "the weights did not change")
    for (name, p), q in zip(model.named_parameters(), expected.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6), \
            msg("13.differs_from_reference", "after {n_steps} steps {name} differs from the reference: clear the gradients (zero_grad) every step",
                n_steps=n_steps, name=name)


def check_overflow(make_opt):
    model, _ = probe_model(3)
    opt, scaler = make_opt(model.parameters()), SpyScaler("cpu", init_scale=1e38)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = 50.0 * torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    amp_train_step(model, opt, scaler, x, y, "cpu", torch.float16)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before)), \
        msg("13.overflow_not_skipped", "the scaled gradients overflowed, so the step must be skipped: call scaler.step(optimizer), not optimizer.step()")
    assert scaler.get_scale() < 1e38, msg("13.scale_not_lowered", "after an overflow scaler.update() must lower the scale")


check_amp(torch.float16, 2, lambda p: torch.optim.SGD(p, lr=0.1), init_scale=1.0)
check_overflow(lambda p: torch.optim.SGD(p, lr=0.1))
### BEGIN HIDDEN TESTS
check_amp(torch.bfloat16, 3, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), seed=5, enabled=False)
check_amp(torch.float16, 3, lambda p: torch.optim.Adam(p, lr=1e-2), seed=6, init_scale=1.0)
check_amp(torch.float16, 2, lambda p: torch.optim.SGD(p, lr=0.1), seed=7, init_scale=2.0**10)
check_overflow(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
# Drawn at every grading (techday.draw): the seeds, steps and optimisers above are published with the course.
# A scale of 1 or a disabled scaler only (see check_amp).
import techday.draw

rd = techday.draw.rng("13.amp_train_step_tests")
lr_d, momentum_d = round(float(rd.uniform(0.01, 0.2)), 3), round(float(rd.uniform(0.0, 0.9)), 2)
opt_d = [lambda p: torch.optim.SGD(p, lr=lr_d, momentum=momentum_d),
         lambda p: torch.optim.Adam(p, lr=lr_d / 10)][int(rd.integers(0, 2))]
if rd.integers(0, 2):
    check_amp(torch.float16, int(rd.integers(2, 4)), opt_d, seed=int(rd.integers(0, 2 ** 31)), init_scale=1.0)
else:
    check_amp(torch.bfloat16, int(rd.integers(2, 4)), opt_d, seed=int(rd.integers(0, 2 ** 31)), enabled=False)
### END HIDDEN TESTS
print(msg("13.amp_passed", "amp_train_step: all visible tests passed."))

# %% [markdown] key="note-2"
# Now the same model with mixed precision. On a GPU: bfloat16 where the GPU supports it (no scaler),
# float16 with a GradScaler otherwise. On the CPU tier: bfloat16 autocast on the CPU, which shows the
# code path; whether a CPU gets faster with it depends on its instructions (AMX, AVX-512 BF16), so
# read the CPU figure as a CPU figure.

# %%
if lab.on_gpu:
    AMP_DTYPE = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
else:
    AMP_DTYPE = torch.bfloat16


def amp_step(model, optimizer):
    scaler = torch.amp.GradScaler(device.type, enabled=(AMP_DTYPE == torch.float16))
    return lambda x, y: amp_train_step(model, optimizer, scaler, x, y, device.type, AMP_DTYPE)


model, opt = fresh()
record(measure_throughput(amp_step(model, opt), batches, WARMUP, device, LABEL), f"2. + autocast {str(AMP_DTYPE)[6:]}")

# %% [markdown] key="channels-last"
# ## 4. Channels last
#
# A batch of images is a 4-D tensor `(N, C, H, W)`. PyTorch's default layout stores it "NCHW": all
# of channel 0, then all of channel 1. Tensor Core convolutions prefer "NHWC", the channels of one pixel
# side by side; with NCHW tensors cuDNN often has to transpose the data before and after a
# convolution, or pick a slower kernel.
# `model.to(memory_format=torch.channels_last)` and the same for the input keep the logical shape
# `(N, C, H, W)` and change only the order in memory (the strides):

# %%
x_demo = batches[0][0]
x_cl = x_demo.to(memory_format=torch.channels_last)
print(msg("13.channels_last_strides", "shape {shape} | strides NCHW {nchw} -> channels_last {channels_last}",
          shape=tuple(x_cl.shape), nchw=x_demo.stride(), channels_last=x_cl.stride()))
assert torch.equal(x_demo, x_cl), msg("13.same_values", "same values, different layout")


def channels_last_step(model, optimizer):
    model.to(memory_format=torch.channels_last)
    inner = amp_step(model, optimizer)
    return lambda x, y: inner(x.to(memory_format=torch.channels_last), y)


model, opt = fresh()
record(measure_throughput(channels_last_step(model, opt), batches, WARMUP, device, LABEL), "3. + channels_last")

# %% [markdown] key="torch-compile"
# ## 5. `torch.compile`
#
# `torch.compile(model)` captures the Python code of the model into a graph (TorchDynamo), derives the
# backward graph ahead of time (AOTAutograd), and generates fused kernels (TorchInductor: Triton on
# GPUs, C++ on CPUs). Fusing the batch norm and ReLU that follow a convolution into one kernel saves
# memory round trips (the convolution itself stays a cuDNN call), and the generated code launches
# fewer, larger kernels. The price is paid once, at the first call: tens of
# seconds; later calls with the same shapes reuse the kernels. It pays for long training runs and for
# small operators dominated by launch overhead.
#
# **CPU tier:** Inductor's C++ code generation takes about half a minute for this model on a CI
# machine's two cores, too slow for a lab that runs in CI many times a day. So the CPU tier compiles
# with `backend="aot_eager"`: the same graph capture and ahead-of-time backward, without code
# generation. That shows the code path (and catches graph breaks), but it is not faster; the GPU tier
# uses the default backend, Inductor.

# %%
COMPILE_BACKEND = "inductor" if lab.on_gpu else "aot_eager"


def compiled_step(model, optimizer):
    model.to(memory_format=torch.channels_last)
    compiled = torch.compile(model, backend=COMPILE_BACKEND)
    scaler = torch.amp.GradScaler(device.type, enabled=(AMP_DTYPE == torch.float16))
    return lambda x, y: amp_train_step(compiled, optimizer, scaler, x.to(memory_format=torch.channels_last), y,
                                       device.type, AMP_DTYPE)


torch._dynamo.reset()
model, opt = fresh()
step = compiled_step(model, opt)
t0 = time.perf_counter()
step(*batches[0])
if lab.on_gpu:
    torch.cuda.synchronize()
print(msg("13.first_compile_call", "first call with torch.compile(backend={backend!r}): {seconds:.1f} s (compilation) [{label}]",
          backend=COMPILE_BACKEND, seconds=time.perf_counter() - t0, label=LABEL))
record(measure_throughput(step, batches, WARMUP, device, LABEL), f"4. + torch.compile ({COMPILE_BACKEND})")

# %% [markdown] key="feeding-gpu-dataloader-workers"
# ## 6. Feeding the GPU: DataLoader workers and pinned memory
#
# So far the batches were already on the device. In real training they come from disk or from
# augmentation on the CPU, and a GPU that waits for data is a GPU doing nothing. Three settings:
#
# - `num_workers=k`: `k` worker processes prepare the next batches while the GPU trains on this one;
# - `pin_memory=True` (only with a CUDA device): batches land in page-locked (pinned) host memory,
#   from which the GPU copies by DMA; then `x.to("cuda", non_blocking=True)` is asynchronous: it
#   returns at once and the host goes on preparing and queueing work while the copy runs. The copy is
#   queued on the current stream, so it still runs in order with that stream's kernels; to overlap it
#   with GPU computation, issue it on another CUDA stream (as prefetching loaders do);
# - `persistent_workers=True`: keep the workers between epochs instead of starting them again.
#
# ## Exercise 3: `make_loader` (3 points)
#
# Write `make_loader(dataset, batch_size, device_type, workers)` that returns a `DataLoader` over
# `dataset` that shuffles every epoch, drops the last incomplete batch (`drop_last=True`, so every step
# has the same shape, which `torch.compile` and cuDNN like), uses `workers` worker processes, keeps them
# between epochs when there are any (`persistent_workers` must be False with 0 workers), and pins
# memory only when `device_type == "cuda"`.

# %% nbgrader="solution" id="make_loader"
def make_loader(dataset, batch_size, device_type, workers):
    """A shuffling DataLoader with worker processes, and pinned memory for CUDA."""
    ### BEGIN SOLUTION
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                       num_workers=workers, persistent_workers=workers > 0,
                                       pin_memory=device_type == "cuda")
    ### END SOLUTION

# %% nbgrader="tests" id="make_loader_tests" points=3
"""make_loader shuffles (two epochs differ, the first batch is not samples 0..B-1), keeps labels with
their images, drops the last incomplete batch, pins memory only for CUDA and sets workers and
persistent workers; hidden: one worker process, batch size 7, a CUDA device type (checked on the
loader's settings); and cases drawn afresh at every grading (techday.draw)."""
import torch
from torch.utils.data import TensorDataset

from techday.i18n import msg

n_t = 50
ds = TensorDataset(torch.arange(n_t, dtype=torch.float32).reshape(n_t, 1), 100 + torch.arange(n_t))
torch.manual_seed(0)
ld = make_loader(ds, 8, "cpu", 0)
assert isinstance(ld, torch.utils.data.DataLoader), msg("13.not_a_loader", "return a DataLoader, not a {type_name}", type_name=type(ld).__name__)
assert ld.pin_memory is False, msg("13.pin_cpu", "pin memory only for CUDA: pinned pages are a scarce resource of the host")
assert ld.num_workers == 0 and not ld.persistent_workers, \
    msg("13.zero_workers", "with 0 workers: num_workers=0 and persistent_workers=False")
epoch1 = [(x.flatten().long(), y) for x, y in ld]
epoch2 = [(x.flatten().long(), y) for x, y in ld]
assert len(epoch1) == 6 and all(len(x) == 8 for x, _ in epoch1), \
    msg("13.drop_last", "50 samples in batches of 8: 6 full batches (drop_last=True), got {sizes}", sizes=[len(x) for x, _ in epoch1])
assert all(torch.equal(y, 100 + x) for x, y in epoch1 + epoch2), msg("13.labels_misaligned", "labels no longer belong to their images")
assert not torch.equal(epoch1[0][0], torch.arange(8)), msg("13.not_shuffled", "the first batch is samples 0..7: shuffle=True")
assert not torch.equal(torch.cat([x for x, _ in epoch1]), torch.cat([x for x, _ in epoch2])), \
    msg("13.same_order", "two epochs came in the same order: shuffle every epoch")
### BEGIN HIDDEN TESTS
ld_w = make_loader(ds, 7, "cpu", 1)
assert ld_w.num_workers == 1 and ld_w.persistent_workers, msg("13.hidden_one_worker", "hidden: 1 worker, kept between epochs")
got = [(x.flatten().long(), y) for x, y in ld_w]
assert len(got) == 7 and all(len(x) == 7 for x, _ in got), msg("13.hidden_batch7", "hidden: batch size 7, drop_last")
assert all(torch.equal(y, 100 + x) for x, y in got), msg("13.hidden_labels_workers", "hidden: labels aligned with workers")
del ld_w
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a CPU-only build warns that pinning needs CUDA: only settings are checked
    ld_c = make_loader(ds, 8, "cuda", 2)
assert ld_c.pin_memory is True and ld_c.num_workers == 2 and ld_c.persistent_workers and ld_c.drop_last, \
    msg("13.hidden_cuda_loader", "hidden: for CUDA pin memory, 2 persistent workers, drop_last")
# Drawn at every grading (techday.draw): the sizes and batch sizes above are published with the course.
import techday.draw

rd = techday.draw.rng("13.make_loader_tests")
bs_d = int(rd.integers(2, 13))
n_d = bs_d * int(rd.integers(2, 7)) + int(rd.integers(1, bs_d))  # a last batch that is not full
ds_d = TensorDataset(torch.arange(n_d, dtype=torch.float32).reshape(n_d, 1), 100 + torch.arange(n_d))
got_d = [(x.flatten().long(), y) for x, y in make_loader(ds_d, bs_d, "cpu", 0)]
assert [len(x) for x, _ in got_d] == [bs_d] * (n_d // bs_d), msg(
    "13.drawn_drop_last", "{n} samples in batches of {batch}: {full} full batches (drop_last=True), got {sizes}",
    n=n_d, batch=bs_d, full=n_d // bs_d, sizes=[len(x) for x, _ in got_d])
assert all(torch.equal(y, 100 + x) for x, y in got_d), msg("13.labels_misaligned", "labels no longer belong to their images")
assert len(set(torch.cat([x for x, _ in got_d]).tolist())) == bs_d * (n_d // bs_d), msg(
    "13.drawn_repeats", "{n} samples in batches of {batch}: a sample came twice in one epoch", n=n_d, batch=bs_d)
type_d, workers_d = ["cpu", "cuda"][int(rd.integers(0, 2))], int(rd.integers(0, 5))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a CPU-only build warns that pinning needs CUDA: only settings are checked
    ld_d = make_loader(ds_d, bs_d, type_d, workers_d)
assert (ld_d.pin_memory, ld_d.num_workers, ld_d.persistent_workers, ld_d.drop_last) == (type_d == "cuda", workers_d, workers_d > 0, True), msg(
    "13.drawn_settings", "{device_type}, {workers} workers: pin memory only for CUDA, num_workers={workers}, persistent workers "
    "only with workers, drop_last; got pin_memory={pin}, num_workers={got}, persistent_workers={persistent}, drop_last={drop}",
    device_type=type_d, workers=workers_d, pin=ld_d.pin_memory, got=ld_d.num_workers, persistent=ld_d.persistent_workers,
    drop=ld_d.drop_last)
### END HIDDEN TESTS
print(msg("13.loader_passed", "make_loader: all visible tests passed."))

# %% [markdown] key="note-3"
# Now the batches come from the host through a `DataLoader`, without and with workers and pinned
# memory. The dataset adds light augmentation on the CPU (a random flip and noise), the work that
# worker processes take off the training loop. On the GPU tier the copy to the device is
# `non_blocking`. On the CPU tier there is no copy and the CI machine has two shared cores: workers
# there show the code path, not a speed-up.

# %%
class AugmentedParts(torch.utils.data.Dataset):
    """Parts images with a random horizontal flip and a little noise, made on the CPU per sample."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i]
        if torch.rand(()) < 0.5:
            x = torch.flip(x, dims=[2])
        return x + 0.02 * torch.randn_like(x), self.labels[i]


def to_device(loader):
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


dataset = AugmentedParts(images, labels)
workers = lab.size(full=4, ci=1)
# The two rows differ only in worker processes (on a GPU, make_loader pins memory for both).
for what, n_workers in ((msg("13.row_5a", "5a. host data, DataLoader, 0 workers"), 0),
                        (msg("13.row_5b_one", "5b. host data, 1 worker") if workers == 1 else
                         msg("13.row_5b", "5b. host data, {workers} workers", workers=workers), workers)):
    model, opt = fresh()
    loader = make_loader(dataset, BATCH, device.type, n_workers)
    record(measure_throughput(channels_last_step(model, opt), to_device(loader), WARMUP, device, LABEL), what)
    del loader

# %% [markdown] key="table"
# ### The table
# Throughput of each step relative to the float32 baseline, on this tier. On a GPU with Tensor Cores
# expect mixed precision to give the largest jump (a smaller one on Ampere and later, where the float32
# baseline already uses TF32 for its convolutions), channels_last a further gain for convolutions, and
# compile a gain that grows as the operators get smaller; on the CPU tier the ratios say nothing about
# a GPU.

# %%
base = results[0]["samples_per_s"]
print(f"{msg('13.col_step', 'step'):40s} {'samples/s':>12s} {msg('13.col_vs_float32', 'vs float32'):>10s}   "
      f"[{shown_label(LABEL)}]")
for r in results:
    print(f"{r['step']:40s} {r['samples_per_s']:12.1f} {r['samples_per_s'] / base:9.2f}x")
if not lab.on_gpu:
    print(msg("13.cpu_figures", "CPU tier: these are CPU figures at a tiny size, not GPU figures; run the lab on a GPU for real numbers."))

# %% [markdown] key="time-go-torch-profiler"
# ## 7. Where does the time go? `torch.profiler`
#
# Before optimising further, measure. The profiler records every operator (and, on a GPU, every
# kernel) of a few steps; `key_averages()` groups them by name. Sort by self time: the operators at
# the top are where an optimisation pays. For a timeline, `prof.export_chrome_trace("trace.json")` and
# open it in Perfetto (https://ui.perfetto.dev): the second cell below writes one, on every tier.

# %%
from torch.profiler import ProfilerActivity, profile

model, opt = fresh()
step = amp_step(model, opt)
for x, y in batches[:WARMUP]:
    step(x, y)
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if lab.on_gpu else [])
with profile(activities=activities) as prof:
    for x, y in batches[WARMUP:WARMUP + 3]:
        step(x, y)
    if lab.on_gpu:
        torch.cuda.synchronize()
sort_key = "self_cuda_time_total" if lab.on_gpu else "self_cpu_time_total"
print(msg("13.top_operators", "[{label}] top operators of 3 steps by {sort_key}:", label=LABEL, sort_key=sort_key))
print(prof.key_averages().table(sort_by=sort_key, row_limit=8, max_name_column_width=40))

# %%
import json
from collections import Counter
from pathlib import Path

trace_path = Path("13-profile-trace.json").resolve()  # beside the notebook: download it from JupyterLab
prof.export_chrome_trace(str(trace_path))
spans = [e for e in json.loads(trace_path.read_text(encoding="utf-8"))["traceEvents"] if e.get("ph") == "X"]
kinds = Counter(e.get("cat", "?") for e in spans)
print(msg("13.trace_written", "[{label}] timeline written: {path} ({kib:,} KiB, {n:,} spans: {kinds}). Open it in "
          "https://ui.perfetto.dev: one row per thread (and, on a GPU, per stream).", label=LABEL, path=trace_path,
          kib=trace_path.stat().st_size // 1024, n=len(spans), kinds=", ".join(f"{k} {v}" for k, v in kinds.most_common(5))))

# %% [markdown] key="nsight-gpu-tier"
# ### Nsight Systems and Nsight Compute (GPU tier)
#
# `torch.profiler` sees PyTorch's operators. NVIDIA's profilers see everything the GPU does, whoever
# launched it:
#
# - **Nsight Systems** (`nsys profile --stats=true python script.py`) records a timeline of the whole
#   process (CUDA API calls, kernels, copies, gaps where the GPU waits) and prints summaries; the
#   kernel summary (`cuda_gpu_kern_sum`) ranks kernels by their share of GPU time;
# - **Nsight Compute** (`ncu --launch-count 1 --section SpeedOfLight python script.py`) replays one
#   kernel many times and reports how close it comes to the GPU's compute and memory limits.
#
# The cell below profiles a small standalone training script, a few steps of the lab's model shape on
# random data, with whichever of the two is installed (they come with the CUDA toolkit, or as
# `nsight-systems` and `nsight-compute` packages), and prints the top of their summaries. On the CPU
# tier there is no GPU to profile, and the cell says so.

# %%
import shutil
import subprocess
import sys

PROFILE_ME = """
import torch, torch.nn as nn, torch.nn.functional as F
model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 3)).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(256, 1, 32, 32, device="cuda"), torch.randint(0, 3, (256,), device="cuda")
for _ in range(20):
    opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
torch.cuda.synchronize()
"""


def run_profiler(commands, lines=12, timeout=300):
    """Run ``commands`` (lists of arguments; PROFILE_ME is profile_me.py in their folder) one after the
    other; the last ``lines`` lines of the last one's output, or why there is none."""
    work = lab.scratch("techday-nsight-")
    (work / "profile_me.py").write_text(PROFILE_ME, encoding="utf-8")
    for command in commands:
        try:
            out = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return msg("13.nsight_timeout", "no report within {timeout} s", timeout=timeout)
        report = (out.stdout + out.stderr).strip().splitlines()
        if out.returncode != 0:
            return msg("13.nsight_failed", "exit {code}: {tail}", code=out.returncode, tail=" | ".join(report[-3:]))
    return "\n".join(report[-lines:])


if lab.gpu_only(msg("13.gpu_only_nsight", "Nsight Systems and Nsight Compute profile what a GPU runs")):
    nsys, ncu = shutil.which("nsys"), shutil.which("ncu")
    if not (nsys or ncu):
        print(msg("13.nsight_missing", "Neither nsys nor ncu is on PATH here: install the CUDA toolkit's Nsight Systems "
                  "and Nsight Compute (or ask the hub's admin) to see the GPU's own view."))
    if nsys:
        print(msg("13.nsys_report", "Nsight Systems, kernel summary (cuda_gpu_kern_sum):"))
        print(run_profiler([[nsys, "profile", "--force-overwrite=true", "-o", "nsys-report", sys.executable, "profile_me.py"],
                            [nsys, "stats", "--report", "cuda_gpu_kern_sum", "nsys-report.nsys-rep"]], lines=14))
    if ncu:
        print(msg("13.ncu_report", "Nsight Compute, one kernel against the GPU's limits (SpeedOfLight):"))
        print(run_profiler([[ncu, "--launch-count", "1", "--section", "SpeedOfLight", sys.executable, "profile_me.py"]],
                           lines=16))

# %% [markdown] key="summary"
# ## Summary
#
# - Measure throughput after a warm-up, with `torch.cuda.synchronize()` around the timed region, and
#   label every figure with the device it was taken on.
# - Mixed precision: `torch.autocast` for the forward pass and the loss; bfloat16 needs nothing more,
#   float16 needs `GradScaler` (`scale(loss).backward()`, `step(optimizer)`, `update()`), which skips
#   steps whose gradients overflowed. On Ampere and later, float32 convolutions already use TF32 Tensor
#   Cores by default (`torch.backends.cudnn.allow_tf32`), matrix multiplications only after
#   `torch.set_float32_matmul_precision("high")`: know what your float32 baseline runs.
# - `channels_last` suits Tensor Core convolutions; `torch.compile` fuses operators at the price of
#   a slow first call; a `DataLoader` with workers, pinned memory and `non_blocking` copies keeps the
#   GPU fed.
# - Profile before optimising further.
#
# ## Going further
#
# - PyTorch's performance tuning guide: https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
# - Automatic mixed precision: https://pytorch.org/docs/stable/amp.html
# - `torch.compile(mode="max-autotune")` tries more kernel variants; `mode="reduce-overhead"` uses
#   CUDA graphs to remove launch overhead for small models.
# - `torch.backends.cudnn.benchmark = True` lets cuDNN time its algorithms for fixed input shapes.
# - TF32 and its settings: https://pytorch.org/docs/stable/notes/cuda.html#tensorfloat-32-tf32-on-ampere-and-later-devices
# - Next: lab 14, the same training on several GPUs.
