# %% [markdown] key="track-assessment-parts-inspection"
# # 17 Track assessment: parts inspection
#
# This is the deep-learning track's assessment, in the spirit of the one that ends NVIDIA DLI's
# *Fundamentals of Deep Learning*: a task you have not seen, a model you build and train yourself,
# and a grader that tests it on data you never get to see. A factory photographs every machined part
# from above; your model decides whether the part is fine, scratched or dented.
#
# ## You will show
# - a clean train / validation split that keeps every image with its own label;
# - a convolutional network of your own design for 32 x 32 grayscale images;
# - a correct training step (`zero_grad`, forward, loss, `backward`, `step`), in mixed precision when
#   asked (lab 13), and a correct prediction function (`eval()` mode, no gradients, in batches);
# - a trained model that reaches the accuracy bar on **hidden** data sets;
# - the same model shipped: exported to ONNX and served by ONNX Runtime (lab 15), still above the bar;
# - a pre-trained backbone adapted to a new product from a few labels (lab 12).
#
# **How this lab works**: solve the seven exercises in order; each test cell checks your work (do not
# edit test cells). The grader also runs hidden tests.
# The pass rule (the accuracy bar) is not written in this notebook: it lives in the course's
# syllabus, `course/syllabus.toml`, and the notebook reads it from there.
#
# Points: exercise 1: 2, exercise 2: 2, exercise 3: 3, exercise 4: 3, exercise 5 (the assessment): 6,
# exercise 6: 3, exercise 7: 3 (22 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# Run this cell first: it chooses the tier and prints it. On the CPU tier PyTorch runs on the
# processor; the training recipe is the same, only smaller and slower.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("17.title", "17 Track assessment: parts inspection"))

# %% nbgrader="locked" id="imports"
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from techday.dltrain import assessment_rule
from techday.i18n import msg
from techday.parts import CLASSES, CLASSES_KO, make_parts

device = torch.device("cuda" if lab.on_gpu else "cpu")
if not lab.on_gpu:
    torch.set_num_threads(1)  # CI machines share their cores between labs: one thread each, no oversubscription
rule = assessment_rule()  # the pass rule, from course/syllabus.toml
print(msg("17.torch_device", "PyTorch {version} on {device}", version=torch.__version__, device=device))
print(msg("17.pass_rule", "pass rule (from course/syllabus.toml): mean accuracy >= {mean:.0%} over {sets} hidden data "
          "sets of {samples} parts, none below {low:.0%}", mean=rule["min_mean_accuracy"], sets=rule["hidden_sets"],
          samples=rule["samples_per_set"], low=rule["min_accuracy"]))

# %% [markdown] key="task"
# ## The task
#
# `techday.parts.make_parts(n, seed)` draws `n` photographs of parts, 1 x 32 x 32 float32 images, and
# their labels: `0` ok, `1` scratch (a thin dark line), `2` dent (a small dark pit with a bright
# rim). Parts move, turn, change size and brightness, and carry faint machining marks and
# sensor noise: the mean brightness of an image tells you nothing about its class, so a model has to
# find the defect itself. The same `(n, seed)` always gives the same images.
#
# You get one training set (`TRAIN_SEED`). Use it as you like: split it, train on it, augment it.
# The grader draws its own sets with seeds you do not know, the way a factory keeps photographing new
# parts after the model is deployed.

# %% nbgrader="locked" id="data"
TRAIN_SEED = 2026
N_TRAIN = lab.size(full=6_000, ci=2_400)
images, labels = make_parts(N_TRAIN, seed=TRAIN_SEED, as_tensor=True)
print(msg("17.training_data", "training data: images {image_shape} {image_dtype}, labels {label_shape} {label_dtype}",
          image_shape=tuple(images.shape), image_dtype=images.dtype, label_shape=tuple(labels.shape), label_dtype=labels.dtype))
print(msg("17.class_counts", "class counts: {counts}",
          counts={f"{c} ({k})": int((labels == i).sum()) for i, (c, k) in enumerate(zip(CLASSES, CLASSES_KO))}))
print(msg("17.mean_brightness", "mean brightness per class: {means}",
          means={c: round(float(images[labels == i].mean()), 3) for i, c in enumerate(CLASSES)}))

# %%
from techday.parts import show

show(images, labels)  # eight parts of each class

# %% [markdown] key="train-validation-split"
# ## Exercise 1: a train / validation split (2 points)
#
# Write `split_train_val(images, labels, val_fraction, seed)` that shuffles the samples with **one**
# random permutation from `torch.Generator().manual_seed(seed)` and returns
# `(x_train, y_train, x_val, y_val)`, with `round(len(images) * val_fraction)` samples in the
# validation part and the rest in the training part. Every image must keep its own label, and no
# sample may be in both parts: a model scored on images it was trained on looks better than it is.

# %% nbgrader="solution" id="split_train_val"
def split_train_val(images, labels, val_fraction, seed):
    """Shuffle (images, labels) together and split off round(n * val_fraction) samples for validation."""
    ### BEGIN SOLUTION
    n = len(images)
    n_val = round(n * val_fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, train = perm[:n_val], perm[n_val:]
    return images[train], labels[train], images[val], labels[val]
    ### END SOLUTION

# %% nbgrader="tests" id="split_train_val_tests" points=2
"""split_train_val returns parts of the right sizes, keeps every image with its label, shuffles
(deterministically for a seed) and never puts a sample in both parts; hidden: odd sizes, fractions
0.1 and 0.5, and a data set whose labels are unique so a misaligned pair shows at once; and sizes,
fractions and seeds drawn afresh at every grading (techday.draw)."""
import torch
from techday.i18n import msg


def check_split(n, frac, seed):
    x = torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1).repeat(1, 1, 2, 2)
    y = 1000 + torch.arange(n)  # label = 1000 + the sample's number: pairs are checkable
    xt, yt, xv, yv = split_train_val(x, y, frac, seed)
    n_val = round(n * frac)
    assert len(xv) == len(yv) == n_val, msg("17.split_val_size", "n={n}, val_fraction={frac}: {got} validation "
                                            "samples, expected {want}", n=n, frac=frac, got=len(xv), want=n_val)
    assert len(xt) == len(yt) == n - n_val, msg("17.split_train_size", "n={n}: {got} training samples, expected {want}",
                                                n=n, got=len(xt), want=n - n_val)
    assert xt.shape[1:] == x.shape[1:], msg("17.split_keep_shape", "images keep their shape")
    for xs, ys, part in ((xt, yt, "training"), (xv, yv, "validation")):
        ids = xs[:, 0, 0, 0].long()
        if part == "training":
            assert torch.equal(ys, 1000 + ids), msg("17.split_train_labels", "training labels no longer belong to their "
                                                    "images: shuffle both with one permutation")
        else:
            assert torch.equal(ys, 1000 + ids), msg("17.split_val_labels", "validation labels no longer belong to their "
                                                    "images: shuffle both with one permutation")
    ids_t, ids_v = set(xt[:, 0, 0, 0].long().tolist()), set(xv[:, 0, 0, 0].long().tolist())
    assert not ids_t & ids_v, msg("17.split_overlap", "{count} samples are in both parts: validation must be held out",
                                  count=len(ids_t & ids_v))
    assert ids_t | ids_v == set(range(n)), msg("17.split_every_sample", "every sample goes to exactly one part")
    return xt, xv


xt1, xv1 = check_split(100, 0.2, seed=0)
xt2, xv2 = check_split(100, 0.2, seed=0)
assert torch.equal(xv1, xv2), msg("17.split_same_seed", "the same seed must give the same split")
assert not torch.equal(xv1[:, 0, 0, 0], torch.arange(80, 100, dtype=torch.float32)), \
    msg("17.split_not_shuffled", "the validation part is the last 20 samples: shuffle first")
### BEGIN HIDDEN TESTS
for n_h, frac_h, seed_h in ((37, 0.1, 3), (1001, 0.5, 7), (64, 0.25, 11)):
    check_split(n_h, frac_h, seed_h)
_, xv_a = check_split(50, 0.3, seed=1)
_, xv_b = check_split(50, 0.3, seed=2)
assert not torch.equal(xv_a, xv_b), msg("17.split_other_seed", "hidden: different seeds should give different splits")
# Drawn at every grading (techday.draw): the sizes, fractions and seeds above are published with the course.
# A validation part whose size rounds up (n x val_fraction 0.55 to 0.95 past a whole number) and one whose
# size rounds down (0.05 to 0.45 past), each with a drawn seed; then a drawn seed twice, and another.
import techday.draw

rd = techday.draw.rng("17.split_train_val_tests")
for lo_d, hi_d in ((0.55, 0.95), (0.05, 0.45)):
    n_d = int(rd.integers(20, 1_500))
    check_split(n_d, (int(rd.integers(1, n_d // 2)) + float(rd.uniform(lo_d, hi_d))) / n_d, int(rd.integers(0, 2**31)))
n_d, frac_d = int(rd.integers(30, 400)), float(rd.uniform(0.1, 0.5))
seed_a, seed_b = (int(s) for s in rd.choice(2**31, size=2, replace=False))
_, xv_a = check_split(n_d, frac_d, seed_a)
_, xv_a2 = check_split(n_d, frac_d, seed_a)
_, xv_b = check_split(n_d, frac_d, seed_b)
assert torch.equal(xv_a, xv_a2), msg("17.split_same_seed", "the same seed must give the same split")
assert not torch.equal(xv_a, xv_b), msg("17.split_other_seed", "hidden: different seeds should give different splits")
### END HIDDEN TESTS
print(msg("17.split_all_visible", "split_train_val: all visible tests passed."))

# %% [markdown] key="model"
# ## Exercise 2: your model (2 points)
#
# Write `build_model()` that returns a fresh `nn.Module` taking a batch of images `(N, 1, 32, 32)` and
# returning **logits** `(N, 3)`, one score per class (no softmax: `F.cross_entropy` applies
# log-softmax itself). A few 3 x 3 convolutions with ReLU and pooling, then a linear layer, are
# plenty; keep it under 1 million parameters so it trains in minutes on a CPU. Batch normalisation (`nn.BatchNorm2d`) after each
# convolution makes training faster and steadier. Exercise 6 exports the model to ONNX: keep to layers
# every exporter knows (for a maximum over the whole last feature map, `nn.MaxPool2d` with the map's
# size rather than `nn.AdaptiveMaxPool2d`, which some PyTorch releases cannot export).

# %% nbgrader="solution" id="build_model"
def build_model():
    """A small CNN: (N, 1, 32, 32) images -> (N, 3) logits."""
    ### BEGIN SOLUTION
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(1, 8), nn.MaxPool2d(2),        # 32 -> 16
        *block(8, 16), nn.MaxPool2d(2),       # 16 -> 8
        *block(16, 16),
        nn.MaxPool2d(8),                      # 8 x 8 -> 1: the strongest response anywhere; a defect's position does not matter
        nn.Flatten(),
        nn.Linear(16, 3),
    )
    ### END SOLUTION

# %% nbgrader="tests" id="build_model_tests" points=2
"""build_model returns a fresh nn.Module mapping (N, 1, 32, 32) float32 images to finite (N, 3)
logits with fewer than 1 million parameters; hidden: N = 1 in eval mode, two calls give two
independent models."""
import torch
from techday.i18n import msg

m = build_model()
assert isinstance(m, torch.nn.Module), msg("17.model_not_module", "build_model returned a {type}, not an nn.Module",
                                           type=type(m).__name__)
n_params = sum(p.numel() for p in m.parameters())
assert 0 < n_params < 1_000_000, msg("17.model_too_big", "the model has {n_params:,} parameters; keep it under 1,000,000",
                                     n_params=n_params)
out = m(torch.randn(5, 1, 32, 32))
assert out.shape == (5, 3), msg("17.model_out_shape", "the model maps (5, 1, 32, 32) to {shape}, expected (5, 3)",
                                shape=tuple(out.shape))
assert torch.isfinite(out).all(), msg("17.model_not_finite", "the model's logits must be finite numbers (no NaN or inf)")
### BEGIN HIDDEN TESTS
m.eval()
with torch.no_grad():
    assert m(torch.randn(1, 1, 32, 32)).shape == (1, 3), msg("17.model_single_image",
                                                             "hidden: a single image (N = 1) must work in eval mode")
m2 = build_model()
assert all(p1.data_ptr() != p2.data_ptr() for p1, p2 in zip(m.parameters(), m2.parameters())), \
    msg("17.model_new_each_time", "hidden: build_model must build a new model each time")
### END HIDDEN TESTS
print(msg("17.model_all_visible", "build_model: all visible tests passed ({n_params:,} parameters).", n_params=n_params))

# %% [markdown] key="training-step"
# ## Exercise 3: one training step, in mixed precision when asked (3 points)
#
# Write `train_step(model, optimizer, x, y, amp_dtype=None)` that does one step of gradient descent on
# the batch `(x, y)` and returns the batch's loss as a Python `float`:
#
# 1. put the model in training mode, `model.train()` (batch norm and dropout behave as in training);
# 2. clear the old gradients, `optimizer.zero_grad()` (otherwise PyTorch **adds** the new gradients to
#    the old ones);
# 3. forward pass and loss, `F.cross_entropy(model(x), y)`, under
#    `torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None)`: with
#    `amp_dtype=torch.bfloat16` the convolutions and matrix multiplications run in bfloat16 while the
#    weights stay float32 (lab 13; bfloat16 needs no `GradScaler`), with `None` everything is float32;
# 4. `loss.backward()`, then `optimizer.step()`.
#
# Exercise 5 trains with `amp_dtype=torch.bfloat16` on a GPU that supports it.

# %% nbgrader="solution" id="train_step"
def train_step(model, optimizer, x, y, amp_dtype=None):
    """One optimisation step on (x, y), under autocast to amp_dtype if given; returns the loss as a float."""
    ### BEGIN SOLUTION
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION

# %% nbgrader="tests" id="train_step_tests" points=3
"""train_step returns the loss as a float, sets training mode, and after two steps with SGD (momentum
0) on two different batches leaves exactly the weights of a reference that clears the gradients
every step; with amp_dtype=bfloat16 its convolutions and linear layers compute in bfloat16, without it
in float32; hidden: three steps with Adam, a model handed over in eval mode, the weights still float32
and learning after a bfloat16 step; and seeds, steps, optimizers and learning rates drawn afresh at every
grading (techday.draw)."""
import copy

import torch
import torch.nn.functional as F
from techday.i18n import msg


def reference_steps(model, make_opt, batches):
    model = copy.deepcopy(model)
    opt = make_opt(model.parameters())
    for x, y in batches:
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


def check_train_step(make_opt, n_steps, start_eval=False, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 3))
    batches = [(torch.randn(6, 1, 4, 4), torch.randint(0, 3, (6,))) for _ in range(n_steps)]
    expected = reference_steps(model, make_opt, batches)
    if start_eval:
        model.eval()
    opt = make_opt(model.parameters())
    for x, y in batches:
        loss = train_step(model, opt, x, y)
        assert isinstance(loss, float), msg("17.step_not_float", "train_step returned a {type}; return loss.item()",
                                            type=type(loss).__name__)
        assert model.training, msg("17.step_train_mode", "train_step must leave the model in training mode (model.train())")
    for (name, p), q in zip(model.named_parameters(), expected.parameters()):
        assert torch.allclose(p, q, atol=1e-6), msg("17.step_param_differs", "after {n_steps} steps parameter {name} "
                                                    "differs from the reference: call optimizer.zero_grad() before "
                                                    "backward()", n_steps=n_steps, name=name)
    for b, c in zip(model.buffers(), expected.buffers()):
        assert torch.allclose(b.float(), c.float(), atol=1e-6), msg(
            "17.step_bn_stats", "batch-norm statistics differ: was the model in train mode?")


def amp_step(amp_dtype, seed=3):
    """One train_step on a small CNN: the dtypes its conv and linear layers computed in, the model, and its
    last layer's weight before the step."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(64, 3))
    seen, before = set(), model[4].weight.detach().clone()
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype)) for m in model
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    loss = train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.randn(5, 1, 4, 4),
                      torch.randint(0, 3, (5,)), amp_dtype=amp_dtype)
    for h in hooks:
        h.remove()
    assert isinstance(loss, float) and loss == loss, msg("17.step_amp_loss", "with amp_dtype={amp}: the loss must be a float "
                                                         "number, got {loss!r}", amp=amp_dtype, loss=loss)
    return seen, model, before


check_train_step(lambda p: torch.optim.SGD(p, lr=0.1), n_steps=2)
seen_bf16, _, _ = amp_step(torch.bfloat16)
assert seen_bf16 == {torch.bfloat16}, msg("17.step_autocast", "with amp_dtype=torch.bfloat16 the conv and linear layers "
                                          "computed in {dtypes}: run the forward pass and the loss under torch.autocast",
                                          dtypes=sorted(map(str, seen_bf16)))
seen_fp32, _, _ = amp_step(None)
assert seen_fp32 == {torch.float32}, msg("17.step_no_autocast", "with amp_dtype=None the layers computed in {dtypes}: "
                                         "autocast only when amp_dtype is given", dtypes=sorted(map(str, seen_fp32)))
### BEGIN HIDDEN TESTS
check_train_step(lambda p: torch.optim.Adam(p, lr=1e-2), n_steps=3, seed=1)
check_train_step(lambda p: torch.optim.SGD(p, lr=0.05), n_steps=2, start_eval=True, seed=2)
_, amp_model, amp_before = amp_step(torch.bfloat16, seed=4)
assert all(p.dtype == torch.float32 for p in amp_model.parameters()), msg(
    "17.hidden_amp_weights", "the weights must stay float32: autocast, not model.to(torch.bfloat16)")
assert not torch.equal(amp_model[4].weight, amp_before), msg("17.hidden_amp_learns", "a bfloat16 step must update the weights")
# Drawn at every grading (techday.draw): the seeds, optimizers and learning rates above are published with
# the course. SGD (momentum 0 or 0.9) and Adam at drawn learning rates, 2 to 4 steps on drawn batches, a
# model handed over in training or eval mode; then a bfloat16 step from a drawn seed. The expected weights
# are the reference's (reference_steps) on the same batches.
import techday.draw

rd = techday.draw.rng("17.train_step_tests")
lr_sgd_d, momentum_d, lr_adam_d = float(rd.uniform(0.01, 0.2)), float(rd.choice([0.0, 0.9])), float(rd.uniform(1e-3, 3e-2))
check_train_step(lambda p: torch.optim.SGD(p, lr=lr_sgd_d, momentum=momentum_d), n_steps=int(rd.integers(2, 5)),
                 start_eval=bool(rd.integers(0, 2)), seed=int(rd.integers(0, 2**31)))
check_train_step(lambda p: torch.optim.Adam(p, lr=lr_adam_d), n_steps=int(rd.integers(2, 5)),
                 start_eval=bool(rd.integers(0, 2)), seed=int(rd.integers(0, 2**31)))
seen_d, amp_model_d, amp_before_d = amp_step(torch.bfloat16, seed=int(rd.integers(0, 2**31)))
assert seen_d == {torch.bfloat16}, msg("17.step_autocast", "with amp_dtype=torch.bfloat16 the conv and linear layers "
                                       "computed in {dtypes}: run the forward pass and the loss under torch.autocast",
                                       dtypes=sorted(map(str, seen_d)))
assert not torch.equal(amp_model_d[4].weight, amp_before_d), msg("17.hidden_amp_learns", "a bfloat16 step must update the weights")
### END HIDDEN TESTS
print(msg("17.step_all_visible", "train_step: all visible tests passed."))

# %% [markdown] key="predictions"
# ## Exercise 4: predictions (3 points)
#
# Write `predict(model, images, batch_size=512)` that returns the predicted class of every image as an
# `int64` tensor of shape `(N,)`, on the CPU:
#
# - `model.eval()` first: batch normalisation then uses its running statistics and dropout is off,
#   so a prediction does not depend on the other images in the batch, nor on chance;
# - no gradients: `with torch.no_grad():` (or `torch.inference_mode()`) saves memory and time;
# - in batches of `batch_size`, so any number of images fits in memory; move each batch to the
#   model's device (`next(model.parameters()).device`) and the answers back to the CPU.

# %% nbgrader="solution" id="predict"
def predict(model, images, batch_size=512):
    """Predicted class (int64, shape (N,)) of every image, in eval mode, without gradients, in batches."""
    ### BEGIN SOLUTION
    model.eval()
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(model(images[i:i + batch_size].to(dev)).argmax(dim=1).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)
    ### END SOLUTION

# %% nbgrader="tests" id="predict_tests" points=3
"""predict returns int64 class indices of shape (N,) equal to the argmax of the model's eval-mode
logits for a model with dropout and batch norm, the same on every call, without building a graph, and
for N not a multiple of batch_size; hidden: N = 1, batch_size = 7, N = 1_001; and images, sizes and
batch sizes drawn afresh at every grading (techday.draw)."""
import torch
from techday.i18n import msg


def reference_predict(model, x):
    model.eval()
    with torch.no_grad():
        return model(x).argmax(dim=1)


torch.manual_seed(4)
probe = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
                            torch.nn.Dropout(0.5), torch.nn.Linear(32, 3))
probe.train()
for _ in range(3):  # give batch norm running statistics that differ from any one batch's
    probe(3.0 + 2.0 * torch.randn(64, 1, 4, 4))
x = torch.randn(300, 1, 4, 4)
expected = reference_predict(probe, x)
probe.train()  # handed over in training mode, as right after training
got = predict(probe, x, batch_size=128)
assert isinstance(got, torch.Tensor) and got.dtype == torch.int64, msg("17.pred_int64",
                                                                      "return an int64 tensor (argmax gives one)")
assert got.shape == (300,), msg("17.pred_shape", "predict returned shape {shape}, expected (300,)", shape=tuple(got.shape))
assert not got.requires_grad, msg("17.pred_no_grad", "predictions must not carry gradients: use torch.no_grad()")
assert torch.equal(got, expected), msg("17.pred_not_eval", "{count} of 300 predictions differ from eval mode: call "
                                       "model.eval() before predicting", count=int((got != expected).sum()))
assert torch.equal(predict(probe, x, batch_size=128), got), msg("17.pred_two_calls",
                                                                "two calls gave different answers (dropout still on?)")
### BEGIN HIDDEN TESTS
probe.train()
for n_h, bs_h in ((1, 512), (1_001, 7), (64, 64)):
    xh = torch.randn(n_h, 1, 4, 4)
    probe.train()
    gh = predict(probe, xh, batch_size=bs_h)
    assert gh.shape == (n_h,) and gh.dtype == torch.int64, msg(
        "17.pred_hidden_shape", "hidden: N={n}, batch_size={bs}: shape {shape} and dtype {dtype}, expected ({n},) int64",
        n=n_h, bs=bs_h, shape=tuple(gh.shape), dtype=gh.dtype)
    assert torch.equal(gh, reference_predict(probe, xh)), msg("17.pred_hidden_wrong",
                                                              "hidden: N={n}, batch_size={bs}: wrong predictions",
                                                              n=n_h, bs=bs_h)
# Drawn at every grading (techday.draw): the images, sizes and batch sizes above are published with the
# course. Batch sizes of 2 to 299 and a size that leaves a short last batch, on drawn images; the expected
# classes are the reference's, compared where its two best logits differ by more than 1e-4 (batches of
# another size may round a near tie the other way).
import techday.draw

rd = techday.draw.rng("17.predict_tests")
gen_d = torch.Generator().manual_seed(int(rd.integers(0, 2**31)))
for _ in range(2):
    bs_d = int(rd.integers(2, 300))
    n_d = bs_d * int(rd.integers(0, 5)) + int(rd.integers(1, bs_d))
    xd = float(rd.uniform(0.5, 3)) * torch.randn(n_d, 1, 4, 4, generator=gen_d) + float(rd.uniform(-2, 4))
    probe.train()
    gd = predict(probe, xd, batch_size=bs_d)
    assert isinstance(gd, torch.Tensor) and gd.shape == (n_d,) and gd.dtype == torch.int64, msg(
        "17.pred_hidden_shape", "hidden: N={n}, batch_size={bs}: shape {shape} and dtype {dtype}, expected ({n},) int64",
        n=n_d, bs=bs_d, shape=tuple(getattr(gd, "shape", ())), dtype=getattr(gd, "dtype", type(gd).__name__))
    probe.eval()
    with torch.no_grad():
        top2_d = probe(xd).topk(2, dim=1)
    clear_d = (top2_d.values[:, 0] - top2_d.values[:, 1]) > 1e-4
    assert torch.equal(gd[clear_d], top2_d.indices[clear_d, 0]), msg(
        "17.pred_drawn_wrong", "hidden: N={n}, batch_size={bs}: {count} of {n} predictions differ from the eval-mode argmax",
        n=n_d, bs=bs_d, count=int((gd[clear_d] != top2_d.indices[clear_d, 0]).sum()))
### END HIDDEN TESTS
print(msg("17.pred_all_visible", "predict: all visible tests passed."))

# %% [markdown] key="train-model"
# ## Exercise 5: train your model (the assessment, 6 points)
#
# Train a model on the training data so that it reaches the bar on new parts, and leave it in the
# variable `final_model`. Use your functions: split off a validation set, build the model, loop over
# epochs, shuffle the training part every epoch, take mini-batches, call `train_step`, and watch the
# validation accuracy with `predict`. At the workshop scale you have more data and time than here;
# at the CI scale (`scale="ci"`) the cell must finish in well under a minute on a CPU.
#
# Ideas that help: `torch.optim.Adam` with a learning rate around 1e-2 and a
# schedule that lowers it over time (`torch.optim.lr_scheduler.OneCycleLR`); mini-batches of 32 to
# 128; augmentation in plain torch (flips `torch.flip(x, dims=[3])` and 90-degree turns `torch.rot90`
# do not change a part's class). Fix your seeds (`torch.manual_seed`) so that a rerun on the CPU gives
# the same model; on a GPU some cuDNN kernels are not deterministic, so a rerun may differ slightly
# unless you ask for `torch.use_deterministic_algorithms(True)`. The test below measures accuracy on
# a fresh visible set; the grader does the same on hidden sets, and the pass rule is printed above.
# The grader also exports `final_model` to ONNX itself (as in lab 15) and serves that file outside
# your notebook, on new parts it draws for that grading alone, under the same pass rule: a model that
# fails there, or that cannot be exported, scores 0 on this exercise.

# %% nbgrader="solution" id="train_model"
### BEGIN SOLUTION
torch.manual_seed(TRAIN_SEED)
x_train, y_train, x_val, y_val = split_train_val(images, labels, val_fraction=0.15, seed=TRAIN_SEED)
final_model = build_model().to(device)
epochs = lab.size(full=20, ci=8)
batch_size = 64
optimizer = torch.optim.Adam(final_model.parameters(), lr=1e-2)
steps_per_epoch = (len(x_train) + batch_size - 1) // batch_size
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=epochs * steps_per_epoch)
amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False) else None  # mixed precision on a GPU
t0 = time.perf_counter()
for epoch in range(epochs):
    order = torch.randperm(len(x_train))
    losses = []
    for i in range(0, len(x_train), batch_size):
        idx = order[i:i + batch_size]
        xb, yb = x_train[idx].to(device), y_train[idx].to(device)
        if lab.scale == "full":  # augmentation: a flipped part is still the same part
            xb = torch.where(torch.rand(len(xb), 1, 1, 1, device=device) < 0.5, torch.flip(xb, dims=[3]), xb)
        losses.append(train_step(final_model, optimizer, xb, yb, amp_dtype=amp))
        schedule.step()
    val_acc = (predict(final_model, x_val) == y_val).float().mean().item()
    print(msg("17.epoch_progress", "epoch {epoch:2d}/{epochs}: train loss {loss:.3f}, validation accuracy {accuracy:.3f} ({seconds:.1f} s)",
              epoch=epoch + 1, epochs=epochs, loss=np.mean(losses), accuracy=val_acc, seconds=time.perf_counter() - t0))
### END SOLUTION

# %% nbgrader="tests" id="assessment_tests" points=6
"""The assessment: final_model, in eval mode, reaches the pass rule of course/syllabus.toml on a fresh
visible set of parts (seed 101); hidden: the grader's own data sets, the mean accuracy over them must
reach min_mean_accuracy and none may fall below min_accuracy: the course's fixed sets, and as many sets
again drawn afresh at every grading (techday.draw), under the same rule."""
import numpy as np
import torch

from techday.dltrain import assessment_rule
from techday.i18n import msg
from techday.parts import make_parts

bar = assessment_rule()


def accuracy_on(seed):
    x, y = make_parts(bar["samples_per_set"], seed=seed, as_tensor=True)
    final_model.eval()
    dev = next(final_model.parameters()).device
    with torch.no_grad():
        guess = torch.cat([final_model(x[i:i + 500].to(dev)).argmax(1).cpu() for i in range(0, len(x), 500)])
    return (guess == y).float().mean().item()


visible = accuracy_on(101)
print(msg("17.assess_visible", "accuracy on the visible test set: {acc:.3f} (bar: {bar:.2f})", acc=visible,
          bar=bar["min_mean_accuracy"]))
assert visible >= bar["min_mean_accuracy"], msg("17.assess_below_bar", "accuracy {acc:.3f} on new parts is below the "
                                                "bar {bar:.2f}: train longer or improve the model", acc=visible,
                                                bar=bar["min_mean_accuracy"])
### BEGIN HIDDEN TESTS
assessment_accuracies = [accuracy_on(s) for s in (90_210, 31_337, 4_242)][: bar["hidden_sets"]]
assert len(assessment_accuracies) == bar["hidden_sets"], msg(
    "17.assess_sets", "hidden: the pass rule asks for {want} hidden data sets; this test has {got}",
    want=bar["hidden_sets"], got=len(assessment_accuracies))
mean_acc = float(np.mean(assessment_accuracies))
assert mean_acc >= bar["min_mean_accuracy"], msg("17.assess_mean_below", "hidden: mean accuracy {acc:.3f} below {bar}",
                                                 acc=mean_acc, bar=bar["min_mean_accuracy"])
assert min(assessment_accuracies) >= bar["min_accuracy"], \
    msg("17.assess_one_below", "hidden: accuracy {acc:.3f} on one data set, below {bar}",
        acc=min(assessment_accuracies), bar=bar["min_accuracy"])
# Drawn at every grading (techday.draw): the seeds above are published with the course.
import techday.draw

drawn_seeds = [int(s) for s in techday.draw.rng("17.assessment_tests").integers(1, 2**31, bar["hidden_sets"])]
drawn_accuracies = [accuracy_on(s) for s in drawn_seeds]
mean_drawn = float(np.mean(drawn_accuracies))
assert mean_drawn >= bar["min_mean_accuracy"], msg("17.assess_mean_below", "hidden: mean accuracy {acc:.3f} below {bar}",
                                                   acc=mean_drawn, bar=bar["min_mean_accuracy"])
assert min(drawn_accuracies) >= bar["min_accuracy"], \
    msg("17.assess_one_below", "hidden: accuracy {acc:.3f} on one data set, below {bar}",
        acc=min(drawn_accuracies), bar=bar["min_accuracy"])
# Served from outside this kernel too (techday/grading/outside.py): the course's own export of final_model, into the
# folder the grader reads after the notebook ran, whatever the notebook's own functions do.
import contextlib
import io
import logging
import warnings

logging.getLogger("torch.onnx").setLevel(logging.ERROR)
assessed_path = lab.grader_files("techday-serving-") / "assessment.onnx"
final_model.eval()
try:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(final_model, (torch.zeros(4, 1, 32, 32, device=next(final_model.parameters()).device),),
                          str(assessed_path), dynamo=True, external_data=False, input_names=["images"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
except Exception as exc:
    raise AssertionError(msg("17.assess_not_exported", "hidden: the grader serves final_model outside the notebook, and "
                             "it does not export to ONNX ({error}): build it from standard layers (lab 15)",
                             error=f"{type(exc).__name__}: {exc}"[:300])) from None
### END HIDDEN TESTS
print(msg("17.assess_passed", "assessment: the visible test passed; the grader also runs the hidden data sets."))

# %% [markdown] key="ship-it-onnx"
# ## Exercise 6: ship it (3 points)
#
# The factory does not run your notebook: it runs the model in ONNX Runtime next to the camera
# (lab 15). Write `export_for_serving(model, path)` that exports the model for that:
#
# - in **eval mode** (batch normalisation with its running statistics, as `predict` uses it);
# - with `torch.onnx.export(..., dynamo=True)`, input name `"images"`, output name `"logits"`, and a
#   **dynamic batch axis**: the camera sends one part at a time, the night shift's re-check thousands;
# - as **one self-contained file** (`external_data=False`: the weights inside the `.onnx` file, not beside it);
# - return `path`.
#
# The test hands it your `final_model` (in training mode, as a model often is after its last epoch),
# loads the file in ONNX Runtime on the CPU, and scores new parts through it at two batch sizes: the
# served model must agree with your PyTorch model on at least 99.5 % of the parts and clear the pass
# rule; the grader does the same on its hidden sets.
# The grader also takes the exported file itself after your notebook has run and serves it outside
# your notebook, in ONNX Runtime, on new parts it draws for that grading alone: standard ONNX operators
# only, and the same pass rule; a model that fails there scores 0 on this exercise.

# %% nbgrader="locked" id="serving_imports"
import contextlib
import io
import logging
import warnings
from pathlib import Path

import onnx
import onnxruntime as ort

logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # the exporter reports each stage; keep the notebook readable
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
SERVING_DIR = lab.grader_files("techday-serving-")  # graded: the folder the grader reads; elsewhere removed at exit

# %% nbgrader="solution" id="export_for_serving"
def export_for_serving(model, path):
    """Export model (eval mode) to ONNX at path: input "images" with a dynamic batch axis, output "logits"."""
    ### BEGIN SOLUTION
    model.eval()
    example = torch.zeros(4, 1, 32, 32, device=next(model.parameters()).device)
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, input_names=["images"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path
    ### END SOLUTION

# %% nbgrader="tests" id="serving_tests" points=3
"""export_for_serving, handed final_model in training mode, writes a valid ONNX file (onnx.checker), self-contained
(no weights in a file beside it), with input "images"; ONNX Runtime on the CPU serves new parts (seed 101) in batches
of 500 and of 7, agreeing with the PyTorch model in eval mode on at least 99.5 % of them and clearing the pass rule's
mean accuracy; hidden: the grader's data sets served the same way, the mean over them and each of them as the pass
rule asks, the course's fixed sets and the sets exercise 5 drew afresh for this grading (techday.draw). The grader then
serves the exported file itself, outside the kernel (techday/grading/outside.py)."""
import numpy as np
import onnx
import onnxruntime as ort
import torch

from techday.dltrain import assessment_rule
from techday.i18n import msg
from techday.parts import make_parts

bar = assessment_rule()
final_model.train()
served_path = export_for_serving(final_model, SERVING_DIR / "parts.onnx")
onnx.checker.check_model(str(served_path))
beside = [t.name for t in onnx.load(str(served_path), load_external_data=False).graph.initializer
          if t.data_location == onnx.TensorProto.EXTERNAL]
assert not beside, msg("17.serve_external_data", "the weights {names} are in a file beside the model: export one "
                       "self-contained file (external_data=False)", names=beside[:3])
session = ort.InferenceSession(str(served_path), providers=["CPUExecutionProvider"])
names = [i.name for i in session.get_inputs()]
assert names == ["images"], msg("17.serve_input_names", "the served model's inputs are {names}, expected ['images']",
                                names=names)


def served_and_torch(seed, batch):
    """(ONNX Runtime's predictions, the eval-mode PyTorch model's, the labels) for one set of new parts."""
    x, y = make_parts(bar["samples_per_set"], seed=seed, as_tensor=True)
    served = np.concatenate([session.run(None, {"images": x[i:i + batch].numpy()})[0].argmax(1)
                             for i in range(0, len(x), batch)])
    final_model.eval()
    dev = next(final_model.parameters()).device
    with torch.no_grad():
        direct = torch.cat([final_model(x[i:i + 500].to(dev)).argmax(1).cpu() for i in range(0, len(x), 500)])
    return served, direct.numpy(), y.numpy()


def served_accuracy(seed, batch, what):
    served, direct, y = served_and_torch(seed, batch)
    agree = float((served == direct).mean())
    assert agree >= 0.995, msg("17.serve_disagrees", "{what}: the served model agrees with the PyTorch model (eval mode) "
                               "on {agree:.1%} of the parts, below 99.5 %: export the trained model you are given, in eval mode",
                               what=what, agree=agree)
    return float((served == y).mean())


for batch_v in (500, 7):
    acc_v = served_accuracy(101, batch_v, msg("17.what_serve_visible", "new parts, batches of {batch}", batch=batch_v))
    assert acc_v >= bar["min_mean_accuracy"], msg(
        "17.serve_below_bar", "served in batches of {batch}: accuracy {acc:.3f} on new parts is below the bar {bar:.2f}",
        batch=batch_v, acc=acc_v, bar=bar["min_mean_accuracy"])
### BEGIN HIDDEN TESTS
served_accuracies = [served_accuracy(s, 250, msg("17.what_serve_hidden", "hidden: the grader's data set {n}", n=n))
                     for n, s in enumerate((90_210, 31_337, 4_242)[: bar["hidden_sets"]], 1)]
assert float(np.mean(served_accuracies)) >= bar["min_mean_accuracy"], msg(
    "17.serve_mean_below", "hidden: served, the mean accuracy {acc:.3f} is below {bar}", acc=float(np.mean(served_accuracies)),
    bar=bar["min_mean_accuracy"])
assert min(served_accuracies) >= bar["min_accuracy"], msg(
    "17.serve_one_below", "hidden: served, accuracy {acc:.3f} on one data set, below {bar}", acc=min(served_accuracies),
    bar=bar["min_accuracy"])
# Drawn at every grading (techday.draw): the seeds above are published with the course. The very sets
# exercise 5 drew (its label): the served model meets the bar on the sets the PyTorch model met it on, and
# an honest model runs no second chance of a set below the bar.
import techday.draw

served_drawn = [served_accuracy(int(s), 250, msg("17.what_serve_drawn", "hidden: a data set drawn for this grading ({n})", n=n))
                for n, s in enumerate(techday.draw.rng("17.assessment_tests").integers(1, 2**31, bar["hidden_sets"]), 1)]
assert float(np.mean(served_drawn)) >= bar["min_mean_accuracy"], msg(
    "17.serve_mean_below", "hidden: served, the mean accuracy {acc:.3f} is below {bar}", acc=float(np.mean(served_drawn)),
    bar=bar["min_mean_accuracy"])
assert min(served_drawn) >= bar["min_accuracy"], msg(
    "17.serve_one_below", "hidden: served, accuracy {acc:.3f} on one data set, below {bar}", acc=min(served_drawn),
    bar=bar["min_accuracy"])
### END HIDDEN TESTS
print(msg("17.serve_all_visible", "export_for_serving: all visible tests passed; ONNX Runtime serves your model "
          "above the bar."))

# %% [markdown] key="new-product-transfer"
# ## Exercise 7: a new product from 90 labels (3 points)
#
# The factory puts a new part on the line: round **flanges** with a centre bore, turned on a lathe
# and photographed by another camera line (`make_parts(n, seed, product="flange")`: a lighter tray,
# less contrast, more noise; the same three classes). Nobody has time to label thousands of them: you
# get **30 labelled photographs per class**. A network trained from scratch on 90 images does not get
# far. The course ships a backbone pre-trained on 12,000 labelled plates
# (`techday.dl.load_parts_backbone()`, made by `course/scripts/pretrain_parts_backbone.py`): its
# filters already answer to thin dark lines and small pits. Transfer it (lab 12).
#
# Write `adapt_backbone(backbone, images, labels, seed)` that returns a model on `device` mapping
# (N, 1, 32, 32) images to (N, 3) logits for the flanges:
#
# - a **new linear head** on the backbone's features (`backbone.out_features` of them);
# - **fine-tune** the backbone and the head together, the backbone with a smaller learning rate than
#   the new head (parameter groups: `torch.optim.Adam([{"params": ..., "lr": ...}, {...}])`). Training
#   only the head with the backbone frozen is the cheapest transfer and gets close; fine-tuning goes
#   further. A learning rate as high for the backbone as for the head wipes out what it learned;
# - a few dozen epochs of small mini-batches with flips, each step through your `train_step`;
# - `torch.manual_seed(seed)` first, and learn **only from the `images` and `labels` given**: the
#   grader calls your function with its own 90 labelled flanges and a fresh copy of the backbone, and
#   checks that it draws no flanges of its own.

# %% nbgrader="locked" id="flange_data"
from techday.dl import PartsBackbone, backbone_record, load_parts_backbone
from techday.parts import show

FLANGE_SEED = 77
per_class = rule["transfer_labels_per_class"]
flange_images, flange_labels = make_parts(3 * per_class, seed=FLANGE_SEED, as_tensor=True, product="flange")
_, backbone_meta = load_parts_backbone()
print(msg("17.flange_data", "labelled flanges: {n} ({per} per class); the shipped backbone was pre-trained on "
          "{source} (validation accuracy on plates {acc:.3f})", n=len(flange_labels), per=per_class,
          source=backbone_record(backbone_meta)["source_task"], acc=backbone_meta["source_val_accuracy"]))
print(msg("17.transfer_rule", "transfer bar (from course/syllabus.toml): mean accuracy >= {mean:.0%} over 2 hidden "
          "sets of {samples} flanges, none below {low:.0%}", mean=rule["transfer_min_mean_accuracy"],
          samples=rule["samples_per_set"], low=rule["transfer_min_accuracy"]))
show(flange_images, flange_labels)

# %% nbgrader="solution" id="adapt_backbone"
def adapt_backbone(backbone, images, labels, seed):
    """The pre-trained backbone with a new 3-class head, fine-tuned on (images, labels); returned on device."""
    ### BEGIN SOLUTION
    torch.manual_seed(seed)
    head = nn.Linear(backbone.out_features, len(CLASSES))
    model = nn.Sequential(backbone, head).to(device)
    optimizer = torch.optim.Adam([{"params": backbone.parameters(), "lr": 1e-3},
                                  {"params": head.parameters(), "lr": 1e-2}])
    batch_size = 30
    for epoch in range(40):
        order = torch.randperm(len(images))
        for i in range(0, len(images), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = images[idx].to(device), labels[idx].to(device)
            xb = torch.where(torch.rand(len(xb), 1, 1, 1, device=device) < 0.5, torch.flip(xb, dims=[3]), xb)
            xb = torch.where(torch.rand(len(xb), 1, 1, 1, device=device) < 0.5, torch.flip(xb, dims=[2]), xb)
            train_step(model, optimizer, xb, yb)
    return model.eval()
    ### END SOLUTION

# %% nbgrader="tests" id="transfer_tests" points=3
"""The notebook drew no flanges but the 90 labelled ones; adapt_backbone, handed a fresh copy of the shipped
backbone and those flanges, returns a model that clears the transfer bar of course/syllabus.toml on a fresh visible
set of flanges (seed 202) and draws no flanges of its own; hidden: called with the grader's own 90 labelled flanges,
the model clears the bar on the grader's two sets (the mean, and each set), again without drawing flanges, and
the same with 90 labelled flanges and two sets drawn afresh at every grading (techday.draw)."""
import numpy as np
import torch

from techday import parts as parts_module
from techday.dl import load_parts_backbone
from techday.dltrain import assessment_rule
from techday.i18n import msg
from techday.parts import make_parts

bar = assessment_rule()


def drawing_none(what, call, *args):
    """call(*args), refusing any flange the trainee's code draws meanwhile (learning or predicting)."""
    before = parts_module.requests("flange")
    out = call(*args)
    drawn = sorted(parts_module.requests("flange") - before)  # every draw meanwhile, a repeated one too
    assert not drawn, msg("17.transfer_drew", "{what} drew flanges of its own (n, seed, size: {drawn}): learn only "
                          "from the labelled flanges it is given", what=what, drawn=drawn)
    return out


def flange_accuracy(model, seed):
    """The model's accuracy, in eval mode, on a fresh set of flanges."""
    x, y = make_parts(bar["samples_per_set"], seed=seed, as_tensor=True, product="flange")
    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        guess = drawing_none("the model", lambda: torch.cat([model(x[i:i + 500].to(dev)).argmax(1).cpu()
                                                             for i in range(0, len(x), 500)]))
    return (guess == y).float().mean().item()


def adapted(images, labels, seed):
    """adapt_backbone on a fresh copy of the shipped backbone, drawing no flanges of its own."""
    model = drawing_none("adapt_backbone", adapt_backbone, load_parts_backbone()[0], images, labels, seed)
    assert isinstance(model, torch.nn.Module), msg("17.transfer_not_module", "adapt_backbone must return the model "
                                                   "(a torch.nn.Module), got {type_name}", type_name=type(model).__name__)
    return model


# The notebook itself may draw the 90 labelled flanges (seed 77, the data cell's FLANGE_SEED) and this test's
# visible set, nothing more.
allowed = {(3 * bar["transfer_labels_per_class"], 77, 32), (bar["samples_per_set"], 202, 32)}
others = sorted(set(parts_module.requests("flange")) - allowed)
assert not others, msg("17.transfer_other_flanges", "this notebook drew flanges besides the labelled ones (n, seed, "
                       "size: {others}): the exercise is learning from {n} labels; remove those draws",
                       others=others, n=3 * bar["transfer_labels_per_class"])
visible = flange_accuracy(adapted(flange_images, flange_labels, seed=0), 202)
print(msg("17.transfer_visible", "flanges: accuracy {acc:.3f} on the visible test set (bar: {bar:.2f})", acc=visible,
          bar=bar["transfer_min_mean_accuracy"]))
assert visible >= bar["transfer_min_mean_accuracy"], msg(
    "17.transfer_below_bar", "accuracy {acc:.3f} on new flanges is below the bar {bar:.2f}: start from the backbone "
    "you are given, under a new head, and fine-tune it with a smaller learning rate than the head's", acc=visible,
    bar=bar["transfer_min_mean_accuracy"])
### BEGIN HIDDEN TESTS
def transfer_meets_the_bar(labelled_seed, adapt_seed, test_seeds):
    """adapt_backbone on the grader's 90 labelled flanges of labelled_seed clears the bar on its test sets."""
    images, labels = make_parts(3 * bar["transfer_labels_per_class"], seed=labelled_seed, as_tensor=True,
                                product="flange")
    model = adapted(images, labels, seed=adapt_seed)
    accuracies = [flange_accuracy(model, s) for s in test_seeds]
    assert float(np.mean(accuracies)) >= bar["transfer_min_mean_accuracy"], msg(
        "17.transfer_mean_below", "hidden: on the grader's flanges, the mean accuracy {acc:.3f} is below {bar}",
        acc=float(np.mean(accuracies)), bar=bar["transfer_min_mean_accuracy"])
    assert min(accuracies) >= bar["transfer_min_accuracy"], msg(
        "17.transfer_one_below", "hidden: on the grader's flanges, accuracy {acc:.3f} on one set, below {bar}",
        acc=min(accuracies), bar=bar["transfer_min_accuracy"])


transfer_meets_the_bar(8_675, 1, (5_150, 6_161))
# Drawn at every grading (techday.draw): the seeds above are published with the course. The grader's 90
# labelled flanges and its two test sets again, drawn afresh. Measured, CPU tier: the lab's fine-tuning 0.88-0.95
# on 60 drawn sets; the backbone frozen under a new head (an honest, cheaper transfer) a mean of 0.82-0.88 over
# 70 drawn pairs, no set below 0.81 (bars: 0.78 the mean, 0.72 each).
import techday.draw

rd = techday.draw.rng("17.transfer_tests")
drawn_seeds = [int(s) for s in rd.integers(1, 2**31, 3)]
transfer_meets_the_bar(drawn_seeds[0], int(rd.integers(0, 2**31)), drawn_seeds[1:])
### END HIDDEN TESTS
print(msg("17.transfer_passed", "adapt_backbone: the visible test passed; the grader also adapts a fresh backbone "
          "with its own labelled flanges."))

# %% [markdown] key="transfer-what-it-bought"
# What did the pre-training buy? The cell below runs your `adapt_backbone` once more, on a backbone
# that has learned nothing (`PartsBackbone()`), with the same 90 labelled flanges: the same recipe
# from scratch. Compare with the accuracy the test above printed.

# %%
scratch_model = adapt_backbone(PartsBackbone(), flange_images, flange_labels, seed=0)
print(msg("17.transfer_compare", "90 labelled flanges, the same recipe from an untrained backbone: accuracy {scratch:.3f} "
          "on the visible test set (from the shipped backbone: the test above)",
          scratch=flange_accuracy(scratch_model, 202)))

# %% [markdown] key="summary"
# ## Summary
#
# - Hold data out before you train, shuffle images and labels with one permutation, and score a model
#   only on data it never saw: otherwise the number you report is not the number you get in the factory.
# - A training step is always: `model.train()`, `zero_grad`, forward, loss, `backward`, `step`.
# - Prediction is always: `model.eval()`, `torch.no_grad()`, batches, `argmax`.
# - A pass rule belongs to the course, not to the notebook: this one is read from `course/syllabus.toml`.
# - A model is done when it is served: exported in eval mode with a dynamic batch, and checked again
#   where it runs (ONNX Runtime), against the same bar.
# - A new product rarely comes with thousands of labels: start from a backbone trained on a related
#   task, give it a new head, and fine-tune it gently (a smaller learning rate for what was learned).
#
# ## Going further
#
# - Make the model faster with what lab 13 showed (mixed precision, `channels_last`, `torch.compile`),
#   train it on several GPUs as in lab 14, and measure the served model's latency as in lab 15.
# - Try harder data: `make_parts(n, seed, size=48)` draws larger images; does your network need to change?
# - The confusion matrix (`sklearn.metrics.confusion_matrix`) shows which defects your model confuses.
