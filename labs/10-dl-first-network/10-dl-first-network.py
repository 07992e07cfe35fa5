# %% [markdown] key="first-neural-network-tensors"
# # 10 Your first neural network: tensors, autograd and the training loop
#
# The deep-learning track starts here. You will build, train and evaluate a small neural network on
# real data, the 8x8 handwritten digits that ship with scikit-learn, with nothing but PyTorch, and
# write every line of the training loop yourself. Later labs reuse that loop from `techday.dl`.
#
# ## You will learn
# - **tensors and devices**: shapes, dtypes, and moving data and models with `.to(device)`;
# - **autograd**: how `loss.backward()` fills `.grad`, why gradients *accumulate*, and `zero_grad`;
# - a **multi-layer perceptron** (MLP) with `nn.Sequential`, and **dropout**;
# - the **training loop**: shuffle, mini-batches, forward, loss, backward, step;
# - **evaluation** in eval mode on a **validation split**, and **overfitting** seen in a plot.
#
# **How this lab works**: read, run the examples, then solve the five exercises. In each
# exercise cell, delete `raise NotImplementedError()` and write your code. The cell after it runs the
# tests; do not edit test cells. The grader also runs hidden tests, and at the end it
# trains *your* network with *your* loop and measures its accuracy on held-out digits it never trained on.
#
# Points: exercise 1: 2, exercise 2: 2, exercise 3: 3, exercise 4: 2, exercise 5: 2, accuracy bar: 4 (15 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# The code cell below chooses the **tier** and prints it: on the GPU tier PyTorch works on the CUDA device,
# on the CPU tier on the processor. The code is the same on both; only `device` differs.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("10.title", "10 Your first neural network"))

# %% nbgrader="locked" id="imports"
import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn import functional as F

from techday import dl
from techday.i18n import msg

if not lab.on_gpu:
    torch.set_num_threads(1)  # tiny models: one CPU thread is fastest, and shares a busy machine well
dev = dl.device(lab)  # cuda on the GPU tier, cpu otherwise
from techday.tier import shown_label  # the record's English label, in this run's language
print(msg("10.banner", "PyTorch {version} | device: {dev} | timings here: {timing}",
          version=torch.__version__, dev=dev, timing=shown_label(lab.timing_label())))

# %% [markdown] key="tensors-devices"
# ## 1. Tensors and devices
#
# A **tensor** is PyTorch's array: like a NumPy array, with a `shape` and a `dtype`, plus a
# **device** where its memory lives (`cpu` or `cuda`). Operations run where their operands are, and
# all operands of one operation must be on the same device. `.to(device)` returns a copy on that
# device (or the tensor itself if it is already there); for a model, `.to(device)` moves its weights
# in place and returns the same model.
#
# Neural networks use `float32` for values and `int64` ("long") for class labels.

# %%
a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
b = torch.ones(3, 4)
c = a @ b  # matrix product: (2, 3) @ (3, 4) -> (2, 4)
print("a:", tuple(a.shape), a.dtype, a.device, "| c = a @ b:", tuple(c.shape))
a_dev = a.to(dev)
print(msg("10.a_to_dev", "a.to(dev) lives on {dev_new} | a is still on {dev_old}", dev_new=a_dev.device, dev_old=a.device))
print(msg("10.back_to_numpy", "back to NumPy (from the CPU only): {values}", values=(a_dev * 2).cpu().numpy().tolist()))

# %% [markdown] key="autograd-gradients-free"
# ## 2. Autograd: gradients for free
#
# Mark a tensor with `requires_grad=True` and PyTorch records every operation on it. `backward()` on
# a scalar result then computes the derivative of that result with respect to every marked tensor and
# **adds** it to its `.grad`. Adds, not stores: call `backward()` twice and the gradients sum up.
# That is why every training step starts by zeroing them.

# %%
w = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
x = torch.tensor([3.0, 1.0, 2.0])
loss = ((w * x).sum() - 1.0) ** 2  # (w . x - 1)^2 ; d loss / d w = 2 (w . x - 1) x
loss.backward()
print(msg("10.grad_once", "w.grad after one backward : {grad} | by hand: {by_hand}",
          grad=w.grad.tolist(), by_hand=(2 * ((w * x).sum() - 1) * x).tolist()))
loss = ((w * x).sum() - 1.0) ** 2
loss.backward()
print(msg("10.grad_twice", "after a second backward   : {grad} (twice as large: accumulated)", grad=w.grad.tolist()))
w.grad.zero_()
print(msg("10.grad_zeroed", "after w.grad.zero_()      : {grad}", grad=w.grad.tolist()))

# %% [markdown] key="gradient-descent-step-hand"
# To *change* a tensor that requires grad, do it inside `with torch.no_grad():` (the update itself
# must not be recorded), and in place (`w -= lr * w.grad`), so that `w` stays the same leaf tensor.
#
# ## Exercise 1: one gradient-descent step by hand (2 points)
#
# Write `sgd_step(w, b, x, y, lr)` for a linear model `pred = x @ w + b` with the mean squared error
# `loss = ((pred - y) ** 2).mean()`. `w` (shape `(d,)`) and `b` (shape `()`) require grad; `x` is
# `(n, d)`, `y` is `(n,)`. The function must:
# 1. compute the loss and call `backward()`;
# 2. update `w` and `b` in place, `w -= lr * w.grad`, inside `torch.no_grad()`;
# 3. zero both gradients afterwards, so that the next call starts clean;
# 4. return the loss before the update, as a Python float (`loss.item()`).

# %% nbgrader="solution" id="sgd_step"
def sgd_step(w, b, x, y, lr):
    """One step of gradient descent on the mean squared error of x @ w + b; returns the loss."""
    ### BEGIN SOLUTION
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
        b -= lr * b.grad
    w.grad.zero_()
    b.grad.zero_()
    return loss.item()
    ### END SOLUTION

# %% nbgrader="tests" id="sgd_step_tests" points=2
"""sgd_step returns the loss as a float and moves w and b by -lr times the analytic gradient of the mean
squared error, two steps in a row (the second step is wrong if the gradients were not zeroed); hidden:
other sizes and learning rates, gradients left at zero; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg
import torch


def check_sgd_steps(n, d, lr, steps, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    w_ref, b_ref = w.detach().clone(), b.detach().clone()
    for step in range(steps):
        r = x @ w_ref + b_ref - y
        loss_ref = float((r ** 2).mean())
        grad_w, grad_b = 2 * x.T @ r / n, 2 * r.mean()
        loss = sgd_step(w, b, x, y, lr)
        assert isinstance(loss, float), msg("10.sgd_float", "sgd_step must return a Python float (loss.item()), got {kind}",
                                            kind=type(loss))
        assert abs(loss - loss_ref) < 1e-9, msg("10.sgd_loss", "step {step}: loss {loss} differs from {want}",
                                                step=step + 1, loss=loss, want=loss_ref)
        w_ref, b_ref = w_ref - lr * grad_w, b_ref - lr * grad_b
        assert torch.allclose(w.detach(), w_ref, atol=1e-9), msg(
            "10.sgd_w", "step {step}: w is not w - lr * grad (were the gradients of the last step zeroed?)", step=step + 1)
        assert torch.allclose(b.detach(), b_ref, atol=1e-9), msg("10.sgd_b", "step {step}: b is not b - lr * grad",
                                                                 step=step + 1)
        assert w.requires_grad and w.is_leaf, msg("10.sgd_leaf",
                                                  "update w in place inside torch.no_grad(): w must stay a leaf")
    return w, b


check_sgd_steps(n=20, d=3, lr=0.1, steps=2, seed=0)
### BEGIN HIDDEN TESTS
w_h, b_h = check_sgd_steps(n=7, d=5, lr=0.05, steps=4, seed=1)
# Cleared either way: zeroed in place, or set to None as optimizer.zero_grad() does by default.
assert w_h.grad is None or float(w_h.grad.abs().sum()) == 0.0, msg("10.sgd_zero_w", "zero w.grad after the update")
assert b_h.grad is None or float(b_h.grad.abs()) == 0.0, msg("10.sgd_zero_b", "zero b.grad after the update")
check_sgd_steps(n=31, d=1, lr=0.3, steps=3, seed=2)
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("10.sgd_step_tests")
check_sgd_steps(n=int(rd.integers(2, 40)), d=int(rd.integers(1, 9)), lr=round(float(rd.uniform(0.01, 0.3)), 3),
                steps=int(rd.integers(1, 5)), seed=int(rd.integers(1 << 30)))
### END HIDDEN TESTS
print(msg("10.sgd_passed", "sgd_step: all visible tests passed."))

# %% [markdown] key="data-handwritten-digits-split"
# ## 3. The data: handwritten digits, split three ways
#
# `dl.load_digits_split()` returns scikit-learn's 1,797 digit images (8 x 8 pixels, scaled to [0, 1],
# shape `(N, 1, 8, 8)`: one colour channel) with their labels 0-9, split into three disjoint sets,
# **stratified** (every digit in the same proportion in each):
#
# | split | used for |
# | --- | --- |
# | `train` | fitting the weights |
# | `val` | choosing: epochs, sizes, learning rate; watching for overfitting |
# | `test` | the final, honest measurement, once; the grader keeps its labels (`data.test.y` is `None`) |
#
# Choosing anything by the test split's accuracy makes that accuracy optimistic: it is no longer a
# measurement on unseen data. In this lab you use `train` and `val`; the grader uses `test`.

# %% nbgrader="locked" id="data"
data = dl.load_digits_split().to(dev)
train, val = data.train, data.val
print(msg("10.data_shapes", "train {train_shape} {dtype} | val {val_shape} | labels {labels}", train_shape=tuple(train.x.shape),
          dtype=train.x.dtype, val_shape=tuple(val.x.shape), labels=train.y.dtype))
print(msg("10.per_digit_train", "images per digit in train: {counts}", counts=torch.bincount(train.y.cpu()).tolist()))
print(msg("10.per_digit_val", "images per digit in val  : {counts}", counts=torch.bincount(val.y.cpu()).tolist()))
print(msg("10.first_image", "the first training image, as ink levels 0-9:"))
for row in train.x[0, 0].cpu():
    print("   ", " ".join(str(int(v * 9.99)) for v in row), end="\n")
print(msg("10.its_label", "its label: {label}", label=int(train.y[0])))

# %% [markdown] key="multi-layer-perceptron"
# ## 4. A multi-layer perceptron
#
# An MLP is a stack of linear layers with a non-linearity between them. `nn.Sequential` chains
# layers; each `nn.Linear(n_in, n_out)` holds a weight matrix and a bias. The network outputs 10
# **logits**, one score per digit; `F.cross_entropy(logits, labels)` turns them into probabilities
# (softmax) and measures how wrong they are. The predicted digit is `logits.argmax(dim=1)`.
#
# **Dropout** (`nn.Dropout(p)`) zeroes each activation with probability `p` during training (and
# scales the rest by `1 / (1 - p)`), which discourages the network from relying on any single
# feature. It must be **off** when you evaluate: `model.train()` switches it on, `model.eval()` off.
#
# ## Exercise 2: build the MLP (2 points)
#
# Write `make_mlp(hidden=128, dropout=0.2)` returning an `nn.Sequential` of, in order: `nn.Flatten()`
# (`(N, 1, 8, 8)` -> `(N, 64)`), `nn.Linear(64, hidden)`, `nn.ReLU()`, `nn.Dropout(dropout)`,
# `nn.Linear(hidden, 10)`.

# %% nbgrader="solution" id="make_mlp"
def make_mlp(hidden=128, dropout=0.2):
    """Flatten -> Linear(64, hidden) -> ReLU -> Dropout(dropout) -> Linear(hidden, 10)."""
    ### BEGIN SOLUTION
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, 10),
    )
    ### END SOLUTION

# %% nbgrader="tests" id="make_mlp_tests" points=2
"""make_mlp maps (N, 1, 8, 8) images to (N, 10) float32 logits with 64 * h + h + h * 10 + 10 parameters
and a dropout layer with the given p; hidden: other hidden sizes, N = 1, dropout active in train mode
and off in eval mode, the layers in the order given; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg
import torch
from torch import nn

mlp = make_mlp()
out = mlp(torch.rand(5, 1, 8, 8))
assert tuple(out.shape) == (5, 10) and out.dtype == torch.float32, msg(
    "10.mlp_shape", "expected (5, 10) float32 logits, got {shape} {dtype}", shape=tuple(out.shape), dtype=out.dtype)
n_params = sum(p.numel() for p in mlp.parameters())
assert n_params == 64 * 128 + 128 + 128 * 10 + 10, msg(
    "10.mlp_params", "{n_params} parameters: expected two linear layers 64 -> 128 -> 10", n_params=n_params)
drops = [m for m in mlp.modules() if isinstance(m, nn.Dropout)]
assert len(drops) == 1 and drops[0].p == 0.2, msg("10.mlp_dropout", "one nn.Dropout(dropout) between the two linear layers")
### BEGIN HIDDEN TESTS
for hidden_h, p_h in ((7, 0.5), (33, 0.0), (256, 0.3)):
    mlp_h = make_mlp(hidden=hidden_h, dropout=p_h)
    assert sum(p.numel() for p in mlp_h.parameters()) == 64 * hidden_h + hidden_h + hidden_h * 10 + 10
    assert [m.p for m in mlp_h.modules() if isinstance(m, nn.Dropout)] == [p_h]
    assert tuple(mlp_h(torch.rand(1, 1, 8, 8)).shape) == (1, 10)
# Drawn at every grading (techday.draw): the sizes above are published with the course.
import techday.draw

rd = techday.draw.rng("10.make_mlp_tests")
hidden_d, p_d = int(rd.integers(1, 300)), (0.0, round(float(rd.uniform(0.05, 0.9)), 2))[int(rd.integers(2))]
mlp_d = make_mlp(hidden=hidden_d, dropout=p_d)
assert sum(p.numel() for p in mlp_d.parameters()) == 64 * hidden_d + hidden_d + hidden_d * 10 + 10
assert [m.p for m in mlp_d.modules() if isinstance(m, nn.Dropout)] == [p_d]
assert tuple(mlp_d(torch.rand(3, 1, 8, 8)).shape) == (3, 10)
mlp_h = make_mlp(hidden=64, dropout=0.5)
x_h = torch.rand(16, 1, 8, 8)
mlp_h.train()
assert not torch.equal(mlp_h(x_h), mlp_h(x_h)), msg("10.mlp_train_mode", "dropout must be active in train mode")
mlp_h.eval()
assert torch.equal(mlp_h(x_h), mlp_h(x_h)), msg("10.mlp_eval_mode", "eval mode must be deterministic")
kinds = [type(m).__name__ for m in make_mlp(hidden=16, dropout=0.3)]
assert kinds == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"], msg(
    "10.mlp_order", "hidden: the layers in order are Flatten, Linear, ReLU, Dropout, Linear (dropout on the hidden "
    "activations, not on the pixels or the logits); got {kinds}", kinds=kinds)
### END HIDDEN TESTS
print(msg("10.mlp_passed", "make_mlp: all visible tests passed."))

# %% [markdown] key="training-loop"
# ## 5. The training loop
#
# One **epoch** is one pass over the training data, in **mini-batches**. For each batch:
#
# ```python
# optimizer.zero_grad()                        # 1. forget the last batch's gradients
# loss = F.cross_entropy(model(xb), yb)        # 2. forward pass and loss
# loss.backward()                              # 3. gradients of the loss for every weight
# optimizer.step()                             # 4. update the weights (SGD, Adam, ...)
# ```
#
# Shuffle the data every epoch, so that batches differ from epoch to epoch: draw one permutation
# `order` and index inputs **and** labels with it, `x[idx]` and `y[idx]`. Call `model.train()` first:
# dropout on.
#
# ## Exercise 3: one epoch of training (3 points)
#
# Write `train_epoch(model, optimizer, x, y, batch_size, generator)` that:
# 1. puts the model in train mode;
# 2. draws `order = torch.randperm(len(y), generator=generator)` (exactly this call: the tests
#    replay it) and walks through it in slices `order[i:i + batch_size]`;
# 3. for each batch does the four steps above with `F.cross_entropy`;
# 4. returns the mean training loss over the epoch, weighted by batch size, as a float.

# %% nbgrader="solution" id="train_epoch"
def train_epoch(model, optimizer, x, y, batch_size, generator):
    """One epoch of mini-batch training over (x, y), shuffled with generator; returns the mean loss."""
    ### BEGIN SOLUTION
    model.train()
    order = torch.randperm(len(y), generator=generator)
    total = 0.0
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(y)
    ### END SOLUTION

# %% nbgrader="tests" id="train_epoch_tests" points=3
"""train_epoch reproduces a reference epoch of SGD exactly (same shuffle, zero_grad every batch, inputs and
labels shuffled together), returns the mean loss, leaves the model in train mode, and a few epochs lower
the loss; hidden: stale gradients before the epoch, batch sizes that do not divide N, one big batch; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg
import copy

import torch
from torch import nn
from torch.nn import functional as F

torch.manual_seed(0)
x_v, y_v = torch.randn(96, 1, 8, 8), torch.randint(0, 10, (96,))
net_v = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))
before = [p.detach().clone() for p in net_v.parameters()]
net_v.eval()
mean_v = train_epoch(net_v, torch.optim.SGD(net_v.parameters(), lr=0.5), x_v, y_v, 32, torch.Generator().manual_seed(0))
assert net_v.training, msg("10.epoch_train_mode", "train_epoch must put the model in train mode (model.train())")
assert isinstance(mean_v, float), msg("10.epoch_float", "return the mean loss as a float, not {kind}", kind=type(mean_v))
assert all(not torch.equal(b, p) for b, p in zip(before, net_v.parameters())), msg(
    "10.epoch_step", "one epoch should change every parameter: call optimizer.step() after loss.backward()")
torch.manual_seed(1)
mlp_t = make_mlp(hidden=32, dropout=0.0)
opt_t = torch.optim.Adam(mlp_t.parameters(), lr=1e-2)
g_t = torch.Generator().manual_seed(1)
x_cpu, y_cpu = train.x[:256].cpu(), train.y[:256].cpu()
losses = [train_epoch(mlp_t, opt_t, x_cpu, y_cpu, 32, g_t) for _ in range(4)]
assert losses[-1] < 0.6 * losses[0], msg("10.epoch_lower", "four epochs should lower the loss clearly: {losses}", losses=losses)
### BEGIN HIDDEN TESTS
def reference_epoch(model, optimizer, x, y, batch_size, generator):
    model.train()
    order = torch.randperm(len(y), generator=generator)
    total = 0.0
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(y)


def compare_epoch(n, batch_size, seed, stale=False):
    torch.manual_seed(seed)
    x = torch.randn(n, 1, 8, 8)
    y = torch.randint(0, 10, (n,))
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))
    ref = copy.deepcopy(net)
    if stale:  # gradients left over from earlier work
        for p in net.parameters():
            p.grad = torch.ones_like(p)
    net.eval()
    mean = train_epoch(net, torch.optim.SGD(net.parameters(), lr=0.5), x, y, batch_size,
                       torch.Generator().manual_seed(seed))
    mean_ref = reference_epoch(ref, torch.optim.SGD(ref.parameters(), lr=0.5), x, y, batch_size,
                               torch.Generator().manual_seed(seed))
    assert net.training, msg("10.epoch_train_mode", "train_epoch must put the model in train mode (model.train())")
    assert isinstance(mean, float), msg("10.epoch_float", "return the mean loss as a float, not {kind}", kind=type(mean))
    assert abs(mean - mean_ref) < 1e-5, msg("10.epoch_mean", "mean loss {mean:.6f}, expected {want:.6f} (n={n}, batch {batch_size})",
                                            mean=mean, want=mean_ref, n=n, batch_size=batch_size)
    for (name, p), p_ref in zip(net.named_parameters(), ref.parameters()):
        assert torch.allclose(p, p_ref, atol=1e-5), msg(
            "10.epoch_reference", "after one epoch (n={n}, batch {batch_size}) parameter {name} differs from the reference: "
            "zero the gradients before every backward, and shuffle inputs and labels with the same order",
            n=n, batch_size=batch_size, name=name)


compare_epoch(n=96, batch_size=32, seed=0)
compare_epoch(n=50, batch_size=7, seed=2, stale=True)
compare_epoch(n=40, batch_size=64, seed=3, stale=True)
compare_epoch(n=33, batch_size=1, seed=4)
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("10.train_epoch_tests")
compare_epoch(n=int(rd.integers(1, 120)), batch_size=int(rd.integers(1, 65)), seed=int(rd.integers(1 << 30)),
              stale=bool(rd.integers(2)))
### END HIDDEN TESTS
print(msg("10.epoch_passed", "train_epoch: all visible tests passed; losses over four epochs: {losses}",
          losses=[round(v, 3) for v in losses]))

# %% [markdown] key="evaluation-eval-mode-no"
# ## 6. Evaluation: eval mode, no gradients
#
# To measure a model: `model.eval()` (dropout off; in lab 11 also batch-norm's running statistics),
# and `with torch.no_grad():` (no graph is recorded: faster, less memory). Accuracy is the fraction
# of images whose `argmax` logit is the true label.
#
# ## Exercise 4: evaluate (2 points)
#
# Write `evaluate(model, x, y)` returning `(loss, accuracy)` as Python floats: the mean cross-entropy
# and the fraction of correct predictions, in eval mode and without gradients.

# %% nbgrader="solution" id="evaluate"
def evaluate(model, x, y):
    """(mean cross-entropy, accuracy) of model on (x, y), in eval mode, without gradients."""
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy
    ### END SOLUTION

# %% nbgrader="tests" id="evaluate_tests" points=2
"""evaluate returns (loss, accuracy) floats equal to an eval-mode, no-grad reference for a network with
strong dropout, the same on every call, with no graph attached; hidden: a model handed over in train
mode, other sizes, a perfect and a hopeless classifier, a forward pass that must not record a graph."""
from techday.i18n import msg
import torch
from torch import nn
from torch.nn import functional as F

from techday import dl

torch.manual_seed(0)
net_e = make_mlp(hidden=64, dropout=0.5)
x_e, y_e = val.x[:120].cpu(), val.y[:120].cpu()
result = evaluate(net_e, x_e, y_e)
assert isinstance(result, tuple) and len(result) == 2, msg("10.eval_tuple", "return (loss, accuracy), got {result!r}", result=result)
assert all(isinstance(v, float) for v in result), msg("10.eval_floats", "return Python floats (.item()), got {result!r}", result=result)
ref_loss, ref_acc = dl.evaluate(net_e, dl.Split(x_e, y_e))
assert abs(result[0] - ref_loss) < 1e-5 and abs(result[1] - ref_acc) < 1e-6, msg(
    "10.eval_reference", "evaluate gave {result}, the eval-mode reference {want}: is dropout still on? (model.eval())",
    result=result, want=(ref_loss, ref_acc))
assert evaluate(net_e, x_e, y_e) == result, msg("10.eval_agree", "two evaluations of the same model must agree")
### BEGIN HIDDEN TESTS
net_e.train()
again = evaluate(net_e, x_e, y_e)
assert abs(again[0] - ref_loss) < 1e-5 and abs(again[1] - ref_acc) < 1e-6, msg(
    "10.eval_switch", "evaluate must switch to eval mode itself")
x_h, y_h = val.x[:37].cpu(), val.y[:37].cpu()
onehot = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
with torch.no_grad():
    onehot[1].weight.zero_()
    onehot[1].bias.zero_()
loss_h, acc_h = evaluate(onehot, x_h, y_h)
assert abs(loss_h - torch.log(torch.tensor(10.0)).item()) < 1e-5, msg("10.eval_uniform_loss", "uniform logits: loss is log(10)")
assert abs(acc_h - float((y_h == 0).float().mean())) < 1e-6, msg("10.eval_uniform_acc", "uniform logits: argmax is class 0")


class Oracle(nn.Module):
    def __init__(self, labels):
        super().__init__()
        self.labels = labels
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return F.one_hot(self.labels[: len(x)], 10).float() * 50 + self.dummy


assert evaluate(Oracle(y_h), x_h, y_h)[1] == 1.0, msg("10.eval_perfect", "a perfect classifier has accuracy 1.0")


class GradProbe(nn.Module):
    """A linear classifier that records whether autograd was recording during each forward pass."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.grad_enabled = []

    def forward(self, x):
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.linear(x.flatten(1))


probe = GradProbe()
evaluate(probe, x_h, y_h)
assert probe.grad_enabled and not any(probe.grad_enabled), msg(
    "10.eval_no_grad", "hidden: the forward pass recorded a graph: run the model inside torch.no_grad()")
### END HIDDEN TESTS
print(msg("10.eval_passed", "evaluate: all visible tests passed."))

# %% [markdown] key="training-validation-split"
# ## 7. Training with a validation split
#
# Put the pieces together: for each epoch, train on `train`, then evaluate on `val`, and keep the
# numbers. The history tells you when to stop: training loss keeps falling, but when validation loss
# starts to rise the network is memorising the training images instead of learning digits.
#
# ## Exercise 5: fit (2 points)
#
# Write `fit(model, optimizer, train, val, epochs, batch_size, generator)` where `train` and `val`
# have `.x` and `.y`. For each epoch call your `train_epoch` on `train`, then your `evaluate` on
# **`val`**. Return a dictionary of three lists, one entry per epoch: `"train_loss"` (from
# `train_epoch`), `"val_loss"` and `"val_acc"` (from `evaluate`).

# %% nbgrader="solution" id="fit"
def fit(model, optimizer, train, val, epochs, batch_size, generator):
    """Train for epochs, evaluating on val after each; returns the history of the three curves."""
    ### BEGIN SOLUTION
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        history["train_loss"].append(train_epoch(model, optimizer, train.x, train.y, batch_size, generator))
        val_loss, val_acc = evaluate(model, val.x, val.y)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
    return history
    ### END SOLUTION

# %% nbgrader="tests" id="fit_tests" points=2
"""fit returns one train_loss, val_loss and val_acc per epoch, and the last val_loss and val_acc are the
model's loss and accuracy on the validation split (not on the training data); hidden: other epoch
counts, a validation set the model cannot fit, the whole history against your train_epoch and evaluate
run epoch by epoch with one generator."""
from techday.i18n import msg
import torch

from techday import dl

torch.manual_seed(0)
mlp_f = make_mlp(hidden=64, dropout=0.0)
train_small = dl.Split(train.x[:200].cpu(), train.y[:200].cpu())
val_cpu = dl.Split(val.x.cpu(), val.y.cpu())
hist = fit(mlp_f, torch.optim.Adam(mlp_f.parameters(), lr=1e-2), train_small, val_cpu, 3, 32,
           torch.Generator().manual_seed(0))
assert set(hist) >= {"train_loss", "val_loss", "val_acc"}, msg("10.fit_keys", "history keys: {keys}", keys=sorted(hist))
assert all(len(hist[k]) == 3 for k in ("train_loss", "val_loss", "val_acc")), msg("10.fit_per_epoch", "one entry per epoch")
v_loss, v_acc = dl.evaluate(mlp_f, val_cpu)
assert abs(hist["val_acc"][-1] - v_acc) < 1e-6 and abs(hist["val_loss"][-1] - v_loss) < 1e-5, msg(
    "10.fit_val", "the last val_acc {got:.4f} is not the accuracy on the validation split ({want:.4f})",
    got=hist["val_acc"][-1], want=v_acc)
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
mlp_fh = make_mlp(hidden=128, dropout=0.0)
tiny = dl.Split(train.x[:40].cpu(), train.y[:40].cpu())
shuffled_val = dl.Split(val.x[:100].cpu(), val.y[:100].cpu()[torch.randperm(100)])  # labels unrelated to images
hist_h = fit(mlp_fh, torch.optim.Adam(mlp_fh.parameters(), lr=1e-2), tiny, shuffled_val, 25, 8,
             torch.Generator().manual_seed(1))
assert len(hist_h["val_acc"]) == 25 and len(hist_h["train_loss"]) == 25
tl, ta = dl.evaluate(mlp_fh, tiny)
assert ta > 0.95, msg("10.fit_memorise", "a wide MLP memorises 40 images in 25 epochs")
assert hist_h["val_acc"][-1] < 0.5, msg("10.fit_from_val", "accuracy on unrelated labels stays low: val_acc must come from val, not train")
assert abs(hist_h["val_acc"][-1] - dl.evaluate(mlp_fh, shuffled_val)[1]) < 1e-6
import copy

# The whole history against a loop of your own train_epoch and evaluate on a copy of the model: one
# generator through all the epochs, train_loss as train_epoch returns it.
torch.manual_seed(2)
mlp_r = make_mlp(hidden=32, dropout=0.0)
mlp_r_ref = copy.deepcopy(mlp_r)
part = dl.Split(train.x[:120].cpu(), train.y[:120].cpu())
hist_r = fit(mlp_r, torch.optim.SGD(mlp_r.parameters(), lr=0.2), part, val_cpu, 3, 16, torch.Generator().manual_seed(2))
opt_r_ref, g_r_ref = torch.optim.SGD(mlp_r_ref.parameters(), lr=0.2), torch.Generator().manual_seed(2)
want_r = {"train_loss": [], "val_loss": [], "val_acc": []}
for _ in range(3):
    want_r["train_loss"].append(train_epoch(mlp_r_ref, opt_r_ref, part.x, part.y, 16, g_r_ref))
    for key, value in zip(("val_loss", "val_acc"), evaluate(mlp_r_ref, val_cpu.x, val_cpu.y)):
        want_r[key].append(value)
for key, want in want_r.items():
    assert len(hist_r[key]) == 3 and all(abs(a - b) < 1e-5 for a, b in zip(hist_r[key], want)), msg(
        "10.fit_history", "hidden: {key} is {got}, expected {want}: pass the one generator to train_epoch in every epoch, and "
        "record what train_epoch returns", key=key, got=hist_r[key], want=want)
### END HIDDEN TESTS
print(msg("10.fit_passed", "fit: all visible tests passed."))

# %% [markdown] key="overfitting-seen"
# ## 8. Overfitting, seen
#
# Give a wide network, without dropout, only 150 training images and many epochs. It can memorise
# them: the training loss falls towards zero, while the validation loss, after a first fall, climbs
# again. The best moment to stop was where the validation loss was lowest (early stopping).

# %%
g_o = dl.seed_everything(0)
small = dl.Split(train.x[:150], train.y[:150])
wide = make_mlp(hidden=512, dropout=0.0).to(dev)
epochs_o = lab.size(full=150, ci=60)
hist_o = fit(wide, torch.optim.Adam(wide.parameters(), lr=3e-3), small, val, epochs_o, 32, g_o)
best = min(range(epochs_o), key=lambda e: hist_o["val_loss"][e])
print(msg("10.overfit_summary", "150 training images, {epochs} epochs: training loss {train_last:.4f} at the end; "
          "validation loss lowest at epoch {best} ({val_best:.3f}), {val_last:.3f} at the end",
          epochs=epochs_o, train_last=hist_o["train_loss"][-1], best=best + 1, val_best=hist_o["val_loss"][best],
          val_last=hist_o["val_loss"][-1]))

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(range(1, epochs_o + 1), hist_o["train_loss"], label=msg("10.plot_train_loss", "training loss"))
ax.plot(range(1, epochs_o + 1), hist_o["val_loss"], label=msg("10.plot_val_loss", "validation loss"))
ax.axvline(best + 1, color="gray", linestyle=":", label=msg("10.plot_lowest_val", "lowest validation loss (epoch {epoch})", epoch=best + 1))
ax.set_xlabel(msg("10.plot_epoch", "epoch"))
ax.set_ylabel(msg("10.plot_cross_entropy", "cross-entropy"))
ax.set_yscale("log")
ax.set_title(msg("10.plot_overfitting_title", "A wide MLP on 150 digits: overfitting"))
ax.legend()
plt.show()

# %% [markdown] key="accuracy-bar"
# Remedies, from the cheapest: more data (lab 11 makes more from what you have, with augmentation),
# stopping early, dropout, weight decay (`torch.optim.AdamW(..., weight_decay=...)`), a smaller model.
#
# ## 9. The accuracy bar
#
# The grader runs the cell below: it seeds everything, builds **your** `make_mlp()`, trains it with
# **your** `fit` (Adam, learning rate 1e-3, batches of 32) on the training split, and measures the
# accuracy on the held-out **test** split with the course's own evaluation. It must reach the bar
# with the seed the grader chooses. Run it to see where you stand.

# %% nbgrader="locked" id="bar"
BAR = 0.90  # accuracy on the held-out test digits
BAR_EPOCHS = lab.size(full=40, ci=15)


def bar_accuracy(seed):
    """Train make_mlp() with fit, from a fixed seed, and return its accuracy on held-out digits."""
    held_out = dl.held_out_digits().to(dev)  # the test split's images with their labels: never for training or choosing
    generator = dl.seed_everything(seed)
    model = make_mlp().to(dev)
    fit(model, torch.optim.Adam(model.parameters(), lr=1e-3), train, val, BAR_EPOCHS, 32, generator)
    return dl.evaluate(model, held_out)[1]


acc0 = bar_accuracy(seed=0)
print(msg("10.bar_seed0", "held-out accuracy with seed 0: {acc:.3f} (bar {bar}, {epochs} epochs)", acc=acc0, bar=BAR,
          epochs=BAR_EPOCHS))

# %% nbgrader="tests" id="bar_tests" points=4
"""The trainee's make_mlp trained with the trainee's fit reaches the accuracy bar on the held-out test
digits, with seed 0; hidden: with the grader's own seed."""
from techday.i18n import msg
assert acc0 >= BAR, msg("10.bar_below", "held-out accuracy {acc:.3f} is below the bar {bar}", acc=acc0, bar=BAR)
### BEGIN HIDDEN TESTS
acc_h = bar_accuracy(seed=20261122)
assert acc_h >= BAR, msg("10.bar_below_hidden", "held-out accuracy {acc:.3f} with the grader's seed is below the bar {bar}",
                         acc=acc_h, bar=BAR)
### END HIDDEN TESTS
print(msg("10.bar_passed", "accuracy bar: passed ({acc:.3f} >= {bar}).", acc=acc0, bar=BAR))

# %% [markdown] key="summary"
# ## Summary
#
# - Tensors have a shape, a dtype and a device; `.to(device)` moves tensors and models, and the same
#   code runs on the CPU and the GPU.
# - `backward()` **adds** gradients into `.grad`: zero them before each step (`optimizer.zero_grad()`).
# - A training step: `zero_grad`, forward, loss, `backward`, `step`. Shuffle inputs and labels with
#   one permutation, every epoch.
# - Evaluate in `model.eval()` and `torch.no_grad()`; choose on the validation split, report on the
#   test split once.
# - Overfitting shows as a validation loss that rises while the training loss falls.
#
# ## Going further
#
# - PyTorch's "Learn the Basics" tutorials: tensors, autograd, `nn.Module`, optimisation loops,
#   https://pytorch.org/tutorials/beginner/basics/intro.html
# - `torch.utils.data.Dataset` and `DataLoader` do the shuffling and batching for large data sets;
#   lab 13 uses their workers and pinned memory to feed a GPU.
# - Try `torch.optim.SGD(..., momentum=0.9)` against Adam, or weight decay, on the overfitting
#   experiment above.
# - Next: lab 11, convolutional networks and data augmentation.
