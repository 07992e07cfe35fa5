# %% [markdown] key="convolutional-networks-data-augmentation"
# # 11 Convolutional networks and data augmentation
#
# Lab 10's MLP flattened each digit into 64 numbers and forgot that pixels have neighbours. A
# **convolutional network** (CNN) keeps the image's shape and looks for small patterns anywhere in it.
# Then we make the network robust to what real cameras do (move a little, add noise) by **augmenting**
# the training images, and we measure the effect on held-out images taken by a camera that moved.
#
# ## You will learn
# - convolution, padding, pooling, and the shape of a tensor through a CNN;
# - **batch normalisation**, and why `model.eval()` matters even more with it than with dropout;
# - image transforms in plain PyTorch (shifts, crops with padding, flips, noise, normalisation),
#   and which ones keep the label;
# - how to **measure** what augmentation buys, on held-out data that differs from the training data.
#
# **How this lab works**: read, run the examples, then solve the three exercises. In each exercise
# cell, delete `raise NotImplementedError()` and write your code. Do not edit test cells. The grader also runs hidden tests, and trains *your* CNN with *your* augmentation.
#
# Points: exercise 1: 3, exercise 2: 3, exercise 3: 3, accuracy bars: 4 (13 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("11.title", "11 Convolutional networks and data augmentation"))

# %% nbgrader="locked" id="imports"
import time

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn import functional as F

from techday import dl
from techday.i18n import msg

if not lab.on_gpu:
    torch.set_num_threads(1)  # tiny models: one CPU thread is fastest, and shares a busy machine well
dev = dl.device(lab)
data = dl.load_digits_split().to(dev)  # the split of lab 10: train, val, and the grader's test (no labels)
print(msg("11.banner", "PyTorch {version} | device: {dev} | train {n_train}, val {n_val} images",
          version=torch.__version__, dev=dev, n_train=len(data.train), n_val=len(data.val)))

# %% [markdown] key="convolution-padding-pooling"
# ## 1. Convolution, padding, pooling
#
# `nn.Conv2d(c_in, c_out, 3, padding=1)` slides `c_out` small 3 x 3 filters over the image; each
# filter has `c_in x 3 x 3` weights and a bias, and produces one output **channel**: a map of where
# its pattern (an edge, a corner, a curve) appears. The same weights are used at every position, so a
# CNN has far fewer weights than an MLP and finds a stroke wherever it is.
#
# - **Padding** 1 adds a border of zeros so that a 3 x 3 filter keeps an 8 x 8 image 8 x 8.
# - **Max pooling** `nn.MaxPool2d(2)` keeps the largest value of each 2 x 2 patch: 8 x 8 -> 4 x 4.
#   A pattern that moves by one pixel often lands in the same patch (a little shift invariance).
# - **Batch normalisation** `nn.BatchNorm2d(c)` rescales each channel to zero mean and unit variance
#   over the batch (all images and all positions), then applies a learned scale and shift; it makes training faster and steadier.
#   In train mode it uses the **batch's** statistics and updates running averages; in eval mode it
#   uses those **running** averages. Evaluate in train mode and every prediction depends on which
#   other images share its batch (and the running averages drift with the evaluation data).
#
# Watch the shapes through a small CNN, `(N, C, H, W)`:

# %%
demo = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(8 * 4 * 4, 10),
).to(dev)
h = data.train.x[:5]
print(f"{'input':28s} {tuple(h.shape)}")
for layer in demo:
    h = layer(h)
    print(f"{layer.__class__.__name__:28s} {tuple(h.shape)}")
print(msg("11.demo_params", "parameters: {count}", count=sum(p.numel() for p in demo.parameters())))

demo.train()
alone = demo(data.val.x[:1])
in_batch = demo(data.val.x[:64])[:1]
print(msg("11.demo_train_mode", "train mode: image 0 alone vs in a batch of 64, largest logit difference {diff:.3f}",
          diff=(alone - in_batch).abs().max().item()))
demo.eval()
print(msg("11.demo_eval_mode", "eval mode : the same comparison gives {diff:.3f}",
          diff=(demo(data.val.x[:1]) - demo(data.val.x[:64])[:1]).abs().max().item()))

# %% [markdown] key="cnn"
# ## Exercise 1: your CNN (3 points)
#
# Write `make_cnn(width=16, dropout=0.25)` returning an `nn.Sequential` that maps `(N, 1, 8, 8)`
# images to `(N, 10)` logits, in this order:
#
# 1. `nn.Conv2d(1, width, 3, padding=1)`, `nn.BatchNorm2d(width)`, `nn.ReLU()`;
# 2. `nn.Conv2d(width, 2 * width, 3, padding=1)`, `nn.BatchNorm2d(2 * width)`, `nn.ReLU()`;
# 3. `nn.MaxPool2d(2)`, `nn.Flatten()`, `nn.Dropout(dropout)`;
# 4. `nn.Linear(...)` to 10 classes: work out its input size from the shapes above.

# %% nbgrader="solution" id="make_cnn"
def make_cnn(width=16, dropout=0.25):
    """Two conv-BN-ReLU blocks, 2x2 max-pool, flatten, dropout, linear to 10 logits."""
    ### BEGIN SOLUTION
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(2 * width * 4 * 4, 10),
    )
    ### END SOLUTION

# %% nbgrader="tests" id="make_cnn_tests" points=3
"""make_cnn maps (N, 1, 8, 8) to (N, 10) float32 logits with two convolutions, two batch-norms and a
dropout, and the expected number of parameters; hidden: other widths, one image in eval mode,
predictions in eval mode independent of the batch, dropout and batch-norm active in train mode; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg
import torch
from torch import nn


def cnn_params(w):
    return (9 * w + w) + 2 * w + (w * 9 * 2 * w + 2 * w) + 4 * w + (2 * w * 16 * 10 + 10)


cnn = make_cnn()
out = cnn(torch.rand(6, 1, 8, 8))
assert tuple(out.shape) == (6, 10) and out.dtype == torch.float32, msg(
    "11.cnn_shape", "expected (6, 10) float32, got {shape}", shape=tuple(out.shape))
kinds = [type(m) for m in cnn.modules()]
assert kinds.count(nn.Conv2d) == 2 and kinds.count(nn.BatchNorm2d) == 2, msg("11.cnn_layers", "two Conv2d and two BatchNorm2d layers")
assert [m.p for m in cnn.modules() if isinstance(m, nn.Dropout)] == [0.25], msg("11.cnn_dropout", "one nn.Dropout(dropout)")
n_cnn = sum(p.numel() for p in cnn.parameters())
assert n_cnn == cnn_params(16), msg("11.cnn_params", "{n} parameters, expected {want}", n=n_cnn, want=cnn_params(16))
### BEGIN HIDDEN TESTS
for w_h in (4, 8, 24):
    cnn_h = make_cnn(width=w_h, dropout=0.5)
    assert sum(p.numel() for p in cnn_h.parameters()) == cnn_params(w_h), msg("11.cnn_width_params",
                                                                              "width {width}: parameter count", width=w_h)
    cnn_h.eval()
    assert tuple(cnn_h(torch.rand(1, 1, 8, 8)).shape) == (1, 10), msg("11.cnn_width_one", "width {width}: one image in eval mode",
                                                                      width=w_h)
# Drawn at every grading (techday.draw): the widths above are published with the course.
import techday.draw

rd = techday.draw.rng("11.make_cnn_tests")
w_d = int(rd.integers(2, 33))
cnn_d = make_cnn(width=w_d, dropout=round(float(rd.uniform(0.0, 0.8)), 2))
assert sum(p.numel() for p in cnn_d.parameters()) == cnn_params(w_d), msg("11.cnn_width_params",
                                                                          "width {width}: parameter count", width=w_d)
cnn_d.eval()
assert tuple(cnn_d(torch.rand(1, 1, 8, 8)).shape) == (1, 10), msg("11.cnn_width_one", "width {width}: one image in eval mode",
                                                                  width=w_d)
torch.manual_seed(0)
cnn_h = make_cnn(width=8, dropout=0.5)
x_h = torch.rand(32, 1, 8, 8)
cnn_h.train()
cnn_h(x_h)  # one training forward pass: updates the running statistics
assert not torch.equal(cnn_h(x_h), cnn_h(x_h)), msg("11.cnn_train_mode", "dropout must be active in train mode")
cnn_h.eval()
assert torch.equal(cnn_h(x_h), cnn_h(x_h)), msg("11.cnn_eval_mode", "eval mode must be deterministic")
assert torch.allclose(cnn_h(x_h[:1]), cnn_h(x_h)[:1], atol=1e-5), msg(
    "11.cnn_eval_batch", "in eval mode an image's logits do not depend on its batch")
### END HIDDEN TESTS
print(msg("11.cnn_passed", "make_cnn: all visible tests passed; {n} parameters", n=n_cnn))

# %% [markdown] key="transforms-plain-pytorch"
# ## 2. Transforms in plain PyTorch
#
# torchvision has such transforms, and it loads with CPU PyTorch as well as with CUDA PyTorch when
# the torchvision wheel matching the installed torch is installed. This course writes its own in plain
# PyTorch for other reasons: its random transforms draw their parameters from PyTorch's global random
# state, and given a batch tensor they apply one draw to the whole batch, while augmentation here
# gives each image its own shift, drawn from an explicit `torch.Generator` so that a seed (and a
# test) replays it exactly; the course image does not need one more package kept in step with torch's
# version; and these transforms are a few lines each. `techday.dl` has the ones this track uses; all
# take a batch `(N, C, H, W)` and keep its shape and dtype:
#
# | transform | what it does |
# | --- | --- |
# | `dl.hflip(x)`, `dl.random_hflip(x, p, generator)` | mirror left-right (each image with probability p) |
# | `dl.shift(x, dy, dx)` | move the content down by dy and right by dx pixels, filling with zeros |
# | `dl.random_shift(x, max_shift, generator)` | each image its own shift: a random crop of the zero-padded image |
# | `dl.gaussian_noise(x, std, generator)` | add noise |
# | `dl.normalize(x, mean, std)` | `(x - mean) / std`, with the training set's statistics |
#
# An augmentation must **keep the label**. For digits, a shift by a pixel or a little noise does; a
# mirror does not: a mirrored 3 is no digit, a mirrored 2 looks like a 5. For photos of parts on a conveyor belt, a mirror may be fine.

# %%
sample = data.val.x[:6].cpu()
rows = {
    "original": sample,
    "dl.hflip": dl.hflip(sample),
    "dl.shift(x, 1, -1)": dl.shift(sample, 1, -1),
    "dl.gaussian_noise(0.1)": dl.gaussian_noise(sample, 0.1, torch.Generator().manual_seed(0)),
}
fig, axes = plt.subplots(len(rows), 6, figsize=(6, 4.4))
for r, (name, imgs) in enumerate(rows.items()):
    for c in range(6):
        axes[r, c].imshow(imgs[c, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", fontsize=8)
fig.suptitle(msg("11.plot_labels", "labels: {labels}", labels=data.val.y[:6].tolist()), fontsize=9)
plt.show()

# %% [markdown] key="random-shift-cropping-padded"
# ## Exercise 2: a random shift, by cropping a padded image (3 points)
#
# Write `random_shift(x, max_shift, generator)` for a batch `x` of shape `(N, C, H, W)`:
# 1. pad every image with `max_shift` zeros on each side: `F.pad(x, (m, m, m, m))` gives
#    `(N, C, H + 2m, W + 2m)`;
# 2. for each image draw its **own** offsets `oy`, `ox` in `0 ... 2m` with
#    `torch.randint(0, 2 * m + 1, (N,), generator=generator)` (one call for `oy`, then one for `ox`);
# 3. crop each padded image back to `H x W` at rows `oy ... oy + H`, columns `ox ... ox + W`.
#
# The result keeps shape, dtype and device, and each image is its original moved by at most `m`
# pixels in each direction, with zeros where nothing was. A loop over the `N` images is fine here.
# (`torch.roll` is not a shift: what leaves on one side comes back on the other.)

# %% nbgrader="solution" id="random_shift"
def random_shift(x, max_shift, generator):
    """Each image of x moved by its own random offset of at most max_shift pixels, zero-filled."""
    ### BEGIN SOLUTION
    m = max_shift
    n, _, hgt, wid = x.shape
    padded = F.pad(x, (m, m, m, m))
    oy = torch.randint(0, 2 * m + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * m + 1, (n,), generator=generator)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, oy[i]:oy[i] + hgt, ox[i]:ox[i] + wid]
    return out
    ### END SOLUTION

# %% nbgrader="tests" id="random_shift_tests" points=3
"""random_shift keeps shape and dtype; every output image is its own input moved by at most max_shift
pixels with zeros filled in (not wrapped around, not mirrored); images of one batch get different
shifts; the same generator seed gives the same result; hidden: max_shift 0 and 2, three channels,
non-square images, float64; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg
import torch

from techday import dl


def matched_shift(src, out, m):
    """The (dy, dx) with |dy|, |dx| <= m that turns src into out exactly, or None."""
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            if torch.equal(dl.shift(src[None], dy, dx)[0], out):
                return dy, dx
    return None


def check_random_shift(x, m, seed):
    out = random_shift(x, m, torch.Generator().manual_seed(seed))
    assert out.shape == x.shape and out.dtype == x.dtype, msg(
        "11.shift_shape", "shape/dtype {shape} {dtype}, expected {want_shape} {want_dtype}",
        shape=tuple(out.shape), dtype=out.dtype, want_shape=tuple(x.shape), want_dtype=x.dtype)
    shifts = []
    for i in range(len(x)):
        s = matched_shift(x[i], out[i], m)
        assert s is not None, msg("11.shift_not_moved", "image {i} is not its input moved by at most {m} pixels with zero fill",
                                  i=i, m=m)
        shifts.append(s)
    again = random_shift(x, m, torch.Generator().manual_seed(seed))
    assert torch.equal(out, again), msg("11.shift_seed", "the same generator seed must give the same shifts")
    return shifts


x_s = data.val.x[:40].cpu()
shifts = check_random_shift(x_s, 1, seed=0)
assert len(set(shifts)) >= 5, msg("11.shift_few", "40 images got only {k} different shifts: draw one per image",
                                 k=len(set(shifts)))
assert shifts != check_random_shift(x_s, 1, seed=1), msg("11.shift_other_seed", "another seed, other shifts")
### BEGIN HIDDEN TESTS
torch.manual_seed(3)
x_h = torch.rand(30, 3, 5, 9, dtype=torch.float64) + 0.5  # no zeros: a wrap-around cannot pass for zero fill
shifts_h = check_random_shift(x_h, 2, seed=5)
assert len(set(shifts_h)) >= 8 and max(max(abs(a), abs(b)) for a, b in shifts_h) == 2, msg(
    "11.shift_up_to_2", "shifts up to 2 pixels")
assert torch.equal(random_shift(x_h, 0, torch.Generator().manual_seed(0)), x_h), msg("11.shift_zero", "max_shift 0 changes nothing")
# Drawn at every grading (techday.draw): the batch above is published with the course.
import techday.draw

rd = techday.draw.rng("11.random_shift_tests")
m_d = int(rd.integers(1, 4))
shape_d = (int(rd.integers(5, 31)), int(rd.integers(1, 4)), int(rd.integers(m_d + 2, 13)), int(rd.integers(m_d + 2, 13)))
x_d = torch.rand(*shape_d, dtype=torch.float64, generator=torch.Generator().manual_seed(int(rd.integers(1 << 30)))) + 0.5
check_random_shift(x_d, m_d, seed=int(rd.integers(1 << 30)))
### END HIDDEN TESTS
print(msg("11.shift_passed", "random_shift: all visible tests passed."))

# %% [markdown] key="augmentation"
# ## Exercise 3: the augmentation (3 points)
#
# Write `augment(x, generator)`, the augmentation for digits: your `random_shift` by at most **1**
# pixel, then Gaussian noise of standard deviation **0.05** (`dl.gaussian_noise(x, 0.05, generator)`),
# both drawing from `generator`. No mirror: it does not keep the label. The inputs must not be changed in place.

# %% nbgrader="solution" id="augment"
def augment(x, generator):
    """Label-preserving augmentation for digits: a random shift of at most 1 pixel, then noise 0.05."""
    ### BEGIN SOLUTION
    return dl.gaussian_noise(random_shift(x, 1, generator), 0.05, generator)
    ### END SOLUTION

# %% nbgrader="tests" id="augment_tests" points=3
"""augment keeps shape and dtype and its input; each output image is its own input (same order, so the
labels still match) moved by at most one pixel plus noise of standard deviation about 0.05, never a
mirror image; noise on every pixel, also those the shift fills in; two calls differ, the same seed
repeats; hidden: a larger batch, a fresh seed; and cases drawn afresh at every grading (techday.draw)."""
from techday.i18n import msg
import torch

from techday import dl


def check_augment(x, seed):
    before = x.clone()
    out = augment(x, torch.Generator().manual_seed(seed))
    assert torch.equal(x, before), msg("11.aug_in_place", "augment must not change its input in place")
    assert out.shape == x.shape and out.dtype == x.dtype, msg("11.aug_shape", "augment keeps shape and dtype")
    assert torch.equal(out, augment(x, torch.Generator().manual_seed(seed))), msg("11.aug_repeat", "the same seed must repeat")
    assert not torch.equal(out, augment(x, torch.Generator().manual_seed(seed + 1))), msg("11.aug_random",
                                                                                         "augment must be random")
    bare = int((out == 0).sum())
    assert bare == 0, msg("11.aug_bare_pixels", "{k} pixels are exactly 0: the noise must reach every pixel, also those the "
                          "shift fills in (shift first, then add noise)", k=bare)
    residual_std = []
    for i in range(len(x)):
        best = min(float((dl.shift(x[i:i + 1], dy, dx)[0] - out[i]).std())
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        residual_std.append(best)
        assert best < 0.09, msg("11.aug_not_shift", "image {i} is not a one-pixel shift of input {i} plus small noise "
                                "(residual std {best:.3f}): keep the order, do not mirror, noise std 0.05", i=i, best=best)
    mean_std = sum(residual_std) / len(residual_std)
    assert 0.035 < mean_std < 0.065, msg("11.aug_noise_std", "noise standard deviation about 0.05 expected, measured {std:.3f}",
                                         std=mean_std)


check_augment(data.val.x[:32].cpu(), seed=0)
### BEGIN HIDDEN TESTS
check_augment(data.train.x[100:300].cpu(), seed=77)
# Drawn at every grading (techday.draw): the slice and seed above are published with the course.
import techday.draw

rd = techday.draw.rng("11.augment_tests")
start_d = int(rd.integers(0, max(1, len(data.train.x) - 200)))
check_augment(data.train.x[start_d:start_d + int(rd.integers(50, 200))].cpu(), seed=int(rd.integers(1 << 30)))
### END HIDDEN TESTS
print(msg("11.aug_passed", "augment: all visible tests passed."))

# %% [markdown] key="augmentation-buys-measured"
# ## 3. What augmentation buys, measured
#
# Train the same CNN twice with the training loop of lab 10 (`dl.fit`, which applies a `transform` to
# every training batch), once on the plain images and once with `augment`. Then measure both on two
# held-out sets: the **test** split as it is, and the same images as a camera that moved would see them,
# `dl.shifted_noisy(test)`: every digit moved by one pixel in a random direction, with noise 0.1.
# Neither set is ever used for training or choosing.

# %% nbgrader="locked" id="bar"
BAR_CLEAN = 0.93  # accuracy on the held-out test digits
BAR_SHIFTED = 0.80  # accuracy on the same digits seen by a camera that moved by a pixel
CNN_EPOCHS = lab.size(full=20, ci=8)


def train_cnn(seed, transform):
    """make_cnn() trained with dl.fit, Adam 2e-3, batches of 64, from a fixed seed."""
    generator = dl.seed_everything(seed)
    model = make_cnn().to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    dl.fit(model, optimizer, data.train, data.val, epochs=CNN_EPOCHS, batch_size=64, transform=transform,
           generator=generator)
    return model


def held_out_accuracies(model):
    """Accuracy of model on the held-out digits (data.test's images, with the grader's labels) and on the
    same digits seen by a camera that moved; both sets made here, after the training, for this measurement."""
    held_out = dl.held_out_digits()
    moved = dl.shifted_noisy(held_out)  # the "camera moved" copy of the test split
    return {"clean": dl.evaluate(model, held_out.to(dev))[1], "shifted": dl.evaluate(model, moved.to(dev))[1]}


def bar_accuracies(seed):
    """Accuracy of the augmented CNN on the clean and on the moved held-out digits."""
    return held_out_accuracies(train_cnn(seed, augment))


results = {}
from techday.tier import shown_label  # the record's English label, in this run's language
for name, transform in (("plain", None), ("augmented", augment)):
    t0 = time.perf_counter()
    model = train_cnn(0, transform)
    seconds = time.perf_counter() - t0
    results[name] = held_out_accuracies(model)
    print(msg("11.cnn_results", "{name:10s} CNN: held-out accuracy {clean:.3f}, moved camera {shifted:.3f}  "
              "({epochs} epochs in {seconds:.1f} s [{timing}])", name=name, clean=results[name]["clean"],
              shifted=results[name]["shifted"], epochs=CNN_EPOCHS, seconds=seconds,
              timing=shown_label(lab.timing_label())))
acc0 = results["augmented"]

# %% [markdown] key="accuracy-bars"
# On clean digits both networks do well. On the moved camera the plain network loses much of its
# accuracy: it learned where strokes *are* in a centred digit. The augmented one saw moved, noisy
# digits during training and keeps most of it.
# Augmentation is cheap data: it encodes what you know does not change the label.
#
# ## 4. The accuracy bars
#
# The grader trains **your** `make_cnn()` with **your** `augment` as above, with a seed of its own, and
# requires both bars: clean held-out digits and the moved camera.

# %% nbgrader="tests" id="bar_tests" points=4
"""The trainee's CNN trained with the trainee's augmentation reaches both accuracy bars on held-out digits,
clean and seen by a moved camera, with seed 0; hidden: with the grader's own seed."""
from techday.i18n import msg
assert acc0["clean"] >= BAR_CLEAN, msg("11.bar_clean", "held-out accuracy {acc:.3f} below the bar {bar}",
                                      acc=acc0["clean"], bar=BAR_CLEAN)
assert acc0["shifted"] >= BAR_SHIFTED, msg("11.bar_shifted", "moved-camera accuracy {acc:.3f} below the bar {bar}",
                                          acc=acc0["shifted"], bar=BAR_SHIFTED)
### BEGIN HIDDEN TESTS
acc_h = bar_accuracies(seed=20261122)
assert acc_h["clean"] >= BAR_CLEAN, msg("11.bar_clean_hidden", "grader's seed: held-out accuracy {acc:.3f} below {bar}",
                                      acc=acc_h["clean"], bar=BAR_CLEAN)
assert acc_h["shifted"] >= BAR_SHIFTED, msg("11.bar_shifted_hidden", "grader's seed: moved-camera accuracy {acc:.3f} below {bar}",
                                          acc=acc_h["shifted"], bar=BAR_SHIFTED)
### END HIDDEN TESTS
print(msg("11.bar_passed", "accuracy bars: passed (clean {clean:.3f} >= {bar_clean}, moved {shifted:.3f} >= {bar_shifted}).",
          clean=acc0["clean"], bar_clean=BAR_CLEAN, shifted=acc0["shifted"], bar_shifted=BAR_SHIFTED))

# %% [markdown] key="summary"
# ## Summary
#
# - A CNN keeps the image's layout: convolutions find local patterns anywhere, padding keeps the size,
#   pooling halves it. Compute the flattened size from the shapes.
# - Batch-norm uses batch statistics in train mode and running averages in eval mode: always
#   `model.eval()` before measuring.
# - Transforms are a few lines of torch; an augmentation must keep the label (shifts and noise for
#   digits, not mirrors).
# - Measure augmentation on held-out data that looks like the world you expect, here a moved camera.
#
# ## Going further
#
# - `dl.random_shift` does the same job as your function without a Python loop over images: it groups
#   the images by offset. Time both with `techday.labtools.time_cpu` on 10,000 images on the CPU.
# - Normalise the inputs with `dl.normalize` (the training set's mean and standard deviation) and
#   compare the learning curves.
# - Try a stronger augmentation (shifts of 2 pixels, noise 0.2): when does it start to hurt clean accuracy?
# - Next: lab 12, transfer learning: reuse a network trained by someone else, with only a few labels.
