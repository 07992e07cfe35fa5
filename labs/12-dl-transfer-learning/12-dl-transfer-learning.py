# %% [markdown] key="transfer-learning-pre-trained"
# # 12 Transfer learning: a pre-trained backbone, a few labels
# # 12 전이 학습: 사전 학습된 백본과 적은 레이블
#
# Labelled data is the expensive part of deep learning. A network trained on a large **source**
# task has learned features (strokes, edges, shapes, robustness to small moves) that serve other
# tasks too. **Transfer learning** keeps that network's body, the **backbone**, and trains only a new
# small **head** on the **target** task, for which you have few labels. This lab does it end to end
# and compares it, honestly, with training from scratch on the same few labels.
#
# ## You will learn (학습 목표)
# - what a checkpoint is (`state_dict`, `torch.save`, `torch.load(weights_only=True)`) and how to load one;
# - how to **freeze** a backbone: `requires_grad_(False)` for its weights **and** eval mode for its
#   batch-norm statistics;
# - how to train only a new head, and give the optimiser only the parameters that learn;
# - how to compare with a from-scratch baseline fairly: same labels, same budget, held-out data.
#
# 이 실습에서는 체크포인트(`state_dict`) 불러오기, 백본 고정(freeze: 가중치와 배치 정규화 통계 모두),
# 새 헤드만 학습하기, 그리고 같은 조건에서 처음부터 학습한 모델과 공정하게 비교하는 법을 배웁니다.
#
# **How this lab works** (진행 방법): read, run, solve the two exercises (`raise NotImplementedError()`를
# 지우고 코드를 작성하세요), do not edit test cells. The grader runs hidden tests, then fine-tunes with
# *your* code and checks that it beats training from scratch on held-out data.
#
# Points: exercise 1: 3, exercise 2: 3, transfer beats scratch and reaches the bar: 4 (10 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup (설정)

# %% nbgrader="locked" id="setup"
import techday

lab = techday.setup(tier=tier, scale=scale, title="12 Transfer learning")

# %% nbgrader="locked" id="imports"
import copy
import time

import torch
from torch import nn
from torch.nn import functional as F

from techday import dl

if not lab.on_gpu:
    torch.set_num_threads(1)  # tiny models: one CPU thread is fastest, and shares a busy machine well
dev = dl.device(lab)
print(f"PyTorch {torch.__version__} | device: {dev}")

# %% [markdown] key="pre-trained-backbone"
# ## 1. The pre-trained backbone (사전 학습된 백본)
#
# The course pre-trained a backbone for you, the way a model zoo publishes one:
# `course/scripts/pretrain_backbone.py` trained the CNN body of lab 11 (`dl.Backbone`: two conv-BN-ReLU
# blocks and a pooling step, 512 features per image) with a 10-class head on the **source task**,
# the clean digit scans of the training split, with lab 11's augmentation, and saved the backbone's
# `state_dict` (a dictionary from parameter and buffer names to tensors) to a 26 KB file. The script is
# deterministic and runs in about ten seconds; the file is committed so that the lab starts at once.
#
# `torch.load(..., weights_only=True)` reads tensors and plain data only, never code: always use it for
# files you did not write yourself (믿을 수 없는 파일은 `weights_only=True`로 불러오세요).

# %%
checkpoint = torch.load(dl.BACKBONE_PATH, map_location="cpu", weights_only=True)
print("checkpoint keys:", sorted(checkpoint))
for key, value in checkpoint["meta"].items():
    print(f"  {key:22s} {value}")
for name, tensor in list(checkpoint["state_dict"].items())[:7]:
    print(f"  {name:32s} {tuple(tensor.shape)}")
print("  ...", len(checkpoint["state_dict"]), "entries, including batch-norm running_mean / running_var buffers")

pretrained, meta = dl.load_backbone()  # builds dl.Backbone(width) and loads the state_dict
print("backbone output:", tuple(pretrained(torch.rand(2, 1, 8, 8)).shape), "features per image")

# %% [markdown] key="target-task-new-camera"
# ## 2. The target task: a new camera, ten labels per digit (목표 과제: 새 카메라, 숫자당 10개의 레이블)
#
# The target task reads digits through a different camera: the images come shifted by a pixel and
# noisier (`dl.shifted_noisy`). Someone labelled **10 images per digit**, 100 in all (from the
# validation split, which the backbone never trained on). The held-out target images, from the test
# split, are for measuring only.

# %%
data = dl.load_digits_split()
target_train = dl.shifted_noisy(dl.few_shot(data.val, per_class=10, seed=0), seed=100).to(dev)
target_test = dl.shifted_noisy(data.test, seed=200).to(dev)
print(f"target task: {len(target_train)} labelled images ({torch.bincount(target_train.y.cpu()).tolist()} per digit), "
      f"{len(target_test)} held-out images")

# %% [markdown] key="freezing"
# ## 3. Freezing (고정하기)
#
# Freezing a backbone takes **two** things:
#
# 1. `p.requires_grad_(False)` for every parameter: autograd computes no gradient for them, and the
#    optimiser has nothing to change (기울기를 계산하지 않음);
# 2. **eval mode** for the backbone: batch-norm layers update their running mean and variance in every
#    training-mode forward pass, with or without gradients. A "frozen" backbone in train mode still
#    drifts towards the statistics of your 100 images (배치 정규화 통계도 고정해야 합니다).
#
# `model.train()` switches every submodule to train mode, so a training loop must put the backbone
# back in eval mode after it.
#
# ## 연습 1 (Exercise 1): freeze and add a head (3 points)
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
width and number of classes, the backbone's weights untouched."""
import torch
from torch import nn

from techday import dl

bb_t, _ = dl.load_backbone()
bb_t.train()  # a backbone as a training script leaves it
model_t = make_transfer_model(bb_t, 10)
assert isinstance(model_t, nn.Sequential) and model_t[0] is bb_t, "return nn.Sequential(backbone, head)"
trainable = [name for name, p in model_t.named_parameters() if p.requires_grad]
assert trainable == ["1.weight", "1.bias"], f"only the head may require grad; trainable: {trainable}"
assert not bb_t.training and not any(m.training for m in bb_t.modules()), "put the backbone in eval mode"
assert tuple(model_t(torch.rand(3, 1, 8, 8)).shape) == (3, 10)
### BEGIN HIDDEN TESTS
bb_h = dl.make_backbone(width=8)
before = {k: v.clone() for k, v in bb_h.state_dict().items()}
model_h = make_transfer_model(bb_h, 4)
assert isinstance(model_h[1], nn.Linear) and (model_h[1].in_features, model_h[1].out_features) == (bb_h.out_features, 4)
assert [n for n, p in model_h.named_parameters() if p.requires_grad] == ["1.weight", "1.bias"]
assert not any(m.training for m in bb_h.modules()), "a fresh backbone too goes to eval mode"
assert all(torch.equal(before[k], v) for k, v in bb_h.state_dict().items()), "do not change the backbone's weights"
assert tuple(model_h(torch.rand(1, 1, 8, 8)).shape) == (1, 4)
### END HIDDEN TESTS
print("make_transfer_model: all visible tests passed.")

# %% [markdown] key="training-head"
# ## 4. Training the head (헤드 학습)
#
# The loop is lab 10's, with two changes: the optimiser receives only the trainable parameters
# (`[p for p in model.parameters() if p.requires_grad]`), and after `model.train()` the backbone goes
# back to eval mode, `model[0].eval()`.
#
# ## 연습 2 (Exercise 2): fine-tune (3 points)
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
epoch, and the loss falls; hidden: stale gradients on the head, batch sizes that do not divide N."""
import copy

import torch
from torch.nn import functional as F

from techday import dl


def reference_fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(train.x[idx]), train.y[idx]).backward()
            optimizer.step()


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
    reference_fine_tune(ref, part, epochs, 0.01, batch_size, torch.Generator().manual_seed(seed))
    assert isinstance(losses, list) and len(losses) == epochs, f"return one mean loss per epoch, got {losses!r}"
    changed = [k for k, v in bb.state_dict().items() if not torch.equal(frozen[k], v)]
    assert not changed, (f"the frozen backbone changed during fine-tuning: {changed[:3]}: batch-norm statistics "
                         "move in train mode; put the backbone back in eval mode after model.train()")
    assert not torch.equal(model[1].weight, head_before), "the head did not learn"
    assert torch.allclose(model[1].weight, ref[1].weight, atol=1e-5) and torch.allclose(model[1].bias, ref[1].bias, atol=1e-5), (
        f"the head differs from the reference after {epochs} epochs (n={n}, batch {batch_size}): zero the gradients "
        "before every backward, use Adam on the trainable parameters, shuffle with the generator")
    return losses


losses_t = check_fine_tune(n=100, epochs=4, batch_size=16, seed=0)
assert losses_t[-1] < losses_t[0], f"the training loss should fall: {losses_t}"
### BEGIN HIDDEN TESTS
check_fine_tune(n=37, epochs=3, batch_size=10, seed=1, stale=True)
check_fine_tune(n=20, epochs=2, batch_size=64, seed=2, stale=True)
### END HIDDEN TESTS
print("fine_tune: all visible tests passed; losses:", [round(v, 3) for v in losses_t])

# %% [markdown] key="transfer-against-training-scratch"
# ## 5. Transfer against training from scratch (전이 학습 대 처음부터 학습)
#
# A fair comparison changes one thing only. The **from-scratch** model is the same architecture, a
# fresh `dl.make_backbone()` with a head, all of it trainable, trained with lab 10's loop (`dl.fit`)
# on the **same 100 labels**, for the same number of epochs, with the same optimiser. Both are measured
# on the held-out target images. The grader runs the cell below with a seed of its own.

# %% nbgrader="locked" id="bar"
BAR = 0.70  # accuracy of the fine-tuned model on the held-out target images (채점 기준)
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
print(f"held-out target accuracy, 100 labels, {FT_EPOCHS} epochs: pre-trained backbone + new head "
      f"{acc0['fine_tuned']:.3f} | from scratch {acc0['scratch']:.3f} "
      f"({time.perf_counter() - t0:.1f} s for both [{lab.timing_label()}])")

# %% nbgrader="tests" id="bar_tests" points=4
"""Fine-tuning the pre-trained backbone with the trainee's code beats the same network trained from scratch
on the same 100 labels by at least MARGIN and reaches the bar on held-out target images, with seed 0;
hidden: with the grader's own seed."""
assert acc0["fine_tuned"] >= BAR, f"fine-tuned accuracy {acc0['fine_tuned']:.3f} below the bar {BAR}"
assert acc0["fine_tuned"] >= acc0["scratch"] + MARGIN, (
    f"fine-tuned {acc0['fine_tuned']:.3f} does not beat from scratch {acc0['scratch']:.3f} by {MARGIN}")
### BEGIN HIDDEN TESTS
acc_h = transfer_vs_scratch(seed=20261122)
assert acc_h["fine_tuned"] >= BAR, f"grader's seed: fine-tuned accuracy {acc_h['fine_tuned']:.3f} below {BAR}"
assert acc_h["fine_tuned"] >= acc_h["scratch"] + MARGIN, f"grader's seed: {acc_h}"
### END HIDDEN TESTS
print(f"transfer bar: passed ({acc0['fine_tuned']:.3f} >= {BAR}, and {acc0['fine_tuned'] - acc0['scratch']:+.3f} over scratch).")

# %% [markdown] key="summary"
# With 100 labels the new head on pre-trained features is far ahead: the backbone brought features and
# a robustness to moved, noisy images that 100 examples cannot teach a fresh network. With thousands of
# target labels the gap closes, and full fine-tuning (unfreezing everything) usually wins.
#
# ## Summary (요약)
#
# - A checkpoint is a `state_dict`; load unknown files with `torch.load(..., weights_only=True)`.
# - Freeze = `requires_grad_(False)` on the backbone's parameters **and** `eval()` on the backbone
#   (batch-norm statistics), also after every `model.train()`.
# - Give the optimiser only the trainable parameters; train a new head for the new task.
# - Compare with a from-scratch baseline on the same labels and budget, on held-out data.
#
# ## Going further (더 알아보기)
#
# - Full fine-tuning: after the head has learned, unfreeze the backbone and train everything with a
#   learning rate ten times smaller (`param_groups` with different `lr` per group). Does it beat the
#   frozen backbone with 100 labels? With 10?
# - Vary the labels per digit (1, 3, 10, 30) and plot both accuracies: where do the curves meet?
# - Re-run `python course/scripts/pretrain_backbone.py --out /tmp/bb.pt --epochs 2` and load that
#   backbone instead: how much does the quality of the source training matter?
# - Next: lab 13, training fast on one GPU.
