# %% [markdown] key="transfer-learning-pre-trained"
# # 12 Transfer learning: a pre-trained backbone, a few labels
#
# Labelled data is the expensive part of deep learning. A network trained on a large **source**
# task has learned features (strokes, edges, shapes, robustness to small moves) that serve other
# tasks too. **Transfer learning** keeps that network's body, the **backbone**, and trains only a new
# small **head** on the **target** task, for which you have few labels. This lab does it end to end
# and compares it, honestly, with training from scratch on the same few labels.
#
# ## You will learn
# - what a checkpoint is (`state_dict`, `torch.save`, `torch.load(weights_only=True)`) and how to load one;
# - how to **freeze** a backbone: `requires_grad_(False)` for its weights **and** eval mode for its
#   batch-norm statistics;
# - how to train only a new head, and give the optimiser only the parameters that learn;
# - how to compare with a from-scratch baseline fairly: same labels, same budget, held-out data.
#
# **How this lab works**: read, run, solve the two exercises (delete `raise NotImplementedError()` and
# write your code), do not edit test cells. The grader runs hidden tests, then fine-tunes with
# *your* code and checks that it beats training from scratch on held-out data.
#
# Points: exercise 1: 3, exercise 2: 3, transfer beats scratch and reaches the bar: 4 (10 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("12.title", "12 Transfer learning"))

# %% nbgrader="locked" id="imports"
import copy
import time

import torch
from torch import nn
from torch.nn import functional as F

from techday import dl
from techday.i18n import msg

if not lab.on_gpu:
    torch.set_num_threads(1)  # tiny models: one CPU thread is fastest, and shares a busy machine well
dev = dl.device(lab)
print(msg("12.versions", "PyTorch {version} | device: {device}", version=torch.__version__, device=dev))

# %% [markdown] key="pre-trained-backbone"
# ## 1. The pre-trained backbone
#
# The course pre-trained a backbone for you, the way a model zoo publishes one:
# `course/scripts/pretrain_backbone.py` trained the CNN body of lab 11 (`dl.Backbone`: two conv-BN-ReLU
# blocks and a pooling step, 512 features per image) with a 40-class head on the **source task**:
# 8,000 generated images of pen strokes in 40 shapes (`dl.make_strokes`; not one digit among them),
# with lab 11's augmentation. The features it learned there (strokes, their ends and crossings, their
# directions) are what digits are made of, and the lab finds out whether they carry over to a domain
# the backbone never saw: digits through a new camera. It saved the backbone's
# `state_dict` (a dictionary from parameter and buffer names to tensors) to a 26 KB file. The script is
# deterministic and runs in about fifteen seconds; the file is committed so that the lab starts at once.
#
# `torch.load(..., weights_only=True)` reads tensors and plain data only, never code: always use it for
# files you did not write yourself. It has been the default since PyTorch 2.6; write it anyway: older
# versions, and `weights_only=False`, unpickle arbitrary objects, which can run code.

# %%
checkpoint = torch.load(dl.BACKBONE_PATH, map_location="cpu", weights_only=True)
print(msg("12.checkpoint_keys", "checkpoint keys: {keys}", keys=sorted(checkpoint)))
for key, value in dl.backbone_record(checkpoint["meta"]).items():  # its words in this run's language
    print(f"  {key:22s} {value}")
for name, tensor in list(checkpoint["state_dict"].items())[:7]:
    print(f"  {name:32s} {tuple(tensor.shape)}")
print(msg("12.entries", "  ... {n} entries, including batch-norm running_mean / running_var buffers", n=len(checkpoint["state_dict"])))

pretrained, meta = dl.load_backbone()  # builds dl.Backbone(width) and loads the state_dict
print(msg("12.backbone_output", "backbone output: {shape}: {n} features per image",
          shape=tuple(pretrained(torch.rand(2, 1, 8, 8)).shape), n=pretrained.out_features))

# %% [markdown] key="target-task-new-camera"
# ## 2. The target task: a new camera, ten labels per digit
#
# The target task reads digits through a different camera: the images come shifted by a pixel and
# noisier (`dl.shifted_noisy`). Someone labelled **10 images per digit**, 100 in all (the backbone
# has never seen a digit, labelled or not). The held-out target images, from the test
# split, are for measuring only.

# %% nbgrader="locked" id="target_data"
data = dl.load_digits_split()
target_train = dl.shifted_noisy(dl.few_shot(data.val, per_class=10, seed=0), seed=100).to(dev)
target_test = dl.shifted_noisy(dl.held_out_digits(), seed=200).to(dev)  # data.test's images, labelled
print(msg("12.target_task", "target task: {n_train} labelled images ({per_digit} per digit), {n_test} held-out images",
          n_train=len(target_train), per_digit=torch.bincount(target_train.y.cpu()).tolist(), n_test=len(target_test)))

# %% [markdown] key="freezing"
# ## 3. Freezing
#
# Freezing a backbone takes **two** things:
#
# 1. `p.requires_grad_(False)` for every parameter: autograd computes no gradient for them, and the
#    optimiser has nothing to change;
# 2. **eval mode** for the backbone: batch-norm layers update their running mean and variance in every
#    training-mode forward pass, with or without gradients. A "frozen" backbone in train mode still
#    drifts towards the statistics of your 100 images.
#
# `model.train()` switches every submodule to train mode, so a training loop must put the backbone
# back in eval mode after it.
#
# ## Exercise 1: freeze and add a head (3 points)
#
# Write `make_transfer_model(backbone, n_classes)` that freezes `backbone` (every parameter
# `requires_grad` False, and `backbone.eval()`) and returns `nn.Sequential(backbone, head)` with a new
# `nn.Linear(backbone.out_features, n_classes)` head, which stays trainable.

# %% nbgrader="solution" id="make_transfer_model"
def make_transfer_model(backbone, n_classes):
    """nn.Sequential(frozen backbone in eval mode, new trainable nn.Linear head)."""
    ### BEGIN SOLUTION
    for p in backbone.parameters():
        p.requires_grad_(False)
    backbone.eval()
    return nn.Sequential(backbone, nn.Linear(backbone.out_features, n_classes))
    ### END SOLUTION

# %% nbgrader="tests" id="make_transfer_model_tests" points=3
"""make_transfer_model returns Sequential(backbone, Linear(out_features, n_classes)) in which only the head's
weight and bias require grad and the backbone is in eval mode, with (N, n_classes) outputs; hidden: another
width and number of classes, the backbone's weights untouched; and cases drawn afresh at every grading
(techday.draw)."""
import torch
from torch import nn

from techday import dl
from techday.i18n import msg

bb_t, _ = dl.load_backbone()
bb_t.train()  # a backbone as a training script leaves it
model_t = make_transfer_model(bb_t, 10)
assert isinstance(model_t, nn.Sequential) and model_t[0] is bb_t, msg("12.return_sequential", "return nn.Sequential(backbone, head)")
trainable = [name for name, p in model_t.named_parameters() if p.requires_grad]
assert trainable == ["1.weight", "1.bias"], msg("12.only_head_grad", "only the head may require grad; trainable: {trainable}", trainable=trainable)
assert not bb_t.training and not any(m.training for m in bb_t.modules()), msg("12.backbone_eval", "put the backbone in eval mode")
out_shape = tuple(model_t(torch.rand(3, 1, 8, 8)).shape)
assert out_shape == (3, 10), msg("12.output_shape", "the model maps 3 images to {shape}, expected (3, 10)", shape=out_shape)
### BEGIN HIDDEN TESTS
bb_h = dl.make_backbone(width=8)
before = {k: v.clone() for k, v in bb_h.state_dict().items()}
model_h = make_transfer_model(bb_h, 4)
assert isinstance(model_h[1], nn.Linear) and (model_h[1].in_features, model_h[1].out_features) == (bb_h.out_features, 4)
assert [n for n, p in model_h.named_parameters() if p.requires_grad] == ["1.weight", "1.bias"]
assert not any(m.training for m in bb_h.modules()), msg("12.hidden_fresh_eval", "a fresh backbone too goes to eval mode")
assert all(torch.equal(before[k], v) for k, v in bb_h.state_dict().items()), msg("12.hidden_weights_untouched", "do not change the backbone's weights")
assert tuple(model_h(torch.rand(1, 1, 8, 8)).shape) == (1, 4)
# Drawn at every grading (techday.draw): the width and the classes above are published with the course.
import techday.draw

rd = techday.draw.rng("12.make_transfer_model_tests")
w_d, k_d, b_d = int(rd.integers(2, 33)), int(rd.integers(2, 40)), int(rd.integers(1, 9))
bb_d = dl.make_backbone(width=w_d)
bb_d.train()
before_d = {k: v.clone() for k, v in bb_d.state_dict().items()}
model_d = make_transfer_model(bb_d, k_d)
assert isinstance(model_d[1], nn.Linear) and (model_d[1].in_features, model_d[1].out_features) == (bb_d.out_features, k_d), (
    msg("12.drawn_head_shape", "width {width}, {classes} classes: the head maps the backbone's {features} features to the "
        "classes", width=w_d, classes=k_d, features=bb_d.out_features))
assert [n for n, p in model_d.named_parameters() if p.requires_grad] == ["1.weight", "1.bias"]
assert not any(m.training for m in bb_d.modules()), msg("12.hidden_fresh_eval", "a fresh backbone too goes to eval mode")
assert all(torch.equal(before_d[k], v) for k, v in bb_d.state_dict().items()), msg("12.hidden_weights_untouched", "do not change the backbone's weights")
assert tuple(model_d(torch.rand(b_d, 1, 8, 8)).shape) == (b_d, k_d)
### END HIDDEN TESTS
print(msg("12.make_passed", "make_transfer_model: all visible tests passed."))

# %% [markdown] key="training-head"
# ## 4. Training the head
#
# The loop is lab 10's, with two changes: the optimiser receives only the trainable parameters
# (`[p for p in model.parameters() if p.requires_grad]`), and after `model.train()` the backbone goes
# back to eval mode, `model[0].eval()`.
#
# ## Exercise 2: fine-tune (3 points)
#
# Write `fine_tune(model, train, epochs, lr, batch_size, generator)` for a model made by
# `make_transfer_model`:
# 1. `optimizer = torch.optim.Adam(trainable parameters, lr=lr)`;
# 2. each epoch: `model.train()`, then `model[0].eval()`; `order = torch.randperm(len(train.y),
#    generator=generator)`, batches `order[i:i + batch_size]`; for each batch `zero_grad`, forward,
#    `F.cross_entropy`, `backward`, `step`;
# 3. return the list of mean training losses, one per epoch (weighted by batch size).

# %% nbgrader="solution" id="fine_tune"
def fine_tune(model, train, epochs, lr, batch_size, generator):
    """Train the head of a frozen-backbone model; returns the mean loss of each epoch."""
    ### BEGIN SOLUTION
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train.y))
    return losses
    ### END SOLUTION

# %% nbgrader="tests" id="fine_tune_tests" points=3
"""fine_tune leaves the backbone exactly as it was (weights and batch-norm statistics), trains the head to
the same weights as a reference loop (Adam on the head, zero_grad every batch), returns one mean loss per
epoch (a float weighted by batch size, as the reference's), and the loss falls; hidden: stale gradients on
the head, batch sizes that do not divide N; and cases drawn afresh at every grading (techday.draw)."""
import copy

import torch
from torch.nn import functional as F

from techday import dl
from techday.i18n import msg


def reference_fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    per_epoch = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        batches = []  # (the batch's mean loss, its size)
        for idx in torch.randperm(len(train.y), generator=generator).split(batch_size):
            optimizer.zero_grad()
            batch_loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            batch_loss.backward()
            optimizer.step()
            batches.append((batch_loss.item(), idx.numel()))
        per_epoch.append(sum(m * k for m, k in batches) / sum(k for _, k in batches))
    return per_epoch


def check_fine_tune(n, epochs, batch_size, seed, stale=False):
    torch.manual_seed(seed)
    bb, _ = dl.load_backbone()
    model = make_transfer_model(bb, 10)
    ref = copy.deepcopy(model)
    frozen = {k: v.clone() for k, v in bb.state_dict().items()}
    head_before = model[1].weight.detach().clone()
    if stale:
        for p in model[1].parameters():
            p.grad = torch.full_like(p, 3.0)
    part = dl.Split(target_train.x[:n].cpu(), target_train.y[:n].cpu())
    losses = fine_tune(model, part, epochs, 0.01, batch_size, torch.Generator().manual_seed(seed))
    ref_losses = reference_fine_tune(ref, part, epochs, 0.01, batch_size, torch.Generator().manual_seed(seed))
    assert isinstance(losses, list) and len(losses) == epochs, msg("12.one_loss_per_epoch", "return one mean loss per epoch, got {losses!r}", losses=losses)
    changed = [k for k, v in bb.state_dict().items() if not torch.equal(frozen[k], v)]
    assert not changed, msg("12.backbone_changed", "the frozen backbone changed during fine-tuning: {changed}: batch-norm "
                            "statistics move in train mode; put the backbone back in eval mode after model.train()",
                            changed=changed[:3])
    assert not torch.equal(model[1].weight, head_before), msg("12.head_not_learning", "the head did not learn")
    assert torch.allclose(model[1].weight, ref[1].weight, atol=1e-5) and torch.allclose(model[1].bias, ref[1].bias, atol=1e-5), (
        msg("12.head_differs", "the head differs from the reference after {epochs} epochs (n={n}, batch {batch_size}): zero "
            "the gradients before every backward, use Adam on the trainable parameters, shuffle with the generator",
            epochs=epochs, n=n, batch_size=batch_size))
    assert all(isinstance(v, float) for v in losses) and all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(losses, ref_losses)), (
        msg("12.losses_differ", "epoch losses {losses!r}, expected {want!r} (n={n}, batch {batch_size}): each is a Python float, the "
            "mean of every batch's loss.item() weighted by its batch size (the last batch may be smaller)",
            losses=losses, want=[round(v, 6) for v in ref_losses], n=n, batch_size=batch_size))
    return losses


losses_t = check_fine_tune(n=100, epochs=4, batch_size=16, seed=0)
assert losses_t[-1] < losses_t[0], msg("12.loss_should_fall", "the training loss should fall: {losses}", losses=losses_t)
### BEGIN HIDDEN TESTS
check_fine_tune(n=37, epochs=3, batch_size=10, seed=1, stale=True)
check_fine_tune(n=20, epochs=2, batch_size=64, seed=2, stale=True)
# Drawn at every grading (techday.draw): the sizes, batches and seeds above are published with the course.
import techday.draw

rd = techday.draw.rng("12.fine_tune_tests")
n_d = int(rd.integers(8, 101))
check_fine_tune(n=n_d, epochs=int(rd.integers(1, 4)), batch_size=int(rd.integers(3, n_d // 2 + 1)),
                seed=int(rd.integers(0, 2 ** 31)), stale=bool(rd.integers(0, 2)))  # several batches, the last one smaller or not
n_d = int(rd.integers(2, 41))
check_fine_tune(n=n_d, epochs=int(rd.integers(1, 3)), batch_size=int(rd.integers(n_d, 81)),
                seed=int(rd.integers(0, 2 ** 31)), stale=True)  # one batch holds them all
### END HIDDEN TESTS
print(msg("12.fine_tune_passed", "fine_tune: all visible tests passed; losses: {losses}", losses=[round(v, 3) for v in losses_t]))

# %% [markdown] key="transfer-against-training-scratch"
# ## 5. Transfer against training from scratch
#
# A fair comparison changes one thing only. The **from-scratch** model is the same architecture, a
# fresh `dl.make_backbone()` with a head, all of it trainable, trained with lab 10's loop (`dl.fit`)
# on the **same 100 labels**, for the same number of epochs, with the same optimiser. Both are measured
# on the held-out target images. The test checks the run below, with seed 0; the grader also repeats
# the comparison with a seed of its own.

# %% nbgrader="locked" id="bar"
BAR = 0.70  # accuracy of the fine-tuned model on the held-out target images (the grading bar)
MARGIN = 0.05  # the fine-tuned model must beat from-scratch training by at least this much
FT_EPOCHS = lab.size(full=60, ci=30)


def transfer_vs_scratch(seed):
    """Held-out target accuracy of (your) frozen backbone + head, and of the same network from scratch."""
    generator = dl.seed_everything(seed)
    backbone, _ = dl.load_backbone()
    model = make_transfer_model(backbone.to(dev), 10).to(dev)
    fine_tune(model, target_train, FT_EPOCHS, 3e-3, 16, generator)
    generator = dl.seed_everything(seed)
    scratch = nn.Sequential(dl.make_backbone(), nn.Linear(512, 10)).to(dev)
    dl.fit(scratch, torch.optim.Adam(scratch.parameters(), lr=3e-3), target_train, None, FT_EPOCHS, 16,
           generator=generator)
    return {"fine_tuned": dl.evaluate(model, target_test)[1], "scratch": dl.evaluate(scratch, target_test)[1]}


t0 = time.perf_counter()
acc0 = transfer_vs_scratch(seed=0)
from techday.tier import shown_label  # the record's English label, in this run's language
print(msg("12.accuracy", "held-out target accuracy, 100 labels, {epochs} epochs: pre-trained backbone + new head "
          "{fine_tuned:.3f} | from scratch {scratch:.3f} ({seconds:.1f} s for both [{label}])", epochs=FT_EPOCHS,
          fine_tuned=acc0["fine_tuned"], scratch=acc0["scratch"], seconds=time.perf_counter() - t0,
          label=shown_label(lab.timing_label())))

# %% nbgrader="tests" id="bar_tests" points=4
"""Fine-tuning the pre-trained backbone with the trainee's code beats the same network trained from scratch
on the same 100 labels by at least MARGIN and reaches the bar on held-out target images, with seed 0;
hidden: with the grader's own seed."""
from techday.i18n import msg

assert acc0["fine_tuned"] >= BAR, msg("12.below_bar", "fine-tuned accuracy {acc:.3f} below the bar {bar}", acc=acc0["fine_tuned"], bar=BAR)
assert acc0["fine_tuned"] >= acc0["scratch"] + MARGIN, msg(
    "12.not_beating", "fine-tuned {fine_tuned:.3f} does not beat from scratch {scratch:.3f} by {margin}",
    fine_tuned=acc0["fine_tuned"], scratch=acc0["scratch"], margin=MARGIN)
### BEGIN HIDDEN TESTS
acc_h = transfer_vs_scratch(seed=20261122)
assert acc_h["fine_tuned"] >= BAR, msg("12.hidden_below_bar", "grader's seed: fine-tuned accuracy {acc:.3f} below {bar}",
                                      acc=acc_h["fine_tuned"], bar=BAR)
assert acc_h["fine_tuned"] >= acc_h["scratch"] + MARGIN, msg("12.hidden_not_beating", "grader's seed: {acc}", acc=acc_h)
### END HIDDEN TESTS
print(msg("12.bar_passed", "transfer bar: passed ({acc:.3f} >= {bar}, and {gain:+.3f} over scratch).",
          acc=acc0["fine_tuned"], bar=BAR, gain=acc0["fine_tuned"] - acc0["scratch"]))

# %% [markdown] key="summary"
# With 100 labels the new head on pre-trained features is well ahead, though the backbone never saw a
# digit: it brought stroke features and a robustness to moved, noisy images that 100 examples cannot
# teach a fresh network. With thousands of
# target labels the gap closes, and full fine-tuning (unfreezing everything) usually wins.
#
# ## Summary
#
# - A checkpoint is a `state_dict`; load unknown files with `torch.load(..., weights_only=True)`.
# - Freeze = `requires_grad_(False)` on the backbone's parameters **and** `eval()` on the backbone
#   (batch-norm statistics), also after every `model.train()`.
# - Give the optimiser only the trainable parameters; train a new head for the new task.
# - Compare with a from-scratch baseline on the same labels and budget, on held-out data.
#
# ## Going further
#
# - Full fine-tuning: after the head has learned, unfreeze the backbone and train everything with a
#   learning rate ten times smaller (`param_groups` with different `lr` per group). Does it beat the
#   frozen backbone with 100 labels? With 10?
# - Vary the labels per digit (1, 3, 10, 30) and plot both accuracies: where do the curves meet?
# - Re-run `python course/scripts/pretrain_backbone.py --out /tmp/bb.pt --epochs 2` and load that
#   backbone instead: how much does the quality of the source training matter? And a source closer to
#   the target: pre-train on the digits' own training split (`dl.load_digits_split().train`) and
#   compare the two transfers.
# - Next: lab 13, training fast on one GPU.
